/*  =========================================================================
    mesh_retain - the publisher's retained log (replay window)

    Every publish gets the next id, so the ids kept are contiguous: the log
    is a ring of record pointers indexed by id, trimmed from the old end by
    count, bytes and age. A record is one allocation holding the strings
    and the body, laid out so it can also be written to the store as is:

        u64 id | u64 time_ms | u32 subject_len | u32 ctype_len | u32 header_count
        | u32 body_len | per header: u32 key_len, u32 value_len | bytes...
        (each string followed by a NUL)

    With a store (a data dir), each record goes to LMDB in group-commit mode
    and is trimmed there with the ring; at start the newest records within
    the bounds are loaded back, so replays and durable subscribers survive
    a publisher restart.
    ========================================================================= */

#include "mesh_retain.h"
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <assert.h>

#define HEAD_SIZE 32
#define BLOCK_SIZE      (1024 * 1024)       //  small records are carved from blocks...
#define BLOCK_RECORD    (BLOCK_SIZE / 4)    //  ...up to this size; bigger ones are malloc'd

//  Records are added and trimmed in id order, so they are carved one after
//  the other from a FIFO of blocks, and a block goes when its last record
//  is trimmed. Consecutive records share pages: with one allocation per
//  record, 100000 records of 100 B spread over ~4000 pages and every
//  publish missed the TLB (costly in a VM) and allocated and freed across
//  threads; measured at 100 B, pub-sub ran ~50% faster with the blocks.
typedef struct _block_t {
    struct _block_t *next;      //  the next newer block
    size_t used;                //  bytes handed out
    size_t live;                //  records in it still kept
    _Alignas (16) uint8_t data [];
} block_t;

struct _mesh_retain_t {
    size_t cap;                 //  ring slots (count bound)
    size_t max_bytes;
    int max_age;
    uint8_t **ring;
    size_t *sizes;
    bool *malloced;             //  record is its own allocation, not in a block
    uint64_t first, last;       //  ids kept: first..last, none when last < first
    size_t bytes;
    mesh_store_t *store;
    block_t *oldest, *newest;   //  the FIFO of blocks
    block_t *spare;             //  an empty block kept for the next one
};

//  Room for a new record (it becomes the newest)
static uint8_t *
s_alloc (mesh_retain_t *self, size_t size, bool *malloced)
{
    size = (size + 15) & ~(size_t) 15;
    *malloced = size > BLOCK_RECORD;
    if (*malloced)
        return (uint8_t *) malloc (size);
    block_t *block = self->newest;
    if (!block || block->used + size > BLOCK_SIZE) {
        block = self->spare? self->spare: (block_t *) malloc (sizeof (block_t) + BLOCK_SIZE);
        if (!block)
            return NULL;
        self->spare = NULL;
        block->next = NULL;
        block->used = 0;
        block->live = 0;
        if (self->newest)
            self->newest->next = block;
        else
            self->oldest = block;
        self->newest = block;
    }
    uint8_t *rec = block->data + block->used;
    block->used += size;
    block->live++;
    return rec;
}

//  The oldest record goes (so it is in the oldest block)
static void
s_release (mesh_retain_t *self, uint8_t *rec, bool malloced)
{
    if (!rec || malloced) {
        free (rec);
        return;
    }
    block_t *block = self->oldest;
    assert (block && block->live && rec >= block->data && rec < block->data + block->used);
    if (--block->live)
        return;
    if (block == self->newest)
        block->used = 0;        //  the only block: start it over
    else {
        self->oldest = block->next;
        if (self->spare)
            free (block);
        else
            self->spare = block;
    }
}

static uint32_t
s_get32 (const uint8_t *p)
{
    uint32_t v;
    memcpy (&v, p, 4);
    return v;
}

static uint64_t
s_get64 (const uint8_t *p)
{
    uint64_t v;
    memcpy (&v, p, 8);
    return v;
}

