/*  mesh_event - one peer or pattern event (private constructor)  */
#ifndef MESH_EVENT_H_INCLUDED
#define MESH_EVENT_H_INCLUDED

#include "meshbus/pattern.h"

struct _mesh_event_t {
    int type;
    char name [32];
    char peer [33];
    char peer_name [65];
    char endpoint [128];
    char detail [256];
    uint64_t count;
};

mesh_event_t *
    mesh_event_new (int type, const char *name, const char *peer,
                    const char *peer_name, const char *endpoint,
                    const char *detail, uint64_t count);
//  "ENTER", "EXIT"... for the core's types
const char *
    mesh_event_type_name (int type);

#endif
