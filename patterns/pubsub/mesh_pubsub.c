/*  =========================================================================
    mesh_pubsub - publish-subscribe on the meshbus core

    Built on the public core API only (meshbus.h; czmq for containers).

    Routing at the source. Each node announces its subscriptions under the
    key "pubsub", one record per subscription in the shared codec: ["sub",
    mode, flags, durable, pattern] (docs/pubsub.md). A publisher keeps a
    table of remote subscribers that the node keeps up to date through
    on_announce ("peer X now announces Y", mesh_pubsub_on_announce), and
    a cache subject -> interested peers, so a publish costs one hash lookup plus one send per
    interested peer.

    Streams and loss. Every publish gets the next publisher id (env.id,
    contiguous, the key of the retained log). Each publisher->subscriber
    stream has its own sequence (env.seq), advanced for every message the
    subscriber's patterns match, whether it was sent or dropped (link full,
    peer gone). So the subscriber sees every loss as a jump in seq: it
    posts GAP with the count, asks the publisher to replay the ids between
    the last it got and the current one (REPLAY_REQ), and posts REPLAYED
    and GAP_LOST when the answer (REPLAY_END) says how many came back.
    Loss at the tail of a stream shows no later jump, so the publisher also
    tells each subscriber its stream position (POS) every tick when it
    moved, and when pub-sub is destroyed. The
    publisher remembers a gone subscriber's patterns and sequence for
    MESH_PUBSUB_KEEP_GONE ms, so a subscriber that was cut off and comes
    back sees the gap instead of a silent restart.

    Durable subscriptions carry a name; the subscriber acknowledges the last
    id it got (DACK) and the publisher keeps that position (in LMDB with a
    data dir). When a durable subscription shows up, the publisher sends
    what it retained after that position before anything new.

    Locking: pub-sub state has its own mutex; handlers are always called
    without it. Lock order: pub-sub, then the node's (inside core calls).

    Files. This one holds construction, settings, housekeeping and the
    local subscriptions; mesh_pubsub_route.c the per-message path (routes
    to remote subscribers, publish, incoming PUB and POS, local delivery);
    mesh_pubsub_replay.c the retained log served to subscribers (catch-up,
    replays), gap reports and durable acknowledgements. mesh_pubsub_int.h
    holds what they share.
    ========================================================================= */

#include "mesh_pubsub_int.h"
#include "mesh_top.h"

//  ---------------------------------------------------------------------
//  Small helpers

static void
s_remote_destroy (remote_t **remote_p)
{
    if (*remote_p) {
        free ((*remote_p)->subs);
        free ((*remote_p)->names);
        free (*remote_p);
        *remote_p = NULL;
    }
}

static void
s_sub_destroy (sub_t **sub_p)
{
    if (*sub_p) {
        free ((*sub_p)->pattern);
        free ((*sub_p)->durable);
        free (*sub_p);
        *sub_p = NULL;
    }
}

void
mesh_pubsub_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_route_free (void **item)
{
    ps_route_t *route = (ps_route_t *) *item;
    if (route && route->owner->hot_route == route)
        route->owner->hot_route = NULL;
    free (route);
    *item = NULL;
}

static void
s_last_value_free (void **item)
{
    last_value_t *cell = (last_value_t *) *item;
    if (cell && cell->owner->hot_last == &cell->id)
        cell->owner->hot_last = NULL;
    free (cell);
    *item = NULL;
}

//  One subscription as a record of our announcement (docs/pubsub.md,
//  "Announcement"): ["sub", mode, flags, durable name or "", pattern];
//  flags: L = last value, S<ms> = retained since, "-" = none
static void
s_announce_add (mesh_announcement_t *out, const sub_t *sub)
{
    char mode [8], flags [32];
    snprintf (mode, sizeof mode, "%d", sub->opts.mode);
    snprintf (flags, sizeof flags, "%s", sub->opts.last_value? "L": "");
    if (sub->opts.since_ms)
        snprintf (flags + strlen (flags), sizeof flags - strlen (flags), "S%llu",
                  (unsigned long long) sub->opts.since_ms);
    const char *fields [] = {
        "sub", mode, *flags? flags: "-", sub->durable? sub->durable: "", sub->pattern
    };
    mesh_announcement_add (out, fields, 5);     //  names are subjects: they fit
}

//  Our subscriptions announced. A new one is appended to what was
//  announced (added, one record: 10 000 subscriptions cost 10 000 appends,
//  not 10 000 lists); a removal writes the list again. The node sends
//  peers only what changed (docs/protocol.md, "Announcement deltas").
static void
s_announce (mesh_pubsub_t *self, const sub_t *added)
{
    if (!added || !self->announced) {
        mesh_announcement_destroy (&self->announced);
        self->announced = mesh_announcement_new ();
        for (sub_t *sub = (sub_t *) zlistx_first (self->subs); self->announced && sub;
             sub = (sub_t *) zlistx_next (self->subs))
            s_announce_add (self->announced, sub);
    }
    else
        s_announce_add (self->announced, added);
    if (self->announced)
        mesh_node_announce (self->node, MESH_PUBSUB_KEY, mesh_announcement_data (self->announced),
                            mesh_announcement_size (self->announced));
}

