/*  =========================================================================
    mesh_node - a meshbus node: links, inbox, dispatch and the keeper

    Sockets: one ROUTER inbox bound on an ephemeral TCP port, and one DEALER
    per peer connected to that peer's inbox (Zyre's "Harmony" pattern). A
    DEALER presents a 17-byte routing id (type byte + our node id) so the
    peer's ROUTER tells who sent each frame without a field in the header.
    Measured here: DEALER->ROUTER passes 2.1 M msg/s at 100 B, the same as
    raw PUB->SUB, so the identity frame costs nothing we can see.

    Threading (why there is no actor): every socket is touched only with
    node->lock held. The application's thread sends directly on the peer's
    DEALER and, in mesh_node_dispatch(), reads the ROUTER and runs the
    handler itself, releasing the lock around every handler and hook. The
    keeper thread sends beacons and heartbeats and judges liveness; it reads
    the inbox only while the application is not dispatching (no call for
    MESH_APP_ACTIVE_MS, nobody waiting, and every thread in dispatch inside
    a handler), handling control frames itself
    and queueing the rest, so a node whose handler runs for a minute still
    answers as alive. dispatch() serves that queue before the inbox, which
    keeps per-link order. In between (dispatched lately, but neither in
    dispatch nor waiting in it: an application polling mesh_node_fd() in its
    own loop) the keeper watches the inbox and wakes the application
    through that fd, without reading it. Both threads may poll(2) the inbox's ZMQ_FD
    without the lock: it is only a kernel fd; every zmq call is locked.
    ========================================================================= */

#include "mesh_node_int.h"
#include <sys/eventfd.h>
#include <poll.h>
#include <stdarg.h>
#include <sodium.h>
#include <sys/resource.h>

#define MESH_DISPATCH_BATCH 4096    //  messages per dispatch call before returning

//  ---------------------------------------------------------------------
//  Construction and configuration

static void
s_chunk_free (void **item)
{
    zchunk_destroy ((zchunk_t **) item);
}

