// sources: src/wire/mesh_subject.c patterns/reqrep/mesh_reqrep_wire.c
/*  =========================================================================
    fuzz_reqrep_services - libFuzzer target for request-reply's service
    announcement parser (patterns/reqrep/mesh_reqrep_wire.c)

    Whatever the bytes, the parser must not read outside them (ASan) or hit
    undefined behaviour (UBSan); every name it hands over must be a valid
    subject no longer than MESH_MAX_SUBJECT; it never hands over more than
    max names. A broken invariant abort()s so libFuzzer saves the input.
    ========================================================================= */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meshbus.h"
#include "mesh_reqrep_wire.h"

#define FUZZ_MAX 8

typedef struct {
    size_t names;
} fuzz_ctx_t;

static void
s_on_name (const char *name, void *arg)
{
    fuzz_ctx_t *ctx = (fuzz_ctx_t *) arg;
    size_t len = strlen (name);
    if (len == 0 || len > MESH_MAX_SUBJECT || !mesh_subject_valid (name) || strchr (name, '\n'))
        abort ();
    ctx->names++;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    fuzz_ctx_t ctx = { 0 };
    size_t refused = 0;
    mesh_rr_parse_services (data, size, FUZZ_MAX, s_on_name, &ctx, &refused);
    if (ctx.names > FUZZ_MAX || (refused && ctx.names != FUZZ_MAX))
        abort ();
    //  a copy that ends exactly at the last byte, so ASan sees any overread
    uint8_t *copy = (uint8_t *) malloc (size? size: 1);
    if (size)
        memcpy (copy, data, size);
    ctx.names = 0;
    mesh_rr_parse_services (copy, size, SIZE_MAX, s_on_name, &ctx, &refused);
    if (refused)
        abort ();
    free (copy);
    return 0;
}
