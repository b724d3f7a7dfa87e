/*  =========================================================================
    meshbus demo, step 5: the pipeline

    alpha pushes six jobs to the queue demo.thumbnails; beta and gamma work
    it with prefetch 1, so each gets the next job only when it acked the
    last (fair dispatch). gamma fails the first job it gets: that job is
    redelivered (maybe to beta) and done. Then alpha pushes a job that
    every worker fails: after two deliveries it is a dead letter, alpha
    sees the DEAD_LETTER event and lists it. The pipelines are destroyed at
    the end of the step: the demo's nodes go on without them.
    ========================================================================= */

#include "cli.h"
#include <stdio.h>

#define DEMO_JOBS 6

typedef struct {
    const char *name;
    int done, failed;
    bool fail_next;             //  fail the next job (once)
} demo_worker_t;

static int
s_on_job (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    demo_worker_t *w = (demo_worker_t *) arg;
    const char *body = (const char *) mesh_msg_body (job);
    int size = (int) mesh_msg_size (job);
    if (streq_ (mesh_msg_subject (job), "demo.poison") || w->fail_next) {
        w->fail_next = false;
        w->failed++;
        printf ("  %s fails %s '%.*s' (delivery %llu): nack\n", w->name,
                mesh_msg_subject (job), size, body, (unsigned long long) mesh_msg_seq (job));
        return MESH_JOB_NACK;
    }
    w->done++;
    printf ("  %s does  %s '%.*s' (delivery %llu): ack\n", w->name, mesh_msg_subject (job),
            size, body, (unsigned long long) mesh_msg_seq (job));
    return MESH_JOB_ACK;
}

static bool
s_on_dead (const char *queue, uint64_t job_id, const mesh_msg_t *job, const char *reason,
           void *arg)
{
    (void) arg;
    printf ("  alpha's dead letters: %s job %llu '%.*s', %llu deliveries, %s\n", queue,
            (unsigned long long) job_id, (int) mesh_msg_size (job),
            (const char *) mesh_msg_body (job), (unsigned long long) mesh_msg_seq (job), reason);
    return true;
}

int
cli_demo_pipeline (mesh_node_t **nodes, int count, int64_t deadline)
{
    if (count < 3)
        return cli_fail ("demo: the pipeline step needs 3 nodes");
    printf ("5. pipeline: alpha pushes %d jobs to demo.thumbnails, beta and gamma work it "
            "(prefetch 1)\n", DEMO_JOBS);
    mesh_pipeline_t *alpha = mesh_pipeline_new (nodes [0]);
    mesh_pipeline_t *beta = mesh_pipeline_new (nodes [1]);
    mesh_pipeline_t *gamma = mesh_pipeline_new (nodes [2]);
    demo_worker_t b = { "beta", 0, 0, false }, g = { "gamma", 0, 0, true };
    int rc = 0;
    mesh_queue_opts_t poison = { .max_deliveries = 2, .backoff_ms = 50 };
    if (!alpha || !beta || !gamma
    ||  mesh_work (beta, "demo.thumbnails", 1, s_on_job, &b)
    ||  mesh_work (gamma, "demo.thumbnails", 1, s_on_job, &g)
    ||  mesh_work (beta, "demo.poison", 1, s_on_job, &b)
    ||  mesh_work (gamma, "demo.poison", 1, s_on_job, &g)
    ||  mesh_pipeline_set_queue (alpha, "demo.poison", &poison))
        rc = cli_fail ("demo: pipeline: %s", mesh_last_error ());
    for (int i = 0; rc == 0 && i < DEMO_JOBS; i++) {
        char body [32];
        snprintf (body, sizeof body, "photo-%d.jpg", i + 1);
        if (!mesh_push (alpha, "demo.thumbnails", body, strlen (body)))
            rc = cli_fail ("demo: push: %s", mesh_last_error ());
    }
    while (rc == 0 && mesh_pipeline_pending (alpha, NULL) && cli_demo_pump (nodes, count, deadline))
        ;
    if (rc == 0 && mesh_pipeline_pending (alpha, NULL))
        rc = cli_fail ("demo: %zu jobs not acked in time", mesh_pipeline_pending (alpha, NULL));
    if (rc == 0) {
        printf ("  all %d acked: beta did %d, gamma did %d (and failed %d, redelivered)\n",
                DEMO_JOBS, b.done, g.done, g.failed);
        printf ("  alpha pushes a job every worker fails (demo.poison, max 2 deliveries)\n");
        if (!mesh_push (alpha, "demo.poison", "corrupt.jpg", 11))
            rc = cli_fail ("demo: push: %s", mesh_last_error ());
    }
    while (rc == 0 && mesh_pipeline_pending (alpha, NULL) && cli_demo_pump (nodes, count, deadline))
        ;
    //  a moment more, so the DEAD_LETTER event is printed
    int64_t until = (int64_t) mesh_clock_ms () + 100;
    while (rc == 0 && cli_demo_pump (nodes, count, until))
        ;
    if (rc == 0 && mesh_dlq_list (alpha, "demo.poison", s_on_dead, NULL) != 1)
        rc = cli_fail ("demo: the poison job is not among the dead letters");
    mesh_pipeline_destroy (&gamma);
    mesh_pipeline_destroy (&beta);
    mesh_pipeline_destroy (&alpha);
    return rc;
}
