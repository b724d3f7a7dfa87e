#!/usr/bin/env python3
"""Notifications as OpenStack services send them (oslo.messaging's
Notifier): the priority is part of the subject, so listeners pick
priorities with a pattern. notify.py PRIORITY EVENT_TYPE [PAYLOAD]

    notify.py info compute.instance.create.end '{"id": 7}'
"""
import json
import sys
import time

import meshbus

PRIORITIES = ("audit", "debug", "info", "warn", "error", "critical", "sample")
priority = sys.argv[1] if len(sys.argv) > 1 else "info"
event_type = sys.argv[2] if len(sys.argv) > 2 else "compute.instance.create.end"
payload = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
if priority not in PRIORITIES:
    sys.exit("priority must be one of " + ", ".join(PRIORITIES))
with meshbus.Node("notifier") as node:
    subject = "notifications.%s.%s" % (priority, event_type)
    # a fresh node: let discovery settle (a beacon interval) so that every
    # receiver running now is found; nobody there is fine, as with a fanout
    node.run(timeout=1.2)
    body = json.dumps({"priority": priority.upper(), "event_type": event_type,
                       "timestamp": time.time(), "publisher_id": node.name,
                       "payload": payload})
    node.publish(subject, body, content_type="application/json")
    print(" [x] %s %s" % (priority, event_type))
