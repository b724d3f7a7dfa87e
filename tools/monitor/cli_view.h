/*  =========================================================================
    cli_view - the whole mesh as one node sees it, for `meshbus top` and
    `meshbus monitor`

    There is no server to ask: the view's own node joins the mesh and, at
    each refresh, asks every peer for its counters (STATS_REQ, the same
    request as `meshbus stats`). A refresh turns those answers into a model
    (nodes, links, rates against the previous refresh) and derives events
    that are counters, not node events (GAP, DEAD_LETTER). Everything from
    the network is parsed with jansson and checked field by field: a peer
    that answers garbage is shown as not answering, never trusted.

    Thread safety: refresh and event run on the thread that owns the node;
    every query and renderer takes the view's lock, so the HTTP server's
    thread may call them at any time.
    ========================================================================= */

#ifndef CLI_VIEW_H_INCLUDED
#define CLI_VIEW_H_INCLUDED

#include "meshbus.h"
#include "meshbus/pattern.h"         //  MESH_STATS_TOP, MESH_LATENCY_BUCKETS: what a node sends
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define VIEW_MAX_NODES   512        //  more are counted in "truncated", not shown
#define VIEW_MAX_LINKS   8192
#define VIEW_MAX_EVENTS  512        //  the feed keeps the newest
#define VIEW_GONE_KEEP_MS 60000     //  a node that left stays shown GONE this long

typedef struct {
    char id [33];
    char name [128];
    char endpoint [256];
    char state [16];                //  SELF, ALIVE, SUSPECT, CONNECTING, GONE
    char left [64];                 //  why it left (GONE only)
    bool self;                      //  the view's own node
    bool answered;                  //  its counters arrived this refresh
    int64_t uptime_ms;              //  -1 unknown
    int64_t rtt_us;                 //  our round trip to it, -1 unknown
    uint64_t msgs_in, msgs_out, drops;
    double rate_in, rate_out;       //  messages a second, since the last refresh
    char drop_reason [96];          //  the counter with the most drops
    json_t *stats;                  //  its stats JSON (borrowed; NULL unanswered)
} view_node_t;

typedef struct {
    size_t a, b;                    //  indexes of nodes, a < b
    char state [16];                //  worst of both ends' views
    double rate;                    //  messages a second, both directions
    uint64_t drops;                 //  per-peer drop counters at both ends
    int64_t rtt_us;                 //  -1 unknown
} view_link_t;

typedef struct _cli_view_t cli_view_t;

cli_view_t *
    cli_view_new (mesh_node_t *node);
void
    cli_view_destroy (cli_view_t **self_p);
//  Ask every peer for its counters (waits up to timeout_ms, dispatching
//  the node) and rebuild the model. 0, or -1 when the node stopped.
int
    cli_view_refresh (cli_view_t *self, int timeout_ms);
//  Record a node event (ENTER, EXIT, SUSPECT, BACK, UPDATE) in the feed.
void
    cli_view_event (cli_view_t *self, const mesh_event_t *event);

//  The model of the last refresh (the caller holds the lock: use these
//  from the thread that refreshes, or between lock and unlock).
void
    cli_view_lock (cli_view_t *self);
void
    cli_view_unlock (cli_view_t *self);
size_t
    cli_view_node_count (cli_view_t *self);
const view_node_t *
    cli_view_node (cli_view_t *self, size_t index);
size_t
    cli_view_link_count (cli_view_t *self);
const view_link_t *
    cli_view_link (cli_view_t *self, size_t index);
//  Per-second rate of one counter of a node since the last refresh (0
//  when it was not counted both times)
double
    cli_view_counter_rate (cli_view_t *self, size_t index, const char *counter);
//  A node's stats of the refresh before the last (NULL: none), and the
//  seconds between the two refreshes (lock held)
json_t *
    cli_view_previous (cli_view_t *self, size_t index);
double
    cli_view_elapsed_s (cli_view_t *self);
//  A node's pattern tables with rates (cli_patterns.c): {"subscriptions":
//  [...], "subscriptions.more": N, "services", "calls", "queues", "works"};
//  a new reference. Lock held.
json_t *
    cli_view_patterns (cli_view_t *self, size_t index);
//  Nodes that were not shown because VIEW_MAX_NODES were
size_t
    cli_view_truncated (cli_view_t *self);

//  Renderers (take the lock themselves); each returns a malloc'd string.
//  /api/nodes: {"self", "refreshed_ms", "nodes": [...], "links": [...]}
char *
    cli_view_nodes_json (cli_view_t *self);
//  /api/node/ID: {"node": {...}, "stats": {...}, "rates": {...}}, NULL unknown
char *
    cli_view_node_json (cli_view_t *self, const char *id);
//  /api/events: {"next": N, "events": [...]} of events numbered >= since
char *
    cli_view_events_json (cli_view_t *self, uint64_t since);
//  /api/events as server-sent events: one "id: N" and "data: EVENT" per
//  event numbered *next or later; *next is set past the last one
char *
    cli_view_events_sse (cli_view_t *self, uint64_t *next);
//  The number the next event will have
uint64_t
    cli_view_events_next (cli_view_t *self);
//  /metrics: Prometheus text exposition format 0.0.4
char *
    cli_view_metrics (cli_view_t *self);

//  Monotonic milliseconds (the tool's clock for intervals and rates)
int64_t
    cli_view_mono_ms (void);

//  Prometheus naming of one counter (docs/observe.md): the family name
//  (without meshbus_ and _total) and its reason label ("" none).
void
    cli_view_metric_name (const char *counter, char *family, size_t family_cap,
                          char *reason, size_t reason_cap);

#endif
