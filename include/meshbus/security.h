/*  =========================================================================
    meshbus/security.h - CURVE on every link, trusted keys, a cluster secret

    All off by default; see docs/security.md. Set before mesh_node_start().
    ========================================================================= */

#ifndef MESHBUS_SECURITY_H_INCLUDED
#define MESHBUS_SECURITY_H_INCLUDED

#include "meshbus/node.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Security (off by default; see docs/security.md). Before mesh_node_start.
//
//  CURVE on every link. keyfile is a NAME.key written by mesh_keygen (or
//  `meshbus keygen`): a czmq-style ZPL file holding the public and secret
//  key in Z85. With CURVE on, the node runs its own ZAP handler and accepts
//  a peer's key if it is the node's own public key (nodes that share one
//  key pair form a cluster), a key of the trusted directory, or, with a
//  cluster secret, a key whose HELLO carries a valid MAC. Nothing else.
int
    mesh_node_set_curve (mesh_node_t *self, const char *keyfile);
//  The same with binary keys (32 bytes each).
int
    mesh_node_set_curve_keys (mesh_node_t *self, const uint8_t *public_key,
                              const uint8_t *secret_key);
//  Trusted public keys: every *.pub file of dir (ZPL, as mesh_keygen
//  writes them), held in memory. Malformed files and repeated keys are
//  skipped with a warning and counted (trust.skipped.*). The directory is
//  watched: a key that disappears cuts that peer's links within a few
//  seconds and is refused afterwards; a key that appears is accepted.
int
    mesh_node_set_trust (mesh_node_t *self, const char *dir);
//  Cluster secret: the contents of file (16 bytes to 4 KiB; e.g. 32 random
//  bytes, or a passphrase). Beacons and HELLO then carry a MAC over node
//  id, endpoint, public key and time; those without a valid, recent MAC are
//  ignored and counted. Works with or without CURVE.
int
    mesh_node_set_secret (mesh_node_t *self, const char *file);
//  The same with the secret in memory.
int
    mesh_node_set_secret_bytes (mesh_node_t *self, const void *secret, size_t size);
//  The node's CURVE public key in Z85 (40 chars), or NULL without CURVE.
const char *
    mesh_node_public_key (mesh_node_t *self);

//  Write a new CURVE key pair: path.key (secret and public, mode 0600,
//  never overwritten) and path.pub (public only, for trust directories).
//  0, or -1 with mesh_last_error() saying why (e.g. a file exists).
int
    mesh_keygen (const char *path);

#ifdef __cplusplus
}
#endif

#endif
