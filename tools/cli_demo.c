/*  =========================================================================
    meshbus demo - several nodes on loopback use every pattern that exists

    Three nodes in one process, in a cluster of their own so that other
    meshbus nodes on this host do not mix in: they discover each other by
    beacon, then "alpha" sends a direct message to each of the others and
    each answers. Grows as patterns land. Exits 0 when all of it worked.
    ========================================================================= */

#include "meshbus_cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define DEMO_NODES 3
#define DEMO_TIMEOUT_MS 15000

typedef struct {
    int replies;
} demo_state_t;

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

static bool
s_pump (mesh_node_t **nodes, int64_t deadline)
{
    for (int i = 0; i < DEMO_NODES; i++) {
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

int
cli_demo (cli_opts_t *opts, int argc, char **argv)
{
    if (cli_no_extra (argc, argv, 0))
        return 2;
    const char *names [DEMO_NODES] = { "alpha", "beta", "gamma" };
    mesh_node_t *nodes [DEMO_NODES] = { NULL };
    demo_state_t state = { 0 };
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
        while (!all && s_pump (nodes, deadline)) {
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
        while (rc == 0 && state.replies < DEMO_NODES - 1 && s_pump (nodes, deadline))
            ;
        if (rc == 0 && state.replies < DEMO_NODES - 1)
            rc = cli_fail ("demo: only %d of %d answers arrived", state.replies, DEMO_NODES - 1);
    }
    if (rc == 0) {
        printf ("3. leaving: gamma stops, the others see EXIT at once (BYE)\n");
        mesh_node_destroy (&nodes [2]);
        int64_t until = (int64_t) mesh_clock_ms () + 5000;
        while (mesh_node_peer_count (nodes [0]) > 1 && s_pump (nodes, until))
            ;
        if (mesh_node_peer_count (nodes [0]) > 1)
            rc = cli_fail ("demo: alpha did not see gamma leave");
    }
    for (int i = 0; i < DEMO_NODES; i++)
        mesh_node_destroy (&nodes [i]);
    if (rc == 0)
        printf ("meshbus demo: OK\n");
    return rc;
}
