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

#include "meshbus.h"
#include <zmq.h>
#include <pthread.h>
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

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

static double
s_median (double *values, int n)
{
    qsort (values, (size_t) n, sizeof (double), s_cmp_double);
    return n % 2? values [n / 2]: (values [n / 2 - 1] + values [n / 2]) / 2;
}

//  ---------------------------------------------------------------------
//  Raw libzmq stream

typedef struct {
    void *router;
    long count;
    double end;
} raw_sink_t;

static void *
s_raw_sink (void *arg)
{
    raw_sink_t *sink = (raw_sink_t *) arg;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    for (long i = 0; i < sink->count; i++) {
        zmq_msg_recv (&frame, sink->router, 0);     //  routing id
        zmq_msg_recv (&frame, sink->router, 0);     //  body
    }
    sink->end = s_now ();
    zmq_msg_close (&frame);
    return NULL;
}

//  One round; returns msg/s or 0 on failure
static double
s_raw_round (size_t size, long count)
{
    void *server_ctx = zmq_ctx_new (), *client_ctx = zmq_ctx_new ();
    void *router = zmq_socket (server_ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket (client_ctx, ZMQ_DEALER);
    int hwm = MESH_DEFAULT_SNDHWM, zero = 0;
    zmq_setsockopt (router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (dealer, ZMQ_LINGER, &zero, sizeof zero);
    char endpoint [128];
    size_t len = sizeof endpoint;
    zmq_bind (router, "tcp://127.0.0.1:*");
    zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, endpoint, &len);
    zmq_connect (dealer, endpoint);
    //  one message through first, so the clock does not time the connect
    zmq_send (dealer, "", 0, 0);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    zmq_msg_recv (&frame, router, 0);
    zmq_msg_recv (&frame, router, 0);
    zmq_msg_close (&frame);

    raw_sink_t sink = { router, count, 0 };
    pthread_t thread;
    pthread_create (&thread, NULL, s_raw_sink, &sink);
    char *body = (char *) calloc (1, size? size: 1);
    double start = s_now ();
    for (long i = 0; i < count; i++)
        zmq_send (dealer, body, size, 0);
    pthread_join (thread, NULL);
    free (body);
    zmq_close (dealer);
    zmq_close (router);
    zmq_ctx_term (client_ctx);
    zmq_ctx_term (server_ctx);
    return count / (sink.end - start);
}

//  ---------------------------------------------------------------------
//  meshbus stream

typedef struct {
    mesh_node_t *a, *b;
    pthread_t thread;
    volatile long received;
    volatile long target;
    volatile bool stop;
    double end;
} mesh_pair_t;

static void
s_on_direct (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    (void) msg;
    mesh_pair_t *pair = (mesh_pair_t *) arg;
    if (++pair->received == pair->target)
        pair->end = s_now ();
}

static void *
s_mesh_sink (void *arg)
{
    mesh_pair_t *pair = (mesh_pair_t *) arg;
    while (!pair->stop)
        if (mesh_node_dispatch (pair->b, 100) < 0)
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

static mesh_node_t *
s_node (const char *name, const char *cluster, int port)
{
    mesh_node_t *node = mesh_node_new (name);
    if (!node || mesh_node_set_cluster (node, cluster)
    ||  mesh_node_set_beacon_port (node, port) || mesh_node_set_beacon_interval (node, 100)
    ||  mesh_node_start (node)) {
        fprintf (stderr, "bench_link: %s\n", mesh_last_error ());
        mesh_node_destroy (&node);
    }
    return node;
}

static int
s_mesh_start (mesh_pair_t *pair)
{
    char cluster [64];
    snprintf (cluster, sizeof cluster, "bench-link-%d", (int) getpid ());
    int port = 30000 + (int) (getpid () % 20000);
    pair->a = s_node ("bench-a", cluster, port);
    pair->b = pair->a? s_node ("bench-b", cluster, port): NULL;
    if (!pair->b)
        return -1;
    mesh_node_on_kind (pair->b, MESH_KIND_DIRECT, s_on_direct, pair);
    uint64_t deadline = mesh_clock_ms () + MEET_MS;
    while (mesh_node_peer_state (pair->a, mesh_node_id (pair->b)) != MESH_PEER_ALIVE
    ||     mesh_node_peer_state (pair->b, mesh_node_id (pair->a)) != MESH_PEER_ALIVE) {
        if (mesh_clock_ms () > deadline) {
            fprintf (stderr, "bench_link: the nodes did not meet\n");
            return -1;
        }
        mesh_node_dispatch (pair->a, 5);
        mesh_node_dispatch (pair->b, 5);
        s_drain_events (pair->a);
        s_drain_events (pair->b);
    }
    pthread_create (&pair->thread, NULL, s_mesh_sink, pair);
    return 0;
}

//  One round; returns msg/s or 0 on failure. *retries gets the EAGAINs.
static double
s_mesh_round (mesh_pair_t *pair, size_t size, long count, long *retries)
{
    char *body = (char *) calloc (1, size? size: 1);
    const char *peer = mesh_node_id (pair->b);
    mesh_head_t head = { .kind = MESH_KIND_DIRECT };
    pair->end = 0;
    pair->target = pair->received + count;
    *retries = 0;
    double start = s_now ();
    for (long i = 0; i < count; i++) {
        while (mesh_node_send (pair->a, peer, &head, body, size)) {
            if (mesh_errno () != MESH_EAGAIN) {
                fprintf (stderr, "bench_link: send failed: %s\n", mesh_last_error ());
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
        mesh_node_dispatch (pair->a, 1);    //  keeps A's side of the link serviced
    free (body);
    if (pair->received < pair->target) {
        fprintf (stderr, "bench_link: %ld of %ld messages arrived\n",
                 pair->received - (pair->target - count), count);
        return 0;
    }
    return count / (pair->end - start);
}

static void
s_mesh_stop (mesh_pair_t *pair)
{
    pair->stop = true;
    if (pair->b && pair->a)
        pthread_join (pair->thread, NULL);
    mesh_node_destroy (&pair->a);
    mesh_node_destroy (&pair->b);
}

int
main (int argc, char **argv)
{
    size_t size = DEFAULT_SIZE;
    long count = DEFAULT_COUNT;
    int rounds = DEFAULT_ROUNDS;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--size") == 0 && i + 1 < argc)
            size = (size_t) atol (argv [++i]);
        else if (strcmp (argv [i], "--count") == 0 && i + 1 < argc)
            count = atol (argv [++i]);
        else if (strcmp (argv [i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi (argv [++i]);
        else if (strcmp (argv [i], "--json") == 0)
            json = true;
        else {
            fprintf (stderr, "usage: bench_link [--size B] [--count N] [--rounds R] [--json]\n");
            return 2;
        }
    }
    if (count < 1 || rounds < 1 || rounds > MAX_ROUNDS || size > 16 * 1024 * 1024) {
        fprintf (stderr, "bench_link: need count >= 1, 1 <= rounds <= %d, size <= 16 MiB\n",
                 MAX_ROUNDS);
        return 2;
    }
    mesh_pair_t pair = { 0 };
    if (s_mesh_start (&pair)) {
        s_mesh_stop (&pair);
        return 1;
    }
    double raw [MAX_ROUNDS], mesh [MAX_ROUNDS], ratio [MAX_ROUNDS];
    long retries = 0, total_retries = 0;
    int rc = 0;
    //  one unmeasured meshbus round warms the link and the allocator
    s_mesh_round (&pair, size, count / 10 + 1, &retries);
    for (int r = 0; r < rounds && rc == 0; r++) {
        raw [r] = s_raw_round (size, count);
        mesh [r] = s_mesh_round (&pair, size, count, &retries);
        total_retries += retries;
        if (raw [r] <= 0 || mesh [r] <= 0)
            rc = 1;
        ratio [r] = mesh [r] / raw [r];
        if (!json && rc == 0)
            printf ("round %d: raw %.0f msg/s, meshbus %.0f msg/s, ratio %.2f\n",
                    r + 1, raw [r], mesh [r], ratio [r]);
    }
    s_mesh_stop (&pair);
    if (rc)
        return rc;
    double raw_med = s_median (raw, rounds), mesh_med = s_median (mesh, rounds);
    double ratio_med = s_median (ratio, rounds);
    if (json)
        printf ("{\"bench\":\"link-throughput\",\"size\":%zu,\"count\":%ld,\"rounds\":%d,"
                "\"meshbus\":%.0f,\"raw\":%.0f,\"ratio\":%.3f,\"eagain_retries\":%ld}\n",
                size, count, rounds, mesh_med, raw_med, ratio_med, total_retries);
    else
        printf ("one-way stream, %zu B x %ld, median of %d rounds:\n"
                "  raw libzmq %.0f msg/s, meshbus %.0f msg/s, ratio %.2f "
                "(median of per-round ratios; higher is better), %ld EAGAIN retries\n",
                size, count, rounds, raw_med, mesh_med, ratio_med, total_retries);
    return 0;
}
