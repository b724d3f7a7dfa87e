#!/usr/bin/env python3
"""RabbitMQ tutorial 3, publish/subscribe: broadcast a log line to every
receive_logs.py running (a fanout: every subscriber of "logs" gets it)."""
import sys

import meshbus

message = " ".join(sys.argv[1:]) or "info: Hello World!"
with meshbus.Node("emit-log") as node:
    # a fresh node: let discovery settle (a beacon interval) so that every
    # receiver running now is found; nobody there is fine, as with a fanout
    node.run(timeout=1.2)
    node.publish("logs", message.encode())
    print(" [x] Sent %r" % message)
