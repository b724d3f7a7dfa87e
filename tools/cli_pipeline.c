/*  =========================================================================
    meshbus push / work / dlq - work queues from the command line

    push holds its jobs until acked (without --durable they live in this
    process only, so it stays until every one is acked, or says at the
    timeout how many are lost with it); with --durable DIR each job is
    committed to an LMDB outbox first and what is left stays in DIR for
    the next producer. work runs each job (--exec: a command per job with
    a deadline, killed with what it started and nacked when it passes),
    prints its line and flushes it before the ack can leave. dlq lists or
    replays the dead letters a durable producer kept.
    ========================================================================= */

#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>

#define CLI_PUSH_TIMEOUT    60      //  s, default wait for acks
#define CLI_OUTPUT_MAX      (16u << 20) //  bytes of a command's output we keep
#define CLI_JOB_TIMEOUT     20      //  s, default --job-timeout: below the producer's
                                    //  ack timeout (MESH_DEFAULT_ACK_TIMEOUT, 30 s), so a
                                    //  stuck command is nacked before the job is redelivered
#define CLI_SCREENFUL       24      //  jobs: more than this shows a progress line

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
    cli_progress_t progress;
} producer_t;

static void
s_producer_progress (producer_t *p)
{
    size_t pending = mesh_pipeline_pending (p->pl, NULL);
    if (p->pushed > CLI_SCREENFUL)
        cli_progress_show (&p->progress, "pushed %ld, acked %ld, pending %zu, %.0f jobs/s",
                           p->pushed, p->pushed - (long) pending, pending,
                           (double) p->pushed * 1000
                           / (double) (mesh_clock_ms () - p->progress.started + 1));
}

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

//  The outbox refused a write or a commit (a full disk or map): say why,
//  what is safe, what to do. "At most": the group commit that failed may
//  have taken the last jobs pushed before with it.
static int
s_outbox_failed (producer_t *p, const char *why)
{
    return cli_fail ("push failed: %s; at most %ld jobs of this push were committed to %s "
                     "and stay there for the next producer; free space (or raise "
                     "MESH_STORE_MAPMAX) and push the rest again", why, p->pushed, p->durable);
}

//  Push one job, waiting for room while the hold bound is reached
static int
s_push_one (producer_t *p, const mesh_head_t *head, const char *body, size_t size)
{
    while (!mesh_push_ex (p->pl, head, body, size)) {
        if (mesh_errno () != MESH_EFULL && p->durable) {
            char why [512];
            snprintf (why, sizeof why, "%s", mesh_last_error ());
            mesh_pipeline_flush (p->pl);
            return s_outbox_failed (p, why);
        }
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
        s_producer_progress (p);
    }
    return 0;
}

