/*  =========================================================================
    mesh_pipeline_worker - work queues: run jobs, ack in batches, dedup

    A JOB runs its queue's handler in mesh_node_dispatch(); so does each job
    of a JOBS batch, checked whole first and then handed to the handler as
    a message of kind JOB (one message refilled per job, mesh_msg_set), in
    order, with the same rules. The outcome is
    owed to the producer: acks and nacks wait in a per-producer batch that
    goes out as ONE frame (up to PL_ACK_BATCH ids) when prefetch/4 have
    gathered (at once for prefetch <= 4, so a worker with prefetch 1 gets
    its next job one round trip after finishing one), and at every tick
    (PL_TICK_MS) for what is left. A batch that cannot be sent (link full)
    stays and is tried again at the next tick.

    Duplicates. The worker remembers, per origin (the producer that made
    the job: env.reply, or the sender), the last PL_DEDUP_WINDOW job ids it
    acked, and the jobs its handlers hold for later. A JOB found there is a
    redelivery whose ack was lost or late: it is acked again without
    running the handler, and counted as pipeline.duplicates. A redelivery
    that goes to ANOTHER worker, or comes after the window moved on or the
    worker restarted, runs again: delivery is at-least-once.

    A JOB for a queue not worked here (any more) and a job the handler
    rejects go back at once (NACK with PL_FLAG_RETURNED: no delivery
    counted, the producer stops sending here until credit comes back).
    ========================================================================= */

#include "mesh_pipeline.h"


//  Our announcement (docs/pipeline.md, "Announcement"): ["inc",
//  incarnation, "jobs"] (JOBS frames understood here), then ["queue",
//  name, prefetch] for each queue we work
void
pl_announce (mesh_pipeline_t *self)
{
    mesh_announcement_t *out = mesh_announcement_new ();
    char number [24];
    snprintf (number, sizeof number, "%llu",
              (unsigned long long) mesh_node_incarnation (self->node));
    const char *inc [] = { "inc", number, PL_CAN_JOBS };
    if (out)
        mesh_announcement_add (out, inc, 3);
    for (pl_work_t *work = (pl_work_t *) zhashx_first (self->works); out && work;
         work = (pl_work_t *) zhashx_next (self->works)) {
        snprintf (number, sizeof number, "%d", work->prefetch);
        const char *queue [] = { "queue", work->name, number };
        mesh_announcement_add (out, queue, 3);      //  a queue name is a subject: fits
    }
    if (out)
        mesh_node_announce (self->node, PL_KEY, mesh_announcement_data (out),
                            mesh_announcement_size (out));
    mesh_announcement_destroy (&out);
}

//  ---------------------------------------------------------------------
//  The window of recent job ids (open addressing, backward-shift delete)

#define PL_SET_MASK (2 * PL_DEDUP_WINDOW - 1)

static size_t
s_slot_of (uint64_t id)
{
    return (size_t) ((id * 0x9e3779b97f4a7c15ull) >> 40) & PL_SET_MASK;
}

static bool
s_window_has (const pl_window_t *w, uint64_t id)
{
    for (size_t i = s_slot_of (id); w->set [i]; i = (i + 1) & PL_SET_MASK)
        if (w->set [i] == id)
            return true;
    return false;
}

static void
s_set_delete (pl_window_t *w, uint64_t id)
{
    size_t i = s_slot_of (id);
    while (w->set [i] && w->set [i] != id)
        i = (i + 1) & PL_SET_MASK;
    if (!w->set [i])
        return;
    w->set [i] = 0;
    for (size_t j = (i + 1) & PL_SET_MASK; w->set [j]; j = (j + 1) & PL_SET_MASK) {
        size_t k = s_slot_of (w->set [j]);
        //  move it back if its home is not in (i, j] cyclically
        bool home_between = i <= j? (k > i && k <= j): (k > i || k <= j);
        if (!home_between) {
            w->set [i] = w->set [j];
            w->set [j] = 0;
            i = j;
        }
    }
}

