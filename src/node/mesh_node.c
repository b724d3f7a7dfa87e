/*  =========================================================================
    mesh_node - a meshbus node: its life (new, configuration, start and
    stop), hooks and announcements

    The node's own files share its private state (mesh_node_int.h): this
    one; mesh_node_link.c, sending and the peers' links; and
    mesh_node_dispatch.c, the inbox, the keeper thread and dispatch (and
    mesh_node_{announce,info,discovery,security}.c). The owners it calls
    keep their state in their own structs and return verdicts the node
    applies: security (src/security/mesh_security.h), discovery
    (mesh_discovery.h), the peers' stats collected (mesh_peer_stats.h).

    Sockets: one ROUTER inbox bound on an ephemeral TCP port, and one DEALER
    per peer connected to that peer's inbox (Zyre's "Harmony" pattern). A
    DEALER presents a 17-byte routing id (type byte + our node id) so the
    peer's ROUTER tells who sent each frame without a field in the header.
    Measured here: DEALER->ROUTER passes 2.1 M msg/s at 100 B, the same as
    raw PUB->SUB, so the identity frame costs nothing we can see.

    Threading: see the top of mesh_node_dispatch.c.
    ========================================================================= */

#include "mesh_node_int.h"
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <stdarg.h>
#include <sodium.h>
#include <sys/resource.h>

//  ---------------------------------------------------------------------
//  Construction and configuration

static void
s_chunk_free (void **item)
{
    zchunk_destroy ((zchunk_t **) item);
}

static void
s_version_free (void **item)
{
    free (*item);
    *item = NULL;
}

mesh_node_t *
mesh_node_new (const char *name)
{
    if (name && (strlen (name) == 0 || strlen (name) > 64)) {
        mesh_fail (MESH_EINVAL, "node name must be 1 to 64 bytes");
        return NULL;
    }
    if (sodium_init () < 0) {
        mesh_fail (MESH_ESYS, "libsodium failed to initialise");
        return NULL;
    }
    mesh_node_t *self = (mesh_node_t *) zmalloc (sizeof (mesh_node_t));
    pthread_mutex_init (&self->lock, NULL);
    pthread_mutex_init (&self->stats_lock, NULL);
    self->stats_wanted = zlistx_new ();
    zlistx_set_destructor (self->stats_wanted, (zlistx_destructor_fn *) zstr_free);
    randombytes_buf (self->id, MESH_ID_SIZE);
    mesh_hex (self->id, MESH_ID_SIZE, self->hex);
    snprintf (self->name, sizeof self->name, "%s", name? name: self->hex);
    if (!name)
        self->name [8] = 0;
    snprintf (self->cluster, sizeof self->cluster, "%s", MESH_DEFAULT_CLUSTER);
    self->beacon_port = MESH_DEFAULT_BEACON_PORT;
    self->beacon_ivl = MESH_DEFAULT_BEACON_IVL;
    self->suspect_ms = MESH_DEFAULT_SUSPECT_MS;
    self->gone_ms = MESH_DEFAULT_GONE_MS;
    self->heartbeat_ms = MESH_DEFAULT_HEARTBEAT_IVL;
    self->gossip_ms = MESH_DEFAULT_GOSSIP_IVL;
    self->max_peers = MESH_MAX_PEERS_DEFAULT;
    self->hwm = MESH_DEFAULT_SNDHWM;
    self->queue_max = MESH_DEFAULT_INBOX_QUEUE;
    self->event_max = MESH_DEFAULT_EVENT_QUEUE;
    self->headers = zhashx_new ();
    zhashx_set_destructor (self->headers, (zhashx_destructor_fn *) zstr_free);
    self->announce = zhashx_new ();
    zhashx_set_destructor (self->announce, s_chunk_free);
    self->announce_ver = zhashx_new ();
    zhashx_set_destructor (self->announce_ver, s_version_free);
    self->seeds = zlistx_new ();
    zlistx_set_destructor (self->seeds, (zlistx_destructor_fn *) zstr_free);
    self->peers = zhashx_new ();
    //  looked up on every message sent and received: czmq's default hash
    //  cost ~10% of a 100 B message (mesh_id_hash, mesh_util.c)
    zhashx_set_key_hasher (self->peers, mesh_id_hash);
    zhashx_set_destructor (self->peers, (zhashx_destructor_fn *) mesh_peer_destroy);
    self->queue = zlistx_new ();
    self->raw_events = zlistx_new ();
    self->events = zlistx_new ();
    zlistx_set_destructor (self->raw_events, (zlistx_destructor_fn *) mesh_event_destroy);
    zlistx_set_destructor (self->events, (zlistx_destructor_fn *) mesh_event_destroy);
    self->counters = mesh_counters_new ();
    //  borrows the name and counters, which live as long as the node
    self->security = mesh_security_new (self->name, self->counters);
    self->discovery = mesh_discovery_new (self->counters, self->security);
    self->liveness = mesh_liveness_new ();
    self->departed = mesh_departed_new ();
    self->peer_stats = mesh_peer_stats_new ();
    self->app_fd = -1;
    self->keeper_fd = -1;
    self->monitor_ep = -1;
    return self;
}

