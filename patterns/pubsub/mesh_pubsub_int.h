/*  =========================================================================
    mesh_pubsub_int.h - what the files of publish-subscribe share

    Private to patterns/pubsub/mesh_pubsub*.c: the wire kinds, the limits, the
    state of a pub-sub instance, of the remote subscribers it routes to and
    of the publishers' streams it receives. The design is described at the
    top of mesh_pubsub.c.
    ========================================================================= */

#ifndef MESH_PUBSUB_INT_H_INCLUDED
#define MESH_PUBSUB_INT_H_INCLUDED

#include "meshbus/pattern.h"
#include "mesh_retain.h"
#include <czmq.h>
#include <pthread.h>

#define KIND_PUB            MESH_KIND_PUB
#define KIND_REPLAY_REQ     MESH_KIND_REPLAY_REQ
#define KIND_REPLAY_END     MESH_KIND_REPLAY_END
#define KIND_DACK           MESH_KIND_DACK
#define KIND_POS            MESH_KIND_POS    //  stream position: reveals loss at the tail
#define FLAG_REPLAY         MESH_FLAG_REPLAYED      //  resent from the retained log
#define FLAG_LAST_VALUE     MESH_FLAG_LAST_VALUE    //  last value of a subject, for a new subscriber

#define MESH_PUBSUB_KEY         "pubsub"
#define MESH_PUBSUB_MAX_SUBS    100000  //  subscriptions per node: a peer accepts this
                                        //  many, and mesh_subscribe refuses one more
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
    uint64_t received;          //  messages handed to it (lock held), for STATS
} sub_t;

typedef struct _remote_t remote_t;

//  A subscription a peer announced. Its strings live in the remote's
//  names block: ~60 bytes and its two names a subscription, not 530
typedef struct {
    const char *pattern;
    const char *durable;        //  "" when not durable
    int mode;
    bool last_value;
    uint64_t since;             //  wants what was retained since this time
    remote_t *remote;           //  whose: a trie entry leads back to its peer
    size_t index;               //  its place in the announcement: the first
                                //  that matches gives the mode
} rsub_t;

//  A remote subscriber, kept while it is gone for a while
struct _remote_t {
    char peer [33];
    rsub_t *subs;               //  each one also an entry of remote_subs
    size_t sub_count;
    char *names;                //  the subs' patterns and durable names
    uint64_t seq;               //  last stream sequence used towards it
    uint64_t reported;          //  last seq told in a POS message
    bool alive;
    int64_t gone_since;         //  mono-ish ms (wall clock is fine here)
    uint64_t route_stamp;       //  route being built when last met, and
    size_t route_hop;           //  its hop there
};

//  One interested remote in a routing entry
typedef struct {
    remote_t *remote;
    int mode;
    size_t index;               //  of the subscription that gave the mode
} route_hop_t;

typedef struct {
    mesh_pubsub_t *owner;       //  freeing a route clears the owner's hot_route
    size_t count;
    route_hop_t hops [];
} ps_route_t;

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
    mesh_sublist_t *local;      //  the same, by pattern: delivery matches here
    mesh_announcement_t *announced;     //  the same, as we announce them
    mesh_sublist_t *remote_subs;    //  every remote's rsub_t, by pattern: routes
    uint64_t route_stamp;       //  routes built so far
    int next_sub;
    zhashx_t *remotes;          //  peer id -> remote_t *
    zhashx_t *routes;           //  subject -> ps_route_t *
    mesh_plugin_t *plugin;      //  our registration with the node
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
    ps_route_t *hot_route;
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
    sub_t *hot_match_sub [MESH_PUBSUB_HOT_MATCH];  //  valid while subs_gen is
};

#define MESH_PUBSUB_COUNT_BATCH 1024    //  received messages per counter update

//  Inline in every file: counting and matching a remote's patterns are
//  on the per-message path (routes, drops), and replays use them too
static inline void
mesh_pubsub_count (mesh_pubsub_t *self, const char *peer, const char *name, uint64_t delta)
{
    mesh_node_count (self->node, peer, name, delta);
}

static inline bool
mesh_pubsub_remote_matches (remote_t *remote, const char *subject, int *mode)
{
    for (size_t i = 0; i < remote->sub_count; i++)
        if (mesh_subject_match (remote->subs [i].pattern, subject)) {
            if (mode)
                *mode = remote->subs [i].mode;
            return true;
        }
    return false;
}

//  Shared by mesh_pubsub.c (construction, settings, housekeeping, local
//  subscriptions), mesh_pubsub_route.c (the per-message path: routes,
//  publish, incoming PUB and POS, delivery) and mesh_pubsub_replay.c (the
//  retained log served, gaps, durable acknowledgements). "Lock held" means
//  the caller holds self->lock.

//  mesh_pubsub.c
void mesh_pubsub_free (void **item);

//  mesh_pubsub_route.c
void mesh_pubsub_rebuild (mesh_pubsub_t *self);             //  lock held
void mesh_pubsub_on_announce (mesh_node_t *node, void *arg, const char *peer,
                              const mesh_announcement_t *before,
                              const mesh_announcement_t *now);  //  lock held
void mesh_pubsub_expire (mesh_pubsub_t *self);              //  lock held
void mesh_pubsub_remote_unroute (mesh_pubsub_t *self, remote_t *remote);  //  lock held
void mesh_pubsub_on_pos (mesh_node_t *node, const mesh_msg_t *msg, void *arg);
void mesh_pubsub_on_pub (mesh_node_t *node, const mesh_msg_t *msg, void *arg);

//  mesh_pubsub_replay.c
void mesh_pubsub_catch_up (mesh_pubsub_t *self, remote_t *remote,
                           const rsub_t *rsub);             //  lock held
void mesh_pubsub_on_replay_req (mesh_node_t *node, const mesh_msg_t *msg, void *arg);
void mesh_pubsub_on_dack (mesh_node_t *node, const mesh_msg_t *msg, void *arg);
void mesh_pubsub_report_gap (mesh_pubsub_t *self, mesh_node_t *node, const char *peer,
                             uint64_t gap, uint64_t ask_from, uint64_t ask_to);
void mesh_pubsub_on_replay_end (mesh_node_t *node, const mesh_msg_t *msg, void *arg);
void mesh_pubsub_report_positions (mesh_pubsub_t *self);    //  lock held
void mesh_pubsub_send_dacks (mesh_pubsub_t *self);

#endif
