/*  =========================================================================
    mesh_event - one peer or pattern event

    Events are small fixed-size records: text fields are truncated, never
    allocated to the size a peer declared.
    ========================================================================= */

#include "mesh_event.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
mesh_event_type_name (int type)
{
    switch (type) {
        case MESH_EVENT_ENTER:   return "ENTER";
        case MESH_EVENT_EXIT:    return "EXIT";
        case MESH_EVENT_SUSPECT: return "SUSPECT";
        case MESH_EVENT_BACK:    return "BACK";
        case MESH_EVENT_UPDATE:  return "UPDATE";
        default:                 return "EVENT";
    }
}

mesh_event_t *
mesh_event_new (int type, const char *name, const char *peer,
                const char *peer_name, const char *endpoint,
                const char *detail, uint64_t count)
{
    mesh_event_t *self = (mesh_event_t *) calloc (1, sizeof (mesh_event_t));
    if (!self)
        return NULL;
    self->type = type;
    snprintf (self->name, sizeof self->name, "%s", name? name: mesh_event_type_name (type));
    snprintf (self->peer, sizeof self->peer, "%s", peer? peer: "");
    snprintf (self->peer_name, sizeof self->peer_name, "%s", peer_name? peer_name: "");
    snprintf (self->endpoint, sizeof self->endpoint, "%s", endpoint? endpoint: "");
    snprintf (self->detail, sizeof self->detail, "%s", detail? detail: "");
    self->count = count;
    return self;
}

int          mesh_event_type (const mesh_event_t *self) { return self->type; }
const char * mesh_event_name (const mesh_event_t *self) { return self->name; }
const char * mesh_event_peer (const mesh_event_t *self) { return self->peer; }
const char * mesh_event_peer_name (const mesh_event_t *self) { return self->peer_name; }
const char * mesh_event_endpoint (const mesh_event_t *self) { return self->endpoint; }
const char * mesh_event_detail (const mesh_event_t *self) { return self->detail; }
uint64_t     mesh_event_count (const mesh_event_t *self) { return self->count; }

void
mesh_event_destroy (mesh_event_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}
