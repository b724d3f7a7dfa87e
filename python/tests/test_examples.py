"""Each example of python/examples runs as its README says: the receiving
side in one process, the sending side in another (two terminals)."""
import os
import subprocess

import pytest

from conftest import WAIT

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def example(mesh, name, *args):
    return mesh.python(os.path.join(EXAMPLES, name), *args)


def finish(proc):
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def ready(proc):
    line = proc.stdout.readline().decode()
    assert "Waiting" in line or "Awaiting" in line, line + proc.stderr.read().decode()


def test_hello_world(mesh):
    sender = example(mesh, "hello_send.py")      # first: the job waits for a receiver
    receiver = example(mesh, "hello_receive.py", 1)
    ready(receiver)
    assert "Sent 'Hello World!'" in finish(sender)
    assert "Received b'Hello World!'" in finish(receiver)


def test_work_queues_fair_dispatch(mesh):
    import signal
    workers = [example(mesh, "worker.py") for _ in range(2)]
    for w in workers:
        ready(w)
    tasks = [example(mesh, "new_task.py", "task %d." % i) for i in range(4)]
    for t in tasks:
        assert "Sent" in finish(t)             # returns once its task is acked
    for w in workers:
        w.send_signal(signal.SIGINT)            # CTRL+C, as the worker says
    outs = [finish(w) for w in workers]
    assert sorted(l for o in outs for l in o.splitlines() if "Received" in l) == sorted(
        " [x] Received b'task %d.'" % i for i in range(4))
    assert sum(out.count("Done") for out in outs) == 4


def test_work_queues_a_busy_worker_is_skipped(mesh):
    # one producer, two workers with prefetch 1: while one sleeps on a task
    # the next goes to the other. (Prefetch counts per producer in the
    # library: tasks from four new_task.py processes at once may all go to
    # one worker, as the test above allows.)
    import signal
    workers = [example(mesh, "worker.py") for _ in range(2)]
    for w in workers:
        ready(w)
    producer = mesh.node("producer")
    for i in range(4):
        producer.push("task_queue", b"task %d." % i)
    producer.wait_acked(WAIT)
    for w in workers:
        w.send_signal(signal.SIGINT)
    outs = [finish(w) for w in workers]
    assert [out.count("Done") for out in outs] == [2, 2]


def test_publish_subscribe(mesh):
    receivers = [example(mesh, "receive_logs.py", 1) for _ in range(2)]
    for r in receivers:
        ready(r)
    finish(example(mesh, "emit_log.py", "info: it works"))
    for r in receivers:
        assert "b'info: it works'" in finish(r)


def test_routing(mesh):
    errors = example(mesh, "receive_logs_direct.py", "--count", "1", "error")
    ready(errors)
    finish(example(mesh, "emit_log_direct.py", "info", "not for it"))
    finish(example(mesh, "emit_log_direct.py", "error", "disk full"))
    out = finish(errors)
    assert "'error':b'disk full'" in out and "not for it" not in out


def test_topics(mesh):
    kern = example(mesh, "receive_logs_topic.py", "--count", "2", "kern.*", "*.critical")
    ready(kern)
    finish(example(mesh, "emit_log_topic.py", "kern.info", "k1"))
    finish(example(mesh, "emit_log_topic.py", "user.info", "skip"))
    finish(example(mesh, "emit_log_topic.py", "app.critical", "c1"))
    out = finish(kern)
    assert "'kern.info':b'k1'" in out and "'app.critical':b'c1'" in out and "skip" not in out


def test_rpc_fibonacci(mesh):
    server = example(mesh, "rpc_server.py", 30)
    ready(server)
    assert "Got 832040" in finish(example(mesh, "rpc_client.py", 30))
    client = example(mesh, "rpc_client.py", -1)
    out, err = client.communicate(timeout=WAIT)
    assert client.returncode == 1 and b"n must be 0..10000" in err
    server.kill()


def test_notifications_by_priority(mesh):
    listener = example(mesh, "notify_listener.py", "--count", "1", "error")
    ready(listener)
    finish(example(mesh, "notify.py", "info", "compute.instance.create.end"))
    finish(example(mesh, "notify.py", "error", "compute.instance.delete.error", '{"id": 7}'))
    out = finish(listener)
    assert 'ERROR compute.instance.delete.error {"id": 7}' in out
    assert "create.end" not in out
