/*  =========================================================================
    mesh_top.h - the MESH_STATS_TOP most active rows of a pattern's table

    A STATS answer carries at most MESH_STATS_TOP rows per table (a node
    with 100 000 subscriptions must not answer with 100 000): each pattern
    offers every row with its activity and keeps the most active, in one
    pass, without sorting the whole table. Ties go to the older row (the
    smaller tie number), so that the same table gives the same rows.
    ========================================================================= */

#ifndef MESH_TOP_H_INCLUDED
#define MESH_TOP_H_INCLUDED

#include "meshbus/pattern.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MESH_STATS_LOCK_MS  200     //  a stats op waits this long for its pattern's lock

//  Take a pattern's lock for its stats op, or give up after
//  MESH_STATS_LOCK_MS: the op runs in the node's keeper thread, which also
//  keeps the node alive to its peers (heartbeats, liveness), so it never
//  waits long behind a pattern busy with a slow disk. 0, or -1 when the
//  answer says "busy" instead of the tables.
static inline int
mesh_stats_lock (pthread_mutex_t *lock, mesh_stats_t *out)
{
    struct timespec until;
    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_nsec += MESH_STATS_LOCK_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    if (pthread_mutex_timedlock (lock, &until) == 0)
        return 0;
    mesh_stats_uint (out, "busy", 1);
    return -1;
}

typedef struct {
    uint64_t activity;
    uint64_t tie;
    const void *item;
} mesh_top_row_t;

typedef struct {
    mesh_top_row_t rows [MESH_STATS_TOP];   //  most active first
    size_t count;               //  rows kept
    size_t offered;             //  rows offered: offered - count were left out
} mesh_top_t;

static inline bool
mesh_top_before (uint64_t activity, uint64_t tie, const mesh_top_row_t *row)
{
    return activity > row->activity || (activity == row->activity && tie < row->tie);
}

//  Offer one row (item borrowed: keep it valid until the rows are written)
static inline void
mesh_top_offer (mesh_top_t *top, uint64_t activity, uint64_t tie, const void *item)
{
    top->offered++;
    if (top->count == MESH_STATS_TOP
    &&  !mesh_top_before (activity, tie, &top->rows [MESH_STATS_TOP - 1]))
        return;
    size_t at = top->count < MESH_STATS_TOP? top->count: MESH_STATS_TOP - 1;
    while (at > 0 && mesh_top_before (activity, tie, &top->rows [at - 1])) {
        top->rows [at] = top->rows [at - 1];
        at--;
    }
    top->rows [at] = (mesh_top_row_t) { activity, tie, item };
    if (top->count < MESH_STATS_TOP)
        top->count++;
}

//  The table's total and what was left out: "<table>.count", "<table>.more"
static inline void
mesh_top_totals (const mesh_top_t *top, mesh_stats_t *out, const char *table)
{
    char key [64];
    snprintf (key, sizeof key, "%s.count", table);
    mesh_stats_uint (out, key, top->offered);
    snprintf (key, sizeof key, "%s.more", table);
    mesh_stats_uint (out, key, top->offered - top->count);
}

#endif
