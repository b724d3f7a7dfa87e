/*  =========================================================================
    mesh_pipeline.h - what the files of the pipeline pattern share

    The pattern is split by role: mesh_pipeline.c (construction,
    housekeeping, dead letters), mesh_pipeline_producer.c (push, acks,
    redelivery, the durable outbox), mesh_pipeline_dispatch.c (the workers
    known from their announcements, sending), mesh_pipeline_held.c (the
    jobs a producer holds), mesh_pipeline_worker.c (announce, work, acks
    and credit sent back, the duplicate window), mesh_pipeline_util.c
    (clock, counters, lists). The outbox record
    codec is mesh_pipeline_record.c, the JOBS batch codec
    mesh_pipeline_jobs.c (each also built into a fuzz target). Only
    meshbus.h and czmq are used: the pattern sits on the public core API.
    ========================================================================= */

#ifndef MESH_PIPELINE_H_INCLUDED
#define MESH_PIPELINE_H_INCLUDED

#include "meshbus/pattern.h"
#include "mesh_pipeline_record.h"
#include "mesh_pipeline_jobs.h"
#include <czmq.h>
#include <pthread.h>

//  Wire kinds 32..39 (MESH_KIND_PATTERN + 16 ..): docs/pipeline.md
#define PL_KIND_JOB         MESH_KIND_JOB    //  producer -> worker: one job
#define PL_KIND_CREDIT      MESH_KIND_CREDIT    //  worker -> producer: window for a queue
#define PL_KIND_ACK         MESH_KIND_ACK    //  worker -> producer: job ids done
#define PL_KIND_NACK        MESH_KIND_NACK    //  worker -> producer: job ids failed
#define PL_KIND_JOBS        MESH_KIND_JOBS    //  producer -> worker: several jobs
#define PL_FLAG_RETURNED    0x00010000  //  NACK: not attempted, no delivery counted
#define PL_FLAG_NO_RETRY    0x00020000  //  NACK: failed for good, a dead letter at once
#define PL_FLAG_FLUSH       0x00020000  //  JOB: the producer waits for acks after this one

#define PL_KEY              "pipeline"  //  announcement key (records: docs/pipeline.md)
#define PL_CAN_JOBS         "jobs"      //  in the "inc" record: JOBS understood here
#define PL_TICK_MS          10      //  housekeeping: ack flush, group commit, timeouts
#define PL_IDLE_TICK_MS     250     //  ... once nothing is owed, waiting or uncommitted
#define PL_IDLE_AFTER       100     //  quiet ticks before the slow one
#define PL_LONE_MS          2       //  a job sent this long after the last one is acked at once
#define PL_RETURN_PAUSE_MS  1000    //  a worker that handed a job back gets none for this long
#define PL_MAX_QUEUES_PEER  256     //  queues a peer may announce that we accept
#define PL_MAX_PREFETCH     100000  //  largest prefetch (window) we accept or grant
#define PL_ACK_BATCH        1024    //  job ids in one ACK or NACK (8 bytes each)
#define PL_DEDUP_WINDOW     8192    //  job ids a worker remembers per producer
#define PL_DEDUP_ORIGINS    64      //  producers a worker keeps a window for
#define PL_MAX_HELD         100000  //  jobs a worker's handlers may hold for later
#define PL_MAX_DELIVERIES   1000    //  largest max_deliveries accepted
#define PL_BACKOFF_MAX      30000   //  ms, ceiling of the nack backoff
#define PL_DLQ_MEMORY       10000   //  dead letters kept without a data dir
#define PL_GROUP_JOBS       64      //  group commit: at most this many jobs wait...
#define PL_GROUP_MS         5       //  ... or this many ms
#define PL_RING_MIN         1024    //  slots of the job table to start with
#define PL_INLINE_BODY      192     //  bodies this small live inside the job
#define PL_COUNT_BATCH      1024    //  hot counters are added to the node per this many
#define PL_META_LAST_ID     "pipeline.last-id"  //  outbox meta: highest job id ever made
#define PL_ID_CLOCK_SHIFT   20      //  memory-only ids start at wall ms << this

typedef struct _pl_job_t pl_job_t;
typedef struct _pl_queue_t pl_queue_t;
typedef struct _pl_slot_t pl_slot_t;

typedef enum { PL_NOWHERE = 0, PL_UNCOMMITTED, PL_READY, PL_DELAYED, PL_INFLIGHT } pl_where_t;

typedef struct {
    pl_job_t *head, *tail;
    size_t size;
} pl_list_t;

//  A job held by its producer until acked
struct _pl_job_t {
    uint64_t id;
    pl_queue_t *queue;
    pl_job_t *prev, *next;      //  in the list `where` says
    pl_where_t where;
    pl_slot_t *slot;            //  in flight at this worker (where == PL_INFLIGHT)
    uint32_t deliveries;
    int64_t sent_at;            //  monotonic ms of the last send
    int64_t due;                //  PL_DELAYED: monotonic ms it may go again
    const char *origin;         //  the producer id workers key duplicates on (interned)
    char last_worker [33];      //  the worker it went to last...
    char prev_worker [33];      //  ... and the one before (a late ack may come from it)
    char reason [64];           //  why the last delivery failed
    void *body;                 //  inline_body or malloc'd
    size_t size;
    char *ctype;                //  NULL or malloc'd
    char **headers;             //  NULL or one malloc'd block (pointers, then strings)
    size_t header_count;
    uint64_t time_ms;           //  pushed at (wall clock)
    char inline_body [PL_INLINE_BODY];
};