static void
s_queued_destroy (mesh_queued_t **item_p)
{
    if (*item_p) {
        for (int i = 0; i < (*item_p)->nframes; i++)
            zmq_msg_close (&(*item_p)->frames [i]);
        free (*item_p);
        *item_p = NULL;
    }
}

void
mesh_node_destroy (mesh_node_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mesh_node_t *self = *self_p;
    mesh_node_destroy_patterns (self);
    mesh_node_stop (self);
    mesh_queued_t *q;
    while ((q = (mesh_queued_t *) zlistx_detach (self->queue, NULL)))
        s_queued_destroy (&q);
    zlistx_destroy (&self->queue);
    zlistx_destroy (&self->raw_events);
    zlistx_destroy (&self->events);
    zhashx_destroy (&self->peers);
    mesh_departed_destroy (&self->departed);
    zhashx_destroy (&self->headers);
    zhashx_destroy (&self->announce);
    zhashx_destroy (&self->announce_ver);
    mesh_peer_stats_destroy (&self->peer_stats);
    zlistx_destroy (&self->stats_wanted);
    pthread_mutex_destroy (&self->stats_lock);
    zlistx_destroy (&self->seeds);
    mesh_discovery_destroy (&self->discovery);
    mesh_security_destroy (&self->security);
    mesh_counters_destroy (&self->counters);
    free (self->ifaces);
    if (self->app_fd >= 0)
        close (self->app_fd);
    if (self->keeper_fd >= 0)
        close (self->keeper_fd);
    mesh_liveness_destroy (&self->liveness);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

static int
s_not_started (mesh_node_t *self)
{
    if (self->started || self->stopping)
        return mesh_fail (MESH_ESTATE, "configure the node before mesh_node_start");
    return 0;
}

int
mesh_node_set_cluster (mesh_node_t *self, const char *cluster)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    if (!cluster || !*cluster || mesh_strlcpy (self->cluster, cluster, sizeof self->cluster))
        return mesh_fail (MESH_EINVAL, "cluster name must be 1 to 64 bytes");
    return 0;
}

int
mesh_node_set_iface (mesh_node_t *self, const char *ifaces)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    free (self->ifaces);
    self->ifaces = ifaces? strdup (ifaces): NULL;
    return 0;
}

int
mesh_node_set_beacon_port (mesh_node_t *self, int port)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    if (port < 1 || port > 65535)
        return mesh_fail (MESH_EINVAL, "beacon port must be 1..65535");
    self->beacon_port = port;
    return 0;
}

int
mesh_node_set_beacon_interval (mesh_node_t *self, int msecs)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    if (msecs < 0)
        return mesh_fail (MESH_EINVAL, "beacon interval must be >= 0");
    self->beacon_ivl = msecs;
    return 0;
}

int
mesh_node_set_timeouts (mesh_node_t *self, int suspect_ms, int gone_ms)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    if (suspect_ms < 50 || gone_ms <= suspect_ms)
        return mesh_fail (MESH_EINVAL, "need 50 <= suspect_ms < gone_ms");
    self->suspect_ms = suspect_ms;
    self->gone_ms = gone_ms;
    //  a peer must hear from us several times before it suspects us
    self->heartbeat_ms = suspect_ms / 4;
    return 0;
}

