"""oslo.messaging over meshbus:// across real processes on loopback,
beyond oslo's own functional suite (which runs every server and client in
one process): servers killed with -9 in the middle of a call, listeners
killed with -9 holding notifications, fanout and directed casts reaching
exactly the servers they name.

Each test has a cluster of its own (the ``mesh`` fixture); the servers
and listeners are python/tests/oslo/oslo_peer.py processes, OpenStack
style (eventlet monkey patched) or plain threads; the client is this
process. Every wait is bounded (conftest.WAIT).

A test across two hosts on a LAN is not here: it needs the lab's network
namespaces (another helper's work).
"""
import os
import signal
import threading
import time

import pytest

from conftest import WAIT, wait_until

oslo_messaging = pytest.importorskip("oslo_messaging")
cfg = pytest.importorskip("oslo_config.cfg")

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oslo_peer.py")


class Peer:
    """An oslo_peer.py process whose output lines are collected."""

    def __init__(self, mesh, *args):
        self.proc = mesh.python(PEER, *args)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode().split())

    def words(self, kind):
        return [line[1:] for line in list(self.lines) if line and line[0] == kind]

    def wait(self, predicate, what):
        if not wait_until(predicate):
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s: not seen in %ss; output %r, stderr %s" % (
                what, WAIT, self.lines, self.proc.stderr.read().decode()[-3000:]))

    def ready(self):
        self.wait(lambda: ["ready"] in self.lines, "ready")
        return self

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def config():
    """A configuration of its own, as a service's cfg.CONF would be (the
    RPC client reads the metrics options, registered on cfg.CONF only)."""
    from oslo_messaging._metrics import client as metrics
    conf = cfg.ConfigOpts()
    conf.register_opts(metrics.oslo_messaging_metrics, group="oslo_messaging_metrics")
    conf([], project="oslo-test")
    return conf


def url(mesh):
    return "meshbus://?cluster=%s&port=%d" % (mesh.cluster, mesh.port)


@pytest.fixture
def client(mesh):
    """An RPC transport of this process in the test's cluster."""
    transport = oslo_messaging.get_rpc_transport(config(), url=url(mesh))
    yield transport
    transport.cleanup()


def servers(mesh, topic, names, eventlet=False):
    flag = ["--eventlet"] if eventlet else []
    peers = {n: Peer(mesh, "server", url(mesh), topic, n, *flag) for n in names}
    for peer in peers.values():
        peer.ready()
    return peers


def rpc(transport, topic, server=None, fanout=False, timeout=WAIT):
    target = oslo_messaging.Target(topic=topic, server=server, fanout=fanout)
    return oslo_messaging.get_rpc_client(transport, target, timeout=timeout)


def wait_serving(transport, topic, names):
    """Until each named server answers (discovery is asynchronous)."""
    for name in names:
        assert rpc(transport, topic, server=name).call({}, "whoami") == name


def call_in_thread(client_, *args, **kwargs):
    """client_.call(...) in a thread: (thread, outcome dict) so that a call
    that hangs fails the test instead of blocking it."""
    outcome = {}

    def run():
        start = time.monotonic()
        try:
            outcome["result"] = client_.call({}, *args, **kwargs)
        except Exception as exc:    # the test asserts on it
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - start
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("eventlet", [False, True], ids=["threads", "eventlet"])
def test_call_fails_over_when_its_server_is_killed(mesh, client, eventlet):
    peers = servers(mesh, "compute", ["a", "b"], eventlet)
    wait_serving(client, "compute", ["a", "b"])
    # the server that takes the call sleeps 2 s in it: it is killed first
    thread, outcome = call_in_thread(rpc(client, "compute", timeout=WAIT), "sleep",
                                     tag="t1", seconds=2.0)
    wait_until(lambda: any(p.words("start") for p in peers.values()))
    took = [n for n, p in peers.items() if p.words("start")]
    assert len(took) == 1, took
    peers[took[0]].kill9()
    thread.join(WAIT + 10)
    assert not thread.is_alive(), "the call hung"
    other = ({"a", "b"} - set(took)).pop()
    assert outcome.get("result") == other, outcome
    assert peers[other].words("start") == [[other, "t1"]]


def test_call_times_out_when_its_only_server_is_killed(mesh, client):
    peers = servers(mesh, "compute", ["a"])
    wait_serving(client, "compute", ["a"])
    thread, outcome = call_in_thread(rpc(client, "compute", timeout=6.0), "sleep",
                                     tag="t1", seconds=30.0)
    peers["a"].wait(lambda: peers["a"].words("start"), "the call's start")
    peers["a"].kill9()
    thread.join(WAIT + 10)
    assert not thread.is_alive(), "the call hung"
    # failover waits for another server until the deadline, then gives up
    assert isinstance(outcome.get("error"), oslo_messaging.MessagingTimeout), outcome
    assert outcome["seconds"] >= 6.0 - 0.5, outcome


