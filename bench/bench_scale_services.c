/*  =========================================================================
    bench_scale_services - request-reply cost as the number of services grows

    Two meshes in one process, each with its own cluster and beacon port:
    "one" has a caller and one provider serving one service (svc.0.0);
    "many" has a caller and P providers serving N services each
    (svc.<p>.<i>). Every provider answers from its own dispatch thread
    with an empty reply. First every service of the many mesh is called
    once (all must answer: none may be refused or unseen). Then rounds of
    COUNT synchronous calls (mesh_call, 100 B) alternate one / many (who
    goes first alternates); the many mesh calls services drawn at random
    (the same sequence every round). Headline: calls/s, medians over the
    rounds, ratio = many / one (1.0 = flat in the number of services).

    Also reported: the time from the first mesh_serve to the caller seeing
    the last service of every provider (announcements travel as deltas),
    and the memory of the many mesh over the one mesh (RSS of this
    process, providers and caller together) per service.

        bench_scale_services [--services N] [--providers P] [--count C]
                             [--rounds R] [--json]

    Defaults: N 10000, P 1, C 20000, R 5.
    ========================================================================= */

#include "bench_mesh.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEET_MS     20000
#define BENCH_MAX_PROVIDERS 1000
#define SEE_MS      180000      //  every service seen by the caller within this

//  One mesh: its caller, provider nodes and the services a round calls
typedef struct {
    bench_mesh_t mesh;
    char **names;
} side_t;

static void
s_serve (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) request; (void) reply; (void) arg;
}

//  Seconds from the first mesh_serve to the caller seeing every
//  provider's last service, or < 0 on failure
static double
s_side_start (side_t *side, const char *label, int salt, size_t provs, size_t services)
{
    char name [64];
    bench_where_t where;
    bench_where (&where, label, salt);
    where.beacon_ms = 100;
    if (bench_mesh_open (&side->mesh, label, &where, "reqrep", "bench-caller",
                         "bench-provider", provs))
        return -1;
    bench_group_t *group = &side->mesh.group;
    mesh_reqrep_t *caller = side->mesh.main.rr;
    for (size_t p = 0; p < provs; p++)
        if (mesh_serve (group->peers [p].rr, "bench.probe", s_serve, NULL))
            return -1;
    if (mesh_reqrep_wait_providers (caller, "bench.probe", provs, MEET_MS)) {
        bench_fail ("%s: the nodes did not meet", label);
        return -1;
    }
    if (bench_group_run (group, true))
        return -1;
    uint64_t start = bench_now_ns ();
    for (size_t p = 0; p < provs; p++)
        for (size_t i = 0; i < services; i++) {
            snprintf (name, sizeof name, "svc.%zu.%zu", p, i);
            if (mesh_serve (group->peers [p].rr, name, s_serve, NULL)) {
                bench_fail ("serve %s: %s", name, mesh_last_error ());
                return -1;
            }
        }
    //  deltas arrive in order: a provider's last service seen means all are
    for (size_t p = 0; p < provs; p++) {
        snprintf (name, sizeof name, "svc.%zu.%zu", p, services - 1);
        if (mesh_reqrep_wait_providers (caller, name, 1, SEE_MS)) {
            bench_fail ("%s: the caller does not see %s", label, name);
            return -1;
        }
    }
    return (bench_now_ns () - start) / 1e9;
}

//  count calls to names: ns, or 0 when one failed (failures counted)
static uint64_t
s_calls (side_t *side, char **names, size_t count, size_t *failed)
{
    char body [100] = { 0 };
    mesh_call_opts_t opts = { .timeout_ms = 5000 };
    *failed = 0;
    uint64_t start = bench_now_ns ();
    for (size_t i = 0; i < count; i++) {
        mesh_msg_t *reply = mesh_call (side->mesh.main.rr, names [i], body, sizeof body, &opts);
        if (!reply && ++*failed <= 3)
            bench_fail ("%s: call %s: %s", side->mesh.label, names [i], mesh_last_error ());
        mesh_msg_destroy (&reply);
    }
    bench_drain (side->mesh.main.node);
    return *failed? 0: bench_now_ns () - start;
}

