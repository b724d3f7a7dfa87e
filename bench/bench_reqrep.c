/*  =========================================================================
    bench_reqrep - request-reply and raw DEALER/ROUTER, in one run
    (`meshbus bench reqrep`)

    The method of bench_rtt: both sides in this process, each socket or
    node with its own zmq context (as separate processes would have),
    measured in interleaved blocks so that the machine's noise hits both
    alike; speed is the ratio of the two, never an absolute figure.

    Round trip (the headline). Raw: a DEALER sends SIZE bytes to a ROUTER
    whose thread echoes them to the routing id; the DEALER waits for the
    echo. meshbus: node A calls service "bench.echo" with mesh_call(); node
    B serves it with a handler that sets the reply to the request's body,
    in a thread looping mesh_node_dispatch(). Every meshbus call carries
    what a real one does: service lookup, request id, deadline, retry
    state, the server's reply cache. Median and p99 of COUNT round trips
    per side; ratio = meshbus p50 / raw p50 (lower is better).

    Asynchronous rate. Three servers; the caller keeps WINDOW calls in
    flight (mesh_call_async with a callback) until COUNT calls answered.
    Raw: one DEALER connected to three echoing ROUTERs (libzmq spreads
    round robin), the same window. Rounds alternate; medians of calls/s.
    ========================================================================= */

#include "bench.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define RB_DEFAULT_SIZE     100
#define RB_DEFAULT_COUNT    20000
#define RB_MEET_MS          15000       //  nodes must have met within this
#define RB_REPLY_MS         5000        //  a lost reply fails the run after this
#define RB_PROVIDERS        3           //  servers of the asynchronous rate
#define RB_WINDOW           256         //  asynchronous calls in flight
#define RB_ASYNC_ROUNDS     3
#define RB_ASYNC_COUNT      20000       //  calls per asynchronous round
#define RB_RAW_HWM          100000      //  the DEALER queues a whole window
#define RB_SERVICE          "bench.echo"

//  ---------------------------------------------------------------------
//  meshbus: node A calls, servers answer from their own dispatch threads

typedef struct {
    bench_peer_t caller;
    bench_group_t servers;
    const char *buf;
    size_t size;
    size_t got, bad;            //  asynchronous replies (A's thread only)
} rb_mesh_t;

static void
s_on_echo (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr;
    (void) arg;
    mesh_reply_set (reply, mesh_msg_body (request), mesh_msg_size (request));
}

static bool
s_met (void *arg)
{
    rb_mesh_t *mesh = (rb_mesh_t *) arg;
    return mesh_reqrep_providers (mesh->caller.rr, RB_SERVICE) >= mesh->servers.count;
}

static int
s_mesh_start (rb_mesh_t *mesh, const char *buf, size_t size, size_t servers)
{
    mesh->buf = buf;
    mesh->size = size;
    bench_where_t where;
    bench_where (&where, "rr", 0);
    if (bench_peer_open (&mesh->caller, "bench-caller", "reqrep", &where)
    ||  bench_group_open (&mesh->servers, servers, "bench-server", "reqrep", &where))
        return 1;
    mesh_node_t *nodes [1 + RB_PROVIDERS] = { mesh->caller.node };
    for (size_t i = 0; i < servers; i++) {
        nodes [1 + i] = mesh->servers.peers [i].node;
        if (mesh_serve (mesh->servers.peers [i].rr, RB_SERVICE, s_on_echo, NULL))
            return bench_fail ("bench: serve: %s", mesh_last_error ());
    }
    char what [96];
    snprintf (what, sizeof what, "the caller did not learn the %zu servers", servers);
    if (bench_meet (nodes, 1 + servers, s_met, mesh, RB_MEET_MS, what))
        return 1;
    return bench_group_run (&mesh->servers, false);
}

