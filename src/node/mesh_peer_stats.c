/*  =========================================================================
    mesh_peer_stats - a node's collection of its peers' stats (see the header)
    ========================================================================= */

#include "mesh_peer_stats.h"
#include "mesh_counters.h"

struct _mesh_peer_stats_t {
    zhashx_t *replies;          //  hex id -> JSON string
    uint64_t request;           //  the id of the current request
};

mesh_peer_stats_t *
mesh_peer_stats_new (void)
{
    mesh_peer_stats_t *self = (mesh_peer_stats_t *) zmalloc (sizeof (mesh_peer_stats_t));
    self->replies = zhashx_new ();
    zhashx_set_destructor (self->replies, (zhashx_destructor_fn *) zstr_free);
    return self;
}

void
mesh_peer_stats_destroy (mesh_peer_stats_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy (&(*self_p)->replies);
    free (*self_p);
    *self_p = NULL;
}

uint64_t
mesh_peer_stats_begin (mesh_peer_stats_t *self)
{
    zhashx_purge (self->replies);
    return ++self->request;
}

void
mesh_peer_stats_reply (mesh_peer_stats_t *self, uint64_t id, const char *hex, const void *body, size_t size)
{
    if (id == self->request)
        zhashx_update (self->replies, hex, strndup ((const char *) body, size));
}

size_t
mesh_peer_stats_replies (mesh_peer_stats_t *self)
{
    return zhashx_size (self->replies);
}

char *
mesh_peer_stats_json (mesh_peer_stats_t *self)
{
    zchunk_t *out = zchunk_new ("{", 1);
    bool first = true;
    for (const char *json = (const char *) zhashx_first (self->replies); json;
         json = (const char *) zhashx_next (self->replies)) {
        if (!first)
            zchunk_extend (out, ", ", 2);
        first = false;
        mesh_json_string (out, (const char *) zhashx_cursor (self->replies));
        zchunk_extend (out, ": ", 2);
        zchunk_extend (out, json, strlen (json));
    }
    zchunk_extend (out, "}", 2);
    char *result = strdup ((const char *) zchunk_data (out));
    zchunk_destroy (&out);
    return result;
}
