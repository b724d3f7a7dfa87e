/*  =========================================================================
    mesh_discovery - how a node finds peers and decides they are gone

    Three sources feed one peer table, all at once:
    - the UDP beacon (mesh_beacon): a peer we hear of gets a link and our
      HELLO; rate limited per source address, bounded table, and every
      beacon we ignore is counted by reason;
    - seeds: a probe DEALER per configured endpoint sends HELLO with
      REPLY_WANTED (exponential backoff up to MESH_DEFAULT_SEED_IVL_MAX)
      until a live peer answers from that endpoint;
    - gossip: a peer that enters gets our list of live peers, and the
      others hear of it, so one seed joins a whole mesh.
    Liveness: any frame counts as a sign of life; silent peers are probed
    and judged by mesh_liveness.c (probes, indirect probes, rumors, closed
    links); the keeper looks at least every MESH_KEEPER_TICK ms.
    Everything here runs in the keeper thread with node->lock held.
    ========================================================================= */

#include "mesh_node_int.h"
#include <netdb.h>
#include <arpa/inet.h>
#include <sodium.h>

#define MESH_SEED_IVL_MIN   500     //  first retry of a seed, ms
#define MESH_SEED_RECHECK   5000    //  ms between checks of a satisfied seed

typedef struct {
    double tokens;
    int64_t last;
} mesh_bucket_t;

int
mesh_discovery_start (mesh_node_t *self)
{
    //  The beacon socket also tells which address the inbox binds to, so
    //  it is opened when an interface was chosen even with beacons off.
    if (self->beacon_ivl > 0 || (self->ifaces && *self->ifaces && strcmp (self->ifaces, "lo"))) {
        const char *reason = NULL;
        self->beacon = mesh_beacon_new (self->ifaces, (uint16_t) self->beacon_port, &reason);
        if (!self->beacon)
            return mesh_fail (MESH_ESYS, "beacon: %s", reason? reason: strerror (errno));
    }
    self->seed_count = zlistx_size (self->seeds);
    self->seed_tab = (mesh_seed_t *) zmalloc (sizeof (mesh_seed_t) * (self->seed_count + 1));
    size_t i = 0;
    for (const char *seed = (const char *) zlistx_first (self->seeds); seed;
         seed = (const char *) zlistx_next (self->seeds), i++) {
        mesh_seed_t *tab = &self->seed_tab [i];
        //  validated by mesh_node_add_seed: "tcp://host:port" or "...#KEY"
        mesh_security_split (seed, tab->endpoint, sizeof tab->endpoint, tab->key, &tab->has_key);
        tab->backoff = MESH_SEED_IVL_MIN;
        if (mesh_security_curve (self->security) && !tab->has_key) {
            //  A CURVE client must know the server's key. Without one we
            //  try our own: right when the cluster shares one key pair.
            memcpy (tab->key, mesh_security_public_key (self->security), MESH_KEY_SIZE);
            tab->has_key = true;
            mesh_node_log (self, "seed %s has no #KEY: trying our own public key", seed);
        }
    }
    int64_t now = mesh_mono_ms ();
    self->next_beacon = now;
    //  judge silence finely enough for the suspect timeout
    self->tick_ms = self->suspect_ms / 6 < MESH_KEEPER_TICK? self->suspect_ms / 6: MESH_KEEPER_TICK;
    if (self->tick_ms < 10)
        self->tick_ms = 10;
    self->next_liveness = now + self->tick_ms;
    self->next_gossip = now + self->gossip_ms;
    self->next_probe = now + self->heartbeat_ms;
    self->beacon_cur = self->beacon_ivl;
    return 0;
}

