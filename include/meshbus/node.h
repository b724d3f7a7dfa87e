/*  =========================================================================
    meshbus/node.h - a node: its life, settings, loop, links, peers and counters

    Threading. A node is safe to use from several threads. The data path
    runs in the caller's thread: mesh_node_send() writes to the peer's link
    directly and mesh_node_dispatch() reads the inbox and runs handlers
    directly, so there is no thread hop per message (docs/architecture.md
    says why). A small keeper thread owned by the node sends beacons and
    heartbeats and tracks liveness, so a node stays ALIVE while the
    application is busy for seconds in a handler; when the application has
    not called mesh_node_dispatch() for a while, the keeper also drains the
    inbox into a bounded queue that dispatch() serves first.
    ========================================================================= */

#ifndef MESHBUS_NODE_H_INCLUDED
#define MESHBUS_NODE_H_INCLUDED

#include "meshbus/base.h"
#include "meshbus/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

//  ---------------------------------------------------------------------
//  User-visible defaults

#define MESH_DEFAULT_BEACON_PORT      5670    //  UDP port of the discovery beacon
#define MESH_DEFAULT_BEACON_IVL       1000    //  ms between beacons
#define MESH_DEFAULT_HEARTBEAT_IVL    250     //  ms of outbound silence before a PING (suspect/4)
#define MESH_DEFAULT_SUSPECT_MS       1000    //  ms of inbound silence before SUSPECT
#define MESH_DEFAULT_GONE_MS          3000    //  ms of inbound silence before EXIT
#define MESH_DEFAULT_GOSSIP_IVL       5000    //  ms between gossip rounds
#define MESH_DEFAULT_SEED_IVL_MAX     30000   //  ms, ceiling of the seed retry backoff
#define MESH_DEFAULT_CLUSTER          "meshbus"   //  cluster name when none is set
#define MESH_DEFAULT_SNDHWM           100000  //  messages queued per link before EAGAIN
#define MESH_DEFAULT_LINGER           2000    //  ms a stopping node waits to flush links
#define MESH_DEFAULT_INBOX_QUEUE      100000  //  messages the keeper may hold for dispatch
#define MESH_DEFAULT_EVENT_QUEUE      10000   //  events held for the application

//  ---------------------------------------------------------------------
//  Events: peer life and, later, pattern events. Read them with
//  mesh_node_event() after mesh_node_dispatch(), or wait for the node's fd.

typedef enum {
    MESH_EVENT_ENTER = 1,   //  a peer is known and its link is up
    MESH_EVENT_EXIT,        //  a peer left (BYE), went silent, or restarted
    MESH_EVENT_SUSPECT,     //  a peer has been silent past the suspect timeout
    MESH_EVENT_BACK,        //  a suspect peer spoke again
    MESH_EVENT_UPDATE,      //  a peer changed an announcement (detail = key)
    MESH_EVENT_PATTERN = 32 //  first event type a pattern may post
} mesh_event_type_t;

typedef struct _mesh_event_t mesh_event_t;

int
    mesh_event_type (const mesh_event_t *self);
//  "ENTER", "EXIT"... or the name the pattern posted.
const char *
    mesh_event_name (const mesh_event_t *self);
const char *
    mesh_event_peer (const mesh_event_t *self);        //  peer id, hex
const char *
    mesh_event_peer_name (const mesh_event_t *self);
const char *
    mesh_event_endpoint (const mesh_event_t *self);
//  Free text: exit reason ("bye", "silent", "restarted"), a key...
const char *
    mesh_event_detail (const mesh_event_t *self);
//  A number that goes with the event (a gap's size...), 0 if none.
uint64_t
    mesh_event_count (const mesh_event_t *self);
void
    mesh_event_destroy (mesh_event_t **self_p);

//  ---------------------------------------------------------------------
//  Node

typedef struct _mesh_node_t mesh_node_t;

//  Create a node. name may be NULL (the id's first 8 hex chars are used).
//  Nothing touches the network until mesh_node_start().
mesh_node_t *
    mesh_node_new (const char *name);
//  Stop (if started: BYE to every peer, queued messages flushed for up to
//  the linger time) and free. Safe to call twice.
void
    mesh_node_destroy (mesh_node_t **self_p);

//  Configuration, before mesh_node_start(). Each returns 0 or -1.
//  Cluster: only nodes with the same cluster name see each other.
int
    mesh_node_set_cluster (mesh_node_t *self, const char *cluster);
//  Interfaces for the beacon: NULL or "lo" = loopback (the default, works
//  on a host with only lo), or "eth0,eth1".
int
    mesh_node_set_iface (mesh_node_t *self, const char *ifaces);
