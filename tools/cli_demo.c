/*  =========================================================================
    meshbus demo - several nodes on loopback use every pattern that exists

    Three nodes in one process, in a cluster of their own so that other
    meshbus nodes on this host do not mix in: they discover each other by
    beacon, then "alpha" sends a direct message to each of the others and
    each answers; beta subscribes to two wildcard patterns and alpha, once
    it knows of them, publishes to a few subjects (routing at the source:
    beta gets exactly what its patterns match); last, gamma leaves. Grows
    as patterns land; the leaving step stays last. Exits 0 when all of it
    worked.
    ========================================================================= */

#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define DEMO_NODES 3
#define DEMO_TIMEOUT_MS 15000

//  One subscription of the pub-sub step and what it should get
typedef struct {
    const char *pattern;
    int expected;
    int got;
} demo_sub_t;

typedef struct {
    int replies;
    demo_sub_t subs [2];
} demo_state_t;

static void
s_on_event_msg (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    demo_sub_t *sub = (demo_sub_t *) arg;
    printf ("  %s [%s] got %s \"%.*s\" from %s\n", mesh_node_name (mesh_pubsub_node (pubsub)),
            sub->pattern, mesh_msg_subject (msg), (int) mesh_msg_size (msg),
            (const char *) mesh_msg_body (msg), mesh_msg_sender_name (msg));
    sub->got++;
}

static void
s_on_direct (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    demo_state_t *state = (demo_state_t *) arg;
    printf ("  %s got \"%.*s\" from %s\n", mesh_node_name (node), (int) mesh_msg_size (msg),
            (const char *) mesh_msg_body (msg), mesh_msg_sender_name (msg));
    if (streq_ (mesh_msg_subject (msg), "question")) {
        char answer [128];
        snprintf (answer, sizeof answer, "hello alpha, %s here", mesh_node_name (node));
        mesh_node_whisper (node, mesh_msg_sender (msg), "answer", answer, strlen (answer));
    }
    else
        state->replies++;
}

bool
cli_demo_pump (mesh_node_t **nodes, int count, int64_t deadline)
{
    for (int i = 0; i < count; i++) {
        if (!nodes [i])
            continue;               //  a node that has left the demo
        mesh_node_dispatch (nodes [i], 5);
        mesh_event_t *event;
        while ((event = mesh_node_event (nodes [i]))) {
            printf ("  %s: ", mesh_node_name (nodes [i]));
            cli_print_event (event);
            mesh_event_destroy (&event);
        }
    }
    return (int64_t) mesh_clock_ms () < deadline && !cli_interrupted ();
}

