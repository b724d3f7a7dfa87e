"""Request-reply from Python: serve, call, call_async, cast, call_all,
errors, threads, Ctrl-C."""
import os
import signal
import threading
import time

import pytest

import meshbus
from conftest import WAIT


def server(mesh, name="server", **handlers):
    node = mesh.node(name)
    for service, fn in handlers.items():
        node.serve(service.replace("_", "."), fn)
    node.run_in_thread()
    return node


def test_usage_call_a_service(mesh):
    server(mesh, math_double=lambda req: b"%d" % (2 * int(req.body)))
    client = mesh.node("client")
    client.wait_providers("math.double", 1, WAIT)
    reply = client.call("math.double", b"21", timeout=WAIT)
    assert reply.body == b"42"
    assert client.call("math.double", "4").text == "8"


def test_reply_content_type_and_str_and_none(mesh):
    server(mesh, a_json=lambda r: (b"{}", "application/json"), a_str=lambda r: "ü",
           a_none=lambda r: None)
    c = mesh.node("c")
    c.wait_providers("a.none", 1, WAIT)
    r = c.call("a.json")
    assert r.body == b"{}" and r.content_type == "application/json"
    assert c.call("a.str").body == "ü".encode()
    assert c.call("a.none").body == b""


def test_a_raising_handler_is_a_remote_error_with_its_text(mesh):
    def boom(req):
        raise KeyError("out of widgets")
    s = server(mesh, svc_boom=boom, svc_ok=lambda r: b"ok")
    c = mesh.node("c")
    c.wait_providers("svc.ok", 1, WAIT)
    with pytest.raises(meshbus.RemoteError) as err:
        c.call("svc.boom")
    assert "KeyError" in str(err.value) and "out of widgets" in err.value.text
    assert isinstance(err.value, meshbus.Error)
    assert c.call("svc.ok").body == b"ok"          # the server lives on


def test_no_responders_and_timeout(mesh):
    c = mesh.node("c")
    c.set_settle(0)
    with pytest.raises(meshbus.NoResponders):
        c.call("nobody.home")
    release = threading.Event()
    server(mesh, slow=lambda r: release.wait(WAIT) and b"late")
    c.wait_providers("slow", 1, WAIT)
    with pytest.raises(meshbus.Timeout):
        c.call("slow", timeout=0.3, retries=0)
    release.set()


def test_provider_left_during_the_call(mesh):
    started = threading.Event()
    s = mesh.node("leaving")

    def hang(req):
        started.set()
        time.sleep(1.0)
        return b"never seen"
    s.serve("hang", hang)
    c = mesh.node("c")
    c.wait_providers("hang", 1, WAIT)
    fut = c.call_async("hang", timeout=WAIT, retries=0)
    t = threading.Thread(target=s.run, kwargs={"timeout": 5})
    t.start()
    assert started.wait(WAIT)
    threading.Thread(target=s.close).start()        # BYE while the handler runs
    with pytest.raises(meshbus.ProviderLeft):
        fut.result(WAIT)
    t.join(WAIT)


def test_call_from_the_node_that_serves(mesh):
    n = mesh.node("solo")
    n.serve("echo", lambda r: r.body)
    assert n.call("echo", b"me", timeout=WAIT).body == b"me"


def test_a_call_to_its_own_service_is_served_at_once(mesh):
    # The library serves a node's requests to itself at its request-reply
    # timer (every 10 ms); the binding serves them as soon as they are
    # made. Counted in rounds of process(0), which never waits: each
    # call needs two (the request, then its outcome). Waiting for the
    # timer instead takes as many rounds as fit in up to 10 ms: thousands.
    n = mesh.node("solo")
    n.serve("self.echo", lambda r: r.body)
    n.call("self.echo", b"warm", timeout=WAIT)
    rounds = []
    for i in range(1000):
        body = b"%d" % i
        fut = n.call_async("self.echo", body, timeout=WAIT)
        count = 0
        while not fut.done() and count < 1000:
            n.process(0)
            count += 1
        assert fut.result(0).body == body
        rounds.append(count)
    assert max(rounds) <= 4, sorted(rounds)[-10:]
    # the same for synchronous calls, and calls completed by result()
    for i in range(1000):
        assert n.call("self.echo", b"%d" % i, timeout=WAIT).body == b"%d" % i
    futures = [n.call_async("self.echo", b"%d" % i) for i in range(100)]
    assert [f.result(WAIT).body for f in futures] == [b"%d" % i for i in range(100)]