int
mesh_node_add_seed (mesh_node_t *self, const char *endpoint)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    char host [256], plain [256];
    int port;
    uint8_t key [MESH_KEY_SIZE];
    bool has_key;
    if (!endpoint || mesh_security_split (endpoint, plain, sizeof plain, key, &has_key)
    ||  mesh_parse_endpoint (plain, host, sizeof host, &port))
        return mesh_fail (MESH_EINVAL, "seed must be tcp://HOST:PORT or tcp://HOST:PORT#KEY "
                          "(KEY: the seed's public key in Z85), got '%s'", endpoint? endpoint: "");
    zlistx_add_end (self->seeds, strdup (endpoint));
    return 0;
}

int
mesh_node_set_bind (mesh_node_t *self, const char *host, int port)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    if (port < 0 || port > 65535)
        return mesh_fail (MESH_EINVAL, "port must be 0..65535");
    if (!host)
        host = "";
    if (mesh_strlcpy (self->bind_host, host, sizeof self->bind_host))
        return mesh_fail (MESH_EINVAL, "bind host too long");
    self->bind_port = port;
    return 0;
}

int
mesh_node_set_header (mesh_node_t *self, const char *key, const char *value)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    if (!key || !value || !*key || strlen (key) > MESH_MAX_HEADER_KEY
    ||  strlen (value) > MESH_MAX_HEADER_VALUE)
        return mesh_fail (MESH_ETOOBIG, "header key 1..64 bytes, value <= 1024");
    if (strncmp (key, "meshbus.", 8) == 0)
        return mesh_fail (MESH_EINVAL, "header keys starting with 'meshbus.' are reserved");
    //  HELLO also carries the reserved security headers
    if (zhashx_size (self->headers) >= MESH_MAX_HEADERS - MESH_RESERVED_HEADERS
    &&  !zhashx_lookup (self->headers, key))
        return mesh_fail (MESH_ETOOBIG, "at most %d headers", MESH_MAX_HEADERS - MESH_RESERVED_HEADERS);
    zhashx_update (self->headers, key, strdup (value));
    return 0;
}

int
mesh_node_set_id (mesh_node_t *self, const char *hex_id)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    uint8_t id [MESH_ID_SIZE];
    if (mesh_unhex (hex_id, id, MESH_ID_SIZE))
        return mesh_fail (MESH_EINVAL, "node id must be 32 hex characters");
    bool default_name = strncmp (self->name, self->hex, 8) == 0;
    memcpy (self->id, id, MESH_ID_SIZE);
    mesh_hex (self->id, MESH_ID_SIZE, self->hex);
    if (default_name)
        snprintf (self->name, sizeof self->name, "%.8s", self->hex);
    return 0;
}

int
mesh_node_set_max_peers (mesh_node_t *self, size_t max_peers)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    if (max_peers < 1 || max_peers > 65536)
        return mesh_fail (MESH_EINVAL, "max peers must be 1..65536");
    self->max_peers = max_peers;
    return 0;
}

//  Security's configuration: the node checks its state, security owns
//  the keys (src/security/mesh_security.c)
int
mesh_node_set_curve_keys (mesh_node_t *self, const uint8_t *public_key, const uint8_t *secret_key)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    return mesh_security_set_keys (self->security, public_key, secret_key);
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
    if (s_not_started (self))
        return -1;
    return mesh_security_set_trust (self->security, dir);
}

int
mesh_node_set_secret_bytes (mesh_node_t *self, const void *secret, size_t size)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    return mesh_security_set_secret_bytes (self->security, secret, size);
}

int
mesh_node_set_secret (mesh_node_t *self, const char *file)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    return mesh_security_set_secret_file (self->security, file);
}

const char *
mesh_node_public_key (mesh_node_t *self)
{
    assert (self);
    return mesh_security_public_z85 (self->security);
}

int
mesh_node_set_hwm (mesh_node_t *self, int messages)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    if (messages < 1)
        return mesh_fail (MESH_EINVAL, "high-water mark must be >= 1");
    self->hwm = messages;
    return 0;
}

void
mesh_node_set_verbose (mesh_node_t *self, bool verbose)
{
    assert (self);
    self->verbose = verbose;
}

