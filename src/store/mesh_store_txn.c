/*  =========================================================================
    mesh_store_txn - the store's transactions: the group of pending
    writes, applying it, growing and shrinking the map, read txns

    Called by mesh_store.c only (the design is at its top).
    ========================================================================= */

#include "mesh_store_int.h"


//  Begin a txn, coping with a map grown by another process and with reader
//  slots left by dead processes.
int
store_txn_begin (mesh_store_t *self, unsigned flags, MDB_txn **txn)
{
    int rc = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = mdb_txn_begin (self->env, NULL, flags, txn);
        if (rc == MDB_MAP_RESIZED)
            mdb_env_set_mapsize (self->env, 0);     //  adopt the new size
        else
        if (rc == MDB_READERS_FULL)
            mdb_reader_check (self->env, NULL);
        else
            break;
    }
    if (rc)
        *txn = NULL;
    return rc;
}

static void
s_op_free (s_op_t *op)
{
    free (op->data);
    free (op->mkey);
}

void
store_log_clear (mesh_store_t *self)
{
    for (size_t i = 0; i < self->log_count; i++)
        s_op_free (&self->log [i]);
    self->log_count = 0;
    self->log_bytes = 0;
}

//  Keep a copy of op in the pending group. 0 or -1 (out of memory).
static int
s_log_push (mesh_store_t *self, const s_op_t *op)
{
    if (self->log_count == self->log_cap) {
        size_t cap = self->log_cap? self->log_cap * 2: STORE_GROUP_RECORDS;
        s_op_t *log = (s_op_t *) realloc (self->log, cap * sizeof (s_op_t));
        if (!log)
            return mesh_fail (MESH_ESYS, "store %s: out of memory", self->path);
        self->log = log;
        self->log_cap = cap;
    }
    s_op_t copy = *op;
    copy.data = NULL;
    copy.mkey = NULL;
    if (op->data) {
        copy.data = malloc (op->size? op->size: 1);
        if (!copy.data)
            return mesh_fail (MESH_ESYS, "store %s: out of memory", self->path);
        memcpy (copy.data, op->data, op->size);
    }
    if (op->mkey && !(copy.mkey = strdup (op->mkey))) {
        free (copy.data);
        return mesh_fail (MESH_ESYS, "store %s: out of memory", self->path);
    }
    if (self->log_count == 0)
        self->log_since = mesh_mono_ms ();
    self->log [self->log_count++] = copy;
    self->log_bytes += op->size + 8;
    return 0;
}

//  Do one write in txn. Returns 0 or an mdb error; *count gets the number
//  of records a trim deleted.
static int
s_op_apply (mesh_store_t *self, MDB_txn *txn, const s_op_t *op, size_t *count)
{
    uint8_t kbuf [8];
    MDB_val key = { 8, kbuf };
    MDB_val data = { op->size, op->data? op->data: (void *) "" };
    int rc = 0;
    switch (op->type) {
        case OP_PUT:
            store_key_encode (op->key, kbuf);
            return mdb_put (txn, self->records, &key, &data, 0);
        case OP_DEL:
            store_key_encode (op->key, kbuf);
            rc = mdb_del (txn, self->records, &key, NULL);
            return rc == MDB_NOTFOUND? 0: rc;
        case OP_META:
            key.mv_size = strlen (op->mkey);
            key.mv_data = op->mkey;
            if (op->data)
                return mdb_put (txn, self->meta, &key, &data, 0);
            rc = mdb_del (txn, self->meta, &key, NULL);
            return rc == MDB_NOTFOUND? 0: rc;
        case OP_TRIM: {
            MDB_cursor *cursor;
            if ((rc = mdb_cursor_open (txn, self->records, &cursor)))
                return rc;
            //  After mdb_cursor_del the cursor rests on the next record and
            //  MDB_NEXT returns that one (LMDB's C_DEL flag).
            size_t deleted = 0;
            rc = mdb_cursor_get (cursor, &key, &data, MDB_FIRST);
            while (rc == 0) {
                if (key.mv_size != 8 || store_key_decode (key.mv_data) >= op->key)
                    break;
                if ((rc = mdb_cursor_del (cursor, 0)))
                    break;
                deleted++;
                rc = mdb_cursor_get (cursor, &key, &data, MDB_NEXT);
            }
            mdb_cursor_close (cursor);
            if (count)
                *count = deleted;
            return rc == MDB_NOTFOUND? 0: rc;
        }
    }
    return EINVAL;
}

