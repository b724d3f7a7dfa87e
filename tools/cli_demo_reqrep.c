/*  meshbus demo, reqrep step - placeholder until the reqrep pattern lands  */
#include "meshbus_cli.h"
#include <stdio.h>

int
cli_demo_reqrep (mesh_node_t **nodes, int count, int64_t deadline)
{
    (void) nodes; (void) count; (void) deadline;
    printf ("4. request-reply: not built yet\n");
    return 0;
}
