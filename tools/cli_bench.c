/*  =========================================================================
    meshbus bench - meshbus and raw libzmq side by side, in one run

    Speed is a ratio against raw libzmq measured in the same process at the
    same time, never an absolute figure: the machines this runs on are
    shared and noisy, and a ratio survives noise that hits both sides.

    bench link: round trip over one link pair. Raw: a DEALER sends SIZE
    bytes to a ROUTER whose thread echoes them to the routing id; the
    DEALER waits for the echo. meshbus: node A whispers to node B, B's
    handler (a thread looping mesh_node_dispatch) whispers back, A waits
    in mesh_node_dispatch. Each side of each pair has its own zmq context
    (its own I/O thread), because that is what two processes have and what
    two meshbus nodes have. The two measurements alternate in blocks so
    that noise from the rest of the machine hits both alike; the headline
    is the median round trip, ratio = meshbus p50 / raw p50 (lower is
    better).

    The pattern benchmarks (pubsub, reqrep, pipeline) arrive with their
    patterns; until then they say so and exit 2.
    ========================================================================= */

#include "meshbus_cli.h"
#include <zmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#define BENCH_DEFAULT_SIZE   100
#define BENCH_DEFAULT_COUNT  20000
#define BENCH_MAX_SIZE       (16 * 1024 * 1024)
#define BENCH_MAX_COUNT      10000000
#define BENCH_BLOCK          1000       //  round trips per turn before switching side
#define BENCH_WARMUP         1000       //  round trips per side before measuring
#define BENCH_MEET_MS        15000      //  nodes must have met within this
#define BENCH_REPLY_MS       5000       //  a lost reply fails the run after this

static uint64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y? -1: x > y;
}

//  Percentile of sorted samples, in microseconds
static double
s_pct_us (const uint64_t *sorted, size_t n, int pct)
{
    size_t i = n * (size_t) pct / 100;
    if (i >= n)
        i = n - 1;
    return sorted [i] / 1000.0;
}

//  ---------------------------------------------------------------------
//  Raw libzmq: DEALER -> ROUTER, a thread echoes

typedef struct {
    void *server_ctx, *client_ctx;
    void *router, *dealer;
    pthread_t echo;
    char *buf;
    size_t size;
} raw_t;

static void *
s_raw_echo (void *arg)
{
    raw_t *raw = (raw_t *) arg;
    while (true) {
        zmq_msg_t rid, body;
        zmq_msg_init (&rid);
        zmq_msg_init (&body);
        if (zmq_msg_recv (&rid, raw->router, 0) < 0
        ||  zmq_msg_recv (&body, raw->router, 0) < 0) {
            zmq_msg_close (&rid);
            zmq_msg_close (&body);
            break;                      //  ETERM: the bench is over
        }
        zmq_msg_send (&rid, raw->router, ZMQ_SNDMORE);
        zmq_msg_send (&body, raw->router, 0);
    }
    zmq_close (raw->router);
    return NULL;
}

