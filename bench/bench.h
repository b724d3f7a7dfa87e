/*  =========================================================================
    bench.h - the benchmarks of bench/, as `meshbus bench` runs them

    Each runs meshbus and raw libzmq doing the same job in the same run
    (bench/README.md says what each side does) and prints both and their
    ratio, as text or as one JSON object. Count 0 means the benchmark's
    default, and so does size 0 except for bench_rtt (empty messages). Each returns the exit status: 0, or 1 after
    saying why on stderr.
    ========================================================================= */

#ifndef MESHBUS_BENCH_H_INCLUDED
#define MESHBUS_BENCH_H_INCLUDED

#include "bench_mesh.h"

//  Link round trip: whisper and echo against DEALER/ROUTER (bench_rtt.c)
int
    bench_rtt (size_t size, size_t count, bool json);
//  Pub-sub stream to subs subscribers, rounds rounds, high-water mark hwm
//  on both sides (bench_pubsub.c)
int
    bench_pubsub (size_t size, size_t count, size_t subs, size_t rounds, int hwm, bool json);
//  Request-reply round trip and calls in flight (bench_reqrep.c)
int
    bench_reqrep (size_t size, size_t count, bool json);
//  Work queue with acks against PUSH/PULL; durable outbox (bench_pipeline.c)
int
    bench_pipeline (size_t size, size_t count, bool json);
//  CURVE handshake with keys trusted keys (bench_handshake.c)
int
    bench_handshake (size_t keys, size_t count, bool json);

#endif
