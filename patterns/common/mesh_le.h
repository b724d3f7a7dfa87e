/*  =========================================================================
    mesh_le.h - little-endian numbers for the patterns' own codecs

    The pipeline's outbox records and JOBS frames store their numbers
    little-endian (docs/pipeline.md); both codecs use this one pair. The
    core's big-endian pair is src/wire/mesh_bytes.h, off the patterns'
    include path.
    ========================================================================= */

#ifndef MESH_LE_H_INCLUDED
#define MESH_LE_H_INCLUDED

#include <stdint.h>

//  Write the low bytes of value at p, least significant first
static inline void
mesh_le_put (uint8_t *p, uint64_t value, int bytes)
{
    for (int i = 0; i < bytes; i++, value >>= 8)
        p [i] = (uint8_t) value;
}

//  Read bytes at p, least significant first
static inline uint64_t
mesh_le_get (const uint8_t *p, int bytes)
{
    uint64_t value = 0;
    for (int i = bytes - 1; i >= 0; i--)
        value = (value << 8) | p [i];
    return value;
}

#endif
