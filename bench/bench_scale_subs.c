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

#include "bench_mesh.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEET_MS     20000       //  nodes meet and routes settle within this
#define ROUND_MS    120000      //  a round that takes longer failed

//  One mesh: its publisher, subscriber nodes and what each received
typedef struct {
    bench_mesh_t mesh;
    volatile uint64_t *received;        //  one per subscriber node (its thread)
    char **subjects;                    //  what a round publishes, in order
    const char *body;
    size_t size;
} side_t;

typedef struct {
    side_t *side;
    size_t node;
} sub_arg_t;

static void
s_on_msg (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub; (void) msg;
    sub_arg_t *sub = (sub_arg_t *) arg;
    __atomic_add_fetch (&sub->side->received [sub->node], 1, __ATOMIC_RELAXED);
}

//  A publisher and nodes subscriber nodes with subs subscriptions each
//  (0: one, user.#). Returns seconds from the first subscription to the
//  publisher routing the last, or < 0 on failure.
static double
s_side_start (side_t *side, const char *label, int salt, size_t nodes, size_t subs,
              sub_arg_t *args)
{
    bench_where_t where;
    bench_where (&where, label, salt);
    where.beacon_ms = 100;
    side->received = (volatile uint64_t *) calloc (nodes, sizeof (uint64_t));
    if (!side->received
    ||  bench_mesh_open (&side->mesh, label, &where, "pubsub", "bench-pub", "bench-sub", nodes))
        return -1;
    bench_group_t *group = &side->mesh.group;
    mesh_pubsub_t *pub = side->mesh.main.pubsub;
    //  every node meets the publisher first, so that the time below is
    //  the subscriptions' own
    const char *probe = "bench.probe";
    for (size_t n = 0; n < nodes; n++) {
        args [n] = (sub_arg_t) { side, n };
        mesh_subscribe (group->peers [n].pubsub, probe, NULL, s_on_msg, &args [n]);
    }
    if (bench_group_run (group, true))
        return -1;
    if (mesh_pubsub_wait_subscribers (pub, probe, nodes, MEET_MS)) {
        bench_fail ("%s: the nodes did not meet", label);
        return -1;
    }
    mesh_sub_opts_t opts = { .mode = MESH_SUB_BLOCK };
    char pattern [64], last [64];
    uint64_t start = bench_now_ns ();
    for (size_t n = 0; n < nodes; n++)
        for (size_t i = 0; i < (subs? subs: 1); i++) {
            if (subs)
                snprintf (pattern, sizeof pattern, "user.%zu.#", i);
            else
                snprintf (pattern, sizeof pattern, "user.#");
            if (mesh_subscribe (group->peers [n].pubsub, pattern, &opts, s_on_msg,
                                &args [n]) < 0) {
                bench_fail ("subscribe %s: %s", pattern, mesh_last_error ());
                return -1;
            }
        }
    //  deltas arrive in order: the last one routed means all are
    snprintf (last, sizeof last, "user.%zu.event", subs? subs - 1: 0);
    if (mesh_pubsub_wait_subscribers (pub, last, nodes, MEET_MS * 6)) {
        bench_fail ("%s: the publisher does not route %s to %zu nodes", label, last, nodes);
        return -1;
    }
    return (bench_now_ns () - start) / 1e9;
}

//  One round: ns until every subscriber node had count, 0 on failure
static uint64_t
s_round (void *arg, size_t count)
{
    side_t *side = (side_t *) arg;
    size_t nodes = side->mesh.group.count;
    uint64_t want [nodes];
    for (size_t n = 0; n < nodes; n++)
        want [n] = side->received [n] + count;
    uint64_t start = bench_now_ns ();
    for (size_t i = 0; i < count; i++)
        if (mesh_publish (side->mesh.main.pubsub, side->subjects [i], side->body,
                          side->size) < 0)
            return bench_fail ("publish: %s", mesh_last_error ()), 0;
    for (size_t n = 0; n < nodes; n++)
        while (side->received [n] < want [n]) {
            if (bench_now_ns () - start > ROUND_MS * 1000000ull)
                return bench_fail ("%s: node %zu got %llu of %zu", side->mesh.label, n + 1,
                                   (unsigned long long) (side->received [n] + count - want [n]),
                                   count), 0;
            mesh_node_dispatch (side->mesh.main.node, 0);
            bench_drain (side->mesh.main.node);
            usleep (200);
        }
    return bench_now_ns () - start;
}

