/*  meshbus demo, pipeline step - placeholder until the pipeline pattern lands  */
#include "meshbus_cli.h"
#include <stdio.h>

int
cli_demo_pipeline (mesh_node_t **nodes, int count, int64_t deadline)
{
    (void) nodes; (void) count; (void) deadline;
    printf ("5. pipeline: not built yet\n");
    return 0;
}