void
mesh_node_log (mesh_node_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    mesh_logv (self->verbose? MESH_LOG_INFO: MESH_LOG_DEBUG, self->name, fmt, args);
    va_end (args);
}

const char * mesh_node_id (mesh_node_t *self) { return self->hex; }
const char * mesh_node_name (mesh_node_t *self) { return self->name; }
uint64_t     mesh_node_incarnation (mesh_node_t *self) { return self->incarnation; }
int          mesh_node_fd (mesh_node_t *self) { return self->app_fd; }

const char *
mesh_node_endpoint (mesh_node_t *self)
{
    return self->started? self->endpoint: NULL;
}

//  ---------------------------------------------------------------------
//  Start and stop

int
mesh_node_start (mesh_node_t *self)
{
    assert (self);
    if (s_not_started (self))
        return -1;
    randombytes_buf (&self->incarnation, sizeof self->incarnation);
    self->incarnation |= 1;     //  0 means "not known yet"
    randombytes_buf (&self->link_serial, sizeof self->link_serial);
    self->routing_id [0] = MESH_ROUTING_LINK;
    memcpy (self->routing_id + 1, self->id, MESH_ID_SIZE);

    //  One socket per peer: make room for a full peer table
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit (RLIMIT_NOFILE, &rl);
    }
    self->ctx = zmq_ctx_new ();
    //  a link is three sockets: the DEALER, its monitor and our reader
    zmq_ctx_set (self->ctx, ZMQ_MAX_SOCKETS, 3 * (int) self->max_peers + 64
                 + (int) zlistx_size (self->seeds));
    zmq_ctx_set (self->ctx, ZMQ_BLOCKY, 0);
    self->app_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    self->keeper_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    //  the links' monitors: the keeper waits on one fd for all of them
    self->monitor_ep = epoll_create1 (EPOLL_CLOEXEC);

    //  the ZAP handler must be bound before the inbox accepts anyone
    if (mesh_security_start (self->security, self->ctx))
        goto failed;
    mesh_discovery_config_t discovery = {
        .ctx = self->ctx, .ifaces = self->ifaces, .beacon_port = self->beacon_port,
        .beacon_ivl = self->beacon_ivl, .gossip_ms = self->gossip_ms, .id = self->id,
        .name = self->name, .incarnation = self->incarnation, .cluster = self->cluster,
        .bind_host = self->bind_host, .seeds = self->seeds, .verbose = self->verbose
    };
    if (mesh_discovery_start (self->discovery, &discovery))
        goto failed;
    int64_t now = mesh_mono_ms ();
    //  judge silence finely enough for the suspect timeout
    self->tick_ms = self->suspect_ms / 6 < MESH_KEEPER_TICK? self->suspect_ms / 6: MESH_KEEPER_TICK;
    if (self->tick_ms < 10)
        self->tick_ms = 10;
    self->next_liveness = now + self->tick_ms;
    mesh_liveness_first_probe (self->liveness, now + self->heartbeat_ms);
    const char *host = self->bind_host [0]? self->bind_host
                     : mesh_discovery_host (self->discovery)
                     ? mesh_discovery_host (self->discovery): "127.0.0.1";
    char bind [160];
    if (self->bind_port)
        snprintf (bind, sizeof bind, "tcp://%s:%d", host, self->bind_port);
    else
        snprintf (bind, sizeof bind, "tcp://%s:*", host);
    self->inbox = zmq_socket (self->ctx, ZMQ_ROUTER);
    int on = 1, zero = 0, hwm = MESH_INBOX_RCVHWM;
    zmq_setsockopt (self->inbox, ZMQ_ROUTER_HANDOVER, &on, sizeof on);
    zmq_setsockopt (self->inbox, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (self->inbox, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (mesh_security_inbox (self->security, self->ctx, self->inbox, self->hex))
        goto failed;
    if (zmq_bind (self->inbox, bind) != 0) {
        mesh_fail (MESH_ESYS, "cannot bind inbox to %s: %s", bind, zmq_strerror (errno));
        goto failed;
    }
    size_t len = sizeof self->endpoint;
    zmq_getsockopt (self->inbox, ZMQ_LAST_ENDPOINT, self->endpoint, &len);
    mesh_discovery_bound (self->discovery, self->endpoint);
    len = sizeof self->inbox_fd;
    zmq_getsockopt (self->inbox, ZMQ_FD, &self->inbox_fd, &len);
    self->app_last = mesh_mono_ms ();
    self->view_changed = self->app_last;
    self->started = true;
    self->started_ms = mesh_mono_ms ();
    if (pthread_create (&self->keeper, NULL, mesh_node_keeper, self) != 0) {
        self->started = false;
        mesh_fail (MESH_ESYS, "cannot start the keeper thread");
        goto failed;
    }
    self->keeper_running = true;
    mesh_node_log (self, "started %s at %s, cluster %s", self->hex, self->endpoint, self->cluster);
    return 0;

failed:
    if (self->inbox)
        zmq_close (self->inbox);
    self->inbox = NULL;
    mesh_discovery_stop (self->discovery);
    mesh_security_stop (self->security);
    zmq_ctx_term (self->ctx);
    self->ctx = NULL;
    if (self->monitor_ep >= 0)
        close (self->monitor_ep);
    self->monitor_ep = -1;
    self->stopping = true;      //  a node that failed to start cannot be reused
    return -1;
}

int
mesh_node_stop (mesh_node_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    if (!self->started || self->stopping) {
        pthread_mutex_unlock (&self->lock);
        return 0;
    }
    self->stopping = true;
    //  BYE on every link, then let the links flush for up to the linger time
    mesh_head_t bye = { .kind = MESH_KIND_BYE };
    int linger = MESH_DEFAULT_LINGER;
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers); peer;
         peer = (mesh_peer_t *) zhashx_next (self->peers)) {
        //  a peer still CONNECTING here may count us ALIVE already: it
        //  had our HELLO, and only a BYE tells it we left (not "closed")
        if (peer->state != MESH_PEER_CONNECTING || peer->hello_sent)
            mesh_node_send_locked (self, peer, &bye, NULL, 0);
        mesh_node_flush (self, peer);
        zmq_setsockopt (peer->dealer, ZMQ_LINGER, &linger, sizeof linger);
    }
    self->app_signalled = true;         //  written just below, after the unlock
    pthread_mutex_unlock (&self->lock);
    mesh_node_signal (self->keeper_fd);
    mesh_node_signal (self->app_fd);
    if (self->keeper_running)
        pthread_join (self->keeper, NULL);
    self->keeper_running = false;
    pthread_mutex_lock (&self->lock);
    mesh_discovery_stop (self->discovery);
    self->hot_send = self->hot_recv = NULL;
    zhashx_purge (self->peers);
    self->connecting = 0;
    zmq_close (self->inbox);
    self->inbox = NULL;
    mesh_security_stop (self->security);
    if (self->monitor_ep >= 0)
        close (self->monitor_ep);
    self->monitor_ep = -1;
    void *ctx = self->ctx;
    self->ctx = NULL;
    self->started = false;
    pthread_mutex_unlock (&self->lock);
    zmq_ctx_term (ctx);     //  waits for the lingering links to flush
    return 0;
}

