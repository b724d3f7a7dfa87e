/*  =========================================================================
    meshbus send / meshbus recv - the core's direct messages from a shell

    send waits for discovery until it knows the peer (by id, or by name
    when exactly one peer has it), whispers one DIRECT message and exits
    once it is flushed (destroying the node waits for its links). recv
    prints each direct message it gets as NAME<TAB>BODY, escaped as sub.
    ========================================================================= */

#include "cli.h"
#include <stdlib.h>

enum { SEND_TIMEOUT = 't', SEND_FILE = 'f', SEND_SUBJECT = CLI_OPT (1) };

static const struct option s_send_options [] = {
    { "timeout", required_argument, NULL, SEND_TIMEOUT },
    { "file",    required_argument, NULL, SEND_FILE },
    { "subject", required_argument, NULL, SEND_SUBJECT },
    { NULL, 0, NULL, 0 }
};

//  The id of the peer called who (an id, or the name of exactly one
//  peer): a copy, NULL when none; *many is set when the name is ambiguous
static char *
s_find (mesh_node_t *node, const char *who, size_t *many)
{
    char **peers = mesh_node_peers (node);
    char *found = NULL;
    *many = 0;
    for (char **peer = peers; peer && *peer; peer++) {
        char *name = mesh_node_peer_name (node, *peer);
        if (streq_ (*peer, who) || (name && streq_ (name, who))) {
            (*many)++;
            if (!found)
                found = strdup (*peer);
        }
        free (name);
    }
    mesh_strv_free (&peers);
    return found;
}

static int
s_send (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_send_options, "t:f:", argc, argv);
    double timeout = 5;
    const char *file = NULL, *subject = "direct";
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case SEND_TIMEOUT: bad = cli_seconds (cmd, "--timeout", optarg, 0, 1e7, &timeout); break;
            case SEND_FILE:    file = optarg; break;
            case SEND_SUBJECT: bad = cli_name (cmd, "subject", optarg, false); subject = optarg; break;
            default:           bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, file? 1: 2, file? 1: 2))
        return CLI_USAGE;
    const char *who = args.pos [0];
    char *body = NULL;
    size_t size = 0;
    if (file) {
        if (!(body = cli_read_file (file, &size)))
            return CLI_FAILED;
    }
    else {
        body = strdup (args.pos [1]);
        size = strlen (args.pos [1]);
    }
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node) {
        free (body);
        return CLI_FAILED;
    }
    uint64_t start = mesh_clock_ms ();
    uint64_t deadline = start + (uint64_t) (timeout * 1000);
    char *peer = NULL;
    size_t many = 0;
    //  An id names one peer: send as soon as it is known. A name may be
    //  taken by several: let discovery settle first, so that a second
    //  peer of that name is known before we choose
    bool is_id = strlen (who) == 32 && strspn (who, "0123456789abcdef") == 32;
    while (!cli_interrupted () && mesh_clock_ms () < deadline) {
        free (peer);
        peer = s_find (node, who, &many);
        if (peer && (is_id || mesh_clock_ms () - start >= MESH_DEFAULT_SETTLE_MS))
            break;
        mesh_node_dispatch (node, 50);
    }
    int rc = 0;
    if (!peer)
        rc = cli_fail ("no peer called %s found within %g s", who, timeout);
    else
    if (many > 1)
        rc = cli_fail ("%zu peers are called %s: give a peer id (meshbus peers lists them)",
                       many, who);
    else
    if (mesh_node_whisper (node, peer, subject, body, size))
        rc = cli_fail ("send to %s failed: %s", who, mesh_last_error ());
    free (peer);
    free (body);
    mesh_node_destroy (&node);      //  flushes the link before BYE
    return rc;
}

const cli_cmd_t cli_cmd_send = {
    "send", s_send, "PEER (BODY | --file PATH) [--timeout S] [FLAGS]",
    "send a direct message to one peer, by name or id",
"Waits until discovery finds PEER (a node id, or the name of exactly one peer),\n"
"sends it one direct message and exits once the message is on its way.\n"
"\n"
"  -f, --file PATH      the body is the whole file (- = stdin)\n"
"  -t, --timeout S      how long to look for the peer (default 5)\n"
"  --subject S          the message's subject (default \"direct\")"
};

//  ---------------------------------------------------------------------
//  recv

typedef struct {
    long count, received;
} recv_state_t;

static void
s_on_direct (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    recv_state_t *state = (recv_state_t *) arg;
    if (state->count >= 0 && state->received >= state->count)
        return;
    const char *name = mesh_msg_sender_name (msg);
    cli_write (name, strlen (name));
    cli_write ("\t", 1);
    cli_write_escaped (mesh_msg_body (msg), mesh_msg_size (msg));
    cli_write ("\n", 1);
    cli_flush ();
    state->received++;
}

enum { RECV_COUNT = 'n', RECV_TIMEOUT = 't' };

static const struct option s_recv_options [] = {
    { "count",   required_argument, NULL, RECV_COUNT },
    { "timeout", required_argument, NULL, RECV_TIMEOUT },
    { NULL, 0, NULL, 0 }
};

static int
s_recv (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_recv_options, "n:t:", argc, argv);
    recv_state_t state = { -1, 0 };
    double timeout = -1;
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case RECV_COUNT:   bad = cli_long (cmd, "--count", optarg, 0, LONG_MAX, &state.count); break;
            case RECV_TIMEOUT: bad = cli_seconds (cmd, "--timeout", optarg, 0, 1e7, &timeout); break;
            default:           bad = -1;
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
        return CLI_FAILED;
    mesh_node_on_kind (node, MESH_KIND_DIRECT, s_on_direct, &state);
    int64_t deadline = timeout < 0? -1: (int64_t) (mesh_clock_ms () + timeout * 1000);
    while (!cli_interrupted () && !cli_stdout_closed ()
       &&  (state.count < 0 || state.received < state.count)) {
        int64_t left = deadline < 0? 200: deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0)
            break;
        mesh_node_dispatch (node, left < 200? (int) left: 200);
        mesh_event_t *event;
        while ((event = mesh_node_event (node)))
            mesh_event_destroy (&event);
    }
    int rc = 0;
    if (!cli_interrupted () && !cli_stdout_closed ()
    &&  state.count >= 0 && state.received < state.count)
        rc = cli_fail ("got %ld of %ld direct messages before the timeout", state.received,
                       state.count);
    mesh_node_destroy (&node);
    return rc;
}

const cli_cmd_t cli_cmd_recv = {
    "recv", s_recv, "[--count N] [--timeout S] [FLAGS]",
    "print the direct messages this node gets: NAME<TAB>BODY",
"Prints one line per direct message (meshbus send, mesh_node_whisper): the\n"
"sender's name, a tab and the body escaped as sub does.\n"
"\n"
"  -n, --count N        exit 0 after N messages (exit 1 if the timeout comes first)\n"
"  -t, --timeout S      stop after S seconds (default: never)"
};
