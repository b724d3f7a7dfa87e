/*  =========================================================================
    mesh_pipeline_producer - push, fair dispatch, acks, redelivery, outbox

    A job is held here from mesh_push() until a worker acks it; on every
    failure it goes back: a nack puts it in the delayed list for a backoff
    (backoff_ms doubled per delivery, at most PL_BACKOFF_MAX) and then to
    the front of the queue; an ack timeout or the worker's departure puts
    it at the front at once. Each send counts a delivery; a job that fails
    its max_deliveries-th delivery is a dead letter (LMDB with a data dir,
    else a bounded list in memory), posted as a DEAD_LETTER event.

    Durable outbox. The store is opened in group mode whatever the policy:
    with MESH_STORE_SYNC, mesh_push() flushes after its put, so the job and
    every delete (ack) before it are on disk when push returns; with
    MESH_STORE_GROUP, jobs join a group committed when PL_GROUP_JOBS wait,
    after PL_GROUP_MS, at each tick and by mesh_pipeline_flush(). A job is
    sent to a worker only once it is committed, so nothing runs that a
    crash could forget. Deletes (acks) are committed with the next group or
    tick: a crash may lose a few, which redelivers those jobs (duplicates,
    never loss). Delivery counts are not stored: they restart at 0 when a
    producer restarts on its outbox.
    ========================================================================= */

#include "mesh_pipeline.h"

#define PL_RING_MAX     (1u << 24)      //  span of ids held at once

//  ---------------------------------------------------------------------
//  Queues and slots

pl_queue_t *
pl_queue_get (mesh_pipeline_t *self, const char *name, bool create)
{
    pl_queue_t *queue = self->hot_queue;
    if (queue && streq (queue->name, name))
        return queue;
    queue = (pl_queue_t *) zhashx_lookup (self->queues, name);
    if (!queue && create) {
        queue = (pl_queue_t *) zmalloc (sizeof (pl_queue_t));
        snprintf (queue->name, sizeof queue->name, "%s", name);
        mesh_queue_opts_t *opts = (mesh_queue_opts_t *) zhashx_lookup (self->queue_opts, name);
        queue->ack_timeout = opts? opts->ack_timeout_ms: MESH_DEFAULT_ACK_TIMEOUT;
        queue->max_deliveries = opts? opts->max_deliveries: MESH_DEFAULT_MAX_DELIVERIES;
        queue->backoff = opts? opts->backoff_ms: 100;
        zhashx_insert (self->queues, name, queue);
        self->generation = (uint64_t) -1;       //  find the workers it already has
    }
    if (queue)
        self->hot_queue = queue;
    return queue;
}

void
pl_queue_destroy (pl_queue_t **queue_p)
{
    if (*queue_p) {
        free ((*queue_p)->slots);
        free (*queue_p);
        *queue_p = NULL;
    }
}

void
pl_slot_destroy (pl_slot_t **slot_p)
{
    free (*slot_p);
    *slot_p = NULL;
}

//  ---------------------------------------------------------------------
//  Jobs: a free list, and the table by id

static pl_job_t *
s_job_new (mesh_pipeline_t *self)
{
    pl_job_t *job = self->free_jobs;
    if (job) {
        self->free_jobs = job->next;
        self->free_count--;
    }
    else
        job = (pl_job_t *) malloc (sizeof (pl_job_t));
    if (job) {
        //  everything but the inline body, which is overwritten anyway
        memset (job, 0, offsetof (pl_job_t, inline_body));
    }
    return job;
}

void
pl_job_release (mesh_pipeline_t *self, pl_job_t *job)
{
    if (job->body != job->inline_body)
        free (job->body);
    free (job->ctype);
    free (job->headers);
    //  keep enough for a full window of traffic, free the rest
    if (self->free_count < 65536) {
        job->next = self->free_jobs;
        self->free_jobs = job;
        self->free_count++;
    }
    else
        free (job);
}

static int
s_ring_put (mesh_pipeline_t *self, pl_job_t *job)
{
    if (job->id - self->ring_base >= self->ring_cap) {
        size_t cap = self->ring_cap;
        while (job->id - self->ring_base >= cap && cap < PL_RING_MAX)
            cap *= 2;
        if (job->id - self->ring_base >= cap)
            return mesh_set_error (MESH_EFULL, "the oldest job held is too far behind the newest");
        pl_job_t **ring = (pl_job_t **) calloc (cap, sizeof (pl_job_t *));
        if (!ring)
            return mesh_set_error (MESH_ESYS, "out of memory");
        for (size_t i = 0; i < self->ring_cap; i++)
            if (self->ring [i])
                ring [self->ring [i]->id & (cap - 1)] = self->ring [i];
        free (self->ring);
        self->ring = ring;
        self->ring_cap = cap;
    }
    self->ring [job->id & (self->ring_cap - 1)] = job;
    return 0;
}

