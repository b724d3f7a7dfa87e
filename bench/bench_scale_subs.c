/*  =========================================================================
    bench_scale_subs - pub-sub cost as the number of subscriptions grows

    Two meshes in one process, each with its own cluster and beacon port,
    so neither sees the other: "one" has a publisher and N subscriber nodes
    with ONE subscription each (user.#); "many" has a publisher and N
    subscriber nodes with S subscriptions each (user.0.# .. user.<S-1>.#).
    Both publishers send the same COUNT messages of SIZE bytes to
    user.<random i < S>.event, which every subscriber node receives once
    (through one pattern of its S). Subscriptions use MESH_SUB_BLOCK, as
    `meshbus bench pubsub` does: back-pressure, no drop. A round runs from
    the first publish to the moment every subscriber node has COUNT
    messages; rounds alternate one / many (who goes first alternates too).
    Headline: msg/s per subscriber node, medians over the rounds, ratio =
    many / one (1.0 = flat in the number of subscriptions).

    Also reported: the time from the first of the S x N subscriptions to
    the publisher routing the last one (announcements travel as deltas),
    and the memory of the many mesh over the one mesh (RSS of this
    process, both sides: subscriber and publisher) per subscription.

        bench_scale_subs [--subs S] [--nodes N] [--count C] [--rounds R]
                         [--size B] [--json]

    Defaults: S 10000, N 1, C 200000, R 5, B 100.
    ========================================================================= */

#include "meshbus.h"
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MEET_MS     20000       //  nodes meet and routes settle within this
#define ROUND_MS    120000      //  a round that takes longer failed

typedef struct {
    mesh_node_t *node;
    mesh_pubsub_t *pubsub;
    pthread_t thread;
    volatile bool stop;
    volatile uint64_t received;
} sub_node_t;

