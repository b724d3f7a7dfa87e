/*  =========================================================================
    cli_args - flags of the meshbus tool, parsed with getopt_long

    getopt_long (glibc) rather than a loop of our own: it is what users of
    every GNU tool already know (--flag=value and --flag value, unique
    prefixes, flags before or after arguments, "--" to end them), and a
    hand-made loop is where `pub a.b --bogus` once published "--bogus".

    Each subcommand passes its own table; the common flags (node options)
    follow it, so a subcommand may give a common name its own meaning
    (`dlq --id` is a job id, `bench --curve` is CURVE on both sides), and
    `--help` is parsed like any flag, before anything is done. Once argv
    is parsed, the common flags not given are taken from the environment
    (MESHBUS_<FLAG>), and every value is checked: a usage error is always
    exit status 2, found before a node starts.
    ========================================================================= */

#include "cli.h"
#include <czmq.h>
#include <zmq.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

enum {
    OPT_NAME = 0x100, OPT_CLUSTER, OPT_IFACE, OPT_PORT, OPT_SEED, OPT_NO_BEACON,
    OPT_BIND, OPT_ID, OPT_SUSPECT, OPT_GONE, OPT_BEACON_MS, OPT_HWM, OPT_VERBOSE,
    OPT_CURVE, OPT_CURVE_EPHEMERAL, OPT_TRUST, OPT_SECRET, OPT_HELP
};

static const struct option s_common [] = {
    { "name",            required_argument, NULL, OPT_NAME },
    { "cluster",         required_argument, NULL, OPT_CLUSTER },
    { "iface",           required_argument, NULL, OPT_IFACE },
    { "port",            required_argument, NULL, OPT_PORT },
    { "seed",            required_argument, NULL, OPT_SEED },
    { "no-beacon",       no_argument,       NULL, OPT_NO_BEACON },
    { "bind",            required_argument, NULL, OPT_BIND },
    { "id",              required_argument, NULL, OPT_ID },
    { "suspect-ms",      required_argument, NULL, OPT_SUSPECT },
    { "gone-ms",         required_argument, NULL, OPT_GONE },
    { "beacon-ms",       required_argument, NULL, OPT_BEACON_MS },
    { "hwm",             required_argument, NULL, OPT_HWM },
    { "verbose",         no_argument,       NULL, OPT_VERBOSE },
    { "curve",           required_argument, NULL, OPT_CURVE },
    { "curve-ephemeral", no_argument,       NULL, OPT_CURVE_EPHEMERAL },
    { "trust",           required_argument, NULL, OPT_TRUST },
    { "secret",          required_argument, NULL, OPT_SECRET },
    { "help",            no_argument,       NULL, OPT_HELP },
    { NULL, 0, NULL, 0 }
};

int
cli_fail (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "meshbus: ");
    vfprintf (stderr, fmt, args);
    fprintf (stderr, "\n");
    va_end (args);
    return CLI_FAILED;
}

int
cli_usage (const cli_cmd_t *cmd, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "meshbus %s: ", cmd->name);
    vfprintf (stderr, fmt, args);
    fprintf (stderr, "\nusage: meshbus %s %s\n(meshbus %s --help lists every flag)\n",
             cmd->name, cmd->synopsis, cmd->name);
    va_end (args);
    return CLI_USAGE;
}

void
cli_print_help (FILE *out, const cli_cmd_t *cmd)
{
    fprintf (out, "usage: meshbus %s %s\n\n%s\n", cmd->name, cmd->synopsis, cmd->help);
    fprintf (out, "\nCommon flags (meshbus --help): --name --cluster --iface --port --seed "
                  "--no-beacon --bind --id\n--suspect-ms --gone-ms --beacon-ms --hwm --verbose "
                  "--curve --curve-ephemeral --trust --secret\n"
                  "Exit status: 0 done, 1 the job failed (one line says why), 2 usage error.\n");
}

