/*  =========================================================================
    mesh_pipeline_dispatch - the workers a producer knows, and sending jobs to them

    Workers are known from their announcements (pl_on_announce): a slot
    per (worker, queue) with its window and jobs in flight. pl_pump sends
    the ready jobs of a queue to the least loaded worker with credit, in
    JOBS frames where it can. Calls mesh_pipeline_held.c and below.
    ========================================================================= */

#include "mesh_pipeline.h"

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
        queue->order = zhashx_size (self->queues);
        zhashx_insert (self->queues, name, queue);
        if (self->plugin)       //  find the workers it already has
            mesh_plugin_resync (self->plugin);
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

//  The "inc" record of a worker's announcement, or NULL
static const mesh_record_t *
s_incarnation (const mesh_announcement_t *announcement)
{
    size_t count = announcement? mesh_announcement_count (announcement): 0;
    for (size_t i = 0; i < count; i++) {
        const mesh_record_t *record = mesh_announcement_record (announcement, i);
        if (streq (record->field [0], "inc") && record->fields >= 2)
            return record;
    }
    return NULL;
}

//  A prefetch: decimal digits only, 1..PL_MAX_PREFETCH; else 0
static uint32_t
s_prefetch (const char *text)
{
    uint32_t value = 0;
    size_t len = strlen (text);
    if (len == 0 || len > 6)
        return 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9')
            return 0;
        value = value * 10 + (uint32_t) (*c - '0');
    }
    return value <= PL_MAX_PREFETCH? value: 0;
}

//  One ["queue", name, prefetch] record we push to: its slot lives
static void
s_slot_up (mesh_pipeline_t *self, const char *peer, pl_queue_t *queue, uint32_t prefetch,
           bool batch)
{
    char key [33 + MESH_MAX_SUBJECT + 2];
    snprintf (key, sizeof key, "%s/%s", peer, queue->name);
    pl_slot_t *slot = (pl_slot_t *) zhashx_lookup (self->slots, key);
    if (!slot) {
        slot = (pl_slot_t *) zmalloc (sizeof (pl_slot_t));
        snprintf (slot->peer, sizeof slot->peer, "%s", peer);
        slot->queue = queue;
        slot->credit = -1;
        zhashx_insert (self->slots, key, slot);
    }
    if (slot->window != prefetch)
        slot->credit = -1;      //  a new announcement overrides an old CREDIT
    slot->window = prefetch;
    slot->batch = batch;
    slot->alive = true;
}

//  A peer's announcement changed, or a queue of ours appeared and the
//  node hands it over again (from mesh_plugin_sync, lock held). Input
//  from the network: each record is checked, bad ones are skipped and
//  counted. now NULL: the worker left (or announces nothing we read):
//  everything in flight there goes back. Another incarnation: it
//  restarted under the same id, its jobs went with the old one.
void
pl_on_announce (mesh_node_t *node, void *arg, const char *peer,
                const mesh_announcement_t *before, const mesh_announcement_t *now)
{
    (void) node;
    mesh_pipeline_t *self = (mesh_pipeline_t *) arg;
    const mesh_record_t *was = s_incarnation (before), *inc = s_incarnation (now);
    bool restarted = was && inc && strcmp (was->field [1], inc->field [1]);
    bool batch = false;
    for (size_t f = 2; inc && f < inc->fields; f++)
        batch |= streq (inc->field [f], PL_CAN_JOBS);
    zlistx_t *mine = zlistx_new ();         //  keys of this peer's slots
    for (pl_slot_t *slot = (pl_slot_t *) zhashx_first (self->slots); slot;
         slot = (pl_slot_t *) zhashx_next (self->slots))
        if (streq (slot->peer, peer)) {
            if (restarted)
                pl_slot_gone (self, slot, "worker restarted");
            slot->alive = false;
            zlistx_add_end (mine, (void *) zhashx_cursor (self->slots));
        }
    size_t queues = 0, bad = 0, count = now? mesh_announcement_count (now): 0;
    for (size_t i = 0; i < count; i++) {
        const mesh_record_t *record = mesh_announcement_record (now, i);
        if (!streq (record->field [0], "queue"))
            continue;           //  "inc", or a record of a later version
        uint32_t prefetch = record->fields == 3? s_prefetch (record->field [2]): 0;
        if (!prefetch || !mesh_subject_valid (record->field [1])
        ||  ++queues > PL_MAX_QUEUES_PEER) {
            bad++;
            continue;
        }
        pl_queue_t *queue = pl_queue_get (self, record->field [1], false);
        if (queue)              //  else not a queue we push to (yet)
            s_slot_up (self, peer, queue, prefetch, batch);
    }
    pl_count (self, peer, "pipeline.malformed.announcement", bad);
    //  slots no longer announced: gone with the worker; kept while jobs are
    //  in flight there when it only stopped working that queue (its acks
    //  still come), so nothing is run twice
    for (const char *key = (const char *) zlistx_first (mine); key;
         key = (const char *) zlistx_next (mine)) {
        pl_slot_t *slot = (pl_slot_t *) zhashx_lookup (self->slots, key);
        if (slot->alive || (now && slot->inflight))
            continue;
        pl_slot_gone (self, slot, "worker gone");
        zhashx_delete (self->slots, key);
    }
    zlistx_destroy (&mine);
}

//  Bring the slots up to date with the peers' announcements: one atomic
//  compare when nothing moved; else each queue's array of alive slots is
//  made again and every queue pumped. Lock held.
void
pl_rebuild (mesh_pipeline_t *self)
{
    if (!mesh_plugin_sync (self->plugin))
        return;
    for (pl_queue_t *queue = (pl_queue_t *) zhashx_first (self->queues); queue;
         queue = (pl_queue_t *) zhashx_next (self->queues))
        queue->slot_count = 0;
    for (pl_slot_t *slot = (pl_slot_t *) zhashx_first (self->slots); slot;
         slot = (pl_slot_t *) zhashx_next (self->slots)) {
        if (!slot->alive)
            continue;
        pl_queue_t *queue = slot->queue;
        if (queue->slot_count == queue->slot_cap) {
            queue->slot_cap = queue->slot_cap? 2 * queue->slot_cap: 8;
            queue->slots = (pl_slot_t **) realloc (queue->slots,
                                                   queue->slot_cap * sizeof (pl_slot_t *));
        }
        queue->slots [queue->slot_count++] = slot;
    }
    for (pl_queue_t *queue = (pl_queue_t *) zhashx_first (self->queues); queue;
         queue = (pl_queue_t *) zhashx_next (self->queues))
        pl_pump (self, queue);
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
                pl_job_failed (self, job, mesh_last_error (), false);
            }
            continue;
        }
        s_sent (queue, slot, job, now);
    }
}
