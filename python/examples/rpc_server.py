#!/usr/bin/env python3
"""RabbitMQ tutorial 6, RPC: serve "rpc_queue" with Fibonacci numbers.
Several servers share the calls (the least loaded one is chosen)."""
import sys

import meshbus


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def on_request(req):
    n = int(req.body)
    if n < 0 or n > 10000:
        raise ValueError("n must be 0..10000")
    print(" [.] fib(%s)" % n, flush=True)
    return str(fib(n))


with meshbus.Node("rpc-server") as node:
    node.serve("rpc_queue", on_request)
    print(" [x] Awaiting RPC requests", flush=True)
    try:
        node.run(timeout=float(sys.argv[1]) if len(sys.argv) > 1 else None)
    except KeyboardInterrupt:
        pass
