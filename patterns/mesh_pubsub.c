/*  =========================================================================
    mesh_pubsub - publish-subscribe on the meshbus core

    Built on the public core API only (meshbus.h; czmq for containers).

    Routing at the source. Each node announces its subscriptions under the
    key "pubsub" (one line per subscription: "mode\tflags\tdurable\tpattern").
    A publisher keeps a table of remote subscribers rebuilt whenever the
    node's generation changes (ENTER, EXIT, UPDATE), and a cache subject ->
    interested peers, so a publish costs one hash lookup plus one send per
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
    ========================================================================= */

#include "meshbus.h"
#include "mesh_retain.h"
#include <czmq.h>
#include <pthread.h>

#define KIND_PUB            (MESH_KIND_PATTERN + 0)
#define KIND_REPLAY_REQ     (MESH_KIND_PATTERN + 1)
#define KIND_REPLAY_END     (MESH_KIND_PATTERN + 2)
#define KIND_DACK           (MESH_KIND_PATTERN + 3)
#define KIND_POS            (MESH_KIND_PATTERN + 4)     //  stream position: reveals loss at the tail
#define FLAG_REPLAY         MESH_FLAG_REPLAYED      //  resent from the retained log
#define FLAG_LAST_VALUE     MESH_FLAG_LAST_VALUE    //  last value of a subject, for a new subscriber

#define MESH_PUBSUB_KEY         "pubsub"
#define MESH_PUBSUB_MAX_SUBS    1024    //  subscriptions per peer we accept
#define MESH_PUBSUB_KEEP_GONE   60000   //  ms we remember a gone subscriber's stream
#define MESH_PUBSUB_CACHE_MAX   10000   //  subjects in the routing cache
#define MESH_PUBSUB_TICK        100     //  ms between housekeeping runs
#define MESH_PUBSUB_DACK_IVL    500     //  ms between durable acknowledgements
#define MESH_PUBSUB_MAX_DEPTH   8       //  nested local deliveries (publish from a handler)
#define MESH_PUBSUB_ZC_MIN      65536   //  bodies this big are shared by all sends, not copied
#define MESH_PUBSUB_HOT_MATCH   8       //  matches the delivery cache holds for one subject

typedef struct {
    int id;
    char *pattern;
    mesh_sub_opts_t opts;
    char *durable;
    mesh_sub_fn *fn;
    void *arg;
} sub_t;

//  A subscription a peer announced
typedef struct {
    char pattern [MESH_MAX_SUBJECT + 1];
    char durable [MESH_MAX_SUBJECT + 1];
    int mode;
    bool last_value;
    uint64_t since;             //  wants what was retained since this time
} rsub_t;

//  A remote subscriber, kept while it is gone for a while
typedef struct {
    char peer [33];
    rsub_t *subs;
    size_t sub_count;
    uint64_t seq;               //  last stream sequence used towards it
    uint64_t reported;          //  last seq told in a POS message
    bool alive;
    int64_t gone_since;         //  mono-ish ms (wall clock is fine here)
    char *announced;            //  the announcement text the subs came from
} remote_t;

//  One interested remote in a routing entry
typedef struct {
    remote_t *remote;
    int mode;
} route_hop_t;

typedef struct {
    mesh_pubsub_t *owner;       //  freeing a route clears the owner's hot_route
    size_t count;
    route_hop_t hops [];
} route_t;

//  A subject's last value: the id first, so it reads as a uint64_t *
typedef struct {
    uint64_t id;
    mesh_pubsub_t *owner;       //  freeing it clears the owner's hot_last
} last_value_t;

//  What a subscriber knows of one publisher's stream
typedef struct {
    uint64_t expected;          //  next seq, 0 = no message yet
    uint64_t last_id;           //  highest publisher id delivered
    uint64_t acked_id;          //  last id acknowledged for durable subs
    uint64_t gap_pending;       //  lost messages awaiting a replay answer
    uint64_t replayed;          //  replayed messages received for that
    uint64_t requests;          //  replay requests not answered yet
    char subject [MESH_MAX_SUBJECT + 1];    //  last subject checked valid on it
} stream_t;

