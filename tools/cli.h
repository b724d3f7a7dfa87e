/*  =========================================================================
    cli.h - shared by the subcommands of the meshbus tool

    Each subcommand is a cli_cmd_t: its name, synopsis, summary and flag
    lines (the one source of `meshbus CMD --help`, of `meshbus --help` and
    of the man page), and the function that runs it. The function parses
    its own flags with cli_getopt (getopt_long over its own table followed
    by the common flags), so a flag means one thing per subcommand and
    `--help` is a flag like any other.

    Exit status everywhere: 0 done, 1 the job failed (one line on stderr
    says which), 2 usage error (CLI_USAGE).
    ========================================================================= */

#ifndef MESHBUS_CLI_H_INCLUDED
#define MESHBUS_CLI_H_INCLUDED

#include "meshbus.h"
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CLI_MAX_SEEDS   16
#define CLI_USAGE       2           //  exit status of a usage error
#define CLI_FAILED      1           //  exit status of a failed job
#define streq_(a, b)    (strcmp ((a), (b)) == 0)

typedef struct {
    const char *name, *cluster, *iface, *port, *bind, *id;
    const char *suspect_ms, *gone_ms, *beacon_ms, *hwm;
    const char *curve, *trust, *secret;
    const char *seeds [CLI_MAX_SEEDS];
    int seed_count;
    bool no_beacon, verbose, curve_ephemeral;
} cli_opts_t;

typedef struct _cli_cmd_t cli_cmd_t;
struct _cli_cmd_t {
    const char *name;
    int (*fn) (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv);
    const char *synopsis;           //  after "meshbus NAME "
    const char *summary;            //  one line
    const char *help;               //  what it does, then its flags, one per line
};

//  The subcommands, in the order --help lists them
extern const cli_cmd_t cli_cmd_demo, cli_cmd_peers, cli_cmd_stats, cli_cmd_pub,
    cli_cmd_sub, cli_cmd_serve, cli_cmd_call, cli_cmd_push, cli_cmd_work, cli_cmd_dlq,
    cli_cmd_send, cli_cmd_recv, cli_cmd_keygen, cli_cmd_bench, cli_cmd_top, cli_cmd_monitor;

//  ---------------------------------------------------------------------
//  Flags (tools/cli_args.c)

typedef struct {
    const cli_cmd_t *cmd;
    cli_opts_t *opts;
    int argc;
    char **argv;
    struct option longs [80];
    char shorts [64];
    int status;                     //  exit status once cli_getopt said CLI_STOP
    int npos;                       //  positional arguments, once parsed
    char **pos;
} cli_args_t;

#define CLI_STOP    (-2)            //  cli_getopt: exit now with args->status
#define CLI_OPT(n)  (0x200 + (n))   //  keys of a subcommand's long-only flags

//  Prepare to parse argv (argv [0] is the subcommand's name). own is the
//  subcommand's table (NULL-terminated; its names shadow common flags of
//  the same name), shorts its short flags in getopt syntax.
void
    cli_args_init (cli_args_t *args, const cli_cmd_t *cmd, cli_opts_t *opts,
                   const struct option *own, const char *shorts, int argc, char **argv);
//  Each subcommand loops on cli_getopt with a switch of its own flags:
//  the loops look alike, on purpose, since what each flag means, its range
//  and its error belong next to the command that reads it.
//  The next flag of the subcommand's own (its val, optarg set), -1 when
//  all are parsed (positionals in args->pos, the environment applied to
//  the common flags and every common value checked), or CLI_STOP after
//  --help (status 0) or a usage error (status 2, said on stderr).
int
    cli_getopt (cli_args_t *args);
//  Positional count check: CLI_STOP-style status (0 = fine, 2 = said why)
int
    cli_positionals (cli_args_t *args, int min, int max);
