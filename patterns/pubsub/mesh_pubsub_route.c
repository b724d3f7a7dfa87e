/*  =========================================================================
    mesh_pubsub_route - the per-message path of publish-subscribe

    Publisher side: the table of remote subscribers kept from their
    announcements, the routing cache subject -> interested peers, publish
    (retain, send to each hop, deliver locally). Subscriber side: an
    incoming PUB or POS advances its publisher's stream and reveals gaps,
    and delivery runs the matching handlers. Kept in one file so that the
    compiler can inline what runs per message; what runs on a gap or a
    replay is in mesh_pubsub_replay.c. The design is described at the top
    of mesh_pubsub.c.
    ========================================================================= */

#include "mesh_pubsub_int.h"

//  ---------------------------------------------------------------------
//  Publisher side

//  One "sub" record of a peer's announcement into rsub, its strings
//  copied to *names. Input from the network: false when a field is
//  missing or out of range.
static bool
s_parse_sub (const mesh_record_t *record, rsub_t *rsub, char **names)
{
    if (record->fields != 5)
        return false;
    const char *mode = record->field [1], *flags = record->field [2];
    const char *durable = record->field [3], *pattern = record->field [4];
    if ((strcmp (mode, "0") && strcmp (mode, "1"))
    ||  strlen (durable) > MESH_MAX_SUBJECT || !mesh_pattern_valid (pattern))
        return false;
    rsub->mode = mode [0] - '0';
    rsub->last_value = strchr (flags, 'L') != NULL;
    const char *since = strchr (flags, 'S');
    rsub->since = since? strtoull (since + 1, NULL, 10): 0;
    size_t plen = strlen (pattern) + 1, dlen = strlen (durable) + 1;
    memcpy (*names, pattern, plen);
    rsub->pattern = *names;
    memcpy (*names + plen, durable, dlen);
    rsub->durable = *names + plen;
    *names += plen + dlen;
    return true;
}

//  Did the remote already have this subscription (same durable name, same
//  pattern) before its announcement changed? Then it is caught up.
static bool
s_rsub_known (const rsub_t *subs, size_t count, const rsub_t *rsub)
{
    for (size_t i = 0; i < count; i++)
        if (streq (subs [i].durable, rsub->durable) && streq (subs [i].pattern, rsub->pattern))
            return true;
    return false;
}

//  A remote's subscriptions leave the routing trie (before they are freed)
void
mesh_pubsub_remote_unroute (mesh_pubsub_t *self, remote_t *remote)
{
    for (size_t i = 0; i < remote->sub_count; i++)
        mesh_sublist_remove (self->remote_subs, remote->subs [i].pattern, &remote->subs [i]);
}

