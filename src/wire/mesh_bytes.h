/*  =========================================================================
    mesh_bytes.h - network byte order (big-endian) for the core's codecs

    The one place the envelope (msgpack numbers), batch frames (lengths),
    beacons and the HELLO MAC input write and read big-endian numbers.
    Inline: the envelope writes several per message, and with a constant
    width the compiler turns the loop into one byte-swapped store.
    Patterns have their own little-endian pair (patterns/common/mesh_le.h):
    src/ is off their include path.
    ========================================================================= */

#ifndef MESH_BYTES_H_INCLUDED
#define MESH_BYTES_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  Write the low width bytes of value at p, most significant first;
//  returns p + width
static inline uint8_t *
mesh_put_be (uint8_t *p, uint64_t value, size_t width)
{
    for (size_t i = width; i-- > 0; value >>= 8)
        p [i] = (uint8_t) value;
    return p + width;
}

//  Read width bytes at p, most significant first
static inline uint64_t
mesh_get_be (const uint8_t *p, size_t width)
{
    uint64_t value = 0;
    for (size_t i = 0; i < width; i++)
        value = (value << 8) | p [i];
    return value;
}

#endif
