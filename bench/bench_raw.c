/*  =========================================================================
    bench_raw - the raw libzmq side of every benchmark, and the method
    that puts it beside meshbus (bench_raw.h says why it is one file)
    ========================================================================= */

#include "bench_raw.h"
#include "meshbus.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bench_host_t bench_host = { .prog = "bench" };

int
bench_fail (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "%s: ", bench_host.prog);
    vfprintf (stderr, fmt, args);
    fprintf (stderr, "\n");
    va_end (args);
    return 1;
}

bool
bench_interrupted (void)
{
    return bench_host.interrupted && bench_host.interrupted ();
}

int
bench_args (int argc, char **argv, const bench_arg_t *args, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        const bench_arg_t *arg = args;
        while (arg->name && !(strncmp (argv [i], "--", 2) == 0
                              && strcmp (argv [i] + 2, arg->name) == 0))
            arg++;
        if (arg->name && !arg->value) {
            *arg->flag = true;
            continue;
        }
        char *end = NULL;
        unsigned long long n = arg->name && i + 1 < argc? strtoull (argv [++i], &end, 10): 0;
        if (!end || *end || end == argv [i] || n < arg->min || n > arg->max) {
            if (end)
                fprintf (stderr, "%s: --%s takes a whole number in %zu..%zu\n", bench_host.prog,
                         arg->name, arg->min, arg->max);
            fprintf (stderr, "usage: %s\n", usage);
            return 2;
        }
        *arg->value = (size_t) n;
    }
    return 0;
}

//  ---------------------------------------------------------------------

uint64_t
bench_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

int
bench_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y? -1: x > y;
}

int
bench_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

double
bench_pct_us (const uint64_t *sorted, size_t n, int pct)
{
    size_t i = n * (size_t) pct / 100;
    if (i >= n)
        i = n - 1;
    return sorted [i] / 1000.0;
}

bench_stat_t
bench_stat (const double *values, size_t n)
{
    bench_stat_t stat = { 0, 0, 0 };
    double *v = (double *) malloc (n * sizeof (double));
    if (!v || n == 0) {
        free (v);
        return stat;
    }
    memcpy (v, values, n * sizeof (double));
    qsort (v, n, sizeof (double), bench_cmp_double);
    stat.med = n % 2? v [n / 2]: (v [n / 2 - 1] + v [n / 2]) / 2;
    stat.lo = v [0];
    stat.hi = v [n - 1];
    free (v);
    return stat;
}

//  ---------------------------------------------------------------------

