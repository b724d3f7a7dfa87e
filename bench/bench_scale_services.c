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

#include "meshbus.h"
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MEET_MS     20000
#define SEE_MS      180000      //  every service seen by the caller within this

typedef struct {
    mesh_node_t *node;
    mesh_reqrep_t *rr;
    pthread_t thread;
    volatile bool stop;
} provider_t;

typedef struct {
    const char *label;
    mesh_node_t *node;
    mesh_reqrep_t *rr;
    provider_t *provs;
    size_t count;
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
s_serve (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) request; (void) reply; (void) arg;
}

static void *
s_provider_loop (void *arg)
{
    provider_t *prov = (provider_t *) arg;
    while (!prov->stop) {
        mesh_node_dispatch (prov->node, 100);
        s_drain_events (prov->node);
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
        fprintf (stderr, "bench_scale_services: %s\n", mesh_last_error ());
        mesh_node_destroy (&node);
    }
    return node;
}

//  Seconds from the first mesh_serve to the caller seeing every
//  provider's last service, or < 0 on failure
static double
s_side_start (side_t *side, const char *label, int port, size_t provs, size_t services)
{
    char cluster [64], name [64];
    snprintf (cluster, sizeof cluster, "bench-svc-%s-%d", label, (int) getpid ());
    side->label = label;
    side->count = provs;
    side->node = s_node ("bench-caller", cluster, port);
    side->rr = side->node? mesh_reqrep_new (side->node): NULL;
    side->provs = (provider_t *) calloc (provs, sizeof (provider_t));
    if (!side->rr || !side->provs)
        return -1;
    for (size_t p = 0; p < provs; p++) {
        snprintf (name, sizeof name, "bench-provider-%zu", p + 1);
        side->provs [p].node = s_node (name, cluster, port);
        side->provs [p].rr = side->provs [p].node? mesh_reqrep_new (side->provs [p].node): NULL;
        if (!side->provs [p].rr
        ||  mesh_serve (side->provs [p].rr, "bench.probe", s_serve, NULL))
            return -1;
    }
    if (mesh_reqrep_wait_providers (side->rr, "bench.probe", provs, MEET_MS)) {
        fprintf (stderr, "bench_scale_services: %s: the nodes did not meet\n", label);
        return -1;
    }
    for (size_t p = 0; p < provs; p++)
        if (pthread_create (&side->provs [p].thread, NULL, s_provider_loop, &side->provs [p]))
            return -1;
    double start = s_now ();
    for (size_t p = 0; p < provs; p++)
        for (size_t i = 0; i < services; i++) {
            snprintf (name, sizeof name, "svc.%zu.%zu", p, i);
            if (mesh_serve (side->provs [p].rr, name, s_serve, NULL)) {
                fprintf (stderr, "bench_scale_services: serve %s: %s\n", name,
                         mesh_last_error ());
                return -1;
            }
        }
    //  deltas arrive in order: a provider's last service seen means all are
    for (size_t p = 0; p < provs; p++) {
        snprintf (name, sizeof name, "svc.%zu.%zu", p, services - 1);
        if (mesh_reqrep_wait_providers (side->rr, name, 1, SEE_MS)) {
            fprintf (stderr, "bench_scale_services: %s: the caller does not see %s\n",
                     label, name);
            return -1;
        }
    }
    return s_now () - start;
}

static void
s_side_stop (side_t *side)
{
    for (size_t p = 0; side->provs && p < side->count; p++)
        side->provs [p].stop = true;
    for (size_t p = 0; side->provs && p < side->count; p++) {
        if (side->provs [p].thread)
            pthread_join (side->provs [p].thread, NULL);
        mesh_reqrep_destroy (&side->provs [p].rr);
        mesh_node_destroy (&side->provs [p].node);
    }
    free (side->provs);
    mesh_reqrep_destroy (&side->rr);
    mesh_node_destroy (&side->node);
}

