/*  =========================================================================
    mesh_secret - cluster secret: MACs on beacons and HELLO

    The secret is whatever bytes the file holds (16 to 4096). The MAC key
    is BLAKE2b-256 of them (libsodium crypto_generichash, keyed with the
    text "meshbus-mac-v1"), so a passphrase and random bytes are handled
    alike. MACs are HMAC-SHA-256 (crypto_auth_hmacsha256), 32 bytes, easy
    to compute in any language (docs/wire-beacon.md, docs/protocol.md).
    A MAC'd message carries its time (ms since the epoch); a receiver
    ignores one more than MESH_SECRET_SKEW_MS away from its own clock.
    ========================================================================= */

#ifndef MESH_SECRET_H_INCLUDED
#define MESH_SECRET_H_INCLUDED

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define MESH_SECRET_MIN         16
#define MESH_SECRET_MAX         4096
#define MESH_MAC_SIZE           32
#define MESH_SECRET_SKEW_MS     30000   //  clock difference a MAC'd message may show

typedef struct {
    uint8_t key [32];           //  derived MAC key
} mesh_secret_t;

//  Derive from bytes / from a file's contents: MESH_SECRET_MIN to
//  MESH_SECRET_MAX bytes. The file's bytes are the secret, exactly: a
//  trailing newline is part of it (`printf %s` or `head -c 32
//  /dev/urandom` make files without one). 0, or -1 with MESH_EINVAL and
//  mesh_last_error() saying why (no such file, not a regular file, too
//  short, too long); *self is unchanged on failure. The secret's bytes are
//  wiped from our buffers; only the derived key is kept.
int
    mesh_secret_from_bytes (mesh_secret_t *self, const void *secret, size_t size);
int
    mesh_secret_from_file (mesh_secret_t *self, const char *path);

//  HMAC-SHA-256 with the derived key over data
void
    mesh_secret_mac (const mesh_secret_t *self, const void *data, size_t size,
                     uint8_t mac [MESH_MAC_SIZE]);
//  Constant-time check of a received MAC. false for NULL data or mac.
bool
    mesh_secret_verify (const mesh_secret_t *self, const void *data, size_t size,
                        const uint8_t mac [MESH_MAC_SIZE]);

//  The HELLO MAC: over "meshbus-hello-v1" (16 bytes, no NUL), node id (16
//  bytes), incarnation (8, big endian), time (8, big endian), key (32
//  bytes; key NULL means 32 zeros, as without CURVE), then the endpoint
//  text (strlen bytes, no NUL). id and endpoint must not be NULL.
void
    mesh_secret_hello_mac (const mesh_secret_t *self, const uint8_t *id, uint64_t incarnation,
                           uint64_t time_ms, const uint8_t *key, const char *endpoint,
                           uint8_t mac [MESH_MAC_SIZE]);

//  Wall-clock ms since the epoch (the MAC'd time), and whether a received
//  time is within MESH_SECRET_SKEW_MS of now, either way (edges included).
uint64_t
    mesh_secret_now_ms (void);
bool
    mesh_secret_fresh (uint64_t time_ms, uint64_t now_ms);

#endif