static uint64_t
s_round (void *arg, size_t count)
{
    size_t failed;
    return s_calls ((side_t *) arg, ((side_t *) arg)->names, count, &failed);
}

int
main (int argc, char **argv)
{
    bench_host.prog = "bench_scale_services";
    size_t services = 10000, provs = 1, count = 20000;
    size_t rounds = 5;
    bool json = false;
    const bench_arg_t flags [] = {
        BENCH_NUM ("services", &services, 1, 1000000), BENCH_NUM ("providers", &provs, 1, BENCH_MAX_PROVIDERS),
        BENCH_NUM ("count", &count, 1, 100000000), BENCH_NUM ("rounds", &rounds, 1, 99),
        BENCH_FLAG ("json", &json), BENCH_ARGS_END
    };
    if (bench_args (argc, argv, flags, "bench_scale_services [--services N] [--providers P] "
                    "[--count C] [--rounds R] [--json]"))
        return 2;
    char name [64];
    char **random_names = (char **) calloc (count, sizeof (char *));
    char **one_names = (char **) calloc (count, sizeof (char *));
    srand (7919);
    for (size_t i = 0; i < count; i++) {
        snprintf (name, sizeof name, "svc.%zu.%zu", (size_t) rand () % provs,
                  (size_t) rand () % services);
        random_names [i] = strdup (name);
        one_names [i] = strdup ("svc.0.0");
    }
    side_t one = { .names = one_names }, many = { .names = random_names };
    double one_setup = s_side_start (&one, "one", 4000, 1, 1);
    long rss_before = bench_rss_kb ();
    double many_setup = one_setup < 0? -1: s_side_start (&many, "many", 4001, provs, services);
    long rss_after = bench_rss_kb ();
    int rc = one_setup < 0 || many_setup < 0;
    //  every service answers once
    size_t total = services * provs, all_failed = 0;
    for (size_t p = 0; !rc && p < provs; p++)
        for (size_t i = 0; i < services; i++) {
            snprintf (name, sizeof name, "svc.%zu.%zu", p, i);
            char *names [1] = { name };
            size_t failed;
            s_calls (&many, names, 1, &failed);
            all_failed += failed;
        }
    if (all_failed) {
        bench_fail ("%zu of %zu services did not answer", all_failed, total);
        rc = 1;
    }
    //  a warm-up round each (caches, routes, links), then alternated rounds
    double lo = 0, hi = 0;
    if (!rc)
        rc = bench_duel ("bench_scale_services", rounds, s_round, &one, s_round, &many, count / 10 + 1, count,
                         &lo, &hi);
    if (!rc) {
        double per_svc = (double) (rss_after - rss_before) * 1024 / (double) total;
        if (json)
            printf ("{\"services\": %zu, \"providers\": %zu, \"count\": %zu, \"rounds\": %zu, "
                    "\"callable\": %zu, \"one\": %.0f, \"many\": %.0f, \"ratio\": %.3f, "
                    "\"setup_s\": %.3f, \"bytes_per_service\": %.0f}\n", services, provs,
                    count, rounds, total, lo, hi, hi / lo, many_setup, per_svc);
        else
            printf ("request-reply, %zu provider(s) x %zu services, %zu calls, %zu rounds\n"
                    "  all %zu services answered a call\n"
                    "  1 service:            %10.0f calls/s (median)\n"
                    "  %zu services:     %10.0f calls/s (median), random ones\n"
                    "  ratio many / one: %.3f\n"
                    "  every service seen by the caller %.3f s after the first mesh_serve\n"
                    "  memory: %.0f bytes per service (providers and caller, RSS)\n",
                    provs, services, count, rounds, total, lo, total, hi, hi / lo,
                    many_setup, per_svc);
    }
    bench_mesh_close (&many.mesh);
    bench_mesh_close (&one.mesh);
    for (size_t i = 0; i < count; i++) {
        free (random_names [i]);
        free (one_names [i]);
    }
    free (random_names);
    free (one_names);
    return rc;
}