struct _mesh_pubsub_t {
    mesh_node_t *node;
    pthread_mutex_t lock;
    zlistx_t *subs;             //  sub_t *, local subscriptions
    int next_sub;
    zhashx_t *remotes;          //  peer id -> remote_t *
    zhashx_t *routes;           //  subject -> route_t *
    uint64_t generation;
    zhashx_t *streams;          //  publisher id -> stream_t *
    stream_t *hot_stream;       //  the last stream a PUB came on: runs come from one
    char hot_peer [33];         //  publisher, so a compare saves a hash lookup
    uint64_t pub_seq;
    mesh_retain_t *retain;
    size_t ret_count, ret_bytes;
    int ret_age;
    char *data_dir;
    mesh_store_t *store;        //  retained log
    mesh_store_t *meta;         //  durable positions
    zhashx_t *durable_pos;      //  durable name -> uint64_t * (acked id)
    zhashx_t *last_values;      //  subject -> uint64_t * (last id)
    int send_timeout;
    int depth;                  //  local delivery nesting
    zlistx_t *queue;            //  mesh_msg_t *, for subscriptions without a handler
    int64_t next_dack;
    //  Per-message costs kept off the hot path. A publisher that repeats a
    //  subject skips its check and two hash lookups (hot_*); a route or
    //  last value being freed clears the pointer here. Messages received
    //  and published are counted here and added to "pubsub.received" and
    //  "pubsub.published" at every tick (and in batches, for received): a
    //  named counter per message costs the node's lock and a hash lookup.
    char hot_subject [MESH_MAX_SUBJECT + 1];
    route_t *hot_route;
    uint64_t *hot_last;
    uint64_t received;
    uint64_t published;
    //  Subscriber side: the subscriptions the last delivered subject
    //  matched. Subjects repeat, so matching every pattern again per
    //  message (~150 instructions at 100 B) is skipped while the subject
    //  and the subscription list (subs_gen) stay the same.
    uint64_t subs_gen;
    uint64_t hot_match_gen;     //  subs_gen the cache was filled at, 0 = empty
    char hot_match_subject [MESH_MAX_SUBJECT + 1];
    size_t hot_match_count;
    mesh_sub_fn *hot_match_fn [MESH_PUBSUB_HOT_MATCH];
    void *hot_match_arg [MESH_PUBSUB_HOT_MATCH];
};

#define MESH_PUBSUB_COUNT_BATCH 1024    //  received messages per counter update

//  ---------------------------------------------------------------------
//  Small helpers