static size_t
s_beacon_packet (mesh_node_t *self, uint8_t flags, uint8_t *buf, size_t cap)
{
    mesh_beacon_packet_t pkt;
    memset (&pkt, 0, sizeof pkt);
    pkt.flags = flags;
    const char *colon = strrchr (self->endpoint, ':');
    pkt.port = colon? (uint16_t) atoi (colon + 1): 0;
    memcpy (pkt.id, self->id, MESH_ID_SIZE);
    memcpy (pkt.tag, self->tag, MESH_BEACON_TAG_SIZE);
    pkt.incarnation = self->incarnation;
    snprintf (pkt.name, sizeof pkt.name, "%s", self->name);
    if (self->bind_host [0] && strcmp (self->bind_host, "0.0.0.0") && strcmp (self->bind_host, "*"))
        snprintf (pkt.host, sizeof pkt.host, "%s", self->bind_host);
    mesh_security_beacon_fill (self->security, &pkt, self->endpoint);
    return mesh_security_beacon_encode (self->security, &pkt, buf, cap);
}

void
mesh_discovery_stop (mesh_node_t *self)
{
    if (self->beacon && self->beacon_ivl && self->endpoint [0]) {
        uint8_t buf [MESH_BEACON_MAX];
        size_t size = s_beacon_packet (self, MESH_BEACON_FLAG_LEAVING, buf, sizeof buf);
        if (size)
            mesh_beacon_send (self->beacon, buf, size);
    }
    mesh_beacon_destroy (&self->beacon);
    for (size_t i = 0; i < self->seed_count; i++)
        if (self->seed_tab [i].probe)
            zmq_close (self->seed_tab [i].probe);
    free (self->seed_tab);
    self->seed_tab = NULL;
    self->seed_count = 0;
}

//  Token bucket per source address: a flood of invented node ids from one
//  address cannot fill the table or make us open thousands of links.
static bool
s_rate_ok (mesh_node_t *self, const char *from, int64_t now)
{
    mesh_bucket_t *bucket = (mesh_bucket_t *) zhashx_lookup (self->rate, from);
    if (!bucket) {
        if (zhashx_size (self->rate) >= MESH_MAX_PEERS_TRACKED)
            zhashx_purge (self->rate);
        bucket = (mesh_bucket_t *) zmalloc (sizeof (mesh_bucket_t));
        bucket->tokens = MESH_NEW_PEERS_PER_SEC;
        bucket->last = now;
        zhashx_insert (self->rate, from, bucket);
    }
    bucket->tokens += (double) (now - bucket->last) * MESH_NEW_PEERS_PER_SEC / 1000.0;
    if (bucket->tokens > MESH_NEW_PEERS_PER_SEC)
        bucket->tokens = MESH_NEW_PEERS_PER_SEC;
    bucket->last = now;
    if (bucket->tokens < 1)
        return false;
    bucket->tokens -= 1;
    return true;
}

static void
s_ignore (mesh_node_t *self, const char *reason)
{
    char name [64];
    snprintf (name, sizeof name, "beacon.ignored.%s", reason);
    mesh_counters_add (self->counters, name, 1);
}

