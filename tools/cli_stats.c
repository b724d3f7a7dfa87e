/*  =========================================================================
    meshbus stats - counters of this node and of every peer it finds

    The node joins, lets discovery settle for about one and a half beacon
    intervals, asks every peer for its counters (STATS_REQ) and prints
    them: one "NODE/PEER/NAME value" line per counter (dotted paths were
    ambiguous: counter names contain dots), or with --json one object
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
    const char *node;               //  the record's node id, NULL: the first key
    char keys [MAX_DEPTH + 1][256]; //  the keys leading to the current value
} s_reader_t;

static void
s_skip_ws (s_reader_t *r)
{
    while (*r->p && isspace ((unsigned char) *r->p))
        r->p++;
}

//  Four hex digits at p, or -1
static long
s_hex4 (const char *p)
{
    long value = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char) p [i];
        int digit = isdigit (c)? c - '0': isxdigit (c)? tolower (c) - 'a' + 10: -1;
        if (digit < 0)
            return -1;
        value = value * 16 + digit;
    }
    return value;
}

//  Read a JSON string into out (truncated to cap, never inside a
//  character), its escapes undone: \uXXXX (pairs too) as UTF-8
static int
s_string (s_reader_t *r, char *out, size_t cap)
{
    if (*r->p != '"')
        return -1;
    r->p++;
    size_t n = 0;
    while (*r->p && *r->p != '"') {
        char bytes [4];
        size_t len = 1;
        bytes [0] = *r->p++;
        if (bytes [0] == '\\' && *r->p) {
            char e = *r->p++;
            long cp = e == 'u'? s_hex4 (r->p): -1;
            if (cp >= 0) {
                r->p += 4;
                long low = cp >= 0xD800 && cp <= 0xDBFF && r->p [0] == '\\' && r->p [1] == 'u'
                         ? s_hex4 (r->p + 2): -1;
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    r->p += 6;
                }
                if (cp < 0x80)
                    bytes [0] = (char) cp;
                else
                if (cp < 0x800) {
                    bytes [0] = (char) (0xC0 | (cp >> 6));
                    bytes [1] = (char) (0x80 | (cp & 0x3F));
                    len = 2;
                }
                else
                if (cp < 0x10000) {
                    bytes [0] = (char) (0xE0 | (cp >> 12));
                    bytes [1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                    bytes [2] = (char) (0x80 | (cp & 0x3F));
                    len = 3;
                }
                else {
                    bytes [0] = (char) (0xF0 | (cp >> 18));
                    bytes [1] = (char) (0x80 | ((cp >> 12) & 0x3F));
                    bytes [2] = (char) (0x80 | ((cp >> 6) & 0x3F));
                    bytes [3] = (char) (0x80 | (cp & 0x3F));
                    len = 4;
                }
            }
            else
                bytes [0] = e == 'n'? '\n': e == 't'? '\t': e == 'r'? '\r': e == 'b'? '\b'
                          : e == 'f'? '\f': e;
        }
        if (n + len < cap) {
            memcpy (out + n, bytes, len);
            n += len;
        }
    }
    if (*r->p != '"')
        return -1;
    r->p++;
    out [n] = 0;
    return 0;
}

//  One part of a stats line: '/', '%', spaces and control bytes are
//  written %XX, so a line splits at its first two '/' and first space
//  whatever a counter or peer is called (docs/observe.md)
static void
s_part (FILE *out, const char *text, bool value)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '%' || (!value && (*c == '/' || *c == ' ')))
            fprintf (out, "%%%02X", *c);
        else
            fputc (*c, out);
}

//  A value at keys [0..depth): NODE/PEER/NAME VALUE, PEER "-" for the
//  node itself. The shape is that of mesh_node_stats_json: fields and
//  "counters" of the node, and of each record of "peers" and "departed".
static void
s_emit (s_reader_t *r, int depth, const char *value)
{
    char (*k) [256] = r->keys;
    const char *node = r->node;
    if (!node) {
        node = k [0];
        k++, depth--;
    }
    const char *peer = "-";
    const char *name = NULL;
    if (depth == 1)
        name = k [0];
    else
    if (depth == 2 && streq_ (k [0], "counters"))
        name = k [1];
    else
    if ((depth == 3 || (depth == 4 && streq_ (k [2], "counters")))
    &&  (streq_ (k [0], "peers") || streq_ (k [0], "departed")))
        peer = k [1], name = k [depth - 1];
    if (depth < 1)
        return;
    s_part (stdout, node, false);
    printf ("/");
    s_part (stdout, peer, false);
    printf ("/");
    if (name)
        s_part (stdout, name, false);
    else
        for (int i = 0; i < depth; i++) {       //  a shape we do not know: all its keys
            if (i)
                printf (".");
            s_part (stdout, k [i], false);
        }
    printf (" ");
    s_part (stdout, value, true);
    printf ("\n");
}

//  After a member or an element: ',' (1: another follows), the closing
//  bracket (0: done), or anything else (-1)
static int
s_after (s_reader_t *r, char close)
{
    s_skip_ws (r);
    if (*r->p == ',') {
        r->p++;
        return 1;
    }
    if (*r->p == close) {
        r->p++;
        return 0;
    }
    return -1;
}

static int
s_value (s_reader_t *r, int depth)
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
            s_skip_ws (r);
            if (depth >= MAX_DEPTH || s_string (r, r->keys [depth], sizeof r->keys [depth]))
                return -1;
            s_skip_ws (r);
            if (*r->p++ != ':')
                return -1;
            if (s_value (r, depth + 1))
                return -1;
            int more = s_after (r, '}');
            if (more <= 0)
                return more;
        }
    }
    if (*r->p == '[') {
        //  the rows of a pattern's table (docs/observe.md): each element
        //  is keyed by its index, NODE/-/patterns.pubsub.subscriptions.0.pattern
        r->p++;
        s_skip_ws (r);
        if (*r->p == ']') {
            r->p++;
            return 0;
        }
        for (int index = 0; ; index++) {
            if (depth >= MAX_DEPTH)
                return -1;
            snprintf (r->keys [depth], sizeof r->keys [depth], "%d", index);
            if (s_value (r, depth + 1))
                return -1;
            int more = s_after (r, ']');
            if (more <= 0)
                return more;
        }
    }
    if (*r->p == '"') {
        char text [512];
        if (s_string (r, text, sizeof text))
            return -1;
        s_emit (r, depth, text);
        return 0;
    }
    const char *start = r->p;
    while (*r->p && (isalnum ((unsigned char) *r->p) || *r->p == '.' || *r->p == '-'))
        r->p++;
    if (r->p == start || r->p - start > 64)
        return -1;
    char text [65];
    memcpy (text, start, (size_t) (r->p - start));
    text [r->p - start] = 0;
    s_emit (r, depth, text);
    return 0;
}

//  node: the id of the node whose record json is, or NULL when json is an
//  object of records by node id (the peers' answers)
int
cli_print_flat_json (const char *json, const char *node)
{
    s_reader_t *r = (s_reader_t *) calloc (1, sizeof (s_reader_t));
    if (!r)
        return -1;
    r->p = json;
    r->node = node;
    int rc = s_value (r, 0);
    free (r);
    return rc;
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
    if (cli_print_flat_json (self, mesh_node_id (node)) || cli_print_flat_json (peers, NULL))
        rc = cli_fail ("a peer sent malformed counters");
    free (peers);
    free (self);
    mesh_node_destroy (&node);
    return rc;
}

const cli_cmd_t cli_cmd_stats = {
    "stats", s_stats, "[--json] [--timeout S] [FLAGS]",
    "counters of this node and of every peer it finds",
"Lets discovery settle, asks every peer for its counters and prints them, this\n"
"node first, as \"NODE/PEER/NAME VALUE\" lines: NODE the id of the node that\n"
"counted, PEER the id of the peer it counted for or - for the node as a whole,\n"
"NAME a counter (frames.in, send.dropped.hwm...) or a field (name, state...).\n"
"'/', '%', spaces and control bytes inside a part are written %XX, so a line\n"
"splits at its first two '/' and the first space (docs/observe.md).\n"
"\n"
"  --json               one JSON object: {\"self\": {...}, \"peers\": {...}}\n"
"  -t, --timeout S      how long to gather (default 3)"
};
