#!/usr/bin/env python3
"""RabbitMQ tutorial 3, publish/subscribe: print every log line.
receive_logs.py [COUNT]"""
import sys

import meshbus

count = int(sys.argv[1]) if len(sys.argv) > 1 else None
with meshbus.Node("receive-logs") as node:
    logs = node.subscribe("logs")
    print(" [*] Waiting for logs. To exit press CTRL+C", flush=True)
    try:
        for n, msg in enumerate(logs, 1):
            print(" [x] %r" % msg.body, flush=True)
            if n == count:
                break
    except KeyboardInterrupt:
        pass
