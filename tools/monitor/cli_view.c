/*  =========================================================================
    cli_view - the whole mesh as one node sees it (see cli_view.h)

    The peers' answers arrive as one object {"<id>": <their JSON>, ...}
    that the library assembles from what each peer sent, unchecked; one
    peer's garbage must not hide the others, so the object is read one
    member at a time (jansson, stopping after each value) and a member that
    does not parse ends the reading there: the rest show as not answering.
    ========================================================================= */

#include "cli_view.h"
#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define streq_(a, b)    (strcmp ((a), (b)) == 0)
#define VIEW_RECENT_EVENTS  32      //  pattern events a node's answer carries

typedef struct {
    uint64_t seq;
    int64_t time_ms;                //  wall clock
    char type [16];
    char id [33];
    char name [128];
    char detail [192];
} s_event_t;

struct _cli_view_t {
    mesh_node_t *node;
    pthread_mutex_t lock;
    view_node_t *nodes;
    size_t count, truncated;
    view_link_t *links;
    size_t link_count;
    json_t *snapshot;               //  id -> stats of this refresh (owns them)
    json_t *previous;               //  id -> stats of the last one
    json_t *seen;                   //  id -> {"incarnation", "next"}: pattern events shown
    int64_t refreshed_ms, previous_ms;    //  monotonic
    int64_t refreshed_wall;
    s_event_t events [VIEW_MAX_EVENTS];
    uint64_t next_seq;              //  number of the next event
};

//  Copy text, cut at a UTF-8 character boundary (names came from peers;
//  a cut inside a character would make them invalid for JSON)
static void
s_copy (char *dst, size_t cap, const char *src)
{
    size_t n = src? strlen (src): 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char) src [n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy (dst, src, n);
    dst [n] = 0;
}

static const char *
s_str (json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    return value? value: "";
}

//  A non-negative integer field, or fallback
static int64_t
s_int (json_t *object, const char *key, int64_t fallback)
{
    double value = json_number_value (json_object_get (object, key));
    return json_is_number (json_object_get (object, key)) && value >= 0 && value < 9.2e18
         ? (int64_t) value: fallback;
}

static bool
s_valid_id (const char *id)
{
    size_t n = 0;
    for (; id [n]; n++)
        if (!isxdigit ((unsigned char) id [n]))
            return false;
    return n == 32;
}

//  Is one dot-separated segment of name exactly word?
static bool
s_has_segment (const char *name, const char *word)
{
    size_t len = strlen (word);
    for (const char *p = name; (p = strstr (p, word)); p += len)
        if ((p == name || p [-1] == '.') && (p [len] == 0 || p [len] == '.'))
            return true;
    return false;
}

int64_t
cli_view_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cli_view_t *
cli_view_new (mesh_node_t *node)
{
    assert (node);
    cli_view_t *self = (cli_view_t *) calloc (1, sizeof (cli_view_t));
    if (!self)
        return NULL;
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    self->snapshot = json_object ();
    self->previous = json_object ();
    self->seen = json_object ();
    return self;
}

void
cli_view_destroy (cli_view_t **self_p)
{
    if (*self_p) {
        cli_view_t *self = *self_p;
        json_decref (self->snapshot);
        json_decref (self->previous);
        json_decref (self->seen);
        free (self->nodes);
        free (self->links);
        pthread_mutex_destroy (&self->lock);
        free (self);
        *self_p = NULL;
    }
}

