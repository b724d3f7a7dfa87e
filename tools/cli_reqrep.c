/*  =========================================================================
    meshbus serve / meshbus call

    serve SERVICE (--echo | --exec CMD) [--count N] [--timeout S]
        Answers calls to SERVICE. --echo replies with the request's body;
        --exec runs CMD with /bin/sh -c, the body on its stdin, and replies
        with its stdout when it exits 0, or with an error reply ("CMD exited
        with status N") otherwise. CMD is killed when the request's
        deadline passes. Requests are served one at a time, in order. With
        --count, exits 0 after N requests; with --timeout, after S seconds.
    call SERVICE BODY|- [--timeout S] [--wait] [--retries N] [--all]
        [--ctype TYPE]
        Calls SERVICE (BODY "-" = all of stdin) and prints the reply. On
        failure exits 1 with one line saying why: "no responders for X",
        "timeout: ...", "remote error: TEXT". --wait waits for a provider up
        to the timeout instead of failing at once; --all calls every
        provider and prints one line per reply, "NAME<TAB>REPLY" (exit 0
        if at least one answered).
    ========================================================================= */

#include "meshbus_cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#define CLI_EXEC_MAX_OUTPUT (16u << 20)    //  bytes of a command's stdout we keep
#define CLI_STDIN_MAX       (16u << 20)    //  bytes of a call's body from stdin

typedef struct {
    const char *exec;           //  NULL = echo
    long served;
    bool verbose;
} serve_state_t;

