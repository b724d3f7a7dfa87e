/*  =========================================================================
    mesh_discovery - how a node hears of peers: the UDP beacon, seeds,
    gossip (docs/protocol.md#discovery)

    It owns its state (the beacon socket and its schedule, the cluster tag,
    the seeds' probes and backoff, the per-address rate limit, the gossip
    timer) and never reads the node's peer table: it returns what it heard
    ("node X at E with key K", "X leaves", "seed S is due: send a HELLO on
    this probe") and the node decides, adds and removes
    (mesh_node_discovery.c). Every call is made with the node's lock held,
    except mesh_discovery_seed_resolve.
    ========================================================================= */

#ifndef MESH_DISCOVERY_H_INCLUDED
#define MESH_DISCOVERY_H_INCLUDED

#include "meshbus/pattern.h"
#include "mesh_util.h"
#include "mesh_limits.h"
#include "mesh_envelope.h"
#include "mesh_counters.h"
#include "mesh_security.h"
#include <czmq.h>

#define MESH_BEACON_BACKOFF     8       //  stable membership: beacons slow to 8x the interval

typedef struct _mesh_discovery_t mesh_discovery_t;

//  What the node tells discovery at start; strings are copied
typedef struct {
    void *ctx;                  //  the node's ZeroMQ context (seed probes)
    const char *ifaces;         //  beacon interfaces, NULL or "": default
    int beacon_port;
    int beacon_ivl;             //  ms, 0: no beacons
    int gossip_ms;
    const uint8_t *id;          //  MESH_ID_SIZE bytes
    const char *name;
    uint64_t incarnation;
    const char *cluster;
    const char *bind_host;      //  as configured, "" = none
    zlistx_t *seeds;            //  strings, validated by mesh_node_add_seed
    bool verbose;
} mesh_discovery_config_t;

//  A node heard of, by beacon or gossip
typedef struct {
    uint8_t id [MESH_ID_SIZE];
    char hex [33];
    char endpoint [128];        //  where to link: tcp://host:port
    bool has_key;               //  its CURVE key, as it says
    uint8_t key [MESH_KEY_SIZE];
    uint64_t incarnation;       //  beacon only
    bool leaving;               //  beacon only: it says it leaves
    char from [64];             //  beacon only: the source address
} mesh_sighting_t;

//  counters: the node's; security: the node's. Both borrowed, and must
//  outlive the instance.
mesh_discovery_t *
    mesh_discovery_new (mesh_counters_t *counters, mesh_security_t *security);
void
    mesh_discovery_destroy (mesh_discovery_t **self_p);

//  Open the beacon (also when an interface was chosen with beacons off: it
//  tells which address the inbox binds to), make the seed table. 0 or -1.
int
    mesh_discovery_start (mesh_discovery_t *self, const mesh_discovery_config_t *config);
//  The beacon's interface address, or NULL without a beacon
const char *
    mesh_discovery_host (mesh_discovery_t *self);
//  The inbox is bound there: beacons can go out
void
    mesh_discovery_bound (mesh_discovery_t *self, const char *endpoint);
//  A LEAVING beacon, then close the beacon and probes (safe twice)
void
    mesh_discovery_stop (mesh_discovery_t *self);
//  The fd the keeper polls for beacons; -1 when none are received
int
    mesh_discovery_fd (mesh_discovery_t *self);

//  Beacons waiting: up to max sightings that passed every check of the
//  packet (cluster, self, security); what was ignored is counted. Reads at
//  most *budget datagrams (decremented). Fewer than max: nothing left to
//  read, or the budget is spent.
size_t
    mesh_discovery_beacon_in (mesh_discovery_t *self, mesh_sighting_t *out, size_t max,
                              int *budget);
//  A node not met yet, from this address: within its rate? (a token
//  bucket per source address, so invented ids cannot fill the table)
bool
    mesh_discovery_admit (mesh_discovery_t *self, const char *from, int64_t now);
//  Count a beacon the node ignored (beacon.ignored.<reason>)
void
    mesh_discovery_ignore (mesh_discovery_t *self, const char *reason);
//  Send a beacon when one is due; peers: how many the node knows (the
//  backoff's ceiling grows with the mesh). Returns when the next is due
//  (INT64_MAX: no beacons).
int64_t
    mesh_discovery_beacon_tick (mesh_discovery_t *self, int64_t now, size_t peers);
//  Membership changed (ENTER, EXIT): beacons back to their interval
void
    mesh_discovery_changed (mesh_discovery_t *self);

//  Entry i of a PEERS message: 0 with the sighting (its own id: -2, to
//  skip silently), or -1 when malformed (the node counts it for the
//  sender)
int
    mesh_discovery_gossip_entry (mesh_discovery_t *self, const mesh_envelope_t *env, uint32_t i,
                                 mesh_sighting_t *out);
//  A gossiped node the node does not know: NULL to link to it, else the
//  counter of the refusal (a CURVE peer we cannot reach, an untrusted key)
const char *
    mesh_discovery_gossip_vet (mesh_discovery_t *self, const mesh_sighting_t *sighting);
//  The gossip round is due (then the next is scheduled)
bool
    mesh_discovery_gossip_due (mesh_discovery_t *self, int64_t now);

//  Seeds
size_t
    mesh_discovery_seed_count (mesh_discovery_t *self);
//  When seed i is next due
int64_t
    mesh_discovery_seed_next (mesh_discovery_t *self, size_t i);
//  Resolve seed i's host to tcp://IP:PORT. Called WITHOUT the node's lock
//  (a slow resolver must not stall liveness); reads only what start fixed.
//  1: resolved; 0: unresolved; -1: not an endpoint (nothing to do)
int
    mesh_discovery_seed_resolve (mesh_discovery_t *self, size_t i, char *resolved, size_t cap);
//  Lock held again, seed i's verdict. resolved: NULL when it did not
//  resolve; satisfied: the node already has a live peer there (or it is
//  ourselves). Returns the probe to send a HELLO (REPLY_WANTED) on, or
//  NULL; reschedules the seed either way.
void *
    mesh_discovery_seed_verdict (mesh_discovery_t *self, size_t i, int64_t now,
                                 const char *resolved, bool satisfied);

#endif
