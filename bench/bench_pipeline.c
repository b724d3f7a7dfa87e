/*  =========================================================================
    bench_pipeline - work queues against raw PUSH/PULL, in one run
    (`meshbus bench pipeline`)

    Raw: a PUSH socket bound on tcp loopback, a PULL connected to it, each
    with its own zmq context (as two processes would have); a thread reads
    the PULL. A round sends COUNT messages of SIZE bytes; its clock runs
    from the first send to the moment the PULL got the COUNT-th. Raw PUSH
    has no acks, so this is the most raw libzmq can claim.

    meshbus: a producer node (this thread) pushes COUNT jobs of SIZE bytes
    to a queue that a worker node (its own thread looping
    mesh_node_dispatch) works with prefetch PL_PREFETCH, its handler
    acking each job. A round's clock runs from the first push to the moment
    the producer has every job ACKED (mesh_pipeline_pending() == 0): the
    figure includes the acks travelling back, which raw does not have.
    The producer holds at most PL_HOLD jobs: at that bound mesh_push()
    fails with MESH_EFULL and the producer waits in mesh_node_dispatch()
    until half of them are acked (back-pressure, as raw PUSH blocks at its
    high-water mark; spinning on failed pushes instead took a third of the
    throughput on 2 cores).
    Rounds alternate raw and meshbus (who goes first alternates too), after
    a warm-up round each; headline: jobs/s, median over the rounds; ratio =
    meshbus / raw (higher is better).

    Durable outbox: the same producer with an LMDB outbox in a fresh
    directory under $TMPDIR (default /tmp; its file system decides what a
    sync costs, so it is printed), first with group commit, then with a
    sync per job; jobs/s from the first push to the last ack, one round
    each (PL_SYNC_JOBS jobs for sync).
    ========================================================================= */

#include "bench.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/statfs.h>

#define PL_SIZE         100
#define PL_COUNT        200000
#define PL_ROUNDS       5
#define PL_PREFETCH     4000    //  the worker's window: the bench is about throughput
#define PL_HOLD         16384   //  jobs held at once: the producer waits for acks beyond
#define PL_GROUP_JOBS   50000
#define PL_SYNC_JOBS    500
#define PL_QUEUE        "bench.jobs"
#define PL_MEET_MS      15000
#define PL_ROUND_MS     60000

//  ---------------------------------------------------------------------
//  Raw PUSH -> PULL

typedef struct {
    void *ctx, *push;
    bench_raw_reader_t pull;
    volatile uint64_t got;      //  messages of the right size (reader thread)
    size_t size;
    const char *buf;
} pl_raw_t;

static void
s_raw_frame (bench_raw_reader_t *reader, zmq_msg_t *frame)
{
    pl_raw_t *raw = (pl_raw_t *) reader->arg;
    if (zmq_msg_size (frame) == raw->size)
        __atomic_add_fetch (&raw->got, 1, __ATOMIC_RELEASE);
}

static int
s_raw_start (pl_raw_t *raw, const char *buf, size_t size)
{
    raw->size = size;
    raw->buf = buf;
    raw->ctx = zmq_ctx_new ();
    raw->push = bench_raw_socket (raw->ctx, ZMQ_PUSH, 0);
    char endpoint [128];
    if (bench_raw_reader_open (&raw->pull, ZMQ_PULL, 0)
    ||  bench_raw_link (raw->push, raw->pull.sock, endpoint, sizeof endpoint))
        return 1;
    return bench_raw_reader_run (&raw->pull, s_raw_frame, raw);
}

static uint64_t
s_raw_round (void *arg, size_t count)
{
    pl_raw_t *raw = (pl_raw_t *) arg;
    uint64_t target = __atomic_load_n (&raw->got, __ATOMIC_ACQUIRE) + count;
    uint64_t start = bench_now_ns ();
    for (size_t i = 0; i < count; i++)
        if (zmq_send (raw->push, raw->buf, raw->size, 0) < 0)
            return bench_fail ("bench: raw send failed: %s", zmq_strerror (errno)), 0;
    uint64_t deadline = start + PL_ROUND_MS * 1000000ull;
    while (__atomic_load_n (&raw->got, __ATOMIC_ACQUIRE) < target) {
        if (bench_now_ns () > deadline || bench_interrupted ())
            return bench_fail ("bench pipeline: raw round did not complete"), 0;
        usleep (100);
    }
    return bench_now_ns () - start;
}

static void
s_raw_stop (pl_raw_t *raw)
{
    bench_raw_end (&raw->push, &raw->ctx);
    bench_raw_reader_stop (&raw->pull);
}

//  ---------------------------------------------------------------------
//  meshbus: producer here, worker in a thread

typedef struct {
    bench_peer_t producer, worker;
    bench_tally_t jobs;         //  the worker's handler counts them
    size_t size;
    const char *buf;
} pl_mesh_t;

