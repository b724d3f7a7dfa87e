// sources: mesh_beacon.c
/*  =========================================================================
    fuzz_beacon - libFuzzer target for the beacon decoder

    Any host on the LAN can send us a beacon, so the decoder must survive
    any bytes (ASan and UBSan watch it here) and must agree with the
    encoder: whatever it accepts, encoded again, decodes to the same packet.
    A mismatch aborts, so libFuzzer saves the input.

    Build: scons fuzz, or
      clang -fsanitize=fuzzer,address,undefined -Isrc -Iinclude \
            fuzz/fuzz_beacon.c src/mesh_beacon.c $(pkg-config --cflags --libs libsodium)
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

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
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
    s_check (back.flags == pkt.flags, "flags");
    s_check (back.port == pkt.port, "port");
    s_check (memcmp (back.id, pkt.id, sizeof pkt.id) == 0, "id");
    s_check (memcmp (back.tag, pkt.tag, sizeof pkt.tag) == 0, "tag");
    s_check (back.incarnation == pkt.incarnation, "incarnation");
    s_check (strcmp (back.host, pkt.host) == 0, "host");
    s_check (strcmp (back.name, pkt.name) == 0, "name");
    //  The head is copied through unchanged, byte for byte
    s_check (memcmp (buf, data, MESH_BEACON_HEAD) == 0, "head bytes");
    return 0;
}
