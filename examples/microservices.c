/*  =========================================================================
    microservices - a chain of services without a broker:
    gateway -> pricing -> inventory, each its own process

        build/debug/examples/microservices            runs the whole chain:
                                                      starts the three services as
                                                      processes, asks for quotes, stops them
        build/debug/examples/microservices inventory  one service (likewise pricing, gateway)
        build/debug/examples/microservices client ITEM QTY

    shop.inventory  "ITEM"      -> "N"              (units in stock) or an error
    shop.pricing    "ITEM QTY"  -> "ITEM QTY x P = T, N in stock"  (calls inventory)
    shop.quote      "ITEM QTY"  -> "quote: ..."     (calls pricing)

    A handler that calls the next service does it synchronously, inside its
    own handler (dispatch is re-entrant), and passes on what is left of its
    own request's deadline: the whole chain answers within the deadline the
    client set, or fails with a clear reason. An unknown item comes back
    from inventory as an error reply and travels up the chain as the
    text of each hop's error reply.

    Bounded: each service exits after --timeout S (default 60 s); the
    whole-chain mode ends its children by pid. Loopback, cluster
    "shop-example" (or the MESHBUS_EXAMPLE_CLUSTER environment variable).
    ========================================================================= */

#include "meshbus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

typedef struct {
    const char *item;
    int stock;
    int cents;
} product_t;

static const product_t products [] = {
    { "apple", 120, 45 }, { "bread", 8, 250 }, { "cheese", 0, 690 },
};

static const product_t *
s_product (const char *item)
{
    for (size_t i = 0; i < sizeof products / sizeof products [0]; i++)
        if (strcmp (products [i].item, item) == 0)
            return &products [i];
    return NULL;
}

//  The request body as a string
static void
s_body (const mesh_msg_t *msg, char *text, size_t size)
{
    snprintf (text, size, "%.*s", (int) mesh_msg_size (msg), (const char *) mesh_msg_body (msg));
}

//  Call the next hop with what is left of this request's deadline. The
//  reply text into out; false with the reason in out on failure.
static bool
s_next_hop (mesh_reqrep_t *rr, const mesh_msg_t *request, const char *service,
            const char *body, char *out, size_t size)
{
    int64_t left = (int64_t) mesh_msg_deadline (request) - (int64_t) mesh_clock_ms ();
    if (mesh_msg_deadline (request) && left <= 0) {
        snprintf (out, size, "no time left for %s", service);
        return false;
    }
    mesh_call_opts_t opts = { .timeout_ms = mesh_msg_deadline (request)? (int) left: 5000 };
    mesh_msg_t *reply = mesh_call (rr, service, body, strlen (body), &opts);
    if (!reply) {
        snprintf (out, size, "%s: %s", service, mesh_last_error ());
        return false;
    }
    s_body (reply, out, size);
    mesh_msg_destroy (&reply);
    return true;
}

static void
s_inventory (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) arg;
    char item [64], text [64];
    s_body (request, item, sizeof item);
    const product_t *product = s_product (item);
    if (!product) {
        snprintf (text, sizeof text, "unknown item '%s'", item);
        mesh_reply_fail (reply, text);
        return;
    }
    snprintf (text, sizeof text, "%d", product->stock);
    mesh_reply_set (reply, text, strlen (text));
}

static void
s_pricing (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) arg;
    char body [64], item [64], stock [128], text [256];
    int qty = 0;
    s_body (request, body, sizeof body);
    if (sscanf (body, "%63s %d", item, &qty) != 2 || qty < 1) {
        mesh_reply_fail (reply, "pricing wants \"ITEM QTY\"");
        return;
    }
    if (!s_next_hop (rr, request, "shop.inventory", item, stock, sizeof stock)) {
        mesh_reply_fail (reply, stock);
        return;
    }
    const product_t *product = s_product (item);
    int cents = product? product->cents: 0;
    snprintf (text, sizeof text, "%s %d x %d.%02d = %d.%02d, %s in stock", item, qty,
              cents / 100, cents % 100, cents * qty / 100, cents * qty % 100, stock);
    mesh_reply_set (reply, text, strlen (text));
}

