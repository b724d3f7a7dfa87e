/*  =========================================================================
    cli_metrics - the view as Prometheus text exposition format 0.0.4

    Naming (docs/observe.md): a counter "a.b.c" is meshbus_a_b_c_total;
    when one segment is a word of loss (dropped, refused, malformed,
    failed, ignored, error), what follows it is the `reason` label, so
    "send.dropped.hwm" is meshbus_send_dropped_total{reason="hwm"} and one
    query sums every reason. Counters a node keeps per peer are separate
    families, meshbus_peer_..., with a `peer` label: summing a family never
    counts a message twice. Every series has `node` (its id) and
    `node_name`. The format wants each family's samples together under one
    TYPE line, so samples are collected, sorted by family, then written.
    ========================================================================= */

#include "cli_view.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define streq_(a, b)    (strcmp ((a), (b)) == 0)

typedef struct {
    char *family;                   //  full metric name, e.g. meshbus_frames_in_total
    const char *type;               //  counter or gauge
    char *line;                     //  the whole sample line
    size_t order;                   //  keeps samples in the order they were made
} s_sample_t;

typedef struct {
    s_sample_t *list;
    size_t count, cap;
    bool failed;
} s_samples_t;

static const char *s_reason_words [] = {
    "dropped", "refused", "malformed", "failed", "ignored", "error", NULL
};

