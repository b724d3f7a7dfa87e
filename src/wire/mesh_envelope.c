/*  =========================================================================
    mesh_envelope - the msgpack header frame of every link message

    The header frame is one msgpack array of 11 positional fields (a newer
    peer may append up to MESH_ENV_MAX_FIELDS; we skip the extras). The
    exact byte layout is in docs/wire-envelope.md.

    Why the decoder is written by hand. Every frame a peer sends goes through
    mesh_envelope_decode, at up to a few million frames a second, so it must
    not allocate and must not trust a single declared length. msgpack-c's
    unpacker fails both: it builds a msgpack_object tree in a zone that it
    mallocs per message (8 KiB), and it reserves what the input declares
    before checking the input holds it. Measured with msgpack-c 4.0.0 under
    valgrind --trace-malloc: the 5 bytes dd 01 00 00 00 (array32 of 2^24
    elements) make msgpack_unpack_next malloc 512 MiB, and dd ff ff ff ff
    asks for 128 GiB. Our fields are positional and their types fixed, so a
    small bounded reader is simpler than a general one: it walks the frame
    once, checks every declared length against the bytes that remain BEFORE
    using it, then against the limit in mesh_limits.h, and leaves spans that
    point into the frame. Nothing is copied, nothing is allocated.

    Why the encoder is too. It runs once per message per link on the
    publisher's thread. msgpack-c's packer goes through a write callback
    per token: callgrind counts ~440 instructions per 100-byte envelope
    (packer, callback and sizing), direct stores of the fixed 11-field
    layout ~120, and at 100 B the pub-sub rate is bound by CPU per message
    on both ends. The writers below pick the smallest form exactly as
    msgpack-c does (fixint/uint8/16/32/64, fixstr/str8/16/32, bin8/16/32);
    test_envelope keeps msgpack-c as the oracle and checks byte equality
    with its packer on thousands of random envelopes, and encode asserts
    size == bytes written on every call.
    ========================================================================= */

#include <assert.h>
#include <string.h>

#include "mesh_bytes.h"
#include "mesh_envelope.h"

//  The msgpack format bytes we read; names as in the msgpack spec
#define MP_POSFIXINT_MAX    0x7f
#define MP_FIXMAP           0x80    //  0x80..0x8f, low 4 bits = pairs
#define MP_FIXARRAY         0x90    //  0x90..0x9f, low 4 bits = elements
#define MP_FIXSTR           0xa0    //  0xa0..0xbf, low 5 bits = bytes
#define MP_NIL              0xc0
#define MP_FALSE            0xc2
#define MP_TRUE             0xc3
#define MP_BIN8             0xc4
#define MP_BIN16            0xc5
#define MP_BIN32            0xc6
#define MP_UINT8            0xcc
#define MP_UINT16           0xcd
#define MP_UINT32           0xce
#define MP_UINT64           0xcf
#define MP_INT8             0xd0
#define MP_INT16            0xd1
#define MP_INT32            0xd2
#define MP_INT64            0xd3
#define MP_STR8             0xd9
#define MP_STR16            0xda
#define MP_STR32            0xdb
#define MP_ARRAY16          0xdc
#define MP_ARRAY32          0xdd
#define MP_MAP16            0xde
#define MP_MAP32            0xdf
#define MP_NEGFIXINT        0xe0    //  0xe0..0xff

#define MESH_MAX_KIND       0xff    //  kind travels as one byte's worth

//  Cursor over the frame being decoded; p never passes end
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} reader_t;



//  --------------------------------------------------------------------------
//  Decoding

static inline size_t
s_left (const reader_t *r)
{
    return (size_t) (r->end - r->p);
}

//  Reads the width-byte length that follows a tag byte. The caller has
//  checked the tag byte itself is there.
static inline int
s_read_length (reader_t *r, size_t width, uint64_t *length)
{
    if (s_left (r) - 1 < width)
        return MESH_ENV_TRUNCATED;
    *length = mesh_get_be (r->p + 1, width);
    r->p += 1 + width;
    return MESH_ENV_OK;
}

