/*  =========================================================================
    mesh_keys - CURVE key files and the trusted-key directory

    Key files. czmq's zcert layout, so either side can read the other's:

        #   comment header
        metadata
            name = "alice"
            created-by = "meshbus keygen"
        curve
            public-key = "<40 chars of Z85>"
            secret-key = "<40 chars of Z85>"      (NAME.key only)

    Loading reads at most MESH_KEYFILE_MAX bytes, sized by fstat on the
    open file (never by anything the file says), refuses bytes that cannot
    be in a text file before czmq's parser sees them (zconfig logs syntax
    errors on stdout, so we keep obvious garbage away from it), then lets
    zconfig_str_load parse the ZPL. Each key must be exactly 40 Z85 chars
    that decode; a secret key must give back the public key through
    crypto_scalarmult_base (a CURVE secret key is a curve25519 scalar, its
    public key the scalar times the base point), so a .key whose halves
    were mixed up is refused here, not at the first handshake. Buffers that
    held a secret are wiped; czmq's parser keeps copies of its input in
    memory it frees without wiping, which we cannot reach.

    Generating writes path.key (0600) and then path.pub (0644), both with
    O_EXCL, so an existing key is never overwritten, and fchmod, so the
    umask decides neither mode. The files are fsynced: a key pair whose
    .pub was handed out is worth keeping through a power cut. When the
    second file cannot be written the first is removed.

    Trust store. The keys of every DIR/NAME.pub in a hash keyed by their Z85
    text, so a lookup (the ZAP thread, per handshake) costs one encode and
    one hash probe under a mutex, and never touches the disk. Beside it, a
    record per file (name, size, mtime, ctime, inode, what it held), sorted
    by name. A rescan lists the directory and stats each entry; a file
    whose stat matches its record keeps what was read before, so a rescan
    with no change reads no file. The key set is then rebuilt from the
    records in name order: the first file with a key keeps it, a later file
    with the same key is skipped as a duplicate (so a key stays trusted
    while any file still holds it). Keys of the old set missing from the
    new one, and not pinned, are the revoked ones. Warnings and skip
    counts happen once per file version: when a file is read and fails, or
    the first time a version of it is found to be a duplicate.

    Only regular files (symbolic links are followed) named *.pub count;
    dotfiles, directories, sockets and *.key files are ignored silently.
    A file rewritten in place at the same size within one tick of the
    file system clock keeps its old record until its next change: put key
    files in place with rename(2), as editors and `mv` do.

    Locks: `lock` guards the key set, the pinned keys and the counters
    (taken briefly by lookups); `scan_lock` makes rescans take turns and
    guards the file records, so the reading and parsing of a rescan never
    holds up a lookup. The warn callback runs under scan_lock: it may call
    mesh_trust_has, not mesh_trust_rescan.
    ========================================================================= */

#include "mesh_keys.h"
#include "mesh_util.h"
#include <czmq.h>
#include <sodium.h>
#include <assert.h>
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEYS_PUB_SUFFIX     ".pub"
#define KEYS_KEY_SUFFIX     ".key"
#define KEYS_WHY_MAX        200         //  bytes of a reason (mesh_fail keeps 256)
#define KEYS_TEXT_MAX       1024        //  bytes of a key file we write

static const char s_z85_chars [] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

//  One *.pub file of the directory, as last seen
typedef struct {
    char *name;                 //  file name, without the directory
    int64_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;           //  changes on chmod too: an unreadable file made readable
    uint64_t ino;               //  a file renamed over this one
    bool valid;                 //  parsed; key and text hold its public key
    bool dup_warned;            //  this version was reported as a duplicate
    bool kept;                  //  during a rescan: moved to the new list
    uint8_t key [MESH_KEY_SIZE];
    char text [MESH_KEY_Z85 + 1];
} s_file_t;

struct _mesh_trust_t {
    pthread_mutex_t lock;       //  keys, pinned, counters
    pthread_mutex_t scan_lock;  //  one rescan at a time; files
    char *dir;
    mesh_trust_warn_fn *warn;
    void *warn_arg;
    zhashx_t *keys;             //  Z85 text -> the s_file_t holding it (not owned)
    zhashx_t *pinned;           //  Z85 text -> self (a marker)
    s_file_t **files;           //  sorted by name
    size_t file_count;
    uint64_t malformed;
    uint64_t duplicates;
    uint64_t reads;             //  key files opened and read, for tests
};


