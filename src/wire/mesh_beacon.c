/*  =========================================================================
    mesh_beacon - UDP discovery beacon: packet codec and socket

    Why meshbus has its own beacon: czmq's zbeacon cannot use loopback (no
    `lo` in ziflist, `*` fails with ENETUNREACH), truncates datagrams to 255
    bytes and silently drops any beacon byte-identical to its own. We need
    the single-machine default to work on a host whose only interface is
    `lo`, room for a public key and a MAC, and every datagram delivered (the
    node filters itself out by node id, and counts what it ignores).

    Wire format (docs/wire-beacon.md is the reference; integers big endian):

        0   4  magic "MSHB"
        4   1  version (1)
        5   1  flags (bit 0 LEAVING)
        6   2  TCP port of the sender's inbox
        8  16  node id
       24   8  cluster tag: BLAKE2b, 8-byte digest, of the cluster name
       32   8  incarnation
       40  ..  TLVs: type (1), length (1), value (length bytes)

    TLVs: HOST (1), NAME (2) text; KEY (3) 32 bytes; TIME (4) 8 bytes;
    MAC (5) 32 bytes of HMAC-SHA-256 (mesh_secret) over every byte before
    it. A signed beacon ends with its MAC, so the receiver verifies bytes
    [0, mac_offset) as they came, with no re-encoding, and nothing after
    the MAC can ride along unauthenticated.

    The whole datagram is at most MESH_BEACON_MAX bytes. The decoder checks
    sizes before it reads anything, never allocates and never asserts on its
    input: a beacon is the one thing any host on the LAN can send us.

    Socket: one UDP socket bound to 0.0.0.0:port with SO_REUSEADDR and
    SO_REUSEPORT, so every node on the host shares the port, and with
    SO_BROADCAST, because a broadcast is delivered to every socket bound to
    the port (a unicast would go to one of them only). Loopback mode sends
    to 127.255.255.255, which the kernel routes over `lo` even in a network
    namespace with no other interface; interface mode sends to each chosen
    interface's broadcast address. IP_PKTINFO tells which interface a
    datagram arrived on: that is how a loopback node ignores LAN beacons and
    a LAN node ignores beacons from interfaces it was not given.
    ========================================================================= */

#ifndef _GNU_SOURCE
#   define _GNU_SOURCE              //  in_pktinfo, SOCK_CLOEXEC: Linux only
#endif

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sodium.h>

#include "mesh_bytes.h"
#include "meshbus/pattern.h"
#include "mesh_beacon.h"

//  Interfaces one beacon may serve. Not a wire limit: a host with more
//  LAN interfaces than this that all need discovery is not a use we know.
#define S_MAX_IFACES    16

//  Offsets in the fixed head (see the table above)
#define S_AT_VERSION    4
#define S_AT_FLAGS      5
#define S_AT_PORT       6
#define S_AT_ID         8
#define S_AT_TAG        24
#define S_AT_INCARN     32

_Static_assert (S_AT_ID + MESH_ID_SIZE == S_AT_TAG, "head layout");
_Static_assert (S_AT_TAG + MESH_BEACON_TAG_SIZE == S_AT_INCARN, "head layout");
_Static_assert (S_AT_INCARN + 8 == MESH_BEACON_HEAD, "head layout");
_Static_assert (sizeof (((mesh_beacon_packet_t *) 0)->host) == MESH_BEACON_TEXT_MAX + 1,
                "host holds the longest HOST value and its NUL");
_Static_assert (sizeof (((mesh_beacon_packet_t *) 0)->name) == MESH_BEACON_TEXT_MAX + 1,
                "name holds the longest NAME value and its NUL");
//  A TLV length is one byte: a text value must fit in it
_Static_assert (MESH_BEACON_TEXT_MAX <= 255, "text fits a TLV");
//  The largest packet encode_signed can produce must fit in a datagram
#define S_LARGEST       (MESH_BEACON_HEAD + 2 * (2 + MESH_BEACON_TEXT_MAX) \
                       + 2 + MESH_BEACON_KEY_SIZE + 2 + MESH_BEACON_TIME_SIZE \
                       + MESH_BEACON_MAC_TLV)