//  A peer's subscriptions changed (from mesh_plugin_sync, lock held). now
//  NULL: it left (its remote is kept a while, so that its stream goes on
//  if it comes back) or withdrew them (it stays, subscribed to nothing).
//  A new durable, last-value or since subscription is caught up.
void
mesh_pubsub_on_announce (mesh_node_t *node, void *arg, const char *peer,
                         const mesh_announcement_t *before, const mesh_announcement_t *now)
{
    (void) before;          //  the remote's subscriptions are what it had
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    remote_t *remote = (remote_t *) zhashx_lookup (self->remotes, peer);
    if (!now && !remote)
        return;
    if (!remote) {
        remote = (remote_t *) calloc (1, sizeof (remote_t));
        snprintf (remote->peer, sizeof remote->peer, "%s", peer);
        zhashx_insert (self->remotes, peer, remote);
    }
    int state = now? MESH_PEER_ALIVE: mesh_node_peer_state (node, peer);
    if (state != MESH_PEER_ALIVE && state != MESH_PEER_SUSPECT) {
        remote->alive = false;
        remote->gone_since = (int64_t) mesh_clock_ms ();
        return;
    }
    remote->alive = true;
    //  one block for every name: its size from the records themselves
    size_t records = now? mesh_announcement_count (now): 0, taken = 0, bad = 0, bytes = 1;
    for (size_t i = 0; i < records; i++) {
        const mesh_record_t *record = mesh_announcement_record (now, i);
        if (record->fields == 5 && streq (record->field [0], "sub"))
            bytes += strlen (record->field [3]) + strlen (record->field [4]) + 2;
    }
    rsub_t *subs = (rsub_t *) calloc (records + 1, sizeof (rsub_t));
    char *names = (char *) malloc (bytes), *at = names;
    if (!subs || !names) {
        free (subs);
        free (names);
        mesh_pubsub_count (self, peer, "pubsub.subscriptions.no-memory", 1);
        return;
    }
    for (size_t i = 0; i < records; i++) {
        const mesh_record_t *record = mesh_announcement_record (now, i);
        if (strcmp (record->field [0], "sub"))
            continue;           //  a record of a later version: not ours to read
        if (taken == MESH_PUBSUB_MAX_SUBS)
            mesh_pubsub_count (self, peer, "pubsub.subscriptions.refused", 1);
        else
        if (s_parse_sub (record, &subs [taken], &at)) {
            subs [taken].remote = remote;
            subs [taken].index = taken;
            taken++;
        }
        else
            bad++;
    }
    if (bad)
        mesh_pubsub_count (self, peer, "pubsub.malformed.subscription", bad);
    rsub_t *old = remote->subs;
    char *old_names = remote->names;
    size_t old_count = remote->sub_count;
    mesh_pubsub_remote_unroute (self, remote);
    remote->subs = subs;
    remote->names = names;
    remote->sub_count = taken;
    for (size_t i = 0; i < taken; i++)
        if (mesh_sublist_insert (self->remote_subs, subs [i].pattern, &subs [i]))
            mesh_pubsub_count (self, peer, "pubsub.subscriptions.no-memory", 1);
    for (size_t i = 0; i < taken; i++)
        if ((subs [i].durable [0] || subs [i].last_value || subs [i].since)
        &&  !s_rsub_known (old, old_count, &subs [i]))
            mesh_pubsub_catch_up (self, remote, &subs [i]);
    free (old);
    free (old_names);
}

//  Bring the remote table up to date with the peers' announcements: one
//  atomic compare when nothing moved. Routes go when a remote changed.
//  Lock held.
void
mesh_pubsub_rebuild (mesh_pubsub_t *self)
{
    if (mesh_plugin_sync (self->plugin))
        zhashx_purge (self->routes);
}

//  Forget subscribers gone for too long
void
mesh_pubsub_expire (mesh_pubsub_t *self)
{
    int64_t now = (int64_t) mesh_clock_ms ();
    zlistx_t *old = zlistx_new ();
    for (remote_t *r = (remote_t *) zhashx_first (self->remotes); r;
         r = (remote_t *) zhashx_next (self->remotes))
        if (!r->alive && now - r->gone_since > MESH_PUBSUB_KEEP_GONE)
            zlistx_add_end (old, r->peer);
    for (char *peer = (char *) zlistx_first (old); peer; peer = (char *) zlistx_next (old)) {
        mesh_pubsub_remote_unroute (self, (remote_t *) zhashx_lookup (self->remotes, peer));
        zhashx_delete (self->remotes, peer);
        zhashx_purge (self->routes);
    }
    zlistx_destroy (&old);
}

typedef struct {
    mesh_pubsub_t *self;
    ps_route_t *route;
} route_build_t;

//  One matching remote subscription: its remote gets one hop, whose mode
//  is that of its first matching subscription (as a scan in order gave)
static void
s_route_hit (void *value, void *arg)
{
    rsub_t *rsub = (rsub_t *) value;
    route_build_t *build = (route_build_t *) arg;
    remote_t *r = rsub->remote;
    route_hop_t *hops = build->route->hops;
    if (r->route_stamp != build->self->route_stamp) {
        r->route_stamp = build->self->route_stamp;
        r->route_hop = build->route->count++;
        hops [r->route_hop] = (route_hop_t) { r, rsub->mode, rsub->index };
    }
    else
    if (rsub->index < hops [r->route_hop].index)
        hops [r->route_hop] = (route_hop_t) { r, rsub->mode, rsub->index };
}

