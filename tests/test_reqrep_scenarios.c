/*  =========================================================================
    test_reqrep_scenarios - request-reply across processes

    Servers are `meshbus serve` processes; callers are `meshbus call`
    processes, or this test itself (a node linked in) where it must count
    what a thousand asynchronous calls did. Each test has a cluster and a
    beacon port of its own (scenario.h) and a temporary directory for the
    side effects of --exec commands, which append a line per run to a file:
    counting lines is counting executions.

    Once-only under kill -9: two providers run "note that I started; sleep;
    append the side effect; reply". The test waits until the chosen
    provider has started, kills its whole process group (the command dies
    with it, before its side effect), and the call must still succeed
    through the other provider within its deadline, with exactly one side
    effect. That is the guarantee meshbus can give: a provider that died
    after doing the work but before replying would make the retry run it a
    second time elsewhere (docs/reqrep.md says so).

    Every wait is functional (it bounds a failing test); the only timing
    claims are orderings: a call with a 1 s deadline ends before a 6 s
    handler could have answered it.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <sys/stat.h>
#include "scenario.h"
#include "meshbus.h"

#define WAIT_MS     30000       //  bounds a failing wait
#define FAST        "--beacon-ms", "200"
#define ASYNC_CALLS 1000
#define PROVIDERS   3

//  Lines in a file of the test's directory (0 if it does not exist);
//  the first line into first (may be NULL)
static int
s_lines (const char *name, char *first, size_t size)
{
    char path [128], line [256];
    snprintf (path, sizeof path, "%s/%s", sc_tmpdir (), name);
    FILE *file = fopen (path, "r");
    if (first)
        *first = 0;
    if (!file)
        return 0;
    int n = 0;
    while (fgets (line, sizeof line, file)) {
        if (n == 0 && first)
            snprintf (first, size, "%.*s", (int) strcspn (line, "\n"), line);
        n++;
    }
    fclose (file);
    return n;
}

static bool
s_has_line (sc_proc_t *p, const char *text)
{
    for (size_t i = 0; i < p->nlines; i++)
        if (strstr (p->lines [i], text))
            return true;
    return false;
}

//  1. Echo: a fresh `meshbus call` finds a server started by another
//  process and prints the reply
static void
test_echo (void **state)
{
    (void) state;
    sc_mesh ("server", NULL, "serve", "echo.svc", "--echo", "--name", "srv", FAST, NULL);
    //  the first call waits for the server to be up
    sc_proc_t *call = sc_mesh ("call 1", NULL, "call", "echo.svc", "hello", "--wait",
                               "--timeout", "20", FAST, NULL);
    assert_true (sc_wait_exit (call, WAIT_MS));
    if (sc_exit_code (call) != 0)
        sc_print_all ();
    assert_int_equal (sc_exit_code (call), 0);
    assert_true (s_has_line (call, "hello"));
    sc_release (call);
    //  a fresh process without --wait finds it through the settle time
    call = sc_mesh ("call 2", NULL, "call", "echo.svc", "again", FAST, NULL);
    assert_true (sc_wait_exit (call, WAIT_MS));
    if (sc_exit_code (call) != 0)
        sc_print_all ();
    assert_int_equal (sc_exit_code (call), 0);
    assert_string_equal (call->lines [0], "again");
    sc_release (call);
}

//  2. No responders: fails at once (well inside its 60 s deadline) with a
//  one-line reason and a non-zero exit
static void
test_no_responders (void **state)
{
    (void) state;
    int64_t start = sc_now_ms ();
    sc_proc_t *call = sc_mesh ("call", NULL, "call", "nobody.here", "x", "--timeout", "60",
                               NULL);
    assert_true (sc_wait_exit (call, WAIT_MS));
    assert_true (sc_now_ms () - start < WAIT_MS);
    assert_int_equal (sc_exit_code (call), 1);      //  the job failed (2 is a usage error)
    assert_int_equal (call->nlines, 1);
    assert_non_null (strstr (call->lines [0], "no responders"));
    sc_release (call);
}

//  3. Deadlines: a call with a 1 s deadline to a handler that takes 6 s
//  ends with "timeout" before the handler could answer; a handler's
//  failure comes back as the remote error text
static void
test_deadline_and_remote_error (void **state)
{
    (void) state;
    sc_mesh ("slow", NULL, "serve", "slow.svc", "--exec", "sleep 6; echo late", FAST, NULL);
    sc_mesh ("bad", NULL, "serve", "bad.svc", "--exec", "exit 7", FAST, NULL);
    sc_proc_t *call = sc_mesh ("call bad", NULL, "call", "bad.svc", "x", "--wait",
                               "--timeout", "20", FAST, NULL);
    assert_true (sc_wait_exit (call, WAIT_MS));
    assert_int_equal (sc_exit_code (call), 1);
    assert_non_null (strstr (call->lines [0], "remote error: the command exited with status 7"));
    sc_release (call);
    sc_proc_t *peers = sc_mesh ("peers", NULL, "peers", "--expect", "2", "--timeout", "20",
                                FAST, NULL);
    assert_true (sc_wait_exit (peers, WAIT_MS));
    assert_int_equal (sc_exit_code (peers), 0);
    sc_release (peers);
    int64_t start = sc_now_ms ();
    call = sc_mesh ("call slow", NULL, "call", "slow.svc", "x", "--timeout", "1", "--wait",
                    FAST, NULL);
    assert_true (sc_wait_exit (call, WAIT_MS));
    int64_t took = sc_now_ms () - start;
    if (sc_exit_code (call) != 1)
        sc_print_all ();
    assert_int_equal (sc_exit_code (call), 1);
    assert_non_null (strstr (call->lines [0], "timeout"));
    assert_true (took < 6000);
    sc_release (call);
}

//  4. kill -9 of the chosen provider during a call: the call succeeds
//  through the other provider within its deadline; the side effect
//  happens once
static void
test_kill9_failover_runs_once (void **state)
{
    (void) state;
    char cmd [2][512];
    sc_proc_t *server [2];
    for (int i = 0; i < 2; i++) {
        snprintf (cmd [i], sizeof cmd [i],
                  "echo $$ > %s/pid-%c; echo %c >> %s/started; sleep 3; echo %c >> %s/effects; "
                  "echo done-by-%c", sc_tmpdir (), 'A' + i,
                  'A' + i, sc_tmpdir (), 'A' + i, sc_tmpdir (), 'A' + i);
        char name [8];
        snprintf (name, sizeof name, "p%c", 'A' + i);
        server [i] = sc_mesh (name, NULL, "serve", "work.svc", "--exec", cmd [i], "--name", name,
                              FAST, "--suspect-ms", "500", "--gone-ms", "1500", NULL);
    }
    //  both providers known: a call-all that gets two answers
    //  would run the command; wait for discovery with peers instead
    sc_proc_t *peers = sc_mesh ("peers", NULL, "peers", "--expect", "2", "--timeout", "20",
                                FAST, NULL);
    assert_true (sc_wait_exit (peers, WAIT_MS));
    assert_int_equal (sc_exit_code (peers), 0);
    sc_release (peers);
    sc_proc_t *call = sc_mesh ("call", NULL, "call", "work.svc", "job-1", "--timeout", "25",
                               FAST, "--suspect-ms", "500", "--gone-ms", "1500", NULL);
    char first [16];
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while (s_lines ("started", first, sizeof first) == 0 && sc_now_ms () < deadline)
        sc_pump (20);
    assert_int_equal (s_lines ("started", first, sizeof first), 1);
    int chosen = first [0] - 'A';
    assert_true (chosen == 0 || chosen == 1);
    //  the provider and its running command die before the side effect
    //  (the command runs in a process group of its own, so that a
    //  deadline kills what it started: both groups are killed here)
    char path [512], text [32] = "";
    snprintf (path, sizeof path, "%s/pid-%c", sc_tmpdir (), first [0]);
    deadline = sc_now_ms () + WAIT_MS;
    FILE *file = NULL;
    while (sc_now_ms () < deadline
       && (!(file = fopen (path, "r")) || !fgets (text, sizeof text, file) || !atoi (text))) {
        if (file)
            fclose (file);
        file = NULL;
        sc_pump (20);
    }
    assert_non_null (file);
    fclose (file);
    assert_int_equal (kill (-server [chosen]->pid, SIGKILL), 0);
    assert_int_equal (kill (-atoi (text), SIGKILL), 0);
    assert_true (sc_wait_exit (server [chosen], WAIT_MS));
    assert_true (sc_wait_exit (call, WAIT_MS));
    if (sc_exit_code (call) != 0)
        sc_print_all ();
    assert_int_equal (sc_exit_code (call), 0);
    char expect [16];
    snprintf (expect, sizeof expect, "done-by-%c", 'A' + (1 - chosen));
    assert_true (s_has_line (call, expect));
    assert_int_equal (s_lines ("started", NULL, 0), 2);
    assert_int_equal (s_lines ("effects", first, sizeof first), 1);
    assert_int_equal (first [0], 'A' + (1 - chosen));
}

//  5. 1000 concurrent asynchronous calls over 3 providers are spread about
//  evenly, and every one is answered
typedef struct {
    int outcomes, failures;
    char ids [PROVIDERS][33];
    int per [PROVIDERS];
    int known;
} spread_t;

static void
s_on_outcome (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
              const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) call_id; (void) error;
    spread_t *spread = (spread_t *) arg;
    spread->outcomes++;
    if (err || !reply) {
        spread->failures++;
        return;
    }
    const char *sender = mesh_msg_sender (reply);
    for (int i = 0; i < spread->known; i++)
        if (strcmp (spread->ids [i], sender) == 0) {
            spread->per [i]++;
            return;
        }
    if (spread->known < PROVIDERS) {
        snprintf (spread->ids [spread->known], 33, "%s", sender);
        spread->per [spread->known++]++;
    }
    else
        spread->failures++;
}

static void
test_async_calls_spread_evenly (void **state)
{
    (void) state;
    for (int i = 0; i < PROVIDERS; i++) {
        char name [8];
        snprintf (name, sizeof name, "s%d", i + 1);
        sc_mesh (name, NULL, "serve", "spread.svc", "--echo", "--name", name, FAST, NULL);
    }
    mesh_node_t *node = mesh_node_new ("caller");
    assert_int_equal (mesh_node_set_cluster (node, sc.cluster), 0);
    assert_int_equal (mesh_node_set_beacon_port (node, sc.port_num), 0);
    assert_int_equal (mesh_node_set_beacon_interval (node, 200), 0);
    sc_secure_node (node);
    assert_int_equal (mesh_node_start (node), 0);
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    if (mesh_reqrep_wait_providers (rr, "spread.svc", PROVIDERS, WAIT_MS))
        sc_print_all ();
    assert_int_equal (mesh_reqrep_providers (rr, "spread.svc"), PROVIDERS);
    spread_t spread = { 0 };
    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS };
    for (int i = 0; i < ASYNC_CALLS; i++) {
        char body [16];
        snprintf (body, sizeof body, "call %d", i);
        assert_true (mesh_call_async (rr, "spread.svc", body, strlen (body), &opts,
                                      s_on_outcome, &spread) > 0);
    }
    int64_t deadline = sc_now_ms () + WAIT_MS + 5000;
    while (spread.outcomes < ASYNC_CALLS && sc_now_ms () < deadline)
        mesh_node_dispatch (node, 50);
    print_message ("spread over %d providers: %d %d %d, %d failures\n", PROVIDERS,
                   spread.per [0], spread.per [1], spread.per [2], spread.failures);
    assert_int_equal (spread.outcomes, ASYNC_CALLS);
    assert_int_equal (spread.failures, 0);
    assert_int_equal (spread.known, PROVIDERS);
    for (int i = 0; i < PROVIDERS; i++) {
        //  about even: within 10% of a third each
        assert_true (spread.per [i] >= ASYNC_CALLS / PROVIDERS * 9 / 10);
        assert_true (spread.per [i] <= ASYNC_CALLS / PROVIDERS * 11 / 10 + 1);
    }
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
}

//  6. Call-all gathers one reply per provider
static void
test_call_all_gathers_each_provider (void **state)
{
    (void) state;
    for (int i = 0; i < PROVIDERS; i++) {
        char name [8];
        snprintf (name, sizeof name, "g%d", i + 1);
        sc_mesh (name, NULL, "serve", "who.svc", "--echo", "--name", name, FAST, NULL);
    }
    sc_proc_t *peers = sc_mesh ("peers", NULL, "peers", "--expect", "3", "--timeout", "20",
                                FAST, NULL);
    assert_true (sc_wait_exit (peers, WAIT_MS));
    assert_int_equal (sc_exit_code (peers), 0);
    sc_release (peers);
    sc_proc_t *call = sc_mesh ("call all", NULL, "call", "who.svc", "ping", "--all",
                               "--timeout", "10", FAST, NULL);
    assert_true (sc_wait_exit (call, WAIT_MS));
    if (sc_exit_code (call) != 0 || call->nlines != PROVIDERS)
        sc_print_all ();
    assert_int_equal (sc_exit_code (call), 0);
    assert_int_equal (call->nlines, PROVIDERS);
    for (int i = 0; i < PROVIDERS; i++) {
        char line [32];
        snprintf (line, sizeof line, "g%d\tping", i + 1);
        int seen = 0;
        for (size_t j = 0; j < call->nlines; j++)
            seen += strcmp (call->lines [j], line) == 0;
        assert_int_equal (seen, 1);
    }
    sc_release (call);
}

int
main (void)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_echo, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_no_responders, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_deadline_and_remote_error, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_kill9_failover_runs_once, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_async_calls_spread_evenly, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_call_all_gathers_each_provider,
                                         sc_setup, sc_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
