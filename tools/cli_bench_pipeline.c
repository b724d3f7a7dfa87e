/*  =========================================================================
    meshbus bench pipeline - work queues against raw PUSH/PULL, in one run

    Raw: a PUSH socket bound on tcp loopback, a PULL connected to it, each
    with its own zmq context (as two processes would have); a thread reads
    the PULL. A round sends COUNT messages of SIZE bytes; its clock runs
    from the first send to the moment the PULL got the COUNT-th. Raw PUSH
    has no acks, so this is the most raw libzmq can claim.

    meshbus: a producer node (this thread) pushes COUNT jobs of SIZE bytes
    to a queue that a worker node (its own thread looping
    mesh_node_dispatch) works with prefetch BENCH_PL_PREFETCH, its handler
    acking each job. A round's clock runs from the first push to the moment
    the producer has every job ACKED (mesh_pipeline_pending() == 0): the
    figure includes the acks travelling back, which raw does not have.
    The producer holds at most BENCH_PL_HOLD jobs: at that bound
    mesh_push() fails with MESH_EFULL and the producer waits in
    mesh_node_dispatch() until half of them are acked (back-pressure, as
    raw PUSH blocks at its high-water mark; spinning on failed pushes
    instead took a third of the throughput on 2 cores).
    Rounds alternate raw and meshbus (who goes first alternates too), after
    a warm-up round each; headline: jobs/s, median over the rounds; ratio =
    meshbus / raw (higher is better).

    Durable outbox: the same producer with an LMDB outbox in a fresh
    directory under $TMPDIR (default /tmp; its file system decides what a
    sync costs, so it is printed), first with group commit, then with a
    sync per job; jobs/s from the first push to the last ack, one round
    each (BENCH_PL_SYNC_JOBS jobs for sync).
    ========================================================================= */

#include "cli.h"
#include <zmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#define BENCH_PL_SIZE       100
#define BENCH_PL_COUNT      200000
#define BENCH_PL_ROUNDS     5
#define BENCH_PL_PREFETCH   4000    //  the worker's window: the bench is about throughput
#define BENCH_PL_HOLD       16384   //  jobs held at once: the producer waits for acks beyond
#define BENCH_PL_GROUP_JOBS 50000
#define BENCH_PL_SYNC_JOBS  500
#define BENCH_PL_QUEUE      "bench.jobs"
#define BENCH_PL_MEET_MS    15000
#define BENCH_PL_ROUND_MS   60000

//  ---------------------------------------------------------------------
//  Raw PUSH -> PULL

typedef struct {
    void *push_ctx, *pull_ctx, *push, *pull;
    pthread_t thread;
    bool running;
    volatile uint64_t got;      //  messages of the right size (reader thread)
    size_t size;
    char *buf;
} raw_t;

static void *
s_raw_reader (void *arg)
{
    raw_t *raw = (raw_t *) arg;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (zmq_msg_recv (&msg, raw->pull, 0) >= 0)
        if (zmq_msg_size (&msg) == raw->size)
            __atomic_add_fetch (&raw->got, 1, __ATOMIC_RELEASE);
    zmq_msg_close (&msg);
    zmq_close (raw->pull);      //  ETERM: the bench is over
    return NULL;
}