void
cli_args_init (cli_args_t *args, const cli_cmd_t *cmd, cli_opts_t *opts,
               const struct option *own, const char *shorts, int argc, char **argv)
{
    memset (args, 0, sizeof *args);
    args->cmd = cmd;
    args->opts = opts;
    args->argc = argc;
    args->argv = argv;
    size_t n = 0, cap = sizeof args->longs / sizeof args->longs [0] - 1;
    for (const struct option *o = own; o && o->name; o++) {
        assert (n < cap);
        args->longs [n++] = *o;
    }
    for (const struct option *c = s_common; c->name; c++) {
        bool shadowed = false;
        for (size_t i = 0; i < n && !shadowed; i++)
            shadowed = streq_ (args->longs [i].name, c->name);
        if (!shadowed) {
            assert (n < cap);
            args->longs [n++] = *c;
        }
    }
    //  ":" first: a missing value is reported as ':' (our words, not getopt's)
    snprintf (args->shorts, sizeof args->shorts, ":h%s", shorts? shorts: "");
    optind = 0;                 //  0: glibc re-initialises (argv [0] is the subcommand)
    opterr = 0;
}

static int
s_stop (cli_args_t *args, int status)
{
    args->status = status;
    return CLI_STOP;
}

int
cli_seconds (const cli_cmd_t *cmd, const char *flag, const char *text,
             double min, double max, double *seconds)
{
    char *end;
    errno = 0;
    double v = strtod (text, &end);
    if (*end || end == text || isnan (v))
        return cli_usage (cmd, "%s: '%s' is not a number of seconds", flag, text), -1;
    if (!isfinite (v) || v < min || v > max)
        return cli_usage (cmd, "%s: %s is out of range: %g to %g seconds", flag, text,
                          min, max), -1;
    *seconds = v;
    return 0;
}

int
cli_long (const cli_cmd_t *cmd, const char *flag, const char *text, long min, long max,
          long *value)
{
    char *end;
    errno = 0;
    long v = strtol (text, &end, 10);
    if (*end || end == text || isspace ((unsigned char) *text))
        return cli_usage (cmd, "%s: '%s' is not a whole number", flag, text), -1;
    if (errno == ERANGE || v < min || v > max)
        return cli_usage (cmd, "%s: %s is out of range: %ld to %ld", flag, text, min, max), -1;
    *value = v;
    return 0;
}

int
cli_name (const cli_cmd_t *cmd, const char *what, const char *name, bool wildcards)
{
    size_t len = strlen (name);
    if (wildcards? mesh_pattern_valid (name): mesh_subject_valid (name))
        return 0;
    if (len == 0)
        return cli_usage (cmd, "the %s is empty", what), -1;
    if (len > MESH_MAX_SUBJECT)
        return cli_usage (cmd, "the %s is %zu bytes long: the limit is %d bytes", what, len,
                          MESH_MAX_SUBJECT), -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) name [i];
        if (c <= 0x20 || c == 0x7f)
            return cli_usage (cmd, "the %s '%s' has a space or control character "
                              "(byte 0x%02x at %zu)", what, name, c, i), -1;
    }
    if (!wildcards && (strchr (name, '*') || strchr (name, '#')))
        return cli_usage (cmd, "the %s '%s' has a wildcard: * and # belong in "
                          "subscription patterns only", what, name), -1;
    if (name [0] == '.' || name [len - 1] == '.' || strstr (name, ".."))
        return cli_usage (cmd, "the %s '%s' has an empty token: tokens are separated by "
                          "single dots", what, name), -1;
    return cli_usage (cmd, "the %s '%s' is not valid: * and # must be whole tokens "
                      "(a.*.c, a.#), not part of one", what, name), -1;
}

//  The environment's value of a common flag not given: MESHBUS_<FLAG>
static void
s_from_env (const char **field, const char *var)
{
    const char *value = getenv (var);
    if (!*field && value && *value)
        *field = value;
}

