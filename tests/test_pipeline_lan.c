/*  =========================================================================
    test_pipeline_lan - a work queue across hosts of an emulated LAN, with a cut

    Four "hosts" (network namespaces on one bridge, tests/lab/lab.sh): a
    producer on h1 pushes numbered jobs (900, from its stdin), workers on
    h2, h3 and h4 take them over TCP on eth0 with prefetch 1, each job
    costing 10 ms. h3 is cut off the switch for 2 s while the jobs flow,
    then its port comes back. Liveness is set so that the cut is longer
    than gone-ms (1 s): the producer sees h3 EXIT and gives the job h3 held
    to another worker; after the heal h3 joins again and takes jobs again.

    What must hold: the producer exits 0 (every job acked), and every job
    index was printed by some worker at least once: 0 lost. Duplicates
    (a job h3 finished while cut, done again elsewhere) are counted and
    printed, and bounded by what was in flight at h3 (prefetch 1: a few).

    Needs root and `ip netns`; otherwise the test prints why and
    is skipped. The LAN has a prefix of its own (LAB_PREFIX); the teardown
    ends our processes by pid, then takes the LAN down.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "scenario.h"

#define HOSTS       4
#define JOBS        900
#define CUT_AFTER   40          //  h3 did this many jobs when it is cut
#define CUT_MS      2000        //  how long h3 stays cut (the scenario, not a timeout)
#define WAIT_MS     60000       //  bounds a failing wait
#define LIVENESS    "--suspect-ms", "300", "--gone-ms", "1000"

static int
s_setup (void **state)
{
    sc_setup (state);
    sc_lan_init ("pl");
    return 0;
}

static int
s_teardown (void **state)
{
    sc_teardown (state);        //  our processes first, by pid
    sc_lan_down ();
    return 0;
}

static long
s_index (const char *line)
{
    char *end;
    long index = strtol (line, &end, 10);
    return end != line && *end == 0 && index >= 0 && index < JOBS? index: -1;
}

static size_t
s_done (sc_proc_t *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nlines; i++)
        n += s_index (p->lines [i]) >= 0;
    return n;
}

static void
test_worker_host_cut_and_healed_loses_nothing (void **state)
{
    (void) state;
    sc_lan_or_skip (HOSTS);
    sc_proc_t *workers [HOSTS + 1] = { NULL };
    for (int h = 2; h <= HOSTS; h++) {
        char label [16];
        snprintf (label, sizeof label, "h%d work", h);
        workers [h] = sc_lan_mesh (h, label, NULL, "work", "lan.jobs", "--prefetch", "1",
                                   "--delay-ms", "10", "--timeout", "120", LIVENESS, NULL);
    }
    sc_pump_for (1500);             //  the workers announce themselves
    sc_io_t io = { .stdin_pipe = true };
    sc_proc_t *push = sc_lan_mesh (1, "h1 push", &io, "push", "lan.jobs", "-",
                                   "--timeout", "50", LIVENESS, NULL);
    char *input = (char *) malloc (JOBS * 8), *at = input;
    for (int i = 0; i < JOBS; i++)
        at += sprintf (at, "%d\n", i);
    sc_write_input (push, input, (size_t) (at - input));
    sc_close_input (push);
    free (input);

    int64_t deadline = sc_now_ms () + WAIT_MS;
    while (s_done (workers [3]) < CUT_AFTER && sc_now_ms () < deadline)
        sc_pump (20);
    if (s_done (workers [3]) < CUT_AFTER) {
        sc_print_all ();
        fail_msg ("h3 did %zu jobs, not %d", s_done (workers [3]), CUT_AFTER);
    }
    assert_int_equal (sc_lan_cmd ("cut", "h3", NULL), 0);
    size_t at_cut = s_done (workers [3]);
    sc_pump_for (CUT_MS);
    assert_int_equal (sc_lan_cmd ("heal", "h3", NULL), 0);

    if (!sc_wait_exit (push, WAIT_MS)) {
        sc_print_all ();
        fail_msg ("the producer did not finish");
    }
    sc_pump_for (300);
    int rc = sc_exit_code (push);
    int *seen = (int *) calloc (JOBS, sizeof (int));
    size_t lines = 0;
    for (int h = 2; h <= HOSTS; h++)
        for (size_t i = 0; i < workers [h]->nlines; i++) {
            long index = s_index (workers [h]->lines [i]);
            if (index >= 0) {
                seen [index]++;
                lines++;
            }
        }
    long missing = 0;
    for (int i = 0; i < JOBS; i++)
        missing += seen [i] == 0;
    print_message ("h2 %zu, h3 %zu (%zu before the cut), h4 %zu jobs; 0 lost expected, %ld "
                   "missing; %zu duplicates\n", s_done (workers [2]), s_done (workers [3]),
                   at_cut, s_done (workers [4]), missing, lines - (JOBS - (size_t) missing));
    if (rc != 0 || missing) {
        sc_print_all ();
        fail_msg ("producer exit %d, %ld jobs never done", rc, missing);
    }
    free (seen);
}

int
main (void)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_worker_host_cut_and_healed_loses_nothing,
                                         s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
