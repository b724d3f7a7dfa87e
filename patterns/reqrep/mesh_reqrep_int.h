/*  =========================================================================
    mesh_reqrep_int.h - what the files of request-reply share

    Private to patterns/reqrep/mesh_reqrep*.c: the wire constants, the state of a
    request-reply instance and of a call in flight. The design is described
    at the top of mesh_reqrep.c.
    ========================================================================= */

#ifndef MESH_REQREP_INT_H_INCLUDED
#define MESH_REQREP_INT_H_INCLUDED

#include "meshbus/pattern.h"
#include "mesh_reqrep_cache.h"
#include <czmq.h>
#include <pthread.h>



#define KIND_REQ            MESH_KIND_REQ
#define KIND_REP            MESH_KIND_REP
#define FLAG_CAST           0x00010000      //  REQ: no reply wanted
#define FLAG_ERROR          0x00020000      //  REP: the handler failed, body = text
#define FLAG_UNKNOWN        0x00040000      //  REP: no such service here, body = text

#define RR_KEY              "reqrep"
#define RR_MAX_SERVICES     100000  //  services per node: a peer accepts this many,
                                    //  and mesh_serve refuses one more
#define RR_TICK             10      //  ms between timer runs (deadline precision)
#define RR_MAX_ERROR        1024    //  bytes of remote error text we keep
#define RR_MAX_PENDING      100000  //  calls in flight per node
#define RR_QUEUE_MAX        100000  //  outcomes queued for mesh_reqrep_recv
#define RR_MAX_TRIED        8       //  providers remembered per call
#define RR_INLINE_REPLY     256     //  reply bodies this small need no allocation
#define RR_INLINE_BODY      256     //  nor request bodies of asynchronous calls
#define RR_SPARE_MAX        1024    //  finished calls kept for reuse (malloc's cache
                                    //  keeps 7 of a size: 256 in flight missed it)
#define RR_COUNT_BATCH      1024    //  served requests per counter update
#define RR_MAX_BODY         (256u << 20)    //  the envelope's body limit

//  Copy a NUL-terminated string into a fixed buffer, cut to fit: snprintf
//  ("%s") costs ~150 ns a call, several times per request
static inline void
mesh_rr_copy (char *dest, size_t size, const char *src)
{
    size_t len = strnlen (src, size - 1);
    memcpy (dest, src, len);
    dest [len] = 0;
}

typedef enum { P_SYNC, P_ASYNC, P_GATHER } pmode_t;

typedef struct {
    size_t left;                //  providers that have not answered yet
    int replies;
    mesh_gather_fn *fn;
    void *arg;
} gather_t;

//  A call in flight
typedef struct _pending_t pending_t;
struct _pending_t {
    uint64_t id;
    uint64_t started_us;        //  monotonic, for the latency histogram
    pmode_t mode;
    char service [MESH_MAX_SUBJECT + 1];
    uint64_t deadline;          //  ms since the epoch
    uint64_t prepared;          //  when s_prepare ran: s_launch's "now" (a clock read is ~30 ns)
    uint64_t attempt_until;     //  when this attempt counts as timed out
    uint64_t wait_until;        //  no provider: wait for one until then
    bool settling;              //  ... or until discovery converged (mesh_rr_converged)
    int retries_left;
    int attempts;
    bool sent;                  //  an attempt is out (target is set)
    bool target_gone;
    bool fixed;                 //  only target may serve it (call-all)
    bool target_local;
    volatile bool done;
    char target [33];
    char tried [RR_MAX_TRIED][33];
    int ntried;
    const void *body;
    size_t size;
    char *ctype;
    const char *const *headers;
    size_t header_count;
    bool owns;                  //  body, ctype and headers are our copies
    mesh_call_fn *fn;
    void *arg;
    gather_t *gather;
    int err;
    char *error;
    mesh_msg_t *reply;
    pending_t *prev, *next;     //  every pending call
    pending_t *next_done;       //  finished, to deliver outside the lock
    //  last, not cleared on reuse (s_pending_new)
    char inline_body [RR_INLINE_BODY];
};

//  One provider of a service
typedef struct {
    char peer [33];
    bool local;
    uint32_t outstanding;
} prov_t;

typedef struct {
    prov_t *provs;
    size_t count, cap;
    size_t rr;                  //  where the next tie-break starts
} rr_route_t;

typedef struct {
    mesh_serve_fn *fn;
    void *arg;
    uint64_t served, errors;    //  requests handed to fn, failed replies (STATS)
} service_t;

//  Calls this node made to one service, for STATS: ended calls, failed
//  ones, and their latency (MESH_LATENCY_BOUNDS_US; a call counts in the
//  first bucket whose bound it does not exceed, the rest only in count)
typedef struct {
    uint64_t calls, errors, timeouts;
    uint64_t buckets [MESH_LATENCY_BUCKETS];    //  not cumulative here
    uint64_t sum_us;
    uint64_t order;             //  first call's rank: ties in the top rows
} call_stat_t;

typedef struct {
    uint64_t id;
    int err;
    char *error;
    mesh_msg_t *reply;
} outcome_t;

