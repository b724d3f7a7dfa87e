/*  =========================================================================
    test_envelope - the header frame codec

    The decoder reads every frame a peer sends, so most of this file feeds it
    what a broken or hostile peer could: a table of garbage with the exact
    reason expected, every truncation of a valid frame, every limit at and
    one past its value, and a long run of random and mutated bytes. Inputs
    are copied into buffers of their exact size, so that under ASan or
    valgrind a read one byte too far is an error, not luck.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <msgpack.h>

#include "mesh_envelope.h"

//  Big enough for any envelope (mesh_envelope_size promises this)
#define BUF_SIZE    MESH_MAX_HEADER_FRAME

static mesh_span_t
s_span (const char *string)
{
    mesh_span_t span = { (const uint8_t *) string, (uint32_t) strlen (string) };
    return span;
}

static mesh_span_t
s_bytes (const void *data, size_t size)
{
    mesh_span_t span = { (const uint8_t *) data, (uint32_t) size };
    return span;
}

//  Equal means: both nil, or both not nil with the same bytes
static bool
s_span_equal (mesh_span_t a, mesh_span_t b)
{
    if (!a.ptr || !b.ptr)
        return !a.ptr && !b.ptr;
    return a.len == b.len && memcmp (a.ptr, b.ptr, a.len) == 0;
}

//  Header keys and values have no nil: NULL goes out as an empty str
static bool
s_header_equal (mesh_span_t a, mesh_span_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp (a.ptr, b.ptr, a.len) == 0);
}

//  What was sent (version 0 means current) against what was decoded
static void
s_assert_same (const mesh_envelope_t *sent, const mesh_envelope_t *got)
{
    assert_int_equal (got->version, MESH_WIRE_VERSION);
    assert_true (sent->version == 0 || sent->version == got->version);
    assert_int_equal (sent->kind, got->kind);
    assert_int_equal (sent->flags, got->flags);
    assert_true (sent->seq == got->seq);
    assert_true (sent->id == got->id);
    assert_true (sent->deadline == got->deadline);
    assert_true (s_span_equal (sent->subject, got->subject));
    assert_true (s_span_equal (sent->reply, got->reply));
    assert_true (s_span_equal (sent->ctype, got->ctype));
    assert_true (s_span_equal (sent->body, got->body));
    assert_int_equal (sent->header_count, got->header_count);
    for (uint32_t i = 0; i < sent->header_count; i++) {
        assert_true (s_header_equal (sent->header_key [i], got->header_key [i]));
        assert_true (s_header_equal (sent->header_value [i], got->header_value [i]));
    }
}

//  Decodes a copy of data in a buffer of exactly size bytes
static int
s_decode_exact (mesh_envelope_t *env, const void *data, size_t size)
{
    uint8_t *copy = malloc (size? size: 1);
    assert_non_null (copy);
    if (size)
        memcpy (copy, data, size);
    int rc = mesh_envelope_decode (env, copy, size);
    free (copy);
    return rc;
}

//  Every span of a decoded envelope must lie inside the frame
static void
s_assert_inside (const mesh_envelope_t *env, const uint8_t *data, size_t size)
{
    const mesh_span_t *spans [3 + 2 * MESH_MAX_HEADERS + 1];
    size_t count = 0;
    spans [count++] = &env->subject;
    spans [count++] = &env->reply;
    spans [count++] = &env->ctype;
    spans [count++] = &env->body;
    assert_true (env->header_count <= MESH_MAX_HEADERS);
    for (uint32_t i = 0; i < env->header_count; i++) {
        spans [count++] = &env->header_key [i];
        spans [count++] = &env->header_value [i];
    }
    for (size_t i = 0; i < count; i++) {
        if (!spans [i]->ptr) {
            assert_int_equal (spans [i]->len, 0);
            continue;
        }
        assert_true (spans [i]->ptr >= data);
        assert_true (spans [i]->ptr + spans [i]->len <= data + size);
    }
}

//  Encode, check the size promise and the guard bytes, decode, compare,
//  and check the encoding is a fixed point (re-encoding gives same bytes).
static size_t
s_round_trip (const mesh_envelope_t *env)
{
    static uint8_t buf [BUF_SIZE + 16];
    static uint8_t again [BUF_SIZE];
    size_t size = mesh_envelope_size (env);
    assert_true (size > 0 && size <= BUF_SIZE);
    memset (buf, 0xAB, sizeof buf);
    assert_int_equal (mesh_envelope_encode (env, buf, BUF_SIZE), size);
    for (size_t i = size; i < sizeof buf; i++)
        assert_int_equal (buf [i], 0xAB);

    mesh_envelope_t got;
    assert_int_equal (s_decode_exact (&got, buf, size), MESH_ENV_OK);
    //  s_decode_exact freed its copy; decode in place to compare spans
    assert_int_equal (mesh_envelope_decode (&got, buf, size), MESH_ENV_OK);
    s_assert_inside (&got, buf, size);
    s_assert_same (env, &got);
    assert_int_equal (mesh_envelope_encode (&got, again, sizeof again), size);
    assert_memory_equal (buf, again, size);
    return size;
}

//  Parses "9b 01 ..." into bytes; returns the count
static size_t
s_unhex (const char *hex, uint8_t *out, size_t cap)
{
    size_t size = 0;
    while (*hex) {
        if (*hex == ' ') {
            hex++;
            continue;
        }
        unsigned int byte;
        assert_int_equal (sscanf (hex, "%2x", &byte), 1);
        assert_true (size < cap);
        out [size++] = (uint8_t) byte;
        hex += 2;
    }
    return size;
}


//  --------------------------------------------------------------------------
//  A frame builder for inputs the encoder refuses to make: it packs the
//  default fields [1, 0, 0, 0, 0, nil, nil, 0, nil, nil, nil] (plus nil
//  extras) with msgpack-c, except field `field`, which fn packs.

typedef void (s_pack_fn) (msgpack_packer *pk, size_t arg);

static size_t
s_build (uint8_t *out, size_t elements, size_t field, s_pack_fn *fn, size_t arg)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, elements);
    for (size_t i = 0; i < elements; i++) {
        if (i == field)
            fn (&pk, arg);
        else
        if (i == 0)
            msgpack_pack_uint8 (&pk, MESH_WIRE_VERSION);
        else
        if (i <= 4 || i == 7)
            msgpack_pack_uint8 (&pk, 0);
        else
            msgpack_pack_nil (&pk);
    }
    assert_true (sbuf.size <= BUF_SIZE + 64);
    memcpy (out, sbuf.data, sbuf.size);
    size_t size = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
    return size;
}

static void
s_pack_str_of (msgpack_packer *pk, size_t len)
{
    static char filler [BUF_SIZE];
    memset (filler, 's', len);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, filler, len);
}

static void
s_pack_bin_of (msgpack_packer *pk, size_t len)
{
    static char filler [BUF_SIZE];
    memset (filler, 'b', len);
    msgpack_pack_bin (pk, len);
    msgpack_pack_bin_body (pk, filler, len);
}

static void
s_pack_uint (msgpack_packer *pk, size_t value)
{
    msgpack_pack_uint64 (pk, value);
}

//  Headers: arg encodes pairs, key length, value length (see s_headers_arg)
#define s_headers_arg(pairs, key_len, value_len) \
    ((size_t) (pairs) | (size_t) (key_len) << 8 | (size_t) (value_len) << 20)

static void
s_pack_headers (msgpack_packer *pk, size_t arg)
{
    size_t pairs = arg & 0xff;
    size_t key_len = (arg >> 8) & 0xfff;
    size_t value_len = arg >> 20;
    msgpack_pack_map (pk, pairs);
    for (size_t i = 0; i < pairs; i++) {
        //  Keys differ in their first two bytes; the rest is filler
        char key [256];
        memset (key, 'k', sizeof key);
        if (key_len >= 2) {
            key [0] = (char) ('a' + i / 26);
            key [1] = (char) ('a' + i % 26);
        }
        msgpack_pack_str (pk, key_len);
        msgpack_pack_str_body (pk, key, key_len);
        s_pack_str_of (pk, value_len);
    }
}


//  --------------------------------------------------------------------------
//  The usage example: what a node does to send and to receive

static void
test_usage_example (void **state)
{
    (void) state;
    //  Sender: fill an envelope whose spans point at the sender's memory
    const char *body = "{\"order\": 1234, \"total\": 99.5}";
    mesh_envelope_t env = {
        .version = MESH_WIRE_VERSION,
        .kind = 6,
        .flags = 0x3,
        .seq = 17,
        .id = 0xDEADBEEFCAFEull,
        .deadline = 1700000000000ull,
        .subject = s_span ("orders.eu.created"),
        .reply = s_span ("_INBOX.5f3a"),
        .ctype = s_span ("application/json"),
        .header_count = 1,
        .body = s_span (body),
    };
    env.header_key [0] = s_span ("trace-id");
    env.header_value [0] = s_span ("4bf92f3577b34da6");

    //  Size first, then encode into a buffer of that size: one copy of body
    uint8_t frame [256];
    size_t size = mesh_envelope_size (&env);
    assert_true (size > 0 && size <= sizeof frame);
    assert_int_equal (mesh_envelope_encode (&env, frame, sizeof frame), size);

    //  Receiver: decode without allocating; spans point into the frame
    mesh_envelope_t got;
    int rc = mesh_envelope_decode (&got, frame, size);
    assert_int_equal (rc, MESH_ENV_OK);
    assert_string_equal (mesh_envelope_strerror (rc), "ok");
    assert_int_equal (got.version, MESH_WIRE_VERSION);
    assert_int_equal (got.kind, 6);
    assert_int_equal (got.flags, 0x3);
    assert_true (got.seq == 17);
    assert_true (got.id == 0xDEADBEEFCAFEull);
    assert_true (got.deadline == 1700000000000ull);
    assert_int_equal (got.subject.len, strlen ("orders.eu.created"));
    assert_memory_equal (got.subject.ptr, "orders.eu.created", got.subject.len);
    assert_memory_equal (got.reply.ptr, "_INBOX.5f3a", got.reply.len);
    assert_memory_equal (got.ctype.ptr, "application/json", got.ctype.len);
    assert_int_equal (got.header_count, 1);
    assert_memory_equal (got.header_key [0].ptr, "trace-id", 8);
    assert_memory_equal (got.header_value [0].ptr, "4bf92f3577b34da6", 16);
    assert_int_equal (got.body.len, strlen (body));
    assert_memory_equal (got.body.ptr, body, got.body.len);
    assert_true (got.body.ptr > frame && got.body.ptr < frame + size);
}


//  --------------------------------------------------------------------------
//  Round trips

static void
test_round_trip_all_shapes (void **state)
{
    (void) state;
    static char big [MESH_MAX_INLINE_BODY];
    memset (big, 'z', sizeof big);
    const uint64_t ints [] = {
        0, 1, 127, 128, 255, 256, 65535, 65536,
        UINT32_MAX, (uint64_t) UINT32_MAX + 1, INT64_MAX, UINT64_MAX
    };
    const size_t n_ints = sizeof ints / sizeof ints [0];
    //  Each length list: nil (-1), empty, and every encoding boundary
    const long subjects [] = { -1, 0, 1, 31, 32, MESH_MAX_SUBJECT };
    const long replies [] = { -1, 0, 32, MESH_MAX_REPLY };
    const long ctypes [] = { -1, 0, 31, MESH_MAX_CTYPE };
    const long bodies [] = { -1, 0, 1, 255, 256, 65535 };
    const uint32_t headers [] = { 0, 1, 15, 16, MESH_MAX_HEADERS };

    size_t shapes = 0;
    for (size_t s = 0; s < sizeof subjects / sizeof subjects [0]; s++)
    for (size_t r = 0; r < sizeof replies / sizeof replies [0]; r++)
    for (size_t c = 0; c < sizeof ctypes / sizeof ctypes [0]; c++)
    for (size_t b = 0; b < sizeof bodies / sizeof bodies [0]; b++)
    for (size_t h = 0; h < sizeof headers / sizeof headers [0]; h++) {
        mesh_envelope_t env = { 0 };
        size_t k = shapes;
        env.version = (k & 1)? MESH_WIRE_VERSION: 0;
        env.kind = (uint32_t) (ints [k % n_ints] & 0xff);
        env.flags = (uint32_t) ints [(k + 1) % n_ints];
        env.seq = ints [(k + 2) % n_ints];
        env.id = ints [(k + 5) % n_ints];
        env.deadline = ints [(k + 7) % n_ints];
        if (subjects [s] >= 0) env.subject = s_bytes (big, (size_t) subjects [s]);
        if (replies [r] >= 0)  env.reply = s_bytes (big, (size_t) replies [r]);
        if (ctypes [c] >= 0)   env.ctype = s_bytes (big, (size_t) ctypes [c]);
        if (bodies [b] >= 0)   env.body = s_bytes (big, (size_t) bodies [b]);
        //  The most headers, each as big as the byte limit allows
        env.header_count = headers [h];
        for (uint32_t i = 0; i < env.header_count; i++) {
            uint32_t key_len = i % 2? MESH_MAX_HEADER_KEY: (i % 33);
            uint32_t value_len = MESH_MAX_HEADERS_BYTES / MESH_MAX_HEADERS - key_len;
            env.header_key [i] = s_bytes (big + i, key_len);
            env.header_value [i] = s_bytes (big, value_len);
        }
        s_round_trip (&env);
        shapes++;
    }
    assert_int_equal (shapes, 6 * 4 * 4 * 6 * 5);
}

static void
test_round_trip_every_int (void **state)
{
    (void) state;
    //  Every encoding boundary of every integer field, one at a time
    const uint64_t ints [] = {
        0, 127, 128, 255, 256, 65535, 65536,
        UINT32_MAX, (uint64_t) UINT32_MAX + 1, UINT64_MAX
    };
    //  The bytes msgpack spends on each, smallest form
    const size_t widths [] = { 1, 1, 2, 2, 3, 3, 5, 5, 9, 9 };
    for (size_t i = 0; i < sizeof ints / sizeof ints [0]; i++) {
        for (int field = 0; field < 5; field++) {
            mesh_envelope_t env = { .version = MESH_WIRE_VERSION };
            if (field == 0 && ints [i] > 0xff)
                continue;
            if (field == 1 && ints [i] > UINT32_MAX)
                continue;
            switch (field) {
                case 0: env.kind = (uint32_t) ints [i]; break;
                case 1: env.flags = (uint32_t) ints [i]; break;
                case 2: env.seq = ints [i]; break;
                case 3: env.id = ints [i]; break;
                case 4: env.deadline = ints [i]; break;
            }
            //  12 bytes for the all-zero frame, plus what this int adds
            assert_int_equal (s_round_trip (&env), 12 + widths [i] - 1);
        }
    }
}

static void
test_encode_picks_smallest (void **state)
{
    (void) state;
    //  The exact bytes for a few shapes, written out by hand from the spec
    static const struct {
        const char *subject;        //  NULL = nil
        size_t body_len;            //  SIZE_MAX = nil
        const char *hex;
    } cases [] = {
        { NULL, SIZE_MAX,  "9b 01 00 00 00 00 c0 c0 00 c0 c0 c0" },
        { "",   0,         "9b 01 00 00 00 00 a0 c0 00 c0 c0 c4 00" },
        { "a.b", 1,        "9b 01 00 00 00 00 a3 61 2e 62 c0 00 c0 c0 c4 01 00" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        uint8_t zero [1] = { 0 };
        mesh_envelope_t env = { 0 };
        if (cases [i].subject)
            env.subject = s_span (cases [i].subject);
        if (cases [i].body_len != SIZE_MAX)
            env.body = s_bytes (zero, cases [i].body_len);
        uint8_t expect [64], got [64];
        size_t size = s_unhex (cases [i].hex, expect, sizeof expect);
        assert_int_equal (mesh_envelope_encode (&env, got, sizeof got), size);
        assert_memory_equal (got, expect, size);
    }
    //  String and bin headers at each boundary: fixstr/str8/str16, bin8/16
    static char fill [300];
    struct { size_t len; size_t str_head; size_t bin_head; } lens [] = {
        { 31, 1, 2 }, { 32, 2, 2 }, { 255, 2, 2 }, { 256, 3, 3 }
    };
    for (size_t i = 0; i < sizeof lens / sizeof lens [0]; i++) {
        mesh_envelope_t env = { 0 };
        env.reply = s_bytes (fill, lens [i].len);
        if (lens [i].len <= MESH_MAX_REPLY)
            assert_int_equal (mesh_envelope_size (&env),
                              11 + lens [i].str_head + lens [i].len);
        mesh_envelope_t with_body = { 0 };
        with_body.body = s_bytes (fill, lens [i].len);
        assert_int_equal (mesh_envelope_size (&with_body),
                          11 + lens [i].bin_head + lens [i].len);
    }
    //  16 headers take a map16 (3 bytes), 15 a fixmap (1 byte)
    mesh_envelope_t env = { 0 };
    for (uint32_t i = 0; i < 16; i++)
        env.header_key [i] = env.header_value [i] = s_span ("");
    env.header_count = 15;
    assert_int_equal (mesh_envelope_size (&env), 11 + 1 + 15 * 2);
    env.header_count = 16;
    assert_int_equal (mesh_envelope_size (&env), 11 + 3 + 16 * 2);
}

//  msgpack-c's packer is the oracle for the hand-written encoder: for
//  random envelopes (every integer width, str/bin lengths across each
//  boundary, nil and empty, 0..20 headers) both must write the same bytes.
static void
s_oracle_str (msgpack_packer *pk, mesh_span_t span, bool nil_ok)
{
    if (!span.ptr && nil_ok) {
        msgpack_pack_nil (pk);
        return;
    }
    msgpack_pack_str (pk, span.len);
    msgpack_pack_str_body (pk, span.ptr, span.len);
}

static uint64_t
s_random_uint (void)
{
    static const int widths [] = { 0, 7, 8, 15, 16, 31, 32, 63, 64 };
    int bits = widths [rand () % 9];
    uint64_t v = ((uint64_t) rand () << 42) ^ ((uint64_t) rand () << 21) ^ (uint64_t) rand ();
    return bits == 64? v: v & ((1ull << bits) - 1);
}

static mesh_span_t
s_random_span (const uint8_t *fill, uint32_t limit, bool nil_ok)
{
    static const uint32_t lens [] = { 0, 1, 31, 32, 255, 256, 1000, 65535 };
    if (nil_ok && rand () % 4 == 0)
        return (mesh_span_t) { NULL, 0 };
    uint32_t len = rand () % 2? lens [rand () % 8]: (uint32_t) (rand () % 300);
    return s_bytes (fill, len > limit? limit: len);
}

static void
test_encode_matches_msgpack_c (void **state)
{
    (void) state;
    static uint8_t fill [MESH_MAX_INLINE_BODY];
    for (size_t i = 0; i < sizeof fill; i++)
        fill [i] = (uint8_t) (i * 7);
    uint8_t *ours = malloc (BUF_SIZE);
    assert_non_null (ours);
    srand (17);
    for (int round = 0; round < 5000; round++) {
        mesh_envelope_t env = { 0 };
        env.kind = (uint32_t) (s_random_uint () & 0xff);
        env.flags = (uint32_t) s_random_uint ();
        env.seq = s_random_uint ();
        env.id = s_random_uint ();
        env.deadline = s_random_uint ();
        env.subject = s_random_span (fill, MESH_MAX_SUBJECT, true);
        env.reply = s_random_span (fill, MESH_MAX_REPLY, true);
        env.ctype = s_random_span (fill, MESH_MAX_CTYPE, true);
        env.header_count = (uint32_t) (rand () % 21);
        if (env.header_count > MESH_MAX_HEADERS)
            env.header_count = MESH_MAX_HEADERS;
        for (uint32_t h = 0; h < env.header_count; h++) {
            env.header_key [h] = s_bytes (fill, (uint32_t) (rand () % 40));
            env.header_value [h] = s_bytes (fill, (uint32_t) (rand () % 100));
        }
        env.body = s_random_span (fill, MESH_MAX_INLINE_BODY, true);
        size_t size = mesh_envelope_size (&env);
        if (size == 0)
            continue;           //  broke a total limit: not encodable at all
        assert_int_equal (mesh_envelope_encode (&env, ours, BUF_SIZE), size);

        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_array (&pk, 11);
        msgpack_pack_uint32 (&pk, MESH_WIRE_VERSION);
        msgpack_pack_uint32 (&pk, env.kind);
        msgpack_pack_uint32 (&pk, env.flags);
        msgpack_pack_uint64 (&pk, env.seq);
        msgpack_pack_uint64 (&pk, env.id);
        s_oracle_str (&pk, env.subject, true);
        s_oracle_str (&pk, env.reply, true);
        msgpack_pack_uint64 (&pk, env.deadline);
        s_oracle_str (&pk, env.ctype, true);
        if (env.header_count == 0)
            msgpack_pack_nil (&pk);
        else {
            msgpack_pack_map (&pk, env.header_count);
            for (uint32_t h = 0; h < env.header_count; h++) {
                s_oracle_str (&pk, env.header_key [h], false);
                s_oracle_str (&pk, env.header_value [h], false);
            }
        }
        if (env.body.ptr) {
            msgpack_pack_bin (&pk, env.body.len);
            msgpack_pack_bin_body (&pk, env.body.ptr, env.body.len);
        }
        else
            msgpack_pack_nil (&pk);
        assert_int_equal (sbuf.size, size);
        assert_memory_equal (sbuf.data, ours, size);
        msgpack_sbuffer_destroy (&sbuf);
    }
    free (ours);
}

static void
test_empty_is_not_nil (void **state)
{
    (void) state;
    //  An empty str still points into the frame; nil has no pointer
    uint8_t frame [32];
    size_t size = s_unhex ("9b 01 00 00 00 00 a0 c0 00 c0 80 c4 00", frame, sizeof frame);
    mesh_envelope_t env;
    assert_int_equal (mesh_envelope_decode (&env, frame, size), MESH_ENV_OK);
    assert_non_null (env.subject.ptr);
    assert_int_equal (env.subject.len, 0);
    assert_true (env.subject.ptr >= frame && env.subject.ptr <= frame + size);
    assert_null (env.reply.ptr);
    assert_int_equal (env.reply.len, 0);
    assert_null (env.ctype.ptr);
    assert_int_equal (env.header_count, 0);
    assert_non_null (env.body.ptr);
    assert_int_equal (env.body.len, 0);
}

static void
test_decode_accepts_any_int_encoding (void **state)
{
    (void) state;
    //  42 as seq in every encoding a peer may use, signed ones included
    const char *encodings [] = {
        "2a", "cc 2a", "cd 00 2a", "ce 00 00 00 2a",
        "cf 00 00 00 00 00 00 00 2a", "d0 2a", "d1 00 2a",
        "d2 00 00 00 2a", "d3 00 00 00 00 00 00 00 2a"
    };
    for (size_t i = 0; i < sizeof encodings / sizeof encodings [0]; i++) {
        char hex [128];
        snprintf (hex, sizeof hex, "9b 01 00 00 %s 00 c0 c0 00 c0 c0 c0", encodings [i]);
        uint8_t frame [64];
        size_t size = s_unhex (hex, frame, sizeof frame);
        mesh_envelope_t env;
        assert_int_equal (s_decode_exact (&env, frame, size), MESH_ENV_OK);
        assert_true (env.seq == 42);
    }
}


//  --------------------------------------------------------------------------
//  Limits: exactly at the limit is fine, one past is TOO_LONG on decode
//  and refused by encode (which then writes nothing).

static void
s_expect_decode (size_t field, s_pack_fn *fn, size_t arg, int expect)
{
    static uint8_t frame [BUF_SIZE + 64];
    size_t size = s_build (frame, MESH_ENV_FIELDS, field, fn, arg);
    mesh_envelope_t env;
    int rc = s_decode_exact (&env, frame, size);
    if (rc != expect)
        print_error ("field %zu arg %#zx: got %s, want %s\n", field, arg,
                     mesh_envelope_strerror (rc), mesh_envelope_strerror (expect));
    assert_int_equal (rc, expect);
}

static void
test_decode_limits (void **state)
{
    (void) state;
    const int OK = MESH_ENV_OK, TOO_LONG = MESH_ENV_TOO_LONG;
    s_expect_decode (1, s_pack_uint, 255, OK);
    s_expect_decode (1, s_pack_uint, 256, TOO_LONG);
    s_expect_decode (2, s_pack_uint, UINT32_MAX, OK);
    s_expect_decode (2, s_pack_uint, (size_t) UINT32_MAX + 1, TOO_LONG);
    s_expect_decode (5, s_pack_str_of, MESH_MAX_SUBJECT, OK);
    s_expect_decode (5, s_pack_str_of, MESH_MAX_SUBJECT + 1, TOO_LONG);
    s_expect_decode (6, s_pack_str_of, MESH_MAX_REPLY, OK);
    s_expect_decode (6, s_pack_str_of, MESH_MAX_REPLY + 1, TOO_LONG);
    s_expect_decode (8, s_pack_str_of, MESH_MAX_CTYPE, OK);
    s_expect_decode (8, s_pack_str_of, MESH_MAX_CTYPE + 1, TOO_LONG);
    s_expect_decode (10, s_pack_bin_of, MESH_MAX_INLINE_BODY, OK);
    s_expect_decode (10, s_pack_bin_of, MESH_MAX_INLINE_BODY + 1, TOO_LONG);
    //  Header count, key, value, and all bytes together
    s_expect_decode (9, s_pack_headers, s_headers_arg (MESH_MAX_HEADERS, 2, 1), OK);
    s_expect_decode (9, s_pack_headers, s_headers_arg (MESH_MAX_HEADERS + 1, 2, 1), TOO_LONG);
    s_expect_decode (9, s_pack_headers, s_headers_arg (1, MESH_MAX_HEADER_KEY, 1), OK);
    s_expect_decode (9, s_pack_headers, s_headers_arg (1, MESH_MAX_HEADER_KEY + 1, 1), TOO_LONG);
    s_expect_decode (9, s_pack_headers, s_headers_arg (1, 2, MESH_MAX_HEADER_VALUE), OK);
    s_expect_decode (9, s_pack_headers, s_headers_arg (1, 2, MESH_MAX_HEADER_VALUE + 1), TOO_LONG);
    //  8 pairs of 2 + 1022 bytes are exactly MESH_MAX_HEADERS_BYTES
    assert_int_equal (8 * (2 + 1022), MESH_MAX_HEADERS_BYTES);
    s_expect_decode (9, s_pack_headers, s_headers_arg (8, 2, 1022), OK);
    s_expect_decode (9, s_pack_headers, s_headers_arg (8, 2, 1023), TOO_LONG);
    s_expect_decode (9, s_pack_headers, s_headers_arg (8, 3, 1022), TOO_LONG);

    //  The whole frame: MESH_MAX_HEADER_FRAME bytes are read, one more is
    //  refused before anything else (a 12th element carries the padding).
    //  12 elements: 1 array byte + 11 default bytes + str32 head (5) = 17
    const size_t pad = MESH_MAX_HEADER_FRAME - 17;
    static uint8_t frame [BUF_SIZE + 64];
    size_t size = s_build (frame, MESH_ENV_FIELDS + 1, MESH_ENV_FIELDS, s_pack_str_of, pad);
    assert_int_equal (size, MESH_MAX_HEADER_FRAME);
    mesh_envelope_t env;
    assert_int_equal (s_decode_exact (&env, frame, size), MESH_ENV_OK);
    size = s_build (frame, MESH_ENV_FIELDS + 1, MESH_ENV_FIELDS, s_pack_str_of, pad + 1);
    assert_int_equal (s_decode_exact (&env, frame, size), MESH_ENV_TOO_LONG);
}

static void
s_expect_refused (const mesh_envelope_t *env)
{
    uint8_t buf [256];
    memset (buf, 0xAB, sizeof buf);
    assert_int_equal (mesh_envelope_size (env), 0);
    static uint8_t big [BUF_SIZE];
    assert_int_equal (mesh_envelope_encode (env, big, sizeof big), 0);
    assert_int_equal (mesh_envelope_encode (env, buf, sizeof buf), 0);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal (buf [i], 0xAB);
}

static void
test_encode_limits (void **state)
{
    (void) state;
    static char fill [MESH_MAX_INLINE_BODY + 1];
    mesh_envelope_t env;

    //  At each limit it encodes (and decodes, checked by s_round_trip) ...
    env = (mesh_envelope_t) { .kind = 255, .flags = UINT32_MAX };
    env.subject = s_bytes (fill, MESH_MAX_SUBJECT);
    env.reply = s_bytes (fill, MESH_MAX_REPLY);
    env.ctype = s_bytes (fill, MESH_MAX_CTYPE);
    env.body = s_bytes (fill, MESH_MAX_INLINE_BODY);
    env.header_count = MESH_MAX_HEADERS;
    for (uint32_t i = 0; i < MESH_MAX_HEADERS; i++) {
        env.header_key [i] = s_bytes (fill, MESH_MAX_HEADER_KEY);
        env.header_value [i] = s_bytes (fill, MESH_MAX_HEADERS_BYTES / MESH_MAX_HEADERS
                                              - MESH_MAX_HEADER_KEY);
    }
    env.seq = env.id = env.deadline = UINT64_MAX;
    //  ... and this biggest envelope still fits the frame limit
    assert_true (s_round_trip (&env) <= MESH_MAX_HEADER_FRAME);
    const mesh_envelope_t biggest = env;

    //  ... and one past each limit it is refused, writing nothing
    env = biggest; env.version = 2;                       s_expect_refused (&env);
    env = biggest; env.kind = 256;                        s_expect_refused (&env);
    env = biggest; env.subject.len++;                     s_expect_refused (&env);
    env = biggest; env.reply.len++;                       s_expect_refused (&env);
    env = biggest; env.ctype.len++;                       s_expect_refused (&env);
    env = biggest; env.body.len++;                        s_expect_refused (&env);
    env = biggest; env.header_count++;                    s_expect_refused (&env);
    env = biggest; env.header_value [31].len++;           s_expect_refused (&env);
    env = (mesh_envelope_t) { .header_count = 1 };
    env.header_key [0] = s_bytes (fill, MESH_MAX_HEADER_KEY + 1);
    s_expect_refused (&env);
    env.header_key [0] = s_bytes (fill, 1);
    env.header_value [0] = s_bytes (fill, MESH_MAX_HEADER_VALUE + 1);
    s_expect_refused (&env);
}

static void
test_encode_cap_too_small (void **state)
{
    (void) state;
    mesh_envelope_t env = { .kind = 3, .subject = s_span ("orders.eu.created"),
                            .body = s_span ("hello") };
    size_t size = mesh_envelope_size (&env);
    uint8_t buf [64];
    for (size_t cap = 0; cap < size; cap++) {
        memset (buf, 0xAB, sizeof buf);
        assert_int_equal (mesh_envelope_encode (&env, buf, cap), 0);
        for (size_t i = 0; i < sizeof buf; i++)
            assert_int_equal (buf [i], 0xAB);
    }
    assert_int_equal (mesh_envelope_encode (&env, buf, size), size);
}


//  --------------------------------------------------------------------------
//  Garbage: each entry is a frame a peer could send and the reason it is
//  dropped. MIN is the smallest valid field list, after the array byte.

#define MIN     "01 00 00 00 00 c0 c0 00 c0 c0 c0"

static const struct {
    const char *name;
    const char *hex;
    int expect;
} s_garbage [] = {
    //  The frame as a whole
    { "empty frame", "", MESH_ENV_TRUNCATED },
    { "nil, not an array", "c0", MESH_ENV_BAD_SHAPE },
    { "an int, not an array", "2a", MESH_ENV_BAD_SHAPE },
    { "a map, not an array", "81 a1 61 01", MESH_ENV_BAD_SHAPE },
    { "a str, not an array", "a3 61 62 63", MESH_ENV_BAD_SHAPE },
    { "reserved byte c1", "c1", MESH_ENV_BAD_SHAPE },
    { "empty array", "90", MESH_ENV_BAD_SHAPE },
    { "array32 of 2^32-1, 5 bytes in all", "dd ff ff ff ff", MESH_ENV_TRUNCATED },
    { "array32 of 2^32-1 then version 1", "dd ff ff ff ff 01", MESH_ENV_BAD_SHAPE },
    { "array16 head cut", "dc 00", MESH_ENV_TRUNCATED },
    { "array32 head cut", "dd 00 00", MESH_ENV_TRUNCATED },
    { "10 elements", "9a 01 00 00 00 00 c0 c0 00 c0 c0", MESH_ENV_BAD_SHAPE },
    { "17 elements", "dc 00 11 " MIN " c0 c0 c0 c0 c0 c0", MESH_ENV_BAD_SHAPE },
    { "16 elements in an array16", "dc 00 10 " MIN " c0 c0 c0 c0 c0", MESH_ENV_OK },
    { "11 elements in an array32", "dd 00 00 00 0b " MIN, MESH_ENV_OK },
    { "trailing nil after the array", "9b " MIN " c0", MESH_ENV_BAD_SHAPE },
    { "trailing zero byte", "9b " MIN " 00", MESH_ENV_BAD_SHAPE },
    { "two frames back to back", "9b " MIN " 9b " MIN, MESH_ENV_BAD_SHAPE },
    { "declares 12, holds 11", "9c " MIN, MESH_ENV_TRUNCATED },
    //  Extras a newer peer appends: scalars are skipped, nothing else
    { "extras: nil true -1 uint64", "9f " MIN " c0 c3 ff cf 00 00 00 00 00 00 00 01", MESH_ENV_OK },
    { "extras: str and bin", "9d " MIN " a2 68 69 c4 01 00", MESH_ENV_OK },
    { "extras: str32 and int64", "9d " MIN " db 00 00 00 01 61 d3 80 00 00 00 00 00 00 00", MESH_ENV_OK },
    { "extras: nested array", "9c " MIN " 91 c0", MESH_ENV_BAD_SHAPE },
    { "extras: array of arrays", "9c " MIN " 91 91 91 91 90", MESH_ENV_BAD_SHAPE },
    { "extras: map", "9c " MIN " 80", MESH_ENV_BAD_SHAPE },
    { "extras: float32", "9c " MIN " ca 00 00 00 00", MESH_ENV_BAD_SHAPE },
    { "extras: fixext1", "9c " MIN " d4 01 00", MESH_ENV_BAD_SHAPE },
    { "extras: reserved c1", "9c " MIN " c1", MESH_ENV_BAD_SHAPE },
    { "extras: str32 past the end", "9c " MIN " db 00 00 00 05 61", MESH_ENV_TRUNCATED },
    { "extras: uint32 cut", "9c " MIN " ce 00 00", MESH_ENV_TRUNCATED },
    //  [0] version
    { "version 2", "9b 02 00 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_VERSION },
    { "version 0", "9b 00 00 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_VERSION },
    { "version 2 in another shape", "92 02 00", MESH_ENV_BAD_VERSION },
    { "version 2^64-1", "9b cf ff ff ff ff ff ff ff ff 00 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_VERSION },
    { "version -1", "9b ff 00 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "version as str", "9b a1 31 00 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "version reserved c1", "9b c1 00 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    //  [1] kind, [2] flags
    { "kind 300", "9b 01 cd 01 2c 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_TOO_LONG },
    { "kind 255", "9b 01 cc ff 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_OK },
    { "kind as int8 5", "9b 01 d0 05 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_OK },
    { "kind nil", "9b 01 c0 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "flags 2^32", "9b 01 00 cf 00 00 00 01 00 00 00 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_TOO_LONG },
    { "flags false", "9b 01 00 c2 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    //  [3] seq, [4] id
    { "seq -1 (negative fixint)", "9b 01 00 00 ff 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "seq -1 (int8)", "9b 01 00 00 d0 ff 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "seq -2^15 (int16)", "9b 01 00 00 d1 80 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "seq -1 (int32)", "9b 01 00 00 d2 ff ff ff ff 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "seq INT64_MIN", "9b 01 00 00 d3 80 00 00 00 00 00 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "seq INT64_MAX", "9b 01 00 00 d3 7f ff ff ff ff ff ff ff 00 c0 c0 00 c0 c0 c0", MESH_ENV_OK },
    { "seq float32", "9b 01 00 00 ca 00 00 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "seq float64", "9b 01 00 00 cb 00 00 00 00 00 00 00 00 00 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "id true", "9b 01 00 00 00 c3 c0 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "id uint64 cut at the end", "9b 01 00 00 00 cf 00 00", MESH_ENV_TRUNCATED },
    { "id uint16 cut at the end", "9b 01 00 00 00 cd 01", MESH_ENV_TRUNCATED },
    //  [5] subject, [6] reply
    { "subject int", "9b 01 00 00 00 00 2a c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "subject bin", "9b 01 00 00 00 00 c4 01 61 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "subject str32 of 4 GiB", "9b 01 00 00 00 00 db ff ff ff ff c0 00 c0 c0 c0", MESH_ENV_TRUNCATED },
    { "subject str16 of 64 KiB", "9b 01 00 00 00 00 da ff ff c0 00 c0 c0 c0", MESH_ENV_TRUNCATED },
    { "subject fixstr past the end", "9b 01 00 00 00 00 a5 61 62", MESH_ENV_TRUNCATED },
    { "subject str8 head cut", "9b 01 00 00 00 00 d9", MESH_ENV_TRUNCATED },
    { "subject in str16", "9b 01 00 00 00 00 da 00 01 61 c0 00 c0 c0 c0", MESH_ENV_OK },
    { "subject in str32", "9b 01 00 00 00 00 db 00 00 00 01 61 c0 00 c0 c0 c0", MESH_ENV_OK },
    { "reply array", "9b 01 00 00 00 00 c0 91 c0 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "reply map", "9b 01 00 00 00 00 c0 80 00 c0 c0 c0", MESH_ENV_BAD_TYPE },
    //  [7] deadline, [8] ctype
    { "deadline nil", "9b 01 00 00 00 00 c0 c0 c0 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "deadline negative", "9b 01 00 00 00 00 c0 c0 e0 c0 c0 c0", MESH_ENV_BAD_TYPE },
    { "ctype bin", "9b 01 00 00 00 00 c0 c0 00 c4 00 c0 c0", MESH_ENV_BAD_TYPE },
    { "ctype true", "9b 01 00 00 00 00 c0 c0 00 c3 c0 c0", MESH_ENV_BAD_TYPE },
    //  [9] headers
    { "headers map32 of 2^32-1", "9b 01 00 00 00 00 c0 c0 00 c0 df ff ff ff ff c0", MESH_ENV_TOO_LONG },
    { "headers map16 of 33", "9b 01 00 00 00 00 c0 c0 00 c0 de 00 21", MESH_ENV_TOO_LONG },
    { "headers map16 head cut", "9b 01 00 00 00 00 c0 c0 00 c0 de 00", MESH_ENV_TRUNCATED },
    { "headers array", "9b 01 00 00 00 00 c0 c0 00 c0 91 c0 c0", MESH_ENV_BAD_TYPE },
    { "headers str", "9b 01 00 00 00 00 c0 c0 00 c0 a0 c0", MESH_ENV_BAD_TYPE },
    { "header key int", "9b 01 00 00 00 00 c0 c0 00 c0 81 01 a1 76 c0", MESH_ENV_BAD_TYPE },
    { "header key nil", "9b 01 00 00 00 00 c0 c0 00 c0 81 c0 a1 76 c0", MESH_ENV_BAD_TYPE },
    { "header value nil", "9b 01 00 00 00 00 c0 c0 00 c0 81 a1 6b c0 c0", MESH_ENV_BAD_TYPE },
    { "header value bin", "9b 01 00 00 00 00 c0 c0 00 c0 81 a1 6b c4 00 c0", MESH_ENV_BAD_TYPE },
    { "header value map", "9b 01 00 00 00 00 c0 c0 00 c0 81 a1 6b 80 c0", MESH_ENV_BAD_TYPE },
    { "headers declare 2, hold 1", "9b 01 00 00 00 00 c0 c0 00 c0 82 a1 6b a1 76", MESH_ENV_TRUNCATED },
    { "headers empty map", "9b 01 00 00 00 00 c0 c0 00 c0 80 c0", MESH_ENV_OK },
    { "header with empty key, value", "9b 01 00 00 00 00 c0 c0 00 c0 81 a0 a0 c0", MESH_ENV_OK },
    //  [10] body
    { "body bin32 of 4 GiB", "9b 01 00 00 00 00 c0 c0 00 c0 c0 c6 ff ff ff ff", MESH_ENV_TRUNCATED },
    { "body bin16 of 64 KiB", "9b 01 00 00 00 00 c0 c0 00 c0 c0 c5 ff ff 00", MESH_ENV_TRUNCATED },
    { "body str", "9b 01 00 00 00 00 c0 c0 00 c0 c0 a1 61", MESH_ENV_BAD_TYPE },
    { "body int", "9b 01 00 00 00 00 c0 c0 00 c0 c0 00", MESH_ENV_BAD_TYPE },
    { "body ext8", "9b 01 00 00 00 00 c0 c0 00 c0 c0 c7 00 01", MESH_ENV_BAD_TYPE },
    { "body in bin32", "9b 01 00 00 00 00 c0 c0 00 c0 c0 c6 00 00 00 02 61 62", MESH_ENV_OK },
    { "body missing", "9b 01 00 00 00 00 c0 c0 00 c0 c0", MESH_ENV_TRUNCATED },
};

static void
test_garbage_table (void **state)
{
    (void) state;
    size_t entries = sizeof s_garbage / sizeof s_garbage [0];
    assert_true (entries >= 30);
    for (size_t i = 0; i < entries; i++) {
        uint8_t frame [128];
        size_t size = s_unhex (s_garbage [i].hex, frame, sizeof frame);
        mesh_envelope_t env;
        int rc = s_decode_exact (&env, frame, size);
        if (rc != s_garbage [i].expect)
            print_error ("'%s': got %s, want %s\n", s_garbage [i].name,
                         mesh_envelope_strerror (rc),
                         mesh_envelope_strerror (s_garbage [i].expect));
        assert_int_equal (rc, s_garbage [i].expect);
    }
}

//  A full envelope cut at every byte offset: always TRUNCATED
static void
test_every_truncation (void **state)
{
    (void) state;
    static uint8_t body [300];
    mesh_envelope_t env = {
        .kind = 200, .flags = 70000, .seq = UINT64_MAX, .id = 1 << 20,
        .deadline = 1700000000000ull,
        .subject = s_span ("orders.eu.created"), .reply = s_span (""),
        .ctype = s_span ("application/octet-stream-with-a-long-name"),
        .header_count = 2, .body = s_bytes (body, sizeof body),
    };
    env.header_key [0] = s_span ("a");
    env.header_value [0] = s_span ("");
    env.header_key [1] = s_span ("trace-id");
    env.header_value [1] = s_span ("4bf92f3577b34da6a3ce929d0e0e4736");
    uint8_t frame [512];
    size_t size = mesh_envelope_encode (&env, frame, sizeof frame);
    assert_true (size > 300);
    mesh_envelope_t got;
    for (size_t cut = 0; cut < size; cut++)
        assert_int_equal (s_decode_exact (&got, frame, cut), MESH_ENV_TRUNCATED);
    assert_int_equal (s_decode_exact (&got, frame, size), MESH_ENV_OK);
}

//  Random and mutated frames never crash, never report an unknown reason,
//  and what decodes has spans inside the frame and round-trips.
static uint64_t
s_rand (uint64_t *x)
{
    //  xorshift64*: fixed seed, same run on every machine
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1Dull;
}

static void
test_random_bytes (void **state)
{
    (void) state;
    uint64_t seed = 0x6d657368627573ull;        //  "meshbus"
    static uint8_t body [100];
    mesh_envelope_t base = {
        .kind = 6, .seq = 300, .id = 70000,
        .subject = s_span ("orders.eu.created"), .reply = s_span ("_INBOX.1"),
        .ctype = s_span ("text/plain"), .header_count = 2,
        .body = s_bytes (body, sizeof body),
    };
    base.header_key [0] = s_span ("k");
    base.header_value [0] = s_span ("v");
    base.header_key [1] = s_span ("");
    base.header_value [1] = s_span ("x");
    uint8_t valid [256];
    size_t valid_size = mesh_envelope_encode (&base, valid, sizeof valid);
    assert_true (valid_size > 0);

    size_t counts [6] = { 0 };
    const size_t rounds = 200000;
    for (size_t round = 0; round < rounds; round++) {
        uint8_t frame [256];
        size_t size;
        if (round % 2) {
            //  Pure noise, often starting like an envelope
            size = s_rand (&seed) % 64;
            for (size_t i = 0; i < size; i++)
                frame [i] = (uint8_t) s_rand (&seed);
            if (size && round % 4 == 1)
                frame [0] = 0x9b;
            if (size > 1 && round % 8 == 1)
                frame [1] = 0x01;
        }
        else {
            //  A valid frame with a few bytes changed, then maybe cut
            size = valid_size;
            memcpy (frame, valid, size);
            size_t flips = 1 + s_rand (&seed) % 4;
            for (size_t f = 0; f < flips; f++)
                frame [s_rand (&seed) % size] = (uint8_t) s_rand (&seed);
            if (s_rand (&seed) % 4 == 0)
                size = s_rand (&seed) % (size + 1);
        }
        uint8_t *copy = malloc (size? size: 1);
        assert_non_null (copy);
        memcpy (copy, frame, size);
        mesh_envelope_t env;
        int rc = mesh_envelope_decode (&env, copy, size);
        assert_true (rc <= 0 && rc >= MESH_ENV_BAD_SHAPE);
        counts [-rc]++;
        if (rc == MESH_ENV_OK) {
            s_assert_inside (&env, copy, size);
            uint8_t again [256];
            size_t again_size = mesh_envelope_encode (&env, again, sizeof again);
            assert_true (again_size > 0 && again_size <= size);
            mesh_envelope_t twice;
            assert_int_equal (mesh_envelope_decode (&twice, again, again_size), MESH_ENV_OK);
            s_assert_same (&env, &twice);
        }
        free (copy);
    }
    //  The mutations must reach past the first bytes: every outcome occurs
    for (size_t i = 0; i < 6; i++)
        assert_true (counts [i] > 0);
    print_message ("random: %zu ok, %zu truncated, %zu bad type, %zu bad version, "
                   "%zu too long, %zu bad shape\n", counts [0], counts [1],
                   counts [2], counts [3], counts [4], counts [5]);
}

static void
test_strerror (void **state)
{
    (void) state;
    const int codes [] = {
        MESH_ENV_OK, MESH_ENV_TRUNCATED, MESH_ENV_BAD_TYPE,
        MESH_ENV_BAD_VERSION, MESH_ENV_TOO_LONG, MESH_ENV_BAD_SHAPE
    };
    for (size_t i = 0; i < 6; i++) {
        const char *name = mesh_envelope_strerror (codes [i]);
        assert_true (name && *name);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal (name, mesh_envelope_strerror (codes [j]));
    }
    assert_string_equal (mesh_envelope_strerror (-99), "unknown envelope error");
}


//  --------------------------------------------------------------------------
//  Cross-check with python msgpack (tests/test_envelope_python.py). The
//  cases here and there are the same five envelopes.

#define PY_CASES    5

static void
s_case (size_t n, mesh_envelope_t *env)
{
    static char x100 [100], s255 [255], r32 [32], c127 [127], v150 [150];
    static uint8_t b256 [256], b65535 [65535];
    static char keys [32][4], e_acute [62];
    memset (x100, 'x', sizeof x100);
    memset (s255, 's', sizeof s255);
    memset (r32, 'r', sizeof r32);
    memset (c127, 'c', sizeof c127);
    memset (v150, 'v', sizeof v150);
    for (size_t i = 0; i < sizeof b256; i++)
        b256 [i] = (uint8_t) i;
    for (size_t i = 0; i < sizeof b65535; i++)
        b65535 [i] = (uint8_t) (i * 7);
    for (size_t i = 0; i < sizeof e_acute; i += 2)
        memcpy (e_acute + i, "\xc3\xa9", 2);               //  U+00E9
    memset (env, 0, sizeof *env);
    env->version = MESH_WIRE_VERSION;
    switch (n) {
        case 0:
            env->kind = 6;
            env->seq = 1;
            env->id = 42;
            env->subject = s_span ("orders.eu.created");
            env->ctype = s_span ("application/json");
            env->body = s_bytes (x100, 100);
            break;
        case 1:
            break;
        case 2:
            env->kind = 255;
            env->flags = UINT32_MAX;
            env->seq = UINT64_MAX;
            env->id = (uint64_t) 1 << 32;
            env->subject = env->reply = env->ctype = s_span ("");
            env->deadline = UINT32_MAX;
            env->header_count = 2;
            env->header_key [0] = s_span ("k");
            env->header_value [0] = s_span ("v");
            env->header_key [1] = s_span ("trace-id");
            env->header_value [1] = s_span ("abc-123");
            env->body = s_bytes ("", 0);
            break;
        case 3:
            env->kind = 128;
            env->flags = 65536;
            env->seq = 127;
            env->id = 128;
            env->subject = s_bytes (s255, 255);
            env->reply = s_bytes (r32, 32);
            env->deadline = 65535;
            env->ctype = s_bytes (c127, 127);
            env->header_count = 16;
            for (uint32_t i = 0; i < 16; i++) {
                snprintf (keys [i], sizeof keys [i], "h%02u", i);
                env->header_key [i] = s_bytes (keys [i], 3);
                env->header_value [i] = s_bytes (v150, i * 10);
            }
            env->body = s_bytes (b256, 256);
            break;
        case 4:
            env->kind = 9;
            env->flags = 1;
            env->seq = 256;
            env->id = 65536;
            env->subject = s_span ("orders.\xc3\xbc.cr\xc3\xa9\xc3\xa9");
            env->reply = s_span ("_INBOX.x");
            env->deadline = 1700000000000ull;
            env->header_count = 32;
            for (uint32_t i = 0; i < 32; i++) {
                snprintf (keys [i], sizeof keys [i], "k%02u", i);
                env->header_key [i] = s_bytes (keys [i], 3);
                env->header_value [i] = s_bytes (e_acute, 2 * i);
            }
            env->body = s_bytes (b65535, 65535);
            break;
    }
}

//  The first interpreter that can import msgpack, or NULL
static const char *
s_find_python (void)
{
    const char *env = getenv ("MESH_PYTHON");
    const char *candidates [] = { env, "python3", "/usr/bin/python3" };
    for (size_t i = 0; i < 3; i++) {
        if (!candidates [i])
            continue;
        char command [256];
        snprintf (command, sizeof command,
                  "%s -c 'import msgpack' >/dev/null 2>&1", candidates [i]);
        if (system (command) == 0)
            return candidates [i];
    }
    return NULL;
}

//  The script sits beside this file: under $MESHBUS_SRC (set by run.sh),
//  or next to the path this file was compiled from
static bool
s_find_script (char *path, size_t cap)
{
    const char *src = getenv ("MESHBUS_SRC");
    if (src) {
        snprintf (path, cap, "%s/tests/test_envelope_python.py", src);
        if (access (path, R_OK) == 0)
            return true;
    }
    const char *slash = strrchr (__FILE__, '/');
    int dir_len = slash? (int) (slash - __FILE__ + 1): 0;
    snprintf (path, cap, "%.*stest_envelope_python.py", dir_len, __FILE__);
    return access (path, R_OK) == 0;
}

static void
s_write_file (const char *path, const void *data, size_t size)
{
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (data, 1, size, file), size);
    assert_int_equal (fclose (file), 0);
}

static size_t
s_read_file (const char *path, uint8_t *data, size_t cap)
{
    FILE *file = fopen (path, "rb");
    assert_non_null (file);
    size_t size = fread (data, 1, cap, file);
    assert_true (size < cap);
    fclose (file);
    return size;
}

static void
test_python_cross_check (void **state)
{
    (void) state;
    const char *python = s_find_python ();
    char script [4096];
    if (!python) {
        print_message ("skipped: no python3 that can import msgpack "
                       "(apt-get install python3-msgpack)\n");
        skip ();
    }
    if (!s_find_script (script, sizeof script)) {
        print_message ("skipped: %s not found (set MESHBUS_SRC)\n", script);
        skip ();
    }
    char folder [] = "/tmp/test_envelope.XXXXXX";
    assert_non_null (mkdtemp (folder));
    static uint8_t frame [BUF_SIZE];
    char path [PATH_MAX];
    for (size_t n = 0; n < PY_CASES; n++) {
        mesh_envelope_t env;
        s_case (n, &env);
        size_t size = mesh_envelope_encode (&env, frame, sizeof frame);
        assert_true (size > 0);
        snprintf (path, sizeof path, "%s/c-%zu.bin", folder, n);
        s_write_file (path, frame, size);
    }
    char command [8192];
    snprintf (command, sizeof command, "%s '%s' '%s'", python, script, folder);
    int status = system (command);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);

    //  What python packed, plain, with extras, and in the widest encodings
    const char *prefixes [] = { "py", "pyx", "pyw" };
    for (size_t n = 0; n < PY_CASES; n++) {
        mesh_envelope_t sent;
        s_case (n, &sent);
        for (size_t p = 0; p < 3; p++) {
            snprintf (path, sizeof path, "%s/%s-%zu.bin", folder, prefixes [p], n);
            size_t size = s_read_file (path, frame, sizeof frame);
            mesh_envelope_t got;
            int rc = mesh_envelope_decode (&got, frame, size);
            if (rc != MESH_ENV_OK)
                print_error ("%s: %s\n", path, mesh_envelope_strerror (rc));
            assert_int_equal (rc, MESH_ENV_OK);
            s_assert_same (&sent, &got);
            unlink (path);
        }
        snprintf (path, sizeof path, "%s/c-%zu.bin", folder, n);
        unlink (path);
    }
    assert_int_equal (rmdir (folder), 0);
}


int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage_example),
        cmocka_unit_test (test_round_trip_all_shapes),
        cmocka_unit_test (test_round_trip_every_int),
        cmocka_unit_test (test_encode_picks_smallest),
        cmocka_unit_test (test_encode_matches_msgpack_c),
        cmocka_unit_test (test_empty_is_not_nil),
        cmocka_unit_test (test_decode_accepts_any_int_encoding),
        cmocka_unit_test (test_decode_limits),
        cmocka_unit_test (test_encode_limits),
        cmocka_unit_test (test_encode_cap_too_small),
        cmocka_unit_test (test_garbage_table),
        cmocka_unit_test (test_every_truncation),
        cmocka_unit_test (test_random_bytes),
        cmocka_unit_test (test_strerror),
        cmocka_unit_test (test_python_cross_check),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
