/*  =========================================================================
    mesh_node_int.h - the node's private state, shared by mesh_node.c
    (life, hooks), mesh_node_link.c (sending, links), mesh_node_dispatch.c
    (inbox, keeper, dispatch), mesh_node_discovery.c (discovery's findings
    applied, the keeper's timers), mesh_node_security.c (security's
    verdicts applied), mesh_peer.c (peer records) and mesh_liveness.c
    (probes, verdicts). Security, discovery and the stats collection own
    their state (mesh_security_t, mesh_discovery_t, mesh_peer_stats_t) and do
    not include this file. Everything here is guarded by node->lock unless
    a comment says otherwise.
    ========================================================================= */

#ifndef MESH_NODE_INT_H_INCLUDED
#define MESH_NODE_INT_H_INCLUDED

#include "meshbus/pattern.h"
#include "mesh_util.h"
#include "mesh_limits.h"
#include "mesh_envelope.h"
#include "mesh_beacon.h"
#include "mesh_counters.h"
#include "mesh_event.h"
#include "mesh_msg.h"
#include "mesh_security.h"
#include "mesh_discovery.h"
#include "mesh_peer_stats.h"
#include "mesh_batch.h"
#include <czmq.h>
#include <pthread.h>

#define MESH_MAX_HOOKS          16
#define MESH_KEEPER_TICK        100     //  ms between liveness checks
#define MESH_HOLD_MS            1       //  replies held while a batch frame is handled
#define MESH_APP_ACTIVE_MS      10      //  app called dispatch this recently: it owns the inbox
#define MESH_CONNECT_TIMEOUT    2000    //  ms a CONNECTING peer waits for HELLO
#define MESH_LEAVING_GRACE_MS   500     //  ms of link silence after a leaving beacon before EXIT
#define MESH_MAX_CONNECTING     256     //  half-open peers, like a SYN backlog
//  Liveness (mesh_liveness.c, docs/protocol.md#failure-detection)
#define MESH_KIND_RUMOR         9       //  core: "I suspect this peer" (subject = its id)
#define MESH_FLAG_PROBE         0x0100  //  PING: answer with an ACK
#define MESH_FLAG_ACK           0x0200  //  PING: answers probe `id`
#define MESH_FLAG_INDIRECT      0x0400  //  PING: about peer `subject`, on the sender's behalf
#define MESH_KEEPER_IDLE_MS     1000    //  the longest a keeper sleeps
#define MESH_GOSSIP_FANOUT      3       //  peers told of a newcomer (docs/protocol.md#gossip)
#define MESH_PROBE_HELPERS      3       //  peers asked to probe a silent peer for us
#define MESH_RELAYS             4       //  indirect requests held per target
#define MESH_CLOSED_BYE_MS      50      //  after a link closed: wait this long for a BYE
#define MESH_CLOSED_GRACE_MS    1000    //  a closed link not back by then: EXIT "closed"
#define MESH_RECONNECT_IVL      20      //  ms, first reconnect (and refusal) after a close
//  Frames libzmq reads ahead into the inbox, per sending peer, for an
//  application slower than the network. Frames, not messages: a batch
//  frame is up to ~12 KiB, so this bounds a slow receiver at ~120 MB per
//  sender; past it TCP pushes back and the sender's own high-water mark
//  (in messages) takes over.
#define MESH_INBOX_RCVHWM       10000
#define MESH_RECENT_EVENTS      32      //  pattern events a STATS answer carries
#define MESH_STATS_WANTED_MAX   64      //  STATS requests waiting for the keeper

//  A pattern event, kept for the STATS answers (the monitor's feed)
typedef struct {
    uint64_t seq;
    int64_t time_ms;            //  wall clock
    char name [32];             //  GAP, DEAD_LETTER...
    char peer [33];
    char peer_name [65];
    char detail [256];
    uint64_t count;
} mesh_recent_t;

