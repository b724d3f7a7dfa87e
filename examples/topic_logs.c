/*  =========================================================================
    topic_logs - routing logs by "<facility>.<severity>" (topic exchange)

    What it shows: the RabbitMQ "topics" tutorial without a broker. An
    emitter publishes log lines on subjects "<facility>.<severity>" (and a
    few odd ones: one token, three tokens). Three receivers subscribe with
    wildcard patterns, where "*" is exactly one token and "#" is zero or
    more:

        critical    *.critical      every critical line, whatever the facility
        kernel      kern.#          everything from the kernel, "kern" itself too
        everything  #               all of it

    The four nodes run in one process, on loopback, in a cluster of their
    own. The emitter waits until all three subscriptions have reached it
    (routing happens at the source: a publisher only sends to peers whose
    patterns match), publishes, and each receiver prints what it got. The
    program then checks that each receiver got exactly the lines topic
    semantics gives it, once each, in publishing order.

        build/debug/examples/topic_logs

    Exits 0 when every receiver got exactly its lines, 1 otherwise; it stops
    by itself within about 15 s in the worst case.
    ========================================================================= */

#include "meshbus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECEIVERS   3
#define MAX_LINES   32

//  A log line and, written out by hand, which receivers topic semantics
//  sends it to: critical (*.critical), kernel (kern.#), everything (#).
typedef struct {
    const char *subject;
    const char *text;
    bool to [RECEIVERS];
} log_line_t;

static const log_line_t lines [] = {
    { "kern.critical",      "A critical kernel error",        { true,  true,  true } },
    { "kern.info",          "eth0 link up",                   { false, true,  true } },
    { "auth.error",         "login failed for root",          { false, false, true } },
    { "cron.warning",       "job took 61 s",                  { false, false, true } },
    { "auth.critical",      "password file changed",          { true,  false, true } },
    { "kern",               "kernel, no severity (# = 0 tokens)", { false, true, true } },
    { "kern.disk.error",    "sda: I/O error (# = 2 tokens)",  { false, true,  true } },
    { "app.db.critical",    "3 tokens: * takes exactly 1",    { false, false, true } },
    { "mail.critical",      "queue full",                     { true,  false, true } },
    { "kern.warning",       "CPU hot",                        { false, true,  true } },
};
#define LINE_COUNT (sizeof lines / sizeof lines [0])

typedef struct {
    const char *name;
    const char *pattern;
    mesh_node_t *node;
    mesh_pubsub_t *pubsub;
    size_t got [MAX_LINES];     //  index into lines[] of each delivery, in order
    size_t count;
    bool bad;                   //  got something that is not a known line
} receiver_t;

static void
on_log (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    receiver_t *self = (receiver_t *) arg;
    printf ("  [%-10s %-12s] %-16s %.*s\n", self->name, self->pattern, mesh_msg_subject (msg),
            (int) mesh_msg_size (msg), (const char *) mesh_msg_body (msg));
    size_t index = LINE_COUNT;
    for (size_t i = 0; i < LINE_COUNT; i++)
        if (strcmp (lines [i].subject, mesh_msg_subject (msg)) == 0)
            index = i;
    if (index == LINE_COUNT || self->count == MAX_LINES)
        self->bad = true;
    else
        self->got [self->count++] = index;
}

static size_t
expected_count (int receiver)
{
    size_t count = 0;
    for (size_t i = 0; i < LINE_COUNT; i++)
        count += lines [i].to [receiver];
    return count;
}

//  Run every node's handlers once; report pub-sub events (GAP...), which
//  should not happen here.
static int
pump (mesh_node_t **nodes, int count)
{
    int events = 0;
    for (int i = 0; i < count; i++) {
        mesh_node_dispatch (nodes [i], 2);
        mesh_event_t *event;
        while ((event = mesh_node_event (nodes [i]))) {
            if (mesh_event_type (event) >= MESH_EVENT_PATTERN) {
                printf ("  %s: event %s %llu\n", mesh_node_name (nodes [i]),
                        mesh_event_name (event), (unsigned long long) mesh_event_count (event));
                events++;
            }
            mesh_event_destroy (&event);
        }
    }
    return events;
}

