/*  =========================================================================
    mesh_reqrep - request-reply on the meshbus core: named services with
    deadlines, retries, failover, once-only execution and "no responders"

    Built on the public core API only (meshbus.h; czmq for containers).

    Wire. Two kinds, every field in the core envelope, so there is no
    decoder of our own (docs/reqrep.md has the table):
      REQ (24)  subject = service, id = request id (unique per caller),
                deadline = ms since the epoch, seq = attempt (1, 2...),
                flags FLAG_CAST = no reply wanted; ctype, headers, body.
      REP (25)  id = the request's id, subject = service; FLAG_ERROR: the
                body is the handler's error text; FLAG_UNKNOWN: the server
                does not offer the service (body = text too).

    Discovery. Each node announces the services it offers under the key
    "reqrep" (a record ["svc", name] each, the codec of meshbus/pattern.h). A provider table service -> providers
    (the local node included) is rebuilt when the node's generation
    changes, never per call; a call looks its service up once (a hot
    pointer saves even that for a repeated service) and picks the provider
    with the fewest outstanding requests, round robin among equals. The
    rebuild also posts SERVICE_UP / SERVICE_DOWN and notices that the
    provider of a pending call left, which retries it at once.

    Deadlines and retries. A call has a deadline (absolute, travels in the
    REQ; a server drops what arrives after it, counted) and a retry budget.
    Each attempt gets an equal share of the time left, so a provider that
    hangs still leaves time for the others. A retry prefers providers not
    tried yet; when every provider was tried it may go to the same one
    again, which is what makes a link cut safe: the server keeps a bounded
    cache of recent replies per caller (mesh_reqrep_cache.c), so a request
    it has answered is answered again from the cache, and one it is still
    running is not run twice. Replies from any provider tried are accepted:
    the first wins, later ones are counted as late.

    "No responders". A call that finds no provider fails at once, except
    while a fresh node's discovery has not converged (mesh_rr_converged:
    the settle time since start has passed and the node has met every
    peer it was told of and learned of none for as long): until then it
    waits for one, bounded by its deadline, so a fresh `meshbus call`
    finds the providers already on the LAN however loaded the LAN is
    (issue 19: with a fixed settle time, 41-60 % of 200 callers started
    at once said "no responders" with a provider up).

    Threading. The data path runs in the caller's thread (no actor): a call
    sends on the link and dispatches the node until its reply arrives; a
    server's handler runs in mesh_node_dispatch(). State has one mutex,
    never held while a handler or callback runs; lock order: ours, then the
    node's. A call served by the local node runs its handler from the
    caller's dispatch loop (the next tick or wait), not inside the call.
    ========================================================================= */

#include "mesh_reqrep_int.h"
#include "mesh_reqrep_wire.h"

static void
s_tick (mesh_node_t *node, void *arg)
{
    (void) node;
    mesh_reqrep_t *self = (mesh_reqrep_t *) arg;
    pthread_mutex_lock (&self->lock);
    mesh_rr_check (self, mesh_clock_ms ());
    uint64_t calls = self->calls;
    self->calls = 0;
    pthread_mutex_unlock (&self->lock);
    if (calls)
        mesh_node_count (self->node, NULL, "reqrep.calls", calls);
    mesh_rr_pump_local (self);
    mesh_rr_deliver_finished (self);
}

static void
s_on_message (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    if (mesh_msg_kind (msg) == MESH_KIND_REQ)
        mesh_rr_on_req (node, msg, arg);
    else
        mesh_rr_on_rep (node, msg, arg);
}

static void
s_destroy (void *self)
{
    mesh_reqrep_t *rr = (mesh_reqrep_t *) self;
    mesh_reqrep_destroy (&rr);
}

static const mesh_pattern_t s_reqrep_ops = {
    .name         = "reqrep",
    .kinds        = { MESH_KIND_REQ, MESH_KIND_REP, 0 },
    .on_message   = s_on_message,       //  a request to serve, a reply to a call
    .tick_ms      = RR_TICK,
    .on_tick      = s_tick,             //  deadlines and retries
    .announce_key = RR_KEY,
    .on_announce  = mesh_rr_on_announce,      //  a peer's services changed
    .destroy      = s_destroy,
    .stats        = mesh_rr_stats,      //  services served, calls made: STATS answers
};

