/*  =========================================================================
    test_pipeline_scenarios - work queues across real processes

    Each test drives `meshbus push` and `meshbus work` processes on loopback
    and checks what a user of the pipeline relies on: no job lost when a
    worker is killed with -9 (repeated), none lost when a durable producer
    is killed with -9 and restarted on its outbox, fair dispatch with
    prefetch 1 (a slow worker gets little), a job that always fails ends in
    the dead letters after the maximum deliveries and can be replayed, a
    producer that cannot get its jobs done says so, and a worker restarted
    under the same id at once gets back the job its old self held.

    Bodies are job indices ("0", "1"... fed to `push QUEUE -` on stdin);
    a worker prints one line per job done (flushed before its ack), so the
    test tallies every index over all workers: each must be there at least
    once (at-least-once), and the extra ones are the duplicates, printed.

    Every test has its own cluster and beacon port (tests/scenario.h); every
    wait is functional (it bounds a failing test, it never claims a speed).
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <sys/stat.h>

#include "scenario.h"

#define WAIT_MS     30000       //  bounds a failing wait
#define FAST        "--beacon-ms", "100", "--suspect-ms", "200", "--gone-ms", "600"
#define MAX_JOBS    1000

//  A line that is a job index: its value, else -1
static long
s_index (const char *line)
{
    char *end;
    long index = strtol (line, &end, 10);
    return end != line && *end == 0 && index >= 0 && index < MAX_JOBS? index: -1;
}

static size_t
s_done (sc_proc_t *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nlines; i++)
        n += s_index (p->lines [i]) >= 0;
    return n;
}

//  Tally the indices the workers printed into seen[]; returns the lines
static size_t
s_tally (sc_proc_t **workers, int count, int *seen, long jobs)
{
    memset (seen, 0, (size_t) jobs * sizeof (int));
    size_t lines = 0;
    for (int w = 0; w < count; w++)
        for (size_t i = 0; workers [w] && i < workers [w]->nlines; i++) {
            long index = s_index (workers [w]->lines [i]);
            if (index >= 0 && index < jobs) {
                seen [index]++;
                lines++;
            }
        }
    return lines;
}

//  Every index at least once; returns how many are missing
static long
s_missing (const int *seen, long jobs)
{
    long missing = 0;
    for (long i = 0; i < jobs; i++)
        missing += seen [i] == 0;
    return missing;
}

static void
s_feed (sc_proc_t *p, long from, long to)
{
    char chunk [8192];
    size_t used = 0;
    for (long i = from; i < to; i++) {
        used += (size_t) snprintf (chunk + used, sizeof chunk - used, "%ld\n", i);
        if (used > sizeof chunk - 32) {
            sc_write_input (p, chunk, used);
            used = 0;
        }
    }
    sc_write_input (p, chunk, used);
}

static void
s_wait_done (sc_proc_t *p, size_t n)
{
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while (s_done (p) < n) {
        if (sc_now_ms () > deadline || (p->fd < 0 && sc_ended (p))) {
            sc_print_all ();
            fail_msg ("%s did %zu of %zu jobs", p->label, s_done (p), n);
        }
        sc_pump (20);
    }
}

static int
s_wait_exit_code (sc_proc_t *p, int timeout_ms)
{
    if (!sc_wait_exit (p, timeout_ms)) {
        sc_print_all ();
        fail_msg ("%s did not exit within %d ms", p->label, timeout_ms);
    }
    sc_pump_for (50);
    return sc_exit_code (p);
}

static bool
s_has_line (sc_proc_t *p, const char *prefix)
{
    return sc_count_prefix (p, 0, prefix) > 0;
}

//  ---------------------------------------------------------------------
//  1. kill -9 one of three workers mid-run, 10 times: no job is lost.
//  The ack timeout (120 s) is far above push's own timeout (30 s), so the
//  only way the killed worker's job can come back in time is the
//  producer seeing the worker gone: the test reads that counter
//  (pipeline.redelivered.worker-gone) from the producer, alive because its
//  stdin stays open until every job was done, and asserts it exactly.
//  The worker is stopped before it is killed, and the producer keeps
//  jobs waiting, so the killed worker holds exactly its prefetch (1).

#define KILL_REPS   10
#define KILL_JOBS   300

//  Poll the producer's counters until `name` >= at_least; its value
static uint64_t
s_counter_when (const char *node_id, const char *name, uint64_t at_least)
{
    const char *ids [] = { node_id, NULL };
    uint64_t value = 0;
    for (int attempt = 0; attempt < 40; attempt++) {
        char *json = sc_stats (ids, 3);
        assert_non_null (json);
        value = sc_peer_counter (json, node_id, name);
        free (json);
        if (value >= at_least)
            break;
        sc_pump_for (200);
    }
    return value;
}

static void
test_kill_worker_loses_nothing (void **state)
{
    (void) state;
    int seen [KILL_JOBS];
    size_t total_dups = 0;
    for (int rep = 0; rep < KILL_REPS; rep++) {
        sc_proc_t *workers [3];
        for (int w = 0; w < 3; w++) {
            char label [16];
            snprintf (label, sizeof label, "worker%d", w + 1);
            //  the first worker is slower, so jobs are still waiting
            //  when it is stopped
            workers [w] = sc_mesh (label, NULL, "work", "kill.jobs", "--prefetch", "1",
                                   "--delay-ms", w == 0? "2": "20", "--timeout", "90",
                                   FAST, NULL);
        }
        sc_pump_for (400);          //  the workers announce themselves
        char push_id [33];
        sc_random_id (push_id);
        sc_io_t io = { .stdin_pipe = true };
        sc_proc_t *push = sc_mesh ("push", &io, "push", "kill.jobs", "-", "--timeout", "30",
                                   "--ack-timeout", "120", "--id", push_id, FAST, NULL);
        s_feed (push, 0, KILL_JOBS);
        s_wait_done (workers [0], 20);
        //  stopped, it keeps the job it holds (or is sent one for the
        //  credit its last ack returned); killed, it says no BYE
        sc_signal (workers [0], SIGSTOP);
        sc_pump_for (100);
        sc_signal (workers [0], SIGKILL);
        uint64_t gone = s_counter_when (push_id, "pipeline.redelivered.worker-gone", 1);
        uint64_t timeout = s_counter_when (push_id, "pipeline.redelivered.timeout", 0);
        if (gone != 1 || timeout != 0) {
            sc_print_all ();
            fail_msg ("repetition %d: the producer counted %llu jobs redelivered for the "
                      "killed worker (1 held) and %llu for the ack timeout (120 s: none)",
                      rep + 1, (unsigned long long) gone, (unsigned long long) timeout);
        }
        sc_close_input (push);
        int rc = s_wait_exit_code (push, WAIT_MS);
        size_t lines = s_tally (workers, 3, seen, KILL_JOBS);
        long missing = s_missing (seen, KILL_JOBS);
        if (rc != 0 || missing) {
            sc_print_all ();
            fail_msg ("repetition %d: push exit %d, %ld of %d jobs never done", rep + 1, rc,
                      missing, KILL_JOBS);
        }
        total_dups += lines - KILL_JOBS;
        print_message ("repetition %d: %d jobs, 0 lost, %zu duplicates (worker1 killed after "
                       "%zu), 1 job redelivered as worker-gone\n", rep + 1, KILL_JOBS,
                       lines - KILL_JOBS, s_done (workers [0]));
        sc_proc_t *all [4] = { workers [0], workers [1], workers [2], push };
        sc_stop_all (all, 4);
        for (int i = 0; i < 4; i++)
            sc_release (all [i]);
    }
    print_message ("%d repetitions: 0 jobs lost, %zu duplicates in all\n", KILL_REPS, total_dups);
}

//  2. kill -9 a durable producer mid-run; restarted on its outbox it
//  delivers every job that was not acked (group commit, then sync)
#define DURABLE_JOBS 200

static void
s_durable_restart (bool sync)
{
    const char *dir = sc_tmpdir ();
    sc_proc_t *worker = sc_mesh ("worker", NULL, "work", "durable.jobs", "--prefetch", "1",
                                 "--delay-ms", "5", "--timeout", "60", FAST, NULL);
    sc_pump_for (300);
    sc_io_t io = { .stdin_pipe = true };
    sc_proc_t *push = sync
        ? sc_mesh ("push", &io, "push", "durable.jobs", "-", "--durable", dir, "--sync",
                   "--timeout", "30", FAST, NULL)
        : sc_mesh ("push", &io, "push", "durable.jobs", "-", "--durable", dir,
                   "--timeout", "30", FAST, NULL);
    s_feed (push, 0, DURABLE_JOBS);
    sc_close_input (push);
    char committed [64];
    snprintf (committed, sizeof committed, "committed %d jobs", DURABLE_JOBS);
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while (!s_has_line (push, committed) && sc_now_ms () < deadline)
        sc_pump (20);
    if (!s_has_line (push, committed)) {
        sc_print_all ();
        fail_msg ("the producer did not commit its jobs");
    }
    s_wait_done (worker, 20);
    sc_signal (push, SIGKILL);
    assert_true (sc_wait_exit (push, WAIT_MS));
    size_t before = s_done (worker);
    assert_true (before < DURABLE_JOBS);        //  killed mid-run, really

    sc_proc_t *again = sc_mesh ("push again", NULL, "push", "durable.jobs", "--count", "0",
                                "--durable", dir, "--timeout", "30", FAST, NULL);
    int rc = s_wait_exit_code (again, WAIT_MS);
    int seen [DURABLE_JOBS];
    sc_proc_t *workers [1] = { worker };
    sc_pump_for (100);
    size_t lines = s_tally (workers, 1, seen, DURABLE_JOBS);
    long missing = s_missing (seen, DURABLE_JOBS);
    if (rc != 0 || missing || !s_has_line (again, "recovered")
    ||  s_has_line (again, "jobs not acked")) {
        sc_print_all ();
        fail_msg ("restart: exit %d, %ld jobs never done", rc, missing);
    }
    print_message ("%s: producer killed after %zu jobs done, restarted: 0 lost, %zu "
                   "duplicates\n", sync? "sync per job": "group commit", before,
                   lines - DURABLE_JOBS);
}

static void
test_kill_durable_producer_group (void **state)
{
    (void) state;
    s_durable_restart (false);
}

static void
test_kill_durable_producer_sync (void **state)
{
    (void) state;
    s_durable_restart (true);
}

//  3. Fair dispatch, prefetch 1: a worker taking 100 ms per job and a fast
//  one; the fast one does at least 90 % of the jobs
#define FAIR_JOBS 200

static void
test_fair_dispatch (void **state)
{
    (void) state;
    sc_proc_t *slow = sc_mesh ("slow", NULL, "work", "fair.jobs", "--prefetch", "1",
                               "--delay-ms", "100", "--timeout", "60", FAST, NULL);
    sc_proc_t *fast = sc_mesh ("fast", NULL, "work", "fair.jobs", "--prefetch", "1",
                               "--timeout", "60", FAST, NULL);
    sc_pump_for (400);
    sc_io_t io = { .stdin_pipe = true };
    sc_proc_t *push = sc_mesh ("push", &io, "push", "fair.jobs", "-", "--timeout", "30",
                               FAST, NULL);
    s_feed (push, 0, FAIR_JOBS);
    sc_close_input (push);
    assert_int_equal (s_wait_exit_code (push, WAIT_MS), 0);
    sc_pump_for (200);
    int seen [FAIR_JOBS];
    sc_proc_t *workers [2] = { slow, fast };
    s_tally (workers, 2, seen, FAIR_JOBS);
    assert_int_equal (s_missing (seen, FAIR_JOBS), 0);
    size_t by_fast = s_done (fast), by_slow = s_done (slow);
    print_message ("fast worker %zu jobs, slow worker (100 ms each) %zu jobs\n", by_fast, by_slow);
    assert_true (by_fast * 10 >= FAIR_JOBS * 9);
}

//  4. A job that always fails reaches the dead letters after the maximum
//  deliveries; it is listed, and replayed once a worker can do it
static void
test_dead_letters_and_replay (void **state)
{
    (void) state;
    const char *dir = sc_tmpdir ();
    sc_proc_t *picky = sc_mesh ("picky", NULL, "work", "dlq.jobs", "--exec",
                                "read line; [ \"$line\" != poison ] && echo \"$line\"",
                                "--timeout", "60", FAST, NULL);
    sc_pump_for (300);
    sc_io_t io = { .stdin_pipe = true };
    sc_proc_t *push = sc_mesh ("push", &io, "push", "dlq.jobs", "-", "--durable", dir,
                               "--max-deliveries", "3", "--backoff-ms", "20", "--timeout", "30",
                               FAST, NULL);
    sc_printf_input (push, "1\npoison\n2\n");
    sc_close_input (push);
    assert_int_equal (s_wait_exit_code (push, WAIT_MS), 1);     //  one job is dead
    assert_true (s_has_line (push, "DEAD_LETTER dlq.jobs"));
    assert_true (s_has_line (push, "meshbus: 1 jobs reached the dead letters"));
    assert_int_equal (sc_count_prefix (picky, 0, "NACK"), 3);   //  three deliveries
    sc_signal (picky, SIGTERM);
    assert_true (sc_wait_exit (picky, WAIT_MS));

    char *list [] = { (char *) sc_tool (), "dlq", "list", "dlq.jobs", "--durable", (char *) dir,
                      NULL };
    sc_proc_t *listed = sc_run ("dlq list", NULL, list, WAIT_MS);
    assert_int_equal (sc_exit_code (listed), 0);
    assert_int_equal (sc_count_prefix (listed, 0, ""), 2);      //  the record and a summary
    bool found = false;
    for (size_t i = 0; i < listed->nlines; i++)
        found |= strstr (listed->lines [i], "\t3\tnack") && strstr (listed->lines [i], "\tpoison");
    if (!found)
        sc_print_all ();
    assert_true (found);
    sc_release (listed);

    sc_proc_t *easy = sc_mesh ("easy", NULL, "work", "dlq.jobs", "--timeout", "60", FAST, NULL);
    sc_pump_for (300);
    sc_proc_t *replay = sc_mesh ("replay", NULL, "dlq", "replay", "dlq.jobs", "--durable", dir,
                                 "--timeout", "20", FAST, NULL);
    assert_int_equal (s_wait_exit_code (replay, WAIT_MS), 0);
    assert_true (s_has_line (replay, "replayed 1 dead letters"));
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while (sc_count_prefix (easy, 0, "poison") < 1 && sc_now_ms () < deadline)
        sc_pump (50);
    assert_int_equal (sc_count_prefix (easy, 0, "poison"), 1);
    sc_proc_t *again = sc_run ("dlq list", NULL, list, WAIT_MS);
    assert_true (s_has_line (again, "0 dead letters"));
    sc_release (again);
}

//  5. Without a worker, a memory-only producer says at its timeout how
//  many jobs remain, and fails
static void
test_push_without_worker_says_what_remains (void **state)
{
    (void) state;
    sc_proc_t *push = sc_mesh ("push", NULL, "push", "nobody.works", "job", "--count", "5",
                               "--timeout", "1", FAST, NULL);
    assert_int_equal (s_wait_exit_code (push, WAIT_MS), 1);
    assert_true (s_has_line (push, "meshbus: 5 of 5 jobs not acked before the timeout"));
    char *bad [] = { (char *) sc_tool (), "push", "bad..queue", "x", NULL };
    sc_proc_t *p = sc_run ("bad", NULL, bad, WAIT_MS);
    assert_int_equal (sc_exit_code (p), 2);         //  a usage error
    assert_true (s_has_line (p, "meshbus push: the queue name 'bad..queue' has an empty token"));
    sc_release (p);
}

//  6. A worker killed with -9 and restarted at once under the same id (a
//  new incarnation) gets the job its old self held, long before the ack
//  timeout: the producer sees the restart, not just silence
static void
test_restarted_worker_gets_its_job_back (void **state)
{
    (void) state;
    char id [33];
    sc_random_id (id);
    sc_proc_t *old = sc_mesh ("old", NULL, "work", "restart.jobs", "--id", id, "--prefetch", "1",
                              "--delay-ms", "5000", "--timeout", "60", FAST, NULL);
    sc_pump_for (400);
    sc_proc_t *push = sc_mesh ("push", NULL, "push", "restart.jobs", "7", "--timeout", "20",
                               "--ack-timeout", "60", FAST, NULL);
    sc_pump_for (800);              //  the old worker is inside its 5 s job
    assert_int_equal (s_done (old), 0);
    sc_signal (old, SIGKILL);
    assert_true (sc_wait_exit (old, WAIT_MS));
    sc_proc_t *again = sc_mesh ("again", NULL, "work", "restart.jobs", "--id", id,
                                "--prefetch", "1", "--count", "1", "--timeout", "30", FAST, NULL);
    assert_int_equal (s_wait_exit_code (push, WAIT_MS), 0);
    assert_int_equal (s_wait_exit_code (again, WAIT_MS), 0);
    assert_int_equal (s_done (again), 1);
}

int
main (void)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_kill_worker_loses_nothing, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_kill_durable_producer_group, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_kill_durable_producer_sync, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_fair_dispatch, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_dead_letters_and_replay, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_push_without_worker_says_what_remains,
                                         sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_restarted_worker_gets_its_job_back,
                                         sc_setup, sc_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
