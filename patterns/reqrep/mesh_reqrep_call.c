/*  =========================================================================
    mesh_reqrep_call - the caller's side of request-reply

    A call in flight is a pending_t: in an open-addressing table by request
    id (a call costs no allocation for its entry; a synchronous call's
    pending_t lives on the caller's stack) and in a list that the timer
    (mesh_rr_check) walks for deadlines, retries and calls waiting for a
    provider. Outcomes of calls that failed under the lock are queued on
    self->finished and delivered after it is released, because callbacks
    never run with the lock held. A reply from a provider is delivered
    straight from the REP handler: a callback gets the message as it is,
    a synchronous caller a copy.
    ========================================================================= */

#include "mesh_reqrep_int.h"

static size_t
s_slot (const ptable_t *t, uint64_t id)
{
    return (size_t) ((id * 0x9e3779b97f4a7c15ull) >> 17) & (t->cap - 1);
}

static pending_t *
s_pt_lookup (ptable_t *t, uint64_t id)
{
    if (!t->cap)
        return NULL;
    for (size_t i = s_slot (t, id); t->slots [i]; i = (i + 1) & (t->cap - 1))
        if (t->slots [i]->id == id)
            return t->slots [i];
    return NULL;
}

static int
s_pt_insert (ptable_t *t, pending_t *p)
{
    if ((t->count + 1) * 2 > t->cap) {
        size_t cap = t->cap? t->cap * 2: 64;
        pending_t **slots = (pending_t **) calloc (cap, sizeof (pending_t *));
        if (!slots)
            return -1;
        ptable_t grown = { slots, cap, 0 };
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots [i]) {
                size_t j = s_slot (&grown, t->slots [i]->id);
                while (slots [j])
                    j = (j + 1) & (cap - 1);
                slots [j] = t->slots [i];
            }
        free (t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    size_t i = s_slot (t, p->id);
    while (t->slots [i])
        i = (i + 1) & (t->cap - 1);
    t->slots [i] = p;
    t->count++;
    return 0;
}

//  Remove, shifting back the entries of the probe run (no tombstones)
static void
s_pt_remove (ptable_t *t, uint64_t id)
{
    if (!t->cap)
        return;
    size_t i = s_slot (t, id);
    while (t->slots [i] && t->slots [i]->id != id)
        i = (i + 1) & (t->cap - 1);
    if (!t->slots [i])
        return;
    t->slots [i] = NULL;
    t->count--;
    for (size_t j = (i + 1) & (t->cap - 1); t->slots [j]; j = (j + 1) & (t->cap - 1)) {
        size_t home = s_slot (t, t->slots [j]->id);
        //  move j into the hole at i when its home is not in (i, j]
        bool between = i <= j? (home > i && home <= j): (home > i || home <= j);
        if (!between) {
            t->slots [i] = t->slots [j];
            t->slots [j] = NULL;
            i = j;
        }
    }
}

void
mesh_rr_outcome_destroy (outcome_t **outcome_p)
{
    if (*outcome_p) {
        mesh_msg_destroy (&(*outcome_p)->reply);
        free ((*outcome_p)->error);
        free (*outcome_p);
        *outcome_p = NULL;
    }
}

//  A cleared call for an asynchronous mode: a spare one, or a new one
static pending_t *
s_pending_new (mesh_reqrep_t *self)
{
    pthread_mutex_lock (&self->spare_lock);
    pending_t *p = self->spare;
    if (p) {
        self->spare = p->next;
        self->nspare--;
    }
    pthread_mutex_unlock (&self->spare_lock);
    if (!p)
        p = (pending_t *) malloc (sizeof (pending_t));
    if (p)
        memset (p, 0, offsetof (pending_t, inline_body));
    return p;
}

void
mesh_rr_pending_free (mesh_reqrep_t *self, pending_t *p)
{
    if (p->owns) {
        if (p->body != p->inline_body)
            free ((void *) p->body);
        free (p->ctype);
        for (size_t i = 0; i < 2 * p->header_count; i++)
            free ((char *) p->headers [i]);
        free ((void *) p->headers);
    }
    free (p->error);
    mesh_msg_destroy (&p->reply);
    if (p->mode == P_SYNC)
        return;                 //  on the caller's stack
    pthread_mutex_lock (&self->spare_lock);
    bool kept = self->nspare < RR_SPARE_MAX;
    if (kept) {
        p->next = self->spare;
        self->spare = p;
        self->nspare++;
    }
    pthread_mutex_unlock (&self->spare_lock);
    if (!kept)
        free (p);
}

//  Error text from a peer: bounded, printable
static char *
s_error_text (const mesh_msg_t *msg)
{
    size_t size = mesh_msg_size (msg);
    if (size > RR_MAX_ERROR)
        size = RR_MAX_ERROR;
    char *text = (char *) malloc (size + 1);
    if (!text)
        return NULL;
    const char *body = (const char *) mesh_msg_body (msg);
    for (size_t i = 0; i < size; i++)
        text [i] = (uint8_t) body [i] < 32 || body [i] == 127? ' ': body [i];
    text [size] = 0;
    return text;
}

static bool
s_tried (const pending_t *p, const char *peer)
{
    for (int i = 0; i < p->ntried; i++)
        if (strcmp (p->tried [i], peer) == 0)
            return true;
    return false;
}

//  The provider with the fewest outstanding requests, round robin among
//  equals; providers not tried yet first. NULL if none.
static prov_t *
s_choose (rr_route_t *route, const pending_t *p)
{
    if (!route || !route->count)
        return NULL;
    if (p->fixed)
        return mesh_rr_prov (route, p->target);
    prov_t *best = NULL;
    size_t best_at = 0;
    for (int pass = 0; pass < 2 && !best; pass++)
        for (size_t k = 0; k < route->count; k++) {
            size_t i = (route->rr + k) % route->count;
            prov_t *prov = &route->provs [i];
            if (pass == 0 && p->ntried && s_tried (p, prov->peer))
                continue;
            if (!best || prov->outstanding < best->outstanding) {
                best = prov;
                best_at = i;
            }
        }
    if (best)
        route->rr = best_at + 1;
    return best;
}

//  The current attempt is over (reply, retry, end): release its provider
static void
s_release (mesh_reqrep_t *self, pending_t *p)
{
    if (!p->sent)
        return;
    prov_t *prov = mesh_rr_prov (mesh_rr_route (self, p->service), p->target);
    if (prov && prov->outstanding)
        prov->outstanding--;
    p->sent = false;
}

//  Take a call out of the tables. Lock held.
void
mesh_rr_unlink (mesh_reqrep_t *self, pending_t *p)
{
    s_release (self, p);
    s_pt_remove (&self->table, p->id);
    if (p->prev)
        p->prev->next = p->next;
    else
        self->first = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

//  The call ended without a reply: queue its outcome. Lock held.
static void
s_fail (mesh_reqrep_t *self, pending_t *p, int err, const char *fmt, ...)
{
    char text [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    mesh_rr_unlink (self, p);
    mesh_rr_call_ended (self, p, err);
    p->err = err;
    free (p->error);
    p->error = strdup (text);
    if (p->mode == P_SYNC)
        __atomic_store_n (&p->done, true, __ATOMIC_RELEASE);
    else {
        p->next_done = self->finished;
        self->finished = p;
    }
}

//  Send the call to a provider. Lock held. 0 = out (or waiting for a
//  provider), -1 = it failed and was queued as finished.
static int
s_attempt (mesh_reqrep_t *self, pending_t *p, uint64_t now)
{
    rr_route_t *route = mesh_rr_route (self, p->service);
    while (true) {
        prov_t *prov = s_choose (route, p);
        if (!prov) {
            if (now < p->wait_until && now < p->deadline
            &&  !(p->settling && mesh_rr_converged (self))) {
                self->next_due = now;       //  look again at the next check
                return 0;
            }
            if (p->attempts == 0)
                mesh_rr_count (self, NULL, "reqrep.no-responders");
            //  "no responders" means nobody offers it; a call whose
            //  providers were tried and left says so in its own words
            s_fail (self, p, p->attempts? MESH_EPROVIDERLEFT: MESH_ENORESPONDERS, p->attempts
                    ? "%s: its providers left or failed and no other remains"
                    : "no responders for %s", p->service);
            return -1;
        }
        p->attempts++;
        if (!s_tried (p, prov->peer) && p->ntried < RR_MAX_TRIED)
            mesh_rr_copy (p->tried [p->ntried++], 33, prov->peer);
        mesh_rr_copy (p->target, sizeof p->target, prov->peer);
        p->target_local = prov->local;
        p->target_gone = false;
        int left = p->fixed? 0: p->retries_left;
        p->attempt_until = now + (p->deadline - now) / (uint64_t) (left + 1);
        if (prov->local) {
            //  our own service: its handler runs from the dispatch loop,
            //  never lost, so this attempt lasts until the deadline
            p->attempt_until = p->deadline;
            mesh_head_t head = { .kind = KIND_REQ, .seq = (uint64_t) p->attempts, .id = p->id,
                                 .deadline = p->deadline, .subject = p->service,
                                 .ctype = p->ctype, .headers = p->headers,
                                 .header_count = p->header_count };
            mesh_msg_t *req = mesh_msg_new (&head, p->body, p->size, self->self_id,
                                            mesh_node_name (self->node));
            if (req) {
                zlistx_add_end (self->local_reqs, req);
                __atomic_add_fetch (&self->local_count, 1, __ATOMIC_RELEASE);
            }
        }
        else {
            mesh_head_t head = { .kind = KIND_REQ, .seq = (uint64_t) p->attempts, .id = p->id,
                                 .deadline = p->deadline, .subject = p->service,
                                 .ctype = p->ctype, .headers = p->headers,
                                 .header_count = p->header_count };
            if (mesh_node_send (self->node, prov->peer, &head, p->body, p->size)) {
                mesh_rr_count (self, prov->peer, mesh_errno () == MESH_EAGAIN
                         ? "reqrep.dropped.hwm": "reqrep.dropped.send-error");
                if (p->fixed || p->ntried >= (int) route->count) {
                    s_fail (self, p, mesh_errno () == MESH_EAGAIN? MESH_EAGAIN: MESH_ENORESPONDERS,
                            "cannot send to any provider of %s: %s", p->service,
                            mesh_strerror (mesh_errno ()));
                    return -1;
                }
                continue;       //  the next provider
            }
        }
        prov->outstanding++;
        p->sent = true;
        if (p->attempt_until < self->next_due)
            self->next_due = p->attempt_until;
        return 0;
    }
}

//  Deadlines, retries, calls waiting for a provider. Lock held.
void
mesh_rr_check (mesh_reqrep_t *self, uint64_t now)
{
    mesh_rr_rebuild (self);
    if (now < self->next_due)
        return;
    uint64_t next = UINT64_MAX;
    pending_t *p = self->first;
    while (p) {
        pending_t *next_p = p->next;
        if (now >= p->deadline) {
            mesh_rr_count (self, p->sent && !p->target_local? p->target: NULL, "reqrep.timeouts");
            s_fail (self, p, MESH_ETIMEDOUT, "%s: no reply within the deadline (%d attempt%s)",
                    p->service, p->attempts, p->attempts == 1? "": "s");
        }
        else
        if (!p->sent)
            s_attempt (self, p, now);
        else
        if (p->target_gone || (now >= p->attempt_until && p->retries_left > 0 && !p->fixed)) {
            if (p->retries_left <= 0 || p->fixed)
                s_fail (self, p, MESH_EPROVIDERLEFT, "%s: the provider left and no retry "
                        "remains", p->service);
            else {
                mesh_rr_count (self, p->target, p->target_gone? "reqrep.retried.provider-left"
                                                         : "reqrep.retried.timeout");
                p->retries_left--;
                s_release (self, p);
                p->wait_until = p->deadline;    //  a retry may wait for a provider
                p->settling = false;
                s_attempt (self, p, now);
            }
        }
        p = next_p;
    }
    for (p = self->first; p; p = p->next) {
        uint64_t due = p->deadline;
        if (!p->sent)
            due = now + RR_TICK;
        else
        if (p->retries_left > 0 && !p->fixed && p->attempt_until < due)
            due = p->attempt_until;
        if (due < next)
            next = due;
    }
    if (self->next_due == 0 || self->next_due <= now || next < self->next_due)
        self->next_due = next;
}

//  An outcome with a reply (remote REP or local) for pending call p,
//  already unlinked. No lock held.
static void
s_outcome (mesh_reqrep_t *self, pending_t *p, int err, const char *error,
           const mesh_msg_t *reply)
{
    if (p->mode == P_SYNC) {
        p->err = err;
        p->error = error? strdup (error): NULL;
        p->reply = reply? mesh_msg_dup (reply): NULL;
        __atomic_store_n (&p->done, true, __ATOMIC_RELEASE);
        return;
    }
    if (p->mode == P_GATHER) {
        if (p->gather->fn)
            p->gather->fn (self, p->target, err, error, reply, p->gather->arg);
        p->gather->left--;
        p->gather->replies += reply != NULL;
    }
    else
    if (p->fn)
        p->fn (self, p->id, err, error, reply, p->arg);
    else {
        outcome_t *outcome = (outcome_t *) zmalloc (sizeof (outcome_t));
        outcome->id = p->id;
        outcome->err = err;
        outcome->error = error? strdup (error): NULL;
        outcome->reply = reply? mesh_msg_dup (reply): NULL;
        pthread_mutex_lock (&self->lock);
        bool full = zlistx_size (self->outcomes) >= RR_QUEUE_MAX;
        if (!full)
            zlistx_add_end (self->outcomes, outcome);
        pthread_mutex_unlock (&self->lock);
        if (full) {
            mesh_rr_outcome_destroy (&outcome);
            mesh_rr_count (self, NULL, "reqrep.dropped.queue-full");
        }
    }
    mesh_rr_pending_free (self, p);
}

//  Failed calls queued under the lock: their callbacks run here, unlocked
void
mesh_rr_deliver_finished (mesh_reqrep_t *self)
{
    while (true) {
        pthread_mutex_lock (&self->lock);
        pending_t *p = self->finished;
        if (p)
            self->finished = p->next_done;
        pthread_mutex_unlock (&self->lock);
        if (!p)
            break;
        char *error = p->error;
        p->error = NULL;
        s_outcome (self, p, p->err, error, NULL);
        free (error);
    }
}

//  A reply arrived (from a peer, or from our own handler)
void
mesh_rr_on_reply (mesh_reqrep_t *self, const mesh_msg_t *msg, bool local)
{
    uint64_t id = mesh_msg_id (msg);
    const char *sender = mesh_msg_sender (msg);
    uint32_t flags = mesh_msg_flags (msg);
    pthread_mutex_lock (&self->lock);
    pending_t *p = s_pt_lookup (&self->table, id);
    //  only a provider we sent it to may answer it
    if (p && !local && !s_tried (p, sender))
        p = NULL;
    if (p) {
        mesh_rr_unlink (self, p);
        mesh_rr_call_ended (self, p, flags & (FLAG_ERROR | FLAG_UNKNOWN)? MESH_EREMOTE: 0);
    }
    pthread_mutex_unlock (&self->lock);
    if (!p) {
        //  after a timeout, or the slower of two providers after a retry
        mesh_rr_count (self, local? NULL: sender, "reqrep.reply.late");
        return;
    }
    if (flags & (FLAG_ERROR | FLAG_UNKNOWN)) {
        char *text = s_error_text (msg);
        s_outcome (self, p, MESH_EREMOTE, text? text: "remote error", NULL);
        free (text);
    }
    else
        s_outcome (self, p, 0, NULL, msg);
}

void
mesh_rr_on_rep (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_rr_on_reply ((mesh_reqrep_t *) arg, msg, false);
}

//  Fill a call from its arguments; copy what must outlive the caller's
//  frame (async calls). 0 or -1.
static int
s_prepare (mesh_reqrep_t *self, pending_t *p, pmode_t mode, const char *service,
           const void *body, size_t size, const mesh_call_opts_t *opts, bool copy)
{
    if (!service || !mesh_subject_valid (service))
        return mesh_set_error (MESH_EINVAL, "bad service name");
    if (size > RR_MAX_BODY)
        return mesh_set_error (MESH_ETOOBIG, "request body too big");
    mesh_call_opts_t none = { 0 };
    if (!opts)
        opts = &none;
    if (opts->header_count && !opts->headers)
        return mesh_set_error (MESH_EINVAL, "header_count without headers");
    uint64_t now = mesh_clock_ms ();
    p->prepared = now;
    p->mode = mode;
    mesh_rr_copy (p->service, sizeof p->service, service);
    p->deadline = now + (uint64_t) (opts->timeout_ms > 0? opts->timeout_ms
                                                        : MESH_DEFAULT_CALL_TIMEOUT);
    p->retries_left = opts->retries < 0? 0: opts->retries? opts->retries
                                                         : MESH_DEFAULT_CALL_RETRIES;
    //  without --wait, a call waits for a provider only while discovery
    //  has not converged (bounded by its deadline)
    p->settling = !opts->wait_for_provider && !mesh_rr_converged (self);
    p->wait_until = opts->wait_for_provider || p->settling? p->deadline: now;
    p->header_count = opts->header_count;
    if (!copy) {
        p->body = body;
        p->size = size;
        p->ctype = (char *) opts->ctype;
        p->headers = opts->headers;
        return 0;
    }
    p->owns = true;
    p->size = size;
    p->body = !size? NULL: size <= sizeof p->inline_body? p->inline_body: malloc (size);
    if (size && p->body)
        memcpy ((void *) p->body, body, size);
    p->ctype = opts->ctype? strdup (opts->ctype): NULL;
    if (opts->header_count) {
        char **headers = (char **) calloc (2 * opts->header_count, sizeof (char *));
        for (size_t i = 0; headers && i < 2 * opts->header_count; i++)
            headers [i] = strdup (opts->headers [i]? opts->headers [i]: "");
        p->headers = (const char *const *) headers;
    }
    return 0;
}

//  Register a prepared call and make its first attempt. Lock taken here.
//  0, or -1 when it failed at once (p is then finished, not queued). The
//  call's id in *id, read under the lock: once it is released another
//  thread's dispatch may finish the call and free p
static int
s_launch (mesh_reqrep_t *self, pending_t *p, uint64_t *id)
{
    pthread_mutex_lock (&self->lock);
    if (self->table.count >= RR_MAX_PENDING) {
        pthread_mutex_unlock (&self->lock);
        return mesh_set_error (MESH_EFULL, "too many calls in flight");
    }
    p->id = self->next_id++;
    //  read under the lock: once it is released, another thread's dispatch
    //  may finish an asynchronous p and free it
    if (id)
        *id = p->id;
    if (s_pt_insert (&self->table, p)) {
        pthread_mutex_unlock (&self->lock);
        return mesh_set_error (MESH_ESYS, "out of memory");
    }
    p->next = self->first;
    if (self->first)
        self->first->prev = p;
    self->first = p;
    self->calls++;
    p->started_us = (uint64_t) mesh_mono_us ();
    uint64_t now = p->prepared;     //  s_prepare ran just before
    mesh_rr_rebuild (self);
    if (p->deadline < self->next_due || self->next_due == 0)
        self->next_due = p->deadline;
    int rc = s_attempt (self, p, now);
    if (rc) {
        //  failed at once: the caller reports it, not the finished list
        if (self->finished == p)
            self->finished = p->next_done;
        mesh_set_error (p->err, p->error);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

//  Dispatch until p is done (p->done) or its deadline passed
static void
s_wait (mesh_reqrep_t *self, volatile bool *done, uint64_t deadline)
{
    while (!__atomic_load_n (done, __ATOMIC_ACQUIRE)) {
        mesh_rr_pump_local (self);
        if (__atomic_load_n (done, __ATOMIC_ACQUIRE))
            break;
        uint64_t now = mesh_clock_ms ();
        int wait = now >= deadline? 0: deadline - now < 50? (int) (deadline - now): 50;
        if (mesh_node_dispatch (self->node, wait) < 0)
            break;
        if (now >= self->next_due || now >= deadline) {
            pthread_mutex_lock (&self->lock);
            mesh_rr_check (self, mesh_clock_ms ());
            pthread_mutex_unlock (&self->lock);
            mesh_rr_deliver_finished (self);
        }
    }
}

mesh_msg_t *
mesh_call (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
           const mesh_call_opts_t *opts)
{
    assert (self);
    pending_t p;
    memset (&p, 0, sizeof p);
    if (s_prepare (self, &p, P_SYNC, service, body, size, opts, false)
    ||  s_launch (self, &p, NULL)) {
        free (p.error);
        return NULL;
    }
    s_wait (self, &p.done, p.deadline + 1000);
    if (!p.done) {
        //  the node stopped under us
        pthread_mutex_lock (&self->lock);
        mesh_rr_unlink (self, &p);
        pthread_mutex_unlock (&self->lock);
        mesh_set_error (MESH_ECLOSED, "node stopped during the call");
        free (p.error);
        mesh_msg_destroy (&p.reply);
        return NULL;
    }
    mesh_msg_t *reply = p.reply;
    if (!reply)
        mesh_set_error (p.err? p.err: MESH_ESYS, p.error);
    free (p.error);
    return reply;
}

uint64_t
mesh_call_async (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
                 const mesh_call_opts_t *opts, mesh_call_fn *fn, void *arg)
{
    assert (self);
    pending_t *p = s_pending_new (self);
    if (!p) {
        mesh_set_error (MESH_ESYS, "out of memory");
        return 0;
    }
    if (s_prepare (self, p, P_ASYNC, service, body, size, opts, true)) {
        mesh_rr_pending_free (self, p);
        return 0;
    }
    p->fn = fn;
    p->arg = arg;
    uint64_t id = 0;
    if (s_launch (self, p, &id)) {
        mesh_rr_pending_free (self, p);
        return 0;
    }
    return id;          //  not p->id: p may be gone already
}

mesh_msg_t *
mesh_reqrep_recv (mesh_reqrep_t *self, int timeout_ms, uint64_t *call_id, int *err)
{
    assert (self);
    int64_t deadline = (int64_t) mesh_clock_ms () + timeout_ms;
    while (true) {
        //  Requests to our own services first: a call to a local provider
        //  is answered here, not at the next timer (10 ms); with timeout 0
        //  they are served and recv returns at once
        mesh_rr_pump_local (self);
        pthread_mutex_lock (&self->lock);
        outcome_t *outcome = (outcome_t *) zlistx_detach (self->outcomes, NULL);
        pthread_mutex_unlock (&self->lock);
        if (outcome) {
            mesh_msg_t *reply = outcome->reply;
            outcome->reply = NULL;
            if (call_id)
                *call_id = outcome->id;
            if (err)
                *err = outcome->err;
            if (!reply)
                mesh_set_error (outcome->err, outcome->error);
            mesh_rr_outcome_destroy (&outcome);
            return reply;
        }
        int64_t left = timeout_ms < 0? 100: deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0 || mesh_node_dispatch (self->node, left < 100? (int) left: 100) < 0) {
            if (call_id)
                *call_id = 0;
            if (err)
                *err = MESH_ETIMEDOUT;
            mesh_set_error (MESH_ETIMEDOUT, "no outcome before the timeout");
            return NULL;
        }
    }
}

//  Wait (dispatching) while nobody offers service, until `until`; with
//  all, until then even when some do (to find every provider)
static rr_route_t *
s_route_settled (mesh_reqrep_t *self, const char *service, uint64_t until, bool all,
                 bool settling)
{
    while (true) {
        pthread_mutex_lock (&self->lock);
        mesh_rr_rebuild (self);
        rr_route_t *route = mesh_rr_route (self, service);
        bool found = route && route->count;
        pthread_mutex_unlock (&self->lock);
        uint64_t now = mesh_clock_ms ();
        if ((found && !all) || now >= until || (settling && mesh_rr_converged (self)))
            return found? route: NULL;
        if (mesh_node_dispatch (self->node, until - now < 50? (int) (until - now): 50) < 0)
            return NULL;
    }
}

int
mesh_cast (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
           bool all, const mesh_call_opts_t *opts)
{
    assert (self);
    pending_t p;
    memset (&p, 0, sizeof p);
    if (s_prepare (self, &p, P_SYNC, service, body, size, opts, false))
        return -1;
    if (!s_route_settled (self, service, p.wait_until, false, p.settling)) {
        mesh_rr_count (self, NULL, "reqrep.no-responders");
        return mesh_set_error (MESH_ENORESPONDERS, "no responders");
    }
    pthread_mutex_lock (&self->lock);
    mesh_rr_rebuild (self);
    rr_route_t *route = mesh_rr_route (self, service);
    size_t count = route? route->count: 0;
    prov_t *one = all? NULL: s_choose (route, &p);
    //  a copy of the targets: sending may not see the table change under it
    prov_t *targets = (prov_t *) calloc (count + 1, sizeof (prov_t));
    size_t n = 0;
    for (size_t i = 0; targets && i < count; i++)
        if (all || &route->provs [i] == one)
            targets [n++] = route->provs [i];
    uint64_t id = self->next_id++;
    mesh_head_t head = { .kind = KIND_REQ, .flags = FLAG_CAST, .seq = 1, .id = id,
                         .deadline = p.deadline, .subject = p.service, .ctype = p.ctype,
                         .headers = p.headers, .header_count = p.header_count };
    int sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (targets [i].local) {
            mesh_msg_t *req = mesh_msg_new (&head, body, size, self->self_id,
                                            mesh_node_name (self->node));
            if (req) {
                zlistx_add_end (self->local_reqs, req);
                __atomic_add_fetch (&self->local_count, 1, __ATOMIC_RELEASE);
                sent++;
            }
        }
        else
        if (mesh_node_send (self->node, targets [i].peer, &head, body, size) == 0)
            sent++;
        else
            mesh_rr_count (self, targets [i].peer, mesh_errno () == MESH_EAGAIN
                     ? "reqrep.dropped.hwm": "reqrep.dropped.send-error");
    }
    pthread_mutex_unlock (&self->lock);
    free (targets);
    if (!sent)
        return mesh_set_error (MESH_ENORESPONDERS, "cast reached no provider");
    return 0;
}

int
mesh_call_all (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
               const mesh_call_opts_t *opts, mesh_gather_fn *fn, void *arg)
{
    assert (self);
    pending_t probe;
    memset (&probe, 0, sizeof probe);
    if (s_prepare (self, &probe, P_SYNC, service, body, size, opts, false))
        return -1;
    //  every provider is wanted: let discovery settle fully first
    if (!mesh_rr_converged (self))
        s_route_settled (self, service, probe.deadline, true, true);
    if (!s_route_settled (self, service, probe.wait_until, false, probe.settling)) {
        mesh_rr_count (self, NULL, "reqrep.no-responders");
        return mesh_set_error (MESH_ENORESPONDERS, "no responders");
    }
    pthread_mutex_lock (&self->lock);
    rr_route_t *route = mesh_rr_route (self, service);
    size_t count = route? route->count: 0;
    char (*peers) [33] = (char (*) [33]) calloc (count + 1, 33);
    for (size_t i = 0; peers && i < count; i++)
        memcpy (peers [i], route->provs [i].peer, 33);
    pthread_mutex_unlock (&self->lock);
    gather_t gather = { 0, 0, fn, arg };
    mesh_call_opts_t each = opts? *opts: (mesh_call_opts_t) { 0 };
    each.timeout_ms = (int) (probe.deadline - mesh_clock_ms ());
    if (each.timeout_ms <= 0)
        each.timeout_ms = 1;
    each.retries = -1;
    each.wait_for_provider = false;
    for (size_t i = 0; peers && i < count; i++) {
        pending_t *p = s_pending_new (self);
        if (!p)
            break;
        if (s_prepare (self, p, P_GATHER, service, body, size, &each, true)) {
            mesh_rr_pending_free (self, p);
            continue;
        }
        p->fixed = true;
        p->gather = &gather;
        snprintf (p->target, sizeof p->target, "%s", peers [i]);
        gather.left++;
        if (s_launch (self, p, NULL)) {
            //  failed at once: report it as its outcome
            char *error = p->error;
            p->error = NULL;
            s_outcome (self, p, p->err, error, NULL);
            free (error);
        }
    }
    free (peers);
    while (gather.left) {
        mesh_rr_pump_local (self);
        if (mesh_node_dispatch (self->node, 20) < 0)
            break;
        pthread_mutex_lock (&self->lock);
        mesh_rr_check (self, mesh_clock_ms ());
        pthread_mutex_unlock (&self->lock);
        mesh_rr_deliver_finished (self);
    }
    return gather.replies;
}
