/*  =========================================================================
    mesh_security - the node's security: CURVE keys, the trust store, the
    ZAP decision, cluster-secret MACs (docs/security.md)

    It owns its state (keys, trust store, ZAP handler, the inbox monitor,
    replay memory of beacons, warning rate limits) and never reads the
    node's tables: the node asks, and gets a verdict back ("accept",
    "refuse: reason", "these keys were revoked"); the node removes peers
    and counts per peer. What it keeps per peer (the connection a peer's
    key or HELLO was checked on) is a mesh_security_conn_t the node embeds
    in its peer record and only hands back here.

    Locking: every call is made with the node's lock held, except
    mesh_security_rescan (see there). The ZAP thread reads the trust store
    through mesh_trust, which has its own lock.
    ========================================================================= */

#ifndef MESH_SECURITY_H_INCLUDED
#define MESH_SECURITY_H_INCLUDED

#include "meshbus/pattern.h"
#include "mesh_util.h"
#include "mesh_limits.h"
#include "mesh_envelope.h"
#include "mesh_beacon.h"
#include "mesh_counters.h"
#include "mesh_keys.h"
#include "mesh_secret.h"
#include "mesh_zap.h"
#include "mesh_security_wire.h"
#include <zmq.h>

#define MESH_RESERVED_HEADERS   2       //  meshbus.time, meshbus.mac in HELLO
#define MESH_TRUST_SCAN_MS      1000    //  how often the trust directory is re-read
#define MESH_MAX_REVOKED        256     //  reported per rescan; more are refused all the same

typedef struct _mesh_security_t mesh_security_t;

//  Kinds of warning, each rate-limited on its own (mesh_security_warn)
enum { MESH_WARN_BEACON_KEY, MESH_WARN_BEACON_MAC, MESH_WARN_UNTRUSTED, MESH_WARN_HELLO,
       MESH_WARN_ZAP, MESH_WARN_HANDSHAKE, MESH_WARN_TRUST, MESH_WARN_SEED };

//  What security keeps of one peer: the inbound connection its key or
//  HELLO was checked on (mesh_security_frame): a frame on any other
//  connection is checked again. The node embeds it in the peer record and
//  touches none of its members.
typedef struct {
    zmq_msg_t in_pin;           //  a frame of that connection: keeps its metadata alive
    const char *in_tag;         //  a property value in that metadata; NULL = none yet
    int in_fd;                  //  its fd and remote address, to cut it (-1 = none)
    char in_addr [64];
    int64_t next_rehello;       //  secret, no CURVE: when we may ask for a HELLO again
} mesh_security_conn_t;

void
    mesh_security_conn_init (mesh_security_conn_t *conn);
void
    mesh_security_conn_fini (mesh_security_conn_t *conn);

//  A frame's verdict (mesh_security_frame)
typedef enum {
    MESH_SECURITY_ACCEPT,       //  take it
    MESH_SECURITY_REFUSE,       //  drop it; count the reason
    MESH_SECURITY_ASK_HELLO     //  drop it, count the reason, and ask the peer for a
                                //  HELLO on its new connection
} mesh_security_verdict_t;

//  name: the node's name for log lines; counters: the node's. Both are
//  borrowed and must outlive the instance.
mesh_security_t *
    mesh_security_new (const char *name, mesh_counters_t *counters);
//  Wipes the keys and the secret
void
    mesh_security_destroy (mesh_security_t **self_p);

//  Configuration, before start (the node checks its state first): the
//  bodies of mesh_node_set_curve_keys, _set_trust, _set_secret_bytes,
//  _set_secret. 0 or -1.
int
    mesh_security_set_keys (mesh_security_t *self, const uint8_t *public_key,
                            const uint8_t *secret_key);
int
    mesh_security_set_trust (mesh_security_t *self, const char *dir);
int
    mesh_security_set_secret_bytes (mesh_security_t *self, const void *secret, size_t size);
int
    mesh_security_set_secret_file (mesh_security_t *self, const char *file);

//  Questions
bool
    mesh_security_on (mesh_security_t *self);          //  CURVE or a secret
bool
    mesh_security_curve (mesh_security_t *self);
bool
    mesh_security_has_secret (mesh_security_t *self);
//  Our public key, Z85 / binary; NULL without CURVE
const char *
    mesh_security_public_z85 (mesh_security_t *self);
const uint8_t *
    mesh_security_public_key (mesh_security_t *self);
//  Is a peer's key acceptable to link to (own, trusted, or secret mode)?
bool
    mesh_security_key_ok (mesh_security_t *self, const uint8_t *key);

