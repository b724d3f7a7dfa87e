/*  =========================================================================
    meshbus push / work / dlq - work queues from the command line

    push QUEUE [BODY|-] [--count N] [--durable DIR] [--timeout S] [--sync]
         [--no-wait] [--ack-timeout S] [--max-deliveries N] [--backoff-ms MS]
         [--ctype TYPE] [--hold N]
        Pushes BODY N times (or one job per stdin line with "-"). Without
        --durable the jobs live in this process only, so push stays until
        every one is acked: exit 0 then; at --timeout (default 60 s) exit 1
        saying how many remain (they are lost with the process, and counted
        as pipeline.dropped.destroyed). With --durable DIR each job is
        committed to an LMDB outbox in DIR (group commit, or a sync per job
        with --sync) and "committed N jobs" goes to stderr; push still
        delivers until acked or --timeout, and exits 0 either way (what is
        left stays in DIR: the next producer started on DIR delivers it).
        --no-wait exits as soon as the jobs are committed. Jobs that reach
        the dead letters make the exit status 1. Events (DEAD_LETTER...)
        are printed on stderr.
    work QUEUE [--exec CMD] [--prefetch N] [--count N] [--timeout S]
         [--delay-ms MS]
        One line per job done on stdout: the body, or with --exec the
        output of CMD run by /bin/sh with the body on its stdin; CMD's exit
        0 acks, anything else nacks (a line "NACK <id> <status>" on
        stderr). Each line is flushed before the job is acked, so a job
        whose line is lost was not acked either. --delay-ms simulates work.
        Exits 0 after N jobs (jobs arriving after that go back to their
        producer at once), or at the timeout when no count was set.
    dlq list|replay QUEUE --durable DIR [--timeout S] [--id JOB]
        list: one line per dead letter of QUEUE kept in DIR:
        "<job id>\t<deliveries>\t<reason>\t<body>". replay: push them
        again as new jobs into DIR's outbox, then deliver like push.
    ========================================================================= */

#include "meshbus_cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#define CLI_PUSH_TIMEOUT    60      //  s, default wait for acks
#define CLI_OUTPUT_MAX      (1 << 20)   //  bytes of a command's output we keep

static int64_t
s_deadline (double seconds)
{
    return seconds < 0? -1: (int64_t) (mesh_clock_ms () + seconds * 1000);
}

static int
s_left (int64_t deadline, int slice)
{
    if (deadline < 0)
        return slice;
    int64_t left = deadline - (int64_t) mesh_clock_ms ();
    return left <= 0? 0: left < slice? (int) left: slice;
}

//  Pattern events on stderr, one line each; returns dead letters seen
static long
s_events (mesh_node_t *node)
{
    long dead = 0;
    mesh_event_t *event;
    while ((event = mesh_node_event (node))) {
        if (mesh_event_type (event) == MESH_EVENT_DEAD_LETTER) {
            fprintf (stderr, "DEAD_LETTER %s %llu\n", mesh_event_detail (event),
                     (unsigned long long) mesh_event_count (event));
            dead++;
        }
        else
        if (mesh_event_type (event) >= MESH_EVENT_PATTERN)
            fprintf (stderr, "%s %s %llu\n", mesh_event_name (event), mesh_event_peer (event),
                     (unsigned long long) mesh_event_count (event));
        mesh_event_destroy (&event);
    }
    return dead;
}

//  ---------------------------------------------------------------------
//  Producing: push, and dlq replay

typedef struct {
    mesh_node_t *node;
    mesh_pipeline_t *pl;
    const char *durable;
    long pushed, dead;
    int64_t deadline;
} producer_t;

static int
s_producer_open (producer_t *p, cli_opts_t *opts, const char *durable, bool sync, double timeout)
{
    p->durable = durable;
    p->deadline = s_deadline (timeout);
    p->node = cli_node_new (opts, NULL);
    if (!p->node)
        return 1;
    p->pl = mesh_pipeline_new (p->node);
    if (!p->pl)
        return cli_fail ("%s", mesh_last_error ());
    if (durable && mesh_pipeline_set_outbox (p->pl, durable,
                                             sync? MESH_STORE_SYNC: MESH_STORE_GROUP))
        return cli_fail ("cannot use %s as an outbox: %s", durable, mesh_last_error ());
    size_t recovered = mesh_pipeline_pending (p->pl, NULL);
    if (recovered)
        fprintf (stderr, "recovered %zu jobs from %s\n", recovered, durable);
    return 0;
}