//  Housekeeping: rebuild when peers changed (so catch-up happens even on
//  an idle publisher), expire gone subscribers, trim the log, send DACKs.
static void
s_tick (mesh_node_t *node, void *arg)
{
    (void) node;
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    pthread_mutex_lock (&self->lock);
    mesh_pubsub_rebuild (self);
    mesh_pubsub_expire (self);
    mesh_pubsub_report_positions (self);
    mesh_retain_tick (self->retain);
    if (self->meta) {
        char value [32];
        snprintf (value, sizeof value, "%llu", (unsigned long long) self->pub_seq);
        mesh_store_meta_set (self->meta, "pub_seq", value);
        mesh_store_flush (self->meta);
    }
    int64_t now = (int64_t) mesh_clock_ms ();
    bool dack = now >= self->next_dack;
    if (dack)
        self->next_dack = now + MESH_PUBSUB_DACK_IVL;
    uint64_t received = self->received, published = self->published;
    self->received = 0;
    self->published = 0;
    pthread_mutex_unlock (&self->lock);
    if (received)
        mesh_pubsub_count (self, NULL, "pubsub.received", received);
    if (published)
        mesh_pubsub_count (self, NULL, "pubsub.published", published);
    if (dack)
        mesh_pubsub_send_dacks (self);
}

//  ---------------------------------------------------------------------
//  Construction

//  One message of a kind we own; a published message first, it is the
//  one that comes by the million
static void
s_on_message (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    switch (mesh_msg_kind (msg)) {
        case MESH_KIND_PUB:         mesh_pubsub_on_pub (node, msg, arg); break;
        case MESH_KIND_REPLAY_REQ:  mesh_pubsub_on_replay_req (node, msg, arg); break;
        case MESH_KIND_REPLAY_END:  mesh_pubsub_on_replay_end (node, msg, arg); break;
        case MESH_KIND_DACK:        mesh_pubsub_on_dack (node, msg, arg); break;
        default:                    mesh_pubsub_on_pos (node, msg, arg); break;
    }
}

static void
s_destroy (void *self)
{
    mesh_pubsub_t *pubsub = (mesh_pubsub_t *) self;
    mesh_pubsub_destroy (&pubsub);
}

//  Our figures for a STATS answer (docs/observe.md): the most active
//  local subscriptions with what each received (a viewer makes rates of
//  two answers), how many there are, and what we route to
static void
s_stats (void *arg, mesh_stats_t *out)
{
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    mesh_top_t top = { .count = 0 };
    if (mesh_stats_lock (&self->lock, out))
        return;
    for (sub_t *sub = (sub_t *) zlistx_first (self->subs); sub;
         sub = (sub_t *) zlistx_next (self->subs))
        mesh_top_offer (&top, sub->received, (uint64_t) sub->id, sub);
    mesh_stats_open (out, "subscriptions", '[');
    for (size_t i = 0; i < top.count; i++) {
        const sub_t *sub = (const sub_t *) top.rows [i].item;
        mesh_stats_open (out, NULL, '{');
        mesh_stats_uint (out, "id", (uint64_t) sub->id);
        mesh_stats_str (out, "pattern", sub->pattern);
        mesh_stats_str (out, "durable", sub->durable? sub->durable: "");
        mesh_stats_uint (out, "received", sub->received);
        mesh_stats_close (out);
    }
    mesh_stats_close (out);
    mesh_top_totals (&top, out, "subscriptions");
    mesh_stats_uint (out, "remote_subscriptions", mesh_sublist_size (self->remote_subs));
    mesh_stats_uint (out, "streams", zhashx_size (self->streams));
    pthread_mutex_unlock (&self->lock);
}

static const mesh_pattern_t s_pubsub_ops = {
    .name         = "pubsub",
    .kinds        = { MESH_KIND_PUB, MESH_KIND_REPLAY_REQ, MESH_KIND_REPLAY_END,
                      MESH_KIND_DACK, MESH_KIND_POS, 0 },
    .on_message   = s_on_message,
    .tick_ms      = MESH_PUBSUB_TICK,
    .on_tick      = s_tick,             //  sync, expire, trim, DACKs
    .announce_key = MESH_PUBSUB_KEY,
    .on_announce  = mesh_pubsub_on_announce,    //  a peer's subscriptions changed
    .destroy      = s_destroy,
    .stats        = s_stats,            //  subscriptions, for STATS answers
};

