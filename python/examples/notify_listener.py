#!/usr/bin/env python3
"""Listen to notifications of some priorities ("error critical"), or all.
notify_listener.py [--count N] [PRIORITY]..."""
import json
import sys

import meshbus

args = sys.argv[1:]
count = None
if args[:1] == ["--count"]:
    count, args = int(args[1]), args[2:]
with meshbus.Node("notification-listener") as node:
    got = 0

    def on_notification(msg):
        global got
        n = json.loads(msg.body)
        print(" [x] %s %s %s" % (n["priority"], n["event_type"], json.dumps(n["payload"])),
              flush=True)
        got += 1
        if got == count:
            node.stop()
    for priority in args or ["*"]:
        node.subscribe("notifications.%s.#" % priority, on_notification)
    print(" [*] Waiting for notifications. To exit press CTRL+C", flush=True)
    try:
        node.run()
    except KeyboardInterrupt:
        pass
