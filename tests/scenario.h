/*  =========================================================================
    scenario.h - helpers for scenario tests that drive real meshbus processes

    Header only (every function static inline): tests/SConscript builds each
    tests/test_*.c as a program from that one file. Include it after
    <cmocka.h>.

    A scenario starts processes of the meshbus tool ($MESHBUS_TOOL) with
    fork/exec, each in its own process group (pgid = its pid), with stdout
    and stderr on one pipe that the test reads with poll(). Every wait has
    a functional timeout: it bounds a test that is failing and is never a
    claim about speed. Each test gets a cluster name and a beacon port of
    its own, so tests never see each other nor anybody else's nodes.

    Cleanup: every process started here is in a registry; sc_teardown()
    (the cmocka teardown) ends each of them by its pid / process group,
    SIGTERM first, SIGKILL after a grace period, and reaps it. It runs
    after a failed assertion too, since cmocka calls teardown then.
    ========================================================================= */

#ifndef SCENARIO_H_INCLUDED
#define SCENARIO_H_INCLUDED

#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "meshbus.h"

#define SC_MAX_PROCS    80          //  processes one test may start (64 lab nodes and helpers)
#define SC_MAX_ARGS     64
#define SC_GRACE_MS     3000        //  after SIGTERM, before SIGKILL
#define SC_LINE_MAX     65536       //  longer lines are cut (stats --json of a few nodes: ~10 KB)

typedef struct {
    char label [32];                //  for messages: "a", "stats", "lan up"...
    pid_t pid;                      //  also its process group
    int fd;                         //  read end of its stdout+stderr, -1 at EOF
    bool reaped;
    int status;                     //  waitpid status once reaped
    char partial [SC_LINE_MAX];     //  bytes of an unfinished line
    size_t partial_len;
    char **lines;                   //  every complete line so far, no '\n'
    size_t nlines, cap;
    bool used;
    int in;                         //  write end of its stdin (sc_spawn_ex), else -1
} sc_proc_t;

//  How sc_spawn_ex connects a process (all zero: like sc_spawn)
typedef struct {
    bool stdin_pipe;                //  stdin from a pipe the test writes (p->in)
    const char *stdout_path;        //  stdout into this file (stderr stays on the pipe)
} sc_io_t;

typedef struct {
    char cluster [64];              //  unique per test
    char port [16];                 //  beacon UDP port, unique per test
    int port_num;
    sc_proc_t procs [SC_MAX_PROCS];
    char dir [64];                  //  the test's scratch directory, "" until sc_tmpdir()
} sc_ctx_t;

static sc_ctx_t sc;

//  ---------------------------------------------------------------------
//  Small utilities

static inline int64_t
sc_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void
sc_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
        ;
}

static inline uint32_t
sc_random (void)
{
    uint32_t value;
    if (getrandom (&value, sizeof value, 0) != (ssize_t) sizeof value)
        value = (uint32_t) getpid () * 2654435761u ^ (uint32_t) sc_now_ms ();
    return value;
}

//  A random node id: 32 hex chars
static inline void
sc_random_id (char hex [33])
{
    for (int i = 0; i < 4; i++)
        snprintf (hex + 8 * i, 9, "%08x", sc_random ());
}

static inline const char *
sc_tool (void)
{
    const char *tool = getenv ("MESHBUS_TOOL");
    return tool && *tool? tool: "build/debug/tools/meshbus";
}

//  A TCP port nothing listens on right now (bound to 0, then closed)
static inline int
sc_free_tcp_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0
    &&  getsockname (fd, (struct sockaddr *) &addr, &len) == 0)
        port = ntohs (addr.sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}

//  ---------------------------------------------------------------------
//  Processes

