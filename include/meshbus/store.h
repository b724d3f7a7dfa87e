/*  =========================================================================
    meshbus/store.h - a crash-safe log of records in LMDB

    For durable pub-sub logs, outboxes and dead letters. Records have 64-bit
    keys in order; a small string-keyed table holds metadata (positions,
    acks).
    ========================================================================= */

#ifndef MESHBUS_STORE_H_INCLUDED
#define MESHBUS_STORE_H_INCLUDED

#include "meshbus/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _mesh_store_t mesh_store_t;

#define MESH_STORE_SYNC     0   //  every write is on disk before it returns
#define MESH_STORE_GROUP    1   //  writes are flushed together every few ms (mesh_store_flush)

//  Open (creating) the store named name in directory dir (created too).
//  NULL on failure with the reason in mesh_last_error().
mesh_store_t *
    mesh_store_new (const char *dir, const char *name, int sync_mode);
void
    mesh_store_destroy (mesh_store_t **self_p);
//  Append or replace the record at key. 0 or -1 (MESH_EFULL when the map
//  is full, MESH_ESYS otherwise).
int
    mesh_store_put (mesh_store_t *self, uint64_t key, const void *data, size_t size);
//  A copy of the record at key (free() it), NULL if none; size in *size.
void *
    mesh_store_get (mesh_store_t *self, uint64_t key, size_t *size);
int
    mesh_store_delete (mesh_store_t *self, uint64_t key);
//  Call fn for each record with key >= from, in key order, until fn
//  returns false. Returns the number of records visited.
typedef bool (mesh_store_fn) (uint64_t key, const void *data, size_t size, void *arg);
size_t
    mesh_store_scan (mesh_store_t *self, uint64_t from, mesh_store_fn *fn, void *arg);
//  Smallest and largest key (0 when empty), number of records.
uint64_t
    mesh_store_first (mesh_store_t *self);
uint64_t
    mesh_store_last (mesh_store_t *self);
size_t
    mesh_store_count (mesh_store_t *self);
//  Delete every record with key < below. Returns how many went.
size_t
    mesh_store_trim (mesh_store_t *self, uint64_t below);
//  Metadata: a string value per string key.
int
    mesh_store_meta_set (mesh_store_t *self, const char *key, const char *value);
//  A copy (free() it), or NULL.
char *
    mesh_store_meta_get (mesh_store_t *self, const char *key);
//  In group mode, commit what is pending now. 0 or -1.
int
    mesh_store_flush (mesh_store_t *self);

#ifdef __cplusplus
}
#endif

#endif
