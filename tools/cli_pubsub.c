/*  =========================================================================
    meshbus pub / meshbus sub

    pub lets a fresh node's discovery settle before its first message, as
    `nats pub` users expect delivery to the subscribers already running: it
    waits until a subscriber of the subject is known and the mesh has been
    quiet for a moment (no new peer), at most MESH_DEFAULT_SETTLE_MS, and
    says on stderr when nobody was subscribed. sub prints one line per
    message with the body escaped (cli_write_escaped), or the bytes as
    they are (--raw), or one JSON object per line (--json).
    ========================================================================= */

#include "cli.h"
#include <sodium.h>
#include <stdlib.h>

#define PUB_QUIET_MS    200     //  no new peer for this long: discovery has settled

//  ---------------------------------------------------------------------
//  sub

enum { SUB_COUNT = 'n', SUB_TIMEOUT = 't', SUB_DURABLE = CLI_OPT (1), SUB_LAST, SUB_BLOCK,
       SUB_NO_REPLAY, SUB_SINCE, SUB_RAW, SUB_JSON };

static const struct option s_sub_options [] = {
    { "count",      required_argument, NULL, SUB_COUNT },
    { "timeout",    required_argument, NULL, SUB_TIMEOUT },
    { "durable",    required_argument, NULL, SUB_DURABLE },
    { "last-value", no_argument,       NULL, SUB_LAST },
    { "block",      no_argument,       NULL, SUB_BLOCK },
    { "no-replay",  no_argument,       NULL, SUB_NO_REPLAY },
    { "since",      required_argument, NULL, SUB_SINCE },
    { "raw",        no_argument,       NULL, SUB_RAW },
    { "json",       no_argument,       NULL, SUB_JSON },
    { NULL, 0, NULL, 0 }
};

typedef struct {
    long received;
    long count;
    int format;                 //  0 line, SUB_RAW, SUB_JSON
} sub_state_t;

