/*  =========================================================================
    meshbus bench reqrep - request-reply and raw DEALER/ROUTER, in one run

    The method of bench link (cli_bench.c): both sides in this process, each
    socket or node with its own zmq context (as separate processes would
    have), measured in interleaved blocks so that the machine's noise hits
    both alike; speed is the ratio of the two, never an absolute figure.

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

#include "cli.h"
#include <zmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#define RB_DEFAULT_SIZE     100
#define RB_DEFAULT_COUNT    20000
#define RB_BLOCK            1000        //  round trips per turn before switching side
#define RB_WARMUP           1000        //  round trips per side before measuring
#define RB_MEET_MS          15000       //  nodes must have met within this
#define RB_REPLY_MS         5000        //  a lost reply fails the run after this
#define RB_PROVIDERS        3           //  servers of the asynchronous rate
#define RB_WINDOW           256         //  asynchronous calls in flight
#define RB_ASYNC_ROUNDS     3
#define RB_ASYNC_COUNT      20000       //  calls per asynchronous round
#define RB_SERVICE          "bench.echo"

//  ---------------------------------------------------------------------
//  Raw libzmq: one DEALER, N ROUTERs each echoed by a thread

typedef struct {
    void *ctx;
    void *router;
    pthread_t thread;
    bool running;
} raw_server_t;

typedef struct {
    raw_server_t servers [RB_PROVIDERS];
    size_t nservers;
    void *client_ctx, *dealer;
    char *buf;
    size_t size;
} raw_t;

static void *
s_raw_echo (void *arg)
{
    cli_bench_echo (((raw_server_t *) arg)->router);
    return NULL;
}

static int
s_raw_start (raw_t *raw, size_t size, size_t servers)
{
    raw->size = size;
    raw->buf = (char *) calloc (1, size? size: 1);
    raw->client_ctx = zmq_ctx_new ();
    raw->dealer = zmq_socket (raw->client_ctx, ZMQ_DEALER);
    int zero = 0, hwm = 100000;
    zmq_setsockopt (raw->dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (raw->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    for (size_t i = 0; i < servers; i++) {
        raw_server_t *server = &raw->servers [i];
        server->ctx = zmq_ctx_new ();
        server->router = zmq_socket (server->ctx, ZMQ_ROUTER);
        zmq_setsockopt (server->router, ZMQ_LINGER, &zero, sizeof zero);
        char endpoint [128];
        size_t len = sizeof endpoint;
        if (zmq_bind (server->router, "tcp://127.0.0.1:*")
        ||  zmq_getsockopt (server->router, ZMQ_LAST_ENDPOINT, endpoint, &len)
        ||  zmq_connect (raw->dealer, endpoint))
            return cli_fail ("bench: raw libzmq setup failed: %s", zmq_strerror (errno));
        if (pthread_create (&server->thread, NULL, s_raw_echo, server))
            return cli_fail ("bench: cannot start a raw echo thread");
        server->running = true;
        raw->nservers++;
    }
    return 0;
}

static uint64_t
s_raw_round_trip (raw_t *raw)
{
    uint64_t start = cli_now_ns ();
    if (zmq_send (raw->dealer, raw->buf, raw->size, 0) < 0)
        return 0;
    zmq_msg_t reply;
    zmq_msg_init (&reply);
    int rc = zmq_msg_recv (&reply, raw->dealer, 0);
    uint64_t took = cli_now_ns () - start;
    zmq_msg_close (&reply);
    return rc == (int) raw->size? took: 0;
}

//  count calls with window in flight; calls per second, 0 on failure
static double
s_raw_rate (raw_t *raw, size_t count, size_t window)
{
    //  every connection must be up, or libzmq queues on the first only
    sleep (0);
    size_t sent = 0, got = 0;
    uint64_t start = cli_now_ns ();
    while (got < count) {
        while (sent < count && sent - got < window) {
            if (zmq_send (raw->dealer, raw->buf, raw->size, 0) < 0)
                return 0;
            sent++;
        }
        zmq_msg_t reply;
        zmq_msg_init (&reply);
        int rc = zmq_msg_recv (&reply, raw->dealer, 0);
        zmq_msg_close (&reply);
        if (rc < 0)
            return 0;
        got++;
    }
    return count / ((cli_now_ns () - start) / 1e9);
}

static void
s_raw_stop (raw_t *raw)
{
    if (raw->dealer)
        zmq_close (raw->dealer);
    for (size_t i = 0; i < raw->nservers; i++) {
        raw_server_t *server = &raw->servers [i];
        zmq_ctx_shutdown (server->ctx);     //  unblocks the echo thread
        if (server->running)
            pthread_join (server->thread, NULL);
        zmq_ctx_term (server->ctx);
    }
    if (raw->client_ctx)
        zmq_ctx_term (raw->client_ctx);
    free (raw->buf);
}

//  ---------------------------------------------------------------------
//  meshbus: node A calls, servers answer from their own dispatch threads

typedef struct {
    mesh_node_t *node;
    mesh_reqrep_t *rr;
    pthread_t thread;
    bool running;
} mesh_server_t;

typedef struct {
    mesh_node_t *a;
    mesh_reqrep_t *rr;
    mesh_server_t servers [RB_PROVIDERS];
    size_t nservers;
    volatile bool stop;
    char *buf;
    size_t size;
    size_t got, bad;            //  asynchronous replies (A's thread only)
} mesh_side_t;

static void
s_on_echo (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr;
    (void) arg;
    mesh_reply_set (reply, mesh_msg_body (request), mesh_msg_size (request));
}

static void *
s_server_loop (void *arg)
{
    mesh_side_t *side = (mesh_side_t *) ((void **) arg) [0];
    mesh_server_t *server = (mesh_server_t *) ((void **) arg) [1];
    free (arg);
    while (!side->stop)
        if (mesh_node_dispatch (server->node, 100) < 0)
            break;
    return NULL;
}

static void
s_drain_events (mesh_node_t *node)
{
    mesh_event_t *event;
    while ((event = mesh_node_event (node)))
        mesh_event_destroy (&event);
}

static int
s_mesh_start (mesh_side_t *side, const cli_opts_t *opts, size_t size, size_t servers)
{
    side->size = size;
    side->buf = (char *) calloc (1, size? size: 1);
    //  a cluster and beacon port of our own: nobody else joins or slows us
    char cluster [64], port [16];
    snprintf (cluster, sizeof cluster, "bench-rr-%d", (int) getpid ());
    snprintf (port, sizeof port, "%d", 30000 + (int) (getpid () % 20000));
    cli_opts_t node_opts = *opts;
    if (!node_opts.cluster)
        node_opts.cluster = cluster;
    if (!node_opts.port)
        node_opts.port = port;
    node_opts.name = "bench-caller";
    side->a = cli_node_new (&node_opts, "bench-caller");
    if (!side->a)
        return -1;
    side->rr = mesh_reqrep_new (side->a);
    for (size_t i = 0; i < servers; i++) {
        char name [32];
        snprintf (name, sizeof name, "bench-server-%zu", i + 1);
        node_opts.name = name;
        mesh_server_t *server = &side->servers [i];
        server->node = cli_node_new (&node_opts, name);
        if (!server->node)
            return -1;
        side->nservers++;
        server->rr = mesh_reqrep_new (server->node);
        if (mesh_serve (server->rr, RB_SERVICE, s_on_echo, NULL))
            return cli_fail ("bench: serve: %s", mesh_last_error ());
    }
    int64_t deadline = (int64_t) mesh_clock_ms () + RB_MEET_MS;
    while (mesh_reqrep_providers (side->rr, RB_SERVICE) < servers) {
        if ((int64_t) mesh_clock_ms () > deadline || cli_interrupted ())
            return cli_fail ("bench: the caller did not learn the %zu servers within %d s",
                             servers, RB_MEET_MS / 1000);
        mesh_node_dispatch (side->a, 5);
        for (size_t i = 0; i < servers; i++) {
            mesh_node_dispatch (side->servers [i].node, 5);
            s_drain_events (side->servers [i].node);
        }
        s_drain_events (side->a);
    }
    for (size_t i = 0; i < servers; i++) {
        void **args = (void **) malloc (2 * sizeof (void *));
        args [0] = side;
        args [1] = &side->servers [i];
        if (pthread_create (&side->servers [i].thread, NULL, s_server_loop, args))
            return cli_fail ("bench: cannot start a server thread");
        side->servers [i].running = true;
    }
    return 0;
}

static uint64_t
s_mesh_round_trip (mesh_side_t *side)
{
    mesh_call_opts_t opts = { .timeout_ms = RB_REPLY_MS };
    uint64_t start = cli_now_ns ();
    mesh_msg_t *reply = mesh_call (side->rr, RB_SERVICE, side->buf, side->size, &opts);
    uint64_t took = cli_now_ns () - start;
    bool ok = reply && mesh_msg_size (reply) == side->size;
    mesh_msg_destroy (&reply);
    return ok? took: 0;
}

static void
s_on_async (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
            const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) call_id; (void) error;
    mesh_side_t *side = (mesh_side_t *) arg;
    if (err || mesh_msg_size (reply) != side->size)
        side->bad++;
    else
        side->got++;
}

static double
s_mesh_rate (mesh_side_t *side, size_t count, size_t window)
{
    mesh_call_opts_t opts = { .timeout_ms = RB_REPLY_MS };
    side->got = side->bad = 0;
    size_t sent = 0;
    uint64_t start = cli_now_ns ();
    while (side->got < count) {
        while (sent < count && sent - side->got - side->bad < window) {
            if (!mesh_call_async (side->rr, RB_SERVICE, side->buf, side->size, &opts,
                                  s_on_async, side))
                return 0;
            sent++;
        }
        if (mesh_node_dispatch (side->a, RB_REPLY_MS) <= 0 || side->bad)
            return 0;
    }
    return count / ((cli_now_ns () - start) / 1e9);
}

static void
s_mesh_stop (mesh_side_t *side)
{
    side->stop = true;
    for (size_t i = 0; i < side->nservers; i++)
        if (side->servers [i].running)
            pthread_join (side->servers [i].thread, NULL);
    mesh_reqrep_destroy (&side->rr);
    mesh_node_destroy (&side->a);
    for (size_t i = 0; i < side->nservers; i++) {
        mesh_reqrep_destroy (&side->servers [i].rr);
        mesh_node_destroy (&side->servers [i].node);
    }
    free (side->buf);
}

//  ---------------------------------------------------------------------

//  Round trips over one server, interleaved blocks; p50/p99 in us
static int
s_latency (size_t size, size_t count, const cli_opts_t *opts, double *figures)
{
    raw_t raw = { 0 };
    mesh_side_t mesh = { 0 };
    uint64_t *raw_ns = (uint64_t *) calloc (count, sizeof (uint64_t));
    uint64_t *mesh_ns = (uint64_t *) calloc (count, sizeof (uint64_t));
    int rc = 0;
    if (!raw_ns || !mesh_ns)
        rc = cli_fail ("bench: out of memory");
    if (rc == 0 && (s_raw_start (&raw, size, 1) || s_mesh_start (&mesh, opts, size, 1)))
        rc = 1;
    for (int i = 0; rc == 0 && i < RB_WARMUP; i++)
        if (!s_raw_round_trip (&raw) || !s_mesh_round_trip (&mesh))
            rc = cli_fail ("bench: a round trip failed during warm-up: %s", mesh_last_error ());
    size_t done = 0;
    bool mesh_first = false;
    while (rc == 0 && done < count && !cli_interrupted ()) {
        size_t block = count - done < RB_BLOCK? count - done: RB_BLOCK;
        for (int turn = 0; turn < 2 && rc == 0; turn++) {
            bool on_mesh = (turn == 0) == mesh_first;
            for (size_t i = 0; i < block && rc == 0; i++) {
                uint64_t took = on_mesh? s_mesh_round_trip (&mesh): s_raw_round_trip (&raw);
                if (!took)
                    rc = cli_fail ("bench: %s round trip failed: %s",
                                   on_mesh? "meshbus": "raw libzmq",
                                   on_mesh? mesh_last_error (): zmq_strerror (errno));
                (on_mesh? mesh_ns: raw_ns) [done + i] = took;
            }
        }
        mesh_first = !mesh_first;
        done += block;
    }
    if (rc == 0 && done < count)
        rc = cli_fail ("bench: interrupted");
    s_mesh_stop (&mesh);
    s_raw_stop (&raw);
    if (rc == 0) {
        qsort (raw_ns, count, sizeof (uint64_t), cli_cmp_u64);
        qsort (mesh_ns, count, sizeof (uint64_t), cli_cmp_u64);
        figures [0] = cli_pct_us (mesh_ns, count, 50);
        figures [1] = cli_pct_us (raw_ns, count, 50);
        figures [2] = cli_pct_us (mesh_ns, count, 99);
        figures [3] = cli_pct_us (raw_ns, count, 99);
    }
    free (raw_ns);
    free (mesh_ns);
    return rc;
}

//  Asynchronous calls over RB_PROVIDERS servers; medians of calls/s
static int
s_rate (size_t size, const cli_opts_t *opts, double *mesh_rate, double *raw_rate)
{
    raw_t raw = { 0 };
    mesh_side_t mesh = { 0 };
    int rc = 0;
    if (s_raw_start (&raw, size, RB_PROVIDERS) || s_mesh_start (&mesh, opts, size, RB_PROVIDERS))
        rc = 1;
    //  warm up both, which also lets every raw connection come up
    if (rc == 0 && (!s_raw_rate (&raw, 2000, RB_WINDOW) || !s_mesh_rate (&mesh, 2000, RB_WINDOW)))
        rc = cli_fail ("bench: asynchronous warm-up failed: %s", mesh_last_error ());
    double raws [RB_ASYNC_ROUNDS], meshes [RB_ASYNC_ROUNDS];
    cli_progress_t progress;
    cli_progress_init (&progress, false);
    for (int round = 0; rc == 0 && round < RB_ASYNC_ROUNDS; round++) {
        for (int turn = 0; turn < 2 && rc == 0; turn++) {
            bool on_mesh = (turn == 0) == (round % 2 == 0);
            progress.shown = 0;
            cli_progress_show (&progress, "bench reqrep async: round %d of %d, %s", round + 1,
                               RB_ASYNC_ROUNDS, on_mesh? "meshbus": "raw libzmq");
            double rate = on_mesh? s_mesh_rate (&mesh, RB_ASYNC_COUNT, RB_WINDOW)
                                 : s_raw_rate (&raw, RB_ASYNC_COUNT, RB_WINDOW);
            if (rate <= 0)
                rc = cli_fail ("bench: %s asynchronous round failed: %s",
                               on_mesh? "meshbus": "raw libzmq",
                               on_mesh? mesh_last_error (): zmq_strerror (errno));
            (on_mesh? meshes: raws) [round] = rate;
        }
    }
    cli_progress_end (&progress);
    s_mesh_stop (&mesh);
    s_raw_stop (&raw);
    if (rc == 0) {
        qsort (raws, RB_ASYNC_ROUNDS, sizeof (double), cli_cmp_double);
        qsort (meshes, RB_ASYNC_ROUNDS, sizeof (double), cli_cmp_double);
        *raw_rate = raws [RB_ASYNC_ROUNDS / 2];
        *mesh_rate = meshes [RB_ASYNC_ROUNDS / 2];
    }
    return rc;
}

int
cli_bench_reqrep (cli_opts_t *opts, size_t size, size_t count, bool json)
{
    if (!size)
        size = RB_DEFAULT_SIZE;
    if (!count)
        count = RB_DEFAULT_COUNT;
    double lat [4] = { 0 }, mesh_rate = 0, raw_rate = 0;
    int rc = s_latency (size, count, opts, lat);
    if (rc == 0)
        rc = s_rate (size, opts, &mesh_rate, &raw_rate);
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
                size, count, RB_BLOCK);
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
