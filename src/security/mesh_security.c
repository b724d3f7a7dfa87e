/*  =========================================================================
    mesh_security - CURVE on every link, the ZAP decision, cluster-secret
    MACs, trust revocation: the node's side of docs/security.md

    Who is accepted, in one place (s_allow, run by the ZAP thread):
    - the node's own public key (nodes sharing a key pair are one cluster);
    - with --trust, the keys of the directory, and nothing else: removing a
      file revokes that key even when the holder knows the secret;
    - with --secret and no --trust, any key, provisionally: the HELLO that
      must follow carries a MAC only a holder of the secret can make.
    A peer is bound to the key it proved in HELLO. libzmq gives each frame
    the fd it came on (ZMQ_SRCFD): a frame on another connection than the
    checked one (a reconnect, or someone taking the routing id over with
    ROUTER_HANDOVER) has its key checked again, once per connection. That
    fd is also how a revoked peer's inbound link is cut: libzmq has no
    stable call to close one connection of a ROUTER, but shutdown(2) on it
    makes libzmq see the connection end and clean up.

    Ownership: this file owns every piece of security state
    (mesh_security_t, mesh_security.h) and never reads the node's peer
    table; it answers with verdicts, and src/node/mesh_node_security.c
    applies them (counts per peer, asks for a HELLO, removes revoked
    peers).
    ========================================================================= */

#include "mesh_security.h"
#include <czmq.h>
#include <stdarg.h>
#include <sodium.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#define MESH_ZAP_DOMAIN     "meshbus"
#define MESH_MONITOR_EVENTS (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL \
                           | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_DISCONNECTED)
#define MESH_WARN_IVL_MS    10000
#define MESH_REHELLO_MS     1000    //  secret, no CURVE: at most one HELLO request a second
#define MESH_BEACON_TIMES   4096    //  senders whose newest beacon time is remembered
#define MESH_BEACON_PRUNE_MS 1000

struct _mesh_security_t {
    const char *name;           //  the node's, for log lines (borrowed)
    mesh_counters_t *counters;  //  the node's (borrowed)
    //  configuration, fixed after start, except what the trust store holds
    bool curve;
    uint8_t public_key [MESH_KEY_SIZE], secret_key [MESH_KEY_SIZE];
    char public_z85 [MESH_KEY_Z85 + 1];
    char *trust_dir;
    mesh_trust_t *trust;        //  NULL without --trust
    bool has_secret;
    mesh_secret_t secret;
    //  running state
    zhashx_t *beacon_times;     //  secret: hex id -> newest MAC'd beacon time (uint64_t *)
    int64_t next_beacon_prune;
    mesh_zap_t *zap;            //  runs whenever curve is on
    void *monitor;              //  PAIR: inbox handshake events (curve)
    int64_t next_trust_scan;
    int64_t next_warn [8];      //  rate limit of warnings, per kind
    uint64_t zap_seen [3];      //  ZAP counters already added to ours
    uint64_t trust_seen [2];    //  trust store skip counters already added
};

//  ---------------------------------------------------------------------
//  Construction and configuration (mesh_node_set_curve... call these)

mesh_security_t *
mesh_security_new (const char *name, mesh_counters_t *counters)
{
    assert (name);
    assert (counters);
    mesh_security_t *self = (mesh_security_t *) zmalloc (sizeof (mesh_security_t));
    self->name = name;
    self->counters = counters;
    return self;
}

void
mesh_security_destroy (mesh_security_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mesh_security_t *self = *self_p;
    mesh_security_stop (self);
    free (self->trust_dir);
    sodium_memzero (self->secret_key, sizeof self->secret_key);
    sodium_memzero (&self->secret, sizeof self->secret);
    free (self);
    *self_p = NULL;
}

