/*  =========================================================================
    notifications - oslo.messaging-style notifications by priority

    What it shows: the OpenStack notification convention without a broker.
    Services (compute, image, volume, identity) emit JSON notifications on
    "notifications.<priority>.<event_type>", priority one of audit, debug,
    info, warn, error, critical, sample. Listeners pick what they want with
    patterns:

        ops/error      notifications.error.#        (a pool of two listeners
        ops/critical   notifications.critical.#      in one node "ops")
        compute        notifications.*.compute.#    every priority, compute only
        metering       notifications.sample.#       samples, for metering

    Each notification goes once to each node with a matching subscription
    (routing at the source), and there to each matching listener. Unlike an
    oslo.messaging listener pool on a broker, the two listeners of "ops" do
    not share one queue: each gets what its own pattern matches (for work
    sharing use a meshbus pipeline). The emitters wait for the listeners
    before they start (no slow-joiner loss), then the program prints the
    counts and checks them against the priority and event type of each
    notification (plain string tests, not the matcher), and that each
    listener got each of its notifications exactly once.

        build/debug/examples/notifications

    Seven nodes in one process, on loopback, in a cluster of their own.
    Exits 0 when every count is right, 1 otherwise; stops by itself.
    ========================================================================= */

#include "meshbus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *service;        //  who emits it (an emitter node)
    const char *priority;
    const char *event_type;
    const char *payload;        //  JSON object
} notification_t;

static const notification_t script [] = {
    { "compute",  "info",     "compute.instance.create.start", "{\"instance_id\": \"i-1\"}" },
    { "image",    "info",     "image.upload",                  "{\"image_id\": \"img-7\", \"size\": 1048576}" },
    { "identity", "audit",    "identity.authenticate",         "{\"user\": \"alice\", \"outcome\": \"success\"}" },
    { "compute",  "info",     "compute.instance.create.end",   "{\"instance_id\": \"i-1\", \"state\": \"active\"}" },
    { "volume",   "info",     "volume.create.end",             "{\"volume_id\": \"v-3\", \"size_gb\": 20}" },
    { "compute",  "sample",   "compute.metrics.update",        "{\"host\": \"cn-4\", \"cpu.percent\": 71.5}" },
    { "volume",   "warn",     "volume.usage.high",             "{\"pool\": \"ssd\", \"used\": 0.91}" },
    { "compute",  "error",    "compute.instance.create.error", "{\"instance_id\": \"i-2\", \"reason\": \"no valid host\"}" },
    { "image",    "error",    "image.upload",                  "{\"image_id\": \"img-8\", \"reason\": \"checksum\"}" },
    { "identity", "info",     "identity.user.created",         "{\"user\": \"bob\"}" },
    { "compute",  "debug",    "compute.instance.power_state",  "{\"instance_id\": \"i-1\", \"power\": 1}" },
    { "volume",   "critical", "volume.backend.down",           "{\"backend\": \"ceph-a\"}" },
    { "image",    "sample",   "image.send",                    "{\"bytes_sent\": 52428800}" },
    { "compute",  "warn",     "compute.instance.resize.prep",  "{\"instance_id\": \"i-1\"}" },
    { "identity", "error",    "identity.authenticate",         "{\"user\": \"mallory\", \"outcome\": \"failure\"}" },
    { "compute",  "critical", "compute.service.down",          "{\"host\": \"cn-9\"}" },
    { "volume",   "sample",   "volume.usage",                  "{\"volume_id\": \"v-3\", \"gb\": 12}" },
    { "compute",  "audit",    "compute.instance.exists",       "{\"instance_id\": \"i-1\"}" },
    { "volume",   "error",    "volume.attach.error",           "{\"volume_id\": \"v-3\", \"instance_id\": \"i-2\"}" },
    { "identity", "critical", "identity.token.revoke.failed",  "{\"reason\": \"db down\"}" },
    { "compute",  "sample",   "compute.metrics.update",        "{\"host\": \"cn-4\", \"cpu.percent\": 12.0}" },
};
#define SCRIPT ((int) (sizeof script / sizeof script [0]))

static const char *services [] = { "compute", "image", "volume", "identity" };
#define SERVICES 4

//  A listener: one subscription, and the rule it should follow written as
//  plain string tests
typedef struct {
    const char *name;
    const char *pattern;
    const char *priority;       //  wants this priority (NULL = any)
    const char *event_prefix;   //  wants event types starting so (NULL = any)
    int node;                   //  index into the listener nodes
    int got [SCRIPT];           //  deliveries per notification
    int total;
} listener_t;

