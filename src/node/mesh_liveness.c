/*  =========================================================================
    mesh_liveness - is a peer still there? Probes, indirect probes,
    suspicion rumors, closed links, beacon back-off

    Why not a PING on every link every suspect/4: a node's idle cost then
    grows with the mesh and the mesh's with its square (64 nodes took 79 %
    of a core in heartbeats alone). Instead, as SWIM does:
    - traffic proves liveness; a silent peer is probed, one peer per probe
      period T (= suspect/2), round-robin over a shuffled table, so each
      node sends one probe per period whatever the mesh's size;
    - a probe not answered within T/2 is sent on through MESH_PROBE_HELPERS
      other peers, which probe the target and relay its answer: a node
      whose own path to B is broken does not declare B gone while others
      reach it;
    - a peer is SUSPECT once a probe stays unanswered (directly and
      indirectly) for suspect_ms, EXIT after gone_ms; unanswered peers are
      probed every period until then;
    - on SUSPECT the node tells every peer (a RUMOR with how long it has
      waited); each without fresher news of the peer probes it at once, on
      its own clock, so the whole mesh looks at it now, not one node per
      probe cycle, and no node's verdict rests on another's.
    A process that dies on a live host closes its TCP connections at once:
    the libzmq monitor of our link to it reports DISCONNECTED, then a
    refused reconnect, and the peer is EXIT "closed" within tens of ms.
    docs/protocol.md#failure-detection has the bounds.
    Everything here runs with node->lock held.
    ========================================================================= */

#include "mesh_node_int.h"
#include <sys/epoll.h>
#include <poll.h>
#include <sodium.h>

//  The node-wide state of the probes (per peer state is in mesh_peer_t)
struct _mesh_liveness_t {
    int64_t next_probe;         //  the current probe period ends
    int64_t unread_since;       //  verdicts held since: the inbox had unread frames
    uint64_t probe_seq;         //  the last probe id given
    char (*order) [33];         //  round-robin probe order (shuffled table), order_len long
    size_t order_len, order_at;
};

mesh_liveness_t *
mesh_liveness_new (void)
{
    return (mesh_liveness_t *) zmalloc (sizeof (mesh_liveness_t));
}

void
mesh_liveness_destroy (mesh_liveness_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->order);
    free (*self_p);
    *self_p = NULL;
}

void
mesh_liveness_first_probe (mesh_liveness_t *self, int64_t at)
{
    self->next_probe = at;
}

//  The probe period T: suspect/2. Each period costs a probe, its answer
//  and the wake-ups of three threads on both ends; suspect/4 made 0.18 %
//  of a core per idle node, over the 0.1 % goal. A silent peer is still
//  probed within 1.6 T on average (docs/protocol.md, detection bounds),
//  and the verdicts keep their own clocks (suspect_ms, gone_ms).
static int
s_period (mesh_node_t *self)
{
    int period = 2 * self->heartbeat_ms;
    return period > 10? period: 10;
}

//  Something needs the liveness check by `at` (a closed link, a probe made
//  for a rumor or for another node): an idle keeper sleeps until its next
//  probe otherwise. Whoever runs this outside the keeper wakes it.
static void
s_check_by (mesh_node_t *self, int64_t at)
{
    if (at < self->next_liveness) {
        self->next_liveness = at;
        if (!pthread_equal (pthread_self (), self->keeper))
            mesh_node_signal (self->keeper_fd);
    }
}

//  ---------------------------------------------------------------------
//  Link monitors

static void
s_monitor_event (mesh_node_t *self, mesh_peer_t *peer, uint16_t event, int64_t now)
{
    if (peer->state == MESH_PEER_CONNECTING)
        return;                 //  the connect timeout judges those
    if (event == ZMQ_EVENT_DISCONNECTED && !peer->closed_since) {
        peer->closed_since = now;
        peer->refused = false;
        mesh_counters_add (self->counters, "link.closed", 1);
        s_check_by (self, now + MESH_CLOSED_BYE_MS);
    }
    else
    if (event == ZMQ_EVENT_CONNECT_RETRIED && peer->closed_since)
        peer->refused = true;
    else
    if (event == ZMQ_EVENT_CONNECTED && peer->closed_since) {
        //  the link came back: a probe brings the frame that says BACK
        peer->closed_since = 0;
        peer->refused = false;
        mesh_counters_add (self->counters, "link.reconnected", 1);
        peer->probe_sent_us = 0;
    }
}

