/*  =========================================================================
    bench_handshake - CURVE handshake time with K trusted keys
    (`meshbus bench handshake`)

    A node with CURVE and a trust directory of K keys (default 1 000,
    written by mesh_keygen into a temporary directory) against raw libzmq:
    a CURVE ROUTER whose ZAP handler accepts every key at once, which is
    the least a secure server needs with Debian's libzmq (no ZAP handler
    means no check at all). Each measurement is one client: a DEALER with
    one of the trusted key pairs connects, and the clock runs from
    zmq_connect to the client's HANDSHAKE_SUCCEEDED monitor event. Raw and
    meshbus alternate, one client each turn; headline is the median,
    ratio = meshbus / raw (lower is better). The node's start time, which
    loads the K keys, is printed as well.
    ========================================================================= */

#include "bench.h"
#include <zmq.h>
#include <czmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define HS_DEFAULT_KEYS     1000
#define HS_DEFAULT_COUNT    200
#define HS_WAIT_MS          5000        //  a handshake that takes longer fails the run

typedef struct {
    char pub [41], sec [41];
} hs_key_t;

//  Raw side: CURVE ROUTER plus a ZAP handler that says yes to everyone
typedef struct {
    void *ctx, *router, *zap;
    pthread_t thread;
    char endpoint [128];
    char pub [41];
} hs_raw_t;

static void *
s_raw_zap (void *arg)
{
    hs_raw_t *raw = (hs_raw_t *) arg;
    while (true) {
        zmq_msg_t frames [8];
        int n = 0, more = 1;
        while (more && n < 8) {
            zmq_msg_init (&frames [n]);
            if (zmq_msg_recv (&frames [n], raw->zap, 0) < 0) {
                zmq_msg_close (&frames [n]);
                for (int i = 0; i < n; i++)
                    zmq_msg_close (&frames [i]);
                zmq_close (raw->zap);       //  ETERM: the bench is over
                return NULL;
            }
            more = zmq_msg_more (&frames [n]);
            n++;
        }
        zmq_send (raw->zap, "1.0", 3, ZMQ_SNDMORE);
        zmq_send (raw->zap, zmq_msg_data (&frames [1]), zmq_msg_size (&frames [1]), ZMQ_SNDMORE);
        zmq_send (raw->zap, "200", 3, ZMQ_SNDMORE);
        zmq_send (raw->zap, "OK", 2, ZMQ_SNDMORE);
        zmq_send (raw->zap, "", 0, ZMQ_SNDMORE);
        zmq_send (raw->zap, "", 0, 0);
        for (int i = 0; i < n; i++)
            zmq_msg_close (&frames [i]);
    }
}

