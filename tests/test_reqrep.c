/*  =========================================================================
    test_reqrep - request-reply, in one process

    Real nodes on loopback, in a cluster of their own (random name, random
    beacon port). Servers run in threads that loop mesh_node_dispatch(),
    because a synchronous call dispatches only the caller's node. A "raw"
    node without request-reply sends hand-made REQ envelopes (kind 24) to
    test what a server does with duplicates, expired and malformed
    requests, and reads the REP envelopes (kind 25) it gets back.

    Every wait is functional: it bounds a failing test, it never claims a
    speed. Assertions run only in the main thread.
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
#define KIND_REQ    (MESH_KIND_PATTERN + 8)
#define KIND_REP    (MESH_KIND_PATTERN + 9)
#define FLAG_CAST   0x00010000
#define FLAG_ERROR  0x00020000
#define FLAG_UNKNOWN 0x00040000

//  ---------------------------------------------------------------------
//  A server: a node with request-reply, dispatched by its own thread

typedef struct {
    mesh_node_t *node;
    mesh_reqrep_t *rr;
    pthread_t thread;
    volatile bool stop;
    volatile int handled;       //  requests its handlers ran
    volatile int casts;
    mesh_reply_t *held [16];    //  deferred replies it never sent (a hung server)
    int nheld;
    char id [33];
} server_t;

static void *
s_server_loop (void *arg)
{
    server_t *server = (server_t *) arg;
    while (!server->stop)
        mesh_node_dispatch (server->node, 20);
    return NULL;
}

static server_t *
s_server (const s_net_t *net, const char *name)
{
    server_t *server = (server_t *) calloc (1, sizeof (server_t));
    server->node = s_node (net, name);
    assert_int_equal (mesh_node_start (server->node), 0);
    server->rr = mesh_reqrep_new (server->node);
    assert_non_null (server->rr);
    snprintf (server->id, sizeof server->id, "%s", mesh_node_id (server->node));
    assert_int_equal (pthread_create (&server->thread, NULL, s_server_loop, server), 0);
    return server;
}

static void
s_server_destroy (server_t **server_p)
{
    server_t *server = *server_p;
    server->stop = true;
    pthread_join (server->thread, NULL);
    for (int i = 0; i < server->nheld; i++)
        mesh_reply_send (&server->held [i]);
    mesh_reqrep_destroy (&server->rr);
    mesh_node_destroy (&server->node);
    free (server);
    *server_p = NULL;
}

//  A caller: a started node and its request-reply, settle time 0 (tests
//  wait for providers themselves)
static mesh_reqrep_t *
s_caller (const s_net_t *net, const char *name, mesh_node_t **node)
{
    *node = s_node (net, name);
    assert_int_equal (mesh_node_start (*node), 0);
    mesh_reqrep_t *rr = mesh_reqrep_new (*node);
    assert_non_null (rr);
    mesh_reqrep_set_settle (rr, 0);
    return rr;
}

//  Handlers

static void
s_echo (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr;
    server_t *server = (server_t *) arg;
    if (server)
        server->handled++;
    mesh_reply_set (reply, mesh_msg_body (request), mesh_msg_size (request));
    if (server && (mesh_msg_flags (request) & FLAG_CAST))
        server->casts++;
}

static void
s_fail (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) request; (void) arg;
    mesh_reply_fail (reply, "boom: out of widgets");
}

//  Answers nothing, ever (until the test ends): a hung server
static void
s_hang (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) request;
    server_t *server = (server_t *) arg;
    server->handled++;
    mesh_reply_t *later = mesh_reply_defer (reply);
    if (server->nheld < 16)
        server->held [server->nheld++] = later;
    else
        mesh_reply_send (&later);
}

static void *
s_late_sender (void *arg)
{
    mesh_reply_t *reply = (mesh_reply_t *) arg;
    usleep (50 * 1000);
    mesh_reply_set (reply, "later", 5);
    mesh_reply_send (&reply);
    return NULL;
}

static void
s_defer_to_thread (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) request; (void) arg;
    pthread_t thread;
    mesh_reply_t *later = mesh_reply_defer (reply);
    assert_non_null (later);
    pthread_create (&thread, NULL, s_late_sender, later);
    pthread_detach (thread);
}

//  ---------------------------------------------------------------------
//  A raw node: hand-made REQ, records REP

typedef struct {
    int replies;
    uint32_t flags;
    uint64_t id;
    char body [256];
} raw_t;

static void
s_on_raw_rep (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    raw_t *raw = (raw_t *) arg;
    raw->replies++;
    raw->flags = mesh_msg_flags (msg);
    raw->id = mesh_msg_id (msg);
    snprintf (raw->body, sizeof raw->body, "%.*s", (int) mesh_msg_size (msg),
              (const char *) mesh_msg_body (msg));
}

static void
s_wait_peer (mesh_node_t *node, const char *peer)
{
    int64_t until = s_now () + WAIT_MS;
    while (mesh_node_peer_state (node, peer) != MESH_PEER_ALIVE && s_now () < until)
        mesh_node_dispatch (node, 20);
    assert_int_equal (mesh_node_peer_state (node, peer), MESH_PEER_ALIVE);
}

static void
s_pump_until (mesh_node_t *node, volatile int *value, int want)
{
    int64_t until = s_now () + WAIT_MS;
    while (*value < want && s_now () < until)
        mesh_node_dispatch (node, 20);
}

static void
s_send_req (mesh_node_t *node, const char *peer, const char *service, uint64_t id,
            uint64_t deadline, const char *body)
{
    mesh_head_t head = { .kind = KIND_REQ, .id = id, .seq = 1, .deadline = deadline,
                         .subject = service };
    assert_int_equal (mesh_node_send (node, peer, &head, body, strlen (body)), 0);
}

//  ---------------------------------------------------------------------
//  Tests

//  1. Usage: serve a service, call it, get the reply from the server
static void
test_usage (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *server = s_server (&net, "server");
    assert_int_equal (mesh_serve (server->rr, "echo", s_echo, server), 0);
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    assert_int_equal (mesh_reqrep_wait_providers (rr, "echo", 1, WAIT_MS), 0);
    assert_int_equal (mesh_reqrep_providers (rr, "echo"), 1);

    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS };
    mesh_msg_t *reply = mesh_call (rr, "echo", "hello", 5, &opts);
    assert_non_null (reply);
    assert_true (s_body_is (reply, "hello"));
    assert_string_equal (mesh_msg_sender (reply), server->id);
    mesh_msg_destroy (&reply);
    assert_int_equal (server->handled, 1);

    //  bad names are refused
    assert_int_equal (mesh_serve (server->rr, "bad..name", s_echo, NULL), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_serve (server->rr, "echo", s_echo, NULL), -1);
    assert_null (mesh_call (rr, "a.*", "x", 1, NULL));
    assert_int_equal (mesh_errno (), MESH_EINVAL);

    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    s_server_destroy (&server);
}

//  2. A handler's failure comes back as MESH_EREMOTE with its text, and an
//  unknown service at the server is an error reply, not a timeout
static void
test_errors_are_replies (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *server = s_server (&net, "server");
    assert_int_equal (mesh_serve (server->rr, "fails", s_fail, NULL), 0);
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    assert_int_equal (mesh_reqrep_wait_providers (rr, "fails", 1, WAIT_MS), 0);
    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS };
    assert_null (mesh_call (rr, "fails", "x", 1, &opts));
    assert_int_equal (mesh_errno (), MESH_EREMOTE);
    assert_non_null (strstr (mesh_last_error (), "boom: out of widgets"));

    //  a raw REQ for a service the server does not have
    mesh_node_t *raw_node = s_node (&net, "raw");
    raw_t raw = { 0 };
    mesh_node_on_kind (raw_node, KIND_REP, s_on_raw_rep, &raw);
    assert_int_equal (mesh_node_start (raw_node), 0);
    s_wait_peer (raw_node, server->id);
    s_send_req (raw_node, server->id, "no.such.service", 77, 0, "x");
    s_pump_until (raw_node, &raw.replies, 1);
    assert_int_equal (raw.replies, 1);
    assert_int_equal (raw.id, 77);
    assert_true (raw.flags & FLAG_UNKNOWN);
    assert_non_null (strstr (raw.body, "unknown service no.such.service"));
    assert_int_equal (mesh_node_counter (server->node, mesh_node_id (raw_node),
                                         "reqrep.error.unknown-service"), 1);
    mesh_node_destroy (&raw_node);
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    s_server_destroy (&server);
}

//  3. No provider: the call fails at once with MESH_ENORESPONDERS, long
//  before its deadline; a fresh node first lets discovery settle
static void
test_no_responders (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    mesh_call_opts_t opts = { .timeout_ms = 60000 };
    int64_t start = s_now ();
    assert_null (mesh_call (rr, "nobody.home", "x", 1, &opts));
    assert_int_equal (mesh_errno (), MESH_ENORESPONDERS);
    assert_int_equal (mesh_call_async (rr, "nobody.home", "x", 1, &opts, NULL, NULL), 0);
    assert_int_equal (mesh_errno (), MESH_ENORESPONDERS);
    assert_int_equal (mesh_cast (rr, "nobody.home", "x", 1, false, &opts), -1);
    assert_int_equal (mesh_errno (), MESH_ENORESPONDERS);
    assert_int_equal (mesh_call_all (rr, "nobody.home", "x", 1, &opts, NULL, NULL), -1);
    assert_int_equal (mesh_errno (), MESH_ENORESPONDERS);
    //  with the default settle time, still far from the 60 s deadline
    mesh_reqrep_set_settle (rr, MESH_DEFAULT_SETTLE_MS);
    mesh_reqrep_destroy (&rr);
    rr = mesh_reqrep_new (node);
    assert_null (mesh_call (rr, "nobody.home", "x", 1, &opts));
    assert_int_equal (mesh_errno (), MESH_ENORESPONDERS);
    assert_true (s_now () - start < 30000);
    assert_int_equal (mesh_node_counter (node, NULL, "reqrep.no-responders"), 5);   //  one per try above
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
}

//  4. wait_for_provider: a call made before anybody serves waits for one
static void *
s_serve_later (void *arg)
{
    server_t *server = (server_t *) arg;
    usleep (300 * 1000);
    mesh_serve (server->rr, "late", s_echo, server);
    return NULL;
}

static void
test_wait_for_provider (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *server = s_server (&net, "server");
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    pthread_t thread;
    pthread_create (&thread, NULL, s_serve_later, server);
    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS, .wait_for_provider = true };
    mesh_msg_t *reply = mesh_call (rr, "late", "hi", 2, &opts);
    pthread_join (thread, NULL);
    assert_non_null (reply);
    assert_true (s_body_is (reply, "hi"));
    mesh_msg_destroy (&reply);
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    s_server_destroy (&server);
}

//  5. A request whose deadline passed is dropped by the server and counted;
//  a malformed one (id 0) too; neither runs the handler nor gets a reply
static void
test_expired_and_malformed_are_dropped (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *server = s_server (&net, "server");
    assert_int_equal (mesh_serve (server->rr, "echo", s_echo, server), 0);
    mesh_node_t *raw_node = s_node (&net, "raw");
    raw_t raw = { 0 };
    mesh_node_on_kind (raw_node, KIND_REP, s_on_raw_rep, &raw);
    assert_int_equal (mesh_node_start (raw_node), 0);
    s_wait_peer (raw_node, server->id);
    const char *raw_id = mesh_node_id (raw_node);
    s_send_req (raw_node, server->id, "echo", 5, mesh_clock_ms () - 1000, "old");
    s_send_req (raw_node, server->id, "echo", 0, 0, "no id");
    s_send_req (raw_node, server->id, "echo", 6, mesh_clock_ms () + WAIT_MS, "fresh");
    s_pump_until (raw_node, &raw.replies, 1);
    int64_t until = s_now () + 300;     //  nothing more may come
    while (s_now () < until)
        mesh_node_dispatch (raw_node, 20);
    assert_int_equal (raw.replies, 1);
    assert_int_equal (raw.id, 6);
    assert_int_equal (server->handled, 1);
    assert_int_equal (mesh_node_counter (server->node, raw_id, "reqrep.dropped.expired"), 1);
    assert_int_equal (mesh_node_counter (server->node, raw_id, "reqrep.dropped.malformed"), 1);
    mesh_node_destroy (&raw_node);
    s_server_destroy (&server);
}

//  6. Once only: the same request id from the same caller runs the handler
//  once; repeats get the cached reply
static void
test_duplicate_runs_once (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *server = s_server (&net, "server");
    assert_int_equal (mesh_serve (server->rr, "echo", s_echo, server), 0);
    mesh_node_t *raw_node = s_node (&net, "raw");
    raw_t raw = { 0 };
    mesh_node_on_kind (raw_node, KIND_REP, s_on_raw_rep, &raw);
    assert_int_equal (mesh_node_start (raw_node), 0);
    s_wait_peer (raw_node, server->id);
    for (int i = 0; i < 3; i++) {
        s_send_req (raw_node, server->id, "echo", 4242, 0, i? "changed": "first");
        s_pump_until (raw_node, &raw.replies, i + 1);
        assert_int_equal (raw.replies, i + 1);
        assert_string_equal (raw.body, "first");    //  the one answer, again
    }
    assert_int_equal (server->handled, 1);
    assert_int_equal (mesh_node_counter (server->node, mesh_node_id (raw_node),
                                         "reqrep.duplicate.answered"), 2);
    mesh_node_destroy (&raw_node);
    s_server_destroy (&server);
}

//  7. Asynchronous calls: a callback, or a queue read with mesh_reqrep_recv
typedef struct {
    int outcomes;
    uint64_t id;
    int err;
    char body [64];
} async_t;

static void
s_on_outcome (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
              const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) error;
    async_t *async = (async_t *) arg;
    async->outcomes++;
    async->id = call_id;
    async->err = err;
    if (reply)
        snprintf (async->body, sizeof async->body, "%.*s", (int) mesh_msg_size (reply),
                  (const char *) mesh_msg_body (reply));
}

static void
test_async (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *server = s_server (&net, "server");
    assert_int_equal (mesh_serve (server->rr, "echo", s_echo, server), 0);
    assert_int_equal (mesh_serve (server->rr, "fails", s_fail, NULL), 0);
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    assert_int_equal (mesh_reqrep_wait_providers (rr, "fails", 1, WAIT_MS), 0);
    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS };
    async_t async = { 0 };
    uint64_t id = mesh_call_async (rr, "echo", "one", 3, &opts, s_on_outcome, &async);
    assert_true (id > 0);
    s_pump_until (node, &async.outcomes, 1);
    assert_int_equal (async.outcomes, 1);
    assert_int_equal (async.id, id);
    assert_int_equal (async.err, 0);
    assert_string_equal (async.body, "one");

    uint64_t a = mesh_call_async (rr, "echo", "two", 3, &opts, NULL, NULL);
    uint64_t b = mesh_call_async (rr, "fails", "x", 1, &opts, NULL, NULL);
    assert_true (a && b && a != b);
    int replies = 0, failures = 0;
    for (int i = 0; i < 2; i++) {
        uint64_t call_id = 0;
        int err = -1;
        mesh_msg_t *reply = mesh_reqrep_recv (rr, WAIT_MS, &call_id, &err);
        if (reply) {
            assert_int_equal (call_id, a);
            assert_true (s_body_is (reply, "two"));
            replies++;
        }
        else {
            assert_int_equal (call_id, b);
            assert_int_equal (err, MESH_EREMOTE);
            failures++;
        }
        mesh_msg_destroy (&reply);
    }
    assert_int_equal (replies, 1);
    assert_int_equal (failures, 1);
    uint64_t none = 1;
    assert_null (mesh_reqrep_recv (rr, 50, &none, NULL));
    assert_int_equal (none, 0);
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    s_server_destroy (&server);
}

//  mesh_call_async from one thread while another dispatches the node: the
//  id it returns is the id its outcome reports, even when the call is done
//  and freed by the dispatcher before mesh_call_async returns (it returned
//  a field of the freed call: ids that matched no outcome, 1 run in 5)
#define RACE_CALLS  2000

typedef struct {
    mesh_node_t *node;
    volatile bool stop;
    uint64_t outcome_id [RACE_CALLS];
    atomic_int outcomes;
} race_t;

static void *
s_race_dispatch (void *arg)
{
    race_t *race = (race_t *) arg;
    while (!race->stop)
        mesh_node_dispatch (race->node, 1);
    return NULL;
}

static void
s_race_outcome (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
                const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) err; (void) error;
    race_t *race = (race_t *) arg;
    assert_non_null (reply);
    char text [16];
    snprintf (text, sizeof text, "%.*s", (int) mesh_msg_size (reply),
              (const char *) mesh_msg_body (reply));
    int i = atoi (text);
    assert_true (i >= 0 && i < RACE_CALLS);
    race->outcome_id [i] = call_id;
    atomic_fetch_add (&race->outcomes, 1);
}

static void
test_async_id_while_another_thread_dispatches (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    static race_t race;
    memset (&race, 0, sizeof race);
    mesh_reqrep_t *rr = s_caller (&net, "racer", &race.node);
    assert_int_equal (mesh_serve (rr, "local.echo", s_echo, NULL), 0);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_race_dispatch, &race), 0);
    static uint64_t returned [RACE_CALLS];
    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS };
    for (int i = 0; i < RACE_CALLS; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        returned [i] = mesh_call_async (rr, "local.echo", body, strlen (body), &opts,
                                        s_race_outcome, &race);
        assert_true (returned [i] > 0);
    }
    int64_t deadline = (int64_t) mesh_clock_ms () + WAIT_MS;
    while (atomic_load (&race.outcomes) < RACE_CALLS && (int64_t) mesh_clock_ms () < deadline)
        usleep (1000);
    race.stop = true;
    pthread_join (thread, NULL);
    assert_int_equal (atomic_load (&race.outcomes), RACE_CALLS);
    for (int i = 0; i < RACE_CALLS; i++)
        assert_int_equal (returned [i], race.outcome_id [i]);
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&race.node);
}

//  8. Calls spread over providers: fewest outstanding, round robin among
//  equals, the local provider included
static void
test_round_robin_with_local_provider (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *servers [2] = { s_server (&net, "s1"), s_server (&net, "s2") };
    for (int i = 0; i < 2; i++)
        assert_int_equal (mesh_serve (servers [i]->rr, "spread", s_echo, servers [i]), 0);
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    int local = 0;
    assert_int_equal (mesh_serve (rr, "spread", s_echo, NULL), 0);
    assert_int_equal (mesh_reqrep_wait_providers (rr, "spread", 3, WAIT_MS), 0);
    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS };
    for (int i = 0; i < 30; i++) {
        mesh_msg_t *reply = mesh_call (rr, "spread", "x", 1, &opts);
        assert_non_null (reply);
        local += strcmp (mesh_msg_sender (reply), mesh_node_id (node)) == 0;
        mesh_msg_destroy (&reply);
    }
    assert_int_equal (servers [0]->handled, 10);
    assert_int_equal (servers [1]->handled, 10);
    assert_int_equal (local, 10);
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    for (int i = 0; i < 2; i++)
        s_server_destroy (&servers [i]);
}

//  9. Cast (one provider, no reply), cast to all, and call-all gathering
//  one reply per provider
typedef struct {
    int replies;
    char providers [4][33];
} gathered_t;

static void
s_on_gathered (mesh_reqrep_t *rr, const char *provider, int err, const char *error,
               const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) error;
    gathered_t *g = (gathered_t *) arg;
    if (!err && reply && g->replies < 4)
        snprintf (g->providers [g->replies++], 33, "%s", provider);
}

static void
test_cast_and_call_all (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *servers [3];
    for (int i = 0; i < 3; i++) {
        char name [8];
        snprintf (name, sizeof name, "s%d", i + 1);
        servers [i] = s_server (&net, name);
        assert_int_equal (mesh_serve (servers [i]->rr, "fan", s_echo, servers [i]), 0);
    }
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    assert_int_equal (mesh_reqrep_wait_providers (rr, "fan", 3, WAIT_MS), 0);
    assert_int_equal (mesh_cast (rr, "fan", "one", 3, false, NULL), 0);
    assert_int_equal (mesh_cast (rr, "fan", "all", 3, true, NULL), 0);
    int64_t until = s_now () + WAIT_MS;
    while (servers [0]->casts + servers [1]->casts + servers [2]->casts < 4 && s_now () < until)
        mesh_node_dispatch (node, 20);
    usleep (100 * 1000);
    assert_int_equal (servers [0]->casts + servers [1]->casts + servers [2]->casts, 4);
    for (int i = 0; i < 3; i++)
        assert_true (servers [i]->casts >= 1);

    gathered_t g = { 0 };
    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS };
    assert_int_equal (mesh_call_all (rr, "fan", "q", 1, &opts, s_on_gathered, &g), 3);
    assert_int_equal (g.replies, 3);
    for (int i = 0; i < 3; i++) {
        int seen = 0;
        for (int j = 0; j < 3; j++)
            seen += strcmp (g.providers [j], servers [i]->id) == 0;
        assert_int_equal (seen, 1);
    }
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    for (int i = 0; i < 3; i++)
        s_server_destroy (&servers [i]);
}

//  10. A deferred reply sent later from another thread reaches the caller
static void
test_deferred_reply (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *server = s_server (&net, "server");
    assert_int_equal (mesh_serve (server->rr, "slow", s_defer_to_thread, NULL), 0);
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    assert_int_equal (mesh_reqrep_wait_providers (rr, "slow", 1, WAIT_MS), 0);
    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS };
    mesh_msg_t *reply = mesh_call (rr, "slow", "x", 1, &opts);
    assert_non_null (reply);
    assert_true (s_body_is (reply, "later"));
    mesh_msg_destroy (&reply);
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    s_server_destroy (&server);
}

//  11. A provider that does not answer in its share of the deadline: the
//  call is retried on the other provider and succeeds; without retries a
//  call to a hung provider times out at its deadline
static void
test_retry_on_timeout_and_deadline (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *hung = s_server (&net, "hung");
    server_t *good = s_server (&net, "good");
    assert_int_equal (mesh_serve (hung->rr, "svc", s_hang, hung), 0);
    assert_int_equal (mesh_serve (good->rr, "svc", s_echo, good), 0);
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    assert_int_equal (mesh_reqrep_wait_providers (rr, "svc", 2, WAIT_MS), 0);
    mesh_call_opts_t opts = { .timeout_ms = 3000, .retries = 2 };
    for (int i = 0; i < 4; i++) {
        mesh_msg_t *reply = mesh_call (rr, "svc", "x", 1, &opts);
        assert_non_null (reply);
        assert_string_equal (mesh_msg_sender (reply), good->id);
        mesh_msg_destroy (&reply);
    }
    assert_true (hung->handled >= 1);
    assert_int_equal (mesh_node_counter (node, hung->id, "reqrep.retried.timeout"),
                      (uint64_t) hung->handled);
    assert_int_equal (mesh_unserve (good->rr, "svc"), 0);
    assert_int_equal (mesh_unserve (good->rr, "svc"), -1);
    int64_t until = s_now () + WAIT_MS;
    while (mesh_reqrep_providers (rr, "svc") != 1 && s_now () < until)
        mesh_node_dispatch (node, 20);
    assert_int_equal (mesh_reqrep_providers (rr, "svc"), 1);
    mesh_call_opts_t once = { .timeout_ms = 400, .retries = -1 };
    int64_t start = s_now ();
    assert_null (mesh_call (rr, "svc", "x", 1, &once));
    assert_int_equal (mesh_errno (), MESH_ETIMEDOUT);
    assert_true (s_now () - start >= 400 - 20);     //  not before its deadline (clock slack)
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    s_server_destroy (&hung);
    s_server_destroy (&good);
}

//  12. Services are announced and withdrawn: SERVICE_UP, SERVICE_DOWN
static void
test_service_events (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    server_t *server = s_server (&net, "server");
    assert_int_equal (mesh_serve (server->rr, "orders.create", s_echo, server), 0);
    bool up = false, down = false;
    int64_t until = s_now () + WAIT_MS;
    while (!down && s_now () < until) {
        mesh_event_t *event = mesh_node_wait_event (node, 50);
        mesh_reqrep_providers (rr, "orders.create");    //  rebuilds now, not at a tick
        if (!event)
            continue;
        if (mesh_event_type (event) == MESH_EVENT_SERVICE_UP) {
            assert_string_equal (mesh_event_detail (event), "orders.create");
            assert_string_equal (mesh_event_peer (event), server->id);
            assert_string_equal (mesh_event_name (event), "SERVICE_UP");
            up = true;
            mesh_unserve (server->rr, "orders.create");
        }
        if (mesh_event_type (event) == MESH_EVENT_SERVICE_DOWN) {
            assert_true (up);
            assert_string_equal (mesh_event_detail (event), "orders.create");
            down = true;
        }
        mesh_event_destroy (&event);
    }
    assert_true (up && down);
    assert_int_equal (mesh_reqrep_providers (rr, "orders.create"), 0);
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    s_server_destroy (&server);
}

//  13. A provider that leaves during a call with no retry left: the call
//  fails with MESH_EPROVIDERLEFT, not "no responders" (its handler ran)
static void
test_provider_left (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *hung = s_server (&net, "hung");
    assert_int_equal (mesh_serve (hung->rr, "svc", s_hang, hung), 0);
    mesh_node_t *node;
    mesh_reqrep_t *rr = s_caller (&net, "caller", &node);
    assert_int_equal (mesh_reqrep_wait_providers (rr, "svc", 1, WAIT_MS), 0);
    mesh_call_opts_t once = { .timeout_ms = WAIT_MS, .retries = -1 };
    uint64_t id = mesh_call_async (rr, "svc", "x", 1, &once, NULL, NULL);
    assert_true (id > 0);
    int64_t until = s_now () + WAIT_MS;
    while (hung->handled == 0 && s_now () < until)
        mesh_node_dispatch (node, 20);
    assert_int_equal (hung->handled, 1);
    mesh_node_stop (hung->node);        //  BYE, the held reply never sent
    uint64_t call_id = 0;
    int err = 0;
    assert_null (mesh_reqrep_recv (rr, WAIT_MS, &call_id, &err));
    assert_true (call_id == id);
    assert_int_equal (err, MESH_EPROVIDERLEFT);
    assert_string_equal (mesh_strerror (MESH_EPROVIDERLEFT), "provider left");
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    s_server_destroy (&hung);
}

//  15. The id mesh_call_async returns is its call's, also when another
//  thread dispatches the caller's node and finishes the call (and frees
//  it) before mesh_call_async has returned
typedef struct {
    uint64_t id;
    int done;
} s_one_t;

static void
s_on_one (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
          const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) err; (void) error; (void) reply;
    s_one_t *one = (s_one_t *) arg;
    one->id = call_id;
    __atomic_store_n (&one->done, 1, __ATOMIC_RELEASE);
}

static void
test_async_id_of_a_remote_call_while_another_thread_dispatches (void **state)
{
    (void) state;
    s_net_t net = s_net_named ("test-reqrep");
    server_t *server = s_server (&net, "server");
    assert_int_equal (mesh_serve (server->rr, "echo", s_echo, server), 0);
    server_t *caller = s_server (&net, "caller");      //  dispatched by its thread
    assert_int_equal (mesh_reqrep_wait_providers (caller->rr, "echo", 1, WAIT_MS), 0);
    mesh_call_opts_t opts = { .timeout_ms = WAIT_MS };
    for (int i = 0; i < 300; i++) {
        s_one_t one = { 0 };
        uint64_t id = mesh_call_async (caller->rr, "echo", "x", 1, &opts, s_on_one, &one);
        assert_true (id > 0);
        int64_t until = s_now () + WAIT_MS;
        while (!__atomic_load_n (&one.done, __ATOMIC_ACQUIRE) && s_now () < until)
            usleep (50);
        assert_true (one.done);
        assert_int_equal (one.id, id);
    }
    s_server_destroy (&caller);
    s_server_destroy (&server);
}

int
main (void)
{
    srandom ((unsigned) getpid () ^ (unsigned) time (NULL));
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage),
        cmocka_unit_test (test_errors_are_replies),
        cmocka_unit_test (test_no_responders),
        cmocka_unit_test (test_wait_for_provider),
        cmocka_unit_test (test_expired_and_malformed_are_dropped),
        cmocka_unit_test (test_duplicate_runs_once),
        cmocka_unit_test (test_async),
        cmocka_unit_test (test_async_id_while_another_thread_dispatches),
        cmocka_unit_test (test_round_robin_with_local_provider),
        cmocka_unit_test (test_cast_and_call_all),
        cmocka_unit_test (test_deferred_reply),
        cmocka_unit_test (test_retry_on_timeout_and_deadline),
        cmocka_unit_test (test_service_events),
        cmocka_unit_test (test_provider_left),
        cmocka_unit_test (test_async_id_of_a_remote_call_while_another_thread_dispatches),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
