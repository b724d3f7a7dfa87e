/*  =========================================================================
    mesh_node_info - what a node tells about itself and its peers: peer
    queries, counters and the JSON of `meshbus stats`

    JSON shape (counters: docs/protocol.md, "What is counted, and where"):
    { "id": "...", "name": "...", "incarnation": N, "endpoint": "...",
      "counters": { "frames.in": N, ... },
      "peers": { "<id>": { "name": "...", "state": "ALIVE", "endpoint": "...",
                           "rtt_us": N (-1: not measured),
                           "frames.in": N, "frames.out": N, "bytes.in": N,
                           "bytes.out": N, "counters": { ... } } },
      "departed": { ... },
      "patterns": { "<pattern>": { what its stats op wrote } },
      "events": { "next": N, "recent": [ the last pattern events ] } }
    ========================================================================= */

#include "mesh_node_int.h"

static const char *
s_state_name (int state)
{
    return state == MESH_PEER_ALIVE? "ALIVE": state == MESH_PEER_SUSPECT? "SUSPECT": "CONNECTING";
}

size_t
mesh_node_peer_count (mesh_node_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    size_t count = zhashx_size (self->peers) - self->connecting;
    pthread_mutex_unlock (&self->lock);
    return count;
}

char **
mesh_node_peers (mesh_node_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    char **strv = (char **) calloc (zhashx_size (self->peers) + 1, sizeof (char *));
    size_t n = 0;
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers); peer;
         peer = (mesh_peer_t *) zhashx_next (self->peers))
        if (peer->state != MESH_PEER_CONNECTING)
            strv [n++] = strdup (peer->hex);
    pthread_mutex_unlock (&self->lock);
    return strv;
}

int
mesh_node_peer_state (mesh_node_t *self, const char *peer)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    mesh_peer_t *p = peer? (mesh_peer_t *) zhashx_lookup (self->peers, peer): NULL;
    int state = p? p->state: -1;
    pthread_mutex_unlock (&self->lock);
    return state;
}

int64_t
mesh_node_peer_rtt_us (mesh_node_t *self, const char *peer)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    mesh_peer_t *p = peer? (mesh_peer_t *) zhashx_lookup (self->peers, peer): NULL;
    int64_t rtt = p && p->state != MESH_PEER_CONNECTING? p->rtt_us: -1;
    pthread_mutex_unlock (&self->lock);
    return rtt;
}

//  A copy of one string field of a peer
static char *
s_peer_field (mesh_node_t *self, const char *peer, int field, const char *key)
{
    assert (self);
    char *copy = NULL;
    pthread_mutex_lock (&self->lock);
    mesh_peer_t *p = peer? (mesh_peer_t *) zhashx_lookup (self->peers, peer): NULL;
    if (p) {
        const char *value = field == 0? p->name: field == 1? p->endpoint
                          : (const char *) zhashx_lookup (p->headers, key);
        copy = value? strdup (value): NULL;
    }
    pthread_mutex_unlock (&self->lock);
    return copy;
}

char *
mesh_node_peer_name (mesh_node_t *self, const char *peer)
{
    return s_peer_field (self, peer, 0, NULL);
}

char *
mesh_node_peer_endpoint (mesh_node_t *self, const char *peer)
{
    return s_peer_field (self, peer, 1, NULL);
}

char *
mesh_node_peer_header (mesh_node_t *self, const char *peer, const char *key)
{
    return s_peer_field (self, peer, 2, key);
}

static int
s_pair_cmp (const void *a, const void *b)
{
    return strcmp (((char *const *) a) [0], ((char *const *) b) [0]);
}

