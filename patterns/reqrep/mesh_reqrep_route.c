/*  =========================================================================
    mesh_reqrep_route - who offers which service: our announcement, the
    peers' (on_announce), the provider table and SERVICE_UP / DOWN

    Below mesh_reqrep_call.c and mesh_reqrep_serve.c, which call into it;
    it calls only the services codec (mesh_reqrep_wire.c). The design is
    at the top of mesh_reqrep.c.
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
mesh_rr_route_destroy (rr_route_t **route_p)
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

static rr_route_t *
s_route_add (mesh_reqrep_t *self, const char *service, const char *peer, bool local)
{
    rr_route_t *route = (rr_route_t *) zhashx_lookup (self->routes, service);
    if (!route) {
        route = (rr_route_t *) zmalloc (sizeof (rr_route_t));
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
mesh_rr_prov (rr_route_t *route, const char *peer)
{
    for (size_t i = 0; route && i < route->count; i++)
        if (strcmp (route->provs [i].peer, peer) == 0)
            return &route->provs [i];
    return NULL;
}

rr_route_t *
mesh_rr_route (mesh_reqrep_t *self, const char *service)
{
    if (self->hot_route && strcmp (self->hot_name, service) == 0)
        return self->hot_route;
    rr_route_t *route = (rr_route_t *) zhashx_lookup (self->routes, service);
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
void
mesh_rr_on_announce (mesh_node_t *node, void *arg, const char *peer,
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
        prov_t *prov = mesh_rr_prov ((rr_route_t *) zhashx_lookup (self->routes, p->service), p->target);
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
