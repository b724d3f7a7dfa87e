/*  =========================================================================
    mesh_node_discovery - the node's side of discovery, and the keeper's
    timers: what mesh_discovery.c heard (beacons, gossip, seeds) applied to
    the peer table; our peer list gossiped on the links; the timers of
    beacon, security, liveness, gossip and seeds, in one tick.
    Everything here runs in the keeper thread with node->lock held.
    ========================================================================= */

#include "mesh_node_int.h"
#include <sodium.h>

#define MESH_SIGHTINGS      16      //  beacons handled per read of the socket
#define MESH_BEACON_READS   256     //  datagrams read per wake-up

void
mesh_node_beacon_in (mesh_node_t *self)
{
    int64_t now = mesh_mono_ms ();
    mesh_sighting_t tab [MESH_SIGHTINGS];
    int budget = MESH_BEACON_READS;
    size_t count;
    do {
        count = mesh_discovery_beacon_in (self->discovery, tab, MESH_SIGHTINGS, &budget);
        for (size_t i = 0; i < count; i++) {
            mesh_sighting_t *s = &tab [i];
            mesh_peer_t *peer = (mesh_peer_t *) zhashx_lookup (self->peers, s->hex);
            if (peer) {
                if (s->leaving) {
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
                if (!peer->incarnation || peer->incarnation == s->incarnation)
                    continue;           //  known: beacons are not signs of life
                if (mesh_security_curve (self->security) && !mesh_security_has_secret (self->security))
                    continue;           //  unsigned: only its HELLO can tell a restart
                mesh_node_remove_peer (self, peer, "restarted");
            }
            if (s->leaving)
                continue;
            if (!mesh_discovery_admit (self->discovery, s->from, now)) {
                self->view_changed = mesh_mono_ms ();   //  a peer not met yet: not converged
                mesh_discovery_ignore (self->discovery, "rate");
                continue;
            }
            if (zhashx_size (self->peers) >= self->max_peers) {
                mesh_discovery_ignore (self->discovery, "table-full");
                continue;
            }
            if (!mesh_node_add_peer (self, s->id, s->endpoint, s->has_key? s->key: NULL, "beacon"))
                mesh_discovery_ignore (self->discovery, "refused");
        }
    } while (count == MESH_SIGHTINGS);
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
mesh_node_gossip_to (mesh_node_t *self, mesh_peer_t *to, mesh_peer_t *only)
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
mesh_node_peers_in (mesh_node_t *self, mesh_peer_t *from, const mesh_envelope_t *env)
{
    for (uint32_t i = 0; i < env->header_count; i++) {
        mesh_sighting_t s;
        int rc = mesh_discovery_gossip_entry (self->discovery, env, i, &s);
        if (rc == -1) {
            mesh_peer_count (self, from, "malformed.gossip");
            continue;
        }
        if (rc == -2 || zhashx_lookup (self->peers, s.hex))
            continue;
        const char *refused = mesh_discovery_gossip_vet (self->discovery, &s);
        if (refused) {
            mesh_counters_add (self->counters, refused, 1);
            continue;
        }
        if (!mesh_node_add_peer (self, s.id, s.endpoint, s.has_key? s.key: NULL, "gossip"))
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

//  Seed i is due: resolve it (without the lock), then discovery's verdict
//  on what we know: a live peer there already, or a HELLO on its probe
static void
s_seed (mesh_node_t *self, size_t i, int64_t now)
{
    char resolved [128];
    //  Resolve without the lock: a slow resolver must not stall liveness
    pthread_mutex_unlock (&self->lock);
    int rc = mesh_discovery_seed_resolve (self->discovery, i, resolved, sizeof resolved);
    pthread_mutex_lock (&self->lock);
    if (rc < 0 || self->stopping)
        return;
    bool satisfied = rc == 1 && streq (resolved, self->endpoint);
    for (mesh_peer_t *p = (mesh_peer_t *) zhashx_first (self->peers); p && rc == 1 && !satisfied;
         p = (mesh_peer_t *) zhashx_next (self->peers))
        satisfied = p->state != MESH_PEER_CONNECTING && streq (p->endpoint, resolved);
    void *probe = mesh_discovery_seed_verdict (self->discovery, i, now, rc == 1? resolved: NULL,
                                               satisfied);
    if (probe)
        mesh_node_send_hello (self, probe, true);
}

int
mesh_node_tick (mesh_node_t *self)
{
    int64_t now = mesh_mono_ms ();
    //  no fixed tick: each timer below says when it is due (an idle node's
    //  keeper wakes ~4 times a second, for its next probe)
    int64_t next = now + MESH_KEEPER_IDLE_MS;
    int64_t beacon = mesh_discovery_beacon_tick (self->discovery, now,
                                                 zhashx_size (self->peers));
    if (beacon < next)
        next = beacon;
    if (mesh_security_on (self->security))
        mesh_node_security_tick (self, now);
    if (self->stopping)
        return 0;
    if (now >= self->next_liveness) {
        self->next_liveness = now + s_liveness (self, now);
    }
    if (self->next_liveness < next)
        next = self->next_liveness;
    if (mesh_discovery_gossip_due (self->discovery, now)) {
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
    }
    size_t seeds = mesh_discovery_seed_count (self->discovery);
    for (size_t i = 0; i < seeds && !self->stopping; i++) {
        if (now >= mesh_discovery_seed_next (self->discovery, i))
            s_seed (self, i, now);
        if (mesh_discovery_seed_next (self->discovery, i) < next)
            next = mesh_discovery_seed_next (self->discovery, i);
    }
    now = mesh_mono_ms ();
    self->last_tick = now;
    self->tick_due = next;      //  a keeper woken much later than this ran late
    return next > now? (int) (next - now): 0;
}