//  Start argv[0] (a path) with argv; env is NULL or a NULL-terminated list
//  of "NAME=value" added to the child's environment; io NULL or how to
//  connect stdin / stdout. Returns the process or fails the test.
static inline sc_proc_t *
sc_spawn_ex (const char *label, char *const *env, char *const *argv, const sc_io_t *io)
{
    sc_proc_t *p = NULL;
    for (int i = 0; i < SC_MAX_PROCS && !p; i++)
        if (!sc.procs [i].used)
            p = &sc.procs [i];
    if (!p)
        fail_msg ("scenario: more than %d processes in one test", SC_MAX_PROCS);
    memset (p, 0, sizeof *p);
    p->in = -1;
    snprintf (p->label, sizeof p->label, "%s", label);
    int fds [2], in [2] = { -1, -1 }, out = -1;
    if (pipe2 (fds, O_CLOEXEC))
        fail_msg ("pipe: %s", strerror (errno));
    if (io && io->stdin_pipe && pipe2 (in, O_CLOEXEC))
        fail_msg ("pipe: %s", strerror (errno));
    if (io && io->stdout_path
    &&  (out = open (io->stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        fail_msg ("%s: %s", io->stdout_path, strerror (errno));
    fflush (stdout);
    fflush (stderr);
    pid_t pid = fork ();
    if (pid < 0)
        fail_msg ("fork: %s", strerror (errno));
    if (pid == 0) {
        setpgid (0, 0);
        dup2 (out >= 0? out: fds [1], 1);
        dup2 (fds [1], 2);
        int devnull = in [0] >= 0? in [0]: open ("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2 (devnull, 0);
        signal (SIGPIPE, SIG_DFL);
        for (int i = 0; env && env [i]; i++)
            putenv ((char *) env [i]);
        execvp (argv [0], argv);
        fprintf (stderr, "scenario: cannot run %s: %s\n", argv [0], strerror (errno));
        _exit (127);
    }
    setpgid (pid, pid);         //  also here: no race with the child's own call
    close (fds [1]);
    if (out >= 0)
        close (out);
    if (in [0] >= 0)
        close (in [0]);
    fcntl (fds [0], F_SETFL, O_NONBLOCK);
    p->used = true;
    p->pid = pid;
    p->fd = fds [0];
    p->in = in [1];
    return p;
}

static inline sc_proc_t *
sc_spawn (const char *label, char *const *env, char *const *argv)
{
    return sc_spawn_ex (label, env, argv, NULL);
}

//  Start the tool: meshbus ARGS... (NULL-terminated)
static inline sc_proc_t *
sc_tool_start (const char *label, ...)
{
    char *argv [SC_MAX_ARGS];
    int argc = 0;
    argv [argc++] = (char *) sc_tool ();
    va_list args;
    va_start (args, label);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < SC_MAX_ARGS - 1)
        argv [argc++] = (char *) arg;
    va_end (args);
    argv [argc] = NULL;
    return sc_spawn (label, NULL, argv);
}

//  `meshbus peers` as node NAME (with a fixed id when id is not NULL) in
//  this test's cluster and beacon port; more flags follow, NULL-terminated.
static inline sc_proc_t *
sc_node (const char *name, const char *id, ...)
{
    char *argv [SC_MAX_ARGS];
    int argc = 0;
    argv [argc++] = (char *) sc_tool ();
    argv [argc++] = "peers";
    argv [argc++] = "--name";
    argv [argc++] = (char *) name;
    argv [argc++] = "--cluster";
    argv [argc++] = sc.cluster;
    argv [argc++] = "--port";
    argv [argc++] = sc.port;
    if (id) {
        argv [argc++] = "--id";
        argv [argc++] = (char *) id;
    }
    va_list args;
    va_start (args, id);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < SC_MAX_ARGS - 1)
        argv [argc++] = (char *) arg;
    va_end (args);
    argv [argc] = NULL;
    return sc_spawn (name, NULL, argv);
}

static inline void
sc_add_line (sc_proc_t *p, const char *text, size_t len)
{
    if (p->nlines == p->cap) {
        p->cap = p->cap? 2 * p->cap: 64;
        p->lines = (char **) realloc (p->lines, p->cap * sizeof (char *));
        assert_non_null (p->lines);
    }
    p->lines [p->nlines++] = strndup (text, len);
}

//  Read what one process has written so far (never blocks)
static inline void
sc_read (sc_proc_t *p)
{
    while (p->fd >= 0) {
        char buf [8192];
        ssize_t n = read (p->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;                 //  EAGAIN: nothing more now
        if (n == 0) {               //  EOF: keep an unfinished last line
            if (p->partial_len)
                sc_add_line (p, p->partial, p->partial_len);
            p->partial_len = 0;
            close (p->fd);
            p->fd = -1;
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf [i] == '\n') {
                sc_add_line (p, p->partial, p->partial_len);
                p->partial_len = 0;
            }
            else
            if (p->partial_len < sizeof p->partial - 1)
                p->partial [p->partial_len++] = buf [i];
        }
    }
}

//  Wait up to timeout_ms for output from any process, and read it all
static inline void
sc_pump (int timeout_ms)
{
    struct pollfd fds [SC_MAX_PROCS];
    sc_proc_t *who [SC_MAX_PROCS];
    int n = 0;
    for (int i = 0; i < SC_MAX_PROCS; i++)
        if (sc.procs [i].used && sc.procs [i].fd >= 0) {
            fds [n] = (struct pollfd) { .fd = sc.procs [i].fd, .events = POLLIN };
            who [n++] = &sc.procs [i];
        }
    if (n == 0) {
        sc_sleep_ms (timeout_ms);
        return;
    }
    if (poll (fds, (nfds_t) n, timeout_ms) <= 0)
        return;
    for (int i = 0; i < n; i++)
        if (fds [i].revents)
            sc_read (who [i]);
}

//  Keep reading every process's output for ms milliseconds
static inline void
sc_pump_for (int ms)
{
    int64_t deadline = sc_now_ms () + ms;
    for (int64_t left = ms; left > 0; left = deadline - sc_now_ms ())
        sc_pump (left < 100? (int) left: 100);
}

//  Has the process ended? Does not reap it (its pid, hence its process
//  group id, stays ours until sc_reap).
static inline bool
sc_ended (sc_proc_t *p)
{
    if (p->reaped)
        return true;
    siginfo_t info;
    memset (&info, 0, sizeof info);
    if (waitid (P_PID, (id_t) p->pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
        return errno == ECHILD;
    return info.si_pid == p->pid;
}

static inline void
sc_reap (sc_proc_t *p)
{
    if (p->reaped)
        return;
    //  stragglers of its group (a shell's children) go with it
    kill (-p->pid, SIGKILL);
    while (waitpid (p->pid, &p->status, 0) < 0 && errno == EINTR)
        ;
    p->reaped = true;
    sc_read (p);
}

//  Send a signal to the process itself (not its group)
static inline void
sc_signal (sc_proc_t *p, int sig)
{
    assert_false (p->reaped);
    assert_int_equal (kill (p->pid, sig), 0);
}

//  Wait up to timeout_ms for the process to end; reap it. true if it did.
static inline bool
sc_wait_exit (sc_proc_t *p, int timeout_ms)
{
    int64_t deadline = sc_now_ms () + timeout_ms;
    while (!sc_ended (p)) {
        int64_t left = deadline - sc_now_ms ();
        if (left <= 0)
            return false;
        sc_pump (left < 50? (int) left: 50);
    }
    //  collect its last output (EOF), bounded: a grandchild may hold the pipe
    for (int i = 0; i < 20 && p->fd >= 0; i++)
        sc_pump (50);
    sc_reap (p);
    return true;
}

//  End processes: SIGTERM to each group, a grace period, then SIGKILL
static inline void
sc_stop_all (sc_proc_t **procs, int n)
{
    for (int i = 0; i < n; i++)
        if (!procs [i]->reaped) {
            kill (-procs [i]->pid, SIGTERM);
            kill (-procs [i]->pid, SIGCONT);    //  a stopped one must run to end
        }
    int64_t deadline = sc_now_ms () + SC_GRACE_MS;
    for (int i = 0; i < n; i++) {
        while (!sc_ended (procs [i]) && sc_now_ms () < deadline)
            sc_pump (20);
        sc_reap (procs [i]);
    }
}

static inline void
sc_print_output (sc_proc_t *p)
{
    sc_read (p);
    fprintf (stderr, "---- output of %s (pid %d):\n", p->label, (int) p->pid);
    for (size_t i = 0; i < p->nlines; i++)
        fprintf (stderr, "  %s\n", p->lines [i]);
    if (p->partial_len)
        fprintf (stderr, "  %.*s\n", (int) p->partial_len, p->partial);
}

static inline void
sc_print_all (void)
{
    for (int i = 0; i < SC_MAX_PROCS; i++)
        if (sc.procs [i].used)
            sc_print_output (&sc.procs [i]);
}

//  Run a command to its end, with a timeout; returns the process (reaped,
//  with all its output) or fails the test.
static inline sc_proc_t *
sc_run (const char *label, char *const *env, char *const *argv, int timeout_ms)
{
    sc_proc_t *p = sc_spawn (label, env, argv);
    if (!sc_wait_exit (p, timeout_ms)) {
        sc_print_output (p);
        fail_msg ("%s did not finish within %d ms", label, timeout_ms);
    }
    return p;
}

//  Forget a reaped process (frees its slot and its lines)
static inline void
sc_release (sc_proc_t *p)
{
    assert_true (p->reaped);
    if (p->fd >= 0)
        close (p->fd);
    if (p->in >= 0)
        close (p->in);
    for (size_t j = 0; j < p->nlines; j++)
        free (p->lines [j]);
    free (p->lines);
    memset (p, 0, sizeof *p);
}

static inline int
sc_exit_code (sc_proc_t *p)
{
    return p->reaped && WIFEXITED (p->status)? WEXITSTATUS (p->status): -1;
}

//  ---------------------------------------------------------------------
//  Peer event lines: "EVENT name id endpoint [detail]"

typedef struct {
    char event [16], name [80], id [40], endpoint [136], detail [32];
} sc_event_t;

static inline bool
sc_parse_event (const char *line, sc_event_t *ev)
{
    memset (ev, 0, sizeof *ev);
    int n = sscanf (line, "%15s %79s %39s %135s %31s", ev->event, ev->name, ev->id,
                    ev->endpoint, ev->detail);
    return n >= 4;
}

//  Index of the first line at or after `from` that is event `event` about
//  peer `who` (its name or its id; NULL = anybody) with detail `detail`
//  (NULL = any). -1 if none (yet).
static inline long
sc_find (sc_proc_t *p, size_t from, const char *event, const char *who, const char *detail)
{
    for (size_t i = from; i < p->nlines; i++) {
        sc_event_t ev;
        if (!sc_parse_event (p->lines [i], &ev) || strcmp (ev.event, event))
            continue;
        if (who && strcmp (ev.name, who) && strcmp (ev.id, who))
            continue;
        if (detail && strcmp (ev.detail, detail))
            continue;
        return (long) i;
    }
    return -1;
}

//  Wait up to timeout_ms for such a line; -1 on timeout
static inline long
sc_wait_event (sc_proc_t *p, size_t from, const char *event, const char *who,
               const char *detail, int timeout_ms)
{
    int64_t deadline = sc_now_ms () + timeout_ms;
    while (true) {
        sc_read (p);
        long at = sc_find (p, from, event, who, detail);
        if (at >= 0)
            return at;
        int64_t left = deadline - sc_now_ms ();
        if (left <= 0 || (p->fd < 0 && sc_ended (p)))
            return -1;
        sc_pump (left < 100? (int) left: 100);
    }
}

//  Wait for the line, or print every process's output and fail
#define SC_EXPECT(p, from, event, who, detail, timeout_ms) \
    sc_expect_ (p, from, event, who, detail, timeout_ms, __FILE__, __LINE__)

static inline long
sc_expect_ (sc_proc_t *p, size_t from, const char *event, const char *who,
            const char *detail, int timeout_ms, const char *file, int line)
{
    long at = sc_wait_event (p, from, event, who, detail, timeout_ms);
    if (at < 0) {
        sc_print_all ();
        fail_msg ("%s:%d: %s did not print %s %s%s%s within %d ms", file, line, p->label,
                  event, who? who: "(anybody)", detail? " ": "", detail? detail: "",
                  timeout_ms);
    }
    return at;
}

//  ---------------------------------------------------------------------
//  A minimal JSON reader, enough to pick numbers out of `stats --json`.
//  Input comes from our own tool; it is still read with bounds.

static inline const char *
sc_json_ws (const char *p)
{
    while (p && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
        p++;
    return p;
}

//  p at a string's opening quote; returns the pointer after the closing one
static inline const char *
sc_json_string_end (const char *p)
{
    if (*p != '"')
        return NULL;
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p [1])
            p++;
    return *p == '"'? p + 1: NULL;
}

static inline const char *
sc_json_skip (const char *p, int depth)
{
    p = sc_json_ws (p);
    if (!p || depth > 32)
        return NULL;
    if (*p == '"')
        return sc_json_string_end (p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{'? '}': ']';
        p = sc_json_ws (p + 1);
        if (*p == close)
            return p + 1;
        while (p && *p) {
            if (close == '}') {
                p = sc_json_string_end (sc_json_ws (p));
                p = sc_json_ws (p);
                if (!p || *p != ':')
                    return NULL;
                p++;
            }
            p = sc_json_ws (sc_json_skip (p, depth + 1));
            if (!p)
                return NULL;
            if (*p == ',') {
                p++;
                continue;
            }
            return *p == close? p + 1: NULL;
        }
        return NULL;
    }
    const char *start = p;
    while (*p && strchr ("0123456789+-.eEtruefalsn", *p))
        p++;
    return p > start? p: NULL;
}

//  Value of member `key` of the object at p, or NULL
static inline const char *
sc_json_member (const char *p, const char *key)
{
    p = sc_json_ws (p);
    if (!p || *p != '{')
        return NULL;
    p = sc_json_ws (p + 1);
    size_t klen = strlen (key);
    while (p && *p == '"') {
        const char *end = sc_json_string_end (p);
        if (!end)
            return NULL;
        bool match = (size_t) (end - p - 2) == klen && memcmp (p + 1, key, klen) == 0;
        p = sc_json_ws (end);
        if (*p != ':')
            return NULL;
        p = sc_json_ws (p + 1);
        if (match)
            return p;
        p = sc_json_ws (sc_json_skip (p, 0));
        if (!p || *p != ',')
            return NULL;
        p = sc_json_ws (p + 1);
    }
    return NULL;
}

//  Follow keys (NULL-terminated) from the top object; the number there
//  into *value. false if a key is missing or the value is no number.
static inline bool
sc_json_u64 (const char *json, uint64_t *value, ...)
{
    va_list args;
    va_start (args, value);
    const char *p = json;
    const char *key;
    while (p && (key = va_arg (args, const char *)))
        p = sc_json_member (p, key);
    va_end (args);
    if (!p || *p < '0' || *p > '9')
        return false;
    *value = strtoull (p, NULL, 10);
    return true;
}

//  A counter of one node as `stats --json` reports it (absent = 0)
static inline uint64_t
sc_peer_counter (const char *json, const char *node_id, const char *name)
{
    uint64_t value = 0;
    if (!sc_json_u64 (json, &value, "peers", node_id, "counters", name, NULL))
        value = 0;
    return value;
}

//  Run `meshbus stats --json` in this test's cluster until `node_ids`
//  (NULL-terminated) all answered; the JSON (caller frees) or NULL.
static inline char *
sc_stats (const char *const *node_ids, int attempts)
{
    for (int attempt = 0; attempt < attempts; attempt++) {
        char *argv [] = { (char *) sc_tool (), "stats", "--json", "--timeout", "2",
                          "--cluster", sc.cluster, "--port", sc.port, NULL };
        sc_proc_t *p = sc_run ("stats", NULL, argv, 15000);
        bool complete = sc_exit_code (p) == 0 && p->nlines > 0;
        const char *json = complete? p->lines [p->nlines - 1]: NULL;
        for (int i = 0; complete && node_ids [i]; i++)
            complete = sc_json_member (sc_json_member (json, "peers"), node_ids [i]) != NULL;
        char *copy = complete? strdup (json): NULL;
        if (!complete && attempt + 1 == attempts)
            sc_print_output (p);
        sc_release (p);
        if (copy)
            return copy;
    }
    return NULL;
}

//  ---------------------------------------------------------------------
//  Pub-sub helpers: feeding a process's stdin, the tool in this test's
//  cluster, stderr event lines ("GAP <peer> <n>"), memory of a process

//  Write all of data to the process's stdin (blocking: the test waits for
//  the child to read), or fail the test
static inline void
sc_write_input (sc_proc_t *p, const void *data, size_t size)
{
    assert_true (p->in >= 0);
    const char *at = (const char *) data;
    while (size) {
        ssize_t n = write (p->in, at, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail_msg ("writing to %s's stdin: %s", p->label, strerror (errno));
        at += n;
        size -= (size_t) n;
    }
}

static inline void
sc_printf_input (sc_proc_t *p, const char *format, ...)
{
    char text [SC_LINE_MAX];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (text, sizeof text, format, args);
    va_end (args);
    assert_true (n >= 0 && (size_t) n < sizeof text);
    sc_write_input (p, text, (size_t) n);
}

//  End of input for the process (EOF on its stdin)
static inline void
sc_close_input (sc_proc_t *p)
{
    if (p->in >= 0)
        close (p->in);
    p->in = -1;
}

//  `meshbus ARGS...` (NULL-terminated) in this test's cluster and beacon
//  port; io NULL or how to connect stdin / stdout
static inline sc_proc_t *
sc_mesh (const char *label, const sc_io_t *io, ...)
{
    char *argv [SC_MAX_ARGS];
    int argc = 0;
    argv [argc++] = (char *) sc_tool ();
    va_list args;
    va_start (args, io);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < SC_MAX_ARGS - 5)
        argv [argc++] = (char *) arg;
    va_end (args);
    argv [argc++] = "--cluster";
    argv [argc++] = sc.cluster;
    argv [argc++] = "--port";
    argv [argc++] = sc.port;
    argv [argc] = NULL;
    return sc_spawn_ex (label, NULL, argv, io);
}

//  Lines from `from` on that start with prefix
static inline size_t
sc_count_prefix (sc_proc_t *p, size_t from, const char *prefix)
{
    size_t count = 0, len = strlen (prefix);
    for (size_t i = from; i < p->nlines; i++)
        count += strncmp (p->lines [i], prefix, len) == 0;
    return count;
}

//  Sum of the counts on event lines "NAME <peer> <count>" (as `meshbus
//  sub` writes them to stderr) from `from` on; *lines (may be NULL) gets
//  how many such lines there were
static inline uint64_t
sc_event_sum (sc_proc_t *p, size_t from, const char *name, size_t *lines)
{
    uint64_t sum = 0;
    size_t found = 0;
    for (size_t i = from; i < p->nlines; i++) {
        char event [32], peer [64];
        unsigned long long count;
        if (sscanf (p->lines [i], "%31s %63s %llu", event, peer, &count) == 3
        &&  strcmp (event, name) == 0) {
            sum += count;
            found++;
        }
    }
    if (lines)
        *lines = found;
    return sum;
}

//  A "NNN kB" field of /proc/PID/status (VmRSS, VmHWM...) in KiB; -1 if
//  the process or the field is not there
static inline long
sc_proc_status_kib (pid_t pid, const char *field)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    long value = -1;
    size_t len = strlen (field);
    while (value < 0 && fgets (line, sizeof line, file))
        if (strncmp (line, field, len) == 0 && line [len] == ':')
            value = strtol (line + len + 1, NULL, 10);
    fclose (file);
    return value;
}

//  A counter node_id keeps about one of its peers, as `stats --json`
//  reports it (absent = 0)
static inline uint64_t
sc_link_counter (const char *json, const char *node_id, const char *peer_id, const char *name)
{
    uint64_t value = 0;
    if (!sc_json_u64 (json, &value, "peers", node_id, "peers", peer_id, "counters", name, NULL))
        value = 0;
    return value;
}

//  Make a process's stdin pipe hold at least bytes (so a test can write a
//  whole input at once without blocking); returns the capacity, -1 on error
static inline int
sc_input_capacity (sc_proc_t *p, int bytes)
{
    assert_true (p->in >= 0);
    return fcntl (p->in, F_SETPIPE_SZ, bytes);
}

//  ---------------------------------------------------------------------
//  An emulated LAN: the project's lab (tests/lab/lab.sh: network
//  namespaces on a bridge).
//  One per test: sc_lan_or_skip() brings it up (or skips the test with the
//  reason), sc_lan_down() in the teardown takes it down after the test's
//  processes were ended by pid.

typedef struct {
    char path [1024];               //  lab.sh
    char prefix_env [64];           //  "LAB_PREFIX=..."
    char *env [2];
    bool up;
} sc_lan_t;

static sc_lan_t sc_lan;

//  Where lab.sh is ($MESHBUS_SRC/tests/lab/lab.sh) and a prefix of this
//  process's own (tag + pid), so several labs run at once
static inline void
sc_lan_init (const char *tag)
{
    const char *src = getenv ("MESHBUS_SRC");
    snprintf (sc_lan.path, sizeof sc_lan.path, "%s/tests/lab/lab.sh",
              src && *src? src: ".");
    snprintf (sc_lan.prefix_env, sizeof sc_lan.prefix_env, "LAB_PREFIX=%s%d", tag,
              (int) (getpid () % 100000));
    sc_lan.env [0] = sc_lan.prefix_env;
    sc_lan.env [1] = NULL;
    sc_lan.up = false;
}

//  Run lab.sh COMMAND ARGS... (NULL-terminated) to its end; its exit code
//  (its output printed when not 0)
static inline int
sc_lan_cmd (const char *command, ...)
{
    char *argv [16];
    int argc = 0;
    argv [argc++] = sc_lan.path;
    argv [argc++] = (char *) command;
    va_list args;
    va_start (args, command);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < 15)
        argv [argc++] = (char *) arg;
    va_end (args);
    argv [argc] = NULL;
    char label [32];
    snprintf (label, sizeof label, "lab.sh %s", command);
    sc_proc_t *p = sc_run (label, sc_lan.env, argv, 60000);
    int rc = sc_exit_code (p);
    if (rc != 0)
        sc_print_output (p);
    sc_release (p);
    return rc;
}

//  Bring up hosts h1..hN, or skip the test saying why (not root, no
//  `ip netns`, namespaces cannot be made)
static inline void
sc_lan_or_skip (int hosts)
{
    if (geteuid () != 0) {
        print_message ("skipped: network namespaces need root\n");
        skip ();
    }
    if (access (sc_lan.path, X_OK) != 0) {
        print_message ("skipped: %s not found or not executable\n", sc_lan.path);
        skip ();
    }
    char *probe [] = { "ip", "netns", "list", NULL };
    sc_proc_t *p = sc_run ("ip netns", NULL, probe, 10000);
    int rc = sc_exit_code (p);
    sc_release (p);
    if (rc != 0) {
        print_message ("skipped: 'ip netns list' failed (exit %d)\n", rc);
        skip ();
    }
    char count [8];
    snprintf (count, sizeof count, "%d", hosts);
    sc_lan.up = true;               //  a half-made LAN is taken down too
    if (sc_lan_cmd ("up", count, NULL) != 0) {
        print_message ("skipped: 'lab.sh up %d' failed (no CAP_SYS_ADMIN or /run/netns?)\n",
                       hosts);
        skip ();
    }
}

static inline void
sc_lan_down (void)
{
    if (sc_lan.up && sc_lan_cmd ("down", NULL) != 0)
        fprintf (stderr, "scenario: lab.sh down failed (%s)\n", sc_lan.prefix_env);
    sc_lan.up = false;
}

//  `meshbus ARGS...` (NULL-terminated) on host hN through `lab.sh run`,
//  which execs into the namespace (the pid is the tool's), on the LAN
//  interface, in this test's cluster and beacon port
static inline sc_proc_t *
sc_lan_mesh (int host, const char *label, const sc_io_t *io, ...)
{
    char hostname [8];
    snprintf (hostname, sizeof hostname, "h%d", host);
    char *argv [SC_MAX_ARGS];
    int argc = 0;
    argv [argc++] = sc_lan.path;
    argv [argc++] = "run";
    argv [argc++] = hostname;
    argv [argc++] = (char *) sc_tool ();
    va_list args;
    va_start (args, io);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < SC_MAX_ARGS - 7)
        argv [argc++] = (char *) arg;
    va_end (args);
    argv [argc++] = "--iface";
    argv [argc++] = "eth0";
    argv [argc++] = "--cluster";
    argv [argc++] = sc.cluster;
    argv [argc++] = "--port";
    argv [argc++] = sc.port;
    argv [argc] = NULL;
    return sc_spawn_ex (label, sc_lan.env, argv, io);
}

