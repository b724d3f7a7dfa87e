"""Publish-subscribe from Python: in one process, across processes, every
byte value and body size up to the limit."""
import logging
import sys

import pytest

import meshbus
from conftest import WAIT

MAX_BODY = 256 * 1024 * 1024        # MESH_MAX_BODY (src/mesh_limits.h)


def pair(mesh, pattern):
    pub = mesh.node("pub")
    sub_node = mesh.node("sub")
    sub = sub_node.subscribe(pattern)
    return pub, sub_node, sub


def test_usage_publish_and_iterate(mesh):
    pub, sub_node, sub = pair(mesh, "orders.*.created")
    pub.wait_subscribers("orders.eu.created", 1, WAIT)
    assert pub.publish("orders.eu.created", b'{"id": 1}') == 1
    assert pub.publish("orders.eu.deleted", b"no") == 0
    assert pub.publish("orders.us.created", "text is UTF-8 ü") == 1
    got = list(sub.messages(timeout=WAIT, count=2))
    assert [(m.subject, m.body) for m in got] == [
        ("orders.eu.created", b'{"id": 1}'), ("orders.us.created", "text is UTF-8 ü".encode())]
    assert got[0].peer == pub.id and got[0].peer_name == "pub"
    assert got[1].seq == got[0].seq + 1


def test_wildcards_hash_and_star(mesh):
    pub = mesh.node("pub")
    s = mesh.node("sub")
    star_sub = s.subscribe("logs.*")
    hash_sub = s.subscribe("logs.#")
    pub.wait_subscribers("logs", 1, WAIT)       # only logs.# matches it: both are known
    for subject in ("logs", "logs.a", "logs.a.b"):
        pub.publish(subject, subject.encode())
    assert [m.subject for m in hash_sub.messages(timeout=2, count=3)] == [
        "logs", "logs.a", "logs.a.b"]
    assert [m.subject for m in star_sub.messages(timeout=0.5)] == ["logs.a"]


def test_headers_and_content_type_arrive(mesh):
    pub, _, sub = pair(mesh, "h.x")
    pub.wait_subscribers("h.x", 1, WAIT)
    pub.publish("h.x", b"{}", headers={"trace": "abc", "ü": "é" * 512},    # 1024 bytes
                content_type="application/json")
    m = sub.get(WAIT)
    assert m.headers == {"trace": "abc", "ü": "é" * 512}
    assert m.content_type == "application/json"
    with pytest.raises(ValueError):
        pub.publish("h.x", b"", headers={"k" * 65: "v"})     # key over 64 bytes
    with pytest.raises(ValueError):
        pub.publish("h.x", b"", headers={"k": "é" * 513})    # value over 1024 bytes


def test_callback_runs_in_the_thread_that_runs_the_node(mesh):
    import threading
    pub = mesh.node("pub")
    s = mesh.node("sub")
    seen = []

    def on(msg):
        seen.append((msg.body, threading.current_thread().name))
        if len(seen) == 3:
            s.stop()
    s.subscribe("cb.x", on)
    pub.wait_subscribers("cb.x", 1, WAIT)
    for i in range(3):
        pub.publish("cb.x", b"%d" % i)
    thread = s.run_in_thread()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert seen == [(b"0", thread.name), (b"1", thread.name), (b"2", thread.name)]


def test_a_raising_handler_never_kills_the_node(mesh, caplog):
    pub = mesh.node("pub")
    s = mesh.node("sub")
    good = []

    def bad(msg):
        raise RuntimeError("handler bug")
    s.subscribe("err.x", bad)
    s.subscribe("err.#", good.append)
    pub.wait_subscribers("err", 1, WAIT)
    with caplog.at_level(logging.ERROR, logger="meshbus"):
        pub.publish("err.x", b"1")
        pub.publish("err.x", b"2")
        s.run(timeout=1.0)
    assert [m.body for m in good] == [b"1", b"2"]
    assert "handler bug" in caplog.text
    assert s.counter("python.handler-errors") == 2


def test_local_subscriber_on_the_same_node(mesh):
    n = mesh.node("solo")
    sub = n.subscribe("self.#")
    assert n.publish("self.talk", b"me") == 1
    assert sub.get(WAIT).body == b"me"


def test_close_unsubscribes(mesh):
    pub, s, sub = pair(mesh, "u.x")
    pub.wait_subscribers("u.x", 1, WAIT)
    sub.close()
    s.process(0)
    assert not list(sub)           # a closed subscription ends its iteration
    for _ in range(200):
        pub.process(0.02)
        if pub.subscribers("u.x") == 0:
            break
    assert pub.subscribers("u.x") == 0


def test_every_byte_value_and_sizes_around_limits(mesh):
    pub, _, sub = pair(mesh, "bin.x")
    pub.wait_subscribers("bin.x", 1, WAIT)
    every = bytes(range(256))
    sizes = [0, 1, 255, 256, 65535, 65536, 65537, 1 << 20]
    bodies = [every] + [(every * (n // 256 + 1))[:n] for n in sizes]
    for body in bodies:
        pub.publish("bin.x", body)
    for body in bodies:
        got = sub.get(WAIT).body
        assert len(got) == len(body) and got == body


def test_body_at_the_limit_and_over_it(mesh):
    pub, _, sub = pair(mesh, "big.x")
    pub.wait_subscribers("big.x", 1, WAIT)
    with pytest.raises(ValueError):
        pub.publish("big.x", bytes(MAX_BODY + 1))
    body = bytes(range(256)) * (MAX_BODY // 256)
    assert len(body) == MAX_BODY
    pub.publish("big.x", body)
    got = sub.get(60).body
    assert got == body


def test_across_processes_python_to_python(mesh):
    child = mesh.python(
        "import meshbus,sys\n"
        "n = meshbus.Node('child-sub'); s = n.subscribe('x.#')\n"
        "print('ready', flush=True)\n"
        "for m in s.messages(timeout=20, count=3): print(m.subject, m.body.hex(), flush=True)\n"
        "n.close()\n")
    assert child.stdout.readline().strip() == b"ready"
    pub = mesh.node("pub")
    pub.wait_subscribers("x.1", 1, WAIT)
    for i in range(3):
        pub.publish("x.%d" % i, bytes([0, 255, i]))
    out, err = child.communicate(timeout=WAIT)
    assert child.returncode == 0, err
    assert out.decode().split("\n")[:3] == ["x.0 00ff00", "x.1 00ff01", "x.2 00ff02"]


def test_gap_is_an_event(mesh):
    # A subscriber that never reads, with a small link: the publisher drops
    # for it, and the subscriber learns of the loss as GAP events
    pub = mesh.node("pub", hwm=50)
    s = mesh.node("sub")
    sub = s.subscribe("flood.x", no_replay=True)
    pub.wait_subscribers("flood.x", 1, WAIT)
    for i in range(20000):
        pub.publish("flood.x", b"x" * 100)
    got = 0
    gaps = 0
    for m in sub.messages(timeout=2):
        got += 1
    for ev in s.events(timeout=0.5):
        if ev.type in ("GAP", "GAP_LOST"):
            gaps += ev.count
    dropped = sum(v for k, v in _flat(pub.stats()) if "dropped" in k and "pubsub" in k)
    assert got < 20000
    assert gaps > 0 or dropped > 0
    assert got + sub.dropped + dropped >= 20000 or gaps > 0


def _flat(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, prefix + k + ".")
        elif isinstance(v, int):
            yield prefix + k, v