_Static_assert (S_LARGEST <= MESH_BEACON_MAX, "encode fits a datagram");
_Static_assert (sizeof (((mesh_beacon_packet_t *) 0)->key) == MESH_BEACON_KEY_SIZE, "key");
_Static_assert (sizeof (((mesh_beacon_packet_t *) 0)->mac) == MESH_MAC_SIZE, "mac");
_Static_assert (MESH_MAC_SIZE <= 255 && MESH_BEACON_KEY_SIZE <= 255, "fits a TLV");

struct _mesh_beacon_t {
    int fd;                                     //  the UDP socket
    uint16_t port;                              //  beacon port, host order
    size_t iface_count;
    unsigned int ifindex [S_MAX_IFACES];        //  interfaces we accept from
    struct sockaddr_in target [S_MAX_IFACES];   //  broadcast address of each
    char host [INET_ADDRSTRLEN];                //  first interface's address
};

//  The reason a constructor failed. Thread-local so two threads opening
//  beacons cannot overwrite each other's message before it is read.
static _Thread_local char s_reason [160];


//  --------------------------------------------------------------------------
//  Codec

//  Copies a text TLV value into dest (MESH_BEACON_TEXT_MAX + 1 bytes).
//  A NUL inside would make the C string say something other than the wire,
//  so it is malformed, as is anything too long for the field.
static int
s_get_text (char *dest, const uint8_t *value, size_t len)
{
    if (len > MESH_BEACON_TEXT_MAX || memchr (value, 0, len))
        return MESH_BEACON_MALFORMED;
    memcpy (dest, value, len);
    dest [len] = 0;
    return MESH_BEACON_OK;
}

size_t
mesh_beacon_encode (const mesh_beacon_packet_t *pkt, void *buf, size_t cap)
{
    assert (pkt);
    assert (buf || cap == 0);
    //  strnlen: a caller's unterminated array must not make us read past it
    size_t host_len = strnlen (pkt->host, sizeof pkt->host);
    size_t name_len = strnlen (pkt->name, sizeof pkt->name);
    if (host_len > MESH_BEACON_TEXT_MAX || name_len > MESH_BEACON_TEXT_MAX)
        return 0;
    size_t need = MESH_BEACON_HEAD
                + (host_len ? 2 + host_len : 0)
                + (name_len ? 2 + name_len : 0)
                + (pkt->has_key ? 2 + MESH_BEACON_KEY_SIZE : 0)
                + (pkt->has_time ? 2 + MESH_BEACON_TIME_SIZE : 0);
    if (need > cap)
        return 0;

    uint8_t *p = buf;
    memcpy (p, MESH_BEACON_MAGIC, 4);
    p [S_AT_VERSION] = MESH_BEACON_VERSION;
    p [S_AT_FLAGS] = pkt->flags;
    mesh_put_be (p + S_AT_PORT, pkt->port, 2);
    memcpy (p + S_AT_ID, pkt->id, MESH_ID_SIZE);
    memcpy (p + S_AT_TAG, pkt->tag, MESH_BEACON_TAG_SIZE);
    mesh_put_be (p + S_AT_INCARN, pkt->incarnation, 8);

    //  An empty text is sent as no TLV at all: decode gives "" either way
    size_t at = MESH_BEACON_HEAD;
    if (host_len) {
        p [at++] = MESH_BEACON_TLV_HOST;
        p [at++] = (uint8_t) host_len;
        memcpy (p + at, pkt->host, host_len);
        at += host_len;
    }
    if (name_len) {
        p [at++] = MESH_BEACON_TLV_NAME;
        p [at++] = (uint8_t) name_len;
        memcpy (p + at, pkt->name, name_len);
        at += name_len;
    }
    if (pkt->has_key) {
        p [at++] = MESH_BEACON_TLV_KEY;
        p [at++] = MESH_BEACON_KEY_SIZE;
        memcpy (p + at, pkt->key, MESH_BEACON_KEY_SIZE);
        at += MESH_BEACON_KEY_SIZE;
    }
    if (pkt->has_time) {
        p [at++] = MESH_BEACON_TLV_TIME;
        p [at++] = MESH_BEACON_TIME_SIZE;
        mesh_put_be (p + at, pkt->time_ms, 8);
        at += MESH_BEACON_TIME_SIZE;
    }
    assert (at == need);
    return at;
}