static int
s_demo (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, NULL, NULL, argc, argv);
    int c = cli_getopt (&args);
    if (c == CLI_STOP)
        return args.status;
    if (c != -1)
        return cli_usage (cmd, "unexpected flag");
    if (cli_positionals (&args, 0, 0))
        return CLI_USAGE;
    const char *names [DEMO_NODES] = { "alpha", "beta", "gamma" };
    mesh_node_t *nodes [DEMO_NODES] = { NULL };
    mesh_pubsub_t *alpha_ps = NULL, *beta_ps = NULL;
    //  Subjects alpha publishes, and what each of beta's patterns matches:
    //  "*" is one token, "#" zero or more.
    static const char *subjects [] = {
        "demo.order.created",       //  both
        "demo.order.shipped",       //  demo.#
        "demo.user.created",        //  both
        "demo.user.eu.created",     //  demo.# (two tokens between: * does not match)
        "demo",                     //  demo.# (# matches zero tokens)
    };
    demo_state_t state = { 0, { { "demo.*.created", 2, 0 }, { "demo.#", 5, 0 } } };
    char cluster [64];
    snprintf (cluster, sizeof cluster, "demo-%d", (int) getpid ());
    cli_opts_t node_opts = *opts;
    if (!node_opts.cluster)
        node_opts.cluster = cluster;
    int rc = 0;
    printf ("meshbus demo: %d nodes on loopback, cluster %s\n", DEMO_NODES, node_opts.cluster);
    for (int i = 0; i < DEMO_NODES && rc == 0; i++) {
        node_opts.name = names [i];
        nodes [i] = cli_node_new (&node_opts, names [i]);
        if (!nodes [i])
            rc = 1;
        else
            mesh_node_on_kind (nodes [i], MESH_KIND_DIRECT, s_on_direct, &state);
    }
    int64_t deadline = (int64_t) mesh_clock_ms () + DEMO_TIMEOUT_MS;
    if (rc == 0) {
        printf ("1. discovery: every node finds the other %d\n", DEMO_NODES - 1);
        bool all = false;
        while (!all && cli_demo_pump (nodes, DEMO_NODES, deadline)) {
            all = true;
            for (int i = 0; i < DEMO_NODES; i++)
                all = all && mesh_node_peer_count (nodes [i]) == DEMO_NODES - 1;
        }
        if (!all)
            rc = cli_fail ("demo: discovery did not complete in %d s", DEMO_TIMEOUT_MS / 1000);
    }
    if (rc == 0) {
        printf ("2. direct messages: alpha asks, beta and gamma answer\n");
        char **peers = mesh_node_peers (nodes [0]);
        for (char **peer = peers; *peer; peer++)
            if (mesh_node_whisper (nodes [0], *peer, "question", "hello, who is there?", 20))
                rc = cli_fail ("demo: send failed: %s", mesh_last_error ());
        mesh_strv_free (&peers);
        while (rc == 0 && state.replies < DEMO_NODES - 1 && cli_demo_pump (nodes, DEMO_NODES, deadline))
            ;
        if (rc == 0 && state.replies < DEMO_NODES - 1)
            rc = cli_fail ("demo: only %d of %d answers arrived", state.replies, DEMO_NODES - 1);
    }
    if (rc == 0) {
        printf ("3. pub-sub: beta subscribes demo.*.created and demo.#, alpha publishes\n");
        alpha_ps = mesh_pubsub_new (nodes [0]);
        beta_ps = mesh_pubsub_new (nodes [1]);
        for (int i = 0; i < 2 && rc == 0; i++)
            if (mesh_subscribe (beta_ps, state.subs [i].pattern, NULL, s_on_event_msg,
                                &state.subs [i]) < 0)
                rc = cli_fail ("demo: subscribe: %s", mesh_last_error ());
        //  Wait until alpha knows beta's subscriptions, or what it publishes
        //  first is lost to a slow joiner. Only demo.# matches "demo", and
        //  each announcement carries all of beta's patterns: when alpha
        //  sees a subscriber for "demo", it has both.
        if (rc == 0 && mesh_pubsub_wait_subscribers (alpha_ps, "demo", 1, 5000))
            rc = cli_fail ("demo: alpha did not learn beta's subscriptions in 5 s");
        cli_demo_pump (nodes, DEMO_NODES, deadline);       //  print the UPDATE events that announced them
        for (size_t i = 0; rc == 0 && i < sizeof subjects / sizeof subjects [0]; i++) {
            char body [32];
            snprintf (body, sizeof body, "event %zu", i + 1);
            int sent = mesh_publish (alpha_ps, subjects [i], body, strlen (body));
            if (sent < 0)
                rc = cli_fail ("demo: publish: %s", mesh_last_error ());
            else
                printf ("  alpha publishes %s -> %d subscriber node(s)\n", subjects [i], sent);
        }
        int expected = state.subs [0].expected + state.subs [1].expected;
        while (rc == 0 && state.subs [0].got + state.subs [1].got < expected
           &&  cli_demo_pump (nodes, DEMO_NODES, deadline))
            ;
        //  a moment more, so that a delivery too many would show
        int64_t until = (int64_t) mesh_clock_ms () + 200;
        while (rc == 0 && cli_demo_pump (nodes, DEMO_NODES, until))
            ;
        for (int i = 0; i < 2 && rc == 0; i++)
            if (state.subs [i].got != state.subs [i].expected)
                rc = cli_fail ("demo: %s got %d messages, expected %d", state.subs [i].pattern,
                               state.subs [i].got, state.subs [i].expected);
    }
    if (rc == 0)
        rc = cli_demo_reqrep (nodes, DEMO_NODES, deadline);
    if (rc == 0)
        rc = cli_demo_pipeline (nodes, DEMO_NODES, deadline);
    if (rc == 0) {
        printf ("6. leaving: gamma stops, the others see EXIT at once (BYE)\n");
        mesh_node_destroy (&nodes [2]);
        int64_t until = (int64_t) mesh_clock_ms () + 5000;
        while (mesh_node_peer_count (nodes [0]) > 1 && cli_demo_pump (nodes, DEMO_NODES, until))
            ;
        if (mesh_node_peer_count (nodes [0]) > 1)
            rc = cli_fail ("demo: alpha did not see gamma leave");
    }
    //  pub-sub hooks into its node: destroy it first
    mesh_pubsub_destroy (&alpha_ps);
    mesh_pubsub_destroy (&beta_ps);
    for (int i = 0; i < DEMO_NODES; i++)
        mesh_node_destroy (&nodes [i]);
    if (rc == 0)
        printf ("meshbus demo: OK\n");
    return rc;
}

const cli_cmd_t cli_cmd_demo = {
    "demo", s_demo, "[FLAGS]",
    "three nodes on loopback use every pattern, then exit 0",
"Starts three nodes in this process (their own cluster): they find each other,\n"
"exchange direct messages, publish and subscribe with wildcards, call a service\n"
"and work a queue (with a redelivery and a dead letter), printing each step."
};
