/*  =========================================================================
    mesh_store - a crash-safe log of records in LMDB

    Used for durable pub-sub logs, the pipeline's outbox and dead letters.

    Files. The store (dir, name) is the single LMDB file `dir/name.lmdb`
    (MDB_NOSUBDIR) plus LMDB's lock file `dir/name.lmdb-lock`, so several
    stores share one directory. dir is created (mkdir -p, mode 0700).

    Layout. Three tables in one environment:
      - main DB: the key "meshbus.store" = format version "1". A file that
        has no such key but other content is some other program's LMDB file
        and is refused rather than written into.
      - "records": 8-byte BIG-ENDIAN keys, without MDB_INTEGERKEY. With
        LMDB's default memcmp ordering, byte order is numeric order, the
        file is the same on every architecture, and there is no alignment
        rule to respect (MDB_INTEGERKEY wants native-size, aligned keys).
      - "meta": string keys, string values (no terminating NUL stored).

    Map size. The map starts at 1 GiB (LMDB does not pre-size the file, so
    it only costs address space) and grows by doubling when a write meets
    MDB_MAP_FULL, up to 64 GiB; past that a write fails with MESH_EFULL and
    the store stays usable (reads, deletes, trims). Growing needs no open
    transaction in this process, so a failed write is aborted, the map
    grown, and the write done again. Two environment variables override the
    sizes, for tests and small devices: MESH_STORE_MAPSIZE (initial) and
    MESH_STORE_MAPMAX (cap), in bytes with an optional K, M or G suffix. A
    store that grew keeps its size when reopened.

    Sync modes.
      MESH_STORE_SYNC: every put/delete/trim/meta_set is its own transaction,
      committed with LMDB's durable commit (data fdatasync, then the meta
      page, then fdatasync) before the call returns.
      MESH_STORE_GROUP: writes join a pending group kept in memory (copies),
      and the group is applied in ONE transaction and committed -- durably,
      like a SYNC commit -- by mesh_store_flush(), by a trim, or by the write
      that makes it STORE_GROUP_RECORDS writes or STORE_GROUP_BYTES bytes, or
      that comes STORE_GROUP_MS after the group's first write. There is no
      background thread: the application flushes on its own timer. Flush is
      the durability point; a crash loses at most the pending group. Reads
      see pending writes: they run in a write txn that holds the group and
      is then aborted (no I/O; the group stays pending). A failed commit
      (MESH_EFULL, disk error) keeps the group pending and does not store
      the write that triggered it; the next flush tries again.
      Why not one write txn left open between calls: LMDB's writer mutex is
      owned by the thread that began the txn, and callers (pub-sub publishes
      from application threads, trims on the dispatch thread) switch
      threads between calls under their own lock; committing from another
      thread fails to unlock and deadlocks the next writer.
      Why not MDB_NOSYNC plus mdb_env_sync() at flush: with NOSYNC the meta
      page may reach the disk before the data pages it points to, and
      unsynced commits recycle the pages of the last synced snapshot, so an
      OS crash or power loss can corrupt the file, flushed data included.
      A synced commit per group costs two fdatasyncs per group and never
      corrupts. A process crash (kill -9) is safe either way.
      The group also makes MDB_MAP_FULL easy: the failed txn is aborted,
      the map grown, and the whole group applied again.

    Threads. A mesh_store_t is used by one thread at a time (the caller's
    lock); any thread may be next, as no LMDB txn outlives a call (read
    txns use MDB_NOTLS). A scan callback must not call the store (asserted).
    A store is opened once per process (LMDB forbids opening one file twice
    in a process: closing either copy would drop the other's locks); a
    second mesh_store_new() of the same file fails with MESH_ESTATE. Several
    processes may open one store (LMDB's lock file); a process must not use
    a store its parent opened before fork().

    Damaged files. mesh_store_new() refuses, with a reason naming the path,
    a file that is not LMDB (bad magic or version), a truncated file
    (shorter than the pages its meta page claims, which would otherwise
    fault on first access, unless every missing page is a free one: a
    commit after a failed one on a full disk leaves that, see s_check_size)
    and other programs' LMDB files. EIO or ENOSPC from a write is reported
    as a full disk, with the bytes free, when the filesystem is (nearly)
    full: LMDB turns a short write into EIO. It clears
    reader slots left by dead processes (mdb_reader_check). An empty file
    is taken as a new store. LMDB trusts the inside of its pages: a file
    damaged there (bad disk, edited by hand) is not detected.
    ========================================================================= */


