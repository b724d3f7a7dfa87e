/*  =========================================================================
    mesh_reqrep - request-reply on the meshbus core: named services with
    deadlines, retries, failover, once-only execution and "no responders"

    Built on the public core API only (meshbus.h; czmq for containers).

    Wire. Two kinds, every field in the core envelope, so there is no
    decoder of our own (docs/reqrep.md has the table):
      REQ (24)  subject = service, id = request id (unique per caller),
                deadline = ms since the epoch, seq = attempt (1, 2...),
                flags FLAG_CAST = no reply wanted; ctype, headers, body.
      REP (25)  id = the request's id, subject = service; FLAG_ERROR: the
                body is the handler's error text; FLAG_UNKNOWN: the server
                does not offer the service (body = text too).

    Discovery. Each node announces the services it offers under the key
    "reqrep" (one name per line). A provider table service -> providers
    (the local node included) is rebuilt when the node's generation
    changes, never per call; a call looks its service up once (a hot
    pointer saves even that for a repeated service) and picks the provider
    with the fewest outstanding requests, round robin among equals. The
    rebuild also posts SERVICE_UP / SERVICE_DOWN and notices that the
    provider of a pending call left, which retries it at once.

    Deadlines and retries. A call has a deadline (absolute, travels in the
    REQ; a server drops what arrives after it, counted) and a retry budget.
    Each attempt gets an equal share of the time left, so a provider that
    hangs still leaves time for the others. A retry prefers providers not
    tried yet; when every provider was tried it may go to the same one
    again, which is what makes a link cut safe: the server keeps a bounded
    cache of recent replies per caller (mesh_reqrep_cache.c), so a request
    it has answered is answered again from the cache, and one it is still
    running is not run twice. Replies from any provider tried are accepted:
    the first wins, later ones are counted as late.

    "No responders". A call that finds no provider fails at once, except
    while a fresh node lets discovery settle (MESH_DEFAULT_SETTLE_MS after
    start): then it waits for one until the settle time ends, so a fresh
    `meshbus call` finds the providers already on the LAN.

    Threading. The data path runs in the caller's thread (no actor): a call
    sends on the link and dispatches the node until its reply arrives; a
    server's handler runs in mesh_node_dispatch(). State has one mutex,
    never held while a handler or callback runs; lock order: ours, then the
    node's. A call served by the local node runs its handler from the
    caller's dispatch loop (the next tick or wait), not inside the call.
    ========================================================================= */

#include "meshbus.h"
#include "mesh_reqrep_cache.h"
#include <czmq.h>
#include <pthread.h>

#define KIND_REQ            (MESH_KIND_PATTERN + 8)
#define KIND_REP            (MESH_KIND_PATTERN + 9)
#define FLAG_CAST           0x00010000      //  REQ: no reply wanted
#define FLAG_ERROR          0x00020000      //  REP: the handler failed, body = text
#define FLAG_UNKNOWN        0x00040000      //  REP: no such service here, body = text

#define RR_KEY              "reqrep"
#define RR_MAX_SERVICES     1024    //  services per peer we accept
#define RR_TICK             10      //  ms between timer runs (deadline precision)
#define RR_MAX_ERROR        1024    //  bytes of remote error text we keep
#define RR_MAX_PENDING      100000  //  calls in flight per node
#define RR_QUEUE_MAX        100000  //  outcomes queued for mesh_reqrep_recv
#define RR_MAX_TRIED        16      //  providers remembered per call
#define RR_INLINE_REPLY     256     //  reply bodies this small need no allocation
#define RR_COUNT_BATCH      1024    //  served requests per counter update
#define RR_MAX_BODY         (256u << 20)    //  the envelope's body limit

typedef enum { P_SYNC, P_ASYNC, P_GATHER } pmode_t;

typedef struct {
    size_t left;                //  providers that have not answered yet
    int replies;
    mesh_gather_fn *fn;
    void *arg;
} gather_t;

//  A call in flight
typedef struct _pending_t pending_t;
struct _pending_t {
    uint64_t id;
    pmode_t mode;
    char service [MESH_MAX_SUBJECT + 1];
    uint64_t deadline;          //  ms since the epoch
    uint64_t attempt_until;     //  when this attempt counts as timed out
    uint64_t wait_until;        //  no provider: wait for one until then
    int retries_left;
    int attempts;
    bool sent;                  //  an attempt is out (target is set)
    bool target_gone;
    bool fixed;                 //  only target may serve it (call-all)
    bool target_local;
    volatile bool done;
    char target [33];
    char tried [RR_MAX_TRIED][33];
    int ntried;
    const void *body;
    size_t size;
    char *ctype;
    const char *const *headers;
    size_t header_count;
    bool owns;                  //  body, ctype and headers are our copies
    mesh_call_fn *fn;
    void *arg;
    gather_t *gather;
    int err;
    char *error;
    mesh_msg_t *reply;
    pending_t *prev, *next;     //  every pending call
    pending_t *next_done;       //  finished, to deliver outside the lock
};

//  One provider of a service
typedef struct {
    char peer [33];
    bool local;
    uint32_t outstanding;
} prov_t;

typedef struct {
    prov_t *provs;
    size_t count, cap;
    size_t rr;                  //  where the next tie-break starts
} route_t;

typedef struct {
    mesh_serve_fn *fn;
    void *arg;
} service_t;

typedef struct {
    uint64_t id;
    int err;
    char *error;
    mesh_msg_t *reply;
} outcome_t;

//  Open addressing, u64 id -> pending: a call must not cost an allocation
//  for its table entry (zhashx allocates an item per insert)
typedef struct {
    pending_t **slots;
    size_t cap, count;          //  cap is a power of two
} ptable_t;

struct _mesh_reply_t {
    mesh_reqrep_t *rr;
    char caller [33];
    uint64_t id;
    uint64_t deadline;          //  the request's: a reply after it is useless
    bool cast, local, deferred, heap;
    uint32_t flags;
    char ctype [128];
    char *body;
    size_t size, cap;
    char inline_buf [RR_INLINE_REPLY];
};

struct _mesh_reqrep_t {
    mesh_node_t *node;
    pthread_mutex_t lock;
    char self_id [33];
    zhashx_t *services;         //  name -> service_t *, offered here
    zhashx_t *routes;           //  name -> route_t *
    zhashx_t *announced;        //  peer id -> char * (its last announcement text)
    uint64_t generation;
    bool local_dirty;           //  our services changed: rebuild
    char hot_name [MESH_MAX_SUBJECT + 1];
    route_t *hot_route;         //  route of hot_name (NULL = look it up)
    char hot_served [MESH_MAX_SUBJECT + 1];
    service_t *hot_service;     //  service of hot_served on the server side
    ptable_t table;
    pending_t *first;           //  list of pending calls
    pending_t *finished;        //  to deliver outside the lock
    uint64_t next_id;
    uint64_t next_due;          //  earliest time s_check has something to do
    zlistx_t *local_reqs;       //  mesh_msg_t *, requests for our own services
    zlistx_t *outcomes;         //  outcome_t *, for mesh_reqrep_recv
    mesh_rrc_t *cache;
    int settle_ms;
    uint64_t settle_from;       //  0 until the node is known started
    uint64_t served, calls;     //  counted in batches: a named counter costs a lock
};

