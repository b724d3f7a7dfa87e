/*  =========================================================================
    mesh_node_link - a node's links: building and sending frames, HELLO and
    announcements on a new link, adding and removing peers, the HELLOs that
    come in, and relinking a peer that had dropped us

    One DEALER per peer (see mesh_node.c). A send runs on the caller's
    thread and never waits: mesh_node_send encodes outside node->lock
    (mesh_msg_build) and, under it, hands the message to the link, or to the
    link's open batch when the link is backed up (mesh_batch.c). A full
    link (the high-water mark counts messages in libzmq and in the batch)
    is an error (MESH_EAGAIN, send.dropped.hwm), which
    mesh_node_wait_writable can wait out. Messages are built by
    mesh_msg_build (mesh_msg.c), the same code mesh_msg_new uses.
    ========================================================================= */

#include "mesh_node_int.h"
#include "mesh_bytes.h"
#include <sodium.h>

//  ---------------------------------------------------------------------
//  Sending

//  libzmq holds at most one frame of the link: a waiting batch goes now
static bool
s_drained (mesh_peer_t *peer)
{
    return mesh_flight_frames (peer->flight) <= 1;
}

//  Hand a buffer (and a body frame) to the peer's link as one message.
//  Lock held. Takes both over.
static int
s_send_out (mesh_node_t *self, mesh_peer_t *peer, mesh_outbuf_t *out, zmq_msg_t *body)
{
    uint32_t count = mesh_outbuf_count (out);
    size_t bytes = mesh_outbuf_size (out) + (body? zmq_msg_size (body): 0);
    zmq_msg_t frame;
    int rc = mesh_outbuf_frame (out, peer->flight, &frame);
    int err = rc? ENOMEM: 0;
    if (rc == 0 && zmq_msg_send (&frame, peer->dealer, ZMQ_DONTWAIT | (body? ZMQ_SNDMORE: 0)) < 0) {
        err = errno;            //  before the close, which may touch it
        zmq_msg_close (&frame);
        rc = -1;
    }
    //  libzmq accepts the rest of a message whose first frame it took
    if (rc == 0 && body)
        zmq_msg_send (body, peer->dealer, ZMQ_DONTWAIT);
    if (rc) {
        if (body)
            zmq_msg_close (body);
        //  The high-water mark is ours (libzmq's is off): EAGAIN here means
        //  libzmq has no pipe to the peer at all
        bool full = err == EAGAIN;
        mesh_peer_count_n (self, peer, full? "send.dropped.hwm": "send.dropped.error", count);
        return mesh_fail (full? MESH_EAGAIN: MESH_ESYS, "link to %s: %s", peer->name,
                          full? "not connected": zmq_strerror (err));
    }
    peer->frames_out++;
    peer->msgs_out += count;
    peer->bytes_out += bytes;
    self->frames_out++;
    self->msgs_out += count;
    if (count > 1)
        mesh_peer_count_n (self, peer, "send.batched", count);
    return 0;
}

int
mesh_node_flush (mesh_node_t *self, mesh_peer_t *peer)
{
    mesh_outbuf_t *batch = peer->batch;
    if (!batch)
        return 0;
    peer->batch = NULL;
    self->batches_waiting--;
    mesh_flight_set_waiting (peer->flight, false);
    return s_send_out (self, peer, batch, NULL);
}

void
mesh_node_flush_drained (mesh_node_t *self)
{
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers);
         peer && self->batches_waiting; peer = (mesh_peer_t *) zhashx_next (self->peers))
        if (peer->batch && s_drained (peer))
            mesh_node_flush (self, peer);
}

//  The dispatch loop ran out of work: what it queued goes now, behind the
//  frames libzmq still holds, rather than when a link drains (the I/O
//  thread's eventfd write and the keeper's wake-up cost more than a frame)
void
mesh_node_flush_all (mesh_node_t *self)
{
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers);
         peer && self->batches_waiting; peer = (mesh_peer_t *) zhashx_next (self->peers))
        if (peer->batch)
            mesh_node_flush (self, peer);
}

