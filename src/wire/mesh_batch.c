/*  =========================================================================
    mesh_batch - what libzmq holds of a link, counted in messages, and small
    messages to one peer packed into one link frame

    Every frame costs libzmq the same on both sides whatever its size, and
    CURVE encrypts and authenticates each one: at 100 bytes that fixed cost
    is most of a message's. So when a link is backed up (libzmq still holds
    two frames of it or more) small messages wait in one buffer, and the
    buffer goes out as one frame once the link drains to one frame, or the
    buffer is MESH_BATCH_BYTES long. An idle link sends every message at
    once: batching never adds a wait to a link that was not already queued.

    The node knows what libzmq holds through zmq_msg_init_data's free
    function, which libzmq's I/O thread calls once it has encrypted or
    written a frame: it counts frames and messages down there. That count
    is the link's high-water mark, in messages whatever the batching
    (libzmq's own counts frames). When the link drains to nothing while a
    batch waits, the free function writes the keeper's eventfd and the
    keeper hands the batch over: nobody else would if the application sent
    nothing more.

    Wire: a batch frame is MESH_BATCH_MAGIC (0xc1, which msgpack never
    uses, so no envelope starts with it), then for each message a 4-byte
    big-endian length and its envelope. A batch of one is sent as the bare
    envelope, the frame before batching existed. Senders batch only for
    peers whose HELLO said they read batches (MESH_FLAG_BATCHES).
    ========================================================================= */

#include "mesh_bytes.h"
#include "mesh_batch.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct _mesh_flight_t {
    int refs;                   //  the link, and each frame in flight
    int frames;                 //  frames libzmq holds
    size_t msgs;                //  messages in those frames
    int waiting;                //  a batch waits for the link to drain
    int wake_fd;
};

struct _mesh_outbuf_t {
    mesh_flight_t *flight;      //  set once the buffer is a frame
    uint32_t count;
    size_t len, cap;            //  of data, magic included
    uint8_t data [];
};

mesh_flight_t *
mesh_flight_new (int wake_fd)
{
    mesh_flight_t *self = (mesh_flight_t *) calloc (1, sizeof (mesh_flight_t));
    if (self) {
        self->refs = 1;
        self->wake_fd = wake_fd;
    }
    return self;
}

void
mesh_flight_release (mesh_flight_t **self_p)
{
    if (*self_p) {
        if (__atomic_sub_fetch (&(*self_p)->refs, 1, __ATOMIC_ACQ_REL) == 0)
            free (*self_p);
        *self_p = NULL;
    }
}

size_t
mesh_flight_msgs (mesh_flight_t *self)
{
    return __atomic_load_n (&self->msgs, __ATOMIC_RELAXED);
}

int
mesh_flight_frames (mesh_flight_t *self)
{
    return __atomic_load_n (&self->frames, __ATOMIC_SEQ_CST);
}

void
mesh_flight_set_waiting (mesh_flight_t *self, bool waiting)
{
    //  only the sender writes the flag, so its own relaxed read is exact:
    //  an idle link's flush skips the sequentially consistent store (a
    //  locked instruction) for a flag that was never raised
    if (__atomic_load_n (&self->waiting, __ATOMIC_RELAXED) != (waiting? 1: 0))
        __atomic_store_n (&self->waiting, waiting? 1: 0, __ATOMIC_SEQ_CST);
}

//  libzmq is done with a frame (its I/O thread, or whoever closes it)
static void
s_frame_free (void *data, void *hint)
{
    (void) data;
    mesh_outbuf_t *buf = (mesh_outbuf_t *) hint;
    mesh_flight_t *flight = buf->flight;
    __atomic_sub_fetch (&flight->msgs, buf->count, __ATOMIC_RELAXED);
    //  sequentially consistent with mesh_flight_set_waiting and the
    //  sender's read of frames: one of the two sees the other
    if (__atomic_sub_fetch (&flight->frames, 1, __ATOMIC_SEQ_CST) == 0
    &&  __atomic_load_n (&flight->waiting, __ATOMIC_SEQ_CST) && flight->wake_fd >= 0) {
        uint64_t one = 1;
        if (write (flight->wake_fd, &one, sizeof one) < 0) {
            //  the eventfd is already signalled
        }
    }
    free (buf);
    mesh_flight_release (&flight);
}

