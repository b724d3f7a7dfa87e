#!/usr/bin/python3
"""Per-pattern figures: stats --json, /metrics, top --once and the event stream.

usage: test_observe_patterns.py MESHBUS_TOOL PEER_PROGRAM

Real nodes on loopback, each its own process, in a cluster of this run's
own: subscribers, servers and workers of the meshbus tool whose subjects,
services and queues hold every byte a name may hold (quotes, backslashes,
percent signs, valid UTF-8, bytes that are no UTF-8 at all, 255 bytes
long), and a long-lived peer (PEER_PROGRAM --peer, tests/test_observe.c)
with SUBS subscriptions, 25 calls made (5 failing), 3 jobs that die and 4
that nobody works. A monitor serves it all.

Checked: every node's pattern tables in `meshbus stats --json` (the names
as sent, decoded the way docs/observe.md says; the counts made; SUBS
subscriptions answered as the 50 most active plus a count of the rest);
/metrics parsed by prometheus_client holds a series for every row, its
labels equal to the names, its values between two stats runs, and the
latency histogram (_bucket cumulative, +Inf = _count = calls); top --once
shows the pattern pane; a server-sent event client gets ENTER and the
three DEAD_LETTER events of the peer's queue, resumes after Last-Event-ID,
and gets the GAP events of a subscriber frozen behind a publisher (loss
made on purpose), which add up to that subscriber's pubsub.gaps. Every wait has a functional bound; nothing is timed.
"""
import codecs
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

BOUND_S = 120
SUBS = int(os.environ.get("OBSERVE_SUBS", "99999"))      # + "peer.#": the most a node may hold
BOUNDS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
            0.5, 1, 2.5, 5, 10]

# docs/observe.md: a byte that starts no valid UTF-8 character stands for
# the character of its value (U+0080..U+00FF)
codecs.register_error("meshbus", lambda e: (e.object[e.start:e.start + 1].decode("latin-1"),
                                            e.start + 1))


def shown(name):
    return name.decode("utf-8", "meshbus")


# Names with every byte a subject may hold (not controls, space, DEL; '.'
# separates tokens; '*' and '#' only as whole tokens of a pattern)
PRINTABLE = bytes(b for b in range(0x21, 0x7f) if b not in b".*#")
HIGH = bytes(range(0x80, 0x100))
SUBJECTS = [
    b"odd." + PRINTABLE,                                    # " \ % { } ...
    b"odd." + HIGH[:64] + b"." + HIGH[64:],                  # no UTF-8 at all
    "odd.\u00e9t\u00e9.\u65e5\u672c.\u00fc".encode(),       # valid UTF-8
    b"odd." + b"\xff" * 251,                                 # 255 bytes: the limit
    b'odd."\\n\\"}',                                         # escapes spelled out
    # overlong, surrogate, past U+10FFFF, a 4-byte character, a cut one
    b"odd.\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80\xf0\x9f\x98\x80\xe6\x97.z",
]
SERVICE = b'svc.odd."\\%\xc3\xa9\xff'
QUEUE = b'q.odd."\\\xfe'


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.headers, response.read().decode()


def stats(tool, common):
    out = subprocess.run([tool, "stats", "--json", "--timeout", "3"] + common, check=True,
                         capture_output=True, timeout=BOUND_S).stdout
    whole = json.loads(out)
    nodes = dict(whole["peers"])
    nodes[whole["self"]["id"]] = whole["self"]
    return nodes, len(out)


def by_name(nodes, name):
    found = [r for r in nodes.values() if r.get("name") == name]
    assert len(found) == 1, "%d nodes named %s" % (len(found), name)
    return found[0]


