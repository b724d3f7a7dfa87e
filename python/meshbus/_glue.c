/*  =========================================================================
    _glue.c - the C half of the Python binding (compiled into
    meshbus._meshbus by cffi, never part of libmeshbus)

    Why a queue: the library calls its handlers from mesh_node_dispatch().
    A Python handler run from there would take the GIL inside library code,
    could raise through C, and would run wherever the library happens to
    dispatch. So every callback the binding gives the library (a message of
    a subscription, a request to serve, a job to work, the outcome of an
    asynchronous call) only copies what it was lent into the node's queue
    here and returns; it never touches Python. After mesh_node_dispatch()
    returns, the Python side drains the queue in batches and runs the
    handlers in its own thread, outside any library code. A request's reply
    is deferred (mesh_reply_defer) and a job held (MESH_JOB_LATER) until the
    Python handler is done.

    Each queued item carries views into its message (subject, body...) so
    that Python reads a batch of messages without one C call per field.
    ========================================================================= */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#define PYQ_MSG      1      //  a message for a subscription
#define PYQ_REQ      2      //  a request to serve (reply NULL: a cast)
#define PYQ_JOB      3      //  a job to work, held until pyq_job_done
#define PYQ_OUTCOME  4      //  the outcome of an asynchronous call (id = call id)
#define PYQ_GATHER   5      //  one provider's answer to a call_all

//  Set by pyq_drain on an item whose field equals the one of the item
//  drained before it that had a message (in this batch or an earlier
//  one): Python then reuses the str it made for that one, so a stream
//  from one publisher on one subject, or requests from one caller to one
//  service, cost no decoding per message. The earlier item's strings are
//  copied in the queue (pyq_last_t) as they may be freed by then.
#define PYQ_SAME_SUBJECT  1
#define PYQ_SAME_SENDER   2     //  sender and sender_name
#define PYQ_SAME_CTYPE    4
#define PYQ_SAME_NAME     8     //  internal: the sender_name copy is valid

typedef struct _pyq_item_t {
    int kind;
    int token;                  //  which Python object it is for
    mesh_msg_t *msg;            //  owned: a copy of what the library lent
    mesh_reply_t *reply;        //  PYQ_REQ: the deferred reply, handed to Python
    int err;                    //  PYQ_OUTCOME, PYQ_GATHER: 0 or a mesh_err_t
    char *error;                //  owned: text of err
    //  views into msg, valid until pyq_release
    const char *subject;
    const char *ctype;
    const char *sender;
    const char *sender_name;
    const char *body;
    size_t size;
    uint64_t seq;
    uint64_t id;
    uint32_t flags;
    size_t header_count;
    char provider [33];         //  PYQ_GATHER: who answered
    int same;                   //  PYQ_SAME_*: fields equal to the previous item's
} pyq_item_t;

#define PYQ_LAST_MAX  256        //  longer strings are never reused

typedef struct {
    char subject [PYQ_LAST_MAX];
    char sender [PYQ_LAST_MAX];
    char sender_name [PYQ_LAST_MAX];
    char ctype [PYQ_LAST_MAX];
    int valid;                  //  PYQ_SAME_* bits whose strings are held
} pyq_last_t;

typedef struct {
    pthread_mutex_t lock;
    pyq_last_t last;            //  of the last item drained (drainer only)
    pyq_item_t *items;          //  ring
    size_t head, count, cap;
    int closed;                 //  the node is closing: refuse new work
    int wake_fd;                //  -1, or an fd the waiting side wants written
    //  The batch pyq_drain handed out last (drainer only): its messages
    //  are freed by the next pyq_drain, not by a crossing of their own
    struct _pyq_item_t *out;
    size_t out_count;
} pyq_t;

//  What a handler registered with the library gets as its argument
typedef struct {
    pyq_t *q;
    int token;
} pyq_target_t;

//  Free the messages and texts of drained items (replies are Python's).
//  Releasing twice is harmless.
static void
pyq_release (pyq_item_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mesh_msg_destroy (&items [i].msg);
        free (items [i].error);
        items [i].error = NULL;
    }
}

static pyq_t *
pyq_new (void)
{
    pyq_t *q = (pyq_t *) calloc (1, sizeof (pyq_t));
    if (!q)
        return NULL;
    pthread_mutex_init (&q->lock, NULL);
    q->wake_fd = -1;
    return q;
}