mesh_outbuf_t *
mesh_outbuf_reserve (size_t len)
{
    size_t cap = MESH_BATCH_HEAD + len;
    mesh_outbuf_t *buf = (mesh_outbuf_t *) malloc (sizeof (mesh_outbuf_t) + cap);
    if (!buf)
        return NULL;
    buf->flight = NULL;
    buf->count = 1;
    buf->len = cap;
    buf->cap = cap;
    buf->data [0] = MESH_BATCH_MAGIC;
    mesh_put_be (buf->data + 1, len, 4);
    return buf;
}

uint8_t *
mesh_outbuf_room (mesh_outbuf_t *buf)
{
    return buf->data + MESH_BATCH_HEAD;
}

mesh_outbuf_t *
mesh_outbuf_add (mesh_outbuf_t *buf, const void *env, size_t len)
{
    if (!buf) {
        buf = mesh_outbuf_reserve (len);
        if (buf)
            memcpy (buf->data + MESH_BATCH_HEAD, env, len);
        return buf;
    }
    size_t need = buf->len + 4 + len;
    if (need > buf->cap) {
        //  the second message makes it a batch: room for a whole one, once
        size_t cap = need > MESH_BATCH_BYTES + MESH_BATCH_MAX_ENV + 4?
                     need: MESH_BATCH_BYTES + MESH_BATCH_MAX_ENV + 4;
        mesh_outbuf_t *grown = (mesh_outbuf_t *) realloc (buf, sizeof (mesh_outbuf_t) + cap);
        if (!grown)
            return NULL;
        buf = grown;
        buf->cap = cap;
    }
    mesh_put_be (buf->data + buf->len, len, 4);
    memcpy (buf->data + buf->len + 4, env, len);
    buf->len = need;
    buf->count++;
    return buf;
}

uint32_t
mesh_outbuf_count (const mesh_outbuf_t *buf)
{
    return buf->count;
}

size_t
mesh_outbuf_size (const mesh_outbuf_t *buf)
{
    return buf->count == 1? buf->len - MESH_BATCH_HEAD: buf->len;
}

void
mesh_outbuf_destroy (mesh_outbuf_t **buf_p)
{
    free (*buf_p);
    *buf_p = NULL;
}

int
mesh_outbuf_frame (mesh_outbuf_t *buf, mesh_flight_t *flight, zmq_msg_t *frame)
{
    buf->flight = flight;
    __atomic_add_fetch (&flight->refs, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch (&flight->msgs, buf->count, __ATOMIC_RELAXED);
    __atomic_add_fetch (&flight->frames, 1, __ATOMIC_SEQ_CST);
    uint8_t *data = buf->count == 1? buf->data + MESH_BATCH_HEAD: buf->data;
    if (zmq_msg_init_data (frame, data, mesh_outbuf_size (buf), s_frame_free, buf) != 0) {
        //  libzmq could not allocate its part: what it carried is gone
        s_frame_free (data, buf);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Receiving

bool
mesh_batch_is (const void *data, size_t size)
{
    return size >= 1 && *(const uint8_t *) data == MESH_BATCH_MAGIC;
}

int
mesh_batch_next (const void *data, size_t size, size_t *pos, size_t *at, size_t *len)
{
    const uint8_t *bytes = (const uint8_t *) data;
    if (!mesh_batch_is (data, size))
        return -1;
    if (*pos == 0)
        *pos = 1;
    if (*pos >= size)
        return 0;
    if (size - *pos < 4)
        return -1;
    const uint8_t *p = bytes + *pos;
    size_t n = (size_t) mesh_get_be (p, 4);
    if (n == 0 || n > size - *pos - 4)
        return -1;
    *at = *pos + 4;
    *len = n;
    *pos += 4 + n;
    return 1;
}