static void
s_gateway (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) arg;
    char body [64], price [256], text [300];
    s_body (request, body, sizeof body);
    if (!s_next_hop (rr, request, "shop.pricing", body, price, sizeof price)) {
        mesh_reply_fail (reply, price);
        return;
    }
    snprintf (text, sizeof text, "quote: %s", price);
    mesh_reply_set (reply, text, strlen (text));
}

static const char *
s_cluster (void)
{
    const char *cluster = getenv ("MESHBUS_EXAMPLE_CLUSTER");
    return cluster && *cluster? cluster: "shop-example";
}

static int
s_run_service (const char *role, int timeout_s)
{
    mesh_serve_fn *fn = strcmp (role, "inventory") == 0? s_inventory
                      : strcmp (role, "pricing") == 0? s_pricing: s_gateway;
    char service [32];
    snprintf (service, sizeof service, "shop.%s",
              strcmp (role, "gateway") == 0? "quote": role);
    mesh_node_t *node = mesh_node_new (role);
    mesh_node_set_cluster (node, s_cluster ());
    if (mesh_node_start (node)) {
        fprintf (stderr, "%s: start failed: %s\n", role, mesh_last_error ());
        return 1;
    }
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    if (mesh_serve (rr, service, fn, NULL)) {
        fprintf (stderr, "%s: serve failed: %s\n", role, mesh_last_error ());
        return 1;
    }
    uint64_t until = mesh_clock_ms () + (uint64_t) timeout_s * 1000;
    while (mesh_clock_ms () < until)
        if (mesh_node_dispatch (node, 100) < 0)
            break;
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    return 0;
}

//  Ask the gateway for quotes; returns the number of failures
static int
s_client (int count, char **requests)
{
    mesh_node_t *node = mesh_node_new ("client");
    mesh_node_set_cluster (node, s_cluster ());
    if (mesh_node_start (node))
        return count;
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    int failures = 0;
    for (int i = 0; i < count; i++) {
        //  the first call may come before the gateway is up: wait for it
        mesh_call_opts_t opts = { .timeout_ms = 10000, .wait_for_provider = true };
        mesh_msg_t *reply = mesh_call (rr, "shop.quote", requests [i], strlen (requests [i]), &opts);
        if (reply)
            printf ("%-10s -> %.*s\n", requests [i], (int) mesh_msg_size (reply),
                    (const char *) mesh_msg_body (reply));
        else {
            printf ("%-10s -> failed: %s\n", requests [i], mesh_last_error ());
            failures++;
        }
        mesh_msg_destroy (&reply);
    }
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    return failures;
}

int
main (int argc, char **argv)
{
    if (argc > 1 && (strcmp (argv [1], "inventory") == 0 || strcmp (argv [1], "pricing") == 0
                  || strcmp (argv [1], "gateway") == 0)) {
        int timeout_s = argc > 3 && strcmp (argv [2], "--timeout") == 0? atoi (argv [3]): 60;
        return s_run_service (argv [1], timeout_s);
    }
    if (argc > 3 && strcmp (argv [1], "client") == 0) {
        char request [128];
        snprintf (request, sizeof request, "%s %s", argv [2], argv [3]);
        char *requests [] = { request };
        return s_client (1, requests) == 0? 0: 1;
    }
    if (argc > 1) {
        fprintf (stderr, "usage: microservices [inventory|pricing|gateway [--timeout S] | "
                 "client ITEM QTY]\n");
        return 2;
    }
    //  The whole chain: a cluster of our own, three processes, a client
    char cluster [64];
    snprintf (cluster, sizeof cluster, "shop-%d", (int) getpid ());
    setenv ("MESHBUS_EXAMPLE_CLUSTER", cluster, 1);
    static char *roles [] = { "inventory", "pricing", "gateway" };
    pid_t pids [3];
    for (int i = 0; i < 3; i++) {
        pids [i] = fork ();
        if (pids [i] == 0) {
            execl ("/proc/self/exe", argv [0], roles [i], "--timeout", "30", (char *) NULL);
            _exit (127);
        }
    }
    char *requests [] = { "apple 3", "bread 2", "cheese 1", "durian 1" };
    int failures = s_client (4, requests);
    for (int i = 0; i < 3; i++)
        if (pids [i] > 0) {
            kill (pids [i], SIGTERM);
            waitpid (pids [i], NULL, 0);
        }
    //  "durian" is unknown: its error reply travels up the chain, as expected
    return failures == 1? 0: 1;
}
