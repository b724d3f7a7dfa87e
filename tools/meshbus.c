/*  =========================================================================
    meshbus - the command line tool

    How users, scripts and tests drive a node. Each subcommand starts one
    node (or, for demo, several) with the common flags, does its job and
    exits 0, or prints one line saying why not and exits non-zero. The
    subcommands and flags are a contract (see DESIGN.md and README.rst).
    ========================================================================= */

#include "meshbus.h"
#include "meshbus_cli.h"
#include <zmq.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t s_interrupted = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_interrupted = 1;
}

bool
cli_interrupted (void)
{
    return s_interrupted != 0;
}

static void
s_log_stderr (mesh_log_level_t level, const char *node, const char *line, void *arg)
{
    (void) arg;
    static const char *names [] = { "error", "warning", "info", "debug" };
    const char *name = (unsigned) level < 4? names [level]: "?";
    //  one fprintf a line: stdio locks the stream, so lines of the
    //  library's threads never interleave
    if (node && *node)
        fprintf (stderr, "meshbus[%s] %s: %s\n", node, name, line);
    else
        fprintf (stderr, "meshbus %s: %s\n", name, line);
}

static void
s_usage (FILE *out)
{
    fprintf (out,
"usage: meshbus COMMAND [ARGS] [OPTIONS]\n"
"\n"
"commands:\n"
"  demo                           nodes on loopback use every pattern, then exit 0\n"
"  peers [--expect K] [--timeout S]\n"
"                                 print a line per peer event (ENTER, EXIT, SUSPECT, BACK);\n"
"                                 with --expect exit 0 once K peers are alive, 1 at the timeout\n"
"  stats [--json] [--timeout S]   counters of this node and of every peer it finds\n"
"  pub SUBJECT [BODY|-] [--count N] [--wait-subscribers K] [--timeout S] [--interval-ms MS]\n"
"      [--data-dir DIR] [--ctype TYPE]\n"
"                                 publish BODY (each stdin line with -) N times\n"
"  sub PATTERN [--count N] [--timeout S] [--durable NAME] [--last-value] [--block]\n"
"      [--no-replay] [--since S]\n"
"                                 one line per message: SUBJECT<TAB>BODY; * = one token, # = any\n"
"  serve SERVICE (--echo | --exec CMD) [--count N] [--timeout S]\n"
"                                 answer calls: --echo returns the body, --exec runs CMD with\n"
"                                 the body on stdin and replies with its stdout (non-zero exit:\n"
"                                 an error reply); exit after N requests or S seconds\n"
"  call SERVICE BODY|- [--timeout S] [--wait] [--retries N] [--all] [--ctype TYPE]\n"
"                                 print the reply; non-zero exit and a reason on failure\n"
"                                 (no responders, timeout, remote error); --wait waits for a\n"
"                                 provider, --all calls every provider: NAME<TAB>REPLY\n"
"  push QUEUE [BODY|-] [--count N] [--durable DIR] [--timeout S] [--sync] [--no-wait]\n"
"      [--ack-timeout S] [--max-deliveries N] [--backoff-ms MS] [--ctype TYPE] [--hold N]\n"
"                                 push jobs; exits once every job is acked, or at the timeout\n"
"                                 saying how many remain; --durable commits them to DIR first\n"
"  work QUEUE [--exec CMD] [--prefetch N] [--count N] [--timeout S] [--delay-ms MS]\n"
"                                 take jobs: one line per job done; CMD gets the body on stdin,\n"
"                                 exit 0 acks, anything else nacks\n"
"  dlq list|replay QUEUE --durable DIR [--id JOB] [--timeout S]\n"
"                                 dead letters of a durable producer: list, or push them again\n"
"  keygen NAME                    write a CURVE key pair: NAME.key (mode 0600) and NAME.pub\n"
"  bench link|pubsub|reqrep|pipeline|handshake [--size B] [--count N] [--json]\n"
"      [--subscribers S] [--rounds R]   (pubsub: fan-out and rounds; --curve: over CURVE)\n"
"      [--keys K]                       (handshake: trusted keys, default 1000)\n"
"                                 meshbus and raw libzmq side by side in one run, and their ratio\n"
"\n"
"common options:\n"
"  --name NAME          node name\n"
"  --cluster NAME       only meet nodes of this cluster (default meshbus)\n"
"  --iface IFACES       beacon interfaces, e.g. eth0,eth1 (default: loopback)\n"
"  --port P             beacon UDP port (default %d)\n"
"  --seed tcp://H:P     a node to join through (repeatable)\n"
"  --no-beacon          discover through seeds and gossip only\n"
"  --bind HOST[:PORT]   address (and port) of the inbox\n"
"  --id HEX             fixed node id (32 hex chars), e.g. to restart as the same node\n"
"  --suspect-ms MS --gone-ms MS  liveness timeouts (default %d, %d)\n"
"  --beacon-ms MS       beacon interval (default %d)\n"
"  --hwm N              messages queued per link before sends drop or wait\n"
"  --verbose            log peer events and warnings to stderr\n"
"\n"
"security (docs/security.md; each also read from MESHBUS_CURVE, MESHBUS_TRUST, MESHBUS_SECRET):\n"
"  --curve NAME.key     CURVE on every link, with this key pair (meshbus keygen NAME);\n"
"                       bare --curve: a key pair made for this process (bench)\n"
"  --trust DIR          accept only the public keys of DIR/*.pub (watched: removing one cuts it)\n"
"  --secret FILE        cluster secret: beacons and HELLO carry a MAC made with FILE's bytes\n"
"  --seed tcp://H:P#KEY with CURVE, the seed's public key (Z85); without #KEY our own is tried\n",
             MESH_DEFAULT_BEACON_PORT, MESH_DEFAULT_SUSPECT_MS, MESH_DEFAULT_GONE_MS,
             MESH_DEFAULT_BEACON_IVL);
}