size_t
mesh_beacon_encode_signed (const mesh_beacon_packet_t *pkt, const mesh_secret_t *secret,
                           void *buf, size_t cap)
{
    assert (pkt);
    assert (secret);
    assert (buf || cap == 0);
    if (cap < MESH_BEACON_MAC_TLV)
        return 0;
    //  A signed beacon always says when it was sent: the receiver needs
    //  the time to refuse replays, and the MAC covers it.
    mesh_beacon_packet_t timed = *pkt;
    timed.has_time = true;
    size_t size = mesh_beacon_encode (&timed, buf, cap - MESH_BEACON_MAC_TLV);
    if (size == 0)
        return 0;
    uint8_t *p = buf;
    p [size] = MESH_BEACON_TLV_MAC;
    p [size + 1] = MESH_MAC_SIZE;
    mesh_secret_mac (secret, p, size, p + size + 2);
    return size + MESH_BEACON_MAC_TLV;
}

bool
mesh_beacon_verify (const mesh_beacon_packet_t *pkt, const mesh_secret_t *secret,
                    const void *data, size_t size)
{
    assert (pkt);
    assert (secret);
    const uint8_t *p = data;
    //  The MAC must be the last TLV: bytes after it would be unsigned, and
    //  a receiver must not act on what the sender did not vouch for.
    //  mac_offset comes from our decoder, but check it against these bytes
    //  anyway: a caller passing another datagram must get false, not a read
    //  past the end.
    if (!p || !pkt->has_mac || size > MESH_BEACON_MAX
    ||  pkt->mac_offset < MESH_BEACON_HEAD
    ||  pkt->mac_offset > size
    ||  size - pkt->mac_offset != MESH_BEACON_MAC_TLV
    ||  p [pkt->mac_offset] != MESH_BEACON_TLV_MAC
    ||  p [pkt->mac_offset + 1] != MESH_MAC_SIZE)
        return false;
    return mesh_secret_verify (secret, p, pkt->mac_offset, pkt->mac);
}

