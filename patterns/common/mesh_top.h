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
#include <stdio.h>
#include <string.h>

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
