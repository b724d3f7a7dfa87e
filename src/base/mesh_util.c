/*  =========================================================================
    mesh_util - errors, clocks and small helpers shared by the core

    Errors are per thread (like errno) so several application threads can
    use one node and each read the reason for its own failure.
    ========================================================================= */

#include "mesh_util.h"
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <ctype.h>

static __thread int s_errno;
static __thread char s_detail [256];

int
mesh_fail (int err, const char *fmt, ...)
{
    s_errno = err;
    if (fmt) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (s_detail, sizeof s_detail, fmt, args);
        va_end (args);
    }
    else
        snprintf (s_detail, sizeof s_detail, "%s", mesh_strerror (err));
    return -1;
}

int
mesh_set_error (int err, const char *detail)
{
    return detail? mesh_fail (err, "%s", detail): mesh_fail (err, NULL);
}

int
mesh_errno (void)
{
    return s_errno;
}

const char *
mesh_last_error (void)
{
    return s_detail [0]? s_detail: mesh_strerror (s_errno);
}

const char *
mesh_strerror (int err)
{
    switch (err) {
        case MESH_OK:            return "no error";
        case MESH_EINVAL:        return "invalid argument";
        case MESH_ENOPEER:       return "no such peer";
        case MESH_EAGAIN:        return "link full or nothing ready";
        case MESH_ETOOBIG:       return "too big";
        case MESH_ESTATE:        return "wrong node state";
        case MESH_ESYS:          return "system call failed";
        case MESH_ETIMEDOUT:     return "timed out";
        case MESH_ENORESPONDERS: return "no responders";
        case MESH_EFULL:         return "full";
        case MESH_EREMOTE:       return "remote error";
        case MESH_ECLOSED:       return "node stopped";
        case MESH_EPROVIDERLEFT: return "provider left";
        default:                 return "unknown error";
    }
}

int64_t
mesh_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mesh_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
mesh_coarse_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
mesh_clock_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

void
mesh_hex (const uint8_t *bin, size_t size, char *out)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out [2 * i] = digits [bin [i] >> 4];
        out [2 * i + 1] = digits [bin [i] & 15];
    }
    out [2 * size] = 0;
}

static int
s_nibble (char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int
mesh_unhex (const char *hex, uint8_t *bin, size_t size)
{
    if (!hex || strlen (hex) != 2 * size)
        return -1;
    for (size_t i = 0; i < size; i++) {
        int hi = s_nibble (hex [2 * i]), lo = s_nibble (hex [2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        bin [i] = (uint8_t) (hi << 4 | lo);
    }
    return 0;
}

int
mesh_strlcpy (char *dst, const char *src, size_t cap)
{
    size_t len = strlen (src);
    if (len >= cap)
        return -1;
    memcpy (dst, src, len + 1);
    return 0;
}

void
mesh_strv_free (char ***strv_p)
{
    if (strv_p && *strv_p) {
        for (char **s = *strv_p; *s; s++)
            free (*s);
        free (*strv_p);
        *strv_p = NULL;
    }
}

//  Endpoints come from the network (gossip, HELLO): only tcp:// with a host
//  made of name characters, so a peer cannot make us connect to ipc:// or
//  inproc:// or pass option syntax to libzmq.
int
mesh_parse_endpoint (const char *endpoint, char *host, size_t host_cap, int *port)
{
    if (!endpoint || strncmp (endpoint, "tcp://", 6) != 0)
        return -1;
    const char *h = endpoint + 6;
    const char *colon = strrchr (h, ':');
    if (!colon || colon == h || (size_t) (colon - h) >= host_cap)
        return -1;
    for (const char *c = h; c < colon; c++)
        if (!isalnum ((unsigned char) *c) && *c != '.' && *c != '-' && *c != '_')
            return -1;
    char *end;
    long p = strtol (colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 1 || p > 65535)
        return -1;
    memcpy (host, h, colon - h);
    host [colon - h] = 0;
    *port = (int) p;
    return 0;
}

//  An id is 32 hex chars, which four 8-byte loads hash as well as czmq's
//  default walk over every byte (~190 instructions a lookup); any other
//  string takes a byte walk.
size_t
mesh_id_hash (const void *key)
{
    const char *text = (const char *) key;
    if (strnlen (text, 32) < 32) {
        uint64_t hash = 14695981039346656037ull;
        while (*text)
            hash = (hash ^ (uint8_t) *text++) * 1099511628211ull;
        return (size_t) hash;
    }
    //  all 32 chars: ids an application sets may differ in one char only
    uint64_t a, b, c, d;
    memcpy (&a, text, 8);
    memcpy (&b, text + 8, 8);
    memcpy (&c, text + 16, 8);
    memcpy (&d, text + 24, 8);
    uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 29) ^ c ^ (d * 0xc2b2ae3d27d4eb4full)) * 0xff51afd7ed558ccdull;
    return (size_t) (h ^ (h >> 32));
}