def test_call_to_a_killed_named_server_is_not_sent_elsewhere(mesh, client):
    # a call to topic+server names the server: failing over would break it
    peers = servers(mesh, "compute", ["a", "b"])
    wait_serving(client, "compute", ["a", "b"])
    thread, outcome = call_in_thread(rpc(client, "compute", server="a", timeout=WAIT),
                                     "sleep", tag="t1", seconds=30.0)
    peers["a"].wait(lambda: peers["a"].words("start"), "the call's start")
    peers["a"].kill9()
    thread.join(WAIT + 10)
    assert not thread.is_alive(), "the call hung"
    assert isinstance(outcome.get("error"), oslo_messaging.MessagingTimeout), outcome
    assert peers["b"].words("start") == []


@pytest.mark.parametrize("eventlet", [False, True], ids=["threads", "eventlet"])
def test_fanout_reaches_every_server_once(mesh, client, eventlet):
    names = ["a", "b", "c"]
    peers = servers(mesh, "scheduler", names, eventlet)
    wait_serving(client, "scheduler", names)
    fan = rpc(client, "scheduler", fanout=True)
    for i in range(5):
        fan.cast({}, "record", tag="f%d" % i)
    want = ["f%d" % i for i in range(5)]
    for name in names:
        direct = rpc(client, "scheduler", server=name)
        wait_until(lambda: len(direct.call({}, "seen")) >= 5)
        assert sorted(direct.call({}, "seen")) == want, name


def test_cast_to_a_server_goes_to_that_server_only(mesh, client):
    names = ["a", "b", "c"]
    servers(mesh, "scheduler", names)
    wait_serving(client, "scheduler", names)
    to_b = rpc(client, "scheduler", server="b")
    for i in range(20):
        to_b.cast({}, "record", tag="b%d" % i)
    wait_until(lambda: len(to_b.call({}, "seen")) >= 20)
    assert to_b.call({}, "seen") == ["b%d" % i for i in range(20)]     # in order
    for name in ("a", "c"):
        assert rpc(client, "scheduler", server=name).call({}, "seen") == []


def test_cast_to_a_topic_goes_to_exactly_one_server(mesh, client):
    names = ["a", "b", "c"]
    servers(mesh, "scheduler", names)
    wait_serving(client, "scheduler", names)
    topic = rpc(client, "scheduler")
    for i in range(30):
        topic.cast({}, "record", tag="t%d" % i)

    def seen():
        return [t for n in names for t in rpc(client, "scheduler", server=n).call({}, "seen")]
    wait_until(lambda: len(seen()) >= 30)
    time.sleep(0.3)     # a duplicate, if any, would arrive with the rest
    assert sorted(seen()) == sorted("t%d" % i for i in range(30))


def numbered(peer):
    """The ids of the notifications a listener got (probes left out)."""
    return sorted(int(w[1]) for w in peer.words("note") if w[1] != "probe")


def notifier(mesh, topic):
    transport = oslo_messaging.get_notification_transport(config(), url=url(mesh))
    return transport, oslo_messaging.Notifier(transport, publisher_id="test",
                                              driver="messaging", topics=[topic])


@pytest.mark.parametrize("eventlet", [False, True], ids=["threads", "eventlet"])
def test_killed_listener_notifications_go_to_its_pool_mates(mesh, eventlet):
    flag = ["--eventlet"] if eventlet else []
    holder = Peer(mesh, "listener", url(mesh), "events", "mates", "--hold", *flag).ready()
    transport, notes = notifier(mesh, "events")
    try:
        for i in range(10):
            notes.info({}, "compute.instance.create", {"id": i})
        # the holder got them all (a pool of one) and acknowledges none
        holder.wait(lambda: len(holder.words("note")) == 10, "ten notifications held")
        mate = Peer(mesh, "listener", url(mesh), "events", "mates", *flag).ready()
        other = Peer(mesh, "listener", url(mesh), "events", "other", *flag).ready()
        holder.kill9()
        # the holder's ten are redelivered to its pool-mate, once each
        mate.wait(lambda: len(mate.words("note")) >= 10, "the ten redelivered")
        # a pool that did not exist when they were sent did not get them;
        # once the notifier heard of it (probes until one arrives), what is
        # sent reaches both pools
        for _ in range(int(WAIT / 0.1)):
            notes.info({}, "probe", {"id": "probe"})
            if other.words("note"):
                break
            time.sleep(0.1)
        for i in range(10, 15):
            notes.info({}, "compute.instance.create", {"id": i})
        mate.wait(lambda: len(numbered(mate)) >= 15, "five more")
        other.wait(lambda: len(numbered(other)) >= 5, "five in the other pool")
        time.sleep(0.3)
        assert numbered(mate) == list(range(15))
        assert numbered(other) == list(range(10, 15))
    finally:
        transport.cleanup()


def test_notifications_wait_for_a_listener_that_restarts(mesh):
    first = Peer(mesh, "listener", url(mesh), "events", "-").ready()
    transport, notes = notifier(mesh, "events")
    try:
        notes.info({}, "e", {"id": 0})
        first.wait(lambda: first.words("note"), "the first notification")
        first.kill9()
        # nobody listens: the notifier holds them
        for i in range(1, 6):
            notes.info({}, "e", {"id": i})
        again = Peer(mesh, "listener", url(mesh), "events", "-").ready()
        again.wait(lambda: len(again.words("note")) >= 5, "the five held")
        assert sorted(int(w[1]) for w in again.words("note")) == [1, 2, 3, 4, 5]
    finally:
        transport.cleanup()
