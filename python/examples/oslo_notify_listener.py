#!/usr/bin/env python3
"""Listen to oslo notifications (topic "notifications", priority info),
as ceilometer does: oslo_notify_listener.py [--count N] [POOL]
Listeners of one pool share the notifications; each pool gets them all.
Notifications sent while no listener runs wait at their notifier."""
import os
import sys
import threading

import oslo_messaging
from oslo_config import cfg

URL = os.environ.get("TRANSPORT_URL", "meshbus://")


class Endpoint:
    def __init__(self, count, done):
        self.left = count
        self.done = done
        self.lock = threading.Lock()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        print(" [x] %s %s %s" % (publisher_id, event_type, payload), flush=True)
        with self.lock:
            self.left -= 1
            if self.left == 0:
                self.done.set()


def main():
    args = sys.argv[1:]
    count = -1
    if args[:1] == ["--count"]:
        count, args = int(args[1]), args[2:]
    pool = args[0] if args else None
    cfg.CONF([], project="listener-demo")
    transport = oslo_messaging.get_notification_transport(cfg.CONF, url=URL)
    done = threading.Event()
    listener = oslo_messaging.get_notification_listener(
        transport, [oslo_messaging.Target(topic="notifications")], [Endpoint(count, done)],
        executor="threading", pool=pool)
    listener.start()
    print(" [*] Waiting for notifications. To exit press CTRL+C", flush=True)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    listener.stop()
    listener.wait()
    transport.cleanup()


if __name__ == "__main__":
    main()