//  Read {"<id>": {...}, ...} member by member (see the top of the file)
static json_t *
s_parse_answers (const char *text)
{
    json_t *out = json_object ();
    size_t left = strlen (text);
    const char *p = text;
#define SKIP_WS() while (left && isspace ((unsigned char) *p)) { p++; left--; }
    SKIP_WS ();
    if (!left || *p != '{')
        return out;
    p++, left--;
    while (left) {
        SKIP_WS ();
        if (left && *p == ',') {
            p++, left--;
            SKIP_WS ();
        }
        if (!left || *p == '}')
            break;
        json_error_t error;
        json_t *key = json_loadb (p, left, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &error);
        if (!key || !json_is_string (key) || (size_t) error.position > left) {
            json_decref (key);
            break;
        }
        p += error.position, left -= error.position;
        SKIP_WS ();
        if (!left || *p != ':') {
            json_decref (key);
            break;
        }
        p++, left--;
        json_t *value = json_loadb (p, left, JSON_DISABLE_EOF_CHECK | JSON_DECODE_INT_AS_REAL, &error);
        if (!value || (size_t) error.position > left) {
            json_decref (key);
            json_decref (value);
            break;
        }
        p += error.position, left -= error.position;
        //  the answer must be about the node it came from
        const char *id = json_string_value (key);
        if (json_is_object (value) && s_valid_id (id) && streq_ (s_str (value, "id"), id))
            json_object_set_new (out, id, value);
        else
            json_decref (value);
        json_decref (key);
    }
#undef SKIP_WS
    return out;
}

static view_node_t *
s_find (view_node_t *nodes, size_t count, const char *id, size_t *index)
{
    for (size_t i = 0; i < count; i++)
        if (streq_ (nodes [i].id, id)) {
            if (index)
                *index = i;
            return &nodes [i];
        }
    return NULL;
}

static int
s_state_rank (const char *state)
{
    return streq_ (state, "SUSPECT")? 3: streq_ (state, "CONNECTING")? 2
         : streq_ (state, "ALIVE")? 1: 0;
}

//  Sum of the "dropped" counters of a counters object, and the biggest
static uint64_t
s_drops (json_t *counters, char *reason, size_t reason_cap)
{
    uint64_t total = 0, most = 0;
    const char *key;
    json_t *value;
    if (reason)
        *reason = 0;
    json_object_foreach (counters, key, value) {
        if (!json_is_number (value) || json_number_value (value) < 1
        ||  json_number_value (value) > 1.8e19 || !s_has_segment (key, "dropped"))
            continue;
        uint64_t n = (uint64_t) json_number_value (value);
        total += n;
        if (reason && n > most) {
            most = n;
            s_copy (reason, reason_cap, key);
        }
    }
    return total;
}

static double
s_rate (uint64_t now, uint64_t before, int64_t elapsed_ms)
{
    return elapsed_ms > 0 && now >= before? (double) (now - before) * 1000.0 / elapsed_ms: 0;
}

static void
s_push_event (cli_view_t *self, const char *type, const char *id, const char *name,
              const char *detail)
{
    s_event_t *event = &self->events [self->next_seq % VIEW_MAX_EVENTS];
    event->seq = self->next_seq++;
    event->time_ms = mesh_clock_ms ();
    s_copy (event->type, sizeof event->type, type);
    s_copy (event->id, sizeof event->id, id);
    s_copy (event->name, sizeof event->name, name);
    s_copy (event->detail, sizeof event->detail, detail);
}

void
cli_view_event (cli_view_t *self, const mesh_event_t *event)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    s_push_event (self, mesh_event_name (event), mesh_event_peer (event),
                  mesh_event_peer_name (event), mesh_event_detail (event));
    pthread_mutex_unlock (&self->lock);
}

