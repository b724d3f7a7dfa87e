"""Answering later, from any thread: serve(defer=True), work(manual_ack=True),
call_async(callback=), the binding's locks under eventlet, Peer.headers.

These are what a framework (the oslo.messaging driver, an executor pool)
needs to answer a request or finish a job outside the handler that got it.
"""
import queue
import textwrap
import threading

import pytest

import meshbus
from conftest import WAIT, wait_until


def test_deferred_reply_from_another_thread(mesh):
    server = mesh.node("server")
    client = mesh.node("client")
    held = queue.Queue()
    server.serve("svc.later", held.put, defer=True)
    server.run_in_thread()
    client.wait_providers("svc.later", 1, WAIT)

    def answer():
        # a pool thread answers what the handler only took
        for _ in range(3):
            req = held.get(timeout=WAIT)
            assert isinstance(req, meshbus.Request) and req.wants_reply
            if req.body == b"bad":
                assert req.fail("no such order")
            else:
                assert req.reply(req.body[::-1], content_type="text/plain")
            assert req.answered
            assert not req.reply(b"twice") and not req.fail("twice")

    pool = threading.Thread(target=answer)
    pool.start()
    assert client.call("svc.later", b"abc", timeout=WAIT).body == b"cba"
    reply = client.call("svc.later", b"\x00\xff", timeout=WAIT)
    assert (reply.body, reply.content_type) == (b"\xff\x00", "text/plain")
    with pytest.raises(meshbus.RemoteError, match="no such order"):
        client.call("svc.later", b"bad", timeout=WAIT)
    pool.join(WAIT)


def test_deferred_handler_raising_fails_the_call_and_cast_wants_no_reply(mesh):
    server = mesh.node("server")
    client = mesh.node("client")
    casts = queue.Queue()

    def handler(req):
        if not req.wants_reply:
            casts.put(req)
            return
        raise KeyError("boom")
    server.serve("svc.raise", handler, defer=True)
    server.run_in_thread()
    client.wait_providers("svc.raise", 1, WAIT)
    with pytest.raises(meshbus.RemoteError, match="KeyError"):
        client.call("svc.raise", b"x", timeout=WAIT)
    client.cast("svc.raise", b"fire")
    req = casts.get(timeout=WAIT)
    assert req.body == b"fire" and req.answered and not req.reply(b"ignored")


def test_deferred_request_unanswered_at_close(mesh):
    server = mesh.node("server")
    client = mesh.node("client")
    held = queue.Queue()
    server.serve("svc.never", held.put, defer=True)
    server.run_in_thread()
    client.wait_providers("svc.never", 1, WAIT)
    future = client.call_async("svc.never", b"x", timeout=WAIT, retries=0)
    req = held.get(timeout=WAIT)
    server.close()
    with pytest.raises(meshbus.RemoteError, match="server closing"):
        future.result(WAIT)
    assert not req.reply(b"too late")


def test_manual_ack_from_another_thread(mesh):
    producer = mesh.node("producer")
    worker = mesh.node("worker")
    jobs = queue.Queue()
    worker.work("q.manual", jobs.put, prefetch=1, manual_ack=True)
    worker.run_in_thread()
    for body in (b"ack", b"retry", b"dead"):
        producer.push("q.manual", body, max_deliveries=5, backoff=0.05)
    producer.run_in_thread()        # it sends the next job when one is acked
    seen = []
    while len(seen) < 4:
        job = jobs.get(timeout=WAIT)
        assert isinstance(job, meshbus.Job)
        seen.append((job.body, job.deliveries))
        # prefetch 1: nothing else comes while this one is held
        with pytest.raises(queue.Empty):
            jobs.get(timeout=0.2)

        def finish(job=job):
            if job.body == b"retry" and job.deliveries == 1:
                assert job.nack()
            elif job.body == b"dead":
                assert job.nack(retry=False)
            else:
                assert job.ack()
            assert not job.ack() and job.answered
        threading.Thread(target=finish).start()
    producer.wait_acked(WAIT)
    assert sorted(seen) == [(b"ack", 1), (b"dead", 1), (b"retry", 1), (b"retry", 2)]
    dead = producer.dead_letters("q.manual")
    assert [(d.job.body, d.job.deliveries) for d in dead] == [(b"dead", 1)]


