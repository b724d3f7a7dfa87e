/*  =========================================================================
    test_observe - meshbus top and meshbus monitor (issue 21), end to end

    Each case runs one script of tests/ against the tool ($MESHBUS_TOOL),
    as real processes on loopback, and passes when the script exits 0:
    - test_observe_metrics.py: /metrics parsed by Prometheus' own parser
      and cross-checked with `meshbus stats --json`; bad HTTP input
    - test_observe_dashboard.py: the page in headless Chromium, 5 nodes, one
      killed -9; its screenshots go to build/observe/
    - test_observe_top.sh: `meshbus top` in tmux
    - test_observe_patterns.py: the pattern tables (subscriptions, services,
      calls and their latency, queues) in stats, /metrics, top and the
      server-sent event feed, with names of every byte; its long-lived peer
      is this program run as `test_observe --peer` (s_peer below)
    - test_observe_curve.sh: top, monitor and stats on a CURVE mesh
    They need Debian's python3-prometheus-client, chromium and tmux
    (install-deps.sh); a missing one fails the case, saying which.
    ========================================================================= */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>
#include "meshbus.h"

static const char *
s_tool (void)
{
    const char *tool = getenv ("MESHBUS_TOOL");
    return tool && *tool? tool: "build/debug/tools/meshbus";
}

//  The source tree: $MESHBUS_SRC (tests/run.sh sets it), else from __FILE__
static void
s_src (char *path, size_t cap)
{
    const char *src = getenv ("MESHBUS_SRC");
    if (src && *src)
        snprintf (path, cap, "%s", src);
    else {
        const char *slash = strrchr (__FILE__, '/');
        int len = slash? (int) (slash - __FILE__): 1;
        snprintf (path, cap, "%.*s/..", len, slash? __FILE__: ".");
    }
}

static void
s_need (const char *check, const char *package)
{
    if (system (check) != 0)
        fail_msg ("%s is missing: ./install-deps.sh installs it", package);
}

static void
s_run (const char *interpreter, const char *script, const char *extra)
{
    char src [1024], command [4096];
    s_src (src, sizeof src);
    snprintf (command, sizeof command, "%s '%s/tests/%s' '%s' %s 2>&1", interpreter, src, script,
              s_tool (), extra? extra: "");
    int status = system (command);
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        fail_msg ("%s failed (status %d)", script, WIFEXITED (status)? WEXITSTATUS (status): -1);
}

static void
test_metrics_and_bad_http (void **state)
{
    (void) state;
    s_need ("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null",
            "python3-prometheus-client");
    s_run ("/usr/bin/python3", "test_observe_metrics.py", NULL);
}

static void
test_dashboard_in_chromium (void **state)
{
    (void) state;
    s_need ("command -v chromium >/dev/null", "chromium");
    char src [1024], shots [1200];
    s_src (src, sizeof src);
    snprintf (shots, sizeof shots, "'%s/build/observe'", src);
    s_run ("/usr/bin/python3", "test_observe_dashboard.py", shots);
}

static void
test_top_in_tmux (void **state)
{
    (void) state;
    s_need ("command -v tmux >/dev/null", "tmux");
    s_run ("bash", "test_observe_top.sh", NULL);
}

static void
test_patterns_and_events (void **state)
{
    (void) state;
    s_need ("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null",
            "python3-prometheus-client");
    char self [1200];
    ssize_t n = readlink ("/proc/self/exe", self + 1, sizeof self - 3);
    assert_true (n > 0);
    self [0] = '\'';
    self [n + 1] = '\'';
    self [n + 2] = 0;
    s_run ("/usr/bin/python3", "test_observe_patterns.py", self);
}

static void
test_curve (void **state)
{
    (void) state;
    s_run ("bash", "test_observe_curve.sh", NULL);
}