//  Print "meshbus CMD: why" and the synopsis to stderr; returns 2.
int
    cli_usage (const cli_cmd_t *cmd, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
//  Print "meshbus: why" to stderr; returns 1 (a failed job).
int
    cli_fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
//  Finite numbers in [min, max] only; -1 after saying why (usage error)
int
    cli_seconds (const cli_cmd_t *cmd, const char *flag, const char *text,
                 double min, double max, double *seconds);
int
    cli_long (const cli_cmd_t *cmd, const char *flag, const char *text,
              long min, long max, long *value);
//  A subject, queue or service name (wildcards: a pattern): -1 after
//  saying exactly which rule it breaks (usage error)
int
    cli_name (const cli_cmd_t *cmd, const char *what, const char *name, bool wildcards);
//  Print the full help of a subcommand (what `meshbus CMD --help` prints)
void
    cli_print_help (FILE *out, const cli_cmd_t *cmd);

//  Start a node from the common options; NULL after printing why.
mesh_node_t *
    cli_node_new (const cli_opts_t *opts, const char *default_name);
bool
    cli_interrupted (void);

//  ---------------------------------------------------------------------
//  Bodies and output (tools/cli_io.c)

//  -H KEY=VALUE, repeatable
typedef struct {
    const char *list [2 * MESH_MAX_HEADERS];
    size_t count;                   //  pairs
} cli_headers_t;

//  Take one -H value; -1 after saying why (usage error)
int
    cli_header_add (const cli_cmd_t *cmd, cli_headers_t *headers, const char *text);

//  Lines of stdin, read between dispatches of a node, without stdio so
//  poll() sees what is really waiting. A line may be as long as the body
//  limit; a longer one is refused whole (never split).
typedef struct {
    char *buf;
    size_t len, cap;
    size_t scan;                    //  bytes of buf known to hold no newline
    bool eof;
    bool skipping;                  //  inside a refused over-long line
    size_t refused;                 //  over-long lines refused
} cli_lines_t;

//  1 = a line (*line, *size; valid until the next call; newline removed),
//  0 = none yet (the node was dispatched, up to wait_ms for input),
//  -1 = end of input. A refused line is said on stderr and counted.
int
    cli_next_line (cli_lines_t *r, mesh_node_t *node, const char **line, size_t *size,
                   int wait_ms);
void
    cli_lines_free (cli_lines_t *r);
//  A whole file ("-" = stdin) as one body; NULL after saying why
char *
    cli_read_file (const char *path, size_t *size);
void
    cli_headers_free (cli_headers_t *headers);
//  --ctype TYPE, checked against the limit; -1 after saying why
int
    cli_ctype (const cli_cmd_t *cmd, const char *text, const char **ctype);

//  The body of pub, push, call and send: with --file PATH (- = stdin) the
//  whole file; else the argument at args->pos [index], where "-" is stdin
//  line by line (lines set) when lines_ok, all of stdin otherwise; no
//  argument: empty. 0, or the exit status after saying why.
typedef struct {
    char *data;
    size_t size;
    bool lines;                     //  one message per line of stdin
} cli_body_t;

int
    cli_body_take (cli_args_t *args, int index, const char *file, bool lines_ok,
                   cli_body_t *body);
void
    cli_body_free (cli_body_t *body);

//  Writes to stdout that notice a closed reader (EPIPE): then they return
//  -1 and cli_stdout_closed() is true from then on.
int
    cli_write (const void *data, size_t size);
int
    cli_flush (void);
bool
    cli_stdout_closed (void);
//  Body escaped for one line: \n \t \r \\ and \xHH for control bytes and
//  bytes that are not valid UTF-8; valid UTF-8 as it is
int
    cli_write_escaped (const void *data, size_t size);
//  A JSON string of text (must be valid UTF-8)
int
    cli_write_json_string (const char *text, size_t size);
//  Is data valid UTF-8 (no overlongs, no surrogates)?
bool
    cli_utf8_valid (const void *data, size_t size);

//  One live line of progress on stderr, only on a terminal and not quiet
typedef struct {
    bool on;
    uint64_t started, shown;
} cli_progress_t;

void
    cli_progress_init (cli_progress_t *p, bool quiet);
void
    cli_progress_show (cli_progress_t *p, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void
    cli_progress_end (cli_progress_t *p);

//  ---------------------------------------------------------------------
//  Children (tools/cli_spawn.c)

//  Run cmd with /bin/sh -c in its own process group, body on its stdin,
//  until it exits or deadline (ms since the epoch, 0 = none), when the
//  whole group is killed, as it is when the user interrupts us. Returns
//  its exit status (0..255, 128 + signal), -1 could not run (errno), -2
//  killed at the deadline or interrupted. Its stdout in *out
//  (malloc'd, at most max_out bytes kept), size in *out_size.
int
    cli_spawn_run (const char *cmd, const void *body, size_t size, uint64_t deadline,
                   size_t max_out, char **out, size_t *out_size);

//  ---------------------------------------------------------------------
//  Shared by subcommands

//  Print one event as a line: NAME peer-name peer-id endpoint [detail]
void
    cli_print_event (const mesh_event_t *event);
//  Print our JSON stats as "path value" lines (bounded, tolerant parser)
int
    cli_print_flat_json (const char *json, const char *prefix);

//  Demo steps of the patterns (tools/cli_demo_reqrep.c,
//  tools/cli_demo_pipeline.c): nodes [0..count) are started and have met;
//  a step prints what it does, pumps with cli_demo_pump and returns 0,
//  or 1 after printing why.
int cli_demo_reqrep (mesh_node_t **nodes, int count, int64_t deadline);
int cli_demo_pipeline (mesh_node_t **nodes, int count, int64_t deadline);
//  Dispatch every node once (5 ms each), print their events; false once
//  deadline (ms since the epoch) passed or the user interrupted.
bool cli_demo_pump (mesh_node_t **nodes, int count, int64_t deadline);

#endif
