/*  =========================================================================
    bench_link - one-way throughput of a link, meshbus vs raw libzmq

    usage: bench_link [--size B] [--count N] [--rounds R] [--json]

    Raw: a DEALER streams COUNT messages of SIZE bytes to a ROUTER read by
    another thread. meshbus: node A streams COUNT mesh_node_send() DIRECT
    messages to node B, whose thread loops mesh_node_dispatch() and counts
    them in its handler. Each side has its own zmq context (one I/O thread
    each, as two processes would have), both ends use meshbus's high-water
    marks, and the clock runs from the first send to the last message
    received. Rounds alternate raw, meshbus, raw, meshbus... so that noise
    on this shared machine hits both alike; the figures are the medians of
    the rounds and ratio = meshbus msg/s / raw msg/s (higher is better).

    mesh_node_send() never blocks: at the high-water mark it returns
    MESH_EAGAIN and the producer sleeps 0.2 ms and retries (raw zmq_send
    blocks there instead); the retries are reported so that back-pressure
    is visible, not hidden.
    ========================================================================= */

#include "bench_mesh.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SIZE    100
#define DEFAULT_COUNT   1000000
#define DEFAULT_ROUNDS  5
#define MAX_ROUNDS      99
#define MEET_MS         15000

//  ---------------------------------------------------------------------
//  Raw libzmq stream

typedef struct {
    volatile long got;          //  bodies (the reader thread)
    long target;
    volatile uint64_t end;
} raw_sink_t;

static void
s_raw_frame (bench_raw_reader_t *reader, zmq_msg_t *frame)
{
    raw_sink_t *sink = (raw_sink_t *) reader->arg;
    if (zmq_msg_more (frame))
        return;                 //  the routing id
    if (__atomic_add_fetch (&sink->got, 1, __ATOMIC_RELEASE) == sink->target)
        __atomic_store_n (&sink->end, bench_now_ns (), __ATOMIC_RELEASE);
}

//  One round on fresh sockets; returns msg/s or 0 on failure
static double
s_raw_round (size_t size, long count)
{
    bench_raw_reader_t router = { .ctx = NULL };
    raw_sink_t sink = { .target = 1 + count };
    void *ctx = zmq_ctx_new ();
    void *dealer = bench_raw_socket (ctx, ZMQ_DEALER, MESH_DEFAULT_SNDHWM);
    char endpoint [128], *body = (char *) calloc (1, size? size: 1);
    double rate = 0;
    if (!bench_raw_reader_open (&router, ZMQ_ROUTER, MESH_DEFAULT_SNDHWM)
    &&  !bench_raw_link (router.sock, dealer, endpoint, sizeof endpoint)
    &&  !bench_raw_reader_run (&router, s_raw_frame, &sink)) {
        //  one message through first, so the clock does not time the connect
        zmq_send (dealer, "", 0, 0);
        while (__atomic_load_n (&sink.got, __ATOMIC_ACQUIRE) < 1)
            usleep (100);
        uint64_t start = bench_now_ns ();
        for (long i = 0; i < count; i++)
            zmq_send (dealer, body, size, 0);
        uint64_t deadline = start + 30000000000ull;
        while (!__atomic_load_n (&sink.end, __ATOMIC_ACQUIRE) && bench_now_ns () < deadline)
            usleep (100);
        if (sink.end)
            rate = count / ((sink.end - start) / 1e9);
        else
            bench_fail ("raw: %ld of %ld messages arrived", sink.got - 1, count);
    }
    free (body);
    bench_raw_end (&dealer, &ctx);
    bench_raw_reader_stop (&router);
    return rate;
}

//  ---------------------------------------------------------------------
//  meshbus stream

typedef struct {
    bench_peer_t a, b;
    volatile long received;
    volatile long target;
    volatile uint64_t end;
} mesh_pair_t;

static void
s_on_direct (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    (void) msg;
    mesh_pair_t *pair = (mesh_pair_t *) arg;
    if (++pair->received == pair->target)
        pair->end = bench_now_ns ();
}

static int
s_mesh_start (mesh_pair_t *pair)
{
    bench_where_t where;
    bench_where (&where, "link", 0);
    where.beacon_ms = 100;
    if (bench_peer_open (&pair->a, "bench-a", NULL, &where)
    ||  bench_peer_open (&pair->b, "bench-b", NULL, &where))
        return 1;
    mesh_node_on_kind (pair->b.node, MESH_KIND_DIRECT, s_on_direct, pair);
    if (bench_pair_meet (pair->a.node, pair->b.node, MEET_MS))
        return 1;
    return bench_peer_run (&pair->b, false);
}