typedef struct {
    uint8_t id [MESH_ID_SIZE];
    char hex [33];
    char name [65];
    char endpoint [128];        //  where we connect: tcp://host:port
    uint64_t incarnation;       //  0 until its HELLO arrived
    uint64_t serial;            //  new each time the peer is added: a pattern tells a
                                //  peer that left and came back from one that stayed
    int state;                  //  mesh_peer_state_t
    void *dealer;               //  our link to its inbox
    mesh_flight_t *flight;      //  what libzmq holds of that link (any thread)
    mesh_outbuf_t *batch;       //  small messages waiting for the link to drain
    bool batches;               //  its HELLO said it reads batch frames
    bool deltas;                //  its HELLO said it reads announcement deltas
    bool full;                  //  reached the high-water mark, not yet drained to half
    bool hello_sent;            //  our HELLO is queued on this link
    uint32_t link_tag;          //  the tag of its link's routing id that speaks for
                                //  it now (0: none yet, or a 17-byte foreign peer)
    bool gossiped;
    int64_t created;            //  mono ms
    int64_t last_heard;         //  mono ms of the last frame we noticed
    int64_t last_spoke;         //  mono ms of the last frame we noticed going out
    int64_t leaving_since;      //  mono ms its leaving beacon came, 0 = none
    int heartbeat_ms;           //  how often it needs to hear from us (its suspect/4)
    bool probes;                //  its HELLO said PROBES: it needs no frame every heartbeat_ms
    int64_t rtt_us;             //  smoothed probe round trip, -1 = not measured
    //  liveness (mesh_liveness.c)
    uint64_t probe_id;          //  our last probe's id
    int64_t probe_sent_us;      //  mono us it left, 0 = answered / none
    bool indirect_sent;         //  helpers were asked for the current probe
    int64_t owed_since;         //  mono ms of the first unanswered probe, 0 = none
    int64_t hold_until;         //  no verdict before then (our keeper ran late)
    bool rumored;               //  we told the mesh we suspect it
    struct { char hex [33]; uint64_t id; int64_t until; } relay [MESH_RELAYS];
    void *monitor;              //  PAIR reading the link's socket monitor
    int monitor_fd, monitor_ep; //  its ZMQ_FD, and the node's epoll set holding it
    int64_t closed_since;       //  mono ms the link closed (monitor), 0 = open
    bool refused;               //  and a reconnect was refused since
    uint64_t frames_in, frames_out, bytes_in, bytes_out;
    uint64_t msgs_in, msgs_out; //  messages: a batch frame holds several
    uint64_t seen_in, seen_out; //  frames_in/out at the last keeper check
    zhashx_t *headers;          //  key -> value (strings)
    zhashx_t *announce;         //  key -> zchunk_t *
    zhashx_t *announce_ver;     //  key -> uint64_t *, its version of each (0: none kept)
    mesh_counters_t *counters;
    //  security: the CURVE key its links use; the connection its key or
    //  HELLO was checked on is security's (mesh_security_frame)
    bool has_key;
    uint8_t key [MESH_KEY_SIZE];
    mesh_security_conn_t conn;
} mesh_peer_t;

#include "mesh_departed.h"

typedef struct {
    mesh_handler_fn *fn;
    void *arg;
    const char *owner;          //  the pattern's name; NULL: the application's
} mesh_kind_hook_t;

typedef struct {
    int interval;
    int64_t next;
    mesh_tick_fn *fn;
    void *arg;
} mesh_tick_hook_t;

typedef struct {
    int nframes;
    uint32_t part_at, part_len; //  see mesh_msg_t
    char sender [33];
    zmq_msg_t frames [1 + MESH_MAX_FRAMES];
} mesh_queued_t;

typedef struct _mesh_liveness_t mesh_liveness_t;

