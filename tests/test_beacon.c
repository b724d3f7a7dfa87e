/*  =========================================================================
    test_beacon - the beacon codec and the beacon socket

    Codec tests need nothing but memory. Socket tests use loopback only, on
    random high ports, and look for their own datagram by node id so that
    other tests running at the same time cannot confuse them. Two tests run
    this program again inside a fresh network namespace (`unshare -n`, root
    only): one whose only interface is lo, and one with a veth pair, where
    interface mode and foreign-interface filtering can be shown without
    sending a byte onto a real network.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <sodium.h>

#include "meshbus.h"
#include "mesh_beacon.h"

//  How long a socket test waits for a datagram that should come. Loopback
//  delivers in microseconds; this only bounds a test that is failing.
#define WAIT_MS     2000

//  The packet of docs/wire-beacon.md's worked example, and its bytes as
//  computed there by the Python reference code.
static const char *example_hex =
    "4d53484201009c40000102030405060708090a0b0c0d0e0f"
    "65fdbc8f722e60830000018bcfe56800"
    "010c3139322e3136382e312e3230"
    "020962696c6c696e672d31";

static mesh_beacon_packet_t
s_example_packet (void)
{
    mesh_beacon_packet_t pkt = {
        .flags = 0,
        .port = 40000,
        .incarnation = 1700000000000ULL,
        .host = "192.168.1.20",
        .name = "billing-1"
    };
    for (int i = 0; i < MESH_ID_SIZE; i++)
        pkt.id [i] = (uint8_t) i;
    mesh_beacon_cluster_tag ("meshbus", pkt.tag);
    return pkt;
}

static void
s_assert_packet_equal (const mesh_beacon_packet_t *a, const mesh_beacon_packet_t *b)
{
    assert_int_equal (a->flags, b->flags);
    assert_int_equal (a->port, b->port);
    assert_memory_equal (a->id, b->id, MESH_ID_SIZE);
    assert_memory_equal (a->tag, b->tag, MESH_BEACON_TAG_SIZE);
    assert_true (a->incarnation == b->incarnation);
    assert_string_equal (a->host, b->host);
    assert_string_equal (a->name, b->name);
    //  The MAC is not compared: encode never writes one (encode_signed does)
    assert_int_equal (a->has_key, b->has_key);
    if (a->has_key)
        assert_memory_equal (a->key, b->key, MESH_BEACON_KEY_SIZE);
    assert_int_equal (a->has_time, b->has_time);
    if (a->has_time)
        assert_true (a->time_ms == b->time_ms);
}

//  The signed example of docs/wire-beacon.md: the worked example with a
//  CURVE key 20 21 .. 3f, sent at 1700000000123 ms, under the secret
//  "correct horse battery staple". Bytes computed with the Python
//  reference code of the doc (hashlib.blake2b for the key, hmac for the
//  MAC), not with this C code.
#define PASSPHRASE  "correct horse battery staple"
#define SIGNED_TIME 1700000000123ULL
static const char *signed_hex =
    "4d53484201009c40000102030405060708090a0b0c0d0e0f"
    "65fdbc8f722e60830000018bcfe56800"
    "010c3139322e3136382e312e3230"
    "020962696c6c696e672d31"
    "0320202122232425262728292a2b2c2d2e2f"
    "303132333435363738393a3b3c3d3e3f"
    "04080000018bcfe5687b"
    "052015f504af5670aa49225daca85a08ec5f"
    "bf1efbb3ae783dec31619d2bb9026fce";

static mesh_beacon_packet_t
s_signed_packet (void)
{
    mesh_beacon_packet_t pkt = s_example_packet ();
    pkt.has_key = true;
    for (int i = 0; i < MESH_BEACON_KEY_SIZE; i++)
        pkt.key [i] = (uint8_t) (32 + i);
    pkt.time_ms = SIGNED_TIME;
    return pkt;
}

static mesh_secret_t
s_secret (const char *text)
{
    mesh_secret_t secret;
    assert_int_equal (mesh_secret_from_bytes (&secret, text, strlen (text)), 0);
    return secret;
}


//  --------------------------------------------------------------------------
//  Codec

//  The usage example: what the node does every beacon interval, and what
//  it does with every datagram it receives.
static void
test_usage_example (void **state)
{
    (void) state;
    mesh_beacon_packet_t out = { .port = 41234, .incarnation = 7 };
    randombytes_buf (out.id, sizeof out.id);
    mesh_beacon_cluster_tag ("billing", out.tag);
    strcpy (out.host, "10.0.0.5");
    strcpy (out.name, "invoice-worker");

    uint8_t datagram [MESH_BEACON_MAX];
    size_t size = mesh_beacon_encode (&out, datagram, sizeof datagram);
    assert_int_equal (size, MESH_BEACON_HEAD + 2 + 8 + 2 + 14);

    mesh_beacon_packet_t in;
    assert_int_equal (mesh_beacon_decode (&in, datagram, size), MESH_BEACON_OK);
    s_assert_packet_equal (&in, &out);
}

static void
test_round_trip (void **state)
{
    (void) state;
    mesh_beacon_packet_t cases [5];
    memset (cases, 0, sizeof cases);
    //  0: no TLVs at all
    //  1: every field at its largest, texts at their longest
    cases [1].flags = 0xff;
    cases [1].port = 65535;
    cases [1].incarnation = UINT64_MAX;
    memset (cases [1].id, 0xff, MESH_ID_SIZE);
    memset (cases [1].tag, 0xff, MESH_BEACON_TAG_SIZE);
    memset (cases [1].host, 'h', MESH_BEACON_TEXT_MAX);
    memset (cases [1].name, 'n', MESH_BEACON_TEXT_MAX);
    //  2: LEAVING, host only; 3: name only, UTF-8; 4: the worked example
    cases [2].flags = MESH_BEACON_FLAG_LEAVING;
    cases [2].port = 1;
    strcpy (cases [2].host, "192.0.2.200");
    strcpy (cases [3].name, "caf\xc3\xa9");
    cases [4] = s_example_packet ();

    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        uint8_t buf [MESH_BEACON_MAX];
        size_t size = mesh_beacon_encode (&cases [i], buf, sizeof buf);
        size_t host_len = strlen (cases [i].host);
        size_t name_len = strlen (cases [i].name);
        assert_int_equal (size, MESH_BEACON_HEAD + (host_len? 2 + host_len: 0)
                                                 + (name_len? 2 + name_len: 0));
        mesh_beacon_packet_t back;
        assert_int_equal (mesh_beacon_decode (&back, buf, size), MESH_BEACON_OK);
        s_assert_packet_equal (&back, &cases [i]);
    }
}

//  The bytes are the ones docs/wire-beacon.md shows and Python computed
static void
test_encode_matches_documented_bytes (void **state)
{
    (void) state;
    mesh_beacon_packet_t pkt = s_example_packet ();
    uint8_t buf [MESH_BEACON_MAX];
    size_t size = mesh_beacon_encode (&pkt, buf, sizeof buf);

    uint8_t expect [MESH_BEACON_MAX];
    size_t expect_size;
    assert_int_equal (sodium_hex2bin (expect, sizeof expect, example_hex,
                                      strlen (example_hex), NULL, &expect_size, NULL), 0);
    assert_int_equal (size, expect_size);
    assert_memory_equal (buf, expect, size);
}

static void
test_encode_refuses_what_does_not_fit (void **state)
{
    (void) state;
    mesh_beacon_packet_t pkt = s_example_packet ();
    uint8_t buf [MESH_BEACON_MAX];
    size_t need = mesh_beacon_encode (&pkt, buf, sizeof buf);
    for (size_t cap = 0; cap < need; cap++)
        assert_int_equal (mesh_beacon_encode (&pkt, buf, cap), 0);
    assert_int_equal (mesh_beacon_encode (&pkt, buf, need), need);

    //  A caller's text with no NUL in the array is too long, not read past
    memset (pkt.name, 'x', sizeof pkt.name);
    assert_int_equal (mesh_beacon_encode (&pkt, buf, sizeof buf), 0);
}

//  One garbage datagram: a valid head (the worked example's), then tail,
//  then one head byte patched; size -1 means head + tail, else exactly
//  size bytes (zeros past the tail: a zero byte pair is an empty TLV of
//  unknown type 0, which is valid).
typedef struct {
    const char *what;
    const char *tail;
    size_t tail_size;
    int patch_at;               //  -1: no patch
    uint8_t patch;
    int size;
    int expect;
    const char *name;           //  expected name when OK, NULL: not checked
} garbage_t;

#define TAIL(s)     s, sizeof (s) - 1
#define NO_TAIL     NULL, 0
#define TEXT64      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define KEY32       "0123456789abcdef0123456789abcdef"
#define KEY31       "0123456789abcdef0123456789abcde"

static const garbage_t garbage [] = {
    { "empty", NO_TAIL, -1, 0, 0, MESH_BEACON_MALFORMED, NULL },
    { "one byte", NO_TAIL, -1, 0, 1, MESH_BEACON_MALFORMED, NULL },
    { "magic only", NO_TAIL, -1, 0, 4, MESH_BEACON_MALFORMED, NULL },
    { "39 bytes", NO_TAIL, -1, 0, 39, MESH_BEACON_MALFORMED, NULL },
    { "39 bytes, version 2", NO_TAIL, 4, 2, 39, MESH_BEACON_MALFORMED, NULL },
    { "head only", NO_TAIL, -1, 0, -1, MESH_BEACON_OK, "" },
    { "512 bytes of empty TLVs", NO_TAIL, -1, 0, 512, MESH_BEACON_OK, "" },
    { "513 bytes", NO_TAIL, -1, 0, 513, MESH_BEACON_MALFORMED, NULL },
    { "513 bytes, good NAME", TAIL ("\x02\x02ok"), -1, 0, 513, MESH_BEACON_MALFORMED, NULL },
    { "511 bytes: dangling type byte", NO_TAIL, -1, 0, 511, MESH_BEACON_MALFORMED, NULL },
    { "bad magic MSHA", NO_TAIL, 3, 'A', -1, MESH_BEACON_MALFORMED, NULL },
    { "bad magic mSHB", NO_TAIL, 0, 'm', -1, MESH_BEACON_MALFORMED, NULL },
    { "bad magic and version 2", NO_TAIL, 0, 'Z', -1, MESH_BEACON_MALFORMED, NULL },
    { "version 0", NO_TAIL, 4, 0, -1, MESH_BEACON_BAD_VERSION, NULL },
    { "version 2", NO_TAIL, 4, 2, -1, MESH_BEACON_BAD_VERSION, NULL },
    { "version 255", NO_TAIL, 4, 255, -1, MESH_BEACON_BAD_VERSION, NULL },
    { "version 2 with bad TLVs", TAIL ("\x02\xff"), 4, 2, -1, MESH_BEACON_BAD_VERSION, NULL },
    { "unknown flag bits", NO_TAIL, 5, 0xfe, -1, MESH_BEACON_OK, "" },
    { "TLV type byte only", TAIL ("\x02"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "TLV length past end by one", TAIL ("\x02\x04" "abc"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "TLV length 255, 3 bytes", TAIL ("\xc8\xff" "abc"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "good NAME then trailing byte", TAIL ("\x02\x02ok\x07"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "NAME of 64 bytes", TAIL ("\x02\x40" TEXT64), -1, 0, -1, MESH_BEACON_OK, TEXT64 },
    { "NAME of 65 bytes", TAIL ("\x02\x41" TEXT64 "x"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "HOST of 65 bytes", TAIL ("\x01\x41" TEXT64 "x"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "NAME with NUL inside", TAIL ("\x02\x05" "ab\0cd"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "HOST with trailing NUL", TAIL ("\x01\x08" "1.2.3.4\0"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "NAME twice", TAIL ("\x02\x01" "a" "\x02\x01" "b"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "HOST twice, once empty", TAIL ("\x01\x00" "\x01\x01" "b"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "empty NAME", TAIL ("\x02\x00"), -1, 0, -1, MESH_BEACON_OK, "" },
    { "unknown type skipped", TAIL ("\xc8\x03" "xyz" "\x02\x02ok"), -1, 0, -1, MESH_BEACON_OK, "ok" },
    { "empty unknown TLV", TAIL ("\x00\x00" "\x02\x02ok"), -1, 0, -1, MESH_BEACON_OK, "ok" },
    { "unknown type of 255 bytes", TAIL ("\xc8\xff"), -1, 0, MESH_BEACON_HEAD + 257, MESH_BEACON_OK, "" },
    { "unknown type of 255, one short", TAIL ("\xc8\xff"), -1, 0, MESH_BEACON_HEAD + 256,
      MESH_BEACON_MALFORMED, NULL },
    { "KEY, TIME, MAC, then NAME (decodes; verify refuses)",
      TAIL ("\x03\x20" KEY32
            "\x04\x08" "\0\0\1\x8b\xcf\xe5\x68\0"
            "\x05\x20" KEY32
            "\x02\x02ok"), -1, 0, -1, MESH_BEACON_OK, "ok" },
    { "KEY past end", TAIL ("\x03\x20" "0123"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "KEY empty", TAIL ("\x03\x00"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "KEY of 31 bytes", TAIL ("\x03\x1f" KEY31), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "KEY of 33 bytes", TAIL ("\x03\x21" KEY32 "x"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "KEY twice", TAIL ("\x03\x20" KEY32 "\x03\x20" KEY32), -1, 0, -1,
      MESH_BEACON_MALFORMED, NULL },
    { "TIME empty", TAIL ("\x04\x00"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "TIME of 7 bytes", TAIL ("\x04\x07" "1234567"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "TIME of 9 bytes", TAIL ("\x04\x09" "123456789"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "TIME twice", TAIL ("\x04\x08" "12345678" "\x04\x08" "12345678"), -1, 0, -1,
      MESH_BEACON_MALFORMED, NULL },
    { "TIME past end", TAIL ("\x04\x08" "1234"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "MAC empty", TAIL ("\x05\x00"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "MAC of 31 bytes", TAIL ("\x05\x1f" KEY31), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "MAC of 33 bytes", TAIL ("\x05\x21" KEY32 "x"), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "MAC twice", TAIL ("\x05\x20" KEY32 "\x05\x20" KEY32), -1, 0, -1,
      MESH_BEACON_MALFORMED, NULL },
    { "MAC past end", TAIL ("\x05\x20" KEY31), -1, 0, -1, MESH_BEACON_MALFORMED, NULL },
    { "KEY, TIME, MAC in any order", TAIL ("\x05\x20" KEY32 "\x04\x08" "12345678"
                                           "\x03\x20" KEY32 "\x02\x02ok"), -1, 0, -1,
      MESH_BEACON_OK, "ok" },
};

static void
test_garbage_table (void **state)
{
    (void) state;
    mesh_beacon_packet_t valid = s_example_packet ();
    valid.host [0] = valid.name [0] = 0;
    for (size_t i = 0; i < sizeof garbage / sizeof garbage [0]; i++) {
        const garbage_t *g = &garbage [i];
        uint8_t buf [MESH_BEACON_MAX + 64];
        memset (buf, 0, sizeof buf);
        assert_int_equal (mesh_beacon_encode (&valid, buf, sizeof buf), MESH_BEACON_HEAD);
        if (g->tail)
            memcpy (buf + MESH_BEACON_HEAD, g->tail, g->tail_size);
        if (g->patch_at >= 0)
            buf [g->patch_at] = g->patch;
        size_t size = g->size >= 0? (size_t) g->size: MESH_BEACON_HEAD + g->tail_size;
        assert_true (size <= sizeof buf);

        mesh_beacon_packet_t pkt;
        memset (&pkt, 0xaa, sizeof pkt);
        int rc = mesh_beacon_decode (&pkt, buf, size);
        if (rc != g->expect)
            fail_msg ("garbage #%zu \"%s\": rc %d, expected %d", i, g->what, rc, g->expect);
        if (rc == MESH_BEACON_OK) {
            assert_int_equal (pkt.port, valid.port);
            assert_memory_equal (pkt.id, valid.id, MESH_ID_SIZE);
            if (g->name)
                assert_string_equal (pkt.name, g->name);
        }
        else {
            //  A failed decode leaves nothing half-filled behind
            mesh_beacon_packet_t zero;
            memset (&zero, 0, sizeof zero);
            assert_memory_equal (&pkt, &zero, sizeof pkt);
        }
    }
    //  NULL data is malformed input, not a crash
    mesh_beacon_packet_t pkt;
    assert_int_equal (mesh_beacon_decode (&pkt, NULL, 0), MESH_BEACON_MALFORMED);
    assert_true (sizeof garbage / sizeof garbage [0] >= 20);
}

//  xorshift64*: the same sequence on every run, so a failure reproduces
static uint64_t
s_next (uint64_t *seed)
{
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    return *seed * 0x2545F4914F6CDD1DULL;
}

//  Random bytes never crash the decoder, and whatever it accepts encodes
//  back to a packet it decodes the same way. Half the inputs start with a
//  valid head, so the TLV walk sees random input too.
static void
test_random_bytes (void **state)
{
    (void) state;
    uint64_t seed = 0x6d65736862757321ULL;
    mesh_beacon_packet_t example = s_example_packet ();
    uint8_t head [MESH_BEACON_HEAD];
    example.host [0] = example.name [0] = 0;
    mesh_beacon_encode (&example, head, sizeof head);

    size_t ok = 0;
    for (int i = 0; i < 200000; i++) {
        uint8_t buf [MESH_BEACON_MAX + 16];
        size_t size = (size_t) (s_next (&seed) % sizeof buf);
        for (size_t at = 0; at < size; at++)
            buf [at] = (uint8_t) s_next (&seed);
        if (i % 2 && size >= MESH_BEACON_HEAD)
            memcpy (buf, head, MESH_BEACON_HEAD);
        mesh_beacon_packet_t pkt;
        int rc = mesh_beacon_decode (&pkt, buf, size);
        assert_true (rc == MESH_BEACON_OK || rc == MESH_BEACON_MALFORMED
                  || rc == MESH_BEACON_BAD_VERSION);
        if (rc == MESH_BEACON_OK) {
            ok++;
            uint8_t again [MESH_BEACON_MAX];
            size_t again_size = mesh_beacon_encode (&pkt, again, sizeof again);
            assert_true (again_size >= MESH_BEACON_HEAD);
            mesh_beacon_packet_t back;
            assert_int_equal (mesh_beacon_decode (&back, again, again_size), MESH_BEACON_OK);
            s_assert_packet_equal (&back, &pkt);
        }
    }
    //  Without some accepted inputs the round trip above tested nothing
    assert_true (ok > 0);
}

//  Every prefix of a valid datagram: shorter than the head or cut inside
//  a TLV is malformed; cut exactly between TLVs is a valid, shorter beacon.
static void
test_truncation (void **state)
{
    (void) state;
    mesh_beacon_packet_t pkt = s_example_packet ();
    uint8_t buf [MESH_BEACON_MAX];
    size_t size = mesh_beacon_encode (&pkt, buf, sizeof buf);
    size_t host_end = MESH_BEACON_HEAD + 2 + strlen (pkt.host);
    for (size_t cut = 0; cut <= size; cut++) {
        mesh_beacon_packet_t back;
        int rc = mesh_beacon_decode (&back, buf, cut);
        if (cut == MESH_BEACON_HEAD || cut == host_end || cut == size) {
            assert_int_equal (rc, MESH_BEACON_OK);
            assert_string_equal (back.host, cut >= host_end? pkt.host: "");
            assert_string_equal (back.name, cut == size? pkt.name: "");
        }
        else
            assert_int_equal (rc, MESH_BEACON_MALFORMED);
    }
}

static void
test_cluster_tag (void **state)
{
    (void) state;
    uint8_t a [MESH_BEACON_TAG_SIZE], b [MESH_BEACON_TAG_SIZE];
    mesh_beacon_cluster_tag ("billing", a);
    mesh_beacon_cluster_tag ("billing", b);
    assert_memory_equal (a, b, sizeof a);

    const char *others [] = { "Billing", "billing ", "shipping", "", "meshbus" };
    for (size_t i = 0; i < sizeof others / sizeof others [0]; i++) {
        mesh_beacon_cluster_tag (others [i], b);
        assert_memory_not_equal (a, b, sizeof a);
    }
    //  NULL is the default cluster; the value is Python's
    //  hashlib.blake2b (b"meshbus", digest_size=8), as the doc says
    mesh_beacon_cluster_tag (NULL, a);
    mesh_beacon_cluster_tag (MESH_DEFAULT_CLUSTER, b);
    assert_memory_equal (a, b, sizeof a);
    assert_memory_equal (a, "\x65\xfd\xbc\x8f\x72\x2e\x60\x83", sizeof a);
}


//  --------------------------------------------------------------------------
//  Security TLVs: KEY, TIME, MAC

static void
test_round_trip_key_time (void **state)
{
    (void) state;
    uint64_t times [] = { 0, 1, SIGNED_TIME, UINT64_MAX };
    for (size_t i = 0; i < sizeof times / sizeof times [0]; i++) {
        for (int with = 0; with < 4; with++) {
            mesh_beacon_packet_t pkt = s_example_packet ();
            if (with & 1) {
                pkt.has_key = true;
                randombytes_buf (pkt.key, sizeof pkt.key);
            }
            if (with & 2) {
                pkt.has_time = true;
                pkt.time_ms = times [i];
            }
            else
                pkt.time_ms = 12345;    //  not sent: decodes as 0
            uint8_t buf [MESH_BEACON_MAX];
            size_t size = mesh_beacon_encode (&pkt, buf, sizeof buf);
            assert_int_equal (size, 65 + (with & 1? 34: 0) + (with & 2? 10: 0));
            mesh_beacon_packet_t back;
            assert_int_equal (mesh_beacon_decode (&back, buf, size), MESH_BEACON_OK);
            s_assert_packet_equal (&back, &pkt);
            assert_false (back.has_mac);
            if (!(with & 2))
                assert_true (back.time_ms == 0);
        }
    }
    //  has_mac alone does not make encode write a MAC
    mesh_beacon_packet_t pkt = s_example_packet ();
    pkt.has_mac = true;
    memset (pkt.mac, 0x11, sizeof pkt.mac);
    uint8_t buf [MESH_BEACON_MAX];
    assert_int_equal (mesh_beacon_encode (&pkt, buf, sizeof buf), 65);
}

//  The C encoder produces the bytes the Python reference computed, and a
//  decode of them gives back every field and verifies
static void
test_signed_matches_documented_bytes (void **state)
{
    (void) state;
    mesh_secret_t secret = s_secret (PASSPHRASE);
    mesh_beacon_packet_t pkt = s_signed_packet ();
    uint8_t buf [MESH_BEACON_MAX];
    size_t size = mesh_beacon_encode_signed (&pkt, &secret, buf, sizeof buf);

    uint8_t expect [MESH_BEACON_MAX];
    size_t expect_size;
    assert_int_equal (sodium_hex2bin (expect, sizeof expect, signed_hex,
                                      strlen (signed_hex), NULL, &expect_size, NULL), 0);
    assert_int_equal (expect_size, 143);
    assert_int_equal (size, expect_size);
    assert_memory_equal (buf, expect, size);

    mesh_beacon_packet_t back;
    assert_int_equal (mesh_beacon_decode (&back, buf, size), MESH_BEACON_OK);
    pkt.has_time = true;
    s_assert_packet_equal (&back, &pkt);
    assert_true (back.has_mac);
    assert_int_equal (back.mac_offset, size - MESH_BEACON_MAC_TLV);
    assert_memory_equal (back.mac, buf + size - MESH_MAC_SIZE, MESH_MAC_SIZE);
    assert_true (mesh_beacon_verify (&back, &secret, buf, size));
}

static void
test_signed_verify (void **state)
{
    (void) state;
    mesh_secret_t secret = s_secret (PASSPHRASE);
    mesh_secret_t other = s_secret (PASSPHRASE "\n");

    //  As a node sends and checks: time from the clock, no key (no CURVE)
    mesh_beacon_packet_t out = s_example_packet ();
    out.time_ms = mesh_secret_now_ms ();
    uint8_t buf [MESH_BEACON_MAX];
    size_t size = mesh_beacon_encode_signed (&out, &secret, buf, sizeof buf);
    assert_int_equal (size, 65 + 10 + MESH_BEACON_MAC_TLV);
    mesh_beacon_packet_t in;
    assert_int_equal (mesh_beacon_decode (&in, buf, size), MESH_BEACON_OK);
    assert_true (mesh_beacon_verify (&in, &secret, buf, size));
    assert_true (in.has_time && in.time_ms == out.time_ms);
    assert_true (mesh_secret_fresh (in.time_ms, mesh_secret_now_ms ()));
    assert_false (in.has_key);

    //  Another secret (the same passphrase with a newline) fails
    assert_false (mesh_beacon_verify (&in, &other, buf, size));

    //  A packet without MAC never verifies
    mesh_beacon_packet_t plain = s_example_packet ();
    plain.has_time = true;
    size_t plain_size = mesh_beacon_encode (&plain, buf, sizeof buf);
    assert_int_equal (mesh_beacon_decode (&in, buf, plain_size), MESH_BEACON_OK);
    assert_false (in.has_mac);
    assert_false (mesh_beacon_verify (&in, &secret, buf, plain_size));

    //  Sizes that disagree with the decoded packet, and NULL data, are "no"
    size = mesh_beacon_encode_signed (&out, &secret, buf, sizeof buf);
    assert_int_equal (mesh_beacon_decode (&in, buf, size), MESH_BEACON_OK);
    for (size_t cut = 0; cut < size; cut++)
        assert_false (mesh_beacon_verify (&in, &secret, buf, cut));
    assert_false (mesh_beacon_verify (&in, &secret, NULL, size));
    mesh_beacon_packet_t lying = in;
    lying.mac_offset = SIZE_MAX - 10;
    assert_false (mesh_beacon_verify (&lying, &secret, buf, size));
    lying.mac_offset = 0;
    assert_false (mesh_beacon_verify (&lying, &secret, buf, size));
    assert_true (mesh_beacon_verify (&in, &secret, buf, size));

    //  Signing too into too small a buffer: 0, at every size short of it
    for (size_t cap = 0; cap < size; cap++)
        assert_int_equal (mesh_beacon_encode_signed (&out, &secret, buf, cap), 0);
}

//  Any single byte changed, to any of a few values: the datagram is either
//  no longer a beacon or no longer verifies. Also every prefix.
static void
test_signed_every_byte_matters (void **state)
{
    (void) state;
    mesh_secret_t secret = s_secret (PASSPHRASE);
    mesh_beacon_packet_t pkt = s_signed_packet ();
    uint8_t good [MESH_BEACON_MAX];
    size_t size = mesh_beacon_encode_signed (&pkt, &secret, good, sizeof good);
    assert_true (size > 0);
    const uint8_t flips [] = { 0x01, 0x02, 0x10, 0x80, 0xff };
    size_t decoded = 0;
    for (size_t at = 0; at < size; at++) {
        for (size_t f = 0; f < sizeof flips; f++) {
            uint8_t buf [MESH_BEACON_MAX];
            memcpy (buf, good, size);
            buf [at] ^= flips [f];
            mesh_beacon_packet_t in;
            if (mesh_beacon_decode (&in, buf, size) == MESH_BEACON_OK) {
                decoded++;
                if (mesh_beacon_verify (&in, &secret, buf, size))
                    fail_msg ("byte %zu ^ 0x%02x still verifies", at, flips [f]);
            }
        }
    }
    //  Most changes leave a decodable beacon: the MAC is what refuses them
    assert_true (decoded > size);
    for (size_t cut = 0; cut < size; cut++) {
        mesh_beacon_packet_t in;
        if (mesh_beacon_decode (&in, good, cut) == MESH_BEACON_OK)
            assert_false (mesh_beacon_verify (&in, &secret, good, cut));
    }
}

//  A correct MAC that is not the last TLV: whatever follows is unsigned,
//  so the beacon does not verify even though the MAC itself is right
static void
test_mac_must_be_last (void **state)
{
    (void) state;
    mesh_secret_t secret = s_secret (PASSPHRASE);
    mesh_beacon_packet_t pkt = s_signed_packet ();
    uint8_t buf [MESH_BEACON_MAX];
    size_t size = mesh_beacon_encode_signed (&pkt, &secret, buf, sizeof buf);

    //  Anything appended after the MAC, here TLVs the decoder accepts: an
    //  empty one of type 0, one of unknown type 200
    const char *tails [] = { "\0\0", "\xc8\x01x" };
    const size_t tail_sizes [] = { 2, 3 };
    for (size_t i = 0; i < 2; i++) {
        uint8_t longer [MESH_BEACON_MAX];
        memcpy (longer, buf, size);
        memcpy (longer + size, tails [i], tail_sizes [i]);
        mesh_beacon_packet_t in;
        assert_int_equal (mesh_beacon_decode (&in, longer, size + tail_sizes [i]), MESH_BEACON_OK);
        assert_true (in.has_mac);
        assert_false (mesh_beacon_verify (&in, &secret, longer, size + tail_sizes [i]));
    }

    //  A MAC correctly computed over what precedes it, then TIME after it
    mesh_beacon_packet_t early = s_example_packet ();
    size_t at = mesh_beacon_encode (&early, buf, sizeof buf);
    buf [at] = MESH_BEACON_TLV_MAC;
    buf [at + 1] = MESH_MAC_SIZE;
    mesh_secret_mac (&secret, buf, at, buf + at + 2);
    at += MESH_BEACON_MAC_TLV;
    memcpy (buf + at, "\x04\x08" "\0\0\1\x8b\xcf\xe5\x68\x7b", 10);
    at += 10;
    mesh_beacon_packet_t in;
    assert_int_equal (mesh_beacon_decode (&in, buf, at), MESH_BEACON_OK);
    assert_true (in.has_mac && in.has_time);
    assert_int_equal (in.mac_offset, 65);
    assert_false (mesh_beacon_verify (&in, &secret, buf, at));
    //  Cut after the MAC, the same bytes verify: the MAC was right
    assert_int_equal (mesh_beacon_decode (&in, buf, 65 + MESH_BEACON_MAC_TLV), MESH_BEACON_OK);
    assert_true (mesh_beacon_verify (&in, &secret, buf, 65 + MESH_BEACON_MAC_TLV));
}

//  The largest beacon there is (HOST and NAME of 64 bytes, KEY, TIME,
//  MAC) fits in a datagram, signed and verified
static void
test_full_size_packet_fits (void **state)
{
    (void) state;
    mesh_secret_t secret = s_secret (PASSPHRASE);
    mesh_beacon_packet_t pkt = s_signed_packet ();
    memset (pkt.host, 'h', MESH_BEACON_TEXT_MAX);
    pkt.host [MESH_BEACON_TEXT_MAX] = 0;
    memset (pkt.name, 'n', MESH_BEACON_TEXT_MAX);
    pkt.name [MESH_BEACON_TEXT_MAX] = 0;
    pkt.flags = 0xff;
    pkt.has_time = true;        //  encode_signed sends TIME either way
    pkt.time_ms = UINT64_MAX;

    uint8_t buf [MESH_BEACON_MAX];
    size_t size = mesh_beacon_encode_signed (&pkt, &secret, buf, sizeof buf);
    size_t largest = MESH_BEACON_HEAD + 2 * (2 + MESH_BEACON_TEXT_MAX)
                   + 2 + MESH_BEACON_KEY_SIZE + 2 + MESH_BEACON_TIME_SIZE
                   + MESH_BEACON_MAC_TLV;
    assert_int_equal (size, largest);
    assert_int_equal (size, 250);
    assert_true (size <= MESH_BEACON_MAX);
    mesh_beacon_packet_t in;
    assert_int_equal (mesh_beacon_decode (&in, buf, size), MESH_BEACON_OK);
    s_assert_packet_equal (&in, &pkt);
    assert_true (mesh_beacon_verify (&in, &secret, buf, size));
}


//  --------------------------------------------------------------------------
//  Socket helpers

static uint16_t
s_random_port (void)
{
    return (uint16_t) (20000 + randombytes_uniform (40000));
}

//  Opens count beacons on ifaces[i] (NULL: loopback), all on one random
//  port not used by anything that refuses to share it. Returns the port.
static uint16_t
s_open_on_one_port (mesh_beacon_t **beacons, const char **ifaces, size_t count)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        uint16_t port = s_random_port ();
        size_t opened = 0;
        while (opened < count) {
            const char *reason = NULL;
            beacons [opened] = mesh_beacon_new (ifaces? ifaces [opened]: NULL, port, &reason);
            if (!beacons [opened]) {
                if (errno != EADDRINUSE)
                    fail_msg ("mesh_beacon_new: %s", reason);
                break;
            }
            opened++;
        }
        if (opened == count)
            return port;
        while (opened)
            mesh_beacon_destroy (&beacons [--opened]);
    }
    fail_msg ("no free UDP port after 50 tries");
    return 0;
}

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A beacon datagram carrying a fresh random id, which names it
static size_t
s_make_beacon (uint8_t *buf, uint8_t *id, const char *name)
{
    mesh_beacon_packet_t pkt = { .port = 5555, .incarnation = 1 };
    randombytes_buf (pkt.id, sizeof pkt.id);
    memcpy (id, pkt.id, MESH_ID_SIZE);
    mesh_beacon_cluster_tag (NULL, pkt.tag);
    snprintf (pkt.name, sizeof pkt.name, "%s", name);
    return mesh_beacon_encode (&pkt, buf, MESH_BEACON_MAX);
}

//  Waits up to WAIT_MS for the beacon whose id is id; other datagrams
//  (another test on the same port) are skipped. When stop_id is given,
//  gives up as soon as that beacon arrives instead. Returns true if id came.
static bool
s_wait_for (mesh_beacon_t *beacon, const uint8_t *id, const uint8_t *stop_id,
            bool *foreign, char *from)
{
    int64_t deadline = s_now_ms () + WAIT_MS;
    while (true) {
        int64_t left = deadline - s_now_ms ();
        if (left <= 0)
            return false;
        struct pollfd item = { .fd = mesh_beacon_fd (beacon), .events = POLLIN };
        if (poll (&item, 1, (int) left) <= 0)
            continue;
        uint8_t buf [MESH_BEACON_MAX];
        char source [INET_ADDRSTRLEN];
        bool other;
        ssize_t size = mesh_beacon_recv (beacon, buf, sizeof buf, source, &other);
        if (size < 0)
            continue;
        mesh_beacon_packet_t pkt;
        if (mesh_beacon_decode (&pkt, buf, (size_t) size) != MESH_BEACON_OK)
            continue;
        if (memcmp (pkt.id, id, MESH_ID_SIZE) == 0) {
            if (foreign)
                *foreign = other;
            if (from)
                strcpy (from, source);
            return true;
        }
        if (stop_id && memcmp (pkt.id, stop_id, MESH_ID_SIZE) == 0)
            return false;
    }
}

static void
s_drain (mesh_beacon_t *beacon)
{
    uint8_t buf [MESH_BEACON_MAX];
    while (mesh_beacon_recv (beacon, buf, sizeof buf, NULL, NULL) >= 0)
        ;
}

//  Two loopback beacons on one port hear each other and themselves; a
//  third on another port hears neither. The body of this test is also what
//  the namespace child runs, where lo is the only interface.
static void
s_two_beacons_share_a_port (void)
{
    mesh_beacon_t *pair [2];
    uint16_t port = s_open_on_one_port (pair, NULL, 2);
    mesh_beacon_t *other;
    uint16_t other_port = s_open_on_one_port (&other, NULL, 1);
    while (other_port == port) {
        mesh_beacon_destroy (&other);
        other_port = s_open_on_one_port (&other, NULL, 1);
    }

    assert_string_equal (mesh_beacon_host (pair [0]), "127.0.0.1");
    for (int sender = 0; sender < 2; sender++) {
        uint8_t buf [MESH_BEACON_MAX], id [MESH_ID_SIZE];
        size_t size = s_make_beacon (buf, id, sender? "b": "a");
        assert_int_equal (mesh_beacon_send (pair [sender], buf, size), 0);
        for (int receiver = 0; receiver < 2; receiver++) {
            bool foreign = true;
            char from [INET_ADDRSTRLEN] = "";
            assert_true (s_wait_for (pair [receiver], id, NULL, &foreign, from));
            assert_false (foreign);
            assert_string_equal (from, "127.0.0.1");
        }
        //  The other port gets a marker sent after the beacon; it must see
        //  the marker without having seen the beacon first.
        mesh_beacon_t *marker_sender;
        const char *reason;
        marker_sender = mesh_beacon_new (NULL, other_port, &reason);
        assert_non_null (marker_sender);
        uint8_t marker [MESH_BEACON_MAX], marker_id [MESH_ID_SIZE];
        size_t marker_size = s_make_beacon (marker, marker_id, "marker");
        assert_int_equal (mesh_beacon_send (marker_sender, marker, marker_size), 0);
        assert_false (s_wait_for (other, id, marker_id, NULL, NULL));
        mesh_beacon_destroy (&marker_sender);
        s_drain (other);
    }
    mesh_beacon_destroy (&pair [0]);
    mesh_beacon_destroy (&pair [1]);
    mesh_beacon_destroy (&other);
    assert_null (other);
    mesh_beacon_destroy (&other);       //  safe twice
}


//  --------------------------------------------------------------------------
//  Socket tests

static void
test_loopback_beacons_share_a_port (void **state)
{
    (void) state;
    s_two_beacons_share_a_port ();
}

//  A datagram longer than the buffer is consumed whole and reported with
//  its real size, so the node can count it malformed; then nothing waits.
static void
test_recv_reports_real_size (void **state)
{
    (void) state;
    mesh_beacon_t *beacon;
    s_open_on_one_port (&beacon, NULL, 1);
    uint8_t big [300];
    randombytes_buf (big, sizeof big);      //  its first bytes name it
    assert_int_equal (mesh_beacon_send (beacon, big, sizeof big), 0);

    int64_t deadline = s_now_ms () + WAIT_MS;
    ssize_t got = -1;
    uint8_t small [100];
    while (s_now_ms () < deadline) {
        struct pollfd item = { .fd = mesh_beacon_fd (beacon), .events = POLLIN };
        poll (&item, 1, 100);
        memset (small, 0, sizeof small);
        got = mesh_beacon_recv (beacon, small, sizeof small, NULL, NULL);
        if (got == (ssize_t) sizeof big && memcmp (small, big, sizeof small) == 0)
            break;
    }
    assert_int_equal (got, sizeof big);
    s_drain (beacon);
    errno = 0;
    assert_int_equal (mesh_beacon_recv (beacon, small, sizeof small, NULL, NULL), -1);
    assert_true (errno == EAGAIN || errno == EWOULDBLOCK);

    //  Sending more than a beacon may hold is refused before the network
    uint8_t huge [MESH_BEACON_MAX + 1] = { 0 };
    assert_int_equal (mesh_beacon_send (beacon, huge, sizeof huge), -1);
    assert_int_equal (errno, EMSGSIZE);
    mesh_beacon_destroy (&beacon);
}

static void
test_bad_arguments_fail_with_reason (void **state)
{
    (void) state;
    const char *reason = NULL;
    errno = 0;
    mesh_beacon_t *beacon = mesh_beacon_new ("no-such-iface0", s_random_port (), &reason);
    assert_null (beacon);
    assert_int_equal (errno, ENODEV);
    assert_non_null (reason);
    assert_non_null (strstr (reason, "no-such-iface0"));
    print_message ("    reason: %s\n", reason);

    //  The second name is checked too, not only the first
    reason = NULL;
    assert_null (mesh_beacon_new ("lo,no-such-iface1", s_random_port (), &reason));
    assert_non_null (strstr (reason, "no-such-iface1"));

    reason = NULL;
    assert_null (mesh_beacon_new ("lo,,lo", s_random_port (), &reason));
    assert_int_equal (errno, EINVAL);
    assert_non_null (reason);

    reason = NULL;
    assert_null (mesh_beacon_new ("an-interface-name-longer-than-ifnamsiz",
                                  s_random_port (), &reason));
    assert_non_null (reason);

    reason = NULL;
    assert_null (mesh_beacon_new (NULL, 0, &reason));
    assert_int_equal (errno, EINVAL);
    assert_non_null (strstr (reason, "port"));

    //  reason is optional
    assert_null (mesh_beacon_new ("no-such-iface0", s_random_port (), NULL));
}

//  "", "lo" and NULL all mean loopback mode
static void
test_loopback_spellings (void **state)
{
    (void) state;
    const char *spellings [] = { NULL, "", "lo", "lo,lo" };
    mesh_beacon_t *beacons [4];
    s_open_on_one_port (beacons, spellings, 4);
    uint8_t buf [MESH_BEACON_MAX], id [MESH_ID_SIZE];
    size_t size = s_make_beacon (buf, id, "spell");
    assert_int_equal (mesh_beacon_send (beacons [2], buf, size), 0);
    for (int i = 0; i < 4; i++) {
        assert_string_equal (mesh_beacon_host (beacons [i]), "127.0.0.1");
        bool foreign = true;
        assert_true (s_wait_for (beacons [i], id, NULL, &foreign, NULL));
        assert_false (foreign);
    }
    for (int i = 0; i < 4; i++)
        mesh_beacon_destroy (&beacons [i]);
}

//  Finds an interface with an IPv4 broadcast address (not lo) and its
//  address as text. Returns false if the host has none.
static bool
s_find_lan_iface (char *name, char *address)
{
    struct ifaddrs *list;
    if (getifaddrs (&list) == -1)
        return false;
    bool found = false;
    for (struct ifaddrs *ifa = list; ifa && !found; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET
        &&  (ifa->ifa_flags & IFF_BROADCAST) && !(ifa->ifa_flags & IFF_LOOPBACK)
        &&  ifa->ifa_broadaddr && strlen (ifa->ifa_name) < IF_NAMESIZE
        &&  !strchr (ifa->ifa_name, ':')) {
            strcpy (name, ifa->ifa_name);
            inet_ntop (AF_INET, &((struct sockaddr_in *) ifa->ifa_addr)->sin_addr,
                       address, INET_ADDRSTRLEN);
            found = true;
        }
    }
    freeifaddrs (list);
    return found;
}

//  A beacon opened on a LAN interface reports a loopback beacon as foreign,
//  and a loopback one does not. Only the loopback beacon sends: nothing
//  leaves the host. lan may be NULL (host interfaces are then looked up).
static void
s_lan_beacon_calls_loopback_foreign (const char *lan, const char *lan_address)
{
    const char *ifaces [2] = { lan, NULL };
    mesh_beacon_t *beacons [2];
    s_open_on_one_port (beacons, ifaces, 2);
    assert_string_equal (mesh_beacon_host (beacons [0]), lan_address);

    uint8_t buf [MESH_BEACON_MAX], id [MESH_ID_SIZE];
    size_t size = s_make_beacon (buf, id, "loopback");
    assert_int_equal (mesh_beacon_send (beacons [1], buf, size), 0);
    bool foreign = false;
    assert_true (s_wait_for (beacons [0], id, NULL, &foreign, NULL));
    assert_true (foreign);
    assert_true (s_wait_for (beacons [1], id, NULL, &foreign, NULL));
    assert_false (foreign);
    mesh_beacon_destroy (&beacons [0]);
    mesh_beacon_destroy (&beacons [1]);
}

static void
test_lan_beacon_ignores_loopback (void **state)
{
    (void) state;
    char name [IF_NAMESIZE], address [INET_ADDRSTRLEN];
    if (!s_find_lan_iface (name, address)) {
        print_message ("    skipped: this host has no interface with an IPv4 broadcast address\n");
        skip ();
    }
    print_message ("    LAN interface: %s (%s), listening only\n", name, address);
    s_lan_beacon_calls_loopback_foreign (name, address);
}


//  --------------------------------------------------------------------------
//  Network namespace tests: this program again, under `unshare -n`

#define CHILD_LO_ONLY   "--child-lo-only"
#define CHILD_VETH      "--child-veth"

//  Runs script under `unshare -n sh -c`, with $0 = this program; skips the
//  test (with the reason) when that cannot work here.
static void
s_run_in_namespace (const char *script)
{
    if (geteuid () != 0) {
        print_message ("    skipped: needs root for unshare -n\n");
        skip ();
    }
    if (system ("unshare -n true >/dev/null 2>&1") != 0) {
        print_message ("    skipped: unshare -n does not work here "
                       "(no unshare(1), or no CAP_SYS_ADMIN)\n");
        skip ();
    }
    if (system ("command -v ip >/dev/null 2>&1") != 0) {
        print_message ("    skipped: no ip(8) to bring lo up (iproute2)\n");
        skip ();
    }
    char self [4096];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    assert_true (len > 0);
    self [len] = 0;

    fflush (stdout);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        execlp ("unshare", "unshare", "-n", "sh", "-c", script, self, (char *) NULL);
        _exit (127);
    }
    int status;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
}

static void
test_namespace_with_only_lo (void **state)
{
    (void) state;
    s_run_in_namespace ("ip link set lo up && exec \"$0\" " CHILD_LO_ONLY);
}

//  veth pair mbv0 (10.99.0.1/24) - mbv1 (no address), inside the namespace
static void
test_namespace_with_veth (void **state)
{
    (void) state;
    s_run_in_namespace ("ip link set lo up"
                        " && ip link add mbv0 type veth peer name mbv1"
                        " && ip addr add 10.99.0.1/24 brd + dev mbv0"
                        " && ip link set mbv0 up && ip link set mbv1 up"
                        " && exec \"$0\" " CHILD_VETH);
}

//  In the child: prove lo is the only interface, then discover over it
static void
child_discovery_on_lo_only (void **state)
{
    (void) state;
    struct if_nameindex *names = if_nameindex ();
    assert_non_null (names);
    assert_string_equal (names [0].if_name, "lo");
    assert_null (names [1].if_name);
    if_freenameindex (names);
    s_two_beacons_share_a_port ();
}

static void
child_veth_interface_mode (void **state)
{
    (void) state;
    //  Two beacons on mbv0 hear each other (the kernel loops a broadcast
    //  back to local listeners, arriving on mbv0); a loopback beacon on the
    //  same port hears it as foreign, and they hear its beacon as foreign.
    const char *ifaces [3] = { "mbv0", "mbv0", "lo" };
    mesh_beacon_t *beacons [3];
    s_open_on_one_port (beacons, ifaces, 3);
    assert_string_equal (mesh_beacon_host (beacons [0]), "10.99.0.1");

    uint8_t buf [MESH_BEACON_MAX], id [MESH_ID_SIZE];
    size_t size = s_make_beacon (buf, id, "lan");
    assert_int_equal (mesh_beacon_send (beacons [0], buf, size), 0);
    bool foreign;
    char from [INET_ADDRSTRLEN];
    for (int i = 0; i < 3; i++) {
        assert_true (s_wait_for (beacons [i], id, NULL, &foreign, from));
        assert_int_equal (foreign, i == 2);
        assert_string_equal (from, "10.99.0.1");
    }
    size = s_make_beacon (buf, id, "lo");
    assert_int_equal (mesh_beacon_send (beacons [2], buf, size), 0);
    for (int i = 0; i < 3; i++) {
        assert_true (s_wait_for (beacons [i], id, NULL, &foreign, NULL));
        assert_int_equal (foreign, i != 2);
    }
    for (int i = 0; i < 3; i++)
        mesh_beacon_destroy (&beacons [i]);

    //  The same as the host test, with a LAN interface we know is there
    s_lan_beacon_calls_loopback_foreign ("mbv0", "10.99.0.1");

    //  Both at once: host is the first interface's address, neither is foreign
    const char *both [2] = { "mbv0,lo", NULL };
    s_open_on_one_port (beacons, both, 2);
    assert_string_equal (mesh_beacon_host (beacons [0]), "10.99.0.1");
    size = s_make_beacon (buf, id, "lo");
    assert_int_equal (mesh_beacon_send (beacons [1], buf, size), 0);
    assert_true (s_wait_for (beacons [0], id, NULL, &foreign, NULL));
    assert_false (foreign);
    mesh_beacon_destroy (&beacons [0]);
    mesh_beacon_destroy (&beacons [1]);

    //  An interface that exists but has no IPv4 address
    const char *reason = NULL;
    assert_null (mesh_beacon_new ("mbv1", s_random_port (), &reason));
    assert_int_equal (errno, EADDRNOTAVAIL);
    assert_non_null (strstr (reason, "mbv1"));
    print_message ("    reason: %s\n", reason);
}

int
main (int argc, char *argv [])
{
    if (sodium_init () < 0)
        return 1;
    if (argc > 1 && strcmp (argv [1], CHILD_LO_ONLY) == 0) {
        const struct CMUnitTest tests [] = {
            cmocka_unit_test (child_discovery_on_lo_only),
        };
        return cmocka_run_group_tests_name ("beacon, namespace with only lo", tests, NULL, NULL);
    }
    if (argc > 1 && strcmp (argv [1], CHILD_VETH) == 0) {
        const struct CMUnitTest tests [] = {
            cmocka_unit_test (child_veth_interface_mode),
        };
        return cmocka_run_group_tests_name ("beacon, namespace with veth", tests, NULL, NULL);
    }
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage_example),
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_encode_matches_documented_bytes),
        cmocka_unit_test (test_encode_refuses_what_does_not_fit),
        cmocka_unit_test (test_garbage_table),
        cmocka_unit_test (test_random_bytes),
        cmocka_unit_test (test_truncation),
        cmocka_unit_test (test_cluster_tag),
        cmocka_unit_test (test_round_trip_key_time),
        cmocka_unit_test (test_signed_matches_documented_bytes),
        cmocka_unit_test (test_signed_verify),
        cmocka_unit_test (test_signed_every_byte_matters),
        cmocka_unit_test (test_mac_must_be_last),
        cmocka_unit_test (test_full_size_packet_fits),
        cmocka_unit_test (test_loopback_beacons_share_a_port),
        cmocka_unit_test (test_recv_reports_real_size),
        cmocka_unit_test (test_bad_arguments_fail_with_reason),
        cmocka_unit_test (test_loopback_spellings),
        cmocka_unit_test (test_lan_beacon_ignores_loopback),
        cmocka_unit_test (test_namespace_with_only_lo),
        cmocka_unit_test (test_namespace_with_veth),
    };
    return cmocka_run_group_tests_name ("beacon", tests, NULL, NULL);
}
