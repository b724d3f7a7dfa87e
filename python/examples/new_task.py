#!/usr/bin/env python3
"""RabbitMQ tutorial 2, work queues: push a task; each dot in it is a
second of work for worker.py. Tasks stay with this producer until a
worker acks them: a worker killed mid-task means redelivery, not loss."""
import sys

import meshbus

message = " ".join(sys.argv[1:]) or "Hello World!"
with meshbus.Node("new-task") as node:
    node.push("task_queue", message.encode())
    print(" [x] Sent %r" % message)
    node.wait_acked(timeout=600)
