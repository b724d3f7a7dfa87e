/*  =========================================================================
    direct_messages - two nodes on loopback find each other and talk

    The smallest use of the core API: make nodes, start them, wait for
    ENTER, send a direct message, handle it in a kind handler. Runs in one
    process and stops by itself (exit 0 on success, 1 after 10 s).

        build/debug/examples/direct_messages
    ========================================================================= */

#include "meshbus.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int received = 0;

static void
on_direct (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) arg;
    printf ("%s received '%.*s' (subject %s) from %s\n", mesh_node_name (node),
            (int) mesh_msg_size (msg), (const char *) mesh_msg_body (msg),
            mesh_msg_subject (msg), mesh_msg_sender_name (msg));
    received++;
}

int
main (void)
{
    char cluster [32];
    snprintf (cluster, sizeof cluster, "example-%d", (int) getpid ());
    mesh_node_t *ping = mesh_node_new ("ping");
    mesh_node_t *pong = mesh_node_new ("pong");
    mesh_node_set_cluster (ping, cluster);      //  keep away from other nodes
    mesh_node_set_cluster (pong, cluster);
    mesh_node_on_kind (pong, MESH_KIND_DIRECT, on_direct, NULL);
    if (mesh_node_start (ping) || mesh_node_start (pong)) {
        fprintf (stderr, "start failed: %s\n", mesh_last_error ());
        return 1;
    }
    //  Wait until ping sees pong enter
    mesh_event_t *event = NULL;
    while ((event = mesh_node_wait_event (ping, 10000))) {
        printf ("ping: %s %s\n", mesh_event_name (event), mesh_event_peer_name (event));
        bool entered = mesh_event_type (event) == MESH_EVENT_ENTER;
        char peer [33];
        snprintf (peer, sizeof peer, "%s", mesh_event_peer (event));
        mesh_event_destroy (&event);
        if (entered) {
            const char *text = "hello over the mesh";
            if (mesh_node_whisper (ping, peer, "greeting", text, strlen (text)))
                fprintf (stderr, "send failed: %s\n", mesh_last_error ());
            break;
        }
    }
    //  pong handles what arrived in its own dispatch loop
    for (int i = 0; i < 100 && received == 0; i++)
        mesh_node_dispatch (pong, 100);
    mesh_node_destroy (&ping);
    mesh_node_destroy (&pong);
    return received == 1? 0: 1;
}