//  The peers whose subscriptions match subject: from the cache of recent
//  subjects, else from the trie of every remote subscription (the cost
//  does not grow with their number), then cached
static ps_route_t *
s_route (mesh_pubsub_t *self, const char *subject)
{
    ps_route_t *route = (ps_route_t *) zhashx_lookup (self->routes, subject);
    if (route)
        return route;
    size_t cap = zhashx_size (self->remotes);
    route = (ps_route_t *) malloc (sizeof (ps_route_t) + cap * sizeof (route_hop_t));
    route->owner = self;
    route->count = 0;
    self->route_stamp++;
    route_build_t build = { self, route };
    mesh_sublist_match (self->remote_subs, subject, s_route_hit, &build);
    if (zhashx_size (self->routes) >= MESH_PUBSUB_CACHE_MAX)
        zhashx_purge (self->routes);
    zhashx_insert (self->routes, subject, route);
    return route;
}

static size_t s_deliver_local (mesh_pubsub_t *self, const mesh_head_t *head,
                               const void *body, size_t size, uint64_t id);

//  Drop last values that are no longer retained. Lock held.
static void
s_prune_last_values (mesh_pubsub_t *self)
{
    uint64_t first = mesh_retain_first (self->retain);
    zlistx_t *stale = zlistx_new ();
    for (uint64_t *id = (uint64_t *) zhashx_first (self->last_values); id;
         id = (uint64_t *) zhashx_next (self->last_values))
        if (*id < first || !first)
            zlistx_add_end (stale, (void *) zhashx_cursor (self->last_values));
    for (char *subject = (char *) zlistx_first (stale); subject;
         subject = (char *) zlistx_next (stale))
        zhashx_delete (self->last_values, subject);
    zlistx_destroy (&stale);
}

//  A large body shared by every send of one publish: the link frames
//  reference it (libzmq zero-copy), the last one done releases it.
typedef struct {
    int refs;
    void *data;
    mesh_free_fn *free_fn;      //  the application's, or free for our copy
    void *hint;
} shared_body_t;