struct _mesh_node_t {
    pthread_mutex_t lock;
    //  identity and configuration (fixed after start)
    uint8_t id [MESH_ID_SIZE];
    char hex [33];
    char name [65];
    uint64_t incarnation;
    char cluster [65];
    char *ifaces;
    int beacon_port;
    int beacon_ivl;
    int suspect_ms, gone_ms, heartbeat_ms, gossip_ms;
    int tick_ms;                //  liveness check period: min(100, suspect/6)
    char bind_host [128];
    int bind_port;
    size_t max_peers;
    int hwm;                    //  per-link send high-water mark
    bool verbose;
    zhashx_t *headers;          //  our HELLO headers
    zhashx_t *announce;         //  key -> zchunk_t *, our announcements
    zhashx_t *announce_ver;     //  key -> uint64_t *, their versions
    zlistx_t *seeds;            //  configured seed endpoints (strings)
    //  running state
    bool started, stopping;
    int64_t started_ms;         //  mono ms of mesh_node_start, for "uptime_ms" in stats
    void *ctx;
    void *inbox;
    int inbox_fd;
    char endpoint [128];
    uint8_t routing_id [MESH_ROUTING_ID_SIZE];
    mesh_discovery_t *discovery;    //  beacon, seeds, gossip: its own state
    int64_t next_liveness;
    //  the keeper's clock (mesh_node_tick), read by liveness
    int64_t last_tick, tick_due;
    mesh_liveness_t *liveness;  //  probes: their own state (mesh_liveness.c)
    int monitor_ep;             //  epoll set of the links' monitor fds
    zhashx_t *peers;            //  hex id -> mesh_peer_t *
    //  Last peer sent to and received from: messages come in runs per peer,
    //  and a 32-byte compare is cheaper than a hash lookup (~110
    //  instructions each). Cleared wherever a peer leaves the table.
    mesh_peer_t *hot_send;
    mesh_peer_t *hot_recv;
    size_t connecting;          //  peers in CONNECTING state
    int64_t view_changed;       //  mono ms a peer was last named, entered or refused
                                //  by the beacon rate limit (discovery_quiet_ms)
    //  threads
    pthread_t keeper;
    bool keeper_running;
    int app_fd;                 //  eventfd: dispatch has work (mesh_node_fd)
    bool app_signalled;         //  app_fd may be readable: we wrote it since the last read
    bool inbox_idle;            //  the last inbox read ended in EAGAIN, see s_read
    int keeper_fd;              //  eventfd: wake the keeper
    int app_waiting;            //  threads blocked in dispatch
    int64_t app_last;           //  mono ms dispatch last ran
    int dispatching;            //  threads inside dispatch
    int in_hooks;               //  of those, inside a handler or hook
    //  work for dispatch
    zlistx_t *queue;            //  mesh_queued_t *, read by the keeper
    size_t queue_max;
    zlistx_t *raw_events;       //  mesh_event_t *, hooks not run yet
    zlistx_t *events;           //  mesh_event_t *, for the application
    size_t event_max;
    //  hooks
    mesh_kind_hook_t kinds [256];
    mesh_peer_fn *peer_hooks [MESH_MAX_HOOKS];
    void *peer_hook_args [MESH_MAX_HOOKS];
    size_t peer_hook_count;
    mesh_tick_hook_t ticks [MESH_MAX_HOOKS];
    size_t tick_count;
    mesh_plugin_t *patterns [MESH_MAX_PATTERNS];    //  mesh_plugin.c
    size_t pattern_count;
    //  counters
    mesh_counters_t *counters;
    mesh_departed_t *departed;  //  counters of peers that left
    uint64_t frames_in, frames_out, msgs_in, msgs_out;
    size_t batches_waiting;     //  peers with a batch waiting (mesh_node_flush_drained)
    int64_t held_at;            //  when dispatch began holding what handlers send (0: not)
    uint64_t peer_serial;       //  the last mesh_peer_t.serial given
    uint32_t link_serial;       //  the last tag our links' routing ids carried
    uint64_t generation;        //  bumped on ENTER, EXIT and UPDATE (read without the lock)
    mesh_security_t *security;  //  CURVE, trust, ZAP, secret: its own state
    mesh_peer_stats_t *peer_stats;  //  stats collected from peers: its own state
    //  stats answers (mesh_node_stats.c)
    pthread_mutex_t stats_lock; //  held while patterns write their figures, outside
                                //  every other lock: unregister takes it, so a
                                //  pattern never goes while its stats op runs
    zlistx_t *stats_wanted;     //  mesh_stats_wanted_t *: requests the keeper answers
    mesh_recent_t recent [MESH_RECENT_EVENTS];  //  the last pattern events, a ring
    uint64_t recent_next;       //  number of the next one
};