//  Every value of the common flags, checked before anything starts
static int
s_check_common (cli_args_t *args)
{
    cli_opts_t *o = args->opts;
    const cli_cmd_t *cmd = args->cmd;
    s_from_env (&o->name, "MESHBUS_NAME");
    s_from_env (&o->cluster, "MESHBUS_CLUSTER");
    s_from_env (&o->iface, "MESHBUS_IFACE");
    s_from_env (&o->port, "MESHBUS_PORT");
    s_from_env (&o->trust, "MESHBUS_TRUST");
    s_from_env (&o->secret, "MESHBUS_SECRET");
    if (!o->curve_ephemeral)
        s_from_env (&o->curve, "MESHBUS_CURVE");
    //  MESHBUS_SEEDS: endpoints separated by commas or spaces
    static char seeds [4096];
    const char *env_seeds = getenv ("MESHBUS_SEEDS");
    if (o->seed_count == 0 && env_seeds && *env_seeds) {
        snprintf (seeds, sizeof seeds, "%s", env_seeds);
        char *save = NULL;
        for (char *s = strtok_r (seeds, ", ", &save); s; s = strtok_r (NULL, ", ", &save)) {
            if (o->seed_count == CLI_MAX_SEEDS)
                return cli_usage (cmd, "MESHBUS_SEEDS: at most %d seeds", CLI_MAX_SEEDS);
            o->seeds [o->seed_count++] = s;
        }
    }
    long v;
    if ((o->port && cli_long (cmd, "--port", o->port, 1, 65535, &v))
    ||  (o->suspect_ms && cli_long (cmd, "--suspect-ms", o->suspect_ms, 1, 3600000, &v))
    ||  (o->gone_ms && cli_long (cmd, "--gone-ms", o->gone_ms, 1, 3600000, &v))
    ||  (o->beacon_ms && cli_long (cmd, "--beacon-ms", o->beacon_ms, 1, 3600000, &v))
    ||  (o->hwm && cli_long (cmd, "--hwm", o->hwm, 1, 1000000000, &v)))
        return CLI_USAGE;
    if (o->id) {
        size_t len = strlen (o->id);
        for (size_t i = 0; i < len; i++)
            if (!isxdigit ((unsigned char) o->id [i]))
                len = 0;
        if (len != 32)
            return cli_usage (cmd, "--id: '%s' is not 32 hex characters", o->id);
    }
    if (o->bind) {
        const char *colon = strrchr (o->bind, ':');
        if (colon && cli_long (cmd, "--bind port", colon + 1, 0, 65535, &v))
            return CLI_USAGE;
    }
    if (o->curve && !*o->curve)
        return cli_usage (cmd, "--curve needs a key file (meshbus keygen NAME makes one); "
                          "a throw-away key pair is --curve-ephemeral");
    return 0;
}

int
cli_getopt (cli_args_t *args)
{
    cli_opts_t *o = args->opts;
    int index = -1;
    int c = getopt_long (args->argc, args->argv, args->shorts, args->longs, &index);
    switch (c) {
        case -1: {
            args->pos = args->argv + optind;
            args->npos = args->argc - optind;
            int status = s_check_common (args);
            return status? s_stop (args, status): -1;
        }
        case 'h':
        case OPT_HELP:
            cli_print_help (stdout, args->cmd);
            return s_stop (args, 0);
        case ':':
            if (streq_ (args->argv [optind - 1], "--curve"))
                return s_stop (args, cli_usage (args->cmd, "--curve needs a key file "
                                                "(meshbus keygen NAME makes one); a throw-away "
                                                "key pair is --curve-ephemeral"));
            return s_stop (args, cli_usage (args->cmd, "%s needs a value",
                                            args->argv [optind - 1]));
        case '?':
            if (optopt)
                return s_stop (args, cli_usage (args->cmd, "unknown flag '-%c'", optopt));
            return s_stop (args, cli_usage (args->cmd, "unknown flag '%s'",
                                            args->argv [optind - 1]));
        case OPT_NAME:      o->name = optarg; break;
        case OPT_CLUSTER:   o->cluster = optarg; break;
        case OPT_IFACE:     o->iface = optarg; break;
        case OPT_PORT:      o->port = optarg; break;
        case OPT_BIND:      o->bind = optarg; break;
        case OPT_ID:        o->id = optarg; break;
        case OPT_SUSPECT:   o->suspect_ms = optarg; break;
        case OPT_GONE:      o->gone_ms = optarg; break;
        case OPT_BEACON_MS: o->beacon_ms = optarg; break;
        case OPT_HWM:       o->hwm = optarg; break;
        case OPT_TRUST:     o->trust = optarg; break;
        case OPT_SECRET:    o->secret = optarg; break;
        case OPT_NO_BEACON: o->no_beacon = true; break;
        case OPT_VERBOSE:   o->verbose = true; break;
        case OPT_CURVE:
            o->curve = optarg;
            o->curve_ephemeral = false;
            break;
        case OPT_CURVE_EPHEMERAL:
            o->curve_ephemeral = true;
            o->curve = NULL;
            break;
        case OPT_SEED:
            if (o->seed_count == CLI_MAX_SEEDS)
                return s_stop (args, cli_usage (args->cmd, "at most %d seeds", CLI_MAX_SEEDS));
            o->seeds [o->seed_count++] = optarg;
            break;
        default:
            return c;           //  the subcommand's own
    }
    return cli_getopt (args);
}