//  Read what the link's monitor has (to EAGAIN, which re-arms its fd)
static void
s_monitor_read (mesh_node_t *self, mesh_peer_t *peer, int64_t now)
{
    //  bounded: a link flapping in a loop cannot hold the keeper
    for (int j = 0; j < 64 && peer->monitor; j++) {
        zmq_msg_t head, address;
        zmq_msg_init (&head);
        if (zmq_msg_recv (&head, peer->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&head);
            break;
        }
        zmq_msg_init (&address);
        if (zmq_msg_more (&head))
            zmq_msg_recv (&address, peer->monitor, 0);
        uint16_t event = 0;
        if (zmq_msg_size (&head) >= 2)
            memcpy (&event, zmq_msg_data (&head), 2);
        zmq_msg_close (&head);
        zmq_msg_close (&address);
        s_monitor_event (self, peer, event, now);
    }
}

int
mesh_liveness_watch (mesh_node_t *self, mesh_peer_t *peer)
{
    peer->monitor_fd = peer->monitor_ep = -1;
    if (self->monitor_ep < 0)
        return -1;
    char endpoint [96];
    snprintf (endpoint, sizeof endpoint, "inproc://meshbus-link-%s-%s-%llu", self->hex,
              peer->hex, (unsigned long long) ++self->liveness->probe_seq);
    if (zmq_socket_monitor (peer->dealer, endpoint, ZMQ_EVENT_CONNECTED
                            | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED))
        return -1;
    void *pair = zmq_socket (self->ctx, ZMQ_PAIR);
    //  no high-water mark on our end: the I/O thread's send of an event
    //  never blocks on a keeper that is slow to read (events are few)
    int linger = 0, hwm = 0;
    size_t len = sizeof peer->monitor_fd;
    if (!pair || zmq_setsockopt (pair, ZMQ_LINGER, &linger, sizeof linger)
    ||  zmq_setsockopt (pair, ZMQ_RCVHWM, &hwm, sizeof hwm)
    ||  zmq_connect (pair, endpoint)
    ||  zmq_getsockopt (pair, ZMQ_FD, &peer->monitor_fd, &len)) {
        zmq_socket_monitor (peer->dealer, NULL, 0);     //  first: see unwatch
        if (pair)
            zmq_close (pair);
        peer->monitor_fd = -1;
        return -1;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = peer };
    if (epoll_ctl (self->monitor_ep, EPOLL_CTL_ADD, peer->monitor_fd, &ev)) {
        zmq_socket_monitor (peer->dealer, NULL, 0);
        zmq_close (pair);
        peer->monitor_fd = -1;
        return -1;
    }
    peer->monitor = pair;
    peer->monitor_ep = self->monitor_ep;
    //  libzmq signals ZMQ_FD for a pipe its reader found empty: read until
    //  EAGAIN once, so the first event wakes the keeper
    s_monitor_read (self, peer, mesh_mono_ms ());
    return 0;
}

void
mesh_liveness_unwatch (mesh_peer_t *peer)
{
    //  The DEALER stops reporting before our end of its monitor closes:
    //  libzmq's I/O thread sends monitor events with a blocking send, and
    //  one sent to a monitor nobody reads any more (a DISCONNECTED while
    //  the closed DEALER winds down) blocks that thread for good, and with
    //  it every socket of the node: the inbox goes deaf, the node looks
    //  dead to all its peers.
    if (peer->monitor && peer->dealer)
        zmq_socket_monitor (peer->dealer, NULL, 0);
    //  out of the epoll set first: libzmq closes the fd later, in its
    //  reaper thread, and an event must never name a freed peer
    if (peer->monitor_fd >= 0 && peer->monitor_ep >= 0)
        epoll_ctl (peer->monitor_ep, EPOLL_CTL_DEL, peer->monitor_fd, NULL);
    if (peer->monitor)
        zmq_close (peer->monitor);
    peer->monitor = NULL;
    peer->monitor_fd = peer->monitor_ep = -1;
    //  a fresh link is open until its monitor says otherwise
    peer->closed_since = 0;
    peer->refused = false;
}

