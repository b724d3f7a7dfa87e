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
    while a fresh node lets discovery settle (MESH_DEFAULT_SETTLE_MS after
    start): then it waits for one until the settle time ends, so a fresh
    `meshbus call` finds the providers already on the LAN.

    Threading. The data path runs in the caller's thread (no actor): a call
    sends on the link and dispatches the node until its reply arrives; a
    server's handler runs in mesh_node_dispatch(). State has one mutex,
    never held while a handler or callback runs; lock order: ours, then the
    node's. A call served by the local node runs its handler from the
    caller's dispatch loop (the next tick or wait), not inside the call.
    ========================================================================= */

#include "mesh_reqrep_int.h"
#include "mesh_reqrep_wire.h"

//  Counted for the peer and (by the core) for the node as a whole
void
mesh_rr_count (mesh_reqrep_t *self, const char *peer, const char *name)
{
    mesh_node_count (self->node, peer, name, 1);
}

void
mesh_rr_route_destroy (route_t **route_p)
{
    if (*route_p) {
        free ((*route_p)->provs);
        free (*route_p);
        *route_p = NULL;
    }
}

void
mesh_rr_free (void **item)
{
    free (*item);
    *item = NULL;
}

//  Is name a line of text ("a\nb\n")?
static bool
s_has_line (const char *text, const char *name, size_t len)
{
    for (const char *line = text; line && *line; ) {
        const char *end = strchr (line, '\n');
        size_t n = end? (size_t) (end - line): strlen (line);
        if (n == len && memcmp (line, name, len) == 0)
            return true;
        line = end? end + 1: NULL;
    }
    return false;
}

uint64_t
mesh_rr_settle_end (mesh_reqrep_t *self)
{
    if (!self->settle_from && mesh_node_endpoint (self->node))
        self->settle_from = mesh_clock_ms ();
    return self->settle_from? self->settle_from + (uint64_t) self->settle_ms: UINT64_MAX;
}

//  Our services as an announcement, one record ["svc", name] each. Lock held.
void
mesh_rr_announce (mesh_reqrep_t *self)
{
    mesh_announcement_t *out = mesh_announcement_new ();
    for (void *svc = zhashx_first (self->services); out && svc; svc = zhashx_next (self->services)) {
        const char *fields [] = { "svc", (const char *) zhashx_cursor (self->services) };
        mesh_announcement_add (out, fields, 2);     //  a service name is a subject: fits
    }
    if (out)
        mesh_node_announce (self->node, RR_KEY, mesh_announcement_data (out),
                            mesh_announcement_size (out));
    mesh_announcement_destroy (&out);
    self->local_dirty = true;
}

static route_t *
s_route_add (mesh_reqrep_t *self, const char *service, const char *peer, bool local)
{
    route_t *route = (route_t *) zhashx_lookup (self->routes, service);
    if (!route) {
        route = (route_t *) zmalloc (sizeof (route_t));
        zhashx_insert (self->routes, service, route);
    }
    if (route->count == route->cap) {
        size_t cap = route->cap? route->cap * 2: 4;
        prov_t *provs = (prov_t *) realloc (route->provs, cap * sizeof (prov_t));
        if (!provs)
            return route;
        route->provs = provs;
        route->cap = cap;
    }
    prov_t *prov = &route->provs [route->count++];
    memset (prov, 0, sizeof *prov);
    snprintf (prov->peer, sizeof prov->peer, "%s", peer);
    prov->local = local;
    return route;
}

prov_t *
mesh_rr_prov (route_t *route, const char *peer)
{
    for (size_t i = 0; route && i < route->count; i++)
        if (strcmp (route->provs [i].peer, peer) == 0)
            return &route->provs [i];
    return NULL;
}

route_t *
mesh_rr_route (mesh_reqrep_t *self, const char *service)
{
    if (self->hot_route && strcmp (self->hot_name, service) == 0)
        return self->hot_route;
    route_t *route = (route_t *) zhashx_lookup (self->routes, service);
    if (route) {
        snprintf (self->hot_name, sizeof self->hot_name, "%s", service);
        self->hot_route = route;
    }
    return route;
}

typedef struct {
    mesh_reqrep_t *self;
    const char *peer;
    const char *before;         //  what it announced before, or NULL
} parse_ctx_t;

static void
s_on_service_route (const char *name, void *arg)
{
    parse_ctx_t *ctx = (parse_ctx_t *) arg;
    s_route_add (ctx->self, name, ctx->peer, false);
}

static void
s_on_service_up (const char *name, void *arg)
{
    parse_ctx_t *ctx = (parse_ctx_t *) arg;
    if (!ctx->before || !s_has_line (ctx->before, name, strlen (name)))
        mesh_node_post_event (ctx->self->node, MESH_EVENT_SERVICE_UP, "SERVICE_UP",
                              ctx->peer, name, 0);
}