//  Reads any msgpack integer that is not negative. Signed encodings are
//  accepted because some encoders (and some languages) only have those.
static int
s_read_uint_slow (reader_t *r, uint64_t *value)
{
    if (r->p == r->end)
        return MESH_ENV_TRUNCATED;
    uint8_t tag = *r->p;
    if (tag <= MP_POSFIXINT_MAX) {
        *value = tag;
        r->p++;
        return MESH_ENV_OK;
    }
    size_t width;
    bool is_signed = false;
    switch (tag) {
        case MP_UINT8:  width = 1; break;
        case MP_UINT16: width = 2; break;
        case MP_UINT32: width = 4; break;
        case MP_UINT64: width = 8; break;
        case MP_INT8:   width = 1; is_signed = true; break;
        case MP_INT16:  width = 2; is_signed = true; break;
        case MP_INT32:  width = 4; is_signed = true; break;
        case MP_INT64:  width = 8; is_signed = true; break;
        default:        return MESH_ENV_BAD_TYPE;   //  incl. negative fixint
    }
    if (s_left (r) - 1 < width)
        return MESH_ENV_TRUNCATED;
    uint64_t v = mesh_get_be (r->p + 1, width);
    if (is_signed && (v >> (8 * width - 1)))
        return MESH_ENV_BAD_TYPE;                   //  a negative number
    *value = v;
    r->p += 1 + width;
    return MESH_ENV_OK;
}

//  Reads a str (want_bin false) or a bin (want_bin true), or nil, into
//  span. The length is checked against the bytes left first, then against
//  limit, so a lying length is never used to move the cursor.
static int
s_read_raw_slow (reader_t *r, bool want_bin, uint32_t limit, mesh_span_t *span)
{
    if (r->p == r->end)
        return MESH_ENV_TRUNCATED;
    uint8_t tag = *r->p;
    uint64_t length;
    int rc = MESH_ENV_OK;
    if (tag == MP_NIL) {
        span->ptr = NULL;
        span->len = 0;
        r->p++;
        return MESH_ENV_OK;
    }
    if (!want_bin && (tag & 0xe0) == MP_FIXSTR) {
        length = tag & 0x1f;
        r->p++;
    }
    else
    if (!want_bin && tag == MP_STR8)  rc = s_read_length (r, 1, &length);
    else
    if (!want_bin && tag == MP_STR16) rc = s_read_length (r, 2, &length);
    else
    if (!want_bin && tag == MP_STR32) rc = s_read_length (r, 4, &length);
    else
    if (want_bin && tag == MP_BIN8)   rc = s_read_length (r, 1, &length);
    else
    if (want_bin && tag == MP_BIN16)  rc = s_read_length (r, 2, &length);
    else
    if (want_bin && tag == MP_BIN32)  rc = s_read_length (r, 4, &length);
    else
        return MESH_ENV_BAD_TYPE;
    if (rc)
        return rc;
    if (length > s_left (r))
        return MESH_ENV_TRUNCATED;
    if (length > limit)
        return MESH_ENV_TOO_LONG;
    span->ptr = r->p;
    span->len = (uint32_t) length;
    r->p += length;
    return MESH_ENV_OK;
}

//  Fast paths for the forms our own encoder writes most (fixint, fixstr,
//  nil, bin8): inlined at each field, they halve the decoder's cost; every
//  other form and every failure goes through the general readers above.
static inline int
s_read_uint (reader_t *r, uint64_t *value)
{
    if (r->p < r->end && *r->p <= MP_POSFIXINT_MAX) {
        *value = *r->p++;
        return MESH_ENV_OK;
    }
    //  sequence numbers and ids pass 127 at once: uint16/32 inline too
    if (r->end - r->p >= 5 && *r->p == MP_UINT32) {
        *value = mesh_get_be (r->p + 1, 4);
        r->p += 5;
        return MESH_ENV_OK;
    }
    if (r->end - r->p >= 3 && *r->p == MP_UINT16) {
        *value = mesh_get_be (r->p + 1, 2);
        r->p += 3;
        return MESH_ENV_OK;
    }
    return s_read_uint_slow (r, value);
}