static pl_job_t *
s_ring_get (mesh_pipeline_t *self, uint64_t id)
{
    if (id < self->ring_base || id >= self->next_id)
        return NULL;
    pl_job_t *job = self->ring [id & (self->ring_cap - 1)];
    return job && job->id == id? job: NULL;
}

static void
s_ring_del (mesh_pipeline_t *self, uint64_t id)
{
    self->ring [id & (self->ring_cap - 1)] = NULL;
    while (self->ring_base < self->next_id && !self->ring [self->ring_base & (self->ring_cap - 1)])
        self->ring_base++;
}

//  The job is done (acked or dead): forget it. Not in any list.
static void
s_job_finish (mesh_pipeline_t *self, pl_job_t *job)
{
    if (self->outbox) {
        mesh_store_delete (self->outbox, job->id);
        self->outbox_dirty = true;
    }
    s_ring_del (self, job->id);
    self->pending--;
    self->pending_bytes -= job->size;
    job->queue->pending--;
    pl_job_release (self, job);
}

//  Take a job out of whatever list holds it
static void
s_job_unlink (mesh_pipeline_t *self, pl_job_t *job)
{
    switch (job->where) {
        case PL_INFLIGHT:
            pl_list_remove (&job->slot->jobs, job);
            job->slot->inflight--;
            job->slot = NULL;
            break;
        case PL_READY:
            pl_list_remove (&job->queue->ready, job);
            break;
        case PL_DELAYED:
            pl_list_remove (&job->queue->delayed, job);
            break;
        case PL_UNCOMMITTED:
            pl_list_remove (&self->uncommitted, job);
            break;
        default:
            break;
    }
}

//  ---------------------------------------------------------------------
//  Dead letters

static void
s_dead (mesh_pipeline_t *self, pl_job_t *job, const char *reason)
{
    pl_record_in_t in = {
        .type = PL_REC_DEAD, .id = job->id, .deliveries = job->deliveries,
        .time_ms = job->time_ms, .queue = job->queue->name, .ctype = job->ctype,
        .origin = job->origin, .reason = reason,
        .headers = (const char *const *) job->headers, .header_count = job->header_count,
        .body = job->body, .size = job->size
    };
    size_t size = pl_record_size (&in);
    uint8_t *data = size? (uint8_t *) malloc (size): NULL;
    const char *peer = job->last_worker [0]? job->last_worker: NULL;
    if (!data || !pl_record_encode (&in, data, size)) {
        pl_count (self, peer, "pipeline.dropped.dead-letter-failed", 1);
        free (data);
    }
    else
    if (self->dead) {
        if (mesh_store_put (self->dead, self->dead_next++, data, size))
            pl_count (self, peer, "pipeline.dropped.dead-letter-failed", 1);
        free (data);
    }
    else {
        if (zlistx_size (self->dead_mem) >= PL_DLQ_MEMORY) {
            zlistx_first (self->dead_mem);
            zlistx_delete (self->dead_mem, zlistx_cursor (self->dead_mem));
            pl_count (self, NULL, "pipeline.dropped.dead-letter-full", 1);
        }
        pl_dead_t *dead = (pl_dead_t *) malloc (sizeof (pl_dead_t));
        *dead = (pl_dead_t) { self->dead_next++, data, size };
        zlistx_add_end (self->dead_mem, dead);
    }
    pl_count (self, peer, "pipeline.dead", 1);
    mesh_node_post_event (self->node, MESH_EVENT_DEAD_LETTER, "DEAD_LETTER", peer,
                          job->queue->name, job->id);
    s_job_finish (self, job);
}

//  A delivery failed (job in no list): try again, or a dead letter
static void
s_failed (mesh_pipeline_t *self, pl_job_t *job, const char *reason, bool nacked)
{
    snprintf (job->reason, sizeof job->reason, "%s", reason);
    if ((int) job->deliveries >= job->queue->max_deliveries) {
        char text [128];
        snprintf (text, sizeof text, "%s (delivery %u of %d)", reason, job->deliveries,
                  job->queue->max_deliveries);
        s_dead (self, job, text);
        return;
    }
    if (nacked) {
        int shift = job->deliveries > 16? 16: (int) job->deliveries - 1;
        int64_t delay = (int64_t) job->queue->backoff << (shift > 0? shift: 0);
        job->due = pl_mono_ms () + (delay > PL_BACKOFF_MAX? PL_BACKOFF_MAX: delay);
        pl_list_add_tail (&job->queue->delayed, job, PL_DELAYED);
    }
    else
        pl_list_add_head (&job->queue->ready, job, PL_READY);
}

