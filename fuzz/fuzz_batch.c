// sources: src/wire/mesh_batch.c src/wire/mesh_envelope.c
/*  =========================================================================
    fuzz_batch - libFuzzer target for the batch frame walk (mesh_batch_next)

    Whatever the bytes, the walk must end, give only places inside the
    frame, each right after its 4-byte length, in order, and decode each
    one without reading outside it. What it walked must survive a round
    trip: the same envelopes put in a buffer by the sender's code make the
    same bytes again (a batch of one is the bare envelope), and the
    in-flight count goes back to nothing when the frame is closed. A
    broken invariant abort()s so libFuzzer saves the input.
    ========================================================================= */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_batch.h"
#include "mesh_envelope.h"

static void
s_check (bool condition)
{
    if (!condition)
        abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    size_t pos = 0, at, len, expect = 1, parts = 0;
    int rc;
    mesh_outbuf_t *buf = NULL;
    while ((rc = mesh_batch_next (data, size, &pos, &at, &len)) == 1) {
        s_check (at == expect + 4 && len >= 1 && at + len <= size && pos == at + len);
        expect = pos;
        parts++;
        mesh_envelope_t env;
        mesh_envelope_decode (&env, data + at, len);
        mesh_outbuf_t *grown = mesh_outbuf_add (buf, data + at, len);
        s_check (grown != NULL);
        buf = grown;
        s_check (parts < size);         //  every part takes 5 bytes or more
    }
    s_check (rc == 0 || rc == -1);
    s_check (mesh_batch_is (data, size) || (rc == -1 && parts == 0));
    if (!buf)
        return 0;
    mesh_flight_t *flight = mesh_flight_new (-1);
    zmq_msg_t frame;
    s_check (mesh_outbuf_frame (buf, flight, &frame) == 0);
    s_check (mesh_flight_msgs (flight) == parts && mesh_flight_frames (flight) == 1);
    const uint8_t *out = (const uint8_t *) zmq_msg_data (&frame);
    size_t out_size = zmq_msg_size (&frame);
    if (parts == 1)
        s_check (out_size == len && memcmp (out, data + at, len) == 0);
    else
        s_check (out_size == expect && memcmp (out, data, expect) == 0);
    zmq_msg_close (&frame);
    s_check (mesh_flight_msgs (flight) == 0 && mesh_flight_frames (flight) == 0);
    mesh_flight_release (&flight);
    return 0;
}