//  A producer's view of one worker for one queue
struct _pl_slot_t {
    char peer [33];
    pl_queue_t *queue;
    uint32_t window;            //  its prefetch as announced
    int32_t credit;             //  window from a CREDIT message or a return, -1 = none
    uint32_t inflight;
    pl_list_t jobs;             //  in flight there, oldest first
    bool alive;                 //  announced now
    int64_t blocked_until;      //  link full: skip it until then
    int64_t last_sent;          //  monotonic ms of the last job sent there
    bool batch;                 //  it takes JOBS frames (it said so in its announcement)
};

//  A queue jobs are pushed to here
struct _pl_queue_t {
    char name [MESH_MAX_SUBJECT + 1];
    int ack_timeout, max_deliveries, backoff;
    pl_list_t ready;            //  waiting for credit, next first
    pl_list_t delayed;          //  nacked, waiting for their backoff
    size_t pending;             //  jobs of this queue held (not acked, not dead)
    pl_slot_t **slots;          //  alive workers of this queue
    size_t slot_count, slot_cap, rr;
    uint64_t done, dead;        //  jobs acked, jobs sent to the dead letters (STATS)
    uint64_t order;             //  when it was made: ties in the top rows
};

//  A queue this node works
typedef struct {
    char name [MESH_MAX_SUBJECT + 1];
    int prefetch;
    mesh_work_fn *fn;
    void *arg;
    uint64_t handled, failed;   //  jobs handed to fn, jobs it failed (STATS)
    uint64_t order;
} pl_work_t;

//  What a worker owes one producer
typedef struct {
    char peer [33];
    uint64_t acks [PL_ACK_BATCH];
    size_t ack_count;
    uint64_t nacks [PL_ACK_BATCH];
    size_t nack_count;
    uint64_t returns [PL_ACK_BATCH];
    size_t return_count;
    uint64_t deads [PL_ACK_BATCH];      //  failed for good (PL_FLAG_NO_RETRY)
    size_t dead_count;
    size_t threshold;           //  flush acks when this many wait
    char reason [128];          //  of the last nack
} pl_owed_t;

//  Recent job ids done for one origin (a producer), for duplicates
typedef struct {
    char origin [33];
    uint64_t ring [PL_DEDUP_WINDOW];
    size_t at, count;
    uint64_t set [2 * PL_DEDUP_WINDOW];     //  open addressing, 0 = empty
    uint64_t used;              //  last use, for eviction
} pl_window_t;

struct _mesh_pipeline_t {
    mesh_node_t *node;
    pthread_mutex_t lock;
    char origin [33];           //  our node id: the origin of our new jobs
    zlistx_t *origins;          //  interned origins of recovered jobs (char *)
    //  producer side
    zhashx_t *queues;           //  name -> pl_queue_t *
    pl_queue_t *hot_queue;      //  the last queue pushed to
    zhashx_t *slots;            //  "peer/queue" -> pl_slot_t *
    mesh_plugin_t *plugin;      //  our registration with the node
    pl_job_t **ring;            //  job table: id & (ring_cap - 1)
    size_t ring_cap;
    uint64_t ring_base;         //  lowest id that may still be held
    uint64_t next_id;
    uint64_t first_id;          //  next_id before the first push (set_outbox checks it)
    uint64_t id_saved;          //  highest id written to the outbox meta (PL_META_LAST_ID)
    pl_job_t *free_jobs;        //  recycled jobs (singly linked by next)
    size_t free_count;
    size_t pending;             //  jobs held, all queues
    size_t pending_bytes;
    size_t hold_jobs, hold_bytes;
    zhashx_t *queue_opts;       //  name -> mesh_queue_opts_t * (set before first push)
    pl_list_t uncommitted;      //  group commit: pushed, not on disk yet
    int64_t uncommitted_since;
    mesh_store_t *outbox;
    mesh_store_t *dead;
    int outbox_lock;            //  fd of DIR/pipeline.lock, flock'd while we own DIR; -1
    int sync_mode;
    bool outbox_dirty;          //  deletes not committed yet
    uint64_t dead_next;
    zlistx_t *dead_mem;         //  without a data dir: pl_dead_t *
    uint64_t acked, pushed;     //  not yet added to the node's counters
    uint64_t batched;           //  ... jobs sent in JOBS frames
    uint8_t *jobs_buf;         //  a JOBS body being built (PL_JOBS_BYTES, made on first use)
    //  worker side
    zhashx_t *works;            //  queue -> pl_work_t *
    pl_work_t *hot_work;
    zhashx_t *owed;             //  producer -> pl_owed_t *
    pl_owed_t *hot_owed;        //  the last one used: jobs come in runs from one producer
    zhashx_t *windows;          //  origin -> pl_window_t *
    pl_window_t *hot_window;
    zhashx_t *held;             //  "producer/id" -> pl_held_t * (MESH_JOB_LATER)
    uint64_t use_clock;
    uint64_t done, duplicates;  //  not yet added to the node's counters
    bool announce_dirty;
    int tick_ms;                //  the tick registered now: PL_TICK_MS or PL_IDLE_TICK_MS
    mesh_tick_fn *tick_fn;      //  the tick (mesh_pipeline.c), for pl_set_tick
    int quiet_ticks;            //  fast ticks in a row with nothing to do
};

