/*  =========================================================================
    bench_pubsub - pub-sub stream, meshbus and raw libzmq side by side
    (`meshbus bench pubsub`)

    One publisher, S subscribers, all in this process, with back-pressure
    on both sides so that no drop distorts the figure. Raw: an XPUB with
    ZMQ_XPUB_NODROP (a PUB that blocks at the high-water mark instead of
    dropping) bound on tcp loopback, S SUB sockets subscribed to "" and
    read by a thread each. meshbus: a publisher node and S subscriber nodes
    (own cluster and beacon port) whose threads loop mesh_node_dispatch;
    each subscribes "bench.#" with MESH_SUB_BLOCK. Every socket of raw and
    every node of meshbus has its own zmq context, as separate processes
    would; both use the same high-water marks. The slow joiner is waited
    for by publishing warm-up messages until every subscriber got one.
    Then rounds of COUNT messages alternate raw and meshbus (who goes first
    alternates too); a round's clock runs from the first publish to the
    moment the last subscriber got its COUNT-th message. Headline: msg/s
    per subscriber (COUNT / round time), medians over the rounds; ratio =
    meshbus / raw (higher is better).

    Over CURVE (bench_host.curve): the meshbus nodes get their keys from
    the host's node hook; raw libzmq's XPUB is a CURVE server and each SUB
    a CURVE client with a key of its own, with no ZAP handler (libzmq then
    takes any key: the cheapest CURVE there is).
    ========================================================================= */

#include "bench.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
    size_t want;                //  the size every message has
} ps_count_t;

//  One side: its subscribers' counts and the body it publishes
typedef struct {
    const char *name;           //  "raw libzmq" or "meshbus"
    ps_count_t *counts;
    size_t subs;
    char *buf;
    size_t size;
} ps_side_t;

