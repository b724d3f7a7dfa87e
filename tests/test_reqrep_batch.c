/*  =========================================================================
    test_reqrep_batch - request-reply when requests arrive in batch frames

    A caller that sends many calls at once backs its link up, and its
    requests reach the provider packed in batch frames. While the provider
    handles such a frame, what its handlers send waits so that the batch
    of replies leaves as one frame (mesh_node_dispatch.c). What a user
    relies on: a reply does not wait for a later request of the same
    batch whose handler blocks (it leaves within MESH_HOLD_MS plus a keeper
    period), and every call of a burst gets its own answer.

    Real nodes on loopback; the provider dispatches in its own thread. The
    waits are functional ceilings, never speed claims. Assertions run in
    the main thread only.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdatomic.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "meshbus.h"
#include "meshbus/pattern.h"
#include "testnet.h"

#define WAIT_MS     10000       //  ceiling of every wait; valgrind is slow
#define PAIRS       100         //  a burst of (fast, gate, other) calls: the link
                                //  backs up and they share batch frames

typedef struct {
    mesh_node_t *node;
    mesh_reqrep_t *rr;
    pthread_t thread;
    volatile bool stop;
} server_t;

typedef struct {
    atomic_int answered [PAIRS];    //  the caller has fast call i's answer
    int fast_ok, fast_bad;          //  the rest: the caller's thread only
    int gate_released, gate_other;
    int fast_seen [PAIRS], gate_seen [PAIRS];
} state_t;

static state_t s_state;

static void *
s_server_loop (void *arg)
{
    server_t *server = (server_t *) arg;
    while (!server->stop)
        mesh_node_dispatch (server->node, 20);
    return NULL;
}

static int
s_index (const mesh_msg_t *msg)
{
    char text [16];
    snprintf (text, sizeof text, "%.*s", (int) mesh_msg_size (msg),
              (const char *) mesh_msg_body (msg));
    int i = atoi (text);
    return i >= 0 && i < PAIRS? i: 0;
}

static void
s_echo (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) arg;
    mesh_reply_set (reply, mesh_msg_body (request), mesh_msg_size (request));
}

//  Gate i blocks its dispatch thread, without dispatching, until the
//  caller has the answer to fast call i, sent just before it: when both
//  came in one batch frame, that answer waits in the provider's batch of
//  replies while this handler runs, and must leave anyway
static void
s_gate (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) arg;
    int i = s_index (request);
    int64_t until = s_now () + 2000;
    while (!atomic_load (&s_state.answered [i]) && s_now () < until)
        usleep (500);
    const char *text = atomic_load (&s_state.answered [i])? "released": "not released";
    mesh_reply_set (reply, text, strlen (text));
}

static void
s_on_fast (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
           const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) call_id; (void) error;
    int i = (int) (intptr_t) arg;
    char text [16];
    snprintf (text, sizeof text, "%d", i);
    if (!err && reply && s_body_is (reply, text))
        s_state.fast_ok++;
    else
        s_state.fast_bad++;
    s_state.fast_seen [i]++;
    atomic_store (&s_state.answered [i], 1);
}

static void
s_on_gate (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
           const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) call_id; (void) error;
    int i = (int) (intptr_t) arg;
    s_state.gate_seen [i]++;
    if (!err && reply && s_body_is (reply, "released"))
        s_state.gate_released++;
    else
        s_state.gate_other++;
}

static void
test_blocking_handler_does_not_hold_earlier_replies (void **state)
{
    (void) state;
    memset (&s_state, 0, sizeof s_state);
    s_net_t net = s_net_named ("test-reqrep-batch");
    server_t server = { 0 };
    server.node = s_node (&net, "provider");
    assert_int_equal (mesh_node_start (server.node), 0);
    server.rr = mesh_reqrep_new (server.node);
    assert_int_equal (mesh_serve (server.rr, "fast", s_echo, NULL), 0);
    assert_int_equal (mesh_serve (server.rr, "gate", s_gate, NULL), 0);
    assert_int_equal (pthread_create (&server.thread, NULL, s_server_loop, &server), 0);

    mesh_node_t *node = s_node (&net, "caller");
    assert_int_equal (mesh_node_start (node), 0);
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    mesh_reqrep_set_settle (rr, 0);
    assert_int_equal (mesh_reqrep_wait_providers (rr, "gate", 1, WAIT_MS), 0);

    //  the burst, without dispatching in between: what the link could not
    //  take at once leaves in batch frames
    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS, .retries = -1 };
    for (int i = 0; i < PAIRS; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        assert_true (mesh_call_async (rr, "fast", body, strlen (body), &opts, s_on_fast,
                                      (void *) (intptr_t) i) > 0);
        assert_true (mesh_call_async (rr, "gate", body, strlen (body), &opts, s_on_gate,
                                      (void *) (intptr_t) i) > 0);
        //  a third call: frames of two or four do not always end between
        //  a fast call and its gate
        assert_true (mesh_call_async (rr, "fast", body, strlen (body), &opts, NULL, NULL) > 0);
    }
    int64_t deadline = s_now () + 3 * WAIT_MS;
    while (s_state.gate_released + s_state.gate_other < PAIRS && s_now () < deadline)
        mesh_node_dispatch (node, 20);

    printf ("batched requests %llu, replies %llu; gates released %d, not %d\n",
            (unsigned long long) mesh_node_counter (node, mesh_node_id (server.node),
                                                    "send.batched"),
            (unsigned long long) mesh_node_counter (server.node, mesh_node_id (node),
                                                    "send.batched"),
            s_state.gate_released, s_state.gate_other);
    assert_int_equal (s_state.fast_ok, PAIRS);
    assert_int_equal (s_state.fast_bad, 0);
    assert_int_equal (s_state.gate_released, PAIRS);
    for (int i = 0; i < PAIRS; i++) {
        assert_int_equal (s_state.fast_seen [i], 1);
        assert_int_equal (s_state.gate_seen [i], 1);
    }

    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    server.stop = true;
    pthread_join (server.thread, NULL);
    mesh_reqrep_destroy (&server.rr);
    mesh_node_destroy (&server.node);
}

int
main (void)
{
    srandom ((unsigned) getpid ());
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_blocking_handler_does_not_hold_earlier_replies),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
