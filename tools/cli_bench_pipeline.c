/*  meshbus bench pipeline - placeholder until the pipeline pattern lands  */
#include "meshbus_cli.h"

int
cli_bench_pipeline (cli_opts_t *opts, size_t size, size_t count, bool json)
{
    (void) opts; (void) size; (void) count; (void) json;
    cli_fail ("bench pipeline: not available yet (pattern not built)");
    return 2;
}
