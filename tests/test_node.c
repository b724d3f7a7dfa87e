/*  =========================================================================
    test_node - the node API, in one process

    Every test starts real nodes on loopback, in a cluster of its own with a
    random name and on a random beacon port, so that test runs on the same
    host (or a meshbus tool someone left running) never mix. Each test
    states one fact a user relies on; the first one reads like the usage
    example. The last tests run a peer written in Python (python3 with zmq
    and msgpack) against a node, when such a python is there.

    Nodes have a keeper thread, so the tests pump every node with
    mesh_node_dispatch() while they wait: nothing else runs handlers.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>

#include "meshbus.h"
#include "meshbus/pattern.h"

#define WAIT_MS         10000       //  ceiling of every wait; valgrind is slow
#define BEACON_MS       100         //  fast discovery in tests
#define KIND_OTHER      40          //  a kind nobody handles
#define MAX_KEPT        64          //  messages a recorder keeps
#define TCP_PORT_LO     20000       //  fixed TCP ports: below Linux's ephemeral
#define TCP_PORT_HI     32000       //  range (32768..), where links' own ports live

//  ---------------------------------------------------------------------
//  Helpers

#include "testnet.h"
#define s_net() s_net_named ("test-node")

static int
s_random (int lo, int hi)
{
    return lo + (int) (random () % (long) (hi - lo + 1));
}

static void
s_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000 };
    nanosleep (&ts, NULL);
}

//  Run handlers of both nodes for a few ms
static void
s_pump (mesh_node_t *a, mesh_node_t *b)
{
    if (a)
        mesh_node_dispatch (a, 5);
    if (b)
        mesh_node_dispatch (b, 5);
}

//  Pump a and b until *flag (an int) reaches value or WAIT_MS passes
static bool
s_pump_until (mesh_node_t *a, mesh_node_t *b, volatile int *flag, int value)
{
    int64_t until = s_now () + WAIT_MS;
    while (*flag < value && s_now () < until)
        s_pump (a, b);
    return *flag >= value;
}

//  Next event of a type on node, pumping other as well; other events are
//  dropped. NULL after WAIT_MS.
static mesh_event_t *
s_wait_event (mesh_node_t *node, mesh_node_t *other, int type)
{
    int64_t until = s_now () + WAIT_MS;
    while (s_now () < until) {
        mesh_event_t *event;
        while ((event = mesh_node_event (node))) {
            if (mesh_event_type (event) == type)
                return event;
            mesh_event_destroy (&event);
        }
        s_pump (node, other);
    }
    return NULL;
}

//  Start both, wait until each has the other ALIVE, drop the events so far
static void
s_meet (mesh_node_t *a, mesh_node_t *b)
{
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    int64_t until = s_now () + WAIT_MS;
    while (s_now () < until
       && (mesh_node_peer_state (a, mesh_node_id (b)) != MESH_PEER_ALIVE
       ||  mesh_node_peer_state (b, mesh_node_id (a)) != MESH_PEER_ALIVE))
        s_pump (a, b);
    assert_int_equal (mesh_node_peer_state (a, mesh_node_id (b)), MESH_PEER_ALIVE);
    assert_int_equal (mesh_node_peer_state (b, mesh_node_id (a)), MESH_PEER_ALIVE);
    mesh_event_t *event;
    while ((event = mesh_node_event (a)))
        mesh_event_destroy (&event);
    while ((event = mesh_node_event (b)))
        mesh_event_destroy (&event);
}

//  Keeps a copy of every message handed to it
typedef struct {
    volatile int count;
    mesh_msg_t *kept [MAX_KEPT];
} s_recorder_t;

static void
s_record (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
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

static const char *s_json_value (const char *p, int depth);

static const char *
s_json_ws (const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *
s_json_string (const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p && *p != '"') {
        if ((unsigned char) *p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit ((unsigned char) p [i]))
                        return NULL;
                p += 4;
            }
            else
            if (!strchr ("\"\\/bfnrt", *p) || !*p)
                return NULL;
        }
        p++;
    }
    return *p == '"'? p + 1: NULL;
}

static const char *
s_json_value (const char *p, int depth)
{
    if (!p || depth > 32)
        return NULL;
    p = s_json_ws (p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{'? '}': ']';
        bool object = *p == '{';
        p = s_json_ws (p + 1);
        if (*p == close)
            return p + 1;
        while (true) {
            if (object) {
                p = s_json_string (s_json_ws (p));
                if (!p)
                    return NULL;
                p = s_json_ws (p);
                if (*p++ != ':')
                    return NULL;
            }
            p = s_json_value (p, depth + 1);
            if (!p)
                return NULL;
            p = s_json_ws (p);
            if (*p == ',')
                p++;
            else
            if (*p == close)
                return p + 1;
            else
                return NULL;
        }
    }
    if (*p == '"')
        return s_json_string (p);
    if (*p == '-' || isdigit ((unsigned char) *p)) {
        char *end;
        strtod (p, &end);
        return end > p? end: NULL;
    }
    const char *literals [] = { "true", "false", "null" };
    for (int i = 0; i < 3; i++)
        if (strncmp (p, literals [i], strlen (literals [i])) == 0)
            return p + strlen (literals [i]);
    return NULL;
}

static bool
s_json_valid (const char *json)
{
    const char *end = s_json_value (json, 0);
    return end && *s_json_ws (end) == 0;
}

//  ---------------------------------------------------------------------
//  Usage: two nodes find each other, one whispers, the other gets it

typedef struct {
    volatile int got;
    char subject [64];
    char body [64];
    char sender [33];
    char sender_name [65];
} s_inbox_t;

static void
s_on_direct (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    s_inbox_t *inbox = (s_inbox_t *) arg;
    snprintf (inbox->subject, sizeof inbox->subject, "%s", mesh_msg_subject (msg));
    snprintf (inbox->body, sizeof inbox->body, "%.*s", (int) mesh_msg_size (msg),
              (const char *) mesh_msg_body (msg));
    snprintf (inbox->sender, sizeof inbox->sender, "%s", mesh_msg_sender (msg));
    snprintf (inbox->sender_name, sizeof inbox->sender_name, "%s", mesh_msg_sender_name (msg));
    inbox->got++;
}

static void
test_usage (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    //  Two nodes of one cluster; each finds the other by beacon
    mesh_node_t *alice = s_node (&net, "alice");
    mesh_node_t *bob = s_node (&net, "bob");
    s_inbox_t inbox = { 0 };
    assert_int_equal (mesh_node_on_kind (bob, MESH_KIND_DIRECT, s_on_direct, &inbox), 0);
    assert_int_equal (mesh_node_start (alice), 0);
    assert_int_equal (mesh_node_start (bob), 0);

    //  alice waits until bob enters, then whispers to him
    mesh_event_t *event = s_wait_event (alice, bob, MESH_EVENT_ENTER);
    assert_non_null (event);
    assert_string_equal (mesh_event_peer_name (event), "bob");
    char bob_id [33];
    snprintf (bob_id, sizeof bob_id, "%s", mesh_event_peer (event));
    mesh_event_destroy (&event);
    assert_string_equal (bob_id, mesh_node_id (bob));
    //  bob may still be connecting back; keep trying until the link is live
    int64_t until = s_now () + WAIT_MS;
    while (mesh_node_whisper (alice, bob_id, "greeting", "hello bob", 9) != 0
       &&  s_now () < until)
        s_pump (alice, bob);

    //  bob's handler gets subject, body and who sent it
    assert_true (s_pump_until (alice, bob, &inbox.got, 1));
    assert_string_equal (inbox.subject, "greeting");
    assert_string_equal (inbox.body, "hello bob");
    assert_string_equal (inbox.sender, mesh_node_id (alice));
    assert_string_equal (inbox.sender_name, "alice");

    mesh_node_destroy (&alice);
    mesh_node_destroy (&bob);
    assert_null (alice);
}

//  ---------------------------------------------------------------------
//  ENTER carries the peer's name and endpoint; HELLO carries its headers

static void
test_enter_event_and_headers (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a-node");
    mesh_node_t *b = s_node (&net, "b-node");
    assert_int_equal (mesh_node_set_header (a, "role", "worker"), 0);
    assert_int_equal (mesh_node_set_header (a, "zone", "eu-1"), 0);
    assert_int_equal (mesh_node_set_header (a, "zone", "eu-2"), 0);    //  replaces
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);

    mesh_event_t *event = s_wait_event (b, a, MESH_EVENT_ENTER);
    assert_non_null (event);
    assert_string_equal (mesh_event_name (event), "ENTER");
    assert_string_equal (mesh_event_peer (event), mesh_node_id (a));
    assert_string_equal (mesh_event_peer_name (event), "a-node");
    assert_string_equal (mesh_event_endpoint (event), mesh_node_endpoint (a));
    assert_int_equal (strncmp (mesh_event_endpoint (event), "tcp://127.0.0.1:", 16), 0);
    mesh_event_destroy (&event);

    char *role = mesh_node_peer_header (b, mesh_node_id (a), "role");
    char *zone = mesh_node_peer_header (b, mesh_node_id (a), "zone");
    char *name = mesh_node_peer_name (b, mesh_node_id (a));
    char *endpoint = mesh_node_peer_endpoint (b, mesh_node_id (a));
    assert_string_equal (role, "worker");
    assert_string_equal (zone, "eu-2");
    assert_string_equal (name, "a-node");
    assert_string_equal (endpoint, mesh_node_endpoint (a));
    assert_null (mesh_node_peer_header (b, mesh_node_id (a), "absent"));
    assert_null (mesh_node_peer_header (b, "00000000000000000000000000000000", "role"));
    free (role);
    free (zone);
    free (name);
    free (endpoint);

    //  every header at once, by key; none from a node that set none
    char **headers = mesh_node_peer_headers (b, mesh_node_id (a));
    assert_non_null (headers);
    assert_string_equal (headers [0], "role");
    assert_string_equal (headers [1], "worker");
    assert_string_equal (headers [2], "zone");
    assert_string_equal (headers [3], "eu-2");
    assert_null (headers [4]);
    mesh_strv_free (&headers);
    assert_null (mesh_node_peer_headers (b, "00000000000000000000000000000000"));
    assert_int_equal (mesh_errno (), MESH_ENOPEER);
    event = s_wait_event (a, b, MESH_EVENT_ENTER);
    assert_non_null (event);
    mesh_event_destroy (&event);
    headers = mesh_node_peer_headers (a, mesh_node_id (b));
    assert_non_null (headers);
    assert_null (headers [0]);
    mesh_strv_free (&headers);

    //  mesh_node_peers lists a's id, and only it
    char **peers = mesh_node_peers (b);
    assert_non_null (peers);
    assert_non_null (peers [0]);
    assert_string_equal (peers [0], mesh_node_id (a));
    assert_null (peers [1]);
    mesh_strv_free (&peers);
    assert_null (peers);
    assert_int_equal (mesh_node_peer_count (b), 1);

    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  Sending to a peer that is unknown, or gone, fails with MESH_ENOPEER

static void
test_send_to_unknown_and_gone_peer (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    s_meet (a, b);

    const char *stranger = "0123456789abcdef0123456789abcdef";
    assert_int_equal (mesh_node_whisper (a, stranger, "x", "y", 1), -1);
    assert_int_equal (mesh_errno (), MESH_ENOPEER);
    assert_int_equal (mesh_node_whisper (a, "not-an-id", "x", "y", 1), -1);
    assert_int_equal (mesh_errno (), MESH_ENOPEER);
    assert_int_equal (mesh_node_counter (a, NULL, "send.dropped.no-peer"), 2);
    assert_int_equal (mesh_node_peer_state (a, stranger), -1);

    char b_id [33];
    snprintf (b_id, sizeof b_id, "%s", mesh_node_id (b));
    mesh_node_destroy (&b);
    mesh_event_t *event = s_wait_event (a, NULL, MESH_EVENT_EXIT);
    assert_non_null (event);
    mesh_event_destroy (&event);
    assert_int_equal (mesh_node_whisper (a, b_id, "x", "y", 1), -1);
    assert_int_equal (mesh_errno (), MESH_ENOPEER);
    assert_int_equal (mesh_node_peer_state (a, b_id), -1);
    assert_int_equal (mesh_node_peer_count (a), 0);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  Configuration is for before start: afterwards it fails with ESTATE

static void
test_configure_after_start (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *node = s_node (&net, "late");
    assert_null (mesh_node_endpoint (node));
    assert_int_equal (mesh_node_start (node), 0);
    assert_non_null (mesh_node_endpoint (node));
    assert_true (mesh_node_incarnation (node) != 0);

    assert_int_equal (mesh_node_start (node), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_int_equal (mesh_node_set_cluster (node, "other"), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_int_equal (mesh_node_set_iface (node, "lo"), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_int_equal (mesh_node_set_beacon_port (node, 5000), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_int_equal (mesh_node_set_beacon_interval (node, 500), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_int_equal (mesh_node_set_timeouts (node, 500, 1500), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_int_equal (mesh_node_add_seed (node, "tcp://127.0.0.1:5000"), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_int_equal (mesh_node_set_bind (node, "127.0.0.1", 0), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_int_equal (mesh_node_set_header (node, "k", "v"), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_int_equal (mesh_node_set_id (node, "0123456789abcdef0123456789abcdef"), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_int_equal (mesh_node_set_max_peers (node, 10), -1);
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    mesh_node_destroy (&node);
}

//  ---------------------------------------------------------------------
//  Bad arguments fail with MESH_EINVAL (header limits with ETOOBIG)

static void
test_bad_arguments (void **state)
{
    (void) state;
    char name [80];
    memset (name, 'n', sizeof name);
    name [65] = 0;
    assert_null (mesh_node_new (name));
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_null (mesh_node_new (""));
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    name [64] = 0;
    mesh_node_t *node = mesh_node_new (name);        //  64 is the limit
    assert_non_null (node);
    assert_string_equal (mesh_node_name (node), name);
    mesh_node_destroy (&node);

    node = mesh_node_new (NULL);                    //  named after its id
    assert_non_null (node);
    assert_int_equal (strlen (mesh_node_id (node)), 32);
    assert_int_equal (strncmp (mesh_node_name (node), mesh_node_id (node), 8), 0);
    assert_int_equal (strlen (mesh_node_name (node)), 8);

    const char *bad_seeds [] = { "udp://x", "udp://127.0.0.1:5000", "tcp://", "tcp://host",
                                 "tcp://host:0", "tcp://host:65536", "tcp://host:12x",
                                 "tcp://:5000", "tcp://a b:5000", "" };
    for (size_t i = 0; i < sizeof bad_seeds / sizeof bad_seeds [0]; i++) {
        assert_int_equal (mesh_node_add_seed (node, bad_seeds [i]), -1);
        assert_int_equal (mesh_errno (), MESH_EINVAL);
    }
    assert_int_equal (mesh_node_add_seed (node, NULL), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);

    const char *bad_ids [] = { "", "xyz", "0123456789abcdef0123456789abcde",
                               "0123456789abcdef0123456789abcdef0",
                               "0123456789abcdef0123456789abcdeg" };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids [0]; i++) {
        assert_int_equal (mesh_node_set_id (node, bad_ids [i]), -1);
        assert_int_equal (mesh_errno (), MESH_EINVAL);
    }
    assert_int_equal (mesh_node_set_id (node, "0123456789ABCDEF0123456789abcdef"), 0);
    assert_string_equal (mesh_node_id (node), "0123456789abcdef0123456789abcdef");
    assert_string_equal (mesh_node_name (node), "01234567");

    name [65] = 0;
    name [64] = 'n';
    assert_int_equal (mesh_node_set_cluster (node, name), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_set_cluster (node, ""), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_set_beacon_port (node, 0), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_set_beacon_port (node, 65536), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_set_beacon_interval (node, -1), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_set_timeouts (node, 1000, 1000), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_set_timeouts (node, 10, 1000), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_set_bind (node, "127.0.0.1", 65536), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_set_max_peers (node, 0), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);

    //  header limits are size limits
    char value [1100];
    memset (value, 'v', sizeof value);
    value [1025] = 0;
    assert_int_equal (mesh_node_set_header (node, "k", value), -1);
    assert_int_equal (mesh_errno (), MESH_ETOOBIG);
    value [1024] = 0;
    assert_int_equal (mesh_node_set_header (node, "k", value), 0);
    assert_int_equal (mesh_node_set_header (node, name, "v"), -1);     //  key of 65
    assert_int_equal (mesh_errno (), MESH_ETOOBIG);

    //  kinds below DIRECT and the stats kinds belong to the core
    assert_int_equal (mesh_node_on_kind (node, MESH_KIND_HELLO, s_record, NULL), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_on_kind (node, MESH_KIND_STATS_REQ, s_record, NULL), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_on_kind (node, 256, s_record, NULL), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);

    //  a node that was never started: nothing to send on or dispatch
    assert_int_equal (mesh_node_whisper (node, "0123456789abcdef0123456789abcdef", "s", "b", 1), -1);
    assert_int_equal (mesh_node_dispatch (node, 0), -1);
    assert_int_equal (mesh_errno (), MESH_ECLOSED);
    assert_int_equal (mesh_node_stop (node), 0);
    mesh_node_destroy (&node);
}

//  ---------------------------------------------------------------------
//  A node that stops says BYE: its peer sees EXIT "bye" long before the
//  silence timeout

static void
test_stop_says_bye (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "stayer");
    mesh_node_t *b = s_node (&net, "leaver");
    //  slow liveness, so that only BYE can explain a quick EXIT
    assert_int_equal (mesh_node_set_timeouts (a, 20000, 60000), 0);
    assert_int_equal (mesh_node_set_timeouts (b, 20000, 60000), 0);
    s_meet (a, b);

    int64_t start = s_now ();
    assert_int_equal (mesh_node_stop (b), 0);
    assert_int_equal (mesh_node_stop (b), 0);           //  idempotent
    assert_int_equal (mesh_node_dispatch (b, 0), -1);
    assert_int_equal (mesh_errno (), MESH_ECLOSED);
    assert_int_equal (mesh_node_whisper (b, mesh_node_id (a), "s", "b", 1), -1);
    assert_int_equal (mesh_errno (), MESH_ECLOSED);

    mesh_event_t *event = s_wait_event (a, NULL, MESH_EVENT_EXIT);
    assert_non_null (event);
    assert_true (s_now () - start < 5000);
    assert_string_equal (mesh_event_name (event), "EXIT");
    assert_string_equal (mesh_event_peer (event), mesh_node_id (b));
    assert_string_equal (mesh_event_peer_name (event), "leaver");
    assert_string_equal (mesh_event_detail (event), "bye");
    mesh_event_destroy (&event);
    assert_int_equal (mesh_node_peer_count (a), 0);
    assert_int_equal (mesh_node_counter (a, NULL, "peers.exited"), 1);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  What a node sends just before it stops all arrives: its leaving beacon
//  (UDP) often reaches the peer before the link's last frames, and must not
//  make the peer forget it while they are in flight. The BYE at the end of
//  the link is what ends the peer. Repeated, since it is a race.

#define LAST_WORDS_ROUNDS   5
#define LAST_WORDS_COUNT    200

static void
test_last_messages_before_stop_arrive (void **state)
{
    (void) state;
    for (int round = 0; round < LAST_WORDS_ROUNDS; round++) {
        s_net_t net = s_net ();
        mesh_node_t *a = s_node (&net, "leaver");
        mesh_node_t *b = s_node (&net, "stayer");
        s_recorder_t rec = { 0 };
        assert_int_equal (mesh_node_on_kind (b, MESH_KIND_DIRECT, s_record, &rec), 0);
        s_meet (a, b);
        //  b's application is away: its keeper reads the inbox meanwhile
        s_sleep_ms (200);
        char bid [33];
        snprintf (bid, sizeof bid, "%s", mesh_node_id (b));
        for (int i = 0; i < LAST_WORDS_COUNT; i++)
            assert_int_equal (mesh_node_whisper (a, bid, "last", "words", 5), 0);
        mesh_node_destroy (&a);
        mesh_event_t *event = s_wait_event (b, NULL, MESH_EVENT_EXIT);
        assert_non_null (event);
        assert_string_equal (mesh_event_detail (event), "bye");
        mesh_event_destroy (&event);
        s_pump (b, NULL);
        assert_int_equal (rec.count, LAST_WORDS_COUNT);
        assert_int_equal (mesh_node_counter (b, NULL, "dropped.unknown-sender"), 0);
        s_recorder_free (&rec);
        mesh_node_destroy (&b);
    }
}

//  ---------------------------------------------------------------------
//  Destroy is safe twice, on NULL, and on nodes in every state

static void
test_destroy_is_safe (void **state)
{
    (void) state;
    mesh_node_destroy (NULL);
    mesh_node_t *node = NULL;
    mesh_node_destroy (&node);

    node = mesh_node_new ("never-started");
    mesh_node_destroy (&node);
    assert_null (node);
    mesh_node_destroy (&node);

    s_net_t net = s_net ();
    node = s_node (&net, "started");
    assert_int_equal (mesh_node_start (node), 0);
    mesh_node_destroy (&node);
    assert_null (node);
    mesh_node_destroy (&node);

    node = s_node (&net, "stopped");
    assert_int_equal (mesh_node_start (node), 0);
    assert_int_equal (mesh_node_stop (node), 0);
    mesh_node_destroy (&node);
    mesh_node_destroy (&node);

    mesh_event_destroy (NULL);
    mesh_msg_destroy (NULL);
    char **strv = NULL;
    mesh_strv_free (&strv);
}

//  ---------------------------------------------------------------------
//  The pattern interface: a kind has one owner, refused loudly otherwise;
//  the node tells a pattern "peer X now announces Y"

typedef struct {
    int calls;
    char peer [33];
    char last [64];             //  field 1 of the last record, "" = none
    bool had_before;
} s_plug_t;

static void
s_plug_message (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node; (void) msg; (void) arg;
}

static void
s_plug_announce (mesh_node_t *node, void *self, const char *peer,
                 const mesh_announcement_t *before, const mesh_announcement_t *now)
{
    (void) node;
    s_plug_t *plug = (s_plug_t *) self;
    plug->calls++;
    plug->had_before = before != NULL;
    snprintf (plug->peer, sizeof plug->peer, "%s", peer);
    const mesh_record_t *record = now? mesh_announcement_record (now, 0): NULL;
    snprintf (plug->last, sizeof plug->last, "%s",
              record && record->fields > 1? record->field [1]: "");
}

static const mesh_pattern_t s_plug_ops = {
    .name = "testplug", .kinds = { 60, 61, 0 }, .on_message = s_plug_message,
    .announce_key = "testplug", .on_announce = s_plug_announce,
};

static const mesh_pattern_t s_thief_ops = {
    .name = "thief", .kinds = { 62, MESH_KIND_PUB, 0 }, .on_message = s_plug_message,
};

static void
test_pattern_kinds_have_one_owner (void **state)
{
    (void) state;
    mesh_node_t *node = mesh_node_new ("owner");
    mesh_pubsub_t *pubsub = mesh_pubsub_new (node);
    assert_non_null (pubsub);
    //  a second pub-sub on the node, another pattern or the application
    //  claiming pub-sub's kind: refused, not silently replaced
    assert_null (mesh_pubsub_new (node));
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_null (mesh_node_register (node, &s_thief_ops, NULL));
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_on_kind (node, MESH_KIND_PUB, s_record, NULL), -1);
    //  what the refused pattern claimed first (62) was not taken either
    assert_int_equal (mesh_node_on_kind (node, 62, s_record, NULL), 0);
    assert_int_equal (mesh_node_on_kind (node, 62, NULL, NULL), 0);
    //  a core kind is never a pattern's
    mesh_pattern_t core = { .name = "core", .kinds = { MESH_KIND_HELLO, 0 },
                            .on_message = s_plug_message };
    assert_null (mesh_node_register (node, &core, NULL));
    //  the kind is free again once its owner is gone
    mesh_pubsub_destroy (&pubsub);
    assert_int_equal (mesh_node_on_kind (node, MESH_KIND_PUB, s_record, NULL), 0);
    assert_null (mesh_pubsub_new (node));      //  now the application holds it
    assert_int_equal (mesh_node_on_kind (node, MESH_KIND_PUB, NULL, NULL), 0);
    //  a pattern still plugged in when its node goes is destroyed with it
    //  (the leak check of valgrind and ASan runs says so)
    assert_non_null (mesh_pubsub_new (node));
    assert_non_null (mesh_reqrep_new (node));
    assert_non_null (mesh_pipeline_new (node));
    mesh_node_destroy (&node);
}

static void
test_pattern_hears_announcements (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "announcer");
    mesh_node_t *b = s_node (&net, "listener");
    s_plug_t plug = { 0 };
    mesh_plugin_t *plugin = mesh_node_register (b, &s_plug_ops, &plug);
    assert_non_null (plugin);
    assert_ptr_equal (mesh_plugin_node (plugin), b);
    mesh_announcement_t *out = mesh_announcement_new ();
    const char *fields [] = { "item", "images..." };
    assert_int_equal (mesh_announcement_add (out, fields, 2), 0);
    assert_int_equal (mesh_node_announce (a, "testplug", mesh_announcement_data (out),
                                          mesh_announcement_size (out)), 0);
    mesh_announcement_destroy (&out);
    s_meet (a, b);
    int64_t until = s_now () + WAIT_MS;
    while (s_now () < until && !plug.calls) {
        s_pump (a, b);
        mesh_plugin_sync (plugin);
    }
    assert_int_equal (plug.calls, 1);
    assert_false (plug.had_before);
    assert_string_equal (plug.peer, mesh_node_id (a));
    assert_string_equal (plug.last, "images...");
    //  nothing moved: nothing to say
    assert_int_equal (mesh_plugin_sync (plugin), 0);
    //  a value no codec of ours reads: counted, and the pattern hears "none"
    assert_int_equal (mesh_node_announce (a, "testplug", "images\t4\n", 9), 0);
    until = s_now () + WAIT_MS;
    while (s_now () < until && plug.calls < 2) {
        s_pump (a, b);
        mesh_plugin_sync (plugin);
    }
    assert_int_equal (plug.calls, 2);
    assert_true (plug.had_before);
    assert_string_equal (plug.last, "");
    assert_int_equal (mesh_node_counter (b, mesh_node_id (a), "testplug.malformed.announcement"), 1);
    mesh_node_unregister (&plugin);
    assert_null (plugin);
    mesh_node_unregister (&plugin);
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  Announcements made before and after start reach peers

static void
test_announcements (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "announcer");
    mesh_node_t *b = s_node (&net, "listener");
    assert_int_equal (mesh_node_announce (a, "service.echo", "v1", 2), 0);
    assert_int_equal (mesh_node_announce (a, "", "x", 1), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);

    //  made before start: arrives right after HELLO
    mesh_event_t *event = s_wait_event (b, a, MESH_EVENT_UPDATE);
    assert_non_null (event);
    assert_string_equal (mesh_event_name (event), "UPDATE");
    assert_string_equal (mesh_event_peer (event), mesh_node_id (a));
    assert_string_equal (mesh_event_detail (event), "service.echo");
    mesh_event_destroy (&event);
    size_t size = 0;
    char *value = (char *) mesh_node_peer_announcement (b, mesh_node_id (a), "service.echo", &size);
    assert_non_null (value);
    assert_int_equal (size, 2);
    assert_string_equal (value, "v1");          //  copies are NUL-terminated
    free (value);
    assert_null (mesh_node_peer_announcement (b, mesh_node_id (a), "absent", &size));
    assert_null (mesh_node_peer_announcement (b, "0123456789abcdef0123456789abcdef",
                                              "service.echo", &size));

    //  made after start: sent to every peer at once; binary values too
    const uint8_t binary [5] = { 0, 1, 2, 0, 255 };
    assert_int_equal (mesh_node_announce (a, "service.echo", "v2-longer", 9), 0);
    assert_int_equal (mesh_node_announce (a, "queue.jobs", binary, sizeof binary), 0);
    int updates = 0;
    while (updates < 2 && (event = s_wait_event (b, a, MESH_EVENT_UPDATE))) {
        updates++;
        mesh_event_destroy (&event);
    }
    assert_int_equal (updates, 2);
    value = (char *) mesh_node_peer_announcement (b, mesh_node_id (a), "service.echo", &size);
    assert_non_null (value);
    assert_int_equal (size, 9);
    assert_string_equal (value, "v2-longer");
    free (value);
    value = (char *) mesh_node_peer_announcement (b, mesh_node_id (a), "queue.jobs", &size);
    assert_non_null (value);
    assert_int_equal (size, sizeof binary);
    assert_memory_equal (value, binary, sizeof binary);
    free (value);

    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  Large bodies travel as frames and arrive intact; so do zero-copy ones,
//  whose free function runs exactly once

typedef struct {
    volatile int got;
    size_t sizes [8];
    uint32_t flags [8];
    bool intact [8];
} s_bulk_t;

static uint8_t
s_pattern (size_t i, size_t size)
{
    return (uint8_t) ((i * 31 + size) & 0xff);
}

static void
s_on_bulk (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    s_bulk_t *bulk = (s_bulk_t *) arg;
    int n = bulk->got;
    if (n < 8) {
        const uint8_t *body = (const uint8_t *) mesh_msg_body (msg);
        size_t size = mesh_msg_size (msg);
        bool intact = body != NULL;
        for (size_t i = 0; intact && i < size; i++)
            intact = body [i] == s_pattern (i, size);
        bulk->sizes [n] = size;
        bulk->flags [n] = mesh_msg_flags (msg);
        bulk->intact [n] = intact;
    }
    bulk->got++;
}

static uint8_t *
s_bulk_body (size_t size)
{
    uint8_t *body = (uint8_t *) malloc (size);
    assert_non_null (body);
    for (size_t i = 0; i < size; i++)
        body [i] = s_pattern (i, size);
    return body;
}

static void
test_large_bodies (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "sender");
    mesh_node_t *b = s_node (&net, "receiver");
    s_bulk_t bulk = { 0 };
    mesh_node_on_kind (b, MESH_KIND_DIRECT, s_on_bulk, &bulk);
    s_meet (a, b);

    //  the inline limit, one past it, and 1 MiB
    size_t sizes [3] = { 65535, 65536, 1024 * 1024 };
    mesh_head_t head = { .kind = MESH_KIND_DIRECT, .subject = "bulk" };
    for (int i = 0; i < 3; i++) {
        uint8_t *body = s_bulk_body (sizes [i]);
        assert_int_equal (mesh_node_send (a, mesh_node_id (b), &head, body, sizes [i]), 0);
        free (body);            //  mesh_node_send copied it
    }
    assert_true (s_pump_until (a, b, &bulk.got, 3));
    for (int i = 0; i < 3; i++) {
        assert_int_equal (bulk.sizes [i], sizes [i]);
        assert_true (bulk.intact [i]);
        assert_int_equal ((bulk.flags [i] & MESH_FLAG_FRAMES) != 0, sizes [i] > 65535);
    }
    assert_true (mesh_node_counter (b, mesh_node_id (a), "bytes.in") >= 65535 + 65536 + 1024 * 1024);

    //  over the body limit: refused before anything is sent
    assert_int_equal (mesh_node_send (a, mesh_node_id (b), &head, "", (size_t) 256 * 1024 * 1024 + 1), -1);
    assert_int_equal (mesh_errno (), MESH_ETOOBIG);
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

static int s_freed;             //  touched by libzmq's I/O thread: atomics only

static int s_freed_by_libzmq;   //  freed on a thread not the test's: libzmq held the data
static pthread_t s_test_thread;

static void
s_count_free (void *data, void *hint)
{
    assert_ptr_equal (hint, &s_freed);
    free (data);
    if (!pthread_equal (pthread_self (), s_test_thread))
        __atomic_add_fetch (&s_freed_by_libzmq, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch (&s_freed, 1, __ATOMIC_SEQ_CST);
}

static int
s_freed_count (void)
{
    return __atomic_load_n (&s_freed, __ATOMIC_SEQ_CST);
}

static void
test_zero_copy_send (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "zc-sender");
    mesh_node_t *b = s_node (&net, "zc-receiver");
    s_bulk_t bulk = { 0 };
    mesh_node_on_kind (b, MESH_KIND_DIRECT, s_on_bulk, &bulk);
    s_meet (a, b);
    mesh_head_t head = { .kind = MESH_KIND_DIRECT, .subject = "zc" };

    //  1 MiB without a copy: freed once, when libzmq is done with it, by
    //  libzmq's I/O thread (a copy would be freed here, by this thread)
    s_test_thread = pthread_self ();
    __atomic_store_n (&s_freed, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n (&s_freed_by_libzmq, 0, __ATOMIC_SEQ_CST);
    size_t size = 1024 * 1024;
    assert_int_equal (mesh_node_send_zc (a, mesh_node_id (b), &head, s_bulk_body (size), size,
                                         s_count_free, &s_freed), 0);
    assert_true (s_pump_until (a, b, &bulk.got, 1));
    assert_int_equal (bulk.sizes [0], size);
    assert_true (bulk.intact [0]);
    int64_t until = s_now () + WAIT_MS;
    while (s_freed_count () < 1 && s_now () < until)
        s_sleep_ms (5);
    assert_int_equal (s_freed_count (), 1);
    assert_int_equal (__atomic_load_n (&s_freed_by_libzmq, __ATOMIC_SEQ_CST), 1);

    //  a small body is copied inline and released before send_zc returns,
    //  by the caller's thread
    assert_int_equal (mesh_node_send_zc (a, mesh_node_id (b), &head, s_bulk_body (100), 100,
                                         s_count_free, &s_freed), 0);
    assert_int_equal (s_freed_count (), 2);
    assert_int_equal (__atomic_load_n (&s_freed_by_libzmq, __ATOMIC_SEQ_CST), 1);
    assert_true (s_pump_until (a, b, &bulk.got, 2));
    assert_int_equal (bulk.sizes [1], 100);
    assert_true (bulk.intact [1]);

    //  failures take the data over too: unknown peer, and a header limit
    const char *stranger = "0123456789abcdef0123456789abcdef";
    assert_int_equal (mesh_node_send_zc (a, stranger, &head, s_bulk_body (size), size,
                                         s_count_free, &s_freed), -1);
    assert_int_equal (mesh_errno (), MESH_ENOPEER);
    assert_int_equal (s_freed_count (), 3);
    const char *headers [2 * 33];
    for (int i = 0; i < 2 * 33; i++)
        headers [i] = "h";
    mesh_head_t too_many = { .kind = MESH_KIND_DIRECT, .headers = headers, .header_count = 33 };
    assert_int_equal (mesh_node_send_zc (a, mesh_node_id (b), &too_many, s_bulk_body (size), size,
                                         s_count_free, &s_freed), -1);
    assert_int_equal (mesh_errno (), MESH_ETOOBIG);
    assert_int_equal (s_freed_count (), 4);

    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
    assert_int_equal (s_freed_count (), 4);     //  never twice
}

//  ---------------------------------------------------------------------
//  Every field of mesh_head_t arrives, user headers included

static void
test_message_fields_and_headers (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    s_recorder_t rec = { 0 };
    mesh_node_on_kind (b, 77, s_record, &rec);
    s_meet (a, b);

    const char *headers [] = { "trace-id", "4bf9", "empty", "", "tenant", "acme" };
    uint64_t deadline = mesh_clock_ms () + 60000;
    mesh_head_t head = {
        .kind = 77, .flags = 0x10000, .seq = 17, .id = 1234, .deadline = deadline,
        .subject = "orders.eu.created", .reply = "_INBOX.a1", .ctype = "text/plain",
        .headers = headers, .header_count = 3
    };
    assert_int_equal (mesh_node_send (a, mesh_node_id (b), &head, "hello", 5), 0);
    mesh_head_t bare = { .kind = 77 };
    assert_int_equal (mesh_node_send (a, mesh_node_id (b), &bare, NULL, 0), 0);
    assert_true (s_pump_until (a, b, &rec.count, 2));

    const mesh_msg_t *msg = rec.kept [0];
    assert_int_equal (mesh_msg_kind (msg), 77);
    assert_int_equal (mesh_msg_flags (msg), 0x10000);
    assert_true (mesh_msg_seq (msg) == 17);
    assert_true (mesh_msg_id (msg) == 1234);
    assert_true (mesh_msg_deadline (msg) == deadline);
    assert_string_equal (mesh_msg_subject (msg), "orders.eu.created");
    assert_string_equal (mesh_msg_reply (msg), "_INBOX.a1");
    assert_string_equal (mesh_msg_ctype (msg), "text/plain");
    assert_string_equal (mesh_msg_sender (msg), mesh_node_id (a));
    assert_string_equal (mesh_msg_sender_name (msg), "a");
    assert_true (s_body_is (msg, "hello"));
    assert_int_equal (mesh_msg_header_count (msg), 3);
    assert_string_equal (mesh_msg_header (msg, "trace-id"), "4bf9");
    assert_string_equal (mesh_msg_header (msg, "empty"), "");
    assert_string_equal (mesh_msg_header (msg, "tenant"), "acme");
    assert_null (mesh_msg_header (msg, "absent"));
    assert_null (mesh_msg_header (msg, "trace"));
    const char *key, *value;
    size_t klen, vlen;
    assert_true (mesh_msg_header_at (msg, 2, &key, &klen, &value, &vlen));
    assert_int_equal (klen, 6);
    assert_memory_equal (key, "tenant", 6);
    assert_int_equal (vlen, 4);
    assert_memory_equal (value, "acme", 4);
    assert_false (mesh_msg_header_at (msg, 3, &key, &klen, &value, &vlen));

    //  absent strings are "", never NULL
    msg = rec.kept [1];
    assert_string_equal (mesh_msg_subject (msg), "");
    assert_string_equal (mesh_msg_reply (msg), "");
    assert_string_equal (mesh_msg_ctype (msg), "");
    assert_int_equal (mesh_msg_size (msg), 0);
    assert_non_null (mesh_msg_body (msg));
    assert_int_equal (mesh_msg_header_count (msg), 0);
    assert_null (mesh_msg_header (msg, "trace-id"));

    s_recorder_free (&rec);
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  mesh_msg_dup keeps a message valid after the handler returned, for
//  tiny messages (held inside the zmq_msg_t) and framed ones alike

static void
test_msg_dup_outlives_handler (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    s_recorder_t rec = { 0 };
    mesh_node_on_kind (b, MESH_KIND_DIRECT, s_record, &rec);
    s_meet (a, b);

    const char *headers [] = { "k", "v" };
    mesh_head_t tiny = { .kind = MESH_KIND_DIRECT, .subject = "t" };
    mesh_head_t with_headers = { .kind = MESH_KIND_DIRECT, .subject = "h",
                                 .headers = headers, .header_count = 1 };
    size_t big = 200 * 1024;
    uint8_t *body = s_bulk_body (big);
    assert_int_equal (mesh_node_send (a, mesh_node_id (b), &tiny, "x", 1), 0);
    assert_int_equal (mesh_node_send (a, mesh_node_id (b), &with_headers, "body", 4), 0);
    assert_int_equal (mesh_node_send (a, mesh_node_id (b), &tiny, body, big), 0);
    assert_true (s_pump_until (a, b, &rec.count, 3));
    //  the originals are gone; more traffic reuses their memory
    for (int i = 0; i < 20; i++)
        mesh_node_whisper (a, mesh_node_id (b), "more", "filler-filler-filler", 20);
    assert_true (s_pump_until (a, b, &rec.count, 23));

    assert_string_equal (mesh_msg_subject (rec.kept [0]), "t");
    assert_true (s_body_is (rec.kept [0], "x"));
    assert_string_equal (mesh_msg_sender (rec.kept [0]), mesh_node_id (a));
    assert_string_equal (mesh_msg_subject (rec.kept [1]), "h");
    assert_string_equal (mesh_msg_header (rec.kept [1], "k"), "v");
    assert_true (s_body_is (rec.kept [1], "body"));
    assert_int_equal (mesh_msg_size (rec.kept [2]), big);
    assert_memory_equal (mesh_msg_body (rec.kept [2]), body, big);

    //  a dup of a dup is independent of its source
    mesh_msg_t *copy = mesh_msg_dup (rec.kept [1]);
    assert_non_null (copy);
    mesh_msg_destroy (&rec.kept [1]);
    assert_null (rec.kept [1]);
    assert_string_equal (mesh_msg_header (copy, "k"), "v");
    assert_true (s_body_is (copy, "body"));
    mesh_msg_destroy (&copy);
    mesh_msg_destroy (&copy);

    free (body);
    s_recorder_free (&rec);
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  A handler that blocks for longer than the gone timeout does not make
//  the node look dead: the keeper thread keeps it alive. What was sent
//  meanwhile is delivered afterwards, all of it, in order.

#define BLOCK_MS        2500
#define BLOCK_MESSAGES  100

typedef struct {
    mesh_node_t *a, *b;
    volatile int blocking;      //  set by the handler, read by the sender
    int next;                   //  next number expected
    int in_order;
    int out_of_order;
    int states_bad;             //  times a saw b other than ALIVE
    int sent;
} s_block_t;

static void
s_on_block (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    s_block_t *test = (s_block_t *) arg;
    if (strcmp (mesh_msg_subject (msg), "block") == 0) {
        __atomic_store_n (&test->blocking, 1, __ATOMIC_SEQ_CST);
        s_sleep_ms (BLOCK_MS);
        __atomic_store_n (&test->blocking, 2, __ATOMIC_SEQ_CST);
    }
    else {
        int number = atoi ((const char *) mesh_msg_body (msg));
        if (number == test->next)
            test->in_order++;
        else
            test->out_of_order++;
        test->next = number + 1;
    }
}

static void *
s_block_sender (void *arg)
{
    s_block_t *test = (s_block_t *) arg;
    while (__atomic_load_n (&test->blocking, __ATOMIC_SEQ_CST) == 0)
        s_sleep_ms (1);
    for (int i = 0; i < BLOCK_MESSAGES; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);          //  atoi stops at the end
        if (mesh_node_whisper (test->a, mesh_node_id (test->b), "n", body, strlen (body) + 1) == 0)
            test->sent++;
        if (mesh_node_peer_state (test->a, mesh_node_id (test->b)) != MESH_PEER_ALIVE)
            test->states_bad++;
        s_sleep_ms ((BLOCK_MS - 300) / BLOCK_MESSAGES);
    }
    return NULL;
}

static int
s_count_events (mesh_node_t *node, int type)
{
    int count = 0;
    mesh_event_t *event;
    while ((event = mesh_node_event (node))) {
        if (mesh_event_type (event) == type)
            count++;
        mesh_event_destroy (&event);
    }
    return count;
}

static void
test_blocking_handler_stays_alive (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "busy");
    assert_int_equal (mesh_node_set_timeouts (a, 300, 1000), 0);
    assert_int_equal (mesh_node_set_timeouts (b, 300, 1000), 0);
    s_block_t test = { .a = a, .b = b };
    mesh_node_on_kind (b, MESH_KIND_DIRECT, s_on_block, &test);
    s_meet (a, b);

    pthread_t sender;
    assert_int_equal (pthread_create (&sender, NULL, s_block_sender, &test), 0);
    assert_int_equal (mesh_node_whisper (a, mesh_node_id (b), "block", "", 0), 0);
    //  this thread blocks in b's handler for 2.5 s, 2.5 x the gone timeout
    int64_t until = s_now () + WAIT_MS;
    while (__atomic_load_n (&test.blocking, __ATOMIC_SEQ_CST) < 2 && s_now () < until)
        mesh_node_dispatch (b, 10);
    assert_int_equal (test.blocking, 2);
    pthread_join (sender, NULL);
    assert_int_equal (test.sent, BLOCK_MESSAGES);

    until = s_now () + WAIT_MS;
    while (test.in_order + test.out_of_order < BLOCK_MESSAGES && s_now () < until)
        s_pump (a, b);
    assert_int_equal (test.in_order, BLOCK_MESSAGES);
    assert_int_equal (test.out_of_order, 0);
    assert_int_equal (test.states_bad, 0);

    //  neither side ever doubted the other
    mesh_node_dispatch (a, 0);
    assert_int_equal (s_count_events (a, MESH_EVENT_SUSPECT) + s_count_events (a, MESH_EVENT_EXIT), 0);
    assert_int_equal (s_count_events (b, MESH_EVENT_SUSPECT) + s_count_events (b, MESH_EVENT_EXIT), 0);
    assert_int_equal (mesh_node_counter (a, NULL, "peers.suspected"), 0);
    assert_int_equal (mesh_node_counter (b, NULL, "peers.suspected"), 0);
    assert_int_equal (mesh_node_peer_state (a, mesh_node_id (b)), MESH_PEER_ALIVE);
    assert_int_equal (mesh_node_peer_state (b, mesh_node_id (a)), MESH_PEER_ALIVE);
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  mesh_node_fd is readable when a message arrived while the application
//  was not dispatching; dispatch then delivers it

static bool
s_readable (int fd, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    return poll (&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN);
}

static void
test_fd_for_own_poll_loop (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    s_inbox_t inbox = { 0 };
    mesh_node_on_kind (b, MESH_KIND_DIRECT, s_on_direct, &inbox);
    //  slow liveness and gossip: no control traffic in the quiet window
    assert_int_equal (mesh_node_set_timeouts (a, 20000, 60000), 0);
    assert_int_equal (mesh_node_set_timeouts (b, 20000, 60000), 0);
    s_meet (a, b);
    int fd = mesh_node_fd (b);
    assert_true (fd >= 0);

    //  an application's loop: poll the fd, dispatch when readable. Once
    //  everything is handled the fd goes quiet (no busy loop).
    int64_t until = s_now () + WAIT_MS;
    while (s_readable (fd, 0) && s_now () < until)
        mesh_node_dispatch (b, 0);
    assert_false (s_readable (fd, 0));

    assert_int_equal (mesh_node_whisper (a, mesh_node_id (b), "wake", "up", 2), 0);
    assert_true (s_readable (fd, 5000));
    assert_int_equal (inbox.got, 0);            //  nothing runs without dispatch
    until = s_now () + WAIT_MS;
    while (inbox.got == 0 && s_now () < until)
        if (s_readable (fd, 100))
            mesh_node_dispatch (b, 0);
    assert_int_equal (inbox.got, 1);
    assert_string_equal (inbox.subject, "wake");
    assert_string_equal (inbox.body, "up");
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  An application driving the node from its own poll loop on
//  mesh_node_fd() gets each message through the fd as it comes: the
//  keeper wakes it rather than leaving the inbox unwatched until it takes
//  the inbox over itself (after MESH_APP_ACTIVE_MS without dispatch).
//  Messages the keeper had to read are counted (inbox.keeper-read): with
//  the fd watched, the application reads nearly all of them itself.

static void
test_fd_loop_reads_its_own_inbox (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    s_inbox_t inbox = { 0 };
    mesh_node_on_kind (b, MESH_KIND_DIRECT, s_on_direct, &inbox);
    s_meet (a, b);
    uint64_t before = mesh_node_counter (b, NULL, "inbox.keeper-read");
    int fd = mesh_node_fd (b);
    const int count = 200;
    for (int i = 0; i < count; i++) {
        assert_int_equal (mesh_node_whisper (a, mesh_node_id (b), "one", "x", 1), 0);
        int64_t until = s_now () + WAIT_MS;
        while (inbox.got <= i && s_now () < until) {
            if (s_readable (fd, 50))
                mesh_node_dispatch (b, 0);
            mesh_node_dispatch (a, 0);
        }
        assert_int_equal (inbox.got, i + 1);
    }
    uint64_t by_keeper = mesh_node_counter (b, NULL, "inbox.keeper-read") - before;
    //  a machine that deschedules this thread for over 10 ms now and then
    //  lets the keeper take a few; before the watch it took every one
    assert_true (by_keeper < (uint64_t) count / 2);
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  A dispatch that may wait returns only once it handled something: a
//  message sent just before the call (already in the inbox) or during its
//  wait. Every call starts with the inbox left read to EAGAIN by the call
//  before, which lets dispatch poll without reading first (see s_read).

static void
test_waiting_dispatch_handles_what_arrives (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a");
    mesh_node_t *b = s_node (&net, "b");
    s_inbox_t inbox = { 0 };
    mesh_node_on_kind (b, MESH_KIND_DIRECT, s_on_direct, &inbox);
    assert_int_equal (mesh_node_set_timeouts (a, 20000, 60000), 0);
    assert_int_equal (mesh_node_set_timeouts (b, 20000, 60000), 0);
    s_meet (a, b);
    while (mesh_node_dispatch (b, 0) > 0)
        ;
    for (int i = 0; i < 40; i++) {
        char body [16];
        snprintf (body, sizeof body, "m%d", i);
        assert_int_equal (mesh_node_whisper (a, mesh_node_id (b), "seq", body, strlen (body)), 0);
        if (i % 2)
            s_sleep_ms (2);     //  there before the call, else it comes during the wait
        int64_t until = s_now () + WAIT_MS;
        while (inbox.got == i && s_now () < until)
            assert_true (mesh_node_dispatch (b, WAIT_MS) >= 1);
        assert_int_equal (inbox.got, i + 1);
        assert_string_equal (inbox.body, body);
    }
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  Counters: frames per peer, drops with their reason, JSON of both sides

static void
test_counters_and_stats (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "counting-a");
    mesh_node_t *b = s_node (&net, "counting-b");
    s_inbox_t inbox = { 0 };
    mesh_node_on_kind (b, MESH_KIND_DIRECT, s_on_direct, &inbox);
    s_meet (a, b);
    const char *ida = mesh_node_id (a), *idb = mesh_node_id (b);

    uint64_t out_before = mesh_node_counter (a, idb, "frames.out");
    uint64_t in_before = mesh_node_counter (b, ida, "frames.in");
    uint64_t sent_before = mesh_node_counter (a, idb, "messages.out");
    uint64_t got_before = mesh_node_counter (b, ida, "messages.in");
    assert_true (out_before >= 1);             //  HELLO at least
    assert_true (sent_before >= out_before);    //  a frame holds one message or more
    for (int i = 0; i < 5; i++)
        assert_int_equal (mesh_node_whisper (a, idb, "n", "12345", 5), 0);
    assert_true (s_pump_until (a, b, &inbox.got, 5));
    //  five messages, in five frames or fewer (a backed-up link batches)
    assert_true (mesh_node_counter (a, idb, "messages.out") >= sent_before + 5);
    assert_true (mesh_node_counter (b, ida, "messages.in") >= got_before + 5);
    assert_true (mesh_node_counter (a, idb, "frames.out") >= out_before + 1);
    assert_true (mesh_node_counter (b, ida, "frames.in") >= in_before + 1);
    assert_true (mesh_node_counter (a, NULL, "frames.out") >= mesh_node_counter (a, idb, "frames.out"));
    assert_true (mesh_node_counter (a, NULL, "messages.out") >= mesh_node_counter (a, idb, "messages.out"));
    assert_true (mesh_node_counter (b, ida, "bytes.in") >= 25);
    assert_int_equal (mesh_node_counter (a, "0123456789abcdef0123456789abcdef", "frames.out"), 0);
    assert_int_equal (mesh_node_counter (a, NULL, "never.counted"), 0);

    //  a kind without a handler: dropped, counted for the node and the peer
    mesh_head_t head = { .kind = KIND_OTHER, .subject = "nobody-listens" };
    assert_int_equal (mesh_node_send (a, idb, &head, "x", 1), 0);
    int64_t until = s_now () + WAIT_MS;
    while (mesh_node_counter (b, NULL, "dropped.no-handler") == 0 && s_now () < until)
        s_pump (a, b);
    assert_int_equal (mesh_node_counter (b, NULL, "dropped.no-handler"), 1);
    assert_int_equal (mesh_node_counter (b, ida, "dropped.no-handler"), 1);

    //  counters an application or pattern adds
    mesh_node_count (a, idb, "app.things", 3);
    mesh_node_count (a, NULL, "app.things", 1);
    assert_int_equal (mesh_node_counter (a, idb, "app.things"), 3);
    assert_int_equal (mesh_node_counter (a, NULL, "app.things"), 4);

    //  our JSON: valid, with the peer and its counters
    char *json = mesh_node_stats_json (b);
    assert_non_null (json);
    assert_true (s_json_valid (json));
    char needle [128];
    snprintf (needle, sizeof needle, "\"id\": \"%s\"", idb);
    assert_non_null (strstr (json, needle));
    snprintf (needle, sizeof needle, "\"%s\": {\"name\": \"counting-a\"", ida);
    assert_non_null (strstr (json, needle));
    assert_non_null (strstr (json, "\"dropped.no-handler\": 1"));
    assert_non_null (strstr (json, "\"state\": \"ALIVE\""));
    free (json);

    //  the peer's JSON, fetched over the link
    json = mesh_node_peer_stats_json (a, 5000);
    assert_non_null (json);
    assert_true (s_json_valid (json));
    snprintf (needle, sizeof needle, "{\"%s\": {\"id\": \"%s\"", idb, idb);
    assert_non_null (strstr (json, needle));
    assert_non_null (strstr (json, "\"dropped.no-handler\": 1"));
    free (json);

    assert_true (s_json_valid ("{\"a\": [1, -2.5e3, true, null, \"x\\\"y\"], \"b\": {}}"));
    assert_false (s_json_valid ("{\"a\": 1,}"));
    assert_false (s_json_valid ("{\"a\": 1}}"));
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  What was counted for a peer outlives it: after it leaves its counters
//  are still read (and counted on) under its id, and come back with it

static void
test_departed_peer_keeps_its_counters (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "leaving-a");
    mesh_node_t *b = s_node (&net, "staying-b");
    char ida [33];
    snprintf (ida, sizeof ida, "%s", mesh_node_id (a));
    s_meet (a, b);

    //  b drops what a sends to a kind nobody handles: counted for a
    mesh_head_t head = { .kind = KIND_OTHER, .subject = "nobody-listens" };
    for (int i = 0; i < 3; i++)
        assert_int_equal (mesh_node_send (a, mesh_node_id (b), &head, "x", 1), 0);
    int64_t until = s_now () + WAIT_MS;
    while (mesh_node_counter (b, ida, "dropped.no-handler") < 3 && s_now () < until)
        s_pump (a, b);
    assert_int_equal (mesh_node_counter (b, ida, "dropped.no-handler"), 3);
    uint64_t frames_in = mesh_node_counter (b, ida, "frames.in");
    assert_true (frames_in >= 3);

    //  a leaves; b still says what a cost it, and counts on for a
    mesh_node_destroy (&a);
    mesh_event_t *event = s_wait_event (b, NULL, MESH_EVENT_EXIT);
    assert_non_null (event);
    mesh_event_destroy (&event);
    assert_int_equal (mesh_node_peer_state (b, ida), -1);
    assert_int_equal (mesh_node_counter (b, ida, "dropped.no-handler"), 3);
    assert_true (mesh_node_counter (b, ida, "frames.in") >= frames_in);
    mesh_node_count (b, ida, "app.dropped-late", 2);
    assert_int_equal (mesh_node_counter (b, ida, "app.dropped-late"), 2);
    assert_int_equal (mesh_node_counter (b, NULL, "app.dropped-late"), 2);

    char *json = mesh_node_stats_json (b);
    assert_non_null (json);
    assert_true (s_json_valid (json));
    const char *departed = strstr (json, "\"departed\": {");
    assert_non_null (departed);
    char needle [128];
    snprintf (needle, sizeof needle, "\"%s\": {\"name\": \"leaving-a\"", ida);
    const char *record = strstr (departed, needle);
    assert_non_null (record);
    assert_non_null (strstr (record, "\"left\": \"bye\""));
    assert_non_null (strstr (record, "\"dropped.no-handler\": 3"));
    free (json);

    //  the same id returns: one record again, with its history
    a = s_node (&net, "leaving-a");
    assert_int_equal (mesh_node_set_id (a, ida), 0);
    assert_int_equal (mesh_node_start (a), 0);
    until = s_now () + WAIT_MS;
    while (mesh_node_peer_state (b, ida) != MESH_PEER_ALIVE && s_now () < until)
        s_pump (a, b);
    assert_int_equal (mesh_node_peer_state (b, ida), MESH_PEER_ALIVE);
    assert_int_equal (mesh_node_counter (b, ida, "dropped.no-handler"), 3);
    assert_int_equal (mesh_node_counter (b, ida, "app.dropped-late"), 2);
    json = mesh_node_stats_json (b);
    assert_non_null (json);
    assert_true (s_json_valid (json));
    assert_non_null (strstr (json, "\"departed\": {}"));
    free (json);
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  A peer hook can be removed: a module that goes before its node must

typedef struct {
    int enters;
} s_hook_count_t;

static void
s_count_enter (mesh_node_t *node, const mesh_event_t *event, void *arg)
{
    (void) node;
    if (mesh_event_type (event) == MESH_EVENT_ENTER)
        ((s_hook_count_t *) arg)->enters++;
}

static void
test_peer_hook_removed (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "hooked");
    mesh_node_t *b = s_node (&net, "first");
    s_hook_count_t kept = { 0 }, removed = { 0 };
    assert_int_equal (mesh_node_on_peer (a, s_count_enter, &kept), 0);
    assert_int_equal (mesh_node_on_peer (a, s_count_enter, &removed), 0);
    s_meet (a, b);
    assert_int_equal (kept.enters, 1);
    assert_int_equal (removed.enters, 1);

    assert_int_equal (mesh_node_on_peer (a, NULL, &removed), 0);
    mesh_node_t *c = s_node (&net, "second");
    assert_int_equal (mesh_node_start (c), 0);
    int64_t until = s_now () + WAIT_MS;
    while (kept.enters < 2 && s_now () < until) {
        s_pump (a, b);
        mesh_node_dispatch (c, 5);
    }
    assert_int_equal (kept.enters, 2);
    assert_int_equal (removed.enters, 1);
    mesh_node_destroy (&c);
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  ---------------------------------------------------------------------
//  mesh_id_hash: equal keys hash equal; random ids spread over buckets;
//  any other string is hashed too

static void
test_id_hash (void **state)
{
    (void) state;
    char a [33], b [33];
    snprintf (a, sizeof a, "%s", "0123456789abcdef0123456789abcdef");
    snprintf (b, sizeof b, "%s", a);
    assert_true (mesh_id_hash (a) == mesh_id_hash (b));
    b [31] = 'e';
    b [15] = 'e';
    assert_true (mesh_id_hash (a) != mesh_id_hash (b));
    //  1000 random ids over 1024 buckets: a good hash fills ~640
    static bool used [1024];
    size_t buckets = 0;
    for (int i = 0; i < 1000; i++) {
        char id [33];
        for (int j = 0; j < 32; j++)
            id [j] = "0123456789abcdef" [random () % 16];
        id [32] = 0;
        size_t bucket = mesh_id_hash (id) % 1024;
        buckets += !used [bucket];
        used [bucket] = true;
    }
    assert_true (buckets > 550);
    assert_true (mesh_id_hash ("") != mesh_id_hash ("a"));
    assert_true (mesh_id_hash ("alice") != mesh_id_hash ("bob"));
}

//  ---------------------------------------------------------------------
//  Without beacons, a seed is enough to meet

static void
test_seed_only_pair (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = NULL, *b = NULL;
    int port = 0;
    //  a fixed port may be taken by someone else: try a few
    for (int attempt = 0; attempt < 10 && !a; attempt++) {
        port = s_random (TCP_PORT_LO, TCP_PORT_HI);
        a = s_node (&net, "seed");
        assert_int_equal (mesh_node_set_beacon_interval (a, 0), 0);
        assert_int_equal (mesh_node_set_bind (a, "127.0.0.1", port), 0);
        if (mesh_node_start (a) != 0) {
            assert_int_equal (mesh_errno (), MESH_ESYS);
            mesh_node_destroy (&a);
        }
    }
    assert_non_null (a);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    assert_string_equal (mesh_node_endpoint (a), endpoint);

    b = s_node (&net, "joiner");
    assert_int_equal (mesh_node_set_beacon_interval (b, 0), 0);
    assert_int_equal (mesh_node_add_seed (b, endpoint), 0);
    assert_int_equal (mesh_node_start (b), 0);

    mesh_event_t *event = s_wait_event (b, a, MESH_EVENT_ENTER);
    assert_non_null (event);
    assert_string_equal (mesh_event_peer (event), mesh_node_id (a));
    assert_string_equal (mesh_event_endpoint (event), endpoint);
    mesh_event_destroy (&event);
    event = s_wait_event (a, b, MESH_EVENT_ENTER);
    assert_non_null (event);
    assert_string_equal (mesh_event_peer (event), mesh_node_id (b));
    assert_string_equal (mesh_event_endpoint (event), mesh_node_endpoint (b));
    mesh_event_destroy (&event);
    assert_true (mesh_node_counter (b, NULL, "seed.hello") >= 1);
    assert_int_equal (mesh_node_counter (a, NULL, "beacon.sent"), 0);
    assert_int_equal (mesh_node_counter (b, NULL, "beacon.sent"), 0);

    s_inbox_t inbox = { 0 };
    mesh_node_on_kind (a, MESH_KIND_DIRECT, s_on_direct, &inbox);
    assert_int_equal (mesh_node_whisper (b, mesh_node_id (a), "via", "seed", 4), 0);
    assert_true (s_pump_until (a, b, &inbox.got, 1));
    assert_string_equal (inbox.body, "seed");
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  A peer written in Python (docs/protocol.md) joins by seed, receives a
//  DIRECT message and answers it

//  The first interpreter that can import zmq and msgpack, or NULL
static const char *
s_find_python (void)
{
    const char *env = getenv ("MESH_PYTHON");
    const char *candidates [] = { env, "python3", "/usr/bin/python3" };
    for (size_t i = 0; i < 3; i++) {
        if (!candidates [i])
            continue;
        char command [256];
        snprintf (command, sizeof command,
                  "%s -c 'import zmq, msgpack' >/dev/null 2>&1", candidates [i]);
        if (system (command) == 0)
            return candidates [i];
    }
    return NULL;
}

static bool
s_find_script (char *path, size_t cap)
{
    const char *src = getenv ("MESHBUS_SRC");
    if (src) {
        snprintf (path, cap, "%s/tests/test_python_peer.py", src);
        if (access (path, R_OK) == 0)
            return true;
    }
    const char *slash = strrchr (__FILE__, '/');
    int dir_len = slash? (int) (slash - __FILE__ + 1): 0;
    snprintf (path, cap, "%.*stest_python_peer.py", dir_len, __FILE__);
    return access (path, R_OK) == 0;
}

static void
test_python_peer (void **state)
{
    (void) state;
    const char *python = s_find_python ();
    char script [1024];
    if (!python || !s_find_script (script, sizeof script)) {
        print_message ("skipped: %s\n", python? "tests/test_python_peer.py not found"
                       : "no python3 that can import zmq and msgpack "
                         "(apt-get install python3-zmq python3-msgpack)");
        skip ();
    }
    s_net_t net = s_net ();
    mesh_node_t *node = s_node (&net, "c-node");
    assert_int_equal (mesh_node_set_beacon_interval (node, 0), 0);
    s_inbox_t inbox = { 0 };
    mesh_node_on_kind (node, MESH_KIND_DIRECT, s_on_direct, &inbox);
    assert_int_equal (mesh_node_start (node), 0);

    char command [2048];
    snprintf (command, sizeof command, "%s '%s' %s --name py-peer --timeout 20",
              python, script, mesh_node_endpoint (node));
    FILE *child = popen (command, "r");
    assert_non_null (child);

    //  it enters with its name and headers...
    mesh_event_t *event = s_wait_event (node, NULL, MESH_EVENT_ENTER);
    assert_non_null (event);
    assert_string_equal (mesh_event_peer_name (event), "py-peer");
    char py_id [33];
    snprintf (py_id, sizeof py_id, "%s", mesh_event_peer (event));
    mesh_event_destroy (&event);
    char *lang = mesh_node_peer_header (node, py_id, "lang");
    assert_string_equal (lang, "python");
    free (lang);
    //  ...receives a DIRECT message and echoes it back...
    assert_int_equal (mesh_node_whisper (node, py_id, "greeting", "hello python", 12), 0);
    assert_true (s_pump_until (node, NULL, &inbox.got, 1));
    assert_string_equal (inbox.sender, py_id);
    assert_string_equal (inbox.sender_name, "py-peer");
    assert_string_equal (inbox.subject, "echo.greeting");
    assert_string_equal (inbox.body, "hello python");
    //  ...and says BYE
    event = s_wait_event (node, NULL, MESH_EVENT_EXIT);
    assert_non_null (event);
    assert_string_equal (mesh_event_detail (event), "bye");
    mesh_event_destroy (&event);

    char output [4096];
    size_t size = fread (output, 1, sizeof output - 1, child);
    output [size] = 0;
    int status = pclose (child);
    if (status != 0)
        print_message ("python peer said:\n%s", output);
    assert_int_equal (status, 0);
    assert_non_null (strstr (output, "DIRECT greeting 'hello python'"));
    mesh_node_destroy (&node);
}

//  The same peer against the meshbus tool: the tool sees it ENTER, asks it
//  for counters (STATS_REQ) and prints the answer
static void
test_python_peer_and_tool (void **state)
{
    (void) state;
    const char *python = s_find_python ();
    const char *tool = getenv ("MESHBUS_TOOL");
    char script [1024];
    if (!python || !tool || !s_find_script (script, sizeof script)) {
        print_message ("skipped: %s\n", !python? "no python3 that can import zmq and msgpack"
                       : !tool? "MESHBUS_TOOL is not set (tests/run.sh sets it)"
                       : "tests/test_python_peer.py not found");
        skip ();
    }
    char command [4096], output [8192];
    int status = -1;
    //  the tool binds a fixed port so the peer knows where to go
    for (int attempt = 0; attempt < 5 && status != 0; attempt++) {
        int port = s_random (TCP_PORT_LO, TCP_PORT_HI);
        snprintf (command, sizeof command,
                  "'%s' stats --json --timeout 6 --no-beacon --bind 127.0.0.1:%d --name tool "
                  "& tool=$!; sleep 0.5; %s '%s' tcp://127.0.0.1:%d --name py-peer --timeout 10"
                  " --until-bye >/dev/null; py=$?; wait $tool; exit $(($? | py))",
                  tool, port, python, script, port);
        FILE *child = popen (command, "r");
        assert_non_null (child);
        size_t size = fread (output, 1, sizeof output - 1, child);
        output [size] = 0;
        status = pclose (child);
    }
    if (status != 0)
        print_message ("tool said:\n%s", output);
    assert_int_equal (status, 0);
    assert_true (s_json_valid (output));
    assert_non_null (strstr (output, "\"name\": \"py-peer\""));
    assert_non_null (strstr (output, "\"language\": \"python\""));
}

//  docs/protocol.md shows the peer these tests run, verbatim
static char *
s_read_text (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = (char *) calloc (1, 256 * 1024);
    assert_non_null (text);
    size_t size = fread (text, 1, 256 * 1024 - 1, file);
    text [size] = 0;
    fclose (file);
    return text;
}

static void
test_protocol_doc_shows_this_peer (void **state)
{
    (void) state;
    char script [1024], doc [1024];
    if (!s_find_script (script, sizeof script)) {
        print_message ("skipped: tests/test_python_peer.py not found (set MESHBUS_SRC)\n");
        skip ();
    }
    //  both places s_find_script looks end in tests/test_python_peer.py
    size_t dir = strlen (script) - strlen ("tests/test_python_peer.py");
    snprintf (doc, sizeof doc, "%.*sdocs/protocol.md", (int) dir, script);
    char *code = s_read_text (script);
    char *text = s_read_text (doc);
    assert_non_null (code);
    assert_non_null (text);
    if (!strstr (text, code))
        print_message ("docs/protocol.md must show tests/test_python_peer.py as it is\n");
    assert_non_null (strstr (text, code));
    free (code);
    free (text);
}

int
main (void)
{
    srandom ((unsigned) time (NULL) ^ ((unsigned) getpid () << 16));
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage),
        cmocka_unit_test (test_enter_event_and_headers),
        cmocka_unit_test (test_send_to_unknown_and_gone_peer),
        cmocka_unit_test (test_configure_after_start),
        cmocka_unit_test (test_bad_arguments),
        cmocka_unit_test (test_stop_says_bye),
        cmocka_unit_test (test_last_messages_before_stop_arrive),
        cmocka_unit_test (test_destroy_is_safe),
        cmocka_unit_test (test_announcements),
        cmocka_unit_test (test_pattern_kinds_have_one_owner),
        cmocka_unit_test (test_pattern_hears_announcements),
        cmocka_unit_test (test_large_bodies),
        cmocka_unit_test (test_zero_copy_send),
        cmocka_unit_test (test_message_fields_and_headers),
        cmocka_unit_test (test_msg_dup_outlives_handler),
        cmocka_unit_test (test_blocking_handler_stays_alive),
        cmocka_unit_test (test_fd_for_own_poll_loop),
        cmocka_unit_test (test_fd_loop_reads_its_own_inbox),
        cmocka_unit_test (test_waiting_dispatch_handles_what_arrives),
        cmocka_unit_test (test_counters_and_stats),
        cmocka_unit_test (test_departed_peer_keeps_its_counters),
        cmocka_unit_test (test_peer_hook_removed),
        cmocka_unit_test (test_id_hash),
        cmocka_unit_test (test_seed_only_pair),
        cmocka_unit_test (test_python_peer),
        cmocka_unit_test (test_python_peer_and_tool),
        cmocka_unit_test (test_protocol_doc_shows_this_peer),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
