#!/usr/bin/env python3
"""RabbitMQ tutorial 5, topics: binding keys with * (one word) and #
(zero or more). receive_logs_topic.py [--count N] "kern.*" "*.critical" """
import sys

import meshbus

args = sys.argv[1:]
count = None
if args[:1] == ["--count"]:
    count, args = int(args[1]), args[2:]
if not args:
    sys.exit("Usage: %s [binding_key]..." % sys.argv[0])
with meshbus.Node("receive-logs-topic") as node:
    got = 0

    def callback(msg):
        global got
        print(" [x] %r:%r" % (msg.subject.split(".", 1)[1], msg.body), flush=True)
        got += 1
        if got == count:
            node.stop()
    for key in args:
        node.subscribe("topic_logs." + key, callback)
    print(" [*] Waiting for logs. To exit press CTRL+C", flush=True)
    try:
        node.run()
    except KeyboardInterrupt:
        pass
