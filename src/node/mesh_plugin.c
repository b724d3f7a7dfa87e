/*  =========================================================================
    mesh_plugin - the patterns plugged into a node

    A pattern registers once per node with its table of operations
    (mesh_pattern_t, meshbus/pattern.h). The node then owns what every
    pattern used to write for itself:

      - the kinds: each kind has one owner, the core, a pattern or the
        application (mesh_node_on_kind); a second claim is refused loudly
        (an error line and MESH_EINVAL) instead of silently replacing the
        first handler;
      - the announcement watch: mesh_plugin_sync compares the node's
        generation with the one the pattern last saw and, when it moved,
        lists the peers, fetches each one's announcement under the
        pattern's key, parses it with the one codec (mesh_announce.c) and
        calls on_announce for every peer whose announcement changed, with
        the old and the new one parsed (NULL: none). A pattern keeps what
        it derives; it never polls the peer table itself.

    Locks: node->stats_lock is the outermost (the keeper holds it while it
    runs the patterns' stats ops; unregister takes it, so a pattern never
    goes while its op runs). A plugin's watch has its own mutex, taken inside the pattern's
    lock (the pattern calls sync with it held) and outside node->lock.
    on_announce runs in the thread that called sync.
    ========================================================================= */

#include "mesh_node_int.h"

struct _mesh_plugin_t {
    mesh_node_t *node;
    const mesh_pattern_t *ops;
    void *self;
    pthread_mutex_t lock;       //  guards what follows
    uint64_t generation;        //  the node's generation last synced
    bool resync;                //  next sync hands over every announcement again
    zhashx_t *seen;             //  peer id -> mesh_announcement_t *, last parsed
    zhashx_t *serials;          //  peer id -> uint64_t *: its record's serial then
};

static void
s_announcement_free (void **item)
{
    mesh_announcement_destroy ((mesh_announcement_t **) item);
}

static void
s_serial_free (void **item)
{
    free (*item);
    *item = NULL;
}

static const char *
s_owner (mesh_node_t *node, int kind)
{
    const char *owner = node->kinds [kind].owner;
    return owner? owner: "the application";
}

mesh_plugin_t *
mesh_node_register (mesh_node_t *node, const mesh_pattern_t *ops, void *self)
{
    assert (node);
    assert (ops && ops->name && *ops->name);
    assert (!ops->kinds [0] || ops->on_message);
    assert (!ops->announce_key || ops->on_announce);
    mesh_plugin_t *plugin = (mesh_plugin_t *) calloc (1, sizeof *plugin);
    if (!plugin) {
        mesh_fail (MESH_ESYS, "no memory for pattern %s", ops->name);
        return NULL;
    }
    plugin->node = node;
    plugin->ops = ops;
    plugin->self = self;
    plugin->generation = (uint64_t) -1;
    plugin->seen = zhashx_new ();
    zhashx_set_destructor (plugin->seen, s_announcement_free);
    plugin->serials = zhashx_new ();
    zhashx_set_destructor (plugin->serials, s_serial_free);
    pthread_mutex_init (&plugin->lock, NULL);

    pthread_mutex_lock (&node->lock);
    const char *refusal = NULL;
    int kind = 0;
    size_t count = 0;
    for (; count < MESH_PATTERN_MAX_KINDS && ops->kinds [count]; count++) {
        kind = ops->kinds [count];
        if (kind < MESH_KIND_PATTERN || kind > 255) {
            refusal = "is not a pattern's kind";
            break;
        }
        if (node->kinds [kind].fn) {
            refusal = s_owner (node, kind);
            break;
        }
    }
    if (!refusal && node->pattern_count == MESH_MAX_PATTERNS)
        refusal = "one pattern too many";
    if (!refusal
    &&  (node->peer_hook_count + (ops->on_peer? 1: 0) > MESH_MAX_HOOKS
      || node->tick_count + (ops->on_tick? 1: 0) > MESH_MAX_HOOKS))
        refusal = "one hook too many";
    if (refusal) {
        pthread_mutex_unlock (&node->lock);
        if (kind && count < MESH_PATTERN_MAX_KINDS && ops->kinds [count] == kind)
            mesh_log (MESH_LOG_ERROR, node->name, "pattern %s refused: kind %d %s%s",
                      ops->name, kind, strchr (refusal, ' ')? "": "is already owned by ",
                      refusal);
        else
            mesh_log (MESH_LOG_ERROR, node->name, "pattern %s refused: %s", ops->name, refusal);
        mesh_fail (MESH_EINVAL, "pattern %s refused (kind %d: %s)", ops->name, kind, refusal);
        zhashx_destroy (&plugin->seen);
        zhashx_destroy (&plugin->serials);
        pthread_mutex_destroy (&plugin->lock);
        free (plugin);
        return NULL;
    }
    for (size_t i = 0; i < count; i++)
        node->kinds [ops->kinds [i]] = (mesh_kind_hook_t) {
            .fn = ops->on_message, .arg = self, .owner = ops->name
        };
    if (ops->on_peer) {
        node->peer_hooks [node->peer_hook_count] = ops->on_peer;
        node->peer_hook_args [node->peer_hook_count++] = self;
    }
    if (ops->on_tick)
        node->ticks [node->tick_count++] = (mesh_tick_hook_t) {
            .interval = ops->tick_ms, .next = mesh_mono_ms () + ops->tick_ms,
            .fn = ops->on_tick, .arg = self
        };
    node->patterns [node->pattern_count++] = plugin;
    pthread_mutex_unlock (&node->lock);
    return plugin;
}