#include "mesh_store_int.h"

//  Stores open in this process, to refuse opening one file twice
static pthread_mutex_t s_open_lock = PTHREAD_MUTEX_INITIALIZER;
static mesh_store_t *s_open_list;

//  --------------------------------------------------------------------------
//  Small helpers

void
store_key_encode (uint64_t key, uint8_t *buf)
{
    for (int i = 7; i >= 0; i--) {
        buf [i] = (uint8_t) key;
        key >>= 8;
    }
}

uint64_t
store_key_decode (const uint8_t *buf)
{
    uint64_t key = 0;
    for (int i = 0; i < 8; i++)
        key = key << 8 | buf [i];
    return key;
}

int
store_fail_mdb (mesh_store_t *self, int rc, const char *what)
{
    if (rc == MDB_MAP_FULL) {
        MDB_envinfo info;
        mdb_env_info (self->env, &info);
        return mesh_fail (MESH_EFULL, "store %s is full (map %zu MiB, cap %llu MiB)",
                          self->path, info.me_mapsize >> 20,
                          (unsigned long long) (self->map_cap >> 20));
    }
    if (rc == ENOSPC || rc == EIO) {
        //  A disk that fills during a write: LMDB turns the short write
        //  into EIO ("short write, filesystem full?"). Say what it is, so
        //  the failure does not wear a disk error's name.
        char dir [PATH_MAX];
        snprintf (dir, sizeof dir, "%s", self->path);
        char *slash = strrchr (dir, '/');
        if (slash && slash != dir)
            *slash = 0;
        struct statvfs fs;
        if (statvfs (dir, &fs) == 0) {
            unsigned long long free_bytes = (unsigned long long) fs.f_bavail * fs.f_frsize;
            if (rc == ENOSPC || free_bytes < STORE_DISK_LOW)
                return mesh_fail (MESH_ESYS, "store %s: %s: the disk is full: %llu bytes free "
                                  "on the filesystem of %s (%s)", self->path, what, free_bytes,
                                  dir, rc == EIO? "LMDB said Input/output error: a short write"
                                                : mdb_strerror (rc));
            return mesh_fail (MESH_ESYS, "store %s: %s: %s (%llu bytes free on the filesystem "
                              "of %s)", self->path, what, mdb_strerror (rc), free_bytes, dir);
        }
    }
    return mesh_fail (MESH_ESYS, "store %s: %s: %s", self->path, what, mdb_strerror (rc));
}

//  A size from the environment ("4M"), or dflt when unset or invalid.
static uint64_t
s_env_size (const char *var, uint64_t dflt)
{
    const char *text = getenv (var);
    if (!text || !*text)
        return dflt;
    char *end;
    unsigned long long value = strtoull (text, &end, 10);
    if (*end == 'K' || *end == 'k') { value <<= 10; end++; }
    else
    if (*end == 'M' || *end == 'm') { value <<= 20; end++; }
    else
    if (*end == 'G' || *end == 'g') { value <<= 30; end++; }
    if (*end || value < STORE_MAP_MIN)
        return dflt;
    return value;
}

uint64_t
store_round_page (uint64_t size)
{
    uint64_t page = (uint64_t) sysconf (_SC_PAGESIZE);
    return (size + page - 1) / page * page;
}