//  The pattern events a node reports in its answers ("events": {"next",
//  "recent"}, the last ones it posted: GAP, DEAD_LETTER...) go to the
//  feed once each: seen keeps, per node, its incarnation and the next
//  number not shown yet. Events a node posted faster than we asked (more
//  than its ring holds between two refreshes) are said to be missed.
static void
s_pattern_events (cli_view_t *self, const view_node_t *node)
{
    json_t *events = json_object_get (node->stats, "events");
    json_t *recent = json_object_get (events, "recent");
    int64_t next = s_int (events, "next", -1);
    if (!json_is_array (recent) || next < 0)
        return;
    int64_t incarnation = s_int (node->stats, "incarnation", 0);
    json_t *seen = json_object_get (self->seen, node->id);
    int64_t from = 0;
    if (seen && s_int (seen, "incarnation", -1) == incarnation)
        from = s_int (seen, "next", 0);
    size_t i;
    json_t *event;
    int64_t first = -1;
    json_array_foreach (recent, i, event) {
        if (i == 2 * VIEW_RECENT_EVENTS)
            break;              //  a node sends 32; a peer may send more
        int64_t seq = s_int (event, "seq", -1);
        if (seq < 0 || seq >= next)
            continue;
        if (first < 0 || seq < first)
            first = seq;
        if (seq < from)
            continue;
        const char *type = s_str (event, "type");
        char detail [192], peer [80];
        snprintf (peer, sizeof peer, "%s", *s_str (event, "peer_name")? s_str (event, "peer_name")
                                                                     : s_str (event, "peer"));
        if (streq_ (type, "DEAD_LETTER"))
            snprintf (detail, sizeof detail, "queue %s, job %lld (last worker %s)",
                      s_str (event, "detail"), (long long) s_int (event, "count", 0),
                      *peer? peer: "-");
        else
        if (strncmp (type, "GAP", 3) == 0 || streq_ (type, "REPLAYED"))
            snprintf (detail, sizeof detail, "%lld messages from %s",
                      (long long) s_int (event, "count", 0), *peer? peer: "-");
        else
            snprintf (detail, sizeof detail, "%s %s", s_str (event, "detail"), peer);
        s_push_event (self, type, node->id, node->name, detail);
    }
    if (first > from && seen) {
        char detail [64];
        snprintf (detail, sizeof detail, "%lld events not seen", (long long) (first - from));
        s_push_event (self, "MISSED", node->id, node->name, detail);
    }
    json_t *mark = json_object ();
    json_object_set_new (mark, "incarnation", json_integer (incarnation));
    json_object_set_new (mark, "next", json_integer (next));
    json_object_set_new (self->seen, node->id, mark);
}

static void
s_add_links (json_t *index, view_node_t *nodes, size_t count, size_t from, json_t *previous,
             int64_t elapsed_ms, view_link_t *links, size_t *link_count)
{
    json_t *peers = json_object_get (nodes [from].stats, "peers");
    json_t *before = json_object_get (json_object_get (previous, nodes [from].id), "peers");
    const char *peer_id;
    json_t *record;
    json_object_foreach (peers, peer_id, record) {
        size_t to;
        if (!json_is_object (record) || !s_find (nodes, count, peer_id, &to) || to == from
        ||  streq_ (nodes [to].state, "GONE"))
            continue;
        size_t a = from < to? from: to, b = from < to? to: from;
        char key [80];
        snprintf (key, sizeof key, "%zu:%zu", a, b);
        json_t *slot = json_object_get (index, key);
        view_link_t *link;
        if (slot)
            link = &links [json_integer_value (slot)];
        else {
            if (*link_count >= VIEW_MAX_LINKS)
                continue;
            link = &links [*link_count];
            memset (link, 0, sizeof *link);
            link->a = a, link->b = b, link->rtt_us = -1;
            json_object_set_new (index, key, json_integer ((json_int_t) (*link_count)++));
        }
        const char *state = s_str (record, "state");
        if (s_state_rank (state) > s_state_rank (link->state))
            s_copy (link->state, sizeof link->state, state);
        json_t *was = json_object_get (before, peer_id);
        link->rate += s_rate ((uint64_t) s_int (record, "messages.out", 0),
                              (uint64_t) s_int (was, "messages.out", 0), was? elapsed_ms: 0);
        link->drops += s_drops (json_object_get (record, "counters"), NULL, 0);
        int64_t rtt = s_int (record, "rtt_us", -1);
        if (rtt >= 0 && (link->rtt_us < 0 || rtt < link->rtt_us))
            link->rtt_us = rtt;
    }
}

static int
s_node_order (const void *a, const void *b)
{
    const view_node_t *x = (const view_node_t *) a, *y = (const view_node_t *) b;
    if (x->self != y->self)
        return x->self? -1: 1;
    int c = strcmp (x->name, y->name);
    return c? c: strcmp (x->id, y->id);
}

static void
s_set_node (view_node_t *node, const char *id, json_t *record, const char *state)
{
    memset (node, 0, sizeof *node);
    s_copy (node->id, sizeof node->id, id);
    s_copy (node->name, sizeof node->name, s_str (record, "name"));
    s_copy (node->endpoint, sizeof node->endpoint, s_str (record, "endpoint"));
    s_copy (node->state, sizeof node->state, state);
    node->uptime_ms = -1;
    node->rtt_us = s_int (record, "rtt_us", -1);
}

