/*  =========================================================================
    meshbus serve / meshbus call

    serve answers calls with the request's body (--echo) or with what a
    command prints (--exec, run by cli_spawn_run, killed at the request's
    deadline). call prints the reply's bytes exactly as they came, and
    names each failure in its own words: nobody offers the service, the
    provider left, the deadline passed, the handler failed.
    ========================================================================= */

#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#define CLI_EXEC_MAX_OUTPUT (16u << 20)    //  bytes of a command's stdout we keep

typedef struct {
    const char *exec;           //  NULL = echo
    long served;
    bool verbose;
} serve_state_t;

static void
s_on_request (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr;
    serve_state_t *state = (serve_state_t *) arg;
    state->served++;
    if (state->verbose)
        fprintf (stderr, "request %llu from %s, %zu bytes\n",
                 (unsigned long long) mesh_msg_id (request), mesh_msg_sender_name (request),
                 mesh_msg_size (request));
    if (!state->exec) {
        mesh_reply_set (reply, mesh_msg_body (request), mesh_msg_size (request));
        mesh_reply_set_ctype (reply, *mesh_msg_ctype (request)? mesh_msg_ctype (request): NULL);
        return;
    }
    char *out = NULL;
    size_t size = 0;
    int status = cli_spawn_run (state->exec, mesh_msg_body (request), mesh_msg_size (request),
                                mesh_msg_deadline (request), CLI_EXEC_MAX_OUTPUT, &out, &size);
    if (status == 0)
        mesh_reply_set (reply, out, size);
    else {
        char text [128];
        if (status == -1)
            snprintf (text, sizeof text, "cannot run the command: %s", strerror (errno));
        else
        if (status == -2)
            snprintf (text, sizeof text, "the command was killed at the request's deadline");
        else
            snprintf (text, sizeof text, "the command exited with status %d", status);
        mesh_reply_fail (reply, text);
    }
    free (out);
}

enum { SRV_COUNT = 'n', SRV_TIMEOUT = 't', SRV_ECHO = CLI_OPT (1), SRV_EXEC };

static const struct option s_serve_options [] = {
    { "count",   required_argument, NULL, SRV_COUNT },
    { "timeout", required_argument, NULL, SRV_TIMEOUT },
    { "echo",    no_argument,       NULL, SRV_ECHO },
    { "exec",    required_argument, NULL, SRV_EXEC },
    { NULL, 0, NULL, 0 }
};

static int
s_serve (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_serve_options, "n:t:", argc, argv);
    long count = -1;
    double timeout = -1;
    bool echo = false;
    const char *exec = NULL;
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case SRV_COUNT:   bad = cli_long (cmd, "--count", optarg, 0, LONG_MAX, &count); break;
            case SRV_TIMEOUT: bad = cli_seconds (cmd, "--timeout", optarg, 0, 1e7, &timeout); break;
            case SRV_ECHO:    echo = true; break;
            case SRV_EXEC:    exec = optarg; break;
            default:          bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 1, 1))
        return CLI_USAGE;
    if (!exec == !echo)
        return cli_usage (cmd, "give one of --echo and --exec CMD");
    const char *service = args.pos [0];
    if (cli_name (cmd, "service name", service, false))
        return CLI_USAGE;
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node)
        return CLI_FAILED;
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    serve_state_t state = { exec, 0, opts->verbose };
    int rc = 0;
    if (!rr || mesh_serve (rr, service, s_on_request, &state))
        rc = cli_fail ("serve: %s", mesh_last_error ());
    int64_t deadline = timeout < 0? -1: (int64_t) (mesh_clock_ms () + timeout * 1000);
    while (rc == 0 && !cli_interrupted () && (count < 0 || state.served < count)) {
        int64_t left = deadline < 0? 200: deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0)
            break;
        if (mesh_node_dispatch (node, left < 200? (int) left: 200) < 0)
            break;
        mesh_event_t *event;
        while ((event = mesh_node_event (node)))
            mesh_event_destroy (&event);
    }
    //  the last reply is on its way: destroying the node flushes the links
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    return rc;
}

const cli_cmd_t cli_cmd_serve = {
    "serve", s_serve, "SERVICE (--echo | --exec CMD) [--count N] [--timeout S] [FLAGS]",
    "answer calls to SERVICE",
"Offers SERVICE to the mesh and answers its calls, one at a time, in order.\n"
"\n"
"  --echo               reply with the request's body\n"
"  --exec CMD           run CMD with /bin/sh, the body on its stdin; its stdout is the\n"
"                       reply when it exits 0, else the caller gets a remote error\n"
"                       (\"the command exited with status N\"). CMD (and what it started)\n"
"                       is killed when the request's deadline passes\n"
"  -n, --count N        exit 0 after N requests\n"
"  -t, --timeout S      exit 0 after S seconds"
};

//  The reply's bytes, exactly
static void
s_print_body (const mesh_msg_t *msg)
{
    cli_write (mesh_msg_body (msg), mesh_msg_size (msg));
}

typedef struct {
    mesh_node_t *node;
    int failures;
} gather_state_t;

static void
s_on_gathered (mesh_reqrep_t *rr, const char *provider, int err, const char *error,
               const mesh_msg_t *reply, void *arg)
{
    (void) rr;
    gather_state_t *state = (gather_state_t *) arg;
    char *name = mesh_node_peer_name (state->node, provider);
    const char *who = name? name: reply? mesh_msg_sender_name (reply): provider;
    if (reply) {
        //  one line per provider: the reply escaped as sub does
        cli_write (*who? who: provider, strlen (*who? who: provider));
        cli_write ("\t", 1);
        cli_write_escaped (mesh_msg_body (reply), mesh_msg_size (reply));
        cli_write ("\n", 1);
    }
    else {
        fprintf (stderr, "meshbus: %s: %s\n", *who? who: provider,
                 error? error: mesh_strerror (err));
        state->failures++;
    }
    free (name);
}

