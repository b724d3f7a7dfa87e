#!/usr/bin/env python3
"""A meshbus peer in Python: joins a node by seed, answers DIRECT messages.

usage: test_python_peer.py tcp://HOST:PORT [--name NAME] [--timeout S] [--until-bye]

Joins the node listening at tcp://HOST:PORT, waits for a DIRECT message,
prints it, sends it back with the subject "echo.<subject>", says BYE and
exits 0. With --until-bye it stays until the node says BYE instead. It
answers STATS_REQ with its own counters as JSON and the node's probes.
Exit 1 on timeout, or when the node stays silent for GONE_MS.

This is the example of docs/protocol.md, run by tests/test_node.c against
a node and against the meshbus tool. Needs python3-zmq and python3-msgpack.
"""
import argparse
import json
import os
import sys
import time

import msgpack
import zmq

# Kinds, flags and the envelope: docs/wire-envelope.md ("Kinds").
HELLO, PING, BYE, UPDATE, PEERS, DIRECT, STATS_REQ, STATS_REP = range(1, 9)
REPLY_WANTED, FRAMES = 0x1, 0x2
PROBE, ACK = 0x100, 0x200           # PING flags: a probe, and its answer
LINK = b"\x00"                      # routing id type byte of a peer's link
SUSPECT_MS = 1000                   # silence after which we doubt the node
GONE_MS = 3000                      # silence after which the node is gone


def envelope(kind, flags=0, seq=0, id=0, subject=None, reply=None,
             deadline=0, ctype=None, headers=None, body=None):
    return msgpack.packb([1, kind, flags, seq, id, subject, reply, deadline,
                          ctype, headers or None, body], use_bin_type=True)


def main():
    args = argparse.ArgumentParser()
    args.add_argument("seed")
    args.add_argument("--name", default="py-peer")
    args.add_argument("--timeout", type=float, default=10)
    args.add_argument("--until-bye", action="store_true")
    opts = args.parse_args()

    node_id = os.urandom(16)
    incarnation = int.from_bytes(os.urandom(8), "big") | 1
    ctx = zmq.Context()
    # Our inbox: the node connects a DEALER here and sends us everything
    inbox = ctx.socket(zmq.ROUTER)
    port = inbox.bind_to_random_port("tcp://127.0.0.1")
    # Our link to the node's inbox; the routing id says who we are
    link = ctx.socket(zmq.DEALER)
    link.setsockopt(zmq.ROUTING_ID, LINK + node_id)
    link.setsockopt(zmq.LINGER, 1000)
    link.connect(opts.seed)
    # HELLO: id = incarnation, subject = name, reply = our inbox,
    # seq = our suspect timeout. Without the PROBES flag (0x20) the node
    # sends us a frame at least every seq/4 ms: we judge it by silence.
    def hello_envelope(flags):
        return envelope(HELLO, flags, seq=SUSPECT_MS, id=incarnation,
                        subject=opts.name, reply="tcp://127.0.0.1:%d" % port,
                        headers={"lang": "python"})
    link.send(hello_envelope(REPLY_WANTED))
    hello = hello_envelope(0)               # our answer to a HELLO that asks
    sent = time.monotonic()
    heartbeat = SUSPECT_MS / 4000
    heard = time.monotonic()
    frames_in = frames_out = 1
    deadline = time.monotonic() + opts.timeout
    status = 1

    while time.monotonic() < deadline:
        if time.monotonic() - sent >= heartbeat:
            link.send(envelope(PING))       # any frame is a sign of life
            sent = time.monotonic()
            frames_out += 1
        if time.monotonic() - heard >= GONE_MS / 1000:
            print("the node went silent")
            break
        if not inbox.poll(50):
            continue
        frames = inbox.recv_multipart()
        routing_id, header, body_frames = frames[0], frames[1], frames[2:]
        try:
            (version, kind, flags, seq, msg_id, subject, reply, _deadline,
             ctype, headers, body) = msgpack.unpackb(header, raw=False)[:11]
        except (ValueError, TypeError, msgpack.UnpackException):
            continue                        # a real peer counts these
        if flags & FRAMES:
            body = b"".join(body_frames)
        frames_in += 1
        heard = time.monotonic()            # any frame is a sign of life
        if kind == HELLO:
            # the node's HELLO: we ping at its suspect/4 (it may not need
            # it: a node probes a silent peer, but any frame will do).
            # Always answer one that asks for a reply, even though we sent
            # ours first: it may be a node that lost us and needs it now.
            print("HELLO from %s (%s) at %s" % (subject, routing_id[1:17].hex(), reply))
            if seq:
                heartbeat = min(heartbeat, seq / 4000)
            if flags & REPLY_WANTED:
                link.send(hello)
                frames_out += 1
        elif kind == DIRECT:
            print("DIRECT %s %r" % (subject, (body or b"").decode()))
            link.send(envelope(DIRECT, subject="echo." + subject, body=body))
            frames_out += 1
            if not opts.until_bye:
                link.send(envelope(BYE))
                status = 0
                break
        elif kind == STATS_REQ:
            stats = {"id": node_id.hex(), "name": opts.name, "language": "python",
                     "frames.in": frames_in, "frames.out": frames_out}
            link.send(envelope(STATS_REP, id=msg_id, ctype="application/json",
                               body=json.dumps(stats).encode()))
            frames_out += 1
        elif kind == PING and flags & PROBE:
            link.send(envelope(PING, ACK, id=msg_id))   # answer a probe at once
            frames_out += 1
        elif kind == BYE:
            print("BYE from the node")
            status = 0 if opts.until_bye else 1
            break
        # other PINGs, UPDATE, PEERS and kinds we do not know need nothing
    else:
        print("timed out")
    link.close()                            # lingers until BYE is sent
    inbox.close(0)
    ctx.term()
    return status


if __name__ == "__main__":
    sys.exit(main())