static void s_deliver_finished (mesh_reqrep_t *self);
static void s_reply_finish (mesh_reply_t *reply);

//  ---------------------------------------------------------------------
//  Pending table

static size_t
s_slot (const ptable_t *t, uint64_t id)
{
    return (size_t) ((id * 0x9e3779b97f4a7c15ull) >> 17) & (t->cap - 1);
}

static pending_t *
s_pt_lookup (ptable_t *t, uint64_t id)
{
    if (!t->cap)
        return NULL;
    for (size_t i = s_slot (t, id); t->slots [i]; i = (i + 1) & (t->cap - 1))
        if (t->slots [i]->id == id)
            return t->slots [i];
    return NULL;
}

static int
s_pt_insert (ptable_t *t, pending_t *p)
{
    if ((t->count + 1) * 2 > t->cap) {
        size_t cap = t->cap? t->cap * 2: 64;
        pending_t **slots = (pending_t **) calloc (cap, sizeof (pending_t *));
        if (!slots)
            return -1;
        ptable_t grown = { slots, cap, 0 };
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots [i]) {
                size_t j = s_slot (&grown, t->slots [i]->id);
                while (slots [j])
                    j = (j + 1) & (cap - 1);
                slots [j] = t->slots [i];
            }
        free (t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    size_t i = s_slot (t, p->id);
    while (t->slots [i])
        i = (i + 1) & (t->cap - 1);
    t->slots [i] = p;
    t->count++;
    return 0;
}

//  Remove, shifting back the entries of the probe run (no tombstones)
static void
s_pt_remove (ptable_t *t, uint64_t id)
{
    if (!t->cap)
        return;
    size_t i = s_slot (t, id);
    while (t->slots [i] && t->slots [i]->id != id)
        i = (i + 1) & (t->cap - 1);
    if (!t->slots [i])
        return;
    t->slots [i] = NULL;
    t->count--;
    for (size_t j = (i + 1) & (t->cap - 1); t->slots [j]; j = (j + 1) & (t->cap - 1)) {
        size_t home = s_slot (t, t->slots [j]->id);
        //  move j into the hole at i when its home is not in (i, j]
        bool between = i <= j? (home > i && home <= j): (home > i || home <= j);
        if (!between) {
            t->slots [i] = t->slots [j];
            t->slots [j] = NULL;
            i = j;
        }
    }
}

//  ---------------------------------------------------------------------
//  Small helpers

//  Counted for the peer and (by the core) for the node as a whole
static void
s_count (mesh_reqrep_t *self, const char *peer, const char *name)
{
    mesh_node_count (self->node, peer, name, 1);
}

static void
s_route_destroy (route_t **route_p)
{
    if (*route_p) {
        free ((*route_p)->provs);
        free (*route_p);
        *route_p = NULL;
    }
}

static void
s_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_outcome_destroy (outcome_t **outcome_p)
{
    if (*outcome_p) {
        mesh_msg_destroy (&(*outcome_p)->reply);
        free ((*outcome_p)->error);
        free (*outcome_p);
        *outcome_p = NULL;
    }
}

static void
s_pending_free (pending_t *p)
{
    if (p->owns) {
        free ((void *) p->body);
        free (p->ctype);
        for (size_t i = 0; i < 2 * p->header_count; i++)
            free ((char *) p->headers [i]);
        free ((void *) p->headers);
    }
    free (p->error);
    mesh_msg_destroy (&p->reply);
    if (p->mode != P_SYNC)
        free (p);
}

//  Is name a line of text ("a\nb\n")?
static bool
s_has_line (const char *text, const char *name, size_t len)
{
    for (const char *line = text; line && *line; ) {
        const char *end = strchr (line, '\n');
        size_t n = end? (size_t) (end - line): strlen (line);
        if (n == len && memcmp (line, name, len) == 0)
            return true;
        line = end? end + 1: NULL;
    }
    return false;
}

//  Error text from a peer: bounded, printable
static char *
s_error_text (const mesh_msg_t *msg)
{
    size_t size = mesh_msg_size (msg);
    if (size > RR_MAX_ERROR)
        size = RR_MAX_ERROR;
    char *text = (char *) malloc (size + 1);
    if (!text)
        return NULL;
    const char *body = (const char *) mesh_msg_body (msg);
    for (size_t i = 0; i < size; i++)
        text [i] = (uint8_t) body [i] < 32 || body [i] == 127? ' ': body [i];
    text [size] = 0;
    return text;
}

static uint64_t
s_settle_end (mesh_reqrep_t *self)
{
    if (!self->settle_from && mesh_node_endpoint (self->node))
        self->settle_from = mesh_clock_ms ();
    return self->settle_from? self->settle_from + (uint64_t) self->settle_ms: UINT64_MAX;
}

//  Our services as announcement text. Lock held.
static void
s_announce (mesh_reqrep_t *self)
{
    zchunk_t *text = zchunk_new (NULL, 256);
    for (void *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services)) {
        const char *name = (const char *) zhashx_cursor (self->services);
        zchunk_extend (text, name, strlen (name));
        zchunk_extend (text, "\n", 1);
    }
    mesh_node_announce (self->node, RR_KEY, zchunk_data (text), zchunk_size (text));
    zchunk_destroy (&text);
    self->local_dirty = true;
}

//  ---------------------------------------------------------------------
//  Provider table

static route_t *
s_route_add (mesh_reqrep_t *self, const char *service, const char *peer, bool local)
{
    route_t *route = (route_t *) zhashx_lookup (self->routes, service);
    if (!route) {
        route = (route_t *) zmalloc (sizeof (route_t));
        zhashx_insert (self->routes, service, route);
    }
    if (route->count == route->cap) {
        size_t cap = route->cap? route->cap * 2: 4;
        prov_t *provs = (prov_t *) realloc (route->provs, cap * sizeof (prov_t));
        if (!provs)
            return route;
        route->provs = provs;
        route->cap = cap;
    }
    prov_t *prov = &route->provs [route->count++];
    memset (prov, 0, sizeof *prov);
    snprintf (prov->peer, sizeof prov->peer, "%s", peer);
    prov->local = local;
    return route;
}

static prov_t *
s_prov (route_t *route, const char *peer)
{
    for (size_t i = 0; route && i < route->count; i++)
        if (strcmp (route->provs [i].peer, peer) == 0)
            return &route->provs [i];
    return NULL;
}

static route_t *
s_route (mesh_reqrep_t *self, const char *service)
{
    if (self->hot_route && strcmp (self->hot_name, service) == 0)
        return self->hot_route;
    route_t *route = (route_t *) zhashx_lookup (self->routes, service);
    if (route) {
        snprintf (self->hot_name, sizeof self->hot_name, "%s", service);
        self->hot_route = route;
    }
    return route;
}