//  A worker left (or restarted, or a link broke): everything in flight
//  there goes back. The caller pumps.
void
pl_slot_gone (mesh_pipeline_t *self, pl_slot_t *slot, const char *reason)
{
    slot->alive = false;
    slot->credit = -1;          //  if it comes back (restarted), its announcement holds
    uint64_t count = 0;
    //  from the newest, so adding each at the head keeps the oldest first
    while (slot->jobs.tail) {
        pl_job_t *job = slot->jobs.tail;
        s_job_unlink (self, job);
        s_failed (self, job, reason, false);
        count++;
    }
    pl_count (self, slot->peer, "pipeline.redelivered", count);
    pl_count (self, slot->peer, "pipeline.redelivered.worker-gone", count);
}

//  ---------------------------------------------------------------------
//  Dispatch

static uint32_t
s_window (const pl_slot_t *slot)
{
    return slot->credit >= 0? (uint32_t) slot->credit: slot->window;
}

//  The least loaded worker with credit, round robin among equals; another
//  worker than the last one for a job tried before, where there is one
static pl_slot_t *
s_pick (pl_queue_t *queue, const pl_job_t *job, int64_t now)
{
    pl_slot_t *best = NULL, *other = NULL;
    size_t best_at = 0, n = queue->slot_count;
    for (size_t k = 0; k < n; k++) {
        size_t i = (queue->rr + k) % n;
        pl_slot_t *slot = queue->slots [i];
        uint32_t window = s_window (slot);
        if (slot->inflight >= window || slot->blocked_until > now)
            continue;
        if (job->deliveries && streq (slot->peer, job->last_worker)) {
            other = other? other: slot;
            continue;
        }
        if (!best || (uint64_t) slot->inflight * s_window (best)
                   < (uint64_t) best->inflight * window) {
            best = slot;
            best_at = i;
        }
    }
    if (best)
        queue->rr = best_at + 1;
    return best? best: other;
}

static int
s_send (mesh_pipeline_t *self, pl_slot_t *slot, pl_job_t *job, int64_t now)
{
    //  ask the worker to ack this one without waiting for a full batch or
    //  its tick when the producer will wait for that ack: no credit left
    //  there after it, or a job that comes alone (nothing sent there for
    //  a while). A stream of jobs is acked in batches.
    bool last = slot->inflight + 1 >= s_window (slot) || now - slot->last_sent >= PL_LONE_MS;
    slot->last_sent = now;
    mesh_head_t head = {
        .kind = PL_KIND_JOB, .flags = last? PL_FLAG_FLUSH: 0,
        .id = job->id, .seq = job->deliveries + 1,
        .subject = job->queue->name, .reply = job->origin, .ctype = job->ctype,
        .headers = (const char *const *) job->headers, .header_count = job->header_count
    };
    return mesh_node_send (self->node, slot->peer, &head, job->body, job->size);
}

//  A job was sent to slot: it is in flight there now
static void
s_sent (pl_queue_t *queue, pl_slot_t *slot, pl_job_t *job, int64_t now)
{
    pl_list_remove (&queue->ready, job);
    job->deliveries++;
    job->sent_at = now;
    job->slot = slot;
    if (job->deliveries == 1)
        memcpy (job->last_worker, slot->peer, sizeof job->last_worker);
    else
    if (!streq (job->last_worker, slot->peer)) {
        memcpy (job->prev_worker, job->last_worker, sizeof job->prev_worker);
        memcpy (job->last_worker, slot->peer, sizeof job->last_worker);
    }
    pl_list_add_tail (&slot->jobs, job, PL_INFLIGHT);
    slot->inflight++;
}

//  A job that may travel in a JOBS batch: no content type, no headers
static bool
s_batchable (const pl_job_t *job)
{
    return !job->ctype && !job->header_count
        && pl_jobs_entry_size (job->size) <= PL_JOBS_BYTES;
}

//  The ready jobs from first that go to slot in one JOBS frame: what is
//  ready now (nothing waits to fill a batch), in queue order, within the
//  slot's credit, PL_JOBS_JOBS and PL_JOBS_BYTES, and no more than a
//  fair share of the ready jobs when the queue has several workers (the
//  next pick may go to another one). Stops at the first job that cannot
//  go with the others. Returns how many (1 = send first alone).
static size_t
s_gather (pl_queue_t *queue, pl_slot_t *slot, pl_job_t *first, pl_job_t **jobs)
{
    jobs [0] = first;
    if (!slot->batch || !s_batchable (first) || !first->next)
        return 1;
    size_t room = s_window (slot) - slot->inflight;
    size_t share = queue->slot_count > 1
                 ? (queue->ready.size + queue->slot_count - 1) / queue->slot_count
                 : queue->ready.size;
    size_t limit = room < share? room: share;
    limit = limit < PL_JOBS_JOBS? limit: PL_JOBS_JOBS;
    size_t n = 1, bytes = pl_jobs_entry_size (first->size);
    for (pl_job_t *job = first->next; job && n < limit; job = job->next) {
        if (!s_batchable (job) || job->origin != first->origin
        ||  bytes + pl_jobs_entry_size (job->size) > PL_JOBS_BYTES
        ||  (job->deliveries && streq (job->last_worker, slot->peer)))
            break;
        bytes += pl_jobs_entry_size (job->size);
        jobs [n++] = job;
    }
    return n;
}