void
mesh_node_unregister (mesh_plugin_t **plugin_p)
{
    assert (plugin_p);
    mesh_plugin_t *plugin = *plugin_p;
    if (!plugin)
        return;
    mesh_node_t *node = plugin->node;
    //  the keeper may be in our stats op (mesh_node_stats.c): wait for it
    pthread_mutex_lock (&node->stats_lock);
    pthread_mutex_lock (&node->lock);
    for (int kind = 0; kind < 256; kind++)
        if (node->kinds [kind].owner == plugin->ops->name && node->kinds [kind].arg == plugin->self)
            node->kinds [kind] = (mesh_kind_hook_t) { 0 };
    size_t kept = 0;
    for (size_t i = 0; i < node->pattern_count; i++)
        if (node->patterns [i] != plugin)
            node->patterns [kept++] = node->patterns [i];
    node->pattern_count = kept;
    pthread_mutex_unlock (&node->lock);
    pthread_mutex_unlock (&node->stats_lock);
    //  hooks go the way a module's always went: every one registered with self
    if (plugin->ops->on_peer)
        mesh_node_on_peer (node, NULL, plugin->self);
    if (plugin->ops->on_tick)
        mesh_node_on_tick (node, 0, NULL, plugin->self);
    zhashx_destroy (&plugin->seen);
    zhashx_destroy (&plugin->serials);
    pthread_mutex_destroy (&plugin->lock);
    free (plugin);
    *plugin_p = NULL;
}

const mesh_pattern_t *
mesh_plugin_ops (mesh_plugin_t *plugin, void **self)
{
    *self = plugin->self;
    return plugin->ops;
}

mesh_node_t *
mesh_plugin_node (mesh_plugin_t *plugin)
{
    assert (plugin);
    return plugin->node;
}

//  One peer's announcement now (NULL: none, or not one we can read).
//  *before is set NULL when the peer left and came back since we saw it
//  (another record, so another serial): the pattern hears it go first.
static mesh_announcement_t *
s_fetch (mesh_plugin_t *plugin, const char *peer, mesh_announcement_t **before_p,
         bool *same, bool *rejoined)
{
    size_t size = 0;
    uint64_t serial = 0;
    char *text = (char *) mesh_node_peer_announcement_serial (plugin->node, peer,
                                                              plugin->ops->announce_key,
                                                              &size, &serial);
    uint64_t *was = (uint64_t *) zhashx_lookup (plugin->serials, peer);
    *rejoined = *before_p && was && *was != serial;
    if (!was && (was = (uint64_t *) malloc (sizeof *was)))
        zhashx_insert (plugin->serials, peer, was);
    if (was)
        *was = serial;
    if (*rejoined)
        *before_p = NULL;
    const mesh_announcement_t *before = *before_p;
    if (text && size == 0) {
        free (text);            //  an empty value withdraws the announcement
        text = NULL;
    }
    *same = text? mesh_announcement_same (before, text, size): !before;
    mesh_announcement_t *now = NULL;
    if (text && !*same) {
        now = mesh_announcement_parse (text, size);
        char name [96];
        snprintf (name, sizeof name, "%s.malformed.announcement", plugin->ops->name);
        if (!now)
            mesh_node_count (plugin->node, peer, name, 1);
        else
        if (mesh_announcement_malformed (now))
            mesh_node_count (plugin->node, peer, name, mesh_announcement_malformed (now));
        *same = !now && !before;
    }
    free (text);
    return now;
}