static listener_t listeners [] = {
    { .name = "ops/error",    .pattern = "notifications.error.#",     .priority = "error",    .node = 0 },
    { .name = "ops/critical", .pattern = "notifications.critical.#",  .priority = "critical", .node = 0 },
    { .name = "compute",      .pattern = "notifications.*.compute.#", .event_prefix = "compute.", .node = 1 },
    { .name = "metering",     .pattern = "notifications.sample.#",    .priority = "sample",   .node = 2 },
};
#define LISTENERS ((int) (sizeof listeners / sizeof listeners [0]))
static const char *listener_nodes [] = { "ops", "compute-watch", "metering" };
#define LISTENER_NODES 3

static bool
wants (const listener_t *l, const notification_t *n)
{
    return (!l->priority || strcmp (l->priority, n->priority) == 0)
        && (!l->event_prefix || strncmp (n->event_type, l->event_prefix, strlen (l->event_prefix)) == 0);
}

static void
on_notification (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    listener_t *self = (listener_t *) arg;
    //  the body is JSON; the script index is its "message_id"
    char body [512];
    snprintf (body, sizeof body, "%.*s", (int) mesh_msg_size (msg), (const char *) mesh_msg_body (msg));
    const char *at = strstr (body, "\"message_id\": ");
    int index = at? atoi (at + 14): -1;
    const char *publisher = mesh_msg_header (msg, "publisher_id");
    printf ("  %-13s %-51s from %s, %s\n", self->name, mesh_msg_subject (msg),
            publisher? publisher: "?", mesh_msg_ctype (msg));
    if (index >= 0 && index < SCRIPT)
        self->got [index]++;
    self->total++;
}

static int
emit (mesh_pubsub_t *emitter, int index)
{
    const notification_t *n = &script [index];
    char subject [MESH_MAX_SUBJECT + 1], body [512], publisher [64];
    snprintf (subject, sizeof subject, "notifications.%s.%s", n->priority, n->event_type);
    snprintf (publisher, sizeof publisher, "%s.host-1", n->service);
    int size = snprintf (body, sizeof body,
                         "{\"message_id\": %d, \"publisher_id\": \"%s\", \"event_type\": \"%s\", "
                         "\"priority\": \"%s\", \"timestamp\": %llu, \"payload\": %s}",
                         index, publisher, n->event_type, n->priority,
                         (unsigned long long) mesh_clock_ms (), n->payload);
    //  oslo puts the priority in upper case in the body; the subject keeps
    //  it in lower case, the way oslo names its topics
    for (char *c = strstr (body, "\"priority\": \"") + 13; *c != '"'; c++)
        *c = (char) (*c - 'a' + 'A');
    const char *headers [] = { "publisher_id", publisher };
    mesh_head_t head = { .subject = subject, .ctype = "application/json",
                         .headers = headers, .header_count = 1 };
    return mesh_publish_ex (emitter, &head, body, (size_t) size);
}

static int
pump (mesh_node_t **nodes, int count)
{
    int loss = 0;
    for (int i = 0; i < count; i++) {
        mesh_node_dispatch (nodes [i], 1);
        mesh_event_t *event;
        while ((event = mesh_node_event (nodes [i]))) {
            if (mesh_event_type (event) >= MESH_EVENT_PATTERN) {
                printf ("  %s: event %s %llu\n", mesh_node_name (nodes [i]),
                        mesh_event_name (event), (unsigned long long) mesh_event_count (event));
                loss++;
            }
            mesh_event_destroy (&event);
        }
    }
    return loss;
}

