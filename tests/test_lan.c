/*  =========================================================================
    test_lan - discovery and liveness across hosts of an emulated LAN

    Four "hosts" are network namespaces on one bridge, made by the shared
    lan.sh tool ($MESHBUS_SRC/../shared/tools/lan/lan.sh). Each runs
    `meshbus peers --iface eth0`, so beacons are real UDP broadcasts on a
    LAN interface and links are TCP between hosts. The test checks that
    all four find each other, that a host cut off the switch is declared
    gone by the others (and they by it), and that it is found again once
    its port is back.

    Needs root, lan.sh and working `ip netns`; otherwise the test prints
    why and is skipped. The LAN gets a prefix of its own (ZLAN_PREFIX), and
    the teardown ends our processes by pid and takes the LAN down.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "scenario.h"

#define HOSTS       4
#define FIND_MS     10000       //  bounds a failing wait; beacons go every 1 s
#define LAN_CMD_MS  60000       //  bounds lan.sh up/cut/heal/down

static char s_lan [1024];                   //  path of lan.sh
static char s_prefix_env [64];              //  "ZLAN_PREFIX=mbNNN"
static bool s_lan_up;

static char *const *
s_env (void)
{
    static char *env [2];
    env [0] = s_prefix_env;
    env [1] = NULL;
    return env;
}

//  Run lan.sh with arguments (NULL-terminated); returns its exit code, its
//  output printed when it fails
static int
s_lan_cmd (const char *what, ...)
{
    char *argv [16];
    int argc = 0;
    argv [argc++] = s_lan;
    argv [argc++] = (char *) what;
    va_list args;
    va_start (args, what);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < 15)
        argv [argc++] = (char *) arg;
    va_end (args);
    argv [argc] = NULL;
    char label [32];
    snprintf (label, sizeof label, "lan.sh %s", what);
    sc_proc_t *p = sc_run (label, s_env (), argv, LAN_CMD_MS);
    int rc = sc_exit_code (p);
    if (rc != 0)
        sc_print_output (p);
    sc_release (p);
    return rc;
}

static int
s_setup (void **state)
{
    sc_setup (state);
    s_lan_up = false;
    const char *src = getenv ("MESHBUS_SRC");
    snprintf (s_lan, sizeof s_lan, "%s/../shared/tools/lan/lan.sh", src && *src? src: ".");
    snprintf (s_prefix_env, sizeof s_prefix_env, "ZLAN_PREFIX=mb%d", (int) (getpid () % 1000));
    return 0;
}

static int
s_teardown (void **state)
{
    sc_teardown (state);            //  our nodes first, by pid
    if (s_lan_up && s_lan_cmd ("down", NULL) != 0)
        fprintf (stderr, "test_lan: lan.sh down failed (%s)\n", s_prefix_env);
    s_lan_up = false;
    return 0;
}

//  Skip (with the reason) unless the LAN can be made here
static void
s_lan_or_skip (void)
{
    struct stat st;
    if (geteuid () != 0) {
        print_message ("skipped: network namespaces need root\n");
        skip ();
    }
    if (stat (s_lan, &st) != 0 || !(st.st_mode & S_IXUSR)) {
        print_message ("skipped: %s not found or not executable\n", s_lan);
        skip ();
    }
    char *probe [] = { "ip", "netns", "list", NULL };
    sc_proc_t *p = sc_run ("ip netns", NULL, probe, 10000);
    int rc = sc_exit_code (p);
    sc_release (p);
    if (rc != 0) {
        print_message ("skipped: 'ip netns list' failed (exit %d)\n", rc);
        skip ();
    }
    char count [8];
    snprintf (count, sizeof count, "%d", HOSTS);
    s_lan_up = true;                //  a half-made LAN is taken down too
    if (s_lan_cmd ("up", count, NULL) != 0) {
        print_message ("skipped: 'lan.sh up %d' failed (no CAP_SYS_ADMIN or /run/netns?)\n",
                       HOSTS);
        skip ();
    }
}

//  `meshbus peers` on host hN, through `lan.sh run`, which execs into the
//  namespace: the pid we fork is the node's pid
static sc_proc_t *
s_host_node (int n, const char *id)
{
    char host [8];
    snprintf (host, sizeof host, "h%d", n);
    char *argv [] = { s_lan, "run", host, (char *) sc_tool (), "peers", "--iface", "eth0",
                      "--name", host, "--id", (char *) id, "--cluster", sc.cluster,
                      "--port", sc.port, "--suspect-ms", "300", "--gone-ms", "1500", NULL };
    return sc_spawn (host, s_env (), argv);
}

static void
test_four_hosts_cut_and_heal (void **state)
{
    (void) state;
    s_lan_or_skip ();
    sc_proc_t *node [HOSTS + 1];
    char ids [HOSTS + 1][33];
    for (int n = 1; n <= HOSTS; n++) {
        sc_random_id (ids [n]);
        node [n] = s_host_node (n, ids [n]);
    }
    //  all to all, each at its host's LAN address
    for (int n = 1; n <= HOSTS; n++)
        for (int m = 1; m <= HOSTS; m++) {
            if (m == n)
                continue;
            long at = SC_EXPECT (node [n], 0, "ENTER", ids [m], NULL, FIND_MS);
            sc_event_t ev;
            assert_true (sc_parse_event (node [n]->lines [at], &ev));
            char name [8], prefix [40];
            snprintf (name, sizeof name, "h%d", m);
            const char *net = getenv ("ZLAN_NET");
            snprintf (prefix, sizeof prefix, "tcp://%s.%d:", net && *net? net: "10.250.0", 10 + m);
            assert_string_equal (ev.name, name);
            assert_true (strncmp (ev.endpoint, prefix, strlen (prefix)) == 0);
        }

    //  a silent cut of h3: both sides declare the other gone
    size_t mark [HOSTS + 1];
    for (int n = 1; n <= HOSTS; n++)
        mark [n] = node [n]->nlines;
    assert_int_equal (s_lan_cmd ("cut", "h3", NULL), 0);
    long exit_at [HOSTS + 1] = { 0 };
    for (int n = 1; n <= HOSTS; n++) {
        if (n == 3) {
            for (int m = 1; m <= HOSTS; m++)
                if (m != 3)
                    SC_EXPECT (node [3], mark [3], "EXIT", ids [m], "silent", FIND_MS);
            continue;
        }
        exit_at [n] = SC_EXPECT (node [n], mark [n], "EXIT", ids [3], "silent", FIND_MS);
    }
    //  the others still have each other
    for (int n = 1; n <= HOSTS; n++)
        for (int m = 1; m <= HOSTS; m++)
            if (n != 3 && m != 3 && m != n)
                assert_int_equal (sc_find (node [n], 0, "EXIT", ids [m], NULL), -1);

    //  port back: h3 is found again, and finds the others
    for (int n = 1; n <= HOSTS; n++)
        mark [n] = node [n]->nlines;
    assert_int_equal (s_lan_cmd ("heal", "h3", NULL), 0);
    for (int n = 1; n <= HOSTS; n++) {
        if (n == 3)
            continue;
        SC_EXPECT (node [n], (size_t) exit_at [n], "ENTER", ids [3], NULL, FIND_MS);
        SC_EXPECT (node [3], mark [3], "ENTER", ids [n], NULL, FIND_MS);
    }
    for (int n = 1; n <= HOSTS; n++)
        assert_false (sc_ended (node [n]));
}

int
main (void)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_four_hosts_cut_and_heal, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