void
mesh_liveness_monitor_in (mesh_node_t *self)
{
    struct epoll_event ready [64];
    int n = epoll_wait (self->monitor_ep, ready, 64, 0);
    int64_t now = mesh_mono_ms ();
    for (int i = 0; i < n; i++)
        s_monitor_read (self, (mesh_peer_t *) ready [i].data.ptr, now);
}

//  ---------------------------------------------------------------------
//  Probes

static void
s_send_ping (mesh_node_t *self, mesh_peer_t *to, uint32_t flags, uint64_t id, const char *about)
{
    mesh_head_t ping = { .kind = MESH_KIND_PING, .flags = flags, .id = id,
                         .subject = about };
    mesh_node_send_locked (self, to, &ping, NULL, 0);
}

static void
s_probe (mesh_node_t *self, mesh_peer_t *peer, int64_t now)
{
    peer->probe_id = ++self->liveness->probe_seq;
    peer->probe_sent_us = mesh_mono_us ();
    peer->indirect_sent = false;
    if (!peer->owed_since)
        peer->owed_since = now;
    s_check_by (self, now + self->tick_ms);
    s_send_ping (self, peer, MESH_FLAG_PROBE, peer->probe_id, NULL);
    mesh_counters_add (self->counters, "probe.sent", 1);
}

//  A live peer, other than `not`, that can help; NULL if none
static mesh_peer_t *
s_random_helper (mesh_node_t *self, mesh_peer_t *not, mesh_peer_t **taken, int ntaken)
{
    size_t size = zhashx_size (self->peers);
    if (size < 2)
        return NULL;
    size_t start = randombytes_uniform ((uint32_t) size), i = 0;
    mesh_peer_t *pick = NULL;
    //  from a random place in the table, the first one that qualifies
    for (int pass = 0; pass < 2 && !pick; pass++) {
        i = 0;
        for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p && !pick;
             p = (mesh_peer_t *) zhashx_next (self->peers), i++) {
            if ((pass == 0 && i < start) || p == not || p->state != MESH_PEER_ALIVE
            ||  p->owed_since || p->closed_since || !p->probes)
                continue;
            bool dup = false;
            for (int t = 0; t < ntaken; t++)
                dup |= taken [t] == p;
            if (!dup)
                pick = p;
        }
    }
    return pick;
}

static void
s_probe_indirect (mesh_node_t *self, mesh_peer_t *peer)
{
    mesh_peer_t *helpers [MESH_PROBE_HELPERS];
    int n = 0;
    while (n < MESH_PROBE_HELPERS) {
        mesh_peer_t *helper = s_random_helper (self, peer, helpers, n);
        if (!helper)
            break;
        helpers [n++] = helper;
        s_send_ping (self, helper, MESH_FLAG_PROBE | MESH_FLAG_INDIRECT, peer->probe_id,
                     peer->hex);
    }
    peer->indirect_sent = true;
    if (n)
        mesh_counters_add (self->counters, "probe.indirect", (uint64_t) n);
}

//  Something proved the peer alive (its frame, an ack, a relayed ack)
static void
s_alive (mesh_node_t *self, mesh_peer_t *peer, int64_t now)
{
    peer->last_heard = now;
    peer->owed_since = 0;
    peer->hold_until = 0;
    peer->rumored = false;
    if (peer->state == MESH_PEER_SUSPECT && !peer->closed_since) {
        peer->state = MESH_PEER_ALIVE;
        mesh_node_raise (self, MESH_EVENT_BACK, peer, NULL);
    }
}

