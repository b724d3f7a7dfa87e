/*  =========================================================================
    meshbus.h - the whole public API of meshbus

    meshbus is a brokerless message bus. Nodes find each other (UDP beacon on
    loopback or a LAN, seed addresses, gossip) and talk directly over one
    ZeroMQ link per peer pair, with msgpack envelopes (docs/wire-*.md).

    Threading. A node is safe to use from several threads. The data path
    runs in the caller's thread: mesh_node_send() writes to the peer's
    socket directly and mesh_node_dispatch() reads the inbox and runs
    handlers directly, so there is no thread hop per message (an actor hop
    costs ~40 us per round trip here and Zyre, which uses one, reaches 4% of
    raw libzmq's rate). A small keeper thread owned by the node sends
    beacons and heartbeats and tracks liveness, so a node stays ALIVE while
    the application is busy for seconds in a handler; when the application
    has not called mesh_node_dispatch() for a while, the keeper also drains
    the inbox into a bounded queue that dispatch() serves first.

    Conventions: actions return 0 or -1 with the reason in mesh_errno();
    constructors and queries return an object or NULL; `T **` arguments are
    taken over by the callee on success; const returns are borrowed.
    ========================================================================= */

#ifndef MESHBUS_H_INCLUDED
#define MESHBUS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MESHBUS_VERSION_MAJOR 0
#define MESHBUS_VERSION_MINOR 1
#define MESHBUS_VERSION_PATCH 0

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

//  Limits a user meets (the wire's full list is in src/mesh_limits.h)
#define MESH_MAX_SUBJECT              255     //  bytes in a subject, pattern, service or queue name

//  ---------------------------------------------------------------------
//  Errors

typedef enum {
    MESH_OK = 0,
    MESH_EINVAL,            //  bad argument (name too long, bad endpoint...)
    MESH_ENOPEER,           //  no such peer, or it is gone
    MESH_EAGAIN,            //  link full (high-water mark) or nothing ready
    MESH_ETOOBIG,           //  a field or body breaks a limit
    MESH_ESTATE,            //  wrong node state (not started, already started)
    MESH_ESYS,              //  an operating system or libzmq call failed
    MESH_ETIMEDOUT,         //  deadline passed
    MESH_ENORESPONDERS,     //  nobody offers what was asked for
    MESH_EFULL,             //  a bounded store is full
    MESH_EREMOTE,           //  the remote side answered with an error
    MESH_ECLOSED,           //  the node is stopping
    MESH_EPROVIDERLEFT,     //  the provider of a call left with it and no retry remains
} mesh_err_t;

//  Reason for the last failure in this thread.
int
    mesh_errno (void);
//  Text for an error code.
const char *
    mesh_strerror (int err);
//  Record a failure for mesh_errno() / mesh_last_error() in this thread
//  (for pattern modules built on this API). Returns -1.
int
    mesh_set_error (int err, const char *detail);
//  Text of the last failure in this thread, with detail where there is
//  some ("interface eth9 not found"). Borrowed, valid until the next call.
const char *
    mesh_last_error (void);

//  Logging. The library never writes to stdout or stderr itself: every
//  line it has to say (peer events with verbose nodes, security refusals,
//  bad key files) goes to the handler installed here, or nowhere. The
//  handler may be called from any thread of the library, one line at a
//  time; node is the name of the node that speaks (may be ""). Lines
//  above level are not formatted at all.
typedef enum {
    MESH_LOG_ERROR = 0,     //  something failed that the user must fix
    MESH_LOG_WARNING,       //  refused or dropped input, misconfiguration
    MESH_LOG_INFO,          //  peer events and links of verbose nodes
    MESH_LOG_DEBUG,         //  the same for nodes that are not verbose
} mesh_log_level_t;

typedef void (mesh_log_fn) (mesh_log_level_t level, const char *node,
                            const char *line, void *arg);
//  Install handler (NULL: the library is silent, the default) for lines
//  at level and below. Process-wide; call it before starting nodes.
void
    mesh_set_log (mesh_log_fn *handler, mesh_log_level_t level, void *arg);
