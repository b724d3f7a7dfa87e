/*  =========================================================================
    mesh_sublist - a trie of pattern tokens: which patterns match a subject

    mesh_subject_match tests one pattern; asking it of every subscription
    costs O(subscriptions) per message (10 000 patterns: 172 msg/s). This
    is the structure of NATS's sublist and RabbitMQ's topic exchange: the
    patterns share a trie of their tokens, with a "*" child and a "#"
    child beside the literal children of each node, so a subject walks
    only the branches that can match it, whatever the number of patterns.

    Matching is an automaton run over the subject's tokens, not a
    recursion: the set of trie nodes alive after each token is kept (each
    node at most once, by a stamp), so "#" costs nothing extra: a "#" node
    stays alive while tokens pass (it absorbs them) and reaching one also
    makes its children alive (it absorbed none). The work is bounded by
    subject tokens x live nodes, and "#.#.#.#.x" cannot blow up. Each
    entry is reported once per match, in insertion order of nothing in
    particular: callers that need an order sort what they get.

    The semantics are exactly mesh_subject_match's (test_subject.c checks
    the two against each other on random patterns and subjects). Literal
    children sit in an open-addressed table with linear probing and
    backward-shift deletion, so removing keeps no tombstones; an emptied
    node is freed on the way back up.

    Not thread-safe, even for matching (stamps are written): the caller
    holds its lock.
    ========================================================================= */

#include "meshbus/pattern.h"
#include "mesh_limits.h"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct _snode_t snode_t;
struct _snode_t {
    snode_t *parent;
    char *token;                //  literal token (NULL for root, "*" and "#")
    uint32_t hash;              //  of token
    uint32_t kid_count, kid_cap;    //  kid_cap: 0 or a power of two
    snode_t **kids;             //  literal children, open addressing
    snode_t *star, *hash_kid;   //  the "*" and "#" children
    void **values;              //  entries whose pattern ends here
    uint32_t value_count, value_cap;
    uint64_t stamp;             //  last step this node was made alive
    bool is_hash;               //  a "#" node: absorbs any run of tokens
};

struct _mesh_sublist_t {
    snode_t root;
    size_t count;               //  entries
    size_t nodes;
    uint64_t stamp;             //  steps and matches so far
    snode_t **live, **next;     //  the automaton's state sets
    size_t live_cap;
};

static uint32_t
s_hash (const char *token, size_t len)
{
    uint32_t h = 2166136261u;   //  FNV-1a: tokens are short
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t) token [i]) * 16777619u;
    return h;
}

static size_t
s_token_len (const char *t)
{
    size_t len = 0;
    while (t [len] && t [len] != '.')
        len++;
    return len;
}

mesh_sublist_t *
mesh_sublist_new (void)
{
    mesh_sublist_t *self = (mesh_sublist_t *) calloc (1, sizeof *self);
    return self;
}

static void
s_node_free (snode_t *node, bool self_too)
{
    for (uint32_t i = 0; i < node->kid_cap; i++)
        if (node->kids [i])
            s_node_free (node->kids [i], true);
    if (node->star)
        s_node_free (node->star, true);
    if (node->hash_kid)
        s_node_free (node->hash_kid, true);
    free (node->kids);
    free (node->values);
    free (node->token);
    if (self_too)
        free (node);
}

void
mesh_sublist_destroy (mesh_sublist_t **self_p)
{
    assert (self_p);
    mesh_sublist_t *self = *self_p;
    if (!self)
        return;
    s_node_free (&self->root, false);
    free (self->live);
    free (self->next);
    free (self);
    *self_p = NULL;
}

static snode_t *
s_kid_find (const snode_t *node, const char *token, size_t len, uint32_t hash)
{
    if (!node->kid_cap)
        return NULL;
    uint32_t mask = node->kid_cap - 1;
    for (uint32_t i = hash & mask; node->kids [i]; i = (i + 1) & mask) {
        snode_t *kid = node->kids [i];
        if (kid->hash == hash && strncmp (kid->token, token, len) == 0 && !kid->token [len])
            return kid;
    }
    return NULL;
}

static void
s_kid_place (snode_t **kids, uint32_t cap, snode_t *kid)
{
    uint32_t i = kid->hash & (cap - 1);
    while (kids [i])
        i = (i + 1) & (cap - 1);
    kids [i] = kid;
}

static bool
s_kid_add (snode_t *node, snode_t *kid)
{
    if ((node->kid_count + 1) * 4 > node->kid_cap * 3) {   //  load <= 3/4
        uint32_t cap = node->kid_cap? node->kid_cap * 2: 4;
        snode_t **kids = (snode_t **) calloc (cap, sizeof *kids);
        if (!kids)
            return false;
        for (uint32_t i = 0; i < node->kid_cap; i++)
            if (node->kids [i])
                s_kid_place (kids, cap, node->kids [i]);
        free (node->kids);
        node->kids = kids;
        node->kid_cap = cap;
    }
    s_kid_place (node->kids, node->kid_cap, kid);
    node->kid_count++;
    return true;
}

//  Backward-shift deletion: the cluster after the hole moves up so that
//  every probe sequence stays unbroken, without tombstones
static void
s_kid_remove (snode_t *node, snode_t *kid)
{
    uint32_t mask = node->kid_cap - 1;
    uint32_t i = kid->hash & mask;
    while (node->kids [i] != kid)
        i = (i + 1) & mask;
    node->kids [i] = NULL;
    for (uint32_t j = (i + 1) & mask; node->kids [j]; j = (j + 1) & mask) {
        uint32_t home = node->kids [j]->hash & mask;
        //  move it into the hole unless its home lies in (i, j]
        bool stays = i <= j? (home > i && home <= j): (home > i || home <= j);
        if (!stays) {
            node->kids [i] = node->kids [j];
            node->kids [j] = NULL;
            i = j;
        }
    }
    node->kid_count--;
}