//  After pushing: commit, then deliver until acked or the deadline
static int
s_producer_finish (producer_t *p, bool no_wait, int rc)
{
    if (rc == 0 && p->durable) {
        if (mesh_pipeline_flush (p->pl))
            rc = s_outbox_failed (p, mesh_last_error ());
        else
            fprintf (stderr, "committed %ld jobs to %s\n", p->pushed, p->durable);
    }
    while (rc == 0 && !no_wait && mesh_pipeline_pending (p->pl, NULL) && !cli_interrupted ()) {
        int slice = s_left (p->deadline, 50);
        if (slice == 0)
            break;
        mesh_node_dispatch (p->node, slice);
        p->dead += s_events (p->node);
        s_producer_progress (p);
    }
    cli_progress_end (&p->progress);
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

enum { PUSH_COUNT = 'n', PUSH_TIMEOUT = 't', PUSH_HEADER = 'H', PUSH_FILE = 'f',
       PUSH_QUIET = 'q', PUSH_DURABLE = CLI_OPT (1), PUSH_SYNC, PUSH_NO_WAIT, PUSH_ACK,
       PUSH_MAX, PUSH_BACKOFF, PUSH_HOLD, PUSH_CTYPE };

static const struct option s_push_options [] = {
    { "count",          required_argument, NULL, PUSH_COUNT },
    { "timeout",        required_argument, NULL, PUSH_TIMEOUT },
    { "header",         required_argument, NULL, PUSH_HEADER },
    { "file",           required_argument, NULL, PUSH_FILE },
    { "quiet",          no_argument,       NULL, PUSH_QUIET },
    { "durable",        required_argument, NULL, PUSH_DURABLE },
    { "sync",           no_argument,       NULL, PUSH_SYNC },
    { "no-wait",        no_argument,       NULL, PUSH_NO_WAIT },
    { "ack-timeout",    required_argument, NULL, PUSH_ACK },
    { "max-deliveries", required_argument, NULL, PUSH_MAX },
    { "backoff-ms",     required_argument, NULL, PUSH_BACKOFF },
    { "hold",           required_argument, NULL, PUSH_HOLD },
    { "ctype",          required_argument, NULL, PUSH_CTYPE },
    { NULL, 0, NULL, 0 }
};

static int
s_push (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_push_options, "n:t:H:f:q", argc, argv);
    long count = 1, max = 0, backoff = 0, hold = 0;
    double timeout = CLI_PUSH_TIMEOUT, ack_timeout = 0;
    bool sync = false, no_wait = false, quiet = false;
    const char *file = NULL, *durable = NULL, *ctype = NULL;
    cli_headers_t headers = { .count = 0 };
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case PUSH_COUNT:   bad = cli_long (cmd, "--count", optarg, 0, LONG_MAX, &count); break;
            case PUSH_MAX:     bad = cli_long (cmd, "--max-deliveries", optarg, 1, 1000000, &max); break;
            case PUSH_BACKOFF: bad = cli_long (cmd, "--backoff-ms", optarg, 1, 3600000, &backoff); break;
            case PUSH_HOLD:    bad = cli_long (cmd, "--hold", optarg, 1, 1000000000, &hold); break;
            case PUSH_TIMEOUT: bad = cli_seconds (cmd, "--timeout", optarg, 0, 1e7, &timeout); break;
            case PUSH_ACK:     bad = cli_seconds (cmd, "--ack-timeout", optarg, 0.001, 86400, &ack_timeout); break;
            case PUSH_HEADER:  bad = cli_header_add (cmd, &headers, optarg); break;
            case PUSH_FILE:    file = optarg; break;
            case PUSH_QUIET:   quiet = true; break;
            case PUSH_DURABLE: durable = optarg; break;
            case PUSH_SYNC:    sync = true; break;
            case PUSH_NO_WAIT: no_wait = true; break;
            case PUSH_CTYPE:   bad = cli_ctype (cmd, optarg, &ctype); break;
            default:           bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 1, file? 1: 2))
        return CLI_USAGE;
    const char *queue = args.pos [0];
    if (cli_name (cmd, "queue name", queue, false))
        return CLI_USAGE;
    if ((sync || no_wait) && !durable)
        return cli_usage (cmd, "--sync and --no-wait need --durable DIR");
    cli_body_t body;
    int status = cli_body_take (&args, 1, file, true, &body);
    if (status)
        return status;
    producer_t p = { 0 };
    cli_progress_init (&p.progress, quiet);
    int rc = s_producer_open (&p, opts, durable, sync, timeout);
    mesh_queue_opts_t qopts = { .ack_timeout_ms = (int) (ack_timeout * 1000),
                                .max_deliveries = (int) max, .backoff_ms = (int) backoff };
    if (rc == 0 && mesh_pipeline_set_queue (p.pl, queue, &qopts))
        rc = cli_fail ("%s", mesh_last_error ());
    if (rc == 0 && hold && mesh_pipeline_set_hold (p.pl, (size_t) hold, (size_t) 1 << 40))
        rc = cli_fail ("%s", mesh_last_error ());
    cli_lines_t reader = { 0 };
    mesh_head_t head = { .subject = queue, .ctype = ctype,
                         .headers = headers.list, .header_count = headers.count };
    long made = 0;
    while (rc == 0 && !cli_interrupted ()) {
        const char *text = body.data;
        size_t len = body.size;
        if (body.lines) {
            int got = cli_next_line (&reader, p.node, &text, &len, 50);
            if (got < 0)
                break;
            if (got == 0)
                continue;
        }
        else
        if (made >= count)
            break;
        rc = s_push_one (&p, &head, text, len);
        made++;
    }
    size_t refused = reader.refused;
    if (rc == 0 && refused)
        fprintf (stderr, "meshbus: %zu lines refused (longer than the body limit)\n", refused);
    cli_lines_free (&reader);
    cli_body_free (&body);
    if (p.node)
        rc = s_producer_finish (&p, no_wait, rc);
    cli_headers_free (&headers);
    return rc == 0 && refused? CLI_FAILED: rc;
}