//  Parse a record we wrote (or read back from our own store). Bounds are
//  checked anyway: a store file can be damaged.
static bool
s_parse (const uint8_t *rec, size_t size, mesh_retained_t *out)
{
    if (size < HEAD_SIZE)
        return false;
    out->id = s_get64 (rec);
    out->time_ms = s_get64 (rec + 8);
    uint32_t slen = s_get32 (rec + 16), clen = s_get32 (rec + 20);
    uint32_t hcount = s_get32 (rec + 24), blen = s_get32 (rec + 28);
    if (hcount > 32)
        return false;
    size_t at = HEAD_SIZE + (size_t) hcount * 8;
    if (at > size)
        return false;
    const uint8_t *lens = rec + HEAD_SIZE;
    size_t need = at + slen + 1 + clen + 1 + (size_t) blen;
    for (uint32_t i = 0; i < hcount; i++)
        need += (size_t) s_get32 (lens + 8 * i) + s_get32 (lens + 8 * i + 4) + 2;
    if (need != size)
        return false;
    out->subject = (const char *) rec + at;
    at += slen + 1;
    out->ctype = (const char *) rec + at;
    at += clen + 1;
    out->header_count = hcount;
    for (uint32_t i = 0; i < hcount; i++) {
        out->headers [2 * i] = (const char *) rec + at;
        at += s_get32 (lens + 8 * i) + 1;
        out->headers [2 * i + 1] = (const char *) rec + at;
        at += s_get32 (lens + 8 * i + 4) + 1;
    }
    out->body = rec + at;
    out->size = blen;
    return true;
}

static void
s_drop_oldest (mesh_retain_t *self)
{
    size_t slot = self->first % self->cap;
    self->bytes -= self->sizes [slot];
    s_release (self, self->ring [slot], self->malloced [slot]);
    self->ring [slot] = NULL;
    self->sizes [slot] = 0;
    self->first++;
}

static void
s_keep (mesh_retain_t *self, uint64_t id, uint8_t *rec, size_t size, bool malloced)
{
    if (self->last < self->first)
        self->first = self->last = id;
    else {
        //  ids are contiguous; a jump (store reloaded) restarts the ring
        while (self->last >= self->first && self->last + 1 != id)
            s_drop_oldest (self);
        if (self->last < self->first)
            self->first = id;
        self->last = id;
    }
    while (self->last - self->first + 1 > self->cap
       || (self->bytes + size > self->max_bytes && self->first < id))
        s_drop_oldest (self);
    size_t slot = id % self->cap;
    self->ring [slot] = rec;
    self->sizes [slot] = size;
    self->malloced [slot] = malloced;
    self->bytes += size;
}

static bool
s_load (uint64_t key, const void *data, size_t size, void *arg)
{
    mesh_retain_t *self = (mesh_retain_t *) arg;
    mesh_retained_t parsed;
    if (!s_parse ((const uint8_t *) data, size, &parsed) || parsed.id != key)
        return true;            //  damaged record: skip it
    bool malloced;
    uint8_t *rec = s_alloc (self, size, &malloced);
    if (!rec)
        return false;
    memcpy (rec, data, size);
    s_keep (self, key, rec, size, malloced);
    return true;
}

mesh_retain_t *
mesh_retain_new (size_t count, size_t bytes, int age_ms, mesh_store_t *store)
{
    mesh_retain_t *self = (mesh_retain_t *) calloc (1, sizeof (mesh_retain_t));
    if (!self)
        return NULL;
    self->cap = count? count: 1;
    self->max_bytes = bytes;
    self->max_age = age_ms;
    self->ring = (uint8_t **) calloc (self->cap, sizeof (uint8_t *));
    self->sizes = (size_t *) calloc (self->cap, sizeof (size_t));
    self->malloced = (bool *) calloc (self->cap, sizeof (bool));
    self->first = 1;
    self->last = 0;
    self->store = store;
    if (store) {
        uint64_t last = mesh_store_last (store);
        uint64_t from = last > self->cap? last - self->cap + 1: 0;
        mesh_store_scan (store, from, s_load, self);
    }
    return self;
}