int
mesh_sublist_insert (mesh_sublist_t *self, const char *pattern, void *value)
{
    assert (self);
    assert (value);
    if (!mesh_pattern_valid (pattern))
        return mesh_set_error (MESH_EINVAL, "bad pattern");
    snode_t *node = &self->root;
    for (const char *t = pattern; ; ) {
        size_t len = s_token_len (t);
        snode_t **wild = len == 1 && *t == '*'? &node->star:
                         len == 1 && *t == '#'? &node->hash_kid: NULL;
        uint32_t hash = wild? 0: s_hash (t, len);
        snode_t *kid = wild? *wild: s_kid_find (node, t, len, hash);
        if (!kid) {
            kid = (snode_t *) calloc (1, sizeof *kid);
            if (kid && !wild) {
                kid->token = strndup (t, len);
                kid->hash = hash;
            }
            if (!kid || (!wild && (!kid->token || !s_kid_add (node, kid)))) {
                if (kid)
                    free (kid->token);
                free (kid);
                return mesh_set_error (MESH_ESYS, "no memory for a subscription");
            }
            if (wild)
                *wild = kid;
            kid->is_hash = wild == &node->hash_kid;
            kid->parent = node;
            self->nodes++;
        }
        node = kid;
        if (!t [len])
            break;
        t += len + 1;
    }
    if (node->value_count == node->value_cap) {
        uint32_t cap = node->value_cap? node->value_cap * 2: 1;
        void **values = (void **) realloc (node->values, cap * sizeof *values);
        if (!values)
            return mesh_set_error (MESH_ESYS, "no memory for a subscription");
        node->values = values;
        node->value_cap = cap;
    }
    node->values [node->value_count++] = value;
    self->count++;
    return 0;
}

int
mesh_sublist_remove (mesh_sublist_t *self, const char *pattern, void *value)
{
    assert (self);
    if (!mesh_pattern_valid (pattern))
        return mesh_set_error (MESH_EINVAL, "bad pattern");
    snode_t *node = &self->root;
    for (const char *t = pattern; node; ) {
        size_t len = s_token_len (t);
        node = len == 1 && *t == '*'? node->star:
               len == 1 && *t == '#'? node->hash_kid: s_kid_find (node, t, len, s_hash (t, len));
        if (!t [len])
            break;
        t += len + 1;
    }
    uint32_t at = 0;
    while (node && at < node->value_count && node->values [at] != value)
        at++;
    if (!node || at == node->value_count)
        return mesh_set_error (MESH_EINVAL, "no such entry");
    node->values [at] = node->values [--node->value_count];
    self->count--;
    //  free the nodes that now lead nowhere
    while (node != &self->root && !node->value_count && !node->kid_count
    &&     !node->star && !node->hash_kid) {
        snode_t *parent = node->parent;
        if (parent->star == node)
            parent->star = NULL;
        else
        if (parent->hash_kid == node)
            parent->hash_kid = NULL;
        else
            s_kid_remove (parent, node);
        free (node->kids);
        free (node->values);
        free (node->token);
        free (node);
        self->nodes--;
        node = parent;
    }
    if (!node->value_count && node->values) {
        free (node->values);
        node->values = NULL;
        node->value_cap = 0;
    }
    return 0;
}

size_t
mesh_sublist_size (const mesh_sublist_t *self)
{
    assert (self);
    return self->count;
}

//  Make node alive in set (once per step), with its "#" chain: a "#"
//  may absorb no token at all
static bool
s_alive (mesh_sublist_t *self, snode_t *node, snode_t **set, size_t *count)
{
    for (; node && node->stamp != self->stamp; node = node->hash_kid) {
        if (*count == self->live_cap)
            return false;
        node->stamp = self->stamp;
        set [(*count)++] = node;
    }
    return true;
}

size_t
mesh_sublist_match (mesh_sublist_t *self, const char *subject, mesh_sublist_fn *fn, void *arg)
{
    assert (self);
    assert (subject);
    //  at most every node is alive at once: the sets never overflow
    if (self->live_cap < self->nodes + 1) {
        size_t cap = self->nodes + 1 + 64;
        snode_t **live = (snode_t **) realloc (self->live, cap * sizeof *live);
        snode_t **next = live? (snode_t **) realloc (self->next, cap * sizeof *next): NULL;
        if (live)
            self->live = live;
        if (!next)
            return 0;
        self->next = next;
        self->live_cap = cap;
    }
    size_t live_count = 0;
    self->stamp++;
    s_alive (self, &self->root, self->live, &live_count);
    for (const char *t = subject; live_count; ) {
        size_t len = s_token_len (t);
        uint32_t hash = s_hash (t, len);
        size_t next_count = 0;
        self->stamp++;
        for (size_t i = 0; i < live_count; i++) {
            snode_t *node = self->live [i];
            //  a "#" node absorbs this token and stays
            if (node->is_hash)
                s_alive (self, node, self->next, &next_count);
            s_alive (self, node->star, self->next, &next_count);
            s_alive (self, s_kid_find (node, t, len, hash), self->next, &next_count);
        }
        snode_t **swap = self->live;
        self->live = self->next;
        self->next = swap;
        live_count = next_count;
        if (!t [len])
            break;
        t += len + 1;
    }
    //  each node is alive once per step: each entry is reported once
    size_t matched = 0;
    for (size_t i = 0; i < live_count; i++) {
        snode_t *node = self->live [i];
        for (uint32_t v = 0; v < node->value_count; v++) {
            if (fn)
                fn (node->values [v], arg);
            matched++;
        }
    }
    return matched;
}
