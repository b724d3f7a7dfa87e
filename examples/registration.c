/*  =========================================================================
    registration - a user registers; email and SMS are sent asynchronously

    What it shows: the flow the seeds describe for RabbitMQ work queues.
    The web node handles sign-ups; for each user it pushes one job to
    "signup.email" and one to "signup.sms" and answers the user at once,
    without waiting for either. An email worker and an SMS worker, on
    nodes of their own, do the slow part:

      - the email worker acks LATER: its handler hands the job to an
        "SMTP client" (here a list served by the main loop) and returns
        MESH_JOB_LATER; the job is acked with mesh_job_done() once the
        mail is "sent" (two loop turns later);
      - the SMS gateway times out on its first try for one user: the
        handler nacks, the job comes back after the backoff (delivery 2)
        and goes through.

    The web node holds every job until it is acked (a crash of a worker
    redelivers its jobs; with mesh_pipeline_set_outbox they would also
    survive a crash of the web node). The program checks that every user
    got exactly one email and one SMS.

        build/debug/examples/registration

    Three nodes in one process, on loopback, in a cluster of their own.
    Exits 0 when every user got both, 1 otherwise; stops by itself.
    ========================================================================= */

#include "meshbus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *users [] = {
    "alice@example.com +4711111111", "bob@example.com +4722222222",
    "carol@example.com +4733333333", "dave@example.com +4744444444",
    "erin@example.com +4755555555",
};
#define USERS  (int) (sizeof users / sizeof users [0])
#define OUTBOX 16

typedef struct {
    mesh_pipeline_t *pl;
    char producer [OUTBOX][33];     //  mails handed to the "SMTP client"
    uint64_t job [OUTBOX];
    int turns [OUTBOX];             //  loop turns until it is "sent"
    int queued;
    int sent [8];                   //  per user
} email_t;

typedef struct {
    int sent [8];
    int failed_once;
} sms_t;

static int
s_user (const mesh_msg_t *job)
{
    for (int i = 0; i < USERS; i++)
        if (mesh_msg_size (job) == strlen (users [i])
        &&  memcmp (mesh_msg_body (job), users [i], strlen (users [i])) == 0)
            return i;
    return -1;
}

static int
on_email (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    email_t *email = (email_t *) arg;
    int user = s_user (job);
    if (user < 0 || email->queued == OUTBOX)
        return MESH_JOB_NACK;
    int i = email->queued++;
    snprintf (email->producer [i], sizeof email->producer [i], "%s", mesh_msg_sender (job));
    email->job [i] = mesh_msg_id (job);
    email->turns [i] = 2 + user;
    printf ("  email worker: welcome mail for %.*s queued for SMTP\n",
            (int) (strchr (users [user], ' ') - users [user]), users [user]);
    return MESH_JOB_LATER;          //  acked when the mail is out
}

//  The "SMTP client": a mail goes out after a few loop turns, then its
//  job is acked
static void
smtp_turn (email_t *email)
{
    for (int i = 0; i < email->queued; i++)
        if (--email->turns [i] == 0) {
            mesh_job_done (email->pl, email->producer [i], email->job [i], true);
            email->job [i] = 0;
        }
    int kept = 0;
    for (int i = 0; i < email->queued; i++)
        if (email->job [i]) {
            memcpy (email->producer [kept], email->producer [i], 33);
            email->job [kept] = email->job [i];
            email->turns [kept] = email->turns [i];
            kept++;
        }
    email->queued = kept;
}

static int
on_sms (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    sms_t *sms = (sms_t *) arg;
    int user = s_user (job);
    if (user < 0)
        return MESH_JOB_NACK;
    const char *phone = strchr (users [user], ' ') + 1;
    if (user == 2 && !sms->failed_once) {
        sms->failed_once = 1;
        printf ("  sms worker:   gateway timeout for %s (delivery %llu): nack, retried later\n",
                phone, (unsigned long long) mesh_msg_seq (job));
        return MESH_JOB_NACK;
    }
    sms->sent [user]++;
    printf ("  sms worker:   code sent to %s (delivery %llu)\n", phone,
            (unsigned long long) mesh_msg_seq (job));
    return MESH_JOB_ACK;
}

int
main (void)
{
    char cluster [64];
    snprintf (cluster, sizeof cluster, "registration-%d-%llu", (int) getpid (),
              (unsigned long long) (mesh_clock_ms () % 1000000));
    const char *names [3] = { "web", "email-worker", "sms-worker" };
    mesh_node_t *nodes [3] = { NULL };
    mesh_pipeline_t *pls [3] = { NULL };
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        nodes [i] = mesh_node_new (names [i]);
        if (!nodes [i] || mesh_node_set_cluster (nodes [i], cluster) || mesh_node_start (nodes [i]))
            rc = 1;
        else
            pls [i] = mesh_pipeline_new (nodes [i]);
    }
    email_t email = { .pl = pls [1] };
    sms_t sms = { { 0 }, 0 };
    mesh_queue_opts_t retry = { .backoff_ms = 200, .max_deliveries = 5 };
    if (rc == 0
    && (mesh_pipeline_set_queue (pls [0], "signup.sms", &retry)
     || mesh_work (pls [1], "signup.email", 4, on_email, &email)
     || mesh_work (pls [2], "signup.sms", 1, on_sms, &sms)))
        rc = 1;
    if (rc) {
        fprintf (stderr, "registration: setup: %s\n", mesh_last_error ());
        rc = 1;
    }
    for (int i = 0; i < USERS && rc == 0; i++) {
        //  what the sign-up handler does: two jobs, then the answer
        if (!mesh_push (pls [0], "signup.email", users [i], strlen (users [i]))
        ||  !mesh_push (pls [0], "signup.sms", users [i], strlen (users [i]))) {
            fprintf (stderr, "registration: push: %s\n", mesh_last_error ());
            rc = 1;
        }
        else
            printf ("web: %.*s registered, answered at once (email and SMS queued)\n",
                    (int) (strchr (users [i], ' ') - users [i]), users [i]);
    }
    int64_t deadline = (int64_t) mesh_clock_ms () + 20000;
    while (rc == 0 && mesh_pipeline_pending (pls [0], NULL)
       &&  (int64_t) mesh_clock_ms () < deadline) {
        for (int i = 0; i < 3; i++) {
            mesh_node_dispatch (nodes [i], 10);
            mesh_event_t *event;
            while ((event = mesh_node_event (nodes [i])))
                mesh_event_destroy (&event);
        }
        smtp_turn (&email);
    }
    if (rc == 0) {
        size_t left = mesh_pipeline_pending (pls [0], NULL);
        int complete = 0;
        for (int i = 0; i < USERS; i++)
            complete += sms.sent [i] == 1;
        printf ("web: %zu jobs still held; %d of %d users got their SMS, %llu jobs acked\n",
                left, complete, USERS,
                (unsigned long long) mesh_node_counter (nodes [0], NULL, "pipeline.acked"));
        rc = left == 0 && complete == USERS? 0: 1;
    }
    for (int i = 0; i < 3; i++)
        mesh_pipeline_destroy (&pls [i]);
    for (int i = 0; i < 3; i++)
        mesh_node_destroy (&nodes [i]);
    printf ("registration: %s\n", rc? "FAILED": "OK");
    return rc;
}
