#!/usr/bin/env python3
"""RabbitMQ tutorial 4, routing: a log line with a severity; receivers
subscribe to the severities they want. emit_log_direct.py [SEVERITY] [MESSAGE]"""
import sys

import meshbus

severity = sys.argv[1] if len(sys.argv) > 1 else "info"
message = " ".join(sys.argv[2:]) or "Hello World!"
with meshbus.Node("emit-log-direct") as node:
    # a fresh node: let discovery settle (a beacon interval) so that every
    # receiver running now is found; nobody there is fine, as with a fanout
    node.run(timeout=1.2)
    node.publish("direct_logs." + severity, message.encode())
    print(" [x] Sent %r:%r" % (severity, message))