void
mesh_discovery_beacon_in (mesh_node_t *self)
{
    int64_t now = mesh_mono_ms ();
    //  bounded per wake-up so a flood cannot starve the liveness checks
    for (int i = 0; i < 256; i++) {
        uint8_t buf [MESH_BEACON_MAX + 1];
        char from [64];
        bool foreign = false;
        ssize_t size = mesh_beacon_recv (self->beacon, buf, sizeof buf, from, &foreign);
        if (size < 0)
            break;
        mesh_counters_add (self->counters, "beacon.received", 1);
        if (foreign) {
            s_ignore (self, "other-interface");
            continue;
        }
        mesh_beacon_packet_t pkt;
        int rc = size > MESH_BEACON_MAX? MESH_BEACON_MALFORMED
               : mesh_beacon_decode (&pkt, buf, (size_t) size);
        if (rc != MESH_BEACON_OK) {
            s_ignore (self, rc == MESH_BEACON_BAD_VERSION? "version": "malformed");
            continue;
        }
        if (memcmp (pkt.tag, self->tag, MESH_BEACON_TAG_SIZE)) {
            s_ignore (self, "other-cluster");
            continue;
        }
        if (memcmp (pkt.id, self->id, MESH_ID_SIZE) == 0) {
            s_ignore (self, "self");
            continue;
        }
        if (mesh_security_on (self->security) || pkt.has_key) {
            //  before anything acts on it: a forged LEAVING must not
            //  evict a peer, a forged restart must not cut its link
            const char *reason = mesh_security_beacon_check (self->security, &pkt, buf, (size_t) size, from);
            if (reason) {
                s_ignore (self, reason);
                continue;
            }
        }
        char hex [33];
        mesh_hex (pkt.id, MESH_ID_SIZE, hex);
        mesh_peer_t *peer = (mesh_peer_t *) zhashx_lookup (self->peers, hex);
        if (peer) {
            if (pkt.flags & MESH_BEACON_FLAG_LEAVING) {
                //  The datagram can overtake the last frames of the link,
                //  which end with BYE: removing a linked peer now would
                //  drop what it sent last. The link's BYE removes it in
                //  order; the grace in s_liveness covers a BYE that never
                //  comes. A peer with no link yet has nothing in flight.
                if (peer->state == MESH_PEER_CONNECTING)
                    mesh_node_remove_peer (self, peer, "bye");
                else
                if (!peer->leaving_since)
                    peer->leaving_since = now;
                continue;
            }
            if (!peer->incarnation || peer->incarnation == pkt.incarnation)
                continue;           //  known: beacons are not signs of life
            if (mesh_security_curve (self->security) && !mesh_security_has_secret (self->security))
                continue;           //  unsigned: only its HELLO can tell a restart
            mesh_node_remove_peer (self, peer, "restarted");
        }
        if (pkt.flags & MESH_BEACON_FLAG_LEAVING)
            continue;
        if (!s_rate_ok (self, from, now)) {
            self->view_changed = mesh_mono_ms ();   //  a peer not met yet: not converged
            s_ignore (self, "rate");
            continue;
        }
        if (zhashx_size (self->peers) >= self->max_peers) {
            s_ignore (self, "table-full");
            continue;
        }
        char endpoint [128];
        snprintf (endpoint, sizeof endpoint, "tcp://%s:%u", pkt.host [0]? pkt.host: from, pkt.port);
        if (!mesh_node_add_peer (self, pkt.id, endpoint, pkt.has_key? pkt.key: NULL, "beacon"))
            s_ignore (self, "refused");
    }
}

//  Tell `to` about live peers: all of them, or only `only`.
static void
s_gossip (mesh_node_t *self, mesh_peer_t *to, mesh_peer_t *only)
{
    const char *pairs [2 * MESH_GOSSIP_PER_MSG];
    char keyed [MESH_GOSSIP_PER_MSG][128 + 1 + MESH_KEY_Z85 + 1];
    size_t count = 0;
    mesh_head_t head = { .kind = MESH_KIND_PEERS, .headers = pairs };
    zlistx_t *list = zlistx_new ();
    if (only)
        zlistx_add_end (list, only);
    else
        for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p;
             p = (mesh_peer_t *) zhashx_next (self->peers))
            zlistx_add_end (list, p);
    for (mesh_peer_t *p = (mesh_peer_t *) zlistx_first (list); p;
         p = (mesh_peer_t *) zlistx_next (list)) {
        if (p == to || p->state == MESH_PEER_CONNECTING)
            continue;
        pairs [2 * count] = p->hex;
        pairs [2 * count + 1] = p->endpoint;
        if (p->has_key) {
            //  a CURVE client needs the server's key: "endpoint#KEY"
            char z85 [MESH_KEY_Z85 + 1];
            zmq_z85_encode (z85, p->key, MESH_KEY_SIZE);
            snprintf (keyed [count], sizeof keyed [count], "%s#%s", p->endpoint, z85);
            pairs [2 * count + 1] = keyed [count];
        }
        if (++count == MESH_GOSSIP_PER_MSG) {
            head.header_count = count;
            mesh_node_send_locked (self, to, &head, NULL, 0);
            count = 0;
        }
    }
    if (count) {
        head.header_count = count;
        mesh_node_send_locked (self, to, &head, NULL, 0);
    }
    zlistx_destroy (&list);
}

