/*  =========================================================================
    mesh_pipeline_jobs - encode and validate JOBS bodies (format in the
    header). The decoder is all-or-nothing: the caller runs no job of a
    batch unless every entry checked out, so a batch is never half run.
    ========================================================================= */

#include "mesh_le.h"
#include "mesh_pipeline_jobs.h"
#include <string.h>

#define PL_FLAG_FLUSH_WIRE  0x00020000      //  PL_FLAG_FLUSH, as a JOB carries it

size_t
pl_jobs_entry_size (size_t size)
{
    return PL_JOBS_ENTRY + size;
}

size_t
pl_jobs_put (uint8_t *buf, size_t cap, size_t at, const pl_jobs_entry_t *entry)
{
    if (!entry->id || !entry->seq || entry->seq > PL_JOBS_MAX_SEQ
    ||  (entry->flags & ~(uint32_t) PL_FLAG_FLUSH_WIRE) || entry->size > UINT32_MAX
    ||  at > cap || cap - at < PL_JOBS_ENTRY || cap - at - PL_JOBS_ENTRY < entry->size)
        return 0;
    uint8_t *out = buf + at;
    mesh_le_put (out, entry->id, 8);
    mesh_le_put (out + 8, entry->seq, 2);
    mesh_le_put (out + 10, entry->flags >> 16, 2);
    mesh_le_put (out + 12, entry->size, 4);
    if (entry->size)
        memcpy (out + PL_JOBS_ENTRY, entry->body, entry->size);
    return at + PL_JOBS_ENTRY + entry->size;
}

long
pl_jobs_decode (const void *data, size_t size, uint64_t count,
                 pl_jobs_entry_t *entries, size_t max)
{
    if (!data || count == 0 || count > max || count > PL_JOBS_JOBS)
        return -1;
    const uint8_t *at = (const uint8_t *) data, *end = at + size;
    for (uint64_t i = 0; i < count; i++) {
        if ((size_t) (end - at) < PL_JOBS_ENTRY)
            return -1;
        uint64_t id = mesh_le_get (at, 8);
        uint32_t seq = (uint32_t) mesh_le_get (at + 8, 2);
        uint32_t flags = (uint32_t) mesh_le_get (at + 10, 2);
        uint64_t body = mesh_le_get (at + 12, 4);
        at += PL_JOBS_ENTRY;
        if (!id || !seq || seq > PL_JOBS_MAX_SEQ || (flags & ~(uint32_t) PL_JOBS_FLUSH)
        ||  body > (uint64_t) (end - at))
            return -1;
        entries [i] = (pl_jobs_entry_t) {
            .id = id, .seq = seq, .flags = flags << 16, .body = at, .size = (size_t) body
        };
        at += body;
    }
    return at == end? (long) count: -1;
}