//  Writes that free space. When the map is full even they need a few new
//  pages (copy on write), so they may grow the map past the cap: a full
//  store can always be emptied.
static bool
s_op_frees (const s_op_t *op)
{
    return op->type == OP_DEL || op->type == OP_TRIM || (op->type == OP_META && !op->data);
}

//  Grow the map: double it up to the cap, or, for a write that frees
//  space, by a small step past the cap. Only with no txn open in this
//  process. 0 or -1.
static int
s_grow (mesh_store_t *self, bool frees)
{
    if (self->rtxn) {
        mdb_txn_abort (self->rtxn);
        self->rtxn = NULL;
    }
    MDB_envinfo info;
    mdb_env_info (self->env, &info);
    uint64_t size = info.me_mapsize;
    if (size < self->map_cap)
        size = size * 2 > self->map_cap? self->map_cap: size * 2;
    else
    if (frees) {
        size += size / 64 > STORE_MAP_STEP? size / 64: STORE_MAP_STEP;
        self->over_cap = true;
    }
    else
        return -1;
    return mdb_env_set_mapsize (self->env, (size_t) store_round_page (size))? -1: 0;
}

//  After a write that grew the map past the cap: back to the cap (LMDB
//  keeps at least the pages in use), so that later puts cannot use the
//  room given to deletes.
static void
s_shrink (mesh_store_t *self)
{
    if (self->over_cap) {
        if (self->rtxn) {
            mdb_txn_abort (self->rtxn);
            self->rtxn = NULL;
        }
        mdb_env_set_mapsize (self->env, (size_t) store_round_page (self->map_cap));
        self->over_cap = false;
    }
}

//  Pages freed by a commit are reused only after one more commit (LMDB
//  keeps the previous snapshot whole, for crash safety). So when the map
//  is full at the cap right after deletes, a tiny commit (rewriting the
//  format key) makes their room usable. 0 or an mdb error.
static int
s_touch (mesh_store_t *self)
{
    int rc;
    while (true) {
        MDB_txn *txn;
        MDB_dbi main_db;
        MDB_val key = { strlen (STORE_FORMAT_KEY), STORE_FORMAT_KEY };
        MDB_val value = { strlen (STORE_FORMAT), STORE_FORMAT };
        rc = store_txn_begin (self, 0, &txn);
        if (rc == 0 && (rc = mdb_dbi_open (txn, NULL, 0, &main_db)) == 0)
            rc = mdb_put (txn, main_db, &key, &value, 0);
        if (rc == 0)
            rc = mdb_txn_commit (txn);
        else
        if (txn)
            mdb_txn_abort (txn);
        if (rc != MDB_MAP_FULL || s_grow (self, true))
            break;
    }
    s_shrink (self);
    return rc;
}

static void
s_log_drop_front (mesh_store_t *self, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        self->log_bytes -= self->log [i].size + 8;
        s_op_free (&self->log [i]);
    }
    memmove (self->log, self->log + count, (self->log_count - count) * sizeof (s_op_t));
    self->log_count -= count;
}

//  The map is at its cap and the group does not fit: commit the pending
//  writes and then op (may be NULL) one per txn, in order, dropping those
//  that do not fit, so that deletes and trims in the group still make room.
//  Drops of pending writes are reported by the next flush; returns -1
//  (MESH_EFULL) if op itself was dropped, or on another error (the writes
//  not yet done stay pending).
static int
s_apply_each (mesh_store_t *self, const s_op_t *op, size_t *count)
{
    size_t total = self->log_count + (op? 1: 0);
    size_t dropped = 0;
    for (size_t i = 0; i < total; i++) {
        const s_op_t *one = i < self->log_count? &self->log [i]: op;
        bool touched = false;
        int rc;
        while (true) {
            MDB_txn *txn;
            if ((rc = store_txn_begin (self, 0, &txn)) == 0) {
                rc = s_op_apply (self, txn, one, one == op? count: NULL);
                if (rc)
                    mdb_txn_abort (txn);
                else
                    rc = mdb_txn_commit (txn);
            }
            if (rc != MDB_MAP_FULL)
                break;
            if (s_grow (self, s_op_frees (one)) == 0)
                continue;
            if (touched || s_touch (self))
                break;
            touched = true;
        }
        s_shrink (self);
        if (rc == MDB_MAP_FULL) {
            if (one == op) {
                store_log_clear (self);
                self->dropped += dropped;
                return store_fail_mdb (self, rc, "write");
            }
            dropped++;
        }
        else
        if (rc) {
            s_log_drop_front (self, i < self->log_count? i: self->log_count);
            self->dropped += dropped;
            return store_fail_mdb (self, rc, "write");
        }
    }
    store_log_clear (self);
    self->dropped += dropped;
    return 0;
}