mesh_pubsub_t *
mesh_pubsub_new (mesh_node_t *node)
{
    assert (node);
    mesh_pubsub_t *self = (mesh_pubsub_t *) zmalloc (sizeof (mesh_pubsub_t));
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    self->subs = zlistx_new ();
    self->local = mesh_sublist_new ();
    self->remote_subs = mesh_sublist_new ();
    self->subs_gen = 1;         //  hot_match_gen 0 never matches
    zlistx_set_destructor (self->subs, (zlistx_destructor_fn *) s_sub_destroy);
    self->remotes = zhashx_new ();
    zhashx_set_destructor (self->remotes, (zhashx_destructor_fn *) s_remote_destroy);
    self->routes = zhashx_new ();
    zhashx_set_destructor (self->routes, s_route_free);
    self->streams = zhashx_new ();
    zhashx_set_destructor (self->streams, mesh_pubsub_free);
    zhashx_set_key_hasher (self->streams, mesh_id_hash);     //  per message, by publisher id
    self->durable_pos = zhashx_new ();
    zhashx_set_destructor (self->durable_pos, mesh_pubsub_free);
    self->last_values = zhashx_new ();
    zhashx_set_destructor (self->last_values, s_last_value_free);
    self->queue = zlistx_new ();
    zlistx_set_destructor (self->queue, (zlistx_destructor_fn *) mesh_msg_destroy);
    self->ret_count = 100000;
    self->ret_bytes = 64 * 1024 * 1024;
    self->ret_age = 10 * 60 * 1000;
    self->send_timeout = 5000;
    self->retain = mesh_retain_new (self->ret_count, self->ret_bytes, self->ret_age, NULL);
    self->plugin = mesh_node_register (node, &s_pubsub_ops, self);
    if (!self->plugin) {
        mesh_pubsub_destroy (&self);
        return NULL;
    }
    return self;
}

