/*  =========================================================================
    meshbus/pipeline.h - work queues without a broker (patterns/pipeline/)

    A job stays with its producer until a worker acks it. Workers grant
    credit up to their prefetch; producers send only where credit exists,
    least loaded first. A nack, an ack timeout or a worker's exit
    redelivers; after max_deliveries the job is a dead letter. Delivery is
    at-least-once; workers recognise recent redeliveries and count them.
    Wire: docs/pipeline.md.
    ========================================================================= */

#ifndef MESHBUS_PIPELINE_H_INCLUDED
#define MESHBUS_PIPELINE_H_INCLUDED

#include "meshbus/node.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _mesh_pipeline_t mesh_pipeline_t;

#define MESH_EVENT_DEAD_LETTER  56  //  a job reached the dead letters (detail = queue, count = job id)

#define MESH_DEFAULT_PREFETCH       1       //  jobs a worker holds at once
#define MESH_DEFAULT_ACK_TIMEOUT    30000   //  ms before an unacked job is redelivered
#define MESH_DEFAULT_MAX_DELIVERIES 5       //  deliveries before a job is a dead letter
#define MESH_DEFAULT_HOLD_JOBS      100000  //  jobs held in memory per producer

//  What a work handler returns
#define MESH_JOB_ACK    0       //  done: the producer forgets the job
#define MESH_JOB_NACK   1       //  failed: redeliver (after a backoff, maybe elsewhere)
#define MESH_JOB_LATER  2       //  the application acks later with mesh_job_done()
#define MESH_JOB_REJECT 3       //  not taken: back to its producer at once, no delivery
                                //  counted; that producer sends this worker nothing for 1 s
#define MESH_JOB_DEAD   4       //  failed for good: a dead letter at once, no retry

typedef struct {
    int ack_timeout_ms;         //  0 = MESH_DEFAULT_ACK_TIMEOUT
    int max_deliveries;         //  0 = MESH_DEFAULT_MAX_DELIVERIES
    int backoff_ms;             //  first redelivery delay after a nack, doubled each
                                //  time up to 30 s; 0 = 100
} mesh_queue_opts_t;

//  A job as a work handler sees it: mesh_msg_sender() is its producer,
//  mesh_msg_id() its job id, mesh_msg_subject() the queue, mesh_msg_seq()
//  the delivery count (1 = first).
typedef int (mesh_work_fn) (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg);

mesh_pipeline_t *
    mesh_pipeline_new (mesh_node_t *node);
//  Producers: jobs not acked yet are lost with a memory-only producer
//  (counted as pipeline.dropped.destroyed); a durable one keeps them.
void
    mesh_pipeline_destroy (mesh_pipeline_t **self_p);
mesh_node_t *
    mesh_pipeline_node (mesh_pipeline_t *self);
//  Durable outbox and dead letters in LMDB under dir: mesh_push() returns
//  once the job is committed (MESH_STORE_SYNC: each job; MESH_STORE_GROUP:
//  commits grouped every few ms), and jobs found there are sent again.
//  Before the first push.
int
    mesh_pipeline_set_outbox (mesh_pipeline_t *self, const char *dir, int sync_mode);
//  Commit the jobs pushed so far to the outbox now (group mode); returns
//  once they are on disk. 0, or -1 (MESH_ESYS). A no-op without an outbox.
int
    mesh_pipeline_flush (mesh_pipeline_t *self);
//  Bound of jobs held in memory (not acked yet) before mesh_push() fails
//  with MESH_EFULL; default MESH_DEFAULT_HOLD_JOBS.
int
    mesh_pipeline_set_hold (mesh_pipeline_t *self, size_t max_jobs, size_t max_bytes);
//  Per-queue options on the producer side; opts NULL = defaults.
int
    mesh_pipeline_set_queue (mesh_pipeline_t *self, const char *queue,
                             const mesh_queue_opts_t *opts);

//  Push a job (queue named like a subject). Returns the job id (> 0), or 0
//  with MESH_EINVAL, MESH_EFULL (hold bound reached) or MESH_ESYS (outbox
//  write failed). Never drops: a job is held until a worker acks it.
uint64_t
    mesh_push (mesh_pipeline_t *self, const char *queue, const void *body, size_t size);
//  Same with content type and headers from head (its subject is the queue).
uint64_t
    mesh_push_ex (mesh_pipeline_t *self, const mesh_head_t *head, const void *body, size_t size);
//  Jobs of queue (NULL = all) pushed here and not acked yet.
size_t
    mesh_pipeline_pending (mesh_pipeline_t *self, const char *queue);
//  Dispatch until nothing is pending or timeout_ms passes. 0 or -1
//  (MESH_ETIMEDOUT; mesh_pipeline_pending() tells how many remain).
int
    mesh_pipeline_wait_acked (mesh_pipeline_t *self, int timeout_ms);

//  Work a queue: fn runs in mesh_node_dispatch() for each job, at most
//  prefetch (0 = MESH_DEFAULT_PREFETCH) unacked at once. One handler per
//  queue per node. 0 or -1.
int
    mesh_work (mesh_pipeline_t *self, const char *queue, int prefetch,
               mesh_work_fn *fn, void *arg);
//  Stop working it; jobs not acked yet go back to their producers.
int
    mesh_unwork (mesh_pipeline_t *self, const char *queue);
//  Finish a job a handler returned MESH_JOB_LATER for (ok: ack, else nack).
//  Any thread. 0 or -1 (MESH_EINVAL: no such job held here).
int
    mesh_job_done (mesh_pipeline_t *self, const char *producer, uint64_t job_id, bool ok);
//  The same with an outcome: MESH_JOB_ACK, MESH_JOB_NACK (redelivered) or
//  MESH_JOB_DEAD (the producer makes it a dead letter at once; a producer
//  older than this flag redelivers it as for a nack). Any thread.
int
    mesh_job_finish (mesh_pipeline_t *self, const char *producer, uint64_t job_id,
                     int outcome);

//  Dead letters of this producer. fn gets each job (its seq = deliveries)
//  and the last reason; return false to stop. Returns how many were visited.
typedef bool (mesh_dead_fn) (const char *queue, uint64_t job_id, const mesh_msg_t *job,
                             const char *reason, void *arg);
size_t
    mesh_dlq_list (mesh_pipeline_t *self, const char *queue, mesh_dead_fn *fn, void *arg);
//  Push dead letters of queue again as new jobs (job_id 0 = all). Returns
//  how many, or -1.
int
    mesh_dlq_replay (mesh_pipeline_t *self, const char *queue, uint64_t job_id);

#ifdef __cplusplus
}
#endif

#endif
