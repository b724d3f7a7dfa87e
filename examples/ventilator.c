/*  =========================================================================
    ventilator - a two-stage pipeline: ventilator -> workers -> sink

    What it shows: the ZeroMQ guide's "divide and conquer" (taskvent,
    taskwork, tasksink) without its caveats. The ventilator pushes TASKS
    jobs to the queue "vent.tasks"; three workers work it with prefetch 1
    (fair dispatch: the next job goes to a worker with credit, so a slow
    worker is not sent a burst as raw PUSH would); each worker pushes its
    result to the queue "vent.results" (a second stage), which the sink
    works. The sink checks that every task's result arrived, counts the
    duplicates (none expected here), and the program prints how many tasks
    each worker did. All nodes are pumped by one thread here, so the
    workers are equally fast and share the tasks about evenly; run them as
    separate processes (`meshbus work vent.tasks`) to see a slow one skipped.

        build/debug/examples/ventilator

    Five nodes in one process, on loopback, in a cluster of their own.
    Exits 0 when the sink has every result, 1 otherwise; stops by itself.
    ========================================================================= */

#include "meshbus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TASKS   60
#define WORKERS 3
#define NODES   (WORKERS + 2)

typedef struct {
    const char *name;
    mesh_pipeline_t *pl;        //  its own pipeline: it pushes results from there
    int done;
    int extra_ms;               //  simulated slowness
} worker_t;

typedef struct {
    int got [TASKS];
    int results, duplicates;
    long sum;
} sink_t;

//  A worker: "work" on the task, push the result to the next stage
static int
on_task (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    worker_t *self = (worker_t *) arg;
    char text [32] = "";
    memcpy (text, mesh_msg_body (job), mesh_msg_size (job) < 31? mesh_msg_size (job): 31);
    int task = atoi (text);
    if (self->extra_ms)
        usleep ((useconds_t) self->extra_ms * 1000);
    char result [64];
    int n = snprintf (result, sizeof result, "%d %d %s", task, task * task, self->name);
    //  the result is a job of the next stage; if it cannot be held, nack
    //  the task so it is done again rather than lost
    if (!mesh_push (pl, "vent.results", result, (size_t) n))
        return MESH_JOB_NACK;
    self->done++;
    return MESH_JOB_ACK;
}

static int
on_result (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    sink_t *sink = (sink_t *) arg;
    char text [64] = "";
    memcpy (text, mesh_msg_body (job), mesh_msg_size (job) < 63? mesh_msg_size (job): 63);
    int task = -1;
    long square = 0;
    if (sscanf (text, "%d %ld", &task, &square) == 2 && task >= 0 && task < TASKS) {
        if (sink->got [task]++)
            sink->duplicates++;
        else {
            sink->results++;
            sink->sum += square;
        }
    }
    return MESH_JOB_ACK;
}

static void
pump (mesh_node_t **nodes)
{
    for (int i = 0; i < NODES; i++) {
        mesh_node_dispatch (nodes [i], 1);
        mesh_event_t *event;
        while ((event = mesh_node_event (nodes [i])))
            mesh_event_destroy (&event);
    }
}

int
main (void)
{
    char cluster [64];
    snprintf (cluster, sizeof cluster, "ventilator-%d-%llu", (int) getpid (),
              (unsigned long long) (mesh_clock_ms () % 1000000));
    const char *names [NODES] = { "ventilator", "worker-1", "worker-2", "worker-3", "sink" };
    mesh_node_t *nodes [NODES] = { NULL };
    mesh_pipeline_t *pls [NODES] = { NULL };
    worker_t workers [WORKERS] = {
        { "worker-1", NULL, 0, 0 }, { "worker-2", NULL, 0, 0 }, { "worker-3", NULL, 0, 0 }
    };
    sink_t sink = { { 0 }, 0, 0, 0 };
    int rc = 0;
    for (int i = 0; i < NODES && rc == 0; i++) {
        nodes [i] = mesh_node_new (names [i]);
        if (!nodes [i] || mesh_node_set_cluster (nodes [i], cluster) || mesh_node_start (nodes [i]))
            rc = 1;
        else
            pls [i] = mesh_pipeline_new (nodes [i]);
    }
    for (int w = 0; w < WORKERS && rc == 0; w++) {
        workers [w].pl = pls [1 + w];
        rc = mesh_work (pls [1 + w], "vent.tasks", 1, on_task, &workers [w]);
    }
    if (rc == 0)
        rc = mesh_work (pls [NODES - 1], "vent.results", 16, on_result, &sink);
    if (rc) {
        fprintf (stderr, "ventilator: setup: %s\n", mesh_last_error ());
        rc = 1;
    }
    //  No need to wait for the workers: jobs wait at the ventilator until
    //  a worker grants credit.
    for (int i = 0; i < TASKS && rc == 0; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        if (!mesh_push (pls [0], "vent.tasks", body, strlen (body))) {
            fprintf (stderr, "ventilator: push: %s\n", mesh_last_error ());
            rc = 1;
        }
    }
    if (rc == 0)
        printf ("ventilator pushed %d tasks; %d workers take them with prefetch 1\n",
                TASKS, WORKERS);
    int64_t deadline = (int64_t) mesh_clock_ms () + 20000;
    while (rc == 0 && sink.results < TASKS && (int64_t) mesh_clock_ms () < deadline)
        pump (nodes);
    //  every stage acked: nothing is held anywhere
    while (rc == 0 && (int64_t) mesh_clock_ms () < deadline) {
        size_t held = 0;
        for (int i = 0; i < NODES; i++)
            held += mesh_pipeline_pending (pls [i], NULL);
        if (!held)
            break;
        pump (nodes);
    }
    if (rc == 0) {
        for (int w = 0; w < WORKERS; w++)
            printf ("  %s did %d tasks\n", workers [w].name, workers [w].done);
        long expected = 0;
        for (long i = 0; i < TASKS; i++)
            expected += i * i;
        printf ("sink: %d of %d results, %d duplicates, sum of squares %ld (expected %ld)\n",
                sink.results, TASKS, sink.duplicates, sink.sum, expected);
        rc = sink.results == TASKS && sink.sum == expected? 0: 1;
    }
    for (int i = 0; i < NODES; i++)
        mesh_pipeline_destroy (&pls [i]);
    for (int i = 0; i < NODES; i++)
        mesh_node_destroy (&nodes [i]);
    printf ("ventilator: %s\n", rc? "FAILED": "OK");
    return rc;
}