//  A peer's announcement changed (from mesh_plugin_sync, lock held): keep
//  its services as lines (checked names, at most RR_MAX_SERVICES) and post
//  UP / DOWN against what it offered before. The routes are rebuilt after.
static void
s_on_announce (mesh_node_t *node, void *arg, const char *peer,
               const mesh_announcement_t *before, const mesh_announcement_t *now)
{
    (void) node; (void) before;
    mesh_reqrep_t *self = (mesh_reqrep_t *) arg;
    zchunk_t *text = zchunk_new (NULL, 256);
    size_t bad = 0, refused = 0, names = 0;
    for (size_t i = 0; now && i < mesh_announcement_count (now); i++) {
        const mesh_record_t *record = mesh_announcement_record (now, i);
        if (strcmp (record->field [0], "svc"))
            continue;           //  a record of a later version: not ours to read
        const char *name = record->fields == 2? record->field [1]: NULL;
        if (!name || !mesh_subject_valid (name))
            bad++;
        else
        if (names == RR_MAX_SERVICES)
            refused++;
        else {
            names++;
            zchunk_extend (text, name, strlen (name));
            zchunk_extend (text, "\n", 1);
        }
    }
    zchunk_extend (text, "", 1);
    if (bad)
        mesh_node_count (self->node, peer, "reqrep.malformed.service", bad);
    if (refused)
        mesh_node_count (self->node, peer, "reqrep.services.refused", refused);
    const char *lines = (const char *) zchunk_data (text);
    const char *old = (const char *) zhashx_lookup (self->announced, peer);
    parse_ctx_t ctx = { self, peer, old };
    size_t ignored;
    mesh_rr_parse_services (lines, strlen (lines), RR_MAX_SERVICES, s_on_service_up, &ctx, &ignored);
    for (const char *line = old; line && *line; ) {
        const char *end = strchr (line, '\n');
        size_t len = end? (size_t) (end - line): strlen (line);
        char name [MESH_MAX_SUBJECT + 1];
        if (len && len <= MESH_MAX_SUBJECT && !s_has_line (lines, line, len)) {
            memcpy (name, line, len);
            name [len] = 0;
            mesh_node_post_event (self->node, MESH_EVENT_SERVICE_DOWN, "SERVICE_DOWN",
                                  peer, name, 0);
        }
        line = end? end + 1: line + len;
    }
    if (names)
        zhashx_update (self->announced, peer, strdup (lines));
    else
        zhashx_delete (self->announced, peer);
    zchunk_destroy (&text);
}

//  Rebuild the provider table when peers' services or ours changed. Lock held.
void
mesh_rr_rebuild (mesh_reqrep_t *self)
{
    if (!mesh_plugin_sync (self->plugin) && !self->local_dirty)
        return;
    self->local_dirty = false;
    self->hot_route = NULL;
    zhashx_purge (self->routes);
    for (char *text = (char *) zhashx_first (self->announced); text;
         text = (char *) zhashx_next (self->announced)) {
        parse_ctx_t ctx = { self, (const char *) zhashx_cursor (self->announced), NULL };
        size_t ignored;
        mesh_rr_parse_services (text, strlen (text), RR_MAX_SERVICES, s_on_service_route,
                                &ctx, &ignored);
    }
    for (void *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        s_route_add (self, (const char *) zhashx_cursor (self->services), self->self_id, true);
    //  outstanding counts live in the routes: count the pending calls again;
    //  a call whose provider left is retried by the next check
    for (pending_t *p = self->first; p; p = p->next) {
        if (!p->sent)
            continue;
        prov_t *prov = mesh_rr_prov ((route_t *) zhashx_lookup (self->routes, p->service), p->target);
        if (prov)
            prov->outstanding++;
        //  a provider that left took its announcement along
        bool alive = p->target_local || zhashx_lookup (self->announced, p->target);
        if (!alive) {
            p->target_gone = true;
            self->next_due = 0;
        }
    }
}

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
    .on_announce  = s_on_announce,      //  a peer's services changed
    .destroy      = s_destroy,
};

mesh_reqrep_t *
mesh_reqrep_new (mesh_node_t *node)
{
    assert (node);
    mesh_reqrep_t *self = (mesh_reqrep_t *) zmalloc (sizeof (mesh_reqrep_t));
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    snprintf (self->self_id, sizeof self->self_id, "%s", mesh_node_id (node));
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, mesh_rr_free);
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
        mesh_rr_pending_free (p);
        dropped++;
    }
    while (self->finished) {
        pending_t *p = self->finished;
        self->finished = p->next_done;
        mesh_rr_pending_free (p);
        dropped++;
    }
    if (dropped)
        mesh_node_count (self->node, NULL, "reqrep.dropped.destroyed", dropped);
    if (self->served % RR_COUNT_BATCH)
        mesh_node_count (self->node, NULL, "reqrep.served", self->served % RR_COUNT_BATCH);
    if (self->calls)
        mesh_node_count (self->node, NULL, "reqrep.calls", self->calls);
    zhashx_destroy (&self->services);
    zhashx_destroy (&self->routes);
    zhashx_destroy (&self->announced);
    zlistx_destroy (&self->local_reqs);
    zlistx_destroy (&self->outcomes);
    mesh_rrc_destroy (&self->cache);
    free (self->table.slots);
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
    route_t *route = mesh_rr_route (self, service);
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