static inline int
s_read_raw (reader_t *r, bool want_bin, uint32_t limit, mesh_span_t *span)
{
    if (r->p < r->end) {
        uint8_t tag = *r->p;
        size_t length, head;
        if (tag == MP_NIL) {
            span->ptr = NULL;
            span->len = 0;
            r->p++;
            return MESH_ENV_OK;
        }
        if (!want_bin && (tag & 0xe0) == MP_FIXSTR) {
            length = tag & 0x1f;
            head = 1;
        }
        else
        if (want_bin && tag == MP_BIN8 && s_left (r) >= 2) {
            length = r->p [1];
            head = 2;
        }
        else
            return s_read_raw_slow (r, want_bin, limit, span);
        if (length <= s_left (r) - head && length <= limit) {
            span->ptr = r->p + head;
            span->len = (uint32_t) length;
            r->p += head + length;
            return MESH_ENV_OK;
        }
    }
    return s_read_raw_slow (r, want_bin, limit, span);
}

//  Same as s_read_raw for a str that may not be nil (header keys, values)
static inline int
s_read_str (reader_t *r, uint32_t limit, mesh_span_t *span)
{
    if (r->p < r->end && *r->p == MP_NIL)
        return MESH_ENV_BAD_TYPE;
    return s_read_raw (r, false, limit, span);
}

//  The user headers: a map of str to str, or nil for none
static int
s_read_headers (reader_t *r, mesh_envelope_t *env)
{
    if (r->p == r->end)
        return MESH_ENV_TRUNCATED;
    uint8_t tag = *r->p;
    uint64_t count;
    int rc = MESH_ENV_OK;
    if (tag == MP_NIL) {
        count = 0;
        r->p++;
    }
    else
    if ((tag & 0xf0) == MP_FIXMAP) {
        count = tag & 0x0f;
        r->p++;
    }
    else
    if (tag == MP_MAP16)
        rc = s_read_length (r, 2, &count);
    else
    if (tag == MP_MAP32)
        rc = s_read_length (r, 4, &count);
    else
        return MESH_ENV_BAD_TYPE;
    if (rc)
        return rc;
    //  The count only bounds the loop below, each pair is read with its own
    //  checks, so the limit is all there is to check here.
    if (count > MESH_MAX_HEADERS)
        return MESH_ENV_TOO_LONG;

    size_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
        mesh_span_t *key = &env->header_key [i];
        mesh_span_t *value = &env->header_value [i];
        if ((rc = s_read_str (r, MESH_MAX_HEADER_KEY, key))
        ||  (rc = s_read_str (r, MESH_MAX_HEADER_VALUE, value)))
            return rc;
        total += key->len + value->len;
        if (total > MESH_MAX_HEADERS_BYTES)
            return MESH_ENV_TOO_LONG;
    }
    env->header_count = (uint32_t) count;
    return MESH_ENV_OK;
}

