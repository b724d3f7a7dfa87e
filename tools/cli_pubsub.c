/*  =========================================================================
    meshbus pub / meshbus sub

    pub SUBJECT [BODY|-] [--count N] [--wait-subscribers K] [--timeout S]
        [--interval-ms MS] [--data-dir DIR] [--ctype TYPE] [--linger S]
        Publishes BODY (or each line of stdin with "-") N times. With
        --wait-subscribers it first waits until K subscribers match SUBJECT
        (exit 1 at the timeout), so nothing is lost to a slow joiner. It
        stays --linger seconds (default 0.5) to answer replay requests.
    sub PATTERN [--count N] [--timeout S] [--durable NAME] [--last-value]
        [--block] [--no-replay] [--since S]
        One line per message: SUBJECT<TAB>BODY. Gaps, replays and lost
        messages are reported on stderr as "GAP <publisher> <count>" etc.
        Exits 0 after N messages, or at the timeout when no count was set.
        --since S first gets what publishers retained from the last S seconds.
    ========================================================================= */

#include "meshbus_cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <unistd.h>

typedef struct {
    long received;
    long count;
} sub_state_t;

static void
s_on_message (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    sub_state_t *state = (sub_state_t *) arg;
    if (state->count >= 0 && state->received >= state->count)
        return;
    printf ("%s\t%.*s\n", mesh_msg_subject (msg), (int) mesh_msg_size (msg),
            (const char *) mesh_msg_body (msg));
    state->received++;
}

int
cli_sub (cli_opts_t *opts, int argc, char **argv)
{
    const char *count_arg = cli_take (&argc, argv, "--count");
    const char *timeout_arg = cli_take (&argc, argv, "--timeout");
    const char *durable = cli_take (&argc, argv, "--durable");
    bool last_value = cli_take_flag (&argc, argv, "--last-value");
    bool block = cli_take_flag (&argc, argv, "--block");
    bool no_replay = cli_take_flag (&argc, argv, "--no-replay");
    const char *since_arg = cli_take (&argc, argv, "--since");
    if (argc < 1)
        return cli_fail ("usage: meshbus sub PATTERN [--count N] [--timeout S]");
    if (cli_no_extra (argc, argv, 1))
        return 2;
    const char *pattern = argv [0];
    if (!mesh_pattern_valid (pattern))
        return cli_fail ("bad pattern '%s': dot-separated tokens, * = one token, # = any", pattern);
    sub_state_t state = { 0, -1 };
    double timeout = -1;
    if ((count_arg && cli_count (count_arg, "--count", 0, &state.count))
    ||  (timeout_arg && cli_seconds (timeout_arg, &timeout)))
        return 2;
    double since = 0;
    if (since_arg && cli_seconds (since_arg, &since))
        return 2;
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node)
        return 1;
    mesh_pubsub_t *pubsub = mesh_pubsub_new (node);
    mesh_sub_opts_t sub_opts = { .mode = block? MESH_SUB_BLOCK: MESH_SUB_DROP,
                                 .durable = durable, .last_value = last_value,
                                 .no_replay = no_replay,
                                 .since_ms = since_arg? mesh_clock_ms () - (uint64_t) (since * 1000): 0 };
    int rc = 0;
    if (mesh_subscribe (pubsub, pattern, &sub_opts, s_on_message, &state) < 0)
        rc = cli_fail ("%s", mesh_last_error ());
    int64_t deadline = timeout < 0? -1: (int64_t) (mesh_clock_ms () + timeout * 1000);
    while (rc == 0 && !cli_interrupted ()
       && (state.count < 0 || state.received < state.count)) {
        int64_t left = deadline < 0? 200: deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0)
            break;
        mesh_node_dispatch (node, left < 200? (int) left: 200);
        //  lines reach a pipe as they come (not in 4 KiB blocks, which could
        //  also split a line around an event line written to stderr)
        fflush (stdout);
        mesh_event_t *event;
        while ((event = mesh_node_event (node)))  {
            if (mesh_event_type (event) >= MESH_EVENT_PATTERN)
                fprintf (stderr, "%s %s %llu\n", mesh_event_name (event), mesh_event_peer (event),
                         (unsigned long long) mesh_event_count (event));
            mesh_event_destroy (&event);
        }
    }
    if (rc == 0 && state.count >= 0 && state.received < state.count)
        rc = cli_fail ("got %ld of %ld messages before the timeout", state.received, state.count);
    mesh_pubsub_destroy (&pubsub);
    mesh_node_destroy (&node);
    return rc;
}

