#!/usr/bin/env python3
"""RabbitMQ tutorial 2, work queues: take tasks one at a time (prefetch=1:
fair dispatch, a busy worker gets nothing more), sleep a second per dot,
ack by returning. Start several in several terminals. worker.py [COUNT]"""
import sys
import time

import meshbus

count = int(sys.argv[1]) if len(sys.argv) > 1 else None
with meshbus.Node("worker") as node:
    done = 0

    def callback(job):
        global done
        print(" [x] Received %r" % job.body, flush=True)
        time.sleep(job.body.count(b"."))
        print(" [x] Done", flush=True)
        done += 1
        if count is not None and done >= count:
            node.stop()
    node.work("task_queue", callback, prefetch=1)
    print(" [*] Waiting for messages. To exit press CTRL+C", flush=True)
    try:
        node.run()
    except KeyboardInterrupt:
        pass