static void
s_shared_release (void *data, void *hint)
{
    (void) data;
    shared_body_t *shared = (shared_body_t *) hint;
    if (shared && __atomic_sub_fetch (&shared->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        if (shared->free_fn)
            shared->free_fn (shared->data, shared->hint);
        free (shared);
    }
}

static void
s_free_copy (void *data, void *hint)
{
    (void) hint;
    free (data);
}

static int
s_send_body (mesh_pubsub_t *self, const char *peer, const mesh_head_t *head,
             const void *body, size_t size, shared_body_t *shared)
{
    if (!shared)
        return mesh_node_send (self->node, peer, head, body, size);
    __atomic_add_fetch (&shared->refs, 1, __ATOMIC_RELAXED);
    //  send_zc releases its reference even when it fails
    return mesh_node_send_zc (self->node, peer, head, shared->data, size,
                              s_shared_release, shared);
}

static int s_publish (mesh_pubsub_t *self, const mesh_head_t *head_in, const void *body,
                      size_t size, shared_body_t *shared);

int
mesh_publish_ex (mesh_pubsub_t *self, const mesh_head_t *head_in, const void *body, size_t size)
{
    assert (self);
    //  bodies of 64 KiB and more: one copy for all subscribers, not one each
    shared_body_t *shared = NULL;
    if (size >= MESH_PUBSUB_ZC_MIN) {
        shared = (shared_body_t *) malloc (sizeof (shared_body_t));
        void *copy = shared? malloc (size): NULL;
        if (!copy) {
            free (shared);
            return mesh_set_error (MESH_ESYS, "out of memory");
        }
        memcpy (copy, body, size);
        *shared = (shared_body_t) { 1, copy, s_free_copy, NULL };
        body = copy;
    }
    int rc = s_publish (self, head_in, body, size, shared);
    s_shared_release (NULL, shared);
    return rc;
}

int
mesh_publish_zc (mesh_pubsub_t *self, const mesh_head_t *head, void *data, size_t size,
                 mesh_free_fn *free_fn, void *hint)
{
    assert (self);
    shared_body_t *shared = (shared_body_t *) malloc (sizeof (shared_body_t));
    if (!shared) {
        if (free_fn)
            free_fn (data, hint);
        return mesh_set_error (MESH_ESYS, "out of memory");
    }
    *shared = (shared_body_t) { 1, data, free_fn, hint };
    int rc = s_publish (self, head, data, size, shared);
    s_shared_release (NULL, shared);
    return rc;
}

static int
s_publish (mesh_pubsub_t *self, const mesh_head_t *head_in, const void *body, size_t size,
           shared_body_t *shared)
{
    assert (head_in);
    pthread_mutex_lock (&self->lock);
    //  the subject last published was valid then: no need to check again
    bool hot = head_in->subject && self->hot_subject [0]
            && strcmp (head_in->subject, self->hot_subject) == 0;
    if (!hot && (!head_in->subject || !mesh_subject_valid (head_in->subject))) {
        pthread_mutex_unlock (&self->lock);
        mesh_node_count (self->node, NULL, "pubsub.publish.bad-subject", 1);
        return mesh_set_error (MESH_EINVAL, "bad subject: tokens must be non-empty, "
                               "without * or #, at most 255 bytes");
    }
    //  headers, content type or a big body: checked here, or a message
    //  breaking a limit would be dropped for each subscriber as a send error
    if ((head_in->header_count || head_in->ctype || size > 65535)
    &&  mesh_head_check (head_in, size)) {
        pthread_mutex_unlock (&self->lock);
        mesh_node_count (self->node, NULL, "pubsub.publish.too-big", 1);
        return -1;
    }
    if (!hot) {
        snprintf (self->hot_subject, sizeof self->hot_subject, "%s", head_in->subject);
        self->hot_route = NULL;
        self->hot_last = NULL;
    }
    mesh_head_t head = *head_in;
    head.kind = KIND_PUB;
    head.flags = 0;
    mesh_pubsub_rebuild (self);
    uint64_t id = ++self->pub_seq;
    head.id = id;
    if (mesh_retain_add (self->retain, id, &head, body, size) == 0) {
        uint64_t *last = self->hot_last;
        if (!last)
            last = (uint64_t *) zhashx_lookup (self->last_values, head.subject);
        if (!last) {
            last_value_t *cell = (last_value_t *) malloc (sizeof (last_value_t));
            cell->owner = self;
            last = &cell->id;
            zhashx_insert (self->last_values, head.subject, cell);
        }
        *last = id;
        self->hot_last = last;
        //  one entry per subject ever published: forget those whose message
        //  left the window, so many distinct subjects do not grow memory
        if (zhashx_size (self->last_values) > 2 * self->ret_count)
            s_prune_last_values (self);
    }
    ps_route_t *route = self->hot_route? self->hot_route: s_route (self, head.subject);
    self->hot_route = route;
    int sent = 0;
    for (size_t i = 0; i < route->count; i++) {
        remote_t *remote = route->hops [i].remote;
        head.seq = ++remote->seq;       //  advanced even if dropped: the gap tells
        if (!remote->alive) {
            mesh_pubsub_count (self, remote->peer, "pubsub.dropped.peer-gone", 1);
            continue;
        }
        int rc = s_send_body (self, remote->peer, &head, body, size, shared);
        if (rc && mesh_errno () == MESH_EAGAIN && route->hops [i].mode == MESH_SUB_BLOCK) {
            //  back-pressure: wait for the link, without our lock so the
            //  subscriber side of this node keeps working
            char peer [33];
            memcpy (peer, remote->peer, sizeof peer);
            pthread_mutex_unlock (&self->lock);
            rc = mesh_node_wait_writable (self->node, peer, self->send_timeout);
            pthread_mutex_lock (&self->lock);
            if (rc == 0)
                rc = s_send_body (self, peer, &head, body, size, shared);
            route = s_route (self, head.subject);   //  may have been rebuilt
        }
        if (rc == 0)
            sent++;
        else
            mesh_pubsub_count (self, remote->peer, mesh_errno () == MESH_EAGAIN
                               ? "pubsub.dropped.hwm": "pubsub.dropped.send-error", 1);
    }
    self->published++;
    pthread_mutex_unlock (&self->lock);
    sent += (int) s_deliver_local (self, &head, body, size, id);
    return sent;
}

int
mesh_publish (mesh_pubsub_t *self, const char *subject, const void *body, size_t size)
{
    mesh_head_t head = { .subject = subject };
    return mesh_publish_ex (self, &head, body, size);
}

size_t
mesh_pubsub_subscribers (mesh_pubsub_t *self, const char *subject)
{
    assert (self);
    if (!subject || !mesh_subject_valid (subject))
        return 0;
    pthread_mutex_lock (&self->lock);
    mesh_pubsub_rebuild (self);
    ps_route_t *route = s_route (self, subject);
    size_t count = 0;
    for (size_t i = 0; i < route->count; i++)
        count += route->hops [i].remote->alive;
    if (mesh_sublist_match (self->local, subject, NULL, NULL))
        count++;                //  one node counts once
    pthread_mutex_unlock (&self->lock);
    return count;
}

int
mesh_pubsub_wait_subscribers (mesh_pubsub_t *self, const char *subject, size_t count,
                              int timeout_ms)
{
    int64_t deadline = (int64_t) mesh_clock_ms () + timeout_ms;
    while (mesh_pubsub_subscribers (self, subject) < count) {
        int64_t left = deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0)
            return mesh_set_error (MESH_ETIMEDOUT, "too few subscribers before the timeout");
        mesh_node_dispatch (self->node, left < 50? (int) left: 50);
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Subscriber side

//  The local subscriptions one subject matched, collected from the trie
typedef struct {
    int id;
    mesh_sub_fn *fn;
    void *arg;
    sub_t *sub;                 //  valid while the lock is held
} hit_t;

typedef struct {
    hit_t *hits;                //  first a buffer on the stack, then the heap
    size_t count, cap;
    bool heap;
} hits_t;

static void
s_local_hit (void *value, void *arg)
{
    sub_t *sub = (sub_t *) value;
    hits_t *found = (hits_t *) arg;
    if (found->count == found->cap) {
        size_t cap = found->cap * 2;
        hit_t *hits = (hit_t *) (found->heap? realloc (found->hits, cap * sizeof (hit_t))
                                            : malloc (cap * sizeof (hit_t)));
        if (!hits)
            return;             //  counted by the caller: fewer than matched
        if (!found->heap)
            memcpy (hits, found->hits, found->count * sizeof (hit_t));
        found->hits = hits;
        found->cap = cap;
        found->heap = true;
    }
    found->hits [found->count++] = (hit_t) { sub->id, sub->fn, sub->arg, sub };
    sub->received++;            //  lock held: the trie is matched under it
}

static int
s_hit_order (const void *a, const void *b)
{
    int x = ((const hit_t *) a)->id, y = ((const hit_t *) b)->id;
    return x < y? -1: x > y;
}

//  Is subscription id still there? Asked only when a handler changed the
//  subscriptions while others that matched were still to be called
static bool
s_still_subscribed (mesh_pubsub_t *self, int id)
{
    pthread_mutex_lock (&self->lock);
    bool found = false;
    for (sub_t *sub = (sub_t *) zlistx_first (self->subs); sub && !found;
         sub = (sub_t *) zlistx_next (self->subs))
        found = sub->id == id;
    pthread_mutex_unlock (&self->lock);
    return found;
}

//  Collect matching handlers under the lock (from the trie of local
//  subscriptions, in the order they were made), call them without it.
//  With locked, the caller holds the lock already; it is released either
//  way. A subscription that a handler removed is not called after.
static size_t
s_deliver_ex (mesh_pubsub_t *self, const mesh_msg_t *msg, bool locked)
{
    const char *subject = mesh_msg_subject (msg);
    if (!locked)
        pthread_mutex_lock (&self->lock);
    if (self->hot_match_gen == self->subs_gen
    &&  strcmp (subject, self->hot_match_subject) == 0) {
        mesh_sub_fn *fns [MESH_PUBSUB_HOT_MATCH];
        void *args [MESH_PUBSUB_HOT_MATCH];
        size_t count = self->hot_match_count;
        for (size_t i = 0; i < count; i++)
            self->hot_match_sub [i]->received++;
        memcpy (fns, self->hot_match_fn, count * sizeof fns [0]);
        memcpy (args, self->hot_match_arg, count * sizeof args [0]);
        pthread_mutex_unlock (&self->lock);
        for (size_t i = 0; i < count; i++)
            fns [i] (self, msg, args [i]);
        return count;
    }
    hit_t stack [16];
    hits_t found = { stack, 0, 16, false };
    size_t matched = mesh_sublist_match (self->local, subject, s_local_hit, &found);
    if (found.count > 1)
        qsort (found.hits, found.count, sizeof (hit_t), s_hit_order);
    size_t slen = strnlen (subject, MESH_MAX_SUBJECT + 1);
    if (found.count == matched && matched <= MESH_PUBSUB_HOT_MATCH && slen <= MESH_MAX_SUBJECT) {
        for (size_t i = 0; i < matched; i++) {
            self->hot_match_fn [i] = found.hits [i].fn;
            self->hot_match_arg [i] = found.hits [i].arg;
            self->hot_match_sub [i] = found.hits [i].sub;
        }
        self->hot_match_count = matched;
        memcpy (self->hot_match_subject, subject, slen + 1);
        self->hot_match_gen = self->subs_gen;
    }
    uint64_t gen = self->subs_gen;
    pthread_mutex_unlock (&self->lock);
    if (found.count < matched)
        mesh_pubsub_count (self, NULL, "pubsub.dropped.no-memory", matched - found.count);
    size_t delivered = 0;
    for (size_t i = 0; i < found.count; i++) {
        if (i && __atomic_load_n (&self->subs_gen, __ATOMIC_RELAXED) != gen
        &&  !s_still_subscribed (self, found.hits [i].id))
            continue;
        found.hits [i].fn (self, msg, found.hits [i].arg);
        delivered++;
    }
    if (found.heap)
        free (found.hits);
    return delivered;
}

static size_t
s_deliver (mesh_pubsub_t *self, const mesh_msg_t *msg)
{
    return s_deliver_ex (self, msg, false);
}

static size_t
s_deliver_local (mesh_pubsub_t *self, const mesh_head_t *head, const void *body,
                 size_t size, uint64_t id)
{
    if (zlistx_size (self->subs) == 0)
        return 0;
    if (self->depth >= MESH_PUBSUB_MAX_DEPTH) {
        mesh_pubsub_count (self, NULL, "pubsub.dropped.local-depth", 1);
        return 0;
    }
    mesh_head_t local = *head;
    local.id = id;
    mesh_msg_t *msg = mesh_msg_new (&local, body, size, mesh_node_id (self->node),
                                    mesh_node_name (self->node));
    if (!msg)
        return 0;
    self->depth++;
    size_t delivered = s_deliver (self, msg) > 0;
    self->depth--;
    mesh_msg_destroy (&msg);
    return delivered;
}

//  A message (or a POS, at_end) with stream seq and publisher id arrived:
//  work out the gap and the ids to ask for. Lock held.
static void
s_advance (mesh_pubsub_t *self, stream_t *stream, const char *peer, uint64_t seq,
           uint64_t id, bool at_end, uint64_t *gap, uint64_t *ask_from, uint64_t *ask_to)
{
    //  a POS says seq was the last sent; a message is seq itself
    uint64_t next = at_end? seq + 1: seq;
    if (stream->expected && next > stream->expected) {
        *gap = next - stream->expected;
        uint64_t last_missing = at_end? id: id - 1;
        //  a gap while a replay is under way gets its own request: the
        //  ranges never overlap (last_id moves past each gap) and the link
        //  keeps the answers in order, so the last REPLAY_END settles all
        if (stream->last_id && last_missing > stream->last_id) {
            *ask_from = stream->last_id + 1;
            *ask_to = last_missing;
            stream->gap_pending += *gap;
            stream->requests++;
        }
    }
    else
    if (stream->expected && next < stream->expected && !at_end) {
        //  the publisher restarted its stream (it forgot us, or restarted)
        mesh_pubsub_count (self, peer, "pubsub.stream.reset", 1);
    }
    if (!at_end || stream->expected)
        stream->expected = next + (at_end? 0: 1);
    if (id > stream->last_id)
        stream->last_id = id;
}

void
mesh_pubsub_on_pos (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    const char *peer = mesh_msg_sender (msg);
    uint64_t gap = 0, ask_from = 0, ask_to = 0;
    pthread_mutex_lock (&self->lock);
    stream_t *stream = (stream_t *) zhashx_lookup (self->streams, peer);
    if (stream)
        s_advance (self, stream, peer, mesh_msg_seq (msg), mesh_msg_id (msg), true,
                   &gap, &ask_from, &ask_to);
    pthread_mutex_unlock (&self->lock);
    mesh_pubsub_report_gap (self, node, peer, gap, ask_from, ask_to);
}

void
mesh_pubsub_on_pub (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    const char *peer = mesh_msg_sender (msg);
    const char *subject = mesh_msg_subject (msg);
    uint64_t seq = mesh_msg_seq (msg), id = mesh_msg_id (msg);
    bool replay = (mesh_msg_flags (msg) & FLAG_REPLAY) != 0;
    uint64_t gap = 0, ask_from = 0, ask_to = 0, received = 0;
    pthread_mutex_lock (&self->lock);
    //  streams live as long as pub-sub, so the hot pointer never dangles
    stream_t *stream = self->hot_stream;
    if (!stream || strcmp (self->hot_peer, peer) != 0)
        stream = (stream_t *) zhashx_lookup (self->streams, peer);
    //  a stream's subjects repeat: one checked on it before is valid
    if (!stream || !stream->subject [0] || strcmp (subject, stream->subject)) {
        if (!mesh_subject_valid (subject)) {
            pthread_mutex_unlock (&self->lock);
            mesh_pubsub_count (self, peer, "pubsub.malformed.subject", 1);
            return;
        }
        if (!stream) {
            stream = (stream_t *) calloc (1, sizeof (stream_t));
            zhashx_insert (self->streams, peer, stream);
        }
        snprintf (stream->subject, sizeof stream->subject, "%s", subject);
    }
    if (stream != self->hot_stream) {
        self->hot_stream = stream;
        snprintf (self->hot_peer, sizeof self->hot_peer, "%s", peer);
    }
    if (replay) {
        if (stream->gap_pending && !(mesh_msg_flags (msg) & FLAG_LAST_VALUE))
            stream->replayed++;
        mesh_pubsub_count (self, peer, "pubsub.received.replayed", 1);
    }
    else
        s_advance (self, stream, peer, seq, id, false, &gap, &ask_from, &ask_to);
    if (++self->received >= MESH_PUBSUB_COUNT_BATCH) {
        received = self->received;
        self->received = 0;
    }
    size_t delivered;
    if (gap == 0 && received == 0)
        delivered = s_deliver_ex (self, msg, true);     //  one lock for both
    else {
        pthread_mutex_unlock (&self->lock);
        mesh_pubsub_report_gap (self, node, peer, gap, ask_from, ask_to);
        if (received)
            mesh_pubsub_count (self, NULL, "pubsub.received", received);
        delivered = s_deliver (self, msg);
    }
    if (delivered == 0)
        mesh_pubsub_count (self, peer, "pubsub.dropped.no-subscriber", 1);
}
