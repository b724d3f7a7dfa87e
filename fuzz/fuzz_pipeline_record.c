/*  fuzz_pipeline_record - the pipeline's outbox / dead-letter record decoder
    and its ACK id lists, on arbitrary bytes. A record that decodes must
    encode back to the very same bytes (the format has one spelling).
    // sources: src/wire/mesh_subject.c patterns/pipeline/mesh_pipeline_record.c
*/
#include "meshbus.h"
#include "mesh_pipeline_record.h"
#include <string.h>
#include <assert.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static pl_record_t rec;
    if (pl_record_decode (data, size, &rec)) {
        pl_record_in_t in = {
            .type = rec.type, .id = rec.id, .deliveries = rec.deliveries,
            .time_ms = rec.time_ms, .queue = rec.queue, .ctype = rec.ctype,
            .origin = rec.origin, .reason = rec.reason, .headers = rec.headers,
            .header_count = rec.header_count, .body = rec.body, .size = rec.size
        };
        uint8_t *copy = (uint8_t *) malloc (size);
        assert (copy);
        assert (pl_record_encode (&in, copy, size) == size);
        assert (memcmp (copy, data, size) == 0);
        free (copy);
    }
    long n = pl_ids_count (data, size, 1024);
    for (long i = 0; i < n; i++)
        (void) pl_ids_at (data, (size_t) i);
    return 0;
}
