/*  =========================================================================
    mesh_pipeline - work queues on the meshbus core, without a broker

    Built on the public core API only (meshbus.h; czmq for containers).
    docs/pipeline.md is the guide; this comment is the design.

    Who knows what. A worker announces (key "pipeline", the shared codec)
    the queues it works with their prefetch, and its incarnation so a
    restart under the same id is seen. A producer keeps, from what the
    node hands it through on_announce, a slot per (worker, queue): the window (prefetch, or what a CREDIT
    message said) and the jobs in flight there. A peer missing from the
    peer table, or announcing another incarnation, is gone: its jobs in
    flight go back to the front of their queue (redelivered). The core
    posts EXIT after BYE or gone-ms of silence, so that is when this
    happens for a worker killed with -9.

    Credit. A producer sends to a worker only while jobs in flight there
    are fewer than its window: the window is the credit each worker grants
    each producer, and every ack or nack returns credit. Among workers with
    credit the least loaded (in flight / window) gets the job, round robin
    among equals, so a busy worker is skipped and a worker that joins late
    gets work as soon as its announcement arrives. Acks are batched by the
    worker (one ACK frame carries up to PL_ACK_BATCH job ids; with prefetch
    P a worker acks every P/4 jobs, at once for P <= 4, and at each tick for
    the rest), which is what keeps throughput near raw PUSH/PULL. A JOB
    that uses the worker's last credit, or comes alone (nothing sent there
    for PL_LONE_MS), carries PL_FLAG_FLUSH: the worker acks it at once, so
    a lone job does not wait for the tick and a full window is released.

    Batches. When several jobs are ready for one worker at once (credit
    came back, a worker joined, a group commit, redeliveries), pl_pump
    sends up to PL_JOBS_JOBS of them in one JOBS frame (format in
    mesh_pipeline_jobs.h): one envelope, one zmq message and one node
    lock for the lot, which is what the producer spent most on per job. A
    job is never held back to make a batch. The worker checks the whole
    frame, then runs each job as a JOB. Workers say in their announcement
    (PL_CAN_JOBS in the incarnation record) that they take JOBS frames.

    Jobs live in a table indexed by id (ids are sequential per producer
    process, so the table is a power-of-two ring that grows when the span
    of ids held outgrows it), in intrusive lists (ready, delayed, in
    flight per slot, uncommitted), and are recycled through a free list:
    no per-job malloc in steady state for bodies up to PL_INLINE_BODY.

    Locking: one mutex for the whole pipeline; handlers run without it.
    Lock order: pipeline, then the node's (inside core calls).
    ========================================================================= */

#include "mesh_pipeline.h"

//  ---------------------------------------------------------------------
//  Housekeeping

//  Nothing waits for a tick: no ack owed, no job ready, delayed or
//  uncommitted, no delete to commit
static bool
s_quiet (mesh_pipeline_t *self)
{
    if (self->uncommitted.head || self->outbox_dirty)
        return false;
    for (pl_queue_t *q = (pl_queue_t *) zhashx_first (self->queues); q;
         q = (pl_queue_t *) zhashx_next (self->queues))
        if (q->ready.head || q->delayed.head)
            return false;
    for (pl_owed_t *o = (pl_owed_t *) zhashx_first (self->owed); o;
         o = (pl_owed_t *) zhashx_next (self->owed))
        if (o->ack_count || o->nack_count || o->return_count)
            return false;
    return true;
}

static void
s_tick (mesh_node_t *node, void *arg)
{
    (void) node;
    mesh_pipeline_t *self = (mesh_pipeline_t *) arg;
    pthread_mutex_lock (&self->lock);
    pl_rebuild (self);
    pl_producer_tick (self, pl_mono_ms ());
    pl_worker_tick (self);
    if (!s_quiet (self))
        pl_wake (self);
    else
    if (self->tick_ms == PL_TICK_MS && ++self->quiet_ticks >= PL_IDLE_AFTER)
        pl_set_tick (self, PL_IDLE_TICK_MS);
    uint64_t acked = self->acked, pushed = self->pushed, done = self->done;
    uint64_t duplicates = self->duplicates, batched = self->batched;
    self->acked = self->pushed = self->done = self->duplicates = self->batched = 0;
    pthread_mutex_unlock (&self->lock);
    pl_count (self, NULL, "pipeline.acked", acked);
    pl_count (self, NULL, "pipeline.pushed", pushed);
    pl_count (self, NULL, "pipeline.done", done);
    pl_count (self, NULL, "pipeline.duplicates", duplicates);
    pl_count (self, NULL, "pipeline.sent.batched", batched);
}