int
main (void)
{
    char cluster [64];
    snprintf (cluster, sizeof cluster, "topic-logs-%d-%llu", (int) getpid (),
              (unsigned long long) (mesh_clock_ms () % 1000000));
    receiver_t receivers [RECEIVERS] = {
        { .name = "critical",   .pattern = "*.critical" },
        { .name = "kernel",     .pattern = "kern.#" },
        { .name = "everything", .pattern = "#" },
    };
    mesh_node_t *nodes [RECEIVERS + 1] = { NULL };
    int rc = 0;

    //  Receivers subscribe before they start, so their first HELLO already
    //  carries the subscription.
    for (int i = 0; i < RECEIVERS && rc == 0; i++) {
        receiver_t *r = &receivers [i];
        r->node = nodes [i] = mesh_node_new (r->name);
        r->pubsub = mesh_pubsub_new (r->node);
        if (mesh_node_set_cluster (r->node, cluster)
        ||  mesh_subscribe (r->pubsub, r->pattern, NULL, on_log, r) < 0
        ||  mesh_node_start (r->node)) {
            fprintf (stderr, "topic_logs: %s: %s\n", r->name, mesh_last_error ());
            rc = 1;
        }
    }
    mesh_node_t *emitter_node = nodes [RECEIVERS] = mesh_node_new ("emitter");
    mesh_pubsub_t *emitter = mesh_pubsub_new (emitter_node);
    if (rc == 0 && (mesh_node_set_cluster (emitter_node, cluster)
                 || mesh_node_start (emitter_node))) {
        fprintf (stderr, "topic_logs: emitter: %s\n", mesh_last_error ());
        rc = 1;
    }

    //  All three patterns match kern.critical: once it has 3 subscribers,
    //  the emitter knows every receiver's subscription.
    if (rc == 0) {
        printf ("emitter: waiting for 3 subscribers of kern.critical\n");
        int64_t deadline = (int64_t) mesh_clock_ms () + 10000;
        while (mesh_pubsub_subscribers (emitter, "kern.critical") < RECEIVERS
           &&  (int64_t) mesh_clock_ms () < deadline)
            pump (nodes, RECEIVERS + 1);
        if (mesh_pubsub_subscribers (emitter, "kern.critical") < RECEIVERS) {
            fprintf (stderr, "topic_logs: receivers not seen within 10 s\n");
            rc = 1;
        }
    }
    int events = 0;
    if (rc == 0) {
        for (size_t i = 0; i < LINE_COUNT; i++) {
            int sent = mesh_publish (emitter, lines [i].subject, lines [i].text,
                                     strlen (lines [i].text));
            printf ("emitter: %-16s -> %d receiver(s)\n", lines [i].subject, sent);
            if (sent < 0) {
                fprintf (stderr, "topic_logs: publish: %s\n", mesh_last_error ());
                rc = 1;
            }
        }
        //  Wait for the expected deliveries, then a little longer so that
        //  anything extra (which would be a bug) shows up too.
        int64_t deadline = (int64_t) mesh_clock_ms () + 5000;
        bool done = false;
        while (!done && (int64_t) mesh_clock_ms () < deadline) {
            events += pump (nodes, RECEIVERS + 1);
            done = true;
            for (int r = 0; r < RECEIVERS; r++)
                done = done && receivers [r].count >= expected_count (r);
        }
        int64_t settle = (int64_t) mesh_clock_ms () + 300;
        while ((int64_t) mesh_clock_ms () < settle)
            events += pump (nodes, RECEIVERS + 1);
    }

    //  Check: each receiver got exactly its lines, once, in order
    if (rc == 0) {
        printf ("check:\n");
        for (int r = 0; r < RECEIVERS; r++) {
            receiver_t *self = &receivers [r];
            size_t next = 0;
            bool ok = !self->bad;
            for (size_t i = 0; i < LINE_COUNT && ok; i++)
                if (lines [i].to [r])
                    ok = next < self->count && self->got [next++] == i;
            ok = ok && next == self->count;
            printf ("  %-10s %-12s got %zu, expected %zu: %s\n", self->name, self->pattern,
                    self->count, expected_count (r), ok? "ok": "WRONG");
            if (!ok)
                rc = 1;
        }
        if (events) {
            printf ("  %d pub-sub event(s) (loss) on loopback: unexpected\n", events);
            rc = 1;
        }
    }
    //  Pub-sub first (it hooks into its node), then the nodes
    for (int i = 0; i < RECEIVERS; i++)
        mesh_pubsub_destroy (&receivers [i].pubsub);
    mesh_pubsub_destroy (&emitter);
    for (int i = 0; i <= RECEIVERS; i++)
        mesh_node_destroy (&nodes [i]);
    printf ("topic_logs: %s\n", rc == 0? "OK": "FAILED");
    return rc;
}
