/*  =========================================================================
    test_batch - small messages packed into one link frame when a link is
    backed up (src/wire/mesh_batch.c), and what a user sees of it: every
    message arrives, in order, counted as messages; the high-water mark
    counts messages; a damaged batch frame costs only what it damaged.

    The backed-up link is forced, not hoped for: the receiver runs in a
    forked child (forked before any node exists here, so it inherits no
    threads) and is stopped with SIGSTOP while the sender sends more than
    the kernel's socket buffers can hold (read from /proc). The child
    reports through a pipe and never calls cmocka.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#include "meshbus.h"
#include "meshbus/pattern.h"
#include "mesh_batch.h"
#include "mesh_envelope.h"
#include "mesh_msg.h"
#include "mesh_limits.h"

#define WAIT_MS         20000       //  ceiling of every wait; valgrind is slow
#include "testnet.h"

#define BODY            900         //  batched: its envelope is under MESH_BATCH_MAX_ENV

//  ---------------------------------------------------------------------
//  Unit: buffers, frames, the in-flight count, the walk

static size_t
s_envelope (uint8_t *out, size_t cap, const char *subject, const char *body)
{
    mesh_envelope_t env = { .version = MESH_WIRE_VERSION, .kind = MESH_KIND_DIRECT };
    env.subject.ptr = (const uint8_t *) subject;
    env.subject.len = (uint32_t) strlen (subject);
    env.body.ptr = (const uint8_t *) body;
    env.body.len = (uint32_t) strlen (body);
    return mesh_envelope_encode (&env, out, cap);
}

//  A buffer of one envelope is that envelope on the wire; of several, a
//  batch frame whose walk gives them back in order. libzmq's hold on each
//  frame is counted until it lets go, and the last release writes the
//  wake fd only when a batch waits.
static void
test_frames_and_flight (void **state)
{
    (void) state;
    int fd = eventfd (0, EFD_NONBLOCK);
    assert_true (fd >= 0);
    mesh_flight_t *flight = mesh_flight_new (fd);
    assert_non_null (flight);
    uint8_t env [3][128];
    size_t len [3];
    len [0] = s_envelope (env [0], sizeof env [0], "a", "first");
    len [1] = s_envelope (env [1], sizeof env [1], "b.c", "second body");
    len [2] = s_envelope (env [2], sizeof env [2], "d", "");
    assert_true (len [0] && len [1] && len [2]);

    mesh_outbuf_t *one = mesh_outbuf_add (NULL, env [0], len [0]);
    assert_int_equal (mesh_outbuf_count (one), 1);
    zmq_msg_t single;
    assert_int_equal (mesh_outbuf_frame (one, flight, &single), 0);
    assert_int_equal (zmq_msg_size (&single), len [0]);
    assert_memory_equal (zmq_msg_data (&single), env [0], len [0]);
    assert_false (mesh_batch_is (zmq_msg_data (&single), zmq_msg_size (&single)));

    mesh_outbuf_t *batch = NULL;
    for (int i = 0; i < 3; i++)
        batch = mesh_outbuf_add (batch, env [i], len [i]);
    assert_int_equal (mesh_outbuf_count (batch), 3);
    zmq_msg_t frame;
    assert_int_equal (mesh_outbuf_frame (batch, flight, &frame), 0);
    assert_int_equal (mesh_flight_frames (flight), 2);
    assert_int_equal (mesh_flight_msgs (flight), 4);
    const uint8_t *data = (const uint8_t *) zmq_msg_data (&frame);
    size_t size = zmq_msg_size (&frame);
    assert_true (mesh_batch_is (data, size));
    assert_int_equal (size, 1 + 12 + len [0] + len [1] + len [2]);
    size_t pos = 0, at, n;
    for (int i = 0; i < 3; i++) {
        assert_int_equal (mesh_batch_next (data, size, &pos, &at, &n), 1);
        assert_int_equal (n, len [i]);
        assert_memory_equal (data + at, env [i], n);
    }
    assert_int_equal (mesh_batch_next (data, size, &pos, &at, &n), 0);

    //  no batch waits: the link drains without a word to the keeper
    uint64_t value;
    zmq_msg_close (&single);
    assert_int_equal (mesh_flight_frames (flight), 1);
    assert_int_equal (mesh_flight_msgs (flight), 3);
    //  a batch waits: the last frame's release wakes the keeper
    mesh_flight_set_waiting (flight, true);
    zmq_msg_close (&frame);
    assert_int_equal (mesh_flight_frames (flight), 0);
    assert_int_equal (mesh_flight_msgs (flight), 0);
    assert_int_equal (read (fd, &value, sizeof value), sizeof value);
    assert_int_equal (value, 1);
    assert_true (read (fd, &value, sizeof value) < 0);
    mesh_flight_release (&flight);
    assert_null (flight);
    close (fd);
}

//  The walk refuses what is no batch, a zero length, and a length that
//  runs past the frame, after giving what came before it
static void
test_walk_refuses_damage (void **state)
{
    (void) state;
    uint8_t frame [64] = { MESH_BATCH_MAGIC, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 9, 'x' };
    size_t pos = 0, at, len;
    assert_int_equal (mesh_batch_next (frame, 13, &pos, &at, &len), 1);
    assert_int_equal (at, 5);
    assert_int_equal (len, 3);
    assert_int_equal (mesh_batch_next (frame, 13, &pos, &at, &len), -1);
    pos = 0;
    assert_int_equal (mesh_batch_next (frame, 1, &pos, &at, &len), 0);
    pos = 0;
    assert_int_equal (mesh_batch_next (frame, 3, &pos, &at, &len), -1);   //  a cut length
    uint8_t zero [] = { MESH_BATCH_MAGIC, 0, 0, 0, 0 };
    pos = 0;
    assert_int_equal (mesh_batch_next (zero, sizeof zero, &pos, &at, &len), -1);
    uint8_t other [] = { 0x93, 1, 2, 3 };
    pos = 0;
    assert_false (mesh_batch_is (other, sizeof other));
    assert_int_equal (mesh_batch_next (other, sizeof other, &pos, &at, &len), -1);
    assert_false (mesh_batch_is (other, 0));
}

//  A message of a batch, kept with mesh_msg_dup, takes its own bytes
//  rather than the whole batch frame, and reads the same
static void
test_kept_message_of_a_batch (void **state)
{
    (void) state;
    uint8_t env [2][128];
    size_t len [2];
    len [0] = s_envelope (env [0], sizeof env [0], "first", "one");
    len [1] = s_envelope (env [1], sizeof env [1], "second", "two, longer");
    mesh_outbuf_t *batch = mesh_outbuf_add (NULL, env [0], len [0]);
    for (int i = 0; i < 40; i++)        //  a frame far larger than one message
        batch = mesh_outbuf_add (batch, env [1], len [1]);
    mesh_flight_t *flight = mesh_flight_new (-1);
    zmq_msg_t frame;
    assert_int_equal (mesh_outbuf_frame (batch, flight, &frame), 0);
    size_t pos = 0, at, n;
    assert_int_equal (mesh_batch_next (zmq_msg_data (&frame), zmq_msg_size (&frame),
                                       &pos, &at, &n), 1);
    zmq_msg_t part;
    zmq_msg_init (&part);
    zmq_msg_copy (&part, &frame);
    mesh_msg_t msg;
    assert_int_equal (mesh_msg_init_part (&msg, &part, at, n), MESH_ENV_OK);
    assert_string_equal (mesh_msg_subject (&msg), "first");
    mesh_msg_t *kept = mesh_msg_dup (&msg);
    assert_non_null (kept);
    mesh_msg_fini (&msg);
    zmq_msg_close (&frame);
    //  the batch frame is gone from libzmq's view and ours: kept holds a copy
    assert_int_equal (mesh_flight_frames (flight), 0);
    assert_string_equal (mesh_msg_subject (kept), "first");
    assert_int_equal (mesh_msg_size (kept), 3);
    assert_memory_equal (mesh_msg_body (kept), "one", 3);
    mesh_msg_destroy (&kept);
    mesh_flight_release (&flight);
}

//  ---------------------------------------------------------------------
//  A backed-up link: the receiver is stopped while the sender sends

typedef struct {
    int received;
    int out_of_order;
    int bad_body;
    uint64_t keeper_read;
    int timed_out;
} s_report_t;

typedef struct {
    uint32_t next;
    s_report_t report;
} s_sink_t;

static void
s_on_seq (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    s_sink_t *sink = (s_sink_t *) arg;
    uint32_t seq = 0;
    if (mesh_msg_size (msg) != BODY)
        sink->report.bad_body++;
    else {
        const uint8_t *body = (const uint8_t *) mesh_msg_body (msg);
        memcpy (&seq, body, sizeof seq);
        if (body [BODY - 1] != (uint8_t) seq)
            sink->report.bad_body++;
    }
    if (seq != sink->next)
        sink->report.out_of_order++;
    sink->next = seq + 1;
    sink->report.received++;
}

//  The receiver: count and check what comes until `count` arrived. After
//  SIGCONT it sleeps a while before dispatching, so its keeper reads the
//  inbox (batches included) into the dispatch queue first.
static int
s_child (const s_net_t *net, int count, int res)
{
    s_sink_t sink = { 0 };
    mesh_node_t *node = s_node_try (net, "batch-rx");
    if (!node || mesh_node_set_timeouts (node, 30000, 120000))
        return 3;
    mesh_node_on_kind (node, MESH_KIND_DIRECT, s_on_seq, &sink);
    if (mesh_node_start (node))
        return 4;
    int64_t deadline = s_now () + 6 * WAIT_MS;
    while (s_now () < deadline && mesh_node_peer_count (node) == 0)
        mesh_node_dispatch (node, 10);
    //  stopped by the parent in here, some time after it met us; then,
    //  not dispatching, until the keeper has read from the inbox
    while (s_now () < deadline && mesh_node_counter (node, NULL, "inbox.keeper-read") == 0)
        usleep (20 * 1000);
    while (s_now () < deadline && sink.report.received < count)
        mesh_node_dispatch (node, 10);
    sink.report.keeper_read = mesh_node_counter (node, NULL, "inbox.keeper-read");
    sink.report.timed_out = sink.report.received < count;
    int rc = write (res, &sink.report, sizeof sink.report) == sizeof sink.report? 0: 5;
    mesh_node_dispatch (node, 200);     //  let the sender see our counters settle
    mesh_node_destroy (&node);
    return rc;
}

static long
s_proc_max (const char *path)
{
    long lo = 0, def = 0, max = 0;
    FILE *file = fopen (path, "r");
    if (file) {
        if (fscanf (file, "%ld %ld %ld", &lo, &def, &max) != 3)
            max = 0;
        fclose (file);
    }
    return max > 0? max: 8 * 1024 * 1024;
}

//  While the receiver is stopped the link backs up: the sender batches,
//  the high-water mark (in messages) takes every one, and once the
//  receiver resumes every message arrives once, in order, whole, though
//  the sender sends nothing more (the keeper hands the last batch over).
//  The sender counts messages and frames apart.
static void
test_backed_up_link_batches_in_order (void **state)
{
    (void) state;
    //  twice what the kernel can buffer between the two, in messages
    long buffered = s_proc_max ("/proc/sys/net/ipv4/tcp_rmem")
                  + s_proc_max ("/proc/sys/net/ipv4/tcp_wmem");
    int count = (int) (2 * buffered / BODY) + 10000;
    s_net_t net = s_net_named ("test-batch");
    int res [2];
    assert_int_equal (pipe (res), 0);
    fflush (NULL);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        close (res [0]);
        _exit (s_child (&net, count, res [1]));
    }
    close (res [1]);

    mesh_node_t *node = s_node (&net, "batch-tx");
    assert_int_equal (mesh_node_set_hwm (node, count + 1000), 0);
    assert_int_equal (mesh_node_set_timeouts (node, 30000, 120000), 0);
    assert_int_equal (mesh_node_start (node), 0);
    int64_t until = s_now () + WAIT_MS;
    while (mesh_node_peer_count (node) == 0 && s_now () < until)
        mesh_node_dispatch (node, 10);
    char **peers = mesh_node_peers (node);
    assert_non_null (peers);
    assert_non_null (peers [0]);
    char peer [33];
    snprintf (peer, sizeof peer, "%s", peers [0]);
    mesh_strv_free (&peers);
    until = s_now () + WAIT_MS;
    while (mesh_node_peer_state (node, peer) != MESH_PEER_ALIVE && s_now () < until)
        mesh_node_dispatch (node, 10);
    mesh_node_dispatch (node, 100);     //  and the child saw us

    int status = 0;
    assert_int_equal (kill (pid, SIGSTOP), 0);
    assert_int_equal (waitpid (pid, &status, WUNTRACED), pid);
    uint64_t frames_before = mesh_node_counter (node, peer, "frames.out");
    uint64_t msgs_before = mesh_node_counter (node, peer, "messages.out");
    uint8_t body [BODY];
    memset (body, 0xab, sizeof body);
    for (uint32_t i = 0; i < (uint32_t) count; i++) {
        memcpy (body, &i, sizeof i);
        body [BODY - 1] = (uint8_t) i;
        mesh_head_t head = { .kind = MESH_KIND_DIRECT, .subject = "seq" };
        assert_int_equal (mesh_node_send (node, peer, &head, body, sizeof body), 0);
    }
    uint64_t frames = mesh_node_counter (node, peer, "frames.out") - frames_before;
    uint64_t msgs = mesh_node_counter (node, peer, "messages.out") - msgs_before;
    assert_int_equal (kill (pid, SIGCONT), 0);

    //  nothing more is sent from here; the parent only runs its handlers
    s_report_t report = { 0 };
    struct pollfd pfd = { .fd = res [0], .events = POLLIN };
    until = s_now () + 8 * WAIT_MS;
    while (s_now () < until && poll (&pfd, 1, 0) == 0)
        mesh_node_dispatch (node, 10);
    assert_int_equal (read (res [0], &report, sizeof report), sizeof report);
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    close (res [0]);

    uint64_t batched = mesh_node_counter (node, peer, "send.batched");
    print_message ("%d messages: %llu handed to libzmq in %llu frames before the receiver "
                   "resumed, %llu in batches; receiver's keeper read %llu\n", count,
                   (unsigned long long) msgs, (unsigned long long) frames,
                   (unsigned long long) batched, (unsigned long long) report.keeper_read);
    assert_int_equal (report.timed_out, 0);
    assert_int_equal (report.received, count);
    assert_int_equal (report.out_of_order, 0);
    assert_int_equal (report.bad_body, 0);
    assert_true (batched > 0);
    assert_true (frames < msgs);
    assert_true (report.keeper_read > 0);
    assert_int_equal (mesh_node_counter (node, NULL, "send.dropped.hwm"), 0);
    assert_int_equal (mesh_node_counter (node, NULL, "send.dropped.error"), 0);
    assert_int_equal (mesh_node_counter (node, peer, "messages.out") - msgs_before,
                      (uint64_t) count);
    mesh_node_destroy (&node);
}

//  ---------------------------------------------------------------------
//  Damaged batch frames, sent in a peer's name (no security: anyone may)

typedef struct {
    volatile int got;
    char subjects [8][16];
} s_seen_t;

static void
s_on_seen (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    s_seen_t *seen = (s_seen_t *) arg;
    if (seen->got < 8)
        snprintf (seen->subjects [seen->got], sizeof seen->subjects [0], "%s",
                  mesh_msg_subject (msg));
    seen->got++;
}

static void
s_put_len (uint8_t *at, size_t len)
{
    at [0] = (uint8_t) (len >> 24);
    at [1] = (uint8_t) (len >> 16);
    at [2] = (uint8_t) (len >> 8);
    at [3] = (uint8_t) len;
}

static bool
s_wait_counter (mesh_node_t *node, const char *name, uint64_t value)
{
    int64_t until = s_now () + WAIT_MS;
    while (mesh_node_counter (node, NULL, name) < value && s_now () < until)
        mesh_node_dispatch (node, 10);
    return mesh_node_counter (node, NULL, name) >= value;
}

//  A message of a batch that does not decode is counted and skipped, the
//  ones around it arrive; a length that runs past the frame is counted
//  and loses only what follows it; a HELLO inside a batch is refused
static void
test_damaged_batch_costs_only_the_damage (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-batch");
    mesh_node_t *a = s_node (&net, "a"), *b = s_node (&net, "b");
    s_seen_t seen = { 0 };
    mesh_node_on_kind (a, MESH_KIND_DIRECT, s_on_seen, &seen);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    int64_t until = s_now () + WAIT_MS;
    while (mesh_node_peer_state (a, mesh_node_id (b)) != MESH_PEER_ALIVE && s_now () < until) {
        mesh_node_dispatch (a, 5);
        mesh_node_dispatch (b, 5);
    }
    assert_int_equal (mesh_node_peer_state (a, mesh_node_id (b)), MESH_PEER_ALIVE);

    uint8_t rid [17] = { 0 };
    const char *hex = mesh_node_id (b);
    for (int i = 0; i < 16; i++) {
        unsigned byte;
        assert_int_equal (sscanf (hex + 2 * i, "%2x", &byte), 1);
        rid [1 + i] = (uint8_t) byte;
    }
    void *ctx = zmq_ctx_new ();
    void *raw = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (raw, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (raw, ZMQ_ROUTING_ID, rid, sizeof rid);
    assert_int_equal (zmq_connect (raw, mesh_node_endpoint (a)), 0);

    uint8_t frame [1024];
    size_t size = 0;
    frame [size++] = MESH_BATCH_MAGIC;
    const char *names [] = { "one", NULL, "three" };
    for (int i = 0; i < 3; i++) {
        uint8_t env [128];
        size_t len = names [i]? s_envelope (env, sizeof env, names [i], "x"): 7;
        if (!names [i])
            memcpy (env, "garbage", 7);
        s_put_len (frame + size, len);
        memcpy (frame + size + 4, env, len);
        size += 4 + len;
    }
    //  a HELLO does not travel in a batch
    mesh_envelope_t hello = { .version = MESH_WIRE_VERSION, .kind = MESH_KIND_HELLO };
    uint8_t env [128];
    size_t len = mesh_envelope_encode (&hello, env, sizeof env);
    assert_true (len > 0);
    s_put_len (frame + size, len);
    memcpy (frame + size + 4, env, len);
    size += 4 + len;
    //  then a length past the end: "four" never arrives
    size_t cut = s_envelope (env, sizeof env, "four", "x");
    s_put_len (frame + size, cut + 100);
    memcpy (frame + size + 4, env, cut);
    size += 4 + cut;
    assert_int_equal (zmq_send (raw, frame, size, 0), (int) size);

    assert_true (s_wait_counter (a, "malformed.batch", 1));
    until = s_now () + WAIT_MS;
    while (seen.got < 2 && s_now () < until)
        mesh_node_dispatch (a, 10);
    mesh_node_dispatch (a, 100);
    assert_int_equal (seen.got, 2);
    assert_string_equal (seen.subjects [0], "one");
    assert_string_equal (seen.subjects [1], "three");
    assert_int_equal (mesh_node_counter (a, hex, "malformed.batch"), 1);
    assert_int_equal (mesh_node_counter (a, hex, "malformed.batched-hello"), 1);
    //  the garbage message is counted by its decoder's reason, for b
    mesh_envelope_t bad;
    char name [64];
    snprintf (name, sizeof name, "malformed.%s",
              mesh_envelope_strerror (mesh_envelope_decode (&bad, (const uint8_t *) "garbage", 7)));
    for (char *c = name; *c; c++)
        if (*c == ' ')
            *c = '-';
    assert_int_equal (mesh_node_counter (a, hex, name), 1);
    zmq_close (raw);
    zmq_ctx_term (ctx);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

int
main (void)
{
    srandom ((unsigned) getpid () ^ (unsigned) s_now ());
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_backed_up_link_batches_in_order),   //  forks: before any node
        cmocka_unit_test (test_frames_and_flight),
        cmocka_unit_test (test_walk_refuses_damage),
        cmocka_unit_test (test_kept_message_of_a_batch),
        cmocka_unit_test (test_damaged_batch_costs_only_the_damage),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