int
mesh_beacon_decode (mesh_beacon_packet_t *pkt, const void *data, size_t size)
{
    assert (pkt);
    memset (pkt, 0, sizeof *pkt);
    const uint8_t *p = data;
    //  Size and magic first: a datagram that is not ours at all is
    //  malformed whatever its version byte says.
    if (!p || size < MESH_BEACON_HEAD || size > MESH_BEACON_MAX
    ||  memcmp (p, MESH_BEACON_MAGIC, 4) != 0)
        return MESH_BEACON_MALFORMED;
    if (p [S_AT_VERSION] != MESH_BEACON_VERSION)
        return MESH_BEACON_BAD_VERSION;

    pkt->flags = p [S_AT_FLAGS];
    pkt->port = (uint16_t) mesh_get_be (p + S_AT_PORT, 2);
    memcpy (pkt->id, p + S_AT_ID, MESH_ID_SIZE);
    memcpy (pkt->tag, p + S_AT_TAG, MESH_BEACON_TAG_SIZE);
    pkt->incarnation = mesh_get_be (p + S_AT_INCARN, 8);

    bool have_host = false;
    bool have_name = false;
    size_t at = MESH_BEACON_HEAD;
    int rc = MESH_BEACON_OK;
    while (at < size && rc == MESH_BEACON_OK) {
        //  Every length is checked against what remains before it is used
        if (size - at < 2) {
            rc = MESH_BEACON_MALFORMED;
            break;
        }
        uint8_t type = p [at];
        size_t len = p [at + 1];
        at += 2;
        if (len > size - at) {
            rc = MESH_BEACON_MALFORMED;
            break;
        }
        const uint8_t *value = p + at;
        size_t tlv_at = at - 2;
        at += len;
        //  A repeated HOST or NAME is malformed rather than "last wins":
        //  the MAC must not cover a value the reader then ignores.
        if (type == MESH_BEACON_TLV_HOST) {
            rc = have_host? MESH_BEACON_MALFORMED: s_get_text (pkt->host, value, len);
            have_host = true;
        }
        else
        if (type == MESH_BEACON_TLV_NAME) {
            rc = have_name? MESH_BEACON_MALFORMED: s_get_text (pkt->name, value, len);
            have_name = true;
        }
        else
        //  KEY, TIME and MAC have one valid length each, and come at most
        //  once, for the same reason as HOST and NAME: the MAC must cover
        //  exactly the value the receiver uses.
        if (type == MESH_BEACON_TLV_KEY) {
            if (pkt->has_key || len != MESH_BEACON_KEY_SIZE)
                rc = MESH_BEACON_MALFORMED;
            else
                memcpy (pkt->key, value, MESH_BEACON_KEY_SIZE);
            pkt->has_key = true;
        }
        else
        if (type == MESH_BEACON_TLV_TIME) {
            if (pkt->has_time || len != MESH_BEACON_TIME_SIZE)
                rc = MESH_BEACON_MALFORMED;
            else
                pkt->time_ms = mesh_get_be (value, 8);
            pkt->has_time = true;
        }
        else
        if (type == MESH_BEACON_TLV_MAC) {
            if (pkt->has_mac || len != MESH_MAC_SIZE)
                rc = MESH_BEACON_MALFORMED;
            else {
                memcpy (pkt->mac, value, MESH_MAC_SIZE);
                pkt->mac_offset = tlv_at;
            }
            pkt->has_mac = true;
        }
        //  Any type a newer peer adds is skipped, so old nodes still see
        //  new ones.
    }
    if (rc != MESH_BEACON_OK)
        memset (pkt, 0, sizeof *pkt);   //  no half-decoded packet for the caller
    return rc;
}

void
mesh_beacon_cluster_tag (const char *cluster, uint8_t tag [MESH_BEACON_TAG_SIZE])
{
    assert (tag);
    if (!cluster)
        cluster = MESH_DEFAULT_CLUSTER;
    //  sodium_init is idempotent and thread safe; BLAKE2b works even if it
    //  failed (it only selects faster implementations), so no error path.
    if (sodium_init () < 0) {
        //  nothing to do: see above
    }
    crypto_generichash (tag, MESH_BEACON_TAG_SIZE,
                        (const unsigned char *) cluster, strlen (cluster), NULL, 0);
}


//  --------------------------------------------------------------------------
//  Socket

static int
s_why (int error, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  Writes why the constructor failed into s_reason; returns error, the
//  errno to report, so a call reads `return s_fail (self, reason, s_why (...))`
static int
s_why (int error, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (s_reason, sizeof s_reason, format, args);
    va_end (args);
    return error;
}

//  Destroys what the constructor built and reports error and s_reason
static mesh_beacon_t *
s_fail (mesh_beacon_t *self, const char **reason, int error)
{
    mesh_beacon_destroy (&self);
    if (reason)
        *reason = s_reason;
    errno = error;
    return NULL;
}

//  Finds name's IPv4 address and the address to broadcast to. lo has no
//  broadcast address in getifaddrs, but the kernel routes 127.255.255.255
//  over lo (a "broadcast" route in the local table, present as soon as lo
//  is up), so that is where loopback beacons go. Returns 0, or an errno.
static int
s_resolve (struct ifaddrs *list, const char *name,
           struct in_addr *addr, struct in_addr *bcast)
{
    bool exists = false;
    bool has_ipv4 = false;
    for (struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
        if (strcmp (ifa->ifa_name, name) != 0)
            continue;
        exists = true;
        if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_INET)
            continue;
        has_ipv4 = true;
        *addr = ((struct sockaddr_in *) ifa->ifa_addr)->sin_addr;
        if ((ifa->ifa_flags & IFF_LOOPBACK)
        &&  (ntohl (addr->s_addr) & IN_CLASSA_NET) == (INADDR_LOOPBACK & IN_CLASSA_NET)) {
            //  Whatever other 127/8 addresses lo carries, peers on this
            //  host reach us at 127.0.0.1 and hear 127.255.255.255
            addr->s_addr = htonl (INADDR_LOOPBACK);
            bcast->s_addr = htonl (INADDR_LOOPBACK | ~IN_CLASSA_NET);
            return 0;
        }
        if ((ifa->ifa_flags & IFF_BROADCAST) && ifa->ifa_broadaddr
        &&  ifa->ifa_broadaddr->sa_family == AF_INET) {
            *bcast = ((struct sockaddr_in *) ifa->ifa_broadaddr)->sin_addr;
            return 0;
        }
    }
    //  getifaddrs lists an interface without addresses under AF_PACKET, so
    //  "not found" really means the kernel does not know the name.
    if (!exists)
        return s_why (ENODEV, "interface %s not found", name);
    if (!has_ipv4)
        return s_why (EADDRNOTAVAIL,
                      "interface %s has no IPv4 address (down or not configured?)", name);
    return s_why (EADDRNOTAVAIL, "interface %s has no IPv4 broadcast address", name);
}

