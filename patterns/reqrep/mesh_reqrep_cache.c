/*  =========================================================================
    mesh_reqrep_cache - a server's bounded memory of recent requests

    See mesh_reqrep_cache.h. The slot of request id is id % MESH_RRC_RING;
    a slot holds the id it belongs to, so an older request whose slot was
    taken by a newer one looks new again: the cache is "recent requests",
    as documented. A slot's buffer holds the content type then the body
    and is reused, so a steady stream of requests allocates nothing.

    Bounds: at most max_callers callers (the least recently used is
    forgotten to make room) and max_bytes of slot buffers over all callers
    (least recently used callers are forgotten until it fits). Not thread
    safe: mesh_reqrep holds its lock around every call.
    ========================================================================= */

#include "meshbus/pattern.h"
#include "mesh_reqrep_cache.h"
#include <czmq.h>

typedef struct {
    uint64_t id;                //  0 = empty
    uint8_t state;              //  MESH_RRC_RUNNING, _DONE or _UNKEPT
    uint8_t ctype_len;
    uint32_t flags;
    size_t size;                //  body bytes after the content type
    size_t cap;
    char *buf;                  //  ctype, NUL, body
} slot_t;

typedef struct {
    char peer [33];
    uint64_t used;              //  last use, in cache operations
    size_t bytes;               //  sum of its slots' capacities
    slot_t slots [MESH_RRC_RING];
} caller_t;

struct _mesh_rrc_t {
    zhashx_t *callers;          //  peer id -> caller_t *
    caller_t *hot;              //  the last caller: a run of requests comes from one
    size_t max_callers, max_bytes, bytes;
    uint64_t clock;
};

static void
s_caller_destroy (caller_t **caller_p)
{
    if (*caller_p) {
        for (size_t i = 0; i < MESH_RRC_RING; i++)
            free ((*caller_p)->slots [i].buf);
        free (*caller_p);
        *caller_p = NULL;
    }
}

mesh_rrc_t *
mesh_rrc_new (size_t max_callers, size_t max_bytes)
{
    mesh_rrc_t *self = (mesh_rrc_t *) zmalloc (sizeof (mesh_rrc_t));
    self->callers = zhashx_new ();
    zhashx_set_destructor (self->callers, (zhashx_destructor_fn *) s_caller_destroy);
    zhashx_set_key_hasher (self->callers, mesh_id_hash);
    self->max_callers = max_callers? max_callers: 1;
    self->max_bytes = max_bytes;
    return self;
}

void
mesh_rrc_destroy (mesh_rrc_t **self_p)
{
    if (self_p && *self_p) {
        zhashx_destroy (&(*self_p)->callers);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Forget the least recently used caller other than keep. false if none.
static bool
s_evict_one (mesh_rrc_t *self, const caller_t *keep)
{
    caller_t *oldest = NULL;
    for (caller_t *c = (caller_t *) zhashx_first (self->callers); c;
         c = (caller_t *) zhashx_next (self->callers))
        if (c != keep && (!oldest || c->used < oldest->used))
            oldest = c;
    if (!oldest)
        return false;
    self->bytes -= oldest->bytes;
    if (self->hot == oldest)
        self->hot = NULL;
    zhashx_delete (self->callers, oldest->peer);
    return true;
}

//  The caller's entry; create (making room) when create is set
static caller_t *
s_caller (mesh_rrc_t *self, const char *peer, bool create, size_t *evicted)
{
    caller_t *caller = self->hot;
    if (!caller || strcmp (caller->peer, peer))
        caller = (caller_t *) zhashx_lookup (self->callers, peer);
    if (!caller && create) {
        while (zhashx_size (self->callers) >= self->max_callers && s_evict_one (self, NULL))
            (*evicted)++;
        caller = (caller_t *) calloc (1, sizeof (caller_t));
        if (!caller)
            return NULL;
        snprintf (caller->peer, sizeof caller->peer, "%s", peer);
        zhashx_insert (self->callers, peer, caller);
    }
    if (caller) {
        caller->used = ++self->clock;
        self->hot = caller;
    }
    return caller;
}

int
mesh_rrc_begin (mesh_rrc_t *self, const char *caller_id, uint64_t id,
                mesh_rrc_reply_t *reply, size_t *evicted)
{
    assert (self);
    *evicted = 0;
    caller_t *caller = s_caller (self, caller_id, true, evicted);
    if (!caller)
        return MESH_RRC_NEW;        //  out of memory: serve it, keep nothing
    slot_t *slot = &caller->slots [id % MESH_RRC_RING];
    if (slot->id == id) {
        if (slot->state == MESH_RRC_DONE) {
            reply->flags = slot->flags;
            reply->ctype = slot->buf? slot->buf: "";
            reply->body = slot->buf? slot->buf + slot->ctype_len + 1: NULL;
            reply->size = slot->size;
        }
        return slot->state;
    }
    slot->id = id;
    slot->state = MESH_RRC_RUNNING;
    return MESH_RRC_NEW;
}

bool
mesh_rrc_finish (mesh_rrc_t *self, const char *caller_id, uint64_t id, uint32_t flags,
                 const char *ctype, const void *body, size_t size, size_t *evicted)
{
    assert (self);
    *evicted = 0;
    caller_t *caller = s_caller (self, caller_id, false, evicted);
    slot_t *slot = caller? &caller->slots [id % MESH_RRC_RING]: NULL;
    if (!slot || slot->id != id)
        return false;
    size_t ctype_len = ctype? strlen (ctype): 0;
    if (size > MESH_RRC_MAX_REPLY || ctype_len > 255) {
        slot->state = MESH_RRC_UNKEPT;
        return false;
    }
    size_t need = ctype_len + 1 + size;
    if (need > slot->cap) {
        size_t cap = need < 64? 64: need;
        while (self->bytes + cap - slot->cap > self->max_bytes && s_evict_one (self, caller))
            (*evicted)++;
        char *buf = self->bytes + cap - slot->cap <= self->max_bytes
                  ? (char *) realloc (slot->buf, cap): NULL;
        if (!buf) {
            slot->state = MESH_RRC_UNKEPT;
            return false;
        }
        self->bytes += cap - slot->cap;
        caller->bytes += cap - slot->cap;
        slot->buf = buf;
        slot->cap = cap;
    }
    if (ctype_len)
        memcpy (slot->buf, ctype, ctype_len);
    slot->buf [ctype_len] = 0;
    if (size)
        memcpy (slot->buf + ctype_len + 1, body, size);
    slot->ctype_len = (uint8_t) ctype_len;
    slot->size = size;
    slot->flags = flags;
    slot->state = MESH_RRC_DONE;
    return true;
}

size_t
mesh_rrc_callers (mesh_rrc_t *self)
{
    return zhashx_size (self->callers);
}

size_t
mesh_rrc_bytes (mesh_rrc_t *self)
{
    return self->bytes;
}