void
mesh_liveness_ping_in (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg)
{
    uint32_t flags = msg->env.flags;
    int64_t now = mesh_mono_ms ();
    if ((flags & MESH_FLAG_PROBE) && !(flags & MESH_FLAG_INDIRECT))
        s_send_ping (self, peer, MESH_FLAG_ACK, msg->env.id, NULL);
    else
    if ((flags & MESH_FLAG_PROBE) && (flags & MESH_FLAG_INDIRECT)) {
        //  probe the target on the asker's behalf; its answer is relayed
        mesh_peer_t *target = strlen (msg->subject) == 32
                            ? (mesh_peer_t *) zhashx_lookup (self->peers, msg->subject): NULL;
        if (!target || target->state == MESH_PEER_CONNECTING || target == peer)
            return;
        int slot = 0;
        for (int i = 0; i < MESH_RELAYS; i++)
            if (target->relay [i].until < target->relay [slot].until)
                slot = i;
        snprintf (target->relay [slot].hex, sizeof target->relay [slot].hex, "%s", peer->hex);
        target->relay [slot].id = msg->env.id;
        target->relay [slot].until = now + self->suspect_ms;
        if (!target->probe_sent_us)
            s_probe (self, target, now);
        mesh_counters_add (self->counters, "probe.relayed", 1);
    }
    else
    if ((flags & MESH_FLAG_ACK) && (flags & MESH_FLAG_INDIRECT)) {
        //  a helper reached the peer we asked about
        mesh_peer_t *target = strlen (msg->subject) == 32
                            ? (mesh_peer_t *) zhashx_lookup (self->peers, msg->subject): NULL;
        if (target && target->state != MESH_PEER_CONNECTING && msg->env.id == target->probe_id) {
            target->probe_sent_us = 0;
            mesh_counters_add (self->counters, "probe.indirect-ack", 1);
            s_alive (self, target, now);
        }
    }
    else
    if ((flags & MESH_FLAG_ACK) && msg->env.id == peer->probe_id && peer->probe_sent_us) {
        int64_t sample = mesh_mono_us () - peer->probe_sent_us;
        peer->rtt_us = peer->rtt_us < 0? sample: (7 * peer->rtt_us + sample) / 8;
        peer->probe_sent_us = 0;
    }
    //  any frame of the peer is evidence (s_liveness saw frames_in move);
    //  acks of probes we made for others go back to the askers now
    for (int i = 0; i < MESH_RELAYS; i++)
        if (peer->relay [i].until > now) {
            mesh_peer_t *asker = (mesh_peer_t *) zhashx_lookup (self->peers, peer->relay [i].hex);
            if (asker && asker->state != MESH_PEER_CONNECTING)
                s_send_ping (self, asker, MESH_FLAG_ACK | MESH_FLAG_INDIRECT, peer->relay [i].id,
                             peer->hex);
            peer->relay [i].until = 0;
        }
}

void
mesh_liveness_rumor_in (mesh_node_t *self, mesh_peer_t *from, mesh_msg_t *msg)
{
    (void) from;
    mesh_peer_t *peer = strlen (msg->subject) == 32
                      ? (mesh_peer_t *) zhashx_lookup (self->peers, msg->subject): NULL;
    if (!peer || peer->state == MESH_PEER_CONNECTING
    ||  (msg->env.id && peer->incarnation && msg->env.id != peer->incarnation))
        return;
    mesh_counters_add (self->counters, "rumor.received", 1);
    int64_t now = mesh_mono_ms ();
    int64_t waited = msg->env.seq > (uint64_t) self->gone_ms? self->gone_ms: (int64_t) msg->env.seq;
    int64_t since = now - waited;
    if (peer->last_heard > since)
        return;                 //  we heard from it after the teller began to wait
    //  Probe it now, on our own clock: taking the teller's deadline let
    //  one starved node's doubt become everybody's verdict at once (256
    //  nodes on 2 cores flapped for good); each node's own probes, direct
    //  and indirect, must fail for gone_ms before it says EXIT
    peer->rumored = true;       //  the teller told everyone already
    if (!peer->owed_since)
        s_probe (self, peer, now);
}

static void
s_rumor (mesh_node_t *self, mesh_peer_t *about, int64_t waited)
{
    mesh_head_t head = { .kind = MESH_KIND_RUMOR, .subject = about->hex,
                         .id = about->incarnation, .seq = (uint64_t) waited };
    for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p;
         p = (mesh_peer_t *) zhashx_next (self->peers))
        if (p != about && p->state == MESH_PEER_ALIVE && p->probes)
            mesh_node_send_locked (self, p, &head, NULL, 0);
    mesh_counters_add (self->counters, "rumor.sent", 1);
}