//  Fills self's interface table from a comma-separated list of names.
//  Returns 0, or an errno (s_why).
static int
s_add_ifaces (mesh_beacon_t *self, const char *ifaces)
{
    struct ifaddrs *list;
    if (getifaddrs (&list) == -1)
        return s_why (errno, "cannot list interfaces: %s", strerror (errno));
    int error = 0;
    const char *cursor = ifaces;
    while (!error) {
        size_t len = strcspn (cursor, ",");
        char name [IF_NAMESIZE];
        if (len == 0 || len >= sizeof name) {
            error = s_why (EINVAL, "bad interface name \"%.*s\" in \"%.64s\"",
                           (int) (len < 32? len: 32), cursor, ifaces);
            break;
        }
        memcpy (name, cursor, len);
        name [len] = 0;

        struct in_addr addr = { 0 }, bcast = { 0 };
        error = s_resolve (list, name, &addr, &bcast);
        if (error)
            break;
        unsigned int index = if_nametoindex (name);
        if (index == 0) {
            //  An alias label like eth0:1 has an address but no index
            error = s_why (ENODEV, "interface %s has no index", name);
            break;
        }
        //  The same interface twice would just send every beacon twice
        bool seen = false;
        for (size_t i = 0; i < self->iface_count; i++)
            seen |= self->ifindex [i] == index;
        if (!seen) {
            if (self->iface_count == S_MAX_IFACES) {
                error = s_why (E2BIG, "more than %d interfaces in \"%.64s\"",
                               S_MAX_IFACES, ifaces);
                break;
            }
            size_t i = self->iface_count++;
            self->ifindex [i] = index;
            self->target [i].sin_family = AF_INET;
            self->target [i].sin_port = htons (self->port);
            self->target [i].sin_addr = bcast;
            if (i == 0)
                inet_ntop (AF_INET, &addr, self->host, sizeof self->host);
        }
        cursor += len;
        if (*cursor == 0)
            break;
        cursor++;                       //  past the comma
    }
    freeifaddrs (list);
    return error;
}

