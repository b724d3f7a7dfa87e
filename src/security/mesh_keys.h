/*  =========================================================================
    mesh_keys - CURVE key files and the trusted-key directory

    Key files are czmq-style ZPL text (what zcert writes), so keys made by
    czmq tools work here and ours work there:

        curve
            public-key = "<40 chars of Z85>"
            secret-key = "<40 chars of Z85>"      (NAME.key only)

    The trust store holds every key of a directory of *.pub files in
    memory. czmq's zcertstore re-reads the directory on every handshake
    (8 ms at 1 000 keys) and aborts on two files with the same key; this one
    loads once, then re-reads only files whose size, times or inode
    changed, and skips malformed files and repeated keys with a warning and
    a count.
    Lookups are thread safe: the ZAP handler runs in its own thread.
    ========================================================================= */

#ifndef MESH_KEYS_H_INCLUDED
#define MESH_KEYS_H_INCLUDED

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define MESH_KEY_SIZE       32      //  binary CURVE key
#define MESH_KEY_Z85        40      //  its Z85 text, without NUL
#define MESH_KEYFILE_MAX    65536   //  bytes: a larger key file is malformed

//  Load a key file. secret_key may be NULL (then a .pub file is enough);
//  when not NULL the file must hold a secret key. 0, or -1 with
//  mesh_last_error() saying why (file, line or field).
int
    mesh_keys_load (const char *path, uint8_t *public_key, uint8_t *secret_key);

//  Write path.key (mode 0600, O_EXCL: never overwrites) and path.pub.
//  0 or -1 (mesh_last_error). Removes what it wrote when it fails halfway.
int
    mesh_keys_generate (const char *path);

typedef struct _mesh_trust_t mesh_trust_t;

//  Open a trust store on dir and load it. NULL (mesh_last_error) when dir
//  cannot be read. warn, if not NULL, gets one line per skipped file (else
//  the line goes to stderr); it runs inside mesh_trust_new/_rescan and may
//  call mesh_trust_has, not mesh_trust_rescan.
typedef void (mesh_trust_warn_fn) (void *arg, const char *line);
mesh_trust_t *
    mesh_trust_new (const char *dir, mesh_trust_warn_fn *warn, void *arg);
void
    mesh_trust_destroy (mesh_trust_t **self_p);

//  Add a key that is trusted whatever the directory holds (the node's own).
void
    mesh_trust_pin (mesh_trust_t *self, const uint8_t *key);
//  Thread safe. A pinned key or a key of the directory.
bool
    mesh_trust_has (mesh_trust_t *self, const uint8_t *key);
//  Keys loaded from the directory now (pinned keys not counted).
size_t
    mesh_trust_size (mesh_trust_t *self);

//  Re-read what changed in the directory. Keys that were trusted and are
//  no longer are written to revoked (up to max of them, MESH_KEY_SIZE
//  bytes each); returns how many were revoked (may exceed max: the rest
//  are refused anyway, only not reported), or -1 if the directory could
//  not be read (then nothing changes).
int
    mesh_trust_rescan (mesh_trust_t *self, uint8_t *revoked, size_t max);

//  Counters: files skipped as malformed, as duplicates. Each file version
//  counts once (like its warning): a rescan that finds the same broken
//  file unchanged counts nothing more.
uint64_t
    mesh_trust_skipped_malformed (mesh_trust_t *self);
uint64_t
    mesh_trust_skipped_duplicate (mesh_trust_t *self);
//  For tests: key files read so far (a rescan with no change reads none).
uint64_t
    mesh_trust_reads (mesh_trust_t *self);

#endif
