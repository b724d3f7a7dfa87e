/*  =========================================================================
    mesh_limits.h - wire constants and limits, in one place

    Every number a peer could abuse lives here. Decoders check each declared
    length against these limits AND against the bytes that remain before
    they touch or allocate anything. Changing a wire constant is a protocol
    change: bump MESH_WIRE_VERSION and update docs/wire-envelope.md and docs/wire-beacon.md.
    ========================================================================= */

#ifndef MESH_LIMITS_H_INCLUDED
#define MESH_LIMITS_H_INCLUDED

//  Envelope (link messages, see docs/wire-envelope.md and docs/wire-beacon.md)
#define MESH_WIRE_VERSION       1       //  first element of every header array
#define MESH_ENV_FIELDS         11      //  elements in a version-1 header array
#define MESH_ENV_MAX_FIELDS     16      //  newer peers may append; we skip extras
#ifndef MESH_MAX_SUBJECT                 //  also public, in meshbus.h
#define MESH_MAX_SUBJECT        255     //  bytes in a subject, service or queue name
#endif
#define MESH_MAX_REPLY          255     //  bytes in a reply-to
//  also public, in meshbus.h (the same tokens: a second definition is legal)
#define MESH_MAX_CTYPE          127     //  bytes in a content type
#define MESH_MAX_HEADERS        32      //  user headers per message
#define MESH_MAX_HEADER_KEY     64      //  bytes in one header key
#define MESH_MAX_HEADER_VALUE   1024    //  bytes in one header value
#define MESH_MAX_HEADERS_BYTES  8192    //  keys + values of one message together
#define MESH_MAX_BODY           (256 * 1024 * 1024)   //  whole body, all frames
#define MESH_MAX_INLINE_BODY    (64 * 1024 - 1)   //  larger bodies travel as own frames
#define MESH_MAX_FRAMES         16      //  body frames after the header frame
#define MESH_MAX_HEADER_FRAME   (MESH_MAX_INLINE_BODY + 32 * 1024)

//  Link identity: the routing id a DEALER presents to a peer's ROUTER inbox
#define MESH_ID_SIZE            16      //  binary node id
#define MESH_ROUTING_ID_SIZE    17      //  1 type byte + node id
#define MESH_ROUTING_TAG_SIZE   4       //  a link's routing id adds a tag per
                                        //  DEALER (docs/protocol.md#sockets)
#define MESH_ROUTING_LINK       0x00    //  the one link of a known peer
#define MESH_ROUTING_PROBE      0x01    //  a seed probe: sends HELLO only

//  Beacon (UDP, see docs/wire-envelope.md and docs/wire-beacon.md)
#define MESH_BEACON_MAGIC       "MSHB"
#define MESH_BEACON_VERSION     1
#define MESH_BEACON_HEAD        40      //  fixed part of a beacon datagram
#define MESH_BEACON_MAX         512     //  whole datagram; larger is malformed
#define MESH_BEACON_TAG_SIZE    8       //  cluster tag: BLAKE2b-64 of the name

//  Peer table and rates
#define MESH_MAX_PEERS_DEFAULT  1024    //  bounded peer table
#define MESH_MAX_PEERS_TRACKED  4096    //  beacon sources remembered for rate limits
#define MESH_GOSSIP_PER_MSG     32      //  peers listed in one PEERS message

#endif
