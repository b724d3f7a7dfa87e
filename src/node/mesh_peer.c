/*  =========================================================================
    mesh_peer - what a node knows of one peer

    A peer record exists from the moment we learn of a peer (beacon, seed,
    gossip or its HELLO) and holds our one link to it: a DEALER connected
    to its ROUTER inbox. The record is CONNECTING until its HELLO arrives,
    then ALIVE, SUSPECT when silent, and is removed when gone.
    ========================================================================= */

#include "mesh_node_int.h"

static void
s_chunk_free (void **item)
{
    zchunk_destroy ((zchunk_t **) item);
}

static void
s_version_free (void **item)
{
    free (*item);
    *item = NULL;
}

mesh_peer_t *
mesh_peer_new (const uint8_t *id, const char *endpoint, int wake_fd)
{
    mesh_peer_t *self = (mesh_peer_t *) zmalloc (sizeof (mesh_peer_t));
    self->flight = mesh_flight_new (wake_fd);
    if (!self->flight) {
        free (self);
        return NULL;
    }
    memcpy (self->id, id, MESH_ID_SIZE);
    mesh_hex (id, MESH_ID_SIZE, self->hex);
    snprintf (self->endpoint, sizeof self->endpoint, "%s", endpoint);
    snprintf (self->name, sizeof self->name, "%.8s", self->hex);
    self->state = MESH_PEER_CONNECTING;
    self->rtt_us = -1;
    self->monitor_fd = self->monitor_ep = -1;
    mesh_security_conn_init (&self->conn);
    self->created = self->last_heard = self->last_spoke = mesh_mono_ms ();
    self->headers = zhashx_new ();
    zhashx_set_destructor (self->headers, (zhashx_destructor_fn *) zstr_free);
    self->announce = zhashx_new ();
    zhashx_set_destructor (self->announce, s_chunk_free);
    self->announce_ver = zhashx_new ();
    zhashx_set_destructor (self->announce_ver, s_version_free);
    self->counters = mesh_counters_new ();
    return self;
}

void
mesh_peer_destroy (mesh_peer_t **self_p)
{
    if (*self_p) {
        mesh_peer_t *self = *self_p;
        mesh_liveness_unwatch (self);
        if (self->dealer)
            zmq_close (self->dealer);
        //  frames still in libzmq hold the flight until they are freed
        mesh_outbuf_destroy (&self->batch);
        mesh_flight_release (&self->flight);
        zhashx_destroy (&self->headers);
        zhashx_destroy (&self->announce);
        zhashx_destroy (&self->announce_ver);
        mesh_counters_destroy (&self->counters);
        mesh_security_conn_fini (&self->conn);
        free (self);
        *self_p = NULL;
    }
}

void
mesh_peer_count_n (mesh_node_t *node, mesh_peer_t *peer, const char *name, uint64_t delta)
{
    mesh_counters_add (node->counters, name, delta);
    if (peer)
        mesh_counters_add (peer->counters, name, delta);
}

void
mesh_peer_count (mesh_node_t *node, mesh_peer_t *peer, const char *name)
{
    mesh_peer_count_n (node, peer, name, 1);
}
