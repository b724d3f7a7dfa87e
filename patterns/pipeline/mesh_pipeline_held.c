/*  =========================================================================
    mesh_pipeline_held - the jobs a producer holds: table by id, free list, failure
    and dead letters

    A job is held from mesh_push() until a worker acks it or it is a dead
    letter. Jobs live in a table indexed by id (ids are sequential per
    producer process: a power-of-two ring that grows when the span of ids
    held outgrows it) and are recycled through a free list. Calls only
    mesh_pipeline_util.c and the record codec.
    ========================================================================= */

#include "mesh_pipeline.h"

#define PL_RING_MAX     (1u << 24)      //  span of ids held at once

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

pl_job_t *
pl_job_get (mesh_pipeline_t *self, uint64_t id)
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
void
pl_job_finish (mesh_pipeline_t *self, pl_job_t *job)
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
void
pl_job_unlink (mesh_pipeline_t *self, pl_job_t *job)
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

void
pl_job_dead (mesh_pipeline_t *self, pl_job_t *job, const char *reason)
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
    job->queue->dead++;
    mesh_node_post_event (self->node, MESH_EVENT_DEAD_LETTER, "DEAD_LETTER", peer,
                          job->queue->name, job->id);
    pl_job_finish (self, job);
}

//  A delivery failed (job in no list): try again, or a dead letter
void
pl_job_failed (mesh_pipeline_t *self, pl_job_t *job, const char *reason, bool nacked)
{
    snprintf (job->reason, sizeof job->reason, "%s", reason);
    if ((int) job->deliveries >= job->queue->max_deliveries) {
        char text [128];
        snprintf (text, sizeof text, "%s (delivery %u of %d)", reason, job->deliveries,
                  job->queue->max_deliveries);
        pl_job_dead (self, job, text);
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
        pl_job_unlink (self, job);
        pl_job_failed (self, job, reason, false);
        count++;
    }
    pl_count (self, slot->peer, "pipeline.redelivered", count);
    pl_count (self, slot->peer, "pipeline.redelivered.worker-gone", count);
}

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
pl_job_t *
pl_job_make (mesh_pipeline_t *self, pl_queue_t *queue, uint64_t id, const char *origin,
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

