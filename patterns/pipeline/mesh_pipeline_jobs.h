/*  =========================================================================
    mesh_pipeline_jobs.h - several jobs in one link frame (kind JOBS)

    A producer that has several ready jobs for the same worker, queue and
    origin, none with a content type or headers, sends them as one JOBS
    message: the envelope carries the queue (subject), the origin (reply)
    and the number of jobs (seq); the body is that many entries, back to
    back, nothing after the last (integers little-endian):

        0   u64 job id (> 0)
        8   u16 delivery (1..PL_MAX_DELIVERIES)
        10  u16 flags (PL_FLAG_FLUSH >> 16, nothing else)
        12  u32 body length
        16  body

    The body comes from the network: pl_jobs_decode() checks every entry
    against the bytes that remain and the limits here BEFORE the caller
    runs any job, so a malformed batch runs nothing. Nothing is allocated;
    decoded entries point into the caller's buffer.
    fuzz/fuzz_pipeline_jobs.c runs this file under libFuzzer.
    ========================================================================= */

#ifndef MESH_PIPELINE_JOBS_H_INCLUDED
#define MESH_PIPELINE_JOBS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_JOBS_JOBS       64              //  most jobs in one JOBS frame
#define PL_JOBS_BYTES      (64 * 1024)     //  most body bytes of one JOBS frame
#define PL_JOBS_ENTRY      16              //  bytes of an entry before its body
#define PL_JOBS_MAX_SEQ    1000            //  = PL_MAX_DELIVERIES
#define PL_JOBS_FLUSH      0x0002          //  entry flag: PL_FLAG_FLUSH >> 16

typedef struct {
    uint64_t id;
    uint32_t seq;               //  delivery count, 1 = first
    uint32_t flags;             //  as a JOB's: 0 or PL_FLAG_FLUSH (0x00020000)
    const void *body;
    size_t size;
} pl_jobs_entry_t;

//  Bytes an entry with a body of size takes
size_t
    pl_jobs_entry_size (size_t size);
//  Append one entry at buf + at (cap bytes in all); returns the new end,
//  or 0 when it does not fit or the entry is invalid (id 0, bad seq/flags)
size_t
    pl_jobs_put (uint8_t *buf, size_t cap, size_t at, const pl_jobs_entry_t *entry);
//  Decode a whole JOBS body of size bytes that its envelope says holds
//  count entries, into entries [0..count-1] (max slots). Returns count
//  when every entry is valid and the body ends with the last one; -1
//  otherwise (then nothing in entries may be used).
long
    pl_jobs_decode (const void *data, size_t size, uint64_t count,
                     pl_jobs_entry_t *entries, size_t max);

#endif
