/*  =========================================================================
    test_pubsub_lan - pub-sub across hosts of an emulated LAN, with a cut

    Four "hosts" (network namespaces on one bridge, tests/lab/lab.sh): a
    publisher on h1 publishes numbered messages steadily (one per 5 ms,
    bodies "<index> xxx..." from its stdin), subscribers on h2, h3 and h4
    take them over TCP on eth0. h3 is cut off the switch for 2 s while the
    publisher runs, then its port comes back. Every subscriber must end up
    with every index exactly once: what h3 lost is reported as GAP and
    comes back through replay (REPLAYED = GAP, no GAP_LOST).

    Two variants:
    - the cut is shorter than the liveness timeouts (gone 10 s): nobody
      sees an EXIT. Nothing would be lost then (TCP retransmits what the
      link queued), so the test makes the cut cost messages: the publisher
      runs with a link HWM of 50 and h1's TCP send buffer is capped at 64
      KiB (net.ipv4.tcp_wmem in its namespace), so the ~400 messages of
      ~500 B published during the cut overflow the link and are dropped
      and counted. The publisher's pubsub.dropped.hwm for h3 must equal
      the GAP h3 reports.
    - the cut is longer than the liveness timeouts (gone 1 s): both sides
      see EXIT, the publisher drops for the gone subscriber, and after the
      heal they meet again. The publisher kept the gone subscriber's
      stream (60 s), so the first message after the heal shows the jump in
      sequence: h3 reports the gap and asks for the replay.

    Needs root and `ip netns`; otherwise the tests print why and
    are skipped. The LAN has a prefix of its own (LAB_PREFIX); the
    teardown ends our processes by pid, then takes the LAN down.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "scenario.h"

#define HOSTS       4
#define COUNT       1200        //  messages: 6 s at one per 5 ms
#define BODY_PAD    500         //  bytes of padding after the index
#define CUT_AFTER   200         //  h3 has this many messages when it is cut
#define CUT_MS      2000        //  how long h3 stays cut (the scenario, not a timeout)
#define WAIT_MS     30000       //  bounds a failing wait

static int
s_setup (void **state)
{
    sc_setup (state);
    sc_lan_init ("mp");
    return 0;
}

static int
s_teardown (void **state)
{
    sc_teardown (state);        //  our processes first, by pid
    sc_lan_down ();
    return 0;
}

//  Index of each message line (SUBJECT<TAB>INDEX ...) counted into seen[]
//  (COUNT entries); returns the number of message lines
static size_t
s_tally (sc_proc_t *p, int *seen)
{
    memset (seen, 0, COUNT * sizeof (int));
    size_t n = 0;
    for (size_t i = 0; i < p->nlines; i++) {
        const char *tab = strchr (p->lines [i], '\t');
        if (!tab)
            continue;
        n++;
        long index = strtol (tab + 1, NULL, 10);
        if (index >= 0 && index < COUNT)
            seen [index]++;
    }
    return n;
}

//  Does p have every index exactly once, and its replays accounted for?
static bool
s_complete (sc_proc_t *p, int *seen)
{
    if (s_tally (p, seen) != COUNT)
        return false;
    for (int i = 0; i < COUNT; i++)
        if (seen [i] != 1)
            return false;
    return sc_event_sum (p, 0, "REPLAYED", NULL) + sc_event_sum (p, 0, "GAP_LOST", NULL)
        >= sc_event_sum (p, 0, "GAP", NULL);
}

//  `meshbus stats --json` from h2 while everybody runs; the JSON (caller
//  frees) once every id answered, or NULL
static char *
s_lan_stats (const char *const *ids)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        sc_proc_t *p = sc_lan_mesh (2, "stats", NULL, "stats", "--json", "--timeout", "3", NULL);
        if (!sc_wait_exit (p, 15000))
            fail_msg ("stats did not finish");
        bool complete = sc_exit_code (p) == 0 && p->nlines > 0;
        const char *json = complete? p->lines [p->nlines - 1]: NULL;
        for (int i = 0; complete && ids [i]; i++)
            complete = sc_json_member (sc_json_member (json, "peers"), ids [i]) != NULL;
        char *copy = complete? strdup (json): NULL;
        if (!copy && attempt == 2)
            sc_print_output (p);
        sc_release (p);
        if (copy)
            return copy;
    }
    return NULL;
}

static void
s_cut_and_heal (bool exit_on_cut)
{
    sc_lan_or_skip (HOSTS);
    //  h1's TCP send buffer small, so the link's HWM is what absorbs a cut
    //  (net.ipv4.tcp_wmem is per network namespace)
    char *sysctl [] = { sc_lan.path, "run", "h1", "sysctl", "-qw",
                        "net.ipv4.tcp_wmem=4096 16384 65536", NULL };
    sc_proc_t *tune = sc_run ("sysctl", sc_lan.env, sysctl, 10000);
    assert_int_equal (sc_exit_code (tune), 0);
    sc_release (tune);

    const char *suspect = exit_on_cut? "300": "3000";
    const char *gone = exit_on_cut? "1000": "10000";
    char pub_id [33], sub_id [HOSTS + 1][33];
    sc_random_id (pub_id);
    sc_proc_t *sub [HOSTS + 1];
    for (int h = 2; h <= HOSTS; h++) {
        char label [16];
        snprintf (label, sizeof label, "h%d sub", h);
        sc_random_id (sub_id [h]);
        sub [h] = sc_lan_mesh (h, label, NULL, "sub", "lan.#", "--id", sub_id [h],
                               "--suspect-ms", suspect, "--gone-ms", gone, NULL);
    }
    sc_io_t io = { .stdin_pipe = true };
    sc_proc_t *pub = sc_lan_mesh (1, "h1 pub", &io, "pub", "lan.events", "-",
                                  "--interval-ms", "5", "--wait-subscribers", "3",
                                  "--timeout", "20", "--hwm", "50", "--linger", "60",
                                  "--id", pub_id, "--suspect-ms", suspect, "--gone-ms", gone,
                                  NULL);
    //  the whole input at once: the publisher reads it at its own pace
    size_t size = (size_t) COUNT * (BODY_PAD + 8);
    char *input = (char *) malloc (size), *at = input;
    for (int i = 0; i < COUNT; i++) {
        at += sprintf (at, "%d ", i);
        memset (at, 'x', BODY_PAD);
        at += BODY_PAD;
        *at++ = '\n';
    }
    assert_true (sc_input_capacity (pub, 1 << 20) >= at - input);
    sc_write_input (pub, input, (size_t) (at - input));
    sc_close_input (pub);
    free (input);

    //  cut h3 while the messages flow
    int *seen = (int *) calloc (COUNT, sizeof (int));
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while (s_tally (sub [3], seen) < CUT_AFTER && sc_now_ms () < deadline)
        sc_pump (50);
    if (s_tally (sub [3], seen) < CUT_AFTER) {
        sc_print_all ();
        fail_msg ("h3 got %zu messages, not %d", s_tally (sub [3], seen), CUT_AFTER);
    }
    assert_int_equal (sc_lan_cmd ("cut", "h3", NULL), 0);
    sc_pump_for (CUT_MS);
    assert_int_equal (sc_lan_cmd ("heal", "h3", NULL), 0);

    //  every subscriber ends with every index once
    deadline = sc_now_ms () + WAIT_MS;
    for (int h = 2; h <= HOSTS; h++) {
        while (!s_complete (sub [h], seen) && sc_now_ms () < deadline)
            sc_pump (100);
        if (!s_complete (sub [h], seen)) {
            sc_print_output (sub [h]);
            sc_print_output (pub);
            size_t n = s_tally (sub [h], seen);
            for (int i = 0; i < COUNT; i++)
                if (seen [i] != 1)
                    fail_msg ("h%d: %zu messages; index %d arrived %d times", h, n, i, seen [i]);
            fail_msg ("h%d: every index once, but replays not accounted for", h);
        }
    }
    sc_pump_for (300);          //  nothing more may come
    for (int h = 2; h <= HOSTS; h++) {
        assert_int_equal (s_tally (sub [h], seen), COUNT);
        if (h != 3)             //  the others lost nothing
            assert_int_equal (sc_event_sum (sub [h], 0, "GAP", NULL), 0);
    }
    uint64_t gaps = sc_event_sum (sub [3], 0, "GAP", NULL);
    uint64_t replayed = sc_event_sum (sub [3], 0, "REPLAYED", NULL);
    uint64_t lost = sc_event_sum (sub [3], 0, "GAP_LOST", NULL);

    //  what the publisher and h3 saw of the cut
    const char *ids [] = { pub_id, sub_id [3], NULL };
    char *json = s_lan_stats (ids);
    assert_non_null (json);
    uint64_t pub_exited = sc_peer_counter (json, pub_id, "peers.exited");
    uint64_t sub_exited = sc_peer_counter (json, sub_id [3], "peers.exited");
    uint64_t dropped = sc_link_counter (json, pub_id, sub_id [3], "pubsub.dropped.hwm");
    free (json);
    print_message ("h3: GAP %llu, REPLAYED %llu, GAP_LOST %llu; publisher: dropped.hwm %llu "
                   "for h3 (since it last entered), peers.exited %llu; h3 peers.exited %llu\n",
                   (unsigned long long) gaps, (unsigned long long) replayed,
                   (unsigned long long) lost, (unsigned long long) dropped,
                   (unsigned long long) pub_exited, (unsigned long long) sub_exited);
    assert_true (gaps > 0);
    assert_int_equal (replayed, gaps);
    assert_int_equal (lost, 0);
    if (exit_on_cut) {
        assert_true (pub_exited >= 1);
        assert_true (sub_exited >= 1);
    }
    else {
        assert_int_equal (pub_exited, 0);
        assert_int_equal (sub_exited, 0);
        assert_int_equal (dropped, gaps);
    }
    free (seen);
}

//  1. A 2 s cut within the liveness timeouts: no EXIT; what the link
//  dropped during the cut is reported and replayed
static void
test_cut_without_exit_is_replayed (void **state)
{
    (void) state;
    s_cut_and_heal (false);
}

//  2. A 2 s cut beyond the liveness timeouts: EXIT on both sides, and the
//  gap is still reported and replayed once they meet again
static void
test_cut_with_exit_is_replayed_after_heal (void **state)
{
    (void) state;
    s_cut_and_heal (true);
}

int
main (void)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_cut_without_exit_is_replayed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cut_with_exit_is_replayed_after_heal,
                                         s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