def test_call_async_futures_complete(mesh):
    server(mesh, echo=lambda r: r.body)
    c = mesh.node("c")
    c.wait_providers("echo", 1, WAIT)
    futures = [c.call_async("echo", b"%d" % i) for i in range(100)]
    assert [f.result(WAIT).body for f in futures] == [b"%d" % i for i in range(100)]


def test_call_in_one_thread_completed_by_run_in_another(mesh):
    server(mesh, echo=lambda r: r.body)
    c = mesh.node("c")
    c.wait_providers("echo", 1, WAIT)
    c.run_in_thread()
    results = []

    def caller(i):
        results.append(c.call("echo", b"%d" % i, timeout=WAIT).body)
    threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert sorted(results) == sorted(b"%d" % i for i in range(8))
    c.stop()


def test_cast_and_call_all(mesh):
    got = []
    a = server(mesh, "a", fan=lambda r: b"a:" + r.body, note=lambda r: got.append(r.body))
    b = server(mesh, "b", fan=lambda r: b"b:" + r.body, note=lambda r: got.append(r.body))
    c = mesh.node("c")
    c.wait_providers("fan", 2, WAIT)
    c.wait_providers("note", 2, WAIT)
    replies = c.call_all("fan", b"x", timeout=WAIT)
    assert sorted(r.body for r in replies.values()) == [b"a:x", b"b:x"]
    assert set(replies) == {a.id, b.id}
    c.cast("note", b"one")
    c.cast("note", b"all", all=True)
    deadline = time.monotonic() + WAIT
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(got) == [b"all", b"all", b"one"]


def test_handler_blocking_past_the_gone_timeout_keeps_the_node(mesh):
    s = mesh.node("slow", suspect=0.3, gone=0.8)
    s.serve("sleep", lambda r: time.sleep(2.0) or b"done")
    s.run_in_thread()
    c = mesh.node("c", suspect=0.3, gone=0.8)
    c.wait_providers("sleep", 1, WAIT)
    assert c.call("sleep", timeout=WAIT, retries=0).body == b"done"
    assert [p.name for p in c.peers()] == ["slow"]
    exits = [e for e in c.events(timeout=0.2) if e.type == "EXIT"]
    assert exits == []


def test_binary_bodies_round_trip(mesh):
    server(mesh, echo=lambda r: r.body)
    c = mesh.node("c")
    c.wait_providers("echo", 1, WAIT)
    every = bytes(range(256))
    for n in (0, 1, 255, 256, 65535, 65536, 1 << 20):
        body = (every * (n // 256 + 1))[:n]
        assert c.call("echo", body, timeout=WAIT).body == body


CTRL_C_CHILD = r"""
import meshbus, sys, threading, time
n = meshbus.Node("caller")
n.serve("hang", lambda r: time.sleep(60))
print("ready", flush=True)
try:
    n.call("never.answered", timeout=60, wait=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    n.close()
    sys.exit(0)
sys.exit(3)
"""


def test_ctrl_c_interrupts_a_blocking_call(mesh):
    child = mesh.python(CTRL_C_CHILD)
    assert child.stdout.readline().strip() == b"ready"
    time.sleep(0.3)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=WAIT)
    assert child.returncode == 0, err
    assert out.strip() == b"interrupted"


def test_across_processes_python_serves_python_calls(mesh):
    child = mesh.python(
        "import meshbus\n"
        "n = meshbus.Node('child-server')\n"
        "n.serve('upper', lambda r: r.body.upper())\n"
        "n.serve('quit', lambda r: n.stop() or b'bye')\n"
        "print('ready', flush=True); n.run(timeout=30); n.close()\n")
    assert child.stdout.readline().strip() == b"ready"
    c = mesh.node("c")
    c.wait_providers("upper", 1, WAIT)
    assert c.call("upper", b"abc\x00\xff").body == b"ABC\x00\xff"
    assert c.call("quit").body == b"bye"
    assert child.wait(WAIT) == 0
