/*  =========================================================================
    mesh_departed - counters of peers that left

    A peer's counters say what was dropped because of it or on its way
    (malformed frames, no handler, a full queue). Removing them with the
    peer would leave only the node-wide sums: the loss would still be
    counted, but no longer say whose it was. So a leaving peer's counters
    move here, bounded (MESH_MAX_DEPARTED, oldest forgotten first), and
    move back if the same id returns, so a peer's history is one record.
    ========================================================================= */

#include "mesh_node_int.h"

typedef struct {
    char hex [33];
    char name [65];
    char endpoint [128];
    char reason [32];
    int64_t left_ms;            //  wall clock, for people
    uint64_t order;             //  departure order, to forget the oldest
    mesh_traffic_t traffic;
    mesh_counters_t *counters;
} s_record_t;

struct _mesh_departed_t {
    zhashx_t *records;          //  hex -> s_record_t
    uint64_t next_order;
};

static void
s_record_free (void **item)
{
    s_record_t *record = (s_record_t *) *item;
    if (record) {
        mesh_counters_destroy (&record->counters);
        free (record);
        *item = NULL;
    }
}

mesh_departed_t *
mesh_departed_new (void)
{
    mesh_departed_t *self = (mesh_departed_t *) zmalloc (sizeof (mesh_departed_t));
    self->records = zhashx_new ();
    zhashx_set_destructor (self->records, s_record_free);
    return self;
}

void
mesh_departed_destroy (mesh_departed_t **self_p)
{
    if (*self_p) {
        zhashx_destroy (&(*self_p)->records);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Full: forget the record that left first (a scan, on the rare path)
static void
s_forget_oldest (mesh_departed_t *self)
{
    s_record_t *oldest = NULL;
    for (s_record_t *r = (s_record_t *) zhashx_first (self->records); r;
         r = (s_record_t *) zhashx_next (self->records))
        if (!oldest || r->order < oldest->order)
            oldest = r;
    if (oldest)
        zhashx_delete (self->records, oldest->hex);
}

bool
mesh_departed_keep (mesh_departed_t *self, mesh_peer_t *peer, const char *reason)
{
    bool forgot = false;
    s_record_t *record = (s_record_t *) zhashx_lookup (self->records, peer->hex);
    if (record) {
        mesh_counters_merge (record->counters, peer->counters);
        mesh_counters_destroy (&peer->counters);
    }
    else {
        if (zhashx_size (self->records) >= MESH_MAX_DEPARTED) {
            s_forget_oldest (self);
            forgot = true;
        }
        record = (s_record_t *) zmalloc (sizeof (s_record_t));
        snprintf (record->hex, sizeof record->hex, "%s", peer->hex);
        record->counters = peer->counters;
        peer->counters = NULL;
        zhashx_insert (self->records, record->hex, record);
    }
    snprintf (record->name, sizeof record->name, "%s", peer->name);
    snprintf (record->endpoint, sizeof record->endpoint, "%s", peer->endpoint);
    snprintf (record->reason, sizeof record->reason, "%s", reason? reason: "");
    record->left_ms = zclock_time ();
    record->order = ++self->next_order;
    record->traffic.frames_in += peer->frames_in;
    record->traffic.frames_out += peer->frames_out;
    record->traffic.msgs_in += peer->msgs_in;
    record->traffic.msgs_out += peer->msgs_out;
    record->traffic.bytes_in += peer->bytes_in;
    record->traffic.bytes_out += peer->bytes_out;
    return forgot;
}

void
mesh_departed_restore (mesh_departed_t *self, mesh_peer_t *peer)
{
    s_record_t *record = (s_record_t *) zhashx_lookup (self->records, peer->hex);
    if (!record)
        return;
    mesh_counters_merge (peer->counters, record->counters);
    //  seen_* follow, so the keeper does not take history for fresh traffic
    peer->frames_in = peer->seen_in = peer->frames_in + record->traffic.frames_in;
    peer->frames_out = peer->seen_out = peer->frames_out + record->traffic.frames_out;
    peer->msgs_in += record->traffic.msgs_in;
    peer->msgs_out += record->traffic.msgs_out;
    peer->bytes_in += record->traffic.bytes_in;
    peer->bytes_out += record->traffic.bytes_out;
    zhashx_delete (self->records, peer->hex);
}

bool
mesh_departed_count (mesh_departed_t *self, const char *hex, const char *name, uint64_t delta)
{
    s_record_t *record = (s_record_t *) zhashx_lookup (self->records, hex);
    if (record)
        mesh_counters_add (record->counters, name, delta);
    return record != NULL;
}

bool
mesh_departed_counter (mesh_departed_t *self, const char *hex, const char *name, uint64_t *value)
{
    s_record_t *record = (s_record_t *) zhashx_lookup (self->records, hex);
    if (!record)
        return false;
    if (streq (name, "frames.in")) *value = record->traffic.frames_in;
    else if (streq (name, "frames.out")) *value = record->traffic.frames_out;
    else if (streq (name, "messages.in")) *value = record->traffic.msgs_in;
    else if (streq (name, "messages.out")) *value = record->traffic.msgs_out;
    else if (streq (name, "bytes.in")) *value = record->traffic.bytes_in;
    else if (streq (name, "bytes.out")) *value = record->traffic.bytes_out;
    else *value = mesh_counters_get (record->counters, name);
    return true;
}

void
mesh_departed_json (mesh_departed_t *self, zchunk_t *out)
{
    zchunk_extend (out, "{", 1);
    bool first = true;
    for (s_record_t *r = (s_record_t *) zhashx_first (self->records); r;
         r = (s_record_t *) zhashx_next (self->records)) {
        if (!first)
            zchunk_extend (out, ", ", 2);
        first = false;
        mesh_json_string (out, r->hex);
        zchunk_extend (out, ": {\"name\": ", 11);
        mesh_json_string (out, r->name);
        zchunk_extend (out, ", \"endpoint\": ", 14);
        mesh_json_string (out, r->endpoint);
        zchunk_extend (out, ", \"left\": ", 10);
        mesh_json_string (out, r->reason);
        mesh_json_printf (out, ", \"left_ms\": %lld", (long long) r->left_ms);
        mesh_counters_json_traffic (r->counters, out, &r->traffic);
    }
    zchunk_extend (out, "}", 1);
}