static int
s_on_job (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    bench_tally (&((pl_mesh_t *) arg)->jobs, mesh_msg_size (job));
    return MESH_JOB_ACK;
}

static bool
s_all_acked (void *arg)
{
    return mesh_pipeline_pending ((mesh_pipeline_t *) arg, NULL) == 0;
}

static int
s_mesh_start (pl_mesh_t *mesh, const char *buf, size_t size)
{
    mesh->size = mesh->jobs.size = size;
    mesh->buf = buf;
    bench_where_t where;
    bench_where (&where, "pl", 4241);
    if (bench_peer_open (&mesh->producer, "bench-producer", "pipeline", &where)
    ||  bench_peer_open (&mesh->worker, "bench-worker", "pipeline", &where))
        return 1;
    if (mesh_work (mesh->worker.pl, PL_QUEUE, PL_PREFETCH, s_on_job, mesh))
        return bench_fail ("bench: %s", mesh_last_error ());
    if (bench_peer_run (&mesh->worker, true))
        return 1;
    //  one job through: the nodes met and the worker's queue is known
    if (!mesh_push (mesh->producer.pl, PL_QUEUE, mesh->buf, size))
        return bench_fail ("bench: %s", mesh_last_error ());
    return bench_meet (&mesh->producer.node, 1, s_all_acked, mesh->producer.pl, PL_MEET_MS,
                       "the worker got nothing");
}

//  One round on the producer's pipeline; 0 on failure
static uint64_t
s_mesh_round (void *arg, size_t count)
{
    pl_mesh_t *mesh = (pl_mesh_t *) arg;
    mesh_pipeline_t *pl = mesh->producer.pl;
    uint64_t start = bench_now_ns ();
    uint64_t deadline = start + PL_ROUND_MS * 1000000ull;
    for (size_t i = 0; i < count; i++) {
        while (!mesh_push (pl, PL_QUEUE, mesh->buf, mesh->size)) {
            if (mesh_errno () != MESH_EFULL || bench_now_ns () > deadline)
                return bench_fail ("bench: push failed: %s", mesh_last_error ()), 0;
            //  back-pressure: the hold bound is reached, take acks in
            //  until half of it is free (not a failing push per ack)
            //  (waiting in dispatch, not spinning: the worker needs the CPU)
            while (mesh_pipeline_pending (pl, NULL) > PL_HOLD / 2
               &&  bench_now_ns () < deadline)
                mesh_node_dispatch (mesh->producer.node, 1);
        }
        //  the producer's loop, as an application would run it: acks in
        if (i % 256 == 255)
            mesh_node_dispatch (mesh->producer.node, 0);
    }
    while (mesh_pipeline_pending (pl, NULL)) {
        if (bench_now_ns () > deadline || bench_interrupted ())
            return bench_fail ("bench pipeline: %zu jobs not acked at the end of a round",
                               mesh_pipeline_pending (pl, NULL)), 0;
        mesh_node_dispatch (mesh->producer.node, 1);
    }
    bench_drain (mesh->producer.node);
    return bench_now_ns () - start;
}

//  Jobs/s through a durable outbox in a fresh directory; 0 on failure
static double
s_durable (pl_mesh_t *mesh, int mode, size_t count, const char *base, char *fs, size_t fs_size)
{
    char dir [512];
    snprintf (dir, sizeof dir, "%s/meshbus-bench-XXXXXX", base);
    if (!mkdtemp (dir))
        return bench_fail ("bench: cannot make a directory in %s", base), 0;
    struct statfs st;
    if (fs && statfs (dir, &st) == 0)
        snprintf (fs, fs_size, "%s", st.f_type == 0x01021994? "tmpfs": "disk");
    //  the memory pipeline steps aside: one pipeline per node
    mesh_pipeline_destroy (&mesh->producer.pl);
    mesh->producer.pl = mesh_pipeline_new (mesh->producer.node);
    double rate = 0;
    if (mesh_pipeline_set_outbox (mesh->producer.pl, dir, mode))
        bench_fail ("bench: outbox in %s: %s", dir, mesh_last_error ());
    else {
        uint64_t took = s_mesh_round (mesh, count);
        rate = took? count * 1e9 / (double) took: 0;
    }
    mesh_pipeline_destroy (&mesh->producer.pl);
    mesh->producer.pl = mesh_pipeline_new (mesh->producer.node);
    bench_rmtree (dir);
    return rate;
}

static uint64_t
s_counter (pl_mesh_t *mesh, const char *name)
{
    return mesh->producer.node? mesh_node_counter (mesh->producer.node, NULL, name): 0;
}