int
cli_fail (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "meshbus: ");
    vfprintf (stderr, fmt, args);
    fprintf (stderr, "\n");
    va_end (args);
    return 1;
}

//  Parse the common flags out of argv; what is left stays in argv (argc
//  updated). Returns 0 or -1 after printing why.
static int
s_parse_common (cli_opts_t *opts, int *argc, char **argv)
{
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv [i];
        const char *v = i + 1 < *argc? argv [i + 1]: NULL;
        #define TAKE(field) do { if (!v) return cli_fail ("%s needs a value", a), -1; \
                                 opts->field = v; i++; } while (0)
        if (streq_ (a, "--name"))           TAKE (name);
        else if (streq_ (a, "--cluster"))   TAKE (cluster);
        else if (streq_ (a, "--iface"))     TAKE (iface);
        else if (streq_ (a, "--port"))      TAKE (port);
        else if (streq_ (a, "--bind"))      TAKE (bind);
        else if (streq_ (a, "--id"))        TAKE (id);
        else if (streq_ (a, "--suspect-ms")) TAKE (suspect_ms);
        else if (streq_ (a, "--gone-ms"))   TAKE (gone_ms);
        else if (streq_ (a, "--beacon-ms")) TAKE (beacon_ms);
        else if (streq_ (a, "--hwm"))       TAKE (hwm);
        else if (streq_ (a, "--curve") && (!v || strncmp (v, "--", 2) == 0))
            opts->curve = "";               //  bare: a key pair made for this process
        else if (streq_ (a, "--curve"))     TAKE (curve);
        else if (streq_ (a, "--trust"))     TAKE (trust);
        else if (streq_ (a, "--secret"))    TAKE (secret);
        else if (streq_ (a, "--seed")) {
            if (!v)
                return cli_fail ("--seed needs a value"), -1;
            if (opts->seed_count == CLI_MAX_SEEDS)
                return cli_fail ("at most %d seeds", CLI_MAX_SEEDS), -1;
            opts->seeds [opts->seed_count++] = v;
            i++;
        }
        else if (streq_ (a, "--no-beacon"))
            opts->no_beacon = true;
        else if (streq_ (a, "--verbose"))
            opts->verbose = true;
        else
            argv [out++] = argv [i];
        #undef TAKE
    }
    *argc = out;
    argv [out] = NULL;
    return 0;
}