//  Run cmd with body on its stdin until it exits or deadline (ms since the
//  epoch, 0 = none). Returns its exit status (-1: could not run, -2: killed
//  at the deadline); its stdout in *out (malloc'd), size in *out_size.
static int
s_run (const char *cmd, const void *body, size_t size, uint64_t deadline,
       char **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    int in_pipe [2], out_pipe [2];
    if (pipe (in_pipe))
        return -1;
    if (pipe (out_pipe)) {
        close (in_pipe [0]);
        close (in_pipe [1]);
        return -1;
    }
    pid_t pid = fork ();
    if (pid == 0) {
        dup2 (in_pipe [0], 0);
        dup2 (out_pipe [1], 1);
        close (in_pipe [0]);
        close (in_pipe [1]);
        close (out_pipe [0]);
        close (out_pipe [1]);
        signal (SIGPIPE, SIG_DFL);
        execl ("/bin/sh", "sh", "-c", cmd, (char *) NULL);
        _exit (127);
    }
    close (in_pipe [0]);
    close (out_pipe [1]);
    if (pid < 0) {
        close (in_pipe [1]);
        close (out_pipe [0]);
        return -1;
    }
    fcntl (in_pipe [1], F_SETFL, O_NONBLOCK);
    int in_fd = in_pipe [1], out_fd = out_pipe [0];
    size_t written = 0, cap = 0;
    if (size == 0) {
        close (in_fd);
        in_fd = -1;
    }
    bool killed = false;
    while (out_fd >= 0) {
        int wait = 200;
        if (deadline) {
            int64_t left = (int64_t) deadline - (int64_t) mesh_clock_ms ();
            if (left <= 0) {
                kill (pid, SIGKILL);
                killed = true;
                break;
            }
            wait = left < wait? (int) left: wait;
        }
        struct pollfd fds [2] = { { .fd = out_fd, .events = POLLIN },
                                  { .fd = in_fd, .events = POLLOUT } };
        if (poll (fds, in_fd >= 0? 2: 1, wait) < 0 && errno != EINTR)
            break;
        if (in_fd >= 0 && (fds [1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write (in_fd, (const char *) body + written, size - written);
            if (n > 0)
                written += (size_t) n;
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                written = size;         //  it stopped reading: fine
            if (written == size) {
                close (in_fd);
                in_fd = -1;
            }
        }
        if (fds [0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (*out_size + 4096 > cap && cap < CLI_EXEC_MAX_OUTPUT) {
                cap = cap? cap * 2: 8192;
                char *grown = (char *) realloc (*out, cap);
                if (!grown)
                    break;
                *out = grown;
            }
            char sink [4096];
            bool room = *out_size + 4096 <= cap;
            ssize_t n = read (out_fd, room? *out + *out_size: sink, 4096);
            if (n <= 0) {
                close (out_fd);
                out_fd = -1;
            }
            else
            if (room)
                *out_size += (size_t) n;
        }
    }
    if (in_fd >= 0)
        close (in_fd);
    if (out_fd >= 0)
        close (out_fd);
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (killed)
        return -2;
    return WIFEXITED (status)? WEXITSTATUS (status): 128 + WTERMSIG (status);
}

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
    int status = s_run (state->exec, mesh_msg_body (request), mesh_msg_size (request),
                        mesh_msg_deadline (request), &out, &size);
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

int
cli_serve (cli_opts_t *opts, int argc, char **argv)
{
    const char *exec = cli_take (&argc, argv, "--exec");
    bool echo = cli_take_flag (&argc, argv, "--echo");
    const char *count_arg = cli_take (&argc, argv, "--count");
    const char *timeout_arg = cli_take (&argc, argv, "--timeout");
    if (argc < 1 || (!exec == !echo))
        return cli_fail ("usage: meshbus serve SERVICE (--echo | --exec CMD) [--count N]");
    if (cli_no_extra (argc, argv, 1))
        return 2;
    const char *service = argv [0];
    if (!mesh_subject_valid (service))
        return cli_fail ("bad service name '%s': dot-separated non-empty tokens, no * or #",
                         service);
    long count = -1;
    double timeout = -1;
    if ((count_arg && cli_count (count_arg, "--count", 0, &count))
    ||  (timeout_arg && cli_seconds (timeout_arg, &timeout)))
        return 2;
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node)
        return 1;
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

//  All of stdin, for BODY "-"
static char *
s_read_stdin (size_t *size)
{
    size_t cap = 65536, len = 0;
    char *buf = (char *) malloc (cap);
    while (buf) {
        if (len == cap) {
            if (cap >= CLI_STDIN_MAX) {
                free (buf);
                return NULL;
            }
            cap *= 2;
            char *grown = (char *) realloc (buf, cap);
            if (!grown) {
                free (buf);
                return NULL;
            }
            buf = grown;
        }
        ssize_t n = read (0, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t) n;
    }
    *size = len;
    return buf;
}

static void
s_print_body (const mesh_msg_t *msg)
{
    size_t size = mesh_msg_size (msg);
    const char *body = (const char *) mesh_msg_body (msg);
    fwrite (body, 1, size, stdout);
    if (size == 0 || body [size - 1] != '\n')
        putchar ('\n');
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
        printf ("%s\t", *who? who: provider);
        s_print_body (reply);
    }
    else {
        fprintf (stderr, "meshbus: %s: %s\n", *who? who: provider,
                 error? error: mesh_strerror (err));
        state->failures++;
    }
    free (name);
}

int
cli_call (cli_opts_t *opts, int argc, char **argv)
{
    const char *timeout_arg = cli_take (&argc, argv, "--timeout");
    const char *retries_arg = cli_take (&argc, argv, "--retries");
    const char *ctype = cli_take (&argc, argv, "--ctype");
    bool wait = cli_take_flag (&argc, argv, "--wait");
    bool all = cli_take_flag (&argc, argv, "--all");
    if (argc < 2)
        return cli_fail ("usage: meshbus call SERVICE BODY|- [--timeout S] [--wait] [--all]");
    if (cli_no_extra (argc, argv, 2))
        return 2;
    const char *service = argv [0];
    if (!mesh_subject_valid (service))
        return cli_fail ("bad service name '%s': dot-separated non-empty tokens, no * or #",
                         service);
    double timeout = MESH_DEFAULT_CALL_TIMEOUT / 1000.0;
    long retries = MESH_DEFAULT_CALL_RETRIES;
    if ((timeout_arg && cli_seconds (timeout_arg, &timeout))
    ||  (retries_arg && cli_count (retries_arg, "--retries", 0, &retries)))
        return 2;
    if (timeout <= 0 || timeout > 86400)
        return cli_fail ("--timeout must be in (0, 86400] seconds");
    char *input = NULL;
    size_t size = strlen (argv [1]);
    const char *body = argv [1];
    if (streq_ (body, "-")) {
        input = s_read_stdin (&size);
        if (!input)
            return cli_fail ("cannot read the body from stdin (at most %u bytes)",
                             CLI_STDIN_MAX);
        body = input;
    }
    mesh_node_t *node = cli_node_new (opts, NULL);
    if (!node) {
        free (input);
        return 1;
    }
    mesh_reqrep_t *rr = mesh_reqrep_new (node);
    mesh_call_opts_t call_opts = { .timeout_ms = (int) (timeout * 1000),
                                   .retries = retries? (int) retries: -1,
                                   .wait_for_provider = wait, .ctype = ctype };
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
        if (reply)
            s_print_body (reply);
        else
        if (mesh_errno () == MESH_ENORESPONDERS)
            rc = cli_fail ("no responders for %s", service);
        else
        if (mesh_errno () == MESH_ETIMEDOUT)
            rc = cli_fail ("timeout: no reply from %s within %g s", service, timeout);
        else
        if (mesh_errno () == MESH_EREMOTE)
            rc = cli_fail ("remote error: %s", mesh_last_error ());
        else
            rc = cli_fail ("call failed: %s", mesh_last_error ());
        mesh_msg_destroy (&reply);
    }
    fflush (stdout);
    mesh_reqrep_destroy (&rr);
    mesh_node_destroy (&node);
    free (input);
    return rc;
}