static int
s_write_json (const mesh_msg_t *msg)
{
    const char *subject = mesh_msg_subject (msg);
    const char *name = mesh_msg_sender_name (msg);
    const char *ctype = mesh_msg_ctype (msg);
    const void *body = mesh_msg_body (msg);
    size_t size = mesh_msg_size (msg);
    int rc = cli_write ("{\"subject\":", 11) | cli_write_json_string (subject, strlen (subject))
           | cli_write (",\"headers\":{", 12);
    for (size_t i = 0; i < mesh_msg_header_count (msg); i++) {
        const char *key, *value;
        size_t klen, vlen;
        if (!mesh_msg_header_at (msg, i, &key, &klen, &value, &vlen))
            break;
        //  header text came from a peer: shown as text only when it is
        bool text = cli_utf8_valid (key, klen) && cli_utf8_valid (value, vlen);
        rc |= cli_write (i? ",": "", i? 1: 0)
            | cli_write_json_string (text? key: "?", text? klen: 1) | cli_write (":", 1)
            | cli_write_json_string (text? value: "?", text? vlen: 1);
    }
    char line [128];
    snprintf (line, sizeof line, "},\"publisher\":{\"id\":\"%s\",\"name\":",
              mesh_msg_sender (msg));
    rc |= cli_write (line, strlen (line)) | cli_write_json_string (name, strlen (name));
    snprintf (line, sizeof line, "},\"seq\":%llu,\"content_type\":",
              (unsigned long long) mesh_msg_seq (msg));
    rc |= cli_write (line, strlen (line));
    rc |= *ctype? cli_write_json_string (ctype, strlen (ctype)): cli_write ("null", 4);
    if (cli_utf8_valid (body, size))
        rc |= cli_write (",\"body\":", 8) | cli_write_json_string ((const char *) body, size)
            | cli_write (",\"body_encoding\":\"text\"}\n", 25);
    else {
        size_t cap = sodium_base64_encoded_len (size, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = (char *) malloc (cap);
        if (!b64)
            return -1;
        sodium_bin2base64 (b64, cap, (const unsigned char *) body, size,
                           sodium_base64_VARIANT_ORIGINAL);
        rc |= cli_write (",\"body\":\"", 9) | cli_write (b64, strlen (b64))
            | cli_write ("\",\"body_encoding\":\"base64\"}\n", 28);
        free (b64);
    }
    return rc? -1: 0;
}

static void
s_on_message (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    sub_state_t *state = (sub_state_t *) arg;
    if ((state->count >= 0 && state->received >= state->count) || cli_stdout_closed ())
        return;
    if (state->format == SUB_RAW)
        cli_write (mesh_msg_body (msg), mesh_msg_size (msg));
    else
    if (state->format == SUB_JSON)
        s_write_json (msg);
    else {
        const char *subject = mesh_msg_subject (msg);
        cli_write (subject, strlen (subject));
        cli_write ("\t", 1);
        cli_write_escaped (mesh_msg_body (msg), mesh_msg_size (msg));
        cli_write ("\n", 1);
    }
    state->received++;
}

static int
s_sub (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_sub_options, "n:t:", argc, argv);
    sub_state_t state = { 0, -1, 0 };
    double timeout = -1, since = 0;
    mesh_sub_opts_t sub_opts = { .mode = MESH_SUB_DROP };
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        switch (c) {
            case SUB_COUNT:
                if (cli_long (cmd, "--count", optarg, 0, LONG_MAX, &state.count))
                    return CLI_USAGE;
                break;
            case SUB_TIMEOUT:
                if (cli_seconds (cmd, "--timeout", optarg, 0, 1e7, &timeout))
                    return CLI_USAGE;
                break;
            case SUB_SINCE:
                if (cli_seconds (cmd, "--since", optarg, 0, 1e7, &since))
                    return CLI_USAGE;
                sub_opts.since_ms = mesh_clock_ms () - (uint64_t) (since * 1000);
                break;
            case SUB_DURABLE:   sub_opts.durable = optarg; break;
            case SUB_LAST:      sub_opts.last_value = true; break;
            case SUB_BLOCK:     sub_opts.mode = MESH_SUB_BLOCK; break;
            case SUB_NO_REPLAY: sub_opts.no_replay = true; break;
            case SUB_RAW:
            case SUB_JSON:
                if (state.format && state.format != c)
                    return cli_usage (cmd, "--raw and --json exclude each other");
                state.format = c;
                break;
            default:
                return cli_usage (cmd, "unexpected flag");
        }
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 1, 1))
        return CLI_USAGE;
    const char *pattern = args.pos [0];
    if (cli_name (cmd, "pattern", pattern, true))
        return CLI_USAGE;
    //  NATS spells "zero or more tokens" '>': here it is an ordinary token
    size_t len = strlen (pattern);
    if (streq_ (pattern, ">") || (len > 1 && streq_ (pattern + len - 2, ".>")))
        fprintf (stderr, "meshbus: note: '>' is a literal token here; '#' matches zero or "
                 "more tokens (%.*s#), '*' exactly one\n", (int) (len - 1), pattern);
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node)
        return CLI_FAILED;
    mesh_pubsub_t *pubsub = mesh_pubsub_new (node);
    int rc = 0;
    if (!pubsub || mesh_subscribe (pubsub, pattern, &sub_opts, s_on_message, &state) < 0)
        rc = cli_fail ("%s", mesh_last_error ());
    int64_t deadline = timeout < 0? -1: (int64_t) (mesh_clock_ms () + timeout * 1000);
    while (rc == 0 && !cli_interrupted () && !cli_stdout_closed ()
       && (state.count < 0 || state.received < state.count)) {
        int64_t left = deadline < 0? 200: deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0)
            break;
        mesh_node_dispatch (node, left < 200? (int) left: 200);
        //  lines reach a pipe as they come (not in 4 KiB blocks, which could
        //  also split a line around an event line written to stderr)
        cli_flush ();
        mesh_event_t *event;
        while ((event = mesh_node_event (node)))  {
            if (mesh_event_type (event) >= MESH_EVENT_PATTERN)
                fprintf (stderr, "%s %s %llu\n", mesh_event_name (event), mesh_event_peer (event),
                         (unsigned long long) mesh_event_count (event));
            mesh_event_destroy (&event);
        }
    }
    cli_flush ();
    //  a reader that went away ends us as it ends `yes`: not a failure
    if (rc == 0 && !cli_stdout_closed () && !cli_interrupted ()
    &&  state.count >= 0 && state.received < state.count)
        rc = cli_fail ("got %ld of %ld messages before the timeout", state.received, state.count);
    mesh_pubsub_destroy (&pubsub);
    mesh_node_destroy (&node);
    return rc;
}

