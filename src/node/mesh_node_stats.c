/*  =========================================================================
    mesh_node_stats - the STATS answer's pattern figures and recent events

    A node answers a STATS request with its counters and, since the
    patterns plugged into it know what the core does not (subscriptions,
    services, queues), with each pattern's figures: its stats operation
    (mesh_pattern_t.stats) writes them with the mesh_stats_t writer.

    Who answers, and why the keeper: a pattern's figures live under the
    pattern's lock, which is taken outside the node's lock (a pattern calls
    into the node with its own held), while a STATS request is read with
    the node's lock held, by whichever thread reads the inbox. So the
    reading thread only notes the request (mesh_node_stats_wanted) and
    wakes the keeper; the keeper lets the node's lock go, takes stats_lock
    (which unregister takes too: a pattern cannot go while its op runs),
    runs the ops, then sends every waiting answer. The keeper also answers
    while the application sits in a long handler, as it did before.

    Recent events: every pattern event (GAP, DEAD_LETTER, ...) posted with
    mesh_node_post_event is also kept in a ring of MESH_RECENT_EVENTS, sent
    in every STATS answer as "events": {"next": N, "recent": [...]}, so
    that a monitor shows a peer's own events (which subject lost how many
    from whom, which job of which queue went to the dead letters) instead
    of guessing them from counters. "next" numbers them: a viewer shows
    those it has not seen, and knows how many it missed when next jumps
    further than the ring holds.
    ========================================================================= */

#include "mesh_node_int.h"

struct _mesh_stats_t {
    zchunk_t *out;
    size_t depth;
    char open [MESH_STATS_DEPTH];       //  '{' or '[' at each depth
    bool first [MESH_STATS_DEPTH + 1];  //  nothing written yet at this depth
};

//  The separator before a member or element, and the key of a member
static void
s_next (mesh_stats_t *self, const char *key)
{
    if (!self->first [self->depth])
        zchunk_extend (self->out, ", ", 2);
    self->first [self->depth] = false;
    if (key) {
        mesh_json_string (self->out, key);
        zchunk_extend (self->out, ": ", 2);
    }
}

void
mesh_stats_open (mesh_stats_t *self, const char *key, char bracket)
{
    assert (self);
    assert (bracket == '{' || bracket == '[');
    assert (self->depth < MESH_STATS_DEPTH);
    s_next (self, key);
    zchunk_extend (self->out, &bracket, 1);
    self->open [self->depth++] = bracket;
    self->first [self->depth] = true;
}

void
mesh_stats_close (mesh_stats_t *self)
{
    assert (self);
    assert (self->depth > 0);
    char bracket = self->open [--self->depth] == '{'? '}': ']';
    zchunk_extend (self->out, &bracket, 1);
}

void
mesh_stats_uint (mesh_stats_t *self, const char *key, uint64_t value)
{
    assert (self);
    s_next (self, key);
    mesh_json_printf (self->out, "%llu", (unsigned long long) value);
}

void
mesh_stats_str (mesh_stats_t *self, const char *key, const char *value)
{
    assert (self);
    s_next (self, key);
    mesh_json_string (self->out, value? value: "");
}

//  ---------------------------------------------------------------------

char *
mesh_node_patterns_json (mesh_node_t *self)
{
    assert (self);
    mesh_stats_t writer = { .out = zchunk_new (NULL, 1024), .first = { true } };
    pthread_mutex_lock (&self->stats_lock);
    pthread_mutex_lock (&self->lock);
    size_t count = 0;
    const mesh_pattern_t *ops [MESH_MAX_PATTERNS];
    void *selves [MESH_MAX_PATTERNS];
    for (size_t i = 0; i < self->pattern_count; i++) {
        const mesh_pattern_t *pattern = mesh_plugin_ops (self->patterns [i], &selves [count]);
        if (pattern->stats)
            ops [count++] = pattern;
    }
    pthread_mutex_unlock (&self->lock);
    for (size_t i = 0; i < count; i++) {
        mesh_stats_open (&writer, ops [i]->name, '{');
        ops [i]->stats (selves [i], &writer);
        while (writer.depth > 0)        //  an op that left something open
            mesh_stats_close (&writer);
    }
    pthread_mutex_unlock (&self->stats_lock);
    zchunk_extend (writer.out, "", 1);
    char *json = strdup ((const char *) zchunk_data (writer.out));
    zchunk_destroy (&writer.out);
    return json;
}

