/*  =========================================================================
    test_lan - discovery and liveness across hosts of an emulated LAN

    Four "hosts" are network namespaces on one bridge, made by the
    project's lab (tests/lab/lab.sh). Each runs
    `meshbus peers --iface eth0`, so beacons are real UDP broadcasts on a
    LAN interface and links are TCP between hosts. The test checks that
    all four find each other, that a host cut off the switch is declared
    gone by the others (and they by it), and that it is found again once
    its port is back.

    Needs root and working `ip netns`; otherwise the test prints
    why and is skipped. The LAN gets a prefix of its own (LAB_PREFIX), and
    the teardown ends our processes by pid and takes the LAN down.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "scenario.h"

#define HOSTS       4
#define FIND_MS     10000       //  bounds a failing wait; beacons go every 1 s
static int
s_setup (void **state)
{
    sc_setup (state);
    sc_lan_init ("mb");
    return 0;
}

static int
s_teardown (void **state)
{
    sc_teardown (state);            //  our nodes first, by pid
    sc_lan_down ();
    return 0;
}

//  `meshbus peers` on host hN, through `lab.sh run`, which execs into the
//  namespace: the pid we fork is the node's pid
static sc_proc_t *
s_host_node (int n, const char *id)
{
    char host [8];
    snprintf (host, sizeof host, "h%d", n);
    return sc_lan_mesh (n, host, NULL, "peers", "--name", host, "--id", id,
                        "--suspect-ms", "300", "--gone-ms", "1500", NULL);
}

static void
test_four_hosts_cut_and_heal (void **state)
{
    (void) state;
    sc_lan_or_skip (HOSTS);
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
            const char *net = getenv ("LAB_NET");
            snprintf (prefix, sizeof prefix, "tcp://%s.%d:", net && *net? net: "10.250.0", 10 + m);
            assert_string_equal (ev.name, name);
            assert_true (strncmp (ev.endpoint, prefix, strlen (prefix)) == 0);
        }

    //  a silent cut of h3: both sides declare the other gone
    size_t mark [HOSTS + 1];
    for (int n = 1; n <= HOSTS; n++)
        mark [n] = node [n]->nlines;
    assert_int_equal (sc_lan_cmd ("cut", "h3", NULL), 0);
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
    assert_int_equal (sc_lan_cmd ("heal", "h3", NULL), 0);
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