size_t
mesh_plugin_sync (mesh_plugin_t *plugin)
{
    assert (plugin);
    if (!plugin->ops->announce_key)
        return 0;
    uint64_t generation = mesh_node_generation (plugin->node);
    if (__atomic_load_n (&plugin->generation, __ATOMIC_ACQUIRE) == generation)
        return 0;
    pthread_mutex_lock (&plugin->lock);
    size_t changed = 0;
    if (plugin->generation != generation) {
        char **peers = mesh_node_peers (plugin->node);
        zhashx_t *present = zhashx_new ();
        for (char **peer = peers; peer && *peer; peer++) {
            zhashx_insert (present, *peer, (void *) 1);
            mesh_announcement_t *was = (mesh_announcement_t *) zhashx_lookup (plugin->seen, *peer);
            mesh_announcement_t *before = was;
            bool same, rejoined;
            mesh_announcement_t *now = s_fetch (plugin, *peer, &before, &same, &rejoined);
            if (rejoined) {
                //  it left and came back (EXIT then ENTER, or a restart)
                //  since the last sync: what the pattern keeps for it
                //  (jobs in flight, streams, calls) went with the old
                //  record, so it hears the announcement go, then come
                plugin->ops->on_announce (plugin->node, plugin->self, *peer, was, NULL);
                zhashx_delete (plugin->seen, *peer);
                changed++;
            }
            if (same && !(plugin->resync && before))
                continue;
            //  unchanged but asked again (mesh_plugin_resync): before, twice
            plugin->ops->on_announce (plugin->node, plugin->self, *peer, before,
                                      same? before: now);
            if (same) {
                changed++;
                continue;
            }
            changed++;
            if (now)
                zhashx_update (plugin->seen, *peer, now);
            else
                zhashx_delete (plugin->seen, *peer);
        }
        //  peers gone: their announcements went with them
        zlistx_t *gone = zlistx_new ();
        for (void *item = zhashx_first (plugin->seen); item; item = zhashx_next (plugin->seen))
            if (!zhashx_lookup (present, zhashx_cursor (plugin->seen)))
                zlistx_add_end (gone, (void *) zhashx_cursor (plugin->seen));
        for (const char *peer = (const char *) zlistx_first (gone); peer;
             peer = (const char *) zlistx_next (gone)) {
            plugin->ops->on_announce (plugin->node, plugin->self, peer,
                                      (mesh_announcement_t *) zhashx_lookup (plugin->seen, peer), NULL);
            changed++;
        }
        for (const char *peer = (const char *) zlistx_first (gone); peer;
             peer = (const char *) zlistx_next (gone))
            zhashx_delete (plugin->seen, peer);
        //  serials of peers no longer listed are forgotten with them
        zlistx_t *stale = zlistx_new ();
        for (void *item = zhashx_first (plugin->serials); item; item = zhashx_next (plugin->serials))
            if (!zhashx_lookup (present, zhashx_cursor (plugin->serials)))
                zlistx_add_end (stale, (void *) zhashx_cursor (plugin->serials));
        for (const char *peer = (const char *) zlistx_first (stale); peer;
             peer = (const char *) zlistx_next (stale))
            zhashx_delete (plugin->serials, peer);
        zlistx_destroy (&stale);
        zlistx_destroy (&gone);
        zhashx_destroy (&present);
        mesh_strv_free (&peers);
        plugin->resync = false;
        __atomic_store_n (&plugin->generation, generation, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock (&plugin->lock);
    return changed;
}

void
mesh_plugin_resync (mesh_plugin_t *plugin)
{
    assert (plugin);
    pthread_mutex_lock (&plugin->lock);
    plugin->resync = true;
    __atomic_store_n (&plugin->generation, (uint64_t) -1, __ATOMIC_RELEASE);
    pthread_mutex_unlock (&plugin->lock);
}

//  The node is going: patterns still plugged in are destroyed first, while
//  the node still works (their destroy unregisters them)
void
mesh_node_destroy_patterns (mesh_node_t *node)
{
    while (node->pattern_count) {
        mesh_plugin_t *plugin = node->patterns [node->pattern_count - 1];
        if (plugin->ops->destroy)
            plugin->ops->destroy (plugin->self);
        if (node->pattern_count && node->patterns [node->pattern_count - 1] == plugin) {
            mesh_plugin_t *left = plugin;   //  its destroy did not unregister
            mesh_node_unregister (&left);
        }
    }
}