int
mesh_security_set_keys (mesh_security_t *self, const uint8_t *public_key, const uint8_t *secret_key)
{
    assert (self);
    if (!public_key || !secret_key)
        return mesh_fail (MESH_EINVAL, "CURVE needs a public and a secret key");
    uint8_t derived [MESH_KEY_SIZE];
    crypto_scalarmult_base (derived, secret_key);
    if (sodium_memcmp (derived, public_key, MESH_KEY_SIZE) != 0)
        return mesh_fail (MESH_EINVAL, "the CURVE secret key does not belong to the public key");
    memcpy (self->public_key, public_key, MESH_KEY_SIZE);
    memcpy (self->secret_key, secret_key, MESH_KEY_SIZE);
    zmq_z85_encode (self->public_z85, self->public_key, MESH_KEY_SIZE);
    self->curve = true;
    return 0;
}

int
mesh_security_set_trust (mesh_security_t *self, const char *dir)
{
    assert (self);
    if (!dir || !*dir)
        return mesh_fail (MESH_EINVAL, "no trust directory");
    free (self->trust_dir);
    self->trust_dir = strdup (dir);
    return 0;
}

int
mesh_security_set_secret_bytes (mesh_security_t *self, const void *secret, size_t size)
{
    assert (self);
    if (mesh_secret_from_bytes (&self->secret, secret, size))
        return -1;
    self->has_secret = true;
    return 0;
}

int
mesh_security_set_secret_file (mesh_security_t *self, const char *file)
{
    assert (self);
    if (!file || mesh_secret_from_file (&self->secret, file))
        return file? -1: mesh_fail (MESH_EINVAL, "no secret file");
    self->has_secret = true;
    return 0;
}

const char *
mesh_security_public_z85 (mesh_security_t *self)
{
    assert (self);
    return self->curve? self->public_z85: NULL;
}

const uint8_t *
mesh_security_public_key (mesh_security_t *self)
{
    assert (self);
    return self->curve? self->public_key: NULL;
}

bool
mesh_security_on (mesh_security_t *self)
{
    return self->curve || self->has_secret;
}

bool
mesh_security_curve (mesh_security_t *self)
{
    return self->curve;
}

bool
mesh_security_has_secret (mesh_security_t *self)
{
    return self->has_secret;
}

void
mesh_security_warn (mesh_security_t *self, int kind, const char *fmt, ...)
{
    int64_t now = mesh_mono_ms ();
    if (kind < 0 || kind >= 8 || now < self->next_warn [kind])
        return;
    self->next_warn [kind] = now + MESH_WARN_IVL_MS;
    char line [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    //  Security refusals are printed even without --verbose: a node that
    //  cannot join must say why, not just stay alone.
    mesh_log (MESH_LOG_WARNING, self->name, "%s", line);
}

//  ---------------------------------------------------------------------
//  Who is accepted

static bool
s_allow (void *arg, const uint8_t *key)
{
    mesh_security_t *self = (mesh_security_t *) arg;
    if (self->curve && sodium_memcmp (key, self->public_key, MESH_KEY_SIZE) == 0)
        return true;
    if (self->trust)
        return mesh_trust_has (self->trust, key);
    return self->has_secret;
}

bool
mesh_security_key_ok (mesh_security_t *self, const uint8_t *key)
{
    return s_allow (self, key);
}

static void
s_trust_warn (void *arg, const char *line)
{
    mesh_security_t *self = (mesh_security_t *) arg;
    mesh_log (MESH_LOG_WARNING, self->name, "%s", line);
}

int
mesh_security_start (mesh_security_t *self, void *ctx)
{
    if (self->trust_dir && !self->curve)
        return mesh_fail (MESH_EINVAL, "a trust directory needs CURVE (--curve KEYFILE)");
    if (self->trust_dir) {
        self->trust = mesh_trust_new (self->trust_dir, s_trust_warn, self);
        if (!self->trust)
            return -1;
        //  never revoked: peers sharing our key pair are us
        mesh_trust_pin (self->trust, self->public_key);
        self->next_trust_scan = mesh_mono_ms () + MESH_TRUST_SCAN_MS;
    }
    if (self->curve) {
        self->zap = mesh_zap_new (ctx, s_allow, self);
        if (!self->zap)
            return -1;
    }
    if (self->has_secret) {
        self->beacon_times = zhashx_new ();
        zhashx_set_destructor (self->beacon_times, (zhashx_destructor_fn *) zstr_free);
    }
    return 0;
}

int
mesh_security_inbox (mesh_security_t *self, void *ctx, void *inbox, const char *hex)
{
    if (!self->curve)
        return 0;
    int on = 1;
    if (zmq_setsockopt (inbox, ZMQ_CURVE_SERVER, &on, sizeof on)
    ||  zmq_setsockopt (inbox, ZMQ_CURVE_SECRETKEY, self->secret_key, MESH_KEY_SIZE)
    ||  zmq_setsockopt (inbox, ZMQ_ZAP_DOMAIN, MESH_ZAP_DOMAIN, strlen (MESH_ZAP_DOMAIN)))
        return mesh_fail (MESH_ESYS, "cannot make the inbox a CURVE server: %s", zmq_strerror (errno));
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://meshbus-monitor-%s", hex);
    if (zmq_socket_monitor (inbox, endpoint, MESH_MONITOR_EVENTS) == 0) {
        self->monitor = zmq_socket (ctx, ZMQ_PAIR);
        int linger = 0;
        zmq_setsockopt (self->monitor, ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_connect (self->monitor, endpoint)) {
            zmq_close (self->monitor);
            self->monitor = NULL;
        }
    }
    return 0;
}

int
mesh_security_client (mesh_security_t *self, void *socket, const uint8_t *server_key)
{
    if (!self->curve)
        return 0;
    if (!server_key)
        return -1;
    if (zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, server_key, MESH_KEY_SIZE)
    ||  zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, self->public_key, MESH_KEY_SIZE)
    ||  zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, self->secret_key, MESH_KEY_SIZE))
        return -1;
    return 0;
}

