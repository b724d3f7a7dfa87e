/*  =========================================================================
    mesh_msg - a received message

    The receive path builds a mesh_msg_t on the stack: the zmq frames are
    moved in (no copy), the header is decoded in place (spans into frame
    0) and only subject, reply-to and content type are copied, because
    handlers want NUL-terminated strings and those are short. Headers and
    multi-frame bodies are materialised only when asked for.

    mesh_msg_set refills a message without the msgpack round trip that
    mesh_msg_new makes (encode a header frame, then decode it: ~1900
    instructions for each job of a pipeline batch). Frame 0 then holds no
    envelope but the raw bytes the spans point at: subject, reply-to,
    content type, header keys and values, body, back to back. Nothing
    reads frame 0 of such a message as an envelope (it is never sent), and
    mesh_msg_dup only needs every span inside frame 0, which still holds.
    The frame may be longer than what is used when it is reused.
    ========================================================================= */

#include "mesh_msg.h"
#include "mesh_util.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

static void
s_span_str (const mesh_span_t *span, char *out)
{
    if (span->len)
        memcpy (out, span->ptr, span->len);
    out [span->len] = 0;
}

//  Decode the envelope at [at, at + len) of frames [0]; len 0: all of it
static int
s_init (mesh_msg_t *self, zmq_msg_t *frames, int nframes, size_t at, size_t len)
{
    self->nframes = 0;
    self->part_at = (uint32_t) at;
    self->part_len = (uint32_t) len;
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
        const uint8_t *data = (const uint8_t *) zmq_msg_data (&self->frames [0]);
        rc = mesh_envelope_decode (&self->env, data + at,
                                   len? len: zmq_msg_size (&self->frames [0]));
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

int
mesh_msg_init (mesh_msg_t *self, zmq_msg_t *frames, int nframes)
{
    return s_init (self, frames, nframes, 0, 0);
}

int
mesh_msg_init_part (mesh_msg_t *self, zmq_msg_t *frame, size_t at, size_t len)
{
    return s_init (self, frame, 1, at, len);
}

static void
s_copy_name (char *out, size_t cap, const char *name)
{
    size_t n = name? strnlen (name, cap - 1): 0;
    memmove (out, name? name: "", n);      //  name may be out itself
    out [n] = 0;
}

static mesh_span_t
s_span_of (const char *str)
{
    mesh_span_t span = { (const uint8_t *) str, str? (uint32_t) strnlen (str, 65536): 0 };
    return span;
}

static bool
s_inside (const mesh_span_t *span, const uint8_t *lo, const uint8_t *hi)
{
    return span->ptr && span->ptr + span->len > lo && span->ptr < hi;
}

int
mesh_msg_head_envelope (mesh_envelope_t *env, const mesh_head_t *head)
{
    env->version = MESH_WIRE_VERSION;
    env->kind = (uint32_t) head->kind;
    env->flags = head->flags & ~(uint32_t) MESH_FLAG_FRAMES;
    env->seq = head->seq;
    env->id = head->id;
    env->deadline = head->deadline;
    env->subject = s_span_of (head->subject);
    env->reply = s_span_of (head->reply);
    env->ctype = s_span_of (head->ctype);
    if (head->header_count > MESH_MAX_HEADERS)
        return mesh_fail (MESH_ETOOBIG, "at most %d headers", MESH_MAX_HEADERS);
    env->header_count = (uint32_t) head->header_count;
    for (size_t i = 0; i < head->header_count; i++) {
        env->header_key [i] = s_span_of (head->headers [2 * i]);
        env->header_value [i] = s_span_of (head->headers [2 * i + 1]);
    }
    env->body.ptr = NULL;
    env->body.len = 0;
    return 0;
}

int
mesh_head_check (const mesh_head_t *head, size_t size)
{
    assert (head);
    mesh_envelope_t env;
    if (mesh_msg_head_envelope (&env, head))
        return -1;
    if (size > MESH_MAX_BODY)
        return mesh_fail (MESH_ETOOBIG, "body of %zu bytes exceeds %d", size, MESH_MAX_BODY);
    if (!mesh_envelope_fits (&env))
        return mesh_fail (MESH_ETOOBIG, "a subject, header or content type breaks a limit "
                          "(header key 1..64 bytes, value <= 1024, <= 32 headers, "
                          "<= 8192 bytes together, content type <= 127)");
    return 0;
}

int
mesh_msg_set (mesh_msg_t *self, const mesh_head_t *head, const void *body, size_t size,
              const char *sender, const char *sender_name)
{
    assert (self);
    assert (head);
    assert (body || size == 0);
    //  The same head as mesh_msg_new's encoder sees, checked against the
    //  same limits (mesh_envelope_fits), body aside as for a framed body
    mesh_envelope_t env;
    if (mesh_msg_head_envelope (&env, head))
        return -1;
    if (size > MESH_MAX_BODY)
        return mesh_fail (MESH_ETOOBIG, "body of %zu bytes exceeds %d", size, MESH_MAX_BODY);
    if (!mesh_envelope_fits (&env))
        return mesh_fail (MESH_ETOOBIG, "a subject, header or content type breaks a limit");
    if (size > MESH_MAX_INLINE_BODY)
        env.flags |= MESH_FLAG_FRAMES;      //  as a decoded mesh_msg_new message has it
    env.body.ptr = (const uint8_t *) body;
    env.body.len = (uint32_t) size;

    //  Every span this message will point at, in the order of frame 0
    mesh_span_t *spans [3 + 2 * MESH_MAX_HEADERS + 1];
    size_t nspans = 0, total = 0;
    spans [nspans++] = &env.subject;
    spans [nspans++] = &env.reply;
    spans [nspans++] = &env.ctype;
    for (uint32_t i = 0; i < env.header_count; i++) {
        spans [nspans++] = &env.header_key [i];
        spans [nspans++] = &env.header_value [i];
    }
    spans [nspans++] = &env.body;
    for (size_t i = 0; i < nspans; i++)
        total += spans [i]->len;

    //  Reuse frame 0 if nobody else holds it (a copy shares its buffer)
    //  and the new content does not come from it
    zmq_msg_t fresh;
    uint8_t *at = NULL;
    bool reuse = self->nframes == 1;
    if (reuse) {
        size_t cap = zmq_msg_size (&self->frames [0]);
        at = (uint8_t *) zmq_msg_data (&self->frames [0]);
        reuse = cap >= total && !zmq_msg_get (&self->frames [0], ZMQ_SHARED);
        for (size_t i = 0; i < nspans && reuse; i++)
            reuse = !s_inside (spans [i], at, at + cap);
    }
    if (!reuse) {
        if (zmq_msg_init_size (&fresh, total? total: 1))
            return mesh_fail (MESH_ESYS, "no memory for a message of %zu bytes", total);
        at = (uint8_t *) zmq_msg_data (&fresh);
    }
    for (size_t i = 0; i < nspans; i++)
        if (spans [i]->ptr) {
            if (spans [i]->len)
                memcpy (at, spans [i]->ptr, spans [i]->len);
            spans [i]->ptr = at;
            at += spans [i]->len;
        }
    //  Header keys and values are never nil in a decoded message (an
    //  empty str); point empty ones at the frame too
    for (uint32_t i = 0; i < env.header_count; i++) {
        if (!env.header_key [i].ptr)
            env.header_key [i].ptr = at;
        if (!env.header_value [i].ptr)
            env.header_value [i].ptr = at;
    }

    //  Past the last failure: the old content goes
    if (!reuse) {
        for (int i = 0; i < self->nframes; i++)
            zmq_msg_close (&self->frames [i]);
        const uint8_t *old_base = (const uint8_t *) zmq_msg_data (&fresh);
        zmq_msg_init (&self->frames [0]);
        zmq_msg_move (&self->frames [0], &fresh);
        self->nframes = 1;
        //  a small frame lives inside zmq_msg_t itself (VSM): it moved
        const uint8_t *new_base = (const uint8_t *) zmq_msg_data (&self->frames [0]);
        if (new_base != old_base)
            for (size_t i = 0; i < nspans; i++)
                if (spans [i]->ptr)
                    spans [i]->ptr = new_base + (spans [i]->ptr - old_base);
    }
    free (self->headers);
    self->headers = NULL;
    free (self->joined);
    self->joined = NULL;
    self->part_at = self->part_len = 0;     //  frame 0 holds this message alone
    self->env.version = env.version;
    self->env.kind = env.kind;
    self->env.flags = env.flags;
    self->env.seq = env.seq;
    self->env.id = env.id;
    self->env.deadline = env.deadline;
    self->env.subject = env.subject;
    self->env.reply = env.reply;
    self->env.ctype = env.ctype;
    self->env.header_count = env.header_count;
    for (uint32_t i = 0; i < env.header_count; i++) {
        self->env.header_key [i] = env.header_key [i];
        self->env.header_value [i] = env.header_value [i];
    }
    self->env.body = env.body;
    self->size = size;
    s_span_str (&self->env.subject, self->subject);
    s_span_str (&self->env.reply, self->reply);
    s_span_str (&self->env.ctype, self->ctype);
    s_copy_name (self->sender, sizeof self->sender, sender);
    s_copy_name (self->sender_name, sizeof self->sender_name, sender_name);
    return 0;
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
    //  A message of a batch would keep the whole batch frame alive: it
    //  takes its own envelope's bytes instead when that is under half.
    bool slice = self->part_len
              && (size_t) self->part_len * 2 < zmq_msg_size ((zmq_msg_t *) &self->frames [0]);
    for (int i = slice? 1: 0; i < self->nframes; i++) {
        zmq_msg_init (&copy->frames [i]);
        zmq_msg_copy (&copy->frames [i], (zmq_msg_t *) &self->frames [i]);
    }
    const uint8_t *old_base = (const uint8_t *) zmq_msg_data ((zmq_msg_t *) &self->frames [0]);
    if (slice) {
        old_base += self->part_at;
        if (zmq_msg_init_size (&copy->frames [0], self->part_len)) {
            free (copy);
            return NULL;
        }
        memcpy (zmq_msg_data (&copy->frames [0]), old_base, self->part_len);
        copy->part_at = copy->part_len = 0;
    }
    //  Small frames are stored inside zmq_msg_t itself (VSM), so after the
    //  copy the spans must be re-based on the copy's own frame 0.
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

//  ---------------------------------------------------------------------
//  Building a message: for a link (mesh_node_link.c) and for mesh_msg_new


void
mesh_msg_built_fini (mesh_built_t *built)
{
    mesh_outbuf_destroy (&built->out);
    if (built->has_body)
        zmq_msg_close (&built->body);
    built->has_body = false;
}

//  Build the envelope (and body frame for large bodies) outside the lock.
//  0 or -1 with the error set (nothing is then held).
int
mesh_msg_build (const mesh_head_t *head, const void *body, size_t size, void *data,
                mesh_free_fn *free_fn, void *hint, mesh_built_t *built)
{
    built->small_len = 0;
    built->out = NULL;
    built->has_body = false;
    mesh_envelope_t env;
    if (mesh_msg_head_envelope (&env, head))
        return -1;
    if (size > MESH_MAX_BODY)
        return mesh_fail (MESH_ETOOBIG, "body of %zu bytes exceeds %d", size, MESH_MAX_BODY);
    bool framed = size > MESH_MAX_INLINE_BODY;
    const void *inline_body = data? data: body;
    env.body.ptr = framed? NULL: (const uint8_t *) inline_body;
    env.body.len = framed? 0: (uint32_t) size;
    if (framed)
        env.flags |= MESH_FLAG_FRAMES;
    //  A small envelope is encoded on the stack: one pass of the encoder
    //  instead of sizing then encoding (~85 instructions a send), and a
    //  batch copies it from there
    if (env.body.len < MESH_BATCH_MAX_ENV)
        built->small_len = mesh_envelope_encode (&env, built->small, sizeof built->small);
    if (!built->small_len) {
        size_t hsize = mesh_envelope_size (&env);
        if (hsize == 0)         //  a field breaks a limit
            return mesh_fail (MESH_ETOOBIG, "a subject, header or content type breaks a limit");
        built->out = mesh_outbuf_reserve (hsize);
        if (!built->out)
            return mesh_fail (MESH_ESYS, "no memory for a message of %zu bytes", hsize);
        if (mesh_envelope_encode (&env, mesh_outbuf_room (built->out), hsize) != hsize) {
            mesh_outbuf_destroy (&built->out);
            return mesh_fail (MESH_ETOOBIG, "a subject, header or content type breaks a limit");
        }
    }
    if (!framed)
        return 0;
    if (data)
        zmq_msg_init_data (&built->body, data, size, free_fn, hint);
    else {
        zmq_msg_init_size (&built->body, size);
        memcpy (zmq_msg_data (&built->body), body, size);
    }
    built->has_body = true;
    return 0;
}

//  The built message as plain frames, for a message that is not sent on
//  a link (mesh_msg_new) or a HELLO on any socket. Returns nframes.
int
mesh_msg_built_frames (mesh_built_t *built, zmq_msg_t *frames)
{
    const void *env = built->small_len? built->small: mesh_outbuf_room (built->out);
    size_t len = built->small_len? built->small_len
                                 : mesh_outbuf_size (built->out);
    zmq_msg_init_size (&frames [0], len);
    memcpy (zmq_msg_data (&frames [0]), env, len);
    mesh_outbuf_destroy (&built->out);
    if (!built->has_body)
        return 1;
    zmq_msg_init (&frames [1]);
    zmq_msg_move (&frames [1], &built->body);
    built->has_body = false;
    return 2;
}

mesh_msg_t *
mesh_msg_new (const mesh_head_t *head, const void *body, size_t size,
              const char *sender, const char *sender_name)
{
    assert (head);
    mesh_built_t built;
    if (mesh_msg_build (head, body, size, NULL, NULL, NULL, &built))
        return NULL;
    zmq_msg_t frames [2];
    int nframes = mesh_msg_built_frames (&built, frames);
    mesh_msg_t *msg = (mesh_msg_t *) malloc (sizeof (mesh_msg_t));
    if (!msg || mesh_msg_init (msg, frames, nframes) != MESH_ENV_OK) {
        free (msg);
        if (!msg)
            for (int i = 0; i < nframes; i++)
                zmq_msg_close (&frames [i]);
        mesh_fail (MESH_EINVAL, "message does not encode");
        return NULL;
    }
    msg->heap = true;
    //  a bounded copy, not snprintf: patterns build a message per job of a
    //  batch, and the two snprintf calls were ~880 instructions of it
    size_t n = sender? strnlen (sender, sizeof msg->sender - 1): 0;
    memcpy (msg->sender, sender? sender: "", n);
    msg->sender [n] = 0;
    n = sender_name? strnlen (sender_name, sizeof msg->sender_name - 1): 0;
    memcpy (msg->sender_name, sender_name? sender_name: "", n);
    msg->sender_name [n] = 0;
    return msg;
}
