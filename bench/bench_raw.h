/*  =========================================================================
    bench_raw - the raw libzmq side of every benchmark, and the method
    that puts it beside meshbus

    Speed is a ratio against raw libzmq measured in the same process at the
    same time, never an absolute figure: the machines this runs on are
    shared and noisy, and a ratio survives noise that hits both sides. So
    every benchmark is built from the same pieces: raw sockets each in a
    context of its own (as separate processes would have), reader threads
    that count or echo what arrives, and two loops that run raw and meshbus
    side by side (bench_interleave for round trips, bench_alternate for
    rounds of throughput).

    Who runs a benchmark (the `meshbus bench` entry or a program of bench/)
    fills bench_host first: the name its failures start with, how it hears
    an interrupt, where progress goes.
    ========================================================================= */

#ifndef MESHBUS_BENCH_RAW_H_INCLUDED
#define MESHBUS_BENCH_RAW_H_INCLUDED

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define BENCH_BLOCK         1000        //  round trips per turn before switching side
#define BENCH_WARMUP        1000        //  round trips per side before measuring
#define BENCH_MAX_SERVERS   8           //  echoing ROUTERs behind one DEALER

typedef struct {
    const char *prog;                   //  failure lines start "PROG: "
    bool (*interrupted) (void);         //  NULL: never
    //  progress: round r (from 1) of rounds on side ("meshbus" or "raw
    //  libzmq") of the benchmark label; label NULL: the progress ends.
    //  NULL: no progress shown
    void (*progress) (const char *label, size_t r, size_t rounds, const char *side);
    bool curve;                         //  the run is over CURVE: raw pays it too
} bench_host_t;

extern bench_host_t bench_host;

//  Print "PROG: why" on stderr; returns 1 (a failed run)
int
    bench_fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
bool
    bench_interrupted (void);

//  The flags of a bench program: --NAME N (a whole number within min..max
//  into *value) or, with value NULL, --NAME alone (sets *flag)
typedef struct {
    const char *name;
    size_t *value;
    size_t min, max;
    bool *flag;
} bench_arg_t;

#define BENCH_NUM(name, value, min, max)    { name, value, min, max, NULL }
#define BENCH_FLAG(name, flag)              { name, NULL, 0, 0, flag }
#define BENCH_ARGS_END                      { NULL, NULL, 0, 0, NULL }

//  args ends with a NULL name. 0, or 2 after printing "usage: USAGE"
//  and, for a number out of range, which one
int
    bench_args (int argc, char **argv, const bench_arg_t *args, const char *usage);

//  ---------------------------------------------------------------------
//  Clock and statistics

uint64_t
    bench_now_ns (void);
int
    bench_cmp_u64 (const void *a, const void *b);
int
    bench_cmp_double (const void *a, const void *b);
//  The pct-th percentile of sorted ns samples, in us
double
    bench_pct_us (const uint64_t *sorted, size_t n, int pct);
//  Median, lowest and highest of n values (sorts a copy, not the values)
typedef struct {
    double med, lo, hi;
} bench_stat_t;

bench_stat_t
    bench_stat (const double *values, size_t n);

//  ---------------------------------------------------------------------
//  Raw sockets

//  A socket with linger 0 and, when hwm > 0, its send high-water mark at
//  hwm (the receiving side sets its own: bench_raw_reader_open); exactly
//  the marks a user would set for the job, no more
void *
    bench_raw_socket (void *ctx, int type, int hwm);
//  Close sock (when set), then end ctx (when set); both set to NULL
void
    bench_raw_end (void **sock, void **ctx);
//  Start fn (arg) in a thread; running set. 0, or 1 after saying why
int
    bench_thread (pthread_t *thread, bool *running, void *(*fn) (void *), void *arg,
                  const char *what);
//  Bind bound on tcp loopback (any port) and connect to it from
//  connecting (NULL: none); the endpoint in endpoint. 0, or 1 after saying why
int
    bench_raw_link (void *bound, void *connecting, char *endpoint, size_t size);

//  A socket in a context of its own, read by a thread of its own that
//  hands every frame to fn, until the context ends
typedef struct _bench_raw_reader_t bench_raw_reader_t;
struct _bench_raw_reader_t {
    void *ctx, *sock;
    pthread_t thread;
    bool running;
    void (*fn) (bench_raw_reader_t *reader, zmq_msg_t *frame);
    void *arg;
};

//  Context and socket (receive high-water mark hwm when > 0): set
//  options, bind or connect, then run
int
    bench_raw_reader_open (bench_raw_reader_t *reader, int type, int hwm);
int
    bench_raw_reader_run (bench_raw_reader_t *reader,
                          void (*fn) (bench_raw_reader_t *, zmq_msg_t *), void *arg);
//  Ends the context (which unblocks the thread), joins, closes
void
    bench_raw_reader_stop (bench_raw_reader_t *reader);
//  A reader's fn that sends every frame back (a ROUTER: to its sender)
void
    bench_raw_echo (bench_raw_reader_t *reader, zmq_msg_t *frame);

//  Raw request-reply: one DEALER connected to N echoing ROUTERs
//  (libzmq spreads round robin)
typedef struct {
    bench_raw_reader_t servers [BENCH_MAX_SERVERS];
    size_t nservers;
    void *ctx, *dealer;
    const char *buf;
    size_t size;
} bench_raw_rr_t;

int
    bench_raw_rr_start (bench_raw_rr_t *rr, size_t servers, int hwm, const char *buf,
                        size_t size);
//  One round trip of size bytes: ns, 0 on failure
uint64_t
    bench_raw_round_trip (void *rr);
//  count calls with window in flight: ns for all, 0 on failure
uint64_t
    bench_raw_window (bench_raw_rr_t *rr, size_t count, size_t window);
void
    bench_raw_rr_stop (bench_raw_rr_t *rr);

//  ---------------------------------------------------------------------
//  Side by side

//  One round trip: ns, 0 on failure (the op says nothing; the loop does)
typedef uint64_t (bench_op_fn) (void *arg);

//  BENCH_WARMUP round trips each, then count each in interleaved blocks
//  of BENCH_BLOCK (who goes first alternates: neither side always runs
//  right after a switch). Samples sorted. 0, or 1 after saying why.
int
    bench_interleave (bench_op_fn *raw, void *raw_arg, bench_op_fn *mesh, void *mesh_arg,
                      size_t count, uint64_t *raw_ns, uint64_t *mesh_ns);

//  One round of count messages: ns, 0 on failure (after saying why)
typedef uint64_t (bench_round_fn) (void *arg, size_t count);

//  rounds rounds of count each side, alternating, who goes first
//  alternating too (meshbus first in odd rounds, or in even ones when
//  mesh_first); rate of each round in count/s. Progress says "LABEL:
//  round r of R, side". 0, or 1.
int
    bench_alternate (const char *label, size_t rounds, bool mesh_first,
                     bench_round_fn *raw, void *raw_arg, bench_round_fn *mesh, void *mesh_arg,
                     size_t count, double *raw_rate, double *mesh_rate);

//  A warm-up round of warm each, then bench_alternate; the medians of the
//  rounds in *raw_med and *mesh_med (the two sides may be any two
//  configurations: the scale programs set one pattern against many)
int
    bench_duel (const char *label, size_t rounds, bench_round_fn *raw, void *raw_arg,
                bench_round_fn *mesh, void *mesh_arg, size_t warm, size_t count,
                double *raw_med, double *mesh_med);

#endif
