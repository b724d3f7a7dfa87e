"""python/examples/oslo_*.py run as their docstrings say, each in its own
process, on meshbus:// with no broker: two compute hosts, the scheduler
and a notification listener (its own mesh per test: the examples read
MESHBUS_CLUSTER and MESHBUS_PORT through the node's environment)."""
import os
import re
import signal

import pytest

from conftest import WAIT

pytest.importorskip("oslo_messaging")
pytest.importorskip("eventlet")

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def example(mesh, name, *args):
    return mesh.python(os.path.join(EXAMPLES, name), *args)


def ready(proc):
    line = proc.stdout.readline().decode()
    assert "Waiting" in line or "waiting" in line, line + proc.stderr.read().decode()


def finish(proc, interrupt=False):
    if interrupt:
        proc.send_signal(signal.SIGINT)     # CTRL+C, as the example says
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err.decode()[-3000:]
    return out.decode()


def test_compute_scheduler_and_listener(mesh):
    listener = example(mesh, "oslo_notify_listener.py", "--count", "4")
    ready(listener)
    hosts = {h: example(mesh, "oslo_compute.py", h) for h in ("host1", "host2")}
    for proc in hosts.values():
        ready(proc)
    out = finish(example(mesh, "oslo_scheduler.py", "4"))
    placed = re.findall(r"\[\.\] (vm\d) is ACTIVE on (host\d)", out)
    assert sorted(vm for vm, _ in placed) == ["vm0", "vm1", "vm2", "vm3"], out
    assert "refused: unknown flavor 'm1.huge'" in out, out
    # the listener got one notification per instance built, and exits
    got = finish(listener)
    assert sorted(re.findall(r"compute.instance.create.end \{'name': '(vm\d)'", got)) == [
        "vm0", "vm1", "vm2", "vm3"], got
    outs = {h: finish(p, interrupt=True) for h, p in hosts.items()}
    for vm, host in placed:
        assert " [x] %s: built %s (m1.small)" % (host, vm) in outs[host]
    # the reboot went to the host of vm0 only; the fanout reached both
    first_host = dict(placed)["vm0"]
    assert [h for h, o in outs.items() if "rebooting vm0" in o] == [first_host]
    assert all("cache refreshed" in o for o in outs.values()), outs


def test_notifications_wait_for_a_late_listener(mesh):
    # the compute host's notifier holds what nobody acknowledged yet
    host = example(mesh, "oslo_compute.py", "host1")
    ready(host)
    out = finish(example(mesh, "oslo_scheduler.py", "2"))
    assert out.count("is ACTIVE on host1") == 2, out
    listener = example(mesh, "oslo_notify_listener.py", "--count", "2")
    got = finish(listener)
    assert sorted(re.findall(r"'name': '(vm\d)'", got)) == ["vm0", "vm1"], got
    finish(host, interrupt=True)