//  ---------------------------------------------------------------------
//  Construction

static void
s_free_item (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_dead_free (void **item)
{
    pl_dead_t *dead = (pl_dead_t *) *item;
    if (dead)
        free (dead->data);
    free (dead);
    *item = NULL;
}

static void
s_on_message (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    switch (mesh_msg_kind (msg)) {
        case MESH_KIND_JOB:     pl_on_job (node, msg, arg); break;
        case MESH_KIND_JOBS:    pl_on_jobs (node, msg, arg); break;
        case MESH_KIND_CREDIT:  pl_on_credit (node, msg, arg); break;
        case MESH_KIND_ACK:     pl_on_ack (node, msg, arg); break;
        default:                pl_on_nack (node, msg, arg); break;
    }
}

static void
s_destroy (void *self)
{
    mesh_pipeline_t *pl = (mesh_pipeline_t *) self;
    mesh_pipeline_destroy (&pl);
}

//  The tick stays outside the table: its interval follows the idle state
//  (pl_set_tick: 4 wake-ups a second when idle)
static const mesh_pattern_t s_pipeline_ops = {
    .name         = "pipeline",
    .kinds        = { MESH_KIND_JOB, MESH_KIND_CREDIT, MESH_KIND_ACK, MESH_KIND_NACK,
                      MESH_KIND_JOBS, 0 },
    .on_message   = s_on_message,
    .announce_key = PL_KEY,
    .on_announce  = pl_on_announce,     //  a worker's queues changed
    .destroy      = s_destroy,
    .stats        = pl_stats,           //  queues pushed to and worked: STATS answers
};

mesh_pipeline_t *
mesh_pipeline_new (mesh_node_t *node)
{
    assert (node);
    mesh_pipeline_t *self = (mesh_pipeline_t *) zmalloc (sizeof (mesh_pipeline_t));
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    snprintf (self->origin, sizeof self->origin, "%s", mesh_node_id (node));
    self->origins = zlistx_new ();
    zlistx_set_destructor (self->origins, (zlistx_destructor_fn *) s_free_item);
    self->queues = zhashx_new ();
    zhashx_set_destructor (self->queues, (zhashx_destructor_fn *) pl_queue_destroy);
    self->slots = zhashx_new ();
    zhashx_set_destructor (self->slots, (zhashx_destructor_fn *) pl_slot_destroy);
    self->queue_opts = zhashx_new ();
    zhashx_set_destructor (self->queue_opts, s_free_item);
    self->works = zhashx_new ();
    zhashx_set_destructor (self->works, s_free_item);
    self->owed = zhashx_new ();
    zhashx_set_destructor (self->owed, s_free_item);
    self->windows = zhashx_new ();
    zhashx_set_destructor (self->windows, s_free_item);
    self->held = zhashx_new ();
    zhashx_set_destructor (self->held, s_free_item);
    self->dead_mem = zlistx_new ();
    zlistx_set_destructor (self->dead_mem, s_dead_free);
    self->ring_cap = PL_RING_MIN;
    self->ring = (pl_job_t **) calloc (self->ring_cap, sizeof (pl_job_t *));
    //  Job ids never go back for one origin: a worker's duplicate filter
    //  is keyed by (origin, job id), so a producer restarted under the same
    //  node id that reused ids would have its new jobs acked unrun. Without
    //  an outbox the ids start at the wall clock in ms << 20 (a later
    //  incarnation starts above every id an earlier one made unless that
    //  one made 2^20 jobs per ms of its life, or the wall clock went back);
    //  an outbox carries its own highest id instead (pl_outbox_open).
    self->ring_base = self->next_id = self->first_id =
        (mesh_clock_ms () << PL_ID_CLOCK_SHIFT) + 1;
    self->outbox_lock = -1;
    self->hold_jobs = MESH_DEFAULT_HOLD_JOBS;
    self->hold_bytes = 256u * 1024 * 1024;
    self->dead_next = 1;
    self->tick_fn = s_tick;
    self->plugin = mesh_node_register (node, &s_pipeline_ops, self);
    if (!self->plugin || mesh_node_on_tick (node, PL_TICK_MS, s_tick, self)) {
        mesh_pipeline_destroy (&self);
        return NULL;
    }
    self->tick_ms = PL_TICK_MS;
    return self;
}

void
mesh_pipeline_destroy (mesh_pipeline_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mesh_pipeline_t *self = *self_p;
    mesh_node_unregister (&self->plugin);
    mesh_node_on_tick (self->node, PL_TICK_MS, NULL, self);     //  either tick
    pthread_mutex_lock (&self->lock);
    //  worker side: what we owe goes out; jobs held for later go back
    pl_worker_destroy (self);
    if (zhashx_size (self->works)) {
        zhashx_purge (self->works);
        pl_announce (self);
    }
    pl_producer_destroy (self);
    pthread_mutex_unlock (&self->lock);
    pl_count (self, NULL, "pipeline.acked", self->acked);
    pl_count (self, NULL, "pipeline.pushed", self->pushed);
    pl_count (self, NULL, "pipeline.done", self->done);
    pl_count (self, NULL, "pipeline.duplicates", self->duplicates);
    pl_count (self, NULL, "pipeline.sent.batched", self->batched);
    zhashx_destroy (&self->slots);
    zhashx_destroy (&self->queues);
    zhashx_destroy (&self->queue_opts);
    zhashx_destroy (&self->works);
    zhashx_destroy (&self->owed);
    zhashx_destroy (&self->windows);
    zhashx_destroy (&self->held);
    zlistx_destroy (&self->dead_mem);
    zlistx_destroy (&self->origins);
    while (self->free_jobs) {
        pl_job_t *job = self->free_jobs;
        self->free_jobs = job->next;
        free (job);
    }
    free (self->ring);
    free (self->jobs_buf);
    mesh_store_destroy (&self->outbox);
    mesh_store_destroy (&self->dead);
    pl_outbox_unlock (self);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

mesh_node_t *
mesh_pipeline_node (mesh_pipeline_t *self)
{
    assert (self);
    return self->node;
}

int
mesh_pipeline_set_outbox (mesh_pipeline_t *self, const char *dir, int sync_mode)
{
    assert (self);
    if (!dir || !*dir || (sync_mode != MESH_STORE_SYNC && sync_mode != MESH_STORE_GROUP))
        return mesh_set_error (MESH_EINVAL, "outbox: a directory and MESH_STORE_SYNC or GROUP");
    pthread_mutex_lock (&self->lock);
    int rc;
    if (self->outbox || self->next_id != self->first_id)
        rc = mesh_set_error (MESH_ESTATE, "outbox: set it once, before the first push");
    else
        rc = pl_outbox_open (self, dir, sync_mode);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
mesh_pipeline_set_hold (mesh_pipeline_t *self, size_t max_jobs, size_t max_bytes)
{
    assert (self);
    if (max_jobs < 1 || max_bytes < 1)
        return mesh_set_error (MESH_EINVAL, "hold: at least one job and one byte");
    pthread_mutex_lock (&self->lock);
    self->hold_jobs = max_jobs;
    self->hold_bytes = max_bytes;
    pthread_mutex_unlock (&self->lock);
    return 0;
}

int
mesh_pipeline_set_queue (mesh_pipeline_t *self, const char *queue, const mesh_queue_opts_t *opts)
{
    assert (self);
    if (!queue || !mesh_subject_valid (queue))
        return mesh_set_error (MESH_EINVAL, "bad queue name");
    mesh_queue_opts_t o = { 0 };
    if (opts)
        o = *opts;
    if (o.ack_timeout_ms < 0 || o.max_deliveries < 0 || o.max_deliveries > PL_MAX_DELIVERIES
    ||  o.backoff_ms < 0 || o.backoff_ms > PL_BACKOFF_MAX)
        return mesh_set_error (MESH_EINVAL, "bad queue options");
    o.ack_timeout_ms = o.ack_timeout_ms? o.ack_timeout_ms: MESH_DEFAULT_ACK_TIMEOUT;
    o.max_deliveries = o.max_deliveries? o.max_deliveries: MESH_DEFAULT_MAX_DELIVERIES;
    o.backoff_ms = o.backoff_ms? o.backoff_ms: 100;
    pthread_mutex_lock (&self->lock);
    mesh_queue_opts_t *copy = (mesh_queue_opts_t *) malloc (sizeof o);
    *copy = o;
    zhashx_update (self->queue_opts, queue, copy);
    pl_queue_t *q = pl_queue_get (self, queue, true);
    q->ack_timeout = o.ack_timeout_ms;
    q->max_deliveries = o.max_deliveries;
    q->backoff = o.backoff_ms;
    pthread_mutex_unlock (&self->lock);
    return 0;
}

//  ---------------------------------------------------------------------
//  Dead letters

typedef struct {
    uint64_t key;
    void *data;
    size_t size;
} s_dead_copy_t;

static bool
s_collect_dead (uint64_t key, const void *data, size_t size, void *arg)
{
    s_dead_copy_t *copy = (s_dead_copy_t *) malloc (sizeof (s_dead_copy_t));
    copy->key = key;
    copy->data = malloc (size? size: 1);
    memcpy (copy->data, data, size);
    copy->size = size;
    zlistx_add_end ((zlistx_t *) arg, copy);
    return true;
}

static void
s_dead_copy_free (void **item)
{
    s_dead_copy_t *copy = (s_dead_copy_t *) *item;
    if (copy)
        free (copy->data);
    free (copy);
    *item = NULL;
}

//  Copies of the dead letters (the callbacks may call us back)
static zlistx_t *
s_dead_copies (mesh_pipeline_t *self)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, s_dead_copy_free);
    pthread_mutex_lock (&self->lock);
    if (self->dead)
        mesh_store_scan (self->dead, 0, s_collect_dead, list);
    else
        for (pl_dead_t *dead = (pl_dead_t *) zlistx_first (self->dead_mem); dead;
             dead = (pl_dead_t *) zlistx_next (self->dead_mem))
            s_collect_dead (dead->key, dead->data, dead->size, list);
    pthread_mutex_unlock (&self->lock);
    return list;
}

size_t
mesh_dlq_list (mesh_pipeline_t *self, const char *queue, mesh_dead_fn *fn, void *arg)
{
    assert (self);
    zlistx_t *list = s_dead_copies (self);
    pl_record_t *rec = (pl_record_t *) malloc (sizeof (pl_record_t));
    size_t visited = 0;
    for (s_dead_copy_t *copy = (s_dead_copy_t *) zlistx_first (list); copy;
         copy = (s_dead_copy_t *) zlistx_next (list)) {
        if (!pl_record_decode (copy->data, copy->size, rec) || rec->type != PL_REC_DEAD) {
            pl_count (self, NULL, "pipeline.dead.corrupt", 1);
            continue;
        }
        if (queue && !streq (queue, rec->queue))
            continue;
        mesh_head_t head = {
            .kind = PL_KIND_JOB, .seq = rec->deliveries, .id = rec->id,
            .subject = rec->queue, .ctype = rec->ctype [0]? rec->ctype: NULL,
            .headers = rec->headers, .header_count = rec->header_count
        };
        mesh_msg_t *msg = mesh_msg_new (&head, rec->body, rec->size, rec->origin, NULL);
        if (!msg)
            continue;
        visited++;
        bool go_on = fn? fn (rec->queue, rec->id, msg, rec->reason, arg): true;
        mesh_msg_destroy (&msg);
        if (!go_on)
            break;
    }
    free (rec);
    zlistx_destroy (&list);
    return visited;
}

int
mesh_dlq_replay (mesh_pipeline_t *self, const char *queue, uint64_t job_id)
{
    assert (self);
    if (!queue || !mesh_subject_valid (queue))
        return mesh_set_error (MESH_EINVAL, "bad queue name");
    zlistx_t *list = s_dead_copies (self);
    pl_record_t *rec = (pl_record_t *) malloc (sizeof (pl_record_t));
    int replayed = 0, rc = 0;
    for (s_dead_copy_t *copy = (s_dead_copy_t *) zlistx_first (list); copy;
         copy = (s_dead_copy_t *) zlistx_next (list)) {
        if (!pl_record_decode (copy->data, copy->size, rec) || rec->type != PL_REC_DEAD
        ||  !streq (queue, rec->queue) || (job_id && rec->id != job_id))
            continue;
        mesh_head_t head = {
            .subject = rec->queue, .ctype = rec->ctype [0]? rec->ctype: NULL,
            .headers = rec->headers, .header_count = rec->header_count
        };
        if (!mesh_push_ex (self, &head, rec->body, rec->size)) {
            rc = -1;            //  mesh_push said why
            break;
        }
        pthread_mutex_lock (&self->lock);
        if (self->dead) {
            mesh_store_delete (self->dead, copy->key);
            mesh_store_flush (self->dead);
        }
        else
            for (pl_dead_t *dead = (pl_dead_t *) zlistx_first (self->dead_mem); dead;
                 dead = (pl_dead_t *) zlistx_next (self->dead_mem))
                if (dead->key == copy->key) {
                    zlistx_delete (self->dead_mem, zlistx_cursor (self->dead_mem));
                    break;
                }
        pthread_mutex_unlock (&self->lock);
        replayed++;
    }
    free (rec);
    zlistx_destroy (&list);
    pl_count (self, NULL, "pipeline.dead.replayed", (uint64_t) replayed);
    return rc && !replayed? -1: replayed;
}
