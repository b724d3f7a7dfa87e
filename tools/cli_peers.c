/*  meshbus peers - watch peer events; with --expect, wait for K peers  */

#include "meshbus_cli.h"
#include <stdio.h>
#include <stdlib.h>

void
cli_print_event (const mesh_event_t *event)
{
    const char *detail = mesh_event_detail (event);
    printf ("%s %s %s %s%s%s\n", mesh_event_name (event), mesh_event_peer_name (event),
            mesh_event_peer (event), mesh_event_endpoint (event),
            *detail? " ": "", detail);
}

int
cli_peers (cli_opts_t *opts, int argc, char **argv)
{
    const char *expect_arg = cli_take (&argc, argv, "--expect");
    const char *timeout_arg = cli_take (&argc, argv, "--timeout");
    if (cli_no_extra (argc, argv, 0))
        return 2;
    long expect = -1;
    if (expect_arg) {
        char *end;
        expect = strtol (expect_arg, &end, 10);
        if (*end || expect < 0)
            return cli_fail ("--expect: '%s' is not a count", expect_arg);
    }
    double timeout = -1;
    if (timeout_arg && cli_seconds (timeout_arg, &timeout))
        return 2;
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node)
        return 1;
    int64_t deadline = timeout < 0? -1: (int64_t) (mesh_clock_ms () + timeout * 1000);
    int rc = -1;
    //  Peers alive as the printed events tell. The table alone is not
    //  enough: a peer that entered and already said BYE (it had its own
    //  --expect met) is gone from it, yet it was alive, and we printed so.
    long entered = 0;
    while (rc < 0 && !cli_interrupted ()) {
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