//  ---------------------------------------------------------------------
//  Security: the suite runs the pattern scenarios a second time with
//  MESHBUS_CURVE / MESHBUS_TRUST set (tests/run.sh). The tool reads them
//  itself; a node the test makes in-process takes them from here.

static inline void
sc_secure_node (mesh_node_t *node)
{
    const char *curve = getenv ("MESHBUS_CURVE"), *trust = getenv ("MESHBUS_TRUST");
    const char *secret = getenv ("MESHBUS_SECRET");
    if (curve && *curve)
        assert_int_equal (mesh_node_set_curve (node, curve), 0);
    if (trust && *trust)
        assert_int_equal (mesh_node_set_trust (node, trust), 0);
    if (secret && *secret)
        assert_int_equal (mesh_node_set_secret (node, secret), 0);
}

//  ---------------------------------------------------------------------
//  cmocka fixtures

static inline int
sc_setup (void **state)
{
    (void) state;
    for (int i = 0; i < SC_MAX_PROCS; i++)
        assert_false (sc.procs [i].used);
    //  below the kernel's ephemeral range (32768..), so that no socket of
    //  another program sits on the port by chance
    sc.port_num = 20000 + (int) (sc_random () % 12000);
    snprintf (sc.port, sizeof sc.port, "%d", sc.port_num);
    snprintf (sc.cluster, sizeof sc.cluster, "sc-%d-%08x", (int) getpid (), sc_random ());
    sc.dir [0] = 0;
    return 0;
}

//  The test's scratch directory (data dirs, outputs of processes): made
//  on first use, removed with everything in it by sc_teardown
static inline const char *
sc_tmpdir (void)
{
    if (!sc.dir [0]) {
        snprintf (sc.dir, sizeof sc.dir, "/tmp/meshbus-sc-XXXXXX");
        assert_non_null (mkdtemp (sc.dir));
    }
    return sc.dir;
}

static inline int
sc_rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static inline int
sc_teardown (void **state)
{
    (void) state;
    sc_proc_t *live [SC_MAX_PROCS];
    int n = 0;
    for (int i = 0; i < SC_MAX_PROCS; i++)
        if (sc.procs [i].used)
            live [n++] = &sc.procs [i];
    sc_stop_all (live, n);
    for (int i = 0; i < n; i++)
        sc_release (live [i]);
    //  after the processes: none of them writes there any more
    if (sc.dir [0])
        nftw (sc.dir, sc_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    sc.dir [0] = 0;
    return 0;
}

#endif