void
mesh_pubsub_destroy (mesh_pubsub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mesh_pubsub_t *self = *self_p;
    pthread_mutex_lock (&self->lock);
    mesh_pubsub_report_positions (self);      //  so a subscriber sees loss at the end
    pthread_mutex_unlock (&self->lock);
    mesh_pubsub_send_dacks (self);            //  so a durable subscriber resumes exactly here
    if (self->received)             //  what no tick has counted yet
        mesh_pubsub_count (self, NULL, "pubsub.received", self->received);
    if (self->published)
        mesh_pubsub_count (self, NULL, "pubsub.published", self->published);
    //  the node may outlive us: stop it calling into freed memory
    mesh_node_unregister (&self->plugin);
    mesh_retain_destroy (&self->retain);
    mesh_store_destroy (&self->store);
    mesh_store_destroy (&self->meta);
    zlistx_destroy (&self->subs);
    zhashx_destroy (&self->routes);
    zhashx_destroy (&self->remotes);
    mesh_sublist_destroy (&self->local);
    mesh_announcement_destroy (&self->announced);
    mesh_sublist_destroy (&self->remote_subs);
    zhashx_destroy (&self->streams);
    zhashx_destroy (&self->durable_pos);
    zhashx_destroy (&self->last_values);
    zlistx_destroy (&self->queue);
    free (self->data_dir);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

mesh_node_t *
mesh_pubsub_node (mesh_pubsub_t *self)
{
    return self->node;
}

int
mesh_pubsub_set_data_dir (mesh_pubsub_t *self, const char *dir)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    if (self->pub_seq || self->store)
        rc = mesh_set_error (MESH_ESTATE, "data dir: set it once, before the first publish");
    else {
        self->store = mesh_store_new (dir, "pubsub-log", MESH_STORE_GROUP);
        self->meta = self->store? mesh_store_new (dir, "pubsub-meta", MESH_STORE_GROUP): NULL;
        if (!self->store || !self->meta) {
            mesh_store_destroy (&self->store);
            rc = -1;            //  the store said why
        }
        else {
            self->data_dir = strdup (dir);
            mesh_retain_destroy (&self->retain);
            self->retain = mesh_retain_new (self->ret_count, self->ret_bytes, self->ret_age,
                                            self->store);
            char *seq = mesh_store_meta_get (self->meta, "pub_seq");
            uint64_t last = mesh_store_last (self->store);
            self->pub_seq = seq? strtoull (seq, NULL, 10): 0;
            if (last > self->pub_seq)
                self->pub_seq = last;
            free (seq);
        }
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
mesh_pubsub_set_retention (mesh_pubsub_t *self, size_t count, size_t bytes, int age_ms)
{
    assert (self);
    if (count < 1 || bytes < 1024 || age_ms < 1)
        return -1;
    pthread_mutex_lock (&self->lock);
    self->ret_count = count;
    self->ret_bytes = bytes;
    self->ret_age = age_ms;
    mesh_retain_destroy (&self->retain);
    self->retain = mesh_retain_new (count, bytes, age_ms, self->store);
    pthread_mutex_unlock (&self->lock);
    return 0;
}

int
mesh_pubsub_set_send_timeout (mesh_pubsub_t *self, int timeout_ms)
{
    assert (self);
    if (timeout_ms < 0)
        return -1;
    self->send_timeout = timeout_ms;
    return 0;
}

//  The handler of subscriptions made without one: keep a copy for
//  mesh_pubsub_recv, within a bound.
static void
s_enqueue (mesh_pubsub_t *self, const mesh_msg_t *msg, void *arg)
{
    (void) arg;
    pthread_mutex_lock (&self->lock);
    bool full = zlistx_size (self->queue) >= MESH_PUBSUB_QUEUE_MAX;
    mesh_msg_t *copy = full? NULL: mesh_msg_dup (msg);
    if (copy)
        zlistx_add_end (self->queue, copy);
    pthread_mutex_unlock (&self->lock);
    if (!copy)
        mesh_pubsub_count (self, mesh_msg_sender (msg), "pubsub.dropped.queue-full", 1);
}

mesh_msg_t *
mesh_pubsub_recv (mesh_pubsub_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = (int64_t) mesh_clock_ms () + timeout_ms;
    while (true) {
        pthread_mutex_lock (&self->lock);
        mesh_msg_t *msg = (mesh_msg_t *) zlistx_detach (self->queue, NULL);
        pthread_mutex_unlock (&self->lock);
        if (msg)
            return msg;
        int64_t left = timeout_ms < 0? 100: deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0) {
            mesh_set_error (MESH_ETIMEDOUT, "no message before the timeout");
            return NULL;
        }
        if (mesh_node_dispatch (self->node, left < 100? (int) left: 100) < 0)
            return NULL;
    }
}

int
mesh_subscribe (mesh_pubsub_t *self, const char *pattern, const mesh_sub_opts_t *opts,
                mesh_sub_fn *fn, void *arg)
{
    assert (self);
    if (!fn) {
        fn = s_enqueue;
        arg = NULL;
    }
    if (!pattern || !mesh_pattern_valid (pattern))
        return mesh_set_error (MESH_EINVAL, "bad pattern: tokens must be non-empty words, "
                               "* or #, at most 255 bytes");
    if (opts && ((opts->mode != MESH_SUB_DROP && opts->mode != MESH_SUB_BLOCK)
              || (opts->durable && (!*opts->durable || strlen (opts->durable) > MESH_MAX_SUBJECT
                                 || strpbrk (opts->durable, "\t\n")))))
        return mesh_set_error (MESH_EINVAL, "bad subscription options");
    sub_t *sub = (sub_t *) zmalloc (sizeof (sub_t));
    sub->pattern = strdup (pattern);
    if (opts)
        sub->opts = *opts;
    sub->durable = opts && opts->durable? strdup (opts->durable): NULL;
    sub->opts.durable = NULL;
    sub->fn = fn;
    sub->arg = arg;
    pthread_mutex_lock (&self->lock);
    //  what every peer accepts (MESH_PUBSUB_MAX_SUBS): one more would be
    //  refused at each of them, so it is refused here, where it is seen
    if (zlistx_size (self->subs) >= MESH_PUBSUB_MAX_SUBS
    ||  mesh_sublist_insert (self->local, sub->pattern, sub)) {
        bool full = zlistx_size (self->subs) >= MESH_PUBSUB_MAX_SUBS;
        pthread_mutex_unlock (&self->lock);
        mesh_pubsub_count (self, NULL, "pubsub.subscribe.refused", 1);
        s_sub_destroy (&sub);
        if (full) {
            char why [128];
            snprintf (why, sizeof why, "at most %d subscriptions per node (what every "
                      "peer accepts)", MESH_PUBSUB_MAX_SUBS);
            return mesh_set_error (MESH_EFULL, why);
        }
        return mesh_set_error (MESH_ESYS, "no memory for a subscription");
    }
    sub->id = ++self->next_sub;
    zlistx_add_end (self->subs, sub);
    self->subs_gen++;
    s_announce (self, sub);
    int id = sub->id;
    pthread_mutex_unlock (&self->lock);
    return id;
}

int
mesh_unsubscribe (mesh_pubsub_t *self, int sub_id)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    int rc = -1;
    for (sub_t *sub = (sub_t *) zlistx_first (self->subs); sub;
         sub = (sub_t *) zlistx_next (self->subs))
        if (sub->id == sub_id) {
            mesh_sublist_remove (self->local, sub->pattern, sub);
            zlistx_delete (self->subs, zlistx_cursor (self->subs));
            self->subs_gen++;
            rc = 0;
            break;
        }
    if (rc == 0)
        s_announce (self, NULL);
    pthread_mutex_unlock (&self->lock);
    return rc;
}