const cli_cmd_t cli_cmd_push = {
    "push", s_push, "QUEUE [BODY | - | --file PATH] [-H KEY=VALUE]... [--count N] "
    "[--durable DIR] [--timeout S] [FLAGS]",
    "push jobs to a work queue; exit once every job is acked",
"Pushes BODY N times, or one job per stdin line with - (the newline removed, any\n"
"length up to the body limit; a longer line is refused whole, exit 1). Without\n"
"--durable the jobs live in this process only: push stays until every one is\n"
"acked (exit 0), or at the timeout exits 1 saying how many were not acked. With\n"
"--durable DIR each job is committed to an LMDB outbox in DIR first (\"committed\n"
"N jobs\" on stderr); what is not acked by the timeout stays in DIR and the next\n"
"producer started on DIR delivers it (exit 0). Jobs that reach the dead letters\n"
"make the exit status 1. On a terminal a progress line shows on stderr.\n"
"\n"
"  -f, --file PATH      one job whose body is the whole file (- = stdin)\n"
"  -H, --header K=V     a header (repeatable)\n"
"  -n, --count N        push N jobs (default 1)\n"
"  -t, --timeout S      how long to wait for acks (default 60)\n"
"  --durable DIR        commit jobs to DIR's outbox before delivering them\n"
"  --sync               with --durable: a disk sync per job (default: group commit)\n"
"  --no-wait            with --durable: exit once committed\n"
"  --ack-timeout S      redeliver a job not acked within S (default 30)\n"
"  --max-deliveries N   deliveries before a job becomes a dead letter (default 5)\n"
"  --backoff-ms MS      first delay before redelivering a nacked job\n"
"  --hold N             jobs held in memory before push waits for room\n"
"  --ctype TYPE         content type\n"
"  -q, --quiet          no progress line"
};

//  ---------------------------------------------------------------------
//  Working

typedef struct {
    const char *exec;
    long count, done, delay_ms;
    double job_timeout;
    cli_progress_t progress;
} worker_t;

static int
s_on_job (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    worker_t *w = (worker_t *) arg;
    if ((w->count >= 0 && w->done >= w->count) || cli_stdout_closed () || cli_interrupted ())
        return MESH_JOB_REJECT;     //  enough: back to its producer, untried
    if (w->delay_ms > 0)
        usleep ((useconds_t) w->delay_ms * 1000);
    const char *body = (const char *) mesh_msg_body (job);
    size_t size = mesh_msg_size (job);
    char *out = NULL;
    if (w->exec) {
        uint64_t deadline = mesh_clock_ms () + (uint64_t) (w->job_timeout * 1000);
        int status = cli_spawn_run (w->exec, body, size, deadline, CLI_OUTPUT_MAX, &out, &size);
        if (status != 0) {
            if (status == -2 && cli_interrupted ())
                fprintf (stderr, "NACK %llu interrupted\n", (unsigned long long) mesh_msg_id (job));
            else
            if (status == -2)
                fprintf (stderr, "NACK %llu killed after %g s (--job-timeout)\n",
                         (unsigned long long) mesh_msg_id (job), w->job_timeout);
            else
            if (status == -1)
                fprintf (stderr, "NACK %llu cannot run the command: %s\n",
                         (unsigned long long) mesh_msg_id (job), strerror (errno));
            else
                fprintf (stderr, "NACK %llu %d\n", (unsigned long long) mesh_msg_id (job), status);
            free (out);
            return MESH_JOB_NACK;
        }
        body = out;
    }
    int rc = cli_write (body, size);
    if (rc == 0 && (!size || body [size - 1] != '\n'))
        rc = cli_write ("\n", 1);
    //  the line is out before the ack can be; a line that could not be
    //  written is not acked either
    rc |= cli_flush ();
    free (out);
    if (rc)
        return MESH_JOB_NACK;
    w->done++;
    if (w->done > CLI_SCREENFUL)
        cli_progress_show (&w->progress, "done %ld, %.0f jobs/s", w->done, (double) w->done
                           * 1000 / (double) (mesh_clock_ms () - w->progress.started + 1));
    return MESH_JOB_ACK;
}

enum { WORK_COUNT = 'n', WORK_TIMEOUT = 't', WORK_QUIET = 'q', WORK_EXEC = CLI_OPT (1),
       WORK_JOB_TIMEOUT, WORK_PREFETCH, WORK_DELAY };

