/*  =========================================================================
    mesh_zap - the node's ZAP handler (see mesh_zap.h)

    ZAP (rfc.zeromq.org/spec:27): a request is version "1.0", request id,
    domain, address, routing id, mechanism, then the mechanism's
    credentials (CURVE: the client's 32-byte public key). The reply is
    version, request id, status code, status text, user id, metadata.
    Every request is answered, even a malformed one (with 400), since the
    handshake it belongs to waits for the answer.
    ========================================================================= */

#include "mesh_zap.h"
#include "mesh_util.h"
#include <zmq.h>
#include <pthread.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>

#define MESH_ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define MESH_ZAP_FRAMES     8       //  a CURVE request has 7
#define MESH_ZAP_POLL_MS    100     //  how often the thread looks at `stop`

struct _mesh_zap_t {
    void *socket;
    pthread_t thread;
    mesh_zap_allow_fn *allow;
    void *arg;
    volatile int stop;
    uint64_t accepted, refused, malformed;
    pthread_mutex_t lock;           //  guards the refusal below
    bool refusal_pending;
    uint8_t refusal_key [32];
    char refusal_address [64];
};

static void
s_reply (void *socket, zmq_msg_t *request_id, const char *code, const char *text,
         const char *user_id)
{
    zmq_send (socket, "1.0", 3, ZMQ_SNDMORE);
    if (request_id)
        zmq_send (socket, zmq_msg_data (request_id), zmq_msg_size (request_id), ZMQ_SNDMORE);
    else
        zmq_send (socket, "", 0, ZMQ_SNDMORE);
    zmq_send (socket, code, strlen (code), ZMQ_SNDMORE);
    zmq_send (socket, text, strlen (text), ZMQ_SNDMORE);
    zmq_send (socket, user_id, strlen (user_id), ZMQ_SNDMORE);
    zmq_send (socket, "", 0, 0);
}

static void
s_handle (mesh_zap_t *self)
{
    zmq_msg_t frames [MESH_ZAP_FRAMES];
    int n = 0;
    bool more = true, overflow = false;
    while (more) {
        zmq_msg_t *into = n < MESH_ZAP_FRAMES? &frames [n]: NULL;
        zmq_msg_t spare;
        if (!into) {
            into = &spare;
            overflow = true;
        }
        zmq_msg_init (into);
        if (zmq_msg_recv (into, self->socket, 0) < 0) {
            zmq_msg_close (into);
            break;
        }
        more = zmq_msg_more (into);
        if (into == &spare)
            zmq_msg_close (&spare);
        else
            n++;
    }
    //  frames: 0 version, 1 request id, 2 domain, 3 address, 4 routing id,
    //  5 mechanism, 6 client key
    bool curve = n == 7 && !overflow
              && zmq_msg_size (&frames [0]) == 3 && memcmp (zmq_msg_data (&frames [0]), "1.0", 3) == 0
              && zmq_msg_size (&frames [5]) == 5 && memcmp (zmq_msg_data (&frames [5]), "CURVE", 5) == 0
              && zmq_msg_size (&frames [6]) == 32;
    if (!curve) {
        __atomic_add_fetch (&self->malformed, 1, __ATOMIC_RELAXED);
        s_reply (self->socket, n > 1? &frames [1]: NULL, "400", "CURVE only", "");
    }
    else {
        const uint8_t *key = (const uint8_t *) zmq_msg_data (&frames [6]);
        if (self->allow (self->arg, key)) {
            char z85 [41];
            zmq_z85_encode (z85, key, 32);
            __atomic_add_fetch (&self->accepted, 1, __ATOMIC_RELAXED);
            s_reply (self->socket, &frames [1], "200", "OK", z85);
        }
        else {
            __atomic_add_fetch (&self->refused, 1, __ATOMIC_RELAXED);
            pthread_mutex_lock (&self->lock);
            if (!self->refusal_pending) {
                self->refusal_pending = true;
                memcpy (self->refusal_key, key, 32);
                size_t len = zmq_msg_size (&frames [3]);
                if (len >= sizeof self->refusal_address)
                    len = sizeof self->refusal_address - 1;
                memcpy (self->refusal_address, zmq_msg_data (&frames [3]), len);
                self->refusal_address [len] = 0;
            }
            pthread_mutex_unlock (&self->lock);
            s_reply (self->socket, &frames [1], "400", "key not trusted", "");
        }
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close (&frames [i]);
}

static void *
s_run (void *arg)
{
    mesh_zap_t *self = (mesh_zap_t *) arg;
    zmq_pollitem_t item = { self->socket, 0, ZMQ_POLLIN, 0 };
    while (!__atomic_load_n (&self->stop, __ATOMIC_ACQUIRE)) {
        if (zmq_poll (&item, 1, MESH_ZAP_POLL_MS) > 0 && (item.revents & ZMQ_POLLIN))
            s_handle (self);
    }
    return NULL;
}

mesh_zap_t *
mesh_zap_new (void *ctx, mesh_zap_allow_fn *allow, void *arg)
{
    mesh_zap_t *self = (mesh_zap_t *) calloc (1, sizeof (mesh_zap_t));
    if (!self)
        return NULL;
    self->allow = allow;
    self->arg = arg;
    pthread_mutex_init (&self->lock, NULL);
    self->socket = zmq_socket (ctx, ZMQ_REP);
    int linger = 0;
    if (self->socket)
        zmq_setsockopt (self->socket, ZMQ_LINGER, &linger, sizeof linger);
    if (!self->socket || zmq_bind (self->socket, MESH_ZAP_ENDPOINT) != 0) {
        mesh_fail (MESH_ESYS, "cannot start the ZAP handler: %s", zmq_strerror (errno));
        if (self->socket)
            zmq_close (self->socket);
        pthread_mutex_destroy (&self->lock);
        free (self);
        return NULL;
    }
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        mesh_fail (MESH_ESYS, "cannot start the ZAP thread");
        zmq_close (self->socket);
        pthread_mutex_destroy (&self->lock);
        free (self);
        return NULL;
    }
    return self;
}

void
mesh_zap_destroy (mesh_zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mesh_zap_t *self = *self_p;
    __atomic_store_n (&self->stop, 1, __ATOMIC_RELEASE);
    pthread_join (self->thread, NULL);
    zmq_close (self->socket);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

uint64_t mesh_zap_accepted (mesh_zap_t *self) { return __atomic_load_n (&self->accepted, __ATOMIC_RELAXED); }
uint64_t mesh_zap_refused (mesh_zap_t *self) { return __atomic_load_n (&self->refused, __ATOMIC_RELAXED); }
uint64_t mesh_zap_malformed (mesh_zap_t *self) { return __atomic_load_n (&self->malformed, __ATOMIC_RELAXED); }

bool
mesh_zap_take_refusal (mesh_zap_t *self, uint8_t *key, char *address, size_t address_cap)
{
    pthread_mutex_lock (&self->lock);
    bool pending = self->refusal_pending;
    if (pending) {
        memcpy (key, self->refusal_key, 32);
        snprintf (address, address_cap, "%s", self->refusal_address);
        self->refusal_pending = false;
    }
    pthread_mutex_unlock (&self->lock);
    return pending;
}
