/*  =========================================================================
    meshbus - the command line tool

    How users, scripts and tests drive a node. Each subcommand starts one
    node (or, for demo, several) with the common flags, does its job and
    exits 0, or prints one line saying why not and exits 1; a usage error
    is exit status 2. The subcommands and their flags are a contract
    (README.rst, `meshbus CMD --help`, the man page made by --man from the
    same text).
    ========================================================================= */

#include "cli.h"
#include <czmq.h>
#include <signal.h>
#include <stdlib.h>

static const cli_cmd_t *s_commands [] = {
    &cli_cmd_demo, &cli_cmd_peers, &cli_cmd_stats, &cli_cmd_pub, &cli_cmd_sub,
    &cli_cmd_serve, &cli_cmd_call, &cli_cmd_push, &cli_cmd_work, &cli_cmd_dlq,
    &cli_cmd_send, &cli_cmd_recv, &cli_cmd_keygen, &cli_cmd_bench, &cli_cmd_top,
    &cli_cmd_monitor,
};
#define COMMANDS (sizeof s_commands / sizeof s_commands [0])

static const char *s_common_help =
"  --name NAME          node name\n"
"  --cluster NAME       only meet nodes of this cluster (default meshbus)\n"
"  --iface IFACES       beacon interfaces, e.g. eth0,eth1 (default: loopback)\n"
"  --port P             beacon UDP port (default 5670)\n"
"  --seed tcp://H:P     a node to join through (repeatable); with CURVE tcp://H:P#KEY\n"
"  --no-beacon          discover through seeds and gossip only\n"
"  --bind HOST[:PORT]   address (and port) of the inbox\n"
"  --id HEX             fixed node id (32 hex chars), e.g. to restart as the same node\n"
"  --suspect-ms MS      inbound silence before a peer is SUSPECT (default 1000)\n"
"  --gone-ms MS         inbound silence before a peer has left (default 3000)\n"
"  --beacon-ms MS       beacon interval (default 1000)\n"
"  --hwm N              messages queued per link before sends drop or wait\n"
"  --verbose            log peer events and links to stderr\n"
"  --curve NAME.key     CURVE on every link, with this key pair (meshbus keygen NAME);\n"
"                       the file must be private (chmod 600)\n"
"  --curve-ephemeral    CURVE with a key pair made for this process only\n"
"  --trust DIR          accept only the public keys of DIR/*.pub (removing one cuts it)\n"
"  --secret FILE        cluster secret: beacons and HELLO carry a MAC made with it\n"
"\n"
"Each common flag is also read from the environment when not given:\n"
"MESHBUS_NAME, MESHBUS_CLUSTER, MESHBUS_IFACE, MESHBUS_PORT, MESHBUS_SEEDS (endpoints\n"
"separated by commas), MESHBUS_CURVE, MESHBUS_TRUST, MESHBUS_SECRET. The flag wins.\n"
"\n"
"Exit status: 0 the command did what it says; 1 the job failed (timeout, no\n"
"responders, provider left, remote error...), with one line on stderr saying which;\n"
"2 usage error (unknown flag, missing or bad value).\n";

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
    fprintf (out, "usage: meshbus COMMAND [ARGS] [FLAGS]\n"
                  "       meshbus COMMAND --help     that command's flags\n"
                  "       meshbus --version\n\ncommands:\n");
    for (size_t i = 0; i < COMMANDS; i++)
        fprintf (out, "  %-8s %s\n", s_commands [i]->name, s_commands [i]->summary);
    fprintf (out, "\ncommon flags (every command):\n%s", s_common_help);
}

//  troff text: a backslash is written \e, a leading dot or quote escaped
static void
s_man_text (const char *text)
{
    bool line_start = true;
    for (const char *c = text; *c; c++) {
        if (line_start && (*c == '.' || *c == '\''))
            fputs ("\\&", stdout);
        if (*c == '\\')
            fputs ("\\e", stdout);
        else
        if (*c == '-')
            fputs ("\\-", stdout);
        else
            putchar (*c);
        line_start = *c == '\n';
    }
}

//  The man page, from the same text as --help (so the two cannot differ)
static void
s_man (void)
{
    printf (".TH MESHBUS 1 \"\" \"meshbus %d.%d.%d\" \"User Commands\"\n"
            ".SH NAME\nmeshbus \\- brokerless message bus: pub-sub, request-reply and "
            "work queues from the command line\n"
            ".SH SYNOPSIS\n.B meshbus\n.I COMMAND\n[ARGS] [FLAGS]\n"
            ".SH DESCRIPTION\nEvery command starts a node on loopback unless told "
            "otherwise; nodes find each other with no configuration and no server.\n"
            ".SH COMMANDS\n", MESHBUS_VERSION_MAJOR, MESHBUS_VERSION_MINOR,
            MESHBUS_VERSION_PATCH);
    for (size_t i = 0; i < COMMANDS; i++) {
        const cli_cmd_t *cmd = s_commands [i];
        printf (".SS meshbus %s ", cmd->name);
        s_man_text (cmd->synopsis);
        printf ("\n.nf\n");
        s_man_text (cmd->help);
        printf ("\n.fi\n");
    }
    printf (".SH COMMON FLAGS\n.nf\n");
    s_man_text (s_common_help);
    printf (".fi\n.SH SEE ALSO\nREADME.rst and docs/ of the meshbus sources\n");
}

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
    //  Ctrl-C and TERM end every command through its loop (BYE sent,
    //  durable state committed); czmq must not install its own handler
    zsys_handler_set (NULL);
    struct sigaction sa = { .sa_handler = s_on_signal };
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    //  a write to a closed pipe fails with EPIPE instead of killing us:
    //  the commands then end cleanly (cli_write)
    signal (SIGPIPE, SIG_IGN);
    if (argc < 2) {
        s_usage (stderr);
        return CLI_USAGE;
    }
    const char *command = argv [1];
    if (streq_ (command, "--help") || streq_ (command, "-h") || streq_ (command, "help")) {
        if (argc > 2)
            for (size_t i = 0; i < COMMANDS; i++)
                if (streq_ (argv [2], s_commands [i]->name)) {
                    cli_print_help (stdout, s_commands [i]);
                    return 0;
                }
        s_usage (stdout);
        return 0;
    }
    if (streq_ (command, "--version") || streq_ (command, "-V")) {
        printf ("meshbus %d.%d.%d\n", MESHBUS_VERSION_MAJOR, MESHBUS_VERSION_MINOR,
                MESHBUS_VERSION_PATCH);
        return 0;
    }
    if (streq_ (command, "--man")) {
        s_man ();
        return 0;
    }
    for (size_t i = 0; i < COMMANDS; i++)
        if (streq_ (command, s_commands [i]->name)) {
            cli_opts_t opts;
            memset (&opts, 0, sizeof opts);
            return s_commands [i]->fn (s_commands [i], &opts, argc - 1, argv + 1);
        }
    fprintf (stderr, "meshbus: unknown command '%s' (meshbus --help lists them)\n", command);
    return CLI_USAGE;
}
