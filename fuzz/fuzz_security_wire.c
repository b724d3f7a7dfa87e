// sources: src/security/mesh_security_wire.c src/base/mesh_util.c
/*  =========================================================================
    fuzz_security_wire - libFuzzer target for the security fields peers
    send as text: keyed endpoints of gossip (mesh_security_split) and the
    time and MAC headers of HELLO (mesh_security_mac_fields)

    Whatever the bytes: no read outside them (ASan), no undefined behaviour
    (UBSan), an accepted endpoint fits its buffer and has no '#', an
    accepted key came from exactly 40 chars, and an accepted MAC field pair
    was 1..19 digits and 64 hex chars. A broken invariant abort()s.
    ========================================================================= */

#include "mesh_security_wire.h"
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    //  1. as a gossip value: NUL-terminated text, as the node makes it
    char *text = (char *) malloc (size);
    memcpy (text, data + 1, size - 1);
    text [size - 1] = 0;
    char endpoint [128];
    uint8_t key [32];
    bool has_key = true;
    if (mesh_security_split (text, endpoint, sizeof endpoint, key, &has_key) == 0) {
        if (strlen (endpoint) >= sizeof endpoint || strchr (endpoint, '#'))
            abort ();
        const char *hash = strchr (text, '#');
        if (has_key != (hash != NULL) || (hash && strlen (hash + 1) != MESH_SECURITY_KEY_Z85))
            abort ();
    }
    free (text);
    //  2. as HELLO's two headers: the first byte says where to split
    size_t cut = data [0] % size;
    const char *time_text = (const char *) data + 1;
    size_t time_len = cut > 0? cut - 1: 0;
    const char *mac_text = (const char *) data + 1 + time_len;
    size_t mac_len = size - 1 - time_len;
    uint64_t time_ms = 0;
    uint8_t mac [MESH_SECURITY_MAC_SIZE];
    if (mesh_security_mac_fields (time_text, time_len, mac_text, mac_len, &time_ms, mac) == 0) {
        if (time_len < 1 || time_len > 19 || mac_len != 2 * MESH_SECURITY_MAC_SIZE)
            abort ();
    }
    return 0;
}
