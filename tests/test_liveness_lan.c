/*  =========================================================================
    test_liveness_lan - failure detection across hosts of the lab

    Hosts are network namespaces on one bridge (tests/lab/lab.sh); each
    node is `meshbus peers --iface eth0` on a host. The tests:
    - indirect probes: with h1 -> h2 dropped (h2 -> h1 still flows), the
      nodes on h1 and h2 cannot answer each other's probes, but the node
      on h3 reaches both and relays: nobody is declared gone;
    - a node stopped (SIGSTOP) longer than the gone timeout is EXIT
      "silent" to the others; after SIGCONT it meets them again: ENTER on
      both sides;
    - 64 nodes on 16 hosts all see each other; a cut of 4 hosts makes
      exactly their 16 nodes EXIT on every other node; heal brings all back.

    Needs root and `ip netns`; otherwise the tests print why and are
    skipped. The lab has a prefix of its own (LAB_PREFIX); the teardown
    ends our processes by pid, then takes the lab down.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "scenario.h"
#include <dirent.h>

#define FIND_MS     30000       //  bounds a failing wait, never a claim about speed
#define SUSPECT     "300"
#define GONE        "1500"

static int
s_setup (void **state)
{
    sc_setup (state);
    sc_lan_init ("lv");
    return 0;
}

static int
s_teardown (void **state)
{
    sc_teardown (state);
    sc_lan_down ();
    return 0;
}

static sc_proc_t *
s_node_timed (int host, const char *name, const char *id, const char *suspect, const char *gone)
{
    return sc_lan_mesh (host, name, NULL, "peers", "--name", name, "--id", id,
                        "--suspect-ms", suspect, "--gone-ms", gone, NULL);
}

static sc_proc_t *
s_node (int host, const char *name, const char *id)
{
    return s_node_timed (host, name, id, SUSPECT, GONE);
}

//  Every node has printed ENTER for every other one
static void
s_all_see_all (sc_proc_t **node, char ids [][33], int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j)
                SC_EXPECT (node [i], 0, "ENTER", ids [j], NULL, FIND_MS);
}

static void
test_indirect_probe_keeps_one_way_cut_peer (void **state)
{
    (void) state;
    sc_lan_or_skip (3);
    sc_proc_t *node [3];
    char ids [3][33];
    const char *names [3] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        sc_random_id (ids [i]);
        node [i] = s_node (i + 1, names [i], ids [i]);
    }
    s_all_see_all (node, ids, 3);
    size_t mark [3];
    for (int i = 0; i < 3; i++)
        mark [i] = node [i]->nlines;
    assert_int_equal (sc_lan_cmd ("drop", "h1", "h2", NULL), 0);
    //  a's probes of b and b's answers to a are lost; c relays both ways.
    //  Held for three gone timeouts: without the indirect path a and b
    //  would each have declared the other gone twice over.
    sc_pump_for (3 * atoi (GONE));
    for (int i = 0; i < 3; i++)
        if (sc_find (node [i], mark [i], "EXIT", NULL, NULL) >= 0) {
            sc_print_all ();
            fail_msg ("%s declared a peer gone although c reaches everybody", names [i]);
        }
    //  the rule does cut: with h3 cut as well, a and b lose each other
    assert_int_equal (sc_lan_cmd ("cut", "h3", NULL), 0);
    SC_EXPECT (node [0], mark [0], "EXIT", ids [1], "silent", FIND_MS);
    SC_EXPECT (node [1], mark [1], "EXIT", ids [0], "silent", FIND_MS);
}

static void
test_stopped_node_exits_then_enters_again (void **state)
{
    (void) state;
    sc_lan_or_skip (3);
    sc_proc_t *node [3];
    char ids [3][33];
    const char *names [3] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        sc_random_id (ids [i]);
        node [i] = s_node (i + 1, names [i], ids [i]);
    }
    s_all_see_all (node, ids, 3);
    size_t mark [3];
    for (int i = 0; i < 3; i++)
        mark [i] = node [i]->nlines;
    sc_signal (node [2], SIGSTOP);
    long exit_at [2];
    for (int i = 0; i < 2; i++)
        exit_at [i] = SC_EXPECT (node [i], mark [i], "EXIT", ids [2], "silent", FIND_MS);
    //  stopped longer than gone (it is past gone for both already)
    sc_pump_for (atoi (GONE));
    sc_signal (node [2], SIGCONT);
    for (int i = 0; i < 2; i++) {
        SC_EXPECT (node [i], (size_t) exit_at [i], "ENTER", ids [2], NULL, FIND_MS);
        //  and c, which saw nothing while stopped, meets them again too
        long gone = SC_EXPECT (node [2], mark [2], "EXIT", ids [i], "silent", FIND_MS);
        SC_EXPECT (node [2], (size_t) gone, "ENTER", ids [i], NULL, FIND_MS);
    }
    //  a and b never lost each other
    assert_int_equal (sc_find (node [0], 0, "EXIT", ids [1], NULL), -1);
    assert_int_equal (sc_find (node [1], 0, "EXIT", ids [0], NULL), -1);
}

//  Descriptors a process holds (its /proc/PID/fd entries)
static int
s_fds (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/fd", (int) pid);
    DIR *dir = opendir (path);
    if (!dir)
        return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (entry->d_name [0] != '.')
            count++;
    closedir (dir);
    return count;
}

//  A peer cut off past the gone timeout and healed, again and again: each
//  round it is EXIT and ENTER again, and the node holds no more descriptors
//  after the third round than after the first (each relink used to leave
//  the old connection in CLOSE-WAIT at the inbox: ROUTER_HANDOVER)
static void
test_cuts_past_gone_leak_no_descriptor (void **state)
{
    (void) state;
    sc_lan_or_skip (2);
    sc_proc_t *node [2];
    char ids [2][33];
    const char *names [2] = { "a", "b" };
    for (int i = 0; i < 2; i++) {
        sc_random_id (ids [i]);
        node [i] = s_node (i + 1, names [i], ids [i]);
    }
    s_all_see_all (node, ids, 2);
    int after_first = -1;
    for (int round = 0; round < 3; round++) {
        size_t mark = node [0]->nlines;
        assert_int_equal (sc_lan_cmd ("cut", "h2", NULL), 0);
        long gone = SC_EXPECT (node [0], mark, "EXIT", ids [1], "silent", FIND_MS);
        sc_pump_for (500);
        assert_int_equal (sc_lan_cmd ("heal", "h2", NULL), 0);
        SC_EXPECT (node [0], (size_t) gone, "ENTER", ids [1], NULL, FIND_MS);
        //  the old connections' ends (FIN, RST) have had time to arrive
        sc_pump_for (2 * atoi (GONE));
        int fds = s_fds (node [0]->pid);
        print_message ("round %d: a holds %d descriptors\n", round + 1, fds);
        assert_true (fds > 0);
        if (round == 0)
            after_first = fds;
    }
    assert_true (s_fds (node [0]->pid) <= after_first);
}

#define BIG_HOSTS   16
#define PER_HOST    4
#define BIG         (BIG_HOSTS * PER_HOST)
#define CUT_HOSTS   4

static void
test_64_nodes_cut_four_hosts (void **state)
{
    (void) state;
    sc_lan_or_skip (BIG_HOSTS);
    sc_proc_t *node [BIG];
    static char ids [BIG][33];
    for (int i = 0; i < BIG; i++) {
        char name [16];
        snprintf (name, sizeof name, "n%d", i);
        sc_random_id (ids [i]);
        //  node i on host 1 + i % 16: hosts 13..16 hold nodes 12..15, 28..31...
        //  The default timeouts: 64 processes of a debug build on a shared
        //  2-core machine starve each other for hundreds of ms at times,
        //  and this test is about who exits, not how fast
        node [i] = s_node_timed (1 + i % BIG_HOSTS, name, ids [i], "1000", "3000");
    }
    s_all_see_all (node, ids, BIG);
    size_t mark [BIG];
    for (int i = 0; i < BIG; i++)
        mark [i] = node [i]->nlines;
    for (int h = BIG_HOSTS - CUT_HOSTS + 1; h <= BIG_HOSTS; h++) {
        char host [8];
        snprintf (host, sizeof host, "h%d", h);
        assert_int_equal (sc_lan_cmd ("cut", host, NULL), 0);
    }
    #define CUT(i) ((i) % BIG_HOSTS >= BIG_HOSTS - CUT_HOSTS)
    //  every node outside sees exactly the cut hosts' nodes EXIT
    for (int i = 0; i < BIG; i++)
        if (!CUT (i))
            for (int j = 0; j < BIG; j++)
                if (CUT (j))
                    SC_EXPECT (node [i], mark [i], "EXIT", ids [j], NULL, FIND_MS);
    for (int i = 0; i < BIG; i++)
        for (int j = 0; j < BIG; j++)
            if (!CUT (i) && !CUT (j) && i != j
            &&  sc_find (node [i], mark [i], "EXIT", ids [j], NULL) >= 0) {
                sc_print_output (node [i]);
                fail_msg ("n%d declared n%d gone, though neither host was cut", i, j);
            }
    size_t healed [BIG];
    for (int i = 0; i < BIG; i++)
        healed [i] = node [i]->nlines;
    assert_int_equal (sc_lan_cmd ("heal", "all", NULL), 0);
    for (int i = 0; i < BIG; i++)
        if (!CUT (i))
            for (int j = 0; j < BIG; j++)
                if (CUT (j))
                    SC_EXPECT (node [i], healed [i], "ENTER", ids [j], NULL, FIND_MS);
    for (int i = 0; i < BIG; i++)
        assert_false (sc_ended (node [i]));
}

int
main (void)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_indirect_probe_keeps_one_way_cut_peer,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stopped_node_exits_then_enters_again,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cuts_past_gone_leak_no_descriptor,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_64_nodes_cut_four_hosts, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
