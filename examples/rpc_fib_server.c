/*  =========================================================================
    rpc_fib_server - the RPC server of the seeds: Fibonacci numbers by name

    Serves "rpc.fib": the request's body is n in decimal (0..93), the reply
    fib(n) in decimal. Anything else is an error reply with a message, which
    the caller gets as MESH_EREMOTE (not as a timeout). Run one or several
    (calls are spread over them), then rpc_fib_client:

        build/debug/examples/rpc_fib_server &
        build/debug/examples/rpc_fib_client 10 30 90

    Bounded: exits after --count N requests (default: never) or --timeout S
    seconds (default 60). Loopback, cluster "rpc-example" (--cluster NAME).
    ========================================================================= */

#include "meshbus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long served = 0;

static void
on_fib (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) arg;
    served++;
    char text [32];
    size_t size = mesh_msg_size (request);
    if (size == 0 || size >= sizeof text) {
        mesh_reply_fail (reply, "the body must be a number n in 0..93");
        return;
    }
    memcpy (text, mesh_msg_body (request), size);
    text [size] = 0;
    char *end;
    long n = strtol (text, &end, 10);
    if (*end || n < 0 || n > 93) {
        mesh_reply_fail (reply, "the body must be a number n in 0..93");
        return;
    }
    uint64_t a = 0, b = 1;
    for (long i = 0; i < n; i++) {
        uint64_t next = a + b;
        a = b;
        b = next;
    }
    snprintf (text, sizeof text, "%llu", (unsigned long long) a);
    mesh_reply_set (reply, text, strlen (text));
    printf ("fib(%ld) = %s for %s\n", n, text, mesh_msg_sender_name (request));
    fflush (stdout);
}

int
main (int argc, char **argv)
{
    const char *cluster = "rpc-example";
    long count = -1;
    int timeout_s = 60;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp (argv [i], "--count") == 0)
            count = atol (argv [i + 1]);
        else if (strcmp (argv [i], "--timeout") == 0)
            timeout_s = atoi (argv [i + 1]);
        else if (strcmp (argv [i], "--cluster") == 0)
            cluster = argv [i + 1];
    }
    mesh_node_t *node = mesh_node_new ("fib-server");
    mesh_node_set_cluster (node, cluster);
    if (mesh_node_start (node)) {
        fprintf (stderr, "start failed: %s\n", mesh_last_error ());
        return 1;
    }
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    if (mesh_serve (rr, "rpc.fib", on_fib, NULL)) {
        fprintf (stderr, "serve failed: %s\n", mesh_last_error ());
        return 1;
    }
    printf ("serving rpc.fib in cluster %s\n", cluster);
    fflush (stdout);
    uint64_t until = mesh_clock_ms () + (uint64_t) timeout_s * 1000;
    while ((count < 0 || served < count) && mesh_clock_ms () < until)
        mesh_node_dispatch (node, 100);
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    return 0;
}
