/*  =========================================================================
    mesh_node_link - a node's links: building and sending frames, HELLO and
    announcements on a new link, adding and removing peers

    One DEALER per peer (see mesh_node.c). A send runs on the caller's
    thread and never waits: mesh_node_send builds its frames outside
    node->lock (s_build) and sends them under it with ZMQ_DONTWAIT, so a
    full link is an error (MESH_EAGAIN, send.dropped.hwm), which
    mesh_node_wait_writable can wait out. mesh_msg_new is here because it
    builds a message as a send does.
    ========================================================================= */

#include "mesh_node_int.h"

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
