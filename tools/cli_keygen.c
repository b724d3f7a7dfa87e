/*  =========================================================================
    cli_keygen - `meshbus keygen NAME`: a new CURVE key pair

    Writes NAME.key (public and secret key, mode 0600) and NAME.pub (the
    public key, for other nodes' trust directories) with mesh_keygen, which
    never overwrites. Prints both paths and the public key, read back from
    NAME.pub with czmq's zconfig (the tool sees only the public header), so
    what is printed is what the file holds.
    ========================================================================= */

#include "meshbus.h"
#include "cli.h"
#include <czmq.h>
#include <stdio.h>

static int
s_keygen (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, NULL, NULL, argc, argv);
    int c = cli_getopt (&args);
    if (c == CLI_STOP)
        return args.status;
    if (c != -1)
        return cli_usage (cmd, "unexpected flag");
    if (cli_positionals (&args, 1, 1))
        return CLI_USAGE;
    const char *name = args.pos [0];
    if (mesh_keygen (name))
        return cli_fail ("%s", mesh_last_error ());
    char *pub_path = zsys_sprintf ("%s.pub", name);
    zconfig_t *pub = pub_path? zconfig_load (pub_path): NULL;
    const char *public_key = pub? zconfig_get (pub, "curve/public-key", NULL): NULL;
    int rc = 0;
    if (public_key) {
        printf ("secret key: %s.key (mode 0600: keep it on this machine)\n", name);
        printf ("public key: %s\n", pub_path);
        printf ("public-key = \"%s\"\n", public_key);
    }
    else
        rc = cli_fail ("%s: written, but cannot be read back", pub_path? pub_path: name);
    zconfig_destroy (&pub);
    zstr_free (&pub_path);
    return rc;
}

const cli_cmd_t cli_cmd_keygen = {
    "keygen", s_keygen, "NAME",
    "write a CURVE key pair: NAME.key (mode 0600) and NAME.pub",
"Writes NAME.key (public and secret key, mode 0600: keep it on this machine) and\n"
"NAME.pub (the public key, for other nodes' --trust directories). Never\n"
"overwrites: an existing NAME.key or NAME.pub is an error."
};
