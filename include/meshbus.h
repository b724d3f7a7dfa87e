/*  =========================================================================
    meshbus.h - the one include for applications

    meshbus is a brokerless message bus. Nodes find each other (UDP beacon on
    loopback or a LAN, seed addresses, gossip) and talk directly over one
    ZeroMQ link per peer pair, with msgpack envelopes (docs/wire-*.md).

    The API is split by topic; this header includes every part an
    application uses:

        meshbus/base.h      errors, logging, subjects, small helpers
        meshbus/msg.h       messages as handlers see them, mesh_head_t
        meshbus/node.h      a node: settings, loop, links, peers, counters
        meshbus/security.h  CURVE, trusted keys, cluster secret
        meshbus/store.h     a crash-safe record log (LMDB)
        meshbus/pubsub.h    publish-subscribe
        meshbus/reqrep.h    request-reply
        meshbus/pipeline.h  work queues

    meshbus/pattern.h, the interface a pattern plugs into (kinds, hooks,
    announcements, building messages), is not included: only a pattern
    needs it. docs/architecture.md draws the layers.

    Conventions: actions return 0 or -1 with the reason in mesh_errno();
    constructors and queries return an object or NULL; `T **` arguments are
    taken over by the callee on success; const returns are borrowed.
    ========================================================================= */

#ifndef MESHBUS_H_INCLUDED
#define MESHBUS_H_INCLUDED

#include "meshbus/base.h"
#include "meshbus/msg.h"
#include "meshbus/node.h"
#include "meshbus/security.h"
#include "meshbus/store.h"
#include "meshbus/pubsub.h"
#include "meshbus/reqrep.h"
#include "meshbus/pipeline.h"

#endif