//  Push one job, waiting for room while the hold bound is reached
static int
s_push_one (producer_t *p, const mesh_head_t *head, const char *body, size_t size)
{
    while (!mesh_push_ex (p->pl, head, body, size)) {
        if (mesh_errno () != MESH_EFULL)
            return cli_fail ("push failed: %s", mesh_last_error ());
        int slice = s_left (p->deadline, 50);
        if (slice == 0 || cli_interrupted ())
            return cli_fail ("push failed: %s", mesh_last_error ());
        mesh_node_dispatch (p->node, slice);
        p->dead += s_events (p->node);
    }
    if (++p->pushed % 64 == 0) {
        mesh_node_dispatch (p->node, 0);
        p->dead += s_events (p->node);
    }
    return 0;
}

//  After pushing: commit, then deliver until acked or the deadline
static int
s_producer_finish (producer_t *p, bool no_wait, int rc)
{
    if (rc == 0 && p->durable) {
        if (mesh_pipeline_flush (p->pl))
            rc = cli_fail ("outbox commit failed: %s", mesh_last_error ());
        else
            fprintf (stderr, "committed %ld jobs to %s\n", p->pushed, p->durable);
    }
    while (rc == 0 && !no_wait && mesh_pipeline_pending (p->pl, NULL) && !cli_interrupted ()) {
        int slice = s_left (p->deadline, 50);
        if (slice == 0)
            break;
        mesh_node_dispatch (p->node, slice);
        p->dead += s_events (p->node);
    }
    mesh_node_dispatch (p->node, 0);
    p->dead += s_events (p->node);
    size_t left = mesh_pipeline_pending (p->pl, NULL);
    if (rc == 0 && left && !no_wait) {
        if (p->durable)
            fprintf (stderr, "%zu jobs not acked yet: kept in %s for the next producer\n",
                     left, p->durable);
        else
            rc = cli_fail ("%zu of %ld jobs not acked before the timeout (lost: not durable)",
                           left, p->pushed);
    }
    if (rc == 0 && p->dead)
        rc = cli_fail ("%ld jobs reached the dead letters%s", p->dead,
                       p->durable? " (meshbus dlq list)": "");
    mesh_pipeline_destroy (&p->pl);
    mesh_node_destroy (&p->node);
    return rc;
}

int
cli_push (cli_opts_t *opts, int argc, char **argv)
{
    const char *count_arg = cli_take (&argc, argv, "--count");
    const char *durable = cli_take (&argc, argv, "--durable");
    const char *timeout_arg = cli_take (&argc, argv, "--timeout");
    const char *ack_arg = cli_take (&argc, argv, "--ack-timeout");
    const char *max_arg = cli_take (&argc, argv, "--max-deliveries");
    const char *backoff_arg = cli_take (&argc, argv, "--backoff-ms");
    const char *hold_arg = cli_take (&argc, argv, "--hold");
    const char *ctype = cli_take (&argc, argv, "--ctype");
    bool sync = cli_take_flag (&argc, argv, "--sync");
    bool no_wait = cli_take_flag (&argc, argv, "--no-wait");
    if (argc < 1)
        return cli_fail ("usage: meshbus push QUEUE [BODY|-] [--count N] [--durable DIR] "
                         "[--timeout S]");
    if (cli_no_extra (argc, argv, 2))
        return 2;
    const char *queue = argv [0], *body = argc > 1? argv [1]: "";
    if (!mesh_subject_valid (queue))
        return cli_fail ("bad queue '%s': dot-separated non-empty tokens, no * or #", queue);
    long count = 1, max = 0, backoff = 0, hold = 0;
    double timeout = CLI_PUSH_TIMEOUT, ack_timeout = 0;
    if ((count_arg && cli_count (count_arg, "--count", 0, &count))
    ||  (max_arg && cli_count (max_arg, "--max-deliveries", 1, &max))
    ||  (backoff_arg && cli_count (backoff_arg, "--backoff-ms", 1, &backoff))
    ||  (hold_arg && cli_count (hold_arg, "--hold", 1, &hold))
    ||  (timeout_arg && cli_seconds (timeout_arg, &timeout))
    ||  (ack_arg && cli_seconds (ack_arg, &ack_timeout)))
        return 2;
    if ((sync || no_wait) && !durable)
        return cli_fail ("--sync and --no-wait need --durable DIR");
    producer_t p = { 0 };
    int rc = s_producer_open (&p, opts, durable, sync, timeout);
    mesh_queue_opts_t qopts = { .ack_timeout_ms = (int) (ack_timeout * 1000),
                                .max_deliveries = (int) max, .backoff_ms = (int) backoff };
    if (rc == 0 && mesh_pipeline_set_queue (p.pl, queue, &qopts))
        rc = cli_fail ("%s", mesh_last_error ());
    if (rc == 0 && hold && mesh_pipeline_set_hold (p.pl, (size_t) hold, (size_t) 1 << 40))
        rc = cli_fail ("%s", mesh_last_error ());
    static cli_lines_t reader;
    static char line [65536];
    mesh_head_t head = { .subject = queue, .ctype = ctype };
    long made = 0;
    while (rc == 0 && !cli_interrupted ()) {
        const char *text = body;
        size_t size = strlen (body);
        if (streq_ (body, "-")) {
            int got = cli_next_line (&reader, p.node, line, sizeof line, 50);
            if (got < 0)
                break;
            if (got == 0)
                continue;
            text = line;
            size = strlen (line);
        }
        else
        if (made >= count)
            break;
        rc = s_push_one (&p, &head, text, size);
        made++;
    }
    if (!p.node)
        return rc;
    return s_producer_finish (&p, no_wait, rc);
}

