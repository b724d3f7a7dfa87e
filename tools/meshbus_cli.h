/*  meshbus_cli.h - shared by the subcommands of the meshbus tool  */
#ifndef MESHBUS_CLI_H_INCLUDED
#define MESHBUS_CLI_H_INCLUDED

#include "meshbus.h"
#include <stdarg.h>
#include <string.h>

#define CLI_MAX_SEEDS 16
#define streq_(a, b) (strcmp ((a), (b)) == 0)

typedef struct {
    const char *name, *cluster, *iface, *port, *bind, *id;
    const char *suspect_ms, *gone_ms, *beacon_ms, *hwm;
    const char *curve, *trust, *secret;
    const char *seeds [CLI_MAX_SEEDS];
    int seed_count;
    bool no_beacon, verbose;
} cli_opts_t;

//  Start a node from the common options; NULL after printing why.
mesh_node_t *
    cli_node_new (const cli_opts_t *opts, const char *default_name);
//  Print "meshbus: why" to stderr; returns 1 (the exit status).
int
    cli_fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
int
    cli_seconds (const char *text, double *seconds);
const char *
    cli_take (int *argc, char **argv, const char *flag);
bool
    cli_take_flag (int *argc, char **argv, const char *flag);
int
    cli_no_extra (int argc, char **argv, int expected);
bool
    cli_interrupted (void);
//  Print one event as a line: NAME peer-name peer-id endpoint [detail]
void
    cli_print_event (const mesh_event_t *event);
//  Print our JSON stats as "path value" lines (bounded, tolerant parser)
int
    cli_print_flat_json (const char *json, const char *prefix);

int cli_peers (cli_opts_t *opts, int argc, char **argv);
int cli_stats (cli_opts_t *opts, int argc, char **argv);
int cli_demo (cli_opts_t *opts, int argc, char **argv);
int cli_pub (cli_opts_t *opts, int argc, char **argv);
int cli_sub (cli_opts_t *opts, int argc, char **argv);
int cli_bench (cli_opts_t *opts, int argc, char **argv);
//  request-reply: tools/cli_reqrep.c
int cli_serve (cli_opts_t *opts, int argc, char **argv);
int cli_call (cli_opts_t *opts, int argc, char **argv);
//  pipeline: tools/cli_pipeline.c
int cli_push (cli_opts_t *opts, int argc, char **argv);
int cli_work (cli_opts_t *opts, int argc, char **argv);
int cli_dlq (cli_opts_t *opts, int argc, char **argv);
int cli_keygen (cli_opts_t *opts, int argc, char **argv);    //  tools/cli_keygen.c

//  bench reqrep (tools/cli_bench_reqrep.c) and bench pipeline
//  (tools/cli_bench_pipeline.c): size and count as given (count 0 = the
//  benchmark's default); exit status.
int cli_bench_reqrep (cli_opts_t *opts, size_t size, size_t count, bool json);
int cli_bench_pipeline (cli_opts_t *opts, size_t size, size_t count, bool json);
//  bench handshake (tools/cli_bench_handshake.c): keys and count 0 = defaults
int cli_bench_handshake (cli_opts_t *opts, size_t keys, size_t count, bool json);

//  A count flag: a number >= min, or -1 after printing why (naming what).
int cli_count (const char *text, const char *what, long min, long *count);
//  Lines of stdin, read between dispatches of a node (tools/cli_lines.c)
typedef struct {
    char buf [65536];
    size_t len;
    bool eof;
} cli_lines_t;
//  1 = a line in out (NUL-terminated, newline removed, cut to cap - 1),
//  0 = none yet (the node was dispatched, waiting up to wait_ms for input),
//  -1 = end of input
int cli_next_line (cli_lines_t *r, mesh_node_t *node, char *out, size_t cap, int wait_ms);

//  Benchmarks' shared arithmetic (tools/cli_bench_util.c): monotonic ns,
//  qsort comparators, the pct-th percentile of sorted ns samples in us,
//  and the median of values (sorts them).
uint64_t cli_now_ns (void);
int cli_cmp_u64 (const void *a, const void *b);
int cli_cmp_double (const void *a, const void *b);
double cli_pct_us (const uint64_t *sorted, size_t n, int pct);
double cli_median (double *values, size_t n);
//  Raw side of the round-trip benchmarks: echo every [routing id, body] a
//  ROUTER gets back to its sender until the context ends, then close it.
void cli_bench_echo (void *router);

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
