/*  =========================================================================
    test_pause_scenarios - a peer paused past the gone timeout is usable again

    A GC pause, SIGSTOP or a frozen VM makes a peer silent; past the gone
    timeout the others declare it gone (EXIT) and forget what it announced.
    When it resumes, they meet it again, and every pattern must rebuild its
    state on both sides: a worker gets jobs again, a subscriber messages, a
    provider calls. Issue 19 (F1) found a worker that stayed ALIVE but
    useless for good: the side that had dropped it linked again, and the
    worker, which had never seen anything happen, answered that HELLO
    without its announcements.

    Each test pauses one process with SIGSTOP, waits until the long-lived
    peer has logged its EXIT (so the pause is past gone, whatever the
    machine's speed), resumes it with SIGCONT and waits, bounded, for the
    pattern to work again. Every wait is functional: it bounds a failing
    test and claims nothing about speed.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "scenario.h"
#include "meshbus.h"

#define WAIT_MS     30000       //  bounds a failing wait
#define FAST        "--beacon-ms", "200", "--suspect-ms", "300", "--gone-ms", "1200"
#define JOBS        200
//  how long a paused peer stays paused after the other side saw it go:
//  long enough for that side to have dropped its link and looked for it
//  again, the case of issue 19 (a pause of 10 s against a gone of 3 s)
#define PAUSED_MORE_MS  5000

//  The first line at or after from that contains text; -1 after timeout_ms
static long
s_wait_line (sc_proc_t *p, size_t from, const char *text, int timeout_ms)
{
    int64_t deadline = sc_now_ms () + timeout_ms;
    while (true) {
        sc_read (p);
        for (size_t i = from; i < p->nlines; i++)
            if (strstr (p->lines [i], text))
                return (long) i;
        int64_t left = deadline - sc_now_ms ();
        if (left <= 0 || (p->fd < 0 && sc_ended (p)))
            return -1;
        sc_pump (left < 50? (int) left: 50);
    }
}

//  Lines of p that are a job's body: a decimal number 1..JOBS; each
//  number seen is marked in seen
static size_t
s_job_lines (sc_proc_t *p, bool *seen)
{
    size_t count = 0;
    for (size_t i = 0; i < p->nlines; i++) {
        char *end;
        long n = strtol (p->lines [i], &end, 10);
        if (*end || end == p->lines [i] || n < 1 || n > JOBS)
            continue;
        seen [n] = true;
        count++;
    }
    return count;
}

//  1. A worker paused past gone gets jobs again: one worker, 200 jobs of
//  50 ms, paused after 20; push must end with every job acked (before
//  the fix: 150+ jobs never sent again, push timed out)
static void
test_paused_worker_works_again (void **state)
{
    (void) state;
    sc_proc_t *worker = sc_mesh ("worker", NULL, "work", "pause.q", "--delay-ms", "50",
                                 "--name", "w1", "--quiet", FAST, NULL);
    sc_io_t in = { .stdin_pipe = true };
    //  the push's bound only ends a failing run: 10 s of work and the
    //  pause fit in it many times over, on a loaded machine too
    sc_proc_t *push = sc_mesh ("push", &in, "push", "pause.q", "-", "--timeout", "60",
                               "--name", "p1", "--verbose", "--quiet", FAST, NULL);
    for (int i = 1; i <= JOBS; i++)
        sc_printf_input (push, "%d\n", i);
    sc_close_input (push);
    //  20 jobs done, then the pause
    bool seen [JOBS + 1] = { false };
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while (s_job_lines (worker, seen) < 20 && sc_now_ms () < deadline)
        sc_pump (20);
    assert_true (s_job_lines (worker, seen) >= 20);
    sc_signal (worker, SIGSTOP);
    size_t mark = push->nlines;
    if (s_wait_line (push, mark, "EXIT w1", WAIT_MS) < 0) {
        sc_signal (worker, SIGCONT);
        sc_print_all ();
        fail_msg ("the producer never saw the paused worker go");
    }
    sc_pump_for (PAUSED_MORE_MS);
    sc_signal (worker, SIGCONT);
    assert_true (sc_wait_exit (push, 60000 + WAIT_MS));
    if (sc_exit_code (push) != 0)
        sc_print_all ();
    assert_int_equal (sc_exit_code (push), 0);
    //  every job ran (at least once) on the one worker there is
    memset (seen, 0, sizeof seen);
    sc_pump_for (200);
    s_job_lines (worker, seen);
    for (int i = 1; i <= JOBS; i++)
        if (!seen [i])
            fail_msg ("job %d never ran", i);
}

//  2. A subscriber paused past gone hears the publisher again: the
//  publisher (one process, lines from its stdin) goes on publishing
//  after the subscriber resumed, and the subscriber prints them
static void
test_paused_subscriber_hears_again (void **state)
{
    (void) state;
    sc_proc_t *sub = sc_mesh ("sub", NULL, "sub", "pause.news", "--name", "s1", FAST, NULL);
    sc_io_t in = { .stdin_pipe = true };
    sc_proc_t *pub = sc_mesh ("pub", &in, "pub", "pause.news", "-", "--wait-subscribers", "1",
                              "--timeout", "20", "--name", "p1", "--verbose", FAST, NULL);
    sc_printf_input (pub, "before\n");
    assert_true (s_wait_line (sub, 0, "before", WAIT_MS) >= 0);
    sc_signal (sub, SIGSTOP);
    if (s_wait_line (pub, 0, "EXIT s1", WAIT_MS) < 0) {
        sc_signal (sub, SIGCONT);
        sc_print_all ();
        fail_msg ("the publisher never saw the paused subscriber go");
    }
    sc_pump_for (PAUSED_MORE_MS);
    sc_signal (sub, SIGCONT);
    //  one message every 100 ms until one reaches the subscriber (bounded)
    long at = -1;
    for (int i = 0; i < WAIT_MS / 100 && at < 0; i++) {
        sc_printf_input (pub, "after %d\n", i);
        at = s_wait_line (sub, 0, "after", 100);
    }
    if (at < 0)
        sc_print_all ();
    assert_true (at >= 0);
    sc_close_input (pub);
    assert_true (sc_wait_exit (pub, WAIT_MS));
    assert_int_equal (sc_exit_code (pub), 0);
}

//  3. A provider paused past gone answers calls again: this test is the
//  caller (a long-lived node linked in); it sees the provider go, then
//  must see it offer the service again and get a reply from it
static void
test_paused_provider_answers_again (void **state)
{
    (void) state;
    sc_proc_t *server = sc_mesh ("server", NULL, "serve", "pause.svc", "--echo",
                                 "--name", "srv", FAST, NULL);
    mesh_node_t *node = mesh_node_new ("caller");
    assert_int_equal (mesh_node_set_cluster (node, sc.cluster), 0);
    assert_int_equal (mesh_node_set_beacon_port (node, sc.port_num), 0);
    assert_int_equal (mesh_node_set_beacon_interval (node, 200), 0);
    assert_int_equal (mesh_node_set_timeouts (node, 300, 1200), 0);
    sc_secure_node (node);
    assert_int_equal (mesh_node_start (node), 0);
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    if (mesh_reqrep_wait_providers (rr, "pause.svc", 1, WAIT_MS))
        sc_print_all ();
    assert_int_equal (mesh_reqrep_providers (rr, "pause.svc"), 1);
    mesh_call_opts_t opts = { .timeout_ms = 10000 };
    mesh_msg_t *reply = mesh_call (rr, "pause.svc", "one", 3, &opts);
    assert_non_null (reply);
    mesh_msg_destroy (&reply);

    sc_signal (server, SIGSTOP);
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while (mesh_reqrep_providers (rr, "pause.svc") > 0 && sc_now_ms () < deadline) {
        mesh_node_dispatch (node, 50);
        mesh_event_t *event;
        while ((event = mesh_node_event (node)))
            mesh_event_destroy (&event);
    }
    deadline = sc_now_ms () + PAUSED_MORE_MS;
    while (sc_now_ms () < deadline)
        mesh_node_dispatch (node, 50);
    sc_signal (server, SIGCONT);
    assert_int_equal (mesh_reqrep_providers (rr, "pause.svc"), 0);
    if (mesh_reqrep_wait_providers (rr, "pause.svc", 1, WAIT_MS))
        sc_print_all ();
    assert_int_equal (mesh_reqrep_providers (rr, "pause.svc"), 1);
    reply = mesh_call (rr, "pause.svc", "two", 3, &opts);
    if (!reply)
        print_error ("call after the pause: %s\n", mesh_last_error ());
    assert_non_null (reply);
    assert_int_equal (mesh_msg_size (reply), 3);
    assert_memory_equal (mesh_msg_body (reply), "two", 3);
    mesh_msg_destroy (&reply);
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_paused_worker_works_again, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_paused_subscriber_hears_again, sc_setup,
                                         sc_teardown),
        cmocka_unit_test_setup_teardown (test_paused_provider_answers_again, sc_setup,
                                         sc_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
