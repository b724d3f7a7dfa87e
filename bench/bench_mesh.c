/*  =========================================================================
    bench_mesh - the meshbus side every benchmark shares (bench_mesh.h)
    ========================================================================= */

#include "bench_mesh.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ftw.h>
#include <sys/stat.h>

mesh_node_t *(*bench_node_hook) (const char *name, const bench_where_t *where) = NULL;

void
bench_where (bench_where_t *where, const char *tag, int salt)
{
    memset (where, 0, sizeof *where);
    snprintf (where->cluster, sizeof where->cluster, "bench-%s-%d", tag, (int) getpid ());
    where->port = 30000 + (int) ((getpid () + salt) % 20000);
}

mesh_node_t *
bench_node_default (const char *name, const bench_where_t *where)
{
    mesh_node_t *node = mesh_node_new (name);
    if (!node || mesh_node_set_cluster (node, where->cluster)
    ||  mesh_node_set_beacon_port (node, where->port)
    ||  (where->beacon_ms && mesh_node_set_beacon_interval (node, where->beacon_ms))
    ||  (where->hwm && mesh_node_set_hwm (node, where->hwm))
    ||  mesh_node_start (node)) {
        bench_fail ("%s", mesh_last_error ());
        mesh_node_destroy (&node);
    }
    return node;
}

mesh_node_t *
bench_node (const char *name, const bench_where_t *where)
{
    return bench_node_hook? bench_node_hook (name, where): bench_node_default (name, where);
}

void
bench_drain (mesh_node_t *node)
{
    mesh_event_t *event;
    while ((event = mesh_node_event (node)))
        mesh_event_destroy (&event);
}

void
bench_tally (bench_tally_t *tally, size_t size)
{
    if (size == tally->size)
        tally->good++;
    else
        tally->bad++;
}

//  ---------------------------------------------------------------------

int
bench_peer_open (bench_peer_t *peer, const char *name, const char *pattern,
                 const bench_where_t *where)
{
    peer->node = bench_node (name, where);
    if (!peer->node)
        return 1;
    if (!pattern)
        return 0;
    if (strcmp (pattern, "pubsub") == 0)
        peer->pubsub = mesh_pubsub_new (peer->node);
    else
    if (strcmp (pattern, "reqrep") == 0)
        peer->rr = mesh_reqrep_new (peer->node);
    else
        peer->pl = mesh_pipeline_new (peer->node);
    if (!peer->pubsub && !peer->rr && !peer->pl)
        return bench_fail ("bench: %s: %s", name, mesh_last_error ());
    return 0;
}

static void *
s_peer_loop (void *arg)
{
    bench_peer_t *peer = (bench_peer_t *) arg;
    while (!peer->stop) {
        if (mesh_node_dispatch (peer->node, 100) < 0)
            break;
        if (peer->drain)
            bench_drain (peer->node);
    }
    return NULL;
}

int
bench_peer_run (bench_peer_t *peer, bool drain)
{
    peer->drain = drain;
    return bench_thread (&peer->thread, &peer->running, s_peer_loop, peer, "a node's thread");
}

void
bench_peer_halt (bench_peer_t *peer)
{
    peer->stop = true;
    if (peer->running)
        pthread_join (peer->thread, NULL);
    peer->running = false;
}

void
bench_peer_close (bench_peer_t *peer)
{
    bench_peer_halt (peer);
    mesh_pubsub_destroy (&peer->pubsub);
    mesh_reqrep_destroy (&peer->rr);
    mesh_pipeline_destroy (&peer->pl);
    mesh_node_destroy (&peer->node);
}

//  ---------------------------------------------------------------------

int
bench_group_open (bench_group_t *group, size_t count, const char *prefix,
                  const char *pattern, const bench_where_t *where)
{
    group->peers = (bench_peer_t *) calloc (count, sizeof (bench_peer_t));
    if (!group->peers)
        return bench_fail ("bench: out of memory");
    for (size_t i = 0; i < count; i++) {
        char name [64];
        snprintf (name, sizeof name, "%s-%zu", prefix, i + 1);
        group->count++;
        if (bench_peer_open (&group->peers [i], name, pattern, where))
            return 1;
    }
    return 0;
}

int
bench_group_run (bench_group_t *group, bool drain)
{
    for (size_t i = 0; i < group->count; i++)
        if (bench_peer_run (&group->peers [i], drain))
            return 1;
    return 0;
}

void
bench_group_close (bench_group_t *group)
{
    for (size_t i = 0; i < group->count; i++)
        group->peers [i].stop = true;
    for (size_t i = 0; i < group->count; i++)
        bench_peer_halt (&group->peers [i]);
    for (size_t i = 0; i < group->count; i++)
        bench_peer_close (&group->peers [i]);
    free (group->peers);
    group->peers = NULL;
    group->count = 0;
}

//  ---------------------------------------------------------------------

int
bench_meet (mesh_node_t **nodes, size_t count, bool (*met) (void *arg), void *arg,
            int ms, const char *what)
{
    uint64_t deadline = mesh_clock_ms () + (uint64_t) ms;
    while (!met (arg)) {
        if (mesh_clock_ms () > deadline || bench_interrupted ())
            return bench_fail ("bench: %s within %d s", what, ms / 1000);
        for (size_t i = 0; i < count; i++) {
            mesh_node_dispatch (nodes [i], 5);
            bench_drain (nodes [i]);
        }
    }
    return 0;
}

static bool
s_pair_alive (void *arg)
{
    mesh_node_t **pair = (mesh_node_t **) arg;
    return mesh_node_peer_state (pair [0], mesh_node_id (pair [1])) == MESH_PEER_ALIVE
        && mesh_node_peer_state (pair [1], mesh_node_id (pair [0])) == MESH_PEER_ALIVE;
}

int
bench_pair_meet (mesh_node_t *a, mesh_node_t *b, int ms)
{
    mesh_node_t *pair [] = { a, b };
    return bench_meet (pair, 2, s_pair_alive, pair, ms, "the two nodes did not meet");
}

int
bench_mesh_open (bench_mesh_t *mesh, const char *label, const bench_where_t *where,
                 const char *pattern, const char *name, const char *prefix, size_t count)
{
    mesh->label = label;
    mesh->where = *where;
    return bench_peer_open (&mesh->main, name, pattern, &mesh->where)
        || bench_group_open (&mesh->group, count, prefix, pattern, &mesh->where);
}

void
bench_mesh_close (bench_mesh_t *mesh)
{
    bench_group_close (&mesh->group);
    bench_peer_close (&mesh->main);
}

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

void
bench_rmtree (const char *dir)
{
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

long
bench_rss_kb (void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen ("/proc/self/statm", "r");
    if (f) {
        if (fscanf (f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose (f);
    }
    return resident * (sysconf (_SC_PAGESIZE) / 1024);
}