int
    mesh_node_set_beacon_port (mesh_node_t *self, int port);
//  Beacon interval in ms; 0 turns the beacon off (seeds and gossip only).
int
    mesh_node_set_beacon_interval (mesh_node_t *self, int msecs);
//  Liveness: SUSPECT after suspect_ms of silence, EXIT after gone_ms.
int
    mesh_node_set_timeouts (mesh_node_t *self, int suspect_ms, int gone_ms);
//  Add a seed "tcp://host:port" (host names are resolved at each try).
int
    mesh_node_add_seed (mesh_node_t *self, const char *endpoint);
//  Address to bind the inbox to (default: the beacon's address, 127.0.0.1
//  on loopback) and port (0 = ephemeral, the default).
int
    mesh_node_set_bind (mesh_node_t *self, const char *host, int port);
//  A string header peers receive in HELLO (key <= 64, value <= 1024).
int
    mesh_node_set_header (mesh_node_t *self, const char *key, const char *value);
//  Fixed node id (32 hex chars) instead of a random one. A node restarted
//  with the same id and a new incarnation is EXIT then ENTER to its peers.
int
    mesh_node_set_id (mesh_node_t *self, const char *hex_id);
//  Messages queued per link before a send returns MESH_EAGAIN (default
//  MESH_DEFAULT_SNDHWM). Lower bounds memory per slow peer. Counted in
//  messages, also when a backed-up link packs small ones into batch
//  frames (docs/protocol.md, "Batch frames"). A link that reached it takes
//  messages again once it drained to half, as libzmq's pipes do.
int
    mesh_node_set_hwm (mesh_node_t *self, int messages);
//  Bound of the peer table (default MESH_MAX_PEERS_DEFAULT).
int
    mesh_node_set_max_peers (mesh_node_t *self, size_t max_peers);
//  Log peer events and links of this node at MESH_LOG_INFO (otherwise
//  at MESH_LOG_DEBUG); see mesh_set_log.
void
    mesh_node_set_verbose (mesh_node_t *self, bool verbose);

//  Bind the inbox, open the beacon, start the keeper thread. 0 or -1.
int
    mesh_node_start (mesh_node_t *self);
//  Say BYE to every peer, flush, stop the keeper. Idempotent.
int
    mesh_node_stop (mesh_node_t *self);

//  Identity
const char *
    mesh_node_id (mesh_node_t *self);           //  32 hex chars
const char *
    mesh_node_name (mesh_node_t *self);
uint64_t
    mesh_node_incarnation (mesh_node_t *self);  //  new at every start
//  "tcp://127.0.0.1:40123" once started, else NULL.
const char *
    mesh_node_endpoint (mesh_node_t *self);

//  ---------------------------------------------------------------------
//  The application's loop

//  Receive and handle what arrived: runs kind handlers and peer hooks in
//  the calling thread. Waits up to timeout_ms (0 = do not wait, -1 =
//  forever) for the first thing to do, then handles everything ready.
//  Returns the number of messages and events handled, or -1 (MESH_ECLOSED
//  once stopped).
int
    mesh_node_dispatch (mesh_node_t *self, int timeout_ms);
//  Next queued event or NULL (never waits). The caller destroys it.
mesh_event_t *
    mesh_node_event (mesh_node_t *self);
//  Dispatch until an event is queued or timeout_ms passes; NULL on timeout.
mesh_event_t *
    mesh_node_wait_event (mesh_node_t *self, int timeout_ms);
//  A file descriptor that is readable when mesh_node_dispatch() has work,
//  for an application's own poll loop. Do not read or close it.
int
    mesh_node_fd (mesh_node_t *self);

//  ---------------------------------------------------------------------
//  Sending on links

//  Send one message to a peer (id as 32 hex chars). The body is copied into
//  the header frame when small; bodies over 64 KiB travel as their own
//  frame. Never blocks: returns -1 with MESH_EAGAIN when the link is at its
//  high-water mark, MESH_ENOPEER when the peer is unknown or gone.
int
    mesh_node_send (mesh_node_t *self, const char *peer, const mesh_head_t *head,
                    const void *body, size_t size);
//  Same, without copying the body: free_fn (data, hint) is called when
//  every send that references it is done. Takes over data even on failure.
int
    mesh_node_send_zc (mesh_node_t *self, const char *peer, const mesh_head_t *head,
                       void *data, size_t size, mesh_free_fn *free_fn, void *hint);
//  Send a DIRECT message (kind MESH_KIND_DIRECT) with a body to a peer.
int
    mesh_node_whisper (mesh_node_t *self, const char *peer, const char *subject,
                       const void *body, size_t size);

