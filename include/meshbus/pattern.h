/*  =========================================================================
    meshbus/pattern.h - the interface a pattern plugs into (not needed by applications)

    A pattern (pub-sub, request-reply, pipeline, or a fourth one) is built
    against meshbus.h and this header only: the build keeps src/ off its
    include path. Applications include meshbus.h alone.
    ========================================================================= */

#ifndef MESHBUS_PATTERN_H_INCLUDED
#define MESHBUS_PATTERN_H_INCLUDED

#include "meshbus.h"

#ifdef __cplusplus
extern "C" {
#endif

//  ---------------------------------------------------------------------
//  Message kinds on a link. The core owns 1..15 (MESH_KIND_DIRECT is in
//  meshbus/node.h); patterns own the kinds they list in their table, from
//  MESH_KIND_PATTERN up. docs/wire-envelope.md lists them all.

#define MESH_KIND_HELLO     1   //  I am: name, incarnation, headers, endpoint
#define MESH_KIND_PING      2   //  sign of life after outbound silence
#define MESH_KIND_BYE       3   //  I am stopping: EXIT me now
#define MESH_KIND_UPDATE    4   //  announcement changed: subject = key, body = value
#define MESH_KIND_PEERS     5   //  gossip: headers = node id (hex) -> endpoint
#define MESH_KIND_STATS_REQ 7   //  ask for counters
#define MESH_KIND_STATS_REP 8   //  counters as JSON in the body
#define MESH_KIND_PATTERN   16  //  first kind a pattern may register

//  Every pattern's kinds, in this one table: a number is given once. A
//  pattern lists its kinds in its mesh_pattern_t; the node refuses a kind
//  that someone else holds (docs/wire-envelope.md has them by name).
#define MESH_KIND_PUB           16  //  pubsub: a published message
#define MESH_KIND_REPLAY_REQ    17  //  pubsub: subscriber asks to resend a gap
#define MESH_KIND_REPLAY_END    18  //  pubsub: the publisher resent what it had
#define MESH_KIND_DACK          19  //  pubsub: durable subscriber's position
#define MESH_KIND_POS           20  //  pubsub: stream position (loss at the tail)
#define MESH_KIND_REQ           24  //  reqrep: a request
#define MESH_KIND_REP           25  //  reqrep: its reply
#define MESH_KIND_JOB           32  //  pipeline: producer -> worker, one job
#define MESH_KIND_CREDIT        33  //  pipeline: worker -> producer, window for a queue
#define MESH_KIND_ACK           34  //  pipeline: worker -> producer, job ids done
#define MESH_KIND_NACK          35  //  pipeline: worker -> producer, job ids failed
#define MESH_KIND_JOBS          36  //  pipeline: producer -> worker, several jobs

//  Envelope flags (low 16 bits are the core's, high 16 the pattern's)
#define MESH_FLAG_REPLY_WANTED  0x0001  //  HELLO: answer with your HELLO
#define MESH_FLAG_FRAMES        0x0002  //  body travels in the following frames
#define MESH_FLAG_BATCHES       0x0004  //  HELLO: I read batch frames (docs/protocol.md)
#define MESH_FLAG_DELTAS        0x0008  //  HELLO: I read announcement deltas;
                                        //  UPDATE: the body is one (docs/protocol.md)
#define MESH_FLAG_RESYNC        0x0010  //  UPDATE: send me this key's whole value
#define MESH_FLAG_PROBES        0x0020  //  HELLO: I answer probes and probe silent
                                        //  peers myself (docs/protocol.md)

//  ---------------------------------------------------------------------
//  Errors, log lines and clocks of a pattern

//  Record a failure for mesh_errno() / mesh_last_error() in this thread
//  (for pattern modules built on this API). Returns -1.
int
    mesh_set_error (int err, const char *detail);
//  Say a line through the handler (for pattern modules built on this API).
void
    mesh_log (mesh_log_level_t level, const char *node, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
//  Monotonic milliseconds, for timers (the core's own clock).
int64_t
    mesh_mono_ms (void);
//  The same clock in microseconds, for what is timed finer (round trips,
//  call latencies).
int64_t
    mesh_mono_us (void);
//  The same clock, coarse: ticks every 1-4 ms, a third of the cost of a
//  precise read, and never ahead of mesh_mono_ms. For what is read per
//  message or per job (holds, ack timeouts, backoffs).
int64_t
    mesh_coarse_ms (void);

//  ---------------------------------------------------------------------
//  Building messages (local delivery, replays, each job of a batch)

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
//  Hooks: all run in the thread that calls mesh_node_dispatch(), never
//  with an internal lock held, so they may call any function of the node.

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

//  A number that changes whenever a peer enters, leaves or changes an
//  announcement. Patterns compare it to a cached value to know when to
//  rebuild what they derive from announcements, without dispatching.
uint64_t
    mesh_node_generation (mesh_node_t *self);

//  ---------------------------------------------------------------------
//  Announcements: the one codec every pattern writes and reads them with
//  (format in docs/wire-envelope.md, "Announcements"): a version line,
//  then one record a line, a record being a tag and up to seven fields.

#define MESH_ANNOUNCE_VERSION       1       //  the format version written
#define MESH_ANNOUNCE_MAX_FIELDS    8       //  fields in a record, its tag included
#define MESH_ANNOUNCE_MAX_FIELD     1024    //  bytes in one field, unescaped
#define MESH_ANNOUNCE_MAX_RECORDS   131072  //  records read from one announcement (72 B each parsed)

typedef struct {
    size_t fields;                                  //  1..MESH_ANNOUNCE_MAX_FIELDS
    const char *field [MESH_ANNOUNCE_MAX_FIELDS];   //  [0] is the tag, never ""
} mesh_record_t;

typedef struct _mesh_announcement_t mesh_announcement_t;

//  An empty announcement to add records to; NULL on out of memory.
mesh_announcement_t *
    mesh_announcement_new (void);
void
    mesh_announcement_destroy (mesh_announcement_t **self_p);
//  Add a record of count fields (fields [0] its tag, not empty; NULL
//  fields are ""). 0, or -1 (MESH_EINVAL: no tag or too many fields,
//  MESH_ETOOBIG: a field over MESH_ANNOUNCE_MAX_FIELD).
int
    mesh_announcement_add (mesh_announcement_t *self, const char *const *fields, size_t count);
//  The encoded text, for mesh_node_announce (data, size).
const void *
    mesh_announcement_data (const mesh_announcement_t *self);
size_t
    mesh_announcement_size (const mesh_announcement_t *self);
//  Parse a peer's value: NULL when it is not an announcement of a version
//  this node reads (or out of memory). Malformed records are skipped and
//  counted (mesh_announcement_malformed); the others are kept.
mesh_announcement_t *
    mesh_announcement_parse (const void *data, size_t size);
size_t
    mesh_announcement_count (const mesh_announcement_t *self);
//  The index-th record (borrowed from self), NULL past the end.
const mesh_record_t *
    mesh_announcement_record (const mesh_announcement_t *self, size_t index);
size_t
    mesh_announcement_malformed (const mesh_announcement_t *self);
//  Is self (NULL: no) exactly the value data, size?
bool
    mesh_announcement_same (const mesh_announcement_t *self, const void *data, size_t size);

//  ---------------------------------------------------------------------
//  Many patterns against one subject: a trie of pattern tokens (with "*"
//  and "#" children), as NATS's sublist. Same answers as asking
//  mesh_subject_match of each pattern, at a cost that does not grow with
//  the number of patterns. Not thread-safe, even to match: hold a lock.

typedef struct _mesh_sublist_t mesh_sublist_t;
typedef void (mesh_sublist_fn) (void *value, void *arg);

//  An empty trie; NULL on out of memory.
mesh_sublist_t *
    mesh_sublist_new (void);
void
    mesh_sublist_destroy (mesh_sublist_t **self_p);
//  Add an entry value (not NULL) under a valid pattern; the same pattern
//  and value may be added twice (then removed twice). 0, or -1
//  (MESH_EINVAL: bad pattern, MESH_ESYS: out of memory).
int
    mesh_sublist_insert (mesh_sublist_t *self, const char *pattern, void *value);
//  Remove one entry added with pattern and value. 0, or -1 (MESH_EINVAL:
//  there is none).
int
    mesh_sublist_remove (mesh_sublist_t *self, const char *pattern, void *value);
//  Call fn (value, arg) once for every entry whose pattern matches the
//  valid subject (in no particular order; fn may be NULL to count only),
//  and return how many. fn must not change the trie.
size_t
    mesh_sublist_match (mesh_sublist_t *self, const char *subject,
                        mesh_sublist_fn *fn, void *arg);
//  Entries held.
size_t
    mesh_sublist_size (const mesh_sublist_t *self);

//  ---------------------------------------------------------------------
//  A pattern's figures in the node's STATS answer (`meshbus stats --json`,
//  what `meshbus top` and `meshbus monitor` show): its stats operation
//  writes members of its own object, "patterns": {"<name>": {...}}, with
//  this writer, which places the commas and escapes every string (valid
//  UTF-8 as is; a byte that is not part of valid UTF-8 as the character
//  of the same value, U+0080..U+00FF: JSON carries only Unicode). A
//  pattern keeps each table to its MESH_STATS_TOP most active rows and
//  says how many it left out ("<table>.more"): a node with 100 000
//  subscriptions answers with 50 rows, not 100 000 (docs/observe.md).

#define MESH_STATS_TOP      50      //  rows of one table in a STATS answer
#define MESH_STATS_DEPTH    8       //  objects and arrays open at once

typedef struct _mesh_stats_t mesh_stats_t;

//  Open an object ('{') or an array ('['), as member key of the object
//  open now, or (key NULL) as the next element of the array open now.
void
    mesh_stats_open (mesh_stats_t *self, const char *key, char bracket);
//  Close what was opened last.
void
    mesh_stats_close (mesh_stats_t *self);
//  A member (key) or element (key NULL): a number, a string.
void
    mesh_stats_uint (mesh_stats_t *self, const char *key, uint64_t value);
void
    mesh_stats_str (mesh_stats_t *self, const char *key, const char *value);

//  Call-latency histograms: fixed bounds in microseconds, the same for
//  every service, so that viewers add and compare them (Prometheus's
//  buckets, `le` in seconds, are these divided by 10^6; +Inf is the count)
#define MESH_LATENCY_BUCKETS    16
#define MESH_LATENCY_BOUNDS_US  { 100, 250, 500, 1000, 2500, 5000, 10000, 25000, \
                                  50000, 100000, 250000, 500000, 1000000, 2500000, \
                                  5000000, 10000000 }

//  ---------------------------------------------------------------------
//  The pattern interface: one table of operations a pattern registers
//  once per node (as nng's protocols do). The node owns its kinds, its
//  hooks and the watch of its announcement key.

#define MESH_PATTERN_MAX_KINDS  15      //  kinds one pattern may own
#define MESH_MAX_PATTERNS       16      //  patterns plugged into one node

//  A peer's announcement under the pattern's key changed: before is what
//  the pattern last heard (NULL: nothing), now what the peer announces
//  now (NULL: nothing any more: it withdrew it, or left, or sent what no
//  codec of ours reads). Both borrowed for the call.
typedef void (mesh_announce_fn) (mesh_node_t *node, void *self, const char *peer,
                                 const mesh_announcement_t *before,
                                 const mesh_announcement_t *now);

typedef struct {
    const char *name;                   //  "pubsub": owner of its kinds, in logs
                                        //  and counters (NAME.malformed.announcement)
    int kinds [MESH_PATTERN_MAX_KINDS + 1];     //  the MESH_KIND_* it owns, 0 ends
    mesh_handler_fn *on_message;        //  one message of a kind it owns (arg: self)
    mesh_peer_fn *on_peer;              //  ENTER / EXIT / SUSPECT / BACK / UPDATE, or NULL
    int tick_ms;                        //  on_tick runs at least this often
    mesh_tick_fn *on_tick;              //  timers, retries, redelivery, or NULL
    const char *announce_key;           //  its announcement's key, or NULL
    mesh_announce_fn *on_announce;      //  a peer's announcement changed (from
                                        //  mesh_plugin_sync, in its caller's thread)
    void (*destroy) (void *self);       //  the node is destroyed while the
                                        //  pattern is still plugged in
    void (*stats) (void *self, mesh_stats_t *out);
                                        //  its figures for a STATS answer, or
                                        //  NULL; from the node's keeper thread,
                                        //  without the node's lock: it may take
                                        //  its own (unregister waits for it),
                                        //  but not wait long: the keeper keeps
                                        //  the node alive (mesh_top.h's
                                        //  mesh_stats_lock gives up, "busy")
} mesh_pattern_t;

//  A pattern plugged into a node
typedef struct _mesh_plugin_t mesh_plugin_t;

//  Plug a pattern (ops, which must outlive it; self is passed back to
//  every operation) into node. NULL, with an error line through mesh_log
//  and MESH_EINVAL, when one of its kinds is already held by the core,
//  another pattern or the application: a kind has one owner.
mesh_plugin_t *
    mesh_node_register (mesh_node_t *node, const mesh_pattern_t *ops, void *self);
//  Unplug: its kinds, hooks and announcement watch go. Safe to call twice.
void
    mesh_node_unregister (mesh_plugin_t **plugin_p);
mesh_node_t *
    mesh_plugin_node (mesh_plugin_t *plugin);
//  Bring the pattern up to date with its peers' announcements: when the
//  node's generation moved since the last call, on_announce runs, in this
//  thread, for every peer whose announcement under the key changed. One
//  atomic compare when nothing moved, so a sender may call it before
//  every send without dispatching. Returns how many peers changed.
size_t
    mesh_plugin_sync (mesh_plugin_t *plugin);
//  Make the next mesh_plugin_sync call on_announce for every peer that
//  announces something, changed or not (before and now are then the same
//  announcement): for a pattern that skipped records it had no use for
//  and now has (the pipeline, when a queue is first pushed to).
void
    mesh_plugin_resync (mesh_plugin_t *plugin);

#ifdef __cplusplus
}
#endif

#endif
