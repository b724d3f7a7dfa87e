#!/usr/bin/env python3
"""RabbitMQ tutorial 4, routing: receive the severities named.
receive_logs_direct.py [--count N] info warning error"""
import sys

import meshbus

args = sys.argv[1:]
count = None
if args[:1] == ["--count"]:
    count, args = int(args[1]), args[2:]
if not args:
    sys.exit("Usage: %s [info] [warning] [error]" % sys.argv[0])
with meshbus.Node("receive-logs-direct") as node:
    got = 0

    def callback(msg):
        global got
        print(" [x] %r:%r" % (msg.subject.split(".", 1)[1], msg.body), flush=True)
        got += 1
        if got == count:
            node.stop()
    for severity in args:
        node.subscribe("direct_logs." + severity, callback)
    print(" [*] Waiting for logs. To exit press CTRL+C", flush=True)
    try:
        node.run()
    except KeyboardInterrupt:
        pass