//  ---------------------------------------------------------------------
//  Receiving DIRECT messages (and, for patterns, the kinds they own:
//  meshbus/pattern.h). The handler runs in the thread that calls
//  mesh_node_dispatch(), never with an internal lock held, so it may call
//  any function of the node.

#define MESH_KIND_DIRECT    6   //  application message to one peer (mesh_node_whisper)

//  Handle every message of one kind. One handler per kind; NULL removes it.
//  Messages of a kind without a handler are dropped and counted.
typedef void (mesh_handler_fn) (mesh_node_t *node, const mesh_msg_t *msg, void *arg);
int
    mesh_node_on_kind (mesh_node_t *self, int kind, mesh_handler_fn *fn, void *arg);

//  ---------------------------------------------------------------------
//  Peers

typedef enum {
    MESH_PEER_CONNECTING = 1,   //  link opened, no HELLO back yet
    MESH_PEER_ALIVE,
    MESH_PEER_SUSPECT,
} mesh_peer_state_t;

//  Number of peers in ALIVE or SUSPECT state.
size_t
    mesh_node_peer_count (mesh_node_t *self);
//  Ids of ALIVE and SUSPECT peers as a NULL-terminated array of strings;
//  the caller frees it with mesh_strv_free().
char **
    mesh_node_peers (mesh_node_t *self);
void
    mesh_strv_free (char ***strv_p);
//  How long (ms) this node's view of the mesh has stood still: no peer
//  newly named (beacon, seed, gossip), none entered, no beacon of an
//  unknown node refused by the rate limit; 0 while a peer it named has
//  not answered yet (CONNECTING), -1 before start. Once this reaches
//  about a beacon interval, the node has met every node whose beacon
//  reaches it and every peer their gossip named: a fresh node's view
//  has converged (request-reply waits for that before it says "no
//  responders").
int64_t
    mesh_node_discovery_quiet_ms (mesh_node_t *self);
//  State of one peer (a mesh_peer_state_t), or -1 if unknown.
int
    mesh_node_peer_state (mesh_node_t *self, const char *peer);
//  Name / endpoint / header of a peer: copies the caller frees, or NULL.
char *
    mesh_node_peer_name (mesh_node_t *self, const char *peer);
char *
    mesh_node_peer_endpoint (mesh_node_t *self, const char *peer);
char *
    mesh_node_peer_header (mesh_node_t *self, const char *peer, const char *key);
//  Round-trip time to a peer in microseconds, measured by liveness probes
//  (a smoothed mean, as TCP's SRTT: 7/8 old + 1/8 new), or -1 while not
//  measured yet or for an unknown peer. Also "rtt_us" per peer in
//  mesh_node_stats_json (-1 there too).
int64_t
    mesh_node_peer_rtt_us (mesh_node_t *self, const char *peer);
//  Every header a peer announced: key, value, key, value, ..., NULL (by
//  key; empty when none); free it with mesh_strv_free(). NULL with
//  MESH_ENOPEER when the peer is unknown (or MESH_ESYS: out of memory).
char **
    mesh_node_peer_headers (mesh_node_t *self, const char *peer);

//  ---------------------------------------------------------------------
//  Counters

//  Add delta to a named counter, globally (peer NULL) or for one peer.
//  Patterns use it for what they drop, so loss is never silent. Names are
//  dotted: "pubsub.dropped.hwm".
void
    mesh_node_count (mesh_node_t *self, const char *peer, const char *name,
                     uint64_t delta);
//  Value of a counter (0 if never counted). A peer's counters outlive it:
//  when it leaves they are kept under its id (the last 256 peers that
//  left), still counted on by mesh_node_count(), and taken back if the
//  same id returns.
uint64_t
    mesh_node_counter (mesh_node_t *self, const char *peer, const char *name);
//  Every counter of the node, of each peer and of each peer that left
//  ("departed", with why it left) as one JSON object (the format of
//  `meshbus stats --json`). The caller frees it with free().
char *
    mesh_node_stats_json (mesh_node_t *self);
//  Ask every alive peer for its counters; their JSON arrives within
//  timeout_ms. Returns a JSON object {"<peer id>": {...}, ...}; free().
char *
    mesh_node_peer_stats_json (mesh_node_t *self, int timeout_ms);

//  Block until the link to peer can take a message or timeout_ms passes
//  (back-pressure for senders that must not drop). A link that reached its
//  high-water mark takes messages again once it drained to half of it
//  (as libzmq's pipes), so a sender wakes for a run of sends. 0, or -1 with
//  MESH_ETIMEDOUT / MESH_ENOPEER.
int
    mesh_node_wait_writable (mesh_node_t *self, const char *peer, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
