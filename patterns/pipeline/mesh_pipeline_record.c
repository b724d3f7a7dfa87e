/*  =========================================================================
    mesh_pipeline_record - encode and decode the pipeline's stored records

    See mesh_pipeline_record.h for the layout and why the decoder never
    allocates. Input is untrusted: a record read back from LMDB may have
    been damaged or written by something else.
    ========================================================================= */

#include "mesh_le.h"
#include "meshbus/pattern.h"
#include "mesh_pipeline_record.h"
#include <string.h>

static size_t
s_len (const char *text)
{
    return text? strlen (text): 0;
}

static bool
s_hex32 (const char *text, size_t len)
{
    if (len != 32)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr ("0123456789abcdefABCDEF", text [i]) || !text [i])
            return false;
    return true;
}

size_t
pl_record_size (const pl_record_in_t *in)
{
    size_t queue = s_len (in->queue), ctype = s_len (in->ctype);
    size_t origin = s_len (in->origin), reason = s_len (in->reason);
    if (queue < 1 || queue > PL_REC_MAX_QUEUE || ctype > PL_REC_MAX_CTYPE
    ||  (origin != 0 && origin != 32) || reason > PL_REC_MAX_REASON
    ||  in->header_count > PL_REC_MAX_HEADERS || in->size > PL_REC_MAX_BODY || !in->id)
        return 0;
    size_t size = PL_REC_HEAD + queue + ctype + origin + reason + in->size, hbytes = 0;
    for (size_t i = 0; i < in->header_count; i++) {
        size_t klen = s_len (in->headers [2 * i]), vlen = s_len (in->headers [2 * i + 1]);
        if (klen < 1 || klen > PL_REC_MAX_KEY || vlen > PL_REC_MAX_VALUE)
            return 0;
        hbytes += klen + vlen;
        size += 4 + klen + vlen;
    }
    return hbytes > PL_REC_MAX_HBYTES? 0: size;
}

size_t
pl_record_encode (const pl_record_in_t *in, uint8_t *buf, size_t cap)
{
    size_t size = pl_record_size (in);
    if (!size || size > cap)
        return 0;
    buf [0] = 'M';
    buf [1] = PL_REC_VERSION;
    buf [2] = (uint8_t) in->type;
    buf [3] = 0;
    mesh_le_put (buf + 4, in->id, 8);
    mesh_le_put (buf + 12, in->deliveries, 4);
    mesh_le_put (buf + 16, s_len (in->queue), 2);
    mesh_le_put (buf + 18, s_len (in->ctype), 2);
    mesh_le_put (buf + 20, s_len (in->origin), 2);
    mesh_le_put (buf + 22, in->header_count, 2);
    mesh_le_put (buf + 24, s_len (in->reason), 2);
    mesh_le_put (buf + 26, 0, 2);
    mesh_le_put (buf + 28, in->size, 4);
    mesh_le_put (buf + 32, in->time_ms, 8);
    uint8_t *p = buf + PL_REC_HEAD;
    const char *strings [3] = { in->queue, in->ctype, in->origin };
    for (int i = 0; i < 3; i++) {
        size_t len = s_len (strings [i]);
        if (len)
            memcpy (p, strings [i], len);
        p += len;
    }
    for (size_t i = 0; i < in->header_count; i++) {
        size_t klen = strlen (in->headers [2 * i]), vlen = s_len (in->headers [2 * i + 1]);
        mesh_le_put (p, klen, 2);
        mesh_le_put (p + 2, vlen, 2);
        memcpy (p + 4, in->headers [2 * i], klen);
        if (vlen)
            memcpy (p + 4 + klen, in->headers [2 * i + 1], vlen);
        p += 4 + klen + vlen;
    }
    size_t reason = s_len (in->reason);
    if (reason)
        memcpy (p, in->reason, reason);
    p += reason;
    if (in->size)
        memcpy (p, in->body, in->size);
    return size;
}

