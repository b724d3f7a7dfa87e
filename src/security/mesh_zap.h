/*  =========================================================================
    mesh_zap - the node's ZAP handler: who may finish a CURVE handshake

    Debian's libzmq has no ZMQ_ZAP_ENFORCE_DOMAIN: a CURVE server with no
    ZAP handler in its context accepts ANY client key. So a node with CURVE
    always runs this handler, bound to inproc://zeromq.zap.01 of its own
    context before the inbox binds. It runs in its own thread, so a busy
    application never delays a handshake, and answers each request from
    the decision function the node gives it (a lookup in memory: no file
    is read during a handshake, unlike czmq's zcertstore).
    The user id of an accepted connection is the client's key in Z85; the
    node reads it back (zmq_msg_gets "User-Id") to bind a peer to its key.
    ========================================================================= */

#ifndef MESH_ZAP_H_INCLUDED
#define MESH_ZAP_H_INCLUDED

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

//  Decide on a client key (32 bytes); called in the ZAP thread.
typedef bool (mesh_zap_allow_fn) (void *arg, const uint8_t *key);

typedef struct _mesh_zap_t mesh_zap_t;

//  Bind the handler in ctx and start its thread. NULL (mesh_last_error)
//  if the ZAP endpoint cannot be bound (another handler in this context).
mesh_zap_t *
    mesh_zap_new (void *ctx, mesh_zap_allow_fn *allow, void *arg);
//  Stop the thread and close the socket (before the context terminates).
void
    mesh_zap_destroy (mesh_zap_t **self_p);

//  Requests answered: accepted, refused (key not allowed), and malformed
//  or not CURVE (refused as well). Read from any thread.
uint64_t mesh_zap_accepted (mesh_zap_t *self);
uint64_t mesh_zap_refused (mesh_zap_t *self);
uint64_t mesh_zap_malformed (mesh_zap_t *self);

//  Take the key of the last refused request not reported yet, for a log
//  line; false if none. At most one is kept: a flood logs once per take.
bool
    mesh_zap_take_refusal (mesh_zap_t *self, uint8_t *key, char *address, size_t address_cap);

#endif
