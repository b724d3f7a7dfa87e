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
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  Push

//  The highest job id made joins the pending group (so it is committed
//  with the jobs, no extra sync): a producer restarted on this outbox
//  starts above it even once every job was acked and deleted. A job is
//  sent only after a commit that held this, so an id a worker has seen is
//  either still in the outbox or below the saved one. 0 or -1.
int
pl_outbox_save_id (mesh_pipeline_t *self)
{
    uint64_t last = self->next_id - 1;
    if (!self->outbox || last <= self->id_saved)
        return 0;
    char text [24];
    snprintf (text, sizeof text, "%llu", (unsigned long long) last);
    if (mesh_store_meta_set (self->outbox, PL_META_LAST_ID, text))
        return -1;
    self->id_saved = last;
    return 0;
}

static int
s_commit (mesh_pipeline_t *self)
{
    if (!self->outbox || (!self->uncommitted.head && !self->outbox_dirty))
        return 0;
    if (pl_outbox_save_id (self) || mesh_store_flush (self->outbox)) {
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
    pl_job_t *job = pl_job_make (self, queue, 0, NULL, head->ctype, head->headers,
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
        if (rc == 0 && self->sync_mode == MESH_STORE_SYNC
        &&  (pl_outbox_save_id (self) || mesh_store_flush (self->outbox)))
            rc = -1;
        if (rc) {
            //  not on disk: the caller gets the failure, with the store's
            //  reason (a full map, ENOSPC...), and keeps the job. Always
            //  MESH_ESYS: MESH_EFULL means "held jobs full, wait" to a pusher
            char why [400];
            snprintf (why, sizeof why, "outbox write failed: %s",
                      rec? mesh_last_error (): "out of memory");
            mesh_store_delete (self->outbox, id);     //  cancels a put still pending
            pl_job_finish (self, job);
            pthread_mutex_unlock (&self->lock);
            pl_count (self, NULL, "pipeline.outbox.write-failed", 1);
            mesh_set_error (MESH_ESYS, why);
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
    char why [400];
    if (rc)         //  the store said why (a full disk, a full map...): keep it
        snprintf (why, sizeof why, "outbox commit failed: %s", mesh_last_error ());
    pthread_mutex_unlock (&self->lock);
    return rc? mesh_set_error (MESH_ESYS, why): 0;
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
        pl_job_t *job = pl_job_get (self, pl_ids_at (ids, (size_t) i));
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
        pl_job_unlink (self, job);
        job->queue->done++;
        pl_job_finish (self, job);
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
        pl_job_t *job = pl_job_get (self, pl_ids_at (ids, (size_t) i));
        //  only the worker that holds it may fail it
        if (!job || job->where != PL_INFLIGHT || !streq (job->slot->peer, peer)) {
            unknown++;
            continue;
        }
        pl_slot_t *slot = job->slot;
        pl_job_unlink (self, job);
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
            pl_job_dead (self, job, reason);
        }
        else {
            nacked++;
            pl_job_failed (self, job, reason, true);
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
    //  no slot: the queue's announcement is not read yet (it travels on
    //  the same link, but the core hands it over at the next dispatch),
    //  or the worker does not offer that queue; the announced prefetch
    //  holds until another CREDIT (docs/pipeline.md)
    if (!slot)
        pl_count (self, peer, "pipeline.dropped.credit-no-queue", 1);
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
            pl_job_unlink (self, job);
            pl_job_failed (self, job, "ack timeout", false);
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
    pl_job_t *job = pl_job_make (self, queue, key, rec->origin, rec->ctype, rec->headers,
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

//  One producer per outbox: two would both recover and deliver the same
//  jobs and delete each other's records (issue 19, F3). The owner holds
//  flock on DIR/pipeline.lock, which names it (pid, node); the kernel
//  drops the lock when the owner dies however it dies, so the lock of a
//  dead process is simply taken over. 0, or -1 (MESH_ESTATE: held by a
//  live process, named in the error; MESH_ESYS: the file cannot be made).
static int
s_lock_fail (int err, const char *format, ...)
{
    char text [512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    return mesh_set_error (err, text);
}

static int
s_outbox_lock (mesh_pipeline_t *self, const char *dir)
{
    if (mkdir (dir, 0700) && errno != EEXIST)
        return s_lock_fail (MESH_ESYS, "cannot make %s: %s", dir, strerror (errno));
    char path [4096];
    if ((size_t) snprintf (path, sizeof path, "%s/pipeline.lock", dir) >= sizeof path)
        return mesh_set_error (MESH_EINVAL, "outbox path too long");
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return s_lock_fail (MESH_ESYS, "cannot open %s: %s", path, strerror (errno));
    if (flock (fd, LOCK_EX | LOCK_NB)) {
        int err = errno;
        char holder [160] = "";
        ssize_t n = pread (fd, holder, sizeof holder - 1, 0);
        holder [n > 0? n: 0] = 0;
        holder [strcspn (holder, "\n")] = 0;
        for (char *c = holder; *c; c++)     //  a file anyone may write: printable only
            if ((unsigned char) *c < 0x20 || *c == 0x7f)
                *c = '?';
        close (fd);
        if (err == EWOULDBLOCK)
            return s_lock_fail (MESH_ESTATE, "outbox %s is in use by another producer "
                                   "(%s): one producer per outbox", dir,
                                   *holder? holder: "its pid not written yet");
        return s_lock_fail (MESH_ESYS, "cannot lock %s: %s", path, strerror (err));
    }
    char line [160];
    int len = snprintf (line, sizeof line, "pid %d, node %s\n", (int) getpid (),
                        mesh_node_id (self->node));
    if (ftruncate (fd, 0) || pwrite (fd, line, (size_t) len, 0) != len) {
        int err = errno;
        close (fd);
        return s_lock_fail (MESH_ESYS, "cannot write %s: %s", path, strerror (err));
    }
    self->outbox_lock = fd;
    return 0;
}

void
pl_outbox_unlock (mesh_pipeline_t *self)
{
    if (self->outbox_lock >= 0) {
        close (self->outbox_lock);      //  the file stays; its lock goes
        self->outbox_lock = -1;
    }
}

int
pl_outbox_open (mesh_pipeline_t *self, const char *dir, int sync_mode)
{
    if (s_outbox_lock (self, dir))
        return -1;
    self->outbox = mesh_store_new (dir, "pipeline-outbox", MESH_STORE_GROUP);
    self->dead = self->outbox? mesh_store_new (dir, "pipeline-dead", MESH_STORE_GROUP): NULL;
    if (!self->dead) {
        mesh_store_destroy (&self->outbox);
        pl_outbox_unlock (self);
        return -1;              //  the store said why
    }
    self->sync_mode = sync_mode;
    self->dead_next = mesh_store_last (self->dead) + 1;
    //  The outbox numbers its jobs from 1 (dlq list shows them), whatever
    //  the memory-only start was
    self->ring_base = self->next_id = 1;
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
    //  ... and from the highest id ever made here (kept in the meta), as
    //  the jobs of the last run may all be acked and gone: a worker still
    //  remembers their ids and would take new jobs with them for duplicates
    char *saved = mesh_store_meta_get (self->outbox, PL_META_LAST_ID);
    char *end = NULL;
    unsigned long long last = saved? strtoull (saved, &end, 10): 0;
    if (saved && (*end || last >= UINT64_MAX / 2)) {
        pl_count (self, NULL, "pipeline.outbox.corrupt", 1);
        last = 0;
    }
    free (saved);
    self->id_saved = last;
    if (last > dead.loaded)
        dead.loaded = last;
    if (dead.loaded >= self->next_id) {
        self->next_id = dead.loaded + 1;
        if (self->pending == 0)
            self->ring_base = self->next_id;
    }
    self->first_id = self->next_id;
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
        pl_job_unlink (self, job);
        self->ring [i] = NULL;
        pl_job_release (self, job);
    }
    self->pending = 0;
}