int
main (void)
{
    char cluster [64];
    snprintf (cluster, sizeof cluster, "notifications-%d-%llu", (int) getpid (),
              (unsigned long long) (mesh_clock_ms () % 1000000));
    mesh_node_t *nodes [LISTENER_NODES + SERVICES] = { NULL };
    mesh_pubsub_t *pubsubs [LISTENER_NODES + SERVICES] = { NULL };
    int node_count = LISTENER_NODES + SERVICES, rc = 0;
    for (int i = 0; i < node_count; i++) {
        nodes [i] = mesh_node_new (i < LISTENER_NODES? listener_nodes [i]: services [i - LISTENER_NODES]);
        pubsubs [i] = mesh_pubsub_new (nodes [i]);
        if (mesh_node_set_cluster (nodes [i], cluster))
            rc = 1;
    }
    for (int i = 0; i < LISTENERS; i++)
        if (mesh_subscribe (pubsubs [listeners [i].node], listeners [i].pattern, NULL,
                            on_notification, &listeners [i]) < 0)
            rc = 1;
    for (int i = 0; i < node_count && rc == 0; i++)
        if (mesh_node_start (nodes [i]))
            rc = 1;
    if (rc)
        fprintf (stderr, "notifications: setup: %s\n", mesh_last_error ());

    //  Each service waits until it knows every listener node: a subject
    //  that only each one's patterns match stands for it
    const char *probes [LISTENER_NODES] = {
        "notifications.error.probe", "notifications.info.compute.probe", "notifications.sample.probe"
    };
    int64_t deadline = (int64_t) mesh_clock_ms () + 10000;
    bool ready = false;
    while (rc == 0 && !ready && (int64_t) mesh_clock_ms () < deadline) {
        pump (nodes, node_count);
        ready = true;
        for (int s = LISTENER_NODES; s < node_count; s++)
            for (int p = 0; p < LISTENER_NODES; p++)
                ready = ready && mesh_pubsub_subscribers (pubsubs [s], probes [p]) >= 1;
    }
    if (rc == 0 && !ready) {
        fprintf (stderr, "notifications: listeners not known to every service within 10 s\n");
        rc = 1;
    }
    int loss = 0;
    if (rc == 0) {
        printf ("%d services emit %d notifications; listeners print what they get:\n",
                SERVICES, SCRIPT);
        for (int i = 0; i < SCRIPT && rc == 0; i++) {
            int emitter = LISTENER_NODES;
            while (strcmp (services [emitter - LISTENER_NODES], script [i].service))
                emitter++;
            int sent = emit (pubsubs [emitter], i);
            if (sent < 0) {
                fprintf (stderr, "notifications: publish: %s\n", mesh_last_error ());
                rc = 1;
            }
            else
            if (sent == 0)      //  routing at the source: nothing left the emitter
                printf ("  %-13s notifications.%s.%s\n", "(no listener)", script [i].priority,
                        script [i].event_type);
            loss += pump (nodes, node_count);
        }
        //  until every listener has its share, then a little more for extras
        deadline = (int64_t) mesh_clock_ms () + 5000;
        bool done = false;
        while (!done && (int64_t) mesh_clock_ms () < deadline) {
            loss += pump (nodes, node_count);
            done = true;
            for (int l = 0; l < LISTENERS; l++) {
                int expected = 0;
                for (int i = 0; i < SCRIPT; i++)
                    expected += wants (&listeners [l], &script [i]);
                done = done && listeners [l].total >= expected;
            }
        }
        int64_t settle = (int64_t) mesh_clock_ms () + 300;
        while ((int64_t) mesh_clock_ms () < settle)
            loss += pump (nodes, node_count);
    }
    if (rc == 0) {
        static const char *priorities [] = {
            "audit", "debug", "info", "warn", "error", "critical", "sample"
        };
        printf ("emitted by priority:");
        for (int p = 0; p < 7; p++) {
            int count = 0;
            for (int i = 0; i < SCRIPT; i++)
                count += strcmp (script [i].priority, priorities [p]) == 0;
            printf (" %s %d", priorities [p], count);
        }
        printf ("\n%-13s %-27s %5s %9s\n", "listener", "pattern", "got", "expected");
        for (int l = 0; l < LISTENERS; l++) {
            listener_t *self = &listeners [l];
            int expected = 0;
            bool exact = true;
            for (int i = 0; i < SCRIPT; i++) {
                expected += wants (self, &script [i]);
                exact = exact && self->got [i] == (wants (self, &script [i])? 1: 0);
            }
            printf ("%-13s %-27s %5d %9d  %s\n", self->name, self->pattern, self->total,
                    expected, exact && self->total == expected? "ok": "WRONG");
            if (!exact || self->total != expected)
                rc = 1;
        }
        if (loss) {
            printf ("%d loss event(s) on loopback: unexpected\n", loss);
            rc = 1;
        }
    }
    for (int i = 0; i < node_count; i++)
        mesh_pubsub_destroy (&pubsubs [i]);
    for (int i = 0; i < node_count; i++)
        mesh_node_destroy (&nodes [i]);
    printf ("notifications: %s\n", rc == 0? "OK": "FAILED");
    return rc;
}