//  A dead letter kept in memory
typedef struct {
    uint64_t key;
    void *data;
    size_t size;
} pl_dead_t;

//  A job a handler kept for later
typedef struct {
    char peer [33];
    char origin [33];
    uint64_t id;
    int prefetch;
    bool flush;                 //  its JOB asked for the ack at once
    char queue [MESH_MAX_SUBJECT + 1];
} pl_held_t;

//  Calls run one way: mesh_pipeline.c -> mesh_pipeline_producer.c,
//  mesh_pipeline_worker.c; the producer -> mesh_pipeline_dispatch.c ->
//  mesh_pipeline_held.c; everyone -> mesh_pipeline_util.c and the codecs.
//  "Lock held" unless said otherwise.

//  mesh_pipeline_util.c (the bottom: calls no other file of the pattern)
int64_t pl_mono_ms (void);
void pl_count (mesh_pipeline_t *self, const char *peer, const char *name, uint64_t delta);
const char *pl_intern_origin (mesh_pipeline_t *self, const char *origin);
void pl_list_add_tail (pl_list_t *list, pl_job_t *job, pl_where_t where);
void pl_list_add_head (pl_list_t *list, pl_job_t *job, pl_where_t where);
void pl_list_remove (pl_list_t *list, pl_job_t *job);
void pl_set_tick (mesh_pipeline_t *self, int tick_ms);     //  registers self->tick_fn
void pl_wake (mesh_pipeline_t *self);      //  work to do: the fast tick

//  mesh_pipeline_stats.c
void pl_stats (void *arg, mesh_stats_t *out);      //  lock free
void pl_work_failed (mesh_pipeline_t *self, const char *queue);

//  mesh_pipeline_held.c
pl_job_t *pl_job_make (mesh_pipeline_t *self, pl_queue_t *queue, uint64_t id,
                       const char *origin, const char *ctype, const char *const *headers,
                       size_t header_count, const void *body, size_t size, uint64_t time_ms);
pl_job_t *pl_job_get (mesh_pipeline_t *self, uint64_t id);
void pl_job_unlink (mesh_pipeline_t *self, pl_job_t *job);
void pl_job_finish (mesh_pipeline_t *self, pl_job_t *job);
void pl_job_failed (mesh_pipeline_t *self, pl_job_t *job, const char *reason, bool nacked);
//  A job (in no list) becomes a dead letter now, whatever deliveries are left
void pl_job_dead (mesh_pipeline_t *self, pl_job_t *job, const char *reason);
void pl_job_release (mesh_pipeline_t *self, pl_job_t *job);
void pl_slot_gone (mesh_pipeline_t *self, pl_slot_t *slot, const char *reason);

//  mesh_pipeline_dispatch.c
pl_queue_t *pl_queue_get (mesh_pipeline_t *self, const char *name, bool create);
void pl_queue_destroy (pl_queue_t **queue_p);
void pl_slot_destroy (pl_slot_t **slot_p);
void pl_on_announce (mesh_node_t *node, void *arg, const char *peer,
                     const mesh_announcement_t *before, const mesh_announcement_t *now);
void pl_rebuild (mesh_pipeline_t *self);
void pl_pump (mesh_pipeline_t *self, pl_queue_t *queue);

//  mesh_pipeline_producer.c
void pl_producer_tick (mesh_pipeline_t *self, int64_t now);
void pl_producer_destroy (mesh_pipeline_t *self);
int pl_outbox_open (mesh_pipeline_t *self, const char *dir, int sync_mode);
int pl_outbox_save_id (mesh_pipeline_t *self);
void pl_outbox_unlock (mesh_pipeline_t *self);
void pl_on_ack (mesh_node_t *node, const mesh_msg_t *msg, void *arg);        //  lock free
void pl_on_nack (mesh_node_t *node, const mesh_msg_t *msg, void *arg);       //  lock free
void pl_on_credit (mesh_node_t *node, const mesh_msg_t *msg, void *arg);     //  lock free

//  mesh_pipeline_worker.c
void pl_announce (mesh_pipeline_t *self);
void pl_on_job (mesh_node_t *node, const mesh_msg_t *msg, void *arg);        //  lock free
void pl_on_jobs (mesh_node_t *node, const mesh_msg_t *msg, void *arg);       //  lock free
void pl_worker_tick (mesh_pipeline_t *self);
void pl_worker_flush_all (mesh_pipeline_t *self);
void pl_worker_destroy (mesh_pipeline_t *self);

#endif
