#!/usr/bin/python3
"""The monitor's /metrics and its HTTP server under bad input.

usage: test_observe_metrics.py MESHBUS_TOOL

Three nodes (two subscribers, a server) and a monitor, loopback, a cluster
of this run's own, some published messages. /metrics is parsed by
Prometheus' own parser (Debian's python3-prometheus-client) and every
counter of every node in `meshbus stats --json` is cross-checked against
it: counters only grow, so a scrape taken between two `stats --json` runs
must lie between their values, under the name docs/observe.md gives.
Then bad HTTP input: an overlong URL, garbage, every byte value, a POST,
1000 connections at once. The monitor must keep serving and stay in the
mesh. Every wait has a functional bound; nothing is timed.
"""
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

BOUND_S = 60
REASON_WORDS = ("dropped", "refused", "malformed", "failed", "ignored", "error")
TRAFFIC = ("frames.in", "frames.out", "messages.in", "messages.out", "bytes.in", "bytes.out")


def metric_name(counter):
    """docs/observe.md: family and reason label of one counter."""
    parts = counter.split(".")
    for i, part in enumerate(parts):
        if part in REASON_WORDS and i + 1 < len(parts) and parts[i + 1] != "":
            family, reason = ".".join(parts[:i + 1]), ".".join(parts[i + 1:])
            break
    else:
        family, reason = counter, ""
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in family), reason


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.headers, response.read().decode()


def stats(tool, common):
    out = subprocess.run([tool, "stats", "--json", "--timeout", "3"] + common, check=True,
                         capture_output=True, text=True, timeout=BOUND_S).stdout
    whole = json.loads(out)
    nodes = dict(whole["peers"])
    nodes[whole["self"]["id"]] = whole["self"]
    return whole["self"]["id"], nodes


def expected(node_id, record):
    """{(sample name, frozenset(labels)): value} that /metrics must hold for a node."""
    out = {}
    base = {("node", node_id)}

    def add(prefix, counter, value, labels):
        family, reason = metric_name(counter)
        key = set(labels)
        if reason:
            key.add(("reason", reason))
        out[(prefix + family + "_total", frozenset(key))] = value
    for field in TRAFFIC:
        if field in record:
            add("meshbus_", field, record[field], base)
    for counter, value in record.get("counters", {}).items():
        add("meshbus_", counter, value, base)
    for section in ("peers", "departed"):
        for peer, rec in record.get(section, {}).items():
            labels = base | {("peer", peer)}
            for field in TRAFFIC:
                if field in rec:
                    add("meshbus_peer_", field, rec[field], labels)
            for counter, value in rec.get("counters", {}).items():
                add("meshbus_peer_", counter, value, labels)
    return out


def scrape(base):
    status, headers, text = get(base + "metrics")
    assert status == 200, status
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers["Content-Type"]
    samples = {}
    families = 0
    for family in text_string_to_metric_families(text):
        families += 1
        for s in family.samples:
            labels = {(k, v) for k, v in s.labels.items() if k not in ("node_name", "peer_name", "endpoint")}
            key = (s.name, frozenset(labels))
            assert key not in samples, "sample twice: %s %s" % key
            samples[key] = s.value
    return families, samples, text


def wait_refresh_after(base, wall_ms):
    """Until the monitor refreshed after wall_ms (bounded)."""
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        if json.loads(get(base + "api/nodes")[2])["refreshed_ms"] > wall_ms:
            return
        time.sleep(0.1)
    raise AssertionError("the monitor did not refresh")


