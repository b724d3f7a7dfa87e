/*  =========================================================================
    mesh_pipeline_util - what every file of the pipeline uses: clock, counters, job lists,
    interned origins, the tick's pace

    The bottom of the pipeline: it calls nothing of the other files. The
    files above it call down only: mesh_pipeline.c (construction, tick,
    dead letters) -> mesh_pipeline_producer.c and mesh_pipeline_worker.c;
    the producer -> mesh_pipeline_dispatch.c (workers known, sending) ->
    mesh_pipeline_held.c (the jobs a producer holds); all -> here and the
    codecs (mesh_pipeline_record.c, mesh_pipeline_jobs.c).
    ========================================================================= */

#include "mesh_pipeline.h"

//  The coarse clock (a few ms of resolution) is enough for ack timeouts,
//  backoffs and group commits: it is read for every dispatch of a job
int64_t
pl_mono_ms (void)
{
    return mesh_coarse_ms ();
}

void
pl_count (mesh_pipeline_t *self, const char *peer, const char *name, uint64_t delta)
{
    if (delta)
        mesh_node_count (self->node, peer, name, delta);
}

//  ---------------------------------------------------------------------
//  Intrusive job lists

void
pl_list_add_tail (pl_list_t *list, pl_job_t *job, pl_where_t where)
{
    job->next = NULL;
    job->prev = list->tail;
    if (list->tail)
        list->tail->next = job;
    else
        list->head = job;
    list->tail = job;
    list->size++;
    job->where = where;
}

void
pl_list_add_head (pl_list_t *list, pl_job_t *job, pl_where_t where)
{
    job->prev = NULL;
    job->next = list->head;
    if (list->head)
        list->head->prev = job;
    else
        list->tail = job;
    list->head = job;
    list->size++;
    job->where = where;
}

void
pl_list_remove (pl_list_t *list, pl_job_t *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        list->head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        list->tail = job->prev;
    job->prev = job->next = NULL;
    list->size--;
    job->where = PL_NOWHERE;
}

const char *
pl_intern_origin (mesh_pipeline_t *self, const char *origin)
{
    if (!origin || !*origin || streq (origin, self->origin))
        return self->origin;
    for (char *known = (char *) zlistx_first (self->origins); known;
         known = (char *) zlistx_next (self->origins))
        if (streq (known, origin))
            return known;
    char *copy = strdup (origin);
    zlistx_add_end (self->origins, copy);
    return copy;
}

//  The tick runs every PL_TICK_MS while there is something to flush,
//  commit or dispatch, and every PL_IDLE_TICK_MS once there was nothing
//  for PL_IDLE_AFTER ticks: an idle node then wakes 4 times a second, not
//  100 (measured: 0.8 % of a core at 10 ms). Lock held.
void
pl_set_tick (mesh_pipeline_t *self, int tick_ms)
{
    if (self->tick_ms == tick_ms)
        return;
    mesh_node_on_tick (self->node, 0, NULL, self);
    if (mesh_node_on_tick (self->node, tick_ms, self->tick_fn, self) == 0)
        self->tick_ms = tick_ms;
    else
        self->tick_ms = 0;
}

void
pl_wake (mesh_pipeline_t *self)
{
    self->quiet_ticks = 0;
    if (self->tick_ms != PL_TICK_MS)
        pl_set_tick (self, PL_TICK_MS);
}