static size_t
s_waiting (mesh_peer_t *peer)
{
    return peer->batch? mesh_outbuf_count (peer->batch): 0;
}

//  Whether the link is full. As libzmq's pipes do, a link that reached its
//  high-water mark takes nothing more until it drained to half of it: a
//  sender that drops on full drops a run at the end of a burst, not every
//  other message, and a waiting sender wakes for a run of sends.
static bool
s_full (mesh_node_t *self, mesh_peer_t *peer)
{
    size_t held = mesh_flight_msgs (peer->flight) + s_waiting (peer);
    if (peer->full)
        peer->full = held > (size_t) self->hwm / 2;
    else
        peer->full = held >= (size_t) self->hwm;
    return peer->full;
}

//  Send a built message on the peer's link. Lock held. Takes it over.
static int
s_send_built (mesh_node_t *self, mesh_peer_t *peer, mesh_built_t *built)
{
    //  the high-water mark counts messages, batched or not
    if (s_full (self, peer)) {
        mesh_msg_built_fini (built);
        mesh_peer_count (self, peer, "send.dropped.hwm");
        return mesh_fail (MESH_EAGAIN, "link to %s: high-water mark reached", peer->name);
    }
    if (built->small_len && !built->has_body && built->small_len <= MESH_BATCH_MAX_ENV
    &&  peer->batches) {
        mesh_outbuf_t *batch = mesh_outbuf_add (peer->batch, built->small, built->small_len);
        if (!batch) {
            mesh_peer_count (self, peer, "send.dropped.no-memory");
            return mesh_fail (MESH_ESYS, "no memory to queue a message");
        }
        if (!peer->batch)
            self->batches_waiting++;
        peer->batch = batch;
        if (mesh_outbuf_size (batch) >= MESH_BATCH_BYTES
        ||  (mesh_node_holding != self && s_drained (peer)))
            return mesh_node_flush (self, peer);
        if (mesh_node_holding == self)
            return 0;           //  it goes when the inbound batch is done
        //  it waits: say so, then look again (see mesh_flight_set_waiting),
        //  so either we see the link drained or its last frame wakes the
        //  keeper. An idle link never raises the flag, nor a wake-up.
        mesh_flight_set_waiting (peer->flight, true);
        if (s_drained (peer))
            return mesh_node_flush (self, peer);
        return 0;
    }
    //  a message that travels alone goes after what waits, in order
    mesh_node_flush (self, peer);
    mesh_outbuf_t *out = built->out;
    built->out = NULL;
    if (!out)
        out = mesh_outbuf_add (NULL, built->small, built->small_len);
    if (!out) {
        mesh_msg_built_fini (built);
        mesh_peer_count (self, peer, "send.dropped.no-memory");
        return mesh_fail (MESH_ESYS, "no memory to queue a message");
    }
    int rc = s_send_out (self, peer, out, built->has_body? &built->body: NULL);
    built->has_body = false;
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
    mesh_built_t built;
    if (mesh_msg_build (head, body, size, NULL, NULL, NULL, &built))
        return -1;
    return s_send_built (self, peer, &built);
}

static int
s_send (mesh_node_t *self, const char *peer, const mesh_head_t *head, const void *body,
        size_t size, void *data, mesh_free_fn *free_fn, void *hint)
{
    assert (self);
    assert (head);
    mesh_built_t built;
    if (mesh_msg_build (head, body, size, data, free_fn, hint, &built)) {
        if (data && free_fn)
            free_fn (data, hint);       //  we took it over, even on failure
        return -1;
    }
    if (data && !built.has_body && free_fn)
        free_fn (data, hint);           //  copied inline: release it now
    pthread_mutex_lock (&self->lock);
    int rc;
    mesh_peer_t *p = self->started && !self->stopping? s_live_peer (self, peer): NULL;
    if (!p) {
        if (!self->started || self->stopping)
            mesh_fail (MESH_ECLOSED, "node is not running");
        mesh_counters_add (self->counters, "send.dropped.no-peer", 1);
        mesh_msg_built_fini (&built);
        rc = -1;
    }
    else
        rc = s_send_built (self, p, &built);
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
    count = mesh_security_hello_headers (self->security, self->id, self->incarnation,
                                         self->endpoint, pairs, count, storage);
    mesh_head_t head = {
        .kind = MESH_KIND_HELLO,
        .flags = (reply_wanted? MESH_FLAG_REPLY_WANTED: 0) | MESH_FLAG_BATCHES
               | MESH_FLAG_DELTAS | MESH_FLAG_PROBES,
        .seq = (uint64_t) self->suspect_ms,     //  so peers heartbeat often enough
        .id = self->incarnation,
        .subject = self->name,
        .reply = self->endpoint,
        .headers = pairs,
        .header_count = count
    };
    mesh_built_t built;
    if (mesh_msg_build (&head, NULL, 0, NULL, NULL, NULL, &built))
        return -1;
    zmq_msg_t frames [2];
    mesh_msg_built_frames (&built, frames);
    int rc = zmq_msg_send (&frames [0], socket, ZMQ_DONTWAIT);
    if (rc < 0)
        zmq_msg_close (&frames [0]);
    return rc < 0? -1: 0;
}

int
mesh_node_hello_to (mesh_node_t *self, mesh_peer_t *peer, bool reply_wanted)
{
    mesh_node_flush (self, peer);       //  after what waits: a link keeps its order
    if (mesh_node_send_hello (self, peer->dealer, reply_wanted))
        return -1;
    peer->frames_out++;
    peer->msgs_out++;
    self->frames_out++;
    self->msgs_out++;
    return 0;
}

//  Our HELLO then every announcement, in order, on a peer's link.
static void
s_greet (mesh_node_t *self, mesh_peer_t *peer)
{
    if (mesh_node_hello_to (self, peer, true) == 0)
        peer->hello_sent = true;
    mesh_node_announce_greet (self, peer);
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
        bool writable = false;
        if (p) {
            if (p->batch && s_drained (p))
                mesh_node_flush (self, p);
            writable = !s_full (self, p);
        }
        pthread_mutex_unlock (&self->lock);
        if (!p)
            return -1;
        if (writable)
            return 0;
        if (mesh_mono_ms () >= deadline)
            return mesh_fail (MESH_ETIMEDOUT, "link to %s stayed full", peer);
        //  the link drains in libzmq's I/O thread, which tells nobody
        //  but the keeper; short sleeps keep the lock free meanwhile
        usleep (pause_us);
        if (pause_us < 2000)
            pause_us *= 2;
    }
}

//  ---------------------------------------------------------------------
//  Peers

