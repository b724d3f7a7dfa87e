/*  =========================================================================
    mesh_pipeline_stats - the pipeline's figures in a STATS answer

    Producer side, per queue pushed to from here: jobs held ("pending":
    not acked, not dead), of which waiting for credit ("ready"), waiting
    for their backoff after a nack ("delayed") and at a worker ("in_flight"),
    the workers it has, and since the start the jobs acked ("done") and
    sent to the dead letters ("dead"). Worker side, per queue worked here:
    jobs handed to the handler ("handled") and those it failed ("failed").
    Every figure is kept where it changes anyway, under the lock that
    change holds; the answer holds the MESH_STATS_TOP busiest rows.
    ========================================================================= */

#include "mesh_pipeline.h"
#include "mesh_top.h"

void
pl_work_failed (mesh_pipeline_t *self, const char *queue)
{
    pl_work_t *work = self->hot_work;
    if (!work || !streq (work->name, queue))
        work = (pl_work_t *) zhashx_lookup (self->works, queue);
    if (work)
        work->failed++;
}

static void
s_write_queues (mesh_pipeline_t *self, mesh_stats_t *out)
{
    mesh_top_t top = { .count = 0 };
    for (pl_queue_t *queue = (pl_queue_t *) zhashx_first (self->queues); queue;
         queue = (pl_queue_t *) zhashx_next (self->queues))
        //  what waits comes first, then what went through
        mesh_top_offer (&top, queue->pending + queue->done + queue->dead, queue->order, queue);
    mesh_stats_open (out, "queues", '[');
    for (size_t i = 0; i < top.count; i++) {
        const pl_queue_t *queue = (const pl_queue_t *) top.rows [i].item;
        uint64_t in_flight = 0;
        for (size_t s = 0; s < queue->slot_count; s++)
            in_flight += queue->slots [s]->inflight;
        mesh_stats_open (out, NULL, '{');
        mesh_stats_str (out, "queue", queue->name);
        mesh_stats_uint (out, "pending", queue->pending);
        mesh_stats_uint (out, "ready", queue->ready.size);
        mesh_stats_uint (out, "delayed", queue->delayed.size);
        mesh_stats_uint (out, "in_flight", in_flight);
        mesh_stats_uint (out, "workers", queue->slot_count);
        mesh_stats_uint (out, "done", queue->done);
        mesh_stats_uint (out, "dead", queue->dead);
        mesh_stats_close (out);
    }
    mesh_stats_close (out);
    mesh_top_totals (&top, out, "queues");
}

static void
s_write_works (mesh_pipeline_t *self, mesh_stats_t *out)
{
    mesh_top_t top = { .count = 0 };
    for (pl_work_t *work = (pl_work_t *) zhashx_first (self->works); work;
         work = (pl_work_t *) zhashx_next (self->works))
        mesh_top_offer (&top, work->handled, work->order, work);
    mesh_stats_open (out, "works", '[');
    for (size_t i = 0; i < top.count; i++) {
        const pl_work_t *work = (const pl_work_t *) top.rows [i].item;
        mesh_stats_open (out, NULL, '{');
        mesh_stats_str (out, "queue", work->name);
        mesh_stats_uint (out, "prefetch", (uint64_t) work->prefetch);
        mesh_stats_uint (out, "handled", work->handled);
        mesh_stats_uint (out, "failed", work->failed);
        mesh_stats_close (out);
    }
    mesh_stats_close (out);
    mesh_top_totals (&top, out, "works");
}

void
pl_stats (void *arg, mesh_stats_t *out)
{
    mesh_pipeline_t *self = (mesh_pipeline_t *) arg;
    if (mesh_stats_lock (&self->lock, out))
        return;
    s_write_queues (self, out);
    s_write_works (self, out);
    mesh_stats_uint (out, "held_for_later", zhashx_size (self->held));
    pthread_mutex_unlock (&self->lock);
}