static void
s_window_add (pl_window_t *w, uint64_t id)
{
    if (s_window_has (w, id))
        return;
    if (w->count == PL_DEDUP_WINDOW)
        s_set_delete (w, w->ring [w->at]);
    else
        w->count++;
    w->ring [w->at] = id;
    w->at = (w->at + 1) % PL_DEDUP_WINDOW;
    size_t i = s_slot_of (id);
    while (w->set [i])
        i = (i + 1) & PL_SET_MASK;
    w->set [i] = id;
}

static pl_window_t *
s_window (mesh_pipeline_t *self, const char *origin)
{
    pl_window_t *w = self->hot_window;
    if (!w || !streq (w->origin, origin))
        w = (pl_window_t *) zhashx_lookup (self->windows, origin);
    if (!w) {
        if (zhashx_size (self->windows) >= PL_DEDUP_ORIGINS) {
            //  forget the producer we heard from longest ago
            const char *oldest = NULL;
            uint64_t used = UINT64_MAX;
            for (pl_window_t *o = (pl_window_t *) zhashx_first (self->windows); o;
                 o = (pl_window_t *) zhashx_next (self->windows))
                if (o->used < used) {
                    used = o->used;
                    oldest = (const char *) zhashx_cursor (self->windows);
                }
            self->hot_window = NULL;
            if (oldest)
                zhashx_delete (self->windows, oldest);
        }
        w = (pl_window_t *) calloc (1, sizeof (pl_window_t));
        if (!w)
            return NULL;
        snprintf (w->origin, sizeof w->origin, "%s", origin);
        zhashx_insert (self->windows, origin, w);
    }
    w->used = ++self->use_clock;
    self->hot_window = w;
    return w;
}

//  ---------------------------------------------------------------------
//  What we owe producers

static pl_owed_t *
s_owed (mesh_pipeline_t *self, const char *peer)
{
    pl_owed_t *owed = self->hot_owed;
    if (owed && streq (owed->peer, peer))
        return owed;
    owed = (pl_owed_t *) zhashx_lookup (self->owed, peer);
    if (!owed) {
        owed = (pl_owed_t *) calloc (1, sizeof (pl_owed_t));
        if (!owed)
            return NULL;
        snprintf (owed->peer, sizeof owed->peer, "%s", peer);
        owed->threshold = 1;
        zhashx_insert (self->owed, peer, owed);
    }
    self->hot_owed = owed;
    return owed;
}

//  Send one list of ids; 0, or -1 with the list kept
static int
s_send_ids (mesh_pipeline_t *self, const char *peer, int kind, uint32_t flags,
            uint64_t *ids, size_t *count, const char *reason)
{
    if (!*count)
        return 0;
    uint8_t body [8 * PL_ACK_BATCH];
    for (size_t i = 0; i < *count; i++)
        pl_ids_put (body, i, ids [i]);
    const char *headers [2] = { "reason", reason };
    mesh_head_t head = { .kind = kind, .flags = flags,
                         .headers = reason && *reason? headers: NULL,
                         .header_count = reason && *reason? 1: 0 };
    if (mesh_node_send (self->node, peer, &head, body, 8 * *count))
        return -1;
    *count = 0;
    return 0;
}

static void
s_flush (mesh_pipeline_t *self, pl_owed_t *owed)
{
    s_send_ids (self, owed->peer, PL_KIND_ACK, 0, owed->acks, &owed->ack_count, NULL);
    s_send_ids (self, owed->peer, PL_KIND_NACK, 0, owed->nacks, &owed->nack_count,
                owed->reason);
    s_send_ids (self, owed->peer, PL_KIND_NACK, PL_FLAG_RETURNED, owed->returns,
                &owed->return_count, "returned");
    s_send_ids (self, owed->peer, PL_KIND_NACK, PL_FLAG_NO_RETRY, owed->deads,
                &owed->dead_count, "rejected");
}

