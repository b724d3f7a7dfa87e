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

    bench pubsub: one publisher, S subscribers, all in this process, with
    back-pressure on both sides so that no drop distorts the figure. Raw:
    an XPUB with ZMQ_XPUB_NODROP (a PUB that blocks at the high-water mark
    instead of dropping) bound on tcp loopback, S SUB sockets subscribed
    to "" and read by a thread each. meshbus: a publisher node and S
    subscriber nodes (own cluster and beacon port) whose threads loop
    mesh_node_dispatch; each subscribes "bench.#" with MESH_SUB_BLOCK.
    Every socket of raw and every node of meshbus has its own zmq context,
    as separate processes would; both use the same high-water marks. The
    slow joiner is waited for by publishing warm-up messages until every
    subscriber got one. Then rounds of COUNT messages alternate raw and
    meshbus (who goes first alternates too); a round's clock runs from the
    first publish to the moment the last subscriber got its COUNT-th
    message. Headline: msg/s per subscriber (COUNT / round time), medians
    over the rounds; ratio = meshbus / raw (higher is better).

    bench reqrep and bench pipeline live in cli_bench_reqrep.c and
    cli_bench_pipeline.c.
    ========================================================================= */

#include "cli.h"
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
    cli_bench_echo (((raw_t *) arg)->router);
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
    uint64_t start = cli_now_ns ();
    if (mesh_node_whisper (side->a, side->b_id, NULL, side->buf, side->size))
        return 0;
    while (side->replies < want) {
        if (mesh_node_dispatch (side->a, BENCH_REPLY_MS) <= 0 || side->bad_replies)
            return 0;
    }
    return cli_now_ns () - start;
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
        qsort (raw_ns, count, sizeof (uint64_t), cli_cmp_u64);
        qsort (mesh_ns, count, sizeof (uint64_t), cli_cmp_u64);
        double raw_p50 = cli_pct_us (raw_ns, count, 50), raw_p99 = cli_pct_us (raw_ns, count, 99);
        double mesh_p50 = cli_pct_us (mesh_ns, count, 50), mesh_p99 = cli_pct_us (mesh_ns, count, 99);
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

//  ---------------------------------------------------------------------
//  bench pubsub

#define PS_DEFAULT_ROUNDS    5
#define PS_MAX_SUBSCRIBERS   64
#define PS_ROUND_BYTES       (512ull * 1024 * 1024)    //  default COUNT = this / SIZE...
#define PS_COUNT_MIN         2000                       //  ...within these bounds
#define PS_COUNT_MAX         500000
#define PS_ROUND_MS          120000     //  a round that takes longer fails the run
#define PS_WARM_MS           15000      //  every subscriber must get a warm-up message by then
#define PS_SUBJECT           "bench.data"
#define PS_PATTERN           "bench.#"
#define PS_MARK_WARM         'W'        //  first body byte: warm-up, not counted
#define PS_MARK_DATA         'D'        //  first body byte: a message of a round

//  What one subscriber (raw or meshbus) has received. Written by its
//  receiving thread only; the main thread reads with atomics.
typedef struct {
    uint64_t got;               //  data messages so far
    uint64_t warm;              //  warm-up messages so far
    uint64_t target;            //  set by main: got value that ends the round
    uint64_t done_ns;           //  set when got reached target (0 = not yet)
    uint64_t bad;               //  wrong size or marker
} ps_count_t;

static void
s_ps_received (ps_count_t *count, const void *body, size_t size, size_t want)
{
    const char *data = (const char *) body;
    if (size != want || size == 0) {
        __atomic_add_fetch (&count->bad, 1, __ATOMIC_RELAXED);
        return;
    }
    if (data [0] == PS_MARK_WARM) {
        __atomic_add_fetch (&count->warm, 1, __ATOMIC_RELEASE);
        return;
    }
    uint64_t got = count->got + 1;
    __atomic_store_n (&count->got, got, __ATOMIC_RELAXED);
    if (got == __atomic_load_n (&count->target, __ATOMIC_ACQUIRE))
        __atomic_store_n (&count->done_ns, cli_now_ns (), __ATOMIC_RELEASE);
}

