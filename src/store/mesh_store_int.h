/*  =========================================================================
    mesh_store_int.h - what the two files of the store share

    mesh_store.c: open and close, records, metadata, flush (the API);
    mesh_store_txn.c: transactions, the group of pending writes, growing
    and shrinking the map. Calls run one way: mesh_store.c calls into
    mesh_store_txn.c, which uses only the small helpers below. The design
    is at the top of mesh_store.c.
    ========================================================================= */

#ifndef MESH_STORE_INT_H_INCLUDED
#define MESH_STORE_INT_H_INCLUDED

#include "meshbus.h"
#include "mesh_util.h"
#include <lmdb.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>


#define STORE_SUFFIX        ".lmdb"
#define STORE_NAME_MAX      128         //  bytes in a store name
#define STORE_FORMAT_KEY    "meshbus.store"
#define STORE_FORMAT        "1"
#define STORE_MAX_DBS       4           //  records, meta (+ room to grow)
#define STORE_MAP_INITIAL   ((uint64_t) 1 << 30)    //  1 GiB
#define STORE_MAP_CAP       ((uint64_t) 64 << 30)   //  64 GiB
#define STORE_MAP_MIN       ((uint64_t) 64 << 10)   //  smallest map the knobs accept
#define STORE_MAP_STEP      ((uint64_t) 1 << 20)    //  least growth past the cap, for deletes
#define STORE_GROUP_RECORDS 64          //  group mode: commit after this many writes
#define STORE_GROUP_BYTES   (1 << 20)   //  ... or this many bytes written
#define STORE_GROUP_MS      10          //  ... or when the group is this old
#define STORE_DISK_LOW      (4u << 20)  //  bytes free below which EIO from a write is a full disk

typedef enum { OP_PUT, OP_DEL, OP_TRIM, OP_META } s_op_type_t;

//  One write. Borrowed pointers when passed in; owned copies in the log.
typedef struct {
    s_op_type_t type;
    uint64_t key;               //  PUT, DEL; TRIM: delete keys below this
    void *data;                 //  PUT: record; META: value (NULL = delete)
    size_t size;
    char *mkey;                 //  META: key
} s_op_t;

struct _mesh_store_t {
    MDB_env *env;
    MDB_dbi records;
    MDB_dbi meta;
    int mode;
    char *path;                 //  dir/name.lmdb, dir resolved by realpath
    uint64_t map_cap;
    MDB_txn *rtxn;              //  read txn, reset between reads, renewed
    s_op_t *log;                //  group mode: the pending writes
    int64_t log_since;          //  when the first pending write came
    size_t dropped;             //  pending writes dropped (store full) since the last flush
    size_t log_count;
    size_t log_cap;
    size_t log_bytes;
    bool over_cap;              //  the map grew past the cap for a delete
    bool in_scan;
    mesh_store_t *next;         //  in the process's list of open stores
};


//  Private to the store (prefix store_; the API is mesh_store_*)

//  mesh_store.c: small helpers
void store_key_encode (uint64_t key, uint8_t *buf);
uint64_t store_key_decode (const uint8_t *buf);
int store_fail_mdb (mesh_store_t *self, int rc, const char *what);
uint64_t store_round_page (uint64_t size);

//  mesh_store_txn.c
int store_apply_all (mesh_store_t *self, const s_op_t *op, size_t *count, bool commit, MDB_txn **txn_p);
void store_log_clear (mesh_store_t *self);
int store_read_begin (mesh_store_t *self, MDB_txn **txn);
void store_read_end (mesh_store_t *self, MDB_txn *txn);
int store_txn_begin (mesh_store_t *self, unsigned flags, MDB_txn **txn);
int store_write (mesh_store_t *self, const s_op_t *op, size_t *count);

#endif