static void
s_item_free (pyq_item_t *item)
{
    mesh_msg_destroy (&item->msg);
    free (item->error);
    item->error = NULL;
    if (item->reply) {
        //  nobody will answer it now
        mesh_reply_fail (item->reply, "server closing");
        mesh_reply_send (&item->reply);
    }
}

//  Free what was never drained (after the node and its patterns are gone)
static void
pyq_destroy (pyq_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->count; i++)
        s_item_free (&q->items [(q->head + i) % q->cap]);
    if (q->out)
        pyq_release (q->out, q->out_count);
    free (q->items);
    pthread_mutex_destroy (&q->lock);
    free (q);
}

//  Closing: callbacks refuse new requests and jobs from now on; requests
//  already queued are answered with an error (their replies must be sent
//  before the request-reply object goes), jobs queued are nacked.
static void
pyq_close (pyq_t *q, mesh_pipeline_t *pl)
{
    pthread_mutex_lock (&q->lock);
    q->closed = 1;
    for (size_t i = 0; i < q->count; i++) {
        pyq_item_t *item = &q->items [(q->head + i) % q->cap];
        if (item->kind == PYQ_REQ && item->reply) {
            mesh_reply_fail (item->reply, "server closing");
            mesh_reply_send (&item->reply);
        }
        if (item->kind == PYQ_JOB && pl && item->msg) {
            mesh_job_done (pl, mesh_msg_sender (item->msg), mesh_msg_id (item->msg), false);
            item->kind = 0;
        }
    }
    pthread_mutex_unlock (&q->lock);
}

//  Point the item's views into its message
static void
s_views (pyq_item_t *item)
{
    if (item->msg) {
        mesh_msg_t *m = item->msg;
        item->subject = mesh_msg_subject (m);
        item->ctype = mesh_msg_ctype (m);
        item->sender = mesh_msg_sender (m);
        item->sender_name = mesh_msg_sender_name (m);
        item->body = (const char *) mesh_msg_body (m);
        item->size = mesh_msg_size (m);
        item->seq = mesh_msg_seq (m);
        if (item->kind != PYQ_OUTCOME)
            item->id = mesh_msg_id (m);
        item->flags = mesh_msg_flags (m);
        item->header_count = mesh_msg_header_count (m);
    }
}

//  Queue an item; takes over msg and error. False on out of memory.
static int
s_push (pyq_t *q, pyq_item_t *item)
{
    s_views (item);
    pthread_mutex_lock (&q->lock);
    if (q->count == q->cap) {
        size_t cap = q->cap? q->cap * 2: 256;
        pyq_item_t *items = (pyq_item_t *) malloc (cap * sizeof (pyq_item_t));
        if (!items) {
            pthread_mutex_unlock (&q->lock);
            return 0;
        }
        for (size_t i = 0; i < q->count; i++)
            items [i] = q->items [(q->head + i) % q->cap];
        free (q->items);
        q->items = items;
        q->cap = cap;
        q->head = 0;
    }
    q->items [(q->head + q->count) % q->cap] = *item;
    q->count++;
    pthread_mutex_unlock (&q->lock);
    return 1;
}

//  Does s equal the kept copy (bit of valid)? Else keep a copy of s.
static int
s_same_as_last (pyq_last_t *last, int bit, char *kept, const char *s)
{
    if (!s)
        s = "";
    if ((last->valid & bit) && strcmp (kept, s) == 0)
        return bit;
    size_t len = strlen (s);
    if (len < PYQ_LAST_MAX) {
        memcpy (kept, s, len + 1);
        last->valid |= bit;
    }
    else
        last->valid &= ~bit;
    return 0;
}

//  Set item->same against the last item with a message, which it becomes
static void
s_mark_same (pyq_last_t *last, pyq_item_t *it)
{
    it->same = 0;
    if (!it->msg)
        return;
    int same = s_same_as_last (last, PYQ_SAME_SUBJECT, last->subject, it->subject);
    //  sender and its name go together: one bit, both strings kept
    int sender = s_same_as_last (last, PYQ_SAME_SENDER, last->sender, it->sender);
    int name = s_same_as_last (last, PYQ_SAME_NAME, last->sender_name, it->sender_name);
    if (sender && name)
        same |= PYQ_SAME_SENDER;
    same |= s_same_as_last (last, PYQ_SAME_CTYPE, last->ctype, it->ctype);
    it->same = same;
}