const cli_cmd_t cli_cmd_sub = {
    "sub", s_sub, "PATTERN [--count N] [--timeout S] [--raw | --json] [FLAGS]",
    "print messages whose subject matches PATTERN (* = one token, # = any)",
"Prints one line per message, SUBJECT<TAB>BODY, the body escaped so that a message\n"
"stays on one line: \\n \\t \\r \\\\ and \\xHH for other control bytes and for bytes\n"
"that are not UTF-8 (valid UTF-8 is printed as it is). Gaps, replays and lost\n"
"messages are reported on stderr (GAP <publisher> <count>...). Ends after N\n"
"messages, at the timeout, on Ctrl-C, or when stdout is closed (| head -1).\n"
"\n"
"  -n, --count N        exit 0 after N messages (exit 1 if the timeout comes first)\n"
"  -t, --timeout S      stop after S seconds (default: never)\n"
"  --raw                write exactly the bodies' bytes, nothing else\n"
"  --json               one JSON object per line: subject, headers, publisher {id, name},\n"
"                       seq, content_type, body, body_encoding (\"text\" when the body is\n"
"                       valid UTF-8, else \"base64\")\n"
"  --durable NAME       a durable subscription: get what was published while away\n"
"  --last-value         get the last message of each matching subject at once\n"
"  --since S            first get what publishers retained from the last S seconds\n"
"  --block              publishers wait for this subscriber instead of dropping\n"
"  --no-replay          do not ask publishers to resend what a gap lost"
};

//  ---------------------------------------------------------------------
//  pub

enum { PUB_COUNT = 'n', PUB_TIMEOUT = 't', PUB_HEADER = 'H', PUB_FILE = 'f',
       PUB_WAIT = CLI_OPT (1), PUB_NO_WAIT, PUB_INTERVAL, PUB_DATA_DIR, PUB_CTYPE, PUB_LINGER };

static const struct option s_pub_options [] = {
    { "count",            required_argument, NULL, PUB_COUNT },
    { "timeout",          required_argument, NULL, PUB_TIMEOUT },
    { "header",           required_argument, NULL, PUB_HEADER },
    { "file",             required_argument, NULL, PUB_FILE },
    { "wait-subscribers", required_argument, NULL, PUB_WAIT },
    { "no-wait",          no_argument,       NULL, PUB_NO_WAIT },
    { "interval-ms",      required_argument, NULL, PUB_INTERVAL },
    { "data-dir",         required_argument, NULL, PUB_DATA_DIR },
    { "ctype",            required_argument, NULL, PUB_CTYPE },
    { "linger",           required_argument, NULL, PUB_LINGER },
    { NULL, 0, NULL, 0 }
};

//  Let a fresh node find the subscribers already running: until one of
//  subject is known and no peer entered for PUB_QUIET_MS, at most the
//  settle time
static void
s_settle (mesh_node_t *node, mesh_pubsub_t *pubsub, const char *subject)
{
    uint64_t start = mesh_clock_ms ();
    uint64_t last_enter = start;
    while (!cli_interrupted ()) {
        uint64_t now = mesh_clock_ms ();
        if (now - start >= MESH_DEFAULT_SETTLE_MS)
            break;
        if (mesh_pubsub_subscribers (pubsub, subject) > 0 && now - last_enter >= PUB_QUIET_MS)
            break;
        mesh_node_dispatch (node, 20);
        mesh_event_t *event;
        while ((event = mesh_node_event (node))) {
            if (mesh_event_type (event) == MESH_EVENT_ENTER)
                last_enter = mesh_clock_ms ();
            mesh_event_destroy (&event);
        }
    }
}

