/*  =========================================================================
    mesh_reqrep_cache - a server's bounded memory of recent requests

    Private to patterns/reqrep/mesh_reqrep*.c. Per caller (peer id) a ring of
    MESH_RRC_RING slots indexed by request id: a caller numbers its
    requests consecutively, so its last MESH_RRC_RING ids never share a
    slot and a lookup is one index, no hash, no allocation once the slot's
    buffer has grown to the reply's size. Bounded in callers and in bytes;
    what it must forget is reported to the caller of these functions so it
    can be counted.
    ========================================================================= */

#ifndef MESH_REQREP_CACHE_H_INCLUDED
#define MESH_REQREP_CACHE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define MESH_RRC_RING           512             //  requests remembered per caller
#define MESH_RRC_CALLERS        512             //  callers remembered
#define MESH_RRC_BYTES          (64u << 20)     //  reply bytes kept, all callers
#define MESH_RRC_MAX_REPLY      (64u << 10)     //  larger replies are not kept

typedef enum {
    MESH_RRC_NEW = 0,           //  first time: the slot now says RUNNING
    MESH_RRC_RUNNING,           //  a duplicate of a request still being served
    MESH_RRC_DONE,              //  a duplicate of one answered: the reply is kept
    MESH_RRC_UNKEPT,            //  a duplicate of one answered with a reply too big to keep
} mesh_rrc_state_t;

//  A kept reply (borrowed from the cache until its next call)
typedef struct {
    uint32_t flags;
    const char *ctype;          //  NUL-terminated, "" if none
    const void *body;
    size_t size;
} mesh_rrc_reply_t;

typedef struct _mesh_rrc_t mesh_rrc_t;

mesh_rrc_t *
    mesh_rrc_new (size_t max_callers, size_t max_bytes);
void
    mesh_rrc_destroy (mesh_rrc_t **self_p);
//  A request from caller arrived: is it new? For MESH_RRC_DONE, *reply has
//  the kept reply. *evicted gets the number of callers forgotten to make
//  room (the caller of this function counts them).
int
    mesh_rrc_begin (mesh_rrc_t *self, const char *caller, uint64_t id,
                    mesh_rrc_reply_t *reply, size_t *evicted);
//  The reply to (caller, id) is sent: keep it. Returns false when it could
//  not be kept (slot taken by a newer request, caller forgotten, reply too
//  big: a duplicate then gets an error instead of a second run).
bool
    mesh_rrc_finish (mesh_rrc_t *self, const char *caller, uint64_t id, uint32_t flags,
                     const char *ctype, const void *body, size_t size, size_t *evicted);
//  Number of callers and bytes kept now
size_t
    mesh_rrc_callers (mesh_rrc_t *self);
size_t
    mesh_rrc_bytes (mesh_rrc_t *self);

#endif
