/*  =========================================================================
    mesh_msg - a received message

    The receive path builds a mesh_msg_t on the stack: the zmq frames are
    moved in (no copy), the header is decoded in place (spans into frame
    0) and only subject, reply-to and content type are copied, because
    handlers want NUL-terminated strings and those are short. Headers and
    multi-frame bodies are materialised only when asked for.
    ========================================================================= */

#include "mesh_msg.h"
#include <stdlib.h>
#include <string.h>

static void
s_span_str (const mesh_span_t *span, char *out)
{
    if (span->len)
        memcpy (out, span->ptr, span->len);
    out [span->len] = 0;
}

int
mesh_msg_init (mesh_msg_t *self, zmq_msg_t *frames, int nframes)
{
    self->nframes = 0;
    self->heap = false;
    self->headers = NULL;
    self->joined = NULL;
    self->sender [0] = 0;
    self->sender_name [0] = 0;
    int rc = MESH_ENV_BAD_SHAPE;
    if (nframes >= 1 && nframes <= 1 + MESH_MAX_FRAMES) {
        for (int i = 0; i < nframes; i++) {
            zmq_msg_init (&self->frames [i]);
            zmq_msg_move (&self->frames [i], &frames [i]);
        }
        self->nframes = nframes;
        rc = mesh_envelope_decode (&self->env, zmq_msg_data (&self->frames [0]),
                                   zmq_msg_size (&self->frames [0]));
    }
    else
        for (int i = 0; i < nframes; i++)
            zmq_msg_close (&frames [i]);
    if (rc == MESH_ENV_OK) {
        bool framed = (self->env.flags & MESH_FLAG_FRAMES) != 0;
        //  A body is either inline or in frames, never both
        if ((framed && self->env.body.len) || (!framed && nframes > 1))
            rc = MESH_ENV_BAD_SHAPE;
        size_t size = self->env.body.len;
        for (int i = 1; i < nframes && rc == MESH_ENV_OK; i++) {
            size += zmq_msg_size (&self->frames [i]);
            if (size > MESH_MAX_BODY)
                rc = MESH_ENV_TOO_LONG;
        }
        self->size = size;
    }
    if (rc != MESH_ENV_OK) {
        mesh_msg_fini (self);
        return rc;
    }
    s_span_str (&self->env.subject, self->subject);
    s_span_str (&self->env.reply, self->reply);
    s_span_str (&self->env.ctype, self->ctype);
    return rc;
}

void
mesh_msg_fini (mesh_msg_t *self)
{
    for (int i = 0; i < self->nframes; i++)
        zmq_msg_close (&self->frames [i]);
    self->nframes = 0;
    free (self->headers);
    self->headers = NULL;
    free (self->joined);
    self->joined = NULL;
}

mesh_msg_t *
mesh_msg_dup (const mesh_msg_t *self)
{
    mesh_msg_t *copy = (mesh_msg_t *) malloc (sizeof (mesh_msg_t));
    if (!copy)
        return NULL;
    memcpy (copy, self, sizeof (mesh_msg_t));
    copy->heap = true;
    copy->headers = NULL;
    copy->joined = NULL;
    //  zmq_msg_copy shares the frame's buffer (reference counted); the
    //  header spans stay valid because they point into that same buffer.
    for (int i = 0; i < self->nframes; i++) {
        zmq_msg_init (&copy->frames [i]);
        zmq_msg_copy (&copy->frames [i], (zmq_msg_t *) &self->frames [i]);
    }
    //  Small frames are stored inside zmq_msg_t itself (VSM), so after the
    //  copy the spans must be re-based on the copy's own frame 0.
    const uint8_t *old_base = (const uint8_t *) zmq_msg_data ((zmq_msg_t *) &self->frames [0]);
    const uint8_t *new_base = (const uint8_t *) zmq_msg_data (&copy->frames [0]);
    if (old_base != new_base) {
        mesh_envelope_t *env = &copy->env;
        mesh_span_t *spans [] = { &env->subject, &env->reply, &env->ctype, &env->body };
        for (size_t i = 0; i < sizeof spans / sizeof spans [0]; i++)
            if (spans [i]->ptr)
                spans [i]->ptr = new_base + (spans [i]->ptr - old_base);
        for (uint32_t i = 0; i < env->header_count; i++) {
            env->header_key [i].ptr = new_base + (env->header_key [i].ptr - old_base);
            env->header_value [i].ptr = new_base + (env->header_value [i].ptr - old_base);
        }
    }
    return copy;
}