int
cli_positionals (cli_args_t *args, int min, int max)
{
    if (args->npos < min)
        return cli_usage (args->cmd, "missing argument");
    if (args->npos > max)
        return cli_usage (args->cmd, "unexpected argument '%s'", args->pos [max]);
    return 0;
}

mesh_node_t *
cli_node_new (const cli_opts_t *opts, const char *default_name)
{
    mesh_node_t *node = mesh_node_new (opts->name? opts->name: default_name);
    if (!node) {
        cli_fail ("%s", mesh_last_error ());
        return NULL;
    }
    int rc = 0;
    if (opts->curve)
        rc |= mesh_node_set_curve (node, opts->curve);
    else
    if (opts->curve_ephemeral) {
        //  One key pair per process, shared by its nodes (bench, demo):
        //  they meet each other and nobody else
        static uint8_t pub [32], sec [32];
        static bool made = false;
        char pub_text [41], sec_text [41];
        if (!made && zmq_curve_keypair (pub_text, sec_text) == 0
        &&  zmq_z85_decode (pub, pub_text) && zmq_z85_decode (sec, sec_text))
            made = true;
        rc |= made? mesh_node_set_curve_keys (node, pub, sec): -1;
    }
    if (!rc && opts->trust)
        rc |= mesh_node_set_trust (node, opts->trust);
    if (!rc && opts->secret)
        rc |= mesh_node_set_secret (node, opts->secret);
    if (!rc && opts->cluster)
        rc |= mesh_node_set_cluster (node, opts->cluster);
    if (!rc && opts->iface)
        rc |= mesh_node_set_iface (node, opts->iface);
    //  values were checked by cli_getopt: atoi cannot meet garbage here
    if (!rc && opts->port)
        rc |= mesh_node_set_beacon_port (node, atoi (opts->port));
    if (!rc && opts->id)
        rc |= mesh_node_set_id (node, opts->id);
    if (!rc && opts->beacon_ms)
        rc |= mesh_node_set_beacon_interval (node, atoi (opts->beacon_ms));
    if (!rc && opts->hwm)
        rc |= mesh_node_set_hwm (node, atoi (opts->hwm));
    if (!rc && opts->no_beacon)
        rc |= mesh_node_set_beacon_interval (node, 0);
    if (!rc && (opts->suspect_ms || opts->gone_ms))
        rc |= mesh_node_set_timeouts (node,
                                      opts->suspect_ms? atoi (opts->suspect_ms): MESH_DEFAULT_SUSPECT_MS,
                                      opts->gone_ms? atoi (opts->gone_ms): MESH_DEFAULT_GONE_MS);
    if (!rc && opts->bind) {
        char host [256];
        int port = 0;
        snprintf (host, sizeof host, "%s", opts->bind);
        char *colon = strrchr (host, ':');
        if (colon) {
            *colon = 0;
            port = atoi (colon + 1);
        }
        rc |= mesh_node_set_bind (node, host, port);
    }
    for (int i = 0; !rc && i < opts->seed_count; i++)
        rc |= mesh_node_add_seed (node, opts->seeds [i]);
    mesh_node_set_verbose (node, opts->verbose);
    if (rc || mesh_node_start (node)) {
        cli_fail ("%s", mesh_last_error ());
        mesh_node_destroy (&node);
    }
    return node;
}