//  Send jobs [0..n-1] of queue to slot in one JOBS frame
static int
s_send_jobs (mesh_pipeline_t *self, pl_slot_t *slot, pl_job_t **jobs, size_t n, int64_t now)
{
    if (!self->jobs_buf && !(self->jobs_buf = (uint8_t *) malloc (PL_JOBS_BYTES)))
        return mesh_set_error (MESH_ESYS, "out of memory");
    //  the last one asks for the acks at once, as a lone JOB would
    bool last = slot->inflight + n >= s_window (slot) || now - slot->last_sent >= PL_LONE_MS;
    slot->last_sent = now;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        pl_jobs_entry_t entry = {
            .id = jobs [i]->id, .seq = jobs [i]->deliveries + 1,
            .flags = i == n - 1 && last? PL_FLAG_FLUSH: 0,
            .body = jobs [i]->body, .size = jobs [i]->size
        };
        at = pl_jobs_put (self->jobs_buf, PL_JOBS_BYTES, at, &entry);
        assert (at);            //  s_gather kept within the bounds
    }
    mesh_head_t head = {
        .kind = PL_KIND_JOBS, .id = jobs [0]->id, .seq = n,
        .subject = jobs [0]->queue->name, .reply = jobs [0]->origin
    };
    return mesh_node_send (self->node, slot->peer, &head, self->jobs_buf, at);
}

//  Send ready jobs of queue while workers have credit: several at once in
//  a JOBS frame where they can (s_gather), else one JOB each
void
pl_pump (mesh_pipeline_t *self, pl_queue_t *queue)
{
    if (!queue->ready.head || !queue->slot_count)
        return;
    int64_t now = pl_mono_ms ();
    pl_job_t *job;
    pl_job_t *jobs [PL_JOBS_JOBS];
    while ((job = queue->ready.head)) {
        pl_slot_t *slot = s_pick (queue, job, now);
        if (!slot)
            break;
        size_t n = s_gather (queue, slot, job, jobs);
        if (n > 1 && s_send_jobs (self, slot, jobs, n, now) == 0) {
            for (size_t i = 0; i < n; i++)
                s_sent (queue, slot, jobs [i], now);
            self->batched += n;
            continue;
        }
        if (n > 1) {
            int err = mesh_errno ();
            if (err == MESH_EAGAIN)
                slot->blocked_until = now + PL_TICK_MS;
            else
            if (err == MESH_ENOPEER)
                slot->blocked_until = now + PL_RETURN_PAUSE_MS;
            else
                slot->batch = false;    //  never expected: one JOB each from now on
            continue;
        }
        if (s_send (self, slot, job, now)) {
            int err = mesh_errno ();
            if (err == MESH_EAGAIN)
                slot->blocked_until = now + PL_TICK_MS;     //  link full: others first
            else
            if (err == MESH_ENOPEER)
                slot->blocked_until = now + PL_RETURN_PAUSE_MS;   //  gone: the rebuild will say
            else {
                //  it can never be sent (too big for a link): not worth retrying
                pl_list_remove (&queue->ready, job);
                job->deliveries = (uint32_t) queue->max_deliveries;
                s_failed (self, job, mesh_last_error (), false);
            }
            continue;
        }
        s_sent (queue, slot, job, now);
    }
}

//  ---------------------------------------------------------------------
//  Push

//  Headers in one block: 2n pointers, then the strings
static char **
s_headers_copy (const char *const *headers, size_t count)
{
    size_t bytes = 2 * count * sizeof (char *);
    for (size_t i = 0; i < 2 * count; i++)
        bytes += strlen (headers [i]) + 1;
    char **copy = (char **) malloc (bytes);
    if (!copy)
        return NULL;
    char *at = (char *) (copy + 2 * count);
    for (size_t i = 0; i < 2 * count; i++) {
        size_t len = strlen (headers [i]) + 1;
        memcpy (at, headers [i], len);
        copy [i] = at;
        at += len;
    }
    return copy;
}