static int
s_int (const char *text, const char *what, int *value)
{
    char *end;
    long v = strtol (text, &end, 10);
    if (*end || end == text || v < 0 || v > 1000000000)
        return cli_fail ("%s: '%s' is not a number", what, text), -1;
    *value = (int) v;
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
    int value;
    //  Security flags, or the same from the environment, so a whole set of
    //  commands (or a test suite) can run secured without repeating them
    const char *curve = opts->curve? opts->curve: getenv ("MESHBUS_CURVE");
    const char *trust = opts->trust? opts->trust: getenv ("MESHBUS_TRUST");
    const char *secret = opts->secret? opts->secret: getenv ("MESHBUS_SECRET");
    if (curve && *curve)
        rc |= mesh_node_set_curve (node, curve);
    else
    if (curve) {
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
    if (!rc && trust && *trust)
        rc |= mesh_node_set_trust (node, trust);
    if (!rc && secret && *secret)
        rc |= mesh_node_set_secret (node, secret);
    if (opts->cluster)
        rc |= mesh_node_set_cluster (node, opts->cluster);
    if (!rc && opts->iface)
        rc |= mesh_node_set_iface (node, opts->iface);
    if (!rc && opts->port) {
        if (s_int (opts->port, "--port", &value))
            goto fail;
        rc |= mesh_node_set_beacon_port (node, value);
    }
    if (!rc && opts->id)
        rc |= mesh_node_set_id (node, opts->id);
    if (!rc && opts->beacon_ms) {
        if (s_int (opts->beacon_ms, "--beacon-ms", &value))
            goto fail;
        rc |= mesh_node_set_beacon_interval (node, value);
    }
    if (!rc && opts->hwm) {
        if (s_int (opts->hwm, "--hwm", &value))
            goto fail;
        rc |= mesh_node_set_hwm (node, value);
    }
    if (!rc && opts->no_beacon)
        rc |= mesh_node_set_beacon_interval (node, 0);
    if (!rc && (opts->suspect_ms || opts->gone_ms)) {
        int suspect = MESH_DEFAULT_SUSPECT_MS, gone = MESH_DEFAULT_GONE_MS;
        if ((opts->suspect_ms && s_int (opts->suspect_ms, "--suspect-ms", &suspect))
        ||  (opts->gone_ms && s_int (opts->gone_ms, "--gone-ms", &gone)))
            goto fail;
        rc |= mesh_node_set_timeouts (node, suspect, gone);
    }
    if (!rc && opts->bind) {
        char host [128];
        int port = 0;
        snprintf (host, sizeof host, "%s", opts->bind);
        char *colon = strrchr (host, ':');
        if (colon) {
            *colon = 0;
            if (s_int (colon + 1, "--bind port", &port))
                goto fail;
        }
        rc |= mesh_node_set_bind (node, host, port);
    }
    for (int i = 0; !rc && i < opts->seed_count; i++)
        rc |= mesh_node_add_seed (node, opts->seeds [i]);
    mesh_node_set_verbose (node, opts->verbose);
    if (rc || mesh_node_start (node)) {
        cli_fail ("%s", mesh_last_error ());
        goto fail;
    }
    return node;
fail:
    mesh_node_destroy (&node);
    return NULL;
}

int
cli_seconds (const char *text, double *seconds)
{
    char *end;
    double v = strtod (text, &end);
    if (*end || end == text || v < 0 || v > 1e6)
        return cli_fail ("'%s' is not a number of seconds", text), -1;
    *seconds = v;
    return 0;
}

//  Return the value of --flag VALUE in argv (and remove both), or NULL.
const char *
cli_take (int *argc, char **argv, const char *flag)
{
    for (int i = 0; i < *argc; i++)
        if (streq_ (argv [i], flag) && i + 1 < *argc) {
            const char *value = argv [i + 1];
            memmove (&argv [i], &argv [i + 2], sizeof (char *) * (*argc - i - 1));
            *argc -= 2;
            return value;
        }
    return NULL;
}

bool
cli_take_flag (int *argc, char **argv, const char *flag)
{
    for (int i = 0; i < *argc; i++)
        if (streq_ (argv [i], flag)) {
            memmove (&argv [i], &argv [i + 1], sizeof (char *) * (*argc - i));
            *argc -= 1;
            return true;
        }
    return false;
}

int
cli_no_extra (int argc, char **argv, int expected)
{
    if (argc > expected)
        return cli_fail ("unexpected argument '%s' (see meshbus --help)", argv [expected]);
    return 0;
}

typedef int (cli_cmd_fn) (cli_opts_t *opts, int argc, char **argv);

static struct {
    const char *name;
    cli_cmd_fn *fn;
} s_commands [] = {
    { "peers", cli_peers },
    { "stats", cli_stats },
    { "demo",  cli_demo },
    { "pub",   cli_pub },
    { "sub",   cli_sub },
    { "bench", cli_bench },
    { "serve", cli_serve },
    { "call",  cli_call },
    { "push",  cli_push },
    { "work",  cli_work },
    { "dlq",   cli_dlq },
    { "keygen", cli_keygen },
};

int
main (int argc, char **argv)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    //  czmq logs (e.g. a parse error in a trusted key file) to stdout by
    //  default, where they would mix with the lines of `meshbus sub`
    zsys_set_logstream (stderr);
    //  the library says nothing by itself: its warnings (security
    //  refusals, bad key files) and, with --verbose, peer events go here
    mesh_set_log (s_log_stderr, MESH_LOG_INFO, NULL);
    struct sigaction sa = { .sa_handler = s_on_signal };
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);
    if (argc < 2 || streq_ (argv [1], "--help") || streq_ (argv [1], "-h")) {
        s_usage (argc < 2? stderr: stdout);
        return argc < 2? 2: 0;
    }
    const char *command = argv [1];
    int rest_argc = argc - 2;
    char **rest = argv + 2;
    cli_opts_t opts;
    memset (&opts, 0, sizeof opts);
    if (s_parse_common (&opts, &rest_argc, rest))
        return 2;
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands [0]; i++)
        if (streq_ (command, s_commands [i].name))
            return s_commands [i].fn (&opts, rest_argc, rest);
    cli_fail ("unknown command '%s' (see meshbus --help)", command);
    return 2;
}