char **
mesh_node_peer_headers (mesh_node_t *self, const char *peer)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    mesh_peer_t *p = peer? (mesh_peer_t *) zhashx_lookup (self->peers, peer): NULL;
    if (!p) {
        pthread_mutex_unlock (&self->lock);
        mesh_set_error (MESH_ENOPEER, "no such peer");
        return NULL;
    }
    size_t count = p->headers? zhashx_size (p->headers): 0;
    char **strv = (char **) calloc (2 * count + 1, sizeof (char *));
    size_t n = 0;
    bool failed = !strv;
    if (strv)
        for (const char *value = count? (const char *) zhashx_first (p->headers): NULL;
             value && !failed; value = (const char *) zhashx_next (p->headers)) {
            char *key = strdup ((const char *) zhashx_cursor (p->headers));
            char *copy = strdup (value);
            failed = !key || !copy;
            if (failed) {
                free (key);
                free (copy);
                break;
            }
            strv [n++] = key;
            strv [n++] = copy;
        }
    pthread_mutex_unlock (&self->lock);
    if (failed) {
        mesh_strv_free (&strv);
        mesh_set_error (MESH_ESYS, "out of memory");
        return NULL;
    }
    //  by key, so that the same headers always come in the same order
    qsort (strv, n / 2, 2 * sizeof (char *), s_pair_cmp);
    return strv;
}

void
mesh_node_count (mesh_node_t *self, const char *peer, const char *name, uint64_t delta)
{
    assert (self);
    assert (name);
    pthread_mutex_lock (&self->lock);
    mesh_counters_add (self->counters, name, delta);
    mesh_peer_t *p = peer? (mesh_peer_t *) zhashx_lookup (self->peers, peer): NULL;
    if (p)
        mesh_counters_add (p->counters, name, delta);
    else
    if (peer)
        mesh_departed_count (self->departed, peer, name, delta);
    pthread_mutex_unlock (&self->lock);
}

uint64_t
mesh_node_counter (mesh_node_t *self, const char *peer, const char *name)
{
    assert (self);
    assert (name);
    pthread_mutex_lock (&self->lock);
    uint64_t value = 0;
    if (peer) {
        mesh_peer_t *p = (mesh_peer_t *) zhashx_lookup (self->peers, peer);
        if (p) {
            if (streq (name, "frames.in")) value = p->frames_in;
            else if (streq (name, "frames.out")) value = p->frames_out;
            else if (streq (name, "messages.in")) value = p->msgs_in;
            else if (streq (name, "messages.out")) value = p->msgs_out;
            else if (streq (name, "bytes.in")) value = p->bytes_in;
            else if (streq (name, "bytes.out")) value = p->bytes_out;
            else value = mesh_counters_get (p->counters, name);
        }
        else
            mesh_departed_counter (self->departed, peer, name, &value);
    }
    else {
        if (streq (name, "frames.in")) value = self->frames_in;
        else if (streq (name, "frames.out")) value = self->frames_out;
        else if (streq (name, "messages.in")) value = self->msgs_in;
        else if (streq (name, "messages.out")) value = self->msgs_out;
        else value = mesh_counters_get (self->counters, name);
    }
    pthread_mutex_unlock (&self->lock);
    return value;
}

