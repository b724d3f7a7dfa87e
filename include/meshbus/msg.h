/*  =========================================================================
    meshbus/msg.h - messages as handlers see them, and what to send

    A mesh_msg_t handed to a handler is borrowed and valid only during the
    call; mesh_msg_dup() keeps one. Building messages (mesh_msg_new,
    mesh_msg_set) is for patterns: meshbus/pattern.h.
    ========================================================================= */

#ifndef MESHBUS_MSG_H_INCLUDED
#define MESHBUS_MSG_H_INCLUDED

#include "meshbus/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _mesh_msg_t mesh_msg_t;

//  Message as seen by a receive handler
const char *
    mesh_msg_sender (const mesh_msg_t *self);   //  peer id, 32 hex chars
const char *
    mesh_msg_sender_name (const mesh_msg_t *self);
int
    mesh_msg_kind (const mesh_msg_t *self);
uint32_t
    mesh_msg_flags (const mesh_msg_t *self);
uint64_t
    mesh_msg_seq (const mesh_msg_t *self);
uint64_t
    mesh_msg_id (const mesh_msg_t *self);
uint64_t
    mesh_msg_deadline (const mesh_msg_t *self);
//  Subject, reply-to and content type: "" when absent, never NULL.
const char *
    mesh_msg_subject (const mesh_msg_t *self);
const char *
    mesh_msg_reply (const mesh_msg_t *self);
const char *
    mesh_msg_ctype (const mesh_msg_t *self);
//  Value of a user header, or NULL. Copied into a buffer of the message.
const char *
    mesh_msg_header (const mesh_msg_t *self, const char *key);
size_t
    mesh_msg_header_count (const mesh_msg_t *self);
//  The i-th header; returns false past the end. Not NUL-terminated:
//  lengths in *klen / *vlen.
bool
    mesh_msg_header_at (const mesh_msg_t *self, size_t i, const char **key,
                        size_t *klen, const char **value, size_t *vlen);
//  Body bytes. Bodies that arrived in several frames are joined on the
//  first call (one copy); a single frame is returned in place.
const void *
    mesh_msg_body (const mesh_msg_t *self);
size_t
    mesh_msg_size (const mesh_msg_t *self);
//  A copy the caller owns; NULL on out of memory.
mesh_msg_t *
    mesh_msg_dup (const mesh_msg_t *self);
void
    mesh_msg_destroy (mesh_msg_t **self_p);

//  What to send: a plain struct the caller fills on the stack. Unused
//  strings are NULL; headers is an array of 2 * header_count strings
//  (key, value, key, value...).
typedef struct {
    int kind;
    uint32_t flags;
    uint64_t seq;
    uint64_t id;
    uint64_t deadline;          //  ms since the epoch, 0 = none
    const char *subject;
    const char *reply;
    const char *ctype;
    const char *const *headers;
    size_t header_count;
} mesh_head_t;

//  Called when a body passed without copying (mesh_node_send_zc,
//  mesh_publish_zc) is no longer referenced by any send.
typedef void (mesh_free_fn) (void *data, void *hint);

#ifdef __cplusplus
}
#endif

#endif