void
mesh_security_stop (mesh_security_t *self)
{
    if (self->monitor) {
        zmq_close (self->monitor);
        self->monitor = NULL;
    }
    mesh_zap_destroy (&self->zap);
    mesh_trust_destroy (&self->trust);
    zhashx_destroy (&self->beacon_times);
}

//  ---------------------------------------------------------------------
//  Connections

//  The key libzmq authenticated for the connection a frame came on
static bool
s_frame_key (zmq_msg_t *frame, uint8_t *key)
{
    const char *user = zmq_msg_gets (frame, "User-Id");
    return user && strlen (user) == MESH_KEY_Z85 && zmq_z85_decode (key, user);
}

static void
s_remote_addr (int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    out [0] = 0;
    if (fd < 0 || getpeername (fd, (struct sockaddr *) &ss, &len) != 0)
        return;
    char ip [INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *) &ss;
        inet_ntop (AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs (in->sin_port);
    }
    else
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
        inet_ntop (AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs (in6->sin6_port);
    }
    snprintf (out, cap, "%s:%d", ip, port);
}

//  Cut the inbound connection a frame came on. Only a TCP socket whose
//  remote address is the one we saw is touched, never a reused fd.
static void
s_cut_fd (mesh_security_t *self, int fd, const char *expect_addr)
{
    if (fd < 0)
        return;
    char addr [64];
    s_remote_addr (fd, addr, sizeof addr);
    if (!addr [0] || (expect_addr && strcmp (addr, expect_addr)))
        return;
    shutdown (fd, SHUT_RDWR);
    mesh_counters_add (self->counters, "links.cut", 1);
}

static void
s_cut_frame (mesh_security_t *self, zmq_msg_t *frame)
{
    int fd = zmq_msg_get (frame, ZMQ_SRCFD);
    s_cut_fd (self, fd, NULL);
}

//  ---------------------------------------------------------------------
//  HELLO

size_t
mesh_security_hello_headers (mesh_security_t *self, const uint8_t *id, uint64_t incarnation,
                             const char *endpoint, const char **pairs, size_t count,
                             char storage [2][80])
{
    if (!self->has_secret)
        return count;
    uint64_t now = mesh_secret_now_ms ();
    uint8_t zeros [MESH_KEY_SIZE] = { 0 };
    uint8_t mac [MESH_MAC_SIZE];
    mesh_secret_hello_mac (&self->secret, id, incarnation, now,
                           self->curve? self->public_key: zeros, endpoint, mac);
    snprintf (storage [0], 80, "%" PRIu64, now);
    mesh_hex (mac, MESH_MAC_SIZE, storage [1]);
    pairs [2 * count] = "meshbus.time";
    pairs [2 * count + 1] = storage [0];
    pairs [2 * count + 2] = "meshbus.mac";
    pairs [2 * count + 3] = storage [1];
    return count + 2;
}

static const char *
s_header (const mesh_envelope_t *env, const char *name, size_t *len)
{
    size_t nlen = strlen (name);
    for (uint32_t i = 0; i < env->header_count; i++)
        if (env->header_key [i].len == nlen
        &&  memcmp (env->header_key [i].ptr, name, nlen) == 0) {
            *len = env->header_value [i].len;
            return (const char *) env->header_value [i].ptr;
        }
    return NULL;
}

static bool
s_refuse_hello (mesh_security_t *self, zmq_msg_t *frame, const char *reason, const char *why)
{
    char name [64];
    snprintf (name, sizeof name, "hello.refused.%s", reason);
    mesh_counters_add (self->counters, name, 1);
    const char *addr = zmq_msg_gets (frame, "Peer-Address");
    mesh_security_warn (self, MESH_WARN_HELLO, "refused HELLO from %s: %s",
                        addr? addr: "?", why);
    s_cut_frame (self, frame);
    return false;
}

bool
mesh_security_hello (mesh_security_t *self, const uint8_t *id, const mesh_envelope_t *env,
                     zmq_msg_t *frame, const char *reply, uint8_t *key, bool *has_key)
{
    *has_key = false;
    if (!mesh_security_on (self))
        return true;
    uint8_t zeros [MESH_KEY_SIZE] = { 0 };
    if (self->curve) {
        if (!s_frame_key (frame, key))
            return s_refuse_hello (self, frame, "no-key", "no authenticated key on the connection");
        if (!s_allow (self, key))
            return s_refuse_hello (self, frame, "untrusted", "its key is not trusted");
        *has_key = true;
    }
    if (self->has_secret) {
        size_t tlen = 0, mlen = 0;
        const char *ttext = s_header (env, "meshbus.time", &tlen);
        const char *mtext = s_header (env, "meshbus.mac", &mlen);
        if (!ttext || !mtext)
            return s_refuse_hello (self, frame, "no-mac", "no MAC: the sender has no cluster secret");
        uint8_t mac [MESH_MAC_SIZE], expect [MESH_MAC_SIZE];
        uint64_t time_ms;
        if (mesh_security_mac_fields (ttext, tlen, mtext, mlen, &time_ms, mac))
            return s_refuse_hello (self, frame, "bad-mac", "malformed MAC fields");
        mesh_secret_hello_mac (&self->secret, id, env->id, time_ms,
                               *has_key? key: zeros, reply, expect);
        if (sodium_memcmp (mac, expect, MESH_MAC_SIZE) != 0)
            return s_refuse_hello (self, frame, "bad-mac", "bad MAC: another cluster secret");
        if (!mesh_secret_fresh (time_ms, mesh_secret_now_ms ()))
            return s_refuse_hello (self, frame, "stale", "its MAC is too old (or the clocks differ by > 30 s)");
    }
    return true;
}

//  Which connection a frame came on: libzmq keeps one metadata object per
//  connection, and a property's value in it has the same address in
//  every frame of that connection. The copy of a frame a peer keeps
//  (in_pin) holds its connection's object alive, so no other connection's
//  can ever take that address, where an fd number is reused at once.
//  One property lookup (~230 instructions) is cheaper than ZMQ_SRCFD,
//  which is that lookup plus parsing the number.
#define MESH_CONN_TAG "Socket-Type"     //  in every ZMTP 3 connection's metadata

void
mesh_security_conn_init (mesh_security_conn_t *conn)
{
    memset (conn, 0, sizeof *conn);
    conn->in_fd = -1;
    zmq_msg_init (&conn->in_pin);
}

void
mesh_security_conn_fini (mesh_security_conn_t *conn)
{
    zmq_msg_close (&conn->in_pin);
}

//  After a HELLO or key was accepted: the connection it came on is the
//  checked one
static void
s_bind_connection (mesh_security_conn_t *conn, zmq_msg_t *frame)
{
    zmq_msg_close (&conn->in_pin);
    zmq_msg_init (&conn->in_pin);
    zmq_msg_copy (&conn->in_pin, frame);
    conn->in_tag = zmq_msg_gets (&conn->in_pin, MESH_CONN_TAG);
    conn->in_fd = zmq_msg_get (frame, ZMQ_SRCFD);
    s_remote_addr (conn->in_fd, conn->in_addr, sizeof conn->in_addr);
}

mesh_security_verdict_t
mesh_security_frame (mesh_security_t *self, mesh_security_conn_t *conn,
                     const uint8_t *peer_key, const char *hex, zmq_msg_t *frame, int kind,
                     const char **reason)
{
    const char *tag = zmq_msg_gets (frame, MESH_CONN_TAG);
    if (tag && tag == conn->in_tag)
        return MESH_SECURITY_ACCEPT;
    if (kind == MESH_KIND_HELLO) {      //  mesh_security_hello passed it
        s_bind_connection (conn, frame);
        return MESH_SECURITY_ACCEPT;
    }
    if (self->curve) {
        uint8_t key [MESH_KEY_SIZE];
        if (s_frame_key (frame, key) && peer_key
        &&  sodium_memcmp (key, peer_key, MESH_KEY_SIZE) == 0 && s_allow (self, key)) {
            s_bind_connection (conn, frame);
            return MESH_SECURITY_ACCEPT;
        }
        *reason = "dropped.wrong-key";
        mesh_security_warn (self, MESH_WARN_HELLO, "a connection with another key claims to be %s: cut",
                            hex);
        s_cut_frame (self, frame);
        return MESH_SECURITY_REFUSE;
    }
    //  A secret and no CURVE: a connection speaks for a peer only once it
    //  brought the peer's HELLO with a valid MAC; anyone who can reach the
    //  inbox could otherwise take the peer's routing id over
    //  (ROUTER_HANDOVER) and send in its name. A peer whose link
    //  reconnected (a cut, healed) is asked for a HELLO on it, at most once
    //  a second; until that comes, what arrives there is dropped, counted.
    *reason = "dropped.unbound-connection";
    int64_t now = mesh_mono_ms ();
    if (now < conn->next_rehello)
        return MESH_SECURITY_REFUSE;
    conn->next_rehello = now + MESH_REHELLO_MS;
    mesh_security_warn (self, MESH_WARN_HELLO, "frames in the name of %s on a connection that "
                        "brought no HELLO: dropped until one comes", hex);
    return MESH_SECURITY_ASK_HELLO;
}

void
mesh_security_stranger (mesh_security_t *self, zmq_msg_t *frame)
{
    if (!self->curve)
        return;
    uint8_t key [MESH_KEY_SIZE];
    if (!s_frame_key (frame, key) || !s_allow (self, key))
        s_cut_frame (self, frame);
}

void
mesh_security_cut (mesh_security_t *self, mesh_security_conn_t *conn)
{
    s_cut_fd (self, conn->in_fd, conn->in_addr);
}

void
mesh_security_forget_fd (mesh_security_conn_t *conn, int fd)
{
    if (conn->in_fd == fd)
        conn->in_fd = -1;
}

//  ---------------------------------------------------------------------
//  Beacons

void
mesh_security_beacon_fill (mesh_security_t *self, mesh_beacon_packet_t *pkt,
                           const char *endpoint)
{
    if (self->curve) {
        pkt->has_key = true;
        memcpy (pkt->key, self->public_key, MESH_KEY_SIZE);
    }
    if (self->has_secret) {
        pkt->has_time = true;
        pkt->time_ms = mesh_secret_now_ms ();
        //  the MAC must cover the address peers connect to, so a beacon
        //  replayed from another address still points at us
        if (!pkt->host [0]) {
            char host [128];
            int port;
            if (mesh_parse_endpoint (endpoint, host, sizeof host, &port) == 0)
                snprintf (pkt->host, sizeof pkt->host, "%s", host);
        }
    }
}

size_t
mesh_security_beacon_encode (mesh_security_t *self, const mesh_beacon_packet_t *pkt,
                             uint8_t *buf, size_t cap)
{
    if (self->has_secret)
        return mesh_beacon_encode_signed (pkt, &self->secret, buf, cap);
    return mesh_beacon_encode (pkt, buf, cap);
}

