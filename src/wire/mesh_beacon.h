/*  =========================================================================
    mesh_beacon - UDP discovery beacon: packet codec and socket

    meshbus owns its beacon code because czmq's zbeacon cannot use loopback,
    truncates datagrams to 255 bytes and drops beacons byte-identical to its
    own (see ../docs/wire-beacon.md). One UDP socket, bound to 0.0.0.0:port with
    SO_REUSEADDR + SO_REUSEPORT + SO_BROADCAST, receives every beacon on the
    host; sends go to 127.255.255.255 (loopback mode, the default) or to the
    broadcast address of each chosen interface. IP_PKTINFO tells which
    interface a datagram arrived on, so a loopback node ignores LAN beacons
    and a LAN node ignores beacons from interfaces it was not given.
    ========================================================================= */

#ifndef MESH_BEACON_H_INCLUDED
#define MESH_BEACON_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdbool.h>
#include "mesh_limits.h"
#include "mesh_secret.h"

#define MESH_BEACON_FLAG_LEAVING  0x01    //  sender is stopping: forget it now

//  TLV types after the fixed head (type byte, length byte, value)
#define MESH_BEACON_TLV_HOST   1    //  text: address to connect to, when not the source
#define MESH_BEACON_TLV_NAME   2    //  text: node name, for logs (<= 64 bytes)
#define MESH_BEACON_TLV_KEY    3    //  32 bytes: sender's CURVE public key
#define MESH_BEACON_TLV_TIME   4    //  8 bytes: ms since epoch, big endian
#define MESH_BEACON_TLV_MAC    5    //  32 bytes: HMAC-SHA-256 over all before it
#define MESH_BEACON_TEXT_MAX   64   //  bytes in a HOST or NAME value (no NUL)
#define MESH_BEACON_KEY_SIZE   32   //  exact length of a KEY value
#define MESH_BEACON_TIME_SIZE  8    //  exact length of a TIME value
#define MESH_BEACON_MAC_TLV    (2 + MESH_MAC_SIZE)     //  a whole MAC TLV

typedef struct {
    uint8_t flags;
    uint16_t port;                          //  TCP port of the sender's inbox
    uint8_t id [MESH_ID_SIZE];              //  sender's node id
    uint8_t tag [MESH_BEACON_TAG_SIZE];     //  cluster tag
    uint64_t incarnation;
    char host [65];                         //  "" unless TLV_HOST was present
    char name [65];                         //  "" unless TLV_NAME was present
    bool has_key;                           //  TLV_KEY present
    uint8_t key [MESH_BEACON_KEY_SIZE];     //  sender's CURVE public key
    bool has_time;                          //  TLV_TIME present
    uint64_t time_ms;                       //  sender's clock, ms since epoch
    bool has_mac;                           //  TLV_MAC present (decode only)
    uint8_t mac [MESH_MAC_SIZE];            //  the MAC as received
    size_t mac_offset;                      //  where the MAC TLV starts
} mesh_beacon_packet_t;

typedef enum {
    MESH_BEACON_OK = 0,
    MESH_BEACON_MALFORMED = -1,     //  short, long, bad magic, bad TLV
    MESH_BEACON_BAD_VERSION = -2,
} mesh_beacon_rc_t;

//  Packet codec. encode returns bytes written (<= MESH_BEACON_MAX) or 0
//  when cap is too small. It writes HOST and NAME when not empty, KEY when
//  has_key, TIME when has_time, in that order; it never writes a MAC
//  (has_mac, mac and mac_offset are ignored): only encode_signed can.
size_t
    mesh_beacon_encode (const mesh_beacon_packet_t *pkt, void *buf, size_t cap);
//  Encodes pkt with TIME = pkt->time_ms (whatever has_time says) and
//  appends a MAC TLV computed with secret over every byte before it.
//  Returns bytes written or 0 when cap is too small.
size_t
    mesh_beacon_encode_signed (const mesh_beacon_packet_t *pkt, const mesh_secret_t *secret,
                               void *buf, size_t cap);
//  decode returns MESH_BEACON_OK or a negative mesh_beacon_rc_t; never
//  allocates, never asserts on input; unknown TLV types are skipped. KEY,
//  TIME and MAC of the wrong length, or present twice, are malformed. A
//  MAC anywhere is decoded (mac_offset says where); verify says whether
//  it is the last TLV and right.
int
    mesh_beacon_decode (mesh_beacon_packet_t *pkt, const void *data, size_t size);
//  Whether pkt, decoded from exactly these bytes, carries a valid MAC
//  under secret as its last TLV (nothing after it). Constant time in the
//  MAC. Checks neither TIME nor its freshness: the caller does, see
//  mesh_secret_fresh. false for NULL data or on any mismatch.
bool
    mesh_beacon_verify (const mesh_beacon_packet_t *pkt, const mesh_secret_t *secret,
                        const void *data, size_t size);

//  Cluster tag: BLAKE2b with an 8-byte digest (libsodium crypto_generichash,
//  outlen 8; not a truncated BLAKE2b-256) of the cluster name. NULL means
//  MESH_DEFAULT_CLUSTER.
void
    mesh_beacon_cluster_tag (const char *cluster, uint8_t tag [MESH_BEACON_TAG_SIZE]);

typedef struct _mesh_beacon_t mesh_beacon_t;

//  Open the beacon socket on UDP port. ifaces: NULL, "" or "lo" = loopback
//  only; otherwise a comma-separated list of interface names (eth0,eth1).
//  Returns NULL (errno set, reason in *reason if not NULL) on failure, e.g.
//  an unknown interface or one without a broadcast address.
mesh_beacon_t *
    mesh_beacon_new (const char *ifaces, uint16_t port, const char **reason);
void
    mesh_beacon_destroy (mesh_beacon_t **self_p);

//  File descriptor to poll for readability.
int
    mesh_beacon_fd (mesh_beacon_t *self);

//  Address the node should bind its inbox to and advertise: "127.0.0.1" in
//  loopback mode, else the IPv4 address of the first chosen interface.
const char *
    mesh_beacon_host (mesh_beacon_t *self);

//  Broadcast one datagram on every chosen interface. 0 or -1.
int
    mesh_beacon_send (mesh_beacon_t *self, const void *data, size_t size);

//  Receive one datagram without blocking. Returns its size (>= 0), or -1
//  when nothing is waiting. from gets the sender's IPv4 address as text
//  (INET_ADDRSTRLEN). Datagrams that arrived on an interface this beacon
//  was not opened for are consumed and reported through *foreign = true.
//  A datagram longer than cap is consumed whole and its real size returned,
//  so the caller sees size > cap and counts it malformed. from and foreign
//  may be NULL.
ssize_t
    mesh_beacon_recv (mesh_beacon_t *self, void *buf, size_t cap,
                      char *from, bool *foreign);

#endif