//  mesh_node_stats.c: STATS requests are answered by the keeper, which
//  collects the patterns' figures without the node's lock (lock held on
//  entry and exit; let go inside)
void
    mesh_node_stats_wanted (mesh_node_t *self, mesh_peer_t *peer, uint64_t id);
void
    mesh_node_stats_answer (mesh_node_t *self);
//  Every pattern's figures, as the members of "patterns": {...} (a
//  malloc'd string, "" when none). No lock held.
char *
    mesh_node_patterns_json (mesh_node_t *self);
//  Keep a pattern event for the STATS answers' "events". Lock held.
void
    mesh_node_recent_add (mesh_node_t *self, const mesh_event_t *event);
//  "events": {"next": N, "recent": [...]} (the member's value). Lock held.
void
    mesh_node_recent_json (mesh_node_t *self, zchunk_t *out);

//  mesh_peer.c. wake_fd: the keeper's eventfd (see mesh_flight_new); NULL
//  when out of memory
mesh_peer_t *
    mesh_peer_new (const uint8_t *id, const char *endpoint, int wake_fd);
void
    mesh_peer_destroy (mesh_peer_t **self_p);
//  Count a named event for the peer and for the node
void
    mesh_peer_count (mesh_node_t *node, mesh_peer_t *peer, const char *name);
//  The same, by delta (the messages of a batch)
void
    mesh_peer_count_n (mesh_node_t *node, mesh_peer_t *peer, const char *name, uint64_t delta);

//  mesh_node_link.c, lock held
int
    mesh_node_send_locked (mesh_node_t *self, mesh_peer_t *peer, const mesh_head_t *head,
                           const void *body, size_t size);
int
    mesh_node_send_hello (mesh_node_t *self, void *socket, bool reply_wanted);
//  Our HELLO on a peer's link, after whatever waits there
int
    mesh_node_hello_to (mesh_node_t *self, mesh_peer_t *peer, bool reply_wanted);
//  A known peer opened a new link to us: a fresh link to it, our HELLO
//  and our announcements on it
void
    mesh_node_relink (mesh_node_t *self, mesh_peer_t *peer);
//  A HELLO came (mesh_node_link.c): docs/protocol.md#hello
void
    mesh_node_hello_in (mesh_node_t *self, const uint8_t *id, bool on_link, mesh_msg_t *msg);
//  Hand the peer's waiting batch to its link now (0, or -1: lost, counted)
int
    mesh_node_flush (mesh_node_t *self, mesh_peer_t *peer);
//  Hand over every waiting batch whose link has drained (the keeper, woken
//  by a link's last frame leaving libzmq)
void
    mesh_node_flush_drained (mesh_node_t *self);
//  Hand over every waiting batch (dispatch, before it waits or returns)
void
    mesh_node_flush_all (mesh_node_t *self);
//  The node whose inbound batch frame this thread is handling, if any:
//  what its handlers send waits in the links' batches until the frame is
//  done (or MESH_HOLD_MS passed), a batch in, a batch out (mesh_node_dispatch.c)
extern __thread mesh_node_t *mesh_node_holding;
//  Open a link to a peer we learned of; NULL if refused (table full...).
//  key: the peer's CURVE key, NULL when not known (refused with CURVE on).
mesh_peer_t *
    mesh_node_add_peer (mesh_node_t *self, const uint8_t *id, const char *endpoint,
                        const uint8_t *key, const char *source);
//  Remove a peer; when it had entered, raise EXIT with the reason.
void
    mesh_node_remove_peer (mesh_node_t *self, mesh_peer_t *peer, const char *reason);

//  mesh_node_dispatch.c, lock held
void
    mesh_node_raise (mesh_node_t *self, int type, mesh_peer_t *peer, const char *detail);

//  mesh_node_announce.c: announcements whole or as deltas. Lock held.
//  announce_out: true when it grew old in place to the new value
bool
    mesh_node_announce_out (mesh_node_t *self, const char *key, zchunk_t *old,
                            const void *value, size_t size);