static int
s_mkdir_p (const char *dir)
{
    char path [PATH_MAX];
    if (mesh_strlcpy (path, dir, sizeof path))
        return mesh_fail (MESH_EINVAL, "store directory name too long: %s", dir);
    for (char *slash = strchr (path + 1, '/'); slash; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        if (mkdir (path, 0700) && errno != EEXIST)
            return mesh_fail (MESH_ESYS, "cannot create %s: %s", path, strerror (errno));
        *slash = '/';
    }
    if (mkdir (path, 0700) && errno != EEXIST)
        return mesh_fail (MESH_ESYS, "cannot create %s: %s", path, strerror (errno));
    struct stat st;
    if (stat (path, &st) || !S_ISDIR (st.st_mode))
        return mesh_fail (MESH_ESYS, "store directory %s is not a directory", path);
    return 0;
}

//  A name becomes a file name: no slashes, no control characters, and no
//  leading dot (".", ".." and hidden files).
static bool
s_name_valid (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > STORE_NAME_MAX || name [0] == '.')
        return false;
    for (const char *c = name; *c; c++)
        if (*c == '/' || (unsigned char) *c < 32 || *c == 127)
            return false;
    return true;
}

//  Programmer errors: the rules of the "Threads" paragraph above
static void
s_check_use (mesh_store_t *self)
{
    assert (self);
    assert (!self->in_scan);        //  no store calls from a scan callback
}


//  --------------------------------------------------------------------------
//  Open and close

//  Refuse what is not a meshbus store, then open (creating) the tables.
static int
s_setup (mesh_store_t *self)
{
    MDB_txn *txn;
    int rc = store_txn_begin (self, 0, &txn);
    if (rc)
        return store_fail_mdb (self, rc, "begin");
    MDB_dbi main_db;
    MDB_val key = { strlen (STORE_FORMAT_KEY), STORE_FORMAT_KEY };
    MDB_val value;
    MDB_stat stat;
    const char *why = "open";
    if ((rc = mdb_dbi_open (txn, NULL, 0, &main_db)))
        goto failed;
    rc = mdb_get (txn, main_db, &key, &value);
    if (rc == 0) {
        if (value.mv_size != strlen (STORE_FORMAT)
        ||  memcmp (value.mv_data, STORE_FORMAT, value.mv_size)) {
            mdb_txn_abort (txn);
            return mesh_fail (MESH_ESYS, "store %s: unsupported format version %.*s",
                              self->path, (int) (value.mv_size > 16? 16: value.mv_size),
                              (const char *) value.mv_data);
        }
    }
    else
    if (rc == MDB_NOTFOUND) {
        if ((rc = mdb_stat (txn, main_db, &stat)))
            goto failed;
        if (stat.ms_entries > 0) {
            mdb_txn_abort (txn);
            return mesh_fail (MESH_ESYS, "store %s: an LMDB file of another program, "
                              "not a meshbus store", self->path);
        }
        value.mv_size = strlen (STORE_FORMAT);
        value.mv_data = STORE_FORMAT;
        why = "write format";
        if ((rc = mdb_put (txn, main_db, &key, &value, 0)))
            goto failed;
    }
    else
        goto failed;
    why = "open tables";
    if ((rc = mdb_dbi_open (txn, "records", MDB_CREATE, &self->records))
    ||  (rc = mdb_dbi_open (txn, "meta", MDB_CREATE, &self->meta)))
        goto failed;
    if ((rc = mdb_txn_commit (txn)))
        return store_fail_mdb (self, rc, "commit");
    return 0;
failed:
    mdb_txn_abort (txn);
    return store_fail_mdb (self, rc, why);
}