//  Add an id to one of owed's lists; a full list that cannot be sent
//  loses its oldest id (counted: the producer redelivers it)
static void
s_owe (mesh_pipeline_t *self, pl_owed_t *owed, uint64_t *ids, size_t *count, uint64_t id)
{
    if (*count == PL_ACK_BATCH) {
        s_flush (self, owed);
        if (*count == PL_ACK_BATCH) {
            memmove (ids, ids + 1, (PL_ACK_BATCH - 1) * sizeof (uint64_t));
            (*count)--;
            pl_count (self, owed->peer, "pipeline.acks.dropped", 1);
        }
    }
    ids [(*count)++] = id;
}

static size_t
s_threshold (int prefetch)
{
    if (prefetch <= 4)
        return 1;
    size_t threshold = (size_t) prefetch / 4;
    return threshold > PL_ACK_BATCH? PL_ACK_BATCH: threshold;
}

//  ---------------------------------------------------------------------
//  Jobs arriving

//  A node id in hex: checked for every JOB that comes alone, so by table
//  (the chain of ranges per character was ~420 instructions an id)
static const bool s_hex [256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1
};

static bool
s_origin_ok (const char *origin)
{
    const uint8_t *p = (const uint8_t *) origin;
    bool ok = true;
    size_t i = 0;
    for (; i < 32 && p [i]; i++)
        ok &= s_hex [p [i]];
    return ok && i == 32 && p [32] == 0;
}

//  One job, from a JOB frame or a JOBS batch: dedup, handler, what is owed.
//  Input checked by the caller.
static void
s_job (mesh_pipeline_t *self, const mesh_msg_t *msg, const char *peer, const char *queue,
       const char *origin, uint64_t id)
{
    pthread_mutex_lock (&self->lock);
    pl_work_t *work = self->hot_work;
    if (!work || !streq (work->name, queue))
        work = (pl_work_t *) zhashx_lookup (self->works, queue);
    pl_owed_t *owed = s_owed (self, peer);
    pl_window_t *window = work? s_window (self, origin): NULL;
    if (!owed || !work || !window) {
        //  not worked here (stopped, or never): back to its producer now
        if (owed) {
            s_owe (self, owed, owed->returns, &owed->return_count, id);
            s_flush (self, owed);
        }
        pthread_mutex_unlock (&self->lock);
        pl_count (self, peer, "pipeline.returned.not-working", 1);
        return;
    }
    self->hot_work = work;
    //  the key of jobs held for later, built only when some are
    char held_key [33 + 24] = "";
    if (zhashx_size (self->held))
        snprintf (held_key, sizeof held_key, "%s/%llu", origin, (unsigned long long) id);
    bool held = *held_key && zhashx_lookup (self->held, held_key);
    if (held || s_window_has (window, id)) {
        //  done (or being done) here already: its ack was lost or is late
        if (!held)
            s_owe (self, owed, owed->acks, &owed->ack_count, id);
        s_flush (self, owed);
        pthread_mutex_unlock (&self->lock);
        pl_count (self, peer, "pipeline.duplicates", 1);
        return;
    }
    mesh_work_fn *fn = work->fn;
    void *fn_arg = work->arg;
    int prefetch = work->prefetch;
    work->handled++;
    pthread_mutex_unlock (&self->lock);

    int rc = fn (self, msg, fn_arg);

    pthread_mutex_lock (&self->lock);
    owed = s_owed (self, peer);
    window = s_window (self, origin);
    if (owed && window) {
        owed->threshold = s_threshold (prefetch);
        if (rc == MESH_JOB_ACK) {
            s_window_add (window, id);
            s_owe (self, owed, owed->acks, &owed->ack_count, id);
            self->done++;
        }
        else
        if (rc == MESH_JOB_LATER && zhashx_size (self->held) >= PL_MAX_HELD) {
            //  a producer that ignores credit cannot make us hold without end
            s_owe (self, owed, owed->returns, &owed->return_count, id);
            s_flush (self, owed);
            pl_count (self, peer, "pipeline.returned.held-full", 1);
        }
        else
        if (rc == MESH_JOB_LATER) {
            snprintf (held_key, sizeof held_key, "%s/%llu", origin, (unsigned long long) id);
            pl_held_t *hold = (pl_held_t *) zmalloc (sizeof (pl_held_t));
            snprintf (hold->peer, sizeof hold->peer, "%s", peer);
            snprintf (hold->origin, sizeof hold->origin, "%s", origin);
            snprintf (hold->queue, sizeof hold->queue, "%s", queue);
            hold->id = id;
            hold->prefetch = prefetch;
            hold->flush = (mesh_msg_flags (msg) & PL_FLAG_FLUSH) != 0;
            zhashx_update (self->held, held_key, hold);
        }
        else
        if (rc == MESH_JOB_REJECT) {
            s_owe (self, owed, owed->returns, &owed->return_count, id);
            s_flush (self, owed);
        }
        else
        if (rc == MESH_JOB_DEAD) {
            s_owe (self, owed, owed->deads, &owed->dead_count, id);
            s_flush (self, owed);
            pl_work_failed (self, queue);
            pl_count (self, peer, "pipeline.failed", 1);
        }
        else {
            snprintf (owed->reason, sizeof owed->reason, "handler failed");
            s_owe (self, owed, owed->nacks, &owed->nack_count, id);
            s_flush (self, owed);
            pl_work_failed (self, queue);
            pl_count (self, peer, "pipeline.failed", 1);
        }
        if (owed->ack_count >= owed->threshold
        ||  (rc == MESH_JOB_ACK && (mesh_msg_flags (msg) & PL_FLAG_FLUSH)))
            s_flush (self, owed);
        if (owed->ack_count && self->tick_ms != PL_TICK_MS)
            pl_wake (self);         //  the rest of the batch goes at the next tick
    }
    uint64_t done = self->done >= PL_COUNT_BATCH? self->done: 0;
    self->done -= done;
    pthread_mutex_unlock (&self->lock);
    pl_count (self, NULL, "pipeline.done", done);
}