//  Say a line through the handler (for pattern modules built on this API).
void
    mesh_log (mesh_log_level_t level, const char *node, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  ---------------------------------------------------------------------
//  Message kinds on a link. The core owns 1..15; each pattern owns a
//  range. Documented in docs/wire-envelope.md.

#define MESH_KIND_HELLO     1   //  I am: name, incarnation, headers, endpoint
#define MESH_KIND_PING      2   //  sign of life after outbound silence
#define MESH_KIND_BYE       3   //  I am stopping: EXIT me now
#define MESH_KIND_UPDATE    4   //  announcement changed: subject = key, body = value
#define MESH_KIND_PEERS     5   //  gossip: headers = node id (hex) -> endpoint
#define MESH_KIND_DIRECT    6   //  application message to one peer
#define MESH_KIND_STATS_REQ 7   //  ask for counters
#define MESH_KIND_STATS_REP 8   //  counters as JSON in the body
#define MESH_KIND_PATTERN   16  //  first kind a pattern may register

//  Envelope flags (low 16 bits are the core's, high 16 the pattern's)
#define MESH_FLAG_REPLY_WANTED  0x0001  //  HELLO: answer with your HELLO
#define MESH_FLAG_FRAMES        0x0002  //  body travels in the following frames
#define MESH_FLAG_BATCHES       0x0004  //  HELLO: I read batch frames (docs/protocol.md)

//  ---------------------------------------------------------------------
//  Messages. A mesh_msg_t handed to a handler is borrowed and valid only
//  during the call; mesh_msg_dup() keeps one.

typedef struct _mesh_msg_t mesh_msg_t;

//  Message as seen by a receive handler
const char *
    mesh_msg_sender (const mesh_msg_t *self);   //  peer id, 32 hex chars
const char *
    mesh_msg_sender_name (const mesh_msg_t *self);
int
    mesh_msg_kind (const mesh_msg_t *self);
uint32_t
    mesh_msg_flags (const mesh_msg_t *self);
uint64_t
    mesh_msg_seq (const mesh_msg_t *self);
uint64_t
    mesh_msg_id (const mesh_msg_t *self);
uint64_t
    mesh_msg_deadline (const mesh_msg_t *self);
//  Subject, reply-to and content type: "" when absent, never NULL.
const char *
    mesh_msg_subject (const mesh_msg_t *self);
const char *
    mesh_msg_reply (const mesh_msg_t *self);
const char *
    mesh_msg_ctype (const mesh_msg_t *self);
//  Value of a user header, or NULL. Copied into a buffer of the message.
const char *
    mesh_msg_header (const mesh_msg_t *self, const char *key);
size_t
    mesh_msg_header_count (const mesh_msg_t *self);
//  The i-th header; returns false past the end. Not NUL-terminated:
//  lengths in *klen / *vlen.
bool
    mesh_msg_header_at (const mesh_msg_t *self, size_t i, const char **key,
                        size_t *klen, const char **value, size_t *vlen);
//  Body bytes. Bodies that arrived in several frames are joined on the
//  first call (one copy); a single frame is returned in place.
const void *
    mesh_msg_body (const mesh_msg_t *self);
size_t
    mesh_msg_size (const mesh_msg_t *self);
//  A copy the caller owns; NULL on out of memory.
mesh_msg_t *
    mesh_msg_dup (const mesh_msg_t *self);
void
    mesh_msg_destroy (mesh_msg_t **self_p);

//  What to send: a plain struct the caller fills on the stack. Unused
//  strings are NULL; headers is an array of 2 * header_count strings
//  (key, value, key, value...).
typedef struct {
    int kind;
    uint32_t flags;
    uint64_t seq;
    uint64_t id;
    uint64_t deadline;          //  ms since the epoch, 0 = none
    const char *subject;
    const char *reply;
    const char *ctype;
    const char *const *headers;
    size_t header_count;
} mesh_head_t;

//  A message built from head and body, as if sender had sent it (for local
//  delivery and replays). sender may be NULL ("" then). NULL on a bad head.
mesh_msg_t *
    mesh_msg_new (const mesh_head_t *head, const void *body, size_t size,
                  const char *sender, const char *sender_name);
//  Does a message of head and a body of size bytes fit every limit (header
//  count, key and value lengths, content type, body)? 0, or -1 with
//  MESH_ETOOBIG and the limit in mesh_last_error(). Patterns check what an
//  application hands them, so that a message that breaks a limit fails
//  where it is sent, not later as a send error counted per peer.
int
    mesh_head_check (const mesh_head_t *head, size_t size);
//  Refill self (from mesh_msg_new or mesh_msg_dup) in place: afterwards it
//  reads exactly as mesh_msg_new (head, body, size, sender, sender_name)
//  would, but no header frame is encoded and decoded, and its buffer is
//  reused when big enough and not shared with a copy. For patterns that
//  hand many messages to handlers in turn (each job of a batch); copies
//  made earlier stay as they were. 0, or -1 on a bad head (MESH_ETOOBIG)
//  or out of memory (MESH_ESYS), self unchanged then.
int
    mesh_msg_set (mesh_msg_t *self, const mesh_head_t *head, const void *body, size_t size,
                  const char *sender, const char *sender_name);

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

//  Security (off by default; see docs/security.md). Before mesh_node_start.
//
//  CURVE on every link. keyfile is a NAME.key written by mesh_keygen (or
//  `meshbus keygen`): a czmq-style ZPL file holding the public and secret
//  key in Z85. With CURVE on, the node runs its own ZAP handler and accepts
//  a peer's key if it is the node's own public key (nodes that share one
//  key pair form a cluster), a key of the trusted directory, or, with a
//  cluster secret, a key whose HELLO carries a valid MAC. Nothing else.
int
    mesh_node_set_curve (mesh_node_t *self, const char *keyfile);
//  The same with binary keys (32 bytes each).
int
    mesh_node_set_curve_keys (mesh_node_t *self, const uint8_t *public_key,
                              const uint8_t *secret_key);
//  Trusted public keys: every *.pub file of dir (ZPL, as mesh_keygen
//  writes them), held in memory. Malformed files and repeated keys are
//  skipped with a warning and counted (trust.skipped.*). The directory is
//  watched: a key that disappears cuts that peer's links within a few
//  seconds and is refused afterwards; a key that appears is accepted.
int
    mesh_node_set_trust (mesh_node_t *self, const char *dir);
//  Cluster secret: the contents of file (16 bytes to 4 KiB; e.g. 32 random
//  bytes, or a passphrase). Beacons and HELLO then carry a MAC over node
//  id, endpoint, public key and time; those without a valid, recent MAC are
//  ignored and counted. Works with or without CURVE.
int
    mesh_node_set_secret (mesh_node_t *self, const char *file);
//  The same with the secret in memory.
int
    mesh_node_set_secret_bytes (mesh_node_t *self, const void *secret, size_t size);
//  The node's CURVE public key in Z85 (40 chars), or NULL without CURVE.
const char *
    mesh_node_public_key (mesh_node_t *self);

//  Write a new CURVE key pair: path.key (secret and public, mode 0600,
//  never overwritten) and path.pub (public only, for trust directories).
//  0, or -1 with mesh_last_error() saying why (e.g. a file exists).
int
    mesh_keygen (const char *path);

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
typedef void (mesh_free_fn) (void *data, void *hint);
int
    mesh_node_send_zc (mesh_node_t *self, const char *peer, const mesh_head_t *head,
                       void *data, size_t size, mesh_free_fn *free_fn, void *hint);
//  Send a DIRECT message (kind MESH_KIND_DIRECT) with a body to a peer.
int
    mesh_node_whisper (mesh_node_t *self, const char *peer, const char *subject,
                       const void *body, size_t size);

//  ---------------------------------------------------------------------
//  Hooks for patterns (and applications): all run in the thread that
//  calls mesh_node_dispatch(), never with an internal lock held, so they
//  may call any function of the node.

//  Handle every message of one kind. One handler per kind; NULL removes it.
//  Messages of a kind without a handler are dropped and counted.
typedef void (mesh_handler_fn) (mesh_node_t *node, const mesh_msg_t *msg, void *arg);
int
    mesh_node_on_kind (mesh_node_t *self, int kind, mesh_handler_fn *fn, void *arg);

//  Called for each peer event before it is queued for the application.
//  Several may be registered. fn NULL removes every peer hook registered
//  with arg (a module destroyed while its node lives on must do so, from
//  the dispatching thread or while no dispatch runs).
typedef void (mesh_peer_fn) (mesh_node_t *node, const mesh_event_t *event, void *arg);
int
    mesh_node_on_peer (mesh_node_t *self, mesh_peer_fn *fn, void *arg);

//  Called from every dispatch at least every interval_ms (a timer for
//  deadlines, retries, redelivery). Several may be registered. fn NULL
//  removes every tick hook registered with arg (a module that is
//  destroyed while its node lives on must do so).
typedef void (mesh_tick_fn) (mesh_node_t *node, void *arg);
int
    mesh_node_on_tick (mesh_node_t *self, int interval_ms, mesh_tick_fn *fn, void *arg);

//  Post an event for the application (patterns: GAP, DLQ...).
int
    mesh_node_post_event (mesh_node_t *self, int type, const char *name,
                          const char *peer, const char *detail, uint64_t count);

//  Announcements: a small value per key (subscriptions, services, queues)
//  that every peer receives after HELLO and again whenever it changes.
int
    mesh_node_announce (mesh_node_t *self, const char *key,
                        const void *value, size_t size);
//  A peer's announcement for key, or NULL; *size gets its length. Returns a
//  copy the caller frees with free().
void *
    mesh_node_peer_announcement (mesh_node_t *self, const char *peer,
                                 const char *key, size_t *size);

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

//  A number that changes whenever a peer enters, leaves or changes an
//  announcement. Patterns compare it to a cached value to know when to
//  rebuild what they derive from announcements, without dispatching.
uint64_t
    mesh_node_generation (mesh_node_t *self);

//  Block until the link to peer can take a message or timeout_ms passes
//  (back-pressure for senders that must not drop). A link that reached its
//  high-water mark takes messages again once it drained to half of it
//  (as libzmq's pipes), so a sender wakes for a run of sends. 0, or -1 with
//  MESH_ETIMEDOUT / MESH_ENOPEER.
int
    mesh_node_wait_writable (mesh_node_t *self, const char *peer, int timeout_ms);

//  ---------------------------------------------------------------------
//  Subjects: dot-separated tokens ("orders.eu.created"). In a pattern, "*"
//  matches exactly one token and "#" zero or more (AMQP topic exchange).

//  A subject: 1..255 bytes, tokens non-empty, no "*" or "#" tokens, no
//  spaces or control characters.
bool
    mesh_subject_valid (const char *subject);
//  A pattern: like a subject, but tokens may be "*" or "#" (a token that
//  merely contains them, like "a*", is invalid).
bool
    mesh_pattern_valid (const char *pattern);
//  Does subject match pattern? Both assumed valid.
bool
    mesh_subject_match (const char *pattern, const char *subject);

//  ---------------------------------------------------------------------
//  Store: a crash-safe log of records in LMDB, for durable pub-sub logs,
//  outboxes and dead letters. Records have 64-bit keys in order; a small
//  string-keyed table holds metadata (positions, acks).

typedef struct _mesh_store_t mesh_store_t;

#define MESH_STORE_SYNC     0   //  every write is on disk before it returns
#define MESH_STORE_GROUP    1   //  writes are flushed together every few ms (mesh_store_flush)

//  Open (creating) the store named name in directory dir (created too).
//  NULL on failure with the reason in mesh_last_error().
mesh_store_t *
    mesh_store_new (const char *dir, const char *name, int sync_mode);
void
    mesh_store_destroy (mesh_store_t **self_p);
//  Append or replace the record at key. 0 or -1 (MESH_EFULL when the map
//  is full, MESH_ESYS otherwise).
int
    mesh_store_put (mesh_store_t *self, uint64_t key, const void *data, size_t size);
//  A copy of the record at key (free() it), NULL if none; size in *size.
void *
    mesh_store_get (mesh_store_t *self, uint64_t key, size_t *size);
int
    mesh_store_delete (mesh_store_t *self, uint64_t key);
//  Call fn for each record with key >= from, in key order, until fn
//  returns false. Returns the number of records visited.
typedef bool (mesh_store_fn) (uint64_t key, const void *data, size_t size, void *arg);
size_t
    mesh_store_scan (mesh_store_t *self, uint64_t from, mesh_store_fn *fn, void *arg);
//  Smallest and largest key (0 when empty), number of records.
uint64_t
    mesh_store_first (mesh_store_t *self);
uint64_t
    mesh_store_last (mesh_store_t *self);
size_t
    mesh_store_count (mesh_store_t *self);
//  Delete every record with key < below. Returns how many went.
size_t
    mesh_store_trim (mesh_store_t *self, uint64_t below);
//  Metadata: a string value per string key.
int
    mesh_store_meta_set (mesh_store_t *self, const char *key, const char *value);
//  A copy (free() it), or NULL.
char *
    mesh_store_meta_get (mesh_store_t *self, const char *key);
//  In group mode, commit what is pending now. 0 or -1.
int
    mesh_store_flush (mesh_store_t *self);

//  ---------------------------------------------------------------------
//  Publish-subscribe (patterns/mesh_pubsub*.c). Publishers match at the
//  source and send only to interested peers. Each publisher->subscriber
//  stream carries sequence numbers; a gap is an event (GAP, with the
//  count) on the subscriber and is counted on both sides.

typedef struct _mesh_pubsub_t mesh_pubsub_t;

#define MESH_EVENT_GAP          40  //  messages from a publisher were lost (count)
#define MESH_EVENT_REPLAYED     41  //  lost messages came back through replay (count)
#define MESH_EVENT_GAP_LOST     42  //  lost messages are beyond the publisher's window (count)

//  Slow subscriber policy, chosen per subscription
#define MESH_SUB_DROP           0   //  publisher drops for this subscriber and counts (default)
#define MESH_SUB_BLOCK          1   //  publisher waits (up to its send timeout)

//  Flags a subscriber may find in mesh_msg_flags() of a received message
#define MESH_FLAG_REPLAYED      0x00010000  //  resent from the publisher's retained log: late, maybe out of order
#define MESH_FLAG_LAST_VALUE    0x00020000  //  last value of its subject, sent when the subscription appeared

typedef struct {
    int mode;                   //  MESH_SUB_DROP or MESH_SUB_BLOCK
    const char *durable;        //  durable subscription name, or NULL
    bool last_value;            //  get the last message of each matching subject at once
    bool no_replay;             //  do not ask publishers to resend what a gap lost
    uint64_t since_ms;          //  on joining, get what publishers retained since this
                                //  wall-clock time (ms since the epoch), 0 = nothing
} mesh_sub_opts_t;

//  Received message handler; msg is borrowed for the call.
typedef void (mesh_sub_fn) (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg);

//  Attach pub-sub to a node (before or after start). One per node.
mesh_pubsub_t *
    mesh_pubsub_new (mesh_node_t *node);
void
    mesh_pubsub_destroy (mesh_pubsub_t **self_p);
mesh_node_t *
    mesh_pubsub_node (mesh_pubsub_t *self);
//  Keep the publisher's retained log and durable positions in LMDB under
//  dir, so they survive a restart. Before the first publish.
int
    mesh_pubsub_set_data_dir (mesh_pubsub_t *self, const char *dir);
//  Bounds of the retained log (replay window): messages, bytes, age in ms.
int
    mesh_pubsub_set_retention (mesh_pubsub_t *self, size_t count, size_t bytes, int age_ms);
//  How long a publish waits on a MESH_SUB_BLOCK subscriber (default 5000).
int
    mesh_pubsub_set_send_timeout (mesh_pubsub_t *self, int timeout_ms);

//  Subscribe; returns a subscription id (> 0) or -1 (MESH_EINVAL for a bad
//  pattern). opts may be NULL. The handler runs in mesh_node_dispatch().
//  With fn NULL, messages are queued instead (at most MESH_PUBSUB_QUEUE_MAX;
//  beyond that they are dropped and counted as pubsub.dropped.queue-full)
//  for mesh_pubsub_recv().
int
    mesh_subscribe (mesh_pubsub_t *self, const char *pattern, const mesh_sub_opts_t *opts,
                    mesh_sub_fn *fn, void *arg);
int
    mesh_unsubscribe (mesh_pubsub_t *self, int sub_id);
#define MESH_PUBSUB_QUEUE_MAX   10000   //  messages queued for mesh_pubsub_recv
//  Next queued message of the subscriptions made without a handler,
//  dispatching the node for up to timeout_ms (-1 = forever) while none is
//  there. The caller destroys it. NULL with MESH_ETIMEDOUT at the timeout.
mesh_msg_t *
    mesh_pubsub_recv (mesh_pubsub_t *self, int timeout_ms);

//  Publish body to subject. Returns the number of subscribers it went to
//  (local ones included), or -1 (MESH_EINVAL for a bad subject). Drops for
//  slow MESH_SUB_DROP subscribers are counted, never reported as failure.
int
    mesh_publish (mesh_pubsub_t *self, const char *subject, const void *body, size_t size);
//  Same with content type and headers from head (its subject is used;
//  kind, seq and id are set by pub-sub).
int
    mesh_publish_ex (mesh_pubsub_t *self, const mesh_head_t *head, const void *body, size_t size);
//  Publish without copying: data is taken over (even on failure) and
//  free_fn (data, hint) is called once every link is done with it. Bodies of
//  64 KiB and more passed to mesh_publish_ex are copied once for all
//  subscribers; this avoids even that copy (the retained log keeps its own).
int
    mesh_publish_zc (mesh_pubsub_t *self, const mesh_head_t *head, void *data, size_t size,
                     mesh_free_fn *free_fn, void *hint);
//  Number of subscribers (peers and local) for a subject now.
size_t
    mesh_pubsub_subscribers (mesh_pubsub_t *self, const char *subject);
//  Dispatch until at least count subscribers match subject, or timeout.
//  0 or -1 with MESH_ETIMEDOUT.
int
    mesh_pubsub_wait_subscribers (mesh_pubsub_t *self, const char *subject, size_t count,
                                  int timeout_ms);

//  ---------------------------------------------------------------------
//  Request-reply (patterns/mesh_reqrep.c). Nodes serve named services;
//  peers learn them through announcements. A call goes to the provider
//  with the fewest outstanding requests (round robin among equals, a local
//  provider counts), carries its deadline, and is retried on another
//  provider when the chosen one times out or leaves. Servers keep a
//  bounded cache of recent replies per caller, so a retried request runs
//  once while it is cached. Kinds 24..31 on the wire.

typedef struct _mesh_reqrep_t mesh_reqrep_t;
//  The reply to one request being served.
typedef struct _mesh_reply_t mesh_reply_t;

#define MESH_EVENT_SERVICE_UP   48  //  a peer offers a service (detail = name)
#define MESH_EVENT_SERVICE_DOWN 49  //  a peer stopped offering it or left

#define MESH_DEFAULT_CALL_TIMEOUT   5000    //  ms, deadline of a call without one
#define MESH_DEFAULT_CALL_RETRIES   2       //  extra providers tried after the first
#define MESH_DEFAULT_SETTLE_MS      1100    //  ms a fresh node lets discovery settle

typedef struct {
    int timeout_ms;             //  deadline from now; 0 = MESH_DEFAULT_CALL_TIMEOUT
    int retries;                //  further attempts on other providers; -1 = none,
                                //  0 = MESH_DEFAULT_CALL_RETRIES
    bool wait_for_provider;     //  no provider yet: wait for one up to the
                                //  deadline instead of failing at once
    const char *ctype;          //  content type of the request, or NULL
    const char *const *headers; //  key, value, ... (header_count pairs), or NULL
    size_t header_count;
} mesh_call_opts_t;

//  Server side. The handler runs in mesh_node_dispatch(); request is
//  borrowed. Whatever the handler sets on reply is sent when it returns;
//  nothing set is an empty reply. To answer later (another thread, another
//  call), take the reply with mesh_reply_defer().
typedef void (mesh_serve_fn) (mesh_reqrep_t *rr, const mesh_msg_t *request,
                              mesh_reply_t *reply, void *arg);

//  Attach request-reply to a node (before or after start). One per node.
mesh_reqrep_t *
    mesh_reqrep_new (mesh_node_t *node);
void
    mesh_reqrep_destroy (mesh_reqrep_t **self_p);
mesh_node_t *
    mesh_reqrep_node (mesh_reqrep_t *self);

//  Offer a service (name as a subject: dotted tokens, no wildcards) and
//  announce it to peers. One handler per service per node. 0 or -1.
int
    mesh_serve (mesh_reqrep_t *self, const char *service, mesh_serve_fn *fn, void *arg);
//  Stop offering it; peers see SERVICE_DOWN. Requests already taken are
//  still answered. 0 or -1.
int
    mesh_unserve (mesh_reqrep_t *self, const char *service);

//  In a handler (or on a deferred reply): the reply body, copied.
int
    mesh_reply_set (mesh_reply_t *reply, const void *body, size_t size);
//  Content type of the reply.
int
    mesh_reply_set_ctype (mesh_reply_t *reply, const char *ctype);
//  The handler failed: the caller gets MESH_EREMOTE with this text.
int
    mesh_reply_fail (mesh_reply_t *reply, const char *message);
//  Answer later: returns a handle the application owns, finished by
//  mesh_reply_send() from any thread. NULL for a cast (nothing to send).
mesh_reply_t *
    mesh_reply_defer (mesh_reply_t *reply);
//  Send a deferred reply (what was set or failed on it) and free it.
//  Every deferred reply must be sent before mesh_reqrep_destroy().
int
    mesh_reply_send (mesh_reply_t **reply_p);

//  Number of providers of a service known now (local one included).
size_t
    mesh_reqrep_providers (mesh_reqrep_t *self, const char *service);
//  How long after mesh_reqrep_new() (or the node's start, if later) a call
//  that finds no provider waits for discovery before it fails with
//  MESH_ENORESPONDERS (default MESH_DEFAULT_SETTLE_MS, about one beacon
//  interval; 0 = never wait). 0 or -1.
int
    mesh_reqrep_set_settle (mesh_reqrep_t *self, int msecs);
//  Dispatch until service has at least count providers, or timeout_ms
//  passes. 0 or -1 with MESH_ETIMEDOUT.
int
    mesh_reqrep_wait_providers (mesh_reqrep_t *self, const char *service, size_t count,
                                int timeout_ms);

//  Call and wait for the reply, dispatching the node meanwhile. Returns the
//  reply (the caller destroys it) or NULL with MESH_ENORESPONDERS (nobody
//  offers it), MESH_ETIMEDOUT (deadline passed, retries included),
//  MESH_EPROVIDERLEFT (the provider left during the call and no retry
//  remains: the handler may have run) or MESH_EREMOTE (the handler failed,
//  or the server does not know the service; mesh_last_error() has its
//  text). opts may be NULL.
mesh_msg_t *
    mesh_call (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
               const mesh_call_opts_t *opts);

//  Outcome of an asynchronous call: err is 0 and reply set, or err is a
//  mesh_err_t with error the text and reply NULL. reply is borrowed.
typedef void (mesh_call_fn) (mesh_reqrep_t *rr, uint64_t call_id, int err,
                             const char *error, const mesh_msg_t *reply, void *arg);
//  Call without waiting. fn runs once in mesh_node_dispatch(); with fn NULL
//  the outcome is queued for mesh_reqrep_recv(). Returns the call id (> 0),
//  or 0 with the reason in mesh_errno() (MESH_ENORESPONDERS at once, except
//  while discovery settles: then the call waits for a provider until the
//  settle time ends and fn reports MESH_ENORESPONDERS if none came).
uint64_t
    mesh_call_async (mesh_reqrep_t *self, const char *service, const void *body,
                     size_t size, const mesh_call_opts_t *opts, mesh_call_fn *fn, void *arg);
//  Next queued outcome of the calls made with fn NULL, dispatching for up
//  to timeout_ms (-1 = forever). Returns the reply (caller destroys it),
//  or NULL: *call_id == 0 at the timeout, else the call failed with *err.
mesh_msg_t *
    mesh_reqrep_recv (mesh_reqrep_t *self, int timeout_ms, uint64_t *call_id, int *err);
//  Cast: send to one provider, no reply. With all, to every provider
//  (fanout). 0 or -1 (MESH_ENORESPONDERS).
int
    mesh_cast (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
               bool all, const mesh_call_opts_t *opts);
//  Call every provider and gather their replies until each has answered or
//  the deadline passes. fn runs for each outcome (as for mesh_call_async,
//  plus the provider's id); a provider that did not answer in time gets
//  MESH_ETIMEDOUT. No retries. Returns the number of replies, or -1
//  (MESH_ENORESPONDERS when nobody offers the service).
typedef void (mesh_gather_fn) (mesh_reqrep_t *rr, const char *provider, int err,
                               const char *error, const mesh_msg_t *reply, void *arg);
int
    mesh_call_all (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
                   const mesh_call_opts_t *opts, mesh_gather_fn *fn, void *arg);

//  ---------------------------------------------------------------------
//  Pipeline (patterns/mesh_pipeline.c): named work queues without a
//  broker. A job stays with its producer until a worker acks it. Workers
//  grant credit up to their prefetch; producers send only where credit
//  exists, least loaded first. A nack, an ack timeout or a worker's exit
//  redelivers; after max_deliveries the job is a dead letter. Delivery is
//  at-least-once; workers recognise recent redeliveries and count them.
//  Kinds 32..39 on the wire.

typedef struct _mesh_pipeline_t mesh_pipeline_t;

#define MESH_EVENT_DEAD_LETTER  56  //  a job reached the dead letters (detail = queue, count = job id)

#define MESH_DEFAULT_PREFETCH       1       //  jobs a worker holds at once
#define MESH_DEFAULT_ACK_TIMEOUT    30000   //  ms before an unacked job is redelivered
#define MESH_DEFAULT_MAX_DELIVERIES 5       //  deliveries before a job is a dead letter
#define MESH_DEFAULT_HOLD_JOBS      100000  //  jobs held in memory per producer

//  What a work handler returns
#define MESH_JOB_ACK    0       //  done: the producer forgets the job
#define MESH_JOB_NACK   1       //  failed: redeliver (after a backoff, maybe elsewhere)
#define MESH_JOB_LATER  2       //  the application acks later with mesh_job_done()
#define MESH_JOB_REJECT 3       //  not taken: back to its producer at once, no delivery
                                //  counted; that producer sends this worker nothing for 1 s

typedef struct {
    int ack_timeout_ms;         //  0 = MESH_DEFAULT_ACK_TIMEOUT
    int max_deliveries;         //  0 = MESH_DEFAULT_MAX_DELIVERIES
    int backoff_ms;             //  first redelivery delay after a nack, doubled each
                                //  time up to 30 s; 0 = 100
} mesh_queue_opts_t;

//  A job as a work handler sees it: mesh_msg_sender() is its producer,
//  mesh_msg_id() its job id, mesh_msg_subject() the queue, mesh_msg_seq()
//  the delivery count (1 = first).
typedef int (mesh_work_fn) (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg);

mesh_pipeline_t *
    mesh_pipeline_new (mesh_node_t *node);
//  Producers: jobs not acked yet are lost with a memory-only producer
//  (counted as pipeline.dropped.destroyed); a durable one keeps them.
void
    mesh_pipeline_destroy (mesh_pipeline_t **self_p);
mesh_node_t *
    mesh_pipeline_node (mesh_pipeline_t *self);
//  Durable outbox and dead letters in LMDB under dir: mesh_push() returns
//  once the job is committed (MESH_STORE_SYNC: each job; MESH_STORE_GROUP:
//  commits grouped every few ms), and jobs found there are sent again.
//  Before the first push.
int
    mesh_pipeline_set_outbox (mesh_pipeline_t *self, const char *dir, int sync_mode);
//  Commit the jobs pushed so far to the outbox now (group mode); returns
//  once they are on disk. 0, or -1 (MESH_ESYS). A no-op without an outbox.
int
    mesh_pipeline_flush (mesh_pipeline_t *self);
//  Bound of jobs held in memory (not acked yet) before mesh_push() fails
//  with MESH_EFULL; default MESH_DEFAULT_HOLD_JOBS.
int
    mesh_pipeline_set_hold (mesh_pipeline_t *self, size_t max_jobs, size_t max_bytes);
//  Per-queue options on the producer side; opts NULL = defaults.
int
    mesh_pipeline_set_queue (mesh_pipeline_t *self, const char *queue,
                             const mesh_queue_opts_t *opts);

//  Push a job (queue named like a subject). Returns the job id (> 0), or 0
//  with MESH_EINVAL, MESH_EFULL (hold bound reached) or MESH_ESYS (outbox
//  write failed). Never drops: a job is held until a worker acks it.
uint64_t
    mesh_push (mesh_pipeline_t *self, const char *queue, const void *body, size_t size);
//  Same with content type and headers from head (its subject is the queue).
uint64_t
    mesh_push_ex (mesh_pipeline_t *self, const mesh_head_t *head, const void *body, size_t size);
//  Jobs of queue (NULL = all) pushed here and not acked yet.
size_t
    mesh_pipeline_pending (mesh_pipeline_t *self, const char *queue);
//  Dispatch until nothing is pending or timeout_ms passes. 0 or -1
//  (MESH_ETIMEDOUT; mesh_pipeline_pending() tells how many remain).
int
    mesh_pipeline_wait_acked (mesh_pipeline_t *self, int timeout_ms);

//  Work a queue: fn runs in mesh_node_dispatch() for each job, at most
//  prefetch (0 = MESH_DEFAULT_PREFETCH) unacked at once. One handler per
//  queue per node. 0 or -1.
int
    mesh_work (mesh_pipeline_t *self, const char *queue, int prefetch,
               mesh_work_fn *fn, void *arg);
//  Stop working it; jobs not acked yet go back to their producers.
int
    mesh_unwork (mesh_pipeline_t *self, const char *queue);
//  Finish a job a handler returned MESH_JOB_LATER for (ok: ack, else nack).
//  Any thread. 0 or -1 (MESH_EINVAL: no such job held here).
int
    mesh_job_done (mesh_pipeline_t *self, const char *producer, uint64_t job_id, bool ok);

//  Dead letters of this producer. fn gets each job (its seq = deliveries)
//  and the last reason; return false to stop. Returns how many were visited.
typedef bool (mesh_dead_fn) (const char *queue, uint64_t job_id, const mesh_msg_t *job,
                             const char *reason, void *arg);
size_t
    mesh_dlq_list (mesh_pipeline_t *self, const char *queue, mesh_dead_fn *fn, void *arg);
//  Push dead letters of queue again as new jobs (job_id 0 = all). Returns
//  how many, or -1.
int
    mesh_dlq_replay (mesh_pipeline_t *self, const char *queue, uint64_t job_id);

//  Milliseconds since the epoch (wall clock), for deadlines.
uint64_t
    mesh_clock_ms (void);
//  Hash of a string key for tables keyed by peer id (czmq's
//  zhashx_set_key_hasher): an id is 32 hex chars, which four 8-byte loads
//  hash as well as czmq's default walk over every byte (~190 instructions
//  a lookup); any other string takes a byte walk.
size_t
    mesh_id_hash (const void *key);

#ifdef __cplusplus
}
#endif

#endif