mesh_beacon_t *
mesh_beacon_new (const char *ifaces, uint16_t port, const char **reason)
{
    //  Loopback mode is interface mode on lo: same code, same checks, so
    //  a namespace where lo is down fails with a clear reason.
    if (!ifaces || !*ifaces)
        ifaces = "lo";

    mesh_beacon_t *self = calloc (1, sizeof *self);
    if (!self)
        return s_fail (NULL, reason, s_why (ENOMEM, "out of memory"));
    self->fd = -1;
    self->port = port;
    if (port == 0)
        //  Every node must send to and listen on the same known port
        return s_fail (self, reason, s_why (EINVAL, "beacon port 0 is not valid"));

    int error = s_add_ifaces (self, ifaces);
    if (error)
        return s_fail (self, reason, error);

    self->fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (self->fd == -1)
        return s_fail (self, reason, s_why (errno, "cannot open UDP socket: %s",
                                            strerror (errno)));
    int on = 1;
    //  REUSEADDR and REUSEPORT: every node on the host binds the same port.
    //  BROADCAST: sends go to broadcast addresses. PKTINFO: arrival iface.
    if (setsockopt (self->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on)
    ||  setsockopt (self->fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on)
    ||  setsockopt (self->fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on)
    ||  setsockopt (self->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on))
        return s_fail (self, reason, s_why (errno, "cannot set UDP socket options: %s",
                                            strerror (errno)));

    //  Bound to the wildcard address: a socket bound to 127.0.0.1 or to an
    //  interface address would not receive datagrams sent to a broadcast
    //  address. Filtering by interface is done per datagram in recv.
    struct sockaddr_in any = {
        .sin_family = AF_INET,
        .sin_port = htons (port),
        .sin_addr.s_addr = htonl (INADDR_ANY)
    };
    if (bind (self->fd, (struct sockaddr *) &any, sizeof any) == -1)
        return s_fail (self, reason, s_why (errno, "cannot bind UDP port %u: %s",
                                            port, strerror (errno)));
    return self;
}

void
mesh_beacon_destroy (mesh_beacon_t **self_p)
{
    assert (self_p);
    mesh_beacon_t *self = *self_p;
    if (self) {
        if (self->fd != -1)
            close (self->fd);
        free (self);
        *self_p = NULL;
    }
}

int
mesh_beacon_fd (mesh_beacon_t *self)
{
    assert (self);
    return self->fd;
}

const char *
mesh_beacon_host (mesh_beacon_t *self)
{
    assert (self);
    return self->host;
}

int
mesh_beacon_send (mesh_beacon_t *self, const void *data, size_t size)
{
    assert (self);
    assert (data || size == 0);
    if (size > MESH_BEACON_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    //  Try every interface even when one fails (say it went down): the
    //  others still deserve their beacon. Report the failure all the same.
    int rc = 0;
    int error = 0;
    for (size_t i = 0; i < self->iface_count; i++) {
        ssize_t sent;
        do
            sent = sendto (self->fd, data, size, 0,
                           (struct sockaddr *) &self->target [i], sizeof self->target [i]);
        while (sent == -1 && errno == EINTR);
        if (sent == -1) {
            rc = -1;
            error = errno;
        }
    }
    if (rc == -1)
        errno = error;
    return rc;
}

ssize_t
mesh_beacon_recv (mesh_beacon_t *self, void *buf, size_t cap,
                  char *from, bool *foreign)
{
    assert (self);
    assert (buf || cap == 0);
    struct sockaddr_in source;
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    //  Aligned control buffer, big enough for one in_pktinfo
    union {
        struct cmsghdr align;
        char bytes [CMSG_SPACE (sizeof (struct in_pktinfo))];
    } control;
    struct msghdr msg = {
        .msg_name = &source,
        .msg_namelen = sizeof source,
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.bytes,
        .msg_controllen = sizeof control.bytes
    };
    ssize_t size;
    //  MSG_TRUNC: the kernel returns the real size of a datagram larger
    //  than cap (and discards the rest), so the caller can count it.
    do
        size = recvmsg (self->fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
    while (size == -1 && errno == EINTR);
    if (size == -1)
        return -1;

    //  No pktinfo means we cannot tell where it came from: not ours
    bool mine = false;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg); cmsg; cmsg = CMSG_NXTHDR (&msg, cmsg)) {
        if (cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo info;
            memcpy (&info, CMSG_DATA (cmsg), sizeof info);
            for (size_t i = 0; i < self->iface_count; i++)
                mine |= self->ifindex [i] == (unsigned int) info.ipi_ifindex;
        }
    }
    if (foreign)
        *foreign = !mine;
    if (from) {
        if (msg.msg_namelen >= sizeof source && source.sin_family == AF_INET)
            inet_ntop (AF_INET, &source.sin_addr, from, INET_ADDRSTRLEN);
        else
            from [0] = 0;
    }
    return size;
}
