#!/usr/bin/env python3
"""The scheduler side of oslo_compute.py: builds N instances (a call to
any compute host: the hosts share the load), reboots the first on the
host that built it (a cast to topic+server), tells every host to refresh
its cache (a fanout cast), and shows a remote failure.
oslo_scheduler.py [N]"""
import os
import sys

import oslo_messaging
from oslo_config import cfg

URL = os.environ.get("TRANSPORT_URL", "meshbus://")


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    cfg.CONF([], project="scheduler-demo")
    transport = oslo_messaging.get_rpc_transport(cfg.CONF, url=URL)
    compute = oslo_messaging.get_rpc_client(
        transport, oslo_messaging.Target(topic="compute", version="1.1"), timeout=30)
    built = []
    for i in range(count):
        instance = compute.call({}, "build_instance", name="vm%d" % i, flavor="m1.small")
        print(" [.] %s is %s on %s" % (instance["name"], instance["state"], instance["host"]),
              flush=True)
        built.append(instance)
    first = built[0]
    compute.prepare(server=first["host"]).cast({}, "reboot_instance", name=first["name"])
    compute.prepare(fanout=True).cast({}, "refresh_cache")
    try:
        compute.call({}, "build_instance", name="bad", flavor="m1.huge")
    except ValueError as exc:       # a builtin exception is raised again as itself
        print(" [.] refused: %s" % str(exc).splitlines()[0], flush=True)
    transport.cleanup()


if __name__ == "__main__":
    main()