//  Skips one trailing element a newer peer appended. Only scalars are
//  allowed there: a container would let a frame nest without bound.
static int
s_skip_extra (reader_t *r)
{
    if (r->p == r->end)
        return MESH_ENV_TRUNCATED;
    uint8_t tag = *r->p;
    if (tag <= MP_POSFIXINT_MAX || tag >= MP_NEGFIXINT
    ||  tag == MP_NIL || tag == MP_FALSE || tag == MP_TRUE) {
        r->p++;
        return MESH_ENV_OK;
    }
    size_t width;
    switch (tag) {
        case MP_UINT8:  case MP_INT8:  width = 1; break;
        case MP_UINT16: case MP_INT16: width = 2; break;
        case MP_UINT32: case MP_INT32: width = 4; break;
        case MP_UINT64: case MP_INT64: width = 8; break;
        default:        width = 0; break;
    }
    if (width) {
        if (s_left (r) - 1 < width)
            return MESH_ENV_TRUNCATED;
        r->p += 1 + width;
        return MESH_ENV_OK;
    }
    mesh_span_t ignored;
    bool is_str = (tag & 0xe0) == MP_FIXSTR
               || tag == MP_STR8 || tag == MP_STR16 || tag == MP_STR32;
    bool is_bin = tag == MP_BIN8 || tag == MP_BIN16 || tag == MP_BIN32;
    if (is_str || is_bin)
        //  The frame size already bounds it: no limit of its own
        return s_read_raw (r, is_bin, UINT32_MAX, &ignored);
    return MESH_ENV_BAD_SHAPE;
}

int
mesh_envelope_decode (mesh_envelope_t *env, const void *data, size_t size)
{
    assert (env);
    assert (data || size == 0);
    if (size > MESH_MAX_HEADER_FRAME)
        return MESH_ENV_TOO_LONG;

    reader_t reader = { data, (const uint8_t *) data + size };
    reader_t *r = &reader;
    if (size == 0)
        return MESH_ENV_TRUNCATED;

    uint8_t tag = *r->p;
    uint64_t count;
    int rc = MESH_ENV_OK;
    if ((tag & 0xf0) == MP_FIXARRAY) {
        count = tag & 0x0f;
        r->p++;
    }
    else
    if (tag == MP_ARRAY16)
        rc = s_read_length (r, 2, &count);
    else
    if (tag == MP_ARRAY32)
        rc = s_read_length (r, 4, &count);
    else
        return MESH_ENV_BAD_SHAPE;
    if (rc)
        return rc;
    if (count == 0)
        return MESH_ENV_BAD_SHAPE;

    //  The version decides the layout of everything after it, so it is read
    //  before the element count is judged: a frame from a peer of another
    //  version is reported as BAD_VERSION whatever its shape.
    uint64_t version, kind, flags;
    if ((rc = s_read_uint (r, &version)))
        return rc;
    if (version != MESH_WIRE_VERSION)
        return MESH_ENV_BAD_VERSION;
    if (count < MESH_ENV_FIELDS || count > MESH_ENV_MAX_FIELDS)
        return MESH_ENV_BAD_SHAPE;

    if ((rc = s_read_uint (r, &kind)))
        return rc;
    if (kind > MESH_MAX_KIND)
        return MESH_ENV_TOO_LONG;
    if ((rc = s_read_uint (r, &flags)))
        return rc;
    if (flags > UINT32_MAX)
        return MESH_ENV_TOO_LONG;
    env->version = (uint32_t) version;
    env->kind = (uint32_t) kind;
    env->flags = (uint32_t) flags;

    if ((rc = s_read_uint (r, &env->seq))
    ||  (rc = s_read_uint (r, &env->id))
    ||  (rc = s_read_raw (r, false, MESH_MAX_SUBJECT, &env->subject))
    ||  (rc = s_read_raw (r, false, MESH_MAX_REPLY, &env->reply))
    ||  (rc = s_read_uint (r, &env->deadline))
    ||  (rc = s_read_raw (r, false, MESH_MAX_CTYPE, &env->ctype))
    ||  (rc = s_read_headers (r, env))
    ||  (rc = s_read_raw (r, true, MESH_MAX_INLINE_BODY, &env->body)))
        return rc;

    for (uint64_t extra = MESH_ENV_FIELDS; extra < count; extra++)
        if ((rc = s_skip_extra (r)))
            return rc;
    if (r->p != r->end)
        return MESH_ENV_BAD_SHAPE;      //  bytes after the array
    return MESH_ENV_OK;
}


//  --------------------------------------------------------------------------
//  Encoding

