#!/usr/bin/env python3
"""A process of the oslo tests: an oslo RPC server or notification
listener on a meshbus:// URL, as an OpenStack service runs one.

    oslo_peer.py server URL TOPIC NAME [--eventlet]
    oslo_peer.py listener URL TOPIC POOL|- [--hold] [--eventlet]

It prints "ready" once listening, then one line per event, flushed, so
that the test can follow it:
    start NAME TAG       a call of sleep() began (before it sleeps)
    cast NAME TAG        a cast of record() arrived
    note NAME ID         a notification arrived (--hold: it is never
                         acknowledged; the endpoint blocks instead)
A server's endpoint also answers whoami(), sleep(tag, seconds) and
seen() (the record() tags it got, in order). Runs until killed.
"""
import sys

args = sys.argv[1:]
if "--eventlet" in args:
    args.remove("--eventlet")
    import eventlet
    eventlet.monkey_patch()
    EXECUTOR = "eventlet"
else:
    EXECUTOR = "threading"

import threading    # noqa: E402 (after monkey patching)
import time         # noqa: E402

import oslo_messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402


_out = threading.Lock()


def say(*words):
    # one write per line: executor threads print at the same time
    line = " ".join(str(w) for w in words) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


class Compute:
    def __init__(self, name):
        self.name = name
        self.tags = []

    def whoami(self, ctxt):
        return self.name

    def sleep(self, ctxt, tag, seconds):
        say("start", self.name, tag)
        time.sleep(seconds)
        return self.name

    def record(self, ctxt, tag):
        self.tags.append(tag)
        say("cast", self.name, tag)

    def seen(self, ctxt):
        return list(self.tags)


class Notes:
    def __init__(self, name, hold):
        self.name = name
        self.hold = hold
        self.forever = threading.Event()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        say("note", self.name, payload["id"])
        if self.hold:
            self.forever.wait()     # never acknowledged: killed holding it
        return oslo_messaging.NotificationResult.HANDLED


def main():
    role, url, topic, name = args[:4]
    hold = "--hold" in args[4:]
    conf = cfg.CONF         # as a service's
    conf([], project="oslo-peer")
    if role == "server":
        transport = oslo_messaging.get_rpc_transport(conf, url=url)
        target = oslo_messaging.Target(topic=topic, server=name)
        server = oslo_messaging.get_rpc_server(transport, target, [Compute(name)],
                                               executor=EXECUTOR)
    else:
        transport = oslo_messaging.get_notification_transport(conf, url=url)
        pool = None if name == "-" else name
        label = "%s-%d" % (name, __import__("os").getpid())
        server = oslo_messaging.get_notification_listener(
            transport, [oslo_messaging.Target(topic=topic)], [Notes(label, hold)],
            executor=EXECUTOR, pool=pool)
    server.start()
    say("ready")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
