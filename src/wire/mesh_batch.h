/*  mesh_batch - what libzmq holds of a link, counted in messages, and small
    messages to one peer packed into one link frame. See mesh_batch.c. */
#ifndef MESH_BATCH_H_INCLUDED
#define MESH_BATCH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define MESH_BATCH_MAGIC    0xc1    //  first byte of a batch frame: msgpack never uses it
#define MESH_BATCH_BYTES    8192    //  a batch is handed to libzmq once it is this long
#define MESH_BATCH_MAX_ENV  4096    //  longer envelopes travel in frames of their own
#define MESH_BATCH_HEAD     5       //  magic and one length: what a batch of one drops

//  A link's frames from the moment libzmq takes them until libzmq lets go
//  (encrypted or written by its I/O thread). Shared by the link and every
//  frame in flight; the last one to let go frees it.
typedef struct _mesh_flight_t mesh_flight_t;

//  wake_fd: an eventfd written when the link drains to no frame while a
//  batch waits for it (the keeper's: it hands the batch over)
mesh_flight_t *
    mesh_flight_new (int wake_fd);
//  The link lets go (its frames in flight may still hold it)
void
    mesh_flight_release (mesh_flight_t **self_p);
//  Messages and frames libzmq holds now (read from any thread)
size_t
    mesh_flight_msgs (mesh_flight_t *self);
int
    mesh_flight_frames (mesh_flight_t *self);
//  Say whether a batch waits for the link to drain. After setting it, read
//  mesh_flight_frames: either that read sees the drain or the I/O thread
//  sees the flag and writes wake_fd, never neither.
void
    mesh_flight_set_waiting (mesh_flight_t *self, bool waiting);

//  Bytes on their way to one link: one envelope, or a batch of them
typedef struct _mesh_outbuf_t mesh_outbuf_t;

//  Append an envelope of len bytes to buf (NULL: a new buffer). Returns the
//  buffer, which may have moved, or NULL when out of memory (buf is then
//  untouched). A buffer of one envelope is sent as that envelope alone.
mesh_outbuf_t *
    mesh_outbuf_add (mesh_outbuf_t *buf, const void *env, size_t len);
//  A new buffer for one envelope of len bytes, written by the caller at
//  mesh_outbuf_room; NULL when out of memory
mesh_outbuf_t *
    mesh_outbuf_reserve (size_t len);
uint8_t *
    mesh_outbuf_room (mesh_outbuf_t *buf);
//  Envelopes in the buffer, and the bytes the link frame will have
uint32_t
    mesh_outbuf_count (const mesh_outbuf_t *buf);
size_t
    mesh_outbuf_size (const mesh_outbuf_t *buf);
void
    mesh_outbuf_destroy (mesh_outbuf_t **buf_p);
//  Turn the buffer into a link frame (no copy), counted in flight until
//  libzmq releases it. The frame owns the buffer from here on; closing an
//  unsent frame releases it too. -1 when out of memory: the buffer is gone.
int
    mesh_outbuf_frame (mesh_outbuf_t *buf, mesh_flight_t *flight, zmq_msg_t *frame);

//  Receiving. A frame that starts with MESH_BATCH_MAGIC is a batch
bool
    mesh_batch_is (const void *data, size_t size);
//  Walk a batch frame. *pos starts at 0. Returns 1 with the next
//  envelope's place in *at and *len, 0 at the end, -1 when the frame is no
//  batch, or a length is 0 or runs past its end (the rest is unreadable).
int
    mesh_batch_next (const void *data, size_t size, size_t *pos, size_t *at, size_t *len);

#endif