//  One round; returns msg/s or 0 on failure. *retries gets the EAGAINs.
static double
s_mesh_round (mesh_pair_t *pair, size_t size, long count, long *retries)
{
    char *body = (char *) calloc (1, size? size: 1);
    const char *peer = mesh_node_id (pair->b.node);
    mesh_head_t head = { .kind = MESH_KIND_DIRECT };
    pair->end = 0;
    pair->target = pair->received + count;
    *retries = 0;
    uint64_t start = bench_now_ns ();
    for (long i = 0; i < count; i++) {
        while (mesh_node_send (pair->a.node, peer, &head, body, size)) {
            if (mesh_errno () != MESH_EAGAIN) {
                bench_fail ("send failed: %s", mesh_last_error ());
                free (body);
                return 0;
            }
            //  The link holds MESH_DEFAULT_SNDHWM messages, tens of ms of
            //  traffic: sleeping a little costs no throughput, while
            //  spinning would steal the receiver's CPU on a small machine.
            (*retries)++;
            nanosleep (&(struct timespec) { 0, 200000 }, NULL);
        }
    }
    //  the sink thread sets end when the last one arrives
    uint64_t deadline = mesh_clock_ms () + 30000;
    while (pair->received < pair->target && mesh_clock_ms () < deadline)
        mesh_node_dispatch (pair->a.node, 1);   //  keeps A's side of the link serviced
    free (body);
    if (pair->received < pair->target) {
        bench_fail ("%ld of %ld messages arrived", pair->received - (pair->target - count),
                    count);
        return 0;
    }
    return count / ((pair->end - start) / 1e9);
}

static void
s_mesh_stop (mesh_pair_t *pair)
{
    bench_peer_close (&pair->b);
    bench_peer_close (&pair->a);
}

int
main (int argc, char **argv)
{
    bench_host.prog = "bench_link";
    size_t size = DEFAULT_SIZE, count = DEFAULT_COUNT, rounds = DEFAULT_ROUNDS;
    bool json = false;
    const bench_arg_t flags [] = {
        BENCH_NUM ("size", &size, 0, 16 * 1024 * 1024), BENCH_NUM ("count", &count, 1, 1000000000),
        BENCH_NUM ("rounds", &rounds, 1, MAX_ROUNDS), BENCH_FLAG ("json", &json), BENCH_ARGS_END
    };
    if (bench_args (argc, argv, flags, "bench_link [--size B] [--count N] [--rounds R] [--json]"))
        return 2;
    mesh_pair_t pair = { 0 };
    if (s_mesh_start (&pair)) {
        s_mesh_stop (&pair);
        return 1;
    }
    double raw [MAX_ROUNDS], mesh [MAX_ROUNDS], ratio [MAX_ROUNDS];
    long retries = 0, total_retries = 0;
    int rc = 0;
    //  one unmeasured meshbus round warms the link and the allocator
    s_mesh_round (&pair, size, (long) count / 10 + 1, &retries);
    for (size_t r = 0; r < rounds && rc == 0; r++) {
        raw [r] = s_raw_round (size, (long) count);
        mesh [r] = s_mesh_round (&pair, size, (long) count, &retries);
        total_retries += retries;
        if (raw [r] <= 0 || mesh [r] <= 0)
            rc = 1;
        ratio [r] = mesh [r] / raw [r];
        if (!json && rc == 0)
            printf ("round %zu: raw %.0f msg/s, meshbus %.0f msg/s, ratio %.2f\n",
                    r + 1, raw [r], mesh [r], ratio [r]);
    }
    s_mesh_stop (&pair);
    if (rc)
        return rc;
    double raw_med = bench_stat (raw, rounds).med;
    double mesh_med = bench_stat (mesh, rounds).med;
    double ratio_med = bench_stat (ratio, rounds).med;
    if (json)
        printf ("{\"bench\":\"link-throughput\",\"size\":%zu,\"count\":%zu,\"rounds\":%zu,"
                "\"meshbus\":%.0f,\"raw\":%.0f,\"ratio\":%.3f,\"eagain_retries\":%ld}\n",
                size, count, rounds, mesh_med, raw_med, ratio_med, total_retries);
    else
        printf ("one-way stream, %zu B x %zu, median of %zu rounds:\n"
                "  raw libzmq %.0f msg/s, meshbus %.0f msg/s, ratio %.2f "
                "(median of per-round ratios; higher is better), %ld EAGAIN retries\n",
                size, count, rounds, raw_med, mesh_med, ratio_med, total_retries);
    return 0;
}
