/*  =========================================================================
    mesh_discovery - how a node hears of peers

    Three sources feed one peer table, all at once:
    - the UDP beacon (mesh_beacon): a peer we hear of gets a link and our
      HELLO; rate limited per source address, bounded table, and every
      beacon we ignore is counted by reason;
    - seeds: a probe DEALER per configured endpoint sends HELLO with
      REPLY_WANTED (exponential backoff up to MESH_DEFAULT_SEED_IVL_MAX)
      until a live peer answers from that endpoint;
    - gossip: a peer that enters gets our list of live peers, and the
      others hear of it, so one seed joins a whole mesh.
    This file owns the sources' state and returns what they tell; the
    peer table is the node's, which applies it (mesh_node_discovery.c).
    Liveness is mesh_liveness.c's. Everything runs in the keeper thread.
    ========================================================================= */

#include "mesh_discovery.h"
#include "mesh_beacon.h"
#include <netdb.h>
#include <arpa/inet.h>
#include <sodium.h>

#define MESH_SEED_IVL_MIN   500     //  first retry of a seed, ms
#define MESH_SEED_RECHECK   5000    //  ms between checks of a satisfied seed
#define MESH_NEW_PEERS_PER_SEC  64  //  beacon-discovered peers per second, per source address

typedef struct {
    double tokens;
    int64_t last;
} mesh_bucket_t;

typedef struct {
    char endpoint [256];        //  as configured: tcp://name:port
    char resolved [128];        //  tcp://ip:port after the last resolution
    void *probe;                //  DEALER with a PROBE routing id
    int64_t next_try;
    int backoff;                //  ms
    bool has_key;               //  CURVE: the seed's key, from "#KEY"
    uint8_t key [MESH_KEY_SIZE];
} mesh_seed_t;

struct _mesh_discovery_t {
    mesh_counters_t *counters;  //  the node's (borrowed)
    mesh_security_t *security;  //  the node's (borrowed)
    //  what a beacon says of us, fixed at start (endpoint once bound)
    uint8_t id [MESH_ID_SIZE];
    char name [65];
    uint64_t incarnation;
    uint8_t tag [MESH_BEACON_TAG_SIZE];
    char bind_host [128];
    char endpoint [128];
    bool verbose;
    void *ctx;
    //  beacon
    mesh_beacon_t *beacon;
    int beacon_ivl;
    int beacon_cur;             //  beacon interval now: backs off while membership is stable
    int64_t next_beacon;
    zhashx_t *rate;             //  source address -> mesh_bucket_t (token bucket)
    //  gossip
    int gossip_ms;
    int64_t next_gossip;
    //  seeds
    mesh_seed_t *seed_tab;
    size_t seed_count;
};