void
mesh_discovery_gossip_to (mesh_node_t *self, mesh_peer_t *to, mesh_peer_t *only)
{
    if (to) {
        s_gossip (self, to, only);
        if (only)
            return;
        //  a peer entered: it gets our list, and MESH_GOSSIP_FANOUT random
        //  others hear of it (an epidemic: each that meets it tells a few
        //  more). Telling every peer cost each node N messages per ENTER,
        //  N^3 for a mesh starting up: 16.6 million at 256 nodes. The
        //  newcomer meets everyone on our list anyway, and its HELLO is
        //  what introduces it.
        size_t size = zhashx_size (self->peers);
        mesh_peer_t *told [MESH_GOSSIP_FANOUT];
        int ntold = 0;
        for (int tries = 0; ntold < MESH_GOSSIP_FANOUT && size > 1 && tries < 4 * MESH_GOSSIP_FANOUT;
             tries++) {
            size_t pick = randombytes_uniform ((uint32_t) size), i = 0;
            mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers);
            for (; p && i < pick; i++)
                p = (mesh_peer_t *) zhashx_next (self->peers);
            bool dup = !p || p == to || p->state == MESH_PEER_CONNECTING;
            for (int t = 0; t < ntold && !dup; t++)
                dup = told [t] == p;
            if (!dup)
                told [ntold++] = p;
        }
        for (int t = 0; t < ntold; t++)
            s_gossip (self, told [t], to);
    }
}

void
mesh_discovery_peers_in (mesh_node_t *self, mesh_peer_t *from, const mesh_envelope_t *env)
{
    for (uint32_t i = 0; i < env->header_count; i++) {
        char hex [33], text [128 + 1 + MESH_KEY_Z85 + 1], endpoint [128];
        uint8_t id [MESH_ID_SIZE], curve_key [MESH_KEY_SIZE];
        bool has_key = false;
        const mesh_span_t *key = &env->header_key [i], *value = &env->header_value [i];
        if (key->len != 32 || value->len >= sizeof text) {
            mesh_peer_count (self, from, "malformed.gossip");
            continue;
        }
        memcpy (hex, key->ptr, 32);
        hex [32] = 0;
        memcpy (text, value->ptr, value->len);
        text [value->len] = 0;
        if (mesh_unhex (hex, id, MESH_ID_SIZE)
        ||  mesh_security_split (text, endpoint, sizeof endpoint, curve_key, &has_key)) {
            mesh_peer_count (self, from, "malformed.gossip");
            continue;
        }
        if (memcmp (id, self->id, MESH_ID_SIZE) == 0 || zhashx_lookup (self->peers, hex))
            continue;
        bool curve = mesh_security_curve (self->security);
        if (has_key != curve || (has_key && !mesh_security_key_ok (self->security, curve_key))) {
            //  a CURVE peer we cannot reach, or a key we do not trust
            mesh_counters_add (self->counters, has_key && curve? "gossip.refused.untrusted"
                                                                   : "gossip.refused.security", 1);
            continue;
        }
        if (!mesh_node_add_peer (self, id, endpoint, has_key? curve_key: NULL, "gossip"))
            mesh_counters_add (self->counters, "gossip.refused", 1);
    }
}

