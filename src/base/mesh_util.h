/*  mesh_util - errors, clocks and small helpers shared by the core  */
#ifndef MESH_UTIL_H_INCLUDED
#define MESH_UTIL_H_INCLUDED

#include "meshbus/pattern.h"
#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>

//  Set the thread's last error; detail may be NULL. Always returns -1 so
//  callers can write `return mesh_fail (MESH_EINVAL, "bad name");`.
int
    mesh_fail (int err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
//  mesh_mono_ms (monotonic ms) is in meshbus/pattern.h: patterns use it too.
//  Hex of a binary id (2 * size chars + NUL into out).
void
    mesh_hex (const uint8_t *bin, size_t size, char *out);
//  Parse exactly 2 * size hex chars. 0 or -1.
int
    mesh_unhex (const char *hex, uint8_t *bin, size_t size);
//  Copy a string into a fixed buffer; -1 if it does not fit.
int
    mesh_strlcpy (char *dst, const char *src, size_t cap);
//  "tcp://host:port" with a sane host and port 1..65535. Fills host/port.
int
    mesh_parse_endpoint (const char *endpoint, char *host, size_t host_cap, int *port);

//  mesh_log with a va_list, for the library's own printf-like wrappers
//  (src/base/mesh_log.c)
void
    mesh_logv (mesh_log_level_t level, const char *node, const char *fmt, va_list args);

#endif
