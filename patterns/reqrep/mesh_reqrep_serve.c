/*  =========================================================================
    mesh_reqrep_serve - the server's side of request-reply

    A request runs its service's handler in mesh_node_dispatch() with a
    mesh_reply_t on the stack (bodies up to RR_INLINE_REPLY bytes need no
    allocation). Before the handler, the reply cache (mesh_reqrep_cache.c)
    says whether the request is new; a duplicate of one still running is
    ignored (its reply will come), of one answered gets the same answer
    again. After the handler the reply is kept in the cache and sent. A
    request for our own service (a local provider was chosen) comes through
    self->local_reqs and its reply goes straight to the pending call.
    ========================================================================= */

#include "mesh_reqrep_int.h"

static void
s_reply_init (mesh_reply_t *reply, mesh_reqrep_t *rr, const char *caller, uint64_t id,
              bool cast, bool local)
{
    reply->rr = rr;
    reply->deadline = 0;
    mesh_rr_copy (reply->caller, sizeof reply->caller, caller);
    reply->id = id;
    reply->cast = cast;
    reply->local = local;
    reply->deferred = reply->heap = false;
    reply->service = NULL;
    reply->flags = 0;
    reply->ctype [0] = 0;
    reply->body = reply->inline_buf;
    reply->size = 0;
    reply->cap = sizeof reply->inline_buf;
}

//  Send a reply with these fields (to a peer, or to our own pending call)
static void
s_send_reply (mesh_reqrep_t *self, const char *caller, uint64_t id, bool local,
              uint32_t flags, const char *ctype, const void *body, size_t size)
{
    mesh_head_t head = { .kind = KIND_REP, .flags = flags, .id = id,
                         .ctype = ctype && *ctype? ctype: NULL };
    if (local) {
        mesh_msg_t *msg = mesh_msg_new (&head, body, size, self->self_id,
                                        mesh_node_name (self->node));
        if (msg)
            self->on_local_reply (self, msg, true);     //  the caller side, set by mesh_reqrep.c
        mesh_msg_destroy (&msg);
        return;
    }
    if (mesh_node_send (self->node, caller, &head, body, size))
        //  kept in the cache: a retry of the caller gets it
        mesh_rr_count (self, caller, mesh_errno () == MESH_EAGAIN
                 ? "reqrep.dropped.reply-hwm": "reqrep.dropped.reply-send-error");
}

static void
s_reply_finish (mesh_reply_t *reply)
{
    mesh_reqrep_t *self = reply->rr;
    if (reply->cast)
        return;
    if (!reply->local) {
        pthread_mutex_lock (&self->lock);
        size_t evicted = 0;
        bool kept = mesh_rrc_finish (self->cache, reply->caller, reply->id, reply->flags,
                                     reply->ctype, reply->body, reply->size, &evicted);
        pthread_mutex_unlock (&self->lock);
        if (evicted)
            mesh_node_count (self->node, NULL, "reqrep.cache.evicted", evicted);
        if (!kept)
            mesh_rr_count (self, reply->caller, "reqrep.cache.unkept");
        //  the caller gave up at its deadline: what we send now is counted
        //  there as late, so count it here as dropped instead
        if (reply->deadline && mesh_clock_ms () >= reply->deadline) {
            mesh_rr_count (self, reply->caller, "reqrep.dropped.reply-late");
            return;
        }
    }
    s_send_reply (self, reply->caller, reply->id, reply->local, reply->flags, reply->ctype,
                  reply->body, reply->size);
}

