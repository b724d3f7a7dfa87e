/*  mesh_counters - a set of named uint64 counters, printed as JSON  */
#ifndef MESH_COUNTERS_H_INCLUDED
#define MESH_COUNTERS_H_INCLUDED

#include <stdint.h>
#include <czmq.h>

typedef struct _mesh_counters_t mesh_counters_t;

mesh_counters_t *
    mesh_counters_new (void);
void
    mesh_counters_destroy (mesh_counters_t **self_p);
void
    mesh_counters_add (mesh_counters_t *self, const char *name, uint64_t delta);
uint64_t
    mesh_counters_get (mesh_counters_t *self, const char *name);
//  Number of counters in the set.
size_t
    mesh_counters_size (mesh_counters_t *self);
//  Add every counter of src to dst.
void
    mesh_counters_merge (mesh_counters_t *dst, mesh_counters_t *src);
//  Append {"name": value, ...} in name order to a growing string buffer.
void
    mesh_counters_json (mesh_counters_t *self, zchunk_t *out);
//  A link's traffic: frames, the messages in them (a batch frame holds
//  several), bytes on the wire
typedef struct {
    uint64_t frames_in, frames_out, msgs_in, msgs_out, bytes_in, bytes_out;
} mesh_traffic_t;
//  The tail of a peer's stats record, live or departed: `, "frames.in": N,
//  ..., "bytes.out": N, "counters": {...}}` (closing the record).
void
    mesh_counters_json_traffic (mesh_counters_t *self, zchunk_t *out,
                                const mesh_traffic_t *traffic);
//  JSON string escaping for the stats writers.
void
    mesh_json_string (zchunk_t *out, const char *text);
void
    mesh_json_printf (zchunk_t *out, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

#endif
