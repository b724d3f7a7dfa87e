/*  =========================================================================
    meshbus demo, step 4: request-reply

    beta and gamma both serve "demo.price"; alpha learns it from their
    announcements and calls it four times: the calls alternate between
    the two (fewest outstanding, round robin among equals). gamma also
    serves "demo.stock", whose handler fails: alpha gets the error text
    back as a reply, not a timeout. Last, alpha calls a service nobody
    offers and is told "no responders" at once. Calls are asynchronous so
    that this one thread can pump all three nodes meanwhile.
    ========================================================================= */

#include "cli.h"
#include <stdio.h>

typedef struct {
    int outcomes;
    int err;
    char text [256];
} demo_call_t;

static void
s_on_price (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) arg;
    char text [128];
    snprintf (text, sizeof text, "%.*s costs 42 at %s", (int) mesh_msg_size (request),
              (const char *) mesh_msg_body (request), mesh_node_name (mesh_reqrep_node (rr)));
    mesh_reply_set (reply, text, strlen (text));
}

static void
s_on_stock (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) request; (void) arg;
    mesh_reply_fail (reply, "stock database is offline");
}

static void
s_on_outcome (mesh_reqrep_t *rr, uint64_t call_id, int err, const char *error,
              const mesh_msg_t *reply, void *arg)
{
    (void) rr; (void) call_id;
    demo_call_t *call = (demo_call_t *) arg;
    call->outcomes++;
    call->err = err;
    if (reply)
        snprintf (call->text, sizeof call->text, "\"%.*s\" from %s", (int) mesh_msg_size (reply),
                  (const char *) mesh_msg_body (reply), mesh_msg_sender_name (reply));
    else
        snprintf (call->text, sizeof call->text, "%s", error? error: mesh_strerror (err));
}

//  One asynchronous call from rr, pumping every node until its outcome
static int
s_call (mesh_reqrep_t *rr, const char *service, const char *body, demo_call_t *call,
        mesh_node_t **nodes, int count, int64_t deadline)
{
    memset (call, 0, sizeof *call);
    mesh_call_opts_t opts = { .timeout_ms = 5000 };
    if (!mesh_call_async (rr, service, body, strlen (body), &opts, s_on_outcome, call)) {
        call->err = mesh_errno ();
        snprintf (call->text, sizeof call->text, "%s", mesh_last_error ());
        return 0;
    }
    while (!call->outcomes && cli_demo_pump (nodes, count, deadline))
        ;
    return call->outcomes? 0: cli_fail ("demo: no outcome for a call to %s in time", service);
}

int
cli_demo_reqrep (mesh_node_t **nodes, int count, int64_t deadline)
{
    if (count < 3)
        return cli_fail ("demo: request-reply needs 3 nodes");
    printf ("4. request-reply: beta and gamma serve demo.price, gamma demo.stock; alpha calls\n");
    mesh_reqrep_t *rr [3] = { NULL };
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        if (!(rr [i] = mesh_reqrep_new (nodes [i])))
            rc = cli_fail ("demo: %s", mesh_last_error ());
    if (rc == 0
    && (mesh_serve (rr [1], "demo.price", s_on_price, NULL)
     || mesh_serve (rr [2], "demo.price", s_on_price, NULL)
     || mesh_serve (rr [2], "demo.stock", s_on_stock, NULL)))
        rc = cli_fail ("demo: serve: %s", mesh_last_error ());
    //  the announcements travel; SERVICE_UP events show them arriving
    while (rc == 0 && (mesh_reqrep_providers (rr [0], "demo.price") < 2
                    || mesh_reqrep_providers (rr [0], "demo.stock") < 1)
       &&  cli_demo_pump (nodes, count, deadline))
        ;
    if (rc == 0 && mesh_reqrep_providers (rr [0], "demo.price") < 2)
        rc = cli_fail ("demo: alpha did not learn both providers of demo.price");
    demo_call_t call;
    static const char *items [] = { "apple", "bread", "cheese", "dates" };
    for (int i = 0; i < 4 && rc == 0; i++) {
        rc = s_call (rr [0], "demo.price", items [i], &call, nodes, count, deadline);
        if (rc == 0 && call.err)
            rc = cli_fail ("demo: call failed: %s", call.text);
        if (rc == 0)
            printf ("  alpha calls demo.price \"%s\" -> %s\n", items [i], call.text);
    }
    if (rc == 0)
        rc = s_call (rr [0], "demo.stock", "apple", &call, nodes, count, deadline);
    if (rc == 0) {
        printf ("  alpha calls demo.stock -> error reply: %s\n", call.text);
        if (call.err != MESH_EREMOTE)
            rc = cli_fail ("demo: expected an error reply, got %s", mesh_strerror (call.err));
    }
    if (rc == 0)
        rc = s_call (rr [0], "demo.nobody", "x", &call, nodes, count, deadline);
    if (rc == 0) {
        printf ("  alpha calls demo.nobody -> %s\n", call.text);
        if (call.err != MESH_ENORESPONDERS)
            rc = cli_fail ("demo: expected no responders, got %s", mesh_strerror (call.err));
    }
    //  request-reply hooks into the nodes: gone before the demo goes on
    for (int i = 0; i < 3; i++)
        mesh_reqrep_destroy (&rr [i]);
    return rc;
}
