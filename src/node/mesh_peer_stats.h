/*  =========================================================================
    mesh_peer_stats - a node's collection of its peers' stats (meshbus stats
    --peers): one request at a time, by id; replies to an older request
    are ignored. It owns the replies and never reads the peer table: the
    node sends the requests (mesh_node_info.c) and hands each STATS_REP
    here. Lock held (the node's) for every call.
    ========================================================================= */

#ifndef MESH_PEER_STATS_H_INCLUDED
#define MESH_PEER_STATS_H_INCLUDED

#include <czmq.h>

typedef struct _mesh_peer_stats_t mesh_peer_stats_t;

mesh_peer_stats_t *
    mesh_peer_stats_new (void);
void
    mesh_peer_stats_destroy (mesh_peer_stats_t **self_p);
//  A new collection: the replies so far are dropped. Returns the id the
//  STATS_REQ messages carry.
uint64_t
    mesh_peer_stats_begin (mesh_peer_stats_t *self);
//  A STATS_REP from peer hex (its JSON body, size bytes); kept when id is
//  the current request's, the latest per peer
void
    mesh_peer_stats_reply (mesh_peer_stats_t *self, uint64_t id, const char *hex, const void *body,
                      size_t size);
//  Peers that replied to the current request
size_t
    mesh_peer_stats_replies (mesh_peer_stats_t *self);
//  The replies as one JSON object, peer id -> its stats. Caller frees.
char *
    mesh_peer_stats_json (mesh_peer_stats_t *self);

#endif