//  Before a round: every subscriber ends it after count more messages
static void
s_ps_arm (ps_count_t *counts, size_t subs, size_t count)
{
    for (size_t i = 0; i < subs; i++) {
        __atomic_store_n (&counts [i].done_ns, 0, __ATOMIC_RELAXED);
        __atomic_store_n (&counts [i].target,
                          __atomic_load_n (&counts [i].got, __ATOMIC_ACQUIRE) + count,
                          __ATOMIC_RELEASE);
    }
}

//  Latest done time over the subscribers, 0 while one is not done
static uint64_t
s_ps_done (ps_count_t *counts, size_t subs)
{
    uint64_t last = 0;
    for (size_t i = 0; i < subs; i++) {
        uint64_t done = __atomic_load_n (&counts [i].done_ns, __ATOMIC_ACQUIRE);
        if (!done)
            return 0;
        if (done > last)
            last = done;
    }
    return last;
}

static bool
s_ps_all_warm (ps_count_t *counts, size_t subs)
{
    for (size_t i = 0; i < subs; i++)
        if (!__atomic_load_n (&counts [i].warm, __ATOMIC_ACQUIRE))
            return false;
    return true;
}

static int
s_ps_round_failed (const char *side, ps_count_t *counts, size_t subs)
{
    char detail [512] = "";
    size_t at = 0;
    for (size_t i = 0; i < subs && at < sizeof detail - 64; i++)
        at += (size_t) snprintf (detail + at, sizeof detail - at, " %llu/%llu",
                                 (unsigned long long) counts [i].got,
                                 (unsigned long long) counts [i].target);
    return cli_fail ("bench pubsub: %s round did not complete within %d s (got/target:%s)",
                     side, PS_ROUND_MS / 1000, detail);
}

//  Raw libzmq: XPUB (NODROP) -> S SUB, a thread per SUB

typedef struct {
    void *ctx, *sock;
    pthread_t thread;
    bool running;
    size_t size;
    ps_count_t *count;
} ps_raw_sub_t;

typedef struct {
    void *ctx, *pub;
    ps_raw_sub_t *subs;
    ps_count_t *counts;         //  one per subscriber
    size_t sub_count;
    char *buf;
    size_t size;
    bool curve;                 //  --curve: CURVE on both sides
} ps_raw_t;

static void *
s_ps_raw_loop (void *arg)
{
    ps_raw_sub_t *sub = (ps_raw_sub_t *) arg;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (zmq_msg_recv (&msg, sub->sock, 0) >= 0)
        s_ps_received (sub->count, zmq_msg_data (&msg), zmq_msg_size (&msg), sub->size);
    zmq_msg_close (&msg);
    zmq_close (sub->sock);          //  ETERM: the bench is over
    return NULL;
}

