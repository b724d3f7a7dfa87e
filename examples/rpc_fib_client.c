/*  =========================================================================
    rpc_fib_client - the RPC client of the seeds: calls rpc.fib by name

    For each argument n (default 30) calls "rpc.fib" and prints the answer.
    Start rpc_fib_server first (see there). A fresh node lets discovery
    settle for about a beacon interval, then fails at once with "no
    responders" if nobody serves rpc.fib; a bad n comes back as the
    server's error text. Then it makes the same calls asynchronously, all
    at once, and gathers the outcomes. Exit 0 when every call was answered.
    Loopback, cluster "rpc-example" (--cluster NAME before the numbers).
    ========================================================================= */

#include "meshbus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int answered = 0, failed = 0;

static void
on_outcome (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
            const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) call_id;
    const char *n = (const char *) arg;
    if (reply) {
        printf ("async: fib(%s) = %.*s (from %s)\n", n, (int) mesh_msg_size (reply),
                (const char *) mesh_msg_body (reply), mesh_msg_sender_name (reply));
        answered++;
    }
    else {
        printf ("async: fib(%s) failed: %s\n", n, error? error: mesh_strerror (err));
        failed++;
    }
}

int
main (int argc, char **argv)
{
    const char *cluster = "rpc-example";
    int first = 1;
    if (argc > 2 && strcmp (argv [1], "--cluster") == 0) {
        cluster = argv [2];
        first = 3;
    }
    static char *defaults [] = { "30" };
    char **numbers = first < argc? argv + first: defaults;
    int count = first < argc? argc - first: 1;

    mesh_node_t *node = mesh_node_new ("fib-client");
    mesh_node_set_cluster (node, cluster);
    if (mesh_node_start (node)) {
        fprintf (stderr, "start failed: %s\n", mesh_last_error ());
        return 1;
    }
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    mesh_call_opts_t opts = { .timeout_ms = 5000 };
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        mesh_msg_t *reply = mesh_call (rr, "rpc.fib", numbers [i], strlen (numbers [i]), &opts);
        if (reply)
            printf ("fib(%s) = %.*s\n", numbers [i], (int) mesh_msg_size (reply),
                    (const char *) mesh_msg_body (reply));
        else {
            //  no responders, timeout, or the server's error text
            fprintf (stderr, "fib(%s) failed: %s\n", numbers [i], mesh_last_error ());
            rc = 1;
        }
        mesh_msg_destroy (&reply);
    }
    for (int i = 0; i < count && rc == 0; i++)
        if (!mesh_call_async (rr, "rpc.fib", numbers [i], strlen (numbers [i]), &opts,
                              on_outcome, numbers [i]))
            failed++;
    uint64_t until = mesh_clock_ms () + 10000;
    while (rc == 0 && answered + failed < count && mesh_clock_ms () < until)
        mesh_node_dispatch (node, 100);
    if (rc == 0 && answered < count)
        rc = 1;
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    return rc;
}