static void
s_remote_destroy (remote_t **remote_p)
{
    if (*remote_p) {
        free ((*remote_p)->subs);
        free ((*remote_p)->announced);
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

static void
s_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_route_free (void **item)
{
    route_t *route = (route_t *) *item;
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

//  Streams are looked up per message by publisher id (32 random hex
//  chars): two 8-byte loads hash those as well as czmq's default byte
//  walk, which costs ~190 instructions a lookup.
static size_t
s_id_hash (const void *key)
{
    const char *text = (const char *) key;
    if (strnlen (text, 32) < 32) {
        size_t hash = 5381;
        while (*text)
            hash = hash * 33 ^ (uint8_t) *text++;
        return hash;
    }
    uint64_t a, b;
    memcpy (&a, text, 8);
    memcpy (&b, text + 16, 8);
    return (size_t) ((a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull >> 7);
}

static void
s_count (mesh_pubsub_t *self, const char *peer, const char *name, uint64_t delta)
{
    mesh_node_count (self->node, peer, name, delta);
}

//  Our subscriptions as announcement text
static void
s_announce (mesh_pubsub_t *self)
{
    zchunk_t *text = zchunk_new (NULL, 256);
    for (sub_t *sub = (sub_t *) zlistx_first (self->subs); sub;
         sub = (sub_t *) zlistx_next (self->subs)) {
        char line [2 * MESH_MAX_SUBJECT + 48], flags [32];
        //  flags: L = last value, S<ms> = retained since, - = none
        snprintf (flags, sizeof flags, "%s", sub->opts.last_value? "L": "");
        if (sub->opts.since_ms)
            snprintf (flags + strlen (flags), sizeof flags - strlen (flags), "S%llu",
                      (unsigned long long) sub->opts.since_ms);
        int n = snprintf (line, sizeof line, "%d\t%s\t%s\t%s\n", sub->opts.mode,
                          *flags? flags: "-",
                          sub->durable? sub->durable: "", sub->pattern);
        zchunk_extend (text, line, (size_t) n);
    }
    mesh_node_announce (self->node, MESH_PUBSUB_KEY, zchunk_data (text), zchunk_size (text));
    zchunk_destroy (&text);
}

//  Parse a peer's announcement. Input from the network: every line is
//  checked, bad ones are skipped and counted.
static void
s_parse_subs (mesh_pubsub_t *self, remote_t *remote, const char *text)
{
    size_t lines = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    if (lines > MESH_PUBSUB_MAX_SUBS) {
        s_count (self, remote->peer, "pubsub.subscriptions.refused", lines - MESH_PUBSUB_MAX_SUBS);
        lines = MESH_PUBSUB_MAX_SUBS;
    }
    free (remote->subs);
    remote->subs = (rsub_t *) calloc (lines + 1, sizeof (rsub_t));
    remote->sub_count = 0;
    const char *line = text;
    while (*line && remote->sub_count < lines) {
        const char *end = strchr (line, '\n');
        if (!end)
            break;
        char buf [2 * MESH_MAX_SUBJECT + 16];
        size_t len = (size_t) (end - line);
        line = end + 1;
        if (len >= sizeof buf) {
            s_count (self, remote->peer, "pubsub.malformed.subscription", 1);
            continue;
        }
        memcpy (buf, end - len, len);
        buf [len] = 0;
        char *fields [4];
        char *p = buf;
        int n = 0;
        for (; n < 4 && p; n++) {
            fields [n] = p;
            p = n < 3? strchr (p, '\t'): NULL;
            if (p)
                *p++ = 0;
        }
        rsub_t *rsub = &remote->subs [remote->sub_count];
        if (n != 4 || !mesh_pattern_valid (fields [3]) || strlen (fields [2]) > MESH_MAX_SUBJECT
        ||  (strcmp (fields [0], "0") && strcmp (fields [0], "1"))) {
            s_count (self, remote->peer, "pubsub.malformed.subscription", 1);
            continue;
        }
        rsub->mode = atoi (fields [0]);
        rsub->last_value = strchr (fields [1], 'L') != NULL;
        const char *since = strchr (fields [1], 'S');
        rsub->since = since? strtoull (since + 1, NULL, 10): 0;
        snprintf (rsub->durable, sizeof rsub->durable, "%s", fields [2]);
        snprintf (rsub->pattern, sizeof rsub->pattern, "%s", fields [3]);
        remote->sub_count++;
    }
}

//  ---------------------------------------------------------------------
//  Publisher side

//  Send one retained record to a remote (replays, catch-up, last value).
static int
s_send_retained (mesh_pubsub_t *self, remote_t *remote, const mesh_retained_t *rec,
                 uint32_t flags)
{
    mesh_head_t head = {
        .kind = KIND_PUB, .flags = flags, .seq = 0, .id = rec->id,
        .subject = rec->subject, .ctype = rec->ctype [0]? rec->ctype: NULL,
        .headers = rec->headers, .header_count = rec->header_count
    };
    int rc = mesh_node_send (self->node, remote->peer, &head, rec->body, rec->size);
    if (rc)
        s_count (self, remote->peer, "pubsub.replay.dropped", 1);
    return rc;
}

static bool
s_remote_matches (remote_t *remote, const char *subject, int *mode)
{
    for (size_t i = 0; i < remote->sub_count; i++)
        if (mesh_subject_match (remote->subs [i].pattern, subject)) {
            if (mode)
                *mode = remote->subs [i].mode;
            return true;
        }
    return false;
}

//  A durable or last-value subscription appeared: send what it should get.
static void
s_catch_up (mesh_pubsub_t *self, remote_t *remote, const rsub_t *rsub)
{
    if (rsub->durable [0]) {
        uint64_t *pos = (uint64_t *) zhashx_lookup (self->durable_pos, rsub->durable);
        if (!pos && self->meta) {
            //  a position from before a restart
            char key [MESH_MAX_SUBJECT + 16];
            snprintf (key, sizeof key, "durable.%s", rsub->durable);
            char *value = mesh_store_meta_get (self->meta, key);
            if (value) {
                pos = (uint64_t *) malloc (sizeof (uint64_t));
                *pos = strtoull (value, NULL, 10);
                zhashx_insert (self->durable_pos, rsub->durable, pos);
                free (value);
            }
        }
        if (!pos) {
            //  first time we see it: it starts from now
            pos = (uint64_t *) malloc (sizeof (uint64_t));
            *pos = self->pub_seq;
            zhashx_insert (self->durable_pos, rsub->durable, pos);
            return;
        }
        uint64_t from = *pos + 1, sent = 0, first = mesh_retain_first (self->retain);
        if (first && from < first) {
            s_count (self, remote->peer, "pubsub.durable.expired", first - from);
            from = first;
        }
        for (uint64_t id = from; id && id <= self->pub_seq; id++) {
            mesh_retained_t rec;
            if (mesh_retain_get (self->retain, id, &rec)
            &&  mesh_subject_match (rsub->pattern, rec.subject)
            &&  s_send_retained (self, remote, &rec, FLAG_REPLAY) == 0)
                sent++;
        }
        s_count (self, remote->peer, "pubsub.durable.caught-up", sent);
    }
    if (rsub->since && !rsub->durable [0]) {
        //  joining with a start time: what we kept from then on, in order
        uint64_t sent = 0, first = mesh_retain_first (self->retain);
        for (uint64_t id = first; first && id <= self->pub_seq; id++) {
            mesh_retained_t rec;
            if (mesh_retain_get (self->retain, id, &rec) && rec.time_ms >= rsub->since
            &&  mesh_subject_match (rsub->pattern, rec.subject)
            &&  s_send_retained (self, remote, &rec, FLAG_REPLAY) == 0)
                sent++;
        }
        s_count (self, remote->peer, "pubsub.since.sent", sent);
    }
    if (rsub->last_value) {
        for (uint64_t *id = (uint64_t *) zhashx_first (self->last_values); id;
             id = (uint64_t *) zhashx_next (self->last_values)) {
            mesh_retained_t rec;
            if (mesh_subject_match (rsub->pattern, (const char *) zhashx_cursor (self->last_values))
            &&  mesh_retain_get (self->retain, *id, &rec))
                s_send_retained (self, remote, &rec, FLAG_REPLAY | FLAG_LAST_VALUE);
        }
    }
}

static bool
s_rsub_known (const char *announced, const rsub_t *rsub)
{
    if (!announced)
        return false;
    char line [2 * MESH_MAX_SUBJECT + 16];
    snprintf (line, sizeof line, "\t%s\t%s\n", rsub->durable, rsub->pattern);
    return strstr (announced, line) != NULL;
}

//  Rebuild the remote table from the peers' announcements. Lock held.
static void
s_rebuild (mesh_pubsub_t *self)
{
    uint64_t generation = mesh_node_generation (self->node);
    if (generation == self->generation)
        return;
    self->generation = generation;
    zhashx_purge (self->routes);
    int64_t now = (int64_t) mesh_clock_ms ();
    for (remote_t *r = (remote_t *) zhashx_first (self->remotes); r;
         r = (remote_t *) zhashx_next (self->remotes))
        if (r->alive) {
            r->alive = false;
            r->gone_since = now;
        }
    char **peers = mesh_node_peers (self->node);
    for (char **peer = peers; peer && *peer; peer++) {
        size_t size = 0;
        char *text = (char *) mesh_node_peer_announcement (self->node, *peer, MESH_PUBSUB_KEY, &size);
        remote_t *remote = (remote_t *) zhashx_lookup (self->remotes, *peer);
        if (!text && !remote)
            continue;
        if (!remote) {
            remote = (remote_t *) calloc (1, sizeof (remote_t));
            snprintf (remote->peer, sizeof remote->peer, "%s", *peer);
            zhashx_insert (self->remotes, *peer, remote);
        }
        remote->alive = true;
        if (text && (!remote->announced || strcmp (text, remote->announced))) {
            char *before = remote->announced;
            remote->announced = NULL;
            s_parse_subs (self, remote, text);
            for (size_t i = 0; i < remote->sub_count; i++)
                if ((remote->subs [i].durable [0] || remote->subs [i].last_value
                  || remote->subs [i].since)
                &&  !s_rsub_known (before, &remote->subs [i]))
                    s_catch_up (self, remote, &remote->subs [i]);
            free (before);
            remote->announced = text;
        }
        else
            free (text);
    }
    mesh_strv_free (&peers);
}

//  Forget subscribers gone for too long
static void
s_expire (mesh_pubsub_t *self)
{
    int64_t now = (int64_t) mesh_clock_ms ();
    zlistx_t *old = zlistx_new ();
    for (remote_t *r = (remote_t *) zhashx_first (self->remotes); r;
         r = (remote_t *) zhashx_next (self->remotes))
        if (!r->alive && now - r->gone_since > MESH_PUBSUB_KEEP_GONE)
            zlistx_add_end (old, r->peer);
    for (char *peer = (char *) zlistx_first (old); peer; peer = (char *) zlistx_next (old)) {
        zhashx_delete (self->remotes, peer);
        zhashx_purge (self->routes);
    }
    zlistx_destroy (&old);
}

static route_t *
s_route (mesh_pubsub_t *self, const char *subject)
{
    route_t *route = (route_t *) zhashx_lookup (self->routes, subject);
    if (route)
        return route;
    size_t count = 0, cap = zhashx_size (self->remotes);
    route = (route_t *) malloc (sizeof (route_t) + cap * sizeof (route_hop_t));
    route->owner = self;
    for (remote_t *r = (remote_t *) zhashx_first (self->remotes); r;
         r = (remote_t *) zhashx_next (self->remotes)) {
        int mode = MESH_SUB_DROP;
        if (s_remote_matches (r, subject, &mode))
            route->hops [count++] = (route_hop_t) { r, mode };
    }
    route->count = count;
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
    if (!hot) {
        snprintf (self->hot_subject, sizeof self->hot_subject, "%s", head_in->subject);
        self->hot_route = NULL;
        self->hot_last = NULL;
    }
    mesh_head_t head = *head_in;
    head.kind = KIND_PUB;
    head.flags = 0;
    s_rebuild (self);
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
    route_t *route = self->hot_route? self->hot_route: s_route (self, head.subject);
    self->hot_route = route;
    int sent = 0;
    for (size_t i = 0; i < route->count; i++) {
        remote_t *remote = route->hops [i].remote;
        head.seq = ++remote->seq;       //  advanced even if dropped: the gap tells
        if (!remote->alive) {
            s_count (self, remote->peer, "pubsub.dropped.peer-gone", 1);
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
            s_count (self, remote->peer, mesh_errno () == MESH_EAGAIN
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
    s_rebuild (self);
    route_t *route = s_route (self, subject);
    size_t count = 0;
    for (size_t i = 0; i < route->count; i++)
        count += route->hops [i].remote->alive;
    for (sub_t *sub = (sub_t *) zlistx_first (self->subs); sub;
         sub = (sub_t *) zlistx_next (self->subs))
        if (mesh_subject_match (sub->pattern, subject)) {
            count++;
            break;              //  one node counts once
        }
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

//  The answer that closes a replay. The subscriber settles its gaps only
//  when every request is answered, so this must not be lost to the link's
//  high-water mark (which the replay itself just filled): wait for room.
static void
s_send_replay_end (mesh_pubsub_t *self, const char *peer, uint64_t from, uint64_t sent)
{
    mesh_head_t head = { .kind = KIND_REPLAY_END, .id = from, .seq = sent };
    if (mesh_node_send (self->node, peer, &head, NULL, 0) && mesh_errno () == MESH_EAGAIN
    &&  mesh_node_wait_writable (self->node, peer, self->send_timeout) == 0)
        mesh_node_send (self->node, peer, &head, NULL, 0);
}

//  Replay request from a subscriber: resend what we kept of [from, to]
//  that its subscriptions match, then say how many. A replay answers a
//  request, so it waits for the link (up to the send timeout per message)
//  instead of dropping: the lock is released while waiting, and the
//  record fetched again after, since the log may have moved meanwhile.
static void
s_on_replay_req (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    const char *peer = mesh_msg_sender (msg);
    uint64_t from = mesh_msg_id (msg), to = mesh_msg_seq (msg), sent = 0;
    pthread_mutex_lock (&self->lock);
    s_rebuild (self);
    remote_t *remote = (remote_t *) zhashx_lookup (self->remotes, peer);
    if (!remote || !from || to < from || to > self->pub_seq) {
        s_count (self, peer, "pubsub.replay.refused", 1);
        pthread_mutex_unlock (&self->lock);
        //  answer anyway, so the subscriber reports the gap as lost
        s_send_replay_end (self, peer, from, 0);
        return;
    }
    uint64_t first = mesh_retain_first (self->retain);
    uint64_t id = from < first? first: from;
    while (first && id <= to) {
        mesh_retained_t rec;
        remote = (remote_t *) zhashx_lookup (self->remotes, peer);
        if (!remote)
            break;
        if (!mesh_retain_get (self->retain, id, &rec)
        ||  !s_remote_matches (remote, rec.subject, NULL)) {
            id++;
            continue;
        }
        mesh_head_t head = {
            .kind = KIND_PUB, .flags = FLAG_REPLAY, .id = rec.id, .subject = rec.subject,
            .ctype = rec.ctype [0]? rec.ctype: NULL,
            .headers = rec.headers, .header_count = rec.header_count
        };
        if (mesh_node_send (node, peer, &head, rec.body, rec.size) == 0) {
            sent++;
            id++;
            continue;
        }
        if (mesh_errno () != MESH_EAGAIN)
            break;
        pthread_mutex_unlock (&self->lock);
        int rc = mesh_node_wait_writable (node, peer, self->send_timeout);
        pthread_mutex_lock (&self->lock);
        if (rc)
            break;
    }
    if (id <= to && first)
        s_count (self, peer, "pubsub.replay.dropped", 1);
    pthread_mutex_unlock (&self->lock);
    s_send_replay_end (self, peer, from, sent);
    s_count (self, peer, "pubsub.replay.sent", sent);
}

static void
s_on_dack (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    const char *name = mesh_msg_subject (msg);
    if (!*name)
        return;
    pthread_mutex_lock (&self->lock);
    uint64_t *pos = (uint64_t *) zhashx_lookup (self->durable_pos, name);
    if (!pos && zhashx_size (self->durable_pos) < MESH_PUBSUB_MAX_SUBS) {
        pos = (uint64_t *) calloc (1, sizeof (uint64_t));
        zhashx_insert (self->durable_pos, name, pos);
    }
    if (pos && mesh_msg_id (msg) > *pos && mesh_msg_id (msg) <= self->pub_seq) {
        *pos = mesh_msg_id (msg);
        if (self->meta) {
            char key [MESH_MAX_SUBJECT + 16], value [32];
            snprintf (key, sizeof key, "durable.%s", name);
            snprintf (value, sizeof value, "%llu", (unsigned long long) *pos);
            mesh_store_meta_set (self->meta, key, value);
        }
    }
    pthread_mutex_unlock (&self->lock);
}

//  ---------------------------------------------------------------------
//  Subscriber side

//  Collect matching handlers under the lock, call them without it. With
//  locked, the caller holds the lock already; it is released either way.
static size_t
s_deliver_ex (mesh_pubsub_t *self, const mesh_msg_t *msg, bool locked)
{
    sub_t matched [16];
    size_t count = 0, delivered = 0;
    const char *subject = mesh_msg_subject (msg);
    if (!locked)
        pthread_mutex_lock (&self->lock);
    if (self->hot_match_gen == self->subs_gen
    &&  strcmp (subject, self->hot_match_subject) == 0) {
        mesh_sub_fn *fns [MESH_PUBSUB_HOT_MATCH];
        void *args [MESH_PUBSUB_HOT_MATCH];
        count = self->hot_match_count;
        memcpy (fns, self->hot_match_fn, count * sizeof fns [0]);
        memcpy (args, self->hot_match_arg, count * sizeof args [0]);
        pthread_mutex_unlock (&self->lock);
        for (size_t i = 0; i < count; i++)
            fns [i] (self, msg, args [i]);
        return count;
    }
    bool first_pass = true;
    sub_t *sub = (sub_t *) zlistx_first (self->subs);
    while (true) {
        for (; sub && count < 16; sub = (sub_t *) zlistx_next (self->subs))
            if (mesh_subject_match (sub->pattern, subject))
                matched [count++] = *sub;
        //  the whole list seen in one pass: remember what matched
        size_t slen = first_pass && !sub? strnlen (subject, MESH_MAX_SUBJECT + 1): 0;
        if (first_pass && !sub && count <= MESH_PUBSUB_HOT_MATCH && slen <= MESH_MAX_SUBJECT) {
            for (size_t i = 0; i < count; i++) {
                self->hot_match_fn [i] = matched [i].fn;
                self->hot_match_arg [i] = matched [i].arg;
            }
            self->hot_match_count = count;
            memcpy (self->hot_match_subject, subject, slen + 1);
            self->hot_match_gen = self->subs_gen;
        }
        first_pass = false;
        pthread_mutex_unlock (&self->lock);
        for (size_t i = 0; i < count; i++)
            matched [i].fn (self, msg, matched [i].arg);
        delivered += count;
        count = 0;
        if (!sub)
            break;              //  the whole list was seen
        pthread_mutex_lock (&self->lock);
        //  the list may have changed while handlers ran: stop at its end
        if (!zlistx_find (self->subs, sub)) {
            pthread_mutex_unlock (&self->lock);
            break;
        }
    }
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
        s_count (self, NULL, "pubsub.dropped.local-depth", 1);
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

static void
s_post (mesh_pubsub_t *self, int type, const char *name, const char *peer, uint64_t count)
{
    char detail [64];
    snprintf (detail, sizeof detail, "%llu", (unsigned long long) count);
    mesh_node_post_event (self->node, type, name, peer, detail, count);
}

static bool
s_wants_replay (mesh_pubsub_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool wants = false;
    for (sub_t *sub = (sub_t *) zlistx_first (self->subs); sub && !wants;
         sub = (sub_t *) zlistx_next (self->subs))
        wants = !sub->opts.no_replay;
    pthread_mutex_unlock (&self->lock);
    return wants;
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
        s_count (self, peer, "pubsub.stream.reset", 1);
    }
    if (!at_end || stream->expected)
        stream->expected = next + (at_end? 0: 1);
    if (id > stream->last_id)
        stream->last_id = id;
}

static void
s_report_gap (mesh_pubsub_t *self, mesh_node_t *node, const char *peer, uint64_t gap,
              uint64_t ask_from, uint64_t ask_to)
{
    if (!gap)
        return;
    s_count (self, peer, "pubsub.gaps", gap);
    s_post (self, MESH_EVENT_GAP, "GAP", peer, gap);
    bool asked = false;
    if (ask_from && s_wants_replay (self)) {
        mesh_head_t req = { .kind = KIND_REPLAY_REQ, .id = ask_from, .seq = ask_to };
        asked = mesh_node_send (node, peer, &req, NULL, 0) == 0;
    }
    if (asked)
        return;                 //  REPLAY_END will tell REPLAYED / GAP_LOST
    if (ask_from) {
        //  s_advance counted these as awaiting a replay that was not asked
        pthread_mutex_lock (&self->lock);
        stream_t *stream = (stream_t *) zhashx_lookup (self->streams, peer);
        if (stream) {
            stream->gap_pending -= gap < stream->gap_pending? gap: stream->gap_pending;
            stream->requests -= stream->requests > 0;
        }
        pthread_mutex_unlock (&self->lock);
    }
    //  No replay is coming for these (none wanted, the request could not be
    //  sent, or we cannot tell which ids they were): they are lost for
    //  good, so say it now rather than never.
    s_count (self, peer, "pubsub.gaps.lost", gap);
    s_post (self, MESH_EVENT_GAP_LOST, "GAP_LOST", peer, gap);
}

static void
s_on_pos (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
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
    s_report_gap (self, node, peer, gap, ask_from, ask_to);
}

static void
s_on_pub (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
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
            s_count (self, peer, "pubsub.malformed.subject", 1);
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
        s_count (self, peer, "pubsub.received.replayed", 1);
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
        s_report_gap (self, node, peer, gap, ask_from, ask_to);
        if (received)
            s_count (self, NULL, "pubsub.received", received);
        delivered = s_deliver (self, msg);
    }
    if (delivered == 0)
        s_count (self, peer, "pubsub.dropped.no-subscriber", 1);
}

static void
s_on_replay_end (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    const char *peer = mesh_msg_sender (msg);
    pthread_mutex_lock (&self->lock);
    stream_t *stream = (stream_t *) zhashx_lookup (self->streams, peer);
    uint64_t pending = 0, got = 0;
    if (stream && stream->requests)
        stream->requests--;
    if (stream && stream->requests == 0 && stream->gap_pending) {
        pending = stream->gap_pending;
        got = stream->replayed < pending? stream->replayed: pending;
        stream->gap_pending = 0;
        stream->replayed = 0;
    }
    pthread_mutex_unlock (&self->lock);
    if (got) {
        s_count (self, peer, "pubsub.gaps.filled", got);
        s_post (self, MESH_EVENT_REPLAYED, "REPLAYED", peer, got);
    }
    if (pending > got) {
        s_count (self, peer, "pubsub.gaps.lost", pending - got);
        s_post (self, MESH_EVENT_GAP_LOST, "GAP_LOST", peer, pending - got);
    }
}

//  Tell each alive subscriber where its stream stands, if it moved since.
//  Lock held.
static void
s_report_positions (mesh_pubsub_t *self)
{
    for (remote_t *r = (remote_t *) zhashx_first (self->remotes); r;
         r = (remote_t *) zhashx_next (self->remotes)) {
        if (!r->alive || r->seq == r->reported)
            continue;
        mesh_head_t head = { .kind = KIND_POS, .seq = r->seq, .id = self->pub_seq };
        if (mesh_node_send (self->node, r->peer, &head, NULL, 0) == 0)
            r->reported = r->seq;
    }
}

//  Acknowledge to each publisher the last id we got from it, for every
//  durable subscription, if it moved since the last acknowledgement.
typedef struct {
    char peer [33];
    uint64_t id;
    char durable [MESH_MAX_SUBJECT + 1];
} dack_t;

static void
s_send_dacks (mesh_pubsub_t *self)
{
    zlistx_t *acks = zlistx_new ();
    zlistx_set_destructor (acks, s_free);
    pthread_mutex_lock (&self->lock);
    for (stream_t *s = (stream_t *) zhashx_first (self->streams); s;
         s = (stream_t *) zhashx_next (self->streams)) {
        if (s->last_id <= s->acked_id)
            continue;
        s->acked_id = s->last_id;
        for (sub_t *sub = (sub_t *) zlistx_first (self->subs); sub;
             sub = (sub_t *) zlistx_next (self->subs))
            if (sub->durable) {
                dack_t *ack = (dack_t *) zmalloc (sizeof (dack_t));
                snprintf (ack->peer, sizeof ack->peer, "%s", (const char *) zhashx_cursor (self->streams));
                snprintf (ack->durable, sizeof ack->durable, "%s", sub->durable);
                ack->id = s->last_id;
                zlistx_add_end (acks, ack);
            }
    }
    pthread_mutex_unlock (&self->lock);
    for (dack_t *ack = (dack_t *) zlistx_first (acks); ack; ack = (dack_t *) zlistx_next (acks)) {
        mesh_head_t head = { .kind = KIND_DACK, .id = ack->id, .subject = ack->durable };
        mesh_node_send (self->node, ack->peer, &head, NULL, 0);
    }
    zlistx_destroy (&acks);
}

//  Housekeeping: rebuild when peers changed (so catch-up happens even on
//  an idle publisher), expire gone subscribers, trim the log, send DACKs.
static void
s_tick (mesh_node_t *node, void *arg)
{
    (void) node;
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    pthread_mutex_lock (&self->lock);
    s_rebuild (self);
    s_expire (self);
    s_report_positions (self);
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
        s_count (self, NULL, "pubsub.received", received);
    if (published)
        s_count (self, NULL, "pubsub.published", published);
    if (dack)
        s_send_dacks (self);
}

//  ---------------------------------------------------------------------
//  Construction

mesh_pubsub_t *
mesh_pubsub_new (mesh_node_t *node)
{
    assert (node);
    mesh_pubsub_t *self = (mesh_pubsub_t *) zmalloc (sizeof (mesh_pubsub_t));
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    self->subs = zlistx_new ();
    self->subs_gen = 1;         //  hot_match_gen 0 never matches
    zlistx_set_destructor (self->subs, (zlistx_destructor_fn *) s_sub_destroy);
    self->remotes = zhashx_new ();
    zhashx_set_destructor (self->remotes, (zhashx_destructor_fn *) s_remote_destroy);
    self->routes = zhashx_new ();
    zhashx_set_destructor (self->routes, s_route_free);
    self->streams = zhashx_new ();
    zhashx_set_destructor (self->streams, s_free);
    zhashx_set_key_hasher (self->streams, s_id_hash);
    self->durable_pos = zhashx_new ();
    zhashx_set_destructor (self->durable_pos, s_free);
    self->last_values = zhashx_new ();
    zhashx_set_destructor (self->last_values, s_last_value_free);
    self->queue = zlistx_new ();
    zlistx_set_destructor (self->queue, (zlistx_destructor_fn *) mesh_msg_destroy);
    self->ret_count = 100000;
    self->ret_bytes = 64 * 1024 * 1024;
    self->ret_age = 10 * 60 * 1000;
    self->send_timeout = 5000;
    self->generation = (uint64_t) -1;
    self->retain = mesh_retain_new (self->ret_count, self->ret_bytes, self->ret_age, NULL);
    if (mesh_node_on_kind (node, KIND_PUB, s_on_pub, self)
    ||  mesh_node_on_kind (node, KIND_REPLAY_REQ, s_on_replay_req, self)
    ||  mesh_node_on_kind (node, KIND_REPLAY_END, s_on_replay_end, self)
    ||  mesh_node_on_kind (node, KIND_DACK, s_on_dack, self)
    ||  mesh_node_on_kind (node, KIND_POS, s_on_pos, self)
    ||  mesh_node_on_tick (node, MESH_PUBSUB_TICK, s_tick, self)) {
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
    s_report_positions (self);      //  so a subscriber sees loss at the end
    pthread_mutex_unlock (&self->lock);
    s_send_dacks (self);            //  so a durable subscriber resumes exactly here
    if (self->received)             //  what no tick has counted yet
        s_count (self, NULL, "pubsub.received", self->received);
    if (self->published)
        s_count (self, NULL, "pubsub.published", self->published);
    //  the node may outlive us: stop it calling into freed memory
    for (int kind = KIND_PUB; kind <= KIND_POS; kind++)
        mesh_node_on_kind (self->node, kind, NULL, NULL);
    mesh_node_on_tick (self->node, MESH_PUBSUB_TICK, NULL, self);
    mesh_retain_destroy (&self->retain);
    mesh_store_destroy (&self->store);
    mesh_store_destroy (&self->meta);
    zlistx_destroy (&self->subs);
    zhashx_destroy (&self->routes);
    zhashx_destroy (&self->remotes);
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
        s_count (self, mesh_msg_sender (msg), "pubsub.dropped.queue-full", 1);
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
    sub->id = ++self->next_sub;
    zlistx_add_end (self->subs, sub);
    self->subs_gen++;
    s_announce (self);
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
            zlistx_delete (self->subs, zlistx_cursor (self->subs));
            self->subs_gen++;
            rc = 0;
            break;
        }
    if (rc == 0)
        s_announce (self);
    pthread_mutex_unlock (&self->lock);
    return rc;
}
