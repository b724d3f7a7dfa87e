/*  =========================================================================
    test_pubsub - publish-subscribe, in one process (plus forked subscribers)

    Every test starts real nodes on loopback in a cluster of its own with a
    random name and on a random beacon port, so test runs never mix. Each
    test states one fact a user of pub-sub relies on; the first one reads
    like the usage example.

    Loss is forced, not hoped for: a subscriber runs in a forked child
    (forked before any node exists in this process, so the child inherits
    no threads) and is stopped with SIGSTOP while the publisher, whose link
    high-water mark is small, publishes far more than the link and the
    kernel's socket buffers can hold. Every message past that is dropped at
    the publisher (counted as pubsub.dropped.hwm), always at the tail of the
    burst. The child reports what it saw through a pipe; it never calls
    cmocka (an assert in a child would unwind into the parent's runner).
    TEST_PUBSUB_VERBOSE=1 prints each loss scenario's figures.

    Nodes have a keeper thread, so tests pump every node with
    mesh_node_dispatch() while they wait: nothing else runs handlers. Every
    wait is functional: it bounds a failing test, it never claims a speed.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#include <pthread.h>

#include "meshbus.h"
#include "meshbus/pattern.h"      //  mesh_head_check

#define WAIT_MS         10000       //  ceiling of every wait; valgrind is slow
#define BEACON_MS       100         //  fast discovery in tests
#define MAX_KEPT        64          //  messages a recorder keeps
#define SETTLE_MS       300         //  pumping after the expected, to catch extras
#define DACK_WAIT_MS    1200        //  > 2 durable ack intervals (500 ms)


//  Loss scenarios (see the top comment)
#define LOSS_HWM        10          //  publisher's link high-water mark
#define LOSS_BODY       1024        //  bytes per message
#define LOSS_COUNT      4000        //  messages published while the subscriber is stopped
#define LOSS_AFTER      10          //  messages published after it resumed

//  ---------------------------------------------------------------------
//  Helpers

#include "testnet.h"
#define s_net() s_net_named ("test-pubsub")

//  Run handlers of every node given (NULL ends the list) for a few ms
static void
s_pump (mesh_node_t *a, mesh_node_t *b, mesh_node_t *c)
{
    if (a)
        mesh_node_dispatch (a, 5);
    if (b)
        mesh_node_dispatch (b, 5);
    if (c)
        mesh_node_dispatch (c, 5);
}

static void
s_pump_for (mesh_node_t *a, mesh_node_t *b, mesh_node_t *c, int msecs)
{
    int64_t until = s_now () + msecs;
    while (s_now () < until)
        s_pump (a, b, c);
}

//  Pump until *flag reaches value or WAIT_MS passes
static bool
s_pump_until (mesh_node_t *a, mesh_node_t *b, mesh_node_t *c, volatile int *flag, int value)
{
    int64_t until = s_now () + WAIT_MS;
    while (*flag < value && s_now () < until)
        s_pump (a, b, c);
    return *flag >= value;
}

//  Pump until pubsub sees count subscribers for subject (one node counts
//  once), pumping the others too so their announcements go out.
static void
s_wait_subscribers (mesh_pubsub_t *pubsub, const char *subject, size_t count,
                    mesh_node_t *b, mesh_node_t *c)
{
    int64_t until = s_now () + WAIT_MS;
    while (mesh_pubsub_subscribers (pubsub, subject) != count && s_now () < until)
        s_pump (mesh_pubsub_node (pubsub), b, c);
    assert_int_equal (mesh_pubsub_subscribers (pubsub, subject), count);
}

//  Keeps a copy of every message handed to it
typedef struct {
    volatile int count;
    mesh_msg_t *kept [MAX_KEPT];
} s_recorder_t;

static void
s_record (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    s_recorder_t *rec = (s_recorder_t *) arg;
    if (rec->count < MAX_KEPT) {
        rec->kept [rec->count] = mesh_msg_dup (msg);
        assert_non_null (rec->kept [rec->count]);
    }
    rec->count++;
}

static void
s_recorder_free (s_recorder_t *rec)
{
    for (int i = 0; i < MAX_KEPT; i++)
        mesh_msg_destroy (&rec->kept [i]);
    rec->count = 0;
}

//  Pub-sub events seen on a node, summed by type
typedef struct {
    uint64_t gap, replayed, lost;
    int gap_events;
} s_tally_t;

static void
s_tally (mesh_node_t *node, s_tally_t *tally)
{
    mesh_event_t *event;
    while ((event = mesh_node_event (node))) {
        if (mesh_event_type (event) == MESH_EVENT_GAP) {
            tally->gap += mesh_event_count (event);
            tally->gap_events++;
        }
        else
        if (mesh_event_type (event) == MESH_EVENT_REPLAYED)
            tally->replayed += mesh_event_count (event);
        else
        if (mesh_event_type (event) == MESH_EVENT_GAP_LOST)
            tally->lost += mesh_event_count (event);
        mesh_event_destroy (&event);
    }
}

//  The only peer of node, as a copy the caller frees
static char *
s_only_peer (mesh_node_t *node)
{
    char **peers = mesh_node_peers (node);
    assert_non_null (peers);
    assert_non_null (peers [0]);
    assert_null (peers [1]);
    char *peer = strdup (peers [0]);
    mesh_strv_free (&peers);
    return peer;
}

static int
s_rm_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb; (void) flag; (void) ftw;
    return remove (path);
}

static void
s_rm_tree (const char *dir)
{
    nftw (dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

//  ---------------------------------------------------------------------
//  1. Usage: A subscribes to a pattern, B waits for it and publishes with
//  a content type and headers; A's handler gets all of it and the sender.

static void
test_usage (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "orders-audit");
    mesh_node_t *b = s_node (&net, "orders-api");
    mesh_pubsub_t *sub = mesh_pubsub_new (a);
    mesh_pubsub_t *pub = mesh_pubsub_new (b);
    assert_non_null (sub);
    assert_non_null (pub);
    assert_ptr_equal (mesh_pubsub_node (pub), b);

    s_recorder_t got = { 0 };
    int sub_id = mesh_subscribe (sub, "orders.*.created", NULL, s_record, &got);
    assert_true (sub_id > 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);

    //  the publisher dispatches (its own node) until A's subscription is in
    int64_t until = s_now () + WAIT_MS;
    int rc = -1;
    while (rc != 0 && s_now () < until) {
        mesh_node_dispatch (a, 5);
        rc = mesh_pubsub_wait_subscribers (pub, "orders.eu.created", 1, 20);
    }
    assert_int_equal (rc, 0);

    const char *headers [] = { "tenant", "acme", "trace", "7f3a" };
    mesh_head_t head = { .subject = "orders.eu.created", .ctype = "application/json",
                         .headers = headers, .header_count = 2 };
    const char *body = "{\"order\": 42}";
    assert_int_equal (mesh_publish_ex (pub, &head, body, strlen (body)), 1);
    //  not matched by "orders.*.created": one token only for "*"
    assert_int_equal (mesh_publish (pub, "orders.eu.west.created", "x", 1), 0);
    assert_true (s_pump_until (a, b, NULL, &got.count, 1));
    //  a head that breaks a limit fails where it is published (it was
    //  counted as a send error per subscriber, and publish returned 0)
    char big [1026];
    memset (big, 'v', sizeof big - 1);
    big [sizeof big - 1] = 0;
    const char *too_big [] = { "k", big };
    mesh_head_t bad = { .subject = "orders.eu.created", .headers = too_big, .header_count = 1 };
    assert_int_equal (mesh_publish_ex (pub, &bad, "x", 1), -1);
    assert_int_equal (mesh_errno (), MESH_ETOOBIG);
    assert_int_equal (mesh_head_check (&bad, 1), -1);
    big [1024] = 0;             //  1024 bytes: the limit itself
    assert_int_equal (mesh_head_check (&bad, 1), 0);

    mesh_msg_t *msg = got.kept [0];
    assert_string_equal (mesh_msg_subject (msg), "orders.eu.created");
    assert_true (s_body_is (msg, body));
    assert_string_equal (mesh_msg_ctype (msg), "application/json");
    assert_string_equal (mesh_msg_header (msg, "tenant"), "acme");
    assert_string_equal (mesh_msg_header (msg, "trace"), "7f3a");
    assert_int_equal (mesh_msg_header_count (msg), 2);
    assert_string_equal (mesh_msg_sender (msg), mesh_node_id (b));
    assert_string_equal (mesh_msg_sender_name (msg), "orders-api");
    assert_int_equal (mesh_msg_flags (msg) & MESH_FLAG_REPLAYED, 0);

    s_pump_for (a, b, NULL, SETTLE_MS);
    assert_int_equal (got.count, 1);
    assert_int_equal (mesh_unsubscribe (sub, sub_id), 0);
    assert_int_equal (mesh_unsubscribe (sub, sub_id), -1);

    s_recorder_free (&got);
    mesh_pubsub_destroy (&pub);
    mesh_pubsub_destroy (&sub);
    assert_null (sub);
    mesh_pubsub_destroy (&sub);     //  safe twice
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  2. Bad subjects and patterns are refused with MESH_EINVAL.

static void
s_ignore (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub; (void) msg; (void) arg;
}

static void
test_bad_subjects_and_patterns (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_pubsub_t *pubsub = mesh_pubsub_new (a);
    char too_long [MESH_MAX_SUBJECT + 2];
    memset (too_long, 'x', sizeof too_long - 1);
    too_long [sizeof too_long - 1] = 0;

    const char *bad_subjects [] = { "a..b", "a.*", "a.#", "", ".a", "a.", "a b", too_long };
    for (size_t i = 0; i < sizeof bad_subjects / sizeof bad_subjects [0]; i++) {
        assert_int_equal (mesh_publish (pubsub, bad_subjects [i], "x", 1), -1);
        assert_int_equal (mesh_errno (), MESH_EINVAL);
    }
    mesh_head_t head = { .subject = NULL };
    assert_int_equal (mesh_publish_ex (pubsub, &head, "x", 1), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);

    const char *bad_patterns [] = { "a*", "", "a..b", "#a", "a.b*", too_long };
    for (size_t i = 0; i < sizeof bad_patterns / sizeof bad_patterns [0]; i++) {
        assert_int_equal (mesh_subscribe (pubsub, bad_patterns [i], NULL, s_ignore, NULL), -1);
        assert_int_equal (mesh_errno (), MESH_EINVAL);
    }
    assert_int_equal (mesh_subscribe (pubsub, NULL, NULL, s_ignore, NULL), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);

    //  bad options too: unknown mode, empty durable name
    mesh_sub_opts_t opts = { .mode = 7 };
    assert_int_equal (mesh_subscribe (pubsub, "a.b", &opts, s_ignore, NULL), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    opts = (mesh_sub_opts_t) { .durable = "" };
    assert_int_equal (mesh_subscribe (pubsub, "a.b", &opts, s_ignore, NULL), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);

    //  nothing published counts as published; the good ones still work
    assert_int_equal (mesh_node_counter (a, NULL, "pubsub.published"), 0);
    assert_true (mesh_subscribe (pubsub, "a.*.#", NULL, s_ignore, NULL) > 0);
    assert_int_equal (mesh_publish (pubsub, "a.b", "x", 1), 1);

    //  hot-path counters reach the node at each tick, and at destroy (this
    //  node never started, so it never ticked)
    mesh_pubsub_destroy (&pubsub);
    assert_int_equal (mesh_node_counter (a, NULL, "pubsub.published"), 1);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  3. Routing at the source: a subject nobody matches is never sent, and a
//  matching one goes once to each subscribing node.

static void
test_routing_at_the_source (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    mesh_node_t *c = s_node (&net, "c");
    mesh_pubsub_t *pa = mesh_pubsub_new (a);
    mesh_pubsub_t *pb = mesh_pubsub_new (b);
    mesh_pubsub_t *pc = mesh_pubsub_new (c);
    s_recorder_t got_b = { 0 }, got_c = { 0 };
    //  two patterns of b match "metrics.cpu": b still counts once
    assert_true (mesh_subscribe (pb, "metrics.cpu", NULL, s_record, &got_b) > 0);
    assert_true (mesh_subscribe (pb, "metrics.#", NULL, s_record, &got_b) > 0);
    assert_true (mesh_subscribe (pc, "metrics.*", NULL, s_record, &got_c) > 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_int_equal (mesh_node_start (c), 0);
    s_wait_subscribers (pa, "metrics.cpu", 2, b, c);
    assert_int_equal (mesh_pubsub_subscribers (pa, "logs.app"), 0);

    //  nobody matches: 0, and nothing goes on any link
    for (int i = 0; i < 100; i++)
        assert_int_equal (mesh_publish (pa, "logs.app", "line", 4), 0);
    s_pump_for (a, NULL, NULL, 250);       //  a tick counts them
    assert_int_equal (mesh_node_counter (a, NULL, "pubsub.published"), 100);
    //  matching: one per subscribing node (b's two patterns count once)
    assert_int_equal (mesh_publish (pa, "metrics.cpu", "93", 2), 2);
    //  c's "metrics.*" does not match two tokens after metrics; b's # does
    assert_int_equal (mesh_publish (pa, "metrics.cpu.user", "41", 2), 1);
    //  a link keeps order: once the last arrived, anything sent before it has
    assert_true (s_pump_until (a, b, c, &got_b.count, 3));
    assert_true (s_pump_until (a, b, c, &got_c.count, 1));
    s_pump_for (a, b, c, SETTLE_MS);

    assert_int_equal (mesh_node_counter (b, NULL, "pubsub.received"), 2);
    assert_int_equal (mesh_node_counter (c, NULL, "pubsub.received"), 1);
    assert_int_equal (mesh_node_counter (b, NULL, "pubsub.dropped.no-subscriber"), 0);
    assert_int_equal (mesh_node_counter (c, NULL, "pubsub.dropped.no-subscriber"), 0);
    //  each of b's matching subscriptions runs for "metrics.cpu": 2 + 1
    assert_int_equal (got_b.count, 3);
    assert_int_equal (got_c.count, 1);
    assert_true (s_body_is (got_c.kept [0], "93"));

    s_recorder_free (&got_b);
    s_recorder_free (&got_c);
    mesh_pubsub_destroy (&pa);
    mesh_pubsub_destroy (&pb);
    mesh_pubsub_destroy (&pc);
    mesh_node_destroy (&c);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  4. A subscriber on the publisher's own node gets its messages (in the
//  publish call); unsubscribing stops delivery, locally and remotely.

static void
test_local_delivery_and_unsubscribe (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    mesh_pubsub_t *pa = mesh_pubsub_new (a);
    mesh_pubsub_t *pb = mesh_pubsub_new (b);
    s_recorder_t local = { 0 }, remote = { 0 };
    int local_id = mesh_subscribe (pa, "jobs.*", NULL, s_record, &local);
    int remote_id = mesh_subscribe (pb, "jobs.#", NULL, s_record, &remote);
    assert_true (local_id > 0);
    assert_true (remote_id > 0);

    //  local delivery works before the node even starts
    assert_int_equal (mesh_publish (pa, "jobs.one", "1", 1), 1);
    assert_int_equal (local.count, 1);
    assert_true (s_body_is (local.kept [0], "1"));
    assert_string_equal (mesh_msg_sender (local.kept [0]), mesh_node_id (a));

    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    s_wait_subscribers (pa, "jobs.two", 2, b, NULL);
    assert_int_equal (mesh_publish (pa, "jobs.two", "2", 1), 2);
    assert_int_equal (local.count, 2);
    assert_true (s_pump_until (a, b, NULL, &remote.count, 1));

    //  local unsubscribe: the next publish reaches only b
    assert_int_equal (mesh_unsubscribe (pa, local_id), 0);
    assert_int_equal (mesh_publish (pa, "jobs.three", "3", 1), 1);
    assert_int_equal (local.count, 2);
    assert_true (s_pump_until (a, b, NULL, &remote.count, 2));

    //  remote unsubscribe: once the update is in, nothing is sent
    assert_int_equal (mesh_unsubscribe (pb, remote_id), 0);
    s_wait_subscribers (pa, "jobs.four", 0, b, NULL);
    assert_int_equal (mesh_publish (pa, "jobs.four", "4", 1), 0);
    s_pump_for (a, b, NULL, SETTLE_MS);
    assert_int_equal (remote.count, 2);
    assert_int_equal (mesh_node_counter (b, NULL, "pubsub.received"), 2);
    assert_int_equal (local.count, 2);

    s_recorder_free (&local);
    s_recorder_free (&remote);
    mesh_pubsub_destroy (&pa);
    mesh_pubsub_destroy (&pb);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  A subscriber that gets one subject again and again (the fast path
//  remembers what it matched) still follows its own subscription changes:
//  a second subscription on the same node gets the subject's next
//  messages too, and an unsubscribed one gets nothing more.
static void
test_repeated_subject_follows_subscription_changes (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    mesh_pubsub_t *pa = mesh_pubsub_new (a);
    mesh_pubsub_t *pb = mesh_pubsub_new (b);
    s_recorder_t first = { 0 }, second = { 0 };
    int first_id = mesh_subscribe (pb, "ticks.#", NULL, s_record, &first);
    assert_true (first_id > 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    s_wait_subscribers (pa, "ticks.eu", 1, b, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal (mesh_publish (pa, "ticks.eu", "x", 1), 1);
    assert_true (s_pump_until (a, b, NULL, &first.count, 3));

    //  b already sends every ticks.* message: a second pattern changes
    //  nothing on the wire, only which handlers run on b
    int second_id = mesh_subscribe (pb, "*.eu", NULL, s_record, &second);
    assert_true (second_id > 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal (mesh_publish (pa, "ticks.eu", "y", 1), 1);
    assert_true (s_pump_until (a, b, NULL, &second.count, 2));
    assert_true (s_pump_until (a, b, NULL, &first.count, 5));

    //  the first goes away: the same subject reaches only the second
    assert_int_equal (mesh_unsubscribe (pb, first_id), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal (mesh_publish (pa, "ticks.eu", "z", 1), 1);
    assert_true (s_pump_until (a, b, NULL, &second.count, 4));
    s_pump_for (a, b, NULL, SETTLE_MS);
    assert_int_equal (first.count, 5);
    assert_int_equal (second.count, 4);
    assert_true (s_body_is (second.kept [3], "z"));

    s_recorder_free (&first);
    s_recorder_free (&second);
    mesh_pubsub_destroy (&pa);
    mesh_pubsub_destroy (&pb);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  5. Messages of one publisher arrive in publish order, with no gap.

#define ORDER_COUNT 10000

typedef struct {
    volatile int count;
    int out_of_order;
} s_order_t;

static void
s_check_order (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    s_order_t *order = (s_order_t *) arg;
    uint32_t index = 0;
    if (mesh_msg_size (msg) == sizeof index)
        memcpy (&index, mesh_msg_body (msg), sizeof index);
    if (index != (uint32_t) order->count)
        order->out_of_order++;
    order->count++;
}

static void
test_order_without_gaps (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    mesh_pubsub_t *pa = mesh_pubsub_new (a);
    mesh_pubsub_t *pb = mesh_pubsub_new (b);
    s_order_t order = { 0, 0 };
    assert_true (mesh_subscribe (pb, "ticks.#", NULL, s_check_order, &order) > 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    s_wait_subscribers (pa, "ticks.eu.x", 1, b, NULL);
    for (uint32_t i = 0; i < ORDER_COUNT; i++) {
        //  several subjects, one stream: order holds across subjects
        const char *subject = i % 3 == 0? "ticks.eu.x": i % 3 == 1? "ticks.us": "ticks.eu.y.z";
        assert_int_equal (mesh_publish (pa, subject, &i, sizeof i), 1);
    }
    assert_true (s_pump_until (a, b, NULL, &order.count, ORDER_COUNT));
    s_pump_for (a, b, NULL, SETTLE_MS);
    assert_int_equal (order.count, ORDER_COUNT);
    assert_int_equal (order.out_of_order, 0);
    s_tally_t tally = { 0 };
    s_tally (b, &tally);
    assert_int_equal (tally.gap_events, 0);
    assert_int_equal (mesh_node_counter (b, NULL, "pubsub.gaps"), 0);
    assert_int_equal (mesh_node_counter (a, NULL, "pubsub.dropped.hwm"), 0);

    mesh_pubsub_destroy (&pa);
    mesh_pubsub_destroy (&pb);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  Forced loss: a subscriber in a child process, stopped while the
//  publisher's link fills. Shared by tests 6, 7 and 11.

typedef struct {
    int count;                  //  published while the subscriber is stopped
    int after;                  //  published one by one once its link drains
    bool no_replay;
    size_t retention;           //  publisher's retained messages, 0 = default
} s_loss_t;

//  What the child saw
typedef struct {
    int received;               //  messages handed to the handler
    int unique;                 //  distinct indexes among them
    int bad;                    //  bodies that were not a valid index
    uint64_t gap, replayed, lost;
    int gap_events;
    bool timed_out;
} s_loss_report_t;

typedef struct {
    int total;
    uint8_t *seen;              //  per index 1..total
    s_loss_report_t report;
} s_loss_sub_t;

static void
s_loss_on_msg (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    s_loss_sub_t *sub = (s_loss_sub_t *) arg;
    uint32_t index = 0;
    if (mesh_msg_size (msg) == LOSS_BODY)
        memcpy (&index, mesh_msg_body (msg), sizeof index);
    sub->report.received++;
    if (index < 1 || index > (uint32_t) sub->total)
        sub->report.bad++;
    else
    if (sub->seen [index]++ == 0)
        sub->report.unique++;
}

//  The child: subscribe, then dispatch until the parent's drop count (read
//  from ctl) is accounted for, then a little more to catch extras; write
//  the report to res. Exit status 0 unless something failed outright.
static int
s_loss_child (const s_net_t *net, const s_loss_t *loss, int ctl, int res)
{
    s_loss_sub_t sub = { .total = loss->count + loss->after };
    sub.seen = (uint8_t *) calloc ((size_t) sub.total + 1, 1);
    mesh_node_t *node = s_node_try (net, "loss-sub");
    if (!node || !sub.seen || mesh_node_set_timeouts (node, 5000, 30000))
        return 3;
    mesh_pubsub_t *pubsub = mesh_pubsub_new (node);
    mesh_sub_opts_t opts = { .no_replay = loss->no_replay };
    if (!pubsub || mesh_subscribe (pubsub, "load.#", &opts, s_loss_on_msg, &sub) < 0
    ||  mesh_node_start (node))
        return 4;
    int64_t dropped = -1;
    s_tally_t tally = { 0 };
    int64_t deadline = s_now () + 4 * WAIT_MS, settle_until = 0;
    while (s_now () < deadline && (!settle_until || s_now () < settle_until)) {
        mesh_node_dispatch (node, 10);
        s_tally (node, &tally);
        if (dropped < 0 && read (ctl, &dropped, sizeof dropped) != sizeof dropped)
            dropped = -1;
        if (dropped < 0 || settle_until)
            continue;
        uint64_t d = (uint64_t) dropped;
        bool done = loss->no_replay
                  ? tally.gap >= d && sub.report.unique >= sub.total - (int) d
                  : tally.gap >= d && tally.replayed + tally.lost >= tally.gap
                    && sub.report.unique >= sub.total - (int) tally.lost;
        if (done)
            settle_until = s_now () + SETTLE_MS;
    }
    s_tally (node, &tally);
    sub.report.gap = tally.gap;
    sub.report.replayed = tally.replayed;
    sub.report.lost = tally.lost;
    sub.report.gap_events = tally.gap_events;
    sub.report.timed_out = !settle_until;
    int rc = write (res, &sub.report, sizeof sub.report) == sizeof sub.report? 0: 5;
    mesh_pubsub_destroy (&pubsub);
    mesh_node_destroy (&node);
    free (sub.seen);
    return rc;
}

//  Publisher side: runs the scenario and returns the publisher's drop
//  count; the child's report in *report. in_window (may be NULL) gets how
//  many of the dropped messages are among the last loss->retention
//  published, the ones a replay can still bring back.
static uint64_t
s_loss_run (const s_loss_t *loss, s_loss_report_t *report, uint64_t *in_window)
{
    s_net_t net = s_net ();
    int ctl [2], res [2];
    assert_int_equal (pipe (ctl), 0);
    assert_int_equal (pipe (res), 0);
    fflush (NULL);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        close (ctl [1]);
        close (res [0]);
        fcntl (ctl [0], F_SETFL, O_NONBLOCK);
        _exit (s_loss_child (&net, loss, ctl [0], res [1]));
    }
    close (ctl [0]);
    close (res [1]);

    mesh_node_t *node = s_node (&net, "loss-pub");
    assert_int_equal (mesh_node_set_hwm (node, LOSS_HWM), 0);
    assert_int_equal (mesh_node_set_timeouts (node, 5000, 30000), 0);
    mesh_pubsub_t *pubsub = mesh_pubsub_new (node);
    if (loss->retention)
        assert_int_equal (mesh_pubsub_set_retention (pubsub, loss->retention,
                                                     256 * 1024 * 1024, 600000), 0);
    assert_int_equal (mesh_node_start (node), 0);
    assert_int_equal (mesh_pubsub_wait_subscribers (pubsub, "load.x", 1, 2 * WAIT_MS), 0);
    char *peer = s_only_peer (node);

    //  stop the subscriber, then publish far more than the link holds
    int status = 0;
    assert_int_equal (kill (pid, SIGSTOP), 0);
    assert_int_equal (waitpid (pid, &status, WUNTRACED), pid);
    assert_true (WIFSTOPPED (status));
    uint8_t body [LOSS_BODY];
    memset (body, 0xab, sizeof body);
    int not_sent = 0;
    for (uint32_t i = 1; i <= (uint32_t) loss->count; i++) {
        memcpy (body, &i, sizeof i);
        int rc = mesh_publish (pubsub, "load.x", body, sizeof body);
        assert_true (rc == 0 || rc == 1);
        not_sent += rc == 0;
        if (in_window && rc == 0
        &&  i + loss->retention > (uint32_t) (loss->count + loss->after))
            ++*in_window;
    }
    assert_int_equal (kill (pid, SIGCONT), 0);
    //  after it resumed: one by one, each when the link has room, so none
    //  of these is lost and the subscriber sees the loss as a jump in seq
    for (uint32_t i = 1; i <= (uint32_t) loss->after; i++) {
        uint32_t index = (uint32_t) loss->count + i;
        memcpy (body, &index, sizeof index);
        assert_int_equal (mesh_node_wait_writable (node, peer, WAIT_MS), 0);
        assert_int_equal (mesh_publish (pubsub, "load.x", body, sizeof body), 1);
    }
    uint64_t dropped = mesh_node_counter (node, NULL, "pubsub.dropped.hwm");
    //  what publish reported is what was counted, globally and for the peer
    assert_int_equal (dropped, (uint64_t) not_sent);
    assert_int_equal (mesh_node_counter (node, peer, "pubsub.dropped.hwm"), dropped);
    int64_t value = (int64_t) dropped;
    assert_int_equal (write (ctl [1], &value, sizeof value), sizeof value);

    //  serve replay requests and send positions until the child reports
    int64_t deadline = s_now () + 5 * WAIT_MS;
    struct pollfd pfd = { .fd = res [0], .events = POLLIN };
    while (s_now () < deadline && poll (&pfd, 1, 0) == 0)
        mesh_node_dispatch (node, 10);
    assert_int_equal (read (res [0], report, sizeof *report), sizeof *report);
    if (getenv ("TEST_PUBSUB_VERBOSE"))
        fprintf (stderr, "loss: dropped %llu, received %d unique %d bad %d gap %llu (%d events) "
                 "replayed %llu lost %llu%s\n", (unsigned long long) dropped, report->received,
                 report->unique, report->bad, (unsigned long long) report->gap, report->gap_events,
                 (unsigned long long) report->replayed, (unsigned long long) report->lost,
                 report->timed_out? " TIMED OUT": "");
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    close (ctl [1]);
    close (res [0]);
    free (peer);
    mesh_pubsub_destroy (&pubsub);
    mesh_node_destroy (&node);
    return dropped;
}

//  6a. Loss in mid-stream: the subscriber gets GAP events summing to what
//  the publisher dropped, asks for a replay, and REPLAYED brings back every
//  one: each message arrives exactly once.
static void
test_loss_gap_and_replay (void **state)
{
    (void) state;
    s_loss_t loss = { .count = LOSS_COUNT, .after = LOSS_AFTER };
    s_loss_report_t report;
    uint64_t dropped = s_loss_run (&loss, &report, NULL);
    assert_true (dropped > 0);
    assert_false (report.timed_out);
    assert_int_equal (report.gap, dropped);
    assert_int_equal (report.replayed, dropped);
    assert_int_equal (report.lost, 0);
    assert_int_equal (report.bad, 0);
    assert_int_equal (report.unique, LOSS_COUNT + LOSS_AFTER);
    assert_int_equal (report.received, LOSS_COUNT + LOSS_AFTER);
}

//  6b. With no_replay, drops counted by the publisher equal the gaps the
//  subscriber is told of; nothing is resent, so all of it is reported as
//  lost for good at once (GAP_LOST).
static void
test_loss_gap_without_replay (void **state)
{
    (void) state;
    s_loss_t loss = { .count = LOSS_COUNT, .after = LOSS_AFTER, .no_replay = true };
    s_loss_report_t report;
    uint64_t dropped = s_loss_run (&loss, &report, NULL);
    assert_true (dropped > 0);
    assert_false (report.timed_out);
    assert_int_equal (report.gap, dropped);
    assert_int_equal (report.replayed, 0);
    assert_int_equal (report.lost, dropped);
    assert_int_equal (report.bad, 0);
    assert_int_equal (report.received, LOSS_COUNT + LOSS_AFTER - (int) dropped);
    assert_int_equal (report.unique, report.received);
}

//  7. Loss at the very end of a stream (nothing published after it) is
//  still reported, from the publisher's position messages, and replayed.
static void
test_loss_at_the_tail (void **state)
{
    (void) state;
    s_loss_t loss = { .count = LOSS_COUNT, .after = 0 };
    s_loss_report_t report;
    uint64_t dropped = s_loss_run (&loss, &report, NULL);
    assert_true (dropped > 0);
    assert_false (report.timed_out);
    assert_int_equal (report.gap, dropped);
    assert_int_equal (report.replayed, dropped);
    assert_int_equal (report.lost, 0);
    assert_int_equal (report.unique, LOSS_COUNT);
    assert_int_equal (report.received, LOSS_COUNT);
}

//  11. A gap larger than the retention window: what the window still
//  holds comes back (REPLAYED), the rest is reported as GAP_LOST.
#define SMALL_WINDOW 100

static void
test_loss_beyond_retention (void **state)
{
    (void) state;
    s_loss_t loss = { .count = LOSS_COUNT, .after = 0, .retention = SMALL_WINDOW };
    s_loss_report_t report;
    uint64_t in_window = 0;
    uint64_t dropped = s_loss_run (&loss, &report, &in_window);
    //  the burst ends in drops only: the window's 100 are (nearly) all lost
    assert_true (dropped > SMALL_WINDOW);
    assert_true (in_window > 0);
    assert_false (report.timed_out);
    assert_int_equal (report.gap, dropped);
    assert_int_equal (report.replayed, in_window);
    assert_int_equal (report.lost, dropped - in_window);
    assert_int_equal (report.received, LOSS_COUNT - (int) dropped + (int) in_window);
    assert_int_equal (report.unique, report.received);
}

//  ---------------------------------------------------------------------
//  Durable subscriptions

typedef struct {
    volatile int count;
    uint32_t index [MAX_KEPT];
    int replays;
} s_indexes_t;

static void
s_record_index (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    s_indexes_t *got = (s_indexes_t *) arg;
    uint32_t index = 0;
    if (mesh_msg_size (msg) == sizeof index)
        memcpy (&index, mesh_msg_body (msg), sizeof index);
    if (got->count < MAX_KEPT)
        got->index [got->count] = index;
    got->replays += (mesh_msg_flags (msg) & MESH_FLAG_REPLAYED) != 0;
    got->count++;
}

//  A node with a durable "audit" subscription on "audit.#", started
static mesh_node_t *
s_durable_sub (const s_net_t *net, const char *name, mesh_pubsub_t **pubsub_p,
               s_indexes_t *got)
{
    mesh_node_t *node = s_node (net, name);
    *pubsub_p = mesh_pubsub_new (node);
    mesh_sub_opts_t opts = { .durable = "audit" };
    assert_true (mesh_subscribe (*pubsub_p, "audit.#", &opts, s_record_index, got) > 0);
    assert_int_equal (mesh_node_start (node), 0);
    return node;
}

static void
s_publish_indexes (mesh_pubsub_t *pubsub, uint32_t from, uint32_t to, int expect)
{
    for (uint32_t i = from; i <= to; i++)
        assert_int_equal (mesh_publish (pubsub, i % 2? "audit.login": "audit.eu.logout",
                                        &i, sizeof i), expect);
}

//  Pump until node has no peer (the subscriber's BYE is in)
static void
s_wait_alone (mesh_node_t *node)
{
    int64_t until = s_now () + WAIT_MS;
    while (mesh_node_peer_count (node) > 0 && s_now () < until)
        mesh_node_dispatch (node, 5);
    assert_int_equal (mesh_node_peer_count (node), 0);
}

//  Pump a and b until got has count messages, then a little longer, and
//  check it holds exactly indexes from..to in order, all replays.
static void
s_expect_catch_up (mesh_node_t *a, mesh_node_t *b, s_indexes_t *got,
                   uint32_t from, uint32_t to)
{
    int count = (int) (to - from + 1);
    assert_true (s_pump_until (a, b, NULL, &got->count, count));
    s_pump_for (a, b, NULL, SETTLE_MS);
    assert_int_equal (got->count, count);
    for (int i = 0; i < count; i++)
        assert_int_equal (got->index [i], from + (uint32_t) i);
    assert_int_equal (got->replays, count);
}

//  8. A durable subscriber that went away gets, when it comes back under
//  the same name (as a new node), exactly what was published meanwhile,
//  in order.
#define AWAY_BEFORE 5
#define AWAY_COUNT  7

static void
test_durable_while_away (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *p = s_node (&net, "publisher");
    mesh_pubsub_t *pp = mesh_pubsub_new (p);
    assert_int_equal (mesh_node_start (p), 0);

    s_indexes_t first = { 0 };
    mesh_pubsub_t *ps = NULL;
    mesh_node_t *s = s_durable_sub (&net, "auditor-1", &ps, &first);
    s_wait_subscribers (pp, "audit.login", 1, s, NULL);
    s_publish_indexes (pp, 1, AWAY_BEFORE, 1);
    assert_true (s_pump_until (p, s, NULL, &first.count, AWAY_BEFORE));
    s_pump_for (p, s, NULL, DACK_WAIT_MS);          //  its ack is in
    assert_int_equal (first.count, AWAY_BEFORE);
    assert_int_equal (first.replays, 0);
    mesh_pubsub_destroy (&ps);
    mesh_node_destroy (&s);
    s_wait_alone (p);

    //  while it is away: nobody is subscribed, the log keeps them
    s_publish_indexes (pp, AWAY_BEFORE + 1, AWAY_BEFORE + AWAY_COUNT, 0);
    s_indexes_t second = { 0 };
    s = s_durable_sub (&net, "auditor-2", &ps, &second);
    s_expect_catch_up (p, s, &second, AWAY_BEFORE + 1, AWAY_BEFORE + AWAY_COUNT);

    //  and it is live again: the next one arrives normally, once
    s_wait_subscribers (pp, "audit.login", 1, s, NULL);
    uint32_t next = AWAY_BEFORE + AWAY_COUNT + 1;
    assert_int_equal (mesh_publish (pp, "audit.login", &next, sizeof next), 1);
    assert_true (s_pump_until (p, s, NULL, &second.count, AWAY_COUNT + 1));
    s_pump_for (p, s, NULL, SETTLE_MS);
    assert_int_equal (second.count, AWAY_COUNT + 1);
    assert_int_equal (second.index [AWAY_COUNT], next);

    mesh_pubsub_destroy (&ps);
    mesh_node_destroy (&s);
    mesh_pubsub_destroy (&pp);
    mesh_node_destroy (&p);
}

//  9. With a data dir, the retained log and durable positions survive a
//  publisher restart: a new publisher node on the same dir serves the
//  durable subscriber what the old one published while it was away.
static void
test_durable_across_publisher_restart (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    char dir [] = "/tmp/test-pubsub-XXXXXX";
    assert_non_null (mkdtemp (dir));

    mesh_node_t *p = s_node (&net, "publisher-1");
    mesh_pubsub_t *pp = mesh_pubsub_new (p);
    assert_int_equal (mesh_pubsub_set_data_dir (pp, dir), 0);
    assert_int_equal (mesh_node_start (p), 0);
    s_indexes_t first = { 0 };
    mesh_pubsub_t *ps = NULL;
    mesh_node_t *s = s_durable_sub (&net, "auditor-1", &ps, &first);
    s_wait_subscribers (pp, "audit.login", 1, s, NULL);
    s_publish_indexes (pp, 1, AWAY_BEFORE, 1);
    assert_true (s_pump_until (p, s, NULL, &first.count, AWAY_BEFORE));
    s_pump_for (p, s, NULL, DACK_WAIT_MS);
    assert_int_equal (first.count, AWAY_BEFORE);
    mesh_pubsub_destroy (&ps);
    mesh_node_destroy (&s);
    s_wait_alone (p);
    s_publish_indexes (pp, AWAY_BEFORE + 1, AWAY_BEFORE + AWAY_COUNT, 0);
    mesh_pubsub_destroy (&pp);
    mesh_node_destroy (&p);

    //  a new publisher node (new id) on the same dir
    p = s_node (&net, "publisher-2");
    pp = mesh_pubsub_new (p);
    assert_int_equal (mesh_pubsub_set_data_dir (pp, dir), 0);
    assert_int_equal (mesh_node_start (p), 0);
    s_indexes_t second = { 0 };
    s = s_durable_sub (&net, "auditor-2", &ps, &second);
    s_expect_catch_up (p, s, &second, AWAY_BEFORE + 1, AWAY_BEFORE + AWAY_COUNT);

    mesh_pubsub_destroy (&ps);
    mesh_node_destroy (&s);
    mesh_pubsub_destroy (&pp);
    mesh_node_destroy (&p);
    s_rm_tree (dir);
}

//  ---------------------------------------------------------------------
//  10. A last-value subscriber gets the latest message of each matching
//  subject at once, without anyone publishing again.

static void
test_last_value (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "prices");
    mesh_pubsub_t *pa = mesh_pubsub_new (a);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_publish (pa, "price.eu", "1", 1), 0);
    assert_int_equal (mesh_publish (pa, "price.eu", "2", 1), 0);
    assert_int_equal (mesh_publish (pa, "price.us", "5", 1), 0);
    assert_int_equal (mesh_publish (pa, "volume.eu", "9", 1), 0);

    mesh_node_t *b = s_node (&net, "screen");
    mesh_pubsub_t *pb = mesh_pubsub_new (b);
    s_recorder_t got = { 0 };
    mesh_sub_opts_t opts = { .last_value = true };
    assert_true (mesh_subscribe (pb, "price.*", &opts, s_record, &got) > 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_true (s_pump_until (a, b, NULL, &got.count, 2));
    s_pump_for (a, b, NULL, SETTLE_MS);
    assert_int_equal (got.count, 2);
    const mesh_msg_t *eu = strcmp (mesh_msg_subject (got.kept [0]), "price.eu") == 0
                         ? got.kept [0]: got.kept [1];
    const mesh_msg_t *us = eu == got.kept [0]? got.kept [1]: got.kept [0];
    assert_string_equal (mesh_msg_subject (eu), "price.eu");
    assert_true (s_body_is (eu, "2"));
    assert_string_equal (mesh_msg_subject (us), "price.us");
    assert_true (s_body_is (us, "5"));
    assert_true (mesh_msg_flags (eu) & MESH_FLAG_REPLAYED);
    assert_true (mesh_msg_flags (us) & MESH_FLAG_REPLAYED);
    assert_true (mesh_msg_flags (eu) & MESH_FLAG_LAST_VALUE);
    assert_true (mesh_msg_flags (us) & MESH_FLAG_LAST_VALUE);
    assert_string_equal (mesh_msg_sender (eu), mesh_node_id (a));
    //  the catch-up is not a gap
    s_tally_t tally = { 0 };
    s_tally (b, &tally);
    assert_int_equal (tally.gap_events, 0);

    s_recorder_free (&got);
    mesh_pubsub_destroy (&pb);
    mesh_node_destroy (&b);
    mesh_pubsub_destroy (&pa);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  12b. mesh_publish_zc hands the body to every link without a copy: two
//  subscribers get it intact, and the free function runs exactly once,
//  after the links are done.

static volatile int s_zc_freed = 0;
static volatile int s_zc_freed_by_libzmq = 0;   //  on a thread not the test's
static pthread_t s_zc_test_thread;

static void
s_zc_free (void *data, void *hint)
{
    assert_ptr_equal (hint, (void *) &s_zc_freed);
    free (data);
    if (!pthread_equal (pthread_self (), s_zc_test_thread))
        s_zc_freed_by_libzmq++;
    s_zc_freed++;
}

static void
test_publish_zero_copy (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    mesh_node_t *c = s_node (&net, "c");
    mesh_pubsub_t *pa = mesh_pubsub_new (a);
    mesh_pubsub_t *pb = mesh_pubsub_new (b);
    mesh_pubsub_t *pc = mesh_pubsub_new (c);
    s_recorder_t got_b = { 0 }, got_c = { 0 };
    assert_true (mesh_subscribe (pb, "blobs.#", NULL, s_record, &got_b) > 0);
    assert_true (mesh_subscribe (pc, "blobs.#", NULL, s_record, &got_c) > 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_int_equal (mesh_node_start (c), 0);
    int64_t until = s_now () + WAIT_MS;
    while (mesh_pubsub_subscribers (pa, "blobs.x") < 2 && s_now () < until)
        s_pump (a, b, c);
    size_t size = 1024 * 1024;
    unsigned char *data = (unsigned char *) malloc (size);
    for (size_t i = 0; i < size; i++)
        data [i] = (unsigned char) (i * 7 + 3);
    unsigned char *expect = (unsigned char *) malloc (size);
    memcpy (expect, data, size);
    s_zc_freed = s_zc_freed_by_libzmq = 0;
    s_zc_test_thread = pthread_self ();
    mesh_head_t head = { .subject = "blobs.x" };
    assert_int_equal (mesh_publish_zc (pa, &head, data, size, s_zc_free,
                                       (void *) &s_zc_freed), 2);
    assert_true (s_pump_until (b, c, NULL, &got_b.count, 1));
    assert_true (s_pump_until (b, c, NULL, &got_c.count, 1));
    until = s_now () + WAIT_MS;
    while (s_zc_freed == 0 && s_now () < until)
        s_pump (a, b, c);
    assert_int_equal (s_zc_freed, 1);
    //  freed by libzmq's I/O thread once both links sent it: a copy made
    //  here would have been freed by this thread
    assert_int_equal (s_zc_freed_by_libzmq, 1);
    assert_int_equal (mesh_msg_size (got_b.kept [0]), size);
    assert_int_equal (mesh_msg_size (got_c.kept [0]), size);
    assert_memory_equal (mesh_msg_body (got_b.kept [0]), expect, size);
    assert_memory_equal (mesh_msg_body (got_c.kept [0]), expect, size);
    free (expect);
    s_recorder_free (&got_b);
    s_recorder_free (&got_c);
    mesh_pubsub_destroy (&pb);
    mesh_pubsub_destroy (&pc);
    mesh_pubsub_destroy (&pa);
    mesh_node_destroy (&b);
    mesh_node_destroy (&c);
    mesh_node_destroy (&a);
    assert_int_equal (s_zc_freed, 1);
}

//  ---------------------------------------------------------------------
//  13. Joining with a start time gets what publishers kept from then on,
//  in publish order, and nothing older.

static void
test_join_since (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "history");
    mesh_pubsub_t *pa = mesh_pubsub_new (a);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_publish (pa, "log.old", "before", 6), 0);
    struct timespec pause = { 0, 50 * 1000000 };
    nanosleep (&pause, NULL);
    uint64_t since = mesh_clock_ms ();
    nanosleep (&pause, NULL);
    assert_int_equal (mesh_publish (pa, "log.a", "first", 5), 0);
    assert_int_equal (mesh_publish (pa, "other.x", "unmatched", 9), 0);
    assert_int_equal (mesh_publish (pa, "log.b", "second", 6), 0);

    mesh_node_t *b = s_node (&net, "reader");
    mesh_pubsub_t *pb = mesh_pubsub_new (b);
    s_recorder_t got = { 0 };
    mesh_sub_opts_t opts = { .since_ms = since };
    assert_true (mesh_subscribe (pb, "log.*", &opts, s_record, &got) > 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_true (s_pump_until (a, b, NULL, &got.count, 2));
    s_pump_for (a, b, NULL, SETTLE_MS);
    assert_int_equal (got.count, 2);
    assert_true (s_body_is (got.kept [0], "first"));
    assert_true (s_body_is (got.kept [1], "second"));
    assert_true (mesh_msg_flags (got.kept [0]) & MESH_FLAG_REPLAYED);
    assert_int_equal (mesh_node_counter (a, NULL, "pubsub.since.sent"), 2);

    s_recorder_free (&got);
    mesh_pubsub_destroy (&pb);
    mesh_node_destroy (&b);
    mesh_pubsub_destroy (&pa);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  14. A subscription without a handler queues messages for
//  mesh_pubsub_recv, in order; recv times out with MESH_ETIMEDOUT.

static void
test_pollable_queue (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    mesh_pubsub_t *pa = mesh_pubsub_new (a);
    mesh_pubsub_t *pb = mesh_pubsub_new (b);
    assert_true (mesh_subscribe (pb, "jobs.#", NULL, NULL, NULL) > 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    int64_t until = s_now () + WAIT_MS;
    while (mesh_pubsub_subscribers (pa, "jobs.x") < 1 && s_now () < until)
        s_pump (a, b, NULL);
    for (int i = 0; i < 20; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        assert_int_equal (mesh_publish (pa, "jobs.x", body, strlen (body)), 1);
    }
    for (int i = 0; i < 20; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        mesh_msg_t *msg = mesh_pubsub_recv (pb, WAIT_MS);
        assert_non_null (msg);
        assert_true (s_body_is (msg, body));
        assert_string_equal (mesh_msg_subject (msg), "jobs.x");
        mesh_msg_destroy (&msg);
    }
    assert_null (mesh_pubsub_recv (pb, 200));
    assert_int_equal (mesh_errno (), MESH_ETIMEDOUT);

    mesh_pubsub_destroy (&pb);
    mesh_pubsub_destroy (&pa);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  12. A 1 MiB body arrives intact.

#define LARGE_BODY  (1024 * 1024)

static void
test_large_body (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    mesh_pubsub_t *pa = mesh_pubsub_new (a);
    mesh_pubsub_t *pb = mesh_pubsub_new (b);
    s_recorder_t got = { 0 };
    assert_true (mesh_subscribe (pb, "blobs.#", NULL, s_record, &got) > 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    s_wait_subscribers (pa, "blobs.image", 1, b, NULL);

    uint8_t *body = (uint8_t *) malloc (LARGE_BODY);
    assert_non_null (body);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < LARGE_BODY; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        body [i] = (uint8_t) x;
    }
    assert_int_equal (mesh_publish (pa, "blobs.image", body, LARGE_BODY), 1);
    assert_int_equal (mesh_publish (pa, "blobs.small", "s", 1), 1);
    assert_true (s_pump_until (a, b, NULL, &got.count, 2));
    assert_string_equal (mesh_msg_subject (got.kept [0]), "blobs.image");
    assert_int_equal (mesh_msg_size (got.kept [0]), LARGE_BODY);
    assert_memory_equal (mesh_msg_body (got.kept [0]), body, LARGE_BODY);
    assert_true (s_body_is (got.kept [1], "s"));

    free (body);
    s_recorder_free (&got);
    mesh_pubsub_destroy (&pa);
    mesh_pubsub_destroy (&pb);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

int
main (void)
{
    srandom ((unsigned) time (NULL) ^ (unsigned) getpid ());
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage),
        cmocka_unit_test (test_bad_subjects_and_patterns),
        cmocka_unit_test (test_routing_at_the_source),
        cmocka_unit_test (test_local_delivery_and_unsubscribe),
        cmocka_unit_test (test_repeated_subject_follows_subscription_changes),
        cmocka_unit_test (test_order_without_gaps),
        cmocka_unit_test (test_loss_gap_and_replay),
        cmocka_unit_test (test_loss_gap_without_replay),
        cmocka_unit_test (test_loss_at_the_tail),
        cmocka_unit_test (test_durable_while_away),
        cmocka_unit_test (test_durable_across_publisher_restart),
        cmocka_unit_test (test_last_value),
        cmocka_unit_test (test_loss_beyond_retention),
        cmocka_unit_test (test_large_body),
        cmocka_unit_test (test_publish_zero_copy),
        cmocka_unit_test (test_join_since),
        cmocka_unit_test (test_pollable_queue),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