void *
bench_raw_socket (void *ctx, int type, int hwm)
{
    void *sock = zmq_socket (ctx, type);
    int zero = 0;
    if (sock) {
        zmq_setsockopt (sock, ZMQ_LINGER, &zero, sizeof zero);
        if (hwm > 0)
            zmq_setsockopt (sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    }
    return sock;
}

void
bench_raw_end (void **sock, void **ctx)
{
    if (*sock)
        zmq_close (*sock);
    if (*ctx)
        zmq_ctx_term (*ctx);
    *sock = *ctx = NULL;
}

int
bench_thread (pthread_t *thread, bool *running, void *(*fn) (void *), void *arg,
              const char *what)
{
    if (pthread_create (thread, NULL, fn, arg))
        return bench_fail ("bench: cannot start %s", what);
    *running = true;
    return 0;
}

int
bench_raw_link (void *bound, void *connecting, char *endpoint, size_t size)
{
    size_t len = size;
    if (!bound || zmq_bind (bound, "tcp://127.0.0.1:*")
    ||  zmq_getsockopt (bound, ZMQ_LAST_ENDPOINT, endpoint, &len)
    ||  (connecting && zmq_connect (connecting, endpoint)))
        return bench_fail ("bench: raw libzmq setup failed: %s", zmq_strerror (errno));
    return 0;
}

static void *
s_reader_loop (void *arg)
{
    bench_raw_reader_t *reader = (bench_raw_reader_t *) arg;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    while (zmq_msg_recv (&frame, reader->sock, 0) >= 0)
        reader->fn (reader, &frame);
    zmq_msg_close (&frame);
    zmq_close (reader->sock);           //  ETERM: the bench is over
    return NULL;
}

int
bench_raw_reader_open (bench_raw_reader_t *reader, int type, int hwm)
{
    reader->ctx = zmq_ctx_new ();
    reader->sock = reader->ctx? bench_raw_socket (reader->ctx, type, 0): NULL;
    if (reader->sock && hwm > 0)
        zmq_setsockopt (reader->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    return reader->sock? 0: bench_fail ("bench: raw libzmq socket: %s", zmq_strerror (errno));
}

int
bench_raw_reader_run (bench_raw_reader_t *reader,
                      void (*fn) (bench_raw_reader_t *, zmq_msg_t *), void *arg)
{
    reader->fn = fn;
    reader->arg = arg;
    return bench_thread (&reader->thread, &reader->running, s_reader_loop, reader,
                         "a raw reader thread");
}

void
bench_raw_reader_stop (bench_raw_reader_t *reader)
{
    if (!reader->ctx)
        return;
    zmq_ctx_shutdown (reader->ctx);     //  unblocks the reader thread
    if (reader->running)
        pthread_join (reader->thread, NULL);
    else
    if (reader->sock)
        zmq_close (reader->sock);
    zmq_ctx_term (reader->ctx);
    memset (reader, 0, sizeof *reader);
}

void
bench_raw_echo (bench_raw_reader_t *reader, zmq_msg_t *frame)
{
    zmq_msg_send (frame, reader->sock, zmq_msg_more (frame)? ZMQ_SNDMORE: 0);
}

//  ---------------------------------------------------------------------

int
bench_raw_rr_start (bench_raw_rr_t *rr, size_t servers, int hwm, const char *buf, size_t size)
{
    rr->buf = buf;
    rr->size = size;
    rr->ctx = zmq_ctx_new ();
    rr->dealer = bench_raw_socket (rr->ctx, ZMQ_DEALER, hwm);
    for (size_t i = 0; i < servers && i < BENCH_MAX_SERVERS; i++) {
        bench_raw_reader_t *server = &rr->servers [i];
        rr->nservers++;
        char endpoint [128];
        if (bench_raw_reader_open (server, ZMQ_ROUTER, 0)
        ||  bench_raw_link (server->sock, rr->dealer, endpoint, sizeof endpoint)
        ||  bench_raw_reader_run (server, bench_raw_echo, NULL))
            return 1;
    }
    return 0;
}

uint64_t
bench_raw_round_trip (void *arg)
{
    bench_raw_rr_t *rr = (bench_raw_rr_t *) arg;
    uint64_t start = bench_now_ns ();
    if (zmq_send (rr->dealer, rr->buf, rr->size, 0) < 0)
        return 0;
    zmq_msg_t reply;
    zmq_msg_init (&reply);
    int rc = zmq_msg_recv (&reply, rr->dealer, 0);
    uint64_t took = bench_now_ns () - start;
    zmq_msg_close (&reply);
    return rc == (int) rr->size? took: 0;
}

uint64_t
bench_raw_window (bench_raw_rr_t *rr, size_t count, size_t window)
{
    size_t sent = 0, got = 0;
    uint64_t start = bench_now_ns ();
    while (got < count) {
        while (sent < count && sent - got < window) {
            if (zmq_send (rr->dealer, rr->buf, rr->size, 0) < 0)
                return 0;
            sent++;
        }
        zmq_msg_t reply;
        zmq_msg_init (&reply);
        int rc = zmq_msg_recv (&reply, rr->dealer, 0);
        zmq_msg_close (&reply);
        if (rc < 0)
            return 0;
        got++;
    }
    return bench_now_ns () - start;
}

void
bench_raw_rr_stop (bench_raw_rr_t *rr)
{
    for (size_t i = 0; i < rr->nservers; i++)
        bench_raw_reader_stop (&rr->servers [i]);
    bench_raw_end (&rr->dealer, &rr->ctx);
    rr->nservers = 0;
}

//  ---------------------------------------------------------------------

int
bench_interleave (bench_op_fn *raw, void *raw_arg, bench_op_fn *mesh, void *mesh_arg,
                  size_t count, uint64_t *raw_ns, uint64_t *mesh_ns)
{
    for (int i = 0; i < BENCH_WARMUP; i++)
        if (!raw (raw_arg) || !mesh (mesh_arg))
            return bench_fail ("bench: a round trip failed during warm-up: %s",
                               mesh_last_error ());
    size_t done = 0;
    bool mesh_first = false;
    while (done < count && !bench_interrupted ()) {
        size_t block = count - done < BENCH_BLOCK? count - done: BENCH_BLOCK;
        for (int turn = 0; turn < 2; turn++) {
            bool on_mesh = (turn == 0) == mesh_first;
            for (size_t i = 0; i < block; i++) {
                uint64_t took = on_mesh? mesh (mesh_arg): raw (raw_arg);
                if (!took)
                    return bench_fail ("bench: %s round trip failed: %s",
                                       on_mesh? "meshbus": "raw libzmq",
                                       on_mesh? mesh_last_error (): zmq_strerror (errno));
                (on_mesh? mesh_ns: raw_ns) [done + i] = took;
            }
        }
        mesh_first = !mesh_first;
        done += block;
    }
    if (done < count)
        return bench_fail ("bench: interrupted");
    qsort (raw_ns, count, sizeof (uint64_t), bench_cmp_u64);
    qsort (mesh_ns, count, sizeof (uint64_t), bench_cmp_u64);
    return 0;
}

int
bench_duel (const char *label, size_t rounds, bench_round_fn *raw, void *raw_arg,
            bench_round_fn *mesh, void *mesh_arg, size_t warm, size_t count,
            double *raw_med, double *mesh_med)
{
    double *rates = (double *) calloc (2 * rounds, sizeof (double));
    int rc = rates? 0: bench_fail ("bench: out of memory");
    if (rc == 0 && (!raw (raw_arg, warm) || !mesh (mesh_arg, warm)))
        rc = 1;
    if (rc == 0)
        rc = bench_alternate (label, rounds, false, raw, raw_arg, mesh, mesh_arg, count,
                              rates, rates + rounds);
    if (rc == 0) {
        *raw_med = bench_stat (rates, rounds).med;
        *mesh_med = bench_stat (rates + rounds, rounds).med;
    }
    free (rates);
    return rc;
}

int
bench_alternate (const char *label, size_t rounds, bool mesh_first,
                 bench_round_fn *raw, void *raw_arg, bench_round_fn *mesh, void *mesh_arg,
                 size_t count, double *raw_rate, double *mesh_rate)
{
    int rc = 0;
    for (size_t r = 0; rc == 0 && r < rounds; r++)
        for (int turn = 0; turn < 2 && rc == 0; turn++) {
            bool on_mesh = (turn == 0) == (r % 2 == (mesh_first? 0: 1));
            if (bench_host.progress)
                bench_host.progress (label, r + 1, rounds, on_mesh? "meshbus": "raw libzmq");
            uint64_t took = on_mesh? mesh (mesh_arg, count): raw (raw_arg, count);
            if (!took)
                rc = 1;
            else
                (on_mesh? mesh_rate: raw_rate) [r] = count * 1e9 / (double) took;
        }
    if (bench_host.progress)
        bench_host.progress (NULL, 0, 0, NULL);
    return rc;
}
