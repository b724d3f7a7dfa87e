/*  =========================================================================
    mesh_counters - named counters

    Counters that change per message (frames and bytes in and out) live as
    plain fields where they are counted; everything counted on the rare
    path (drops, malformed input, state changes) is a named counter here,
    so that a new reason to drop never needs a new struct field and every
    one shows up in `meshbus stats` by itself.
    ========================================================================= */

#include "mesh_counters.h"
#include <stdarg.h>

struct _mesh_counters_t {
    zhashx_t *table;            //  name -> uint64_t *
};

mesh_counters_t *
mesh_counters_new (void)
{
    mesh_counters_t *self = (mesh_counters_t *) zmalloc (sizeof (mesh_counters_t));
    self->table = zhashx_new ();
    zhashx_set_destructor (self->table, (zhashx_destructor_fn *) zstr_free);
    return self;
}

void
mesh_counters_destroy (mesh_counters_t **self_p)
{
    if (*self_p) {
        zhashx_destroy (&(*self_p)->table);
        free (*self_p);
        *self_p = NULL;
    }
}

void
mesh_counters_add (mesh_counters_t *self, const char *name, uint64_t delta)
{
    uint64_t *value = (uint64_t *) zhashx_lookup (self->table, name);
    if (!value) {
        value = (uint64_t *) zmalloc (sizeof (uint64_t));
        zhashx_insert (self->table, name, value);
    }
    *value += delta;
}

uint64_t
mesh_counters_get (mesh_counters_t *self, const char *name)
{
    uint64_t *value = (uint64_t *) zhashx_lookup (self->table, name);
    return value? *value: 0;
}

size_t
mesh_counters_size (mesh_counters_t *self)
{
    return zhashx_size (self->table);
}

void
mesh_counters_merge (mesh_counters_t *dst, mesh_counters_t *src)
{
    for (uint64_t *value = (uint64_t *) zhashx_first (src->table); value;
         value = (uint64_t *) zhashx_next (src->table))
        mesh_counters_add (dst, (const char *) zhashx_cursor (src->table), *value);
}

void
mesh_json_printf (zchunk_t *out, const char *fmt, ...)
{
    char buf [512];
    va_list args;
    va_start (args, fmt);
    int n = vsnprintf (buf, sizeof buf, fmt, args);
    va_end (args);
    if (n > 0)
        zchunk_extend (out, buf, (size_t) n < sizeof buf? (size_t) n: sizeof buf - 1);
}

//  Bytes of the valid UTF-8 character at c (1..4), 0 when none starts
//  there: no overlong forms, no surrogates, nothing past U+10FFFF
static size_t
s_utf8_char (const unsigned char *c)
{
    if (c [0] < 0x80)
        return 1;
    size_t n = c [0] >= 0xC2 && c [0] <= 0xDF? 2: c [0] >= 0xE0 && c [0] <= 0xEF? 3
             : c [0] >= 0xF0 && c [0] <= 0xF4? 4: 0;
    for (size_t i = 1; i < n; i++)
        if ((c [i] & 0xC0) != 0x80)
            return 0;           //  also stops at the NUL
    if ((c [0] == 0xE0 && c [1] < 0xA0) || (c [0] == 0xED && c [1] > 0x9F)
    ||  (c [0] == 0xF0 && c [1] < 0x90) || (c [0] == 0xF4 && c [1] > 0x8F))
        return 0;
    return n;
}

//  Names come from peers and applications as bytes (a subject may hold
//  any byte but controls and space): JSON must be valid UTF-8, so a byte
//  that starts no valid character is written as the character of the
//  same value (\u0080..\u00ff), never passed through raw
void
mesh_json_string (zchunk_t *out, const char *text)
{
    zchunk_extend (out, "\"", 1);
    for (const unsigned char *c = (const unsigned char *) text; *c; ) {
        size_t n = s_utf8_char (c);
        if (*c == '"' || *c == '\\') {
            char esc [2] = { '\\', (char) *c };
            zchunk_extend (out, esc, 2);
        }
        else
        if (*c < 0x20 || *c == 0x7f || n == 0)
            mesh_json_printf (out, "\\u%04x", *c);
        else {
            zchunk_extend (out, c, n);
            c += n;
            continue;
        }
        c++;
    }
    zchunk_extend (out, "\"", 1);
}

void
mesh_counters_json (mesh_counters_t *self, zchunk_t *out)
{
    zlistx_t *keys = zhashx_keys (self->table);
    zlistx_set_comparator (keys, (zlistx_comparator_fn *) strcmp);
    zlistx_sort (keys);
    zchunk_extend (out, "{", 1);
    const char *key = (const char *) zlistx_first (keys);
    bool first = true;
    while (key) {
        if (!first)
            zchunk_extend (out, ", ", 2);
        first = false;
        mesh_json_string (out, key);
        mesh_json_printf (out, ": %llu", (unsigned long long) mesh_counters_get (self, key));
        key = (const char *) zlistx_next (keys);
    }
    zchunk_extend (out, "}", 1);
    zlistx_destroy (&keys);
}

void
mesh_counters_json_traffic (mesh_counters_t *self, zchunk_t *out, const mesh_traffic_t *traffic)
{
    mesh_json_printf (out, ", \"frames.in\": %llu, \"frames.out\": %llu, \"messages.in\": %llu, "
                      "\"messages.out\": %llu, \"bytes.in\": %llu, \"bytes.out\": %llu, "
                      "\"counters\": ",
                      (unsigned long long) traffic->frames_in, (unsigned long long) traffic->frames_out,
                      (unsigned long long) traffic->msgs_in, (unsigned long long) traffic->msgs_out,
                      (unsigned long long) traffic->bytes_in, (unsigned long long) traffic->bytes_out);
    mesh_counters_json (self, out);
    zchunk_extend (out, "}", 1);
}