void
mesh_retain_destroy (mesh_retain_t **self_p)
{
    if (self_p && *self_p) {
        mesh_retain_t *self = *self_p;
        while (self->last >= self->first && self->last)
            s_drop_oldest (self);
        if (self->store)
            mesh_store_flush (self->store);
        while (self->oldest) {
            block_t *next = self->oldest->next;
            free (self->oldest);
            self->oldest = next;
        }
        free (self->spare);
        free (self->ring);
        free (self->sizes);
        free (self->malloced);
        free (self);
        *self_p = NULL;
    }
}

int
mesh_retain_add (mesh_retain_t *self, uint64_t id, const mesh_head_t *head,
                 const void *body, size_t size)
{
    size_t slen = strlen (head->subject);
    size_t clen = head->ctype? strlen (head->ctype): 0;
    size_t hcount = head->header_count > 32? 32: head->header_count;
    size_t total = HEAD_SIZE + hcount * 8 + slen + 1 + clen + 1 + size;
    for (size_t i = 0; i < 2 * hcount; i++)
        total += strlen (head->headers [i]) + 1;
    if (size > UINT32_MAX || total > self->max_bytes)
        return -1;              //  bigger than the whole window: not kept
    bool malloced;
    uint8_t *rec = s_alloc (self, total, &malloced);
    if (!rec)
        return -1;
    //  The coarse clock (a few ms of resolution) is plenty for an age
    //  bound and costs a fraction of a precise read, once per publish.
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME_COARSE, &ts);
    uint64_t now = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
    uint32_t v [4] = { (uint32_t) slen, (uint32_t) clen, (uint32_t) hcount, (uint32_t) size };
    memcpy (rec, &id, 8);
    memcpy (rec + 8, &now, 8);
    memcpy (rec + 16, v, 16);
    uint8_t *p = rec + HEAD_SIZE;
    for (size_t i = 0; i < hcount; i++) {
        uint32_t kv [2] = { (uint32_t) strlen (head->headers [2 * i]),
                            (uint32_t) strlen (head->headers [2 * i + 1]) };
        memcpy (p, kv, 8);
        p += 8;
    }
    memcpy (p, head->subject, slen + 1);
    p += slen + 1;
    if (clen)
        memcpy (p, head->ctype, clen);
    p [clen] = 0;
    p += clen + 1;
    for (size_t i = 0; i < 2 * hcount; i++) {
        size_t n = strlen (head->headers [i]) + 1;
        memcpy (p, head->headers [i], n);
        p += n;
    }
    if (size)
        memcpy (p, body, size);
    s_keep (self, id, rec, total, malloced);
    if (self->store)
        mesh_store_put (self->store, id, rec, total);
    return 0;
}

bool
mesh_retain_get (mesh_retain_t *self, uint64_t id, mesh_retained_t *out)
{
    if (self->last < self->first || id < self->first || id > self->last)
        return false;
    size_t slot = id % self->cap;
    return self->ring [slot] && s_parse (self->ring [slot], self->sizes [slot], out);
}

uint64_t
mesh_retain_first (mesh_retain_t *self)
{
    return self->last < self->first? 0: self->first;
}

uint64_t
mesh_retain_last (mesh_retain_t *self)
{
    return self->last < self->first? 0: self->last;
}

void
mesh_retain_tick (mesh_retain_t *self)
{
    uint64_t oldest = mesh_clock_ms () - (uint64_t) self->max_age;
    while (self->last >= self->first && self->last) {
        mesh_retained_t rec;
        if (mesh_retain_get (self, self->first, &rec) && rec.time_ms >= oldest)
            break;
        s_drop_oldest (self);
    }
    if (self->store) {
        mesh_store_trim (self->store, self->last >= self->first? self->first: self->last + 1);
        mesh_store_flush (self->store);
    }
}
