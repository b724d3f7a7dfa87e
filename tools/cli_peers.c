/*  meshbus peers - watch peer events; with --expect, wait for K peers  */

#include "cli.h"
#include <stdio.h>
#include <stdlib.h>

void
cli_print_event (const mesh_event_t *event)
{
    const char *detail = mesh_event_detail (event);
    char line [1024];
    snprintf (line, sizeof line, "%s %s %s %s%s%s\n", mesh_event_name (event),
              mesh_event_peer_name (event), mesh_event_peer (event),
              mesh_event_endpoint (event), *detail? " ": "", detail);
    cli_write (line, strlen (line));
    cli_flush ();
}

enum { PEERS_TIMEOUT = 't', PEERS_EXPECT = CLI_OPT (1) };

static const struct option s_peers_options [] = {
    { "timeout", required_argument, NULL, PEERS_TIMEOUT },
    { "expect",  required_argument, NULL, PEERS_EXPECT },
    { NULL, 0, NULL, 0 }
};

static int
s_peers (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_peers_options, "t:", argc, argv);
    long expect = -1;
    double timeout = -1;
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case PEERS_EXPECT:  bad = cli_long (cmd, "--expect", optarg, 0, 1000000, &expect); break;
            case PEERS_TIMEOUT: bad = cli_seconds (cmd, "--timeout", optarg, 0, 1e7, &timeout); break;
            default:            bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 0, 0))
        return CLI_USAGE;
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node)
        return 1;
    int64_t deadline = timeout < 0? -1: (int64_t) (mesh_clock_ms () + timeout * 1000);
    int rc = -1;
    //  Peers alive as the printed events tell. The table alone is not
    //  enough: a peer that entered and already said BYE (it had its own
    //  --expect met) is gone from it, yet it was alive, and we printed so.
    long entered = 0;
    while (rc < 0 && !cli_interrupted () && !cli_stdout_closed ()) {
        int64_t left = deadline < 0? 200: deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0)
            break;
        mesh_event_t *event = mesh_node_wait_event (node, left < 200? (int) left: 200);
        if (event) {
            cli_print_event (event);
            if (mesh_event_type (event) == MESH_EVENT_ENTER)
                entered++;
            else
            if (mesh_event_type (event) == MESH_EVENT_EXIT)
                entered--;
            mesh_event_destroy (&event);
        }
        if (expect >= 0 && (entered >= expect || (long) mesh_node_peer_count (node) >= expect))
            rc = 0;
    }
    if (rc < 0 && expect >= 0) {
        cli_fail ("only %zu of %ld peers alive after %g s", mesh_node_peer_count (node),
                  expect, timeout);
        rc = 1;
    }
    mesh_node_destroy (&node);
    return rc < 0? 0: rc;
}

const cli_cmd_t cli_cmd_peers = {
    "peers", s_peers, "[--expect K] [--timeout S] [FLAGS]",
    "print a line per peer event (ENTER, EXIT, SUSPECT, BACK)",
"Prints one line per peer event: EVENT NAME ID ENDPOINT [DETAIL]. Ends at the\n"
"timeout, on Ctrl-C or when stdout is closed.\n"
"\n"
"  --expect K           exit 0 once K peers are alive (exit 1 at the timeout)\n"
"  -t, --timeout S      stop after S seconds (default: never)"
};