static int
s_pub (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_pub_options, "n:t:H:f:", argc, argv);
    long count = 1, wait = 0, interval = 0;
    double timeout = 10, linger = 0.5;
    bool no_wait = false;
    const char *file = NULL, *data_dir = NULL, *ctype = NULL;
    cli_headers_t headers = { .count = 0 };
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case PUB_COUNT:    bad = cli_long (cmd, "--count", optarg, 0, LONG_MAX, &count); break;
            case PUB_WAIT:     bad = cli_long (cmd, "--wait-subscribers", optarg, 0, 1000000, &wait); break;
            case PUB_INTERVAL: bad = cli_long (cmd, "--interval-ms", optarg, 0, 3600000, &interval); break;
            case PUB_TIMEOUT:  bad = cli_seconds (cmd, "--timeout", optarg, 0, 1e7, &timeout); break;
            case PUB_LINGER:   bad = cli_seconds (cmd, "--linger", optarg, 0, 3600, &linger); break;
            case PUB_HEADER:   bad = cli_header_add (cmd, &headers, optarg); break;
            case PUB_FILE:     file = optarg; break;
            case PUB_NO_WAIT:  no_wait = true; break;
            case PUB_DATA_DIR: data_dir = optarg; break;
            case PUB_CTYPE:    bad = cli_ctype (cmd, optarg, &ctype); break;
            default:           bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 1, file? 1: 2))
        return CLI_USAGE;
    const char *subject = args.pos [0];
    if (cli_name (cmd, "subject", subject, false))
        return CLI_USAGE;
    cli_body_t body;
    int status = cli_body_take (&args, 1, file, true, &body);
    if (status)
        return status;
    mesh_node_t *node = cli_node_new (opts, NULL);
    mesh_pubsub_t *pubsub = node? mesh_pubsub_new (node): NULL;
    int rc = node? 0: CLI_FAILED;
    if (rc == 0 && !pubsub)
        rc = cli_fail ("%s", mesh_last_error ());
    if (rc == 0 && data_dir && mesh_pubsub_set_data_dir (pubsub, data_dir))
        rc = cli_fail ("cannot use data dir %s: %s", data_dir, mesh_last_error ());
    if (rc == 0 && wait > 0
    &&  mesh_pubsub_wait_subscribers (pubsub, subject, (size_t) wait, (int) (timeout * 1000)))
        rc = cli_fail ("only %zu of %ld subscribers for %s after %g s",
                       mesh_pubsub_subscribers (pubsub, subject), wait, subject, timeout);
    if (rc == 0 && wait == 0 && !no_wait)
        s_settle (node, pubsub, subject);
    size_t subscribers = rc == 0? mesh_pubsub_subscribers (pubsub, subject): 0;
    long published = 0;
    cli_lines_t reader = { 0 };
    while (rc == 0 && !cli_interrupted ()) {
        const char *text = body.data;
        size_t len = body.size;
        if (body.lines) {
            int got = cli_next_line (&reader, node, &text, &len, 100);
            if (got < 0)
                break;
            if (got == 0)
                continue;
        }
        else
        if (published >= count)
            break;
        mesh_head_t head = { .subject = subject, .ctype = ctype,
                             .headers = headers.list, .header_count = headers.count };
        if (mesh_publish_ex (pubsub, &head, text, len) < 0)
            rc = cli_fail ("publish failed: %s", mesh_last_error ());
        published++;
        //  keep the node's own housekeeping going between messages
        mesh_node_dispatch (node, interval > 0? (int) interval: 0);
    }
    if (rc == 0 && reader.refused)
        rc = cli_fail ("%zu lines refused (longer than the body limit); %ld published",
                       reader.refused, published);
    if (rc == 0 && subscribers == 0 && published > 0)
        fprintf (stderr, "meshbus: no subscribers for %s: %ld message%s published, none "
                 "delivered%s\n", subject, published, published == 1? "": "s",
                 data_dir? " (kept in the retained log)": "");
    //  answer replay requests and let the links drain before BYE
    int64_t until = (int64_t) mesh_clock_ms () + (int64_t) (linger * 1000);
    while (node && (int64_t) mesh_clock_ms () < until && !cli_interrupted ())
        mesh_node_dispatch (node, 50);
    cli_lines_free (&reader);
    cli_body_free (&body);
    cli_headers_free (&headers);
    mesh_pubsub_destroy (&pubsub);
    mesh_node_destroy (&node);
    return rc;
}

const cli_cmd_t cli_cmd_pub = {
    "pub", s_pub, "SUBJECT [BODY | - | --file PATH] [-H KEY=VALUE]... [--count N] [FLAGS]",
    "publish a message to every subscriber whose pattern matches SUBJECT",
"Publishes BODY (empty if none) N times; with - each line of stdin is a message\n"
"(the newline removed; any byte but newline, any length up to the 256 MiB body\n"
"limit, a longer line is refused whole and the exit status is 1). A fresh\n"
"publisher first lets discovery settle, so subscribers already running get the\n"
"first message; with nobody subscribed it says so on stderr (exit 0).\n"
"\n"
"  -f, --file PATH      the body is the whole file (- = all of stdin), bytes as they are\n"
"  -H, --header K=V     a header (repeatable), shown by sub --json\n"
"  -n, --count N        publish N times (default 1)\n"
"  --ctype TYPE         content type\n"
"  --wait-subscribers K first wait until K subscribers match SUBJECT (exit 1 at the timeout)\n"
"  --no-wait            publish at once, without letting discovery settle\n"
"  -t, --timeout S      bound of --wait-subscribers (default 10)\n"
"  --interval-ms MS     pause between messages\n"
"  --data-dir DIR       keep the retained log in DIR (LMDB), for durable subscribers\n"
"  --linger S           stay S seconds after the last message to answer replay requests\n"
"                       (default 0.5)"
};
