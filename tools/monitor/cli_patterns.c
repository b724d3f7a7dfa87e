/*  =========================================================================
    cli_patterns - a node's pattern tables as the views show them

    Every node writes its patterns' figures into its STATS answer under
    "patterns" (docs/observe.md): counts only, since the start. Rates are
    the viewer's: the same row (a subscription by id, a service, a queue)
    in this refresh and in the previous one, over the time between them.
    A row that was not there before has no rate yet (0). Every value from
    the network is checked: a row that is not an object or has no key is
    skipped, a number that is not a finite non-negative one reads 0.
    ========================================================================= */

#include "cli_view.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *pattern;            //  "pubsub"
    const char *table;              //  "subscriptions"
    const char *key;                //  the field a row is known by
    const char *count;              //  the count its rate is made of
    const char *count2;             //  a second rate, or NULL
} s_table_t;

static const s_table_t s_tables [] = {
    { "pubsub",   "subscriptions", "id",      "received", NULL },
    { "reqrep",   "services",      "service", "served",   "errors" },
    { "reqrep",   "calls",         "service", "calls",    "errors" },
    { "pipeline", "queues",        "queue",   "done",     "dead" },
    { "pipeline", "works",         "queue",   "handled",  "failed" },
    { NULL, NULL, NULL, NULL, NULL }
};

static double
s_num (json_t *row, const char *field)
{
    json_t *value = json_object_get (row, field);
    double number = json_is_number (value)? json_number_value (value): 0;
    return isfinite (number) && number >= 0? number: 0;
}

static bool
s_same_key (json_t *a, json_t *b)
{
    if (json_is_string (a) && json_is_string (b))
        return strcmp (json_string_value (a), json_string_value (b)) == 0;
    return json_is_number (a) && json_is_number (b) && json_number_value (a) == json_number_value (b);
}

//  The row of before's table with the same key, or NULL
static json_t *
s_find_row (json_t *table, const char *key, json_t *value)
{
    size_t i;
    json_t *row;
    json_array_foreach (table, i, row)
        if (s_same_key (json_object_get (row, key), value))
            return row;
    return NULL;
}

static double
s_rate (json_t *row, json_t *was, const char *field, double elapsed_s)
{
    if (!was || elapsed_s <= 0)
        return 0;
    double now = s_num (row, field), then = s_num (was, field);
    return now >= then? (now - then) / elapsed_s: 0;
}

//  The upper bound (ms) of the bucket where the q-quantile of a call row's
//  latency falls, -1 when it has none (no call, or beyond the last bound)
static double
s_quantile_ms (json_t *row, json_t *bounds, double q)
{
    json_t *buckets = json_object_get (row, "latency_buckets");
    double calls = s_num (row, "calls");
    if (!json_is_array (buckets) || calls <= 0)
        return -1;
    for (size_t i = 0; i < json_array_size (buckets) && i < json_array_size (bounds); i++)
        if (json_number_value (json_array_get (buckets, i)) >= q * calls)
            return json_number_value (json_array_get (bounds, i)) / 1000.0;
    return -1;
}

json_t *
cli_view_patterns (cli_view_t *self, size_t index)
{
    const view_node_t *node = cli_view_node (self, index);
    json_t *out = json_object ();
    if (!node || !node->stats)
        return out;
    json_t *patterns = json_object_get (node->stats, "patterns");
    json_t *before = json_object_get (cli_view_previous (self, index), "patterns");
    double elapsed = cli_view_elapsed_s (self);
    for (const s_table_t *t = s_tables; t->pattern; t++) {
        json_t *section = json_object_get (patterns, t->pattern);
        json_t *table = json_object_get (section, t->table);
        if (!json_is_array (table))
            continue;
        json_t *was_table = json_object_get (json_object_get (before, t->pattern), t->table);
        json_t *rows = json_array ();
        size_t i;
        json_t *row;
        json_array_foreach (table, i, row) {
            if (i == MESH_STATS_TOP)
                break;          //  what an honest node sends; a peer may send more
            json_t *key = json_object_get (row, t->key);
            if (!json_is_object (row) || !(json_is_string (key) || json_is_number (key)))
                continue;
            json_t *was = s_find_row (was_table, t->key, key);
            json_t *copy = json_deep_copy (row);
            json_object_set_new (copy, "rate", json_real (s_rate (row, was, t->count, elapsed)));
            if (t->count2) {
                char name [32];
                snprintf (name, sizeof name, "%s_rate", t->count2);
                json_object_set_new (copy, name, json_real (s_rate (row, was, t->count2, elapsed)));
            }
            if (strcmp (t->table, "calls") == 0) {
                json_t *bounds = json_object_get (section, "latency_bounds_us");
                double calls = s_num (row, "calls");
                json_object_set_new (copy, "mean_ms", calls > 0
                    ? json_real (s_num (row, "latency_sum_us") / calls / 1000.0): json_null ());
                double p50 = s_quantile_ms (row, bounds, 0.5), p99 = s_quantile_ms (row, bounds, 0.99);
                json_object_set_new (copy, "p50_le_ms", p50 < 0? json_null (): json_real (p50));
                json_object_set_new (copy, "p99_le_ms", p99 < 0? json_null (): json_real (p99));
            }
            json_array_append_new (rows, copy);
        }
        json_object_set_new (out, t->table, rows);
        char more [64];
        snprintf (more, sizeof more, "%s.more", t->table);
        json_object_set_new (out, more, json_integer ((json_int_t) s_num (section, more)));
    }
    return out;
}