//  Are the pages from first to last (those past the end of the file) all
//  in LMDB's free list? The file is made long enough first (sparse, under
//  the writer lock) so that reading the free list cannot fault, and put
//  back as it was if not. Only a free list of one leaf page is read: with
//  a deeper one a missing page could be a leaf LMDB would walk into
//  unchecked, so that file is refused as before.
static bool
s_missing_are_free (mesh_store_t *self, int fd, off_t size, uint64_t first, uint64_t last,
                    unsigned psize)
{
    if (ftruncate (fd, (off_t) ((last + 1) * psize)))
        return false;
    MDB_txn *txn;
    MDB_cursor *cursor = NULL;
    MDB_stat free_db;
    uint64_t found = 0;
    bool ok = false;
    if (mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_stat (txn, 0, &free_db) == 0 && free_db.ms_depth <= 1
        &&  mdb_cursor_open (txn, 0, &cursor) == 0) {
            MDB_val key, data;
            int rc = mdb_cursor_get (cursor, &key, &data, MDB_FIRST);
            ok = true;
            for (size_t records = 0; rc == 0 && ok; records++) {
                //  an IDL: a count, then that many page numbers, descending
                size_t count = 0;
                if (records >= free_db.ms_entries || data.mv_size < sizeof count)
                    ok = false;
                else
                    memcpy (&count, data.mv_data, sizeof count);
                if (ok && data.mv_size != (count + 1) * sizeof count)
                    ok = false;
                size_t prev = SIZE_MAX;
                for (size_t i = 1; ok && i <= count; i++) {
                    size_t pgno;
                    memcpy (&pgno, (const uint8_t *) data.mv_data + i * sizeof pgno, sizeof pgno);
                    ok = pgno < prev;
                    prev = pgno;
                    found += pgno >= first && pgno <= last;
                }
                rc = mdb_cursor_get (cursor, &key, &data, MDB_NEXT);
            }
            ok = ok && rc == MDB_NOTFOUND && found == last + 1 - first;
            mdb_cursor_close (cursor);
        }
        mdb_txn_abort (txn);
    }
    if (!ok && ftruncate (fd, size))
        ok = false;             //  refused anyway
    return ok;
}

//  The meta page says how many pages the file holds; a shorter file would
//  fault (SIGBUS) on first access, so it is refused here, unless the pages
//  missing are free ones. LMDB guarantees only that the pages reachable
//  from the last meta exist: a commit after a failed one (a full disk) can
//  take pages past the end, free them in the same txn and never write them
//  (a put cancelled by a delete in one group), and LMDB writes a free page
//  before it reads it.
static int
s_check_size (mesh_store_t *self)
{
    MDB_envinfo info;
    MDB_stat stat;
    int fd;
    struct stat st;
    if (mdb_env_info (self->env, &info) || mdb_env_stat (self->env, &stat)
    ||  mdb_env_get_fd (self->env, &fd) || fstat (fd, &st))
        return mesh_fail (MESH_ESYS, "store %s: cannot read its size", self->path);
    uint64_t needed = ((uint64_t) info.me_last_pgno + 1) * stat.ms_psize;
    if ((uint64_t) st.st_size >= needed)
        return 0;
    //  under the writer lock, so no other process extends the file meanwhile
    MDB_txn *txn;
    bool free_pages = false;
    if (store_txn_begin (self, 0, &txn) == 0) {
        if (mdb_env_info (self->env, &info) == 0 && fstat (fd, &st) == 0) {
            needed = ((uint64_t) info.me_last_pgno + 1) * stat.ms_psize;
            free_pages = (uint64_t) st.st_size >= needed
                      || s_missing_are_free (self, fd, st.st_size,
                                             (uint64_t) st.st_size / stat.ms_psize,
                                             info.me_last_pgno, stat.ms_psize);
        }
        mdb_txn_abort (txn);
    }
    if (!free_pages)
        return mesh_fail (MESH_ESYS, "store %s is truncated: %llu bytes, its meta page "
                          "needs %llu", self->path, (unsigned long long) st.st_size,
                          (unsigned long long) needed);
    return 0;
}