void
    mesh_node_announce_greet (mesh_node_t *self, mesh_peer_t *peer);
void
    mesh_node_update_in (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg);
//  Signal an eventfd (app_fd, keeper_fd; -1 is none); lock held or not
void
    mesh_node_signal (int fd);
//  The keeper thread (arg: the node), started by mesh_node_start; it takes
//  the lock itself
void *
    mesh_node_keeper (void *arg);


//  mesh_node.c
void
    mesh_node_log (mesh_node_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

//  mesh_node_security.c, lock held: security's verdicts applied to the
//  peer table. A frame from a known peer with security on: true to take
//  it; false: dropped (counted for the peer), maybe a HELLO asked for.
bool
    mesh_node_security_frame (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg);
//  Every keeper tick with security on: security's tick; fds closed are
//  forgotten, revoked keys' peers cut and removed (unlocks during the
//  trust directory's rescan)
void
    mesh_node_security_tick (mesh_node_t *self, int64_t now);

//  mesh_node_discovery.c, lock held: discovery's findings applied to the
//  peer table, gossip, and the keeper's timers
void
    mesh_node_beacon_in (mesh_node_t *self);
//  Timers: beacon, security, liveness, heartbeat, gossip, seeds. Returns
//  ms to the next.
int
    mesh_node_tick (mesh_node_t *self);
//  Our live peers to `to` (all, or only `only`); with only NULL, `to`
//  entered: a few others hear of it too
void
    mesh_node_gossip_to (mesh_node_t *self, mesh_peer_t *to, mesh_peer_t *only);
void
    mesh_node_peers_in (mesh_node_t *self, mesh_peer_t *from, const mesh_envelope_t *env);

//  mesh_liveness.c, lock held. The probes' node-wide state is a
//  mesh_liveness_t; per peer it is in mesh_peer_t.
mesh_liveness_t *
    mesh_liveness_new (void);
void
    mesh_liveness_destroy (mesh_liveness_t **self_p);
//  The first probe period ends at `at` (mesh_node_start)
void
    mesh_liveness_first_probe (mesh_liveness_t *self, int64_t at);
//  Watch a new link's socket monitor (0, or -1: no monitor, silence only)
int
    mesh_liveness_watch (mesh_node_t *self, mesh_peer_t *peer);
//  Stop watching a link (before its DEALER closes)
void
    mesh_liveness_unwatch (mesh_peer_t *peer);
//  Read the monitors that have events (the keeper, monitor_ep readable)
void
    mesh_liveness_monitor_in (mesh_node_t *self);
//  Probes, verdicts, closed links. Returns ms to its next deadline.
int
    mesh_liveness_tick (mesh_node_t *self, int64_t now);
//  Evidence from frames, seen by the keeper's check (frames_in moved)
void
    mesh_liveness_heard (mesh_node_t *self, mesh_peer_t *peer, int64_t now);
void
    mesh_liveness_ping_in (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg);
void
    mesh_liveness_rumor_in (mesh_node_t *self, mesh_peer_t *peer, mesh_msg_t *msg);

//  The node's stats JSON, with patterns (the members of "patterns", "" for
//  none) inside. Lock held.
char *
    mesh_node_stats_json_with (mesh_node_t *self, const char *patterns);

//  A plugin's table of operations, and (in *self) what it passes them
const mesh_pattern_t *
    mesh_plugin_ops (mesh_plugin_t *plugin, void **self);

//  Destroy the patterns still plugged in (mesh_plugin.c), first thing in
//  mesh_node_destroy
void
    mesh_node_destroy_patterns (mesh_node_t *self);
//  A peer's announcement for key as mesh_node_peer_announcement, and the
//  serial of the peer's record (0: no such peer): a pattern's watch sees a
//  peer that left and came back between two syncs (mesh_plugin.c)
void *
    mesh_node_peer_announcement_serial (mesh_node_t *self, const char *peer, const char *key,
                                        size_t *size, uint64_t *serial);

#endif