//  Run our handler for a request (from a peer or from ourselves)
static void
s_serve (mesh_reqrep_t *self, const mesh_msg_t *msg, bool local)
{
    const char *service = mesh_msg_subject (msg);
    const char *caller = mesh_msg_sender (msg);
    uint64_t id = mesh_msg_id (msg);
    bool cast = (mesh_msg_flags (msg) & FLAG_CAST) != 0;
    pthread_mutex_lock (&self->lock);
    service_t *svc = self->hot_service;
    if (!svc || strcmp (self->hot_served, service)) {
        svc = (service_t *) zhashx_lookup (self->services, service);
        if (svc) {
            mesh_rr_copy (self->hot_served, sizeof self->hot_served, service);
            self->hot_service = svc;
        }
    }
    mesh_serve_fn *fn = svc? svc->fn: NULL;
    void *arg = svc? svc->arg: NULL;
    if (!local && !cast) {
        mesh_rrc_reply_t kept;
        size_t evicted = 0;
        int state = mesh_rrc_begin (self->cache, caller, id, &kept, &evicted);
        if (svc && state != MESH_RRC_DONE && state != MESH_RRC_RUNNING
        &&  state != MESH_RRC_UNKEPT)
            svc->served++;      //  its handler runs
        if (state == MESH_RRC_DONE)
            //  a retry of a request answered already: the same answer
            s_send_reply (self, caller, id, false, kept.flags, kept.ctype, kept.body, kept.size);
        pthread_mutex_unlock (&self->lock);
        if (evicted)
            mesh_node_count (self->node, NULL, "reqrep.cache.evicted", evicted);
        if (state == MESH_RRC_DONE) {
            mesh_rr_count (self, caller, "reqrep.duplicate.answered");
            return;
        }
        if (state == MESH_RRC_RUNNING) {
            mesh_rr_count (self, caller, "reqrep.duplicate.running");
            return;             //  its reply goes out when the handler is done
        }
        if (state == MESH_RRC_UNKEPT) {
            mesh_rr_count (self, caller, "reqrep.duplicate.unkept");
            const char *text = "request ran already; its reply was too big to keep for a retry";
            s_send_reply (self, caller, id, false, FLAG_ERROR, NULL, text, strlen (text));
            return;
        }
    }
    else {
        if (svc)
            svc->served++;
        pthread_mutex_unlock (&self->lock);
    }
    mesh_reply_t reply;
    s_reply_init (&reply, self, caller, id, cast, local);
    reply.service = service;
    reply.deadline = mesh_msg_deadline (msg);
    if (!fn) {
        char text [MESH_MAX_SUBJECT + 64];
        snprintf (text, sizeof text, "unknown service %s at %s", service,
                  mesh_node_name (self->node));
        mesh_rr_count (self, local? NULL: caller, "reqrep.error.unknown-service");
        mesh_reply_fail (&reply, text);
        reply.flags = FLAG_UNKNOWN;
        s_reply_finish (&reply);
        return;
    }
    fn (self, msg, &reply, arg);
    if (++self->served == RR_COUNT_BATCH) {
        self->served = 0;
        mesh_node_count (self->node, NULL, "reqrep.served", RR_COUNT_BATCH);
    }
    if (!reply.deferred) {
        if (reply.flags & FLAG_ERROR) {
            mesh_rr_count (self, local? NULL: caller, "reqrep.error.handler");
            mesh_rr_service_failed (self, service);
        }
        s_reply_finish (&reply);
    }
    if (reply.body != reply.inline_buf)
        free (reply.body);
}

void
mesh_rr_on_req (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_reqrep_t *self = (mesh_reqrep_t *) arg;
    const char *peer = mesh_msg_sender (msg);
    //  input from the network: the envelope checked lengths; the rest here
    if (mesh_msg_id (msg) == 0 || !*mesh_msg_subject (msg)) {
        mesh_rr_count (self, peer, "reqrep.dropped.malformed");
        return;
    }
    uint64_t deadline = mesh_msg_deadline (msg);
    if (deadline && mesh_clock_ms () >= deadline) {
        mesh_rr_count (self, peer, "reqrep.dropped.expired");
        return;
    }
    s_serve (self, msg, false);
}