//  A job from its parts; id 0 = the next one. NULL with the reason set.
static pl_job_t *
s_job_make (mesh_pipeline_t *self, pl_queue_t *queue, uint64_t id, const char *origin,
            const char *ctype, const char *const *headers, size_t header_count,
            const void *body, size_t size, uint64_t time_ms)
{
    pl_job_t *job = s_job_new (self);
    if (!job) {
        mesh_set_error (MESH_ESYS, "out of memory");
        return NULL;
    }
    job->id = id? id: self->next_id;
    job->queue = queue;
    job->origin = pl_intern_origin (self, origin);
    job->time_ms = time_ms;
    job->size = size;
    job->body = size <= PL_INLINE_BODY? job->inline_body: malloc (size);
    job->ctype = ctype && *ctype? strdup (ctype): NULL;
    job->headers = header_count? s_headers_copy (headers, header_count): NULL;
    job->header_count = header_count;
    if (!job->body || (header_count && !job->headers)
    ||  s_ring_put (self, job)) {
        if (!job->body)
            job->body = job->inline_body;
        int err = mesh_errno ();
        pl_job_release (self, job);
        if (err != MESH_EFULL)
            mesh_set_error (MESH_ESYS, "out of memory");
        return NULL;
    }
    if (size)
        memcpy (job->body, body, size);
    if (job->id >= self->next_id)
        self->next_id = job->id + 1;
    self->pending++;
    self->pending_bytes += size;
    queue->pending++;
    return job;
}

static int
s_commit (mesh_pipeline_t *self)
{
    if (!self->outbox || (!self->uncommitted.head && !self->outbox_dirty))
        return 0;
    if (mesh_store_flush (self->outbox)) {
        pl_count (self, NULL, "pipeline.outbox.commit-failed", 1);
        return -1;
    }
    self->outbox_dirty = false;
    pl_job_t *job;
    while ((job = self->uncommitted.head)) {
        pl_list_remove (&self->uncommitted, job);
        pl_list_add_tail (&job->queue->ready, job, PL_READY);
        if (job->queue != self->hot_queue)
            pl_pump (self, job->queue);
    }
    if (self->hot_queue)
        pl_pump (self, self->hot_queue);
    return 0;
}

static bool
s_head_valid (const mesh_head_t *head, size_t size)
{
    if (!head->subject || !mesh_subject_valid (head->subject) || size > PL_REC_MAX_BODY
    ||  (head->ctype && strlen (head->ctype) > PL_REC_MAX_CTYPE)
    ||  head->header_count > PL_REC_MAX_HEADERS || (head->header_count && !head->headers))
        return false;
    size_t bytes = 0;
    for (size_t i = 0; i < head->header_count; i++) {
        const char *key = head->headers [2 * i], *value = head->headers [2 * i + 1];
        if (!key || !value || !*key || strlen (key) > PL_REC_MAX_KEY
        ||  strlen (value) > PL_REC_MAX_VALUE)
            return false;
        bytes += strlen (key) + strlen (value);
    }
    return bytes <= PL_REC_MAX_HBYTES;
}

uint64_t
mesh_push_ex (mesh_pipeline_t *self, const mesh_head_t *head, const void *body, size_t size)
{
    assert (self);
    assert (head);
    pthread_mutex_lock (&self->lock);
    pl_queue_t *queue = head->subject? pl_queue_get (self, head->subject, false): NULL;
    if (!queue || head->ctype || head->header_count) {
        if (!s_head_valid (head, size)) {
            pthread_mutex_unlock (&self->lock);
            mesh_set_error (MESH_EINVAL, "bad job: queue must be a subject (dotted tokens, "
                            "no wildcards); content type, headers and body within limits");
            return 0;
        }
        queue = pl_queue_get (self, head->subject, true);
    }
    if (size > PL_REC_MAX_BODY) {
        pthread_mutex_unlock (&self->lock);
        mesh_set_error (MESH_ETOOBIG, "job body over 256 MiB");
        return 0;
    }
    if (self->pending >= self->hold_jobs || self->pending_bytes + size > self->hold_bytes) {
        char detail [160];
        snprintf (detail, sizeof detail, "%zu jobs (%zu bytes) held, not acked yet: the bound "
                  "is %zu jobs, %zu bytes", self->pending, self->pending_bytes,
                  self->hold_jobs, self->hold_bytes);
        pthread_mutex_unlock (&self->lock);
        mesh_set_error (MESH_EFULL, detail);
        return 0;
    }
    pl_rebuild (self);
    pl_job_t *job = s_job_make (self, queue, 0, NULL, head->ctype, head->headers,
                                head->header_count, body, size,
                                self->outbox? mesh_clock_ms (): 0);
    if (!job) {
        pthread_mutex_unlock (&self->lock);
        return 0;
    }
    uint64_t id = job->id;
    if (self->outbox) {
        pl_record_in_t in = {
            .type = PL_REC_JOB, .id = id, .time_ms = job->time_ms, .queue = queue->name,
            .ctype = job->ctype, .origin = job->origin,
            .headers = (const char *const *) job->headers, .header_count = job->header_count,
            .body = job->body, .size = job->size
        };
        size_t rec_size = pl_record_size (&in);
        uint8_t *rec = (uint8_t *) malloc (rec_size);
        int rc = rec && pl_record_encode (&in, rec, rec_size)
               ? mesh_store_put (self->outbox, id, rec, rec_size): -1;
        free (rec);
        if (rc == 0 && self->sync_mode == MESH_STORE_SYNC && mesh_store_flush (self->outbox))
            rc = -1;
        if (rc) {
            //  not on disk: the caller gets the failure and keeps the job
            mesh_store_delete (self->outbox, id);     //  cancels a put still pending
            s_job_finish (self, job);
            pthread_mutex_unlock (&self->lock);
            mesh_set_error (MESH_ESYS, "outbox write failed");
            return 0;
        }
        if (self->sync_mode == MESH_STORE_SYNC) {
            self->outbox_dirty = false;
            pl_list_add_tail (&queue->ready, job, PL_READY);
        }
        else {
            if (!self->uncommitted.head)
                self->uncommitted_since = pl_mono_ms ();
            pl_list_add_tail (&self->uncommitted, job, PL_UNCOMMITTED);
            if (self->uncommitted.size >= PL_GROUP_JOBS
            ||  pl_mono_ms () - self->uncommitted_since >= PL_GROUP_MS)
                s_commit (self);
        }
    }
    else
        pl_list_add_tail (&queue->ready, job, PL_READY);
    pl_pump (self, queue);
    if (self->tick_ms != PL_TICK_MS)
        pl_wake (self);
    if (++self->pushed >= PL_COUNT_BATCH) {
        uint64_t pushed = self->pushed;
        self->pushed = 0;
        pthread_mutex_unlock (&self->lock);
        pl_count (self, NULL, "pipeline.pushed", pushed);
        return id;
    }
    pthread_mutex_unlock (&self->lock);
    return id;
}