//  ---------------------------------------------------------------------
//  Working

typedef struct {
    const char *exec;
    long count, done, delay_ms;
    char *out;
} worker_t;

//  Run cmd with body on its stdin; its stdout into w->out (*len bytes).
//  Returns its exit status (0..255), or -1 if it could not run.
static int
s_run (worker_t *w, const void *body, size_t size, size_t *len)
{
    int in [2], out [2];
    if (pipe (in))
        return -1;
    if (pipe (out)) {
        close (in [0]);
        close (in [1]);
        return -1;
    }
    fflush (stdout);
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2 (in [0], 0);
        dup2 (out [1], 1);
        close (in [0]); close (in [1]); close (out [0]); close (out [1]);
        execl ("/bin/sh", "sh", "-c", w->exec, (char *) NULL);
        _exit (127);
    }
    close (in [0]);
    close (out [1]);
    size_t written = 0;
    *len = 0;
    bool reading = true;
    if (size == 0) {
        close (in [1]);
        in [1] = -1;
    }
    while (reading) {
        struct pollfd fds [2] = {
            { .fd = out [0], .events = POLLIN },
            { .fd = in [1], .events = POLLOUT },
        };
        if (poll (fds, in [1] >= 0? 2: 1, 1000) < 0 && errno != EINTR)
            break;
        if (in [1] >= 0 && (fds [1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write (in [1], (const char *) body + written, size - written);
            if (n > 0)
                written += (size_t) n;
            if (n < 0 || written == size) {
                close (in [1]);
                in [1] = -1;
            }
        }
        if (fds [0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf [4096];
            ssize_t n = read (out [0], buf, sizeof buf);
            if (n <= 0)
                reading = false;
            else {
                size_t keep = *len + (size_t) n > CLI_OUTPUT_MAX? CLI_OUTPUT_MAX - *len: (size_t) n;
                memcpy (w->out + *len, buf, keep);
                *len += keep;
            }
        }
    }
    if (in [1] >= 0)
        close (in [1]);
    close (out [0]);
    int status;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED (status)? WEXITSTATUS (status): 128 + WTERMSIG (status);
}

static int
s_on_job (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    worker_t *w = (worker_t *) arg;
    if (w->count >= 0 && w->done >= w->count)
        return MESH_JOB_REJECT;     //  enough: back to its producer
    if (w->delay_ms > 0)
        usleep ((useconds_t) w->delay_ms * 1000);
    const char *body = (const char *) mesh_msg_body (job);
    size_t size = mesh_msg_size (job);
    if (w->exec) {
        size_t len = 0;
        int status = s_run (w, body, size, &len);
        if (status != 0) {
            fprintf (stderr, "NACK %llu %d\n", (unsigned long long) mesh_msg_id (job), status);
            return MESH_JOB_NACK;
        }
        body = w->out;
        size = len;
    }
    fwrite (body, 1, size, stdout);
    if (!size || body [size - 1] != '\n')
        fputc ('\n', stdout);
    //  the line is out before the ack can be
    fflush (stdout);
    w->done++;
    return MESH_JOB_ACK;
}

int
cli_work (cli_opts_t *opts, int argc, char **argv)
{
    const char *exec = cli_take (&argc, argv, "--exec");
    const char *prefetch_arg = cli_take (&argc, argv, "--prefetch");
    const char *count_arg = cli_take (&argc, argv, "--count");
    const char *timeout_arg = cli_take (&argc, argv, "--timeout");
    const char *delay_arg = cli_take (&argc, argv, "--delay-ms");
    if (argc < 1)
        return cli_fail ("usage: meshbus work QUEUE [--exec CMD] [--prefetch N] [--count N] "
                         "[--timeout S]");
    if (cli_no_extra (argc, argv, 1))
        return 2;
    const char *queue = argv [0];
    if (!mesh_subject_valid (queue))
        return cli_fail ("bad queue '%s': dot-separated non-empty tokens, no * or #", queue);
    worker_t w = { .exec = exec, .count = -1 };
    long prefetch = MESH_DEFAULT_PREFETCH;
    double timeout = -1;
    if ((prefetch_arg && cli_count (prefetch_arg, "--prefetch", 1, &prefetch))
    ||  (count_arg && cli_count (count_arg, "--count", 0, &w.count))
    ||  (delay_arg && cli_count (delay_arg, "--delay-ms", 0, &w.delay_ms))
    ||  (timeout_arg && cli_seconds (timeout_arg, &timeout)))
        return 2;
    if (exec && !(w.out = (char *) malloc (CLI_OUTPUT_MAX)))
        return cli_fail ("out of memory");
    signal (SIGPIPE, SIG_IGN);      //  a command that does not read its stdin
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node) {
        free (w.out);
        return 1;
    }
    mesh_pipeline_t *pl = mesh_pipeline_new (node);
    int rc = 0;
    if (!pl || mesh_work (pl, queue, (int) prefetch, s_on_job, &w))
        rc = cli_fail ("%s", mesh_last_error ());
    int64_t deadline = s_deadline (timeout);
    while (rc == 0 && !cli_interrupted () && (w.count < 0 || w.done < w.count)) {
        int slice = s_left (deadline, 200);
        if (slice == 0)
            break;
        mesh_node_dispatch (node, slice);
        s_events (node);
    }
    if (rc == 0 && w.count >= 0 && w.done < w.count)
        rc = cli_fail ("did %ld of %ld jobs before the timeout", w.done, w.count);
    //  Stop taking jobs (those still coming go back untried), and let the
    //  acks owed reach the producers before our BYE does: a frame that
    //  arrives after BYE is dropped there, and its job would run again
    if (pl)
        mesh_unwork (pl, queue);
    int64_t until = (int64_t) mesh_clock_ms () + 100;
    while (pl && (int64_t) mesh_clock_ms () < until)
        mesh_node_dispatch (node, 20);
    mesh_pipeline_destroy (&pl);
    mesh_node_destroy (&node);
    free (w.out);
    return rc;
}

//  ---------------------------------------------------------------------
//  Dead letters

static bool
s_print_dead (const char *queue, uint64_t job_id, const mesh_msg_t *job, const char *reason,
              void *arg)
{
    (void) queue; (void) arg;
    printf ("%llu\t%llu\t%s\t%.*s\n", (unsigned long long) job_id,
            (unsigned long long) mesh_msg_seq (job), reason, (int) mesh_msg_size (job),
            (const char *) mesh_msg_body (job));
    return true;
}

int
cli_dlq (cli_opts_t *opts, int argc, char **argv)
{
    const char *durable = cli_take (&argc, argv, "--durable");
    const char *timeout_arg = cli_take (&argc, argv, "--timeout");
    const char *id_arg = cli_take (&argc, argv, "--id");
    if (argc < 2 || (!streq_ (argv [0], "list") && !streq_ (argv [0], "replay")))
        return cli_fail ("usage: meshbus dlq list|replay QUEUE --durable DIR");
    if (cli_no_extra (argc, argv, 2))
        return 2;
    const char *queue = argv [1];
    if (!mesh_subject_valid (queue))
        return cli_fail ("bad queue '%s'", queue);
    if (!durable)
        return cli_fail ("dead letters are kept in a producer's data dir: give --durable DIR "
                         "(a producer without one keeps them in memory only)");
    long id = 0;
    double timeout = 10;
    if ((id_arg && cli_count (id_arg, "--id", 1, &id))
    ||  (timeout_arg && cli_seconds (timeout_arg, &timeout)))
        return 2;
    if (streq_ (argv [0], "list")) {
        //  no network needed: a node that is never started
        mesh_node_t *node = mesh_node_new (opts->name);
        mesh_pipeline_t *pl = node? mesh_pipeline_new (node): NULL;
        int rc = 0;
        if (!pl || mesh_pipeline_set_outbox (pl, durable, MESH_STORE_GROUP))
            rc = cli_fail ("cannot open %s: %s", durable, mesh_last_error ());
        else {
            size_t n = mesh_dlq_list (pl, queue, s_print_dead, NULL);
            fprintf (stderr, "%zu dead letters in %s for %s\n", n, durable, queue);
        }
        mesh_pipeline_destroy (&pl);
        mesh_node_destroy (&node);
        return rc;
    }
    producer_t p = { 0 };
    int rc = s_producer_open (&p, opts, durable, false, timeout);
    int replayed = rc == 0? mesh_dlq_replay (p.pl, queue, (uint64_t) id): 0;
    if (rc == 0 && replayed < 0)
        rc = cli_fail ("replay failed: %s", mesh_last_error ());
    if (rc == 0)
        fprintf (stderr, "replayed %d dead letters of %s\n", replayed, queue);
    p.pushed = replayed > 0? replayed: 0;
    if (!p.node)
        return rc;
    return s_producer_finish (&p, false, rc);
}