void
mesh_node_stats_wanted (mesh_node_t *self, mesh_peer_t *peer, uint64_t id)
{
    if (zlistx_size (self->stats_wanted) >= MESH_STATS_WANTED_MAX) {
        //  asked faster than the keeper answers: a viewer gone mad, or a flood
        mesh_peer_count (self, peer, "dropped.stats-busy");
        return;
    }
    char *wanted = zsys_sprintf ("%s %llu", peer->hex, (unsigned long long) id);
    if (wanted) {
        zlistx_add_end (self->stats_wanted, wanted);
        mesh_node_signal (self->keeper_fd);
    }
}

void
mesh_node_stats_answer (mesh_node_t *self)
{
    zlistx_t *wanted = self->stats_wanted;
    self->stats_wanted = zlistx_new ();
    zlistx_set_destructor (self->stats_wanted, (zlistx_destructor_fn *) zstr_free);
    pthread_mutex_unlock (&self->lock);
    char *patterns = mesh_node_patterns_json (self);
    pthread_mutex_lock (&self->lock);
    char *json = mesh_node_stats_json_with (self, patterns? patterns: "");
    free (patterns);
    for (char *item = (char *) zlistx_first (wanted); item && json && !self->stopping;
         item = (char *) zlistx_next (wanted)) {
        item [32] = 0;
        mesh_peer_t *peer = (mesh_peer_t *) zhashx_lookup (self->peers, item);
        if (!peer || peer->state == MESH_PEER_CONNECTING)
            continue;           //  it left while we wrote
        mesh_head_t head = { .kind = MESH_KIND_STATS_REP,
                             .id = strtoull (item + 33, NULL, 10),
                             .ctype = "application/json" };
        mesh_node_send_locked (self, peer, &head, json, strlen (json));
    }
    free (json);
    zlistx_destroy (&wanted);
}

//  ---------------------------------------------------------------------

void
mesh_node_recent_add (mesh_node_t *self, const mesh_event_t *event)
{
    mesh_recent_t *recent = &self->recent [self->recent_next % MESH_RECENT_EVENTS];
    recent->seq = self->recent_next++;
    recent->time_ms = (int64_t) mesh_clock_ms ();
    snprintf (recent->name, sizeof recent->name, "%s", event->name);
    snprintf (recent->peer, sizeof recent->peer, "%s", event->peer);
    snprintf (recent->peer_name, sizeof recent->peer_name, "%s", event->peer_name);
    snprintf (recent->detail, sizeof recent->detail, "%s", event->detail);
    recent->count = event->count;
}

void
mesh_node_recent_json (mesh_node_t *self, zchunk_t *out)
{
    mesh_json_printf (out, "{\"next\": %llu, \"recent\": [",
                      (unsigned long long) self->recent_next);
    uint64_t first = self->recent_next > MESH_RECENT_EVENTS
                   ? self->recent_next - MESH_RECENT_EVENTS: 0;
    for (uint64_t seq = first; seq < self->recent_next; seq++) {
        const mesh_recent_t *recent = &self->recent [seq % MESH_RECENT_EVENTS];
        mesh_json_printf (out, "%s{\"seq\": %llu, \"time_ms\": %lld, \"type\": ",
                          seq > first? ", ": "", (unsigned long long) recent->seq,
                          (long long) recent->time_ms);
        mesh_json_string (out, recent->name);
        zchunk_extend (out, ", \"peer\": ", 10);
        mesh_json_string (out, recent->peer);
        zchunk_extend (out, ", \"peer_name\": ", 15);
        mesh_json_string (out, recent->peer_name);
        zchunk_extend (out, ", \"detail\": ", 12);
        mesh_json_string (out, recent->detail);
        mesh_json_printf (out, ", \"count\": %llu}", (unsigned long long) recent->count);
    }
    zchunk_extend (out, "]}", 2);
}