static uint64_t
s_mesh_round_trip (void *arg)
{
    rb_mesh_t *mesh = (rb_mesh_t *) arg;
    mesh_call_opts_t opts = { .timeout_ms = RB_REPLY_MS };
    uint64_t start = bench_now_ns ();
    mesh_msg_t *reply = mesh_call (mesh->caller.rr, RB_SERVICE, mesh->buf, mesh->size, &opts);
    uint64_t took = bench_now_ns () - start;
    bool ok = reply && mesh_msg_size (reply) == mesh->size;
    mesh_msg_destroy (&reply);
    return ok? took: 0;
}

static void
s_on_async (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
            const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) call_id; (void) error;
    rb_mesh_t *mesh = (rb_mesh_t *) arg;
    if (err || mesh_msg_size (reply) != mesh->size)
        mesh->bad++;
    else
        mesh->got++;
}

//  count calls with window in flight: ns, 0 on failure
static uint64_t
s_mesh_window (rb_mesh_t *mesh, size_t count, size_t window)
{
    mesh_call_opts_t opts = { .timeout_ms = RB_REPLY_MS };
    mesh->got = mesh->bad = 0;
    size_t sent = 0;
    uint64_t start = bench_now_ns ();
    while (mesh->got < count) {
        while (sent < count && sent - mesh->got - mesh->bad < window) {
            if (!mesh_call_async (mesh->caller.rr, RB_SERVICE, mesh->buf, mesh->size, &opts,
                                  s_on_async, mesh))
                return 0;
            sent++;
        }
        if (mesh_node_dispatch (mesh->caller.node, RB_REPLY_MS) <= 0 || mesh->bad)
            return 0;
    }
    return bench_now_ns () - start;
}

static void
s_mesh_stop (rb_mesh_t *mesh)
{
    bench_group_close (&mesh->servers);
    bench_peer_close (&mesh->caller);
}

//  ---------------------------------------------------------------------

//  Round trips over one server, interleaved blocks; p50/p99 in us
static int
s_latency (const char *buf, size_t size, size_t count, double *figures)
{
    bench_raw_rr_t raw = { .nservers = 0 };
    rb_mesh_t mesh = { .size = 0 };
    uint64_t *raw_ns = (uint64_t *) calloc (count, sizeof (uint64_t));
    uint64_t *mesh_ns = (uint64_t *) calloc (count, sizeof (uint64_t));
    int rc = raw_ns && mesh_ns? 0: bench_fail ("bench: out of memory");
    if (rc == 0 && (bench_raw_rr_start (&raw, 1, RB_RAW_HWM, buf, size)
                ||  s_mesh_start (&mesh, buf, size, 1)))
        rc = 1;
    if (rc == 0)
        rc = bench_interleave (bench_raw_round_trip, &raw, s_mesh_round_trip, &mesh, count,
                               raw_ns, mesh_ns);
    s_mesh_stop (&mesh);
    bench_raw_rr_stop (&raw);
    if (rc == 0) {
        figures [0] = bench_pct_us (mesh_ns, count, 50);
        figures [1] = bench_pct_us (raw_ns, count, 50);
        figures [2] = bench_pct_us (mesh_ns, count, 99);
        figures [3] = bench_pct_us (raw_ns, count, 99);
    }
    free (raw_ns);
    free (mesh_ns);
    return rc;
}

static uint64_t
s_raw_round (void *arg, size_t count)
{
    uint64_t took = bench_raw_window ((bench_raw_rr_t *) arg, count, RB_WINDOW);
    if (!took)
        bench_fail ("bench: raw libzmq asynchronous round failed: %s", zmq_strerror (errno));
    return took;
}

static uint64_t
s_mesh_round (void *arg, size_t count)
{
    uint64_t took = s_mesh_window ((rb_mesh_t *) arg, count, RB_WINDOW);
    if (!took)
        bench_fail ("bench: meshbus asynchronous round failed: %s", mesh_last_error ());
    return took;
}

