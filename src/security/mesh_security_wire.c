/*  =========================================================================
    mesh_security_wire - the security fields peers send as text: keyed
    endpoints in gossip and seeds, and HELLO's time and MAC headers. Input
    from the network: bounded, never allocates (fuzz/fuzz_security_wire.c).
    ========================================================================= */

#include "mesh_security_wire.h"
#include "mesh_util.h"
#include <zmq.h>
#include <string.h>

int
mesh_security_split (const char *text, char *endpoint, size_t cap, uint8_t *key, bool *has_key)
{
    *has_key = false;
    const char *hash = strchr (text, '#');
    size_t len = hash? (size_t) (hash - text): strlen (text);
    if (len >= cap)
        return -1;
    memcpy (endpoint, text, len);
    endpoint [len] = 0;
    if (!hash)
        return 0;
    if (strlen (hash + 1) != MESH_SECURITY_KEY_Z85 || !zmq_z85_decode (key, hash + 1))
        return -1;
    *has_key = true;
    return 0;
}

int
mesh_security_mac_fields (const char *time_text, size_t time_len, const char *mac_text,
                          size_t mac_len, uint64_t *time_ms, uint8_t *mac)
{
    if (!time_text || !mac_text || time_len == 0 || time_len > 19
    ||  mac_len != 2 * MESH_SECURITY_MAC_SIZE)
        return -1;
    uint64_t value = 0;
    for (size_t i = 0; i < time_len; i++) {
        if (time_text [i] < '0' || time_text [i] > '9')
            return -1;
        value = value * 10 + (uint64_t) (time_text [i] - '0');     //  19 digits cannot overflow
    }
    char hex [2 * MESH_SECURITY_MAC_SIZE + 1];
    memcpy (hex, mac_text, mac_len);
    hex [mac_len] = 0;
    if (mesh_unhex (hex, mac, MESH_SECURITY_MAC_SIZE))
        return -1;
    *time_ms = value;
    return 0;
}
