"""Node: life cycle, identity, peers, events, stats, arguments."""
import select

import pytest

import meshbus
from conftest import WAIT


def test_usage_two_nodes_see_each_other(mesh):
    with mesh.node("alpha", start=False) as a:
        b = mesh.node("beta", headers={"role": "db"})
        peers = a.wait_peers(1, WAIT)
        assert [p.name for p in peers] == ["beta"]
        assert peers[0].id == b.id and len(b.id) == 32
        assert peers[0].state == "ALIVE"
        assert peers[0].endpoint.startswith("tcp://127.0.0.1:")
        assert a.peer_header(b.id, "role") == "db"
        assert a.peer_header(b.id, "nope") is None
        assert a.name == "alpha" and b.endpoint.startswith("tcp://")


def test_events_enter_and_exit_with_bye(mesh):
    a = mesh.node("a")
    b = mesh.node("b")
    seen = []
    for ev in a.events(timeout=WAIT):
        seen.append(ev.type)
        if ev.type == "ENTER":
            assert ev.peer == b.id and ev.peer_name == "b"
            b.close()
        if ev.type == "EXIT":
            assert ev.peer == b.id
            assert ev.detail == "bye"
            break
    assert seen[0] == "ENTER" and seen[-1] == "EXIT"


def test_events_iterator_stops_at_its_timeout(mesh):
    a = mesh.node("lonely")
    assert list(a.events(timeout=0.3)) == []


def test_stats_is_the_counters_json(mesh):
    a = mesh.node("a")
    b = mesh.node("b")
    a.wait_peers(1, WAIT)
    sub = b.subscribe("s.x")
    a.wait_subscribers("s.x", 1, WAIT)
    a.publish("s.x", b"1")
    sub.get(WAIT)
    stats = a.stats()
    assert isinstance(stats, dict)
    assert b.id in str(stats)
    assert a.counter("messages.out") >= 1 or "messages" in str(stats)


def test_fileno_is_readable_when_work_waits(mesh):
    a = mesh.node("a")
    b = mesh.node("b")
    got = []
    b.subscribe("fd.test", got.append)
    a.wait_subscribers("fd.test", 1, WAIT)
    b.process(0)
    a.publish("fd.test", b"x")
    r, _, _ = select.select([b.fileno()], [], [], WAIT)
    assert r == [b.fileno()]
    for _ in range(100):
        b.process(0.05)
        if got:
            break
    assert [m.body for m in got] == [b"x"]


def test_closed_node_raises_closed_never_crashes(mesh):
    a = mesh.node("a")
    a.close()
    a.close()
    with pytest.raises(meshbus.Closed):
        a.publish("x.y", b"1")
    with pytest.raises(meshbus.Closed):
        a.call("svc", b"")
    with pytest.raises(meshbus.Closed):
        a.start()


def test_bad_arguments_are_value_and_type_errors(mesh):
    a = mesh.node("a")
    with pytest.raises(ValueError):
        a.publish("bad subject", b"x")
    with pytest.raises(ValueError):
        a.publish("a.*", b"x")
    with pytest.raises(ValueError):
        a.publish("x" * 256, b"x")
    with pytest.raises(ValueError):
        a.publish("a\0b", b"x")
    with pytest.raises(ValueError):
        a.subscribe("a*.b")
    with pytest.raises(TypeError):
        a.publish(b"bytes.subject", b"x")
    with pytest.raises(TypeError):
        a.publish("a.b", 42)
    with pytest.raises(TypeError):
        a.serve("svc", "not callable")
    with pytest.raises(ValueError):
        meshbus.Node("n", node_id="not-hex")
    with pytest.raises(ValueError):
        meshbus.Node("n", cluster="c" * 1000)


def test_subject_helpers():
    assert meshbus.subject_valid("orders.eu.created")
    assert not meshbus.subject_valid("orders..created")
    assert meshbus.pattern_valid("orders.#")
    assert meshbus.subject_match("orders.*.created", "orders.eu.created")
    assert not meshbus.subject_match("orders.*", "orders.eu.created")
    assert meshbus.subject_match("#", "a")


def test_keygen_and_curve_nodes_talk(mesh, tmp_path):
    key = meshbus.keygen(str(tmp_path / "cluster"))
    assert key.endswith("cluster.key")
    with pytest.raises(FileExistsError):
        meshbus.keygen(str(tmp_path / "cluster"))      # never overwritten
    a = mesh.node("a", curve=key)
    b = mesh.node("b", curve=key)
    assert a.public_key and len(a.public_key) == 40
    a.serve("sec.echo", lambda r: r.body)
    a.run_in_thread()
    b.wait_providers("sec.echo", 1, WAIT)
    assert b.call("sec.echo", b"secret").body == b"secret"
    a.stop()