int
cli_view_refresh (cli_view_t *self, int timeout_ms)
{
    assert (self);
    char *answers_text = mesh_node_peer_stats_json (self->node, timeout_ms);
    if (!answers_text)
        return -1;
    json_t *answers = s_parse_answers (answers_text);
    free (answers_text);
    char *own_text = mesh_node_stats_json (self->node);
    json_t *own = json_loads (own_text, JSON_DECODE_INT_AS_REAL, NULL);
    free (own_text);
    if (!own)
        own = json_object ();       //  our own JSON always parses; be safe anyway
    const char *own_id = s_str (own, "id");
    json_object_set (answers, own_id, own);

    view_node_t *nodes = (view_node_t *) calloc (VIEW_MAX_NODES, sizeof (view_node_t));
    view_link_t *links = (view_link_t *) calloc (VIEW_MAX_LINKS, sizeof (view_link_t));
    if (!nodes || !links) {
        free (nodes), free (links);
        json_decref (answers), json_decref (own);
        return 0;                   //  try again at the next refresh
    }
    size_t count = 0, truncated = 0;
    s_set_node (&nodes [count++], own_id, own, "SELF");
    nodes [0].self = true;
    //  our peers as our own table says, then who left recently
    const char *id;
    json_t *record;
    json_object_foreach (json_object_get (own, "peers"), id, record) {
        if (!s_valid_id (id) || !json_is_object (record) || s_find (nodes, count, id, NULL))
            continue;
        if (count == VIEW_MAX_NODES) {
            truncated++;
            continue;
        }
        s_set_node (&nodes [count++], id, record, s_str (record, "state"));
    }
    int64_t wall = mesh_clock_ms ();
    json_object_foreach (json_object_get (own, "departed"), id, record) {
        int64_t left_ms = s_int (record, "left_ms", 0);
        if (!s_valid_id (id) || !json_is_object (record) || s_find (nodes, count, id, NULL)
        ||  wall - left_ms > VIEW_GONE_KEEP_MS || count == VIEW_MAX_NODES)
            continue;
        s_set_node (&nodes [count], id, record, "GONE");
        s_copy (nodes [count++].left, sizeof nodes [0].left, s_str (record, "left"));
    }
    qsort (nodes + 1, count - 1, sizeof (view_node_t), s_node_order);

    pthread_mutex_lock (&self->lock);
    int64_t now = cli_view_mono_ms ();
    int64_t elapsed = self->refreshed_ms? now - self->refreshed_ms: 0;
    for (size_t i = 0; i < count; i++) {
        view_node_t *node = &nodes [i];
        node->stats = json_object_get (answers, node->id);
        if (!node->stats || streq_ (node->state, "GONE")) {
            node->stats = NULL;
            continue;
        }
        node->answered = true;
        node->uptime_ms = s_int (node->stats, "uptime_ms", -1);
        node->msgs_in = (uint64_t) s_int (node->stats, "messages.in", 0);
        node->msgs_out = (uint64_t) s_int (node->stats, "messages.out", 0);
        node->drops = s_drops (json_object_get (node->stats, "counters"), node->drop_reason,
                               sizeof node->drop_reason);
        json_t *before = json_object_get (self->snapshot, node->id);   //  the last refresh
        if (before) {
            node->rate_in = s_rate (node->msgs_in, (uint64_t) s_int (before, "messages.in", 0),
                                    elapsed);
            node->rate_out = s_rate (node->msgs_out, (uint64_t) s_int (before, "messages.out", 0),
                                     elapsed);
        }
        s_pattern_events (self, node);
    }
    //  marks of nodes no longer shown go (a mesh that churns must not grow it)
    const char *seen_id;
    json_t *mark, *tmp;
    json_object_foreach_safe (self->seen, tmp, seen_id, mark)
        if (!s_find (nodes, count, seen_id, NULL))
            json_object_del (self->seen, seen_id);
    json_t *index = json_object ();
    size_t link_count = 0;
    for (size_t i = 0; i < count; i++)
        if (nodes [i].stats)
            s_add_links (index, nodes, count, i, self->snapshot, elapsed, links, &link_count);
    json_decref (index);

    free (self->nodes);
    free (self->links);
    self->nodes = nodes, self->count = count, self->truncated = truncated;
    self->links = links, self->link_count = link_count;
    //  the answers of this refresh are the "before" of the next one
    json_decref (self->previous);
    self->previous = self->snapshot;
    self->snapshot = answers;
    self->previous_ms = self->refreshed_ms;
    self->refreshed_ms = now;
    self->refreshed_wall = wall;
    pthread_mutex_unlock (&self->lock);
    json_decref (own);
    return 0;
}