//  Before the inbox binds: ZAP handler on ctx, trust store. 0 or -1.
int
    mesh_security_start (mesh_security_t *self, void *ctx);
//  Server options of the inbox (CURVE server, ZAP domain) and its monitor;
//  hex: our id, names the monitor's endpoint
int
    mesh_security_inbox (mesh_security_t *self, void *ctx, void *inbox, const char *hex);
//  Client options of a link or probe to a server with that key. -1 when
//  CURVE is on and no key is known (nothing to connect to safely).
int
    mesh_security_client (mesh_security_t *self, void *socket, const uint8_t *server_key);
//  After every socket of the context is closed
void
    mesh_security_stop (mesh_security_t *self);

//  Reserved HELLO headers (time, MAC over our id, incarnation, key and
//  endpoint) appended to pairs from index count; storage holds their text.
//  Returns the new count.
size_t
    mesh_security_hello_headers (mesh_security_t *self, const uint8_t *id, uint64_t incarnation,
                                 const char *endpoint, const char **pairs, size_t count,
                                 char storage [2][80]);
//  Check a HELLO from id (env decoded from frame; reply: its endpoint
//  field): the connection's key (CURVE) and MAC (secret). On success
//  key/has_key say which key the sender proved. On failure the reason is
//  counted and logged, the connection cut, and false returned.
bool
    mesh_security_hello (mesh_security_t *self, const uint8_t *id, const mesh_envelope_t *env,
                         zmq_msg_t *frame, const char *reply, uint8_t *key, bool *has_key);
//  A frame (its first zmq frame, its kind) from a known peer, with CURVE or
//  a secret. Accepted if it came on the checked connection, or is a HELLO
//  (already checked), or (CURVE) came on a new connection with the peer's
//  key (peer_key, NULL: none known); those become the checked one. Else
//  *reason names the counter: with CURVE the connection is cut; with a
//  secret alone the verdict may ask the node to request a HELLO (at most
//  once a second). hex: the peer's id, for the warning.
mesh_security_verdict_t
    mesh_security_frame (mesh_security_t *self, mesh_security_conn_t *conn,
                         const uint8_t *peer_key, const char *hex, zmq_msg_t *frame, int kind,
                         const char **reason);
//  A frame from no known peer: cut its connection if its key is refused.
void
    mesh_security_stranger (mesh_security_t *self, zmq_msg_t *frame);
//  Cut the inbound connection checked for a peer (its key was revoked)
void
    mesh_security_cut (mesh_security_t *self, mesh_security_conn_t *conn);
//  Forget an inbound fd that closed (reported by mesh_security_tick): a
//  new connection may get the same number
void
    mesh_security_forget_fd (mesh_security_conn_t *conn, int fd);

//  Every keeper tick: ZAP counters and log, the inbox monitor, beacon
//  replay memory. Inbound fds that closed go to closed (at most max,
//  *nclosed of them: the node passes them to mesh_security_forget_fd).
//  Returns true when the trust directory is due a rescan.
bool
    mesh_security_tick (mesh_security_t *self, int64_t now, int *closed, size_t max,
                        size_t *nclosed);
//  Re-read the trust directory: a stat of every file, so the node calls it
//  WITHOUT its lock (the data path goes on; the trust store has its own
//  lock). Keys revoked since the last scan go to revoked (max of them);
//  returns their count (more than max: check every peer with
//  mesh_security_key_ok), or -1 when the directory cannot be read.
int
    mesh_security_rescan (mesh_security_t *self, uint8_t *revoked, size_t max);
//  Lock held again, the rescan's outcome: warns when it failed (count -1)
void
    mesh_security_rescanned (mesh_security_t *self, int count);

//  Beacon: fill our security TLVs (endpoint: ours, for the MAC'd host) /
//  encode / check a received packet. check returns NULL to accept, else
//  the beacon.ignored.<reason> to count.
void
    mesh_security_beacon_fill (mesh_security_t *self, mesh_beacon_packet_t *pkt,
                               const char *endpoint);
size_t
    mesh_security_beacon_encode (mesh_security_t *self, const mesh_beacon_packet_t *pkt,
                                 uint8_t *buf, size_t cap);
const char *
    mesh_security_beacon_check (mesh_security_t *self, const mesh_beacon_packet_t *pkt,
                                const uint8_t *data, size_t size, const char *from);

//  A warning line, at most one per kind every 10 s (MESH_WARN_*)
void
    mesh_security_warn (mesh_security_t *self, int kind, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif
