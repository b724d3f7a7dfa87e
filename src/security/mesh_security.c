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
    ========================================================================= */

#include "mesh_node_int.h"
#include <sodium.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#define MESH_ZAP_DOMAIN     "meshbus"
#define MESH_MONITOR_EVENTS (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL \
                           | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_DISCONNECTED)
#define MESH_WARN_IVL_MS    10000
#define MESH_MAX_REVOKED    256     //  reported per rescan; more are refused all the same
#define MESH_REHELLO_MS     1000    //  secret, no CURVE: at most one HELLO request a second
#define MESH_BEACON_TIMES   4096    //  senders whose newest beacon time is remembered
#define MESH_BEACON_PRUNE_MS 1000

enum { WARN_BEACON_KEY, WARN_BEACON_MAC, WARN_UNTRUSTED, WARN_HELLO, WARN_ZAP,
       WARN_HANDSHAKE, WARN_TRUST, WARN_SEED };

//  ---------------------------------------------------------------------
//  Configuration (mesh_node_set_curve... are public, see meshbus.h)

int
mesh_node_set_curve_keys (mesh_node_t *self, const uint8_t *public_key, const uint8_t *secret_key)
{
    assert (self);
    if (self->started || self->stopping)
        return mesh_fail (MESH_ESTATE, "configure a node before mesh_node_start");
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
mesh_node_set_curve (mesh_node_t *self, const char *keyfile)
{
    assert (self);
    if (!keyfile)
        return mesh_fail (MESH_EINVAL, "no key file");
    uint8_t public_key [MESH_KEY_SIZE], secret_key [MESH_KEY_SIZE];
    if (mesh_keys_load (keyfile, public_key, secret_key))
        return -1;
    int rc = mesh_node_set_curve_keys (self, public_key, secret_key);
    sodium_memzero (secret_key, sizeof secret_key);
    return rc;
}

int
mesh_node_set_trust (mesh_node_t *self, const char *dir)
{
    assert (self);
    if (self->started || self->stopping)
        return mesh_fail (MESH_ESTATE, "configure a node before mesh_node_start");
    if (!dir || !*dir)
        return mesh_fail (MESH_EINVAL, "no trust directory");
    free (self->trust_dir);
    self->trust_dir = strdup (dir);
    return 0;
}

int
mesh_node_set_secret_bytes (mesh_node_t *self, const void *secret, size_t size)
{
    assert (self);
    if (self->started || self->stopping)
        return mesh_fail (MESH_ESTATE, "configure a node before mesh_node_start");
    if (mesh_secret_from_bytes (&self->secret, secret, size))
        return -1;
    self->has_secret = true;
    return 0;
}

int
mesh_node_set_secret (mesh_node_t *self, const char *file)
{
    assert (self);
    if (self->started || self->stopping)
        return mesh_fail (MESH_ESTATE, "configure a node before mesh_node_start");
    if (!file || mesh_secret_from_file (&self->secret, file))
        return file? -1: mesh_fail (MESH_EINVAL, "no secret file");
    self->has_secret = true;
    return 0;
}

const char *
mesh_node_public_key (mesh_node_t *self)
{
    assert (self);
    return self->curve? self->public_z85: NULL;
}

bool
mesh_security_on (mesh_node_t *self)
{
    return self->curve || self->has_secret;
}

void
mesh_security_warn (mesh_node_t *self, int kind, const char *fmt, ...)
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
    mesh_node_t *self = (mesh_node_t *) arg;
    if (self->curve && sodium_memcmp (key, self->public_key, MESH_KEY_SIZE) == 0)
        return true;
    if (self->trust)
        return mesh_trust_has (self->trust, key);
    return self->has_secret;
}

bool
mesh_security_key_ok (mesh_node_t *self, const uint8_t *key)
{
    return s_allow (self, key);
}

static void
s_trust_warn (void *arg, const char *line)
{
    mesh_node_t *self = (mesh_node_t *) arg;
    mesh_log (MESH_LOG_WARNING, self->name, "%s", line);
}

int
mesh_security_start (mesh_node_t *self)
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
        self->zap = mesh_zap_new (self->ctx, s_allow, self);
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
mesh_security_inbox (mesh_node_t *self, void *inbox)
{
    if (!self->curve)
        return 0;
    int on = 1;
    if (zmq_setsockopt (inbox, ZMQ_CURVE_SERVER, &on, sizeof on)
    ||  zmq_setsockopt (inbox, ZMQ_CURVE_SECRETKEY, self->secret_key, MESH_KEY_SIZE)
    ||  zmq_setsockopt (inbox, ZMQ_ZAP_DOMAIN, MESH_ZAP_DOMAIN, strlen (MESH_ZAP_DOMAIN)))
        return mesh_fail (MESH_ESYS, "cannot make the inbox a CURVE server: %s", zmq_strerror (errno));
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://meshbus-monitor-%s", self->hex);
    if (zmq_socket_monitor (inbox, endpoint, MESH_MONITOR_EVENTS) == 0) {
        self->monitor = zmq_socket (self->ctx, ZMQ_PAIR);
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
mesh_security_client (mesh_node_t *self, void *socket, const uint8_t *server_key)
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
mesh_security_stop (mesh_node_t *self)
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
s_cut_fd (mesh_node_t *self, int fd, const char *expect_addr)
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
s_cut_frame (mesh_node_t *self, mesh_msg_t *msg)
{
    int fd = zmq_msg_get (&msg->frames [0], ZMQ_SRCFD);
    s_cut_fd (self, fd, NULL);
}

//  ---------------------------------------------------------------------
//  HELLO

size_t
mesh_security_hello_headers (mesh_node_t *self, const char **pairs, size_t count,
                             char storage [2][80])
{
    if (!self->has_secret)
        return count;
    uint64_t now = mesh_secret_now_ms ();
    uint8_t zeros [MESH_KEY_SIZE] = { 0 };
    uint8_t mac [MESH_MAC_SIZE];
    mesh_secret_hello_mac (&self->secret, self->id, self->incarnation, now,
                           self->curve? self->public_key: zeros, self->endpoint, mac);
    snprintf (storage [0], 80, "%" PRIu64, now);
    mesh_hex (mac, MESH_MAC_SIZE, storage [1]);
    pairs [2 * count] = "meshbus.time";
    pairs [2 * count + 1] = storage [0];
    pairs [2 * count + 2] = "meshbus.mac";
    pairs [2 * count + 3] = storage [1];
    return count + 2;
}

static const char *
s_header (mesh_msg_t *msg, const char *name, size_t *len)
{
    size_t nlen = strlen (name);
    for (uint32_t i = 0; i < msg->env.header_count; i++)
        if (msg->env.header_key [i].len == nlen
        &&  memcmp (msg->env.header_key [i].ptr, name, nlen) == 0) {
            *len = msg->env.header_value [i].len;
            return (const char *) msg->env.header_value [i].ptr;
        }
    return NULL;
}

static bool
s_refuse_hello (mesh_node_t *self, mesh_msg_t *msg, const char *reason, const char *why)
{
    char name [64];
    snprintf (name, sizeof name, "hello.refused.%s", reason);
    mesh_counters_add (self->counters, name, 1);
    const char *addr = zmq_msg_gets (&msg->frames [0], "Peer-Address");
    mesh_security_warn (self, WARN_HELLO, "refused HELLO from %s: %s",
                        addr? addr: "?", why);
    s_cut_frame (self, msg);
    return false;
}

bool
mesh_security_hello (mesh_node_t *self, const uint8_t *id, mesh_msg_t *msg,
                     uint8_t *key, bool *has_key)
{
    *has_key = false;
    if (!mesh_security_on (self))
        return true;
    uint8_t zeros [MESH_KEY_SIZE] = { 0 };
    if (self->curve) {
        if (!s_frame_key (&msg->frames [0], key))
            return s_refuse_hello (self, msg, "no-key", "no authenticated key on the connection");
        if (!s_allow (self, key))
            return s_refuse_hello (self, msg, "untrusted", "its key is not trusted");
        *has_key = true;
    }
    if (self->has_secret) {
        size_t tlen = 0, mlen = 0;
        const char *ttext = s_header (msg, "meshbus.time", &tlen);
        const char *mtext = s_header (msg, "meshbus.mac", &mlen);
        if (!ttext || !mtext)
            return s_refuse_hello (self, msg, "no-mac", "no MAC: the sender has no cluster secret");
        uint8_t mac [MESH_MAC_SIZE], expect [MESH_MAC_SIZE];
        uint64_t time_ms;
        if (mesh_security_mac_fields (ttext, tlen, mtext, mlen, &time_ms, mac))
            return s_refuse_hello (self, msg, "bad-mac", "malformed MAC fields");
        mesh_secret_hello_mac (&self->secret, id, msg->env.id, time_ms,
                               *has_key? key: zeros, msg->reply, expect);
        if (sodium_memcmp (mac, expect, MESH_MAC_SIZE) != 0)
            return s_refuse_hello (self, msg, "bad-mac", "bad MAC: another cluster secret");
        if (!mesh_secret_fresh (time_ms, mesh_secret_now_ms ()))
            return s_refuse_hello (self, msg, "stale", "its MAC is too old (or the clocks differ by > 30 s)");
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

//  After a HELLO or key was accepted: the connection it came on is the
//  checked one
static void
s_bind_connection (mesh_peer_t *peer, mesh_msg_t *msg)
{
    zmq_msg_close (&peer->in_pin);
    zmq_msg_init (&peer->in_pin);
    zmq_msg_copy (&peer->in_pin, &msg->frames [0]);
    peer->in_tag = zmq_msg_gets (&peer->in_pin, MESH_CONN_TAG);
    peer->in_fd = zmq_msg_get (&msg->frames [0], ZMQ_SRCFD);
    s_remote_addr (peer->in_fd, peer->in_addr, sizeof peer->in_addr);
}

bool
mesh_security_frame (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg)
{
    const char *tag = zmq_msg_gets (&msg->frames [0], MESH_CONN_TAG);
    if (tag && tag == peer->in_tag)
        return true;
    if (msg->env.kind == MESH_KIND_HELLO) {     //  mesh_security_hello passed it
        s_bind_connection (peer, msg);
        return true;
    }
    if (self->curve) {
        uint8_t key [MESH_KEY_SIZE];
        if (s_frame_key (&msg->frames [0], key) && peer->has_key
        &&  sodium_memcmp (key, peer->key, MESH_KEY_SIZE) == 0 && s_allow (self, key)) {
            s_bind_connection (peer, msg);
            return true;
        }
        mesh_peer_count (self, peer, "dropped.wrong-key");
        mesh_security_warn (self, WARN_HELLO, "a connection with another key claims to be %s: cut",
                            peer->hex);
        s_cut_frame (self, msg);
        return false;
    }
    //  A secret and no CURVE: a connection speaks for a peer only once it
    //  brought the peer's HELLO with a valid MAC; anyone who can reach the
    //  inbox could otherwise take the peer's routing id over
    //  (ROUTER_HANDOVER) and send in its name. A peer whose link
    //  reconnected (a cut, healed) is asked for a HELLO on it, at most once
    //  a second; until that comes, what arrives there is dropped, counted.
    mesh_peer_count (self, peer, "dropped.unbound-connection");
    int64_t now = mesh_mono_ms ();
    if (now >= peer->next_rehello) {
        peer->next_rehello = now + MESH_REHELLO_MS;
        mesh_node_hello_to (self, peer, true);
        mesh_security_warn (self, WARN_HELLO, "frames in the name of %s on a connection that "
                            "brought no HELLO: dropped until one comes", peer->hex);
    }
    return false;
}

void
mesh_security_stranger (mesh_node_t *self, mesh_msg_t *msg)
{
    if (!self->curve)
        return;
    uint8_t key [MESH_KEY_SIZE];
    if (!s_frame_key (&msg->frames [0], key) || !s_allow (self, key))
        s_cut_frame (self, msg);
}

//  ---------------------------------------------------------------------
//  Beacons

void
mesh_security_beacon_fill (mesh_node_t *self, mesh_beacon_packet_t *pkt)
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
            if (mesh_parse_endpoint (self->endpoint, host, sizeof host, &port) == 0)
                snprintf (pkt->host, sizeof pkt->host, "%s", host);
        }
    }
}

size_t
mesh_security_beacon_encode (mesh_node_t *self, const mesh_beacon_packet_t *pkt,
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
s_beacon_replayed (mesh_node_t *self, const char *hex, uint64_t time_ms)
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
s_beacon_prune (mesh_node_t *self, int64_t now)
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
mesh_security_beacon_check (mesh_node_t *self, const mesh_beacon_packet_t *pkt,
                            const uint8_t *data, size_t size, const char *from)
{
    char hex [33];
    mesh_hex (pkt->id, MESH_ID_SIZE, hex);
    if (self->has_secret) {
        if (!pkt->has_mac) {
            mesh_security_warn (self, WARN_BEACON_MAC, "beacon from %s (%s) has no MAC: "
                                "it has no cluster secret, ignored", from, hex);
            return "no-mac";
        }
        if (!mesh_beacon_verify (pkt, &self->secret, data, size)) {
            mesh_security_warn (self, WARN_BEACON_MAC, "beacon from %s (%s) has a bad MAC: "
                                "another cluster secret, or forged; ignored", from, hex);
            return "bad-mac";
        }
        if (!pkt->has_time || !mesh_secret_fresh (pkt->time_ms, mesh_secret_now_ms ()))
            return "stale";
        if (s_beacon_replayed (self, hex, pkt->time_ms)) {
            mesh_security_warn (self, WARN_BEACON_MAC, "beacon from %s (%s) is older than one "
                                "it sent before: replayed, ignored", from, hex);
            return "replayed";
        }
    }
    if (self->curve && !pkt->has_key) {
        mesh_security_warn (self, WARN_BEACON_KEY, "node %s at %s has no CURVE key: this "
                            "node requires CURVE, so it cannot join; start it with --curve",
                            pkt->name [0]? pkt->name: hex, from);
        return "no-key";
    }
    if (!self->curve && pkt->has_key) {
        mesh_security_warn (self, WARN_BEACON_KEY, "node %s at %s uses CURVE: this node "
                            "cannot join it without --curve KEYFILE",
                            pkt->name [0]? pkt->name: hex, from);
        return "needs-curve";
    }
    if (self->curve && !s_allow (self, pkt->key)) {
        mesh_security_warn (self, WARN_UNTRUSTED, "node %s at %s has a key that is not "
                            "trusted: ignored", pkt->name [0]? pkt->name: hex, from);
        return "untrusted";
    }
    return NULL;
}

//  ---------------------------------------------------------------------
//  Tick: revocation, ZAP news, handshake failures

static void
s_revoke (mesh_node_t *self, const uint8_t *key)
{
    char z85 [MESH_KEY_Z85 + 1];
    zmq_z85_encode (z85, key, MESH_KEY_SIZE);
    zlistx_t *cut = zlistx_new ();
    for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p;
         p = (mesh_peer_t *) zhashx_next (self->peers))
        if (p->has_key && sodium_memcmp (p->key, key, MESH_KEY_SIZE) == 0)
            zlistx_add_end (cut, p);
    for (mesh_peer_t *p = (mesh_peer_t *) zlistx_first (cut); p;
         p = (mesh_peer_t *) zlistx_next (cut)) {
        mesh_log (MESH_LOG_WARNING, self->name, "key %s revoked: cutting %s (%s)",
                  z85, p->name, p->hex);
        s_cut_fd (self, p->in_fd, p->in_addr);
        mesh_node_remove_peer (self, p, "revoked");
    }
    zlistx_destroy (&cut);
    //  last: whoever reads it sees the links already cut
    mesh_counters_add (self->counters, "trust.revoked", 1);
}

static void
s_monitor (mesh_node_t *self)
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
                //  forget the fd: a new connection may get the same number
                for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p;
                     p = (mesh_peer_t *) zhashx_next (self->peers))
                    if (p->in_fd == (int) value)
                        p->in_fd = -1;
            }
            else
            if (type == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            ||  type == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
                bool mismatch = type == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                             && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH;
                mesh_counters_add (self->counters, mismatch? "handshake.failed.not-curve"
                                                           : "handshake.failed.protocol", 1);
                mesh_security_warn (self, WARN_HANDSHAKE, mismatch
                    ? "a client connected without CURVE: this node requires CURVE, refused"
                    : "a client failed the handshake (CURVE required; libzmq error 0x%x)", value);
            }
        }
        zmq_msg_close (&event);
        zmq_msg_close (&address);
    }
}

void
mesh_security_tick (mesh_node_t *self, int64_t now)
{
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
            mesh_security_warn (self, WARN_ZAP, "refused a connection from %s: key %s is not trusted",
                                address, z85);
        }
    }
    s_monitor (self);
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
        uint8_t revoked [MESH_MAX_REVOKED * MESH_KEY_SIZE];
        //  stat of every file without the lock: the data path goes on
        pthread_mutex_unlock (&self->lock);
        int count = mesh_trust_rescan (self->trust, revoked, MESH_MAX_REVOKED);
        pthread_mutex_lock (&self->lock);
        if (count < 0)
            mesh_security_warn (self, WARN_TRUST, "cannot read the trust directory %s: keeping the keys loaded",
                                self->trust_dir);
        for (int i = 0; i < count && i < MESH_MAX_REVOKED && !self->stopping; i++)
            s_revoke (self, revoked + i * MESH_KEY_SIZE);
        if (count > MESH_MAX_REVOKED) {
            //  more than we were told about: check every peer's key
            zlistx_t *cut = zlistx_new ();
            for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p;
                 p = (mesh_peer_t *) zhashx_next (self->peers))
                if (p->has_key && !s_allow (self, p->key))
                    zlistx_add_end (cut, p);
            for (mesh_peer_t *p = (mesh_peer_t *) zlistx_first (cut); p;
                 p = (mesh_peer_t *) zlistx_next (cut)) {
                s_cut_fd (self, p->in_fd, p->in_addr);
                mesh_node_remove_peer (self, p, "revoked");
            }
            zlistx_destroy (&cut);
        }
    }
}
