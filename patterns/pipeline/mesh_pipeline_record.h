/*  =========================================================================
    mesh_pipeline_record.h - the pipeline's stored records and id lists

    Outbox and dead-letter records are read back from LMDB files, and ACK /
    NACK bodies come from the network: both are decoded here, with every
    length checked against the bytes that remain and against the limits
    below before anything is touched. Nothing is allocated while decoding;
    a decoded record points into the caller's buffer (the body) and into
    its own fixed storage (strings). fuzz/fuzz_pipeline_record.c runs this
    file under libFuzzer.

    Record layout (all integers little-endian):
        0   u8  'M'     u8 version (1)   u8 type ('J' job, 'D' dead)   u8 0
        4   u64 job id (> 0)
        12  u32 deliveries
        16  u16 queue length (1..255)    u16 content type length (0..127)
        20  u16 origin length (0 or 32)  u16 header count (0..32)
        24  u16 reason length (0..255)   u16 0
        28  u32 body length (<= 256 MiB)
        32  u64 pushed at, ms since the epoch
        40  queue, content type, origin (hex), headers (u16 key length
            1..64, u16 value length 0..1024, key, value; keys and values
            together <= 8192), reason, body; nothing after the body.
    ========================================================================= */

#ifndef MESH_PIPELINE_RECORD_H_INCLUDED
#define MESH_PIPELINE_RECORD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_REC_VERSION      1
#define PL_REC_JOB          'J'
#define PL_REC_DEAD         'D'
#define PL_REC_HEAD         40
#define PL_REC_MAX_QUEUE    255
#define PL_REC_MAX_CTYPE    127
#define PL_REC_MAX_HEADERS  32
#define PL_REC_MAX_KEY      64
#define PL_REC_MAX_VALUE    1024
#define PL_REC_MAX_HBYTES   8192
#define PL_REC_MAX_REASON   255
#define PL_REC_MAX_BODY     (256u * 1024 * 1024)

typedef struct {
    int type;
    uint64_t id;
    uint32_t deliveries;
    uint64_t time_ms;
    char queue [PL_REC_MAX_QUEUE + 1];
    char ctype [PL_REC_MAX_CTYPE + 1];
    char origin [33];
    char reason [PL_REC_MAX_REASON + 1];
    const char *headers [2 * PL_REC_MAX_HEADERS];   //  key, value, ... into hbuf
    size_t header_count;
    char hbuf [PL_REC_MAX_HBYTES + 2 * PL_REC_MAX_HEADERS];
    const void *body;           //  into the decoded buffer
    size_t size;
} pl_record_t;

//  What to encode (strings NUL-terminated; NULL = empty)
typedef struct {
    int type;
    uint64_t id;
    uint32_t deliveries;
    uint64_t time_ms;
    const char *queue, *ctype, *origin, *reason;
    const char *const *headers;
    size_t header_count;
    const void *body;
    size_t size;
} pl_record_in_t;

//  Size of the encoded record, 0 if a field breaks a limit
size_t
    pl_record_size (const pl_record_in_t *in);
//  Encode into buf (pl_record_size bytes). Returns the size, 0 on a bad field.
size_t
    pl_record_encode (const pl_record_in_t *in, uint8_t *buf, size_t cap);
//  Decode; false on any malformed field (out is then undefined).
bool
    pl_record_decode (const void *data, size_t size, pl_record_t *out);

//  An ACK / NACK body: count job ids of 8 bytes, little-endian. Returns the
//  number of ids, or -1 if the body is not a list of 1..max ids.
long
    pl_ids_count (const void *data, size_t size, size_t max);
uint64_t
    pl_ids_at (const void *data, size_t i);
void
    pl_ids_put (uint8_t *buf, size_t i, uint64_t id);

#endif
