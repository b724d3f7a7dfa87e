/*  =========================================================================
    mesh_node_dispatch - what comes in to a node: reading the inbox, the
    core kinds (UPDATE, BYE, PEERS, STATS; HELLO is mesh_node_link.c's),
    delivery to handlers,
    events and peer hooks, the keeper thread and mesh_node_dispatch

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

    The per-message path (s_read, s_take, s_accept_link, s_accept_kind,
    s_deliver) lives in this file with both of its callers, dispatch and
    the keeper's drain, so that it stays static and the compiler can
    inline it. A batch frame (mesh_batch.c) has its link checked once and
    then each message in it goes the way a lone one does.
    ========================================================================= */

#include "mesh_node_int.h"
#include "mesh_bytes.h"
#include <poll.h>

#define MESH_DISPATCH_BATCH 4096    //  messages per dispatch call before returning

//  ---------------------------------------------------------------------
//  Events

void
mesh_node_signal (int fd)
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
    mesh_node_signal (self->app_fd);
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
    if (type == MESH_EVENT_ENTER || type == MESH_EVENT_EXIT)
        mesh_discovery_changed (self->discovery);
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
    mesh_node_recent_add (self, event);
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

//  A HELLO on a link older than the one the peer speaks on now: late, from
//  a connection it replaced (dropped, counted)
static bool
s_stale_link (mesh_node_t *self, const uint8_t *id, uint32_t tag)
{
    char hex [33];
    mesh_hex (id, MESH_ID_SIZE, hex);
    mesh_peer_t *peer = (mesh_peer_t *) zhashx_lookup (self->peers, hex);
    if (!peer || !peer->link_tag || (int32_t) (tag - peer->link_tag) >= 0)
        return false;
    mesh_peer_count (self, peer, "dropped.stale-link");
    return true;
}

//  The peer a frame speaks for, if it may: a live peer, on the connection
//  that proved its key or HELLO. A HELLO is handled here (NULL returned).
//  msg: the frame's message, or for a batch frame a message holding only
//  the frame (kind 0). Lock held.
static mesh_peer_t *
s_accept_link (mesh_node_t *self, const uint8_t *rid, size_t rid_size, mesh_msg_t *msg)
{
    //  17 bytes (a probe, a foreign peer), or 21 with a link's tag
    if ((rid_size != MESH_ROUTING_ID_SIZE
    &&   rid_size != MESH_ROUTING_ID_SIZE + MESH_ROUTING_TAG_SIZE)
    ||  (rid [0] != MESH_ROUTING_LINK && rid [0] != MESH_ROUTING_PROBE)) {
        mesh_counters_add (self->counters, "malformed.routing-id", 1);
        return NULL;
    }
    const uint8_t *id = rid + 1;
    //  a link's tag (0: none): tags rise with each DEALER the sender opens
    uint32_t tag = rid_size > MESH_ROUTING_ID_SIZE && rid [0] == MESH_ROUTING_LINK
                 ? (uint32_t) mesh_get_be (rid + MESH_ROUTING_ID_SIZE, MESH_ROUTING_TAG_SIZE): 0;
    if (msg->env.kind == MESH_KIND_HELLO) {
        if (tag && s_stale_link (self, id, tag))
            return NULL;
        mesh_node_hello_in (self, id, rid [0] == MESH_ROUTING_LINK, msg);
        if (tag) {
            char hex [33];
            mesh_hex (id, MESH_ID_SIZE, hex);
            mesh_peer_t *peer = (mesh_peer_t *) zhashx_lookup (self->peers, hex);
            if (peer)
                peer->link_tag = tag;   //  this connection speaks for it now
        }
        return NULL;
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
        if (mesh_security_curve (self->security))
            mesh_security_stranger (self->security, &msg->frames [0]);
        return NULL;
    }
    //  An older connection of the peer than the one that brought its last
    //  HELLO: late frames of a link it replaced (TCP delivers them after a
    //  heal), which would repeat what the new link carries
    if (tag && peer->link_tag && tag != peer->link_tag) {
        if ((int32_t) (tag - peer->link_tag) < 0) {
            mesh_peer_count (self, peer, "dropped.stale-link");
            return NULL;
        }
        peer->link_tag = tag;
    }
    //  With CURVE or a secret, only the connection that proved the peer's
    //  key or HELLO speaks for it (one metadata lookup a frame)
    if (mesh_security_on (self->security) && !mesh_node_security_frame (self, peer, msg))
        return NULL;
    peer->frames_in++;
    for (int i = 0; i < msg->nframes; i++)      //  wire bytes, as bytes.out counts them
        peer->bytes_in += zmq_msg_size (&msg->frames [i]);
    self->frames_in++;
    //  a closed link stays suspect until it is back (mesh_liveness.c)
    if (peer->state == MESH_PEER_SUSPECT && !peer->closed_since)
        mesh_liveness_heard (self, peer, mesh_mono_ms ());
    return peer;
}

