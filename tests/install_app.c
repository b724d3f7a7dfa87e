/*  install_app - a tiny application built against an installed meshbus

    tests/test_install.c copies this file out of the source tree, builds it
    with only what `scons install` put under a prefix (found through
    pkg-config) and runs it. It must need nothing else from the tree.
    Exit 0 when a node could be created, started and stopped.  */

#include <meshbus.h>
#include <stdio.h>
#include <string.h>

int
main (void)
{
    mesh_node_t *node = mesh_node_new ("installed-app");
    if (!node) {
        fprintf (stderr, "mesh_node_new: %s\n", mesh_last_error ());
        return 1;
    }
    //  no beacon: this test must not meet anybody
    if (mesh_node_set_beacon_interval (node, 0) || mesh_node_start (node)) {
        fprintf (stderr, "start: %s\n", mesh_last_error ());
        mesh_node_destroy (&node);
        return 1;
    }
    const char *endpoint = mesh_node_endpoint (node);
    int rc = endpoint && strncmp (endpoint, "tcp://", 6) == 0? 0: 1;
    printf ("meshbus %d.%d.%d node %s at %s\n", MESHBUS_VERSION_MAJOR, MESHBUS_VERSION_MINOR,
            MESHBUS_VERSION_PATCH, mesh_node_id (node), endpoint? endpoint: "(none)");
    if (mesh_node_stop (node))
        rc = 1;
    mesh_node_destroy (&node);
    return rc;
}