//  A DEALER connected to a peer's inbox, or NULL with the counter to add
static void *
s_dealer (mesh_node_t *self, const char *endpoint, const uint8_t *key, const char **refused)
{
    void *dealer = zmq_socket (self->ctx, ZMQ_DEALER);
    if (!dealer) {
        *refused = "peers.refused.no-socket";
        return NULL;
    }
    //  libzmq's high-water mark counts frames, and a batch is many
    //  messages: ours counts messages (mesh_batch.c), so libzmq's is off;
    //  a short first reconnect: after a close, its refusal is how we
    //  know the peer's process is gone (mesh_liveness.c)
    int linger = 0, hwm = 0, ivl = MESH_RECONNECT_IVL, ivl_max = 2000;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt (dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    //  a tag of its own per DEALER: a link made anew (relink, restart of
    //  the link) is another routing id at the peer's inbox, not a takeover
    //  of the old one. libzmq 4.3's ROUTER_HANDOVER never closes the
    //  connection it takes over (zeromq/libzmq#3238): each relink after a
    //  split leaked a descriptor in CLOSE-WAIT at the peer. The tags rise,
    //  so the peer can tell the old connection's late frames (retransmitted
    //  after a heal) from the new one's and drop them (mesh_node_dispatch.c)
    uint8_t rid [MESH_ROUTING_ID_SIZE + MESH_ROUTING_TAG_SIZE];
    memcpy (rid, self->routing_id, MESH_ROUTING_ID_SIZE);
    if (++self->link_serial == 0)
        self->link_serial = 1;          //  0 means "no tag"
    mesh_put_be (rid + MESH_ROUTING_ID_SIZE, self->link_serial, MESH_ROUTING_TAG_SIZE);
    zmq_setsockopt (dealer, ZMQ_ROUTING_ID, rid, sizeof rid);
    if (mesh_security_client (self->security, dealer, key) || zmq_connect (dealer, endpoint) != 0) {
        zmq_close (dealer);
        *refused = "peers.refused.connect";
        return NULL;
    }
    return dealer;
}

//  A known peer opened a new link to us (its HELLO asks for an answer):
//  it had dropped us, after a cut, a freeze or a one-sided verdict. Our
//  link to it may be a TCP connection it no longer reads, or one stuck
//  behind retransmission backoff since the cut: replace it by a fresh
//  connection (the peer's inbox hands our routing id over to it), then
//  HELLO and every announcement, since it forgot those too.
void
mesh_node_relink (mesh_node_t *self, mesh_peer_t *peer)
{
    const char *refused = NULL;
    void *dealer = s_dealer (self, peer->endpoint, peer->has_key? peer->key: NULL, &refused);
    if (!dealer) {
        mesh_counters_add (self->counters, "link.relink-failed", 1);
        mesh_node_hello_to (self, peer, false);
        return;
    }
    //  what libzmq held for the old link is lost with it, and counted;
    //  what waits in our batch goes out on the new one
    size_t held = mesh_flight_msgs (peer->flight);
    if (held)
        mesh_peer_count_n (self, peer, "send.dropped.link-closed", held);
    mesh_liveness_unwatch (peer);
    zmq_close (peer->dealer);
    peer->dealer = dealer;
    if (mesh_liveness_watch (self, peer))
        mesh_counters_add (self->counters, "link.no-monitor", 1);
    mesh_counters_add (self->counters, "link.relinked", 1);
    //  HELLO first on the new connection, before what waits in our batch:
    //  with security on, the peer takes frames on a connection only after
    //  a HELLO on it (mesh_security_frame), and drops the rest
    if (mesh_node_send_hello (self, peer->dealer, false) == 0) {
        peer->frames_out++;
        peer->msgs_out++;
        self->frames_out++;
        self->msgs_out++;
    }
    mesh_node_flush (self, peer);
    mesh_node_announce_greet (self, peer);
}

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
    if (mesh_security_curve (self->security) && !key) {
        mesh_counters_add (self->counters, "peers.refused.no-key", 1);
        return NULL;
    }
    const char *refused = NULL;
    void *dealer = s_dealer (self, endpoint, key, &refused);
    if (!dealer) {
        mesh_counters_add (self->counters, refused, 1);
        return NULL;
    }
    peer = mesh_peer_new (id, endpoint, self->keeper_fd);
    if (!peer) {
        zmq_close (dealer);
        mesh_counters_add (self->counters, "peers.refused.no-memory", 1);
        return NULL;
    }
    peer->dealer = dealer;
    peer->serial = ++self->peer_serial;
    if (mesh_liveness_watch (self, peer))
        mesh_counters_add (self->counters, "link.no-monitor", 1);
    mesh_departed_restore (self->departed, peer);
    if (key) {
        peer->has_key = true;
        memcpy (peer->key, key, MESH_KEY_SIZE);
    }
    zhashx_insert (self->peers, hex, peer);
    self->connecting++;
    self->view_changed = mesh_mono_ms ();
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
    //  what waits for its link is lost with it, and counted
    if (peer->batch) {
        mesh_peer_count_n (self, peer, "send.dropped.peer-gone", s_waiting (peer));
        mesh_outbuf_destroy (&peer->batch);
        mesh_flight_set_waiting (peer->flight, false);
        self->batches_waiting--;
    }
    //  and what libzmq still holds for it: the link closes without linger
    size_t held = mesh_flight_msgs (peer->flight);
    if (held)
        mesh_peer_count_n (self, peer, "send.dropped.link-closed", held);
    //  what was counted for it stays readable under its id; a peer that
    //  never got past CONNECTING is kept only if it counted something
    if ((peer->state != MESH_PEER_CONNECTING || mesh_counters_size (peer->counters))
    &&  mesh_departed_keep (self->departed, peer, reason))
        mesh_counters_add (self->counters, "peers.departed-forgotten", 1);
    self->hot_send = self->hot_recv = NULL;
    zhashx_delete (self->peers, peer->hex);
    __atomic_add_fetch (&self->generation, 1, __ATOMIC_RELEASE);
}