static const struct option s_work_options [] = {
    { "count",       required_argument, NULL, WORK_COUNT },
    { "timeout",     required_argument, NULL, WORK_TIMEOUT },
    { "quiet",       no_argument,       NULL, WORK_QUIET },
    { "exec",        required_argument, NULL, WORK_EXEC },
    { "job-timeout", required_argument, NULL, WORK_JOB_TIMEOUT },
    { "prefetch",    required_argument, NULL, WORK_PREFETCH },
    { "delay-ms",    required_argument, NULL, WORK_DELAY },
    { NULL, 0, NULL, 0 }
};

static int
s_work (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_work_options, "n:t:q", argc, argv);
    worker_t w = { .count = -1, .job_timeout = CLI_JOB_TIMEOUT };
    long prefetch = MESH_DEFAULT_PREFETCH;
    double timeout = -1;
    bool quiet = false;
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case WORK_COUNT:    bad = cli_long (cmd, "--count", optarg, 0, LONG_MAX, &w.count); break;
            case WORK_PREFETCH: bad = cli_long (cmd, "--prefetch", optarg, 1, 100000, &prefetch); break;
            case WORK_DELAY:    bad = cli_long (cmd, "--delay-ms", optarg, 0, 3600000, &w.delay_ms); break;
            case WORK_TIMEOUT:  bad = cli_seconds (cmd, "--timeout", optarg, 0, 1e7, &timeout); break;
            case WORK_JOB_TIMEOUT:
                bad = cli_seconds (cmd, "--job-timeout", optarg, 0.001, 86400, &w.job_timeout);
                break;
            case WORK_EXEC:     w.exec = optarg; break;
            case WORK_QUIET:    quiet = true; break;
            default:            bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 1, 1))
        return CLI_USAGE;
    const char *queue = args.pos [0];
    if (cli_name (cmd, "queue name", queue, false))
        return CLI_USAGE;
    cli_progress_init (&w.progress, quiet);
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node)
        return CLI_FAILED;
    mesh_pipeline_t *pl = mesh_pipeline_new (node);
    int rc = 0;
    if (!pl || mesh_work (pl, queue, (int) prefetch, s_on_job, &w))
        rc = cli_fail ("%s", mesh_last_error ());
    int64_t deadline = s_deadline (timeout);
    while (rc == 0 && !cli_interrupted () && !cli_stdout_closed ()
       &&  (w.count < 0 || w.done < w.count)) {
        int slice = s_left (deadline, 200);
        if (slice == 0)
            break;
        mesh_node_dispatch (node, slice);
        s_events (node);
    }
    cli_progress_end (&w.progress);
    if (rc == 0 && !cli_interrupted () && !cli_stdout_closed ()
    &&  w.count >= 0 && w.done < w.count)
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
    return rc;
}

const cli_cmd_t cli_cmd_work = {
    "work", s_work, "QUEUE [--exec CMD] [--job-timeout S] [--prefetch N] [--count N] "
    "[--timeout S] [FLAGS]",
    "take jobs from a work queue",
"Takes jobs of QUEUE with fair dispatch: one line per job done on stdout, the body\n"
"(a newline added if it has none), or with --exec the output of CMD. Each line is\n"
"flushed before the job is acked. Ends after N jobs (those arriving after go back\n"
"to their producer untried), at the timeout, on Ctrl-C, or when stdout is closed.\n"
"\n"
"  --exec CMD           run CMD with /bin/sh, the body on its stdin: exit 0 acks the\n"
"                       job, anything else nacks it (a line NACK <id> ... on stderr)\n"
"  --job-timeout S      kill CMD (and what it started) after S seconds and nack the job\n"
"                       (default 20, below the producer's 30 s ack timeout)\n"
"  --prefetch N         jobs taken ahead (default 1)\n"
"  -n, --count N        exit 0 after N jobs (exit 1 if the timeout comes first)\n"
"  -t, --timeout S      stop after S seconds (default: never)\n"
"  --delay-ms MS        sleep before each job (simulated work)\n"
"  -q, --quiet          no progress line"
};

//  ---------------------------------------------------------------------
//  Dead letters

static bool
s_print_dead (const char *queue, uint64_t job_id, const mesh_msg_t *job, const char *reason,
              void *arg)
{
    (void) queue; (void) arg;
    char line [128];
    snprintf (line, sizeof line, "%llu\t%llu\t", (unsigned long long) job_id,
              (unsigned long long) mesh_msg_seq (job));
    cli_write (line, strlen (line));
    cli_write_escaped (reason, strlen (reason));
    cli_write ("\t", 1);
    cli_write_escaped (mesh_msg_body (job), mesh_msg_size (job));
    cli_write ("\n", 1);
    return !cli_stdout_closed ();
}

