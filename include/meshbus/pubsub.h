/*  =========================================================================
    meshbus/pubsub.h - publish-subscribe (patterns/pubsub/)

    Publishers match at the source and send only to interested peers. Each
    publisher->subscriber stream carries sequence numbers; a gap is an event
    (GAP, with the count) on the subscriber and is counted on both sides.
    Wire: docs/pubsub.md.
    ========================================================================= */

#ifndef MESHBUS_PUBSUB_H_INCLUDED
#define MESHBUS_PUBSUB_H_INCLUDED

#include "meshbus/node.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif
