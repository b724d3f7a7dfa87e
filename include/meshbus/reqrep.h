/*  =========================================================================
    meshbus/reqrep.h - request-reply (patterns/reqrep/)

    Nodes serve named services; peers learn them through announcements. A
    call goes to the provider with the fewest outstanding requests (round
    robin among equals, a local provider counts), carries its deadline, and
    is retried on another provider when the chosen one times out or leaves.
    Servers keep a bounded cache of recent replies per caller, so a retried
    request runs once while it is cached. Wire: docs/reqrep.md.
    ========================================================================= */

#ifndef MESHBUS_REQREP_H_INCLUDED
#define MESHBUS_REQREP_H_INCLUDED

#include "meshbus/node.h"

#ifdef __cplusplus
extern "C" {
#endif

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
//  A call that finds no provider on a fresh node waits until discovery has
//  converged before it fails with MESH_ENORESPONDERS: at least msecs after
//  mesh_reqrep_new() (or the node's start, if later), and until the node
//  has met every peer it was told of and heard of no new one for msecs
//  (mesh_node_discovery_quiet_ms), bounded by the call's deadline. Default
//  MESH_DEFAULT_SETTLE_MS, about one beacon interval; 0 = never wait. 0 or -1.
int
    mesh_reqrep_set_settle (mesh_reqrep_t *self, int msecs);
//  Dispatch until service has at least count providers, or timeout_ms
//  passes. 0 or -1 with MESH_ETIMEDOUT.
int
    mesh_reqrep_wait_providers (mesh_reqrep_t *self, const char *service, size_t count,
                                int timeout_ms);

//  Call and wait for the reply, dispatching the node meanwhile. Returns the
//  reply (the caller destroys it) or NULL with MESH_ENORESPONDERS (nobody
//  offers it), MESH_EPROVIDERLEFT (the provider it was sent to left or
//  failed and no retry remains), MESH_ETIMEDOUT (deadline passed, retries
//  included) or MESH_EREMOTE (the handler failed, or the server does not
//  know the service; mesh_last_error() has its text). opts may be NULL.
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

#ifdef __cplusplus
}
#endif

#endif
