/*  =========================================================================
    bench_rtt - link round trip, meshbus and raw libzmq side by side
    (`meshbus bench link`)

    Raw: a DEALER sends SIZE bytes to a ROUTER whose thread echoes them to
    the routing id; the DEALER waits for the echo. meshbus: node A
    whispers to node B, B's handler (a thread looping mesh_node_dispatch)
    whispers back, A waits in mesh_node_dispatch. Each side of each pair
    has its own zmq context (its own I/O thread), because that is what two
    processes have and what two meshbus nodes have. The two measurements
    alternate in blocks (bench_interleave) so that noise from the rest of
    the machine hits both alike; the headline is the median round trip,
    ratio = meshbus p50 / raw p50 (lower is better).
    ========================================================================= */

#include "bench.h"
#include <stdio.h>
#include <stdlib.h>

#define RTT_DEFAULT_COUNT   20000
#define RTT_MEET_MS         15000       //  nodes must have met within this
#define RTT_REPLY_MS        5000        //  a lost reply fails the run after this

typedef struct {
    bench_peer_t a, b;
    bench_tally_t replies;          //  A's handler counts them (A's thread only)
    char *buf;
    size_t size;
    char b_id [33];
} rtt_mesh_t;

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
    bench_tally (&((rtt_mesh_t *) arg)->replies, mesh_msg_size (msg));
}

static int
s_mesh_start (rtt_mesh_t *mesh)
{
    bench_where_t where;
    bench_where (&where, "link", 0);
    if (bench_peer_open (&mesh->a, "bench-a", NULL, &where)
    ||  bench_peer_open (&mesh->b, "bench-b", NULL, &where))
        return 1;
    snprintf (mesh->b_id, sizeof mesh->b_id, "%s", mesh_node_id (mesh->b.node));
    mesh_node_on_kind (mesh->a.node, MESH_KIND_DIRECT, s_on_reply, mesh);
    mesh_node_on_kind (mesh->b.node, MESH_KIND_DIRECT, s_on_echo, mesh);
    if (bench_pair_meet (mesh->a.node, mesh->b.node, RTT_MEET_MS))
        return 1;
    return bench_peer_run (&mesh->b, false);
}

static uint64_t
s_mesh_round_trip (void *arg)
{
    rtt_mesh_t *mesh = (rtt_mesh_t *) arg;
    uint64_t want = mesh->replies.good + 1;
    uint64_t start = bench_now_ns ();
    if (mesh_node_whisper (mesh->a.node, mesh->b_id, NULL, mesh->buf, mesh->size))
        return 0;
    while (mesh->replies.good < want) {
        if (mesh_node_dispatch (mesh->a.node, RTT_REPLY_MS) <= 0 || mesh->replies.bad)
            return 0;
    }
    return bench_now_ns () - start;
}

int
bench_rtt (size_t size, size_t count, bool json)
{
    count = count? count: RTT_DEFAULT_COUNT;
    char *buf = (char *) calloc (1, size? size: 1);
    bench_raw_rr_t raw = { .nservers = 0 };
    rtt_mesh_t mesh = { .buf = buf, .size = size, .replies = { .size = size } };
    uint64_t *raw_ns = (uint64_t *) calloc (count, sizeof (uint64_t));
    uint64_t *mesh_ns = (uint64_t *) calloc (count, sizeof (uint64_t));
    int rc = buf && raw_ns && mesh_ns? 0: bench_fail ("bench: out of memory");
    if (rc == 0 && (bench_raw_rr_start (&raw, 1, 0, buf, size) || s_mesh_start (&mesh)))
        rc = 1;
    if (rc == 0)
        rc = bench_interleave (bench_raw_round_trip, &raw, s_mesh_round_trip, &mesh, count,
                               raw_ns, mesh_ns);
    bench_peer_close (&mesh.b);
    bench_peer_close (&mesh.a);
    bench_raw_rr_stop (&raw);
    if (rc == 0) {
        double raw_p50 = bench_pct_us (raw_ns, count, 50), raw_p99 = bench_pct_us (raw_ns, count, 99);
        double mesh_p50 = bench_pct_us (mesh_ns, count, 50), mesh_p99 = bench_pct_us (mesh_ns, count, 99);
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
    free (buf);
    return rc;
}
