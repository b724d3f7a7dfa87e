#!/usr/bin/env python3
"""RabbitMQ tutorial 1, "Hello World!": send one message to the queue
"hello". Run hello_receive.py in another terminal (before or after: the
job waits here until a receiver takes it)."""
import meshbus

with meshbus.Node("hello-sender") as node:
    node.push("hello", b"Hello World!")
    print(" [x] Sent 'Hello World!'")
    node.wait_acked(timeout=60)          # a receiver has it: we may go