//  A write txn holding the pending group and then op (may be NULL). With
//  commit, commit it (durably) and clear the group; without, leave it open
//  in *txn as a view for reads. Grows the map as needed. 0 or -1; a failed
//  commit keeps the group pending.
int
store_apply_all (mesh_store_t *self, const s_op_t *op, size_t *count, bool commit,
             MDB_txn **txn_p)
{
    bool touched = false;
    while (true) {
        MDB_txn *txn;
        int rc = store_txn_begin (self, 0, &txn);
        for (size_t i = 0; i < self->log_count && rc == 0; i++)
            rc = s_op_apply (self, txn, &self->log [i], NULL);
        if (rc == 0 && op)
            rc = s_op_apply (self, txn, op, count);
        if (rc == 0 && !commit) {
            *txn_p = txn;
            return 0;
        }
        if (rc == 0)
            rc = mdb_txn_commit (txn);      //  frees txn, whatever happens
        else
        if (txn)
            mdb_txn_abort (txn);
        s_shrink (self);
        if (rc == 0) {
            store_log_clear (self);
            return 0;
        }
        if (rc == MDB_MAP_FULL) {
            //  alone, a write that frees space may pass the cap
            bool frees = op && s_op_frees (op) && self->log_count == 0;
            if (s_grow (self, frees) == 0)
                continue;                   //  do it all again in a bigger map
            if (!touched && s_touch (self) == 0) {
                touched = true;
                continue;
            }
            if (commit)
                return s_apply_each (self, op, count);
            if (s_apply_each (self, NULL, NULL) == 0)
                continue;                   //  group committed; now the view
        }
        else
            store_fail_mdb (self, rc, "write");
        if (self->log_count) {
            char reason [200];
            snprintf (reason, sizeof reason, "%s", mesh_last_error ());
            mesh_fail (mesh_errno (), "%s (%zu unflushed writes still pending)",
                       reason, self->log_count);
        }
        return -1;
    }
}

//  Do one write. SYNC: one durable txn now. GROUP: join the pending group,
//  and commit the group when it is due (a trim, whose count is only known
//  once applied, is always due). On failure op is not stored and the
//  pending group is kept.
int
store_write (mesh_store_t *self, const s_op_t *op, size_t *count)
{
    if (self->mode == MESH_STORE_GROUP && op->type != OP_TRIM
    &&  self->log_count + 1 < STORE_GROUP_RECORDS
    &&  self->log_bytes + op->size + 8 < STORE_GROUP_BYTES
    &&  (self->log_count == 0 || mesh_mono_ms () - self->log_since < STORE_GROUP_MS))
        return s_log_push (self, op);
    return store_apply_all (self, op, count, true, NULL);
}

//  The txn reads use: the renewed read txn, or, in GROUP mode with writes
//  pending, a write txn holding them that store_read_end aborts (reads see
//  pending writes without committing them). 0 or -1 with the reason set.
int
store_read_begin (mesh_store_t *self, MDB_txn **txn)
{
    if (self->log_count)
        return store_apply_all (self, NULL, NULL, false, txn);
    int rc = MDB_BAD_TXN;
    if (self->rtxn && (rc = mdb_txn_renew (self->rtxn))) {
        mdb_txn_abort (self->rtxn);     //  begin a new one below
        self->rtxn = NULL;
    }
    if (!self->rtxn)
        rc = store_txn_begin (self, MDB_RDONLY, &self->rtxn);
    if (rc)
        return store_fail_mdb (self, rc, "read");
    *txn = self->rtxn;
    return 0;
}

void
store_read_end (mesh_store_t *self, MDB_txn *txn)
{
    if (txn == self->rtxn)
        mdb_txn_reset (txn);
    else
        mdb_txn_abort (txn);
}

