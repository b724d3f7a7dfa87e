/*  mesh_retain - the publisher's retained log (replay window), private to pub-sub  */
#ifndef MESH_RETAIN_H_INCLUDED
#define MESH_RETAIN_H_INCLUDED

#include "meshbus/pattern.h"

typedef struct _mesh_retain_t mesh_retain_t;

//  One retained message. Strings are NUL-terminated inside the record.
typedef struct {
    uint64_t id;
    uint64_t time_ms;           //  wall clock at publish
    const char *subject;
    const char *ctype;          //  "" if none
    size_t header_count;
    const char *headers [64];   //  key, value pairs (<= 32 pairs)
    const void *body;
    size_t size;
} mesh_retained_t;

//  count, bytes, age_ms bound what is kept. store may be NULL (memory only);
//  with a store every record is also written to it, and the records it
//  holds are loaded back (within the bounds).
mesh_retain_t *
    mesh_retain_new (size_t count, size_t bytes, int age_ms, mesh_store_t *store);
void
    mesh_retain_destroy (mesh_retain_t **self_p);
//  Keep a message with the next id (last + 1). 0 or -1.
int
    mesh_retain_add (mesh_retain_t *self, uint64_t id, const mesh_head_t *head,
                     const void *body, size_t size);
//  Look one up; false if it is not (or no longer) kept.
bool
    mesh_retain_get (mesh_retain_t *self, uint64_t id, mesh_retained_t *out);
//  Oldest and newest id kept (0, 0 when empty).
uint64_t
    mesh_retain_first (mesh_retain_t *self);
uint64_t
    mesh_retain_last (mesh_retain_t *self);
//  Drop what breaks the age bound; flush the store. Call now and then.
void
    mesh_retain_tick (mesh_retain_t *self);

#endif
