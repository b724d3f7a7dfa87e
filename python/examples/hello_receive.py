#!/usr/bin/env python3
"""RabbitMQ tutorial 1, "Hello World!": receive from the queue "hello".
To exit press CTRL+C (or give a count: hello_receive.py 1)."""
import sys

import meshbus

count = int(sys.argv[1]) if len(sys.argv) > 1 else None
with meshbus.Node("hello-receiver") as node:
    def callback(job):
        print(" [x] Received %r" % job.body, flush=True)
        if count is not None and callback.n >= count - 1:
            node.stop()
        callback.n += 1
    callback.n = 0
    node.work("hello", callback)
    print(" [*] Waiting for messages. To exit press CTRL+C", flush=True)
    try:
        node.run()
    except KeyboardInterrupt:
        pass