static void
s_received (ps_count_t *count, const void *body, size_t size)
{
    const char *data = (const char *) body;
    if (size != count->want || size == 0) {
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
        __atomic_store_n (&count->done_ns, bench_now_ns (), __ATOMIC_RELEASE);
}

static int
s_side_open (ps_side_t *side, const char *name, size_t subs, size_t size)
{
    side->name = name;
    side->subs = subs;
    side->size = size;
    side->buf = (char *) calloc (1, size);
    side->counts = (ps_count_t *) calloc (subs, sizeof (ps_count_t));
    for (size_t i = 0; side->counts && i < subs; i++)
        side->counts [i].want = size;
    return side->buf && side->counts? 0: bench_fail ("bench: out of memory");
}

static bool
s_all_warm (const ps_side_t *side)
{
    for (size_t i = 0; i < side->subs; i++)
        if (!__atomic_load_n (&side->counts [i].warm, __ATOMIC_ACQUIRE))
            return false;
    return true;
}

//  Before a round: every subscriber ends it after count more messages
static void
s_arm (ps_side_t *side, size_t count)
{
    for (size_t i = 0; i < side->subs; i++) {
        ps_count_t *c = &side->counts [i];
        __atomic_store_n (&c->done_ns, 0, __ATOMIC_RELAXED);
        __atomic_store_n (&c->target, __atomic_load_n (&c->got, __ATOMIC_ACQUIRE) + count,
                          __ATOMIC_RELEASE);
    }
    side->buf [0] = PS_MARK_DATA;
}

//  Latest done time over the subscribers, 0 while one is not done
static uint64_t
s_done (const ps_side_t *side)
{
    uint64_t last = 0;
    for (size_t i = 0; i < side->subs; i++) {
        uint64_t done = __atomic_load_n (&side->counts [i].done_ns, __ATOMIC_ACQUIRE);
        if (!done)
            return 0;
        if (done > last)
            last = done;
    }
    return last;
}

//  The slow joiner: warm (arg) publishes one warm-up, until every
//  subscriber got one; 0, or 1 after saying "bench: WHY within N s"
static int
s_warm (ps_side_t *side, void (*warm) (void *arg), void *arg, const char *why)
{
    side->buf [0] = PS_MARK_WARM;
    uint64_t deadline = bench_now_ns () + PS_WARM_MS * 1000000ull;
    while (!s_all_warm (side)) {
        if (bench_now_ns () > deadline || bench_interrupted ())
            return bench_fail ("bench: %s within %d s", why, PS_WARM_MS / 1000);
        warm (arg);
    }
    return 0;
}

//  After the publishes: wait for every subscriber, dispatching node (the
//  publisher's application loop, as a real one would run it) when given.
//  The round's ns, or 0 after saying why.
static uint64_t
s_finish (const ps_side_t *side, uint64_t start, mesh_node_t *node)
{
    uint64_t deadline = start + PS_ROUND_MS * 1000000ull, last;
    while (!(last = s_done (side))) {
        if (bench_now_ns () > deadline || bench_interrupted ()) {
            char detail [512] = "";
            size_t at = 0;
            for (size_t i = 0; i < side->subs && at < sizeof detail - 64; i++)
                at += (size_t) snprintf (detail + at, sizeof detail - at, " %llu/%llu",
                                         (unsigned long long) side->counts [i].got,
                                         (unsigned long long) side->counts [i].target);
            return bench_fail ("bench pubsub: %s round did not complete within %d s "
                               "(got/target:%s)", side->name, PS_ROUND_MS / 1000, detail), 0;
        }
        if (node) {
            mesh_node_dispatch (node, 0);
            bench_drain (node);
        }
        usleep (200);
    }
    return last - start;
}

//  ---------------------------------------------------------------------
//  Raw libzmq: XPUB (NODROP) -> S SUB, a thread per SUB

typedef struct {
    ps_side_t side;
    void *ctx, *pub;
    bench_raw_reader_t *subs;
} ps_raw_t;

static void
s_raw_frame (bench_raw_reader_t *reader, zmq_msg_t *frame)
{
    s_received ((ps_count_t *) reader->arg, zmq_msg_data (frame), zmq_msg_size (frame));
}

static void
s_raw_warm (void *arg)
{
    ps_raw_t *raw = (ps_raw_t *) arg;
    zmq_send (raw->pub, raw->side.buf, raw->side.size, ZMQ_DONTWAIT);
    usleep (1000);
}

static int
s_raw_start (ps_raw_t *raw, size_t subs, size_t size, int hwm)
{
    raw->subs = (bench_raw_reader_t *) calloc (subs, sizeof (bench_raw_reader_t));
    if (s_side_open (&raw->side, "raw libzmq", subs, size) || !raw->subs)
        return 1;
    raw->ctx = zmq_ctx_new ();
    raw->pub = bench_raw_socket (raw->ctx, ZMQ_XPUB, hwm);
    int one = 1;
    zmq_setsockopt (raw->pub, ZMQ_XPUB_NODROP, &one, sizeof one);
    char pub_key [41], sec_key [41];
    if (bench_host.curve) {
        //  raw libzmq's own CURVE: no ZAP handler, so any client key passes
        if (zmq_curve_keypair (pub_key, sec_key))
            return bench_fail ("bench: raw libzmq has no CURVE: %s", zmq_strerror (errno));
        zmq_setsockopt (raw->pub, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt (raw->pub, ZMQ_CURVE_SECRETKEY, sec_key, 40);
    }
    char endpoint [128];
    if (bench_raw_link (raw->pub, NULL, endpoint, sizeof endpoint))
        return 1;
    for (size_t i = 0; i < subs; i++) {
        bench_raw_reader_t *sub = &raw->subs [i];
        if (bench_raw_reader_open (sub, ZMQ_SUB, hwm))
            return 1;
        zmq_setsockopt (sub->sock, ZMQ_SUBSCRIBE, "", 0);
        if (bench_host.curve) {
            char cpub [41], csec [41];
            zmq_curve_keypair (cpub, csec);
            zmq_setsockopt (sub->sock, ZMQ_CURVE_SERVERKEY, pub_key, 40);
            zmq_setsockopt (sub->sock, ZMQ_CURVE_PUBLICKEY, cpub, 40);
            zmq_setsockopt (sub->sock, ZMQ_CURVE_SECRETKEY, csec, 40);
        }
        if (zmq_connect (sub->sock, endpoint))
            return bench_fail ("bench: raw libzmq connect failed: %s", zmq_strerror (errno));
        if (bench_raw_reader_run (sub, s_raw_frame, &raw->side.counts [i]))
            return 1;
    }
    return s_warm (&raw->side, s_raw_warm, raw, "raw subscribers did not join");
}

static uint64_t
s_raw_round (void *arg, size_t count)
{
    ps_raw_t *raw = (ps_raw_t *) arg;
    s_arm (&raw->side, count);
    uint64_t start = bench_now_ns ();
    for (size_t i = 0; i < count; i++)
        if (zmq_send (raw->pub, raw->side.buf, raw->side.size, 0) < 0)
            return bench_fail ("bench: raw send failed: %s", zmq_strerror (errno)), 0;
    return s_finish (&raw->side, start, NULL);
}

static void
s_raw_stop (ps_raw_t *raw)
{
    bench_raw_end (&raw->pub, &raw->ctx);
    for (size_t i = 0; raw->subs && i < raw->side.subs; i++)
        bench_raw_reader_stop (&raw->subs [i]);
    free (raw->subs);
}

//  ---------------------------------------------------------------------
//  meshbus: a publisher node, S subscriber nodes dispatching in threads

static void
s_mesh_msg (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    s_received ((ps_count_t *) arg, mesh_msg_body (msg), mesh_msg_size (msg));
}

typedef struct {
    ps_side_t side;
    bench_peer_t pub;
    bench_group_t subs;
    uint64_t short_sends;       //  publishes that reached fewer than all subscribers
} ps_mesh_t;

static void
s_mesh_warm (void *arg)
{
    ps_mesh_t *mesh = (ps_mesh_t *) arg;
    mesh_publish (mesh->pub.pubsub, PS_SUBJECT, mesh->side.buf, mesh->side.size);
    mesh_node_dispatch (mesh->pub.node, 1);
    bench_drain (mesh->pub.node);
}

static int
s_mesh_start (ps_mesh_t *mesh, size_t subs, size_t size, int hwm)
{
    if (s_side_open (&mesh->side, "meshbus", subs, size))
        return 1;
    bench_where_t where;
    bench_where (&where, "ps", 7919);
    where.hwm = hwm;
    if (bench_peer_open (&mesh->pub, "bench-pub", "pubsub", &where)
    ||  bench_group_open (&mesh->subs, subs, "bench-sub", "pubsub", &where))
        return 1;
    mesh_sub_opts_t sub_opts = { .mode = MESH_SUB_BLOCK };
    for (size_t i = 0; i < subs; i++)
        if (mesh_subscribe (mesh->subs.peers [i].pubsub, PS_PATTERN, &sub_opts, s_mesh_msg,
                            &mesh->side.counts [i]) < 0)
            return bench_fail ("bench: subscriber %zu: %s", i + 1, mesh_last_error ());
    if (bench_group_run (&mesh->subs, true))
        return 1;
    if (mesh_pubsub_wait_subscribers (mesh->pub.pubsub, PS_SUBJECT, subs, PS_WARM_MS))
        return bench_fail ("bench: %zu of %zu subscribers were seen within %d s",
                           mesh_pubsub_subscribers (mesh->pub.pubsub, PS_SUBJECT), subs,
                           PS_WARM_MS / 1000);
    //  Seen is not yet linked both ways: publish warm-ups until each got one
    return s_warm (&mesh->side, s_mesh_warm, mesh, "meshbus subscribers got nothing");
}

static uint64_t
s_mesh_round (void *arg, size_t count)
{
    ps_mesh_t *mesh = (ps_mesh_t *) arg;
    s_arm (&mesh->side, count);
    int want = (int) mesh->side.subs;
    uint64_t start = bench_now_ns ();
    for (size_t i = 0; i < count; i++) {
        int sent = mesh_publish (mesh->pub.pubsub, PS_SUBJECT, mesh->side.buf, mesh->side.size);
        if (sent < 0)
            return bench_fail ("bench: mesh_publish failed: %s", mesh_last_error ()), 0;
        if (sent < want)
            mesh->short_sends++;
    }
    return s_finish (&mesh->side, start, mesh->pub.node);
}

//  Messages the publisher's pub-sub dropped or could not send
static uint64_t
s_mesh_drops (ps_mesh_t *mesh)
{
    static const char *names [] = {
        "pubsub.dropped.hwm", "pubsub.dropped.send-error", "pubsub.dropped.peer-gone"
    };
    uint64_t drops = 0;
    for (size_t i = 0; mesh->pub.node && i < sizeof names / sizeof names [0]; i++)
        drops += mesh_node_counter (mesh->pub.node, NULL, names [i]);
    return drops;
}

//  ---------------------------------------------------------------------

static void
s_print (size_t size, size_t count, size_t subs, size_t rounds, bench_stat_t raw,
         bench_stat_t mesh, uint64_t drops, uint64_t short_sends, bool json)
{
    double ratio = mesh.med / raw.med;
    const char *curve = bench_host.curve? " over CURVE": "";
    if (json)
        printf ("{\"bench\":\"pubsub\",\"size\":%zu,\"count\":%zu,\"rounds\":%zu,"
                "\"subscribers\":%zu,\"curve\":%s,\"mode\":\"block\",\"unit\":\"msg/s per subscriber\","
                "\"meshbus\":%.0f,\"raw\":%.0f,\"ratio\":%.3f,"
                "\"meshbus_min\":%.0f,\"meshbus_max\":%.0f,\"raw_min\":%.0f,\"raw_max\":%.0f,"
                "\"drops\":%llu,\"short_publishes\":%llu}\n",
                size, count, rounds, subs, *curve? "true": "false", mesh.med, raw.med, ratio,
                mesh.lo, mesh.hi, raw.lo, raw.hi,
                (unsigned long long) drops, (unsigned long long) short_sends);
    else {
        printf ("pubsub%s, %zu B, %zu subscriber%s, %zu messages x %zu rounds each, "
                "alternating; back-pressure (raw: XPUB_NODROP, meshbus: MESH_SUB_BLOCK)\n",
                curve, size, subs, subs == 1? "": "s", count, rounds);
        printf ("  raw libzmq   %10.0f msg/s per subscriber (median; rounds %.0f..%.0f)\n",
                raw.med, raw.lo, raw.hi);
        printf ("  meshbus      %10.0f msg/s per subscriber (median; rounds %.0f..%.0f)\n",
                mesh.med, mesh.lo, mesh.hi);
        printf ("  meshbus drops %llu, publishes short of a subscriber %llu\n",
                (unsigned long long) drops, (unsigned long long) short_sends);
        printf ("  ratio meshbus/raw: %.2f (higher is better)\n", ratio);
    }
}

int
bench_pubsub (size_t size, size_t count, size_t subs, size_t rounds, int hwm, bool json)
{
    size = size? size: 100;
    if (count == 0) {
        count = (size_t) (PS_ROUND_BYTES / size);
        count = count < PS_COUNT_MIN? PS_COUNT_MIN: count > PS_COUNT_MAX? PS_COUNT_MAX: count;
    }
    ps_raw_t raw = { .ctx = NULL };
    ps_mesh_t mesh = { .short_sends = 0 };
    double *raw_rate = (double *) calloc (rounds, sizeof (double));
    double *mesh_rate = (double *) calloc (rounds, sizeof (double));
    int rc = raw_rate && mesh_rate? 0: bench_fail ("bench: out of memory");
    if (rc == 0 && (s_raw_start (&raw, subs, size, hwm) || s_mesh_start (&mesh, subs, size, hwm)))
        rc = 1;
    //  Warm-up round on each side (TCP windows, allocator, caches)
    size_t warm = count / 10 < 1000? 1000: count / 10;
    if (rc == 0 && (!s_raw_round (&raw, warm) || !s_mesh_round (&mesh, warm)))
        rc = 1;
    uint64_t drops_before = s_mesh_drops (&mesh);
    uint64_t short_before = mesh.short_sends;
    if (rc == 0)
        rc = bench_alternate ("bench pubsub", rounds, false, s_raw_round, &raw, s_mesh_round,
                              &mesh, count, raw_rate, mesh_rate);
    uint64_t drops = s_mesh_drops (&mesh) - drops_before;
    uint64_t short_sends = mesh.short_sends - short_before;
    uint64_t bad = 0;
    for (size_t i = 0; i < subs; i++)
        bad += (raw.side.counts? raw.side.counts [i].bad: 0)
             + (mesh.side.counts? mesh.side.counts [i].bad: 0);
    bench_group_close (&mesh.subs);
    bench_peer_close (&mesh.pub);
    s_raw_stop (&raw);
    if (rc == 0 && bad)
        rc = bench_fail ("bench pubsub: %llu messages arrived with the wrong size",
                         (unsigned long long) bad);
    if (rc == 0)
        s_print (size, count, subs, rounds, bench_stat (raw_rate, rounds),
                 bench_stat (mesh_rate, rounds), drops, short_sends, json);
    ps_side_t *sides [] = { &raw.side, &mesh.side };
    for (size_t i = 0; i < 2; i++) {
        free (sides [i]->counts);
        free (sides [i]->buf);
    }
    free (raw_rate);
    free (mesh_rate);
    return rc;
}