static const char *
s_open_reason (int rc)
{
    switch (rc) {
        case MDB_INVALID:          return "not an LMDB store, or its header is damaged";
        case MDB_VERSION_MISMATCH: return "written by an incompatible LMDB version";
        default:                   return mdb_strerror (rc);
    }
}

static int
s_register (mesh_store_t *self)
{
    pthread_mutex_lock (&s_open_lock);
    for (mesh_store_t *store = s_open_list; store; store = store->next)
        if (strcmp (store->path, self->path) == 0) {
            pthread_mutex_unlock (&s_open_lock);
            return mesh_fail (MESH_ESTATE, "store %s is already open in this process",
                              self->path);
        }
    self->next = s_open_list;
    s_open_list = self;
    pthread_mutex_unlock (&s_open_lock);
    return 0;
}

static void
s_unregister (mesh_store_t *self)
{
    pthread_mutex_lock (&s_open_lock);
    for (mesh_store_t **link = &s_open_list; *link; link = &(*link)->next)
        if (*link == self) {
            *link = self->next;
            break;
        }
    pthread_mutex_unlock (&s_open_lock);
}

mesh_store_t *
mesh_store_new (const char *dir, const char *name, int sync_mode)
{
    if (!dir || !*dir || !name || !s_name_valid (name)) {
        mesh_fail (MESH_EINVAL, "store: bad directory or name \"%s\"", name? name: "(null)");
        return NULL;
    }
    if (sync_mode != MESH_STORE_SYNC && sync_mode != MESH_STORE_GROUP) {
        mesh_fail (MESH_EINVAL, "store %s: bad sync mode %d", name, sync_mode);
        return NULL;
    }
    if (s_mkdir_p (dir))
        return NULL;
    char real [PATH_MAX];
    if (!realpath (dir, real)) {
        mesh_fail (MESH_ESYS, "store directory %s: %s", dir, strerror (errno));
        return NULL;
    }
    size_t size = strlen (real) + 1 + strlen (name) + sizeof STORE_SUFFIX;
    if (size > PATH_MAX) {
        mesh_fail (MESH_EINVAL, "store path too long: %s/%s", real, name);
        return NULL;
    }
    mesh_store_t *self = (mesh_store_t *) calloc (1, sizeof (mesh_store_t));
    if (!self || !(self->path = (char *) malloc (size))) {
        free (self);
        mesh_fail (MESH_ESYS, "store %s: out of memory", name);
        return NULL;
    }
    snprintf (self->path, size, "%s/%s%s", real, name, STORE_SUFFIX);
    self->mode = sync_mode;
    if (s_register (self)) {
        free (self->path);
        free (self);
        return NULL;
    }
    uint64_t initial = s_env_size ("MESH_STORE_MAPSIZE", STORE_MAP_INITIAL);
    self->map_cap = s_env_size ("MESH_STORE_MAPMAX", STORE_MAP_CAP);
    if (sizeof (size_t) < 8 && self->map_cap > SIZE_MAX / 2)
        self->map_cap = SIZE_MAX / 2;   //  32-bit address space
    if (initial > self->map_cap)
        initial = self->map_cap;

    int rc = mdb_env_create (&self->env);
    if (rc) {
        mesh_fail (MESH_ESYS, "store %s: %s", self->path, mdb_strerror (rc));
        self->env = NULL;
        goto failed;
    }
    mdb_env_set_maxdbs (self->env, STORE_MAX_DBS);
    //  No mapsize before open: an existing file then keeps the size it
    //  grew to (its meta page's), and is raised to the initial size below.
    rc = mdb_env_open (self->env, self->path, MDB_NOSUBDIR | MDB_NOTLS, 0600);
    if (rc) {
        mesh_fail (MESH_ESYS, "store %s: %s", self->path, s_open_reason (rc));
        goto failed;
    }
    if (s_check_size (self))
        goto failed;
    int dead = 0;
    mdb_reader_check (self->env, &dead);
    MDB_envinfo info;
    mdb_env_info (self->env, &info);
    if (info.me_mapsize < initial
    &&  (rc = mdb_env_set_mapsize (self->env, (size_t) store_round_page (initial)))) {
        mesh_fail (MESH_ESYS, "store %s: map size: %s", self->path, mdb_strerror (rc));
        goto failed;
    }
    if (s_setup (self))
        goto failed;
    return self;

failed:
    if (self->env)
        mdb_env_close (self->env);
    s_unregister (self);
    free (self->path);
    free (self);
    return NULL;
}