//  A span that is nil must have no length; anything else is a caller bug
static inline bool
s_span_ok (mesh_span_t span, uint32_t limit)
{
    assert (span.ptr || span.len == 0);
    return span.len <= limit;
}

//  True if env can be encoded: every limit the decoder enforces holds, so
//  that we never send what a peer of our version would drop.
static bool
s_encodable (const mesh_envelope_t *env)
{
    if (env->version != 0 && env->version != MESH_WIRE_VERSION)
        return false;
    if (env->kind > MESH_MAX_KIND)
        return false;
    if (!s_span_ok (env->subject, MESH_MAX_SUBJECT)
    ||  !s_span_ok (env->reply, MESH_MAX_REPLY)
    ||  !s_span_ok (env->ctype, MESH_MAX_CTYPE)
    ||  !s_span_ok (env->body, MESH_MAX_INLINE_BODY))
        return false;
    if (env->header_count > MESH_MAX_HEADERS)
        return false;
    size_t total = 0;
    for (uint32_t i = 0; i < env->header_count; i++) {
        if (!s_span_ok (env->header_key [i], MESH_MAX_HEADER_KEY)
        ||  !s_span_ok (env->header_value [i], MESH_MAX_HEADER_VALUE))
            return false;
        total += env->header_key [i].len + env->header_value [i].len;
    }
    return total <= MESH_MAX_HEADERS_BYTES;
}

//  Bytes msgpack-c's packer writes for each kind of value (smallest form)
static inline size_t
s_uint_size (uint64_t value)
{
    return value <= MP_POSFIXINT_MAX? 1
         : value <= UINT8_MAX?  2
         : value <= UINT16_MAX? 3
         : value <= UINT32_MAX? 5: 9;
}

static inline size_t
s_str_size (uint32_t len)
{
    return len + (len < 32? 1: len <= UINT8_MAX? 2: len <= UINT16_MAX? 3: 5);
}

static inline size_t
s_bin_size (uint32_t len)
{
    return len + (len <= UINT8_MAX? 2: len <= UINT16_MAX? 3: 5);
}

static size_t
s_size (const mesh_envelope_t *env)
{
    size_t size = 1                                 //  fixarray of 11
                + s_uint_size (MESH_WIRE_VERSION)
                + s_uint_size (env->kind)
                + s_uint_size (env->flags)
                + s_uint_size (env->seq)
                + s_uint_size (env->id)
                + (env->subject.ptr? s_str_size (env->subject.len): 1)
                + (env->reply.ptr? s_str_size (env->reply.len): 1)
                + s_uint_size (env->deadline)
                + (env->ctype.ptr? s_str_size (env->ctype.len): 1)
                + (env->body.ptr? s_bin_size (env->body.len): 1);
    if (env->header_count == 0)
        size += 1;                                  //  nil
    else {
        size += env->header_count < 16? 1: 3;       //  fixmap or map16
        for (uint32_t i = 0; i < env->header_count; i++)
            size += s_str_size (env->header_key [i].len)
                  + s_str_size (env->header_value [i].len);
    }
    return size;
}

//  Direct writers: the smallest msgpack form of each value, as msgpack-c's
//  packer chooses it (test_envelope checks byte equality with the packer).
//  The caller sized the buffer with s_size, so none checks room.
static inline uint8_t *
s_put_uint (uint8_t *p, uint64_t value)
{
    if (value <= MP_POSFIXINT_MAX) {
        *p = (uint8_t) value;
        return p + 1;
    }
    if (value <= UINT8_MAX)  { *p = MP_UINT8;  return mesh_put_be (p + 1, value, 1); }
    if (value <= UINT16_MAX) { *p = MP_UINT16; return mesh_put_be (p + 1, value, 2); }
    if (value <= UINT32_MAX) { *p = MP_UINT32; return mesh_put_be (p + 1, value, 4); }
    *p = MP_UINT64;
    return mesh_put_be (p + 1, value, 8);
}