//  count calls to names; calls/s, or 0 when one failed
static double
s_round (side_t *side, char **names, size_t count, size_t *failed)
{
    char body [100] = { 0 };
    mesh_call_opts_t opts = { .timeout_ms = 5000 };
    *failed = 0;
    double start = s_now ();
    for (size_t i = 0; i < count; i++) {
        mesh_msg_t *reply = mesh_call (side->rr, names [i], body, sizeof body, &opts);
        if (!reply) {
            if (++*failed <= 3)
                fprintf (stderr, "bench_scale_services: %s: call %s: %s\n", side->label,
                         names [i], mesh_last_error ());
        }
        mesh_msg_destroy (&reply);
    }
    s_drain_events (side->node);
    return *failed? 0: count / (s_now () - start);
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
    size_t services = 10000, provs = 1, count = 20000;
    int rounds = 5;
    bool json = false;
    static const struct option options [] = {
        { "services", 1, NULL, 's' }, { "providers", 1, NULL, 'p' },
        { "count", 1, NULL, 'c' }, { "rounds", 1, NULL, 'r' }, { "json", 0, NULL, 'j' },
        { NULL, 0, NULL, 0 }
    };
    for (int opt; (opt = getopt_long (argc, argv, "", options, NULL)) != -1; ) {
        switch (opt) {
            case 's': services = strtoul (optarg, NULL, 10); break;
            case 'p': provs = strtoul (optarg, NULL, 10); break;
            case 'c': count = strtoul (optarg, NULL, 10); break;
            case 'r': rounds = atoi (optarg); break;
            case 'j': json = true; break;
            default:
                fprintf (stderr, "usage: bench_scale_services [--services N] [--providers P] "
                         "[--count C] [--rounds R] [--json]\n");
                return 2;
        }
    }
    if (services < 1 || provs < 1 || count < 1 || rounds < 1 || rounds > 99) {
        fprintf (stderr, "bench_scale_services: N, P, C >= 1, R in 1..99\n");
        return 2;
    }
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
    int port = 30000 + (int) ((getpid () + 4000) % 20000);
    side_t one = { 0 }, many = { 0 };
    double one_setup = s_side_start (&one, "one", port, 1, 1);
    long rss_before = s_rss_kb ();
    double many_setup = one_setup < 0? -1: s_side_start (&many, "many", port + 1, provs, services);
    long rss_after = s_rss_kb ();
    int rc = one_setup < 0 || many_setup < 0;
    //  every service answers once
    size_t total = services * provs, all_failed = 0;
    for (size_t p = 0; !rc && p < provs; p++)
        for (size_t i = 0; i < services; i++) {
            snprintf (name, sizeof name, "svc.%zu.%zu", p, i);
            char *names [1] = { name };
            size_t failed;
            s_round (&many, names, 1, &failed);
            all_failed += failed;
        }
    if (all_failed) {
        fprintf (stderr, "bench_scale_services: %zu of %zu services did not answer\n",
                 all_failed, total);
        rc = 1;
    }
    double one_rates [100], many_rates [100];
    size_t failed = 0;
    if (!rc && (!s_round (&one, one_names, count / 10 + 1, &failed)
             || !s_round (&many, random_names, count / 10 + 1, &failed)))
        rc = 1;
    for (int r = 0; !rc && r < rounds; r++) {
        bool many_first = r % 2;
        double a = many_first? s_round (&many, random_names, count, &failed)
                             : s_round (&one, one_names, count, &failed);
        double b = !a? 0: many_first? s_round (&one, one_names, count, &failed)
                                    : s_round (&many, random_names, count, &failed);
        if (!a || !b)
            rc = 1;
        one_rates [r] = many_first? b: a;
        many_rates [r] = many_first? a: b;
    }
    if (!rc) {
        double lo = s_median (one_rates, rounds), hi = s_median (many_rates, rounds);
        double per_svc = (double) (rss_after - rss_before) * 1024 / (double) total;
        if (json)
            printf ("{\"services\": %zu, \"providers\": %zu, \"count\": %zu, \"rounds\": %d, "
                    "\"callable\": %zu, \"one\": %.0f, \"many\": %.0f, \"ratio\": %.3f, "
                    "\"setup_s\": %.3f, \"bytes_per_service\": %.0f}\n", services, provs,
                    count, rounds, total, lo, hi, hi / lo, many_setup, per_svc);
        else
            printf ("request-reply, %zu provider(s) x %zu services, %zu calls, %d rounds\n"
                    "  all %zu services answered a call\n"
                    "  1 service:            %10.0f calls/s (median)\n"
                    "  %zu services:     %10.0f calls/s (median), random ones\n"
                    "  ratio many / one: %.3f\n"
                    "  every service seen by the caller %.3f s after the first mesh_serve\n"
                    "  memory: %.0f bytes per service (providers and caller, RSS)\n",
                    provs, services, count, rounds, total, lo, total, hi, hi / lo,
                    many_setup, per_svc);
    }
    s_side_stop (&many);
    s_side_stop (&one);
    for (size_t i = 0; i < count; i++) {
        free (random_names [i]);
        free (one_names [i]);
    }
    free (random_names);
    free (one_names);
    return rc;
}
