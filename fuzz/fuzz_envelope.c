// sources: src/wire/mesh_envelope.c
/*  =========================================================================
    fuzz_envelope - libFuzzer target for the header frame decoder

    Whatever the bytes, decode must return one of its reasons without
    reading outside the frame (ASan) or hitting undefined behaviour (UBSan).
    When a frame decodes, it must survive a round trip: encode writes exactly
    mesh_envelope_size bytes, those decode to the same envelope, and encoding
    that again gives the same bytes (the encoding is canonical). A broken
    invariant abort()s so libFuzzer saves the input.

    clang -fsanitize=fuzzer,address,undefined -Isrc -Iinclude \
          fuzz/fuzz_envelope.c src/wire/mesh_envelope.c $(pkg-config --cflags --libs msgpack)
    ========================================================================= */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_envelope.h"

static void
s_check (bool condition)
{
    if (!condition)
        abort ();
}

static bool
s_span_equal (mesh_span_t a, mesh_span_t b)
{
    if (!a.ptr || !b.ptr)
        return !a.ptr && !b.ptr && a.len == 0 && b.len == 0;
    return a.len == b.len && memcmp (a.ptr, b.ptr, a.len) == 0;
}

static bool
s_inside (mesh_span_t span, const uint8_t *data, size_t size)
{
    if (!span.ptr)
        return span.len == 0;
    return span.ptr >= data && span.len <= size
        && (size_t) (span.ptr - data) <= size - span.len;
}

static void
s_check_inside (const mesh_envelope_t *env, const uint8_t *data, size_t size)
{
    s_check (s_inside (env->subject, data, size));
    s_check (s_inside (env->reply, data, size));
    s_check (s_inside (env->ctype, data, size));
    s_check (s_inside (env->body, data, size));
    s_check (env->header_count <= MESH_MAX_HEADERS);
    for (uint32_t i = 0; i < env->header_count; i++) {
        //  Header keys and values are str, never nil
        s_check (env->header_key [i].ptr && env->header_value [i].ptr);
        s_check (s_inside (env->header_key [i], data, size));
        s_check (s_inside (env->header_value [i], data, size));
    }
}

static void
s_check_equal (const mesh_envelope_t *a, const mesh_envelope_t *b)
{
    s_check (a->version == b->version && a->kind == b->kind);
    s_check (a->flags == b->flags && a->seq == b->seq);
    s_check (a->id == b->id && a->deadline == b->deadline);
    s_check (s_span_equal (a->subject, b->subject));
    s_check (s_span_equal (a->reply, b->reply));
    s_check (s_span_equal (a->ctype, b->ctype));
    s_check (s_span_equal (a->body, b->body));
    s_check (a->header_count == b->header_count);
    for (uint32_t i = 0; i < a->header_count; i++) {
        s_check (s_span_equal (a->header_key [i], b->header_key [i]));
        s_check (s_span_equal (a->header_value [i], b->header_value [i]));
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static uint8_t first [MESH_MAX_HEADER_FRAME];
    static uint8_t second [MESH_MAX_HEADER_FRAME];
    mesh_envelope_t env, again;

    int rc = mesh_envelope_decode (&env, data, size);
    s_check (rc <= MESH_ENV_OK && rc >= MESH_ENV_BAD_SHAPE);
    if (rc != MESH_ENV_OK)
        return 0;
    s_check (env.version == MESH_WIRE_VERSION && env.kind <= 0xff);
    s_check_inside (&env, data, size);

    //  Anything we accept we can send: size, encode and decode agree
    size_t expect = mesh_envelope_size (&env);
    s_check (expect > 0 && expect <= size);
    size_t written = mesh_envelope_encode (&env, first, sizeof first);
    s_check (written == expect);
    s_check (mesh_envelope_encode (&env, second, written - 1) == 0);
    s_check (mesh_envelope_decode (&again, first, written) == MESH_ENV_OK);
    s_check_inside (&again, first, written);
    s_check_equal (&env, &again);

    //  And the encoding is canonical: once more gives the same bytes
    s_check (mesh_envelope_encode (&again, second, sizeof second) == written);
    s_check (memcmp (first, second, written) == 0);
    return 0;
}
