#!/usr/bin/env python3
"""RabbitMQ tutorial 6, RPC: call "rpc_queue" and wait for the answer (no
reply queue, no correlation id to manage: call() does it).
rpc_client.py [N]"""
import sys

import meshbus

n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
with meshbus.Node("rpc-client") as node:
    print(" [x] Requesting fib(%d)" % n)
    try:
        response = node.call("rpc_queue", str(n), timeout=10, wait=True)
    except meshbus.RemoteError as exc:
        sys.exit(" [!] server said: %s" % exc)
    print(" [.] Got %s" % response.text)