void
mesh_msg_destroy (mesh_msg_t **self_p)
{
    if (self_p && *self_p) {
        mesh_msg_t *self = *self_p;
        mesh_msg_fini (self);
        if (self->heap)
            free (self);
        *self_p = NULL;
    }
}

const char * mesh_msg_sender (const mesh_msg_t *self) { return self->sender; }
const char * mesh_msg_sender_name (const mesh_msg_t *self) { return self->sender_name; }
int          mesh_msg_kind (const mesh_msg_t *self) { return (int) self->env.kind; }
uint32_t     mesh_msg_flags (const mesh_msg_t *self) { return self->env.flags; }
uint64_t     mesh_msg_seq (const mesh_msg_t *self) { return self->env.seq; }
uint64_t     mesh_msg_id (const mesh_msg_t *self) { return self->env.id; }
uint64_t     mesh_msg_deadline (const mesh_msg_t *self) { return self->env.deadline; }
const char * mesh_msg_subject (const mesh_msg_t *self) { return self->subject; }
const char * mesh_msg_reply (const mesh_msg_t *self) { return self->reply; }
const char * mesh_msg_ctype (const mesh_msg_t *self) { return self->ctype; }
size_t       mesh_msg_size (const mesh_msg_t *self) { return self->size; }
size_t       mesh_msg_header_count (const mesh_msg_t *self) { return self->env.header_count; }

bool
mesh_msg_header_at (const mesh_msg_t *self, size_t i, const char **key,
                    size_t *klen, const char **value, size_t *vlen)
{
    if (i >= self->env.header_count)
        return false;
    *key = (const char *) self->env.header_key [i].ptr;
    *klen = self->env.header_key [i].len;
    *value = (const char *) self->env.header_value [i].ptr;
    *vlen = self->env.header_value [i].len;
    return true;
}

const char *
mesh_msg_header (const mesh_msg_t *self, const char *key)
{
    mesh_msg_t *mut = (mesh_msg_t *) self;     //  cache only
    const mesh_envelope_t *env = &self->env;
    if (!env->header_count)
        return NULL;
    if (!mut->headers) {
        //  bounded by MESH_MAX_HEADERS_BYTES, checked by the decoder
        size_t total = 0;
        for (uint32_t i = 0; i < env->header_count; i++)
            total += env->header_key [i].len + env->header_value [i].len + 2;
        mut->headers = (char *) malloc (total);
        if (!mut->headers)
            return NULL;
        char *p = mut->headers;
        for (uint32_t i = 0; i < env->header_count; i++) {
            memcpy (p, env->header_key [i].ptr, env->header_key [i].len);
            p += env->header_key [i].len;
            *p++ = 0;
            memcpy (p, env->header_value [i].ptr, env->header_value [i].len);
            p += env->header_value [i].len;
            *p++ = 0;
        }
    }
    const char *p = mut->headers;
    for (uint32_t i = 0; i < env->header_count; i++) {
        const char *value = p + env->header_key [i].len + 1;
        if (strcmp (p, key) == 0)
            return value;
        p = value + env->header_value [i].len + 1;
    }
    return NULL;
}

const void *
mesh_msg_body (const mesh_msg_t *self)
{
    mesh_msg_t *mut = (mesh_msg_t *) self;
    if (self->nframes <= 1)
        return self->env.body.ptr? (const void *) self->env.body.ptr: (const void *) "";
    if (self->nframes == 2)
        return zmq_msg_data (&mut->frames [1]);
    if (!mut->joined) {
        mut->joined = malloc (self->size? self->size: 1);
        if (!mut->joined)
            return NULL;
        size_t at = 0;
        for (int i = 1; i < self->nframes; i++) {
            size_t n = zmq_msg_size (&mut->frames [i]);
            memcpy ((char *) mut->joined + at, zmq_msg_data (&mut->frames [i]), n);
            at += n;
        }
    }
    return mut->joined;
}