//  Handle a message from a peer by kind. Returns true if it goes to a kind
//  handler (the caller delivers it), false if the core consumed it. The
//  peer may be gone after a BYE. Lock held.
static bool
s_accept_kind (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg)
{
    switch (msg->env.kind) {
        case MESH_KIND_PING:
            mesh_liveness_ping_in (self, peer, msg);
            return false;
        case MESH_KIND_RUMOR:
            mesh_liveness_rumor_in (self, peer, msg);
            return false;
        case MESH_KIND_BYE:
            mesh_node_remove_peer (self, peer, "bye");
            return false;
        case MESH_KIND_UPDATE:
            mesh_node_update_in (self, peer, msg);
            return false;
        case MESH_KIND_PEERS:
            mesh_node_peers_in (self, peer, &msg->env);
            return false;
        case MESH_KIND_STATS_REQ:
            mesh_node_stats_wanted (self, peer, msg->env.id);
            return false;
        case MESH_KIND_STATS_REP:
            mesh_peer_stats_reply (self->peer_stats, msg->env.id, peer->hex, mesh_msg_body (msg), msg->size);
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
s_count_malformed_peer (mesh_node_t *self, mesh_peer_t *peer, int rc)
{
    char name [64];
    snprintf (name, sizeof name, "malformed.%s", mesh_envelope_strerror (rc));
    for (char *c = name; *c; c++)
        if (*c == ' ')
            *c = '-';           //  "malformed.bad-type": counter names have no spaces
    mesh_peer_count (self, peer, name);
}

static void
s_count_malformed (mesh_node_t *self, zmq_msg_t *rid, int rc)
{
    mesh_peer_t *peer = NULL;
    if (zmq_msg_size (rid) >= MESH_ROUTING_ID_SIZE) {
        char hex [33];
        mesh_hex ((const uint8_t *) zmq_msg_data (rid) + 1, MESH_ID_SIZE, hex);
        peer = (mesh_peer_t *) zhashx_lookup (self->peers, hex);
    }
    s_count_malformed_peer (self, peer, rc);
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

//  An accepted message: delivered now (queued NULL), or queued for
//  dispatch by the keeper (*queued counts them). Lock held.
static void
s_consume (mesh_node_t *self, mesh_msg_t *msg, size_t *queued)
{
    if (!queued) {
        s_deliver (self, msg);
        return;
    }
    mesh_queued_t *q = (mesh_queued_t *) malloc (sizeof (mesh_queued_t));
    if (!q) {
        mesh_counters_add (self->counters, "dropped.no-memory", 1);
        return;
    }
    q->nframes = msg->nframes;
    q->part_at = msg->part_at;
    q->part_len = msg->part_len;
    memcpy (q->sender, msg->sender, sizeof q->sender);
    for (int i = 0; i < msg->nframes; i++) {
        zmq_msg_init (&q->frames [i]);
        zmq_msg_move (&q->frames [i], &msg->frames [i]);
    }
    zlistx_add_end (self->queue, q);
    (*queued)++;
}

//  The peer of hex again after the lock was let go (a handler ran) or a
//  BYE: it may have left. Lock held.
static mesh_peer_t *
s_peer_again (mesh_node_t *self, const char *hex)
{
    mesh_peer_t *peer = self->hot_recv;
    if (!peer || memcmp (peer->hex, hex, 32) != 0)
        peer = (mesh_peer_t *) zhashx_lookup (self->peers, hex);
    return peer && peer->state != MESH_PEER_CONNECTING? peer: NULL;
}

//  A batch frame (mesh_batch.c): the link is checked once for all of it,
//  then each message is handled as if it had come alone. A message that
//  does not decode is counted and skipped, the rest still count; a length
//  that runs past the end loses what follows it (counted). Returns the
//  messages it held.
__thread mesh_node_t *mesh_node_holding;

//  The hold's clock is mesh_coarse_ms: a precise read per message at ~27 ns
//  was the largest single cost of a provider's thread (a fifth of its user
//  cycles with the other reads); the coarse clock costs ~7 ns and ticks
//  every 1-4 ms, so a hold ends within one tick (it lags the fine clock:
//  the keeper, which reads that one, sees a hold older, never younger,
//  than it is)

static int
s_take_batch (mesh_node_t *self, zmq_msg_t *rid, zmq_msg_t *frame, size_t *queued)
{
    mesh_msg_t outer;           //  only what s_accept_link reads of it
    outer.env.kind = 0;
    outer.nframes = 1;
    zmq_msg_init (&outer.frames [0]);
    zmq_msg_move (&outer.frames [0], frame);
    mesh_peer_t *peer = s_accept_link (self, (const uint8_t *) zmq_msg_data (rid),
                                       zmq_msg_size (rid), &outer);
    const void *data = zmq_msg_data (&outer.frames [0]);
    size_t size = zmq_msg_size (&outer.frames [0]), pos = 0, at, len;
    char hex [33];
    if (peer)
        memcpy (hex, peer->hex, sizeof hex);
    //  refused as a frame (the reason counted once): its messages count too
    const char *lost = peer? "dropped.unknown-sender": "dropped.in-refused-batch";
    int taken = 0, more;
    //  delivered here (not queued by the keeper): what the handlers send
    //  waits in the links' batches until the frame is done, so a batch of
    //  requests gets a batch of replies, one frame and one wake-up of the
    //  I/O thread. Held MESH_HOLD_MS (one tick of the coarse clock: 1-4
    //  ms) at most: once that passed, what waits goes before the next
    //  handler runs (slow handlers answer as they did without the hold);
    //  a handler that blocks without dispatching is covered by the keeper
    //  (held_at, mesh_node_keeper)
    mesh_node_t *held_by = mesh_node_holding;
    int64_t hold_until = 0;
    if (!queued) {
        mesh_node_holding = self;
        self->held_at = mesh_coarse_ms ();
        hold_until = self->held_at + MESH_HOLD_MS;
    }
    while ((more = mesh_batch_next (data, size, &pos, &at, &len)) == 1) {
        //  a clock read only while something is held
        if (mesh_node_holding == self && self->batches_waiting
        &&  (!self->held_at || mesh_coarse_ms () > hold_until)) {
            mesh_node_holding = held_by;
            mesh_node_flush_all (self);
        }
        taken++;
        if (!peer) {            //  refused, or left while we handled the batch
            mesh_counters_add (self->counters, lost, 1);
            continue;
        }
        zmq_msg_t part;
        zmq_msg_init (&part);
        zmq_msg_copy (&part, &outer.frames [0]);
        peer->msgs_in++;
        self->msgs_in++;
        mesh_msg_t msg;
        int rc = mesh_msg_init_part (&msg, &part, at, len);
        if (rc != MESH_ENV_OK) {
            s_count_malformed_peer (self, peer, rc);
            continue;
        }
        if (msg.env.kind == MESH_KIND_HELLO)    //  a HELLO binds a link: never batched
            mesh_peer_count (self, peer, "malformed.batched-hello");
        else {
            memcpy (msg.sender, hex, sizeof hex);
            if (s_accept_kind (self, peer, &msg))
                s_consume (self, &msg, queued);
            peer = s_peer_again (self, hex);
        }
        mesh_msg_fini (&msg);
    }
    if (!queued) {
        self->held_at = 0;
        if (mesh_node_holding == self) {
            mesh_node_holding = held_by;
            if (self->batches_waiting)
                mesh_node_flush_all (self);
        }
    }
    if (more < 0)
        mesh_peer_count (self, peer, "malformed.batch");
    zmq_msg_close (&outer.frames [0]);
    return taken? taken: 1;
}

//  What one read of the inbox brought: a message, or a batch of them.
//  Each accepted message is delivered, or queued by the keeper (queued
//  not NULL). Returns the messages read. Closes rid and the frames.
static int
s_take (mesh_node_t *self, zmq_msg_t *rid, zmq_msg_t *frames, int n, size_t *queued)
{
    int taken = 1;
    if (n == 1 && mesh_batch_is (zmq_msg_data (&frames [0]), zmq_msg_size (&frames [0])))
        taken = s_take_batch (self, rid, &frames [0], queued);
    else {
        mesh_msg_t msg;
        int rc = mesh_msg_init (&msg, frames, n);
        if (rc != MESH_ENV_OK)
            s_count_malformed (self, rid, rc);
        else {
            mesh_peer_t *peer = s_accept_link (self, (const uint8_t *) zmq_msg_data (rid),
                                               zmq_msg_size (rid), &msg);
            if (peer) {
                peer->msgs_in++;
                self->msgs_in++;
            }
            if (peer && s_accept_kind (self, peer, &msg))
                s_consume (self, &msg, queued);
            mesh_msg_fini (&msg);
        }
    }
    zmq_msg_close (rid);
    return taken;
}

//  Keeper: read what is waiting, handle control frames, queue the rest.
//  A batch may take the queue past queue_max by what it holds.
static void
s_keeper_drain (mesh_node_t *self)
{
    size_t queued = 0;
    while (zlistx_size (self->queue) < self->queue_max) {
        zmq_msg_t rid, frames [1 + MESH_MAX_FRAMES];
        int n = s_read (self, &rid, frames);
        if (n == 0)
            break;
        if (n > 0)
            s_take (self, &rid, frames, n, &queued);
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

void *
mesh_node_keeper (void *arg)
{
    mesh_node_t *self = (mesh_node_t *) arg;
    pthread_mutex_lock (&self->lock);
    while (!self->stopping) {
        if (zlistx_size (self->stats_wanted))
            mesh_node_stats_answer (self);      //  lets the lock go inside
        //  read first: answers to our probes may wait in the inbox, and
        //  the liveness check must see them before it judges anyone
        int64_t now = mesh_mono_ms ();
        bool own_inbox = !s_app_active (self, now);
        if (own_inbox)
            s_keeper_drain (self);
        int timeout = mesh_node_tick (self);
        bool queue_full = zlistx_size (self->queue) >= self->queue_max;
        if (((!own_inbox && self->app_waiting == 0) || self->held_at)
        &&  timeout > MESH_APP_ACTIVE_MS)
            timeout = MESH_APP_ACTIVE_MS;
        //  An application that dispatched lately but is neither in dispatch
        //  nor waiting in it (its own poll loop on mesh_node_fd, say) has
        //  nobody watching its inbox: watch it, and wake the application
        //  when something comes, without reading it. The inbox was read to
        //  EAGAIN (inbox_idle), so its fd signals anything new.
        bool watch = !own_inbox && self->dispatching == 0 && self->app_waiting == 0
                  && self->inbox_idle;
        struct pollfd fds [4] = {
            { .fd = self->keeper_fd, .events = POLLIN },
            { .fd = mesh_discovery_fd (self->discovery),
              .events = POLLIN },
            { .fd = (own_inbox && !queue_full) || watch? self->inbox_fd: -1, .events = POLLIN },
            { .fd = self->monitor_ep, .events = POLLIN },
        };
        pthread_mutex_unlock (&self->lock);
        poll (fds, 4, timeout);
        pthread_mutex_lock (&self->lock);
        //  a link whose last frame left libzmq while a batch waited for it
        //  wrote keeper_fd: nobody else may send on it soon
        if (self->batches_waiting)
            mesh_node_flush_drained (self);
        //  a handler of an inbound batch has held what it sent for too
        //  long (it blocks without dispatching): it goes now, and what it
        //  sends next at our next wake-up (every MESH_APP_ACTIVE_MS while
        //  a hold lasts) if the handler still has not returned
        if (self->held_at && self->batches_waiting
        &&  mesh_mono_ms () - self->held_at > MESH_HOLD_MS)
            mesh_node_flush_all (self);
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
            mesh_node_beacon_in (self);
        if (!self->stopping && (fds [3].revents & POLLIN))
            mesh_liveness_monitor_in (self);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
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
    //  the application is done sending for now: what it queued goes
    //  before we read (see below)
    if (self->batches_waiting)
        mesh_node_flush_all (self);
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
            int rc = q->part_len? mesh_msg_init_part (&msg, q->frames, q->part_at, q->part_len)
                                : mesh_msg_init (&msg, q->frames, q->nframes);
            if (rc == MESH_ENV_OK) {
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
            //  A clock read per message costs ~3%; but `now` feeds
            //  app_last, and the keeper takes the inbox over once that is
            //  10 ms old: 64 messages of 64-job batches took longer than
            //  that, and the keeper then decoded and queued every job twice
            int taken = n > 0? s_take (self, &rid, frames, n, NULL): 1;
            if (taken > 1 || ++handled % 8 == 0)
                now = mesh_mono_ms ();
            if (taken > 1)
                handled += taken;
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
        //  before a wait or a return: the application sends nothing
        //  meanwhile, so nothing more would join what waits
        if (self->batches_waiting && (done || !skipped))
            mesh_node_flush_all (self);
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