void
cli_view_metric_name (const char *counter, char *family, size_t family_cap,
                      char *reason, size_t reason_cap)
{
    //  the first loss word that is a whole segment with something after it
    const char *split = NULL;
    for (const char *seg = counter; seg && !split; seg = strchr (seg, '.'), seg = seg? seg + 1: NULL)
        for (int w = 0; s_reason_words [w]; w++) {
            size_t len = strlen (s_reason_words [w]);
            if (strncmp (seg, s_reason_words [w], len) == 0 && seg [len] == '.' && seg [len + 1]) {
                split = seg + len;
                break;
            }
        }
    size_t n = split? (size_t) (split - counter): strlen (counter);
    size_t out = 0;
    for (size_t i = 0; i < n && out + 1 < family_cap; i++) {
        char c = counter [i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        family [out++] = ok? c: '_';
    }
    family [out] = 0;
    snprintf (reason, reason_cap, "%s", split? split + 1: "");
}

//  A label value: backslash, quote and newline escaped as the format says
static void
s_label (char *out, size_t cap, const char *value)
{
    size_t n = 0;
    for (const char *c = value; *c && n + 3 < cap; c++) {
        if (*c == '\\' || *c == '"')
            out [n++] = '\\', out [n++] = *c;
        else
        if (*c == '\n')
            out [n++] = '\\', out [n++] = 'n';
        else
            out [n++] = *c;
    }
    out [n] = 0;
}

//  One sample of family (its TYPE line's name); sample is its own name
//  (a histogram's family_bucket, _sum, _count; else the family)
static void
s_add_sample (s_samples_t *s, const char *family, const char *type, const char *sample_name,
              const char *labels, const char *value)
{
    if (s->count == s->cap) {
        size_t cap = s->cap? s->cap * 2: 256;
        s_sample_t *list = (s_sample_t *) realloc (s->list, cap * sizeof (s_sample_t));
        if (!list) {
            s->failed = true;
            return;
        }
        s->list = list, s->cap = cap;
    }
    s_sample_t *sample = &s->list [s->count];
    sample->family = strdup (family);
    sample->type = type;
    sample->order = s->count;
    if (asprintf (&sample->line, "%s{%s} %s\n", sample_name, labels, value) < 0)
        sample->line = NULL;
    if (!sample->family || !sample->line) {
        free (sample->family), free (sample->line);
        s->failed = true;
        return;
    }
    s->count++;
}

static void
s_add (s_samples_t *s, const char *family, const char *type, const char *labels,
       const char *value)
{
    s_add_sample (s, family, type, family, labels, value);
}

static void
s_add_u64 (s_samples_t *s, const char *family, const char *type, const char *labels,
           json_t *value)
{
    if (!json_is_number (value) || json_number_value (value) < 0)
        return;
    char text [32];
    snprintf (text, sizeof text, "%.0f", json_number_value (value));
    s_add (s, family, type, labels, text);
}

//  A set of counters (an object name -> N) under prefix, with labels
static void
s_counters (s_samples_t *s, const char *prefix, const char *labels, json_t *counters)
{
    const char *key;
    json_t *value;
    json_object_foreach (counters, key, value) {
        char family [256], reason [256], name [320], all [1024];
        cli_view_metric_name (key, family, sizeof family, reason, sizeof reason);
        snprintf (name, sizeof name, "%s%s_total", prefix, family);
        if (*reason) {
            char escaped [512];
            s_label (escaped, sizeof escaped, reason);
            snprintf (all, sizeof all, "%s,reason=\"%s\"", labels, escaped);
        }
        else
            snprintf (all, sizeof all, "%s", labels);
        s_add_u64 (s, name, "counter", all, value);
    }
}

static const char *s_traffic [] = {
    "frames.in", "frames.out", "messages.in", "messages.out", "bytes.in", "bytes.out", NULL
};

//  A peer record (live or departed) of a node's stats
static void
s_peer (s_samples_t *s, const char *node_labels, const char *peer_id, json_t *record)
{
    if (!json_is_object (record))
        return;
    char name [256], labels [1024];
    s_label (name, sizeof name, json_string_value (json_object_get (record, "name"))
                                ? json_string_value (json_object_get (record, "name")): "");
    snprintf (labels, sizeof labels, "%s,peer=\"%s\",peer_name=\"%s\"", node_labels, peer_id, name);
    json_t *traffic = json_object ();
    for (int i = 0; s_traffic [i]; i++)
        if (json_object_get (record, s_traffic [i]))
            json_object_set (traffic, s_traffic [i], json_object_get (record, s_traffic [i]));
    s_counters (s, "meshbus_peer_", labels, traffic);
    json_decref (traffic);
    s_counters (s, "meshbus_peer_", labels, json_object_get (record, "counters"));
    json_t *rtt = json_object_get (record, "rtt_us");
    if (json_is_number (rtt) && json_number_value (rtt) >= 0) {
        char seconds [32];
        snprintf (seconds, sizeof seconds, "%.6f", json_number_value (rtt) / 1e6);
        s_add (s, "meshbus_peer_rtt_seconds", "gauge", labels, seconds);
    }
}

//  ---------------------------------------------------------------------
//  Pattern tables (docs/observe.md, "Per subject, service and queue"):
//  a family per figure, the row's name as a label (subject, service,
//  queue), counts as counters, what is waiting now as gauges, and the
//  call latency as a histogram in seconds

typedef struct {
    const char *field;              //  in the row
    const char *family;             //  the metric
    const char *type;
} s_field_t;

static const s_field_t s_sub_fields [] = {
    { "received", "meshbus_subscription_received_total", "counter" }, { NULL, NULL, NULL }
};
static const s_field_t s_service_fields [] = {
    { "served", "meshbus_service_served_total", "counter" },
    { "errors", "meshbus_service_errors_total", "counter" }, { NULL, NULL, NULL }
};
static const s_field_t s_call_fields [] = {
    { "calls", "meshbus_call_ended_total", "counter" },
    { "errors", "meshbus_call_errors_total", "counter" },
    { "timeouts", "meshbus_call_timeouts_total", "counter" }, { NULL, NULL, NULL }
};
static const s_field_t s_queue_fields [] = {
    { "pending", "meshbus_queue_pending", "gauge" },
    { "ready", "meshbus_queue_ready", "gauge" },
    { "delayed", "meshbus_queue_delayed", "gauge" },
    { "in_flight", "meshbus_queue_in_flight", "gauge" },
    { "workers", "meshbus_queue_workers", "gauge" },
    { "done", "meshbus_queue_done_total", "counter" },
    { "dead", "meshbus_queue_dead_total", "counter" }, { NULL, NULL, NULL }
};
static const s_field_t s_work_fields [] = {
    { "handled", "meshbus_work_handled_total", "counter" },
    { "failed", "meshbus_work_failed_total", "counter" }, { NULL, NULL, NULL }
};

//  labels of one row: the node's, then label="the row's name" (escaped)
static bool
s_row_labels (char *out, size_t cap, const char *node_labels, json_t *row, const char *key,
              const char *label)
{
    const char *name = json_string_value (json_object_get (row, key));
    if (!name)
        return false;
    char escaped [2100];            //  a name is at most 255 bytes, 510 as UTF-8, escaped 1020
    s_label (escaped, sizeof escaped, name);
    snprintf (out, cap, "%s,%s=\"%s\"", node_labels, label, escaped);
    return true;
}

static void
s_rows (s_samples_t *s, const char *node_labels, json_t *table, const char *key,
        const char *label, const s_field_t *fields)
{
    size_t i;
    json_t *row;
    json_array_foreach (table, i, row) {
        if (i == MESH_STATS_TOP)
            break;              //  what an honest node sends; a peer may send more
        char labels [3000];
        if (!s_row_labels (labels, sizeof labels, node_labels, row, key, label))
            continue;
        if (streq_ (label, "subject")) {
            //  two subscriptions may have one pattern: the id tells them apart
            json_t *id = json_object_get (row, "id");
            if (!json_is_number (id))
                continue;
            size_t n = strlen (labels);
            snprintf (labels + n, sizeof labels - n, ",subscription=\"%.0f\"",
                      json_number_value (id));
        }
        for (const s_field_t *f = fields; f->field; f++)
            s_add_u64 (s, f->family, f->type, labels, json_object_get (row, f->field));
    }
}

static void
s_latency (s_samples_t *s, const char *node_labels, json_t *reqrep)
{
    json_t *bounds = json_object_get (reqrep, "latency_bounds_us");
    size_t i;
    json_t *row;
    if (json_array_size (bounds) > MESH_LATENCY_BUCKETS)
        return;                 //  not ours: every node has the same bounds
    json_array_foreach (json_object_get (reqrep, "calls"), i, row) {
        if (i == MESH_STATS_TOP)
            break;
        char labels [3000], with_le [3100], value [32];
        json_t *buckets = json_object_get (row, "latency_buckets");
        json_t *calls = json_object_get (row, "calls");
        json_t *sum = json_object_get (row, "latency_sum_us");
        if (!s_row_labels (labels, sizeof labels, node_labels, row, "service", "service")
        ||  !json_is_array (buckets) || json_array_size (buckets) != json_array_size (bounds)
        ||  !json_is_number (calls) || !json_is_number (sum))
            continue;
        const char *family = "meshbus_call_latency_seconds";
        for (size_t b = 0; b < json_array_size (bounds); b++) {
            snprintf (with_le, sizeof with_le, "%s,le=\"%g\"", labels,
                      json_number_value (json_array_get (bounds, b)) / 1e6);
            snprintf (value, sizeof value, "%.0f", json_number_value (json_array_get (buckets, b)));
            s_add_sample (s, family, "histogram", "meshbus_call_latency_seconds_bucket", with_le, value);
        }
        snprintf (with_le, sizeof with_le, "%s,le=\"+Inf\"", labels);
        snprintf (value, sizeof value, "%.0f", json_number_value (calls));
        s_add_sample (s, family, "histogram", "meshbus_call_latency_seconds_bucket", with_le, value);
        snprintf (value, sizeof value, "%.6f", json_number_value (sum) / 1e6);
        s_add_sample (s, family, "histogram", "meshbus_call_latency_seconds_sum", labels, value);
        snprintf (value, sizeof value, "%.0f", json_number_value (calls));
        s_add_sample (s, family, "histogram", "meshbus_call_latency_seconds_count", labels, value);
    }
}

//  How many rows a table has, and how many the answer left out
static void
s_table_sizes (s_samples_t *s, const char *node_labels, json_t *section, const char *table)
{
    char key [64], labels [640];
    snprintf (labels, sizeof labels, "%s,table=\"%s\"", node_labels, table);
    snprintf (key, sizeof key, "%s.count", table);
    s_add_u64 (s, "meshbus_pattern_rows", "gauge", labels, json_object_get (section, key));
    snprintf (key, sizeof key, "%s.more", table);
    s_add_u64 (s, "meshbus_pattern_rows_omitted", "gauge", labels, json_object_get (section, key));
}

static void
s_patterns (s_samples_t *s, const char *labels, json_t *patterns)
{
    json_t *pubsub = json_object_get (patterns, "pubsub");
    json_t *reqrep = json_object_get (patterns, "reqrep");
    json_t *pipeline = json_object_get (patterns, "pipeline");
    s_rows (s, labels, json_object_get (pubsub, "subscriptions"), "pattern", "subject", s_sub_fields);
    s_rows (s, labels, json_object_get (reqrep, "services"), "service", "service", s_service_fields);
    s_rows (s, labels, json_object_get (reqrep, "calls"), "service", "service", s_call_fields);
    s_latency (s, labels, reqrep);
    s_rows (s, labels, json_object_get (pipeline, "queues"), "queue", "queue", s_queue_fields);
    s_rows (s, labels, json_object_get (pipeline, "works"), "queue", "queue", s_work_fields);
    static const char *tables [][2] = {
        { "pubsub", "subscriptions" }, { "reqrep", "services" }, { "reqrep", "calls" },
        { "pipeline", "queues" }, { "pipeline", "works" }
    };
    for (size_t t = 0; t < sizeof tables / sizeof tables [0]; t++) {
        json_t *section = json_object_get (patterns, tables [t][0]);
        if (section)
            s_table_sizes (s, labels, section, tables [t][1]);
    }
}

static void
s_node (s_samples_t *s, const view_node_t *node)
{
    char name [256], endpoint [512], labels [512], info [1536];
    s_label (name, sizeof name, node->name);
    s_label (endpoint, sizeof endpoint, node->endpoint);
    snprintf (labels, sizeof labels, "node=\"%s\",node_name=\"%s\"", node->id, name);
    snprintf (info, sizeof info, "%s,endpoint=\"%s\",state=\"%s\"", labels, endpoint, node->state);
    s_add (s, "meshbus_node_info", "gauge", info, "1");
    s_add (s, "meshbus_node_answered", "gauge", labels, node->answered? "1": "0");
    if (node->rtt_us >= 0) {
        char seconds [32];
        snprintf (seconds, sizeof seconds, "%.6f", node->rtt_us / 1e6);
        s_add (s, "meshbus_node_rtt_seconds", "gauge", labels, seconds);
    }
    json_t *stats = node->stats;
    if (!stats)
        return;
    if (node->uptime_ms >= 0) {
        char seconds [32];
        snprintf (seconds, sizeof seconds, "%.3f", node->uptime_ms / 1e3);
        s_add (s, "meshbus_uptime_seconds", "gauge", labels, seconds);
    }
    static const char *states [] = { "alive", "suspect", "connecting", NULL };
    for (int i = 0; states [i]; i++) {
        char key [32], state_labels [600];
        snprintf (key, sizeof key, "peers.%s", states [i]);
        snprintf (state_labels, sizeof state_labels, "%s,state=\"%s\"", labels, states [i]);
        s_add_u64 (s, "meshbus_peers", "gauge", state_labels, json_object_get (stats, key));
    }
    json_t *traffic = json_object ();
    for (int i = 0; s_traffic [i]; i++)
        if (json_object_get (stats, s_traffic [i]))
            json_object_set (traffic, s_traffic [i], json_object_get (stats, s_traffic [i]));
    s_counters (s, "meshbus_", labels, traffic);
    json_decref (traffic);
    s_counters (s, "meshbus_", labels, json_object_get (stats, "counters"));
    const char *peer_id;
    json_t *record;
    json_object_foreach (json_object_get (stats, "peers"), peer_id, record)
        s_peer (s, labels, peer_id, record);
    json_object_foreach (json_object_get (stats, "departed"), peer_id, record)
        s_peer (s, labels, peer_id, record);
    s_patterns (s, labels, json_object_get (stats, "patterns"));
}

static int
s_by_family (const void *a, const void *b)
{
    const s_sample_t *x = (const s_sample_t *) a, *y = (const s_sample_t *) b;
    int c = strcmp (x->family, y->family);
    return c? c: x->order < y->order? -1: x->order > y->order;
}

char *
cli_view_metrics (cli_view_t *self)
{
    s_samples_t s = { NULL, 0, 0, false };
    cli_view_lock (self);
    for (size_t i = 0; i < cli_view_node_count (self); i++)
        s_node (&s, cli_view_node (self, i));
    cli_view_unlock (self);
    qsort (s.list, s.count, sizeof (s_sample_t), s_by_family);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    const char *type = NULL;
    for (size_t i = 0; out && i < s.count; i++) {
        //  a name made of two counters of different types would break the
        //  format: the first type seen wins, the other samples are left out
        if (i == 0 || strcmp (s.list [i].family, s.list [i - 1].family)) {
            type = s.list [i].type;
            fprintf (out, "# TYPE %s %s\n", s.list [i].family, type);
        }
        else
        if (s.list [i].type != type)
            continue;
        fputs (s.list [i].line, out);
    }
    if (out)
        fclose (out);
    for (size_t i = 0; i < s.count; i++)
        free (s.list [i].family), free (s.list [i].line);
    free (s.list);
    return text? text: strdup ("");
}