//  A peer's services: add them as providers, post UP/DOWN against what it
//  announced before. Input from the network: each line is checked.
static void
s_parse_peer (mesh_reqrep_t *self, const char *peer, const char *text, const char *before)
{
    bool changed = !before || strcmp (text, before);
    size_t services = 0;
    for (const char *line = text; *line; ) {
        const char *end = strchr (line, '\n');
        size_t len = end? (size_t) (end - line): strlen (line);
        char name [MESH_MAX_SUBJECT + 1];
        bool ok = len > 0 && len <= MESH_MAX_SUBJECT;
        if (ok) {
            memcpy (name, line, len);
            name [len] = 0;
            ok = mesh_subject_valid (name);
        }
        if (ok && services == RR_MAX_SERVICES) {
            if (changed)
                s_count (self, peer, "reqrep.services.refused");
        }
        else
        if (ok) {
            services++;
            s_route_add (self, name, peer, false);
            if (changed && (!before || !s_has_line (before, name, len)))
                mesh_node_post_event (self->node, MESH_EVENT_SERVICE_UP, "SERVICE_UP",
                                      peer, name, 0);
        }
        else
        if (changed && len)
            s_count (self, peer, "reqrep.malformed.service");
        line = end? end + 1: line + len;
    }
    for (const char *line = before; changed && line && *line; ) {
        const char *end = strchr (line, '\n');
        size_t len = end? (size_t) (end - line): strlen (line);
        char name [MESH_MAX_SUBJECT + 1];
        if (len && len <= MESH_MAX_SUBJECT && !s_has_line (text, line, len)) {
            memcpy (name, line, len);
            name [len] = 0;
            mesh_node_post_event (self->node, MESH_EVENT_SERVICE_DOWN, "SERVICE_DOWN",
                                  peer, name, 0);
        }
        line = end? end + 1: line + len;
    }
}

