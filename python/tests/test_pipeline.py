"""Work queues from Python: push, work (ack, nack), Producer, durable
outbox, dead letters, a worker killed mid-job."""
import os
import signal
import time

import pytest

import meshbus
from conftest import WAIT


def test_usage_push_and_work(mesh):
    producer = mesh.node("producer")
    worker = mesh.node("worker")
    done = []
    worker.work("images.resize", lambda job: done.append(job.body), prefetch=4)
    worker.run_in_thread()
    ids = [producer.push("images.resize", b"%d.png" % i) for i in range(50)]
    assert len(set(ids)) == 50 and all(i > 0 for i in ids)
    producer.wait_acked(WAIT)
    assert sorted(done) == sorted(b"%d.png" % i for i in range(50))
    assert producer.pending() == 0


def test_raising_handler_nacks_and_the_job_comes_back(mesh):
    producer = mesh.node("producer")
    worker = mesh.node("worker")
    seen = []

    def flaky(job):
        seen.append((job.body, job.deliveries))
        if job.deliveries == 1:
            raise RuntimeError("first try fails")
    worker.work("q.flaky", flaky)
    worker.run_in_thread()
    producer.push("q.flaky", b"j", backoff=0.05)
    producer.wait_acked(WAIT)
    assert seen == [(b"j", 1), (b"j", 2)]


def test_dead_letters_and_replay(mesh):
    producer = mesh.node("producer")
    worker = mesh.node("worker")
    attempts = []

    def always_fails(job):
        attempts.append(job.deliveries)
        raise meshbus.Reject("cannot do it")
    worker.work("q.dead", always_fails)
    worker.run_in_thread()
    job_id = producer.push("q.dead", b"poison", max_deliveries=2, backoff=0.05,
                           headers={"k": "v"})
    producer.wait_acked(WAIT)
    dead = producer.dead_letters("q.dead")
    assert [(d.queue, d.id, d.job.body, d.job.headers) for d in dead] == [
        ("q.dead", job_id, b"poison", {"k": "v"})]
    assert "nack" in dead[0].reason
    events = [e for e in producer.events(timeout=0.5) if e.type == "DEAD_LETTER"]
    assert events and events[0].count == job_id and events[0].detail == "q.dead"
    assert producer.replay("q.dead") == 1
    producer.wait_acked(WAIT)
    assert attempts == [1, 2, 1, 2]


def test_producer_durable_flush(mesh, tmp_path):
    p = mesh.node("producer")
    jobs = meshbus.Producer(p, "q.durable", durable=str(tmp_path / "outbox"))
    for i in range(20):
        jobs.push(b"%d" % i)
    assert jobs.pending == 20
    with pytest.raises(meshbus.Timeout):
        jobs.flush(timeout=0.2)              # nobody works it yet
    w = mesh.node("worker")
    got = []
    w.work("q.durable", lambda j: got.append(j.body))
    w.run_in_thread()
    jobs.flush(WAIT)
    assert sorted(got) == sorted(b"%d" % i for i in range(20))
    with pytest.raises(ValueError):
        meshbus.Producer(p, "q.other", durable=str(tmp_path / "elsewhere"))


def test_durable_jobs_survive_the_producer_process(mesh, tmp_path):
    outbox = str(tmp_path / "outbox")
    child = mesh.python(
        "import meshbus, os, sys\n"
        "n = meshbus.Node('p1')\n"
        "for i in range(10): n.push('q.crash', b'%d' % i, durable=sys.argv[1])\n"
        "print('pushed', flush=True)\n"
        "os._exit(0)\n", outbox)
    assert child.stdout.readline().strip() == b"pushed"
    child.wait(WAIT)
    p = mesh.node("p2")
    jobs = meshbus.Producer(p, "q.crash", durable=outbox)
    assert jobs.pending == 10
    w = mesh.node("worker")
    got = []
    w.work("q.crash", lambda j: got.append(j.body))
    w.run_in_thread()
    jobs.flush(WAIT)
    assert sorted(got) == sorted(b"%d" % i for i in range(10))


WORKER = r"""
import meshbus, sys, time
n = meshbus.Node(sys.argv[1])
def work(job):
    print("got", job.body.decode(), flush=True)
    time.sleep(60)          # killed mid-job
n.work("q.kill", work)
n.run(timeout=60)
"""


def test_worker_killed_mid_job_redelivers_to_another(mesh):
    victim = mesh.python(WORKER, "victim")
    p = mesh.node("producer")
    p.wait_peers(1, WAIT)
    time.sleep(0.5)         # the victim's queue announcement
    job = p.push("q.kill", b"job-1")
    line = victim.stdout.readline().split()
    assert line == [b"got", b"job-1"]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(WAIT)
    rescuer = mesh.node("rescuer")
    got = []
    rescuer.work("q.kill", lambda j: got.append((j.id, j.body, j.deliveries)))
    rescuer.run_in_thread()
    p.wait_acked(WAIT)
    assert got == [(job, b"job-1", 2)]


def test_binary_jobs_round_trip(mesh):
    p = mesh.node("p")
    w = mesh.node("w")
    got = []
    w.work("q.bin", lambda j: got.append(j.body), prefetch=8)
    w.run_in_thread()
    every = bytes(range(256))
    bodies = [(every * (n // 256 + 1))[:n] for n in (0, 1, 255, 256, 65535, 65536, 1 << 20)]
    for b in bodies:
        p.push("q.bin", b)
    p.wait_acked(WAIT)
    assert sorted(got) == sorted(bodies)