//  Move up to max items to out (in order). Returns how many. Frees what
//  the batch before held (Python has made its objects of it by now); the
//  messages of this batch stay valid until the next pyq_drain.
static size_t
pyq_drain (pyq_t *q, pyq_item_t *out, size_t max)
{
    if (q->out) {
        pyq_release (q->out, q->out_count);
        q->out = NULL;
    }
    //  nearly always empty after a quiet dispatch: look without the lock
    if (!__atomic_load_n (&q->count, __ATOMIC_RELAXED))
        return 0;
    pthread_mutex_lock (&q->lock);
    size_t n = 0;
    while (n < max && q->count) {
        out [n++] = q->items [q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    pthread_mutex_unlock (&q->lock);
    for (size_t i = 0; i < n; i++)
        s_mark_same (&q->last, &out [i]);
    q->out = out;
    q->out_count = n;
    return n;
}

//  One round of the thread that drives the node, in one crossing: what is
//  queued already, else dispatch (up to wait_ms) and what that queued.
//  Returns how many items are in out, or -1 when dispatch failed (closed).
static int
pyq_dispatch (mesh_node_t *node, pyq_t *q, pyq_item_t *out, size_t max, int wait_ms)
{
    size_t n = pyq_drain (q, out, max);
    if (n)
        return (int) n;
    if (mesh_node_dispatch (node, wait_ms) < 0)
        return -1;
    return (int) pyq_drain (q, out, max);
}

static size_t
pyq_pending (pyq_t *q)
{
    return __atomic_load_n (&q->count, __ATOMIC_RELAXED);
}


//  ---------------------------------------------------------------------
//  Callbacks given to the library

static void
pyq_on_msg (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    pyq_target_t *t = (pyq_target_t *) arg;
    pyq_item_t item = { .kind = PYQ_MSG, .token = t->token, .msg = mesh_msg_dup (msg) };
    if (!item.msg || !s_push (t->q, &item)) {
        mesh_msg_destroy (&item.msg);
        mesh_node_count (mesh_pubsub_node (pubsub), mesh_msg_sender (msg),
                         "python.dropped.out-of-memory", 1);
    }
}

static void
pyq_on_request (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr;
    pyq_target_t *t = (pyq_target_t *) arg;
    if (__atomic_load_n (&t->q->closed, __ATOMIC_RELAXED)) {
        mesh_reply_fail (reply, "server closing");
        return;
    }
    pyq_item_t item = { .kind = PYQ_REQ, .token = t->token, .msg = mesh_msg_dup (request) };
    if (!item.msg) {
        mesh_reply_fail (reply, "server out of memory");
        return;
    }
    item.reply = mesh_reply_defer (reply);      //  NULL for a cast
    if (!s_push (t->q, &item)) {
        mesh_msg_destroy (&item.msg);
        if (item.reply) {
            mesh_reply_fail (item.reply, "server out of memory");
            mesh_reply_send (&item.reply);
        }
    }
}

static int
pyq_on_job (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    pyq_target_t *t = (pyq_target_t *) arg;
    if (__atomic_load_n (&t->q->closed, __ATOMIC_RELAXED))
        return MESH_JOB_REJECT;
    pyq_item_t item = { .kind = PYQ_JOB, .token = t->token, .msg = mesh_msg_dup (job) };
    if (!item.msg || !s_push (t->q, &item)) {
        mesh_msg_destroy (&item.msg);
        return MESH_JOB_REJECT;
    }
    return MESH_JOB_LATER;
}

//  The item of a call's outcome (kind PYQ_OUTCOME or PYQ_GATHER): a copy
//  of the borrowed reply, or the error's text; a reply that cannot be
//  copied becomes the failure "out of memory", never a lost outcome
static pyq_item_t
s_outcome_item (int kind, int token, uint64_t call_id, int err, const char *error,
                const mesh_msg_t *reply)
{
    pyq_item_t item = { .kind = kind, .token = token, .id = call_id, .err = err };
    if (reply)
        item.msg = mesh_msg_dup (reply);
    if (reply && !item.msg) {
        item.err = MESH_ESYS;
        error = "out of memory";
    }
    if (item.err)
        item.error = strdup (error? error: mesh_strerror (item.err));
    return item;
}

static void
pyq_on_outcome (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
                const mesh_msg_t *reply, void *arg)
{
    (void) rr;
    pyq_t *q = (pyq_t *) arg;
    pyq_item_t item = s_outcome_item (PYQ_OUTCOME, 0, call_id, err, error, reply);
    if (!s_push (q, &item)) {
        mesh_msg_destroy (&item.msg);
        free (item.error);
    }
}

static void
pyq_on_gather (mesh_reqrep_t *rr, const char *provider, int err, const char *error,
               const mesh_msg_t *reply, void *arg)
{
    (void) rr;
    pyq_target_t *t = (pyq_target_t *) arg;
    pyq_item_t item = s_outcome_item (PYQ_GATHER, t->token, 0, err, error, reply);
    snprintf (item.provider, sizeof item.provider, "%s", provider? provider: "");
    if (!s_push (t->q, &item)) {
        mesh_msg_destroy (&item.msg);
        free (item.error);
    }
}

//  ---------------------------------------------------------------------
//  Calls the Python side makes in one crossing

static int
pyq_subscribe (mesh_pubsub_t *ps, const char *pattern, const mesh_sub_opts_t *opts,
               pyq_target_t *t)
{
    return mesh_subscribe (ps, pattern, opts, pyq_on_msg, t);
}

static int
pyq_serve (mesh_reqrep_t *rr, const char *service, pyq_target_t *t)
{
    return mesh_serve (rr, service, pyq_on_request, t);
}

static int
pyq_work (mesh_pipeline_t *pl, const char *queue, int prefetch, pyq_target_t *t)
{
    return mesh_work (pl, queue, prefetch, pyq_on_job, t);
}

//  Serve now what this node just asked of its own services: the library
//  serves such requests at its request-reply timer (every 10 ms) or in
//  mesh_reqrep_recv, which serves them before it looks for an outcome and,
//  with timeout 0, returns at once. Safe in any thread: the glue's request
//  handler only queues. The binding's calls all have a callback, so no
//  outcome waits in mesh_reqrep_recv's queue (one would be dropped here).
static void
s_serve_local (mesh_reqrep_t *rr)
{
    uint64_t call_id = 0;
    int err = 0;
    mesh_msg_t *stray = mesh_reqrep_recv (rr, 0, &call_id, &err);
    mesh_msg_destroy (&stray);
}

//  local: this node serves something (the call may have gone to itself)
static uint64_t
pyq_call_async (mesh_reqrep_t *rr, const char *service, const void *body, size_t size,
                const mesh_call_opts_t *opts, pyq_t *q, int local)
{
    uint64_t call_id = mesh_call_async (rr, service, body, size, opts, pyq_on_outcome, q);
    if (call_id && local)
        s_serve_local (rr);
    return call_id;
}

static int
pyq_call_all (mesh_reqrep_t *rr, const char *service, const void *body, size_t size,
              const mesh_call_opts_t *opts, pyq_target_t *t)
{
    return mesh_call_all (rr, service, body, size, opts, pyq_on_gather, t);
}

//  Finish a deferred reply: error set = the handler failed with that text
static int
pyq_reply (mesh_reply_t *reply, const void *body, size_t size, const char *ctype,
           const char *error)
{
    if (error)
        mesh_reply_fail (reply, error);
    else {
        mesh_reply_set (reply, body, size);
        if (ctype)
            mesh_reply_set_ctype (reply, ctype);
    }
    return mesh_reply_send (&reply);
}

//  A header of a queued or kept message (i-th), copied out as lengths
static int
pyq_header_at (const mesh_msg_t *msg, size_t i, const char **key, size_t *klen,
               const char **value, size_t *vlen)
{
    return mesh_msg_header_at (msg, i, key, klen, value, vlen);
}

//  Dead letters listed into Python through the queue's item shape
typedef struct {
    pyq_item_t *items;
    size_t max, count;
    char **reasons;
    char **queues;
} pyq_dead_t;

static bool
s_on_dead (const char *queue, uint64_t job_id, const mesh_msg_t *job, const char *reason,
           void *arg)
{
    pyq_dead_t *d = (pyq_dead_t *) arg;
    if (d->count >= d->max)
        return false;
    pyq_item_t *item = &d->items [d->count];
    memset (item, 0, sizeof *item);
    item->kind = PYQ_JOB;
    item->msg = mesh_msg_dup (job);
    if (!item->msg)
        return false;
    mesh_msg_t *m = item->msg;
    item->subject = mesh_msg_subject (m);
    item->ctype = mesh_msg_ctype (m);
    item->sender = mesh_msg_sender (m);
    item->sender_name = mesh_msg_sender_name (m);
    item->body = (const char *) mesh_msg_body (m);
    item->size = mesh_msg_size (m);
    item->seq = mesh_msg_seq (m);
    item->id = job_id;
    item->flags = mesh_msg_flags (m);
    item->header_count = mesh_msg_header_count (m);
    d->reasons [d->count] = strdup (reason? reason: "");
    d->queues [d->count] = strdup (queue? queue: "");
    d->count++;
    return true;
}

static size_t
pyq_dlq_list (mesh_pipeline_t *pl, const char *queue, pyq_item_t *items, char **reasons,
              char **queues, size_t max)
{
    pyq_dead_t d = { items, max, 0, reasons, queues };
    mesh_dlq_list (pl, queue, s_on_dead, &d);
    return d.count;
}

//  ---------------------------------------------------------------------
//  A call whose caller waits for it in C (pyq_call_wait): the outcome
//  goes straight to the waiter, not through the queue, and the caller
//  crosses into C once per call. If the waiter gives up first (its slice
//  ended, or other work was queued that Python must run), the call is
//  detached: its outcome is then queued as any asynchronous call's.

#define PYQ_SYNC_WAITING   0
#define PYQ_SYNC_DONE      1
#define PYQ_SYNC_DETACHED  2

typedef struct {
    pyq_t *q;
    int state;                  //  PYQ_SYNC_*, under q->lock
    pyq_item_t item;            //  the outcome once PYQ_SYNC_DONE
} pyq_sync_t;

static void
pyq_on_sync (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
             const mesh_msg_t *reply, void *arg)
{
    (void) rr;
    pyq_sync_t *s = (pyq_sync_t *) arg;
    pyq_item_t item = s_outcome_item (PYQ_OUTCOME, 0, call_id, err, error, reply);
    s_views (&item);
    pyq_t *q = s->q;
    pthread_mutex_lock (&q->lock);
    bool detached = s->state == PYQ_SYNC_DETACHED;
    if (!detached) {
        s->item = item;
        __atomic_store_n (&s->state, PYQ_SYNC_DONE, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock (&q->lock);
    if (detached) {
        free (s);
        if (!s_push (q, &item)) {
            mesh_msg_destroy (&item.msg);
            free (item.error);
        }
    }
}

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Launch a call and dispatch until its outcome, for up to wait_ms, or
//  until something else is queued (local: as pyq_call_async). Only for the thread that holds the
//  binding's pump lock. Returns 1: out holds the outcome, a reply; 2: out
//  holds the outcome, a failure (out->err); 0: not yet, the outcome will
//  be queued as PYQ_OUTCOME with id *call_id; -1: the call failed at once
//  (mesh_errno). What out held from the call before is
//  released first (so a call costs Python one crossing, not two); the
//  last one is released by pyq_release when the node goes.
static int
pyq_call_wait (mesh_node_t *node, mesh_reqrep_t *rr, pyq_t *q, const char *service,
               const void *body, size_t size, const mesh_call_opts_t *opts, int wait_ms,
               pyq_item_t *out, uint64_t *call_id, int local)
{
    pyq_release (out, 1);
    pyq_sync_t *s = (pyq_sync_t *) calloc (1, sizeof (pyq_sync_t));
    if (!s) {
        *call_id = pyq_call_async (rr, service, body, size, opts, q, local);
        return *call_id? 0: -1;
    }
    s->q = q;
    *call_id = mesh_call_async (rr, service, body, size, opts, pyq_on_sync, s);
    if (!*call_id) {
        free (s);           //  failed at once: the callback never runs
        return -1;
    }
    if (local)
        s_serve_local (rr);     //  queued for Python: the wait below ends at once
    int64_t until = s_now_ms () + wait_ms;
    while (__atomic_load_n (&s->state, __ATOMIC_ACQUIRE) != PYQ_SYNC_DONE) {
        if (pyq_pending (q))
            break;          //  a handler or another outcome: Python's turn
        int64_t left = until - s_now_ms ();
        if (left <= 0 || mesh_node_dispatch (node, (int) left) < 0)
            break;
    }
    pthread_mutex_lock (&q->lock);
    int done = s->state == PYQ_SYNC_DONE;
    if (!done)
        s->state = PYQ_SYNC_DETACHED;
    pthread_mutex_unlock (&q->lock);
    if (!done)
        return 0;           //  s is the callback's now
    *out = s->item;
    s_mark_same (&q->last, out);    //  the pump lock's holder owns q->last
    free (s);
    return out->err? 2: 1;
}