void
mesh_store_destroy (mesh_store_t **self_p)
{
    assert (self_p);
    mesh_store_t *self = *self_p;
    if (!self)
        return;
    s_check_use (self);
    mesh_store_flush (self);        //  on failure the pending writes are lost
    store_log_clear (self);
    free (self->log);
    if (self->rtxn)
        mdb_txn_abort (self->rtxn);
    mdb_env_close (self->env);
    s_unregister (self);
    free (self->path);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Records

int
mesh_store_put (mesh_store_t *self, uint64_t key, const void *data, size_t size)
{
    s_check_use (self);
    assert (data || size == 0);
    s_op_t op = { OP_PUT, key, (void *) (data? data: ""), size, NULL };
    return store_write (self, &op, NULL);
}

void *
mesh_store_get (mesh_store_t *self, uint64_t key, size_t *size)
{
    s_check_use (self);
    MDB_txn *txn;
    if (store_read_begin (self, &txn))
        return NULL;
    uint8_t kbuf [8];
    store_key_encode (key, kbuf);
    MDB_val k = { 8, kbuf }, v;
    void *copy = NULL;
    int rc = mdb_get (txn, self->records, &k, &v);
    if (rc == 0) {
        copy = malloc (v.mv_size? v.mv_size: 1);
        if (copy) {
            memcpy (copy, v.mv_data, v.mv_size);
            if (size)
                *size = v.mv_size;
        }
        else
            mesh_fail (MESH_ESYS, "store %s: out of memory", self->path);
    }
    else
    if (rc == MDB_NOTFOUND)
        mesh_fail (MESH_OK, "store %s: no record %llu", self->path, (unsigned long long) key);
    else
        store_fail_mdb (self, rc, "get");
    store_read_end (self, txn);
    return copy;
}

int
mesh_store_delete (mesh_store_t *self, uint64_t key)
{
    s_check_use (self);
    s_op_t op = { OP_DEL, key, NULL, 0, NULL };
    return store_write (self, &op, NULL);
}

size_t
mesh_store_scan (mesh_store_t *self, uint64_t from, mesh_store_fn *fn, void *arg)
{
    s_check_use (self);
    assert (fn);
    MDB_txn *txn;
    MDB_cursor *cursor;
    if (store_read_begin (self, &txn))
        return 0;
    int rc = mdb_cursor_open (txn, self->records, &cursor);
    if (rc) {
        store_read_end (self, txn);
        store_fail_mdb (self, rc, "cursor");
        return 0;
    }
    uint8_t kbuf [8];
    store_key_encode (from, kbuf);
    MDB_val key = { 8, kbuf }, data;
    size_t visited = 0;
    self->in_scan = true;
    rc = mdb_cursor_get (cursor, &key, &data, MDB_SET_RANGE);
    while (rc == 0) {
        if (key.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        visited++;
        if (!fn (store_key_decode (key.mv_data), data.mv_data, data.mv_size, arg))
            break;
        rc = mdb_cursor_get (cursor, &key, &data, MDB_NEXT);
    }
    self->in_scan = false;
    if (rc && rc != MDB_NOTFOUND)
        store_fail_mdb (self, rc, "scan");
    mdb_cursor_close (cursor);
    store_read_end (self, txn);
    return visited;
}

//  First or last key (op MDB_FIRST / MDB_LAST), 0 when empty
static uint64_t
s_edge (mesh_store_t *self, MDB_cursor_op op)
{
    s_check_use (self);
    MDB_txn *txn;
    MDB_cursor *cursor;
    if (store_read_begin (self, &txn))
        return 0;
    uint64_t result = 0;
    int rc;
    if ((rc = mdb_cursor_open (txn, self->records, &cursor)) == 0) {
        MDB_val key, data;
        rc = mdb_cursor_get (cursor, &key, &data, op);
        if (rc == 0 && key.mv_size == 8)
            result = store_key_decode (key.mv_data);
        mdb_cursor_close (cursor);
    }
    if (rc && rc != MDB_NOTFOUND)
        store_fail_mdb (self, rc, "read");
    store_read_end (self, txn);
    return result;
}

uint64_t
mesh_store_first (mesh_store_t *self)
{
    return s_edge (self, MDB_FIRST);
}

uint64_t
mesh_store_last (mesh_store_t *self)
{
    return s_edge (self, MDB_LAST);
}

size_t
mesh_store_count (mesh_store_t *self)
{
    s_check_use (self);
    MDB_txn *txn;
    if (store_read_begin (self, &txn))
        return 0;
    MDB_stat stat;
    int rc = mdb_stat (txn, self->records, &stat);
    store_read_end (self, txn);
    if (rc) {
        store_fail_mdb (self, rc, "stat");
        return 0;
    }
    return stat.ms_entries;
}

size_t
mesh_store_trim (mesh_store_t *self, uint64_t below)
{
    s_check_use (self);
    s_op_t op = { OP_TRIM, below, NULL, 0, NULL };
    size_t deleted = 0;
    store_write (self, &op, &deleted);     //  deleted stays 0 if the trim failed
    return deleted;
}


//  --------------------------------------------------------------------------
//  Metadata and flush

int
mesh_store_meta_set (mesh_store_t *self, const char *key, const char *value)
{
    s_check_use (self);
    assert (key);
    size_t klen = strlen (key);
    if (klen == 0 || klen > (size_t) mdb_env_get_maxkeysize (self->env))
        return mesh_fail (MESH_EINVAL, "store %s: meta key of %zu bytes (1..%d)",
                          self->path, klen, mdb_env_get_maxkeysize (self->env));
    s_op_t op = { OP_META, 0, (void *) value, value? strlen (value): 0, (char *) key };
    return store_write (self, &op, NULL);
}

char *
mesh_store_meta_get (mesh_store_t *self, const char *key)
{
    s_check_use (self);
    assert (key);
    size_t klen = strlen (key);
    if (klen == 0 || klen > (size_t) mdb_env_get_maxkeysize (self->env)) {
        mesh_fail (MESH_EINVAL, "store %s: meta key of %zu bytes", self->path, klen);
        return NULL;
    }
    MDB_txn *txn;
    if (store_read_begin (self, &txn))
        return NULL;
    MDB_val k = { klen, (void *) key }, v;
    char *copy = NULL;
    int rc = mdb_get (txn, self->meta, &k, &v);
    if (rc == 0) {
        if ((copy = (char *) malloc (v.mv_size + 1))) {
            memcpy (copy, v.mv_data, v.mv_size);
            copy [v.mv_size] = 0;
        }
        else
            mesh_fail (MESH_ESYS, "store %s: out of memory", self->path);
    }
    else
    if (rc == MDB_NOTFOUND)
        mesh_fail (MESH_OK, "store %s: no meta %s", self->path, key);
    else
        store_fail_mdb (self, rc, "meta");
    store_read_end (self, txn);
    return copy;
}

int
mesh_store_flush (mesh_store_t *self)
{
    s_check_use (self);
    if (self->log_count && store_apply_all (self, NULL, NULL, true, NULL))
        return -1;
    if (self->dropped) {
        size_t dropped = self->dropped;
        self->dropped = 0;
        return mesh_fail (MESH_EFULL, "store %s is full: %zu writes since the last "
                          "flush were dropped", self->path, dropped);
    }
    return 0;
}