class Stream(threading.Thread):
    """A server-sent events client on a raw socket: every event it reads."""

    def __init__(self, port, last_id=None):
        super().__init__(daemon=True)
        self.events, self.headers, self.ids = [], b"", []
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND_S)
        extra = b"Last-Event-ID: %d\r\n" % last_id if last_id is not None else b""
        self.sock.sendall(b"GET /api/events HTTP/1.0\r\nHost: x\r\n"
                          b"Accept: text/event-stream\r\n" + extra + b"\r\n")
        self.start()

    def run(self):
        data = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                data += chunk
                if not self.headers:
                    if b"\r\n\r\n" not in data:
                        continue
                    self.headers, data = data.split(b"\r\n\r\n", 1)
                # HTTP/1.0: the body is the stream itself; an event ends
                # with an empty line
                while b"\n\n" in data:
                    block, data = data.split(b"\n\n", 1)
                    fields = dict(line.split(b": ", 1) for line in block.split(b"\n")
                                  if b": " in line)
                    if b"data" in fields:
                        self.ids.append(int(fields[b"id"]))
                        self.events.append(json.loads(fields[b"data"]))
        except (OSError, ValueError):
            return

    def wait(self, what, check):
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            if check(self.events):
                return
            time.sleep(0.1)
        raise AssertionError("stream: no %s in %s" % (what, self.events))


def check_tables(nodes, peer_id, names):
    """The pattern tables of stats --json, node by node."""
    peer = nodes[peer_id]["patterns"]
    subs = peer["pubsub"]
    assert subs["subscriptions.count"] == SUBS + 1, subs["subscriptions.count"]
    assert len(subs["subscriptions"]) == min(50, SUBS + 1), len(subs["subscriptions"])
    assert subs["subscriptions.more"] == SUBS + 1 - len(subs["subscriptions"])
    top = [(r["pattern"], r["received"]) for r in subs["subscriptions"][:2]]
    assert top == [("many.7", 3), ("many.3", 1)], "most active first: %s" % top
    calls = {r["service"]: r for r in peer["reqrep"]["calls"]}
    assert calls["svc.echo"]["calls"] == 20 and calls["svc.echo"]["errors"] == 0, calls
    assert calls["svc.fail"]["calls"] == 5 and calls["svc.fail"]["errors"] == 5, calls
    for row in calls.values():
        b = row["latency_buckets"]
        assert b == sorted(b) and b[-1] <= row["calls"] and row["latency_sum_us"] > 0, row
    queues = {r["queue"]: r for r in peer["pipeline"]["queues"]}
    none = queues["jobs.none"]
    assert (none["pending"], none["ready"], none["in_flight"], none["workers"]) == (4, 4, 0, 0), none
    assert queues["jobs.dead"]["dead"] == 3 and queues["jobs.dead"]["pending"] == 0, queues
    for i, subject in enumerate(SUBJECTS):
        rows = by_name(nodes, "odd-%d" % i)["patterns"]["pubsub"]["subscriptions"]
        assert [r["pattern"] for r in rows] == [shown(subject)], (rows, shown(subject))
        assert rows[0]["received"] == 2, rows
    served = by_name(nodes, "odd-server")["patterns"]["reqrep"]["services"]
    assert [(r["service"], r["served"]) for r in served] == [(shown(SERVICE), 1)], served
    worked = by_name(nodes, "odd-worker")["patterns"]["pipeline"]["works"]
    assert [(r["queue"], r["handled"]) for r in worked] == [(shown(QUEUE), 1)], worked
    failer = by_name(nodes, "failer")["patterns"]["pipeline"]["works"]
    assert failer[0]["queue"] == "jobs.dead" and failer[0]["failed"] == 6, failer
    print("stats --json: %d subscriptions answered as %d rows + %d more, most active first; "
          "calls, errors, latency, queues and every odd name as sent" %
          (SUBS + 1, len(subs["subscriptions"]), subs["subscriptions.more"]))