char *
mesh_node_stats_json_with (mesh_node_t *self, const char *patterns)
{
    zchunk_t *out = zchunk_new (NULL, 4096);
    zchunk_extend (out, "{\"id\": ", 7);
    mesh_json_string (out, self->hex);
    zchunk_extend (out, ", \"name\": ", 10);
    mesh_json_string (out, self->name);
    mesh_json_printf (out, ", \"incarnation\": %llu, \"uptime_ms\": %lld, \"endpoint\": ",
                      (unsigned long long) self->incarnation,
                      (long long) (self->started? mesh_mono_ms () - self->started_ms: 0));
    mesh_json_string (out, self->endpoint);
    size_t alive = 0, suspect = 0;
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers); peer;
         peer = (mesh_peer_t *) zhashx_next (self->peers)) {
        alive += peer->state == MESH_PEER_ALIVE;
        suspect += peer->state == MESH_PEER_SUSPECT;
    }
    mesh_json_printf (out, ", \"peers.alive\": %zu, \"peers.suspect\": %zu, "
                      "\"peers.connecting\": %zu, \"frames.in\": %llu, \"frames.out\": %llu, "
                      "\"messages.in\": %llu, \"messages.out\": %llu, \"counters\": ",
                      alive, suspect, self->connecting,
                      (unsigned long long) self->frames_in, (unsigned long long) self->frames_out,
                      (unsigned long long) self->msgs_in, (unsigned long long) self->msgs_out);
    mesh_counters_json (self->counters, out);
    zchunk_extend (out, ", \"peers\": {", 12);
    bool first = true;
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers); peer;
         peer = (mesh_peer_t *) zhashx_next (self->peers)) {
        if (!first)
            zchunk_extend (out, ", ", 2);
        first = false;
        mesh_json_string (out, peer->hex);
        zchunk_extend (out, ": {\"name\": ", 11);
        mesh_json_string (out, peer->name);
        mesh_json_printf (out, ", \"state\": \"%s\", \"endpoint\": ", s_state_name (peer->state));
        mesh_json_string (out, peer->endpoint);
        mesh_json_printf (out, ", \"rtt_us\": %lld", (long long) peer->rtt_us);
        mesh_traffic_t traffic = { peer->frames_in, peer->frames_out, peer->msgs_in,
                                   peer->msgs_out, peer->bytes_in, peer->bytes_out };
        mesh_counters_json_traffic (peer->counters, out, &traffic);
    }
    zchunk_extend (out, "}, \"departed\": ", 15);
    mesh_departed_json (self->departed, out);
    zchunk_extend (out, ", \"patterns\": {", 15);
    zchunk_extend (out, patterns, strlen (patterns));
    zchunk_extend (out, "}, \"events\": ", 13);
    mesh_node_recent_json (self, out);
    zchunk_extend (out, "}", 2);       //  with the NUL
    char *json = strdup ((const char *) zchunk_data (out));
    zchunk_destroy (&out);
    return json;
}

char *
mesh_node_stats_json (mesh_node_t *self)
{
    assert (self);
    char *patterns = mesh_node_patterns_json (self);
    pthread_mutex_lock (&self->lock);
    char *json = mesh_node_stats_json_with (self, patterns? patterns: "");
    pthread_mutex_unlock (&self->lock);
    free (patterns);
    return json;
}

char *
mesh_node_peer_stats_json (mesh_node_t *self, int timeout_ms)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    if (!self->started || self->stopping) {
        pthread_mutex_unlock (&self->lock);
        mesh_fail (MESH_ECLOSED, "node is not running");
        return NULL;
    }
    mesh_head_t head = { .kind = MESH_KIND_STATS_REQ, .id = mesh_peer_stats_begin (self->peer_stats) };
    size_t asked = 0;
    for (mesh_peer_t *peer = (mesh_peer_t *) zhashx_first (self->peers); peer;
         peer = (mesh_peer_t *) zhashx_next (self->peers))
        if (peer->state != MESH_PEER_CONNECTING
        &&  mesh_node_send_locked (self, peer, &head, NULL, 0) == 0)
            asked++;
    pthread_mutex_unlock (&self->lock);
    int64_t deadline = mesh_mono_ms () + timeout_ms;
    while (true) {
        pthread_mutex_lock (&self->lock);
        size_t got = mesh_peer_stats_replies (self->peer_stats);
        pthread_mutex_unlock (&self->lock);
        int64_t left = deadline - mesh_mono_ms ();
        if (got >= asked || left <= 0)
            break;
        if (mesh_node_dispatch (self, (int) left) < 0)
            break;
    }
    pthread_mutex_lock (&self->lock);
    char *result = mesh_peer_stats_json (self->peer_stats);
    pthread_mutex_unlock (&self->lock);
    return result;
}