static int
s_ps_raw_start (ps_raw_t *raw, size_t subs, size_t size, int hwm)
{
    raw->size = size;
    raw->sub_count = subs;
    raw->buf = (char *) calloc (1, size);
    raw->subs = (ps_raw_sub_t *) calloc (subs, sizeof (ps_raw_sub_t));
    raw->counts = (ps_count_t *) calloc (subs, sizeof (ps_count_t));
    if (!raw->buf || !raw->subs || !raw->counts)
        return cli_fail ("bench: out of memory");
    raw->ctx = zmq_ctx_new ();
    raw->pub = zmq_socket (raw->ctx, ZMQ_XPUB);
    int zero = 0, one = 1;
    zmq_setsockopt (raw->pub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (raw->pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (raw->pub, ZMQ_XPUB_NODROP, &one, sizeof one);
    char pub_key [41], sec_key [41];
    if (raw->curve) {
        //  raw libzmq's own CURVE: no ZAP handler, so any client key passes
        if (zmq_curve_keypair (pub_key, sec_key))
            return cli_fail ("bench: raw libzmq has no CURVE: %s", zmq_strerror (errno));
        zmq_setsockopt (raw->pub, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt (raw->pub, ZMQ_CURVE_SECRETKEY, sec_key, 40);
    }
    char endpoint [128];
    size_t len = sizeof endpoint;
    if (zmq_bind (raw->pub, "tcp://127.0.0.1:*")
    ||  zmq_getsockopt (raw->pub, ZMQ_LAST_ENDPOINT, endpoint, &len))
        return cli_fail ("bench: raw libzmq setup failed: %s", zmq_strerror (errno));
    for (size_t i = 0; i < subs; i++) {
        ps_raw_sub_t *sub = &raw->subs [i];
        sub->size = size;
        sub->count = &raw->counts [i];
        sub->ctx = zmq_ctx_new ();
        sub->sock = zmq_socket (sub->ctx, ZMQ_SUB);
        zmq_setsockopt (sub->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt (sub->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt (sub->sock, ZMQ_SUBSCRIBE, "", 0);
        if (raw->curve) {
            char cpub [41], csec [41];
            zmq_curve_keypair (cpub, csec);
            zmq_setsockopt (sub->sock, ZMQ_CURVE_SERVERKEY, pub_key, 40);
            zmq_setsockopt (sub->sock, ZMQ_CURVE_PUBLICKEY, cpub, 40);
            zmq_setsockopt (sub->sock, ZMQ_CURVE_SECRETKEY, csec, 40);
        }
        if (zmq_connect (sub->sock, endpoint))
            return cli_fail ("bench: raw libzmq connect failed: %s", zmq_strerror (errno));
        if (pthread_create (&sub->thread, NULL, s_ps_raw_loop, sub))
            return cli_fail ("bench: cannot start a raw subscriber thread");
        sub->running = true;
    }
    //  The slow joiner: publish warm-ups until every SUB got one
    raw->buf [0] = PS_MARK_WARM;
    uint64_t deadline = cli_now_ns () + PS_WARM_MS * 1000000ull;
    while (!s_ps_all_warm (raw->counts, subs)) {
        if (cli_now_ns () > deadline || cli_interrupted ())
            return cli_fail ("bench: raw subscribers did not join within %d s", PS_WARM_MS / 1000);
        zmq_send (raw->pub, raw->buf, size, ZMQ_DONTWAIT);
        usleep (1000);
    }
    return 0;
}

//  One round; returns its duration in ns, 0 on failure
static uint64_t
s_ps_raw_round (ps_raw_t *raw, size_t count)
{
    s_ps_arm (raw->counts, raw->sub_count, count);
    raw->buf [0] = PS_MARK_DATA;
    uint64_t start = cli_now_ns ();
    for (size_t i = 0; i < count; i++)
        if (zmq_send (raw->pub, raw->buf, raw->size, 0) < 0)
            return cli_fail ("bench: raw send failed: %s", zmq_strerror (errno)), 0;
    uint64_t deadline = start + PS_ROUND_MS * 1000000ull, last;
    while (!(last = s_ps_done (raw->counts, raw->sub_count))) {
        if (cli_now_ns () > deadline || cli_interrupted ())
            return s_ps_round_failed ("raw libzmq", raw->counts, raw->sub_count), 0;
        usleep (200);
    }
    return last - start;
}

static void
s_ps_raw_stop (ps_raw_t *raw)
{
    if (raw->pub)
        zmq_close (raw->pub);
    if (raw->ctx)
        zmq_ctx_term (raw->ctx);
    for (size_t i = 0; raw->subs && i < raw->sub_count; i++) {
        ps_raw_sub_t *sub = &raw->subs [i];
        if (!sub->ctx)
            continue;
        zmq_ctx_shutdown (sub->ctx);        //  unblocks the subscriber thread
        if (sub->running)
            pthread_join (sub->thread, NULL);
        else
        if (sub->sock)
            zmq_close (sub->sock);
        zmq_ctx_term (sub->ctx);
    }
    free (raw->subs);
    free (raw->counts);
    free (raw->buf);
}

//  meshbus: a publisher node, S subscriber nodes dispatching in threads

typedef struct {
    mesh_node_t *node;
    mesh_pubsub_t *pubsub;
    pthread_t thread;
    bool running;
    volatile bool stop;
    size_t size;
    ps_count_t *count;
} ps_mesh_sub_t;

typedef struct {
    mesh_node_t *node;
    mesh_pubsub_t *pubsub;
    ps_mesh_sub_t *subs;
    ps_count_t *counts;
    size_t sub_count;
    char *buf;
    size_t size;
    uint64_t short_sends;       //  publishes that reached fewer than all subscribers
} ps_mesh_t;

static void
s_ps_on_msg (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    ps_mesh_sub_t *sub = (ps_mesh_sub_t *) arg;
    s_ps_received (sub->count, mesh_msg_body (msg), mesh_msg_size (msg), sub->size);
}

static void *
s_ps_mesh_loop (void *arg)
{
    ps_mesh_sub_t *sub = (ps_mesh_sub_t *) arg;
    while (!sub->stop) {
        if (mesh_node_dispatch (sub->node, 100) < 0)
            break;
        s_drain_events (sub->node);
    }
    return NULL;
}

static int
s_ps_mesh_start (ps_mesh_t *mesh, const cli_opts_t *opts, size_t subs, size_t size, int hwm)
{
    mesh->size = size;
    mesh->sub_count = subs;
    mesh->buf = (char *) calloc (1, size);
    mesh->subs = (ps_mesh_sub_t *) calloc (subs, sizeof (ps_mesh_sub_t));
    mesh->counts = (ps_count_t *) calloc (subs, sizeof (ps_count_t));
    if (!mesh->buf || !mesh->subs || !mesh->counts)
        return cli_fail ("bench: out of memory");
    //  A cluster and beacon port of our own (see s_mesh_start)
    char cluster [64], port [16], hwm_text [16];
    snprintf (cluster, sizeof cluster, "bench-ps-%d", (int) getpid ());
    snprintf (port, sizeof port, "%d", 30000 + (int) ((getpid () + 7919) % 20000));
    snprintf (hwm_text, sizeof hwm_text, "%d", hwm);
    cli_opts_t node_opts = *opts;
    if (!node_opts.cluster)
        node_opts.cluster = cluster;
    if (!node_opts.port)
        node_opts.port = port;
    node_opts.hwm = hwm_text;
    node_opts.name = "bench-pub";
    mesh->node = cli_node_new (&node_opts, "bench-pub");
    mesh->pubsub = mesh->node? mesh_pubsub_new (mesh->node): NULL;
    if (!mesh->pubsub)
        return -1;
    mesh_sub_opts_t sub_opts = { .mode = MESH_SUB_BLOCK };
    for (size_t i = 0; i < subs; i++) {
        ps_mesh_sub_t *sub = &mesh->subs [i];
        char name [32];
        snprintf (name, sizeof name, "bench-sub-%zu", i + 1);
        node_opts.name = name;
        sub->size = size;
        sub->count = &mesh->counts [i];
        sub->node = cli_node_new (&node_opts, name);
        sub->pubsub = sub->node? mesh_pubsub_new (sub->node): NULL;
        if (!sub->pubsub
        ||  mesh_subscribe (sub->pubsub, PS_PATTERN, &sub_opts, s_ps_on_msg, sub) < 0)
            return cli_fail ("bench: subscriber %zu: %s", i + 1, mesh_last_error ());
        if (pthread_create (&sub->thread, NULL, s_ps_mesh_loop, sub))
            return cli_fail ("bench: cannot start a subscriber thread");
        sub->running = true;
    }
    if (mesh_pubsub_wait_subscribers (mesh->pubsub, PS_SUBJECT, subs, PS_WARM_MS))
        return cli_fail ("bench: %zu of %zu subscribers were seen within %d s",
                         mesh_pubsub_subscribers (mesh->pubsub, PS_SUBJECT), subs,
                         PS_WARM_MS / 1000);
    //  Seen is not yet linked both ways: publish warm-ups until each got one
    mesh->buf [0] = PS_MARK_WARM;
    uint64_t deadline = cli_now_ns () + PS_WARM_MS * 1000000ull;
    while (!s_ps_all_warm (mesh->counts, subs)) {
        if (cli_now_ns () > deadline || cli_interrupted ())
            return cli_fail ("bench: meshbus subscribers got nothing within %d s",
                             PS_WARM_MS / 1000);
        mesh_publish (mesh->pubsub, PS_SUBJECT, mesh->buf, size);
        mesh_node_dispatch (mesh->node, 1);
        s_drain_events (mesh->node);
    }
    return 0;
}

static uint64_t
s_ps_mesh_round (ps_mesh_t *mesh, size_t count)
{
    s_ps_arm (mesh->counts, mesh->sub_count, count);
    mesh->buf [0] = PS_MARK_DATA;
    int want = (int) mesh->sub_count;
    uint64_t start = cli_now_ns ();
    for (size_t i = 0; i < count; i++) {
        int sent = mesh_publish (mesh->pubsub, PS_SUBJECT, mesh->buf, mesh->size);
        if (sent < 0)
            return cli_fail ("bench: mesh_publish failed: %s", mesh_last_error ()), 0;
        if (sent < want)
            mesh->short_sends++;
    }
    uint64_t deadline = start + PS_ROUND_MS * 1000000ull, last;
    while (!(last = s_ps_done (mesh->counts, mesh->sub_count))) {
        if (cli_now_ns () > deadline || cli_interrupted ())
            return s_ps_round_failed ("meshbus", mesh->counts, mesh->sub_count), 0;
        //  the publisher's application loop, as a real one would run it
        mesh_node_dispatch (mesh->node, 0);
        s_drain_events (mesh->node);
        usleep (200);
    }
    return last - start;
}

//  Messages the publisher's pub-sub dropped or could not send
static uint64_t
s_ps_mesh_drops (ps_mesh_t *mesh)
{
    static const char *names [] = {
        "pubsub.dropped.hwm", "pubsub.dropped.send-error", "pubsub.dropped.peer-gone"
    };
    uint64_t drops = 0;
    for (size_t i = 0; mesh->node && i < sizeof names / sizeof names [0]; i++)
        drops += mesh_node_counter (mesh->node, NULL, names [i]);
    return drops;
}

static void
s_ps_mesh_stop (ps_mesh_t *mesh)
{
    for (size_t i = 0; mesh->subs && i < mesh->sub_count; i++)
        mesh->subs [i].stop = true;
    for (size_t i = 0; mesh->subs && i < mesh->sub_count; i++) {
        ps_mesh_sub_t *sub = &mesh->subs [i];
        if (sub->running)
            pthread_join (sub->thread, NULL);
        mesh_pubsub_destroy (&sub->pubsub);
        mesh_node_destroy (&sub->node);
    }
    mesh_pubsub_destroy (&mesh->pubsub);
    mesh_node_destroy (&mesh->node);
    free (mesh->subs);
    free (mesh->counts);
    free (mesh->buf);
}

static int
s_bench_pubsub (const cli_opts_t *opts, size_t size, size_t count, size_t subs,
                size_t rounds, bool json)
{
    if (count == 0) {
        count = (size_t) (PS_ROUND_BYTES / size);
        count = count < PS_COUNT_MIN? PS_COUNT_MIN: count > PS_COUNT_MAX? PS_COUNT_MAX: count;
    }
    int hwm = MESH_DEFAULT_SNDHWM;
    if (opts->hwm && (hwm = atoi (opts->hwm)) < 1)
        return cli_fail ("bench pubsub: bad --hwm");
    //  the meshbus nodes take CURVE from the flag or the environment
    //  (cli_node_new): the raw side follows, so both pay for CURVE or neither
    ps_raw_t raw = { .curve = opts->curve != NULL || opts->curve_ephemeral };
    ps_mesh_t mesh = { 0 };
    double *raw_rate = (double *) calloc (rounds, sizeof (double));
    double *mesh_rate = (double *) calloc (rounds, sizeof (double));
    int rc = 0;
    if (!raw_rate || !mesh_rate)
        rc = cli_fail ("bench: out of memory");
    if (rc == 0 && (s_ps_raw_start (&raw, subs, size, hwm)
                ||  s_ps_mesh_start (&mesh, opts, subs, size, hwm)))
        rc = 1;
    //  Warm-up round on each side (TCP windows, allocator, caches)
    size_t warm = count / 10 < 1000? 1000: count / 10;
    if (rc == 0 && (!s_ps_raw_round (&raw, warm) || !s_ps_mesh_round (&mesh, warm)))
        rc = 1;
    uint64_t drops_before = s_ps_mesh_drops (&mesh);
    uint64_t short_before = mesh.short_sends;
    cli_progress_t progress;
    cli_progress_init (&progress, json);
    for (size_t r = 0; rc == 0 && r < rounds; r++) {
        for (int turn = 0; turn < 2 && rc == 0; turn++) {
            bool on_mesh = (turn == 0) == (r % 2 == 1);
            progress.shown = 0;             //  every round shows
            cli_progress_show (&progress, "bench pubsub: round %zu of %zu, %s", r + 1, rounds,
                               on_mesh? "meshbus": "raw libzmq");
            uint64_t took = on_mesh? s_ps_mesh_round (&mesh, count): s_ps_raw_round (&raw, count);
            if (!took)
                rc = 1;
            else
                (on_mesh? mesh_rate: raw_rate) [r] = count * 1e9 / (double) took;
        }
    }
    cli_progress_end (&progress);
    uint64_t drops = s_ps_mesh_drops (&mesh) - drops_before;
    uint64_t short_sends = mesh.short_sends - short_before;
    uint64_t bad = 0;
    for (size_t i = 0; i < subs; i++)
        bad += (raw.counts? raw.counts [i].bad: 0) + (mesh.counts? mesh.counts [i].bad: 0);
    s_ps_mesh_stop (&mesh);
    s_ps_raw_stop (&raw);
    if (rc == 0 && bad)
        rc = cli_fail ("bench pubsub: %llu messages arrived with the wrong size",
                       (unsigned long long) bad);
    if (rc == 0) {
        double raw_lo = raw_rate [0], raw_hi = raw_rate [0];
        double mesh_lo = mesh_rate [0], mesh_hi = mesh_rate [0];
        for (size_t r = 1; r < rounds; r++) {
            raw_lo = raw_rate [r] < raw_lo? raw_rate [r]: raw_lo;
            raw_hi = raw_rate [r] > raw_hi? raw_rate [r]: raw_hi;
            mesh_lo = mesh_rate [r] < mesh_lo? mesh_rate [r]: mesh_lo;
            mesh_hi = mesh_rate [r] > mesh_hi? mesh_rate [r]: mesh_hi;
        }
        double raw_med = cli_median (raw_rate, rounds), mesh_med = cli_median (mesh_rate, rounds);
        double ratio = mesh_med / raw_med;
        if (json)
            printf ("{\"bench\":\"pubsub\",\"size\":%zu,\"count\":%zu,\"rounds\":%zu,"
                    "\"subscribers\":%zu,\"curve\":%s,\"mode\":\"block\",\"unit\":\"msg/s per subscriber\","
                    "\"meshbus\":%.0f,\"raw\":%.0f,\"ratio\":%.3f,"
                    "\"meshbus_min\":%.0f,\"meshbus_max\":%.0f,\"raw_min\":%.0f,\"raw_max\":%.0f,"
                    "\"drops\":%llu,\"short_publishes\":%llu}\n",
                    size, count, rounds, subs, raw.curve? "true": "false", mesh_med, raw_med, ratio,
                    mesh_lo, mesh_hi, raw_lo, raw_hi,
                    (unsigned long long) drops, (unsigned long long) short_sends);
        else {
            printf ("pubsub%s, %zu B, %zu subscriber%s, %zu messages x %zu rounds each, "
                    "alternating; back-pressure (raw: XPUB_NODROP, meshbus: MESH_SUB_BLOCK)\n",
                    raw.curve? " over CURVE": "", size, subs, subs == 1? "": "s", count, rounds);
            printf ("  raw libzmq   %10.0f msg/s per subscriber (median; rounds %.0f..%.0f)\n",
                    raw_med, raw_lo, raw_hi);
            printf ("  meshbus      %10.0f msg/s per subscriber (median; rounds %.0f..%.0f)\n",
                    mesh_med, mesh_lo, mesh_hi);
            printf ("  meshbus drops %llu, publishes short of a subscriber %llu\n",
                    (unsigned long long) drops, (unsigned long long) short_sends);
            printf ("  ratio meshbus/raw: %.2f (higher is better)\n", ratio);
        }
    }
    free (raw_rate);
    free (mesh_rate);
    return rc;
}

enum { B_SIZE = CLI_OPT (1), B_COUNT, B_SUBS, B_ROUNDS, B_KEYS, B_JSON, B_CURVE };

static const struct option s_bench_options [] = {
    { "size",        required_argument, NULL, B_SIZE },
    { "count",       required_argument, NULL, B_COUNT },
    { "subscribers", required_argument, NULL, B_SUBS },
    { "rounds",      required_argument, NULL, B_ROUNDS },
    { "keys",        required_argument, NULL, B_KEYS },
    { "json",        no_argument,       NULL, B_JSON },
    //  here a flag: CURVE on both sides, with a key pair made for the run
    { "curve",       no_argument,       NULL, B_CURVE },
    { NULL, 0, NULL, 0 }
};

static int
s_bench (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_bench_options, NULL, argc, argv);
    long size = -1, count = -1, subs = 1, rounds = PS_DEFAULT_ROUNDS, keys = 0;
    bool json = false, subs_given = false;
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case B_SIZE:   bad = cli_long (cmd, "--size", optarg, 0, BENCH_MAX_SIZE, &size); break;
            case B_COUNT:  bad = cli_long (cmd, "--count", optarg, 1, BENCH_MAX_COUNT, &count); break;
            case B_SUBS:   bad = cli_long (cmd, "--subscribers", optarg, 1, PS_MAX_SUBSCRIBERS, &subs);
                           subs_given = true; break;
            case B_ROUNDS: bad = cli_long (cmd, "--rounds", optarg, 1, 1000, &rounds);
                           subs_given = true; break;
            case B_KEYS:   bad = cli_long (cmd, "--keys", optarg, 1, 100000, &keys); break;
            case B_JSON:   json = true; break;
            case B_CURVE:  opts->curve_ephemeral = true; break;
            default:       bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 1, 1))
        return CLI_USAGE;
    if (opts->curve)
        opts->curve_ephemeral = false;      //  a key file given wins
    const char *what = args.pos [0];
    if (subs_given && !streq_ (what, "pubsub"))
        return cli_usage (cmd, "--subscribers and --rounds are for bench pubsub");
    if (streq_ (what, "link"))
        return s_bench_link (opts, size >= 0? (size_t) size: BENCH_DEFAULT_SIZE,
                             count > 0? (size_t) count: BENCH_DEFAULT_COUNT, json);
    if (streq_ (what, "pubsub")) {
        if (size == 0)
            return cli_usage (cmd, "bench pubsub: --size must be at least 1 (the first byte "
                              "marks warm-ups)");
        return s_bench_pubsub (opts, size > 0? (size_t) size: BENCH_DEFAULT_SIZE,
                               count > 0? (size_t) count: 0, (size_t) subs, (size_t) rounds, json);
    }
    if (streq_ (what, "reqrep"))
        return cli_bench_reqrep (opts, size >= 0? (size_t) size: 0, count > 0? (size_t) count: 0, json);
    if (streq_ (what, "pipeline"))
        return cli_bench_pipeline (opts, size >= 0? (size_t) size: 0, count > 0? (size_t) count: 0, json);
    if (streq_ (what, "handshake"))
        return cli_bench_handshake (opts, (size_t) keys, count > 0? (size_t) count: 0, json);
    return cli_usage (cmd, "unknown benchmark '%s' (link, pubsub, reqrep, pipeline, handshake)",
                      what);
}

const cli_cmd_t cli_cmd_bench = {
    "bench", s_bench, "link|pubsub|reqrep|pipeline|handshake [--size B] [--count N] [--json] "
    "[FLAGS]",
    "meshbus and raw libzmq side by side in one run, and their ratio",
"Runs one benchmark with meshbus and with raw libzmq doing the same job in the same\n"
"run (bench/README.md says what each side does) and prints both and their ratio.\n"
"\n"
"  --size B             message size in bytes (default 100)\n"
"  --count N            messages per round\n"
"  --json               one JSON object instead of text\n"
"  --subscribers S      pubsub: fan-out to S subscribers (default 1)\n"
"  --rounds R           pubsub: rounds per side\n"
"  --curve              CURVE on both sides (a key pair made for the run)\n"
"  --keys K             handshake: trusted keys (default 1000)"
};
