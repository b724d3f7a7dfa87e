/*  =========================================================================
    mesh_reqrep_wire - the one decoder of request-reply's own network input

    Private to patterns/reqrep/mesh_reqrep*.c. REQ and REP travel entirely in the
    core envelope's fields (checked by the core's decoder); what remains is
    a peer's announcement of its services, parsed here so that a libFuzzer
    target (fuzz/fuzz_reqrep_services.c) can drive it alone.
    ========================================================================= */

#ifndef MESH_REQREP_WIRE_H_INCLUDED
#define MESH_REQREP_WIRE_H_INCLUDED

#include <stddef.h>

typedef void (mesh_rr_name_fn) (const char *name, void *arg);

//  Call fn for each valid service name (mesh_subject_valid) of an
//  announcement: size bytes, each name followed by '\n' (a last name
//  without one counts too); a NUL ends the text. At most max names;
//  *refused gets the number of valid names past that. Returns the number
//  of bad (non-empty, invalid) lines. Never reads past size.
size_t
    mesh_rr_parse_services (const void *text, size_t size, size_t max,
                            mesh_rr_name_fn *fn, void *arg, size_t *refused);

#endif