//  What frames tell (any frame is a sign of life), CONNECTING peers that
//  never said HELLO, peers that said they leave; the probes and verdicts
//  are mesh_liveness.c's. Returns ms to the next deadline.
static int
s_liveness (mesh_node_t *self, int64_t now)
{
    //  While the keeper's queue is full nobody reads the inbox, so silence
    //  proves nothing: hold every peer's verdict until reading resumes.
    bool blind = zlistx_size (self->queue) >= self->queue_max;
    //  A keeper that did not run for gone_ms (the process was stopped,
    //  SIGSTOP, a debugger) has been declared gone by every peer: they
    //  drop what it sends. It declares them gone too, and discovery
    //  introduces both sides again (EXIT then ENTER on each side).
    bool frozen = self->last_tick && now - self->last_tick >= self->gone_ms && !blind;
    if (frozen)
        mesh_counters_add (self->counters, "keeper.frozen", 1);
    zlistx_t *gone = zlistx_new ();
    zlistx_t *left = zlistx_new ();     //  said they leave, then fell silent
    mesh_head_t ping = { .kind = MESH_KIND_PING };
    //  CONNECTING and leaving peers are judged every tick; when there are
    //  none the keeper may sleep until mesh_liveness_tick's next deadline
    bool pending = self->connecting > 0 || blind;
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers); peer;
         peer = (mesh_peer_t *) zhashx_next (self->peers)) {
        if (peer->state == MESH_PEER_CONNECTING) {
            if (now - peer->created > MESH_CONNECT_TIMEOUT)
                zlistx_add_end (gone, peer);
            continue;
        }
        if (frozen) {
            zlistx_add_end (gone, peer);
            continue;
        }
        if (peer->frames_in != peer->seen_in || blind) {
            peer->seen_in = peer->frames_in;
            mesh_liveness_heard (self, peer, now);
        }
        //  a peer that judges us by silence alone hears from us often enough
        if (peer->frames_out != peer->seen_out) {
            peer->seen_out = peer->frames_out;
            peer->last_spoke = now;
        }
        if (!peer->probes && now - peer->last_spoke >= (peer->heartbeat_ms > 0
                                                       ? peer->heartbeat_ms: self->heartbeat_ms)) {
            mesh_node_send_locked (self, peer, &ping, NULL, 0);
            peer->seen_out = peer->frames_out;
            peer->last_spoke = now;
        }
        pending |= peer->leaving_since != 0;
        if (peer->leaving_since
        &&  now - (peer->last_heard > peer->leaving_since? peer->last_heard: peer->leaving_since)
            >= MESH_LEAVING_GRACE_MS)
            zlistx_add_end (left, peer);
    }
    for (mesh_peer_t *peer = (mesh_peer_t *) zlistx_first (gone); peer;
         peer = (mesh_peer_t *) zlistx_next (gone))
        mesh_node_remove_peer (self, peer, "silent");
    for (mesh_peer_t *peer = (mesh_peer_t *) zlistx_first (left); peer;
         peer = (mesh_peer_t *) zlistx_next (left))
        mesh_node_remove_peer (self, peer, "bye");
    zlistx_destroy (&gone);
    zlistx_destroy (&left);
    int wait = mesh_liveness_tick (self, now);
    //  foreign peers fed every heartbeat need their tick too
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers); peer && !pending;
         peer = (mesh_peer_t *) zhashx_next (self->peers))
        pending = !peer->probes && peer->state != MESH_PEER_CONNECTING;
    return pending && wait > self->tick_ms? self->tick_ms: wait;
}