static inline uint8_t *
s_put_str (uint8_t *p, mesh_span_t span)
{
    uint32_t len = span.len;
    if (len < 32)
        *p++ = (uint8_t) (MP_FIXSTR | len);
    else
    if (len <= UINT8_MAX)  { *p = MP_STR8;  p = mesh_put_be (p + 1, len, 1); }
    else
    if (len <= UINT16_MAX) { *p = MP_STR16; p = mesh_put_be (p + 1, len, 2); }
    else                   { *p = MP_STR32; p = mesh_put_be (p + 1, len, 4); }
    if (len)
        memcpy (p, span.ptr, len);
    return p + len;
}

static inline uint8_t *
s_put_str_or_nil (uint8_t *p, mesh_span_t span)
{
    if (span.ptr)
        return s_put_str (p, span);
    *p = MP_NIL;
    return p + 1;
}

bool
mesh_envelope_fits (const mesh_envelope_t *env)
{
    assert (env);
    return s_encodable (env);
}

size_t
mesh_envelope_size (const mesh_envelope_t *env)
{
    assert (env);
    return s_encodable (env)? s_size (env): 0;
}

size_t
mesh_envelope_encode (const mesh_envelope_t *env, void *buf, size_t cap)
{
    assert (env);
    assert (buf || cap == 0);
    if (!s_encodable (env))
        return 0;
    size_t size = s_size (env);
    if (size > cap)
        return 0;

    uint8_t *p = (uint8_t *) buf;
    *p++ = (uint8_t) (MP_FIXARRAY | MESH_ENV_FIELDS);
    p = s_put_uint (p, MESH_WIRE_VERSION);
    p = s_put_uint (p, env->kind);
    p = s_put_uint (p, env->flags);
    p = s_put_uint (p, env->seq);
    p = s_put_uint (p, env->id);
    p = s_put_str_or_nil (p, env->subject);
    p = s_put_str_or_nil (p, env->reply);
    p = s_put_uint (p, env->deadline);
    p = s_put_str_or_nil (p, env->ctype);
    //  No headers travel as nil, the same one byte as an empty map
    if (env->header_count == 0)
        *p++ = MP_NIL;
    else {
        if (env->header_count < 16)
            *p++ = (uint8_t) (MP_FIXMAP | env->header_count);
        else {
            *p = MP_MAP16;
            p = mesh_put_be (p + 1, env->header_count, 2);
        }
        //  A key or value with a NULL ptr goes out as an empty str
        for (uint32_t i = 0; i < env->header_count; i++) {
            p = s_put_str (p, env->header_key [i]);
            p = s_put_str (p, env->header_value [i]);
        }
    }
    if (env->body.ptr) {
        uint32_t len = env->body.len;
        if (len <= UINT8_MAX)  { *p = MP_BIN8;  p = mesh_put_be (p + 1, len, 1); }
        else
        if (len <= UINT16_MAX) { *p = MP_BIN16; p = mesh_put_be (p + 1, len, 2); }
        else                   { *p = MP_BIN32; p = mesh_put_be (p + 1, len, 4); }
        if (len)
            memcpy (p, env->body.ptr, len);
        p += len;
    }
    else
        *p++ = MP_NIL;

    //  s_size and the writers disagreeing is a bug in this file
    assert ((size_t) (p - (uint8_t *) buf) == size);
    return size;
}

const char *
mesh_envelope_strerror (int rc)
{
    switch (rc) {
        case MESH_ENV_OK:          return "ok";
        case MESH_ENV_TRUNCATED:   return "truncated";
        case MESH_ENV_BAD_TYPE:    return "bad type";
        case MESH_ENV_BAD_VERSION: return "bad version";
        case MESH_ENV_TOO_LONG:    return "too long";
        case MESH_ENV_BAD_SHAPE:   return "bad shape";
        default:                   return "unknown envelope error";
    }
}