//  The next peer of the round-robin order that is silent; NULL if none
static mesh_peer_t *
s_next_silent (mesh_node_t *self, int64_t now, int period)
{
    for (size_t tries = 0; tries < self->liveness->order_len + 1; tries++) {
        if (self->liveness->order_at >= self->liveness->order_len) {
            //  a new round: the live table, shuffled (Fisher-Yates)
            size_t size = zhashx_size (self->peers);
            free (self->liveness->order);
            self->liveness->order = size? (char (*) [33]) malloc (size * 33): NULL;
            self->liveness->order_len = self->liveness->order_at = 0;
            if (!self->liveness->order)
                return NULL;
            for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p;
                 p = (mesh_peer_t *) zhashx_next (self->peers))
                memcpy (self->liveness->order [self->liveness->order_len++], p->hex, 33);
            for (size_t i = self->liveness->order_len; i > 1; i--) {
                size_t j = randombytes_uniform ((uint32_t) i);
                char tmp [33];
                memcpy (tmp, self->liveness->order [i - 1], 33);
                memcpy (self->liveness->order [i - 1], self->liveness->order [j], 33);
                memcpy (self->liveness->order [j], tmp, 33);
            }
            if (!self->liveness->order_len)
                return NULL;
        }
        mesh_peer_t *p = (mesh_peer_t *) zhashx_lookup (self->peers,
                                                        self->liveness->order [self->liveness->order_at++]);
        //  traffic proves liveness: a peer heard lately needs no probe
        if (p && p->state != MESH_PEER_CONNECTING && !p->owed_since && !p->closed_since
        &&  now - p->last_heard >= period)
            return p;
    }
    return NULL;
}

//  Is something waiting in the inbox that nobody read yet? The application
//  owns the inbox while it waits in dispatch; when it was woken but not yet
//  scheduled (a loaded machine), the answers that would clear a peer sit
//  there. The inbox's fd (read to EAGAIN before anyone waits on it) says
//  so without a libzmq call, which this thread may not make on it.
static bool
s_unread (mesh_node_t *self)
{
    struct pollfd fd = { .fd = self->inbox_fd, .events = POLLIN };
    return self->inbox_fd >= 0 && poll (&fd, 1, 0) == 1;
}

//  Are verdicts held because answers (or a BYE) may wait unread in the
//  inbox? For up to half a suspect timeout: a busy inbox must not hold
//  verdicts for ever. *unread caches the look for one tick: -1 not looked
//  yet, 0 no (or held long enough), 1 yes.
static bool
s_held_unread (mesh_node_t *self, int64_t now, int *unread)
{
    if (*unread < 0) {
        *unread = s_unread (self);
        if (!*unread)
            self->liveness->unread_since = 0;
        else
        if (!self->liveness->unread_since)
            self->liveness->unread_since = now;
        if (*unread && now - self->liveness->unread_since < self->suspect_ms / 2)
            mesh_counters_add (self->counters, "liveness.held-unread", 1);
        else
            *unread = 0;
    }
    return *unread > 0;
}