uint64_t
mesh_push (mesh_pipeline_t *self, const char *queue, const void *body, size_t size)
{
    mesh_head_t head = { .subject = queue };
    return mesh_push_ex (self, &head, body, size);
}

int
mesh_pipeline_flush (mesh_pipeline_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    int rc = s_commit (self);
    pthread_mutex_unlock (&self->lock);
    return rc? mesh_set_error (MESH_ESYS, "outbox commit failed"): 0;
}

size_t
mesh_pipeline_pending (mesh_pipeline_t *self, const char *queue)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    size_t pending = self->pending;
    if (queue) {
        pl_queue_t *q = (pl_queue_t *) zhashx_lookup (self->queues, queue);
        pending = q? q->pending: 0;
    }
    pthread_mutex_unlock (&self->lock);
    return pending;
}

int
mesh_pipeline_wait_acked (mesh_pipeline_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = pl_mono_ms () + timeout_ms;
    while (mesh_pipeline_pending (self, NULL)) {
        int64_t left = deadline - pl_mono_ms ();
        if (left <= 0)
            return mesh_set_error (MESH_ETIMEDOUT, "jobs not acked before the timeout");
        if (mesh_node_dispatch (self->node, left < 50? (int) left: 50) < 0)
            return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  What workers send back

//  Queues a batch touched, to pump each once
typedef struct {
    pl_queue_t *queues [8];
    size_t count;
    bool overflow;
} s_touched_t;

static void
s_touch (s_touched_t *touched, pl_queue_t *queue)
{
    for (size_t i = 0; i < touched->count; i++)
        if (touched->queues [i] == queue)
            return;
    if (touched->count < 8)
        touched->queues [touched->count++] = queue;
    else
        touched->overflow = true;
}

static void
s_pump_touched (mesh_pipeline_t *self, s_touched_t *touched)
{
    if (touched->overflow)
        for (pl_queue_t *q = (pl_queue_t *) zhashx_first (self->queues); q;
             q = (pl_queue_t *) zhashx_next (self->queues))
            pl_pump (self, q);
    else
        for (size_t i = 0; i < touched->count; i++)
            pl_pump (self, touched->queues [i]);
}

void
pl_on_ack (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_pipeline_t *self = (mesh_pipeline_t *) arg;
    const void *ids = mesh_msg_body (msg);
    long count = pl_ids_count (ids, mesh_msg_size (msg), PL_ACK_BATCH);
    if (count < 0) {
        pl_count (self, mesh_msg_sender (msg), "pipeline.malformed.ack", 1);
        return;
    }
    s_touched_t touched = { .count = 0 };
    uint64_t unknown = 0, late = 0;
    const char *peer = mesh_msg_sender (msg);
    pl_slot_t *known = NULL;        //  a slot of this sender: one compare per batch
    pthread_mutex_lock (&self->lock);
    for (long i = 0; i < count; i++) {
        pl_job_t *job = s_ring_get (self, pl_ids_at (ids, (size_t) i));
        bool holder = job && job->where == PL_INFLIGHT
                   && (job->slot == known || streq (job->slot->peer, peer));
        if (holder)
            known = job->slot;
        //  a job taken back from a worker (timeout, exit) and done there
        //  after all is done; a peer it never went to cannot ack it
        if (!holder && job && job->deliveries
        &&  (streq (job->last_worker, peer) || streq (job->prev_worker, peer)))
            late++;
        else
        if (!holder) {
            unknown++;          //  acked before (a duplicate's ack), or never its job
            continue;
        }
        if (job->where == PL_INFLIGHT)
            s_touch (&touched, job->queue);
        s_job_unlink (self, job);
        s_job_finish (self, job);
        self->acked++;
    }
    s_pump_touched (self, &touched);
    uint64_t acked = self->acked >= PL_COUNT_BATCH? self->acked: 0;
    self->acked -= acked;
    pthread_mutex_unlock (&self->lock);
    pl_count (self, NULL, "pipeline.acked", acked);
    pl_count (self, mesh_msg_sender (msg), "pipeline.acks.unknown", unknown);
    pl_count (self, mesh_msg_sender (msg), "pipeline.acks.late", late);
}

void
pl_on_nack (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_pipeline_t *self = (mesh_pipeline_t *) arg;
    const char *peer = mesh_msg_sender (msg);
    const void *ids = mesh_msg_body (msg);
    long count = pl_ids_count (ids, mesh_msg_size (msg), PL_ACK_BATCH);
    if (count < 0) {
        pl_count (self, peer, "pipeline.malformed.nack", 1);
        return;
    }
    bool returned = (mesh_msg_flags (msg) & PL_FLAG_RETURNED) != 0;
    bool final = !returned && (mesh_msg_flags (msg) & PL_FLAG_NO_RETRY) != 0;
    const char *why = mesh_msg_header (msg, "reason");
    char reason [64];
    snprintf (reason, sizeof reason, "nack: %s", why && *why? why: "failed");
    s_touched_t touched = { .count = 0 };
    uint64_t nacked = 0, unknown = 0;
    pthread_mutex_lock (&self->lock);
    for (long i = 0; i < count; i++) {
        pl_job_t *job = s_ring_get (self, pl_ids_at (ids, (size_t) i));
        //  only the worker that holds it may fail it
        if (!job || job->where != PL_INFLIGHT || !streq (job->slot->peer, peer)) {
            unknown++;
            continue;
        }
        pl_slot_t *slot = job->slot;
        s_job_unlink (self, job);
        s_touch (&touched, job->queue);
        if (returned) {
            //  not attempted: no delivery counted, and that worker gets
            //  nothing for a while (it stops working the queue, or is full)
            job->deliveries -= job->deliveries > 0;
            slot->blocked_until = pl_mono_ms () + PL_RETURN_PAUSE_MS;
            pl_list_add_head (&job->queue->ready, job, PL_READY);
        }
        else
        if (final) {
            //  the worker failed it for good: no retry, whatever is left
            nacked++;
            s_dead (self, job, reason);
        }
        else {
            nacked++;
            s_failed (self, job, reason, true);
        }
    }
    s_pump_touched (self, &touched);
    pthread_mutex_unlock (&self->lock);
    pl_count (self, peer, returned? "pipeline.returned": "pipeline.nacked",
              returned? (uint64_t) count - unknown: nacked);
    pl_count (self, peer, final? "pipeline.rejected": "pipeline.redelivered", nacked);
    pl_count (self, peer, "pipeline.nacks.unknown", unknown);
}

void
pl_on_credit (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_pipeline_t *self = (mesh_pipeline_t *) arg;
    const char *peer = mesh_msg_sender (msg), *queue = mesh_msg_subject (msg);
    uint64_t window = mesh_msg_id (msg);
    if (!mesh_subject_valid (queue) || window > PL_MAX_PREFETCH) {
        pl_count (self, peer, "pipeline.malformed.credit", 1);
        return;
    }
    char key [33 + MESH_MAX_SUBJECT + 2];
    snprintf (key, sizeof key, "%s/%s", peer, queue);
    pthread_mutex_lock (&self->lock);
    pl_slot_t *slot = (pl_slot_t *) zhashx_lookup (self->slots, key);
    if (slot) {
        slot->credit = (int32_t) window;
        pl_pump (self, slot->queue);
    }
    pthread_mutex_unlock (&self->lock);
}

//  ---------------------------------------------------------------------
//  Housekeeping: group commit, backoffs, ack timeouts

void
pl_producer_tick (mesh_pipeline_t *self, int64_t now)
{
    s_commit (self);
    if (self->dead)
        mesh_store_flush (self->dead);
    for (pl_queue_t *queue = (pl_queue_t *) zhashx_first (self->queues); queue;
         queue = (pl_queue_t *) zhashx_next (self->queues)) {
        //  backoffs done: oldest due first, to the front
        pl_job_t *job = queue->delayed.tail;
        while (job) {
            pl_job_t *prev = job->prev;
            if (job->due <= now) {
                pl_list_remove (&queue->delayed, job);
                pl_list_add_head (&queue->ready, job, PL_READY);
            }
            job = prev;
        }
    }
    uint64_t timeouts = 0;
    for (pl_slot_t *slot = (pl_slot_t *) zhashx_first (self->slots); slot;
         slot = (pl_slot_t *) zhashx_next (self->slots)) {
        slot->blocked_until = slot->blocked_until <= now? 0: slot->blocked_until;
        pl_job_t *job;
        while ((job = slot->jobs.head) && now - job->sent_at >= job->queue->ack_timeout) {
            s_job_unlink (self, job);
            s_failed (self, job, "ack timeout", false);
            pl_count (self, slot->peer, "pipeline.redelivered", 1);
            timeouts++;
        }
    }
    pl_count (self, NULL, "pipeline.redelivered.timeout", timeouts);
    for (pl_queue_t *queue = (pl_queue_t *) zhashx_first (self->queues); queue;
         queue = (pl_queue_t *) zhashx_next (self->queues))
        pl_pump (self, queue);
}

//  ---------------------------------------------------------------------
//  The outbox

typedef struct {
    mesh_pipeline_t *self;
    pl_record_t *rec;
    uint64_t corrupt, loaded;
} s_load_t;

static bool
s_load_one (uint64_t key, const void *data, size_t size, void *arg)
{
    s_load_t *load = (s_load_t *) arg;
    mesh_pipeline_t *self = load->self;
    pl_record_t *rec = load->rec;
    if (!pl_record_decode (data, size, rec) || rec->type != PL_REC_JOB || rec->id != key) {
        load->corrupt++;
        return true;
    }
    pl_queue_t *queue = pl_queue_get (self, rec->queue, true);
    if (self->pending == 0)
        self->ring_base = key;      //  the first one held
    pl_job_t *job = s_job_make (self, queue, key, rec->origin, rec->ctype, rec->headers,
                                rec->header_count, rec->body, rec->size, rec->time_ms);
    if (!job) {
        load->corrupt++;
        return true;
    }
    pl_list_add_tail (&queue->ready, job, PL_READY);
    load->loaded++;
    return true;
}

//  The highest job id among the dead letters kept
static bool
s_dead_max_id (uint64_t key, const void *data, size_t size, void *arg)
{
    (void) key;
    s_load_t *load = (s_load_t *) arg;
    if (pl_record_decode (data, size, load->rec) && load->rec->type == PL_REC_DEAD
    &&  load->rec->id > load->loaded)
        load->loaded = load->rec->id;
    return true;
}

int
pl_outbox_open (mesh_pipeline_t *self, const char *dir, int sync_mode)
{
    self->outbox = mesh_store_new (dir, "pipeline-outbox", MESH_STORE_GROUP);
    self->dead = self->outbox? mesh_store_new (dir, "pipeline-dead", MESH_STORE_GROUP): NULL;
    if (!self->dead) {
        mesh_store_destroy (&self->outbox);
        return -1;              //  the store said why
    }
    self->sync_mode = sync_mode;
    self->dead_next = mesh_store_last (self->dead) + 1;
    s_load_t load = { self, (pl_record_t *) malloc (sizeof (pl_record_t)), 0, 0 };
    mesh_store_scan (self->outbox, 0, s_load_one, &load);
    pl_count (self, NULL, "pipeline.outbox.recovered", load.loaded);
    pl_count (self, NULL, "pipeline.outbox.corrupt", load.corrupt);
    //  Job ids go on from the last run's: a dead letter of this run must
    //  not share its id with one of an earlier run (dlq replay --job names
    //  one job), even once every job of that run was acked
    s_load_t dead = { self, load.rec, 0, 0 };
    mesh_store_scan (self->dead, 0, s_dead_max_id, &dead);
    free (load.rec);
    if (dead.loaded >= self->next_id) {
        self->next_id = dead.loaded + 1;
        if (self->pending == 0)
            self->ring_base = self->next_id;
    }
    return 0;
}

//  Jobs still held: kept by a durable outbox, lost (and counted) without
void
pl_producer_destroy (mesh_pipeline_t *self)
{
    if (self->outbox) {
        s_commit (self);
        mesh_store_flush (self->outbox);
    }
    if (self->dead)
        mesh_store_flush (self->dead);
    for (size_t i = 0; i < self->ring_cap; i++) {
        pl_job_t *job = self->ring [i];
        if (!job)
            continue;
        if (!self->outbox)
            pl_count (self, job->last_worker [0]? job->last_worker: NULL,
                      "pipeline.dropped.destroyed", 1);
        s_job_unlink (self, job);
        self->ring [i] = NULL;
        pl_job_release (self, job);
    }
    self->pending = 0;
}