typedef struct {
    const char *label;
    mesh_node_t *node;
    mesh_pubsub_t *pubsub;
    sub_node_t *subs;
    size_t nodes;
} side_t;

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long
s_rss_kb (void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen ("/proc/self/statm", "r");
    if (f) {
        if (fscanf (f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose (f);
    }
    return resident * (sysconf (_SC_PAGESIZE) / 1024);
}

static void
s_drain_events (mesh_node_t *node)
{
    mesh_event_t *event;
    while ((event = mesh_node_event (node)))
        mesh_event_destroy (&event);
}

static void
s_on_msg (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub; (void) msg;
    sub_node_t *sub = (sub_node_t *) arg;
    __atomic_add_fetch (&sub->received, 1, __ATOMIC_RELAXED);
}

static void *
s_sub_loop (void *arg)
{
    sub_node_t *sub = (sub_node_t *) arg;
    while (!sub->stop) {
        mesh_node_dispatch (sub->node, 100);
        s_drain_events (sub->node);
    }
    return NULL;
}

static mesh_node_t *
s_node (const char *name, const char *cluster, int port)
{
    mesh_node_t *node = mesh_node_new (name);
    if (!node || mesh_node_set_cluster (node, cluster)
    ||  mesh_node_set_beacon_port (node, port) || mesh_node_set_beacon_interval (node, 100)
    ||  mesh_node_start (node)) {
        fprintf (stderr, "bench_scale_subs: %s\n", mesh_last_error ());
        mesh_node_destroy (&node);
    }
    return node;
}

//  A publisher and nodes subscriber nodes with subs subscriptions each
//  (0: one, user.#). Returns seconds from the first subscription to the
//  publisher routing the last, or < 0 on failure.
static double
s_side_start (side_t *side, const char *label, int port, size_t nodes, size_t subs)
{
    char cluster [64], name [64];
    snprintf (cluster, sizeof cluster, "bench-scale-%s-%d", label, (int) getpid ());
    side->label = label;
    side->nodes = nodes;
    side->node = s_node ("bench-pub", cluster, port);
    side->pubsub = side->node? mesh_pubsub_new (side->node): NULL;
    side->subs = (sub_node_t *) calloc (nodes, sizeof (sub_node_t));
    if (!side->pubsub || !side->subs)
        return -1;
    for (size_t n = 0; n < nodes; n++) {
        snprintf (name, sizeof name, "bench-sub-%zu", n + 1);
        side->subs [n].node = s_node (name, cluster, port);
        side->subs [n].pubsub = side->subs [n].node? mesh_pubsub_new (side->subs [n].node): NULL;
        if (!side->subs [n].pubsub)
            return -1;
    }
    //  every node meets the publisher first, so that the time below is
    //  the subscriptions' own
    const char *probe = "bench.probe";
    for (size_t n = 0; n < nodes; n++)
        mesh_subscribe (side->subs [n].pubsub, probe, NULL, s_on_msg, &side->subs [n]);
    for (size_t n = 0; n < nodes; n++)
        if (pthread_create (&side->subs [n].thread, NULL, s_sub_loop, &side->subs [n]))
            return -1;
    if (mesh_pubsub_wait_subscribers (side->pubsub, probe, nodes, MEET_MS)) {
        fprintf (stderr, "bench_scale_subs: %s: the nodes did not meet\n", label);
        return -1;
    }
    mesh_sub_opts_t opts = { .mode = MESH_SUB_BLOCK };
    char pattern [64], last [64];
    double start = s_now ();
    for (size_t n = 0; n < nodes; n++)
        for (size_t i = 0; i < (subs? subs: 1); i++) {
            if (subs)
                snprintf (pattern, sizeof pattern, "user.%zu.#", i);
            else
                snprintf (pattern, sizeof pattern, "user.#");
            if (mesh_subscribe (side->subs [n].pubsub, pattern, &opts, s_on_msg,
                                &side->subs [n]) < 0) {
                fprintf (stderr, "bench_scale_subs: subscribe %s: %s\n", pattern,
                         mesh_last_error ());
                return -1;
            }
        }
    //  deltas arrive in order: the last one routed means all are
    snprintf (last, sizeof last, "user.%zu.event", subs? subs - 1: 0);
    if (mesh_pubsub_wait_subscribers (side->pubsub, last, nodes, MEET_MS * 6)) {
        fprintf (stderr, "bench_scale_subs: %s: the publisher does not route %s to %zu "
                 "nodes\n", label, last, nodes);
        return -1;
    }
    return s_now () - start;
}

static void
s_side_stop (side_t *side)
{
    for (size_t n = 0; side->subs && n < side->nodes; n++)
        side->subs [n].stop = true;
    for (size_t n = 0; side->subs && n < side->nodes; n++) {
        if (side->subs [n].thread)
            pthread_join (side->subs [n].thread, NULL);
        mesh_pubsub_destroy (&side->subs [n].pubsub);
        mesh_node_destroy (&side->subs [n].node);
    }
    free (side->subs);
    mesh_pubsub_destroy (&side->pubsub);
    mesh_node_destroy (&side->node);
}

//  One round: msg/s per subscriber node, 0 on failure
static double
s_round (side_t *side, char **subjects, size_t count, const char *body, size_t size)
{
    uint64_t want [side->nodes];
    for (size_t n = 0; n < side->nodes; n++)
        want [n] = side->subs [n].received + count;
    double start = s_now ();
    for (size_t i = 0; i < count; i++)
        if (mesh_publish (side->pubsub, subjects [i], body, size) < 0) {
            fprintf (stderr, "bench_scale_subs: publish: %s\n", mesh_last_error ());
            return 0;
        }
    for (size_t n = 0; n < side->nodes; n++)
        while (side->subs [n].received < want [n]) {
            if (s_now () - start > ROUND_MS / 1000.0) {
                fprintf (stderr, "bench_scale_subs: %s: node %zu got %llu of %zu\n",
                         side->label, n + 1,
                         (unsigned long long) (side->subs [n].received + count - want [n]),
                         count);
                return 0;
            }
            mesh_node_dispatch (side->node, 0);
            s_drain_events (side->node);
            usleep (200);
        }
    return count / (s_now () - start);
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

static double
s_median (double *v, int n)
{
    qsort (v, (size_t) n, sizeof *v, s_cmp);
    return n % 2? v [n / 2]: (v [n / 2 - 1] + v [n / 2]) / 2;
}

int
main (int argc, char **argv)
{
    size_t subs = 10000, nodes = 1, count = 200000, size = 100;
    int rounds = 5;
    bool json = false;
    static const struct option options [] = {
        { "subs", 1, NULL, 's' }, { "nodes", 1, NULL, 'n' }, { "count", 1, NULL, 'c' },
        { "rounds", 1, NULL, 'r' }, { "size", 1, NULL, 'b' }, { "json", 0, NULL, 'j' },
        { NULL, 0, NULL, 0 }
    };
    for (int opt; (opt = getopt_long (argc, argv, "", options, NULL)) != -1; ) {
        switch (opt) {
            case 's': subs = strtoul (optarg, NULL, 10); break;
            case 'n': nodes = strtoul (optarg, NULL, 10); break;
            case 'c': count = strtoul (optarg, NULL, 10); break;
            case 'r': rounds = atoi (optarg); break;
            case 'b': size = strtoul (optarg, NULL, 10); break;
            case 'j': json = true; break;
            default:
                fprintf (stderr, "usage: bench_scale_subs [--subs S] [--nodes N] [--count C] "
                         "[--rounds R] [--size B] [--json]\n");
                return 2;
        }
    }
    if (subs < 1 || nodes < 1 || count < 1 || rounds < 1 || rounds > 99) {
        fprintf (stderr, "bench_scale_subs: S, N, C >= 1, R in 1..99\n");
        return 2;
    }
    //  the same random subjects for both sides
    char **subjects = (char **) calloc (count, sizeof (char *));
    srand (7919);
    for (size_t i = 0; i < count; i++) {
        char subject [64];
        snprintf (subject, sizeof subject, "user.%zu.event", (size_t) rand () % subs);
        subjects [i] = strdup (subject);
    }
    char *body = (char *) calloc (1, size? size: 1);
    int port = 30000 + (int) (getpid () % 20000);
    side_t one = { 0 }, many = { 0 };
    double one_setup = s_side_start (&one, "one", port, nodes, 0);
    long rss_before = s_rss_kb ();
    double many_setup = one_setup < 0? -1: s_side_start (&many, "many", port + 1, nodes, subs);
    long rss_after = s_rss_kb ();
    int rc = one_setup < 0 || many_setup < 0;
    double one_rates [100], many_rates [100];
    //  a warm-up round each (caches, routes, links), then alternated rounds
    if (!rc && (!s_round (&one, subjects, count / 10 + 1, body, size)
             || !s_round (&many, subjects, count / 10 + 1, body, size)))
        rc = 1;
    for (int r = 0; !rc && r < rounds; r++) {
        side_t *first = r % 2? &many: &one, *second = r % 2? &one: &many;
        double a = s_round (first, subjects, count, body, size);
        double b = a? s_round (second, subjects, count, body, size): 0;
        if (!a || !b)
            rc = 1;
        one_rates [r] = r % 2? b: a;
        many_rates [r] = r % 2? a: b;
    }
    if (!rc) {
        double lo = s_median (one_rates, rounds), hi = s_median (many_rates, rounds);
        double per_sub = (double) (rss_after - rss_before) * 1024 / (double) (subs * nodes);
        if (json)
            printf ("{\"subs\": %zu, \"nodes\": %zu, \"count\": %zu, \"size\": %zu, "
                    "\"rounds\": %d, \"one\": %.0f, \"many\": %.0f, \"ratio\": %.3f, "
                    "\"setup_s\": %.3f, \"bytes_per_sub\": %.0f}\n", subs, nodes, count, size,
                    rounds, lo, hi, hi / lo, many_setup, per_sub);
        else
            printf ("pub-sub, %zu subscriber node(s), %zu B, %zu messages, %d rounds\n"
                    "  1 subscription a node:      %10.0f msg/s per node (median)\n"
                    "  %zu subscriptions a node: %10.0f msg/s per node (median)\n"
                    "  ratio many / one: %.3f\n"
                    "  %zu subscriptions routed by the publisher %.3f s after the first\n"
                    "  memory: %.0f bytes per subscription (both sides, RSS)\n",
                    nodes, size, count, rounds, lo, subs, hi, hi / lo, subs * nodes,
                    many_setup, per_sub);
    }
    s_side_stop (&many);
    s_side_stop (&one);
    for (size_t i = 0; i < count; i++)
        free (subjects [i]);
    free (subjects);
    free (body);
    return rc;
}