//  --------------------------------------------------------------------------
//  Key files

//  Decode one field of Z85 text into bin. 0, or -1 with why filled.
static int
s_z85_field (const char *text, const char *field, uint8_t *bin, char *why, size_t cap)
{
    size_t len = strlen (text);
    if (len != MESH_KEY_Z85) {
        snprintf (why, cap, "curve/%s has %zu characters, a key has %d", field, len,
                  MESH_KEY_Z85);
        return -1;
    }
    //  libzmq checks the alphabet too, but only recent versions do
    if (strspn (text, s_z85_chars) != len || !zmq_z85_decode (bin, text)) {
        snprintf (why, cap, "curve/%s is not Z85 text", field);
        return -1;
    }
    return 0;
}

//  Read the key file path (relative to dirfd, or AT_FDCWD) into public_key
//  and, when not NULL, secret_key. 0, or the MESH_E* code with why filled
//  (starting with shown, the path as the user knows it).
static int
s_load_at (int dirfd, const char *path, const char *shown, uint8_t *public_key,
           uint8_t *secret_key, char *why, size_t cap)
{
    //  O_NONBLOCK: opening a FIFO must not hang us; no effect on files
    int fd = openat (dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf (why, cap, "%s: %s", shown, strerror (errno));
        return MESH_ESYS;
    }
    struct stat st;
    if (fstat (fd, &st)) {
        snprintf (why, cap, "%s: %s", shown, strerror (errno));
        close (fd);
        return MESH_ESYS;
    }
    if (!S_ISREG (st.st_mode) || st.st_size == 0 || st.st_size > MESH_KEYFILE_MAX) {
        if (!S_ISREG (st.st_mode))
            snprintf (why, cap, "%s: not a regular file", shown);
        else
        if (st.st_size == 0)
            snprintf (why, cap, "%s: empty file", shown);
        else
            snprintf (why, cap, "%s: %lld bytes, a key file has at most %d", shown,
                      (long long) st.st_size, MESH_KEYFILE_MAX);
        close (fd);
        return MESH_EINVAL;
    }
    size_t size = (size_t) st.st_size;
    char *text = (char *) malloc (size + 1);
    if (!text) {
        snprintf (why, cap, "%s: out of memory", shown);
        close (fd);
        return MESH_ESYS;
    }
    //  Read what fstat said, no more: a file that grows meanwhile is read
    //  again at the next rescan, as its size and mtime changed
    size_t got = 0;
    while (got < size) {
        ssize_t n = read (fd, text + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf (why, cap, "%s: %s", shown, strerror (errno));
            sodium_memzero (text, size + 1);
            free (text);
            close (fd);
            return MESH_ESYS;
        }
        if (n == 0)
            break;
        got += (size_t) n;
    }
    close (fd);
    text [got] = 0;

    int rc = MESH_EINVAL;
    zconfig_t *config = NULL;
    for (size_t i = 0; i < got; i++) {
        unsigned char c = (unsigned char) text [i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
            snprintf (why, cap, "%s: binary data (byte 0x%02x at offset %zu), not a key file",
                      shown, c, i);
            goto done;
        }
    }
    config = zconfig_str_load (text);
    if (!config) {
        snprintf (why, cap, "%s: not ZPL text (czmq's zconfig refused it)", shown);
        goto done;
    }
    const char *public_text = zconfig_get (config, "curve/public-key", NULL);
    if (!public_text) {
        snprintf (why, cap, "%s: no curve/public-key", shown);
        goto done;
    }
    char detail [KEYS_WHY_MAX];
    if (s_z85_field (public_text, "public-key", public_key, detail, sizeof detail)) {
        snprintf (why, cap, "%s: %s", shown, detail);
        goto done;
    }
    if (secret_key) {
        zconfig_t *item = zconfig_locate (config, "curve/secret-key");
        char *secret_text = item? zconfig_value (item): NULL;
        if (!secret_text) {
            snprintf (why, cap, "%s: no curve/secret-key (a .pub file? the secret key "
                      "is in NAME.key)", shown);
            goto done;
        }
        int bad = s_z85_field (secret_text, "secret-key", secret_key, detail, sizeof detail);
        sodium_memzero (secret_text, strlen (secret_text));
        if (bad) {
            snprintf (why, cap, "%s: %s", shown, detail);
            goto done;
        }
        uint8_t derived [MESH_KEY_SIZE];
        if (sodium_init () < 0
        ||  crypto_scalarmult_base (derived, secret_key) != 0
        ||  sodium_memcmp (derived, public_key, MESH_KEY_SIZE) != 0) {
            snprintf (why, cap, "%s: secret-key does not belong to public-key", shown);
            goto done;
        }
        //  As ssh does with its identity files: a secret key that others
        //  can read is not secret any more, and the fix is one command
        if (st.st_mode & 077) {
            snprintf (why, cap, "%s holds a secret key and is readable by others "
                      "(mode %04o): run chmod 600 %s", shown,
                      (unsigned) (st.st_mode & 07777), shown);
            goto done;
        }
    }
    rc = 0;
done:
    if (rc && secret_key)
        sodium_memzero (secret_key, MESH_KEY_SIZE);     //  half a decode is still secret
    zconfig_destroy (&config);
    sodium_memzero (text, size + 1);
    free (text);
    return rc;
}

