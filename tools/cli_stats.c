/*  =========================================================================
    meshbus stats - counters of this node and of every peer it finds

    The node joins, lets discovery settle for about one and a half beacon
    intervals, asks every peer for its counters (STATS_REQ) and prints
    them: one "path value" line per counter, or with --json one object
    {"self": {...}, "peers": {"<id>": {...}}}. Peer JSON came from the
    network, so the flattener is bounded in depth and never trusts it.
    ========================================================================= */

#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>

#define MAX_DEPTH 8

typedef struct {
    const char *p;
    int bad;
} s_reader_t;

static void
s_skip_ws (s_reader_t *r)
{
    while (*r->p && isspace ((unsigned char) *r->p))
        r->p++;
}

//  Read a JSON string into out (truncated to cap), unescaping simply.
static int
s_string (s_reader_t *r, char *out, size_t cap)
{
    if (*r->p != '"')
        return -1;
    r->p++;
    size_t n = 0;
    while (*r->p && *r->p != '"') {
        char c = *r->p++;
        if (c == '\\' && *r->p)
            c = *r->p++;
        if (n + 1 < cap)
            out [n++] = c;
    }
    if (*r->p != '"')
        return -1;
    r->p++;
    out [n] = 0;
    return 0;
}

static int
s_value (s_reader_t *r, const char *path, int depth)
{
    s_skip_ws (r);
    if (depth > MAX_DEPTH)
        return -1;
    if (*r->p == '{') {
        r->p++;
        s_skip_ws (r);
        if (*r->p == '}') {
            r->p++;
            return 0;
        }
        while (true) {
            char key [256], sub [1024];
            s_skip_ws (r);
            if (s_string (r, key, sizeof key))
                return -1;
            s_skip_ws (r);
            if (*r->p++ != ':')
                return -1;
            snprintf (sub, sizeof sub, "%s%s%s", path, *path? ".": "", key);
            if (s_value (r, sub, depth + 1))
                return -1;
            s_skip_ws (r);
            if (*r->p == ',') {
                r->p++;
                continue;
            }
            if (*r->p == '}') {
                r->p++;
                return 0;
            }
            return -1;
        }
    }
    if (*r->p == '"') {
        char text [512];
        if (s_string (r, text, sizeof text))
            return -1;
        printf ("%s %s\n", path, text);
        return 0;
    }
    const char *start = r->p;
    while (*r->p && (isalnum ((unsigned char) *r->p) || *r->p == '.' || *r->p == '-'))
        r->p++;
    if (r->p == start)
        return -1;
    printf ("%s %.*s\n", path, (int) (r->p - start), start);
    return 0;
}

int
cli_print_flat_json (const char *json, const char *prefix)
{
    s_reader_t r = { json, 0 };
    return s_value (&r, prefix, 0);
}

enum { STATS_TIMEOUT = 't', STATS_JSON = CLI_OPT (1) };

static const struct option s_stats_options [] = {
    { "timeout", required_argument, NULL, STATS_TIMEOUT },
    { "json",    no_argument,       NULL, STATS_JSON },
    { NULL, 0, NULL, 0 }
};

static int
s_stats (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_stats_options, "t:", argc, argv);
    bool json = false;
    double timeout = 3;
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case STATS_TIMEOUT: bad = cli_seconds (cmd, "--timeout", optarg, 0.1, 3600, &timeout); break;
            case STATS_JSON:    json = true; break;
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
    //  let discovery settle, then ask every peer
    int64_t total = (int64_t) (timeout * 1000);
    int64_t settle = total / 2 < 1500? total / 2: 1500;
    int64_t until = (int64_t) mesh_clock_ms () + settle;
    while (!cli_interrupted () && (int64_t) mesh_clock_ms () < until) {
        mesh_event_t *event = mesh_node_wait_event (node, 100);
        mesh_event_destroy (&event);
    }
    char *peers = mesh_node_peer_stats_json (node, (int) (total - settle));
    char *self = mesh_node_stats_json (node);
    int rc = 0;
    if (!peers)
        rc = cli_fail ("%s", mesh_last_error ());
    else
    if (json)
        printf ("{\"self\": %s, \"peers\": %s}\n", self, peers);
    else
    if (cli_print_flat_json (self, "self") || cli_print_flat_json (peers, "peer"))
        rc = cli_fail ("a peer sent malformed counters");
    free (peers);
    free (self);
    mesh_node_destroy (&node);
    return rc;
}

const cli_cmd_t cli_cmd_stats = {
    "stats", s_stats, "[--json] [--timeout S] [FLAGS]",
    "counters of this node and of every peer it finds",
"Lets discovery settle, asks every peer for its counters and prints them as\n"
"\"PATH VALUE\" lines (self.* for this node, peer.* for the others).\n"
"\n"
"  --json               one JSON object: {\"self\": {...}, \"peers\": {...}}\n"
"  -t, --timeout S      how long to gather (default 3)"
};