//  Peer ids are 32 random hex chars, looked up on every message sent and
//  received: czmq's default hash walks every byte with a multiply chain
//  (~10% of a 100 B message's cost). Two 8-byte loads of a random id hash
//  as well; other strings (an application's typo) take the byte walk.
static size_t
s_peer_hash (const void *key)
{
    const char *text = (const char *) key;
    uint64_t a, b;
    if (strnlen (text, 32) < 32) {
        uint64_t hash = 14695981039346656037ull;
        while (*text)
            hash = (hash ^ (uint8_t) *text++) * 1099511628211ull;
        return (size_t) hash;
    }
    memcpy (&a, text, 8);
    memcpy (&b, text + 8, 8);
    return (size_t) ((a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull >> 7);
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
    self->seeds = zlistx_new ();
    zlistx_set_destructor (self->seeds, (zlistx_destructor_fn *) zstr_free);
    self->peers = zhashx_new ();
    zhashx_set_key_hasher (self->peers, s_peer_hash);
    zhashx_set_destructor (self->peers, (zhashx_destructor_fn *) mesh_peer_destroy);
    self->rate = zhashx_new ();
    zhashx_set_destructor (self->rate, (zhashx_destructor_fn *) zstr_free);
    self->queue = zlistx_new ();
    self->raw_events = zlistx_new ();
    self->events = zlistx_new ();
    zlistx_set_destructor (self->raw_events, (zlistx_destructor_fn *) mesh_event_destroy);
    zlistx_set_destructor (self->events, (zlistx_destructor_fn *) mesh_event_destroy);
    self->counters = mesh_counters_new ();
    self->departed = mesh_departed_new ();
    self->peer_stats = zhashx_new ();
    zhashx_set_destructor (self->peer_stats, (zhashx_destructor_fn *) zstr_free);
    self->app_fd = -1;
    self->keeper_fd = -1;
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
    mesh_node_stop (self);
    mesh_queued_t *q;
    while ((q = (mesh_queued_t *) zlistx_detach (self->queue, NULL)))
        s_queued_destroy (&q);
    zlistx_destroy (&self->queue);
    zlistx_destroy (&self->raw_events);
    zlistx_destroy (&self->events);
    zhashx_destroy (&self->peers);
    mesh_departed_destroy (&self->departed);
    zhashx_destroy (&self->rate);
    zhashx_destroy (&self->headers);
    zhashx_destroy (&self->announce);
    zhashx_destroy (&self->peer_stats);
    zlistx_destroy (&self->seeds);
    mesh_counters_destroy (&self->counters);
    free (self->ifaces);
    free (self->trust_dir);
    sodium_memzero (self->secret_key, sizeof self->secret_key);
    sodium_memzero (&self->secret, sizeof self->secret);
    if (self->app_fd >= 0)
        close (self->app_fd);
    if (self->keeper_fd >= 0)
        close (self->keeper_fd);
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
    if (!self->verbose)
        return;
    char line [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    fprintf (stderr, "meshbus[%s]: %s\n", self->name, line);
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
//  Events

static void
s_signal (int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && write (fd, &one, sizeof one) < 0) {
        //  an eventfd only fails when its counter would overflow: it is set
    }
}

//  Wake the application. Lock held. The flag lets dispatch skip the
//  read(2) of an eventfd nobody wrote (one syscall per dispatch call).
static void
s_wake_app (mesh_node_t *self)
{
    self->app_signalled = true;
    s_signal (self->app_fd);
}

void
mesh_node_raise (mesh_node_t *self, int type, mesh_peer_t *peer, const char *detail)
{
    mesh_event_t *event = mesh_event_new (type, NULL, peer? peer->hex: NULL,
                                          peer? peer->name: NULL,
                                          peer? peer->endpoint: NULL, detail, 0);
    if (!event)
        return;
    mesh_node_log (self, "%s %s %s %s", mesh_event_name (event), event->peer_name,
                   event->endpoint, event->detail);
    if (zlistx_size (self->raw_events) >= self->event_max) {
        mesh_counters_add (self->counters, "events.dropped", 1);
        mesh_event_destroy (&event);
        return;
    }
    zlistx_add_end (self->raw_events, event);
    s_wake_app (self);
}

int
mesh_node_post_event (mesh_node_t *self, int type, const char *name,
                      const char *peer, const char *detail, uint64_t count)
{
    assert (self);
    if (type < MESH_EVENT_PATTERN)
        return mesh_fail (MESH_EINVAL, "pattern events start at MESH_EVENT_PATTERN");
    mesh_event_t *event = mesh_event_new (type, name, peer, NULL, NULL, detail, count);
    if (!event)
        return mesh_fail (MESH_ESYS, "out of memory");
    pthread_mutex_lock (&self->lock);
    if (peer) {
        mesh_peer_t *p = (mesh_peer_t *) zhashx_lookup (self->peers, peer);
        if (p) {
            snprintf (event->peer_name, sizeof event->peer_name, "%s", p->name);
            snprintf (event->endpoint, sizeof event->endpoint, "%s", p->endpoint);
        }
    }
    int rc = 0;
    //  Pattern events skip the peer hooks: they go to the application
    if (zlistx_size (self->events) >= self->event_max) {
        mesh_counters_add (self->counters, "events.dropped", 1);
        mesh_event_destroy (&event);
        rc = mesh_fail (MESH_EFULL, "event queue full");
    }
    else {
        zlistx_add_end (self->events, event);
        s_wake_app (self);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

//  Run peer hooks on raw events and hand them to the application. Called
//  with the lock held; releases it around each hook. Returns events moved.
static int
s_run_raw_events (mesh_node_t *self)
{
    int moved = 0;
    mesh_event_t *event;
    while ((event = (mesh_event_t *) zlistx_detach (self->raw_events, NULL))) {
        //  the count is read again after each hook: a hook may remove hooks
        for (size_t i = 0; i < self->peer_hook_count; i++) {
            mesh_peer_fn *fn = self->peer_hooks [i];
            void *arg = self->peer_hook_args [i];
            self->in_hooks++;
            pthread_mutex_unlock (&self->lock);
            fn (self, event, arg);
            pthread_mutex_lock (&self->lock);
            self->in_hooks--;
        }
        if (zlistx_size (self->events) >= self->event_max) {
            mesh_counters_add (self->counters, "events.dropped", 1);
            mesh_event_destroy (&event);
        }
        else
            zlistx_add_end (self->events, event);
        moved++;
    }
    return moved;
}

mesh_event_t *
mesh_node_event (mesh_node_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    s_run_raw_events (self);
    mesh_event_t *event = (mesh_event_t *) zlistx_detach (self->events, NULL);
    pthread_mutex_unlock (&self->lock);
    return event;
}

mesh_event_t *
mesh_node_wait_event (mesh_node_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = mesh_mono_ms () + timeout_ms;
    while (true) {
        mesh_event_t *event = mesh_node_event (self);
        if (event)
            return event;
        int64_t left = timeout_ms < 0? -1: deadline - mesh_mono_ms ();
        if (timeout_ms >= 0 && left <= 0)
            return NULL;
        if (mesh_node_dispatch (self, (int) left) < 0)
            return NULL;
    }
}

//  ---------------------------------------------------------------------
//  Sending

//  Build the header frame (and body frame for large bodies) outside the
//  lock. Returns the number of frames (1 or 2) or -1.
static int
s_build (const mesh_head_t *head, const void *body, size_t size, void *data,
         mesh_free_fn *free_fn, void *hint, zmq_msg_t *frames)
{
    mesh_envelope_t env;
    if (mesh_msg_head_envelope (&env, head))
        return -1;
    if (size > MESH_MAX_BODY)
        return mesh_fail (MESH_ETOOBIG, "body of %zu bytes exceeds %d", size, MESH_MAX_BODY);
    bool framed = size > MESH_MAX_INLINE_BODY;
    const void *inline_body = data? data: body;
    env.body.ptr = framed? NULL: (const uint8_t *) inline_body;
    env.body.len = framed? 0: (uint32_t) size;
    if (framed)
        env.flags |= MESH_FLAG_FRAMES;
    //  A small envelope is encoded on the stack and copied: one pass of the
    //  encoder instead of sizing then encoding (~85 instructions a send)
    uint8_t small [512];
    size_t hsize = env.body.len <= 256? mesh_envelope_encode (&env, small, sizeof small): 0;
    if (hsize) {
        zmq_msg_init_size (&frames [0], hsize);
        memcpy (zmq_msg_data (&frames [0]), small, hsize);
    }
    else {
        hsize = mesh_envelope_size (&env);
        if (hsize == 0)         //  a field breaks a limit
            return mesh_fail (MESH_ETOOBIG, "a subject, header or content type breaks a limit");
        zmq_msg_init_size (&frames [0], hsize);
        if (mesh_envelope_encode (&env, zmq_msg_data (&frames [0]), hsize) != hsize) {
            zmq_msg_close (&frames [0]);
            return mesh_fail (MESH_ETOOBIG, "a subject, header or content type breaks a limit");
        }
    }
    if (!framed)
        return 1;
    if (data)
        zmq_msg_init_data (&frames [1], data, size, free_fn, hint);
    else {
        zmq_msg_init_size (&frames [1], size);
        memcpy (zmq_msg_data (&frames [1]), body, size);
    }
    return 2;
}

//  Send built frames on the peer's link. Lock held. Closes the frames.
static int
s_send_frames (mesh_node_t *self, mesh_peer_t *peer, zmq_msg_t *frames, int nframes)
{
    size_t bytes = 0;
    for (int i = 0; i < nframes; i++)
        bytes += zmq_msg_size (&frames [i]);
    int rc = 0;
    for (int i = 0; i < nframes; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < nframes? ZMQ_SNDMORE: 0);
        if (zmq_msg_send (&frames [i], peer->dealer, flags) < 0) {
            //  Only the first frame can fail: libzmq accepts the rest of a
            //  message whose first frame it took.
            rc = errno == EAGAIN? MESH_EAGAIN: MESH_ESYS;
            mesh_peer_count (self, peer, rc == MESH_EAGAIN? "send.dropped.hwm": "send.dropped.error");
            for (int j = i; j < nframes; j++)
                zmq_msg_close (&frames [j]);
            return mesh_fail (rc, "link to %s: %s", peer->name,
                              rc == MESH_EAGAIN? "high-water mark reached": zmq_strerror (errno));
        }
    }
    peer->frames_out++;
    peer->bytes_out += bytes;
    self->frames_out++;
    return rc;
}

static mesh_peer_t *
s_live_peer (mesh_node_t *self, const char *peer)
{
    mesh_peer_t *p = self->hot_send;
    if (!peer)
        p = NULL;
    else
    if (!p || strcmp (p->hex, peer) != 0)
        self->hot_send = p = (mesh_peer_t *) zhashx_lookup (self->peers, peer);
    if (!p || p->state == MESH_PEER_CONNECTING) {
        mesh_fail (MESH_ENOPEER, "no live peer %s", peer? peer: "(null)");
        return NULL;
    }
    return p;
}

int
mesh_node_send_locked (mesh_node_t *self, mesh_peer_t *peer, const mesh_head_t *head,
                       const void *body, size_t size)
{
    zmq_msg_t frames [2];
    int nframes = s_build (head, body, size, NULL, NULL, NULL, frames);
    if (nframes < 0)
        return -1;
    return s_send_frames (self, peer, frames, nframes);
}

static int
s_send (mesh_node_t *self, const char *peer, const mesh_head_t *head, const void *body,
        size_t size, void *data, mesh_free_fn *free_fn, void *hint)
{
    assert (self);
    assert (head);
    zmq_msg_t frames [2];
    int nframes = s_build (head, body, size, data, free_fn, hint, frames);
    if (nframes < 0) {
        if (data && free_fn)
            free_fn (data, hint);       //  we took it over, even on failure
        return -1;
    }
    if (data && nframes == 1 && free_fn)
        free_fn (data, hint);           //  copied inline: release it now
    pthread_mutex_lock (&self->lock);
    int rc;
    mesh_peer_t *p = self->started && !self->stopping? s_live_peer (self, peer): NULL;
    if (!p) {
        if (!self->started || self->stopping)
            mesh_fail (MESH_ECLOSED, "node is not running");
        mesh_counters_add (self->counters, "send.dropped.no-peer", 1);
        for (int i = 0; i < nframes; i++)
            zmq_msg_close (&frames [i]);
        rc = -1;
    }
    else
        rc = s_send_frames (self, p, frames, nframes);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
mesh_node_send (mesh_node_t *self, const char *peer, const mesh_head_t *head,
                const void *body, size_t size)
{
    return s_send (self, peer, head, body, size, NULL, NULL, NULL);
}

int
mesh_node_send_zc (mesh_node_t *self, const char *peer, const mesh_head_t *head,
                   void *data, size_t size, mesh_free_fn *free_fn, void *hint)
{
    return s_send (self, peer, head, NULL, size, data, free_fn, hint);
}

int
mesh_node_whisper (mesh_node_t *self, const char *peer, const char *subject,
                   const void *body, size_t size)
{
    mesh_head_t head = { .kind = MESH_KIND_DIRECT, .subject = subject };
    return mesh_node_send (self, peer, &head, body, size);
}

int
mesh_node_send_hello (mesh_node_t *self, void *socket, bool reply_wanted)
{
    const char *pairs [2 * MESH_MAX_HEADERS];
    size_t count = 0;
    for (const char *value = (const char *) zhashx_first (self->headers);
         value && count < MESH_MAX_HEADERS - MESH_RESERVED_HEADERS;
         value = (const char *) zhashx_next (self->headers)) {
        pairs [2 * count] = (const char *) zhashx_cursor (self->headers);
        pairs [2 * count + 1] = value;
        count++;
    }
    char storage [2][80];
    count = mesh_security_hello_headers (self, pairs, count, storage);
    mesh_head_t head = {
        .kind = MESH_KIND_HELLO,
        .flags = reply_wanted? MESH_FLAG_REPLY_WANTED: 0,
        .seq = (uint64_t) self->suspect_ms,     //  so peers heartbeat often enough
        .id = self->incarnation,
        .subject = self->name,
        .reply = self->endpoint,
        .headers = pairs,
        .header_count = count
    };
    zmq_msg_t frames [2];
    int nframes = s_build (&head, NULL, 0, NULL, NULL, NULL, frames);
    if (nframes < 0)
        return -1;
    int rc = zmq_msg_send (&frames [0], socket, ZMQ_DONTWAIT);
    if (rc < 0)
        zmq_msg_close (&frames [0]);
    return rc < 0? -1: 0;
}

//  Our HELLO then every announcement, in order, on a peer's link.
static void
s_greet (mesh_node_t *self, mesh_peer_t *peer)
{
    if (mesh_node_send_hello (self, peer->dealer, true) == 0) {
        peer->hello_sent = true;
        peer->frames_out++;
        self->frames_out++;
    }
    for (zchunk_t *value = (zchunk_t *) zhashx_first (self->announce); value;
         value = (zchunk_t *) zhashx_next (self->announce)) {
        mesh_head_t head = { .kind = MESH_KIND_UPDATE,
                             .subject = (const char *) zhashx_cursor (self->announce) };
        mesh_node_send_locked (self, peer, &head, zchunk_data (value), zchunk_size (value));
    }
}

//  ---------------------------------------------------------------------
//  Peers

mesh_peer_t *
mesh_node_add_peer (mesh_node_t *self, const uint8_t *id, const char *endpoint,
                    const uint8_t *key, const char *source)
{
    char hex [33];
    mesh_hex (id, MESH_ID_SIZE, hex);
    if (memcmp (id, self->id, MESH_ID_SIZE) == 0)
        return NULL;
    mesh_peer_t *peer = (mesh_peer_t *) zhashx_lookup (self->peers, hex);
    if (peer)
        return peer;
    char host [128];
    int port;
    if (mesh_parse_endpoint (endpoint, host, sizeof host, &port)) {
        mesh_counters_add (self->counters, "peers.refused.bad-endpoint", 1);
        return NULL;
    }
    if (zhashx_size (self->peers) >= self->max_peers) {
        mesh_counters_add (self->counters, "peers.refused.table-full", 1);
        return NULL;
    }
    if (self->connecting >= MESH_MAX_CONNECTING) {
        mesh_counters_add (self->counters, "peers.refused.backlog-full", 1);
        return NULL;
    }
    if (self->curve && !key) {
        mesh_counters_add (self->counters, "peers.refused.no-key", 1);
        return NULL;
    }
    void *dealer = zmq_socket (self->ctx, ZMQ_DEALER);
    if (!dealer) {
        mesh_counters_add (self->counters, "peers.refused.no-socket", 1);
        return NULL;
    }
    int linger = 0, hwm = self->hwm, ivl = 100, ivl_max = 2000;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt (dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt (dealer, ZMQ_ROUTING_ID, self->routing_id, MESH_ROUTING_ID_SIZE);
    if (mesh_security_client (self, dealer, key) || zmq_connect (dealer, endpoint) != 0) {
        zmq_close (dealer);
        mesh_counters_add (self->counters, "peers.refused.connect", 1);
        return NULL;
    }
    peer = mesh_peer_new (id, endpoint);
    peer->dealer = dealer;
    mesh_departed_restore (self->departed, peer);
    if (key) {
        peer->has_key = true;
        memcpy (peer->key, key, MESH_KEY_SIZE);
    }
    zhashx_insert (self->peers, hex, peer);
    self->connecting++;
    mesh_counters_add (self->counters, "peers.discovered", 1);
    mesh_node_log (self, "link to %s at %s (from %s)", hex, endpoint, source);
    s_greet (self, peer);
    return peer;
}

void
mesh_node_remove_peer (mesh_node_t *self, mesh_peer_t *peer, const char *reason)
{
    if (peer->state == MESH_PEER_CONNECTING) {
        self->connecting--;
        mesh_counters_add (self->counters, "peers.connect-failed", 1);
    }
    else {
        mesh_counters_add (self->counters, "peers.exited", 1);
        mesh_node_raise (self, MESH_EVENT_EXIT, peer, reason);
    }
    //  what was counted for it stays readable under its id; a peer that
    //  never got past CONNECTING is kept only if it counted something
    if ((peer->state != MESH_PEER_CONNECTING || mesh_counters_size (peer->counters))
    &&  mesh_departed_keep (self->departed, peer, reason))
        mesh_counters_add (self->counters, "peers.departed-forgotten", 1);
    self->hot_send = self->hot_recv = NULL;
    zhashx_delete (self->peers, peer->hex);
    __atomic_add_fetch (&self->generation, 1, __ATOMIC_RELEASE);
}

//  ---------------------------------------------------------------------
//  Inbox

//  Read one message from a socket without waiting: routing id into rid,
//  the rest into frames. Returns the number of frames after the routing
//  id, 0 if nothing was waiting, -1 if the message was malformed (and
//  drained).
//
//  A read that ends in EAGAIN has processed every command in the socket's
//  mailbox, so from then on ZMQ_FD (level-triggered at the kernel: an
//  eventfd) becomes readable when anything new arrives. inbox_idle says
//  that no zmq call has touched the inbox since such a read, so a waiter
//  may poll ZMQ_FD straight away instead of reading once more first (the
//  read costs a poll(2) and a getpid(2) inside libzmq).
static int
s_read (mesh_node_t *self, zmq_msg_t *rid, zmq_msg_t *frames)
{
    zmq_msg_init (rid);
    if (zmq_msg_recv (rid, self->inbox, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (rid);
        self->inbox_idle = errno == EAGAIN;
        return 0;
    }
    self->inbox_idle = false;
    int n = 0;
    bool overflow = false;
    int more = zmq_msg_more (rid);
    while (more) {
        zmq_msg_t *into = n < 1 + MESH_MAX_FRAMES? &frames [n]: NULL;
        zmq_msg_t spare;
        if (!into) {
            into = &spare;
            overflow = true;
        }
        zmq_msg_init (into);
        zmq_msg_recv (into, self->inbox, 0);
        more = zmq_msg_more (into);
        if (into == &spare)
            zmq_msg_close (&spare);
        else
            n++;
    }
    if (overflow || n == 0) {
        for (int i = 0; i < n; i++)
            zmq_msg_close (&frames [i]);
        mesh_counters_add (self->counters, overflow? "malformed.too-many-frames": "malformed.empty", 1);
        zmq_msg_close (rid);
        return -1;
    }
    return n;
}

static void
s_on_hello (mesh_node_t *self, const uint8_t *id, mesh_msg_t *msg)
{
    if (memcmp (id, self->id, MESH_ID_SIZE) == 0) {
        mesh_counters_add (self->counters, "hello.ignored.self", 1);
        return;
    }
    //  The advertised endpoint; a wildcard host means "the address you see"
    char endpoint [128], host [128];
    int port;
    if (mesh_parse_endpoint (msg->reply, host, sizeof host, &port)) {
        mesh_counters_add (self->counters, "malformed.hello-endpoint", 1);
        return;
    }
    if (strcmp (host, "0.0.0.0") == 0) {
        const char *seen = zmq_msg_gets (&msg->frames [0], "Peer-Address");
        if (!seen || strlen (seen) > 64) {
            mesh_counters_add (self->counters, "malformed.hello-endpoint", 1);
            return;
        }
        snprintf (host, sizeof host, "%s", seen);
    }
    snprintf (endpoint, sizeof endpoint, "tcp://%s:%d", host, port);
    uint8_t key [MESH_KEY_SIZE];
    bool has_key = false;
    if (!mesh_security_hello (self, id, msg, key, &has_key))
        return;
    char hex [33];
    mesh_hex (id, MESH_ID_SIZE, hex);
    mesh_peer_t *peer = (mesh_peer_t *) zhashx_lookup (self->peers, hex);
    if (peer && has_key && peer->has_key && sodium_memcmp (peer->key, key, MESH_KEY_SIZE)) {
        //  Another key claims this id. The one we linked to proved its key
        //  in the handshake of our link, so the newcomer is not believed.
        mesh_counters_add (self->counters, "hello.refused.key-mismatch", 1);
        mesh_security_warn (self, 3, "a HELLO with another key claims to be %s: refused", hex);
        return;
    }
    if (peer && peer->incarnation && peer->incarnation != msg->env.id) {
        mesh_node_remove_peer (self, peer, "restarted");
        peer = NULL;
    }
    bool greeted = false;
    if (!peer) {
        peer = mesh_node_add_peer (self, id, endpoint, has_key? key: NULL, "hello");
        if (!peer)
            return;
        greeted = true;
    }
    if (self->curve)
        mesh_security_frame (self, peer, msg);
    if ((msg->env.flags & MESH_FLAG_REPLY_WANTED) && !greeted) {
        if (mesh_node_send_hello (self, peer->dealer, false) == 0) {
            peer->frames_out++;
            self->frames_out++;
        }
    }
    peer->incarnation = msg->env.id;
    //  HELLO's seq is the sender's suspect timeout: speak at 4x that rate
    if (msg->env.seq >= 50 && msg->env.seq <= 3600000)
        peer->heartbeat_ms = (int) (msg->env.seq / 4);
    //  names are for people: keep printable bytes only
    size_t j = 0;
    for (size_t i = 0; msg->subject [i] && j < sizeof peer->name - 1; i++)
        if ((unsigned char) msg->subject [i] >= 0x20 && msg->subject [i] != 0x7f)
            peer->name [j++] = msg->subject [i];
    if (j)
        peer->name [j] = 0;
    zhashx_purge (peer->headers);
    for (uint32_t i = 0; i < msg->env.header_count; i++) {
        char hkey [MESH_MAX_HEADER_KEY + 1];
        size_t klen = msg->env.header_key [i].len;
        memcpy (hkey, msg->env.header_key [i].ptr, klen);
        hkey [klen] = 0;
        if (strncmp (hkey, "meshbus.", 8) == 0)
            continue;           //  reserved: security fields, not the application's
        zhashx_update (peer->headers, hkey, strndup ((const char *) msg->env.header_value [i].ptr,
                                                    msg->env.header_value [i].len));
    }
    if (peer->state == MESH_PEER_CONNECTING) {
        peer->state = MESH_PEER_ALIVE;
        self->connecting--;
        mesh_counters_add (self->counters, "peers.entered", 1);
        __atomic_add_fetch (&self->generation, 1, __ATOMIC_RELEASE);
        mesh_node_raise (self, MESH_EVENT_ENTER, peer, NULL);
        mesh_discovery_gossip_to (self, peer, NULL);
    }
}

static void
s_on_update (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg)
{
    if (!msg->subject [0]) {
        mesh_peer_count (self, peer, "malformed.update");
        return;
    }
    const void *body = mesh_msg_body (msg);
    zhashx_update (peer->announce, msg->subject, zchunk_new (body, msg->size));
    __atomic_add_fetch (&self->generation, 1, __ATOMIC_RELEASE);
    mesh_node_raise (self, MESH_EVENT_UPDATE, peer, msg->subject);
}

static void
s_on_stats_request (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg);

//  Handle a decoded message. Returns true if it goes to a kind handler
//  (the caller delivers it), false if the core consumed it. Lock held.
static bool
s_accept (mesh_node_t *self, const uint8_t *rid, size_t rid_size, mesh_msg_t *msg)
{
    if (rid_size != MESH_ROUTING_ID_SIZE
    ||  (rid [0] != MESH_ROUTING_LINK && rid [0] != MESH_ROUTING_PROBE)) {
        mesh_counters_add (self->counters, "malformed.routing-id", 1);
        return false;
    }
    const uint8_t *id = rid + 1;
    if (msg->env.kind == MESH_KIND_HELLO) {
        s_on_hello (self, id, msg);
        return false;
    }
    //  Messages come in runs from one sender: the last id's hex is kept
    //  (per thread, a pure function of the id) to save ~200 instructions
    static __thread uint8_t last_id [MESH_ID_SIZE];
    static __thread char last_hex [33];
    if (last_hex [0] && memcmp (id, last_id, MESH_ID_SIZE) == 0)
        memcpy (msg->sender, last_hex, sizeof last_hex);
    else {
        mesh_hex (id, MESH_ID_SIZE, msg->sender);
        memcpy (last_id, id, MESH_ID_SIZE);
        memcpy (last_hex, msg->sender, sizeof last_hex);
    }
    mesh_peer_t *peer = self->hot_recv;
    if (!peer || memcmp (peer->hex, msg->sender, 32) != 0)
        self->hot_recv = peer = (mesh_peer_t *) zhashx_lookup (self->peers, msg->sender);
    if (!peer || peer->state == MESH_PEER_CONNECTING || rid [0] != MESH_ROUTING_LINK) {
        //  a peer we removed (gone, restarted) or never met: it will be
        //  found again by beacon, seed or gossip; until then we drop
        mesh_counters_add (self->counters, "dropped.unknown-sender", 1);
        if (self->curve)
            mesh_security_stranger (self, msg);
        return false;
    }
    //  Only CURVE links have a key to check per connection: with a secret
    //  alone there is nothing to compare (and ZMQ_SRCFD costs ~220
    //  instructions a frame)
    if (self->curve && !mesh_security_frame (self, peer, msg))
        return false;
    peer->frames_in++;
    for (int i = 0; i < msg->nframes; i++)      //  wire bytes, as bytes.out counts them
        peer->bytes_in += zmq_msg_size (&msg->frames [i]);
    self->frames_in++;
    if (peer->state == MESH_PEER_SUSPECT) {
        peer->state = MESH_PEER_ALIVE;
        peer->last_heard = mesh_mono_ms ();
        mesh_node_raise (self, MESH_EVENT_BACK, peer, NULL);
    }
    switch (msg->env.kind) {
        case MESH_KIND_PING:
            return false;
        case MESH_KIND_BYE:
            mesh_node_remove_peer (self, peer, "bye");
            return false;
        case MESH_KIND_UPDATE:
            s_on_update (self, peer, msg);
            return false;
        case MESH_KIND_PEERS:
            mesh_discovery_peers_in (self, peer, &msg->env);
            return false;
        case MESH_KIND_STATS_REQ:
            s_on_stats_request (self, peer, msg);
            return false;
        case MESH_KIND_STATS_REP:
            if (msg->env.id == self->stats_request)
                zhashx_update (self->peer_stats, peer->hex,
                               strndup ((const char *) mesh_msg_body (msg), msg->size));
            return false;
        default:
            memcpy (msg->sender_name, peer->name, strlen (peer->name) + 1);  //  both 65 bytes
            if (msg->env.kind > 255 || !self->kinds [msg->env.kind].fn) {
                mesh_peer_count (self, peer, "dropped.no-handler");
                return false;
            }
            return true;
    }
}

static void
s_count_malformed (mesh_node_t *self, zmq_msg_t *rid, int rc)
{
    char name [64];
    snprintf (name, sizeof name, "malformed.%s", mesh_envelope_strerror (rc));
    for (char *c = name; *c; c++)
        if (*c == ' ')
            *c = '-';           //  "malformed.bad-type": counter names have no spaces
    mesh_peer_t *peer = NULL;
    if (zmq_msg_size (rid) == MESH_ROUTING_ID_SIZE) {
        char hex [33];
        mesh_hex ((const uint8_t *) zmq_msg_data (rid) + 1, MESH_ID_SIZE, hex);
        peer = (mesh_peer_t *) zhashx_lookup (self->peers, hex);
    }
    mesh_peer_count (self, peer, name);
}

//  Deliver a message to its kind handler without the lock. Lock held on
//  entry and exit.
static void
s_deliver (mesh_node_t *self, mesh_msg_t *msg)
{
    mesh_kind_hook_t hook = self->kinds [msg->env.kind];
    self->in_hooks++;
    pthread_mutex_unlock (&self->lock);
    hook.fn (self, msg, hook.arg);
    pthread_mutex_lock (&self->lock);
    self->in_hooks--;
}

//  Keeper: read what is waiting, handle control frames, queue the rest.
static void
s_keeper_drain (mesh_node_t *self)
{
    size_t queued = 0;
    while (zlistx_size (self->queue) < self->queue_max) {
        zmq_msg_t rid, frames [1 + MESH_MAX_FRAMES];
        int n = s_read (self, &rid, frames);
        if (n == 0)
            break;
        if (n < 0)
            continue;
        mesh_msg_t msg;
        int rc = mesh_msg_init (&msg, frames, n);
        if (rc != MESH_ENV_OK)
            s_count_malformed (self, &rid, rc);
        else
        if (s_accept (self, (const uint8_t *) zmq_msg_data (&rid), zmq_msg_size (&rid), &msg)) {
            mesh_queued_t *q = (mesh_queued_t *) malloc (sizeof (mesh_queued_t));
            q->nframes = msg.nframes;
            memcpy (q->sender, msg.sender, sizeof q->sender);
            for (int i = 0; i < msg.nframes; i++) {
                zmq_msg_init (&q->frames [i]);
                zmq_msg_move (&q->frames [i], &msg.frames [i]);
            }
            zlistx_add_end (self->queue, q);
            queued++;
        }
        if (rc == MESH_ENV_OK)
            mesh_msg_fini (&msg);
        zmq_msg_close (&rid);
    }
    if (queued) {
        s_wake_app (self);              //  once: a write(2) per message cost more than the rest
        mesh_counters_add (self->counters, "inbox.keeper-read", queued);
    }
}

//  The inbox is the application's while a thread waits in dispatch, or
//  reads in it (inside dispatch and not in a handler: if app_last is old,
//  that thread was only descheduled, and taking its inbox over would
//  decode everything twice), or dispatched lately. A handler that runs
//  long leaves it to the keeper, so the node still answers as alive.
static bool
s_app_active (mesh_node_t *self, int64_t now)
{
    return self->app_waiting > 0 || self->dispatching > self->in_hooks
        || now - self->app_last < MESH_APP_ACTIVE_MS;
}

static void *
s_keeper (void *arg)
{
    mesh_node_t *self = (mesh_node_t *) arg;
    pthread_mutex_lock (&self->lock);
    while (!self->stopping) {
        int timeout = mesh_discovery_tick (self);
        int64_t now = mesh_mono_ms ();
        bool own_inbox = !s_app_active (self, now);
        if (own_inbox)
            s_keeper_drain (self);
        bool queue_full = zlistx_size (self->queue) >= self->queue_max;
        if (!own_inbox && self->app_waiting == 0 && timeout > MESH_APP_ACTIVE_MS)
            timeout = MESH_APP_ACTIVE_MS;
        //  An application that dispatched lately but is neither in dispatch
        //  nor waiting in it (its own poll loop on mesh_node_fd, say) has
        //  nobody watching its inbox: watch it, and wake the application
        //  when something comes, without reading it. The inbox was read to
        //  EAGAIN (inbox_idle), so its fd signals anything new.
        bool watch = !own_inbox && self->dispatching == 0 && self->app_waiting == 0
                  && self->inbox_idle;
        struct pollfd fds [3] = {
            { .fd = self->keeper_fd, .events = POLLIN },
            { .fd = self->beacon && self->beacon_ivl? mesh_beacon_fd (self->beacon): -1,
              .events = POLLIN },
            { .fd = (own_inbox && !queue_full) || watch? self->inbox_fd: -1, .events = POLLIN },
        };
        pthread_mutex_unlock (&self->lock);
        poll (fds, 3, timeout);
        pthread_mutex_lock (&self->lock);
        if (watch && (fds [2].revents & POLLIN) && self->dispatching == 0
        &&  self->app_waiting == 0 && self->inbox_idle) {
            //  the next dispatch reads before it polls; no watch until then
            self->inbox_idle = false;
            s_wake_app (self);
        }
        if (fds [0].revents & POLLIN) {
            uint64_t value;
            if (read (self->keeper_fd, &value, sizeof value) < 0) {
                //  spurious: nothing to clear
            }
        }
        if (!self->stopping && (fds [1].revents & POLLIN))
            mesh_discovery_beacon_in (self);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
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
    self->routing_id [0] = MESH_ROUTING_LINK;
    memcpy (self->routing_id + 1, self->id, MESH_ID_SIZE);
    mesh_beacon_cluster_tag (self->cluster, self->tag);

    //  One socket per peer: make room for a full peer table
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit (RLIMIT_NOFILE, &rl);
    }
    self->ctx = zmq_ctx_new ();
    zmq_ctx_set (self->ctx, ZMQ_MAX_SOCKETS, (int) self->max_peers + 64
                 + (int) zlistx_size (self->seeds));
    zmq_ctx_set (self->ctx, ZMQ_BLOCKY, 0);
    self->app_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    self->keeper_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);

    //  the ZAP handler must be bound before the inbox accepts anyone
    if (mesh_security_start (self))
        goto failed;
    if (mesh_discovery_start (self))
        goto failed;
    const char *host = self->bind_host [0]? self->bind_host
                     : self->beacon? mesh_beacon_host (self->beacon): "127.0.0.1";
    char bind [160];
    if (self->bind_port)
        snprintf (bind, sizeof bind, "tcp://%s:%d", host, self->bind_port);
    else
        snprintf (bind, sizeof bind, "tcp://%s:*", host);
    self->inbox = zmq_socket (self->ctx, ZMQ_ROUTER);
    int on = 1, zero = 0, hwm = MESH_DEFAULT_SNDHWM;
    zmq_setsockopt (self->inbox, ZMQ_ROUTER_HANDOVER, &on, sizeof on);
    zmq_setsockopt (self->inbox, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (self->inbox, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (mesh_security_inbox (self, self->inbox))
        goto failed;
    if (zmq_bind (self->inbox, bind) != 0) {
        mesh_fail (MESH_ESYS, "cannot bind inbox to %s: %s", bind, zmq_strerror (errno));
        goto failed;
    }
    size_t len = sizeof self->endpoint;
    zmq_getsockopt (self->inbox, ZMQ_LAST_ENDPOINT, self->endpoint, &len);
    len = sizeof self->inbox_fd;
    zmq_getsockopt (self->inbox, ZMQ_FD, &self->inbox_fd, &len);
    self->app_last = mesh_mono_ms ();
    self->started = true;
    if (pthread_create (&self->keeper, NULL, s_keeper, self) != 0) {
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
    mesh_discovery_stop (self);
    mesh_security_stop (self);
    zmq_ctx_term (self->ctx);
    self->ctx = NULL;
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
        if (peer->state != MESH_PEER_CONNECTING)
            mesh_node_send_locked (self, peer, &bye, NULL, 0);
        zmq_setsockopt (peer->dealer, ZMQ_LINGER, &linger, sizeof linger);
    }
    self->app_signalled = true;         //  written just below, after the unlock
    pthread_mutex_unlock (&self->lock);
    s_signal (self->keeper_fd);
    s_signal (self->app_fd);
    if (self->keeper_running)
        pthread_join (self->keeper, NULL);
    self->keeper_running = false;
    pthread_mutex_lock (&self->lock);
    mesh_discovery_stop (self);
    self->hot_send = self->hot_recv = NULL;
    zhashx_purge (self->peers);
    self->connecting = 0;
    zmq_close (self->inbox);
    self->inbox = NULL;
    mesh_security_stop (self);
    void *ctx = self->ctx;
    self->ctx = NULL;
    self->started = false;
    pthread_mutex_unlock (&self->lock);
    zmq_ctx_term (ctx);     //  waits for the lingering links to flush
    return 0;
}

//  ---------------------------------------------------------------------
//  Dispatch

static int
s_run_ticks (mesh_node_t *self, int64_t now, int64_t *next)
{
    int ran = 0;
    for (size_t i = 0; i < self->tick_count; i++) {
        mesh_tick_hook_t *tick = &self->ticks [i];
        if (now >= tick->next) {
            tick->next = now + tick->interval;
            mesh_tick_fn *fn = tick->fn;
            void *arg = tick->arg;
            self->in_hooks++;
            pthread_mutex_unlock (&self->lock);
            fn (self, arg);
            pthread_mutex_lock (&self->lock);
            self->in_hooks--;
            ran++;
        }
        if (tick->next < *next)
            *next = tick->next;
    }
    return ran;
}

int
mesh_node_dispatch (mesh_node_t *self, int timeout_ms)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    if (!self->started || self->stopping) {
        pthread_mutex_unlock (&self->lock);
        return mesh_fail (MESH_ECLOSED, "node is not running");
    }
    int64_t now = mesh_mono_ms ();
    int64_t deadline = timeout_ms < 0? INT64_MAX: now + timeout_ms;
    int handled = 0;
    self->dispatching++;
    //  We handle everything ready now, so clear the fd's signal first:
    //  otherwise it stays readable after the work is done and an
    //  application polling mesh_node_fd() spins. What arrives from here on
    //  signals again; what we leave undone is signalled again below.
    uint64_t ignored;
    if (self->app_signalled) {
        self->app_signalled = false;
        if (read (self->app_fd, &ignored, sizeof ignored) < 0) {
            //  nothing was signalled
        }
    }
    //  Once per call, when the inbox was left idle (see s_read) and we are
    //  about to wait anyway, poll its fd without reading it first
    bool may_skip = timeout_ms != 0;
    while (!self->stopping && handled < MESH_DISPATCH_BATCH) {
        self->app_last = now;
        //  1. peer events (hooks first: patterns react before the app)
        if (zlistx_size (self->raw_events)) {
            handled += s_run_raw_events (self);
            continue;
        }
        //  2. what the keeper queued, before the inbox, to keep order
        mesh_queued_t *q = (mesh_queued_t *) zlistx_detach (self->queue, NULL);
        if (q) {
            mesh_msg_t msg;
            if (mesh_msg_init (&msg, q->frames, q->nframes) == MESH_ENV_OK) {
                memcpy (msg.sender, q->sender, sizeof msg.sender);
                mesh_peer_t *peer = (mesh_peer_t *) zhashx_lookup (self->peers, q->sender);
                if (peer)       //  names are both 65 bytes; snprintf cost ~400 instructions
                    memcpy (msg.sender_name, peer->name, strlen (peer->name) + 1);
                if (msg.env.kind <= 255 && self->kinds [msg.env.kind].fn)
                    s_deliver (self, &msg);
                mesh_msg_fini (&msg);
            }
            free (q);
            handled++;
            continue;
        }
        //  3. the inbox
        zmq_msg_t rid, frames [1 + MESH_MAX_FRAMES];
        bool skipped = may_skip && !handled && self->inbox_idle;
        int n = skipped? 0: s_read (self, &rid, frames);
        if (n != 0) {
            if (n > 0) {
                mesh_msg_t msg;
                int rc = mesh_msg_init (&msg, frames, n);
                if (rc != MESH_ENV_OK)
                    s_count_malformed (self, &rid, rc);
                else {
                    if (s_accept (self, (const uint8_t *) zmq_msg_data (&rid),
                                  zmq_msg_size (&rid), &msg))
                        s_deliver (self, &msg);
                    mesh_msg_fini (&msg);
                }
                zmq_msg_close (&rid);
            }
            //  A clock read per message costs ~3%; but `now` feeds
            //  app_last, and the keeper takes the inbox over once that is
            //  10 ms old: 64 messages of 64-job batches took longer than
            //  that, and the keeper then decoded and queued every job twice
            if (++handled % 8 == 0)
                now = mesh_mono_ms ();
            continue;
        }
        //  4. timers of the patterns
        int64_t next = deadline;
        handled += s_run_ticks (self, now, &next);
        bool done = handled || timeout_ms == 0 || zlistx_size (self->raw_events);
        if (!done) {
            now = mesh_mono_ms ();
            done = now >= deadline;
        }
        if (done && skipped) {
            may_skip = false;       //  not waiting after all: read it, as before
            continue;
        }
        if (done)
            break;
        int wait = (int) ((next < deadline? next: deadline) - now);
        if (wait < 0)
            wait = 0;
        struct pollfd fds [2] = {
            { .fd = self->inbox_fd, .events = POLLIN },
            { .fd = self->app_fd, .events = POLLIN },
        };
        self->app_waiting++;
        pthread_mutex_unlock (&self->lock);
        poll (fds, 2, wait);
        pthread_mutex_lock (&self->lock);
        self->app_waiting--;
        may_skip = false;
        if (fds [1].revents & POLLIN) {
            self->app_signalled = false;
            uint64_t value;
            if (read (self->app_fd, &value, sizeof value) < 0) {
                //  another dispatcher cleared it first
            }
        }
        now = mesh_mono_ms ();
    }
    self->dispatching--;
    self->app_last = mesh_mono_ms ();
    //  batch limit: more to do. The inbox, not read to EAGAIN, would not
    //  signal its fd again for what is left in it.
    if (zlistx_size (self->queue) || zlistx_size (self->raw_events)
    ||  handled >= MESH_DISPATCH_BATCH)
        s_wake_app (self);
    bool closed = self->stopping;
    pthread_mutex_unlock (&self->lock);
    if (closed && !handled)
        return mesh_fail (MESH_ECLOSED, "node stopped");
    return handled;
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
    self->kinds [kind].fn = fn;
    self->kinds [kind].arg = arg;
    pthread_mutex_unlock (&self->lock);
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
    zhashx_update (self->announce, key, zchunk_new (value, size));
    if (self->started && !self->stopping) {
        mesh_head_t head = { .kind = MESH_KIND_UPDATE, .subject = key };
        for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers); peer;
             peer = (mesh_peer_t *) zhashx_next (self->peers))
            if (peer->hello_sent)
                mesh_node_send_locked (self, peer, &head, value, size);
    }
    pthread_mutex_unlock (&self->lock);
    return 0;
}

void *
mesh_node_peer_announcement (mesh_node_t *self, const char *peer, const char *key,
                             size_t *size)
{
    assert (self);
    void *copy = NULL;
    pthread_mutex_lock (&self->lock);
    mesh_peer_t *p = (mesh_peer_t *) zhashx_lookup (self->peers, peer);
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

static void
s_on_stats_request (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg)
{
    extern char *mesh_node_stats_json_locked (mesh_node_t *self);
    char *json = mesh_node_stats_json_locked (self);
    mesh_head_t head = { .kind = MESH_KIND_STATS_REP, .id = msg->env.id,
                         .ctype = "application/json" };
    mesh_node_send_locked (self, peer, &head, json, strlen (json));
    free (json);
}

uint64_t
mesh_node_generation (mesh_node_t *self)
{
    assert (self);
    return __atomic_load_n (&self->generation, __ATOMIC_ACQUIRE);
}

int
mesh_node_wait_writable (mesh_node_t *self, const char *peer, int timeout_ms)
{
    assert (self);
    int64_t deadline = mesh_mono_ms () + timeout_ms;
    int pause_us = 50;
    while (true) {
        pthread_mutex_lock (&self->lock);
        mesh_peer_t *p = self->started && !self->stopping? s_live_peer (self, peer): NULL;
        int events = 0;
        size_t len = sizeof events;
        if (p)
            zmq_getsockopt (p->dealer, ZMQ_EVENTS, &events, &len);
        pthread_mutex_unlock (&self->lock);
        if (!p)
            return -1;
        if (events & ZMQ_POLLOUT)
            return 0;
        if (mesh_mono_ms () >= deadline)
            return mesh_fail (MESH_ETIMEDOUT, "link to %s stayed full", peer);
        //  libzmq's POLLOUT needs the socket itself, which needs the lock;
        //  short sleeps keep the lock free for the receiving side meanwhile
        usleep (pause_us);
        if (pause_us < 2000)
            pause_us *= 2;
    }
}

mesh_msg_t *
mesh_msg_new (const mesh_head_t *head, const void *body, size_t size,
              const char *sender, const char *sender_name)
{
    assert (head);
    zmq_msg_t frames [2];
    int nframes = s_build (head, body, size, NULL, NULL, NULL, frames);
    if (nframes < 0)
        return NULL;
    mesh_msg_t *msg = (mesh_msg_t *) malloc (sizeof (mesh_msg_t));
    if (!msg || mesh_msg_init (msg, frames, nframes) != MESH_ENV_OK) {
        free (msg);
        if (!msg)
            for (int i = 0; i < nframes; i++)
                zmq_msg_close (&frames [i]);
        mesh_fail (MESH_EINVAL, "message does not encode");
        return NULL;
    }
    msg->heap = true;
    //  a bounded copy, not snprintf: patterns build a message per job of a
    //  batch, and the two snprintf calls were ~880 instructions of it
    size_t n = sender? strnlen (sender, sizeof msg->sender - 1): 0;
    memcpy (msg->sender, sender? sender: "", n);
    msg->sender [n] = 0;
    n = sender_name? strnlen (sender_name, sizeof msg->sender_name - 1): 0;
    memcpy (msg->sender_name, sender_name? sender_name: "", n);
    msg->sender_name [n] = 0;
    return msg;
}