int
mesh_keys_load (const char *path, uint8_t *public_key, uint8_t *secret_key)
{
    assert (public_key);
    if (!path || !*path)
        return mesh_fail (MESH_EINVAL, "key file: no path");
    char why [KEYS_WHY_MAX];
    int err = s_load_at (AT_FDCWD, path, path, public_key, secret_key, why, sizeof why);
    return err? mesh_fail (err, "%s", why): 0;
}

//  Write text to a new file (O_EXCL) with exactly mode. 0, or -1 (mesh_fail)
//  after removing the file if it created it.
static int
s_write_new (const char *path, const char *text, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return mesh_fail (MESH_ESYS, "keygen: %s: %s", path, strerror (errno));
    size_t size = strlen (text), done = 0;
    int rc = fchmod (fd, mode);
    while (rc == 0 && done < size) {
        ssize_t n = write (fd, text + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -1;
        else
            done += (size_t) n;
    }
    if (rc == 0)
        rc = fsync (fd);
    int saved = errno;
    if (close (fd) && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc) {
        unlink (path);
        return mesh_fail (MESH_ESYS, "keygen: %s: %s", path, strerror (saved));
    }
    return 0;
}

//  The metadata name: the file's base name, as a ZPL quoted value can hold it
static void
s_metadata_name (const char *path, char *name, size_t cap)
{
    const char *base = strrchr (path, '/');
    base = base? base + 1: path;
    size_t i = 0;
    for (; base [i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char) base [i];
        name [i] = (c < 0x20 || c == 0x7f || c == '"' || c == '\'')? '_': (char) c;
    }
    name [i] = 0;
}

static void
s_key_text (char *out, size_t cap, const char *kind, const char *warning,
            const char *name, const char *public_text, const char *secret_text)
{
    char date [32];
    time_t now = time (NULL);
    struct tm tm;
    strftime (date, sizeof date, "%Y-%m-%d %H:%M:%S", localtime_r (&now, &tm));
    int n = snprintf (out, cap,
        "#   ****  Generated on %s by meshbus keygen  ****\n"
        "#   ZeroMQ CURVE %s Certificate\n"
        "#   %s\n"
        "\n"
        "metadata\n"
        "    name = \"%s\"\n"
        "    created-by = \"meshbus keygen\"\n"
        "curve\n"
        "    public-key = \"%s\"\n",
        date, kind, warning, name, public_text);
    if (secret_text && n > 0 && (size_t) n < cap)
        snprintf (out + n, cap - (size_t) n, "    secret-key = \"%s\"\n", secret_text);
}

int
mesh_keys_generate (const char *path)
{
    if (!path || !*path || path [strlen (path) - 1] == '/')
        return mesh_fail (MESH_EINVAL, "keygen: need a file name, e.g. keys/alice");
    char key_path [PATH_MAX], pub_path [PATH_MAX];
    if (snprintf (key_path, sizeof key_path, "%s" KEYS_KEY_SUFFIX, path) >= (int) sizeof key_path
    ||  snprintf (pub_path, sizeof pub_path, "%s" KEYS_PUB_SUFFIX, path) >= (int) sizeof pub_path)
        return mesh_fail (MESH_EINVAL, "keygen: path too long");
    //  Both checked before either is written; O_EXCL still guards each
    //  against a file that appears meanwhile
    struct stat st;
    if (lstat (key_path, &st) == 0 || lstat (pub_path, &st) == 0)
        return mesh_fail (MESH_EINVAL, "keygen: %s exists; not overwriting a key",
                          lstat (key_path, &st) == 0? key_path: pub_path);

    char public_text [MESH_KEY_Z85 + 1], secret_text [MESH_KEY_Z85 + 1];
    if (zmq_curve_keypair (public_text, secret_text))
        return mesh_fail (MESH_ESYS, "keygen: libzmq cannot make CURVE keys: %s",
                          zmq_strerror (errno));
    char name [256];
    s_metadata_name (path, name, sizeof name);
    char text [KEYS_TEXT_MAX];
    s_key_text (text, sizeof text, "**Secret**",
                "DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.",
                name, public_text, secret_text);
    int rc = s_write_new (key_path, text, 0600);
    sodium_memzero (text, sizeof text);
    sodium_memzero (secret_text, sizeof secret_text);
    if (rc)
        return -1;
    s_key_text (text, sizeof text, "Public",
                "Give this file to the nodes that are to trust this key.",
                name, public_text, NULL);
    if (s_write_new (pub_path, text, 0644)) {
        unlink (key_path);
        return -1;
    }
    return 0;
}

int
mesh_keygen (const char *path)
{
    return mesh_keys_generate (path);
}


//  --------------------------------------------------------------------------
//  Trust store

static void
s_warn (mesh_trust_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_warn (mesh_trust_t *self, const char *fmt, ...)
{
    char line [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    if (self->warn)
        self->warn (self->warn_arg, line);
    else
        mesh_log (MESH_LOG_WARNING, NULL, "%s", line);
}

static void
s_file_destroy (s_file_t **file_p)
{
    if (*file_p) {
        free ((*file_p)->name);
        free (*file_p);
        *file_p = NULL;
    }
}

static int
s_file_cmp (const void *a, const void *b)
{
    return strcmp ((*(s_file_t * const *) a)->name, (*(s_file_t * const *) b)->name);
}

static bool
s_counts (const char *name)
{
    size_t len = strlen (name), suffix = strlen (KEYS_PUB_SUFFIX);
    return name [0] != '.' && len > suffix && streq (name + len - suffix, KEYS_PUB_SUFFIX);
}

static int64_t
s_ns (struct timespec ts)
{
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  List the directory: one record per *.pub regular file with its stat,
//  sorted by name, keys not read. NULL with mesh_fail when the directory
//  cannot be read.
static s_file_t **
s_list (mesh_trust_t *self, DIR *dir, size_t *count)
{
    size_t cap = 64, n = 0;
    s_file_t **files = (s_file_t **) malloc (cap * sizeof *files);
    if (!files) {
        mesh_fail (MESH_ESYS, "trust directory %s: out of memory", self->dir);
        return NULL;
    }
    errno = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        struct stat st;
        if (!s_counts (entry->d_name)
        ||  fstatat (dirfd (dir), entry->d_name, &st, 0)   //  gone meanwhile
        ||  !S_ISREG (st.st_mode))
            continue;
        if (n == cap) {
            s_file_t **bigger = (s_file_t **) realloc (files, 2 * cap * sizeof *files);
            if (!bigger)
                goto oom;
            files = bigger;
            cap *= 2;
        }
        s_file_t *file = (s_file_t *) calloc (1, sizeof (s_file_t));
        if (!file || !(file->name = strdup (entry->d_name))) {
            free (file);
            goto oom;
        }
        file->size = (int64_t) st.st_size;
        file->mtime_ns = s_ns (st.st_mtim);
        file->ctime_ns = s_ns (st.st_ctim);
        file->ino = (uint64_t) st.st_ino;
        files [n++] = file;
        errno = 0;
    }
    if (errno) {
        mesh_fail (MESH_ESYS, "trust directory %s: %s", self->dir, strerror (errno));
        goto fail;
    }
    qsort (files, n, sizeof *files, s_file_cmp);
    *count = n;
    return files;
oom:
    mesh_fail (MESH_ESYS, "trust directory %s: out of memory", self->dir);
fail:
    while (n)
        s_file_destroy (&files [--n]);
    free (files);
    return NULL;
}

//  The record of name in the sorted old list, or NULL
static s_file_t **
s_find (mesh_trust_t *self, const char *name)
{
    s_file_t probe = { .name = (char *) name };
    s_file_t *key = &probe;
    if (!self->file_count)
        return NULL;
    return (s_file_t **) bsearch (&key, self->files, self->file_count, sizeof *self->files,
                                  s_file_cmp);
}

static zhashx_t *
s_key_set_new (void)
{
    //  Keys are strings (czmq's default: copied, freed); items are borrowed
    return zhashx_new ();
}

//  The whole scan; see the top of this file. Returns the revoked count,
//  or -1 (nothing changed).
static int
s_rescan (mesh_trust_t *self, uint8_t *revoked, size_t max)
{
    DIR *dir = opendir (self->dir);
    if (!dir)
        return mesh_fail (MESH_ESYS, "trust directory %s: %s", self->dir, strerror (errno));
    size_t count = 0;
    s_file_t **files = s_list (self, dir, &count);
    zhashx_t *keys = files? s_key_set_new (): NULL;
    if (!keys) {
        if (files)
            mesh_fail (MESH_ESYS, "trust directory %s: out of memory", self->dir);
        closedir (dir);
        while (files && count)
            s_file_destroy (&files [--count]);
        free (files);
        return -1;
    }
    uint64_t reads = 0, malformed = 0, duplicates = 0;
    for (size_t i = 0; i < count; i++) {
        s_file_t *file = files [i];
        s_file_t **old = s_find (self, file->name);
        if (old && (*old)->size == file->size && (*old)->mtime_ns == file->mtime_ns
        &&  (*old)->ctime_ns == file->ctime_ns && (*old)->ino == file->ino) {
            s_file_destroy (&files [i]);
            files [i] = *old;       //  unchanged: keep what was read
            files [i]->kept = true;
            continue;
        }
        char why [KEYS_WHY_MAX], shown [PATH_MAX];
        snprintf (shown, sizeof shown, "%s/%s", self->dir, file->name);
        reads++;
        if (s_load_at (dirfd (dir), file->name, shown, file->key, NULL, why, sizeof why)) {
            s_warn (self, "trust: skipped %s", why);
            malformed++;
        }
        else {
            file->valid = true;
            zmq_z85_encode (file->text, file->key, MESH_KEY_SIZE);
        }
    }
    closedir (dir);
    //  In name order, the first file with a key holds it
    for (size_t i = 0; i < count; i++) {
        s_file_t *file = files [i];
        if (!file->valid)
            continue;
        s_file_t *holder = (s_file_t *) zhashx_lookup (keys, file->text);
        if (!holder)
            zhashx_insert (keys, file->text, file);
        else
        if (!file->dup_warned) {
            s_warn (self, "trust: skipped %s/%s: same key as %s", self->dir, file->name,
                    holder->name);
            file->dup_warned = true;
            duplicates++;
        }
    }

    pthread_mutex_lock (&self->lock);
    size_t gone = 0;
    if (self->keys) {
        for (void *item = zhashx_first (self->keys); item; item = zhashx_next (self->keys)) {
            const char *text = (const char *) zhashx_cursor (self->keys);
            if (zhashx_lookup (keys, text) || zhashx_lookup (self->pinned, text))
                continue;
            if (gone < max)
                zmq_z85_decode (revoked + gone * MESH_KEY_SIZE, text);
            gone++;
        }
    }
    zhashx_t *old_keys = self->keys;
    self->keys = keys;
    self->reads += reads;
    self->malformed += malformed;
    self->duplicates += duplicates;
    pthread_mutex_unlock (&self->lock);

    zhashx_destroy (&old_keys);
    for (size_t i = 0; i < self->file_count; i++)
        if (!self->files [i]->kept)
            s_file_destroy (&self->files [i]);  //  removed or changed files
    for (size_t i = 0; i < count; i++)
        files [i]->kept = false;
    free (self->files);
    self->files = files;
    self->file_count = count;
    return gone > INT_MAX? INT_MAX: (int) gone;
}

mesh_trust_t *
mesh_trust_new (const char *dir, mesh_trust_warn_fn *warn, void *arg)
{
    if (!dir || !*dir) {
        mesh_fail (MESH_EINVAL, "trust: no directory");
        return NULL;
    }
    mesh_trust_t *self = (mesh_trust_t *) calloc (1, sizeof (mesh_trust_t));
    if (!self || !(self->dir = strdup (dir)) || !(self->pinned = zhashx_new ())) {
        if (self)
            free (self->dir);
        free (self);
        mesh_fail (MESH_ESYS, "trust: out of memory");
        return NULL;
    }
    //  A trailing slash would show in every warning as "dir//file"
    size_t len = strlen (self->dir);
    while (len > 1 && self->dir [len - 1] == '/')
        self->dir [--len] = 0;
    pthread_mutex_init (&self->lock, NULL);
    pthread_mutex_init (&self->scan_lock, NULL);
    self->warn = warn;
    self->warn_arg = arg;
    if (s_rescan (self, NULL, 0) < 0)
        mesh_trust_destroy (&self);
    return self;
}

void
mesh_trust_destroy (mesh_trust_t **self_p)
{
    assert (self_p);
    mesh_trust_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->keys);
    zhashx_destroy (&self->pinned);
    for (size_t i = 0; i < self->file_count; i++)
        s_file_destroy (&self->files [i]);
    free (self->files);
    pthread_mutex_destroy (&self->lock);
    pthread_mutex_destroy (&self->scan_lock);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

void
mesh_trust_pin (mesh_trust_t *self, const uint8_t *key)
{
    assert (self);
    assert (key);
    char text [MESH_KEY_Z85 + 1];
    zmq_z85_encode (text, key, MESH_KEY_SIZE);
    pthread_mutex_lock (&self->lock);
    zhashx_insert (self->pinned, text, self);    //  already pinned: nothing to do
    pthread_mutex_unlock (&self->lock);
}

bool
mesh_trust_has (mesh_trust_t *self, const uint8_t *key)
{
    assert (self);
    assert (key);
    char text [MESH_KEY_Z85 + 1];
    zmq_z85_encode (text, key, MESH_KEY_SIZE);
    pthread_mutex_lock (&self->lock);
    bool has = zhashx_lookup (self->pinned, text)
            || (self->keys && zhashx_lookup (self->keys, text));
    pthread_mutex_unlock (&self->lock);
    return has;
}

size_t
mesh_trust_size (mesh_trust_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    size_t size = self->keys? zhashx_size (self->keys): 0;
    pthread_mutex_unlock (&self->lock);
    return size;
}

int
mesh_trust_rescan (mesh_trust_t *self, uint8_t *revoked, size_t max)
{
    assert (self);
    assert (revoked || max == 0);
    pthread_mutex_lock (&self->scan_lock);
    int rc = s_rescan (self, revoked, max);
    pthread_mutex_unlock (&self->scan_lock);
    return rc;
}

//  The counters are written under lock by a rescan in another thread
static uint64_t
s_counter (mesh_trust_t *self, size_t offset)
{
    pthread_mutex_lock (&self->lock);
    uint64_t value = *(uint64_t *) ((char *) self + offset);
    pthread_mutex_unlock (&self->lock);
    return value;
}

uint64_t
mesh_trust_skipped_malformed (mesh_trust_t *self)
{
    assert (self);
    return s_counter (self, offsetof (mesh_trust_t, malformed));
}

uint64_t
mesh_trust_skipped_duplicate (mesh_trust_t *self)
{
    assert (self);
    return s_counter (self, offsetof (mesh_trust_t, duplicates));
}

uint64_t
mesh_trust_reads (mesh_trust_t *self)
{
    assert (self);
    return s_counter (self, offsetof (mesh_trust_t, reads));
}