int
mesh_liveness_tick (mesh_node_t *self, int64_t now)
{
    int period = s_period (self);
    //  an idle node (nobody owed an answer, no link closed) wakes only for
    //  its next probe: ~2 times a second, not every tick
    int64_t next = INT64_MAX;
    bool busy = false;
    int unread = -1;            //  inbox looked at: -1 not yet, 0 no (or held long enough), 1 yes
    //  acted on after the walk: helpers and rumors walk the table too
    zlistx_t *gone = zlistx_new ();
    zlistx_t *closed = zlistx_new ();
    zlistx_t *indirect = zlistx_new ();
    zlistx_t *rumor = zlistx_new ();
    zlistx_t *again = zlistx_new ();
    bool new_period = now >= self->liveness->next_probe;
    //  A keeper that ran late (descheduled on a loaded machine, not yet
    //  frozen: mesh_discovery.c) watched nobody meanwhile: that time is not
    //  held against the peers, and no verdict is taken before the inbox,
    //  where their answers may wait, has been read once more
    int64_t late = self->tick_due? now - self->tick_due: 0;
    if (late > self->tick_ms)
        mesh_counters_add (self->counters, "keeper.late", 1);
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers); peer;
         peer = (mesh_peer_t *) zhashx_next (self->peers)) {
        if (peer->state == MESH_PEER_CONNECTING)
            continue;
        if (peer->closed_since) {
            busy = true;
            int64_t closed_for = now - peer->closed_since;
            bool verdict = closed_for >= MESH_CLOSED_GRACE_MS
                        || (peer->refused && closed_for >= MESH_CLOSED_BYE_MS);
            //  its BYE may wait unread in the inbox (the application not
            //  scheduled yet): a peer that said goodbye left "bye"
            if (closed_for >= MESH_CLOSED_BYE_MS && s_held_unread (self, now, &unread)) {
                if (now + self->tick_ms < next)
                    next = now + self->tick_ms;
                continue;
            }
            if (closed_for >= MESH_CLOSED_BYE_MS && peer->state == MESH_PEER_ALIVE) {
                peer->state = MESH_PEER_SUSPECT;
                mesh_counters_add (self->counters, "peers.suspected", 1);
                mesh_node_raise (self, MESH_EVENT_SUSPECT, peer, "closed");
            }
            if (verdict) {
                zlistx_add_end (closed, peer);
                continue;
            }
            int64_t due = peer->closed_since + (closed_for < MESH_CLOSED_BYE_MS
                                                ? MESH_CLOSED_BYE_MS: MESH_CLOSED_GRACE_MS);
            if (due < next)
                next = due;
            continue;
        }
        if (!peer->owed_since)
            continue;
        busy = true;
        if (late > self->tick_ms) {
            peer->owed_since = peer->owed_since + late < now? peer->owed_since + late: now;
            if (peer->hold_until < now + self->tick_ms)
                peer->hold_until = now + self->tick_ms;
        }
        int64_t owed = now - peer->owed_since;
        //  a probe unanswered for half a period: ask others to try
        if (peer->probe_sent_us && !peer->indirect_sent
        &&  mesh_mono_us () - peer->probe_sent_us >= (int64_t) period * 500)
            zlistx_add_end (indirect, peer);
        if (now < peer->hold_until)
            continue;
        //  a verdict is due: not while answers may wait unread, for up to
        //  half a suspect timeout (a busy inbox must not hold verdicts
        //  for ever)
        if (owed >= self->suspect_ms && s_held_unread (self, now, &unread))
            continue;
        if (owed >= self->gone_ms) {
            zlistx_add_end (gone, peer);
            continue;
        }
        if (owed >= self->suspect_ms && peer->state == MESH_PEER_ALIVE) {
            peer->state = MESH_PEER_SUSPECT;
            mesh_counters_add (self->counters, "peers.suspected", 1);
            mesh_node_raise (self, MESH_EVENT_SUSPECT, peer, "silent");
        }
        if (owed >= self->suspect_ms && !peer->rumored) {
            peer->rumored = true;
            zlistx_add_end (rumor, peer);
        }
        //  unanswered peers are probed again every period until a verdict
        if (new_period)
            zlistx_add_end (again, peer);
    }
    for (mesh_peer_t *peer = (mesh_peer_t *) zlistx_first (indirect); peer;
         peer = (mesh_peer_t *) zlistx_next (indirect))
        s_probe_indirect (self, peer);
    for (mesh_peer_t *peer = (mesh_peer_t *) zlistx_first (rumor); peer;
         peer = (mesh_peer_t *) zlistx_next (rumor))
        s_rumor (self, peer, now - peer->owed_since);
    for (mesh_peer_t *peer = (mesh_peer_t *) zlistx_first (again); peer;
         peer = (mesh_peer_t *) zlistx_next (again))
        s_probe (self, peer, now);
    zlistx_destroy (&indirect);
    zlistx_destroy (&rumor);
    zlistx_destroy (&again);
    if (new_period) {
        mesh_peer_t *peer = s_next_silent (self, now, period);
        if (peer)
            s_probe (self, peer, now);
        self->liveness->next_probe = now + period;
    }
    if (busy && now + self->tick_ms < next)
        next = now + self->tick_ms;
    if (self->liveness->next_probe < next)
        next = self->liveness->next_probe;
    for (mesh_peer_t *peer = (mesh_peer_t *) zlistx_first (gone); peer;
         peer = (mesh_peer_t *) zlistx_next (gone))
        mesh_node_remove_peer (self, peer, "silent");
    for (mesh_peer_t *peer = (mesh_peer_t *) zlistx_first (closed); peer;
         peer = (mesh_peer_t *) zlistx_next (closed))
        mesh_node_remove_peer (self, peer, "closed");
    zlistx_destroy (&gone);
    zlistx_destroy (&closed);
    return next > now? (int) (next - now): 0;
}

void
mesh_liveness_heard (mesh_node_t *self, mesh_peer_t *peer, int64_t now)
{
    s_alive (self, peer, now);
}