enum { DLQ_TIMEOUT = 't', DLQ_DURABLE = CLI_OPT (1), DLQ_JOB };

static const struct option s_dlq_options [] = {
    { "timeout", required_argument, NULL, DLQ_TIMEOUT },
    { "durable", required_argument, NULL, DLQ_DURABLE },
    { "job",     required_argument, NULL, DLQ_JOB },
    //  here --id is a job id, not the node's id (D2: it was taken by the node)
    { "id",      required_argument, NULL, DLQ_JOB },
    { NULL, 0, NULL, 0 }
};

static int
s_dlq (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_dlq_options, "t:", argc, argv);
    const char *durable = NULL;
    long id = 0;
    double timeout = 10;
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case DLQ_TIMEOUT: bad = cli_seconds (cmd, "--timeout", optarg, 0, 1e7, &timeout); break;
            case DLQ_JOB:     bad = cli_long (cmd, "--job", optarg, 1, LONG_MAX, &id); break;
            case DLQ_DURABLE: durable = optarg; break;
            default:          bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 2, 2))
        return CLI_USAGE;
    const char *action = args.pos [0], *queue = args.pos [1];
    if (!streq_ (action, "list") && !streq_ (action, "replay"))
        return cli_usage (cmd, "'%s': the action is list or replay", action);
    if (cli_name (cmd, "queue name", queue, false))
        return CLI_USAGE;
    if (!durable)
        return cli_usage (cmd, "dead letters are kept in a producer's data dir: give "
                          "--durable DIR (a producer without one keeps them in memory only)");
    //  Looking must not create: a mistyped DIR is an error, not an empty outbox
    struct stat st;
    if (stat (durable, &st))
        return cli_fail ("%s: %s (no outbox there)", durable, strerror (errno));
    if (!S_ISDIR (st.st_mode))
        return cli_fail ("%s: not a directory", durable);
    if (streq_ (action, "list")) {
        //  no network needed: a node that is never started
        mesh_node_t *node = mesh_node_new (opts->name);
        mesh_pipeline_t *pl = node? mesh_pipeline_new (node): NULL;
        int rc = 0;
        if (!pl || mesh_pipeline_set_outbox (pl, durable, MESH_STORE_GROUP))
            rc = cli_fail ("cannot open %s: %s", durable, mesh_last_error ());
        else {
            size_t n = mesh_dlq_list (pl, queue, s_print_dead, NULL);
            cli_flush ();
            fprintf (stderr, "%zu dead letters in %s for %s\n", n, durable, queue);
        }
        mesh_pipeline_destroy (&pl);
        mesh_node_destroy (&node);
        return rc;
    }
    producer_t p = { 0 };
    cli_progress_init (&p.progress, true);
    int rc = s_producer_open (&p, opts, durable, false, timeout);
    int replayed = rc == 0? mesh_dlq_replay (p.pl, queue, (uint64_t) id): 0;
    if (rc == 0 && replayed < 0)
        rc = cli_fail ("replay failed: %s", mesh_last_error ());
    if (rc == 0 && id && replayed == 0)
        rc = cli_fail ("no dead letter %ld of %s in %s", id, queue, durable);
    if (rc == 0)
        fprintf (stderr, "replayed %d dead letters of %s\n", replayed, queue);
    p.pushed = replayed > 0? replayed: 0;
    if (!p.node)
        return rc;
    return s_producer_finish (&p, false, rc);
}

const cli_cmd_t cli_cmd_dlq = {
    "dlq", s_dlq, "list|replay QUEUE --durable DIR [--job ID] [--timeout S] [FLAGS]",
    "list or replay the dead letters a durable producer kept",
"list: one line per dead letter of QUEUE kept in DIR, \"<job id>\\t<deliveries>\\t\n"
"<reason>\\t<body>\" (reason and body escaped as sub does). replay: push them again\n"
"as new jobs into DIR's outbox, then deliver them as push does. DIR must exist.\n"
"\n"
"  --durable DIR        the producer's data dir (required)\n"
"  --job ID             only this dead letter (--id is accepted too)\n"
"  -t, --timeout S      replay: how long to wait for acks (default 10)"
};