static int
s_raw_start (raw_t *raw, size_t size)
{
    raw->size = size;
    raw->buf = (char *) calloc (1, size? size: 1);
    raw->server_ctx = zmq_ctx_new ();
    raw->client_ctx = zmq_ctx_new ();
    raw->router = zmq_socket (raw->server_ctx, ZMQ_ROUTER);
    raw->dealer = zmq_socket (raw->client_ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt (raw->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (raw->dealer, ZMQ_LINGER, &zero, sizeof zero);
    char endpoint [128];
    size_t len = sizeof endpoint;
    if (zmq_bind (raw->router, "tcp://127.0.0.1:*")
    ||  zmq_getsockopt (raw->router, ZMQ_LAST_ENDPOINT, endpoint, &len)
    ||  zmq_connect (raw->dealer, endpoint))
        return cli_fail ("bench: raw libzmq setup failed: %s", zmq_strerror (errno));
    if (pthread_create (&raw->echo, NULL, s_raw_echo, raw))
        return cli_fail ("bench: cannot start the raw echo thread");
    return 0;
}

//  One round trip; returns its duration in ns, 0 on failure
static uint64_t
s_raw_round_trip (raw_t *raw)
{
    uint64_t start = s_now_ns ();
    if (zmq_send (raw->dealer, raw->buf, raw->size, 0) < 0)
        return 0;
    zmq_msg_t reply;
    zmq_msg_init (&reply);
    int rc = zmq_msg_recv (&reply, raw->dealer, 0);
    uint64_t took = s_now_ns () - start;
    zmq_msg_close (&reply);
    return rc == (int) raw->size? took: 0;
}

static void
s_raw_stop (raw_t *raw)
{
    if (raw->dealer)
        zmq_close (raw->dealer);
    if (raw->server_ctx) {
        zmq_ctx_shutdown (raw->server_ctx);     //  unblocks the echo thread
        if (raw->echo)
            pthread_join (raw->echo, NULL);
        zmq_ctx_term (raw->server_ctx);
    }
    if (raw->client_ctx)
        zmq_ctx_term (raw->client_ctx);
    free (raw->buf);
}

//  ---------------------------------------------------------------------
//  meshbus: node A whispers to node B, B's dispatch thread whispers back

typedef struct {
    mesh_node_t *a, *b;
    pthread_t b_thread;
    volatile bool stop;
    bool b_running;
    volatile uint64_t replies;      //  A's handler counts them (A's thread only)
    uint64_t bad_replies;
    char *buf;
    size_t size;
    char b_id [33];
} mesh_side_t;

static void
s_on_echo (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) arg;
    mesh_node_whisper (node, mesh_msg_sender (msg), NULL, mesh_msg_body (msg),
                       mesh_msg_size (msg));
}

static void
s_on_reply (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_side_t *side = (mesh_side_t *) arg;
    if (mesh_msg_size (msg) == side->size)
        side->replies++;
    else
        side->bad_replies++;
}

static void *
s_mesh_b_loop (void *arg)
{
    mesh_side_t *side = (mesh_side_t *) arg;
    while (!side->stop)
        if (mesh_node_dispatch (side->b, 100) < 0)
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
s_mesh_start (mesh_side_t *side, const cli_opts_t *opts, size_t size)
{
    side->size = size;
    side->buf = (char *) calloc (1, size? size: 1);
    //  A cluster and beacon port of our own: other nodes on this host
    //  (tests, users) neither join nor slow the bench.
    char cluster [64], port [16];
    snprintf (cluster, sizeof cluster, "bench-%d", (int) getpid ());
    snprintf (port, sizeof port, "%d", 30000 + (int) (getpid () % 20000));
    cli_opts_t node_opts = *opts;
    if (!node_opts.cluster)
        node_opts.cluster = cluster;
    if (!node_opts.port)
        node_opts.port = port;
    node_opts.name = "bench-a";
    side->a = cli_node_new (&node_opts, "bench-a");
    node_opts.name = "bench-b";
    side->b = side->a? cli_node_new (&node_opts, "bench-b"): NULL;
    if (!side->a || !side->b)
        return -1;
    snprintf (side->b_id, sizeof side->b_id, "%s", mesh_node_id (side->b));
    mesh_node_on_kind (side->a, MESH_KIND_DIRECT, s_on_reply, side);
    mesh_node_on_kind (side->b, MESH_KIND_DIRECT, s_on_echo, side);
    int64_t deadline = (int64_t) mesh_clock_ms () + BENCH_MEET_MS;
    while (mesh_node_peer_state (side->a, side->b_id) != MESH_PEER_ALIVE
    ||     mesh_node_peer_state (side->b, mesh_node_id (side->a)) != MESH_PEER_ALIVE) {
        if ((int64_t) mesh_clock_ms () > deadline || cli_interrupted ())
            return cli_fail ("bench: the two nodes did not meet within %d s",
                             BENCH_MEET_MS / 1000);
        mesh_node_dispatch (side->a, 5);
        mesh_node_dispatch (side->b, 5);
        s_drain_events (side->a);
        s_drain_events (side->b);
    }
    if (pthread_create (&side->b_thread, NULL, s_mesh_b_loop, side))
        return cli_fail ("bench: cannot start node B's thread");
    side->b_running = true;
    return 0;
}

static uint64_t
s_mesh_round_trip (mesh_side_t *side)
{
    uint64_t want = side->replies + 1;
    uint64_t start = s_now_ns ();
    if (mesh_node_whisper (side->a, side->b_id, NULL, side->buf, side->size))
        return 0;
    while (side->replies < want) {
        if (mesh_node_dispatch (side->a, BENCH_REPLY_MS) <= 0 || side->bad_replies)
            return 0;
    }
    return s_now_ns () - start;
}

static void
s_mesh_stop (mesh_side_t *side)
{
    side->stop = true;
    if (side->b_running)
        pthread_join (side->b_thread, NULL);
    mesh_node_destroy (&side->a);
    mesh_node_destroy (&side->b);
    free (side->buf);
}

//  ---------------------------------------------------------------------

static int
s_bench_link (const cli_opts_t *opts, size_t size, size_t count, bool json)
{
    raw_t raw = { 0 };
    mesh_side_t mesh = { 0 };
    uint64_t *raw_ns = (uint64_t *) calloc (count, sizeof (uint64_t));
    uint64_t *mesh_ns = (uint64_t *) calloc (count, sizeof (uint64_t));
    int rc = 0;
    if (!raw_ns || !mesh_ns)
        rc = cli_fail ("bench: out of memory");
    if (rc == 0 && (s_raw_start (&raw, size) || s_mesh_start (&mesh, opts, size)))
        rc = 1;
    for (int i = 0; rc == 0 && i < BENCH_WARMUP; i++)
        if (!s_raw_round_trip (&raw) || !s_mesh_round_trip (&mesh))
            rc = cli_fail ("bench: a round trip failed during warm-up: %s",
                           mesh_last_error ());
    size_t done = 0;
    bool mesh_first = false;
    while (rc == 0 && done < count && !cli_interrupted ()) {
        size_t block = count - done < BENCH_BLOCK? count - done: BENCH_BLOCK;
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
        mesh_first = !mesh_first;       //  neither side always runs right after a switch
        done += block;
    }
    if (rc == 0 && done < count)
        rc = cli_fail ("bench: interrupted");
    s_mesh_stop (&mesh);
    s_raw_stop (&raw);
    if (rc == 0) {
        qsort (raw_ns, count, sizeof (uint64_t), s_cmp_u64);
        qsort (mesh_ns, count, sizeof (uint64_t), s_cmp_u64);
        double raw_p50 = s_pct_us (raw_ns, count, 50), raw_p99 = s_pct_us (raw_ns, count, 99);
        double mesh_p50 = s_pct_us (mesh_ns, count, 50), mesh_p99 = s_pct_us (mesh_ns, count, 99);
        double ratio = mesh_p50 / raw_p50;
        if (json)
            printf ("{\"bench\":\"link\",\"size\":%zu,\"count\":%zu,\"meshbus\":%.2f,"
                    "\"raw\":%.2f,\"ratio\":%.3f,\"meshbus_p99\":%.2f,\"raw_p99\":%.2f}\n",
                    size, count, mesh_p50, raw_p50, ratio, mesh_p99, raw_p99);
        else {
            printf ("link round trip, %zu B, %zu each, interleaved blocks of %d\n",
                    size, count, BENCH_BLOCK);
            printf ("  raw libzmq   p50 %8.1f us   p99 %8.1f us\n", raw_p50, raw_p99);
            printf ("  meshbus      p50 %8.1f us   p99 %8.1f us\n", mesh_p50, mesh_p99);
            printf ("  ratio meshbus/raw p50: %.2f (lower is better)\n", ratio);
        }
    }
    free (raw_ns);
    free (mesh_ns);
    return rc;
}

static int
s_number (const char *text, const char *what, long min, long max, size_t *value)
{
    char *end;
    long v = strtol (text, &end, 10);
    if (*end || end == text || v < min || v > max)
        return cli_fail ("%s: '%s' is not a number in %ld..%ld", what, text, min, max), -1;
    *value = (size_t) v;
    return 0;
}

int
cli_bench (cli_opts_t *opts, int argc, char **argv)
{
    const char *size_arg = cli_take (&argc, argv, "--size");
    const char *count_arg = cli_take (&argc, argv, "--count");
    bool json = cli_take_flag (&argc, argv, "--json");
    if (argc < 1) {
        cli_fail ("bench: which one? link, pubsub, reqrep or pipeline");
        return 2;
    }
    if (cli_no_extra (argc, argv, 1))
        return 2;
    size_t size = BENCH_DEFAULT_SIZE, count = BENCH_DEFAULT_COUNT;
    if ((size_arg && s_number (size_arg, "--size", 0, BENCH_MAX_SIZE, &size))
    ||  (count_arg && s_number (count_arg, "--count", 1, BENCH_MAX_COUNT, &count)))
        return 2;
    const char *what = argv [0];
    if (streq_ (what, "link"))
        return s_bench_link (opts, size, count, json);
    if (streq_ (what, "pubsub") || streq_ (what, "reqrep") || streq_ (what, "pipeline")) {
        cli_fail ("bench %s: not available yet (pattern not built)", what);
        return 2;
    }
    cli_fail ("bench: unknown benchmark '%s' (link, pubsub, reqrep, pipeline)", what);
    return 2;
}