def test_manual_ack_held_job_goes_back_at_close(mesh):
    producer = mesh.node("producer")
    first = mesh.node("first")
    jobs = queue.Queue()
    first.work("q.held", jobs.put, manual_ack=True)
    first.run_in_thread()
    producer.push("q.held", b"j")
    producer.run_in_thread()
    job = jobs.get(timeout=WAIT)
    first.close()
    assert not job.ack()
    second = mesh.node("second")
    second.work("q.held", lambda job: None)
    second.run_in_thread()
    producer.wait_acked(WAIT)
    assert producer.counter("pipeline.redelivered") >= 1


def test_call_async_callback(mesh):
    server = mesh.node("server")
    client = mesh.node("client")

    def serve(req):
        if req.body == b"fail":
            raise ValueError("refused")
        return req.body + b"!"
    server.serve("svc.cb", serve)
    server.run_in_thread()
    client.wait_providers("svc.cb", 1, WAIT)
    driver = client.run_in_thread()
    outcomes = queue.Queue()

    def callback(reply, exc):
        outcomes.put((threading.current_thread(), reply, exc))
    # launched from threads that do not drive the node
    launchers = [threading.Thread(target=client.call_async, args=("svc.cb", body),
                                  kwargs={"callback": callback, "timeout": WAIT})
                 for body in (b"a", b"fail")]
    for t in launchers:
        t.start()
    got = [outcomes.get(timeout=WAIT) for _ in launchers]
    assert all(thread is driver for thread, _, _ in got)
    bodies = sorted(r.body for _, r, e in got if e is None)
    errors = [e for _, r, e in got if r is None]
    assert bodies == [b"a!"]
    assert len(errors) == 1 and isinstance(errors[0], meshbus.RemoteError)
    assert "refused" in str(errors[0])
    assert client.call_async("svc.cb", b"x", callback=lambda r, e: None) is None
    with pytest.raises(TypeError):
        client.call_async("svc.cb", b"x", callback=3)
    # nobody offers it: raised at once, or (while discovery settles) given
    # to the callback
    try:
        client.call_async("svc.none", b"x", callback=callback)
    except meshbus.NoResponders:
        pass
    else:
        _, reply, exc = outcomes.get(timeout=WAIT)
        assert reply is None and isinstance(exc, meshbus.NoResponders)


def test_peer_headers(mesh):
    a = mesh.node("a", headers={"role": "billing", "zone": "eu-1", "\u00e9": "\u00fc"})
    b = mesh.node("b")
    peers = b.wait_peers(1, WAIT)
    assert peers[0].headers == {"role": "billing", "zone": "eu-1", "\u00e9": "\u00fc"}
    assert b.peer_headers(a.id) == peers[0].headers
    assert wait_until(lambda: a.peers()) and a.peers()[0].headers == {}
    with pytest.raises(meshbus.NoPeer):
        b.peer_headers("0" * 32)


EVENTLET = textwrap.dedent("""
    import eventlet
    eventlet.monkey_patch()
    import threading
    import meshbus
    real = eventlet.patcher.original("threading")
    server = meshbus.Node("server")
    client = meshbus.Node("client")
    server.serve("svc.green", lambda req: req.body)
    # a real OS thread drives each node while green code calls
    for node in (server, client):
        real.Thread(target=node.run, daemon=True).start()
    client.wait_providers("svc.green", 1, 20)
    done = []
    def call(i):
        done.append(client.call("svc.green", b"%d" % i, timeout=20).body)
    green = [threading.Thread(target=call, args=(i,)) for i in range(5)]
    for t in green:
        t.start()
    for t in green:
        t.join()
    print(sorted(done))
    client.close()
    server.close()
""")


def test_locks_are_real_under_eventlet(mesh):
    pytest.importorskip("eventlet")
    proc = mesh.python(EVENTLET)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "[b'0', b'1', b'2', b'3', b'4']"
