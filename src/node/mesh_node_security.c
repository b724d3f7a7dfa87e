/*  =========================================================================
    mesh_node_security - the node's side of security: it asks
    src/security/mesh_security.c for verdicts and applies them to its peer
    table (counts per peer, asks for a HELLO, removes revoked peers).
    Security itself never reads the table.
    ========================================================================= */

#include "mesh_node_int.h"
#include <sodium.h>

#define MESH_CLOSED_FDS     64      //  inbound fds closed, reported per tick (the
                                    //  monitor is read at most 64 events a tick)

bool
mesh_node_security_frame (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg)
{
    const char *reason = NULL;
    mesh_security_verdict_t verdict = mesh_security_frame (
        self->security, &peer->conn, peer->has_key? peer->key: NULL, peer->hex,
        &msg->frames [0], msg->env.kind, &reason);
    if (verdict == MESH_SECURITY_ACCEPT)
        return true;
    mesh_peer_count (self, peer, reason);
    if (verdict == MESH_SECURITY_ASK_HELLO)
        mesh_node_hello_to (self, peer, true);
    return false;
}

//  Cut and remove the peers a verdict names: with key, those holding it;
//  without, every peer whose key is no longer acceptable
static void
s_remove_keyed (mesh_node_t *self, const uint8_t *key)
{
    char z85 [MESH_KEY_Z85 + 1] = "";
    if (key)
        zmq_z85_encode (z85, key, MESH_KEY_SIZE);
    zlistx_t *cut = zlistx_new ();
    for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p;
         p = (mesh_peer_t *) zhashx_next (self->peers))
        if (p->has_key && (key? sodium_memcmp (p->key, key, MESH_KEY_SIZE) == 0
                              : !mesh_security_key_ok (self->security, p->key)))
            zlistx_add_end (cut, p);
    for (mesh_peer_t *p = (mesh_peer_t *) zlistx_first (cut); p;
         p = (mesh_peer_t *) zlistx_next (cut)) {
        if (key)
            mesh_log (MESH_LOG_WARNING, self->name, "key %s revoked: cutting %s (%s)",
                      z85, p->name, p->hex);
        mesh_security_cut (self->security, &p->conn);
        mesh_node_remove_peer (self, p, "revoked");
    }
    zlistx_destroy (&cut);
}

void
mesh_node_security_tick (mesh_node_t *self, int64_t now)
{
    int closed [MESH_CLOSED_FDS];
    size_t nclosed = 0;
    bool rescan = mesh_security_tick (self->security, now, closed, MESH_CLOSED_FDS, &nclosed);
    for (size_t i = 0; i < nclosed; i++)
        for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p;
             p = (mesh_peer_t *) zhashx_next (self->peers))
            mesh_security_forget_fd (&p->conn, closed [i]);
    if (!rescan)
        return;
    uint8_t revoked [MESH_MAX_REVOKED * MESH_KEY_SIZE];
    //  stat of every file without the lock: the data path goes on
    pthread_mutex_unlock (&self->lock);
    int count = mesh_security_rescan (self->security, revoked, MESH_MAX_REVOKED);
    pthread_mutex_lock (&self->lock);
    mesh_security_rescanned (self->security, count);
    for (int i = 0; i < count && i < MESH_MAX_REVOKED && !self->stopping; i++) {
        s_remove_keyed (self, revoked + i * MESH_KEY_SIZE);
        //  last: whoever reads it sees the links already cut
        mesh_counters_add (self->counters, "trust.revoked", 1);
    }
    //  more than we were told about: check every peer's key
    if (count > MESH_MAX_REVOKED)
        s_remove_keyed (self, NULL);
}
