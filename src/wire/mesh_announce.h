/*  =========================================================================
    mesh_announce.h - announcement deltas (the core's side of the codec)

    The record format is in meshbus/pattern.h (patterns write and read it);
    what the core adds is how a change travels: one splice of whole
    records, with versions (docs/protocol.md, "Announcement deltas").
    ========================================================================= */

#ifndef MESH_ANNOUNCE_H_INCLUDED
#define MESH_ANNOUNCE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  A delta's body: at (u32 LE), cut (u32 LE), then the bytes added
#define MESH_ANNOUNCE_DELTA_HEAD    8

//  now = old [0, at) + now [at, at + added) + old [at + cut, old_size):
//  the one run of whole records that differs.
void
    mesh_announce_diff (const char *old, size_t old_size, const char *now, size_t now_size,
                        size_t *at, size_t *cut, size_t *added);
void
    mesh_announce_delta_head (uint8_t head [MESH_ANNOUNCE_DELTA_HEAD], size_t at, size_t cut);
//  A delta's at and cut; false when it is too short to have them.
bool
    mesh_announce_delta_read (const void *delta, size_t delta_size, size_t *at, size_t *cut);
//  old with a delta applied (NUL-terminated, *size without it; the
//  caller frees it), or NULL when the delta does not fit old or the
//  result would pass max_size (input from the network).
void *
    mesh_announce_apply (const void *old, size_t old_size, const void *delta,
                         size_t delta_size, size_t max_size, size_t *size);

#endif