int
bench_pipeline (size_t size, size_t count, bool json)
{
    size = size? size: PL_SIZE;
    count = count? count: PL_COUNT;
    size_t rounds = PL_ROUNDS;
    char *buf = (char *) calloc (1, size);
    pl_raw_t raw = { .ctx = NULL };
    pl_mesh_t mesh = { .size = 0 };
    double raw_rate [PL_ROUNDS], mesh_rate [PL_ROUNDS];
    int rc = buf? 0: bench_fail ("bench: out of memory");
    if (rc == 0 && (s_raw_start (&raw, buf, size) || s_mesh_start (&mesh, buf, size)))
        rc = 1;
    if (rc == 0)
        mesh_pipeline_set_hold (mesh.producer.pl, PL_HOLD, (size_t) 1 << 40);
    size_t warm = count / 10 < 1000? 1000: count / 10;
    if (rc == 0 && (!s_raw_round (&raw, warm) || !s_mesh_round (&mesh, warm)))
        rc = 1;
    uint64_t redelivered = s_counter (&mesh, "pipeline.redelivered");
    uint64_t batched = s_counter (&mesh, "pipeline.sent.batched");
    if (rc == 0)
        rc = bench_alternate ("bench pipeline", rounds, false, s_raw_round, &raw, s_mesh_round,
                              &mesh, count, raw_rate, mesh_rate);
    redelivered = s_counter (&mesh, "pipeline.redelivered") - redelivered;
    //  counted per tick: may miss the last few ms of the last round
    batched = s_counter (&mesh, "pipeline.sent.batched") - batched;
    s_raw_stop (&raw);
    const char *base = getenv ("TMPDIR")? getenv ("TMPDIR"): "/tmp";
    char fs [16] = "?";
    double group = 0, sync = 0;
    size_t group_jobs = count < PL_GROUP_JOBS? count: PL_GROUP_JOBS;
    size_t sync_jobs = count < PL_SYNC_JOBS? count: PL_SYNC_JOBS;
    if (rc == 0 && !(group = s_durable (&mesh, MESH_STORE_GROUP, group_jobs, base, fs, sizeof fs)))
        rc = 1;
    if (rc == 0 && !(sync = s_durable (&mesh, MESH_STORE_SYNC, sync_jobs, base, NULL, 0)))
        rc = 1;
    uint64_t bad = mesh.jobs.bad;
    bench_peer_close (&mesh.worker);
    bench_peer_close (&mesh.producer);
    free (buf);
    if (rc == 0 && bad)
        rc = bench_fail ("bench pipeline: %llu jobs arrived with the wrong size",
                         (unsigned long long) bad);
    if (rc)
        return rc;
    bench_stat_t r = bench_stat (raw_rate, rounds), m = bench_stat (mesh_rate, rounds);
    double ratio = m.med / r.med;
    if (json)
        printf ("{\"bench\":\"pipeline\",\"size\":%zu,\"count\":%zu,\"rounds\":%zu,"
                "\"prefetch\":%d,\"hold\":%d,\"unit\":\"jobs/s\",\"meshbus\":%.0f,\"raw\":%.0f,"
                "\"ratio\":%.3f,\"meshbus_min\":%.0f,\"meshbus_max\":%.0f,\"raw_min\":%.0f,"
                "\"raw_max\":%.0f,\"redelivered\":%llu,\"batched\":%.3f,\"durable_group\":%.0f,"
                "\"durable_group_jobs\":%zu,\"durable_sync\":%.0f,\"durable_sync_jobs\":%zu,"
                "\"durable_fs\":\"%s\"}\n",
                size, count, rounds, PL_PREFETCH, PL_HOLD, m.med, r.med, ratio,
                m.lo, m.hi, r.lo, r.hi, (unsigned long long) redelivered,
                (double) batched / (double) (rounds * count), group, group_jobs, sync, sync_jobs, fs);
    else {
        printf ("pipeline, %zu B, %zu jobs x %zu rounds each, alternating; meshbus with acks "
                "(prefetch %d), raw PUSH/PULL without\n", size, count, rounds, PL_PREFETCH);
        printf ("  raw PUSH/PULL %10.0f msg/s (median; rounds %.0f..%.0f)\n", r.med, r.lo, r.hi);
        printf ("  meshbus       %10.0f jobs/s acked (median; rounds %.0f..%.0f)\n",
                m.med, m.lo, m.hi);
        printf ("  ratio meshbus/raw: %.2f (higher is better); redelivered %llu; "
                "%.0f %% of the jobs sent in JOBS batches\n", ratio,
                (unsigned long long) redelivered, 100.0 * (double) batched / (double) (rounds * count));
        printf ("  durable outbox in %s (%s): group commit %.0f jobs/s (%zu jobs), "
                "sync per job %.0f jobs/s (%zu jobs)\n", base, fs, group, group_jobs,
                sync, sync_jobs);
    }
    return 0;
}
