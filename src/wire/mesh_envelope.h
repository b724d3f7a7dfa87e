/*  =========================================================================
    mesh_envelope - the msgpack header frame of every link message

    Decoding never allocates: the decoded envelope holds spans that point
    into the frame it was decoded from, valid while that frame lives.
    ========================================================================= */

#ifndef MESH_ENVELOPE_H_INCLUDED
#define MESH_ENVELOPE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mesh_limits.h"

//  A byte range inside a frame; ptr == NULL means the field was nil
typedef struct {
    const uint8_t *ptr;
    uint32_t len;
} mesh_span_t;

typedef struct {
    uint32_t version;           //  MESH_WIRE_VERSION
    uint32_t kind;              //  MESH_KIND_* from meshbus.h
    uint32_t flags;             //  MESH_FLAG_* from meshbus.h
    uint64_t seq;               //  per-stream sequence number, 0 = none
    uint64_t id;                //  message id / correlation id / incarnation
    uint64_t deadline;          //  ms since the epoch, 0 = none
    mesh_span_t subject;        //  subject, service, queue or node name
    mesh_span_t reply;          //  reply-to
    mesh_span_t ctype;          //  content type
    uint32_t header_count;
    mesh_span_t header_key [MESH_MAX_HEADERS];
    mesh_span_t header_value [MESH_MAX_HEADERS];
    mesh_span_t body;           //  inline body (may be empty)
} mesh_envelope_t;

//  Reasons a decode fails; each is counted separately by the node
typedef enum {
    MESH_ENV_OK = 0,
    MESH_ENV_TRUNCATED = -1,    //  a declared length runs past the frame
    MESH_ENV_BAD_TYPE = -2,     //  a field has the wrong msgpack type
    MESH_ENV_BAD_VERSION = -3,  //  version we do not speak
    MESH_ENV_TOO_LONG = -4,     //  a field breaks a limit in mesh_limits.h
    MESH_ENV_BAD_SHAPE = -5,    //  wrong element count, trailing bytes
} mesh_env_rc_t;

//  Decode one header frame. Returns MESH_ENV_OK and fills env, or a
//  negative mesh_env_rc_t; never allocates, never asserts on input.
//  Spans point into data. Entries past header_count are not written, and
//  after a failure the contents of env are unspecified.
int
    mesh_envelope_decode (mesh_envelope_t *env, const void *data, size_t size);

//  Exact number of bytes mesh_envelope_encode will write for env, or 0 if
//  env breaks a limit. Never more than MESH_MAX_HEADER_FRAME.
size_t
    mesh_envelope_size (const mesh_envelope_t *env);

//  True if env keeps every limit the decoder enforces (what
//  mesh_envelope_size checks, without sizing).
bool
    mesh_envelope_fits (const mesh_envelope_t *env);

//  Encode env into buf (capacity cap). Returns bytes written, or 0 when
//  cap is too small or a field breaks a limit (programmer error upstream);
//  writes nothing then. version 0 means MESH_WIRE_VERSION; a span with a
//  NULL ptr goes out as nil (as an empty str for header keys and values).
size_t
    mesh_envelope_encode (const mesh_envelope_t *env, void *buf, size_t cap);

//  Human-readable name of a decode failure, for stats and logs.
const char *
    mesh_envelope_strerror (int rc);

#endif