ROWS = [  # pattern, table, row key, label, {field: (family, sample)}
    ("pubsub", "subscriptions", "pattern", "subject",
     {"received": "meshbus_subscription_received_total"}),
    ("reqrep", "services", "service", "service",
     {"served": "meshbus_service_served_total", "errors": "meshbus_service_errors_total"}),
    ("reqrep", "calls", "service", "service",
     {"calls": "meshbus_call_ended_total", "errors": "meshbus_call_errors_total",
      "timeouts": "meshbus_call_timeouts_total", }),
    ("pipeline", "queues", "queue", "queue",
     {"pending": "meshbus_queue_pending", "in_flight": "meshbus_queue_in_flight",
      "dead": "meshbus_queue_dead_total", "done": "meshbus_queue_done_total"}),
    ("pipeline", "works", "queue", "queue",
     {"handled": "meshbus_work_handled_total", "failed": "meshbus_work_failed_total"}),
]


def expected(node_id, record):
    out = {}
    for pattern, table, key, label, fields in ROWS:
        for row in record.get("patterns", {}).get(pattern, {}).get(table, []):
            labels = {("node", node_id), (label, row[key])}
            if table == "subscriptions":
                labels.add(("subscription", str(row["id"])))
            for field, name in fields.items():
                out[(name, frozenset(labels))] = row[field]
            if table == "calls":
                for bound, count in zip(BOUNDS_S, row["latency_buckets"]):
                    out[("meshbus_call_latency_seconds_bucket",
                         frozenset(labels | {("le", repr(float(bound)))}))] = count
                out[("meshbus_call_latency_seconds_bucket",
                     frozenset(labels | {("le", "+Inf")}))] = row["calls"]
                out[("meshbus_call_latency_seconds_count", frozenset(labels))] = row["calls"]
    return out


def scrape(base):
    status, headers, text = get(base + "metrics")
    samples, types = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            labels = {(k, v) for k, v in s.labels.items() if k != "node_name"}
            if "le" in s.labels:
                labels = {(k, repr(float(v)) if k == "le" and v != "+Inf" else v)
                          for k, v in labels}
            key = (s.name, frozenset(labels))
            assert key not in samples, "sample twice: %s %s" % key
            samples[key] = s.value
    return samples, types, text


SLOW = ["--suspect-ms", "10000", "--gone-ms", "60000"]


def gaps(tool, common, start, stream):
    """Loss made on purpose (as tests/test_pubsub_scenarios.c does): a
    subscriber frozen behind a publisher whose link holds 20 messages. The
    subscriber's own GAP events reach the stream, with the publisher's
    name, and add up to its pubsub.gaps counter."""
    sub = start(["sub", "lossy.#", "--no-replay", "--name", "gap-sub"] + SLOW)
    pub = start(["pub", "lossy.x", "-", "--wait-subscribers", "1", "--timeout", "60", "--hwm",
                 "20", "--linger", "60", "--name", "gap-pub"] + SLOW, stdin=subprocess.PIPE)
    pub.stdin.write(b"first\n")
    pub.stdin.flush()
    deadline = time.monotonic() + BOUND_S
    while True:           # the first message went through: the subscriber is known
        nodes, _ = stats(tool, common)
        row = [r for r in nodes.values() if r.get("name") == "gap-sub"]
        rows = row[0]["patterns"]["pubsub"]["subscriptions"] if row else []
        if rows and rows[0]["received"] == 1:
            break
        assert time.monotonic() < deadline, "gap-sub never got its first message"
        time.sleep(0.2)
    sub_id = row[0]["id"]
    os.kill(sub.pid, signal.SIGSTOP)
    pub.stdin.write(b"x\n" * 3000)
    pub.stdin.close()
    while True:           # the publisher is done once it counted every publish
        nodes, _ = stats(tool, common)
        row = [r for r in nodes.values() if r.get("name") == "gap-pub"]
        if row and row[0]["counters"].get("pubsub.published", 0) >= 3001:
            break
        assert time.monotonic() < deadline, "gap-pub did not publish its 3001"
        time.sleep(0.2)
    os.kill(sub.pid, signal.SIGCONT)
    stream.wait("GAP of gap-sub", lambda ev: any(e["type"] == "GAP" and e["node"] == sub_id
                                                 for e in ev))
    while True:           # settled: every GAP the counter has is in the stream
        nodes, _ = stats(tool, common)
        counted = nodes[sub_id]["counters"].get("pubsub.gaps", 0)
        shown_ = [e for e in stream.events if e["node"] == sub_id and e["type"] == "GAP"]
        total = sum(int(e["detail"].split()[0]) for e in shown_)
        if total == counted or any(e["node"] == sub_id and e["type"] == "MISSED"
                                   for e in stream.events):
            break
        assert time.monotonic() < deadline, "GAP events sum %d, pubsub.gaps %d" % (total, counted)
        time.sleep(0.2)
    assert all("from gap-pub" in e["detail"] for e in shown_), shown_
    print("forced loss: %d GAP events of gap-sub (%s...) sum to its pubsub.gaps, %d" %
          (len(shown_), shown_[0]["detail"], counted))