void
pl_on_job (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_pipeline_t *self = (mesh_pipeline_t *) arg;
    const char *peer = mesh_msg_sender (msg), *queue = mesh_msg_subject (msg);
    const char *origin = *mesh_msg_reply (msg)? mesh_msg_reply (msg): peer;
    uint64_t id = mesh_msg_id (msg), seq = mesh_msg_seq (msg);
    if (!id || !seq || seq > PL_MAX_DELIVERIES || !s_origin_ok (origin)) {
        pl_count (self, peer, "pipeline.malformed.job", 1);
        return;
    }
    s_job (self, msg, peer, queue, origin, id);
}

//  A JOBS batch: checked whole before any job runs (a malformed one runs
//  nothing and is counted), then each job runs exactly as if it had come
//  in its own JOB frame, in the order of the batch. The handler gets a
//  message of kind JOB built from the entry and the batch's envelope.
void
pl_on_jobs (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_pipeline_t *self = (mesh_pipeline_t *) arg;
    const char *peer = mesh_msg_sender (msg), *queue = mesh_msg_subject (msg);
    const char *origin = *mesh_msg_reply (msg)? mesh_msg_reply (msg): peer;
    pl_jobs_entry_t entries [PL_JOBS_JOBS];
    long count = mesh_msg_size (msg) <= PL_JOBS_BYTES
               ? pl_jobs_decode (mesh_msg_body (msg), mesh_msg_size (msg), mesh_msg_seq (msg),
                                  entries, PL_JOBS_JOBS)
               : -1;
    if (count < 0 || !s_origin_ok (origin) || !mesh_subject_valid (queue)) {
        pl_count (self, peer, "pipeline.malformed.jobs", 1);
        return;
    }
    const char *name = mesh_msg_sender_name (msg);
    //  One message for the whole batch, refilled for each job: building
    //  one per job (mesh_msg_new: encode and decode an envelope, a malloc
    //  of the struct and one of the frame) was ~1900 instructions a job,
    //  the largest cost of the worker. A handler that keeps a job dups it
    //  as always (the message is borrowed during the call); the refill
    //  then takes a fresh buffer and leaves the copy alone.
    mesh_msg_t *job = NULL;
    for (long i = 0; i < count; i++) {
        mesh_head_t head = {
            .kind = PL_KIND_JOB, .flags = entries [i].flags, .id = entries [i].id,
            .seq = entries [i].seq, .subject = queue, .reply = origin
        };
        if (job && mesh_msg_set (job, &head, entries [i].body, entries [i].size, peer, name))
            mesh_msg_destroy (&job);
        else
        if (!job)
            job = mesh_msg_new (&head, entries [i].body, entries [i].size, peer, name);
        if (!job) {
            //  out of memory: not run; the producer redelivers it after its
            //  ack timeout (or at once if we hand it back)
            pthread_mutex_lock (&self->lock);
            pl_owed_t *owed = s_owed (self, peer);
            if (owed) {
                s_owe (self, owed, owed->returns, &owed->return_count, entries [i].id);
                s_flush (self, owed);
            }
            pthread_mutex_unlock (&self->lock);
            continue;
        }
        s_job (self, job, peer, queue, mesh_msg_reply (job), entries [i].id);
    }
    mesh_msg_destroy (&job);
}