//  Open addressing, u64 id -> pending: a call must not cost an allocation
//  for its table entry (zhashx allocates an item per insert)
typedef struct {
    pending_t **slots;
    size_t cap, count;          //  cap is a power of two
} ptable_t;

struct _mesh_reply_t {
    mesh_reqrep_t *rr;
    char caller [33];
    uint64_t id;
    uint64_t deadline;          //  the request's: a reply after it is useless
    bool cast, local, deferred, heap;
    const char *service;        //  borrowed from the request; a deferred reply's own copy
    uint32_t flags;
    char ctype [128];
    char *body;
    size_t size, cap;
    char inline_buf [RR_INLINE_REPLY];
};

struct _mesh_reqrep_t {
    mesh_node_t *node;
    pthread_mutex_t lock;
    char self_id [33];
    zhashx_t *services;         //  name -> service_t *, offered here
    zhashx_t *routes;           //  name -> rr_route_t *
    mesh_plugin_t *plugin;      //  our registration with the node
    void (*on_local_reply) (mesh_reqrep_t *self, const mesh_msg_t *msg, bool local);
                                //  mesh_rr_on_reply: how the server side answers a
                                //  local call without calling up into the caller side
    zhashx_t *announced;        //  peer id -> char *: the services it offers, a line each
    mesh_announcement_t *own;   //  our services, as we announce them
    bool local_dirty;           //  our services changed: rebuild
    char hot_name [MESH_MAX_SUBJECT + 1];
    rr_route_t *hot_route;         //  route of hot_name (NULL = look it up)
    char hot_served [MESH_MAX_SUBJECT + 1];
    service_t *hot_service;     //  service of hot_served on the server side
    ptable_t table;
    pending_t *first;           //  list of pending calls
    pending_t *finished;        //  to deliver outside the lock
    uint64_t next_id;
    uint64_t next_due;          //  earliest time s_check has something to do
    zlistx_t *local_reqs;       //  mesh_msg_t *, requests for our own services
    size_t local_count;         //  its size, read without the lock
    zlistx_t *outcomes;         //  outcome_t *, for mesh_reqrep_recv
    mesh_rrc_t *cache;
    int settle_ms;
    uint64_t settle_from;       //  0 until the node is known started
    bool converged;             //  discovery converged once: "no responders" is true
    uint64_t served, calls;     //  counted in batches: a named counter costs a lock
    zhashx_t *call_stats;       //  service -> call_stat_t *, calls made (STATS)
    uint64_t call_stats_untracked;      //  calls ended past RR_MAX_SERVICES names
    pthread_mutex_t spare_lock; //  the calls kept for reuse: taken and given
    pending_t *spare;           //  back outside self->lock
    size_t nspare;
};

//  Shared by mesh_reqrep.c (construction, tick), mesh_reqrep_call.c
//  (caller side), mesh_reqrep_serve.c (server side) and
//  mesh_reqrep_route.c (discovery: the provider table). Calls run one
//  way: mesh_reqrep.c -> call -> serve -> route -> wire, cache; a local
//  reply goes back to the caller side through self->on_local_reply.
//  "Lock held" means the caller holds self->lock.

//  mesh_reqrep_route.c
void mesh_rr_count (mesh_reqrep_t *self, const char *peer, const char *name);
void mesh_rr_free (void **item);
void mesh_rr_route_destroy (rr_route_t **route_p);
uint64_t mesh_rr_settle_end (mesh_reqrep_t *self);
bool mesh_rr_converged (mesh_reqrep_t *self);
void mesh_rr_announce (mesh_reqrep_t *self, const char *added);     //  lock held
void mesh_rr_rebuild (mesh_reqrep_t *self);                  //  lock held
rr_route_t *mesh_rr_route (mesh_reqrep_t *self, const char *service);     //  lock held
prov_t *mesh_rr_prov (rr_route_t *route, const char *peer);
void mesh_rr_on_announce (mesh_node_t *node, void *arg, const char *peer,
                          const mesh_announcement_t *before,
                          const mesh_announcement_t *now);   //  lock held

//  mesh_reqrep_stats.c
void mesh_rr_call_ended (mesh_reqrep_t *self, const pending_t *p, int err);    //  lock held
void mesh_rr_service_failed (mesh_reqrep_t *self, const char *service);
void mesh_rr_stats (void *arg, mesh_stats_t *out);

//  mesh_reqrep_call.c
void mesh_rr_outcome_destroy (outcome_t **outcome_p);
void mesh_rr_pending_free (mesh_reqrep_t *self, pending_t *p);
void mesh_rr_unlink (mesh_reqrep_t *self, pending_t *p);     //  lock held
void mesh_rr_check (mesh_reqrep_t *self, uint64_t now);      //  lock held
void mesh_rr_deliver_finished (mesh_reqrep_t *self);
void mesh_rr_on_reply (mesh_reqrep_t *self, const mesh_msg_t *msg, bool local);
void mesh_rr_on_rep (mesh_node_t *node, const mesh_msg_t *msg, void *arg);

//  mesh_reqrep_serve.c
void mesh_rr_on_req (mesh_node_t *node, const mesh_msg_t *msg, void *arg);
void mesh_rr_pump_local (mesh_reqrep_t *self);

#endif
