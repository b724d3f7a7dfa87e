/*  =========================================================================
    test_observe - meshbus top and meshbus monitor (issue 21), end to end

    Each case runs one script of tests/ against the tool ($MESHBUS_TOOL),
    as real processes on loopback, and passes when the script exits 0:
    - test_observe_metrics.py: /metrics parsed by Prometheus' own parser
      and cross-checked with `meshbus stats --json`; bad HTTP input
    - test_observe_dashboard.py: the page in headless Chromium, 5 nodes, one
      killed -9; its screenshots go to build/observe/
    - test_observe_top.sh: `meshbus top` in tmux
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
#include <unistd.h>

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

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_metrics_and_bad_http),
        cmocka_unit_test (test_dashboard_in_chromium),
        cmocka_unit_test (test_top_in_tmux),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