static void
s_log (mesh_discovery_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_log (mesh_discovery_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    mesh_logv (self->verbose? MESH_LOG_INFO: MESH_LOG_DEBUG, self->name, fmt, args);
    va_end (args);
}

mesh_discovery_t *
mesh_discovery_new (mesh_counters_t *counters, mesh_security_t *security)
{
    assert (counters);
    assert (security);
    mesh_discovery_t *self = (mesh_discovery_t *) zmalloc (sizeof (mesh_discovery_t));
    self->counters = counters;
    self->security = security;
    self->rate = zhashx_new ();
    zhashx_set_destructor (self->rate, (zhashx_destructor_fn *) zstr_free);
    return self;
}

void
mesh_discovery_destroy (mesh_discovery_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mesh_discovery_t *self = *self_p;
    mesh_discovery_stop (self);
    zhashx_destroy (&self->rate);
    free (self);
    *self_p = NULL;
}

int
mesh_discovery_start (mesh_discovery_t *self, const mesh_discovery_config_t *config)
{
    memcpy (self->id, config->id, MESH_ID_SIZE);
    snprintf (self->name, sizeof self->name, "%s", config->name);
    self->incarnation = config->incarnation;
    mesh_beacon_cluster_tag (config->cluster, self->tag);
    snprintf (self->bind_host, sizeof self->bind_host, "%s", config->bind_host);
    self->verbose = config->verbose;
    self->ctx = config->ctx;
    self->beacon_ivl = config->beacon_ivl;
    self->gossip_ms = config->gossip_ms;
    //  The beacon socket also tells which address the inbox binds to, so
    //  it is opened when an interface was chosen even with beacons off.
    const char *ifaces = config->ifaces;
    if (self->beacon_ivl > 0 || (ifaces && *ifaces && strcmp (ifaces, "lo"))) {
        const char *reason = NULL;
        self->beacon = mesh_beacon_new (ifaces, (uint16_t) config->beacon_port, &reason);
        if (!self->beacon)
            return mesh_fail (MESH_ESYS, "beacon: %s", reason? reason: strerror (errno));
    }
    self->seed_count = zlistx_size (config->seeds);
    self->seed_tab = (mesh_seed_t *) zmalloc (sizeof (mesh_seed_t) * (self->seed_count + 1));
    size_t i = 0;
    for (const char *seed = (const char *) zlistx_first (config->seeds); seed;
         seed = (const char *) zlistx_next (config->seeds), i++) {
        mesh_seed_t *tab = &self->seed_tab [i];
        //  validated by mesh_node_add_seed: "tcp://host:port" or "...#KEY"
        mesh_security_split (seed, tab->endpoint, sizeof tab->endpoint, tab->key, &tab->has_key);
        tab->backoff = MESH_SEED_IVL_MIN;
        if (mesh_security_curve (self->security) && !tab->has_key) {
            //  A CURVE client must know the server's key. Without one we
            //  try our own: right when the cluster shares one key pair.
            memcpy (tab->key, mesh_security_public_key (self->security), MESH_KEY_SIZE);
            tab->has_key = true;
            s_log (self, "seed %s has no #KEY: trying our own public key", seed);
        }
    }
    int64_t now = mesh_mono_ms ();
    self->next_beacon = now;
    self->next_gossip = now + self->gossip_ms;
    self->beacon_cur = self->beacon_ivl;
    return 0;
}

const char *
mesh_discovery_host (mesh_discovery_t *self)
{
    return self->beacon? mesh_beacon_host (self->beacon): NULL;
}

void
mesh_discovery_bound (mesh_discovery_t *self, const char *endpoint)
{
    snprintf (self->endpoint, sizeof self->endpoint, "%s", endpoint);
}

int
mesh_discovery_fd (mesh_discovery_t *self)
{
    return self->beacon && self->beacon_ivl? mesh_beacon_fd (self->beacon): -1;
}

static size_t
s_beacon_packet (mesh_discovery_t *self, uint8_t flags, uint8_t *buf, size_t cap)
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
mesh_discovery_stop (mesh_discovery_t *self)
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

//  ---------------------------------------------------------------------
//  Beacons

//  Token bucket per source address: a flood of invented node ids from one
//  address cannot fill the table or make us open thousands of links.
bool
mesh_discovery_admit (mesh_discovery_t *self, const char *from, int64_t now)
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

void
mesh_discovery_ignore (mesh_discovery_t *self, const char *reason)
{
    char name [64];
    snprintf (name, sizeof name, "beacon.ignored.%s", reason);
    mesh_counters_add (self->counters, name, 1);
}

size_t
mesh_discovery_beacon_in (mesh_discovery_t *self, mesh_sighting_t *out, size_t max, int *budget)
{
    size_t count = 0;
    //  bounded (the budget) so a flood cannot starve the liveness checks
    while (count < max && *budget > 0) {
        (*budget)--;
        uint8_t buf [MESH_BEACON_MAX + 1];
        char from [64];
        bool foreign = false;
        ssize_t size = mesh_beacon_recv (self->beacon, buf, sizeof buf, from, &foreign);
        if (size < 0) {
            *budget = 0;        //  nothing left to read
            break;
        }
        mesh_counters_add (self->counters, "beacon.received", 1);
        if (foreign) {
            mesh_discovery_ignore (self, "other-interface");
            continue;
        }
        mesh_beacon_packet_t pkt;
        int rc = size > MESH_BEACON_MAX? MESH_BEACON_MALFORMED
               : mesh_beacon_decode (&pkt, buf, (size_t) size);
        if (rc != MESH_BEACON_OK) {
            mesh_discovery_ignore (self, rc == MESH_BEACON_BAD_VERSION? "version": "malformed");
            continue;
        }
        if (memcmp (pkt.tag, self->tag, MESH_BEACON_TAG_SIZE)) {
            mesh_discovery_ignore (self, "other-cluster");
            continue;
        }
        if (memcmp (pkt.id, self->id, MESH_ID_SIZE) == 0) {
            mesh_discovery_ignore (self, "self");
            continue;
        }
        if (mesh_security_on (self->security) || pkt.has_key) {
            //  before anything acts on it: a forged LEAVING must not
            //  evict a peer, a forged restart must not cut its link
            const char *reason = mesh_security_beacon_check (self->security, &pkt, buf, (size_t) size, from);
            if (reason) {
                mesh_discovery_ignore (self, reason);
                continue;
            }
        }
        mesh_sighting_t *s = &out [count++];
        memcpy (s->id, pkt.id, MESH_ID_SIZE);
        mesh_hex (pkt.id, MESH_ID_SIZE, s->hex);
        snprintf (s->endpoint, sizeof s->endpoint, "tcp://%s:%u", pkt.host [0]? pkt.host: from, pkt.port);
        s->has_key = pkt.has_key;
        if (pkt.has_key)
            memcpy (s->key, pkt.key, MESH_KEY_SIZE);
        s->incarnation = pkt.incarnation;
        s->leaving = (pkt.flags & MESH_BEACON_FLAG_LEAVING) != 0;
        snprintf (s->from, sizeof s->from, "%s", from);
    }
    return count;
}

//  The next beacon's delay, backing off while nothing changes; peers: how
//  many the node knows
static int
s_beacon_delay (mesh_discovery_t *self, size_t peers)
{
    if (self->beacon_cur < self->beacon_ivl)
        self->beacon_cur = self->beacon_ivl;
    int delay = self->beacon_cur;
    //  jitter of +-25 %: nodes started together do not beacon together
    int spread = delay / 2;
    delay = delay - delay / 4 + (spread > 0? (int) randombytes_uniform ((uint32_t) spread + 1): 0);
    //  the ceiling grows with the mesh: every node hears every beacon, so
    //  N nodes at a fixed ceiling made N/ceiling datagrams a second for
    //  each node (the one idle cost that grew with N). At N/2 intervals a
    //  node hears about 2 per interval whatever N, and a healed split is
    //  still heard within about half an interval (each side's nodes beacon
    //  in turn)
    int backoff = (int) peers / 2;
    if (backoff < MESH_BEACON_BACKOFF)
        backoff = MESH_BEACON_BACKOFF;
    int64_t wide = (int64_t) self->beacon_ivl * backoff;
    int ceiling = wide > INT32_MAX / 2? INT32_MAX / 2: (int) wide;
    self->beacon_cur = self->beacon_cur * 2 > ceiling? ceiling: self->beacon_cur * 2;
    return delay > 0? delay: 1;
}

int64_t
mesh_discovery_beacon_tick (mesh_discovery_t *self, int64_t now, size_t peers)
{
    if (!self->beacon || self->beacon_ivl <= 0)
        return INT64_MAX;
    if (now >= self->next_beacon) {
        uint8_t buf [MESH_BEACON_MAX];
        size_t size = s_beacon_packet (self, 0, buf, sizeof buf);
        if (size && mesh_beacon_send (self->beacon, buf, size) == 0)
            mesh_counters_add (self->counters, "beacon.sent", 1);
        else
            mesh_counters_add (self->counters, "beacon.send-failed", 1);
        self->next_beacon = now + s_beacon_delay (self, peers);
    }
    return self->next_beacon;
}

void
mesh_discovery_changed (mesh_discovery_t *self)
{
    if (self->beacon_cur != self->beacon_ivl && self->beacon_ivl > 0) {
        self->beacon_cur = self->beacon_ivl;
        int64_t soon = mesh_mono_ms () + self->beacon_ivl / 2
                     + randombytes_uniform ((uint32_t) self->beacon_ivl / 2 + 1);
        if (soon < self->next_beacon)
            self->next_beacon = soon;
    }
}

//  ---------------------------------------------------------------------
//  Gossip

int
mesh_discovery_gossip_entry (mesh_discovery_t *self, const mesh_envelope_t *env, uint32_t i,
                             mesh_sighting_t *out)
{
    memset (out, 0, sizeof *out);
    char text [128 + 1 + MESH_KEY_Z85 + 1];
    const mesh_span_t *key = &env->header_key [i], *value = &env->header_value [i];
    if (key->len != 32 || value->len >= sizeof text)
        return -1;
    memcpy (out->hex, key->ptr, 32);
    out->hex [32] = 0;
    memcpy (text, value->ptr, value->len);
    text [value->len] = 0;
    if (mesh_unhex (out->hex, out->id, MESH_ID_SIZE)
    ||  mesh_security_split (text, out->endpoint, sizeof out->endpoint, out->key, &out->has_key))
        return -1;
    if (memcmp (out->id, self->id, MESH_ID_SIZE) == 0)
        return -2;
    return 0;
}

const char *
mesh_discovery_gossip_vet (mesh_discovery_t *self, const mesh_sighting_t *sighting)
{
    bool curve = mesh_security_curve (self->security);
    if (sighting->has_key != curve
    ||  (sighting->has_key && !mesh_security_key_ok (self->security, sighting->key)))
        //  a CURVE peer we cannot reach, or a key we do not trust
        return sighting->has_key && curve? "gossip.refused.untrusted": "gossip.refused.security";
    return NULL;
}

bool
mesh_discovery_gossip_due (mesh_discovery_t *self, int64_t now)
{
    if (now < self->next_gossip)
        return false;
    self->next_gossip = now + self->gossip_ms;
    return true;
}

//  ---------------------------------------------------------------------
//  Seeds

size_t
mesh_discovery_seed_count (mesh_discovery_t *self)
{
    return self->seed_count;
}

int64_t
mesh_discovery_seed_next (mesh_discovery_t *self, size_t i)
{
    assert (i < self->seed_count);
    return self->seed_tab [i].next_try;
}

int
mesh_discovery_seed_resolve (mesh_discovery_t *self, size_t i, char *resolved, size_t cap)
{
    assert (i < self->seed_count);
    char host [256];
    int port;
    if (mesh_parse_endpoint (self->seed_tab [i].endpoint, host, sizeof host, &port))
        return -1;
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo (host, NULL, &hints, &res);
    char ip [INET_ADDRSTRLEN] = "";
    if (rc == 0 && res)
        inet_ntop (AF_INET, &((struct sockaddr_in *) res->ai_addr)->sin_addr, ip, sizeof ip);
    if (res)
        freeaddrinfo (res);
    if (!ip [0])
        return 0;
    snprintf (resolved, cap, "tcp://%s:%d", ip, port);
    return 1;
}

static void
s_seed_backoff (mesh_seed_t *seed, int64_t now)
{
    seed->next_try = now + seed->backoff;
    seed->backoff = seed->backoff * 2 > MESH_DEFAULT_SEED_IVL_MAX
                  ? MESH_DEFAULT_SEED_IVL_MAX: seed->backoff * 2;
}

void *
mesh_discovery_seed_verdict (mesh_discovery_t *self, size_t i, int64_t now,
                             const char *resolved, bool satisfied)
{
    assert (i < self->seed_count);
    mesh_seed_t *seed = &self->seed_tab [i];
    if (!resolved) {
        char host [256];
        int port;
        mesh_counters_add (self->counters, "seed.unresolved", 1);
        if (mesh_parse_endpoint (seed->endpoint, host, sizeof host, &port) == 0)
            s_log (self, "seed %s: cannot resolve %s", seed->endpoint, host);
        s_seed_backoff (seed, now);
        return NULL;
    }
    if (satisfied) {
        seed->backoff = MESH_SEED_IVL_MIN;
        seed->next_try = now + MESH_SEED_RECHECK;
        return NULL;
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
    //  the node sends the HELLO now (EAGAIN means an earlier HELLO still
    //  waits for the connection: fine)
    mesh_counters_add (self->counters, "seed.hello", 1);
    s_seed_backoff (seed, now);
    return seed->probe;
}
