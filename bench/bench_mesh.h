/*  =========================================================================
    bench_mesh - the meshbus side every benchmark shares: nodes in a
    cluster and beacon port of the run's own, each with its pattern and,
    when it serves, a thread of its own looping mesh_node_dispatch (as a
    separate process would), and the waits until they met

    Nodes come from bench_node_hook when the host set one (`meshbus bench`
    applies its flags there: CURVE, --hwm, --cluster...), else from
    bench_node_default.
    ========================================================================= */

#ifndef MESHBUS_BENCH_MESH_H_INCLUDED
#define MESHBUS_BENCH_MESH_H_INCLUDED

#include "bench_raw.h"
#include "meshbus.h"

//  Where the run's nodes meet: a cluster and beacon port of their own, so
//  other nodes on this host (tests, users) neither join nor slow them
typedef struct {
    char cluster [64];
    int port;
    int hwm;                    //  0: the default
    int beacon_ms;              //  0: the default
} bench_where_t;

//  "bench-TAG-PID" and a port from the pid and salt (so that two
//  benchmarks of one process do not share a port)
void
    bench_where (bench_where_t *where, const char *tag, int salt);

extern mesh_node_t *(*bench_node_hook) (const char *name, const bench_where_t *where);

//  A started node; NULL after saying why
mesh_node_t *
    bench_node (const char *name, const bench_where_t *where);
mesh_node_t *
    bench_node_default (const char *name, const bench_where_t *where);
//  Throw away the node's events (nobody reads them in a benchmark)
void
    bench_drain (mesh_node_t *node);

//  Replies or jobs that came back: of the right size, and of another.
//  Written by the one thread that dispatches the receiving node.
typedef struct {
    size_t size;
    volatile uint64_t good;
    uint64_t bad;
} bench_tally_t;

void
    bench_tally (bench_tally_t *tally, size_t size);

//  A node, its pattern (at most one of them is set) and, once run, the
//  thread that dispatches it
typedef struct {
    mesh_node_t *node;
    mesh_pubsub_t *pubsub;
    mesh_reqrep_t *rr;
    mesh_pipeline_t *pl;
    pthread_t thread;
    bool running;
    bool drain;                 //  its thread throws events away (bench_peer_run)
    volatile bool stop;
} bench_peer_t;

//  A node and the pattern named ("pubsub", "reqrep", "pipeline" or NULL);
//  0, or 1 after saying why
int
    bench_peer_open (bench_peer_t *peer, const char *name, const char *pattern,
                     const bench_where_t *where);
//  Its thread: mesh_node_dispatch (100 ms) until halted, and when drain,
//  events thrown away after each. The round-trip benchmarks do not drain:
//  mesh_node_event takes the node's lock once per wake-up, a cost on the
//  path they measure, and their few events do not pile up.
int
    bench_peer_run (bench_peer_t *peer, bool drain);
void
    bench_peer_halt (bench_peer_t *peer);
//  Halt, then pattern and node destroyed
void
    bench_peer_close (bench_peer_t *peer);

//  count peers named "PREFIX-1".. with the pattern named
typedef struct {
    bench_peer_t *peers;
    size_t count;
} bench_group_t;

int
    bench_group_open (bench_group_t *group, size_t count, const char *prefix,
                      const char *pattern, const bench_where_t *where);
int
    bench_group_run (bench_group_t *group, bool drain);
//  Every thread halted first (none dispatches while another node goes)
void
    bench_group_close (bench_group_t *group);

//  Dispatch nodes (5 ms each, events drained) until met (arg) says yes,
//  for at most ms; 0, or 1 after saying "bench: WHAT within N s"
int
    bench_meet (mesh_node_t **nodes, size_t count, bool (*met) (void *arg), void *arg,
                int ms, const char *what);

//  Dispatch a and b until each sees the other alive, for at most ms
int
    bench_pair_meet (mesh_node_t *a, mesh_node_t *b, int ms);

//  A mesh of its own: one node that this thread drives (a publisher, a
//  caller) and count nodes dispatching in threads of their own, all with
//  the pattern named, in cluster "bench-TAG-PID"
typedef struct {
    const char *label;
    bench_where_t where;
    bench_peer_t main;
    bench_group_t group;
} bench_mesh_t;

//  Nodes "NAME" and "PREFIX-1".., not yet run; 0, or 1 after saying why
int
    bench_mesh_open (bench_mesh_t *mesh, const char *label, const bench_where_t *where,
                     const char *pattern, const char *name, const char *prefix, size_t count);
void
    bench_mesh_close (bench_mesh_t *mesh);

//  Remove a directory the benchmark made, and all in it
void
    bench_rmtree (const char *dir);

//  Resident memory of this process, KiB
long
    bench_rss_kb (void);

#endif