//  Requests for our own services, from the dispatch loop
void
mesh_rr_pump_local (mesh_reqrep_t *self)
{
    for (int i = 0; i < 1024; i++) {
        //  nearly always empty: a look without the lock first
        if (!__atomic_load_n (&self->local_count, __ATOMIC_ACQUIRE))
            break;
        pthread_mutex_lock (&self->lock);
        mesh_msg_t *msg = (mesh_msg_t *) zlistx_detach (self->local_reqs, NULL);
        if (msg)
            __atomic_sub_fetch (&self->local_count, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock (&self->lock);
        if (!msg)
            break;
        s_serve (self, msg, true);
        mesh_msg_destroy (&msg);
    }
}

int
mesh_serve (mesh_reqrep_t *self, const char *service, mesh_serve_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    if (!service || !mesh_subject_valid (service))
        return mesh_set_error (MESH_EINVAL, "bad service name: dot-separated non-empty "
                               "tokens, no * or #, at most 255 bytes");
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    if (zhashx_lookup (self->services, service))
        rc = mesh_set_error (MESH_EINVAL, "service already served by this node");
    else
    if (zhashx_size (self->services) >= RR_MAX_SERVICES) {
        //  what every peer accepts: one more would be refused at each of
        //  them, and calls to it would fail there as "no responders"
        char why [128];
        snprintf (why, sizeof why, "at most %d services per node (what every peer accepts)",
                  RR_MAX_SERVICES);
        rc = mesh_set_error (MESH_EFULL, why);
        mesh_node_count (self->node, NULL, "reqrep.serve.refused", 1);
    }
    else {
        service_t *svc = (service_t *) zmalloc (sizeof (service_t));
        svc->fn = fn;
        svc->arg = arg;
        zhashx_insert (self->services, service, svc);
        self->hot_service = NULL;
        mesh_rr_announce (self, service);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
mesh_unserve (mesh_reqrep_t *self, const char *service)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    if (!service || !zhashx_lookup (self->services, service))
        rc = mesh_set_error (MESH_EINVAL, "service not served by this node");
    else {
        zhashx_delete (self->services, service);
        self->hot_service = NULL;
        mesh_rr_announce (self, NULL);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
mesh_reply_set (mesh_reply_t *reply, const void *body, size_t size)
{
    assert (reply);
    if (size > RR_MAX_BODY)
        return mesh_set_error (MESH_ETOOBIG, "reply body too big");
    if (size > reply->cap) {
        char *buf = (char *) malloc (size);
        if (!buf)
            return mesh_set_error (MESH_ESYS, "out of memory");
        if (reply->body != reply->inline_buf)
            free (reply->body);
        reply->body = buf;
        reply->cap = size;
    }
    if (size)
        memcpy (reply->body, body, size);
    reply->size = size;
    return 0;
}

int
mesh_reply_set_ctype (mesh_reply_t *reply, const char *ctype)
{
    assert (reply);
    if (ctype && strlen (ctype) >= sizeof reply->ctype)
        return mesh_set_error (MESH_ETOOBIG, "content type too long");
    snprintf (reply->ctype, sizeof reply->ctype, "%s", ctype? ctype: "");
    return 0;
}

int
mesh_reply_fail (mesh_reply_t *reply, const char *message)
{
    assert (reply);
    const char *text = message && *message? message: "handler failed";
    size_t size = strlen (text);
    if (mesh_reply_set (reply, text, size < RR_MAX_ERROR? size: RR_MAX_ERROR))
        return -1;
    reply->flags = FLAG_ERROR;
    reply->ctype [0] = 0;
    return 0;
}

mesh_reply_t *
mesh_reply_defer (mesh_reply_t *reply)
{
    assert (reply);
    assert (!reply->heap);
    if (reply->cast || reply->deferred)
        return NULL;
    mesh_reply_t *copy = (mesh_reply_t *) malloc (sizeof (mesh_reply_t));
    if (!copy)
        return NULL;
    memcpy (copy, reply, sizeof *copy);
    copy->heap = true;
    copy->body = copy->inline_buf;
    copy->cap = sizeof copy->inline_buf;
    copy->size = 0;
    copy->service = strdup (reply->service? reply->service: "");
    if (!copy->service || mesh_reply_set (copy, reply->body, reply->size)) {
        free ((char *) copy->service);
        free (copy);
        return NULL;
    }
    reply->deferred = true;     //  the handler's return sends nothing
    return copy;
}

int
mesh_reply_send (mesh_reply_t **reply_p)
{
    assert (reply_p);
    mesh_reply_t *reply = *reply_p;
    if (!reply)
        return mesh_set_error (MESH_EINVAL, "no reply");
    assert (reply->heap);
    if (reply->flags & FLAG_ERROR) {
        mesh_rr_count (reply->rr, reply->local? NULL: reply->caller, "reqrep.error.handler");
        mesh_rr_service_failed (reply->rr, reply->service);
    }
    s_reply_finish (reply);
    if (reply->body != reply->inline_buf)
        free (reply->body);
    free ((char *) reply->service);
    free (reply);
    *reply_p = NULL;
    return 0;
}
