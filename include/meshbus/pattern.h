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

//  Envelope flags (low 16 bits are the core's, high 16 the pattern's)
#define MESH_FLAG_REPLY_WANTED  0x0001  //  HELLO: answer with your HELLO
#define MESH_FLAG_FRAMES        0x0002  //  body travels in the following frames
#define MESH_FLAG_BATCHES       0x0004  //  HELLO: I read batch frames (docs/protocol.md)

//  ---------------------------------------------------------------------
//  Errors and log lines of a pattern

//  Record a failure for mesh_errno() / mesh_last_error() in this thread
//  (for pattern modules built on this API). Returns -1.
int
    mesh_set_error (int err, const char *detail);
//  Say a line through the handler (for pattern modules built on this API).
void
    mesh_log (mesh_log_level_t level, const char *node, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  ---------------------------------------------------------------------
//  Building messages (local delivery, replays, each job of a batch)

//  A message built from head and body, as if sender had sent it (for local
//  delivery and replays). sender may be NULL ("" then). NULL on a bad head.
mesh_msg_t *
    mesh_msg_new (const mesh_head_t *head, const void *body, size_t size,
                  const char *sender, const char *sender_name);
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

#ifdef __cplusplus
}
#endif

#endif