//  Rebuild the provider table when peers or our services changed. Lock held.
static void
s_rebuild (mesh_reqrep_t *self)
{
    uint64_t generation = mesh_node_generation (self->node);
    if (generation == self->generation && !self->local_dirty)
        return;
    self->generation = generation;
    self->local_dirty = false;
    self->hot_route = NULL;
    zhashx_purge (self->routes);
    zhashx_t *announced = zhashx_new ();
    zhashx_set_destructor (announced, s_free);
    char **peers = mesh_node_peers (self->node);
    for (char **peer = peers; peer && *peer; peer++) {
        size_t size = 0;
        char *value = (char *) mesh_node_peer_announcement (self->node, *peer, RR_KEY, &size);
        if (!value)
            continue;
        char *text = (char *) malloc (size + 1);
        if (text) {
            memcpy (text, value, size);
            text [size] = 0;
            //  a NUL inside ends the text: what follows it is not ours to read
            s_parse_peer (self, *peer, text,
                          (const char *) zhashx_lookup (self->announced, *peer));
            zhashx_insert (announced, *peer, text);
        }
        free (value);
    }
    //  peers gone (or that stopped announcing): every service went down
    for (char *text = (char *) zhashx_first (self->announced); text;
         text = (char *) zhashx_next (self->announced)) {
        const char *peer = (const char *) zhashx_cursor (self->announced);
        if (!zhashx_lookup (announced, peer))
            s_parse_peer (self, peer, "", text);
    }
    zhashx_destroy (&self->announced);
    self->announced = announced;
    for (void *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        s_route_add (self, (const char *) zhashx_cursor (self->services), self->self_id, true);
    //  outstanding counts live in the routes: count the pending calls again;
    //  a call whose provider left is retried by the next check
    for (pending_t *p = self->first; p; p = p->next) {
        if (!p->sent)
            continue;
        prov_t *prov = s_prov ((route_t *) zhashx_lookup (self->routes, p->service), p->target);
        if (prov)
            prov->outstanding++;
        bool alive = p->target_local;
        for (char **peer = peers; !alive && peer && *peer; peer++)
            alive = strcmp (*peer, p->target) == 0;
        if (!alive) {
            p->target_gone = true;
            self->next_due = 0;
        }
    }
    mesh_strv_free (&peers);
}

//  ---------------------------------------------------------------------
//  Caller side

static bool
s_tried (const pending_t *p, const char *peer)
{
    for (int i = 0; i < p->ntried; i++)
        if (strcmp (p->tried [i], peer) == 0)
            return true;
    return false;
}

//  The provider with the fewest outstanding requests, round robin among
//  equals; providers not tried yet first. NULL if none.
static prov_t *
s_choose (route_t *route, const pending_t *p)
{
    if (!route || !route->count)
        return NULL;
    if (p->fixed)
        return s_prov (route, p->target);
    prov_t *best = NULL;
    size_t best_at = 0;
    for (int pass = 0; pass < 2 && !best; pass++)
        for (size_t k = 0; k < route->count; k++) {
            size_t i = (route->rr + k) % route->count;
            prov_t *prov = &route->provs [i];
            if (pass == 0 && p->ntried && s_tried (p, prov->peer))
                continue;
            if (!best || prov->outstanding < best->outstanding) {
                best = prov;
                best_at = i;
            }
        }
    if (best)
        route->rr = best_at + 1;
    return best;
}

//  The current attempt is over (reply, retry, end): release its provider
static void
s_release (mesh_reqrep_t *self, pending_t *p)
{
    if (!p->sent)
        return;
    prov_t *prov = s_prov (s_route (self, p->service), p->target);
    if (prov && prov->outstanding)
        prov->outstanding--;
    p->sent = false;
}

//  Take a call out of the tables. Lock held.
static void
s_unlink (mesh_reqrep_t *self, pending_t *p)
{
    s_release (self, p);
    s_pt_remove (&self->table, p->id);
    if (p->prev)
        p->prev->next = p->next;
    else
        self->first = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

//  The call ended without a reply: queue its outcome. Lock held.
static void
s_fail (mesh_reqrep_t *self, pending_t *p, int err, const char *fmt, ...)
{
    char text [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    s_unlink (self, p);
    p->err = err;
    free (p->error);
    p->error = strdup (text);
    if (p->mode == P_SYNC)
        __atomic_store_n (&p->done, true, __ATOMIC_RELEASE);
    else {
        p->next_done = self->finished;
        self->finished = p;
    }
}

//  Send the call to a provider. Lock held. 0 = out (or waiting for a
//  provider), -1 = it failed and was queued as finished.
static int
s_attempt (mesh_reqrep_t *self, pending_t *p, uint64_t now)
{
    route_t *route = s_route (self, p->service);
    while (true) {
        prov_t *prov = s_choose (route, p);
        if (!prov) {
            if (now < p->wait_until && now < p->deadline) {
                self->next_due = now;       //  look again at the next check
                return 0;
            }
            if (p->attempts == 0)
                s_count (self, NULL, "reqrep.no-responders");
            s_fail (self, p, MESH_ENORESPONDERS, p->attempts
                    ? "no responders for %s: its providers left or failed"
                    : "no responders for %s", p->service);
            return -1;
        }
        p->attempts++;
        if (!s_tried (p, prov->peer) && p->ntried < RR_MAX_TRIED)
            snprintf (p->tried [p->ntried++], 33, "%s", prov->peer);
        snprintf (p->target, sizeof p->target, "%s", prov->peer);
        p->target_local = prov->local;
        p->target_gone = false;
        int left = p->fixed? 0: p->retries_left;
        p->attempt_until = now + (p->deadline - now) / (uint64_t) (left + 1);
        if (prov->local) {
            //  our own service: its handler runs from the dispatch loop,
            //  never lost, so this attempt lasts until the deadline
            p->attempt_until = p->deadline;
            mesh_head_t head = { .kind = KIND_REQ, .seq = (uint64_t) p->attempts, .id = p->id,
                                 .deadline = p->deadline, .subject = p->service,
                                 .ctype = p->ctype, .headers = p->headers,
                                 .header_count = p->header_count };
            mesh_msg_t *req = mesh_msg_new (&head, p->body, p->size, self->self_id,
                                            mesh_node_name (self->node));
            if (req)
                zlistx_add_end (self->local_reqs, req);
        }
        else {
            mesh_head_t head = { .kind = KIND_REQ, .seq = (uint64_t) p->attempts, .id = p->id,
                                 .deadline = p->deadline, .subject = p->service,
                                 .ctype = p->ctype, .headers = p->headers,
                                 .header_count = p->header_count };
            if (mesh_node_send (self->node, prov->peer, &head, p->body, p->size)) {
                s_count (self, prov->peer, mesh_errno () == MESH_EAGAIN
                         ? "reqrep.dropped.hwm": "reqrep.dropped.send-error");
                if (p->fixed || p->ntried >= (int) route->count) {
                    s_fail (self, p, mesh_errno () == MESH_EAGAIN? MESH_EAGAIN: MESH_ENORESPONDERS,
                            "cannot send to any provider of %s: %s", p->service,
                            mesh_strerror (mesh_errno ()));
                    return -1;
                }
                continue;       //  the next provider
            }
        }
        prov->outstanding++;
        p->sent = true;
        if (p->attempt_until < self->next_due)
            self->next_due = p->attempt_until;
        return 0;
    }
}

//  Deadlines, retries, calls waiting for a provider. Lock held.
static void
s_check (mesh_reqrep_t *self, uint64_t now)
{
    s_rebuild (self);
    if (now < self->next_due)
        return;
    uint64_t next = UINT64_MAX;
    pending_t *p = self->first;
    while (p) {
        pending_t *next_p = p->next;
        if (now >= p->deadline) {
            s_count (self, p->sent && !p->target_local? p->target: NULL, "reqrep.timeouts");
            s_fail (self, p, MESH_ETIMEDOUT, "%s: no reply within the deadline (%d attempt%s)",
                    p->service, p->attempts, p->attempts == 1? "": "s");
        }
        else
        if (!p->sent)
            s_attempt (self, p, now);
        else
        if (p->target_gone || (now >= p->attempt_until && p->retries_left > 0 && !p->fixed)) {
            if (p->retries_left <= 0 || p->fixed)
                s_fail (self, p, MESH_ENORESPONDERS, "%s: the provider left and no retry "
                        "remains", p->service);
            else {
                s_count (self, p->target, p->target_gone? "reqrep.retried.provider-left"
                                                         : "reqrep.retried.timeout");
                p->retries_left--;
                s_release (self, p);
                p->wait_until = p->deadline;    //  a retry may wait for a provider
                s_attempt (self, p, now);
            }
        }
        p = next_p;
    }
    for (p = self->first; p; p = p->next) {
        uint64_t due = p->deadline;
        if (!p->sent)
            due = now + RR_TICK;
        else
        if (p->retries_left > 0 && !p->fixed && p->attempt_until < due)
            due = p->attempt_until;
        if (due < next)
            next = due;
    }
    if (self->next_due == 0 || self->next_due <= now || next < self->next_due)
        self->next_due = next;
}

//  An outcome with a reply (remote REP or local) for pending call p,
//  already unlinked. No lock held.
static void
s_outcome (mesh_reqrep_t *self, pending_t *p, int err, const char *error,
           const mesh_msg_t *reply)
{
    if (p->mode == P_SYNC) {
        p->err = err;
        p->error = error? strdup (error): NULL;
        p->reply = reply? mesh_msg_dup (reply): NULL;
        __atomic_store_n (&p->done, true, __ATOMIC_RELEASE);
        return;
    }
    if (p->mode == P_GATHER) {
        if (p->gather->fn)
            p->gather->fn (self, p->target, err, error, reply, p->gather->arg);
        p->gather->left--;
        p->gather->replies += reply != NULL;
    }
    else
    if (p->fn)
        p->fn (self, p->id, err, error, reply, p->arg);
    else {
        outcome_t *outcome = (outcome_t *) zmalloc (sizeof (outcome_t));
        outcome->id = p->id;
        outcome->err = err;
        outcome->error = error? strdup (error): NULL;
        outcome->reply = reply? mesh_msg_dup (reply): NULL;
        pthread_mutex_lock (&self->lock);
        bool full = zlistx_size (self->outcomes) >= RR_QUEUE_MAX;
        if (!full)
            zlistx_add_end (self->outcomes, outcome);
        pthread_mutex_unlock (&self->lock);
        if (full) {
            s_outcome_destroy (&outcome);
            s_count (self, NULL, "reqrep.dropped.queue-full");
        }
    }
    s_pending_free (p);
}

//  Failed calls queued under the lock: their callbacks run here, unlocked
static void
s_deliver_finished (mesh_reqrep_t *self)
{
    while (true) {
        pthread_mutex_lock (&self->lock);
        pending_t *p = self->finished;
        if (p)
            self->finished = p->next_done;
        pthread_mutex_unlock (&self->lock);
        if (!p)
            break;
        char *error = p->error;
        p->error = NULL;
        s_outcome (self, p, p->err, error, NULL);
        free (error);
    }
}

//  A reply arrived (from a peer, or from our own handler)
static void
s_on_reply (mesh_reqrep_t *self, const mesh_msg_t *msg, bool local)
{
    uint64_t id = mesh_msg_id (msg);
    const char *sender = mesh_msg_sender (msg);
    pthread_mutex_lock (&self->lock);
    pending_t *p = s_pt_lookup (&self->table, id);
    //  only a provider we sent it to may answer it
    if (p && !local && !s_tried (p, sender))
        p = NULL;
    if (p)
        s_unlink (self, p);
    pthread_mutex_unlock (&self->lock);
    if (!p) {
        //  after a timeout, or the slower of two providers after a retry
        s_count (self, local? NULL: sender, "reqrep.reply.late");
        return;
    }
    uint32_t flags = mesh_msg_flags (msg);
    if (flags & (FLAG_ERROR | FLAG_UNKNOWN)) {
        char *text = s_error_text (msg);
        s_outcome (self, p, MESH_EREMOTE, text? text: "remote error", NULL);
        free (text);
    }
    else
        s_outcome (self, p, 0, NULL, msg);
}

static void
s_on_rep (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    s_on_reply ((mesh_reqrep_t *) arg, msg, false);
}

//  ---------------------------------------------------------------------
//  Server side

static void
s_reply_init (mesh_reply_t *reply, mesh_reqrep_t *rr, const char *caller, uint64_t id,
              bool cast, bool local)
{
    reply->rr = rr;
    reply->deadline = 0;
    snprintf (reply->caller, sizeof reply->caller, "%s", caller);
    reply->id = id;
    reply->cast = cast;
    reply->local = local;
    reply->deferred = reply->heap = false;
    reply->flags = 0;
    reply->ctype [0] = 0;
    reply->body = reply->inline_buf;
    reply->size = 0;
    reply->cap = sizeof reply->inline_buf;
}

//  Send a reply with these fields (to a peer, or to our own pending call)
static void
s_send_reply (mesh_reqrep_t *self, const char *caller, uint64_t id, bool local,
              uint32_t flags, const char *ctype, const void *body, size_t size)
{
    mesh_head_t head = { .kind = KIND_REP, .flags = flags, .id = id,
                         .ctype = ctype && *ctype? ctype: NULL };
    if (local) {
        mesh_msg_t *msg = mesh_msg_new (&head, body, size, self->self_id,
                                        mesh_node_name (self->node));
        if (msg)
            s_on_reply (self, msg, true);
        mesh_msg_destroy (&msg);
        return;
    }
    if (mesh_node_send (self->node, caller, &head, body, size))
        //  kept in the cache: a retry of the caller gets it
        s_count (self, caller, mesh_errno () == MESH_EAGAIN
                 ? "reqrep.dropped.reply-hwm": "reqrep.dropped.reply-send-error");
}

static void
s_reply_finish (mesh_reply_t *reply)
{
    mesh_reqrep_t *self = reply->rr;
    if (reply->cast)
        return;
    if (!reply->local) {
        pthread_mutex_lock (&self->lock);
        size_t evicted = 0;
        bool kept = mesh_rrc_finish (self->cache, reply->caller, reply->id, reply->flags,
                                     reply->ctype, reply->body, reply->size, &evicted);
        pthread_mutex_unlock (&self->lock);
        if (evicted)
            mesh_node_count (self->node, NULL, "reqrep.cache.evicted", evicted);
        if (!kept)
            s_count (self, reply->caller, "reqrep.cache.unkept");
        //  the caller gave up at its deadline: what we send now is counted
        //  there as late, so count it here as dropped instead
        if (reply->deadline && mesh_clock_ms () >= reply->deadline) {
            s_count (self, reply->caller, "reqrep.dropped.reply-late");
            return;
        }
    }
    s_send_reply (self, reply->caller, reply->id, reply->local, reply->flags, reply->ctype,
                  reply->body, reply->size);
}

//  Run our handler for a request (from a peer or from ourselves)
static void
s_serve (mesh_reqrep_t *self, const mesh_msg_t *msg, bool local)
{
    const char *service = mesh_msg_subject (msg);
    const char *caller = mesh_msg_sender (msg);
    uint64_t id = mesh_msg_id (msg);
    bool cast = (mesh_msg_flags (msg) & FLAG_CAST) != 0;
    pthread_mutex_lock (&self->lock);
    service_t *svc = self->hot_service;
    if (!svc || strcmp (self->hot_served, service)) {
        svc = (service_t *) zhashx_lookup (self->services, service);
        if (svc) {
            snprintf (self->hot_served, sizeof self->hot_served, "%s", service);
            self->hot_service = svc;
        }
    }
    mesh_serve_fn *fn = svc? svc->fn: NULL;
    void *arg = svc? svc->arg: NULL;
    if (!local && !cast) {
        mesh_rrc_reply_t kept;
        size_t evicted = 0;
        int state = mesh_rrc_begin (self->cache, caller, id, &kept, &evicted);
        if (state == MESH_RRC_DONE)
            //  a retry of a request answered already: the same answer
            s_send_reply (self, caller, id, false, kept.flags, kept.ctype, kept.body, kept.size);
        pthread_mutex_unlock (&self->lock);
        if (evicted)
            mesh_node_count (self->node, NULL, "reqrep.cache.evicted", evicted);
        if (state == MESH_RRC_DONE) {
            s_count (self, caller, "reqrep.duplicate.answered");
            return;
        }
        if (state == MESH_RRC_RUNNING) {
            s_count (self, caller, "reqrep.duplicate.running");
            return;             //  its reply goes out when the handler is done
        }
        if (state == MESH_RRC_UNKEPT) {
            s_count (self, caller, "reqrep.duplicate.unkept");
            const char *text = "request ran already; its reply was too big to keep for a retry";
            s_send_reply (self, caller, id, false, FLAG_ERROR, NULL, text, strlen (text));
            return;
        }
    }
    else
        pthread_mutex_unlock (&self->lock);
    mesh_reply_t reply;
    s_reply_init (&reply, self, caller, id, cast, local);
    reply.deadline = mesh_msg_deadline (msg);
    if (!fn) {
        char text [MESH_MAX_SUBJECT + 64];
        snprintf (text, sizeof text, "unknown service %s at %s", service,
                  mesh_node_name (self->node));
        s_count (self, local? NULL: caller, "reqrep.error.unknown-service");
        mesh_reply_fail (&reply, text);
        reply.flags = FLAG_UNKNOWN;
        s_reply_finish (&reply);
        return;
    }
    fn (self, msg, &reply, arg);
    if (++self->served == RR_COUNT_BATCH) {
        self->served = 0;
        mesh_node_count (self->node, NULL, "reqrep.served", RR_COUNT_BATCH);
    }
    if (!reply.deferred) {
        if (reply.flags & FLAG_ERROR)
            s_count (self, local? NULL: caller, "reqrep.error.handler");
        s_reply_finish (&reply);
    }
    if (reply.body != reply.inline_buf)
        free (reply.body);
}

static void
s_on_req (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_reqrep_t *self = (mesh_reqrep_t *) arg;
    const char *peer = mesh_msg_sender (msg);
    //  input from the network: the envelope checked lengths; the rest here
    if (mesh_msg_id (msg) == 0 || !*mesh_msg_subject (msg)) {
        s_count (self, peer, "reqrep.dropped.malformed");
        return;
    }
    uint64_t deadline = mesh_msg_deadline (msg);
    if (deadline && mesh_clock_ms () >= deadline) {
        s_count (self, peer, "reqrep.dropped.expired");
        return;
    }
    s_serve (self, msg, false);
}

//  Requests for our own services, from the dispatch loop
static void
s_pump_local (mesh_reqrep_t *self)
{
    for (int i = 0; i < 1024; i++) {
        pthread_mutex_lock (&self->lock);
        mesh_msg_t *msg = (mesh_msg_t *) zlistx_detach (self->local_reqs, NULL);
        pthread_mutex_unlock (&self->lock);
        if (!msg)
            break;
        s_serve (self, msg, true);
        mesh_msg_destroy (&msg);
    }
}

static void
s_tick (mesh_node_t *node, void *arg)
{
    (void) node;
    mesh_reqrep_t *self = (mesh_reqrep_t *) arg;
    pthread_mutex_lock (&self->lock);
    s_check (self, mesh_clock_ms ());
    uint64_t calls = self->calls;
    self->calls = 0;
    pthread_mutex_unlock (&self->lock);
    if (calls)
        mesh_node_count (self->node, NULL, "reqrep.calls", calls);
    s_pump_local (self);
    s_deliver_finished (self);
}

//  ---------------------------------------------------------------------
//  Construction

mesh_reqrep_t *
mesh_reqrep_new (mesh_node_t *node)
{
    assert (node);
    mesh_reqrep_t *self = (mesh_reqrep_t *) zmalloc (sizeof (mesh_reqrep_t));
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    snprintf (self->self_id, sizeof self->self_id, "%s", mesh_node_id (node));
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, s_free);
    self->routes = zhashx_new ();
    zhashx_set_destructor (self->routes, (zhashx_destructor_fn *) s_route_destroy);
    self->announced = zhashx_new ();
    zhashx_set_destructor (self->announced, s_free);
    self->local_reqs = zlistx_new ();
    zlistx_set_destructor (self->local_reqs, (zlistx_destructor_fn *) mesh_msg_destroy);
    self->outcomes = zlistx_new ();
    zlistx_set_destructor (self->outcomes, (zlistx_destructor_fn *) s_outcome_destroy);
    self->cache = mesh_rrc_new (MESH_RRC_CALLERS, MESH_RRC_BYTES);
    self->generation = (uint64_t) -1;
    self->settle_ms = MESH_DEFAULT_SETTLE_MS;
    //  Request ids start at a random point: a caller restarted with the
    //  same node id must not meet its old ids in a server's reply cache
    uint64_t start = 0;
    zuuid_t *uuid = zuuid_new ();
    memcpy (&start, zuuid_data (uuid), sizeof start);
    zuuid_destroy (&uuid);
    self->next_id = (start >> 2) + 1;
    s_settle_end (self);
    if (mesh_node_on_kind (node, KIND_REQ, s_on_req, self)
    ||  mesh_node_on_kind (node, KIND_REP, s_on_rep, self)
    ||  mesh_node_on_tick (node, RR_TICK, s_tick, self)) {
        mesh_reqrep_destroy (&self);
        return NULL;
    }
    return self;
}

void
mesh_reqrep_destroy (mesh_reqrep_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mesh_reqrep_t *self = *self_p;
    //  the node may outlive us: stop it calling into freed memory
    mesh_node_on_kind (self->node, KIND_REQ, NULL, NULL);
    mesh_node_on_kind (self->node, KIND_REP, NULL, NULL);
    mesh_node_on_tick (self->node, RR_TICK, NULL, self);
    if (zhashx_size (self->services))
        mesh_node_announce (self->node, RR_KEY, "", 0);     //  withdraw: peers see DOWN
    size_t dropped = 0;
    while (self->first) {
        pending_t *p = self->first;
        s_unlink (self, p);
        if (p->mode == P_SYNC)
            continue;           //  on a waiter's stack: not ours to free
        s_pending_free (p);
        dropped++;
    }
    while (self->finished) {
        pending_t *p = self->finished;
        self->finished = p->next_done;
        s_pending_free (p);
        dropped++;
    }
    if (dropped)
        mesh_node_count (self->node, NULL, "reqrep.dropped.destroyed", dropped);
    if (self->served % RR_COUNT_BATCH)
        mesh_node_count (self->node, NULL, "reqrep.served", self->served % RR_COUNT_BATCH);
    if (self->calls)
        mesh_node_count (self->node, NULL, "reqrep.calls", self->calls);
    zhashx_destroy (&self->services);
    zhashx_destroy (&self->routes);
    zhashx_destroy (&self->announced);
    zlistx_destroy (&self->local_reqs);
    zlistx_destroy (&self->outcomes);
    mesh_rrc_destroy (&self->cache);
    free (self->table.slots);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

mesh_node_t *
mesh_reqrep_node (mesh_reqrep_t *self)
{
    assert (self);
    return self->node;
}

int
mesh_reqrep_set_settle (mesh_reqrep_t *self, int msecs)
{
    assert (self);
    if (msecs < 0)
        return mesh_set_error (MESH_EINVAL, "settle time must be >= 0");
    self->settle_ms = msecs;
    return 0;
}

//  ---------------------------------------------------------------------
//  Serving

int
mesh_serve (mesh_reqrep_t *self, const char *service, mesh_serve_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    if (!service || !mesh_subject_valid (service))
        return mesh_set_error (MESH_EINVAL, "bad service name: dot-separated non-empty "
                               "tokens, no * or #, at most 255 bytes");
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    if (zhashx_lookup (self->services, service))
        rc = mesh_set_error (MESH_EINVAL, "service already served by this node");
    else {
        service_t *svc = (service_t *) zmalloc (sizeof (service_t));
        svc->fn = fn;
        svc->arg = arg;
        zhashx_insert (self->services, service, svc);
        self->hot_service = NULL;
        s_announce (self);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
mesh_unserve (mesh_reqrep_t *self, const char *service)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    if (!service || !zhashx_lookup (self->services, service))
        rc = mesh_set_error (MESH_EINVAL, "service not served by this node");
    else {
        zhashx_delete (self->services, service);
        self->hot_service = NULL;
        s_announce (self);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
mesh_reply_set (mesh_reply_t *reply, const void *body, size_t size)
{
    assert (reply);
    if (size > RR_MAX_BODY)
        return mesh_set_error (MESH_ETOOBIG, "reply body too big");
    if (size > reply->cap) {
        char *buf = (char *) malloc (size);
        if (!buf)
            return mesh_set_error (MESH_ESYS, "out of memory");
        if (reply->body != reply->inline_buf)
            free (reply->body);
        reply->body = buf;
        reply->cap = size;
    }
    if (size)
        memcpy (reply->body, body, size);
    reply->size = size;
    return 0;
}

int
mesh_reply_set_ctype (mesh_reply_t *reply, const char *ctype)
{
    assert (reply);
    if (ctype && strlen (ctype) >= sizeof reply->ctype)
        return mesh_set_error (MESH_ETOOBIG, "content type too long");
    snprintf (reply->ctype, sizeof reply->ctype, "%s", ctype? ctype: "");
    return 0;
}

int
mesh_reply_fail (mesh_reply_t *reply, const char *message)
{
    assert (reply);
    const char *text = message && *message? message: "handler failed";
    size_t size = strlen (text);
    if (mesh_reply_set (reply, text, size < RR_MAX_ERROR? size: RR_MAX_ERROR))
        return -1;
    reply->flags = FLAG_ERROR;
    reply->ctype [0] = 0;
    return 0;
}

mesh_reply_t *
mesh_reply_defer (mesh_reply_t *reply)
{
    assert (reply);
    assert (!reply->heap);
    if (reply->cast || reply->deferred)
        return NULL;
    mesh_reply_t *copy = (mesh_reply_t *) malloc (sizeof (mesh_reply_t));
    if (!copy)
        return NULL;
    memcpy (copy, reply, sizeof *copy);
    copy->heap = true;
    copy->body = copy->inline_buf;
    copy->cap = sizeof copy->inline_buf;
    copy->size = 0;
    if (mesh_reply_set (copy, reply->body, reply->size)) {
        free (copy);
        return NULL;
    }
    reply->deferred = true;     //  the handler's return sends nothing
    return copy;
}

int
mesh_reply_send (mesh_reply_t **reply_p)
{
    assert (reply_p);
    mesh_reply_t *reply = *reply_p;
    if (!reply)
        return mesh_set_error (MESH_EINVAL, "no reply");
    assert (reply->heap);
    if (reply->flags & FLAG_ERROR)
        s_count (reply->rr, reply->local? NULL: reply->caller, "reqrep.error.handler");
    s_reply_finish (reply);
    if (reply->body != reply->inline_buf)
        free (reply->body);
    free (reply);
    *reply_p = NULL;
    return 0;
}

//  ---------------------------------------------------------------------
//  Calling

size_t
mesh_reqrep_providers (mesh_reqrep_t *self, const char *service)
{
    assert (self);
    if (!service)
        return 0;
    pthread_mutex_lock (&self->lock);
    s_rebuild (self);
    route_t *route = s_route (self, service);
    size_t count = route? route->count: 0;
    pthread_mutex_unlock (&self->lock);
    return count;
}

int
mesh_reqrep_wait_providers (mesh_reqrep_t *self, const char *service, size_t count,
                            int timeout_ms)
{
    assert (self);
    int64_t deadline = (int64_t) mesh_clock_ms () + timeout_ms;
    while (mesh_reqrep_providers (self, service) < count) {
        int64_t left = deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0)
            return mesh_set_error (MESH_ETIMEDOUT, "too few providers before the timeout");
        if (mesh_node_dispatch (self->node, left < 50? (int) left: 50) < 0)
            return -1;
    }
    return 0;
}

//  Fill a call from its arguments; copy what must outlive the caller's
//  frame (async calls). 0 or -1.
static int
s_prepare (mesh_reqrep_t *self, pending_t *p, pmode_t mode, const char *service,
           const void *body, size_t size, const mesh_call_opts_t *opts, bool copy)
{
    if (!service || !mesh_subject_valid (service))
        return mesh_set_error (MESH_EINVAL, "bad service name");
    if (size > RR_MAX_BODY)
        return mesh_set_error (MESH_ETOOBIG, "request body too big");
    mesh_call_opts_t none = { 0 };
    if (!opts)
        opts = &none;
    if (opts->header_count && !opts->headers)
        return mesh_set_error (MESH_EINVAL, "header_count without headers");
    uint64_t now = mesh_clock_ms ();
    p->mode = mode;
    snprintf (p->service, sizeof p->service, "%s", service);
    p->deadline = now + (uint64_t) (opts->timeout_ms > 0? opts->timeout_ms
                                                        : MESH_DEFAULT_CALL_TIMEOUT);
    p->retries_left = opts->retries < 0? 0: opts->retries? opts->retries
                                                         : MESH_DEFAULT_CALL_RETRIES;
    uint64_t settle = s_settle_end (self);
    p->wait_until = opts->wait_for_provider? p->deadline: settle == UINT64_MAX? now: settle;
    p->header_count = opts->header_count;
    if (!copy) {
        p->body = body;
        p->size = size;
        p->ctype = (char *) opts->ctype;
        p->headers = opts->headers;
        return 0;
    }
    p->owns = true;
    p->size = size;
    p->body = size? malloc (size): NULL;
    if (size && p->body)
        memcpy ((void *) p->body, body, size);
    p->ctype = opts->ctype? strdup (opts->ctype): NULL;
    if (opts->header_count) {
        char **headers = (char **) calloc (2 * opts->header_count, sizeof (char *));
        for (size_t i = 0; headers && i < 2 * opts->header_count; i++)
            headers [i] = strdup (opts->headers [i]? opts->headers [i]: "");
        p->headers = (const char *const *) headers;
    }
    return 0;
}

//  Register a prepared call and make its first attempt. Lock taken here.
//  0, or -1 when it failed at once (p is then finished, not queued).
static int
s_launch (mesh_reqrep_t *self, pending_t *p)
{
    pthread_mutex_lock (&self->lock);
    if (self->table.count >= RR_MAX_PENDING) {
        pthread_mutex_unlock (&self->lock);
        return mesh_set_error (MESH_EFULL, "too many calls in flight");
    }
    p->id = self->next_id++;
    if (s_pt_insert (&self->table, p)) {
        pthread_mutex_unlock (&self->lock);
        return mesh_set_error (MESH_ESYS, "out of memory");
    }
    p->next = self->first;
    if (self->first)
        self->first->prev = p;
    self->first = p;
    self->calls++;
    uint64_t now = mesh_clock_ms ();
    s_rebuild (self);
    if (p->deadline < self->next_due || self->next_due == 0)
        self->next_due = p->deadline;
    int rc = s_attempt (self, p, now);
    if (rc) {
        //  failed at once: the caller reports it, not the finished list
        if (self->finished == p)
            self->finished = p->next_done;
        mesh_set_error (p->err, p->error);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

//  Dispatch until p is done (p->done) or its deadline passed
static void
s_wait (mesh_reqrep_t *self, volatile bool *done, uint64_t deadline)
{
    while (!__atomic_load_n (done, __ATOMIC_ACQUIRE)) {
        s_pump_local (self);
        if (__atomic_load_n (done, __ATOMIC_ACQUIRE))
            break;
        uint64_t now = mesh_clock_ms ();
        int wait = now >= deadline? 0: deadline - now < 50? (int) (deadline - now): 50;
        if (mesh_node_dispatch (self->node, wait) < 0)
            break;
        if (now >= self->next_due || now >= deadline) {
            pthread_mutex_lock (&self->lock);
            s_check (self, mesh_clock_ms ());
            pthread_mutex_unlock (&self->lock);
            s_deliver_finished (self);
        }
    }
}

mesh_msg_t *
mesh_call (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
           const mesh_call_opts_t *opts)
{
    assert (self);
    pending_t p;
    memset (&p, 0, sizeof p);
    if (s_prepare (self, &p, P_SYNC, service, body, size, opts, false)
    ||  s_launch (self, &p)) {
        free (p.error);
        return NULL;
    }
    s_wait (self, &p.done, p.deadline + 1000);
    if (!p.done) {
        //  the node stopped under us
        pthread_mutex_lock (&self->lock);
        s_unlink (self, &p);
        pthread_mutex_unlock (&self->lock);
        mesh_set_error (MESH_ECLOSED, "node stopped during the call");
        free (p.error);
        mesh_msg_destroy (&p.reply);
        return NULL;
    }
    mesh_msg_t *reply = p.reply;
    if (!reply)
        mesh_set_error (p.err? p.err: MESH_ESYS, p.error);
    free (p.error);
    return reply;
}

uint64_t
mesh_call_async (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
                 const mesh_call_opts_t *opts, mesh_call_fn *fn, void *arg)
{
    assert (self);
    pending_t *p = (pending_t *) zmalloc (sizeof (pending_t));
    if (s_prepare (self, p, P_ASYNC, service, body, size, opts, true)) {
        s_pending_free (p);
        return 0;
    }
    p->fn = fn;
    p->arg = arg;
    if (s_launch (self, p)) {
        s_pending_free (p);
        return 0;
    }
    return p->id;
}

mesh_msg_t *
mesh_reqrep_recv (mesh_reqrep_t *self, int timeout_ms, uint64_t *call_id, int *err)
{
    assert (self);
    int64_t deadline = (int64_t) mesh_clock_ms () + timeout_ms;
    while (true) {
        pthread_mutex_lock (&self->lock);
        outcome_t *outcome = (outcome_t *) zlistx_detach (self->outcomes, NULL);
        pthread_mutex_unlock (&self->lock);
        if (outcome) {
            mesh_msg_t *reply = outcome->reply;
            outcome->reply = NULL;
            if (call_id)
                *call_id = outcome->id;
            if (err)
                *err = outcome->err;
            if (!reply)
                mesh_set_error (outcome->err, outcome->error);
            s_outcome_destroy (&outcome);
            return reply;
        }
        int64_t left = timeout_ms < 0? 100: deadline - (int64_t) mesh_clock_ms ();
        if (left <= 0 || mesh_node_dispatch (self->node, left < 100? (int) left: 100) < 0) {
            if (call_id)
                *call_id = 0;
            if (err)
                *err = MESH_ETIMEDOUT;
            mesh_set_error (MESH_ETIMEDOUT, "no outcome before the timeout");
            return NULL;
        }
        s_pump_local (self);
    }
}

//  Wait (dispatching) while nobody offers service, until `until`; with
//  all, until then even when some do (to find every provider)
static route_t *
s_route_settled (mesh_reqrep_t *self, const char *service, uint64_t until, bool all)
{
    while (true) {
        pthread_mutex_lock (&self->lock);
        s_rebuild (self);
        route_t *route = s_route (self, service);
        bool found = route && route->count;
        pthread_mutex_unlock (&self->lock);
        uint64_t now = mesh_clock_ms ();
        if ((found && !all) || now >= until)
            return found? route: NULL;
        if (mesh_node_dispatch (self->node, until - now < 50? (int) (until - now): 50) < 0)
            return NULL;
    }
}

int
mesh_cast (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
           bool all, const mesh_call_opts_t *opts)
{
    assert (self);
    pending_t p;
    memset (&p, 0, sizeof p);
    if (s_prepare (self, &p, P_SYNC, service, body, size, opts, false))
        return -1;
    if (!s_route_settled (self, service, p.wait_until, false)) {
        s_count (self, NULL, "reqrep.no-responders");
        return mesh_set_error (MESH_ENORESPONDERS, "no responders");
    }
    pthread_mutex_lock (&self->lock);
    s_rebuild (self);
    route_t *route = s_route (self, service);
    size_t count = route? route->count: 0;
    prov_t *one = all? NULL: s_choose (route, &p);
    //  a copy of the targets: sending may not see the table change under it
    prov_t *targets = (prov_t *) calloc (count + 1, sizeof (prov_t));
    size_t n = 0;
    for (size_t i = 0; targets && i < count; i++)
        if (all || &route->provs [i] == one)
            targets [n++] = route->provs [i];
    uint64_t id = self->next_id++;
    mesh_head_t head = { .kind = KIND_REQ, .flags = FLAG_CAST, .seq = 1, .id = id,
                         .deadline = p.deadline, .subject = p.service, .ctype = p.ctype,
                         .headers = p.headers, .header_count = p.header_count };
    int sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (targets [i].local) {
            mesh_msg_t *req = mesh_msg_new (&head, body, size, self->self_id,
                                            mesh_node_name (self->node));
            if (req) {
                zlistx_add_end (self->local_reqs, req);
                sent++;
            }
        }
        else
        if (mesh_node_send (self->node, targets [i].peer, &head, body, size) == 0)
            sent++;
        else
            s_count (self, targets [i].peer, mesh_errno () == MESH_EAGAIN
                     ? "reqrep.dropped.hwm": "reqrep.dropped.send-error");
    }
    pthread_mutex_unlock (&self->lock);
    free (targets);
    if (!sent)
        return mesh_set_error (MESH_ENORESPONDERS, "cast reached no provider");
    return 0;
}

int
mesh_call_all (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
               const mesh_call_opts_t *opts, mesh_gather_fn *fn, void *arg)
{
    assert (self);
    pending_t probe;
    memset (&probe, 0, sizeof probe);
    if (s_prepare (self, &probe, P_SYNC, service, body, size, opts, false))
        return -1;
    //  every provider is wanted: let discovery settle fully first
    uint64_t settle = s_settle_end (self);
    if (settle != UINT64_MAX && settle > mesh_clock_ms ())
        s_route_settled (self, service, settle < probe.deadline? settle: probe.deadline, true);
    if (!s_route_settled (self, service, probe.wait_until, false)) {
        s_count (self, NULL, "reqrep.no-responders");
        return mesh_set_error (MESH_ENORESPONDERS, "no responders");
    }
    pthread_mutex_lock (&self->lock);
    route_t *route = s_route (self, service);
    size_t count = route? route->count: 0;
    char (*peers) [33] = (char (*) [33]) calloc (count + 1, 33);
    for (size_t i = 0; peers && i < count; i++)
        memcpy (peers [i], route->provs [i].peer, 33);
    pthread_mutex_unlock (&self->lock);
    gather_t gather = { 0, 0, fn, arg };
    mesh_call_opts_t each = opts? *opts: (mesh_call_opts_t) { 0 };
    each.timeout_ms = (int) (probe.deadline - mesh_clock_ms ());
    if (each.timeout_ms <= 0)
        each.timeout_ms = 1;
    each.retries = -1;
    each.wait_for_provider = false;
    for (size_t i = 0; peers && i < count; i++) {
        pending_t *p = (pending_t *) zmalloc (sizeof (pending_t));
        if (s_prepare (self, p, P_GATHER, service, body, size, &each, true)) {
            s_pending_free (p);
            continue;
        }
        p->fixed = true;
        p->gather = &gather;
        snprintf (p->target, sizeof p->target, "%s", peers [i]);
        gather.left++;
        if (s_launch (self, p)) {
            //  failed at once: report it as its outcome
            char *error = p->error;
            p->error = NULL;
            s_outcome (self, p, p->err, error, NULL);
            free (error);
        }
    }
    free (peers);
    while (gather.left) {
        s_pump_local (self);
        if (mesh_node_dispatch (self->node, 20) < 0)
            break;
        pthread_mutex_lock (&self->lock);
        s_check (self, mesh_clock_ms ());
        pthread_mutex_unlock (&self->lock);
        s_deliver_finished (self);
    }
    return gather.replies;
}