void
cli_view_lock (cli_view_t *self)
{
    pthread_mutex_lock (&self->lock);
}

void
cli_view_unlock (cli_view_t *self)
{
    pthread_mutex_unlock (&self->lock);
}

size_t
cli_view_node_count (cli_view_t *self)
{
    return self->count;
}

const view_node_t *
cli_view_node (cli_view_t *self, size_t index)
{
    return index < self->count? &self->nodes [index]: NULL;
}

size_t
cli_view_link_count (cli_view_t *self)
{
    return self->link_count;
}

const view_link_t *
cli_view_link (cli_view_t *self, size_t index)
{
    return index < self->link_count? &self->links [index]: NULL;
}

json_t *
cli_view_previous (cli_view_t *self, size_t index)
{
    return index < self->count? json_object_get (self->previous, self->nodes [index].id): NULL;
}

double
cli_view_elapsed_s (cli_view_t *self)
{
    return self->previous_ms? (self->refreshed_ms - self->previous_ms) / 1000.0: 0;
}

size_t
cli_view_truncated (cli_view_t *self)
{
    return self->truncated;
}

double
cli_view_counter_rate (cli_view_t *self, size_t index, const char *counter)
{
    if (index >= self->count || !self->nodes [index].stats)
        return 0;
    json_t *now = json_object_get (self->nodes [index].stats, "counters");
    json_t *then = json_object_get (json_object_get (self->previous, self->nodes [index].id),
                                    "counters");
    json_t *was = json_object_get (then, counter);
    return was? s_rate ((uint64_t) s_int (now, counter, 0), (uint64_t) s_int (then, counter, 0),
                        self->refreshed_ms - self->previous_ms): 0;
}

//  ---------------------------------------------------------------------
//  JSON renderers

static json_t *
s_node_object (const view_node_t *node)
{
    json_t *o = json_object ();
    json_object_set_new (o, "id", json_string (node->id));
    json_object_set_new (o, "name", json_string (node->name));
    json_object_set_new (o, "endpoint", json_string (node->endpoint));
    json_object_set_new (o, "state", json_string (node->state));
    json_object_set_new (o, "self", json_boolean (node->self));
    json_object_set_new (o, "answered", json_boolean (node->answered));
    if (*node->left)
        json_object_set_new (o, "left", json_string (node->left));
    json_object_set_new (o, "uptime_ms", node->uptime_ms < 0? json_null ()
                                                            : json_integer (node->uptime_ms));
    json_object_set_new (o, "rtt_us", node->rtt_us < 0? json_null (): json_integer (node->rtt_us));
    json_object_set_new (o, "messages_in", json_integer ((json_int_t) node->msgs_in));
    json_object_set_new (o, "messages_out", json_integer ((json_int_t) node->msgs_out));
    json_object_set_new (o, "rate_in", json_real (node->rate_in));
    json_object_set_new (o, "rate_out", json_real (node->rate_out));
    json_object_set_new (o, "drops", json_integer ((json_int_t) node->drops));
    json_object_set_new (o, "drop_reason", json_string (node->drop_reason));
    return o;
}

static char *
s_dump (json_t *root)
{
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    return text? text: strdup ("{}");
}

