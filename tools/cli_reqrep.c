/*  meshbus serve, call - placeholder until the reqrep pattern lands  */
#include "meshbus_cli.h"

int
cli_serve (cli_opts_t *opts, int argc, char **argv)
{
    (void) opts; (void) argc; (void) argv;
    return cli_fail ("serve: not available yet (reqrep pattern not built)");
}

int
cli_call (cli_opts_t *opts, int argc, char **argv)
{
    (void) opts; (void) argc; (void) argv;
    return cli_fail ("call: not available yet (reqrep pattern not built)");
}