//  A sender's MAC'd beacon times only go forward. Within the 30 s a MAC
//  stays fresh, an older beacon of the same sender is a replay, which
//  could evict a live peer (its LEAVING) or announce one that is gone;
//  the same beacon again (several interfaces) is harmless and passes.
//  Only beacons with a valid MAC get here, so only secret holders add
//  senders; past MESH_BEACON_TIMES of them, new ones go unremembered.
static bool
s_beacon_replayed (mesh_security_t *self, const char *hex, uint64_t time_ms)
{
    uint64_t *last = (uint64_t *) zhashx_lookup (self->beacon_times, hex);
    if (last && time_ms < *last)
        return true;
    if (!last && zhashx_size (self->beacon_times) < MESH_BEACON_TIMES) {
        last = (uint64_t *) zmalloc (sizeof (uint64_t));
        zhashx_insert (self->beacon_times, hex, last);
    }
    if (last)
        *last = time_ms;
    return false;
}

//  Forget senders whose newest beacon is no longer fresh: anything older
//  is refused as stale anyway
static void
s_beacon_prune (mesh_security_t *self, int64_t now)
{
    if (!self->beacon_times || now < self->next_beacon_prune)
        return;
    self->next_beacon_prune = now + MESH_BEACON_PRUNE_MS;
    uint64_t wall = mesh_secret_now_ms ();
    zlistx_t *old = zlistx_new ();
    for (uint64_t *t = (uint64_t *) zhashx_first (self->beacon_times); t;
         t = (uint64_t *) zhashx_next (self->beacon_times))
        if (!mesh_secret_fresh (*t, wall) && *t < wall)
            zlistx_add_end (old, (void *) zhashx_cursor (self->beacon_times));
    for (const char *key = (const char *) zlistx_first (old); key;
         key = (const char *) zlistx_next (old))
        zhashx_delete (self->beacon_times, key);
    zlistx_destroy (&old);
}

const char *
mesh_security_beacon_check (mesh_security_t *self, const mesh_beacon_packet_t *pkt,
                            const uint8_t *data, size_t size, const char *from)
{
    char hex [33];
    mesh_hex (pkt->id, MESH_ID_SIZE, hex);
    if (self->has_secret) {
        if (!pkt->has_mac) {
            mesh_security_warn (self, MESH_WARN_BEACON_MAC, "beacon from %s (%s) has no MAC: "
                                "it has no cluster secret, ignored", from, hex);
            return "no-mac";
        }
        if (!mesh_beacon_verify (pkt, &self->secret, data, size)) {
            mesh_security_warn (self, MESH_WARN_BEACON_MAC, "beacon from %s (%s) has a bad MAC: "
                                "another cluster secret, or forged; ignored", from, hex);
            return "bad-mac";
        }
        if (!pkt->has_time || !mesh_secret_fresh (pkt->time_ms, mesh_secret_now_ms ()))
            return "stale";
        if (s_beacon_replayed (self, hex, pkt->time_ms)) {
            mesh_security_warn (self, MESH_WARN_BEACON_MAC, "beacon from %s (%s) is older than one "
                                "it sent before: replayed, ignored", from, hex);
            return "replayed";
        }
    }
    if (self->curve && !pkt->has_key) {
        mesh_security_warn (self, MESH_WARN_BEACON_KEY, "node %s at %s has no CURVE key: this "
                            "node requires CURVE, so it cannot join; start it with --curve",
                            pkt->name [0]? pkt->name: hex, from);
        return "no-key";
    }
    if (!self->curve && pkt->has_key) {
        mesh_security_warn (self, MESH_WARN_BEACON_KEY, "node %s at %s uses CURVE: this node "
                            "cannot join it without --curve KEYFILE",
                            pkt->name [0]? pkt->name: hex, from);
        return "needs-curve";
    }
    if (self->curve && !s_allow (self, pkt->key)) {
        mesh_security_warn (self, MESH_WARN_UNTRUSTED, "node %s at %s has a key that is not "
                            "trusted: ignored", pkt->name [0]? pkt->name: hex, from);
        return "untrusted";
    }
    return NULL;
}

