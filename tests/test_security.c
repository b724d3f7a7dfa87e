/*  =========================================================================
    test_security - CURVE links, the ZAP handler, trusted keys and their
    revocation, the cluster secret, and hostile clients against the inbox

    Real nodes on loopback, each test on its own cluster name and beacon
    port. Hostile clients are raw TCP, raw libzmq and raw UDP sockets made
    here, aimed only at the nodes of the test.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <zmq.h>
#include <sodium.h>
#include <ftw.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "meshbus.h"
#include "mesh_beacon.h"
#include "mesh_envelope.h"
#include "mesh_secret.h"
#include "tmpdir.h"

#define WAIT_MS     8000        //  functional timeout of every wait
#include "testnet.h"
#define s_net() s_net_named ("test-sec")

//  ---------------------------------------------------------------------
//  Helpers

typedef struct {
    uint8_t pub [32], sec [32];
} s_keys_t;

static s_keys_t
s_keypair (void)
{
    s_keys_t k;
    char pub [41], sec [41];
    assert_int_equal (zmq_curve_keypair (pub, sec), 0);
    assert_non_null (zmq_z85_decode (k.pub, pub));
    assert_non_null (zmq_z85_decode (k.sec, sec));
    return k;
}

static void
s_pump (mesh_node_t *a, mesh_node_t *b, mesh_node_t *c)
{
    if (a)
        mesh_node_dispatch (a, 3);
    if (b)
        mesh_node_dispatch (b, 3);
    if (c)
        mesh_node_dispatch (c, 3);
}

static void
s_pump_for (mesh_node_t *a, mesh_node_t *b, mesh_node_t *c, int ms)
{
    int64_t until = s_now () + ms;
    while (s_now () < until)
        s_pump (a, b, c);
}

static bool
s_alive (mesh_node_t *node, mesh_node_t *other)
{
    return mesh_node_peer_state (node, mesh_node_id (other)) == MESH_PEER_ALIVE;
}

//  Pump until a and b have each other ALIVE (or WAIT_MS)
static bool
s_wait_met (mesh_node_t *a, mesh_node_t *b, mesh_node_t *c)
{
    int64_t until = s_now () + WAIT_MS;
    while (s_now () < until && !(s_alive (a, b) && s_alive (b, a)))
        s_pump (a, b, c);
    return s_alive (a, b) && s_alive (b, a);
}

static uint64_t
s_count (mesh_node_t *node, const char *name)
{
    return mesh_node_counter (node, NULL, name);
}

//  Pump until a counter of node reaches at least value
static bool
s_wait_count (mesh_node_t *node, mesh_node_t *other, const char *name, uint64_t value)
{
    int64_t until = s_now () + WAIT_MS;
    while (s_now () < until && s_count (node, name) < value)
        s_pump (node, other, NULL);
    return s_count (node, name) >= value;
}

//  libzmq reports a plaintext client at a CURVE inbox as a mechanism
//  mismatch or, when the client hangs up first, as a failed handshake
static bool
s_wait_handshake_failed (mesh_node_t *node, mesh_node_t *other)
{
    int64_t until = s_now () + WAIT_MS;
    while (s_now () < until && s_count (node, "handshake.failed.not-curve")
                               + s_count (node, "handshake.failed.protocol") == 0)
        s_pump (node, other, NULL);
    return s_count (node, "handshake.failed.not-curve")
         + s_count (node, "handshake.failed.protocol") >= 1;
}

static char *s_dir;             //  the test's scratch directory (tmpdir.h)

static int
s_setup (void **state)
{
    (void) state;
    s_dir = t_tmpdir_new ("meshbus-sec");
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    t_tmpdir_remove (&s_dir);
    return 0;
}

//  Make a key pair NAME in the test directory; its .pub is copied into
//  each trust directory given (NULL-terminated)
static void
s_keygen (const char *name, char *keyfile, size_t cap, ...)
{
    char path [128];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    assert_int_equal (mesh_keygen (path), 0);
    snprintf (keyfile, cap, "%s.key", path);
    va_list args;
    va_start (args, cap);
    const char *trust;
    while ((trust = va_arg (args, const char *))) {
        char from [160], to [160], buf [4096];
        snprintf (from, sizeof from, "%s.pub", path);
        snprintf (to, sizeof to, "%s/%s.pub", trust, name);
        FILE *in = fopen (from, "rb"), *out = fopen (to, "wb");
        assert_non_null (in);
        assert_non_null (out);
        size_t n = fread (buf, 1, sizeof buf, in);
        assert_int_equal (fwrite (buf, 1, n, out), n);
        fclose (in);
        fclose (out);
    }
    va_end (args);
}

static const char *
s_trust_dir (const char *name, char *out, size_t cap)
{
    snprintf (out, cap, "%s/%s", s_dir, name);
    assert_int_equal (mkdir (out, 0700), 0);
    return out;
}

typedef struct {
    volatile int count;
    int next;           //  next sequence number expected
    int out_of_order;
} s_seq_t;

static void
s_on_direct (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    s_seq_t *seq = (s_seq_t *) arg;
    int n = atoi (mesh_msg_subject (msg));
    if (n != seq->next)
        seq->out_of_order++;
    seq->next = n + 1;
    seq->count++;
}

//  Send numbered whispers from -> to: first..first+count-1
static void
s_send_numbered (mesh_node_t *from, mesh_node_t *to, int first, int count)
{
    for (int i = first; i < first + count; i++) {
        char subject [16];
        snprintf (subject, sizeof subject, "%d", i);
        int64_t until = s_now () + WAIT_MS;
        while (mesh_node_whisper (from, mesh_node_id (to), subject, "x", 1) != 0
           &&  s_now () < until)
            s_pump (from, to, NULL);
    }
}

//  ---------------------------------------------------------------------
//  Tests

//  Two nodes sharing one key pair meet over CURVE and talk; the node
//  reports its key
static void
test_shared_key_pair_meets_and_talks (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    s_keys_t k = s_keypair ();
    mesh_node_t *a = s_node (&net, "a"), *b = s_node (&net, "b");
    assert_null (mesh_node_public_key (a));
    assert_int_equal (mesh_node_set_curve_keys (a, k.pub, k.sec), 0);
    assert_int_equal (mesh_node_set_curve_keys (b, k.pub, k.sec), 0);
    char z85 [41];
    zmq_z85_encode (z85, k.pub, 32);
    assert_string_equal (mesh_node_public_key (a), z85);
    s_seq_t seq = { 0 };
    mesh_node_on_kind (b, MESH_KIND_DIRECT, s_on_direct, &seq);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_true (s_wait_met (a, b, NULL));
    s_send_numbered (a, b, 0, 500);
    int64_t until = s_now () + WAIT_MS;
    while (seq.count < 500 && s_now () < until)
        s_pump (a, b, NULL);
    assert_int_equal (seq.count, 500);
    assert_int_equal (seq.out_of_order, 0);
    assert_true (s_wait_count (a, b, "zap.accepted", 1));      //  counted at the next tick
    assert_int_equal (s_count (a, "zap.refused"), 0);
    mesh_node_destroy (&a);
    mesh_node_destroy (&b);
}

//  A secret key that does not belong to the public key is refused
static void
test_mismatched_key_pair_refused (void **state)
{
    (void) state;
    s_keys_t k1 = s_keypair (), k2 = s_keypair ();
    mesh_node_t *a = mesh_node_new ("a");
    assert_int_equal (mesh_node_set_curve_keys (a, k1.pub, k2.sec), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_node_set_curve (a, "/nonexistent/x.key"), -1);
    assert_int_equal (mesh_node_set_trust (a, "/nonexistent-dir"), 0);
    //  a trust directory without CURVE makes no sense: start says so
    assert_int_equal (mesh_node_start (a), -1);
    mesh_node_destroy (&a);
}

//  With --trust, only listed keys meet; an unknown key is refused by the
//  ZAP handler (counted) and never enters
static void
test_unknown_key_refused_and_counted (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    char ta [96], tb [96], tc [96], ka [128], kb [128], kc [128];
    s_trust_dir ("ta", ta, sizeof ta);
    s_trust_dir ("tb", tb, sizeof tb);
    s_trust_dir ("tc", tc, sizeof tc);
    s_keygen ("a", ka, sizeof ka, tb, tc, NULL);     //  b and c trust a
    s_keygen ("b", kb, sizeof kb, ta, NULL);         //  a trusts b
    s_keygen ("c", kc, sizeof kc, NULL);             //  nobody trusts c
    mesh_node_t *a = s_node (&net, "a"), *b = s_node (&net, "b"), *c = s_node (&net, "c");
    assert_int_equal (mesh_node_set_curve (a, ka), 0);
    assert_int_equal (mesh_node_set_trust (a, ta), 0);
    assert_int_equal (mesh_node_set_curve (b, kb), 0);
    assert_int_equal (mesh_node_set_trust (b, tb), 0);
    assert_int_equal (mesh_node_set_curve (c, kc), 0);
    assert_int_equal (mesh_node_set_trust (c, tc), 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_int_equal (mesh_node_start (c), 0);
    assert_true (s_wait_met (a, b, c));
    //  c trusts a, so it tries; a's ZAP handler refuses c's key
    assert_true (s_wait_count (a, c, "zap.refused", 1));
    s_pump_for (a, b, c, 1500);
    assert_false (s_alive (a, c));
    assert_false (s_alive (c, a));
    assert_false (s_alive (b, c));
    assert_true (s_count (a, "beacon.ignored.untrusted") >= 1);
    assert_int_equal (mesh_node_peer_count (a), 1);
    mesh_node_destroy (&c);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  Removing a key file cuts that peer's links within a few seconds, and
//  it is refused afterwards
static void
test_revoked_key_cut (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    char ta [96], tb [96], ka [128], kb [128];
    s_trust_dir ("ta", ta, sizeof ta);
    s_trust_dir ("tb", tb, sizeof tb);
    s_keygen ("a", ka, sizeof ka, tb, NULL);
    s_keygen ("b", kb, sizeof kb, ta, NULL);
    mesh_node_t *a = s_node (&net, "a"), *b = s_node (&net, "b");
    assert_int_equal (mesh_node_set_curve (a, ka), 0);
    assert_int_equal (mesh_node_set_trust (a, ta), 0);
    assert_int_equal (mesh_node_set_curve (b, kb), 0);
    assert_int_equal (mesh_node_set_trust (b, tb), 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_true (s_wait_met (a, b, NULL));
    mesh_event_t *event;
    while ((event = mesh_node_event (a)))
        mesh_event_destroy (&event);

    char pub [160];
    snprintf (pub, sizeof pub, "%s/b.pub", ta);
    assert_int_equal (unlink (pub), 0);
    //  a sees b leave, with the reason
    bool exited = false;
    int64_t until = s_now () + WAIT_MS;
    while (!exited && s_now () < until) {
        s_pump (a, b, NULL);
        while ((event = mesh_node_event (a))) {
            if (mesh_event_type (event) == MESH_EVENT_EXIT
            &&  strcmp (mesh_event_peer (event), mesh_node_id (b)) == 0) {
                assert_string_equal (mesh_event_detail (event), "revoked");
                exited = true;
            }
            mesh_event_destroy (&event);
        }
    }
    assert_true (exited);
    assert_int_equal (s_count (a, "trust.revoked"), 1);
    assert_true (s_count (a, "links.cut") >= 1);      //  b's link into a
    //  b's link into a was cut: b loses a too, and cannot come back
    until = s_now () + WAIT_MS;
    while (s_alive (b, a) && s_now () < until)
        s_pump (a, b, NULL);
    assert_false (s_alive (b, a));
    //  b's link keeps reconnecting, and each handshake is refused now
    uint64_t refused = s_count (a, "zap.refused");
    assert_true (s_wait_count (a, b, "zap.refused", refused + 1));
    s_pump_for (a, b, NULL, 1000);
    assert_false (s_alive (a, b));
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  A node without CURVE cannot join a secure cluster, and both sides say
//  why: counters (and log lines) on each side, through beacons and seeds
static void
test_plaintext_node_cannot_join (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    s_keys_t k = s_keypair ();
    mesh_node_t *a = s_node (&net, "secure"), *p = s_node (&net, "plain");
    assert_int_equal (mesh_node_set_curve_keys (a, k.pub, k.sec), 0);
    assert_int_equal (mesh_node_start (a), 0);
    //  also straight at its inbox, as a seed: the handshake fails
    assert_int_equal (mesh_node_add_seed (p, mesh_node_endpoint (a)), 0);
    assert_int_equal (mesh_node_start (p), 0);
    assert_true (s_wait_count (a, p, "beacon.ignored.no-key", 1));
    assert_true (s_wait_count (p, a, "beacon.ignored.needs-curve", 1));
    assert_true (s_wait_handshake_failed (a, p));
    s_pump_for (a, p, NULL, 1000);
    assert_false (s_alive (a, p));
    assert_false (s_alive (p, a));
    mesh_node_destroy (&p);
    mesh_node_destroy (&a);
}

static int
s_tcp_connect (const char *endpoint)
{
    char host [64];
    int port;
    assert_int_equal (sscanf (endpoint, "tcp://%63[^:]:%d", host, &port), 2);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    inet_pton (AF_INET, host, &addr.sin_addr);
    assert_int_equal (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    return fd;
}

//  While a trusted peer streams messages, the inbox gets random bytes, a
//  plaintext ZMTP client, a half-open handshake and a CURVE client with an
//  unknown key. The peer's stream arrives whole and in order, during and
//  after, and each hostile client is refused and counted.
static void
test_hostile_clients_do_not_disturb_a_trusted_peer (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    s_keys_t k = s_keypair ();
    mesh_node_t *a = s_node (&net, "a"), *b = s_node (&net, "b");
    assert_int_equal (mesh_node_set_curve_keys (a, k.pub, k.sec), 0);
    assert_int_equal (mesh_node_set_curve_keys (b, k.pub, k.sec), 0);
    s_seq_t seq = { 0 };
    mesh_node_on_kind (a, MESH_KIND_DIRECT, s_on_direct, &seq);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_true (s_wait_met (a, b, NULL));
    const char *inbox = mesh_node_endpoint (a);
    s_send_numbered (b, a, 0, 300);

    //  1. random bytes on a raw TCP connection
    int junk = s_tcp_connect (inbox);
    uint8_t noise [16384];
    randombytes_buf (noise, sizeof noise);
    ssize_t sent = send (junk, noise, sizeof noise, MSG_NOSIGNAL);
    (void) sent;
    //  2. a half-open handshake: the start of a ZMTP greeting, then silence
    int half = s_tcp_connect (inbox);
    uint8_t greeting [10] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f };
    assert_int_equal (send (half, greeting, sizeof greeting, MSG_NOSIGNAL), (ssize_t) sizeof greeting);
    //  3. a plaintext libzmq client
    void *ctx = zmq_ctx_new ();
    void *plain = zmq_socket (ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt (plain, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal (zmq_connect (plain, inbox), 0);
    zmq_send (plain, "hello", 5, ZMQ_DONTWAIT);
    //  4. a CURVE client that knows the server key but has its own key
    s_keys_t stranger = s_keypair ();
    void *curve = zmq_socket (ctx, ZMQ_DEALER);
    zmq_setsockopt (curve, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (curve, ZMQ_CURVE_SERVERKEY, k.pub, 32);
    zmq_setsockopt (curve, ZMQ_CURVE_PUBLICKEY, stranger.pub, 32);
    zmq_setsockopt (curve, ZMQ_CURVE_SECRETKEY, stranger.sec, 32);
    assert_int_equal (zmq_connect (curve, inbox), 0);
    zmq_send (curve, "hello", 5, ZMQ_DONTWAIT);

    //  the trusted stream goes on during all of it
    s_send_numbered (b, a, 300, 700);
    assert_true (s_wait_count (a, b, "zap.refused", 1));
    assert_true (s_wait_handshake_failed (a, b));
    int64_t until = s_now () + WAIT_MS;
    while (seq.count < 1000 && s_now () < until)
        s_pump (a, b, NULL);
    assert_int_equal (seq.count, 1000);
    assert_int_equal (seq.out_of_order, 0);
    assert_true (s_alive (a, b));
    //  and after: the hostile clients gone, the link still works
    close (junk);
    close (half);
    zmq_close (plain);
    zmq_close (curve);
    zmq_ctx_term (ctx);
    s_send_numbered (b, a, 1000, 200);
    until = s_now () + WAIT_MS;
    while (seq.count < 1200 && s_now () < until)
        s_pump (a, b, NULL);
    assert_int_equal (seq.count, 1200);
    assert_int_equal (seq.out_of_order, 0);
    assert_int_equal (mesh_node_peer_count (a), 1);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  A UDP socket that sends beacons to the loopback broadcast address
static int
s_beacon_socket (int port, struct sockaddr_in *to)
{
    int udp = socket (AF_INET, SOCK_DGRAM, 0);
    assert_true (udp >= 0);
    int on = 1;
    setsockopt (udp, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
    *to = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    inet_pton (AF_INET, "127.255.255.255", &to->sin_addr);
    return udp;
}

//  A flood of forged beacons with a secret set: none accepted, and real
//  peers are still found, during and after
static void
test_forged_beacons_ignored_with_a_secret (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    const char *secret = "correct horse battery staple";
    mesh_node_t *a = s_node (&net, "a"), *b = s_node (&net, "b");
    assert_int_equal (mesh_node_set_secret_bytes (a, secret, strlen (secret)), 0);
    assert_int_equal (mesh_node_set_secret_bytes (b, secret, strlen (secret)), 0);
    assert_int_equal (mesh_node_start (a), 0);

    //  10 000 forged beacons: right magic, version and cluster tag, random
    //  ids; some without a MAC, some with a random one
    struct sockaddr_in to;
    int udp = s_beacon_socket (net.port, &to);
    uint8_t tag [8];
    crypto_generichash (tag, 8, (const uint8_t *) net.cluster, strlen (net.cluster), NULL, 0);
    for (int i = 0; i < 10000; i++) {
        uint8_t pkt [128];
        size_t n = 0;
        memcpy (pkt, "MSHB", 4);
        pkt [4] = 1;
        pkt [5] = 0;
        pkt [6] = 0x30;                         //  port 12345
        pkt [7] = 0x39;
        randombytes_buf (pkt + 8, 16);          //  id
        memcpy (pkt + 24, tag, 8);
        randombytes_buf (pkt + 32, 8);          //  incarnation
        n = 40;
        if (i % 2) {
            uint64_t now = (uint64_t) time (NULL) * 1000;
            pkt [n++] = 4;                      //  TIME
            pkt [n++] = 8;
            for (int j = 7; j >= 0; j--)
                pkt [n++] = (uint8_t) (now >> (8 * j));
            pkt [n++] = 5;                      //  MAC, random
            pkt [n++] = 32;
            randombytes_buf (pkt + n, 32);
            n += 32;
        }
        sendto (udp, pkt, n, 0, (struct sockaddr *) &to, sizeof to);
        if (i % 500 == 0)
            mesh_node_dispatch (a, 1);
    }
    close (udp);
    assert_int_equal (mesh_node_start (b), 0);
    assert_true (s_wait_met (a, b, NULL));
    s_pump_for (a, b, NULL, 500);
    uint64_t ignored = s_count (a, "beacon.ignored.no-mac") + s_count (a, "beacon.ignored.bad-mac");
    //  UDP may drop some of the flood; whatever arrived was ignored
    assert_true (ignored >= 100);
    assert_int_equal (s_count (a, "peers.discovered"), 1);
    assert_int_equal (mesh_node_peer_count (a), 1);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  A beacon replayed with its valid MAC, older than one its sender already
//  sent (still fresh: within the 30 s window), is ignored and counted
static void
s_send_signed_beacon (int port, const mesh_beacon_packet_t *pkt, const mesh_secret_t *secret)
{
    uint8_t buf [MESH_BEACON_MAX];
    size_t size = mesh_beacon_encode_signed (pkt, secret, buf, sizeof buf);
    assert_true (size > 0);
    struct sockaddr_in to;
    int udp = s_beacon_socket (port, &to);
    assert_int_equal (sendto (udp, buf, size, 0, (struct sockaddr *) &to, sizeof to), (ssize_t) size);
    close (udp);
}

static void
test_replayed_beacon_ignored (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    const char *text = "correct horse battery staple";
    mesh_node_t *a = s_node (&net, "a");
    assert_int_equal (mesh_node_set_secret_bytes (a, text, strlen (text)), 0);
    assert_int_equal (mesh_node_start (a), 0);
    mesh_secret_t secret;
    assert_int_equal (mesh_secret_from_bytes (&secret, text, strlen (text)), 0);

    //  a sender that holds the secret (nobody listens at its port)
    mesh_beacon_packet_t pkt = { .port = 12345, .incarnation = 7, .has_time = true };
    randombytes_buf (pkt.id, sizeof pkt.id);
    mesh_beacon_cluster_tag (net.cluster, pkt.tag);
    snprintf (pkt.host, sizeof pkt.host, "127.0.0.1");
    uint64_t now = mesh_secret_now_ms ();
    pkt.time_ms = now;
    s_send_signed_beacon (net.port, &pkt, &secret);
    assert_true (s_wait_count (a, NULL, "peers.discovered", 1));

    //  the same beacon again (a sender on two interfaces) is not a replay;
    //  one from 5 s before it is, and so is its LEAVING from 4 s before
    s_send_signed_beacon (net.port, &pkt, &secret);
    pkt.time_ms = now - 5000;
    s_send_signed_beacon (net.port, &pkt, &secret);
    pkt.time_ms = now - 4000;
    pkt.flags = MESH_BEACON_FLAG_LEAVING;
    s_send_signed_beacon (net.port, &pkt, &secret);
    assert_true (s_wait_count (a, NULL, "beacon.ignored.replayed", 2));
    s_pump_for (a, NULL, NULL, 200);
    assert_int_equal (s_count (a, "beacon.ignored.replayed"), 2);
    assert_int_equal (s_count (a, "beacon.ignored.stale"), 0);
    assert_int_equal (s_count (a, "peers.discovered"), 1);
    mesh_node_destroy (&a);
}

//  With a secret and no CURVE, a connection speaks for a peer only once it
//  brought that peer's HELLO: a stranger who takes a peer's routing id
//  over (anyone who can reach the inbox can) cannot send in its name, and
//  the peer itself still gets through after its link is displaced

typedef struct {
    volatile int real, injected;
} s_claims_t;

static void
s_on_claim (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    s_claims_t *claims = (s_claims_t *) arg;
    if (strcmp (mesh_msg_subject (msg), "injected") == 0)
        claims->injected++;
    else
        claims->real++;
}

static void
test_secret_stranger_cannot_speak_for_a_peer (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    const char *text = "correct horse battery staple";
    mesh_node_t *a = s_node (&net, "a"), *b = s_node (&net, "b");
    assert_int_equal (mesh_node_set_secret_bytes (a, text, strlen (text)), 0);
    assert_int_equal (mesh_node_set_secret_bytes (b, text, strlen (text)), 0);
    s_claims_t claims = { 0 };
    mesh_node_on_kind (a, MESH_KIND_DIRECT, s_on_claim, &claims);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_true (s_wait_met (a, b, NULL));

    //  the stranger: b's routing id (type byte, then b's id), no secret
    uint8_t rid [17] = { 0 };
    const char *hex = mesh_node_id (b);
    for (int i = 0; i < 16; i++) {
        unsigned byte;
        sscanf (hex + 2 * i, "%2x", &byte);
        rid [1 + i] = (uint8_t) byte;
    }
    void *ctx = zmq_ctx_new ();
    void *stranger = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (stranger, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (stranger, ZMQ_ROUTING_ID, rid, sizeof rid);
    assert_int_equal (zmq_connect (stranger, mesh_node_endpoint (a)), 0);
    mesh_envelope_t env = { .version = MESH_WIRE_VERSION, .kind = MESH_KIND_DIRECT };
    env.subject.ptr = (const uint8_t *) "injected";
    env.subject.len = 8;
    env.body.ptr = (const uint8_t *) "rm -rf";
    env.body.len = 6;
    uint8_t frame [256];
    size_t size = mesh_envelope_encode (&env, frame, sizeof frame);
    assert_true (size > 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal (zmq_send (stranger, frame, size, 0), (int) size);
        s_pump_for (a, b, NULL, 20);
    }
    assert_true (s_wait_count (a, b, "dropped.unbound-connection", 1));
    assert_true (mesh_node_counter (a, hex, "dropped.unbound-connection") >= 1);

    //  b, whose connection the stranger displaced, is asked for a HELLO
    //  on its new one and gets through again
    int64_t until = s_now () + WAIT_MS;
    while (claims.real == 0 && s_now () < until) {
        mesh_node_whisper (b, mesh_node_id (a), "real", "hi", 2);
        s_pump_for (a, b, NULL, 50);
    }
    zmq_close (stranger);
    zmq_ctx_term (ctx);
    assert_true (claims.real >= 1);
    assert_int_equal (claims.injected, 0);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  Nodes with different secrets never meet, through beacons or a seed
//  (whose HELLO is refused), and count why; the same secret meets
//  without CURVE
static void
test_secret_mismatch_never_meets (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    mesh_node_t *a = s_node (&net, "a"), *b = s_node (&net, "b"), *c = s_node (&net, "c");
    assert_int_equal (mesh_node_set_secret_bytes (a, "0123456789abcdef", 16), 0);
    assert_int_equal (mesh_node_set_secret_bytes (b, "fedcba9876543210", 16), 0);
    assert_int_equal (mesh_node_set_secret_bytes (c, "0123456789abcdef", 16), 0);
    assert_int_equal (mesh_node_set_secret_bytes (c, "short", 5), -1);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_add_seed (b, mesh_node_endpoint (a)), 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_int_equal (mesh_node_start (c), 0);
    assert_true (s_wait_met (a, c, b));
    assert_true (s_wait_count (a, b, "beacon.ignored.bad-mac", 1));
    assert_true (s_wait_count (a, b, "hello.refused.bad-mac", 1));
    s_pump_for (a, b, c, 1000);
    assert_false (s_alive (a, b));
    assert_false (s_alive (b, a));
    assert_false (s_alive (b, c));
    mesh_node_destroy (&c);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  CURVE plus a secret, no trust directory: keys are accepted when the
//  HELLO's MAC checks, so nodes with their own key pairs meet; a node with
//  another secret (and its own key) does not
static void
test_curve_with_secret_accepts_members (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    s_keys_t ka = s_keypair (), kb = s_keypair (), kc = s_keypair ();
    mesh_node_t *a = s_node (&net, "a"), *b = s_node (&net, "b"), *c = s_node (&net, "c");
    assert_int_equal (mesh_node_set_curve_keys (a, ka.pub, ka.sec), 0);
    assert_int_equal (mesh_node_set_curve_keys (b, kb.pub, kb.sec), 0);
    assert_int_equal (mesh_node_set_curve_keys (c, kc.pub, kc.sec), 0);
    assert_int_equal (mesh_node_set_secret_bytes (a, "the cluster secret", 18), 0);
    assert_int_equal (mesh_node_set_secret_bytes (b, "the cluster secret", 18), 0);
    assert_int_equal (mesh_node_set_secret_bytes (c, "another secret!!", 16), 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_int_equal (mesh_node_start (c), 0);
    assert_true (s_wait_met (a, b, c));
    s_pump_for (a, b, c, 1000);
    assert_false (s_alive (a, c));
    assert_false (s_alive (c, a));
    assert_true (s_count (a, "beacon.ignored.bad-mac") >= 1);
    mesh_node_destroy (&c);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  A trust directory with a repeated key and malformed files: the node
//  starts, skips them (counted), and the good keys work
static void
test_trust_dir_with_bad_files (void **state)
{
    (void) state;
    s_net_t net = s_net ();
    char ta [96], tb [96], ka [128], kb [128], path [160];
    s_trust_dir ("ta", ta, sizeof ta);
    s_trust_dir ("tb", tb, sizeof tb);
    s_keygen ("a", ka, sizeof ka, tb, NULL);
    s_keygen ("b", kb, sizeof kb, ta, NULL);
    //  the same key again under another name, and two broken files
    snprintf (path, sizeof path, "%s/b.pub", ta);
    char copy [160];
    snprintf (copy, sizeof copy, "%s/b-again.pub", ta);
    assert_int_equal (link (path, copy), 0);
    snprintf (path, sizeof path, "%s/garbage.pub", ta);
    FILE *f = fopen (path, "wb");
    uint8_t noise [300];
    randombytes_buf (noise, sizeof noise);
    fwrite (noise, 1, sizeof noise, f);
    fclose (f);
    snprintf (path, sizeof path, "%s/short.pub", ta);
    f = fopen (path, "w");
    fprintf (f, "curve\n    public-key = \"tooshort\"\n");
    fclose (f);
    mesh_node_t *a = s_node (&net, "a"), *b = s_node (&net, "b");
    assert_int_equal (mesh_node_set_curve (a, ka), 0);
    assert_int_equal (mesh_node_set_trust (a, ta), 0);
    assert_int_equal (mesh_node_set_curve (b, kb), 0);
    assert_int_equal (mesh_node_set_trust (b, tb), 0);
    assert_int_equal (mesh_node_start (a), 0);
    assert_int_equal (mesh_node_start (b), 0);
    assert_true (s_wait_met (a, b, NULL));
    assert_int_equal (s_count (a, "trust.skipped.malformed"), 2);
    assert_int_equal (s_count (a, "trust.skipped.duplicate"), 1);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_shared_key_pair_meets_and_talks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_mismatched_key_pair_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_key_refused_and_counted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_revoked_key_cut, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_plaintext_node_cannot_join, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_hostile_clients_do_not_disturb_a_trusted_peer,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_forged_beacons_ignored_with_a_secret, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replayed_beacon_ignored, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_secret_stranger_cannot_speak_for_a_peer,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_secret_mismatch_never_meets, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_curve_with_secret_accepts_members, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_trust_dir_with_bad_files, s_setup, s_teardown),
    };
    srandom ((unsigned) getpid ());
    return cmocka_run_group_tests (tests, NULL, NULL);
}