//  Asynchronous calls over RB_PROVIDERS servers; medians of calls/s
static int
s_rate (const char *buf, size_t size, double *mesh_rate, double *raw_rate)
{
    bench_raw_rr_t raw = { .nservers = 0 };
    rb_mesh_t mesh = { .size = 0 };
    int rc = 0;
    if (bench_raw_rr_start (&raw, RB_PROVIDERS, RB_RAW_HWM, buf, size)
    ||  s_mesh_start (&mesh, buf, size, RB_PROVIDERS))
        rc = 1;
    //  warm up both, which also lets every raw connection come up
    if (rc == 0 && (!bench_raw_window (&raw, 2000, RB_WINDOW)
                ||  !s_mesh_window (&mesh, 2000, RB_WINDOW)))
        rc = bench_fail ("bench: asynchronous warm-up failed: %s", mesh_last_error ());
    double raws [RB_ASYNC_ROUNDS], meshes [RB_ASYNC_ROUNDS];
    if (rc == 0)
        rc = bench_alternate ("bench reqrep async", RB_ASYNC_ROUNDS, true, s_raw_round, &raw,
                              s_mesh_round, &mesh, RB_ASYNC_COUNT, raws, meshes);
    s_mesh_stop (&mesh);
    bench_raw_rr_stop (&raw);
    if (rc == 0) {
        *raw_rate = bench_stat (raws, RB_ASYNC_ROUNDS).med;
        *mesh_rate = bench_stat (meshes, RB_ASYNC_ROUNDS).med;
    }
    return rc;
}

int
bench_reqrep (size_t size, size_t count, bool json)
{
    size = size? size: RB_DEFAULT_SIZE;
    count = count? count: RB_DEFAULT_COUNT;
    char *buf = (char *) calloc (1, size);
    double lat [4] = { 0 }, mesh_rate = 0, raw_rate = 0;
    int rc = buf? s_latency (buf, size, count, lat): bench_fail ("bench: out of memory");
    if (rc == 0)
        rc = s_rate (buf, size, &mesh_rate, &raw_rate);
    free (buf);
    if (rc)
        return rc;
    double ratio = lat [0] / lat [1], ratio99 = lat [2] / lat [3];
    if (json)
        printf ("{\"bench\":\"reqrep\",\"size\":%zu,\"count\":%zu,\"meshbus\":%.2f,\"raw\":%.2f,"
                "\"ratio\":%.3f,\"meshbus_p99\":%.2f,\"raw_p99\":%.2f,\"ratio_p99\":%.3f,"
                "\"providers\":%d,\"window\":%d,\"async_meshbus\":%.0f,\"async_raw\":%.0f,"
                "\"async_ratio\":%.3f}\n",
                size, count, lat [0], lat [1], ratio, lat [2], lat [3], ratio99,
                RB_PROVIDERS, RB_WINDOW, mesh_rate, raw_rate, mesh_rate / raw_rate);
    else {
        printf ("request-reply round trip, %zu B, %zu each, interleaved blocks of %d\n",
                size, count, BENCH_BLOCK);
        printf ("  raw DEALER/ROUTER  p50 %8.1f us   p99 %8.1f us\n", lat [1], lat [3]);
        printf ("  meshbus mesh_call  p50 %8.1f us   p99 %8.1f us\n", lat [0], lat [2]);
        printf ("  ratio meshbus/raw  p50 %.2f   p99 %.2f (lower is better)\n", ratio, ratio99);
        printf ("asynchronous calls over %d providers, %d in flight, median of %d rounds\n",
                RB_PROVIDERS, RB_WINDOW, RB_ASYNC_ROUNDS);
        printf ("  raw DEALER/ROUTER  %10.0f calls/s\n", raw_rate);
        printf ("  meshbus async      %10.0f calls/s   ratio %.2f (higher is better)\n",
                mesh_rate, mesh_rate / raw_rate);
    }
    return 0;
}