//  Copy len bytes at *at into out (cap bytes with its NUL), if they remain
static bool
s_take (const uint8_t **at, const uint8_t *end, size_t len, char *out, size_t cap)
{
    if (len >= cap || (size_t) (end - *at) < len)
        return false;
    memcpy (out, *at, len);
    out [len] = 0;
    if (memchr (out, 0, len))
        return false;           //  strings have no NUL inside
    *at += len;
    return true;
}

bool
pl_record_decode (const void *data, size_t size, pl_record_t *out)
{
    const uint8_t *buf = (const uint8_t *) data;
    if (!data || size < PL_REC_HEAD || buf [0] != 'M' || buf [1] != PL_REC_VERSION
    ||  (buf [2] != PL_REC_JOB && buf [2] != PL_REC_DEAD) || buf [3] != 0)
        return false;
    out->type = buf [2];
    out->id = mesh_le_get (buf + 4, 8);
    out->deliveries = (uint32_t) mesh_le_get (buf + 12, 4);
    size_t queue = mesh_le_get (buf + 16, 2), ctype = mesh_le_get (buf + 18, 2);
    size_t origin = mesh_le_get (buf + 20, 2), headers = mesh_le_get (buf + 22, 2);
    size_t reason = mesh_le_get (buf + 24, 2);
    uint64_t body = mesh_le_get (buf + 28, 4);
    out->time_ms = mesh_le_get (buf + 32, 8);
    if (!out->id || queue < 1 || queue > PL_REC_MAX_QUEUE || ctype > PL_REC_MAX_CTYPE
    ||  (origin != 0 && origin != 32) || headers > PL_REC_MAX_HEADERS
    ||  reason > PL_REC_MAX_REASON || body > PL_REC_MAX_BODY || mesh_le_get (buf + 26, 2))
        return false;
    const uint8_t *at = buf + PL_REC_HEAD, *end = buf + size;
    if (!s_take (&at, end, queue, out->queue, sizeof out->queue)
    ||  !mesh_subject_valid (out->queue)
    ||  !s_take (&at, end, ctype, out->ctype, sizeof out->ctype)
    ||  !s_take (&at, end, origin, out->origin, sizeof out->origin)
    ||  (origin && !s_hex32 (out->origin, origin)))
        return false;
    char *h = out->hbuf;
    size_t hbytes = 0;
    for (size_t i = 0; i < headers; i++) {
        if (end - at < 4)
            return false;
        size_t klen = mesh_le_get (at, 2), vlen = mesh_le_get (at + 2, 2);
        at += 4;
        hbytes += klen + vlen;
        if (klen < 1 || klen > PL_REC_MAX_KEY || vlen > PL_REC_MAX_VALUE
        ||  hbytes > PL_REC_MAX_HBYTES)
            return false;
        //  hbuf holds every key and value with their NULs: bounded above
        if (!s_take (&at, end, klen, h, klen + 1))
            return false;
        out->headers [2 * i] = h;
        h += klen + 1;
        if (!s_take (&at, end, vlen, h, vlen + 1))
            return false;
        out->headers [2 * i + 1] = h;
        h += vlen + 1;
    }
    out->header_count = headers;
    if (!s_take (&at, end, reason, out->reason, sizeof out->reason))
        return false;
    if ((uint64_t) (end - at) != body)
        return false;
    out->body = at;
    out->size = (size_t) body;
    return true;
}

long
pl_ids_count (const void *data, size_t size, size_t max)
{
    if (!data || size == 0 || size % 8 || size / 8 > max)
        return -1;
    return (long) (size / 8);
}

//  Ids travel little-endian; on a little-endian host that is one 8-byte
//  copy (the byte loops were ~60 instructions an id, an id per job acked)
uint64_t
pl_ids_at (const void *data, size_t i)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t id;
    memcpy (&id, (const uint8_t *) data + 8 * i, sizeof id);
    return id;
#else
    return mesh_le_get ((const uint8_t *) data + 8 * i, 8);
#endif
}

void
pl_ids_put (uint8_t *buf, size_t i, uint64_t id)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy (buf + 8 * i, &id, sizeof id);
#else
    mesh_le_put (buf + 8 * i, id, 8);
#endif
}