mesh_reqrep_t *
mesh_reqrep_new (mesh_node_t *node)
{
    assert (node);
    mesh_reqrep_t *self = (mesh_reqrep_t *) zmalloc (sizeof (mesh_reqrep_t));
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    pthread_mutex_init (&self->spare_lock, NULL);
    snprintf (self->self_id, sizeof self->self_id, "%s", mesh_node_id (node));
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, mesh_rr_free);
    self->call_stats = zhashx_new ();
    zhashx_set_destructor (self->call_stats, mesh_rr_free);
    self->routes = zhashx_new ();
    zhashx_set_destructor (self->routes, (zhashx_destructor_fn *) mesh_rr_route_destroy);
    self->announced = zhashx_new ();
    zhashx_set_destructor (self->announced, mesh_rr_free);
    self->local_reqs = zlistx_new ();
    zlistx_set_destructor (self->local_reqs, (zlistx_destructor_fn *) mesh_msg_destroy);
    self->outcomes = zlistx_new ();
    zlistx_set_destructor (self->outcomes, (zlistx_destructor_fn *) mesh_rr_outcome_destroy);
    self->cache = mesh_rrc_new (MESH_RRC_CALLERS, MESH_RRC_BYTES);
    self->settle_ms = MESH_DEFAULT_SETTLE_MS;
    //  Request ids start at a random point: a caller restarted with the
    //  same node id must not meet its old ids in a server's reply cache
    uint64_t start = 0;
    zuuid_t *uuid = zuuid_new ();
    memcpy (&start, zuuid_data (uuid), sizeof start);
    zuuid_destroy (&uuid);
    self->next_id = (start >> 2) + 1;
    mesh_rr_settle_end (self);
    self->on_local_reply = mesh_rr_on_reply;
    self->plugin = mesh_node_register (node, &s_reqrep_ops, self);
    if (!self->plugin) {
        mesh_reqrep_destroy (&self);
        return NULL;
    }
    return self;
}

void
mesh_reqrep_destroy (mesh_reqrep_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mesh_reqrep_t *self = *self_p;
    //  the node may outlive us: stop it calling into freed memory
    mesh_node_unregister (&self->plugin);
    if (zhashx_size (self->services))
        mesh_node_announce (self->node, RR_KEY, "", 0);     //  withdraw: peers see DOWN
    size_t dropped = 0;
    while (self->first) {
        pending_t *p = self->first;
        mesh_rr_unlink (self, p);
        if (p->mode == P_SYNC)
            continue;           //  on a waiter's stack: not ours to free
        mesh_rr_pending_free (self, p);
        dropped++;
    }
    while (self->finished) {
        pending_t *p = self->finished;
        self->finished = p->next_done;
        mesh_rr_pending_free (self, p);
        dropped++;
    }
    if (dropped)
        mesh_node_count (self->node, NULL, "reqrep.dropped.destroyed", dropped);
    if (self->served % RR_COUNT_BATCH)
        mesh_node_count (self->node, NULL, "reqrep.served", self->served % RR_COUNT_BATCH);
    if (self->calls)
        mesh_node_count (self->node, NULL, "reqrep.calls", self->calls);
    zhashx_destroy (&self->services);
    zhashx_destroy (&self->call_stats);
    zhashx_destroy (&self->routes);
    zhashx_destroy (&self->announced);
    mesh_announcement_destroy (&self->own);
    zlistx_destroy (&self->local_reqs);
    zlistx_destroy (&self->outcomes);
    mesh_rrc_destroy (&self->cache);
    free (self->table.slots);
    while (self->spare) {
        pending_t *p = self->spare;
        self->spare = p->next;
        free (p);
    }
    pthread_mutex_destroy (&self->spare_lock);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

mesh_node_t *
mesh_reqrep_node (mesh_reqrep_t *self)
{
    assert (self);
    return self->node;
}

int
mesh_reqrep_set_settle (mesh_reqrep_t *self, int msecs)
{
    assert (self);
    if (msecs < 0)
        return mesh_set_error (MESH_EINVAL, "settle time must be >= 0");
    self->settle_ms = msecs;
    return 0;
}

size_t
mesh_reqrep_providers (mesh_reqrep_t *self, const char *service)
{
    assert (self);
    if (!service)
        return 0;
    pthread_mutex_lock (&self->lock);
    mesh_rr_rebuild (self);
    rr_route_t *route = mesh_rr_route (self, service);
    size_t count = route? route->count: 0;
    pthread_mutex_unlock (&self->lock);
    return count;
}

int
mesh_reqrep_wait_providers (mesh_reqrep_t *self, const char *service, size_t count,
                            int timeout_ms)
{
    assert (self);
    int64_t deadline = (int64_t) mesh_clock_ms () + timeout_ms;
    while (mesh_reqrep_providers (self, service) < count) {
        int64_t left = deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0)
            return mesh_set_error (MESH_ETIMEDOUT, "too few providers before the timeout");
        if (mesh_node_dispatch (self->node, left < 50? (int) left: 50) < 0)
            return -1;
    }
    return 0;
}