//  ---------------------------------------------------------------------
//  Hooks and announcements

int
mesh_node_on_kind (mesh_node_t *self, int kind, mesh_handler_fn *fn, void *arg)
{
    assert (self);
    if (kind < MESH_KIND_DIRECT || kind > 255 || kind == MESH_KIND_STATS_REQ
    ||  kind == MESH_KIND_STATS_REP)
        return mesh_fail (MESH_EINVAL, "kind %d is the core's or out of range", kind);
    pthread_mutex_lock (&self->lock);
    const char *owner = self->kinds [kind].owner;
    if (!owner)
        self->kinds [kind] = (mesh_kind_hook_t) { .fn = fn, .arg = arg };
    pthread_mutex_unlock (&self->lock);
    if (owner) {
        //  a kind has one owner: replacing a pattern's handler would cut
        //  the pattern off without a word
        mesh_log (MESH_LOG_ERROR, self->name, "kind %d is pattern %s's: handler refused",
                  kind, owner);
        return mesh_fail (MESH_EINVAL, "kind %d is pattern %s's", kind, owner);
    }
    return 0;
}

int
mesh_node_on_peer (mesh_node_t *self, mesh_peer_fn *fn, void *arg)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    if (!fn) {
        size_t kept = 0;
        for (size_t i = 0; i < self->peer_hook_count; i++)
            if (self->peer_hook_args [i] != arg) {
                self->peer_hooks [kept] = self->peer_hooks [i];
                self->peer_hook_args [kept++] = self->peer_hook_args [i];
            }
        self->peer_hook_count = kept;
    }
    else
    if (self->peer_hook_count == MESH_MAX_HOOKS)
        rc = mesh_fail (MESH_EFULL, "at most %d peer hooks", MESH_MAX_HOOKS);
    else {
        self->peer_hooks [self->peer_hook_count] = fn;
        self->peer_hook_args [self->peer_hook_count++] = arg;
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
mesh_node_on_tick (mesh_node_t *self, int interval_ms, mesh_tick_fn *fn, void *arg)
{
    assert (self);
    if (!fn) {
        pthread_mutex_lock (&self->lock);
        size_t kept = 0;
        for (size_t i = 0; i < self->tick_count; i++)
            if (self->ticks [i].arg != arg)
                self->ticks [kept++] = self->ticks [i];
        self->tick_count = kept;
        pthread_mutex_unlock (&self->lock);
        return 0;
    }
    if (interval_ms < 1)
        return mesh_fail (MESH_EINVAL, "tick interval must be >= 1 ms");
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    if (self->tick_count == MESH_MAX_HOOKS)
        rc = mesh_fail (MESH_EFULL, "at most %d tick hooks", MESH_MAX_HOOKS);
    else
        self->ticks [self->tick_count++] = (mesh_tick_hook_t) {
            .interval = interval_ms, .next = mesh_mono_ms () + interval_ms, .fn = fn, .arg = arg
        };
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
mesh_node_announce (mesh_node_t *self, const char *key, const void *value, size_t size)
{
    assert (self);
    if (!key || !*key || strlen (key) > MESH_MAX_SUBJECT)
        return mesh_fail (MESH_EINVAL, "announcement key must be 1..255 bytes");
    if (size > MESH_MAX_BODY)
        return mesh_fail (MESH_ETOOBIG, "announcement too big");
    pthread_mutex_lock (&self->lock);
    //  peers get what changed since the value before (mesh_node_announce.c)
    zchunk_t *old = (zchunk_t *) zhashx_lookup (self->announce, key);
    if (!mesh_node_announce_out (self, key, old, value, size))
        zhashx_update (self->announce, key, zchunk_new (value, size));
    pthread_mutex_unlock (&self->lock);
    return 0;
}

void *
mesh_node_peer_announcement (mesh_node_t *self, const char *peer, const char *key,
                             size_t *size)
{
    uint64_t serial;
    return mesh_node_peer_announcement_serial (self, peer, key, size, &serial);
}

void *
mesh_node_peer_announcement_serial (mesh_node_t *self, const char *peer, const char *key,
                                    size_t *size, uint64_t *serial)
{
    assert (self);
    void *copy = NULL;
    pthread_mutex_lock (&self->lock);
    mesh_peer_t *p = (mesh_peer_t *) zhashx_lookup (self->peers, peer);
    *serial = p? p->serial: 0;
    zchunk_t *value = p? (zchunk_t *) zhashx_lookup (p->announce, key): NULL;
    if (value) {
        copy = malloc (zchunk_size (value) + 1);
        memcpy (copy, zchunk_data (value), zchunk_size (value));
        ((char *) copy) [zchunk_size (value)] = 0;
        if (size)
            *size = zchunk_size (value);
    }
    pthread_mutex_unlock (&self->lock);
    return copy;
}

int64_t
mesh_node_discovery_quiet_ms (mesh_node_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    int64_t quiet = !self->started? -1
                  : self->connecting? 0
                  : mesh_mono_ms () - self->view_changed;
    pthread_mutex_unlock (&self->lock);
    return quiet;
}

uint64_t
mesh_node_generation (mesh_node_t *self)
{
    assert (self);
    return __atomic_load_n (&self->generation, __ATOMIC_ACQUIRE);
}