//  ---------------------------------------------------------------------
//  Tick: revocation, ZAP news, handshake failures

static void
s_monitor (mesh_security_t *self, int *closed, size_t max, size_t *nclosed)
{
    //  bounded: a flood of failed handshakes cannot hold the keeper
    for (int i = 0; i < 64 && self->monitor; i++) {
        zmq_msg_t event, address;
        zmq_msg_init (&event);
        if (zmq_msg_recv (&event, self->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&event);
            return;
        }
        zmq_msg_init (&address);
        if (zmq_msg_more (&event))
            zmq_msg_recv (&address, self->monitor, 0);
        if (zmq_msg_size (&event) >= 6) {
            const uint8_t *data = (const uint8_t *) zmq_msg_data (&event);
            uint16_t type;
            uint32_t value;
            memcpy (&type, data, 2);
            memcpy (&value, data + 2, 4);
            if (type == ZMQ_EVENT_DISCONNECTED) {
                //  the node forgets the fd (mesh_security_forget_fd): a
                //  new connection may get the same number
                if (*nclosed < max)
                    closed [(*nclosed)++] = (int) value;
            }
            else
            if (type == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            ||  type == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
                bool mismatch = type == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                             && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH;
                mesh_counters_add (self->counters, mismatch? "handshake.failed.not-curve"
                                                           : "handshake.failed.protocol", 1);
                mesh_security_warn (self, MESH_WARN_HANDSHAKE, mismatch
                    ? "a client connected without CURVE: this node requires CURVE, refused"
                    : "a client failed the handshake (CURVE required; libzmq error 0x%x)", value);
            }
        }
        zmq_msg_close (&event);
        zmq_msg_close (&address);
    }
}

bool
mesh_security_tick (mesh_security_t *self, int64_t now, int *closed, size_t max,
                    size_t *nclosed)
{
    *nclosed = 0;
    if (self->zap) {
        uint64_t seen [3] = { mesh_zap_accepted (self->zap), mesh_zap_refused (self->zap),
                              mesh_zap_malformed (self->zap) };
        const char *names [3] = { "zap.accepted", "zap.refused", "zap.malformed" };
        for (int i = 0; i < 3; i++)
            if (seen [i] > self->zap_seen [i]) {
                mesh_counters_add (self->counters, names [i], seen [i] - self->zap_seen [i]);
                self->zap_seen [i] = seen [i];
            }
        uint8_t key [MESH_KEY_SIZE];
        char address [64];
        if (mesh_zap_take_refusal (self->zap, key, address, sizeof address)) {
            char z85 [MESH_KEY_Z85 + 1];
            zmq_z85_encode (z85, key, MESH_KEY_SIZE);
            mesh_security_warn (self, MESH_WARN_ZAP, "refused a connection from %s: key %s is not trusted",
                                address, z85);
        }
    }
    s_monitor (self, closed, max, nclosed);
    s_beacon_prune (self, now);
    if (self->trust) {
        uint64_t seen [2] = { mesh_trust_skipped_malformed (self->trust),
                              mesh_trust_skipped_duplicate (self->trust) };
        const char *names [2] = { "trust.skipped.malformed", "trust.skipped.duplicate" };
        for (int i = 0; i < 2; i++)
            if (seen [i] > self->trust_seen [i]) {
                mesh_counters_add (self->counters, names [i], seen [i] - self->trust_seen [i]);
                self->trust_seen [i] = seen [i];
            }
    }
    if (self->trust && now >= self->next_trust_scan) {
        self->next_trust_scan = now + MESH_TRUST_SCAN_MS;
        return true;
    }
    return false;
}

int
mesh_security_rescan (mesh_security_t *self, uint8_t *revoked, size_t max)
{
    //  no lock held: only the trust store (its own lock) is touched
    return self->trust? mesh_trust_rescan (self->trust, revoked, max): 0;
}

void
mesh_security_rescanned (mesh_security_t *self, int count)
{
    if (count < 0)
        mesh_security_warn (self, MESH_WARN_TRUST, "cannot read the trust directory %s: keeping the keys loaded",
                            self->trust_dir);
}
