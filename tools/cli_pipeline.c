/*  meshbus push, work, dlq - placeholder until the pipeline pattern lands  */
#include "meshbus_cli.h"

int
cli_push (cli_opts_t *opts, int argc, char **argv)
{
    (void) opts; (void) argc; (void) argv;
    return cli_fail ("push: not available yet (pipeline pattern not built)");
}

int
cli_work (cli_opts_t *opts, int argc, char **argv)
{
    (void) opts; (void) argc; (void) argv;
    return cli_fail ("work: not available yet (pipeline pattern not built)");
}

int
cli_dlq (cli_opts_t *opts, int argc, char **argv)
{
    (void) opts; (void) argc; (void) argv;
    return cli_fail ("dlq: not available yet (pipeline pattern not built)");
}

