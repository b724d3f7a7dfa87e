/*  testnet.h - what in-process tests share: a private network (own cluster
    name and beacon port, so concurrent runs never mix), nodes on it, a
    monotonic clock and body checks. Header-only: each tests/test_*.c is
    its own program. */
#ifndef TESTNET_H_INCLUDED
#define TESTNET_H_INCLUDED

#include "meshbus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef BEACON_MS
#define BEACON_MS 100               //  fast discovery in tests
#endif

typedef struct {
    char cluster [64];
    int port;
} s_net_t;

static inline s_net_t
s_net_named (const char *prefix)
{
    s_net_t net;
    snprintf (net.cluster, sizeof net.cluster, "%s-%d-%08lx", prefix, (int) getpid (), random ());
    net.port = 20000 + (int) (random () % 40000);
    return net;
}

//  A node of the test's network, not started; NULL on failure (a forked
//  child must not assert)
static inline mesh_node_t *
s_node_try (const s_net_t *net, const char *name)
{
    mesh_node_t *node = mesh_node_new (name);
    if (node
    && (mesh_node_set_cluster (node, net->cluster)
     || mesh_node_set_beacon_port (node, net->port)
     || mesh_node_set_beacon_interval (node, BEACON_MS)))
        mesh_node_destroy (&node);
    return node;
}

static inline mesh_node_t *
s_node (const s_net_t *net, const char *name)
{
    mesh_node_t *node = s_node_try (net, name);
    assert_non_null (node);
    return node;
}

static inline int64_t
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline bool
s_body_is (const mesh_msg_t *msg, const char *text)
{
    return mesh_msg_size (msg) == strlen (text)
        && memcmp (mesh_msg_body (msg), text, strlen (text)) == 0;
}

#endif
