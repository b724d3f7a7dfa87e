#!/usr/bin/env python3
"""RabbitMQ tutorial 5, topics: a message with a dotted routing key
("<facility>.<severity>"). emit_log_topic.py [KEY] [MESSAGE]"""
import sys

import meshbus

key = sys.argv[1] if len(sys.argv) > 1 else "anonymous.info"
message = " ".join(sys.argv[2:]) or "Hello World!"
with meshbus.Node("emit-log-topic") as node:
    # a fresh node: let discovery settle (a beacon interval) so that every
    # receiver running now is found; nobody there is fine, as with a fanout
    node.run(timeout=1.2)
    node.publish("topic_logs." + key, message.encode())
    print(" [x] Sent %r:%r" % (key, message))
