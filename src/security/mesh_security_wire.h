/*  mesh_security_wire - security fields carried as text (see the .c)  */
#ifndef MESH_SECURITY_WIRE_H_INCLUDED
#define MESH_SECURITY_WIRE_H_INCLUDED

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define MESH_SECURITY_KEY_Z85   40
#define MESH_SECURITY_MAC_SIZE  32

//  "tcp://host:port#Z85KEY" -> endpoint and key (32 bytes); has_key false
//  when there is no '#'. -1 when the endpoint does not fit cap or the key
//  part is not 40 chars of Z85.
int
    mesh_security_split (const char *text, char *endpoint, size_t cap, uint8_t *key,
                         bool *has_key);
//  HELLO's meshbus.time (1..19 decimal digits) and meshbus.mac (64 hex
//  chars), not NUL-terminated. 0, or -1 when either is malformed.
int
    mesh_security_mac_fields (const char *time_text, size_t time_len, const char *mac_text,
                              size_t mac_len, uint64_t *time_ms, uint8_t *mac);

#endif