int
mesh_job_done (mesh_pipeline_t *self, const char *producer, uint64_t job_id, bool ok)
{
    return mesh_job_finish (self, producer, job_id, ok? MESH_JOB_ACK: MESH_JOB_NACK);
}

int
mesh_job_finish (mesh_pipeline_t *self, const char *producer, uint64_t job_id, int outcome)
{
    assert (self);
    if (outcome != MESH_JOB_ACK && outcome != MESH_JOB_NACK && outcome != MESH_JOB_DEAD)
        return mesh_set_error (MESH_EINVAL, "job outcome: MESH_JOB_ACK, _NACK or _DEAD");
    bool ok = outcome == MESH_JOB_ACK;
    if (!producer)
        return mesh_set_error (MESH_EINVAL, "no producer");
    pthread_mutex_lock (&self->lock);
    //  held jobs are keyed by origin; the producer's id is the origin of
    //  its own jobs, and recovered ones are found by their sender
    pl_held_t *hold = NULL;
    char key [33 + 24];
    snprintf (key, sizeof key, "%s/%llu", producer, (unsigned long long) job_id);
    hold = (pl_held_t *) zhashx_lookup (self->held, key);
    if (!hold)
        for (pl_held_t *h = (pl_held_t *) zhashx_first (self->held); h;
             h = (pl_held_t *) zhashx_next (self->held))
            if (h->id == job_id && streq (h->peer, producer)) {
                hold = h;
                snprintf (key, sizeof key, "%s", (const char *) zhashx_cursor (self->held));
                break;
            }
    if (!hold) {
        pthread_mutex_unlock (&self->lock);
        return mesh_set_error (MESH_EINVAL, "no such job held here");
    }
    pl_owed_t *owed = s_owed (self, hold->peer);
    pl_window_t *window = s_window (self, hold->origin);
    if (owed && window) {
        owed->threshold = s_threshold (hold->prefetch);
        if (ok) {
            s_window_add (window, job_id);
            s_owe (self, owed, owed->acks, &owed->ack_count, job_id);
            self->done++;
        }
        else
        if (outcome == MESH_JOB_DEAD) {
            s_owe (self, owed, owed->deads, &owed->dead_count, job_id);
            pl_work_failed (self, hold->queue);
        }
        else {
            snprintf (owed->reason, sizeof owed->reason, "handler failed");
            s_owe (self, owed, owed->nacks, &owed->nack_count, job_id);
            pl_work_failed (self, hold->queue);
        }
        if (owed->ack_count >= owed->threshold || !ok || hold->flush)
            s_flush (self, owed);
        if (owed->ack_count && self->tick_ms != PL_TICK_MS)
            pl_wake (self);
    }
    zhashx_delete (self->held, key);
    pthread_mutex_unlock (&self->lock);
    return 0;
}

//  ---------------------------------------------------------------------
//  Working queues

