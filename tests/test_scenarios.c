/*  =========================================================================
    test_scenarios - the core's behaviour across real processes

    Each test starts processes of the meshbus tool on loopback (`meshbus
    peers` prints one line per peer event) and checks what a user of the
    bus relies on: nodes find each other, a crashed node is declared gone
    (SUSPECT first), a stopped one says BYE, a restarted one is EXIT then
    ENTER, clusters sharing a port never mix, seeds and gossip work without
    beacons, discovery works in a namespace with only lo, `peers --expect`
    ends when it should, and a flood of garbage beacons neither kills a
    node nor fills its peer table.

    Every test has its own cluster name and beacon port (tests/scenario.h),
    and every wait is functional: it bounds a failing test, it never claims
    a speed. The tool comes from $MESHBUS_TOOL (tests/run.sh sets it).
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "scenario.h"
#include "meshbus.h"
#include "mesh_beacon.h"

//  Discovery on loopback happens at the first beacon (sent at start); this
//  only bounds a test that is failing.
#define FIND_MS     10000

//  Liveness so slow that silence cannot explain an EXIT within the test
#define SLOW_LIVENESS   "--suspect-ms", "10000", "--gone-ms", "20000"
//  Waits that must end before SLOW_LIVENESS could say anything
#define BEFORE_GONE_MS  8000

//  Start three nodes a, b, c with random ids and wait until each has seen
//  the two others ENTER, with the id it was given. suspect, gone: NULL or
//  the liveness timeouts of all three.
static void
s_three_nodes (sc_proc_t *node [3], char ids [3][33], const char *suspect,
               const char *gone)
{
    static const char *names [3] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        sc_random_id (ids [i]);
        node [i] = suspect
                 ? sc_node (names [i], ids [i], "--suspect-ms", suspect, "--gone-ms", gone, NULL)
                 : sc_node (names [i], ids [i], NULL);
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            if (i == j)
                continue;
            long at = SC_EXPECT (node [i], 0, "ENTER", names [j], NULL, FIND_MS);
            sc_event_t ev;
            assert_true (sc_parse_event (node [i]->lines [at], &ev));
            assert_string_equal (ev.id, ids [j]);
            assert_true (strncmp (ev.endpoint, "tcp://127.0.0.1:", 16) == 0);
        }
}

//  1. Three processes on loopback all find each other
static void
test_three_nodes_discover_each_other (void **state)
{
    (void) state;
    sc_proc_t *node [3];
    char ids [3][33];
    s_three_nodes (node, ids, NULL, NULL);
    //  and nobody left: discovery is stable, not a flicker
    for (int i = 0; i < 3; i++) {
        assert_false (sc_ended (node [i]));
        assert_int_equal (sc_find (node [i], 0, "EXIT", NULL, NULL), -1);
    }
}

//  2. kill -9: the kernel closes the dead process's connections, so the
//  others see SUSPECT then EXIT "closed" at once. The gone timeout is 30 s:
//  the test could only pass through the closed-link path, without timing
//  anything. The survivors keep each other.
static void
test_killed_node_is_suspect_then_gone (void **state)
{
    (void) state;
    sc_proc_t *node [3];
    char ids [3][33];
    s_three_nodes (node, ids, "300", "30000");
    size_t mark [2] = { node [0]->nlines, node [1]->nlines };
    sc_signal (node [2], SIGKILL);
    for (int i = 0; i < 2; i++) {
        long exit_at = SC_EXPECT (node [i], mark [i], "EXIT", ids [2], NULL, FIND_MS);
        sc_event_t ev;
        assert_true (sc_parse_event (node [i]->lines [exit_at], &ev));
        assert_string_equal (ev.detail, "closed");
        long suspect_at = sc_find (node [i], mark [i], "SUSPECT", ids [2], "closed");
        assert_true (suspect_at >= 0);
        assert_true (suspect_at < exit_at);
    }
    //  a and b stay alive to each other across the whole episode
    sc_pump_for (1500);     //  past another gone timeout
    assert_int_equal (sc_find (node [0], 0, "EXIT", "b", NULL), -1);
    assert_int_equal (sc_find (node [1], 0, "EXIT", "a", NULL), -1);
}

//  3. SIGTERM: a clean stop says BYE, so peers see EXIT (bye) long before
//  any silence timeout could; the tool exits 0
static void
test_clean_stop_says_bye (void **state)
{
    (void) state;
    sc_proc_t *node [3];
    char ids [3][33];
    s_three_nodes (node, ids, "10000", "20000");
    size_t mark [2] = { node [0]->nlines, node [1]->nlines };
    sc_signal (node [2], SIGTERM);
    for (int i = 0; i < 2; i++)
        SC_EXPECT (node [i], mark [i], "EXIT", ids [2], "bye", BEFORE_GONE_MS);
    assert_true (sc_wait_exit (node [2], SC_GRACE_MS));
    assert_true (WIFEXITED (node [2]->status));
    assert_int_equal (WEXITSTATUS (node [2]->status), 0);
}

//  4. kill -9 then start again with the same id: peers see EXIT then ENTER
//  of that id. Liveness is slow, so the EXIT must come from the closed
//  link (the kill) or from recognising the restart (new incarnation), not
//  from silence.
static void
test_restart_with_same_id_is_exit_then_enter (void **state)
{
    (void) state;
    sc_proc_t *node [3];
    char ids [3][33];
    s_three_nodes (node, ids, "10000", "20000");
    size_t mark [2] = { node [0]->nlines, node [1]->nlines };
    sc_signal (node [2], SIGKILL);
    assert_true (sc_wait_exit (node [2], SC_GRACE_MS));
    sc_proc_t *again = sc_node ("c", ids [2], SLOW_LIVENESS, NULL);
    for (int i = 0; i < 2; i++) {
        long exit_at = SC_EXPECT (node [i], mark [i], "EXIT", ids [2], NULL, BEFORE_GONE_MS);
        sc_event_t ev;
        assert_true (sc_parse_event (node [i]->lines [exit_at], &ev));
        assert_true (strcmp (ev.detail, "closed") == 0 || strcmp (ev.detail, "restarted") == 0);
        long enter_at = SC_EXPECT (node [i], (size_t) exit_at, "ENTER", ids [2], NULL,
                                   BEFORE_GONE_MS);
        assert_true (sc_parse_event (node [i]->lines [enter_at], &ev));
        assert_string_equal (ev.name, "c");
    }
    //  and the new process meets both
    SC_EXPECT (again, 0, "ENTER", ids [0], NULL, FIND_MS);
    SC_EXPECT (again, 0, "ENTER", ids [1], NULL, FIND_MS);
}

//  5. Two clusters on one beacon port never mix; each side counts the
//  other's beacons as ignored (other-cluster)
static void
test_clusters_on_one_port_never_mix (void **state)
{
    (void) state;
    char id_a [33], id_b [33], id_c [33];
    sc_random_id (id_a);
    sc_random_id (id_b);
    sc_random_id (id_c);
    char cluster_x [64], cluster_y [64];
    snprintf (cluster_x, sizeof cluster_x, "%s", sc.cluster);
    snprintf (cluster_y, sizeof cluster_y, "%s-y", sc.cluster);
    sc_proc_t *a = sc_node ("a", id_a, NULL);
    sc_proc_t *b = sc_node ("b", id_b, NULL);
    sc_proc_t *c = sc_tool_start ("c", "peers", "--name", "c", "--id", id_c, "--cluster",
                                  cluster_y, "--port", sc.port, NULL);
    SC_EXPECT (a, 0, "ENTER", id_b, NULL, FIND_MS);
    SC_EXPECT (b, 0, "ENTER", id_a, NULL, FIND_MS);

    //  a's counters prove it received c's beacons (and ignored them); c's
    //  beacons may come after a and b met (jittered, backing off): ask
    //  again until both heard one, within the bound
    const char *ids_x [] = { id_a, id_b, NULL };
    char *json = NULL;
    uint64_t ignored_a = 0, ignored_b = 0;
    int64_t until = sc_now_ms () + FIND_MS;
    do {
        free (json);
        json = sc_stats (ids_x, 3);
        if (!json) {
            sc_print_all ();
            fail_msg ("stats in cluster X did not reach a and b");
        }
        ignored_a = sc_peer_counter (json, id_a, "beacon.ignored.other-cluster");
        ignored_b = sc_peer_counter (json, id_b, "beacon.ignored.other-cluster");
    } while ((ignored_a == 0 || ignored_b == 0) && sc_now_ms () < until);
    //  the stats node is in cluster X: it must not list c among a's peers
    bool c_in_a = sc_json_member (sc_json_member (sc_json_member (
                      sc_json_member (json, "peers"), id_a), "peers"), id_c) != NULL;
    free (json);
    assert_true (ignored_a > 0);
    assert_true (ignored_b > 0);
    assert_false (c_in_a);

    //  and the other way round: c heard a and b, and ignored them
    snprintf (sc.cluster, sizeof sc.cluster, "%s", cluster_y);
    const char *ids_y [] = { id_c, NULL };
    json = sc_stats (ids_y, 3);
    snprintf (sc.cluster, sizeof sc.cluster, "%s", cluster_x);
    if (!json) {
        sc_print_all ();
        fail_msg ("stats in cluster Y did not reach c");
    }
    uint64_t ignored_c = sc_peer_counter (json, id_c, "beacon.ignored.other-cluster");
    free (json);
    assert_true (ignored_c > 0);

    sc_read (a);
    sc_read (b);
    sc_read (c);
    assert_int_equal (sc_find (a, 0, "ENTER", id_c, NULL), -1);
    assert_int_equal (sc_find (b, 0, "ENTER", id_c, NULL), -1);
    assert_int_equal (sc_find (c, 0, "ENTER", id_a, NULL), -1);
    assert_int_equal (sc_find (c, 0, "ENTER", id_b, NULL), -1);
}

//  6. Beacons off: one seed is enough, gossip introduces the rest; a seed
//  may be a host name
static void
test_seeds_and_gossip_without_beacons (void **state)
{
    (void) state;
    int port_b = sc_free_tcp_port ();
    assert_true (port_b > 0);
    char bind_b [64], seed_ip [64], seed_name [64];
    snprintf (bind_b, sizeof bind_b, "127.0.0.1:%d", port_b);
    snprintf (seed_ip, sizeof seed_ip, "tcp://127.0.0.1:%d", port_b);
    snprintf (seed_name, sizeof seed_name, "tcp://localhost:%d", port_b);
    char id_a [33], id_b [33], id_c [33];
    sc_random_id (id_a);
    sc_random_id (id_b);
    sc_random_id (id_c);
    sc_proc_t *b = sc_node ("b", id_b, "--no-beacon", "--bind", bind_b, NULL);
    sc_proc_t *a = sc_node ("a", id_a, "--no-beacon", "--seed", seed_ip, NULL);
    sc_proc_t *c = sc_node ("c", id_c, "--no-beacon", "--seed", seed_name, NULL);
    //  through the seed
    long at = SC_EXPECT (a, 0, "ENTER", id_b, NULL, FIND_MS);
    sc_event_t ev;
    assert_true (sc_parse_event (a->lines [at], &ev));
    assert_string_equal (ev.endpoint, seed_ip);
    SC_EXPECT (c, 0, "ENTER", id_b, NULL, FIND_MS);
    SC_EXPECT (b, 0, "ENTER", id_a, NULL, FIND_MS);
    SC_EXPECT (b, 0, "ENTER", id_c, NULL, FIND_MS);
    //  through gossip: a and c never had each other's address
    SC_EXPECT (a, 0, "ENTER", id_c, NULL, FIND_MS);
    SC_EXPECT (c, 0, "ENTER", id_a, NULL, FIND_MS);
}

//  7. In a fresh network namespace whose only interface is lo, two nodes
//  find each other by the loopback beacon
static void
test_discovery_in_namespace_with_only_lo (void **state)
{
    (void) state;
    if (geteuid () != 0) {
        print_message ("skipped: unshare -n needs root\n");
        skip ();
    }
    char *probe [] = { "unshare", "-n", "true", NULL };
    sc_proc_t *p = sc_run ("unshare probe", NULL, probe, 10000);
    int rc = sc_exit_code (p);
    if (rc != 0) {
        print_message ("skipped: 'unshare -n true' failed (exit %d): %s\n", rc,
                       p->nlines? p->lines [0]: "");
        sc_release (p);
        skip ();
    }
    sc_release (p);
    //  $0 tool, $1 cluster, $2 port; the shell and both nodes form one
    //  process group, which the teardown ends
    const char *script =
        "ip link set lo up || exit 3; "
        "if ip -o link show | grep -v ': lo:' | grep -q .; then echo 'NOT-ONLY-LO'; fi; "
        "\"$0\" peers --name a --cluster \"$1\" --port \"$2\" & "
        "\"$0\" peers --name b --cluster \"$1\" --port \"$2\" & "
        "wait";
    char *argv [] = { "unshare", "-n", "sh", "-c", (char *) script, (char *) sc_tool (),
                      sc.cluster, sc.port, NULL };
    sc_proc_t *ns = sc_spawn ("netns", NULL, argv);
    SC_EXPECT (ns, 0, "ENTER", "a", NULL, FIND_MS);      //  printed by b
    SC_EXPECT (ns, 0, "ENTER", "b", NULL, FIND_MS);      //  printed by a
    for (size_t i = 0; i < ns->nlines; i++)
        assert_null (strstr (ns->lines [i], "NOT-ONLY-LO"));
}

//  `peers --expect K` is how scripts wait for a mesh: two started together
//  both exit 0 once they have met, even when one leaves (BYE) the moment
//  it is satisfied; with too few peers it exits 1 at the timeout. Several
//  pairs at once, because the first of these used to fail now and then.
#define EXPECT_PAIRS    6

static void
test_peers_expect_exits_once_met (void **state)
{
    (void) state;
    sc_proc_t *node [EXPECT_PAIRS][2];
    char clusters [EXPECT_PAIRS][80];
    for (int i = 0; i < EXPECT_PAIRS; i++) {
        snprintf (clusters [i], sizeof clusters [i], "%s-%d", sc.cluster, i);
        for (int j = 0; j < 2; j++)
            node [i][j] = sc_tool_start (j? "b": "a", "peers", "--name", j? "b": "a",
                                         "--cluster", clusters [i], "--port", sc.port,
                                         "--expect", "1", "--timeout", "10", NULL);
    }
    sc_proc_t *lonely = sc_node ("lonely", NULL, "--expect", "1", "--timeout", "1", NULL);
    for (int i = 0; i < EXPECT_PAIRS; i++)
        for (int j = 0; j < 2; j++) {
            sc_proc_t *p = node [i][j];
            if (!sc_wait_exit (p, 15000)) {
                sc_print_output (p);
                fail_msg ("peers --expect 1 (%s of pair %d) did not exit", p->label, i);
            }
            if (sc_exit_code (p) != 0)
                sc_print_output (p);
            assert_int_equal (sc_exit_code (p), 0);
            assert_true (sc_find (p, 0, "ENTER", j? "a": "b", NULL) >= 0);
        }
    assert_true (sc_wait_exit (lonely, 15000));
    assert_int_equal (sc_exit_code (lonely), 1);
    assert_int_equal (sc_find (lonely, 0, "ENTER", NULL, NULL), -1);
}

//  8. A flood of garbage on the beacon port: random bytes, beacons of
//  another cluster, and valid beacons of invented nodes at closed ports.
//  Nodes survive, keep each other, still find a newcomer, count what they
//  ignored, and do not fill their table with the invented nodes.
#define FLOOD_RANDOM    1000
#define FLOOD_OTHER     1000
#define FLOOD_FAKES     10000

static void
s_flood (const char *cluster, int closed_port)
{
    int fd = socket (AF_INET, SOCK_DGRAM, 0);
    assert_true (fd >= 0);
    int on = 1;
    assert_int_equal (setsockopt (fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on), 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) sc.port_num) };
    inet_pton (AF_INET, "127.255.255.255", &to.sin_addr);

    mesh_beacon_packet_t pkt;
    memset (&pkt, 0, sizeof pkt);
    pkt.port = (uint16_t) closed_port;
    snprintf (pkt.name, sizeof pkt.name, "fake");
    uint8_t prefix [MESH_ID_SIZE];
    getrandom (prefix, sizeof prefix, 0);
    uint8_t right [MESH_BEACON_TAG_SIZE], other [MESH_BEACON_TAG_SIZE];
    mesh_beacon_cluster_tag (cluster, right);
    char other_name [96];
    snprintf (other_name, sizeof other_name, "%s-other", cluster);
    mesh_beacon_cluster_tag (other_name, other);

    int total = FLOOD_RANDOM + FLOOD_OTHER + FLOOD_FAKES;
    int sent [3] = { 0, 0, 0 };
    for (int i = 0; i < total; i++) {
        uint8_t buf [600];
        size_t size;
        int kind = i < FLOOD_RANDOM? 0: i < FLOOD_RANDOM + FLOOD_OTHER? 1: 2;
        if (kind == 0) {
            size = sc_random () % sizeof buf;
            getrandom (buf, size, 0);
            if (size)
                buf [0] = 'x';          //  never the magic: surely malformed
        }
        else {
            memcpy (pkt.id, prefix, MESH_ID_SIZE);
            memcpy (pkt.id, &i, sizeof i);          //  distinct per datagram
            memcpy (pkt.tag, kind == 1? other: right, MESH_BEACON_TAG_SIZE);
            pkt.incarnation = ((uint64_t) sc_random () << 32 | sc_random ()) | 1;
            size = mesh_beacon_encode (&pkt, buf, sizeof buf);
            assert_true (size >= MESH_BEACON_HEAD);
        }
        if (sendto (fd, buf, size, 0, (struct sockaddr *) &to, sizeof to) == (ssize_t) size)
            sent [kind]++;
        //  pace a little so receivers' socket buffers are not simply full:
        //  the node, not the kernel, should see most of the flood
        if (i % 50 == 49)
            sc_sleep_ms (2);
    }
    close (fd);
    assert_int_equal (sent [0], FLOOD_RANDOM);
    assert_int_equal (sent [1], FLOOD_OTHER);
    assert_int_equal (sent [2], FLOOD_FAKES);
}

static void
test_garbage_beacon_flood (void **state)
{
    (void) state;
    char id_a [33], id_b [33], id_c [33];
    sc_random_id (id_a);
    sc_random_id (id_b);
    sc_random_id (id_c);
    sc_proc_t *a = sc_node ("a", id_a, NULL);
    sc_proc_t *b = sc_node ("b", id_b, NULL);
    SC_EXPECT (a, 0, "ENTER", id_b, NULL, FIND_MS);
    SC_EXPECT (b, 0, "ENTER", id_a, NULL, FIND_MS);

    int closed_port = sc_free_tcp_port ();
    assert_true (closed_port > 0);
    s_flood (sc.cluster, closed_port);

    //  both processes survived
    sc_pump_for (200);
    assert_false (sc_ended (a));
    assert_false (sc_ended (b));
    //  a newcomer is found by both, and finds both
    sc_proc_t *c = sc_node ("c", id_c, NULL);
    SC_EXPECT (a, 0, "ENTER", id_c, NULL, FIND_MS);
    SC_EXPECT (b, 0, "ENTER", id_c, NULL, FIND_MS);
    SC_EXPECT (c, 0, "ENTER", id_a, NULL, FIND_MS);
    SC_EXPECT (c, 0, "ENTER", id_b, NULL, FIND_MS);

    const char *ids [] = { id_a, id_b, NULL };
    char *json = sc_stats (ids, 3);
    if (!json) {
        sc_print_all ();
        fail_msg ("stats did not reach a and b");
    }
    for (int i = 0; i < 2; i++) {
        const char *id = ids [i];
        uint64_t malformed = sc_peer_counter (json, id, "beacon.ignored.malformed");
        uint64_t other = sc_peer_counter (json, id, "beacon.ignored.other-cluster");
        uint64_t limited = sc_peer_counter (json, id, "beacon.ignored.rate")
                         + sc_peer_counter (json, id, "beacon.ignored.refused")
                         + sc_peer_counter (json, id, "beacon.ignored.table-full");
        uint64_t alive = 99, connecting = 9999;
        assert_true (sc_json_u64 (json, &alive, "peers", id, "peers.alive", NULL));
        assert_true (sc_json_u64 (json, &connecting, "peers", id, "peers.connecting", NULL));
        print_message ("node %c: malformed %llu, other-cluster %llu, rate/refused %llu, "
                       "alive %llu, connecting %llu\n", 'a' + i,
                       (unsigned long long) malformed, (unsigned long long) other,
                       (unsigned long long) limited, (unsigned long long) alive,
                       (unsigned long long) connecting);
        assert_true (malformed > 0);
        assert_true (other > 0);
        assert_true (limited > 0);
        //  the other real node, the newcomer and the stats node: no fakes
        assert_true (alive <= 3);
        //  invented nodes never answered: far fewer half-open links than
        //  beacons, bounded by the backlog
        assert_true (connecting < FLOOD_FAKES / 10);
    }
    free (json);
    //  the flood did not make a and b lose each other
    sc_read (a);
    sc_read (b);
    assert_int_equal (sc_find (a, 0, "EXIT", id_b, NULL), -1);
    assert_int_equal (sc_find (b, 0, "EXIT", id_a, NULL), -1);
    assert_false (sc_ended (a));
    assert_false (sc_ended (b));
}


//  10. No message silently lost across a SIGSTOP longer than gone: a
//  publisher keeps publishing while its subscriber is stopped, long enough
//  that a third node (the witness) declares the subscriber gone; after
//  SIGCONT the subscriber meets the mesh again, and every message is
//  either received (once) or reported lost (GAP, no replay asked).
#define STOP_SUSPECT    "300"
#define STOP_GONE       "1000"
#define STOP_TOTAL      3000

//  Lines "from".."to - 1" to the publisher, a few at a time, pumping
static void
s_feed_slowly (sc_proc_t *pub, long from, long to)
{
    for (long i = from; i < to; i++) {
        sc_printf_input (pub, "%ld\n", i);
        if (i % 20 == 19)
            sc_pump (20);
    }
}

static void
test_no_silent_loss_across_a_stop_past_gone (void **state)
{
    (void) state;
    char sub_id [33], pub_id [33];
    sc_random_id (sub_id);
    sc_random_id (pub_id);
    sc_proc_t *witness = sc_mesh ("witness", NULL, "peers", "--suspect-ms", STOP_SUSPECT,
                                  "--gone-ms", STOP_GONE, NULL);
    sc_proc_t *sub = sc_mesh ("sub", NULL, "sub", "stop.#", "--no-replay", "--id", sub_id,
                              "--suspect-ms", STOP_SUSPECT, "--gone-ms", STOP_GONE, NULL);
    sc_io_t io = { .stdin_pipe = true };
    sc_proc_t *pub = sc_mesh ("pub", &io, "pub", "stop.x", "-", "--wait-subscribers", "1",
                              "--timeout", "20", "--linger", "3", "--id", pub_id,
                              "--suspect-ms", STOP_SUSPECT, "--gone-ms", STOP_GONE, NULL);
    SC_EXPECT (witness, 0, "ENTER", sub_id, NULL, FIND_MS);
    s_feed_slowly (pub, 0, 1);
    int64_t deadline = sc_now_ms () + FIND_MS;
    while (sc_count_prefix (sub, 0, "stop.x\t0") == 0 && sc_now_ms () < deadline)
        sc_pump (50);
    assert_int_equal (sc_count_prefix (sub, 0, "stop.x\t0"), 1);
    //  stopped until the witness declared it gone, and one gone longer,
    //  publishing all along
    size_t mark = witness->nlines;
    sc_signal (sub, SIGSTOP);
    long at = 1;
    deadline = sc_now_ms () + FIND_MS;
    while (sc_find (witness, mark, "EXIT", sub_id, NULL) < 0 && sc_now_ms () < deadline
       &&  at < STOP_TOTAL / 2) {
        s_feed_slowly (pub, at, at + 20);
        at += 20;
    }
    long gone = SC_EXPECT (witness, mark, "EXIT", sub_id, "silent", FIND_MS);
    int64_t until = sc_now_ms () + atoi (STOP_GONE);
    while (sc_now_ms () < until && at < STOP_TOTAL / 2) {
        s_feed_slowly (pub, at, at + 20);
        at += 20;
    }
    sc_signal (sub, SIGCONT);
    //  it meets the mesh again, and the rest is published meanwhile
    SC_EXPECT (witness, (size_t) gone, "ENTER", sub_id, NULL, FIND_MS);
    long resumed_at = at;
    s_feed_slowly (pub, at, STOP_TOTAL);
    sc_close_input (pub);
    //  every one is received or reported lost, at the latest when the
    //  publisher's last position reaches the subscriber
    deadline = sc_now_ms () + 3 * FIND_MS;
    while (sc_count_prefix (sub, 0, "stop.x\t") + sc_event_sum (sub, 0, "GAP", NULL)
           < STOP_TOTAL && sc_now_ms () < deadline)
        sc_pump (100);
    sc_pump_for (300);          //  nothing more may come
    size_t received = sc_count_prefix (sub, 0, "stop.x\t");
    uint64_t gaps = sc_event_sum (sub, 0, "GAP", NULL);
    print_message ("published %d, received %zu, GAP sum %llu\n", STOP_TOTAL, received,
                   (unsigned long long) gaps);
    //  each at most once, in order
    long last = -1;
    for (size_t i = 0; i < sub->nlines; i++)
        if (strncmp (sub->lines [i], "stop.x\t", 7) == 0) {
            long value = strtol (sub->lines [i] + 7, NULL, 10);
            if (value <= last || value >= STOP_TOTAL) {
                sc_print_output (sub);
                fail_msg ("message %ld after %ld", value, last);
            }
            last = value;
        }
    if (received + gaps != STOP_TOTAL) {
        sc_print_all ();
        fail_msg ("%d published, %zu received, %llu reported lost: %lld silently lost",
                  STOP_TOTAL, received, (unsigned long long) gaps,
                  (long long) STOP_TOTAL - (long long) (received + gaps));
    }
    //  and it did come back: messages published after it met the mesh
    //  again arrived
    assert_true (last >= resumed_at);
}

int
main (void)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_three_nodes_discover_each_other, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_killed_node_is_suspect_then_gone, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_clean_stop_says_bye, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_restart_with_same_id_is_exit_then_enter, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_clusters_on_one_port_never_mix, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_seeds_and_gossip_without_beacons, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_discovery_in_namespace_with_only_lo, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_peers_expect_exits_once_met, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_garbage_beacon_flood, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_no_silent_loss_across_a_stop_past_gone,
                                         sc_setup, sc_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
