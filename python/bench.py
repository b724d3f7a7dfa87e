#!/usr/bin/env python3
"""meshbus from Python next to pyzmq doing the same job raw, in one run.

    PYTHONPATH=build/release/python /usr/bin/python3 python/bench.py [--runs 5]

Three jobs, each Python -> Python between two processes on loopback:

* pub-sub: 100-byte messages, msg/s at the subscriber (first to last).
  meshbus publish/subscribe (block=True: nothing dropped) vs pyzmq
  PUB/SUB (high-water marks off: nothing dropped).
* request-reply: one call at a time, round trip p50 and p99 in us.
  meshbus call/serve vs pyzmq REQ/REP.
* async calls: 100 in flight, calls/s. meshbus call_async vs pyzmq
  DEALER/ROUTER.

Each job runs --runs times alternating meshbus and pyzmq; the medians and
their ratios are printed (and the raw runs with --json). A benchmark, not
a test: nothing here asserts a speed. Figures go to docs/python.md.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

PYTHON = "/usr/bin/python3"
SIZE = 100
#   this file sits beside the package's source, which has no compiled
#   extension: import the built package from PYTHONPATH instead
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]


def _mesh_env():
    return dict(cluster="bench-%d-%x" % (os.getpid(), random.getrandbits(32)),
                port=20000 + random.randrange(40000))


# ----------------------------------------------------------------------
# Child roles (run as: bench.py --role NAME ARGS...)

def role_mesh_sub(count, cluster, port):
    import meshbus
    node = meshbus.Node("bench-sub", cluster=cluster, port=int(port)).start()
    sub = node.subscribe("bench.data", block=True)
    print("ready", flush=True)
    first = sub.get()
    start = time.perf_counter()
    for _ in range(int(count) - 1):
        sub.get()
    print(time.perf_counter() - start, flush=True)
    node.close()


def role_zmq_sub(count, endpoint):
    import zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"bench.data")
    sock.connect(endpoint)
    print("ready", flush=True)
    sock.recv_multipart()
    start = time.perf_counter()
    for _ in range(int(count) - 1):
        sock.recv_multipart()
    print(time.perf_counter() - start, flush=True)


def role_mesh_echo(cluster, port):
    import meshbus
    node = meshbus.Node("bench-echo", cluster=cluster, port=int(port)).start()
    node.serve("bench.echo", lambda req: req.body)
    print("ready", flush=True)
    node.run()


def role_zmq_rep(endpoint):
    import zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.bind(endpoint)
    print("ready", flush=True)
    while True:
        sock.send(sock.recv())


def role_zmq_router(endpoint):
    import zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.bind(endpoint)
    print("ready", flush=True)
    while True:
        sock.send_multipart(sock.recv_multipart())


ROLES = {"mesh-sub": role_mesh_sub, "zmq-sub": role_zmq_sub, "mesh-echo": role_mesh_echo,
         "zmq-rep": role_zmq_rep, "zmq-router": role_zmq_router}


def child(*args):
    proc = subprocess.Popen([PYTHON, os.path.abspath(__file__), "--role"] + [str(a) for a in args],
                            stdout=subprocess.PIPE, env=os.environ)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def free_endpoint():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "tcp://127.0.0.1:%d" % port


# ----------------------------------------------------------------------
# Jobs: each returns a dict of figures

def pubsub_mesh(count):
    import meshbus
    env = _mesh_env()
    sub = child("mesh-sub", count, env["cluster"], env["port"])
    with meshbus.Node("bench-pub", **env) as node:
        node.wait_subscribers("bench.data", 1, 20)
        body = b"x" * SIZE
        publish = node.publish
        for _ in range(count):
            publish("bench.data", body)
        elapsed = float(sub.stdout.readline())
        sub.wait()
    return {"msg_s": (count - 1) / elapsed}


def pubsub_zmq(count):
    import zmq
    endpoint = free_endpoint()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.bind(endpoint)
    sub = child("zmq-sub", count, endpoint)
    time.sleep(0.5)         # the slow joiner: its subscription must arrive first
    body = b"x" * SIZE
    send = sock.send_multipart
    for _ in range(count):
        send([b"bench.data", body])
    elapsed = float(sub.stdout.readline())
    sub.wait()
    sock.close(linger=0)
    ctx.term()
    return {"msg_s": (count - 1) / elapsed}


def _latency(samples):
    samples.sort()
    return {"p50_us": samples[len(samples) // 2] * 1e6,
            "p99_us": samples[int(len(samples) * 0.99)] * 1e6}


def reqrep_mesh(count):
    import meshbus
    env = _mesh_env()
    server = child("mesh-echo", env["cluster"], env["port"])
    with meshbus.Node("bench-client", **env) as node:
        node.wait_providers("bench.echo", 1, 20)
        body = b"x" * SIZE
        call = node.call
        for _ in range(200):
            call("bench.echo", body)
        samples = []
        clock = time.perf_counter
        for _ in range(count):
            t = clock()
            call("bench.echo", body)
            samples.append(clock() - t)
    server.kill()
    server.wait()
    return _latency(samples)


def reqrep_zmq(count):
    import zmq
    endpoint = free_endpoint()
    server = child("zmq-rep", endpoint)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.connect(endpoint)
    body = b"x" * SIZE
    for _ in range(200):
        sock.send(body)
        sock.recv()
    samples = []
    clock = time.perf_counter
    for _ in range(count):
        t = clock()
        sock.send(body)
        sock.recv()
        samples.append(clock() - t)
    server.kill()
    server.wait()
    sock.close(linger=0)
    ctx.term()
    return _latency(samples)


WINDOW = 100


def async_mesh(count):
    import collections
    import meshbus
    env = _mesh_env()
    server = child("mesh-echo", env["cluster"], env["port"])
    with meshbus.Node("bench-async", **env) as node:
        node.wait_providers("bench.echo", 1, 20)
        body = b"x" * SIZE
        inflight = collections.deque()
        start = time.perf_counter()
        for _ in range(count):
            if len(inflight) >= WINDOW:
                inflight.popleft().result()
            inflight.append(node.call_async("bench.echo", body))
        for f in inflight:
            f.result()
        elapsed = time.perf_counter() - start
    server.kill()
    server.wait()
    return {"calls_s": count / elapsed}


def async_zmq(count):
    import zmq
    endpoint = free_endpoint()
    server = child("zmq-router", endpoint)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.connect(endpoint)
    body = b"x" * SIZE
    sent = received = 0
    start = time.perf_counter()
    while received < count:
        while sent < count and sent - received < WINDOW:
            sock.send_multipart([b"%d" % sent, body])
            sent += 1
        sock.recv_multipart()
        received += 1
    elapsed = time.perf_counter() - start
    server.kill()
    server.wait()
    sock.close(linger=0)
    ctx.term()
    return {"calls_s": count / elapsed}


JOBS = [("pubsub", pubsub_mesh, pubsub_zmq, 200_000, "msg_s", True),
        ("reqrep", reqrep_mesh, reqrep_zmq, 5_000, "p50_us", False),
        ("async", async_mesh, async_zmq, 50_000, "calls_s", True)]


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--role":
        return ROLES[sys.argv[2]](*sys.argv[3:])
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--runs", type=int, default=5)
    args.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    args.add_argument("--json", action="store_true")
    opts = args.parse_args()
    import meshbus
    results = {}
    for name, mesh_fn, zmq_fn, count, key, higher_better in JOBS:
        n = max(100, int(count * opts.scale))
        runs = {"meshbus": [], "pyzmq": []}
        for _ in range(opts.runs):
            runs["meshbus"].append(mesh_fn(n))
            runs["pyzmq"].append(zmq_fn(n))
        med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
               for side, rs in runs.items()}
        ratio = med["meshbus"][key] / med["pyzmq"][key]
        results[name] = {"count": n, "runs": runs, "median": med, "ratio": ratio}
        figures = "  ".join("%s %s" % (side, "  ".join("%s=%.1f" % kv for kv in m.items()))
                            for side, m in med.items())
        print("%-7s %s  ratio %s %.3f" % (name, figures, key, ratio), flush=True)
    if opts.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
