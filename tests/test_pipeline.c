/*  =========================================================================
    test_pipeline - work queues, in one process

    Every test starts real nodes on loopback in a cluster of its own (random
    name, random beacon port). Each test states one fact a user of the
    pipeline relies on; the first reads like the usage example. Nodes are
    pumped with mesh_node_dispatch() in turn while a test waits: nothing
    else runs handlers. Every wait is functional (it bounds a failing test,
    it never claims a speed).
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>

#include "meshbus.h"
#include "meshbus/pattern.h"
#include "mesh_pipeline_record.h"
#include "mesh_pipeline_jobs.h"

#define WAIT_MS     15000       //  ceiling of every wait; valgrind is slow
#include "testnet.h"

#define MAX_NODES   4

typedef struct {
    mesh_node_t *nodes [MAX_NODES];
    int count;
} s_mesh_t;

static s_net_t s_netw;

static mesh_node_t *
s_started (const char *name)
{
    mesh_node_t *node = s_node (&s_netw, name);
    mesh_node_set_timeouts (node, 300, 1000);
    assert_int_equal (mesh_node_start (node), 0);
    return node;
}

static void
s_pump (mesh_node_t **nodes, int count, int msecs)
{
    int64_t until = s_now () + msecs;
    do
        for (int i = 0; i < count; i++)
            if (nodes [i])
                mesh_node_dispatch (nodes [i], 1);
    while (s_now () < until);
}

//  Pump until *value >= want or the wait ends; true if reached
static bool
s_pump_until (mesh_node_t **nodes, int count, volatile long *value, long want)
{
    int64_t until = s_now () + WAIT_MS;
    while (*value < want && s_now () < until)
        s_pump (nodes, count, 2);
    return *value >= want;
}

static bool
s_pump_until_acked (mesh_node_t **nodes, int count, mesh_pipeline_t *producer)
{
    int64_t until = s_now () + WAIT_MS;
    while (mesh_pipeline_pending (producer, NULL) && s_now () < until)
        s_pump (nodes, count, 2);
    return mesh_pipeline_pending (producer, NULL) == 0;
}

//  Wait until every node sees every other one
static void
s_meet (mesh_node_t **nodes, int count)
{
    int64_t until = s_now () + WAIT_MS;
    bool all = false;
    while (!all && s_now () < until) {
        s_pump (nodes, count, 5);
        all = true;
        for (int i = 0; i < count; i++)
            if (nodes [i] && mesh_node_peer_count (nodes [i]) < (size_t) count - 1)
                all = false;
    }
    assert_true (all);
}

//  A worker that records what it got and answers what it is told
typedef struct {
    long jobs;                  //  handler calls
    long seen [1000];           //  per body index
    int answer;                 //  MESH_JOB_ACK...
    int fail_first;             //  nack this many deliveries, then ack
    uint64_t last_seq;
    char last_producer [33];
    uint64_t last_id;
    long out_of_order;          //  jobs whose id was not above the previous one
    long not_job_kind;          //  jobs the handler saw with a kind other than JOB
} s_worker_t;

static int
s_on_job (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    s_worker_t *w = (s_worker_t *) arg;
    w->jobs++;
    w->last_seq = mesh_msg_seq (job);
    if (mesh_msg_id (job) <= w->last_id)
        w->out_of_order++;
    if (mesh_msg_kind (job) != MESH_KIND_PATTERN + 16)
        w->not_job_kind++;
    w->last_id = mesh_msg_id (job);
    snprintf (w->last_producer, sizeof w->last_producer, "%s", mesh_msg_sender (job));
    char text [32] = "";
    size_t size = mesh_msg_size (job) < 31? mesh_msg_size (job): 31;
    memcpy (text, mesh_msg_body (job), size);
    long index = atol (text);
    if (index >= 0 && index < 1000)
        w->seen [index]++;
    if (w->fail_first > 0) {
        w->fail_first--;
        return MESH_JOB_NACK;
    }
    return w->answer;
}

static int
s_setup (void **state)
{
    (void) state;
    s_netw = s_net_named ("test-pipeline");
    return 0;
}

//  ---------------------------------------------------------------------
//  1. Usage: push jobs to a queue, a worker takes them, every one is acked

static void
test_usage (void **state)
{
    (void) state;
    mesh_node_t *nodes [2] = { s_started ("producer"), s_started ("worker") };
    s_meet (nodes, 2);
    mesh_pipeline_t *producer = mesh_pipeline_new (nodes [0]);
    mesh_pipeline_t *worker = mesh_pipeline_new (nodes [1]);
    s_worker_t w = { .answer = MESH_JOB_ACK };
    assert_int_equal (mesh_work (worker, "jobs.resize", 8, s_on_job, &w), 0);
    for (int i = 0; i < 100; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        assert_true (mesh_push (producer, "jobs.resize", body, strlen (body)) > 0);
    }
    assert_true (s_pump_until_acked (nodes, 2, producer));
    assert_int_equal (w.jobs, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal (w.seen [i], 1);
    assert_string_equal (w.last_producer, mesh_node_id (nodes [0]));
    assert_int_equal (w.last_seq, 1);
    s_pump (nodes, 2, 50);          //  a tick adds the counters
    assert_int_equal (mesh_node_counter (nodes [0], NULL, "pipeline.acked"), 100);
    assert_int_equal (mesh_node_counter (nodes [1], NULL, "pipeline.done"), 100);
    mesh_pipeline_destroy (&worker);
    mesh_pipeline_destroy (&producer);
    assert_null (producer);
    mesh_pipeline_destroy (&producer);  //  twice is fine
    mesh_node_destroy (&nodes [1]);
    mesh_node_destroy (&nodes [0]);
}

//  2. Bad arguments fail with MESH_EINVAL and push nothing
static void
test_bad_arguments (void **state)
{
    (void) state;
    mesh_node_t *node = s_started ("alone");
    mesh_pipeline_t *pl = mesh_pipeline_new (node);
    assert_int_equal (mesh_push (pl, "bad..queue", "x", 1), 0);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_push (pl, "jobs.*", "x", 1), 0);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_work (pl, "jobs.#", 1, s_on_job, NULL), -1);
    assert_int_equal (mesh_work (pl, "jobs", -1, s_on_job, NULL), -1);
    assert_int_equal (mesh_work (pl, "jobs", 1, NULL, NULL), -1);
    assert_int_equal (mesh_unwork (pl, "jobs"), -1);
    assert_int_equal (mesh_job_done (pl, "0123", 7, true), -1);
    mesh_queue_opts_t bad = { .max_deliveries = -1 };
    assert_int_equal (mesh_pipeline_set_queue (pl, "jobs", &bad), -1);
    assert_int_equal (mesh_pipeline_pending (pl, NULL), 0);
    assert_int_equal (mesh_pipeline_set_outbox (pl, "", MESH_STORE_SYNC), -1);
    mesh_pipeline_destroy (&pl);
    mesh_node_destroy (&node);
}

//  3. With no worker, jobs wait at the producer up to the hold bound, then
//  push fails with MESH_EFULL; a worker that joins late gets them all
static void
test_hold_then_late_worker (void **state)
{
    (void) state;
    mesh_node_t *nodes [2] = { s_started ("producer"), NULL };
    mesh_pipeline_t *producer = mesh_pipeline_new (nodes [0]);
    assert_int_equal (mesh_pipeline_set_hold (producer, 20, 1 << 20), 0);
    for (int i = 0; i < 20; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        assert_true (mesh_push (producer, "jobs.late", body, strlen (body)) > 0);
    }
    assert_int_equal (mesh_push (producer, "jobs.late", "x", 1), 0);
    assert_int_equal (mesh_errno (), MESH_EFULL);
    assert_int_equal (mesh_pipeline_pending (producer, "jobs.late"), 20);
    assert_int_equal (mesh_pipeline_wait_acked (producer, 100), -1);
    assert_int_equal (mesh_errno (), MESH_ETIMEDOUT);

    nodes [1] = s_started ("late-worker");
    mesh_pipeline_t *worker = mesh_pipeline_new (nodes [1]);
    s_worker_t w = { .answer = MESH_JOB_ACK };
    assert_int_equal (mesh_work (worker, "jobs.late", 1, s_on_job, &w), 0);
    s_meet (nodes, 2);
    assert_true (s_pump_until_acked (nodes, 2, producer));
    for (int i = 0; i < 20; i++)
        assert_int_equal (w.seen [i], 1);
    mesh_pipeline_destroy (&worker);
    mesh_pipeline_destroy (&producer);
    mesh_node_destroy (&nodes [1]);
    mesh_node_destroy (&nodes [0]);
}

//  4. A nack redelivers (delivery count 2); a job that always fails is a
//  dead letter after max_deliveries, posted as an event; it can be listed
//  and replayed
typedef struct {
    int count;
    uint64_t job_id;
    char reason [128];
    uint64_t seq;
} s_dead_seen_t;

static bool
s_on_dead (const char *queue, uint64_t job_id, const mesh_msg_t *job, const char *reason,
           void *arg)
{
    s_dead_seen_t *seen = (s_dead_seen_t *) arg;
    assert_string_equal (queue, "jobs.fail");
    seen->count++;
    seen->job_id = job_id;
    seen->seq = mesh_msg_seq (job);
    snprintf (seen->reason, sizeof seen->reason, "%s", reason);
    assert_true (s_body_is (job, "7"));
    return true;
}

//  Any queue's dead letter (its body "7")
static bool
s_on_dead_any (const char *queue, uint64_t job_id, const mesh_msg_t *job,
               const char *reason, void *arg)
{
    (void) queue;
    s_dead_seen_t *seen = (s_dead_seen_t *) arg;
    seen->count++;
    seen->job_id = job_id;
    seen->seq = mesh_msg_seq (job);
    snprintf (seen->reason, sizeof seen->reason, "%s", reason);
    assert_true (s_body_is (job, "7"));
    return true;
}

static void
test_nack_redelivers_then_dead_letter (void **state)
{
    (void) state;
    mesh_node_t *nodes [2] = { s_started ("producer"), s_started ("worker") };
    s_meet (nodes, 2);
    mesh_pipeline_t *producer = mesh_pipeline_new (nodes [0]);
    mesh_pipeline_t *worker = mesh_pipeline_new (nodes [1]);
    mesh_queue_opts_t opts = { .max_deliveries = 3, .backoff_ms = 10 };
    assert_int_equal (mesh_pipeline_set_queue (producer, "jobs.retry", &opts), 0);
    assert_int_equal (mesh_pipeline_set_queue (producer, "jobs.fail", &opts), 0);
    s_worker_t retry = { .answer = MESH_JOB_ACK, .fail_first = 1 };
    s_worker_t fail = { .answer = MESH_JOB_NACK };
    assert_int_equal (mesh_work (worker, "jobs.retry", 1, s_on_job, &retry), 0);
    assert_int_equal (mesh_work (worker, "jobs.fail", 1, s_on_job, &fail), 0);
    s_pump (nodes, 2, 100);     //  the announcement arrives

    assert_true (mesh_push (producer, "jobs.retry", "1", 1) > 0);
    assert_true (s_pump_until_acked (nodes, 2, producer));
    assert_int_equal (retry.jobs, 2);
    assert_int_equal (retry.last_seq, 2);

    uint64_t id = mesh_push (producer, "jobs.fail", "7", 1);
    assert_true (id > 0);
    assert_true (s_pump_until_acked (nodes, 2, producer));     //  dead is not pending
    assert_int_equal (fail.jobs, 3);
    mesh_event_t *event = NULL;
    int64_t until = s_now () + WAIT_MS;
    while (s_now () < until) {
        event = mesh_node_event (nodes [0]);
        if (event && mesh_event_type (event) == MESH_EVENT_DEAD_LETTER)
            break;
        mesh_event_destroy (&event);
        s_pump (nodes, 2, 5);
    }
    assert_non_null (event);
    assert_string_equal (mesh_event_name (event), "DEAD_LETTER");
    assert_string_equal (mesh_event_detail (event), "jobs.fail");
    assert_int_equal (mesh_event_count (event), id);
    mesh_event_destroy (&event);
    assert_int_equal (mesh_node_counter (nodes [0], mesh_node_id (nodes [1]), "pipeline.dead"), 1);

    s_dead_seen_t seen = { 0 };
    assert_int_equal (mesh_dlq_list (producer, "jobs.fail", s_on_dead, &seen), 1);
    assert_int_equal (seen.job_id, id);
    assert_int_equal (seen.seq, 3);
    assert_non_null (strstr (seen.reason, "nack"));
    assert_int_equal (mesh_dlq_list (producer, "jobs.other", s_on_dead, &seen), 0);

    //  replayed: a new job, this time the worker acks it
    fail.answer = MESH_JOB_ACK;
    assert_int_equal (mesh_dlq_replay (producer, "jobs.fail", 0), 1);
    assert_true (s_pump_until_acked (nodes, 2, producer));
    assert_int_equal (fail.jobs, 4);
    assert_int_equal (mesh_dlq_list (producer, NULL, NULL, NULL), 0);
    mesh_pipeline_destroy (&worker);
    mesh_pipeline_destroy (&producer);
    mesh_node_destroy (&nodes [1]);
    mesh_node_destroy (&nodes [0]);
}

//  5. Fair dispatch: with prefetch 1, a worker busy with a job is skipped;
//  the other takes everything else
static void
test_busy_worker_is_skipped (void **state)
{
    (void) state;
    mesh_node_t *nodes [3] = { s_started ("producer"), s_started ("busy"), s_started ("free") };
    s_meet (nodes, 3);
    mesh_pipeline_t *producer = mesh_pipeline_new (nodes [0]);
    mesh_pipeline_t *busy = mesh_pipeline_new (nodes [1]);
    mesh_pipeline_t *free_ = mesh_pipeline_new (nodes [2]);
    s_worker_t b = { .answer = MESH_JOB_LATER }, f = { .answer = MESH_JOB_ACK };
    assert_int_equal (mesh_work (busy, "jobs.fair", 1, s_on_job, &b), 0);
    assert_int_equal (mesh_work (free_, "jobs.fair", 1, s_on_job, &f), 0);
    s_pump (nodes, 3, 100);
    for (int i = 0; i < 50; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        assert_true (mesh_push (producer, "jobs.fair", body, strlen (body)) > 0);
    }
    long want = 1;
    assert_true (s_pump_until (nodes, 3, &b.jobs, want));
    long done = 49;
    assert_true (s_pump_until (nodes, 3, &f.jobs, done));
    s_pump (nodes, 3, 100);
    assert_int_equal (b.jobs, 1);           //  held: no more credit
    assert_int_equal (f.jobs, 49);
    assert_int_equal (mesh_pipeline_pending (producer, NULL), 1);
    //  the async handler finishes later
    assert_int_equal (mesh_job_done (busy, b.last_producer, b.last_id, true), 0);
    assert_int_equal (mesh_job_done (busy, b.last_producer, b.last_id, true), -1);
    assert_true (s_pump_until_acked (nodes, 3, producer));
    mesh_pipeline_destroy (&free_);
    mesh_pipeline_destroy (&busy);
    mesh_pipeline_destroy (&producer);
    for (int i = 2; i >= 0; i--)
        mesh_node_destroy (&nodes [i]);
}

//  6. A worker that leaves with jobs unacked: they go to another worker
static void
test_worker_exit_redelivers (void **state)
{
    (void) state;
    mesh_node_t *nodes [3] = { s_started ("producer"), s_started ("leaver"), s_started ("stayer") };
    s_meet (nodes, 3);
    mesh_pipeline_t *producer = mesh_pipeline_new (nodes [0]);
    mesh_pipeline_t *leaver = mesh_pipeline_new (nodes [1]);
    s_worker_t l = { .answer = MESH_JOB_LATER }, s = { .answer = MESH_JOB_ACK };
    assert_int_equal (mesh_work (leaver, "jobs.exit", 5, s_on_job, &l), 0);
    s_pump (nodes, 3, 100);
    for (int i = 0; i < 5; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        assert_true (mesh_push (producer, "jobs.exit", body, strlen (body)) > 0);
    }
    assert_true (s_pump_until (nodes, 3, &l.jobs, 5));
    //  the leaver's node goes away without acking (its node says BYE)
    mesh_node_stop (nodes [1]);
    mesh_pipeline_t *stayer = mesh_pipeline_new (nodes [2]);
    assert_int_equal (mesh_work (stayer, "jobs.exit", 5, s_on_job, &s), 0);
    mesh_node_t *left [3] = { nodes [0], NULL, nodes [2] };
    assert_true (s_pump_until_acked (left, 3, producer));
    for (int i = 0; i < 5; i++)
        assert_int_equal (s.seen [i], 1);
    assert_int_equal (s.last_seq, 2);
    assert_int_equal (mesh_node_counter (nodes [0], NULL, "pipeline.redelivered"), 5);  //  each once
    mesh_pipeline_destroy (&stayer);
    mesh_pipeline_destroy (&leaver);
    mesh_pipeline_destroy (&producer);
    for (int i = 2; i >= 0; i--)
        mesh_node_destroy (&nodes [i]);
}

//  7. A job redelivered to the worker that acked it already (its ack was
//  lost) runs once: it is acked again and counted as a duplicate. The
//  producer here is a bare node sending JOB frames by hand.
static int s_acks_seen;

static void
s_on_raw_ack (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node; (void) arg;
    s_acks_seen += (int) (mesh_msg_size (msg) / 8);
}

static void
test_duplicate_is_recognised (void **state)
{
    (void) state;
    mesh_node_t *nodes [2] = { s_started ("raw"), s_started ("worker") };
    s_meet (nodes, 2);
    mesh_pipeline_t *worker = mesh_pipeline_new (nodes [1]);
    s_worker_t w = { .answer = MESH_JOB_ACK };
    assert_int_equal (mesh_work (worker, "jobs.dup", 4, s_on_job, &w), 0);
    mesh_node_on_kind (nodes [0], MESH_KIND_PATTERN + 18, s_on_raw_ack, NULL);
    s_acks_seen = 0;
    mesh_head_t head = { .kind = MESH_KIND_PATTERN + 16, .id = 42, .seq = 1,
                         .subject = "jobs.dup", .reply = mesh_node_id (nodes [0]) };
    const char *peer = mesh_node_id (nodes [1]);
    assert_int_equal (mesh_node_send (nodes [0], peer, &head, "5", 1), 0);
    head.seq = 2;
    assert_int_equal (mesh_node_send (nodes [0], peer, &head, "5", 1), 0);
    int64_t until = s_now () + WAIT_MS;
    while (s_acks_seen < 2 && s_now () < until)
        s_pump (nodes, 2, 5);
    assert_int_equal (s_acks_seen, 2);
    assert_int_equal (w.jobs, 1);
    assert_int_equal (mesh_node_counter (nodes [1], mesh_node_id (nodes [0]),
                                         "pipeline.duplicates"), 1);
    mesh_pipeline_destroy (&worker);
    mesh_node_destroy (&nodes [1]);
    mesh_node_destroy (&nodes [0]);
}

//  8. Garbage JOB / ACK / NACK / CREDIT frames from a peer are counted and
//  change nothing
static void
test_garbage_from_peers (void **state)
{
    (void) state;
    mesh_node_t *nodes [2] = { s_started ("raw"), s_started ("target") };
    s_meet (nodes, 2);
    mesh_pipeline_t *pl = mesh_pipeline_new (nodes [1]);
    s_worker_t w = { .answer = MESH_JOB_ACK };
    assert_int_equal (mesh_work (pl, "jobs.g", 1, s_on_job, &w), 0);
    assert_true (mesh_push (pl, "jobs.held", "x", 1) > 0);
    const char *peer = mesh_node_id (nodes [1]);
    struct { int kind; uint64_t id, seq; const char *subject, *reply; size_t size; } bad [] = {
        { 32, 0, 1, "jobs.g", NULL, 1 },                //  job id 0
        { 32, 1, 0, "jobs.g", NULL, 1 },                //  delivery 0
        { 32, 1, 5000, "jobs.g", NULL, 1 },             //  absurd delivery count
        { 32, 1, 1, "jobs.g", "not-hex", 1 },           //  bad origin
        { 33, 1000000, 0, "jobs.g", NULL, 0 },          //  window too big
        { 33, 1, 0, "bad..q", NULL, 0 },                //  bad queue
        { 34, 0, 0, NULL, NULL, 7 },                    //  ids not a multiple of 8
        { 34, 0, 0, NULL, NULL, 0 },                    //  no ids
        { 34, 0, 0, NULL, NULL, 8 * 1025 },             //  too many ids
        { 35, 0, 0, NULL, NULL, 9 },
    };
    static char zeros [8 * 1025];
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        mesh_head_t head = { .kind = bad [i].kind, .id = bad [i].id, .seq = bad [i].seq,
                             .subject = bad [i].subject, .reply = bad [i].reply };
        assert_int_equal (mesh_node_send (nodes [0], peer, &head, zeros, bad [i].size), 0);
    }
    //  an ACK of ids that are not out: unknown, nothing else happens
    uint8_t ids [16] = { 1, 0, 0, 0, 0, 0, 0, 0, 99 };
    mesh_head_t ack = { .kind = 34 };
    assert_int_equal (mesh_node_send (nodes [0], peer, &ack, ids, sizeof ids), 0);
    s_pump (nodes, 2, 300);
    const char *raw = mesh_node_id (nodes [0]);
    assert_int_equal (mesh_node_counter (nodes [1], raw, "pipeline.malformed.job"), 4);
    assert_int_equal (mesh_node_counter (nodes [1], raw, "pipeline.malformed.credit"), 2);
    assert_int_equal (mesh_node_counter (nodes [1], raw, "pipeline.malformed.ack"), 3);
    assert_int_equal (mesh_node_counter (nodes [1], raw, "pipeline.malformed.nack"), 1);
    assert_int_equal (mesh_node_counter (nodes [1], raw, "pipeline.acks.unknown"), 2);
    assert_int_equal (w.jobs, 0);
    assert_int_equal (mesh_pipeline_pending (pl, "jobs.held"), 1);
    mesh_pipeline_destroy (&pl);
    assert_int_equal (mesh_node_counter (nodes [1], NULL, "pipeline.dropped.destroyed"), 1);
    mesh_node_destroy (&nodes [1]);
    mesh_node_destroy (&nodes [0]);
}

//  9. A durable outbox keeps jobs across a restart of the producer: a new
//  pipeline on the same directory delivers what was not acked
//  ---------------------------------------------------------------------
//  Batches: jobs ready at once travel several per frame (JOBS); a user
//  sees exactly what single JOB frames gave

//  Many jobs pushed at once (held until the worker comes) all run exactly
//  once, in push order, each acked
static void
test_batch_runs_each_once_in_order (void **state)
{
    (void) state;
    mesh_node_t *nodes [2] = { s_started ("producer"), s_started ("worker") };
    s_meet (nodes, 2);
    mesh_pipeline_t *producer = mesh_pipeline_new (nodes [0]);
    for (int i = 0; i < 1000; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        assert_true (mesh_push (producer, "jobs.batch", body, strlen (body)) > 0);
    }
    //  the worker comes now: 1000 jobs are ready for it at once
    mesh_pipeline_t *worker = mesh_pipeline_new (nodes [1]);
    s_worker_t w = { .answer = MESH_JOB_ACK };
    assert_int_equal (mesh_work (worker, "jobs.batch", 2000, s_on_job, &w), 0);
    assert_true (s_pump_until_acked (nodes, 2, producer));
    assert_int_equal (w.jobs, 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal (w.seen [i], 1);
    assert_int_equal (w.out_of_order, 0);
    assert_int_equal (w.not_job_kind, 0);
    assert_int_equal (w.last_seq, 1);
    assert_string_equal (w.last_producer, mesh_node_id (nodes [0]));
    mesh_pipeline_destroy (&worker);
    mesh_pipeline_destroy (&producer);
    //  they went in batches, and nothing was run twice or acked late
    assert_true (mesh_node_counter (nodes [0], NULL, "pipeline.sent.batched") >= 900);
    assert_int_equal (mesh_node_counter (nodes [0], NULL, "pipeline.acked"), 1000);
    assert_int_equal (mesh_node_counter (nodes [0], NULL, "pipeline.redelivered"), 0);
    assert_int_equal (mesh_node_counter (nodes [1], NULL, "pipeline.done"), 1000);
    mesh_node_destroy (&nodes [1]);
    mesh_node_destroy (&nodes [0]);
}

//  A worker that leaves with a batch in flight (held, not acked): every
//  job of it is redelivered to another worker
static void
test_batch_worker_leaves (void **state)
{
    (void) state;
    mesh_node_t *nodes [3] = { s_started ("producer"), s_started ("leaver"), s_started ("stayer") };
    s_meet (nodes, 3);
    mesh_pipeline_t *producer = mesh_pipeline_new (nodes [0]);
    for (int i = 0; i < 40; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        assert_true (mesh_push (producer, "jobs.leave", body, strlen (body)) > 0);
    }
    mesh_pipeline_t *leaver = mesh_pipeline_new (nodes [1]);
    s_worker_t l = { .answer = MESH_JOB_LATER }, s = { .answer = MESH_JOB_ACK };
    assert_int_equal (mesh_work (leaver, "jobs.leave", 100, s_on_job, &l), 0);
    assert_true (s_pump_until (nodes, 3, &l.jobs, 40));
    mesh_node_stop (nodes [1]);
    mesh_pipeline_t *stayer = mesh_pipeline_new (nodes [2]);
    assert_int_equal (mesh_work (stayer, "jobs.leave", 100, s_on_job, &s), 0);
    mesh_node_t *left [3] = { nodes [0], NULL, nodes [2] };
    assert_true (s_pump_until_acked (left, 3, producer));
    for (int i = 0; i < 40; i++)
        assert_int_equal (s.seen [i], 1);
    assert_int_equal (s.last_seq, 2);
    assert_int_equal (s.out_of_order, 0);
    assert_int_equal (mesh_node_counter (nodes [0], NULL, "pipeline.redelivered"), 40);
    mesh_pipeline_destroy (&stayer);
    mesh_pipeline_destroy (&leaver);
    mesh_pipeline_destroy (&producer);
    //  both deliveries went in batches
    assert_true (mesh_node_counter (nodes [0], NULL, "pipeline.sent.batched") >= 60);
    for (int i = 2; i >= 0; i--)
        mesh_node_destroy (&nodes [i]);
}

static size_t
s_entry (uint8_t *at, uint64_t id, uint16_t seq, uint16_t flags, uint32_t size)
{
    for (int i = 0; i < 8; i++)
        at [i] = (uint8_t) (id >> (8 * i));
    at [8] = (uint8_t) seq, at [9] = (uint8_t) (seq >> 8);
    at [10] = (uint8_t) flags, at [11] = (uint8_t) (flags >> 8);
    for (int i = 0; i < 4; i++)
        at [12 + i] = (uint8_t) (size >> (8 * i));
    memset (at + 16, '7', size);
    return 16 + size;
}

//  A malformed JOBS frame from a peer is counted and runs nothing, not
//  even the valid entries before the bad one; a valid one from the same
//  peer runs every job
static void
test_batch_malformed (void **state)
{
    (void) state;
    mesh_node_t *nodes [2] = { s_started ("raw"), s_started ("target") };
    s_meet (nodes, 2);
    mesh_pipeline_t *pl = mesh_pipeline_new (nodes [1]);
    s_worker_t w = { .answer = MESH_JOB_ACK };
    assert_int_equal (mesh_work (pl, "jobs.b", 100, s_on_job, &w), 0);
    const char *peer = mesh_node_id (nodes [1]);
    static uint8_t body [128];
    size_t good = s_entry (body, 1, 1, 0, 1);
    good += s_entry (body + good, 2, 1, 0, 1);
    struct { uint64_t count; const char *subject, *reply; size_t size; int patch; } bad [] = {
        { 3, "jobs.b", NULL, 0, 0 },            //  says 3 jobs, holds 2
        { 1, "jobs.b", NULL, 0, 0 },            //  says 1 job, bytes left after it
        { 0, "jobs.b", NULL, 0, 0 },            //  no jobs
        { 65, "jobs.b", NULL, 0, 0 },           //  more than a batch may hold
        { 2, "jobs.b", "not-hex", 0, 0 },       //  bad origin
        { 2, "bad..q", NULL, 0, 0 },            //  bad queue
        { 2, "jobs.b", NULL, 1, 0 },            //  truncated: second entry cut
        { 2, "jobs.b", NULL, 0, 1 },            //  second job id 0
        { 2, "jobs.b", NULL, 0, 2 },            //  second delivery 0
        { 2, "jobs.b", NULL, 0, 3 },            //  second delivery over 1000
        { 2, "jobs.b", NULL, 0, 4 },            //  unknown entry flag
        { 2, "jobs.b", NULL, 0, 5 },            //  second body length past the end
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        uint8_t frame [128];
        memcpy (frame, body, good);
        size_t second = 17;
        if (bad [i].patch == 1)
            memset (frame + second, 0, 8);
        if (bad [i].patch == 2)
            frame [second + 8] = 0;
        if (bad [i].patch == 3)
            frame [second + 8] = 0xE9, frame [second + 9] = 0x03;     //  1001
        if (bad [i].patch == 4)
            frame [second + 10] = 0x01;
        if (bad [i].patch == 5)
            frame [second + 12] = 2;
        size_t size = good - bad [i].size;
        mesh_head_t head = { .kind = MESH_KIND_PATTERN + 20, .id = 1, .seq = bad [i].count,
                             .subject = bad [i].subject, .reply = bad [i].reply };
        assert_int_equal (mesh_node_send (nodes [0], peer, &head, frame, size), 0);
    }
    s_pump (nodes, 2, 300);
    const char *raw = mesh_node_id (nodes [0]);
    assert_int_equal (mesh_node_counter (nodes [1], raw, "pipeline.malformed.jobs"),
                      sizeof bad / sizeof bad [0]);
    assert_int_equal (w.jobs, 0);
    //  the same frame, well formed: both jobs run, in order
    mesh_head_t head = { .kind = MESH_KIND_PATTERN + 20, .id = 1, .seq = 2, .subject = "jobs.b" };
    assert_int_equal (mesh_node_send (nodes [0], peer, &head, body, good), 0);
    assert_true (s_pump_until (nodes, 2, &w.jobs, 2));
    assert_int_equal (w.jobs, 2);
    assert_int_equal (w.last_id, 2);
    assert_int_equal (w.out_of_order, 0);
    assert_string_equal (w.last_producer, raw);
    //  the decoder alone, on the same table's edges
    pl_jobs_entry_t entries [PL_JOBS_JOBS];
    assert_int_equal (pl_jobs_decode (body, good, 2, entries, PL_JOBS_JOBS), 2);
    assert_int_equal (entries [1].id, 2);
    assert_int_equal (entries [1].size, 1);
    assert_int_equal (pl_jobs_decode (body, good - 1, 2, entries, PL_JOBS_JOBS), -1);
    assert_int_equal (pl_jobs_decode (body, good, 1, entries, PL_JOBS_JOBS), -1);
    assert_int_equal (pl_jobs_decode (body, good, 2, entries, 1), -1);
    assert_int_equal (pl_jobs_decode (NULL, 0, 1, entries, PL_JOBS_JOBS), -1);
    mesh_pipeline_destroy (&pl);
    mesh_node_destroy (&nodes [1]);
    mesh_node_destroy (&nodes [0]);
}

static char s_dir [64];

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static void
test_outbox_survives_restart (void **state)
{
    (void) state;
    snprintf (s_dir, sizeof s_dir, "/tmp/meshbus-pl-XXXXXX");
    assert_non_null (mkdtemp (s_dir));
    for (int mode = MESH_STORE_SYNC; mode <= MESH_STORE_GROUP; mode++) {
        mesh_node_t *nodes [2] = { s_started ("producer"), NULL };
        mesh_pipeline_t *producer = mesh_pipeline_new (nodes [0]);
        assert_int_equal (mesh_pipeline_set_outbox (producer, s_dir, mode), 0);
        for (int i = 0; i < 30; i++) {
            char body [16];
            snprintf (body, sizeof body, "%d", i);
            const char *headers [] = { "k", "v" };
            mesh_head_t head = { .subject = "jobs.durable", .ctype = "text/plain",
                                 .headers = headers, .header_count = 1 };
            assert_true (mesh_push_ex (producer, &head, body, strlen (body)) > 0);
        }
        assert_int_equal (mesh_pipeline_flush (producer), 0);
        assert_int_equal (mesh_pipeline_set_outbox (producer, s_dir, mode), -1);
        mesh_pipeline_destroy (&producer);
        mesh_node_destroy (&nodes [0]);

        nodes [0] = s_started ("producer-again");
        producer = mesh_pipeline_new (nodes [0]);
        assert_int_equal (mesh_pipeline_set_outbox (producer, s_dir, mode), 0);
        assert_int_equal (mesh_pipeline_pending (producer, "jobs.durable"), 30);
        assert_true (mesh_push (producer, "jobs.durable", "30", 2) > 30);
        nodes [1] = s_started ("worker");
        mesh_pipeline_t *worker = mesh_pipeline_new (nodes [1]);
        s_worker_t w = { .answer = MESH_JOB_ACK };
        assert_int_equal (mesh_work (worker, "jobs.durable", 4, s_on_job, &w), 0);
        s_meet (nodes, 2);
        assert_true (s_pump_until_acked (nodes, 2, producer));
        for (int i = 0; i <= 30; i++)
            assert_int_equal (w.seen [i], 1);
        mesh_pipeline_destroy (&worker);
        mesh_pipeline_destroy (&producer);
        mesh_node_destroy (&nodes [1]);
        mesh_node_destroy (&nodes [0]);

        //  all acked: nothing comes back
        nodes [0] = s_started ("producer-third");
        producer = mesh_pipeline_new (nodes [0]);
        assert_int_equal (mesh_pipeline_set_outbox (producer, s_dir, mode), 0);
        assert_int_equal (mesh_pipeline_pending (producer, NULL), 0);
        mesh_pipeline_destroy (&producer);
        mesh_node_destroy (&nodes [0]);
    }
    nftw (s_dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

//  10. Records read back from the outbox: a round trip, and a table of
//  damaged ones that must all be refused
static void
test_record_decoder (void **state)
{
    (void) state;
    const char *headers [] = { "key", "value", "k2", "" };
    pl_record_in_t in = { .type = PL_REC_JOB, .id = 7, .deliveries = 2, .time_ms = 99,
                          .queue = "jobs.a", .ctype = "text/plain",
                          .origin = "0123456789abcdef0123456789abcdef", .reason = "why",
                          .headers = headers, .header_count = 2, .body = "hello", .size = 5 };
    uint8_t buf [512];
    size_t size = pl_record_encode (&in, buf, sizeof buf);
    assert_true (size > PL_REC_HEAD);
    static pl_record_t rec;
    assert_true (pl_record_decode (buf, size, &rec));
    assert_int_equal (rec.id, 7);
    assert_int_equal (rec.deliveries, 2);
    assert_string_equal (rec.queue, "jobs.a");
    assert_string_equal (rec.ctype, "text/plain");
    assert_string_equal (rec.reason, "why");
    assert_int_equal (rec.header_count, 2);
    assert_string_equal (rec.headers [0], "key");
    assert_string_equal (rec.headers [3], "");
    assert_int_equal (rec.size, 5);
    assert_memory_equal (rec.body, "hello", 5);
    //  every truncation fails
    for (size_t cut = 0; cut < size; cut++)
        assert_false (pl_record_decode (buf, cut, &rec));
    //  damaged fields
    struct { size_t at; uint8_t value; } damage [] = {
        { 0, 'X' }, { 1, 2 }, { 2, 'Q' }, { 3, 1 },
        { 4, 0 },                   //  (with the rest of the id zero: id 0)
        { 16, 0 },                  //  queue length 0
        { 17, 1 },                  //  queue length 262
        { 18, 200 },                //  content type too long
        { 20, 31 },                 //  origin length not 0 or 32
        { 22, 33 },                 //  too many headers
        { 24, 255 }, { 25, 1 },     //  reason too long
        { 26, 1 },                  //  reserved not zero
        { 28, 6 },                  //  body length does not match
        { 31, 0x20 },               //  body over the limit
        { 40, '.' },                //  queue not a subject
    };
    for (size_t i = 0; i < sizeof damage / sizeof damage [0]; i++) {
        uint8_t copy [512];
        memcpy (copy, buf, size);
        copy [damage [i].at] = damage [i].value;
        if (damage [i].at == 4)
            memset (copy + 4, 0, 8);
        assert_false (pl_record_decode (copy, size, &rec));
    }
    uint8_t longer [513];
    memcpy (longer, buf, size);
    longer [size] = 0;
    assert_false (pl_record_decode (longer, size + 1, &rec));
    assert_false (pl_record_decode (NULL, 0, &rec));
    //  invalid inputs are refused by the encoder too
    in.queue = "";
    assert_int_equal (pl_record_size (&in), 0);
    in.queue = "q";
    in.origin = "short";
    assert_int_equal (pl_record_size (&in), 0);
    //  id lists
    assert_int_equal (pl_ids_count (buf, 16, 4), 2);
    assert_int_equal (pl_ids_count (buf, 15, 4), -1);
    assert_int_equal (pl_ids_count (buf, 40, 4), -1);
    assert_int_equal (pl_ids_count (buf, 0, 4), -1);
    pl_ids_put (buf, 1, 0x0102030405060708ull);
    assert_int_equal (pl_ids_at (buf, 1), 0x0102030405060708ull);
}

//  14. A job failed for good (handler returns MESH_JOB_DEAD, or a held job
//  finished with mesh_job_finish MESH_JOB_DEAD) is a dead letter at its
//  first delivery, whatever max_deliveries allows; a nack still retries
static void
test_dead_at_once (void **state)
{
    (void) state;
    mesh_node_t *nodes [2] = { s_started ("producer"), s_started ("worker") };
    s_meet (nodes, 2);
    mesh_pipeline_t *producer = mesh_pipeline_new (nodes [0]);
    mesh_pipeline_t *worker = mesh_pipeline_new (nodes [1]);
    mesh_queue_opts_t opts = { .max_deliveries = 5, .backoff_ms = 10 };
    assert_int_equal (mesh_pipeline_set_queue (producer, "jobs.bad", &opts), 0);
    assert_int_equal (mesh_pipeline_set_queue (producer, "jobs.held", &opts), 0);
    s_worker_t bad = { .answer = MESH_JOB_DEAD, .fail_first = 1 };
    s_worker_t held = { .answer = MESH_JOB_LATER };
    assert_int_equal (mesh_work (worker, "jobs.bad", 1, s_on_job, &bad), 0);
    assert_int_equal (mesh_work (worker, "jobs.held", 1, s_on_job, &held), 0);
    s_pump (nodes, 2, 100);

    //  nacked once (retried), then failed for good: 2 deliveries, not 5
    assert_true (mesh_push (producer, "jobs.bad", "7", 1) > 0);
    assert_true (s_pump_until_acked (nodes, 2, producer));
    assert_int_equal (bad.jobs, 2);
    s_pump (nodes, 2, 50);
    assert_int_equal (bad.jobs, 2);

    uint64_t id = mesh_push (producer, "jobs.held", "7", 1);
    long one = 1;
    assert_true (s_pump_until (nodes, 2, &held.jobs, one));
    assert_int_equal (mesh_job_finish (worker, held.last_producer, held.last_id, 42), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_job_finish (worker, held.last_producer, held.last_id,
                                       MESH_JOB_DEAD), 0);
    assert_int_equal (mesh_job_finish (worker, held.last_producer, held.last_id,
                                       MESH_JOB_ACK), -1);
    assert_true (s_pump_until_acked (nodes, 2, producer));
    assert_int_equal (held.jobs, 1);

    s_dead_seen_t seen = { 0 };
    assert_int_equal (mesh_dlq_list (producer, "jobs.held", s_on_dead_any, &seen), 1);
    assert_int_equal (seen.job_id, id);
    assert_int_equal (seen.seq, 1);
    assert_non_null (strstr (seen.reason, "rejected"));
    assert_int_equal (mesh_dlq_list (producer, "jobs.bad", NULL, NULL), 1);
    assert_int_equal (mesh_node_counter (nodes [0], mesh_node_id (nodes [1]),
                                         "pipeline.rejected"), 2);
    mesh_pipeline_destroy (&worker);
    mesh_pipeline_destroy (&producer);
    mesh_node_destroy (&nodes [1]);
    mesh_node_destroy (&nodes [0]);
}

int
main (void)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    srandom ((unsigned) getpid ());
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup (test_usage, s_setup),
        cmocka_unit_test_setup (test_bad_arguments, s_setup),
        cmocka_unit_test_setup (test_hold_then_late_worker, s_setup),
        cmocka_unit_test_setup (test_nack_redelivers_then_dead_letter, s_setup),
        cmocka_unit_test_setup (test_busy_worker_is_skipped, s_setup),
        cmocka_unit_test_setup (test_worker_exit_redelivers, s_setup),
        cmocka_unit_test_setup (test_duplicate_is_recognised, s_setup),
        cmocka_unit_test_setup (test_garbage_from_peers, s_setup),
        cmocka_unit_test_setup (test_batch_runs_each_once_in_order, s_setup),
        cmocka_unit_test_setup (test_batch_worker_leaves, s_setup),
        cmocka_unit_test_setup (test_batch_malformed, s_setup),
        cmocka_unit_test_setup (test_outbox_survives_restart, s_setup),
        cmocka_unit_test_setup (test_record_decoder, s_setup),
        cmocka_unit_test_setup (test_dead_at_once, s_setup),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