def main():
    tool, peer_program = sys.argv[1], sys.argv[2]
    cluster = "observe-patterns-%d-%d" % (os.getpid(), random.randrange(1 << 30))
    port = str(random.randrange(20000, 60000))
    common = ["--cluster", cluster, "--port", port]
    procs = []

    def start(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, prog=None):
        p = subprocess.Popen(([prog] if prog else [tool]) + args + ([] if prog else common),
                             stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        procs.append(p)
        return p

    def run(args):
        done = subprocess.run([tool] + args + common, capture_output=True, timeout=BOUND_S)
        assert done.returncode == 0, "%s: exit %d: %s" % (args[:2], done.returncode,
                                                          done.stderr.decode("utf-8", "replace"))
    try:
        monitor = start(["monitor", "--http", "127.0.0.1:0", "--interval", "0.5"],
                        stdout=subprocess.PIPE)
        base = monitor.stdout.readline().decode().strip().split(" ", 1)[1]
        http_port = int(base.rsplit(":", 1)[1].strip("/"))
        stream = Stream(http_port)
        for i, subject in enumerate(SUBJECTS):
            start(["sub", subject, "--name", "odd-%d" % i])
        start(["serve", "svc.echo", "--echo", "--name", "echo"])
        start(["serve", "svc.fail", "--exec", "false", "--name", "fail"])
        start(["serve", SERVICE, "--echo", "--name", "odd-server"])
        start(["work", QUEUE, "--exec", "cat", "--name", "odd-worker"])
        start(["work", "jobs.dead", "--exec", "false", "--name", "failer"])
        peer = start(["--peer", cluster, port, str(SUBS)], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, prog=peer_program)
        ready = peer.stdout.readline().decode().split()
        assert ready[:1] == ["ready"] and ready[2:] == ["ok=20", "failed=5"], ready
        peer_id = ready[1]
        for subject in SUBJECTS:
            run(["pub", subject, "hello", "--count", "2", "--wait-subscribers", "1", "--timeout", "60"])
        run(["pub", "many.7", "x", "--count", "3", "--wait-subscribers", "1", "--timeout", "60"])
        run(["pub", "many.3", "x", "--wait-subscribers", "1", "--timeout", "60"])
        run(["call", SERVICE, "hi"])
        run(["push", QUEUE, "job", "--timeout", "30"])
        stream.wait("3 DEAD_LETTER of the peer",
                    lambda ev: sum(1 for e in ev if e["type"] == "DEAD_LETTER"
                                   and e["node"] == peer_id and "jobs.dead" in e["detail"]) == 3)
        assert b"text/event-stream" in stream.headers, stream.headers
        assert any(e["type"] == "ENTER" and e["node"] == peer_id for e in stream.events)
        print("event stream: ENTER and 3 DEAD_LETTER of the peer (%s)" %
              [e["detail"] for e in stream.events if e["type"] == "DEAD_LETTER"][0])

        # the counts settle (each subscriber got its 2, the worker its job)
        deadline = time.monotonic() + BOUND_S
        while True:
            try:
                nodes, size = stats(tool, common)
                check_tables(nodes, peer_id, None)
                break
            except (AssertionError, KeyError, IndexError) as e:
                if time.monotonic() > deadline:
                    raise AssertionError("tables never settled: %r (peer %s)" % (
                        e, "running" if peer.poll() is None else "exited %s" % peer.poll()))
                time.sleep(0.5)
        assert size < 1 << 20, "stats --json of %d subscriptions is %d bytes" % (SUBS, size)

        before, _ = stats(tool, common)
        since = int(time.time() * 1000)
        while json.loads(get(base + "api/nodes")[2])["refreshed_ms"] <= since:
            time.sleep(0.1)
        samples, types, text = scrape(base)
        after, _ = stats(tool, common)
        checked = 0
        for node_id, record in before.items():
            if node_id not in after:
                continue
            later = expected(node_id, after[node_id])
            for key, value in expected(node_id, record).items():
                assert key in samples, "not in /metrics: %s %s\n%s" % (
                    key[0], sorted(key[1]), [l for l in text.splitlines() if key[0] in l][:5])
                assert value <= samples[key] <= later.get(key, value), (key, value, samples[key])
                checked += 1
        assert types["meshbus_call_latency_seconds"] == "histogram", types
        assert types["meshbus_queue_pending"] == "gauge", types
        odd = {v for (n, l), _ in samples.items() for k, v in l if k in ("subject", "service", "queue")}
        assert {shown(s) for s in SUBJECTS} | {shown(SERVICE), shown(QUEUE)} <= odd
        omitted = [v for (n, l), v in samples.items() if n == "meshbus_pattern_rows_omitted"
                   and ("node", peer_id) in l and ("table", "subscriptions") in l]
        assert omitted == [SUBS + 1 - 50], omitted
        print("/metrics: %d pattern series between two stats runs, labels equal to the names, "
              "histogram cumulative with +Inf = _count" % checked)

        pane = subprocess.run([tool, "top", "--once", "--select", "observe-peer", "--interval",
                               "0.5"] + common, capture_output=True, timeout=BOUND_S).stdout
        for text_ in (b"SUBSCRIPTION", b"many.7", b"(+%d more)" % (SUBS + 1 - 50),
                      b"CALLED (from here)", b"svc.echo", b"svc.fail",
                      b"QUEUE (pushed here)", b"jobs.none", b"jobs.dead"):
            assert text_ in pane, "top --once lacks %r:\n%s" % (text_, pane.decode("utf-8", "replace"))
        pane = subprocess.run([tool, "top", "--once", "--select", "odd-0", "--interval",
                               "0.5"] + common, capture_output=True, timeout=BOUND_S).stdout
        assert shown(SUBJECTS[0])[:40].encode() in pane, pane.decode("utf-8", "replace")
        assert b"\x1b" not in pane
        print("top --once: the pattern pane of the peer and of an odd subscriber")

        # a browser that reconnects sends Last-Event-ID: it gets what follows
        last = stream.ids[-1]
        again = Stream(http_port, last_id=last - 2)
        again.wait("events after Last-Event-ID", lambda ev: len(ev) >= 2)
        assert again.ids[:2] == [last - 1, last], (again.ids, last)
        polled = json.loads(get(base + "api/events?since=0")[2])["events"]
        assert [e for e in polled if e["type"] == "DEAD_LETTER"] == \
            [e for e in stream.events if e["type"] == "DEAD_LETTER"], "long-poll and stream differ"
        print("Last-Event-ID resumes the stream; the long-poll gives the same events")
        gaps(tool, common, start, stream)
        peer.stdin.close()
        assert peer.wait(timeout=BOUND_S) == 0
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAILED:", e)
        sys.exit(1)
