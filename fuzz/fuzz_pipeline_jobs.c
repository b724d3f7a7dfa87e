/*  fuzz_pipeline_jobs - the pipeline's JOBS body decoder on arbitrary
    bytes: the first byte is the job count the envelope would claim, the
    rest the body. A body that decodes must encode back to the very same
    bytes (the format has one spelling), and every entry must lie inside
    the input.
    // sources: patterns/pipeline/mesh_pipeline_jobs.c
*/
#include "mesh_pipeline_jobs.h"
#include <string.h>
#include <assert.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    pl_jobs_entry_t entries [PL_JOBS_JOBS];
    const uint8_t *body = data + 1;
    size_t body_size = size - 1;
    long n = pl_jobs_decode (body, body_size, data [0], entries, PL_JOBS_JOBS);
    assert (n == -1 || (n >= 1 && n <= PL_JOBS_JOBS && n == data [0]));
    if (n < 0)
        return 0;
    uint8_t *copy = (uint8_t *) malloc (body_size? body_size: 1);
    assert (copy);
    size_t at = 0;
    for (long i = 0; i < n; i++) {
        const uint8_t *from = (const uint8_t *) entries [i].body;
        assert (from >= body && from + entries [i].size <= body + body_size);
        at = pl_jobs_put (copy, body_size, at, &entries [i]);
        assert (at);
    }
    assert (at == body_size);
    assert (memcmp (copy, body, body_size) == 0);
    free (copy);
    return 0;
}