int
cli_pub (cli_opts_t *opts, int argc, char **argv)
{
    const char *count_arg = cli_take (&argc, argv, "--count");
    const char *wait_arg = cli_take (&argc, argv, "--wait-subscribers");
    const char *timeout_arg = cli_take (&argc, argv, "--timeout");
    const char *interval_arg = cli_take (&argc, argv, "--interval-ms");
    const char *data_dir = cli_take (&argc, argv, "--data-dir");
    const char *ctype = cli_take (&argc, argv, "--ctype");
    const char *linger_arg = cli_take (&argc, argv, "--linger");
    if (argc < 1)
        return cli_fail ("usage: meshbus pub SUBJECT [BODY|-] [--count N] [--wait-subscribers K]");
    if (cli_no_extra (argc, argv, 2))
        return 2;
    const char *subject = argv [0];
    const char *body = argc > 1? argv [1]: "";
    if (!mesh_subject_valid (subject))
        return cli_fail ("bad subject '%s': dot-separated non-empty tokens, no * or #", subject);
    long count = 1, wait = 0, interval = 0;
    double timeout = 10, linger = 0.5;
    if ((linger_arg && cli_seconds (linger_arg, &linger))
    ||  (count_arg && cli_count (count_arg, "--count", 0, &count))
    ||  (wait_arg && cli_count (wait_arg, "--wait-subscribers", 0, &wait))
    ||  (interval_arg && cli_count (interval_arg, "--interval-ms", 0, &interval))
    ||  (timeout_arg && cli_seconds (timeout_arg, &timeout)))
        return 2;
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node)
        return 1;
    mesh_pubsub_t *pubsub = mesh_pubsub_new (node);
    int rc = 0;
    if (data_dir && mesh_pubsub_set_data_dir (pubsub, data_dir))
        rc = cli_fail ("cannot use data dir %s: %s", data_dir, mesh_last_error ());
    if (rc == 0 && wait > 0
    &&  mesh_pubsub_wait_subscribers (pubsub, subject, (size_t) wait, (int) (timeout * 1000)))
        rc = cli_fail ("only %zu of %ld subscribers for %s after %g s",
                       mesh_pubsub_subscribers (pubsub, subject), wait, subject, timeout);
    long published = 0;
    char line [65536];
    static cli_lines_t reader;
    while (rc == 0 && !cli_interrupted ()) {
        const char *text = body;
        size_t size = strlen (body);
        if (streq_ (body, "-")) {
            int got = cli_next_line (&reader, node, line, sizeof line, 100);
            if (got < 0)
                break;
            if (got == 0)
                continue;
            size = strlen (line);
            text = line;
        }
        else
        if (published >= count)
            break;
        mesh_head_t head = { .subject = subject, .ctype = ctype };
        if (mesh_publish_ex (pubsub, &head, text, size) < 0)
            rc = cli_fail ("publish failed: %s", mesh_last_error ());
        published++;
        //  keep the node's own housekeeping going between messages
        mesh_node_dispatch (node, interval > 0? (int) interval: 0);
    }
    //  answer replay requests and let the links drain before BYE
    int64_t until = (int64_t) mesh_clock_ms () + (int64_t) (linger * 1000);
    while ((int64_t) mesh_clock_ms () < until && !cli_interrupted ())
        mesh_node_dispatch (node, 50);
    mesh_pubsub_destroy (&pubsub);
    mesh_node_destroy (&node);
    return rc;
}