def raw(port, data, read=True):
    """Send bytes, return what came back before the server closed (or b'')."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        if not read:
            return b""
        reply = b""
        try:
            while len(reply) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
                if b"\r\n\r\n" in reply:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return reply


def check_serving(base, what):
    status, _, body = get(base + "api/nodes")
    assert status == 200 and json.loads(body)["nodes"], "after %s: not serving" % what


def bad_input(base, port):
    long_url = b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    reply = raw(port, long_url)
    assert reply == b"" or reply.split(b" ")[1] in (b"414", b"400", b"431"), reply[:80]
    check_serving(base, "an overlong URL")
    print("overlong URL (200 KB): %s; still serving" %
          (reply.split(b"\r\n")[0].decode() if reply else "connection closed"))
    rng = random.Random(7)
    for i in range(20):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))
        reply = raw(port, junk + b"\r\n\r\n")
        assert reply == b"" or reply.startswith(b"HTTP/1."), reply[:80]
    raw(port, bytes(range(256)) + b"\r\n\r\n")
    raw(port, b"GET /\x00\xff HTTP/1.1\r\n" + b"X: " + bytes(range(1, 256)) + b"\r\n\r\n")
    raw(port, b"")
    check_serving(base, "garbage")
    print("20 garbage requests, every byte value, an empty connection: still serving")
    for path, want in (("/api/node/zz", 404), ("/api/node/" + "0" * 32, 404),
                       ("/../../etc/passwd", 404), ("/api/events?since=-1", 200),
                       ("/api/events?since=99999999999999999999999", 200)):
        try:
            status = get(base.rstrip("/") + path)[0]
        except urllib.error.HTTPError as e:
            status = e.code
        assert status == want, "%s: %s, not %s" % (path, status, want)
    request = urllib.request.Request(base + "metrics", data=b"x" * 1000, method="POST")
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("POST was served")
    except urllib.error.HTTPError as e:
        assert e.code == 405, e.code
    print("unknown node, path traversal: 404; POST: 405")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    held = []
    try:
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", port), timeout=15)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")      # never finished
            held.append(s)
        check_serving(base, "1000 connections held open")
        print("1000 connections held open: a new client is still served")
    finally:
        for s in held:
            s.close()
    check_serving(base, "1000 connections closed")


def main():
    tool = sys.argv[1]
    cluster = "observe-metrics-%d-%d" % (os.getpid(), random.randrange(1 << 30))
    port = str(random.randrange(20000, 60000))
    common = ["--cluster", cluster, "--port", port]
    procs = []

    def start(args, **kw):
        p = subprocess.Popen([tool] + args + common, stdout=kw.get("stdout", subprocess.DEVNULL),
                             stderr=subprocess.DEVNULL, start_new_session=True, text=True)
        procs.append(p)
        return p
    try:
        start(["sub", "orders.#", "--name", "sub-a"])
        start(["sub", "orders.eu.*", "--name", "sub-b"])
        start(["serve", "echo", "--echo", "--name", "server"])
        monitor = start(["monitor", "--http", "127.0.0.1:0", "--interval", "0.5"],
                        stdout=subprocess.PIPE)
        line = monitor.stdout.readline().strip()
        assert line.startswith("monitor: http://127.0.0.1:"), "monitor said %r" % line
        base = line.split(" ", 1)[1]
        http_port = int(base.rsplit(":", 1)[1].strip("/"))
        subprocess.run([tool, "pub", "orders.eu.created", "hello", "--count", "50",
                        "--name", "publisher"] + common, check=True, timeout=BOUND_S,
                       capture_output=True)
        self1, before = stats(tool, common)
        wait_refresh_after(base, int(time.time() * 1000))
        families, samples, text = scrape(base)
        self2, after = stats(tool, common)
        checked = 0
        for node_id, record in before.items():
            if node_id in (self1, self2) or node_id not in after:
                continue          # the stats runs' own nodes, and the publisher that left
            later = expected(node_id, after[node_id])
            for key, value in expected(node_id, record).items():
                if any(k == "peer" and v in (self1, self2) for k, v in key[1]) or key not in later:
                    continue
                assert key in samples, "not in /metrics: %s %s" % (key[0], sorted(key[1]))
                assert value <= samples[key] <= later[key], \
                    "%s %s: stats said %s then %s, /metrics %s" % (
                        key[0], sorted(key[1]), value, later[key], samples[key])
                checked += 1
        names = {json.loads(json.dumps(r))["name"] for r in before.values()}
        assert {"sub-a", "sub-b", "server", "monitor"} <= names, names
        published = [v for (n, l), v in samples.items() if n.startswith("meshbus_pubsub_") or n.startswith("meshbus_peer_pubsub_")]
        assert published, "no pubsub counters in /metrics:\n" + text
        assert "meshbus_peers{" in text and 'state="alive"' in text
        print("/metrics: %d families parsed by prometheus_client; %d counters of %d nodes "
              "lie between two stats --json runs" % (families, checked, len(before) - 1))
        monitor_id = json.loads(get(base + "api/nodes")[2])["self"]
        bad_input(base, http_port)
        assert monitor.poll() is None, "the monitor exited"
        _, now = stats(tool, common)
        seen_by = [r["name"] for r in now.values()
                   if r.get("peers", {}).get(monitor_id, {}).get("state") == "ALIVE"]
        assert {"sub-a", "sub-b", "server"} <= set(seen_by), \
            "the monitor is not ALIVE to every node: %s" % seen_by
        print("after all that the monitor is ALIVE to %s" % ", ".join(sorted(seen_by)))
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAILED:", e)
        sys.exit(1)