char *
cli_view_nodes_json (cli_view_t *self)
{
    json_t *root = json_object ();
    json_t *nodes = json_array (), *links = json_array ();
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < self->count; i++)
        json_array_append_new (nodes, s_node_object (&self->nodes [i]));
    for (size_t i = 0; i < self->link_count; i++) {
        const view_link_t *link = &self->links [i];
        json_t *o = json_object ();
        json_object_set_new (o, "a", json_string (self->nodes [link->a].id));
        json_object_set_new (o, "b", json_string (self->nodes [link->b].id));
        json_object_set_new (o, "state", json_string (link->state));
        json_object_set_new (o, "rate", json_real (link->rate));
        json_object_set_new (o, "drops", json_integer ((json_int_t) link->drops));
        json_object_set_new (o, "rtt_us", link->rtt_us < 0? json_null ()
                                                          : json_integer (link->rtt_us));
        json_array_append_new (links, o);
    }
    json_object_set_new (root, "self", json_string (self->count? self->nodes [0].id: ""));
    json_object_set_new (root, "refreshed_ms", json_integer (self->refreshed_wall));
    json_object_set_new (root, "truncated", json_integer ((json_int_t) self->truncated));
    pthread_mutex_unlock (&self->lock);
    json_object_set_new (root, "nodes", nodes);
    json_object_set_new (root, "links", links);
    return s_dump (root);
}

char *
cli_view_node_json (cli_view_t *self, const char *id)
{
    pthread_mutex_lock (&self->lock);
    size_t index;
    if (!s_find (self->nodes, self->count, id, &index)) {
        pthread_mutex_unlock (&self->lock);
        return NULL;
    }
    json_t *root = json_object ();
    json_object_set_new (root, "node", s_node_object (&self->nodes [index]));
    json_t *stats = self->nodes [index].stats;
    json_object_set_new (root, "stats", stats? json_deep_copy (stats): json_null ());
    json_t *rates = json_object ();
    const char *key;
    json_t *value;
    json_object_foreach (json_object_get (stats, "counters"), key, value)
        json_object_set_new (rates, key, json_real (cli_view_counter_rate (self, index, key)));
    json_object_set_new (root, "rates", rates);
    json_object_set_new (root, "patterns", cli_view_patterns (self, index));
    pthread_mutex_unlock (&self->lock);
    return s_dump (root);
}

uint64_t
cli_view_events_next (cli_view_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t next = self->next_seq;
    pthread_mutex_unlock (&self->lock);
    return next;
}

static json_t *
s_event_object (const s_event_t *event)
{
    json_t *o = json_object ();
    json_object_set_new (o, "seq", json_integer ((json_int_t) event->seq));
    json_object_set_new (o, "time_ms", json_integer (event->time_ms));
    json_object_set_new (o, "type", json_string (event->type));
    json_object_set_new (o, "node", json_string (event->id));
    json_object_set_new (o, "name", json_string (event->name));
    json_object_set_new (o, "detail", json_string (event->detail));
    return o;
}

//  The first event kept that is numbered since or later (lock held)
static uint64_t
s_events_from (cli_view_t *self, uint64_t since)
{
    uint64_t first = self->next_seq > VIEW_MAX_EVENTS? self->next_seq - VIEW_MAX_EVENTS: 0;
    return since > first? since: first;
}

char *
cli_view_events_json (cli_view_t *self, uint64_t since)
{
    json_t *root = json_object (), *list = json_array ();
    pthread_mutex_lock (&self->lock);
    for (uint64_t seq = s_events_from (self, since); seq < self->next_seq; seq++)
        json_array_append_new (list, s_event_object (&self->events [seq % VIEW_MAX_EVENTS]));
    json_object_set_new (root, "next", json_integer ((json_int_t) self->next_seq));
    pthread_mutex_unlock (&self->lock);
    json_object_set_new (root, "events", list);
    return s_dump (root);
}

char *
cli_view_events_sse (cli_view_t *self, uint64_t *next)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    pthread_mutex_lock (&self->lock);
    uint64_t seq = s_events_from (self, *next);
    for (; seq < self->next_seq; seq++) {
        json_t *o = s_event_object (&self->events [seq % VIEW_MAX_EVENTS]);
        char *json = json_dumps (o, JSON_COMPACT);
        json_decref (o);
        //  one line of data: JSON escapes every line break a name could hold
        if (json)
            fprintf (out, "id: %llu\ndata: %s\n\n", (unsigned long long) seq, json);
        free (json);
    }
    *next = seq;
    pthread_mutex_unlock (&self->lock);
    fclose (out);
    return text;
}