static void
s_seed (mesh_node_t *self, mesh_seed_t *seed, int64_t now)
{
    char host [256], resolved [128];
    int port;
    if (mesh_parse_endpoint (seed->endpoint, host, sizeof host, &port))
        return;
    //  Resolve without the lock: a slow resolver must not stall liveness
    pthread_mutex_unlock (&self->lock);
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo (host, NULL, &hints, &res);
    char ip [INET_ADDRSTRLEN] = "";
    if (rc == 0 && res)
        inet_ntop (AF_INET, &((struct sockaddr_in *) res->ai_addr)->sin_addr, ip, sizeof ip);
    if (res)
        freeaddrinfo (res);
    pthread_mutex_lock (&self->lock);
    if (self->stopping)
        return;
    if (!ip [0]) {
        mesh_counters_add (self->counters, "seed.unresolved", 1);
        mesh_node_log (self, "seed %s: cannot resolve %s", seed->endpoint, host);
        seed->next_try = now + seed->backoff;
        seed->backoff = seed->backoff * 2 > MESH_DEFAULT_SEED_IVL_MAX
                      ? MESH_DEFAULT_SEED_IVL_MAX: seed->backoff * 2;
        return;
    }
    snprintf (resolved, sizeof resolved, "tcp://%s:%d", ip, port);
    bool satisfied = streq (resolved, self->endpoint);
    for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p && !satisfied;
         p = (mesh_peer_t *) zhashx_next (self->peers))
        satisfied = p->state != MESH_PEER_CONNECTING && streq (p->endpoint, resolved);
    if (satisfied) {
        seed->backoff = MESH_SEED_IVL_MIN;
        seed->next_try = now + MESH_SEED_RECHECK;
        return;
    }
    if (seed->probe && strcmp (seed->resolved, resolved)) {
        zmq_close (seed->probe);
        seed->probe = NULL;
    }
    if (!seed->probe) {
        seed->probe = zmq_socket (self->ctx, ZMQ_DEALER);
        uint8_t rid [MESH_ROUTING_ID_SIZE];
        rid [0] = MESH_ROUTING_PROBE;
        memcpy (rid + 1, self->id, MESH_ID_SIZE);
        int linger = 0, hwm = 1;
        zmq_setsockopt (seed->probe, ZMQ_ROUTING_ID, rid, sizeof rid);
        zmq_setsockopt (seed->probe, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt (seed->probe, ZMQ_SNDHWM, &hwm, sizeof hwm);
        mesh_security_client (self->security, seed->probe, seed->has_key? seed->key: NULL);
        zmq_connect (seed->probe, resolved);
        snprintf (seed->resolved, sizeof seed->resolved, "%s", resolved);
    }
    //  EAGAIN means an earlier HELLO still waits for the connection: fine
    mesh_node_send_hello (self, seed->probe, true);
    mesh_counters_add (self->counters, "seed.hello", 1);
    seed->next_try = now + seed->backoff;
    seed->backoff = seed->backoff * 2 > MESH_DEFAULT_SEED_IVL_MAX
                  ? MESH_DEFAULT_SEED_IVL_MAX: seed->backoff * 2;
}

int
mesh_discovery_tick (mesh_node_t *self)
{
    int64_t now = mesh_mono_ms ();
    //  no fixed tick: each timer below says when it is due (an idle node's
    //  keeper wakes ~4 times a second, for its next probe)
    int64_t next = now + MESH_KEEPER_IDLE_MS;
    if (self->beacon && self->beacon_ivl > 0) {
        if (now >= self->next_beacon) {
            uint8_t buf [MESH_BEACON_MAX];
            size_t size = s_beacon_packet (self, 0, buf, sizeof buf);
            if (size && mesh_beacon_send (self->beacon, buf, size) == 0)
                mesh_counters_add (self->counters, "beacon.sent", 1);
            else
                mesh_counters_add (self->counters, "beacon.send-failed", 1);
            self->next_beacon = now + mesh_liveness_beacon_delay (self);
        }
        if (self->next_beacon < next)
            next = self->next_beacon;
    }
    if (mesh_security_on (self->security))
        mesh_node_security_tick (self, now);
    if (self->stopping)
        return 0;
    if (now >= self->next_liveness) {
        self->next_liveness = now + s_liveness (self, now);
    }
    if (self->next_liveness < next)
        next = self->next_liveness;
    if (now >= self->next_gossip) {
        //  anti-entropy: our list to one live peer a round, not to all
        //  (N lists of N peers every round made gossip cost N^2)
        size_t size = zhashx_size (self->peers), i = 0;
        size_t pick = size? randombytes_uniform ((uint32_t) size): 0;
        for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p;
             p = (mesh_peer_t *) zhashx_next (self->peers), i++)
            if (i >= pick && p->state != MESH_PEER_CONNECTING) {
                s_gossip (self, p, NULL);
                break;
            }
        self->next_gossip = now + self->gossip_ms;
    }
    for (size_t i = 0; i < self->seed_count && !self->stopping; i++) {
        if (now >= self->seed_tab [i].next_try)
            s_seed (self, &self->seed_tab [i], now);
        if (self->seed_tab [i].next_try < next)
            next = self->seed_tab [i].next_try;
    }
    now = mesh_mono_ms ();
    self->last_tick = now;
    self->tick_due = next;      //  a keeper woken much later than this ran late
    return next > now? (int) (next - now): 0;
}
