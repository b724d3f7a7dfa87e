// sources: src/wire/mesh_beacon.c src/security/mesh_secret.c src/base/mesh_util.c
/*  =========================================================================
    fuzz_beacon - libFuzzer target for the beacon decoder

    Any host on the LAN can send us a beacon, so the decoder must survive
    any bytes (ASan and UBSan watch it here) and must agree with the
    encoder: whatever it accepts, encoded again, decodes to the same packet.
    Every decoded packet also goes through mesh_beacon_verify with a fixed
    secret (it must not read past the datagram, whatever mac_offset says),
    and is signed again: that signed datagram must decode to the same
    fields and verify under the secret, and under no other.
    A mismatch aborts, so libFuzzer saves the input.

    Build: scons fuzz, or
      clang -fsanitize=fuzzer,address,undefined -Isrc -Iinclude \
            fuzz/fuzz_beacon.c src/wire/mesh_beacon.c src/security/mesh_secret.c src/base/mesh_util.c \
            $(pkg-config --cflags --libs libsodium)
    ========================================================================= */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_beacon.h"

static void
s_check (bool ok, const char *what)
{
    if (!ok) {
        fprintf (stderr, "fuzz_beacon: round trip changed %s\n", what);
        abort ();
    }
}

//  Two fixed secrets, derived once
static mesh_secret_t s_secret, s_other;
static bool s_ready;

static void
s_setup (void)
{
    if (s_ready)
        return;
    const char *a = "fuzz_beacon fixed secret, 1";
    const char *b = "fuzz_beacon fixed secret, 2";
    if (mesh_secret_from_bytes (&s_secret, a, strlen (a))
    ||  mesh_secret_from_bytes (&s_other, b, strlen (b))) {
        fprintf (stderr, "fuzz_beacon: cannot derive the secrets\n");
        abort ();
    }
    s_ready = true;
}

static void
s_check_same (const mesh_beacon_packet_t *back, const mesh_beacon_packet_t *pkt)
{
    s_check (back->flags == pkt->flags, "flags");
    s_check (back->port == pkt->port, "port");
    s_check (memcmp (back->id, pkt->id, sizeof pkt->id) == 0, "id");
    s_check (memcmp (back->tag, pkt->tag, sizeof pkt->tag) == 0, "tag");
    s_check (back->incarnation == pkt->incarnation, "incarnation");
    s_check (strcmp (back->host, pkt->host) == 0, "host");
    s_check (strcmp (back->name, pkt->name) == 0, "name");
    s_check (back->has_key == pkt->has_key, "has_key");
    s_check (!pkt->has_key || memcmp (back->key, pkt->key, sizeof pkt->key) == 0, "key");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_setup ();
    mesh_beacon_packet_t pkt;
    int rc = mesh_beacon_decode (&pkt, data, size);
    s_check (rc == MESH_BEACON_OK || rc == MESH_BEACON_MALFORMED
          || rc == MESH_BEACON_BAD_VERSION, "nothing: unknown return code");
    if (rc != MESH_BEACON_OK)
        return 0;

    uint8_t buf [MESH_BEACON_MAX];
    size_t again = mesh_beacon_encode (&pkt, buf, sizeof buf);
    s_check (again >= MESH_BEACON_HEAD && again <= size, "size: encode failed or grew");

    mesh_beacon_packet_t back;
    s_check (mesh_beacon_decode (&back, buf, again) == MESH_BEACON_OK, "validity");
    s_check_same (&back, &pkt);
    s_check (back.has_time == pkt.has_time, "has_time");
    s_check (!pkt.has_time || back.time_ms == pkt.time_ms, "time");
    s_check (!back.has_mac, "mac: encode wrote one");
    //  The head is copied through unchanged, byte for byte
    s_check (memcmp (buf, data, MESH_BEACON_HEAD) == 0, "head bytes");

    //  The MAC as received: where the decoder says it is, inside the data.
    //  Whether it verifies we cannot know (the fuzzer cannot forge one),
    //  but the call must be safe on anything the decoder accepted.
    s_check (!pkt.has_mac || (pkt.mac_offset >= MESH_BEACON_HEAD
                              && pkt.mac_offset + 2 + MESH_MAC_SIZE <= size), "mac offset");
    bool verified = mesh_beacon_verify (&pkt, &s_secret, data, size);
    s_check (!verified || (pkt.has_mac && pkt.mac_offset + 2 + MESH_MAC_SIZE == size),
             "verify: accepted a MAC that is not last");

    //  Signed again: the same fields, a TIME, a MAC last that verifies
    //  under the fixed secret only
    size_t signed_size = mesh_beacon_encode_signed (&pkt, &s_secret, buf, sizeof buf);
    s_check (signed_size > MESH_BEACON_HEAD, "signed size: encode_signed failed");
    s_check (mesh_beacon_decode (&back, buf, signed_size) == MESH_BEACON_OK, "signed validity");
    s_check_same (&back, &pkt);
    s_check (back.has_time && back.time_ms == pkt.time_ms, "signed time");
    s_check (back.has_mac && back.mac_offset + 2 + MESH_MAC_SIZE == signed_size, "signed mac");
    s_check (mesh_beacon_verify (&back, &s_secret, buf, signed_size), "signed: does not verify");
    s_check (!mesh_beacon_verify (&back, &s_other, buf, signed_size), "signed: other secret");
    return 0;
}