enum { CALL_TIMEOUT = 't', CALL_HEADER = 'H', CALL_FILE = 'f', CALL_RETRIES = CLI_OPT (1),
       CALL_CTYPE, CALL_WAIT, CALL_ALL };

static const struct option s_call_options [] = {
    { "timeout", required_argument, NULL, CALL_TIMEOUT },
    { "header",  required_argument, NULL, CALL_HEADER },
    { "file",    required_argument, NULL, CALL_FILE },
    { "retries", required_argument, NULL, CALL_RETRIES },
    { "ctype",   required_argument, NULL, CALL_CTYPE },
    { "wait",    no_argument,       NULL, CALL_WAIT },
    { "all",     no_argument,       NULL, CALL_ALL },
    { NULL, 0, NULL, 0 }
};

static int
s_call (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_call_options, "t:H:f:", argc, argv);
    double timeout = MESH_DEFAULT_CALL_TIMEOUT / 1000.0;
    long retries = MESH_DEFAULT_CALL_RETRIES;
    bool wait = false, all = false;
    const char *file = NULL, *ctype = NULL;
    cli_headers_t headers = { .count = 0 };
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case CALL_TIMEOUT: bad = cli_seconds (cmd, "--timeout", optarg, 0.001, 86400, &timeout); break;
            case CALL_RETRIES: bad = cli_long (cmd, "--retries", optarg, 0, 100, &retries); break;
            case CALL_HEADER:  bad = cli_header_add (cmd, &headers, optarg); break;
            case CALL_FILE:    file = optarg; break;
            case CALL_CTYPE:   bad = cli_ctype (cmd, optarg, &ctype); break;
            case CALL_WAIT:    wait = true; break;
            case CALL_ALL:     all = true; break;
            default:           bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, file? 1: 2, file? 1: 2))
        return CLI_USAGE;
    const char *service = args.pos [0];
    if (cli_name (cmd, "service name", service, false))
        return CLI_USAGE;
    //  BODY "-" is all of stdin, as --file -
    cli_body_t input;
    int status = cli_body_take (&args, 1, file, false, &input);
    if (status)
        return status;
    const char *body = input.data;
    size_t size = input.size;
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node) {
        cli_body_free (&input);
        return CLI_FAILED;
    }
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    mesh_call_opts_t call_opts = { .timeout_ms = (int) (timeout * 1000),
                                   .retries = retries? (int) retries: -1,
                                   .wait_for_provider = wait, .ctype = ctype,
                                   .headers = headers.list, .header_count = headers.count };
    int rc = 0;
    if (all) {
        gather_state_t state = { node, 0 };
        int replies = mesh_call_all (rr, service, body, size, &call_opts, s_on_gathered, &state);
        if (replies < 0)
            rc = mesh_errno () == MESH_ENORESPONDERS
               ? cli_fail ("no responders for %s", service)
               : cli_fail ("%s", mesh_last_error ());
        else
        if (replies == 0)
            rc = cli_fail ("none of the %d providers of %s answered", state.failures, service);
    }
    else {
        mesh_msg_t *reply = mesh_call (rr, service, body, size, &call_opts);
        int err = mesh_errno ();
        if (reply)
            s_print_body (reply);
        else
        if (err == MESH_ENORESPONDERS)
            rc = wait? cli_fail ("no responders for %s: no provider appeared within %g s",
                                 service, timeout)
                     : cli_fail ("no responders for %s", service);
        else
        if (err == MESH_EPROVIDERLEFT)
            rc = cli_fail ("provider left: %s", mesh_last_error ());
        else
        if (err == MESH_ETIMEDOUT)
            rc = wait && mesh_reqrep_providers (rr, service) == 0
               ? cli_fail ("no responders for %s: no provider appeared within %g s",
                           service, timeout)
               : cli_fail ("timeout: no reply from %s within %g s", service, timeout);
        else
        if (err == MESH_EREMOTE)
            rc = cli_fail ("remote error: %s", mesh_last_error ());
        else
            rc = cli_fail ("call failed: %s", mesh_last_error ());
        mesh_msg_destroy (&reply);
    }
    cli_flush ();
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    cli_body_free (&input);
    cli_headers_free (&headers);
    return rc;
}

const cli_cmd_t cli_cmd_call = {
    "call", s_call, "SERVICE (BODY | - | --file PATH) [-H KEY=VALUE]... [--timeout S] [FLAGS]",
    "call a service and print its reply",
"Calls SERVICE with BODY (- or --file -: all of stdin) and writes the reply's bytes\n"
"exactly as they came (no newline added). A fresh caller lets discovery settle\n"
"before it decides that nobody offers the service. Failures exit 1 with one line:\n"
"\"no responders for SVC\" (nobody offers it), \"provider left: ...\" (the provider\n"
"left or failed and no retry remains), \"timeout: ...\", \"remote error: TEXT\".\n"
"\n"
"  -f, --file PATH      the body is the whole file (- = stdin)\n"
"  -H, --header K=V     a header (repeatable)\n"
"  -t, --timeout S      deadline of the call, retries included (default 5)\n"
"  --retries N          other providers tried after a timeout or a provider's exit\n"
"                       (default 2)\n"
"  --wait               wait for a provider up to the timeout instead of failing at once\n"
"  --all                call every provider: one line per reply, NAME<TAB>REPLY (escaped\n"
"                       as sub does); exit 0 if at least one answered\n"
"  --ctype TYPE         content type"
};
