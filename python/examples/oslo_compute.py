#!/usr/bin/env python3
"""An OpenStack-style compute service over oslo.messaging, no broker:
RPC server on topic "compute" as host HOST (eventlet, as nova runs).
It builds instances when the scheduler calls, reboots them when it casts,
refreshes its cache on a fanout, and sends a notification for each
instance built. oslo_compute.py HOST [SECONDS]

The transport is $TRANSPORT_URL (default meshbus://: every process on
this host in the default cluster; see docs/oslo.md for LAN options)."""
import eventlet
eventlet.monkey_patch()

import os       # noqa: E402
import sys      # noqa: E402
import time     # noqa: E402

import oslo_messaging   # noqa: E402
from oslo_config import cfg     # noqa: E402

URL = os.environ.get("TRANSPORT_URL", "meshbus://")


class ComputeManager:
    target = oslo_messaging.Target(version="1.1")

    def __init__(self, host, notifier):
        self.host = host
        self.notifier = notifier
        self.instances = {}

    def build_instance(self, ctxt, name, flavor):
        if flavor not in ("m1.small", "m1.large"):
            raise ValueError("unknown flavor %r" % flavor)
        self.instances[name] = flavor
        print(" [x] %s: built %s (%s)" % (self.host, name, flavor), flush=True)
        self.notifier.info(ctxt, "compute.instance.create.end",
                           {"name": name, "flavor": flavor, "host": self.host})
        return {"name": name, "host": self.host, "state": "ACTIVE"}

    def reboot_instance(self, ctxt, name):
        print(" [x] %s: rebooting %s" % (self.host, name), flush=True)

    def refresh_cache(self, ctxt):
        print(" [x] %s: cache refreshed" % self.host, flush=True)


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "compute1"
    cfg.CONF([], project="compute-demo")
    transport = oslo_messaging.get_rpc_transport(cfg.CONF, url=URL)
    notifier = oslo_messaging.Notifier(
        oslo_messaging.get_notification_transport(cfg.CONF, url=URL),
        publisher_id="compute." + host, driver="messaging", topics=["notifications"])
    target = oslo_messaging.Target(topic="compute", server=host)
    server = oslo_messaging.get_rpc_server(transport, target,
                                           [ComputeManager(host, notifier)],
                                           executor="eventlet")
    server.start()
    print(" [*] %s: waiting for RPC requests. To exit press CTRL+C" % host, flush=True)
    end = time.monotonic() + float(sys.argv[2]) if len(sys.argv) > 2 else None
    try:
        # in steps: eventlet's hub cannot wait longer than epoll's limit
        while end is None or time.monotonic() < end:
            time.sleep(60 if end is None else min(60, max(0, end - time.monotonic())))
    except KeyboardInterrupt:
        pass
    server.stop()
    server.wait()


if __name__ == "__main__":
    main()
