/*  =========================================================================
    mesh_node_announce - announcements on the wire: whole, or as deltas

    A pattern announces its whole list (mesh_node_announce); what travels
    is what changed. Each key's value has a version, +1 per change. A peer
    whose HELLO says it reads deltas (MESH_FLAG_DELTAS) gets an UPDATE
    with that flag: id = the new version, seq = the version it applies to,
    body = one splice of whole records (mesh_announce.c). A peer applies it
    only on top of exactly that version; otherwise (an UPDATE lost at a
    full link, a delta that does not fit) it asks for the whole value again
    (UPDATE with MESH_FLAG_RESYNC, no body), counts "announce.resync", and
    drops the deltas that come before the whole value does. A new link
    gets every value whole, with its version (mesh_node_announce_greet).
    Peers without the flag get whole values, as before.

    So a node with 10 000 subscriptions sends 10 000 small UPDATEs while
    it subscribes, not 10 000 lists of up to 10 000 records (~1.5 GB).
    docs/protocol.md, "Announcement deltas", has the wire.

    Lock held (node->lock) in every function here.
    ========================================================================= */

#include "mesh_node_int.h"
#include "mesh_announce.h"

#define RESYNC_WANTED   UINT64_MAX      //  a peer's version while a whole value is asked for

static uint64_t *
s_version (zhashx_t *table, const char *key)
{
    uint64_t *version = (uint64_t *) zhashx_lookup (table, key);
    if (!version) {
        version = (uint64_t *) calloc (1, sizeof *version);
        if (version)
            zhashx_insert (table, key, version);
    }
    return version;
}

bool
mesh_node_announce_out (mesh_node_t *self, const char *key, zchunk_t *old,
                        const void *value, size_t size)
{
    uint64_t *version = s_version (self->announce_ver, key);
    if (!version)
        return false;
    uint64_t base = (*version)++;
    size_t at = 0, cut = 0, added = size;
    bool diffed = old && base && size && zchunk_size (old);
    if (diffed)
        mesh_announce_diff ((const char *) zchunk_data (old), zchunk_size (old),
                            (const char *) value, size, &at, &cut, &added);
    //  the delta, once for every peer; not worth it when it is no smaller
    uint8_t *delta = NULL;
    size_t delta_size = MESH_ANNOUNCE_DELTA_HEAD + added;
    if (diffed && self->started && !self->stopping && delta_size < size) {
        delta = (uint8_t *) malloc (delta_size);
        if (delta) {
            mesh_announce_delta_head (delta, at, cut);
            memcpy (delta + MESH_ANNOUNCE_DELTA_HEAD, (const char *) value + at, added);
        }
    }
    mesh_head_t whole = { .kind = MESH_KIND_UPDATE, .id = *version, .subject = key };
    mesh_head_t change = { .kind = MESH_KIND_UPDATE, .flags = MESH_FLAG_DELTAS,
                           .id = *version, .seq = base, .subject = key };
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers);
         peer && self->started && !self->stopping;
         peer = (mesh_peer_t *) zhashx_next (self->peers)) {
        if (!peer->hello_sent)
            continue;
        if (delta && peer->deltas)
            mesh_node_send_locked (self, peer, &change, delta, delta_size);
        else
            mesh_node_send_locked (self, peer, &whole, value, size);
    }
    free (delta);
    //  records appended (a subscription, a service): grow what we keep in
    //  place, amortised, rather than copy the whole list per change
    if (diffed && at == zchunk_size (old) && cut == 0) {
        zchunk_extend (old, (const char *) value + at, added);
        return true;
    }
    return false;
}

//  Every announcement whole, with its version, on a new link
void
mesh_node_announce_greet (mesh_node_t *self, mesh_peer_t *peer)
{
    for (zchunk_t *value = (zchunk_t *) zhashx_first (self->announce); value;
         value = (zchunk_t *) zhashx_next (self->announce)) {
        const char *key = (const char *) zhashx_cursor (self->announce);
        uint64_t *version = (uint64_t *) zhashx_lookup (self->announce_ver, key);
        mesh_head_t head = { .kind = MESH_KIND_UPDATE, .id = version? *version: 0,
                             .subject = key };
        mesh_node_send_locked (self, peer, &head, zchunk_data (value), zchunk_size (value));
    }
}

//  An UPDATE from a peer: a whole value, a delta, or a request for ours
void
mesh_node_update_in (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg)
{
    const char *key = msg->subject;
    if (!key [0]) {
        mesh_peer_count (self, peer, "malformed.update");
        return;
    }
    uint32_t flags = msg->env.flags;
    if (flags & MESH_FLAG_RESYNC) {
        zchunk_t *value = (zchunk_t *) zhashx_lookup (self->announce, key);
        uint64_t *version = (uint64_t *) zhashx_lookup (self->announce_ver, key);
        mesh_head_t head = { .kind = MESH_KIND_UPDATE, .id = version? *version: 0,
                             .subject = key };
        mesh_peer_count (self, peer, "announce.resync.sent");
        mesh_node_send_locked (self, peer, &head, value? zchunk_data (value): NULL,
                               value? zchunk_size (value): 0);
        return;
    }
    uint64_t *have = s_version (peer->announce_ver, key);
    if (!have)
        return;
    zchunk_t *value;
    if (flags & MESH_FLAG_DELTAS) {
        if (*have == RESYNC_WANTED) {
            mesh_peer_count (self, peer, "announce.delta.skipped");
            return;             //  the whole value is on its way
        }
        zchunk_t *old = (zchunk_t *) zhashx_lookup (peer->announce, key);
        size_t size = 0, at, cut;
        size_t added = msg->size >= MESH_ANNOUNCE_DELTA_HEAD
                     ? msg->size - MESH_ANNOUNCE_DELTA_HEAD: 0;
        if (old && *have && msg->env.seq == *have
        &&  mesh_announce_delta_read (mesh_msg_body (msg), msg->size, &at, &cut)
        &&  at == zchunk_size (old) && cut == 0 && at + added <= MESH_MAX_BODY) {
            //  records appended: grown in place, amortised, not copied
            zchunk_extend (old, (const uint8_t *) mesh_msg_body (msg)
                                + MESH_ANNOUNCE_DELTA_HEAD, added);
            *have = msg->env.id;
            __atomic_add_fetch (&self->generation, 1, __ATOMIC_RELEASE);
            mesh_node_raise (self, MESH_EVENT_UPDATE, peer, key);
            return;
        }
        void *now = old && *have && msg->env.seq == *have
                  ? mesh_announce_apply (zchunk_data (old), zchunk_size (old),
                                         mesh_msg_body (msg), msg->size, MESH_MAX_BODY, &size)
                  : NULL;
        if (!now) {
            //  versions do not follow (or the delta does not fit): ask
            //  for the whole value, and drop deltas until it is here
            mesh_peer_count (self, peer, old && msg->env.seq == *have
                                         ? "malformed.update.delta": "announce.resync");
            *have = RESYNC_WANTED;
            mesh_head_t ask = { .kind = MESH_KIND_UPDATE, .flags = MESH_FLAG_RESYNC,
                                .subject = key };
            mesh_node_send_locked (self, peer, &ask, NULL, 0);
            return;
        }
        value = zchunk_new (now, size);
        free (now);
    }
    else
        value = zchunk_new (mesh_msg_body (msg), msg->size);
    *have = msg->env.id;        //  0 from a peer that keeps no versions
    zhashx_update (peer->announce, key, value);
    __atomic_add_fetch (&self->generation, 1, __ATOMIC_RELEASE);
    mesh_node_raise (self, MESH_EVENT_UPDATE, peer, key);
}
