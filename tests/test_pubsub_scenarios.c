/*  =========================================================================
    test_pubsub_scenarios - publish-subscribe across real processes

    Each test drives `meshbus pub` and `meshbus sub` processes on loopback
    and checks what a user of pub-sub relies on: fan-out with exact counts
    and order, AMQP topic routing with * and #, loss turned into GAP events
    whose counts match what the publisher dropped (and filled by replay),
    a publisher's memory staying bounded under a stopped subscriber, and
    durable subscriptions catching up after being away, also from a
    publisher restarted on its data dir.

    Bodies are message indices ("0", "1"... fed to `pub SUBJECT -` through
    its stdin), so a test can check every index arrived once and in order.
    A subscriber is "stopped" with SIGSTOP: its process is frozen, its
    sockets stay open, so the publisher's link fills exactly as with a
    subscriber that cannot keep up. Liveness timeouts are then set far
    beyond the test's waits, so a drop can only be the high-water mark.

    Every test has its own cluster and beacon port (tests/scenario.h); every
    wait is functional (it bounds a failing test, it never claims a speed).
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <sys/stat.h>

#include "scenario.h"

#define WAIT_MS     20000       //  bounds a failing wait
#define DACK_MS     1500        //  > the subscriber's durable ack interval (500 ms) + a tick

//  Liveness so slow that a frozen subscriber is never declared gone here
#define SLOW_LIVENESS   "--suspect-ms", "10000", "--gone-ms", "60000"

//  ---------------------------------------------------------------------
//  Reading what a subscriber printed: "SUBJECT<TAB>BODY" lines, where BODY
//  starts with the message's index

static bool
s_is_message (const char *line)
{
    return strchr (line, '\t') != NULL;
}

static size_t
s_messages (sc_proc_t *p)
{
    size_t count = 0;
    for (size_t i = 0; i < p->nlines; i++)
        count += s_is_message (p->lines [i]);
    return count;
}

//  Indices of the message lines, in the order printed; returns how many
//  (up to cap). subject, if not NULL, must be every line's subject.
static size_t
s_indices (sc_proc_t *p, const char *subject, long *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nlines && n < cap; i++) {
        const char *tab = strchr (p->lines [i], '\t');
        if (!tab)
            continue;
        if (subject && (strncmp (p->lines [i], subject, strlen (subject))
                        || p->lines [i] + strlen (subject) != tab))
            fail_msg ("%s: unexpected subject in '%s'", p->label, p->lines [i]);
        char *end;
        out [n++] = strtol (tab + 1, &end, 10);
        if (end == tab + 1)
            fail_msg ("%s: body without an index in '%s'", p->label, p->lines [i]);
    }
    return n;
}

//  Is there a message line with exactly this subject and body?
static bool
s_has_message (sc_proc_t *p, const char *subject, const char *body)
{
    char line [512];
    snprintf (line, sizeof line, "%s\t%s", subject, body);
    for (size_t i = 0; i < p->nlines; i++)
        if (strcmp (p->lines [i], line) == 0)
            return true;
    return false;
}

//  Wait until p printed at least n message lines, or fail
static void
s_wait_messages (sc_proc_t *p, size_t n, int timeout_ms)
{
    int64_t deadline = sc_now_ms () + timeout_ms;
    while (s_messages (p) < n) {
        if (sc_now_ms () > deadline || (p->fd < 0 && sc_ended (p))) {
            sc_print_all ();
            fail_msg ("%s printed %zu of %zu messages", p->label, s_messages (p), n);
        }
        sc_pump (100);
    }
}

static void
s_wait_message (sc_proc_t *p, const char *subject, const char *body, int timeout_ms)
{
    int64_t deadline = sc_now_ms () + timeout_ms;
    while (!s_has_message (p, subject, body)) {
        if (sc_now_ms () > deadline || (p->fd < 0 && sc_ended (p))) {
            sc_print_all ();
            fail_msg ("%s did not print %s %s", p->label, subject, body);
        }
        sc_pump (100);
    }
}

//  Feed lines "from".."to - 1" to a publisher's stdin, in large writes
static void
s_feed (sc_proc_t *pub, long from, long to)
{
    char chunk [8192];
    size_t used = 0;
    for (long i = from; i < to; i++) {
        used += (size_t) snprintf (chunk + used, sizeof chunk - used, "%ld\n", i);
        if (used > sizeof chunk - 32) {
            sc_write_input (pub, chunk, used);
            used = 0;
        }
    }
    sc_write_input (pub, chunk, used);
}

//  A subscriber's process must end by itself with exit 0
static void
s_expect_exit_0 (sc_proc_t *p, int timeout_ms)
{
    if (!sc_wait_exit (p, timeout_ms)) {
        sc_print_all ();
        fail_msg ("%s did not exit within %d ms", p->label, timeout_ms);
    }
    if (sc_exit_code (p) != 0) {
        sc_print_all ();
        fail_msg ("%s exited with %d", p->label, sc_exit_code (p));
    }
}

//  Stop a lingering process with SIGTERM (it exits 0 at once) and reap it
static void
s_stop (sc_proc_t *p)
{
    sc_signal (p, SIGTERM);
    s_expect_exit_0 (p, WAIT_MS);
}

//  Poll `stats --json` until node_id reports counter `name` >= at_least
static char *
s_stats_when (const char *node_id, const char *name, uint64_t at_least)
{
    const char *ids [] = { node_id, NULL };
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while (sc_now_ms () < deadline) {
        char *json = sc_stats (ids, 3);
        assert_non_null (json);
        if (sc_peer_counter (json, node_id, name) >= at_least)
            return json;
        free (json);
    }
    fail_msg ("%s never counted %s >= %llu", node_id, name, (unsigned long long) at_least);
    return NULL;
}

//  ---------------------------------------------------------------------
//  1. Fan-out: three subscribers each get all 500 messages, once, in order

static void
test_fan_out_to_three_subscribers (void **state)
{
    (void) state;
    sc_proc_t *sub [3];
    for (int i = 0; i < 3; i++) {
        char label [8];
        snprintf (label, sizeof label, "sub%d", i + 1);
        sub [i] = sc_mesh (label, NULL, "sub", "orders.#", "--count", "500",
                           "--timeout", "30", NULL);
    }
    sc_io_t io = { .stdin_pipe = true };
    sc_proc_t *pub = sc_mesh ("pub", &io, "pub", "orders.eu.created", "-",
                              "--wait-subscribers", "3", "--timeout", "20", NULL);
    s_feed (pub, 0, 500);
    sc_close_input (pub);
    s_expect_exit_0 (pub, WAIT_MS);
    for (int i = 0; i < 3; i++) {
        s_expect_exit_0 (sub [i], WAIT_MS);
        long index [600];
        size_t n = s_indices (sub [i], "orders.eu.created", index, 600);
        assert_int_equal (n, 500);
        for (size_t k = 0; k < n; k++)
            assert_int_equal (index [k], (long) k);
        assert_int_equal (sc_event_sum (sub [i], 0, "GAP", NULL), 0);
    }
}

//  ---------------------------------------------------------------------
//  2. Wildcards: each subscriber gets exactly the subjects its pattern
//  matches under AMQP topic rules (* one token, # zero or more)

static void
test_wildcard_routing (void **state)
{
    (void) state;
    static const char *patterns [] = { "kern.*", "*.critical", "kern.#", "#", "a.#.b" };
    static const char *subjects [] = { "kern.critical", "kern.disk.full", "app.critical",
                                       "a.b", "a.x.y.b" };
    //  expected [pattern][subject]
    static const bool expected [5][5] = {
        { 1, 0, 0, 0, 0 },      //  kern.*: one token after kern
        { 1, 0, 1, 0, 0 },      //  *.critical
        { 1, 1, 0, 0, 0 },      //  kern.#
        { 1, 1, 1, 1, 1 },      //  #: everything
        { 0, 0, 0, 1, 1 },      //  a.#.b: # may be zero tokens
    };
    sc_proc_t *sub [5];
    for (int i = 0; i < 5; i++)
        sub [i] = sc_mesh (patterns [i], NULL, "sub", patterns [i], "--timeout", "60", NULL);
    //  one publisher per subject, in turn, each waiting until every
    //  subscriber that should get its subject is known
    for (int s = 0; s < 5; s++) {
        int want = 0;
        for (int i = 0; i < 5; i++)
            want += expected [i][s];
        char count [8];
        snprintf (count, sizeof count, "%d", want);
        sc_proc_t *pub = sc_mesh (subjects [s], NULL, "pub", subjects [s], subjects [s],
                                  "--wait-subscribers", count, "--timeout", "20", NULL);
        s_expect_exit_0 (pub, WAIT_MS);
    }
    for (int i = 0; i < 5; i++) {
        size_t want = 0;
        for (int s = 0; s < 5; s++)
            want += expected [i][s];
        s_wait_messages (sub [i], want, WAIT_MS);
    }
    //  anything that should not have come had as long as what did to arrive
    sc_pump_for (500);
    for (int i = 0; i < 5; i++) {
        size_t want = 0;
        for (int s = 0; s < 5; s++) {
            want += expected [i][s];
            if (s_has_message (sub [i], subjects [s], subjects [s]) != expected [i][s]) {
                sc_print_all ();
                fail_msg ("pattern %s %s %s", patterns [i],
                          expected [i][s]? "missed": "wrongly got", subjects [s]);
            }
        }
        assert_int_equal (s_messages (sub [i]), want);
    }
}

//  ---------------------------------------------------------------------
//  3. Forced drop: a frozen subscriber behind a publisher with a link
//  high-water mark of 20. The first message goes through while the
//  subscriber runs (so the publisher knows it), then the subscriber is
//  frozen and 2999 more are published: most hit the HWM and are dropped.
//  The publisher's counter pubsub.dropped.hwm (read with `stats --json`
//  while it lingers) must equal the sum of GAP events the subscriber
//  reports once thawed; without replay, messages + gaps = 3000 exactly;
//  with replay, every index arrives once and REPLAYED sums to the gaps.

#define DROP_TOTAL  3000

typedef struct {
    sc_proc_t *pub, *sub;
    char pub_id [33], sub_id [33];
    uint64_t dropped;
} drop_run_t;

static void
s_drop_run (drop_run_t *run, bool replay)
{
    sc_random_id (run->pub_id);
    sc_random_id (run->sub_id);
    run->sub = replay
             ? sc_mesh ("sub", NULL, "sub", "orders.#", "--id", run->sub_id, SLOW_LIVENESS, NULL)
             : sc_mesh ("sub", NULL, "sub", "orders.#", "--no-replay", "--id", run->sub_id,
                        SLOW_LIVENESS, NULL);
    sc_io_t io = { .stdin_pipe = true };
    run->pub = sc_mesh ("pub", &io, "pub", "orders.eu.created", "-", "--wait-subscribers", "1",
                        "--timeout", "20", "--hwm", "20", "--linger", "60", "--id", run->pub_id,
                        SLOW_LIVENESS, NULL);
    s_feed (run->pub, 0, 1);
    s_wait_message (run->sub, "orders.eu.created", "0", WAIT_MS);
    sc_signal (run->sub, SIGSTOP);
    s_feed (run->pub, 1, DROP_TOTAL);
    sc_close_input (run->pub);
    //  the publisher is done once it counted every publish
    char *json = s_stats_when (run->pub_id, "pubsub.published", DROP_TOTAL);
    run->dropped = sc_link_counter (json, run->pub_id, run->sub_id, "pubsub.dropped.hwm");
    uint64_t gone = sc_link_counter (json, run->pub_id, run->sub_id, "pubsub.dropped.peer-gone");
    free (json);
    assert_int_equal (gone, 0);
    //  3000 tiny messages into a 20-message link to a frozen reader: most
    //  must have been dropped (the kernel's socket buffers take some)
    assert_true (run->dropped > 0);
    sc_signal (run->sub, SIGCONT);
}

static void
test_forced_drop_reports_gaps_without_replay (void **state)
{
    (void) state;
    drop_run_t run;
    s_drop_run (&run, false);
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while (s_messages (run.sub) + sc_event_sum (run.sub, 0, "GAP", NULL) < DROP_TOTAL
       &&  sc_now_ms () < deadline)
        sc_pump (100);
    sc_pump_for (300);          //  nothing more may come
    s_stop (run.sub);
    s_stop (run.pub);
    long *index = (long *) calloc (DROP_TOTAL + 1, sizeof (long));
    size_t n = s_indices (run.sub, "orders.eu.created", index, DROP_TOTAL + 1);
    uint64_t gaps = sc_event_sum (run.sub, 0, "GAP", NULL);
    print_message ("dropped.hwm %llu, received %zu, GAP sum %llu\n",
                   (unsigned long long) run.dropped, n, (unsigned long long) gaps);
    if (n + gaps != DROP_TOTAL || gaps != run.dropped)
        sc_print_output (run.sub);
    assert_int_equal (n + gaps, DROP_TOTAL);
    assert_int_equal (gaps, run.dropped);
    //  what came, came once and in order; nothing was replayed
    for (size_t k = 1; k < n; k++)
        assert_true (index [k] > index [k - 1]);
    assert_int_equal (sc_count_prefix (run.sub, 0, "REPLAYED "), 0);
    free (index);
}

static void
test_forced_drop_is_filled_by_replay (void **state)
{
    (void) state;
    drop_run_t run;
    s_drop_run (&run, true);
    //  done when every index came and the replays are accounted for
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while ((s_messages (run.sub) < DROP_TOTAL
        ||  sc_event_sum (run.sub, 0, "REPLAYED", NULL) + sc_event_sum (run.sub, 0, "GAP_LOST", NULL)
            < sc_event_sum (run.sub, 0, "GAP", NULL))
       &&  sc_now_ms () < deadline)
        sc_pump (100);
    sc_pump_for (300);          //  nothing more may come
    s_stop (run.sub);
    s_stop (run.pub);
    long *index = (long *) calloc (DROP_TOTAL + 10, sizeof (long));
    size_t n = s_indices (run.sub, "orders.eu.created", index, DROP_TOTAL + 10);
    uint64_t gaps = sc_event_sum (run.sub, 0, "GAP", NULL);
    uint64_t replayed = sc_event_sum (run.sub, 0, "REPLAYED", NULL);
    uint64_t lost = sc_event_sum (run.sub, 0, "GAP_LOST", NULL);
    print_message ("dropped.hwm %llu, received %zu, GAP %llu, REPLAYED %llu, GAP_LOST %llu\n",
                   (unsigned long long) run.dropped, n, (unsigned long long) gaps,
                   (unsigned long long) replayed, (unsigned long long) lost);
    if (n != DROP_TOTAL || gaps != run.dropped || replayed != gaps || lost)
        sc_print_output (run.sub);
    //  every index exactly once (replays arrive late, so not in order)
    int *seen = (int *) calloc (DROP_TOTAL, sizeof (int));
    for (size_t k = 0; k < n; k++) {
        assert_true (index [k] >= 0 && index [k] < DROP_TOTAL);
        seen [index [k]]++;
    }
    for (int i = 0; i < DROP_TOTAL; i++)
        if (seen [i] != 1)
            fail_msg ("index %d arrived %d times", i, seen [i]);
    assert_int_equal (n, DROP_TOTAL);
    assert_int_equal (gaps, run.dropped);
    assert_int_equal (replayed, gaps);
    assert_int_equal (lost, 0);
    free (seen);
    free (index);
}

//  ---------------------------------------------------------------------
//  4. Slow subscriber, bounded publisher memory. 300 000 messages of 1 KiB
//  (293 MiB of bodies) go to a frozen subscriber, with the defaults: link
//  HWM 100 000 messages, retained log 100 000 messages / 64 MiB.
//
//  What the publisher may hold at most: the link queue, 100 000 messages
//  x (1 KiB body + ~100 B of zmq message, envelope and allocator
//  overhead) ~ 110 MiB; the retained log, 64 MiB of records plus its
//  index; the process itself ~10 MiB. About 190 MiB: the bound is
//  BOUND_MIB = 320 MiB, generous for allocator slack. Without the HWM the
//  queue alone would take 300 000 x 1.1 KiB ~ 320 MiB (plus the log: 400
//  MiB); without the log's byte bound the log would take 293 MiB (plus
//  the queue: 410 MiB). Either leak breaks the bound by a wide margin.
//  The peak is VmHWM of /proc/PID/status, read while the publisher
//  lingers after its last publish; VmRSS is also sampled during the run.
//
//  The subscriber runs --no-replay: drops counted at the publisher must
//  equal the gaps it reports, and messages + gaps = all published.

#define BULK_COUNT  300000
#define BULK_BODY   1024
#define BOUND_MIB   320

static long
s_file_lines (const char *path, long *offset, long lines)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return lines;
    if (fseek (file, *offset, SEEK_SET) == 0) {
        char buf [65536];
        size_t n;
        while ((n = fread (buf, 1, sizeof buf, file)) > 0) {
            for (size_t i = 0; i < n; i++)
                lines += buf [i] == '\n';
            *offset += (long) n;
        }
    }
    fclose (file);
    return lines;
}

static void
test_slow_subscriber_bounded_publisher_memory (void **state)
{
    (void) state;
    char pub_id [33], sub_id [33], out [128];
    sc_random_id (pub_id);
    sc_random_id (sub_id);
    snprintf (out, sizeof out, "%s/sub.out", sc_tmpdir ());
    sc_io_t sub_io = { .stdout_path = out };
    sc_proc_t *sub = sc_mesh ("sub", &sub_io, "sub", "bulk.#", "--no-replay", "--id", sub_id,
                              SLOW_LIVENESS, NULL);
    //  An ASan build of the tool keeps 256 MiB of freed blocks in
    //  quarantine by default, which is ASan's memory, not the publisher's:
    //  the bound is checked with the quarantine off (the child inherits it)
    const char *tool = getenv ("MESHBUS_TOOL");
    if (tool && strstr (tool, "-asan/")) {
        print_message ("ASan build: publisher runs with quarantine_size_mb=0\n");
        setenv ("ASAN_OPTIONS", "quarantine_size_mb=0", 1);
    }
    sc_io_t pub_io = { .stdin_pipe = true };
    sc_proc_t *pub = sc_mesh ("pub", &pub_io, "pub", "bulk.data", "-", "--wait-subscribers", "1",
                              "--timeout", "20", "--linger", "60", "--id", pub_id,
                              SLOW_LIVENESS, NULL);
    //  lines of BULK_BODY bytes: the index, then padding
    enum { LINES_PER_WRITE = 32 };
    char *chunk = (char *) malloc (LINES_PER_WRITE * (BULK_BODY + 1));
    for (int i = 0; i < LINES_PER_WRITE; i++) {
        memset (chunk + i * (BULK_BODY + 1), 'x', BULK_BODY);
        chunk [i * (BULK_BODY + 1) + BULK_BODY] = '\n';
    }
    long offset = 0, lines = 0;
    char head [16];
    snprintf (head, sizeof head, "%-9d", 0);
    memcpy (chunk, head, 9);
    sc_write_input (pub, chunk, BULK_BODY + 1);
    int64_t deadline = sc_now_ms () + WAIT_MS;
    while ((lines = s_file_lines (out, &offset, lines)) < 1 && sc_now_ms () < deadline)
        sc_pump (20);
    assert_int_equal (lines, 1);
    sc_signal (sub, SIGSTOP);

    long max_rss = 0;
    for (long i = 1; i < BULK_COUNT; i += LINES_PER_WRITE) {
        int batch = BULK_COUNT - i < LINES_PER_WRITE? (int) (BULK_COUNT - i): LINES_PER_WRITE;
        for (int k = 0; k < batch; k++) {
            snprintf (head, sizeof head, "%-9ld", i + k);
            memcpy (chunk + k * (BULK_BODY + 1), head, 9);
        }
        sc_write_input (pub, chunk, (size_t) batch * (BULK_BODY + 1));
        if ((i / LINES_PER_WRITE) % 64 == 0) {
            long rss = sc_proc_status_kib (pub->pid, "VmRSS");
            if (rss > max_rss)
                max_rss = rss;
        }
    }
    free (chunk);
    sc_close_input (pub);
    char *json = s_stats_when (pub_id, "pubsub.published", BULK_COUNT);
    uint64_t dropped = sc_link_counter (json, pub_id, sub_id, "pubsub.dropped.hwm");
    uint64_t errors = sc_link_counter (json, pub_id, sub_id, "pubsub.dropped.send-error");
    uint64_t gone = sc_link_counter (json, pub_id, sub_id, "pubsub.dropped.peer-gone");
    free (json);
    long peak = sc_proc_status_kib (pub->pid, "VmHWM");
    long rss = sc_proc_status_kib (pub->pid, "VmRSS");
    print_message ("publisher VmHWM %ld MiB, VmRSS %ld MiB (sampled max %ld MiB, bound %d); "
                   "dropped.hwm %llu\n", peak / 1024, rss / 1024, max_rss / 1024, BOUND_MIB,
                   (unsigned long long) dropped);
    unsetenv ("ASAN_OPTIONS");
    assert_true (peak > 0);
    assert_true (peak < BOUND_MIB * 1024L);
    assert_int_equal (errors, 0);
    assert_int_equal (gone, 0);
    //  100 000 queued at most: at least 200 000 - (socket buffers) dropped
    assert_true (dropped >= BULK_COUNT / 2);

    sc_signal (sub, SIGCONT);
    deadline = sc_now_ms () + 60000;
    while ((uint64_t) (lines = s_file_lines (out, &offset, lines))
           + sc_event_sum (sub, 0, "GAP", NULL) < BULK_COUNT && sc_now_ms () < deadline)
        sc_pump (100);
    sc_pump_for (300);
    s_stop (sub);
    s_stop (pub);
    lines = s_file_lines (out, &offset, lines);
    uint64_t gaps = sc_event_sum (sub, 0, "GAP", NULL);
    print_message ("subscriber got %ld messages, GAP sum %llu\n", lines,
                   (unsigned long long) gaps);
    assert_int_equal ((uint64_t) lines + gaps, BULK_COUNT);
    assert_int_equal (gaps, dropped);
}

//  ---------------------------------------------------------------------
//  5. Durable subscription away and back: it gets what was published
//  while it was gone, once. The publisher stays up throughout; it reads
//  bodies from a pipe the test writes to.

//  Check a returning durable subscriber: indices first..last each exactly
//  once and in order; other lines only indices below first (the at-least-
//  once duplicates allowed for messages after its last acknowledgement)
static void
s_check_caught_up (sc_proc_t *sub, long first, long last)
{
    long index [256];
    size_t n = s_indices (sub, "audit.x", index, 256);
    long next = first;
    size_t dups = 0;
    for (size_t k = 0; k < n; k++) {
        if (index [k] < first && next == first) {
            dups++;
            continue;
        }
        if (index [k] != next) {
            sc_print_output (sub);
            fail_msg ("expected index %ld, got %ld", next, index [k]);
        }
        next++;
    }
    assert_int_equal (next, last + 1);
    if (dups)
        print_message ("%zu duplicates from before the last acknowledgement\n", dups);
}

static void
test_durable_subscriber_gets_what_it_missed (void **state)
{
    (void) state;
    sc_proc_t *sub = sc_mesh ("sub1", NULL, "sub", "audit.#", "--durable", "d1", NULL);
    sc_io_t io = { .stdin_pipe = true };
    sc_proc_t *pub = sc_mesh ("pub", &io, "pub", "audit.x", "-", "--wait-subscribers", "1",
                              "--timeout", "20", "--linger", "60", NULL);
    s_feed (pub, 0, 10);
    s_wait_messages (sub, 10, WAIT_MS);
    sc_pump_for (DACK_MS);      //  let it acknowledge what it got
    s_stop (sub);
    long index [16];
    assert_int_equal (s_indices (sub, "audit.x", index, 16), 10);
    for (int k = 0; k < 10; k++)
        assert_int_equal (index [k], k);
    sc_release (sub);

    //  20 more while it is away; then the input ends and the publisher
    //  lingers, serving catch-up
    s_feed (pub, 10, 30);
    sc_close_input (pub);
    sub = sc_mesh ("sub2", NULL, "sub", "audit.#", "--durable", "d1", NULL);
    s_wait_message (sub, "audit.x", "29", WAIT_MS);
    sc_pump_for (300);          //  nothing more may come
    s_stop (sub);
    s_check_caught_up (sub, 10, 29);
    s_stop (pub);
}

//  ---------------------------------------------------------------------
//  6. The same with the publisher restarted on its data dir in between:
//  the retained log and the durable position come back from LMDB

static void
test_restarted_publisher_serves_durable_subscriber (void **state)
{
    (void) state;
    const char *dir = sc_tmpdir ();
    sc_proc_t *sub = sc_mesh ("sub1", NULL, "sub", "audit.#", "--durable", "d1", NULL);
    sc_io_t io = { .stdin_pipe = true };
    sc_proc_t *pub = sc_mesh ("pub1", &io, "pub", "audit.x", "-", "--data-dir", dir,
                              "--wait-subscribers", "1", "--timeout", "20", NULL);
    s_feed (pub, 0, 10);
    s_wait_messages (sub, 10, WAIT_MS);
    sc_pump_for (DACK_MS);
    s_stop (sub);
    assert_int_equal (s_messages (sub), 10);
    sc_release (sub);
    s_feed (pub, 10, 30);
    sc_close_input (pub);
    s_expect_exit_0 (pub, WAIT_MS);
    sc_release (pub);

    //  a new publisher process on the same data dir, publishing nothing
    pub = sc_mesh ("pub2", NULL, "pub", "audit.x", "--count", "0", "--data-dir", dir,
                   "--linger", "60", NULL);
    sub = sc_mesh ("sub2", NULL, "sub", "audit.#", "--durable", "d1", NULL);
    s_wait_message (sub, "audit.x", "29", WAIT_MS);
    sc_pump_for (300);
    s_stop (sub);
    s_check_caught_up (sub, 10, 29);
    s_stop (pub);
}

int
main (void)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_fan_out_to_three_subscribers, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_wildcard_routing, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_forced_drop_reports_gaps_without_replay,
                                         sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_forced_drop_is_filled_by_replay, sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_slow_subscriber_bounded_publisher_memory,
                                         sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_durable_subscriber_gets_what_it_missed,
                                         sc_setup, sc_teardown),
        cmocka_unit_test_setup_teardown (test_restarted_publisher_serves_durable_subscriber,
                                         sc_setup, sc_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