static int
s_raw_start (hs_raw_t *raw)
{
    char sec [41];
    zmq_curve_keypair (raw->pub, sec);
    raw->ctx = zmq_ctx_new ();
    raw->zap = zmq_socket (raw->ctx, ZMQ_REP);
    raw->router = zmq_socket (raw->ctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    zmq_setsockopt (raw->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (raw->router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt (raw->router, ZMQ_CURVE_SECRETKEY, sec, 40);
    zmq_setsockopt (raw->router, ZMQ_ZAP_DOMAIN, "bench", 5);
    size_t len = sizeof raw->endpoint;
    if (zmq_bind (raw->zap, "inproc://zeromq.zap.01")
    ||  zmq_bind (raw->router, "tcp://127.0.0.1:*")
    ||  zmq_getsockopt (raw->router, ZMQ_LAST_ENDPOINT, raw->endpoint, &len))
        return bench_fail ("bench handshake: raw setup failed: %s", zmq_strerror (errno));
    if (pthread_create (&raw->thread, NULL, s_raw_zap, raw))
        return bench_fail ("bench handshake: cannot start the raw ZAP thread");
    return 0;
}

static void
s_raw_stop (hs_raw_t *raw)
{
    if (!raw->ctx)
        return;
    zmq_close (raw->router);
    zmq_ctx_shutdown (raw->ctx);
    pthread_join (raw->thread, NULL);
    zmq_ctx_term (raw->ctx);
}

//  One client handshake against endpoint; ns, or 0 on failure
static uint64_t
s_handshake (void *ctx, const char *endpoint, const char *server_pub, const hs_key_t *key, int n)
{
    void *client = zmq_socket (ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt (client, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (client, ZMQ_CURVE_SERVERKEY, server_pub, 40);
    zmq_setsockopt (client, ZMQ_CURVE_PUBLICKEY, key->pub, 40);
    zmq_setsockopt (client, ZMQ_CURVE_SECRETKEY, key->sec, 40);
    char monitor [64];
    snprintf (monitor, sizeof monitor, "inproc://bench-hs-%d", n);
    zmq_socket_monitor (client, monitor, ZMQ_EVENT_HANDSHAKE_SUCCEEDED
                        | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                        | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
    void *events = zmq_socket (ctx, ZMQ_PAIR);
    zmq_setsockopt (events, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect (events, monitor);
    int timeout = HS_WAIT_MS;
    zmq_setsockopt (events, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    uint64_t start = bench_now_ns (), took = 0;
    zmq_connect (client, endpoint);
    zmq_msg_t event, address;
    zmq_msg_init (&event);
    zmq_msg_init (&address);
    if (zmq_msg_recv (&event, events, 0) >= 0) {
        uint16_t type = 0;
        if (zmq_msg_size (&event) >= 2)
            memcpy (&type, zmq_msg_data (&event), 2);
        if (zmq_msg_more (&event))
            zmq_msg_recv (&address, events, 0);
        if (type == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            took = bench_now_ns () - start;
    }
    zmq_msg_close (&event);
    zmq_msg_close (&address);
    zmq_socket_monitor (client, NULL, 0);
    zmq_close (events);
    zmq_close (client);
    return took;
}

int
bench_handshake (size_t keys, size_t count, bool json)
{
    keys = keys? keys: HS_DEFAULT_KEYS;
    count = count? count: HS_DEFAULT_COUNT;
    char dir [64] = "/tmp/meshbus-bench-hs-XXXXXX";
    if (!mkdtemp (dir))
        return bench_fail ("bench handshake: no temporary directory: %s", strerror (errno));
    size_t clients = keys < count? keys: count;
    hs_key_t *key = (hs_key_t *) calloc (clients, sizeof (hs_key_t));
    uint64_t *raw_ns = (uint64_t *) calloc (count, sizeof (uint64_t));
    uint64_t *mesh_ns = (uint64_t *) calloc (count, sizeof (uint64_t));
    hs_raw_t raw = { 0 };
    mesh_node_t *node = NULL;
    void *ctx = NULL;
    int rc = key && raw_ns && mesh_ns? 0: bench_fail ("bench: out of memory");
    //  K key pairs in the trust directory, as meshbus keygen writes them
    for (size_t i = 0; rc == 0 && i < keys; i++) {
        char path [128];
        snprintf (path, sizeof path, "%s/k%05zu", dir, i);
        if (mesh_keygen (path))
            rc = bench_fail ("bench handshake: %s", mesh_last_error ());
        else
        if (i < clients) {
            //  read back with czmq's ZPL parser: the files are czmq-style
            char file [140];
            snprintf (file, sizeof file, "%s.key", path);
            zconfig_t *config = zconfig_load (file);
            const char *pub = config? zconfig_get (config, "curve/public-key", NULL): NULL;
            const char *sec = config? zconfig_get (config, "curve/secret-key", NULL): NULL;
            if (!pub || !sec || strlen (pub) != 40 || strlen (sec) != 40)
                rc = bench_fail ("bench handshake: cannot read back %s", file);
            else {
                memcpy (key [i].pub, pub, 41);
                memcpy (key [i].sec, sec, 41);
            }
            zconfig_destroy (&config);
        }
    }
    double start_ms = 0;
    if (rc == 0) {
        char cluster [64];
        snprintf (cluster, sizeof cluster, "bench-hs-%d", (int) getpid ());
        char pub_text [41], sec_text [41];
        uint8_t pub [32], sec [32];
        zmq_curve_keypair (pub_text, sec_text);
        zmq_z85_decode (pub, pub_text);
        zmq_z85_decode (sec, sec_text);
        node = mesh_node_new ("bench-hs");
        uint64_t t0 = bench_now_ns ();
        if (!node || mesh_node_set_cluster (node, cluster) || mesh_node_set_beacon_interval (node, 0)
        ||  mesh_node_set_curve_keys (node, pub, sec) || mesh_node_set_trust (node, dir)
        ||  mesh_node_start (node))
            rc = bench_fail ("bench handshake: node: %s", mesh_last_error ());
        start_ms = (double) (bench_now_ns () - t0) / 1e6;
    }
    if (rc == 0)
        rc = s_raw_start (&raw);
    if (rc == 0)
        ctx = zmq_ctx_new ();
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const hs_key_t *k = &key [i % clients];
        bool mesh_first = i % 2 == 1;
        for (int turn = 0; turn < 2 && rc == 0; turn++) {
            bool on_mesh = (turn == 0) == mesh_first;
            uint64_t ns = on_mesh
                ? s_handshake (ctx, mesh_node_endpoint (node), mesh_node_public_key (node), k, (int) (2 * i + turn))
                : s_handshake (ctx, raw.endpoint, raw.pub, k, (int) (2 * i + turn));
            if (!ns)
                rc = bench_fail ("bench handshake: a %s handshake failed", on_mesh? "meshbus": "raw");
            (on_mesh? mesh_ns: raw_ns) [i] = ns;
        }
    }
    uint64_t accepted = node? mesh_node_counter (node, NULL, "zap.accepted"): 0;
    if (ctx)
        zmq_ctx_term (ctx);
    s_raw_stop (&raw);
    mesh_node_destroy (&node);
    bench_rmtree (dir);
    if (rc == 0) {
        qsort (raw_ns, count, sizeof (uint64_t), bench_cmp_u64);
        qsort (mesh_ns, count, sizeof (uint64_t), bench_cmp_u64);
        double raw50 = bench_pct_us (raw_ns, count, 50), mesh50 = bench_pct_us (mesh_ns, count, 50);
        double raw99 = bench_pct_us (raw_ns, count, 99), mesh99 = bench_pct_us (mesh_ns, count, 99);
        if (json)
            printf ("{\"bench\":\"handshake\",\"keys\":%zu,\"count\":%zu,\"unit\":\"us p50\","
                    "\"meshbus\":%.1f,\"raw\":%.1f,\"ratio\":%.3f,\"meshbus_p99\":%.1f,"
                    "\"raw_p99\":%.1f,\"start_ms\":%.1f,\"zap_accepted\":%llu}\n",
                    keys, count, mesh50, raw50, mesh50 / raw50, mesh99, raw99, start_ms,
                    (unsigned long long) accepted);
        else {
            printf ("CURVE handshake, %zu trusted keys, %zu clients each side, alternating\n",
                    keys, count);
            printf ("  raw libzmq (ZAP accepts all)  p50 %8.1f us   p99 %8.1f us\n", raw50, raw99);
            printf ("  meshbus (trust store)         p50 %8.1f us   p99 %8.1f us\n", mesh50, mesh99);
            printf ("  ratio (meshbus / raw, p50)    %.2f;  node start with %zu keys: %.1f ms\n",
                    mesh50 / raw50, keys, start_ms);
        }
    }
    free (key);
    free (raw_ns);
    free (mesh_ns);
    return rc;
}