//  A HELLO, on a link (on_link) or on a seed's probe: a new peer, a
//  restart, a peer that dropped us, or news of its name and headers
void
mesh_node_hello_in (mesh_node_t *self, const uint8_t *id, bool on_link, mesh_msg_t *msg)
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
    if (!mesh_security_hello (self->security, id, &msg->env, &msg->frames [0], msg->reply,
                              key, &has_key))
        return;
    char hex [33];
    mesh_hex (id, MESH_ID_SIZE, hex);
    mesh_peer_t *peer = (mesh_peer_t *) zhashx_lookup (self->peers, hex);
    if (peer && has_key && peer->has_key && sodium_memcmp (peer->key, key, MESH_KEY_SIZE)) {
        //  Another key claims this id. The one we linked to proved its key
        //  in the handshake of our link, so the newcomer is not believed.
        mesh_counters_add (self->counters, "hello.refused.key-mismatch", 1);
        mesh_security_warn (self->security, MESH_WARN_HELLO, "a HELLO with another key claims to be %s: refused", hex);
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
    //  the connection it came on speaks for the peer from now on; a seed's
    //  probe is another connection, never the link
    if (mesh_security_on (self->security) && on_link) {
        const char *reason;     //  a HELLO (checked above) is always accepted
        mesh_security_frame (self->security, &peer->conn, peer->has_key? peer->key: NULL,
                             peer->hex, &msg->frames [0], MESH_KIND_HELLO, &reason);
    }
    //  A HELLO that asks for an answer comes first on a new link (or on a
    //  seed's probe): from a peer we know as live, it means the peer had
    //  dropped us and lost what we told it (mesh_node_relink)
    if ((msg->env.flags & MESH_FLAG_REPLY_WANTED) && !greeted) {
        if (peer->state == MESH_PEER_CONNECTING)
            mesh_node_hello_to (self, peer, false);
        else
            mesh_node_relink (self, peer);
    }
    peer->incarnation = msg->env.id;
    peer->batches = (msg->env.flags & MESH_FLAG_BATCHES) != 0;
    peer->deltas = (msg->env.flags & MESH_FLAG_DELTAS) != 0;
    //  HELLO's seq is the sender's suspect timeout. A peer that does not
    //  say PROBES judges us by silence alone (a foreign peer written from
    //  docs/protocol.md): it gets a frame at 4x that rate (s_liveness)
    peer->probes = (msg->env.flags & MESH_FLAG_PROBES) != 0;
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
        self->view_changed = mesh_mono_ms ();
        mesh_counters_add (self->counters, "peers.entered", 1);
        __atomic_add_fetch (&self->generation, 1, __ATOMIC_RELEASE);
        mesh_node_raise (self, MESH_EVENT_ENTER, peer, NULL);
        mesh_node_gossip_to (self, peer, NULL);
    }
}