//  ---------------------------------------------------------------------
//  The long-lived peer of test_observe_patterns.py: `test_observe --peer
//  CLUSTER PORT SUBS`. It holds SUBS subscriptions "many.N" and "peer.#",
//  calls svc.echo 20 times and svc.fail 5 times (both served by the
//  script's nodes), pushes 3 jobs to jobs.dead (max 2 deliveries; the
//  script's worker fails them: 3 dead letters) and 4 to jobs.none (nobody
//  works it: 4 pending), says "ready" and stays, dispatching, until its
//  stdin closes (bounded: 600 s).

static void
s_ignore (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub, (void) msg, (void) arg;
}

static int
s_peer (int argc, char **argv)
{
    if (argc != 5)
        return 2;
    mesh_node_t *node = mesh_node_new ("observe-peer");
    mesh_node_set_cluster (node, argv [2]);
    mesh_node_set_beacon_port (node, atoi (argv [3]));
    mesh_pubsub_t *ps = mesh_pubsub_new (node);
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    mesh_pipeline_t *pl = mesh_pipeline_new (node);
    int subs = atoi (argv [4]);
    for (int i = 0; i < subs; i++) {
        char pattern [32];
        snprintf (pattern, sizeof pattern, "many.%d", i);
        if (mesh_subscribe (ps, pattern, NULL, s_ignore, NULL) < 0) {
            fprintf (stderr, "subscribe %s: %s\n", pattern, mesh_last_error ());
            return 1;
        }
    }
    mesh_subscribe (ps, "peer.#", NULL, s_ignore, NULL);
    mesh_queue_opts_t dead = { .max_deliveries = 2, .backoff_ms = 10 };
    mesh_pipeline_set_queue (pl, "jobs.dead", &dead);
    if (mesh_node_start (node)
    ||  mesh_reqrep_wait_providers (rr, "svc.echo", 1, 60000)
    ||  mesh_reqrep_wait_providers (rr, "svc.fail", 1, 60000)) {
        fprintf (stderr, "peer: %s\n", mesh_last_error ());
        return 1;
    }
    int ok = 0, failed = 0;
    for (int i = 0; i < 20; i++) {
        mesh_msg_t *reply = mesh_call (rr, "svc.echo", "ping", 4, NULL);
        ok += reply != NULL;
        mesh_msg_destroy (&reply);
    }
    for (int i = 0; i < 5; i++) {
        mesh_msg_t *reply = mesh_call (rr, "svc.fail", "ping", 4, NULL);
        failed += !reply && mesh_errno () == MESH_EREMOTE;
        mesh_msg_destroy (&reply);
    }
    for (int i = 0; i < 3; i++)
        mesh_push (pl, "jobs.dead", "doomed", 6);
    for (int i = 0; i < 4; i++)
        mesh_push (pl, "jobs.none", "waiting", 7);
    printf ("ready %s ok=%d failed=%d\n", mesh_node_id (node), ok, failed);
    fflush (stdout);
    uint64_t until = mesh_clock_ms () + 600000;
    while (mesh_clock_ms () < until) {
        mesh_node_dispatch (node, 100);
        mesh_event_t *event;
        while ((event = mesh_node_event (node)))
            mesh_event_destroy (&event);
        struct pollfd in = { STDIN_FILENO, POLLIN, 0 };
        char byte;
        if (poll (&in, 1, 0) > 0 && read (STDIN_FILENO, &byte, 1) <= 0)
            break;
    }
    mesh_pipeline_destroy (&pl);
    mesh_reqrep_destroy (&rr);
    mesh_pubsub_destroy (&ps);
    mesh_node_destroy (&node);
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc > 1 && strcmp (argv [1], "--peer") == 0)
        return s_peer (argc, argv);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_metrics_and_bad_http),
        cmocka_unit_test (test_dashboard_in_chromium),
        cmocka_unit_test (test_top_in_tmux),
        cmocka_unit_test (test_patterns_and_events),
        cmocka_unit_test (test_curve),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
