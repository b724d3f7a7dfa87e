/*  =========================================================================
    mesh_reqrep_stats - request-reply's figures in a STATS answer

    Server side, per service offered here: requests handed to its handler
    ("served") and replies that said it failed ("errors"). Caller side, per
    service this node called: calls that ended, how many failed (any
    error: remote, timeout, no responders, provider left) and how many of
    those timed out, and the latency of every ended call in fixed buckets
    (MESH_LATENCY_BOUNDS_US), written cumulative as Prometheus wants them.

    Costs: served is counted under the lock the request takes anyway;
    errors take the lock again, on the failing path only; an ended call
    is counted under the lock its end takes anyway, one hash lookup. The
    caller's table is bounded (RR_MAX_SERVICES names, as many as a peer
    may offer): calls to further names are counted in "calls.untracked".
    The answer holds the MESH_STATS_TOP busiest rows of each table.
    ========================================================================= */

#include "mesh_reqrep_int.h"
#include "mesh_top.h"

static const uint64_t s_bounds [MESH_LATENCY_BUCKETS] = MESH_LATENCY_BOUNDS_US;

void
mesh_rr_call_ended (mesh_reqrep_t *self, const pending_t *p, int err)
{
    if (!p->started_us)
        return;                 //  never launched
    call_stat_t *stat = (call_stat_t *) zhashx_lookup (self->call_stats, p->service);
    if (!stat) {
        if (zhashx_size (self->call_stats) >= RR_MAX_SERVICES
        ||  !(stat = (call_stat_t *) calloc (1, sizeof *stat))) {
            self->call_stats_untracked++;
            return;
        }
        stat->order = zhashx_size (self->call_stats);
        zhashx_insert (self->call_stats, p->service, stat);
    }
    uint64_t now = (uint64_t) mesh_mono_us ();
    uint64_t took = now > p->started_us? now - p->started_us: 0;
    stat->calls++;
    stat->errors += err != 0;
    stat->timeouts += err == MESH_ETIMEDOUT;
    stat->sum_us += took;
    for (size_t i = 0; i < MESH_LATENCY_BUCKETS; i++)
        if (took <= s_bounds [i]) {
            stat->buckets [i]++;
            break;
        }
}

void
mesh_rr_service_failed (mesh_reqrep_t *self, const char *service)
{
    if (!service)
        return;
    pthread_mutex_lock (&self->lock);
    service_t *svc = (service_t *) zhashx_lookup (self->services, service);
    if (svc)
        svc->errors++;
    pthread_mutex_unlock (&self->lock);
}

static void
s_write_services (mesh_reqrep_t *self, mesh_stats_t *out)
{
    mesh_top_t top = { .count = 0 };
    uint64_t rank = 0;
    for (service_t *svc = (service_t *) zhashx_first (self->services); svc;
         svc = (service_t *) zhashx_next (self->services))
        mesh_top_offer (&top, svc->served, rank++, zhashx_cursor (self->services));
    mesh_stats_open (out, "services", '[');
    for (size_t i = 0; i < top.count; i++) {
        const char *name = (const char *) top.rows [i].item;
        service_t *svc = (service_t *) zhashx_lookup (self->services, name);
        mesh_stats_open (out, NULL, '{');
        mesh_stats_str (out, "service", name);
        mesh_stats_uint (out, "served", svc->served);
        mesh_stats_uint (out, "errors", svc->errors);
        mesh_stats_close (out);
    }
    mesh_stats_close (out);
    mesh_top_totals (&top, out, "services");
}

static void
s_write_calls (mesh_reqrep_t *self, mesh_stats_t *out)
{
    mesh_top_t top = { .count = 0 };
    for (call_stat_t *stat = (call_stat_t *) zhashx_first (self->call_stats); stat;
         stat = (call_stat_t *) zhashx_next (self->call_stats))
        mesh_top_offer (&top, stat->calls, stat->order, zhashx_cursor (self->call_stats));
    mesh_stats_open (out, "calls", '[');
    for (size_t i = 0; i < top.count; i++) {
        const char *name = (const char *) top.rows [i].item;
        call_stat_t *stat = (call_stat_t *) zhashx_lookup (self->call_stats, name);
        mesh_stats_open (out, NULL, '{');
        mesh_stats_str (out, "service", name);
        mesh_stats_uint (out, "calls", stat->calls);
        mesh_stats_uint (out, "errors", stat->errors);
        mesh_stats_uint (out, "timeouts", stat->timeouts);
        mesh_stats_uint (out, "latency_sum_us", stat->sum_us);
        //  cumulative: calls that took at most each bound (le); the last
        //  one, +Inf, is "calls"
        mesh_stats_open (out, "latency_buckets", '[');
        uint64_t below = 0;
        for (size_t b = 0; b < MESH_LATENCY_BUCKETS; b++) {
            below += stat->buckets [b];
            mesh_stats_uint (out, NULL, below);
        }
        mesh_stats_close (out);
        mesh_stats_close (out);
    }
    mesh_stats_close (out);
    mesh_top_totals (&top, out, "calls");
    mesh_stats_uint (out, "calls.untracked", self->call_stats_untracked);
}

void
mesh_rr_stats (void *arg, mesh_stats_t *out)
{
    mesh_reqrep_t *self = (mesh_reqrep_t *) arg;
    mesh_stats_open (out, "latency_bounds_us", '[');
    for (size_t b = 0; b < MESH_LATENCY_BUCKETS; b++)
        mesh_stats_uint (out, NULL, s_bounds [b]);
    mesh_stats_close (out);
    if (mesh_stats_lock (&self->lock, out))
        return;
    s_write_services (self, out);
    s_write_calls (self, out);
    mesh_stats_uint (out, "pending", self->table.count);
    pthread_mutex_unlock (&self->lock);
}
