// sources: src/wire/mesh_announce.c src/base/mesh_util.c
/*  fuzz_announce - the announcement codec on arbitrary bytes. Whatever a
    peer announces, the parser stays inside the bytes (ASan), keeps at most
    MESH_ANNOUNCE_MAX_RECORDS records of 1..MESH_ANNOUNCE_MAX_FIELDS fields
    with a tag, and what it kept encodes and parses back to the same
    records (escaping is lossless).
*/
#include "meshbus/pattern.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    mesh_announcement_t *in = mesh_announcement_parse (data, size);
    if (!in)
        return 0;
    size_t count = mesh_announcement_count (in);
    if (count > MESH_ANNOUNCE_MAX_RECORDS)
        abort ();
    mesh_announcement_t *out = mesh_announcement_new ();
    for (size_t i = 0; i < count; i++) {
        const mesh_record_t *r = mesh_announcement_record (in, i);
        if (r->fields < 1 || r->fields > MESH_ANNOUNCE_MAX_FIELDS || !*r->field [0])
            abort ();
        if (mesh_announcement_add (out, r->field, r->fields))
            abort ();
    }
    mesh_announcement_t *again = mesh_announcement_parse (mesh_announcement_data (out),
                                                          mesh_announcement_size (out));
    if (!again || mesh_announcement_count (again) != count || mesh_announcement_malformed (again))
        abort ();
    for (size_t i = 0; i < count; i++) {
        const mesh_record_t *a = mesh_announcement_record (in, i);
        const mesh_record_t *b = mesh_announcement_record (again, i);
        if (a->fields != b->fields)
            abort ();
        for (size_t f = 0; f < a->fields; f++)
            if (strcmp (a->field [f], b->field [f]))
                abort ();
    }
    mesh_announcement_destroy (&again);
    mesh_announcement_destroy (&out);
    mesh_announcement_destroy (&in);
    return 0;
}
