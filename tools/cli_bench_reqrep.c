/*  meshbus bench reqrep - placeholder until the reqrep pattern lands  */
#include "meshbus_cli.h"

int
cli_bench_reqrep (cli_opts_t *opts, size_t size, size_t count, bool json)
{
    (void) opts; (void) size; (void) count; (void) json;
    cli_fail ("bench reqrep: not available yet (pattern not built)");
    return 2;
}