int
main (int argc, char **argv)
{
    bench_host.prog = "bench_scale_subs";
    size_t subs = 10000, nodes = 1, count = 200000, size = 100;
    size_t rounds = 5;
    bool json = false;
    const bench_arg_t flags [] = {
        BENCH_NUM ("subs", &subs, 1, 1000000), BENCH_NUM ("nodes", &nodes, 1, 1000),
        BENCH_NUM ("count", &count, 1, 100000000), BENCH_NUM ("rounds", &rounds, 1, 99),
        BENCH_NUM ("size", &size, 0, 16 * 1024 * 1024), BENCH_FLAG ("json", &json), BENCH_ARGS_END
    };
    if (bench_args (argc, argv, flags, "bench_scale_subs [--subs S] [--nodes N] [--count C] "
                    "[--rounds R] [--size B] [--json]"))
        return 2;
    //  the same random subjects for both sides
    char **subjects = (char **) calloc (count, sizeof (char *));
    srand (7919);
    for (size_t i = 0; i < count; i++) {
        char subject [64];
        snprintf (subject, sizeof subject, "user.%zu.event", (size_t) rand () % subs);
        subjects [i] = strdup (subject);
    }
    char *body = (char *) calloc (1, size? size: 1);
    side_t one = { .subjects = subjects, .body = body, .size = size };
    side_t many = one;
    sub_arg_t *args = (sub_arg_t *) calloc (2 * nodes, sizeof (sub_arg_t));
    double one_setup = s_side_start (&one, "one", 0, nodes, 0, args);
    long rss_before = bench_rss_kb ();
    double many_setup = one_setup < 0? -1: s_side_start (&many, "many", 1, nodes, subs,
                                                         args + nodes);
    long rss_after = bench_rss_kb ();
    int rc = one_setup < 0 || many_setup < 0;
    //  a warm-up round each (caches, routes, links), then alternated rounds
    double lo = 0, hi = 0;
    if (!rc)
        rc = bench_duel ("bench_scale_subs", rounds, s_round, &one, s_round, &many, count / 10 + 1, count,
                         &lo, &hi);
    if (!rc) {
        double per_sub = (double) (rss_after - rss_before) * 1024 / (double) (subs * nodes);
        if (json)
            printf ("{\"subs\": %zu, \"nodes\": %zu, \"count\": %zu, \"size\": %zu, "
                    "\"rounds\": %zu, \"one\": %.0f, \"many\": %.0f, \"ratio\": %.3f, "
                    "\"setup_s\": %.3f, \"bytes_per_sub\": %.0f}\n", subs, nodes, count, size,
                    rounds, lo, hi, hi / lo, many_setup, per_sub);
        else
            printf ("pub-sub, %zu subscriber node(s), %zu B, %zu messages, %zu rounds\n"
                    "  1 subscription a node:      %10.0f msg/s per node (median)\n"
                    "  %zu subscriptions a node: %10.0f msg/s per node (median)\n"
                    "  ratio many / one: %.3f\n"
                    "  %zu subscriptions routed by the publisher %.3f s after the first\n"
                    "  memory: %.0f bytes per subscription (both sides, RSS)\n",
                    nodes, size, count, rounds, lo, subs, hi, hi / lo, subs * nodes,
                    many_setup, per_sub);
    }
    bench_mesh_close (&many.mesh);
    bench_mesh_close (&one.mesh);
    free ((void *) many.received);
    free ((void *) one.received);
    free (args);
    for (size_t i = 0; i < count; i++)
        free (subjects [i]);
    free (subjects);
    free (body);
    return rc;
}
