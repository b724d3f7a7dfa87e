/*  mesh_msg - a received message: decoded header + its frames (private)  */
#ifndef MESH_MSG_H_INCLUDED
#define MESH_MSG_H_INCLUDED

#include "meshbus/pattern.h"
#include "mesh_envelope.h"
#include "mesh_batch.h"
#include <zmq.h>

struct _mesh_msg_t {
    mesh_envelope_t env;        //  spans point into frames [0] (an envelope, or
                                //  raw bytes after mesh_msg_set)
    zmq_msg_t frames [1 + MESH_MAX_FRAMES];
    int nframes;                //  header frame + body frames
    bool heap;                  //  made by mesh_msg_dup: free the struct too
    char sender [33];
    char sender_name [65];
    char subject [MESH_MAX_SUBJECT + 1];
    char reply [MESH_MAX_REPLY + 1];
    char ctype [MESH_MAX_CTYPE + 1];
    char *headers;              //  NUL-terminated copies, made on first lookup
    void *joined;               //  multi-frame body joined on first mesh_msg_body
    size_t size;                //  body size across frames
    uint32_t part_at, part_len; //  the envelope's place in frames [0] when
                                //  that is a batch frame (part_len 0: all of it)
};

//  Take over nframes zmq messages (header first, then body frames), decode
//  the header. Returns MESH_ENV_OK or a negative mesh_env_rc_t; on failure
//  the frames are closed. The sender fields are filled by the caller.
int
    mesh_msg_init (mesh_msg_t *self, zmq_msg_t *frames, int nframes);
//  Take over one frame of a batch and decode the envelope at [at, at+len)
//  of it (the caller checked those bounds). As mesh_msg_init otherwise.
int
    mesh_msg_init_part (mesh_msg_t *self, zmq_msg_t *frame, size_t at, size_t len);
//  The envelope a head describes, body empty: what senders encode and
//  mesh_msg_set lays out. Spans point at head's strings. 0, or -1 (too
//  many headers) with the error set.
int
    mesh_msg_head_envelope (mesh_envelope_t *env, const mesh_head_t *head);
//  Release frames and caches of a message initialised on the stack.
void
    mesh_msg_fini (mesh_msg_t *self);

//  A message built for a link: its envelope (in small, or in out when
//  longer) and, for a large body, the body's own frame.
typedef struct {
    uint8_t small [MESH_BATCH_MAX_ENV];
    size_t small_len;           //  0: the envelope is in out
    mesh_outbuf_t *out;
    zmq_msg_t body;
    bool has_body;
} mesh_built_t;

//  Build the envelope (and the body frame of a large body) of a message to
//  send; outside any lock. 0, or -1 with the error set (nothing held then).
//  With data, a large body's frame takes data over (free_fn, hint).
int
    mesh_msg_build (const mesh_head_t *head, const void *body, size_t size, void *data,
                    mesh_free_fn *free_fn, void *hint, mesh_built_t *built);
//  Release what a built message holds (after a failed send)
void
    mesh_msg_built_fini (mesh_built_t *built);
//  The built message as plain frames (1 or 2), for a message not sent on a
//  link: mesh_msg_new, or a HELLO on any socket. Returns nframes.
int
    mesh_msg_built_frames (mesh_built_t *built, zmq_msg_t *frames);

#endif
