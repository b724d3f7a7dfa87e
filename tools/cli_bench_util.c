/*  =========================================================================
    cli_bench_util - what every `meshbus bench` shares: the clock, sorting
    and the statistics the figures are reported in (percentiles of round
    trips, medians of rounds)
    ========================================================================= */

#include "cli.h"
#include <stdlib.h>
#include <time.h>
#include <zmq.h>

uint64_t
cli_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

int
cli_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y? -1: x > y;
}

int
cli_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

double
cli_pct_us (const uint64_t *sorted, size_t n, int pct)
{
    size_t i = n * (size_t) pct / 100;
    if (i >= n)
        i = n - 1;
    return sorted [i] / 1000.0;
}

double
cli_median (double *values, size_t n)
{
    qsort (values, n, sizeof (double), cli_cmp_double);
    return n % 2? values [n / 2]: (values [n / 2 - 1] + values [n / 2]) / 2;
}

void
cli_bench_echo (void *router)
{
    while (true) {
        zmq_msg_t rid, body;
        zmq_msg_init (&rid);
        zmq_msg_init (&body);
        if (zmq_msg_recv (&rid, router, 0) < 0
        ||  zmq_msg_recv (&body, router, 0) < 0) {
            zmq_msg_close (&rid);
            zmq_msg_close (&body);
            break;                      //  ETERM: the bench is over
        }
        zmq_msg_send (&rid, router, ZMQ_SNDMORE);
        zmq_msg_send (&body, router, 0);
    }
    zmq_close (router);
}