int
mesh_work (mesh_pipeline_t *self, const char *queue, int prefetch, mesh_work_fn *fn, void *arg)
{
    assert (self);
    if (!queue || !mesh_subject_valid (queue))
        return mesh_set_error (MESH_EINVAL, "bad queue name: dotted tokens, no wildcards");
    if (!fn || prefetch < 0 || prefetch > PL_MAX_PREFETCH)
        return mesh_set_error (MESH_EINVAL, "work: a handler and a prefetch in 0..100000");
    pthread_mutex_lock (&self->lock);
    if (zhashx_lookup (self->works, queue)) {
        pthread_mutex_unlock (&self->lock);
        return mesh_set_error (MESH_EINVAL, "this queue is worked here already");
    }
    pl_work_t *work = (pl_work_t *) zmalloc (sizeof (pl_work_t));
    snprintf (work->name, sizeof work->name, "%s", queue);
    work->prefetch = prefetch? prefetch: MESH_DEFAULT_PREFETCH;
    work->fn = fn;
    work->arg = arg;
    work->order = zhashx_size (self->works);
    zhashx_insert (self->works, queue, work);
    pl_announce (self);
    pl_wake (self);
    pthread_mutex_unlock (&self->lock);
    return 0;
}

//  Jobs of queue (NULL = all) held for later go back to their producers
static void
s_return_held (mesh_pipeline_t *self, const char *queue)
{
    zlistx_t *keys = zlistx_new ();
    for (pl_held_t *h = (pl_held_t *) zhashx_first (self->held); h;
         h = (pl_held_t *) zhashx_next (self->held))
        if (!queue || streq (h->queue, queue)) {
            pl_owed_t *owed = s_owed (self, h->peer);
            if (owed)
                s_owe (self, owed, owed->returns, &owed->return_count, h->id);
            zlistx_add_end (keys, (void *) zhashx_cursor (self->held));
        }
    for (char *key = (char *) zlistx_first (keys); key; key = (char *) zlistx_next (keys))
        zhashx_delete (self->held, key);
    zlistx_destroy (&keys);
}

int
mesh_unwork (mesh_pipeline_t *self, const char *queue)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    if (!queue || !zhashx_lookup (self->works, queue)) {
        pthread_mutex_unlock (&self->lock);
        return mesh_set_error (MESH_EINVAL, "this queue is not worked here");
    }
    self->hot_work = NULL;
    zhashx_delete (self->works, queue);
    pl_announce (self);
    s_return_held (self, queue);
    pl_worker_flush_all (self);
    pthread_mutex_unlock (&self->lock);
    return 0;
}

void
pl_worker_flush_all (mesh_pipeline_t *self)
{
    for (pl_owed_t *owed = (pl_owed_t *) zhashx_first (self->owed); owed;
         owed = (pl_owed_t *) zhashx_next (self->owed))
        s_flush (self, owed);
}

//  At each tick: what is owed goes out; debts to producers that left are
//  forgotten (they redelivered those jobs already)
void
pl_worker_tick (mesh_pipeline_t *self)
{
    if (!zhashx_size (self->owed))
        return;
    zlistx_t *gone = NULL;
    for (pl_owed_t *owed = (pl_owed_t *) zhashx_first (self->owed); owed;
         owed = (pl_owed_t *) zhashx_next (self->owed)) {
        size_t owing = owed->ack_count + owed->nack_count + owed->return_count
                       + owed->dead_count;
        if (owing)
            s_flush (self, owed);
        owing = owed->ack_count + owed->nack_count + owed->return_count
                       + owed->dead_count;
        if (mesh_node_peer_state (self->node, owed->peer) < 0) {
            pl_count (self, owed->peer, "pipeline.acks.dropped.producer-gone", owing);
            if (!gone)
                gone = zlistx_new ();
            zlistx_add_end (gone, (void *) zhashx_cursor (self->owed));
        }
    }
    if (gone) {
        self->hot_owed = NULL;
        for (char *peer = (char *) zlistx_first (gone); peer; peer = (char *) zlistx_next (gone))
            zhashx_delete (self->owed, peer);
        zlistx_destroy (&gone);
    }
}

//  On destroy: held jobs go back, debts go out
void
pl_worker_destroy (mesh_pipeline_t *self)
{
    s_return_held (self, NULL);
    pl_worker_flush_all (self);
}