static int
s_raw_start (raw_t *raw, size_t size)
{
    raw->size = size;
    raw->buf = (char *) calloc (1, size? size: 1);
    raw->push_ctx = zmq_ctx_new ();
    raw->pull_ctx = zmq_ctx_new ();
    raw->push = zmq_socket (raw->push_ctx, ZMQ_PUSH);
    raw->pull = zmq_socket (raw->pull_ctx, ZMQ_PULL);
    int zero = 0;
    zmq_setsockopt (raw->push, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (raw->pull, ZMQ_LINGER, &zero, sizeof zero);
    char endpoint [128];
    size_t len = sizeof endpoint;
    if (zmq_bind (raw->push, "tcp://127.0.0.1:*")
    ||  zmq_getsockopt (raw->push, ZMQ_LAST_ENDPOINT, endpoint, &len)
    ||  zmq_connect (raw->pull, endpoint))
        return cli_fail ("bench: raw libzmq setup failed: %s", zmq_strerror (errno));
    if (pthread_create (&raw->thread, NULL, s_raw_reader, raw))
        return cli_fail ("bench: cannot start the raw reader thread");
    raw->running = true;
    return 0;
}

static uint64_t
s_raw_round (raw_t *raw, size_t count)
{
    uint64_t target = __atomic_load_n (&raw->got, __ATOMIC_ACQUIRE) + count;
    uint64_t start = cli_now_ns ();
    for (size_t i = 0; i < count; i++)
        if (zmq_send (raw->push, raw->buf, raw->size, 0) < 0)
            return cli_fail ("bench: raw send failed: %s", zmq_strerror (errno)), 0;
    uint64_t deadline = start + BENCH_PL_ROUND_MS * 1000000ull;
    while (__atomic_load_n (&raw->got, __ATOMIC_ACQUIRE) < target) {
        if (cli_now_ns () > deadline || cli_interrupted ())
            return cli_fail ("bench pipeline: raw round did not complete"), 0;
        usleep (100);
    }
    return cli_now_ns () - start;
}

static void
s_raw_stop (raw_t *raw)
{
    if (raw->push)
        zmq_close (raw->push);
    if (raw->push_ctx)
        zmq_ctx_term (raw->push_ctx);
    if (raw->pull_ctx) {
        zmq_ctx_shutdown (raw->pull_ctx);
        if (raw->running)
            pthread_join (raw->thread, NULL);
        else
        if (raw->pull)
            zmq_close (raw->pull);
        zmq_ctx_term (raw->pull_ctx);
    }
    free (raw->buf);
}

//  ---------------------------------------------------------------------
//  meshbus: producer here, worker in a thread

typedef struct {
    mesh_node_t *producer, *worker;
    mesh_pipeline_t *pp, *wp;
    pthread_t thread;
    bool running;
    volatile bool stop;
    volatile uint64_t done;
    uint64_t bad;
    size_t size;
    char *buf;
} mesh_t;

static int
s_on_job (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    mesh_t *mesh = (mesh_t *) arg;
    if (mesh_msg_size (job) == mesh->size)
        mesh->done++;
    else
        mesh->bad++;
    return MESH_JOB_ACK;
}

static void
s_drain (mesh_node_t *node)
{
    mesh_event_t *event;
    while ((event = mesh_node_event (node)))
        mesh_event_destroy (&event);
}

static void *
s_worker_loop (void *arg)
{
    mesh_t *mesh = (mesh_t *) arg;
    while (!mesh->stop) {
        if (mesh_node_dispatch (mesh->worker, 100) < 0)
            break;
        s_drain (mesh->worker);
    }
    return NULL;
}

static int
s_mesh_start (mesh_t *mesh, const cli_opts_t *opts, size_t size)
{
    mesh->size = size;
    mesh->buf = (char *) calloc (1, size? size: 1);
    char cluster [64], port [16];
    snprintf (cluster, sizeof cluster, "bench-pl-%d", (int) getpid ());
    snprintf (port, sizeof port, "%d", 30000 + (int) ((getpid () + 4241) % 20000));
    cli_opts_t node_opts = *opts;
    if (!node_opts.cluster)
        node_opts.cluster = cluster;
    if (!node_opts.port)
        node_opts.port = port;
    node_opts.name = "bench-producer";
    mesh->producer = cli_node_new (&node_opts, "bench-producer");
    node_opts.name = "bench-worker";
    mesh->worker = mesh->producer? cli_node_new (&node_opts, "bench-worker"): NULL;
    if (!mesh->worker)
        return -1;
    mesh->pp = mesh_pipeline_new (mesh->producer);
    mesh->wp = mesh_pipeline_new (mesh->worker);
    if (!mesh->pp || !mesh->wp
    ||  mesh_work (mesh->wp, BENCH_PL_QUEUE, BENCH_PL_PREFETCH, s_on_job, mesh))
        return cli_fail ("bench: %s", mesh_last_error ());
    if (pthread_create (&mesh->thread, NULL, s_worker_loop, mesh))
        return cli_fail ("bench: cannot start the worker thread");
    mesh->running = true;
    //  one job through: the nodes met and the worker's queue is known
    uint64_t deadline = cli_now_ns () + BENCH_PL_MEET_MS * 1000000ull;
    if (!mesh_push (mesh->pp, BENCH_PL_QUEUE, mesh->buf, size))
        return cli_fail ("bench: %s", mesh_last_error ());
    while (mesh_pipeline_pending (mesh->pp, NULL)) {
        if (cli_now_ns () > deadline || cli_interrupted ())
            return cli_fail ("bench: the worker got nothing within %d s", BENCH_PL_MEET_MS / 1000);
        mesh_node_dispatch (mesh->producer, 10);
        s_drain (mesh->producer);
    }
    return 0;
}

//  One round on the producer's pipeline pl; 0 on failure
static uint64_t
s_mesh_round (mesh_t *mesh, mesh_pipeline_t *pl, size_t count)
{
    uint64_t start = cli_now_ns ();
    uint64_t deadline = start + BENCH_PL_ROUND_MS * 1000000ull;
    for (size_t i = 0; i < count; i++) {
        while (!mesh_push (pl, BENCH_PL_QUEUE, mesh->buf, mesh->size)) {
            if (mesh_errno () != MESH_EFULL || cli_now_ns () > deadline)
                return cli_fail ("bench: push failed: %s", mesh_last_error ()), 0;
            //  back-pressure: the hold bound is reached, take acks in
            //  until half of it is free (not a failing push per ack)
            //  (waiting in dispatch, not spinning: the worker needs the CPU)
            while (mesh_pipeline_pending (pl, NULL) > BENCH_PL_HOLD / 2
               &&  cli_now_ns () < deadline)
                mesh_node_dispatch (mesh->producer, 1);
        }
        //  the producer's loop, as an application would run it: acks in
        if (i % 256 == 255)
            mesh_node_dispatch (mesh->producer, 0);
    }
    while (mesh_pipeline_pending (pl, NULL)) {
        if (cli_now_ns () > deadline || cli_interrupted ())
            return cli_fail ("bench pipeline: %zu jobs not acked at the end of a round",
                             mesh_pipeline_pending (pl, NULL)), 0;
        mesh_node_dispatch (mesh->producer, 1);
    }
    s_drain (mesh->producer);
    return cli_now_ns () - start;
}

static void
s_mesh_stop (mesh_t *mesh)
{
    mesh->stop = true;
    if (mesh->running)
        pthread_join (mesh->thread, NULL);
    mesh_pipeline_destroy (&mesh->pp);
    mesh_pipeline_destroy (&mesh->wp);
    mesh_node_destroy (&mesh->worker);
    mesh_node_destroy (&mesh->producer);
    free (mesh->buf);
}

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

//  Jobs/s through a durable outbox in a fresh directory; 0 on failure
static double
s_durable (mesh_t *mesh, int mode, size_t count, const char *base, char *fs, size_t fs_size)
{
    char dir [512];
    snprintf (dir, sizeof dir, "%s/meshbus-bench-XXXXXX", base);
    if (!mkdtemp (dir))
        return cli_fail ("bench: cannot make a directory in %s", base), 0;
    struct statfs st;
    if (fs && statfs (dir, &st) == 0)
        snprintf (fs, fs_size, "%s", st.f_type == 0x01021994? "tmpfs": "disk");
    //  the memory pipeline steps aside: one pipeline per node
    mesh_pipeline_destroy (&mesh->pp);
    mesh->pp = mesh_pipeline_new (mesh->producer);
    double rate = 0;
    if (mesh_pipeline_set_outbox (mesh->pp, dir, mode))
        cli_fail ("bench: outbox in %s: %s", dir, mesh_last_error ());
    else {
        uint64_t took = s_mesh_round (mesh, mesh->pp, count);
        rate = took? count * 1e9 / (double) took: 0;
    }
    mesh_pipeline_destroy (&mesh->pp);
    mesh->pp = mesh_pipeline_new (mesh->producer);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return rate;
}

int
cli_bench_pipeline (cli_opts_t *opts, size_t size, size_t count, bool json)
{
    size = size? size: BENCH_PL_SIZE;
    count = count? count: BENCH_PL_COUNT;
    size_t rounds = BENCH_PL_ROUNDS;
    raw_t raw = { 0 };
    mesh_t mesh = { 0 };
    double raw_rate [BENCH_PL_ROUNDS], mesh_rate [BENCH_PL_ROUNDS];
    int rc = 0;
    if (s_raw_start (&raw, size) || s_mesh_start (&mesh, opts, size))
        rc = 1;
    if (rc == 0)
        mesh_pipeline_set_hold (mesh.pp, BENCH_PL_HOLD, (size_t) 1 << 40);
    size_t warm = count / 10 < 1000? 1000: count / 10;
    if (rc == 0 && (!s_raw_round (&raw, warm) || !s_mesh_round (&mesh, mesh.pp, warm)))
        rc = 1;
    uint64_t redelivered = mesh.producer?
        mesh_node_counter (mesh.producer, NULL, "pipeline.redelivered"): 0;
    uint64_t batched = mesh.producer?
        mesh_node_counter (mesh.producer, NULL, "pipeline.sent.batched"): 0;
    cli_progress_t progress;
    cli_progress_init (&progress, json);
    for (size_t r = 0; rc == 0 && r < rounds; r++)
        for (int turn = 0; turn < 2 && rc == 0; turn++) {
            bool on_mesh = (turn == 0) == (r % 2 == 1);
            progress.shown = 0;
            cli_progress_show (&progress, "bench pipeline: round %zu of %zu, %s", r + 1, rounds,
                               on_mesh? "meshbus": "raw libzmq");
            uint64_t took = on_mesh? s_mesh_round (&mesh, mesh.pp, count): s_raw_round (&raw, count);
            if (!took)
                rc = 1;
            else
                (on_mesh? mesh_rate: raw_rate) [r] = count * 1e9 / (double) took;
        }
    cli_progress_end (&progress);
    if (mesh.producer)
        redelivered = mesh_node_counter (mesh.producer, NULL, "pipeline.redelivered") - redelivered;
    if (mesh.producer)      //  counted per tick: may miss the last few ms of the last round
        batched = mesh_node_counter (mesh.producer, NULL, "pipeline.sent.batched") - batched;
    s_raw_stop (&raw);
    const char *base = getenv ("TMPDIR")? getenv ("TMPDIR"): "/tmp";
    char fs [16] = "?";
    double group = 0, sync = 0;
    size_t group_jobs = count < BENCH_PL_GROUP_JOBS? count: BENCH_PL_GROUP_JOBS;
    size_t sync_jobs = count < BENCH_PL_SYNC_JOBS? count: BENCH_PL_SYNC_JOBS;
    if (rc == 0 && !(group = s_durable (&mesh, MESH_STORE_GROUP, group_jobs, base, fs, sizeof fs)))
        rc = 1;
    if (rc == 0 && !(sync = s_durable (&mesh, MESH_STORE_SYNC, sync_jobs, base, NULL, 0)))
        rc = 1;
    uint64_t bad = mesh.bad;
    s_mesh_stop (&mesh);
    if (rc == 0 && bad)
        rc = cli_fail ("bench pipeline: %llu jobs arrived with the wrong size",
                       (unsigned long long) bad);
    if (rc)
        return rc;
    double raw_lo = raw_rate [0], raw_hi = raw_rate [0], mesh_lo = mesh_rate [0], mesh_hi = mesh_rate [0];
    for (size_t r = 1; r < rounds; r++) {
        raw_lo = raw_rate [r] < raw_lo? raw_rate [r]: raw_lo;
        raw_hi = raw_rate [r] > raw_hi? raw_rate [r]: raw_hi;
        mesh_lo = mesh_rate [r] < mesh_lo? mesh_rate [r]: mesh_lo;
        mesh_hi = mesh_rate [r] > mesh_hi? mesh_rate [r]: mesh_hi;
    }
    double raw_med = cli_median (raw_rate, rounds), mesh_med = cli_median (mesh_rate, rounds);
    double ratio = mesh_med / raw_med;
    if (json)
        printf ("{\"bench\":\"pipeline\",\"size\":%zu,\"count\":%zu,\"rounds\":%zu,"
                "\"prefetch\":%d,\"hold\":%d,\"unit\":\"jobs/s\",\"meshbus\":%.0f,\"raw\":%.0f,"
                "\"ratio\":%.3f,\"meshbus_min\":%.0f,\"meshbus_max\":%.0f,\"raw_min\":%.0f,"
                "\"raw_max\":%.0f,\"redelivered\":%llu,\"batched\":%.3f,\"durable_group\":%.0f,"
                "\"durable_group_jobs\":%zu,\"durable_sync\":%.0f,\"durable_sync_jobs\":%zu,"
                "\"durable_fs\":\"%s\"}\n",
                size, count, rounds, BENCH_PL_PREFETCH, BENCH_PL_HOLD, mesh_med, raw_med, ratio,
                mesh_lo, mesh_hi, raw_lo, raw_hi, (unsigned long long) redelivered,
                (double) batched / (double) (rounds * count), group, group_jobs, sync, sync_jobs, fs);
    else {
        printf ("pipeline, %zu B, %zu jobs x %zu rounds each, alternating; meshbus with acks "
                "(prefetch %d), raw PUSH/PULL without\n", size, count, rounds, BENCH_PL_PREFETCH);
        printf ("  raw PUSH/PULL %10.0f msg/s (median; rounds %.0f..%.0f)\n",
                raw_med, raw_lo, raw_hi);
        printf ("  meshbus       %10.0f jobs/s acked (median; rounds %.0f..%.0f)\n",
                mesh_med, mesh_lo, mesh_hi);
        printf ("  ratio meshbus/raw: %.2f (higher is better); redelivered %llu; "
                "%.0f %% of the jobs sent in JOBS batches\n", ratio,
                (unsigned long long) redelivered, 100.0 * (double) batched / (double) (rounds * count));
        printf ("  durable outbox in %s (%s): group commit %.0f jobs/s (%zu jobs), "
                "sync per job %.0f jobs/s (%zu jobs)\n", base, fs, group, group_jobs,
                sync, sync_jobs);
    }
    return 0;
}
