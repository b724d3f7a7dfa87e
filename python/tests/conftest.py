"""Fixtures of the Python binding's tests.

Every test gets a mesh of its own: a random cluster name and a random
beacon port on loopback, so tests running at the same time (or other
meshbus processes on the machine) never see each other. Nodes made with
the ``mesh`` fixture are closed at the end of the test; processes started
with ``spawn`` are killed (by PID) if still running.

The package is imported from $PYTHONPATH, else from the tree's
build/debug/python (``scons python``). The C tool is $MESHBUS_TOOL, else
build/debug/tools/meshbus.
"""
import os
import random
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
try:
    import meshbus  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(ROOT, "build", "debug", "python"))
    import meshbus  # noqa: F401

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(meshbus.__file__)))
PYTHON = "/usr/bin/python3"
WAIT = 20.0         # ceiling of every functional wait; it bounds a failing test


class Mesh:
    """A cluster of the test's own: make nodes and processes in it."""

    def __init__(self, tmp_path):
        self.cluster = "pytest-%d-%08x" % (os.getpid(), random.getrandbits(32))
        self.port = 20000 + random.randrange(40000)
        self.tmp = tmp_path
        self.nodes = []
        self.procs = []

    def node(self, name=None, start=True, **kwargs):
        kwargs.setdefault("cluster", self.cluster)
        kwargs.setdefault("port", self.port)
        node = meshbus.Node(name, **kwargs)
        self.nodes.append(node)
        if start:
            node.start()
        return node

    def env(self, **extra):
        env = dict(os.environ)
        env["PYTHONPATH"] = PACKAGE_DIR + os.pathsep + env.get("PYTHONPATH", "")
        env["MESHBUS_CLUSTER"] = self.cluster
        env["MESHBUS_PORT"] = str(self.port)
        env.update(extra)
        return env

    def spawn(self, argv, **kwargs):
        kwargs.setdefault("env", self.env())
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(argv, **kwargs)
        self.procs.append(proc)
        return proc

    def python(self, code_or_file, *args, **kwargs):
        """A Python child: a script path, or code run with -c."""
        if os.path.exists(code_or_file):
            argv = [PYTHON, code_or_file]
        else:
            argv = [PYTHON, "-c", code_or_file]
        return self.spawn(argv + [str(a) for a in args], **kwargs)

    def tool(self, *args, **kwargs):
        """The C tool in this mesh (cluster and port as flags)."""
        argv = [tool_path()] + [str(a) for a in args] + [
            "--cluster", self.cluster, "--port", str(self.port)]
        return self.spawn(argv, **kwargs)

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for node in self.nodes:
            node.close()


def tool_path():
    path = os.environ.get("MESHBUS_TOOL") or os.path.join(ROOT, "build", "debug", "tools",
                                                          "meshbus")
    if not os.access(path, os.X_OK):
        pytest.skip("the meshbus tool is not built (scons -Q -j2)")
    return path


@pytest.fixture
def mesh(tmp_path):
    m = Mesh(tmp_path)
    yield m
    m.close()


def wait_until(predicate, timeout=WAIT, step=0.02):
    """Poll predicate until true; bounded. Returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)
