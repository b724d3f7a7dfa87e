/*  mesh_departed - the counters of peers that left, kept so that what was
    dropped for a peer stays readable, with its id, after it is gone. Used
    under node->lock; needs mesh_peer_t (include mesh_node_int.h). */
#ifndef MESH_DEPARTED_H_INCLUDED
#define MESH_DEPARTED_H_INCLUDED

#include "mesh_counters.h"
#include <stdbool.h>

#define MESH_MAX_DEPARTED 256   //  peers remembered; the oldest is forgotten first

typedef struct _mesh_departed_t mesh_departed_t;

mesh_departed_t *
    mesh_departed_new (void);
void
    mesh_departed_destroy (mesh_departed_t **self_p);
//  A peer leaves for reason: keep its counters (taken from the peer,
//  which is destroyed next). Returns true if the oldest record had to be
//  forgotten to make room.
bool
    mesh_departed_keep (mesh_departed_t *self, mesh_peer_t *peer, const char *reason);
//  The peer came back: its history goes back into the new record.
void
    mesh_departed_restore (mesh_departed_t *self, mesh_peer_t *peer);
//  Count for a departed peer; false if the id is not remembered.
bool
    mesh_departed_count (mesh_departed_t *self, const char *hex, const char *name,
                         uint64_t delta);
//  A departed peer's counter (frames.in/out and bytes.in/out included);
//  false if the id is not remembered.
bool
    mesh_departed_counter (mesh_departed_t *self, const char *hex, const char *name,
                           uint64_t *value);
//  Append {"<id>": {"name", "endpoint", "left", "left_ms", frames and
//  bytes, "counters"}, ...}.
void
    mesh_departed_json (mesh_departed_t *self, zchunk_t *out);

#endif
