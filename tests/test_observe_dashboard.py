#!/usr/bin/python3
"""The monitor's dashboard in headless Chromium (Debian's chromium).

usage: test_observe_dashboard.py MESHBUS_TOOL SCREENSHOT_DIR

Five nodes and a monitor on loopback, a cluster of this run's own. The
page, driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
no port, no websocket library), must show the five nodes and every link
between them; a node killed with -9 must be shown GONE, and its links gone,
within the monitor's gone timeout (waited for with a functional bound, not
timed). Screenshots of both states are written to SCREENSHOT_DIR.
Exit 0 passed, 1 failed (says why), 77 chromium missing.
"""
import base64
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BOUND_S = 60            # functional bound of every wait: a failing test ends
GONE_MS = 2000


class Chromium:
    """Headless Chromium driven through the DevTools protocol on fds 3/4."""

    def __init__(self, profile):
        #   the child's ends must land on 3 and 4: keep them above both first
        def high(fd):
            moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
            os.close(fd)
            return moved
        to_child_r, self.to_child = map(high, os.pipe())
        self.from_child, from_child_w = map(high, os.pipe())

        def fds():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)
        args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile,
                "--remote-debugging-pipe", "--window-size=1280,960", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=fds, pass_fds=(3, 4),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.session = None
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"],
                                 flatten=True)["sessionId"]
        self.call("Page.enable")

    def call(self, method, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            while b"\0" not in self.buf:
                chunk = os.read(self.from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(line)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply["result"]
        raise RuntimeError(method + ": no answer")

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


DOM = """JSON.stringify({
  nodes: [...document.querySelectorAll('#nodes g.node')].map(g => (
    {id: g.dataset.id, name: g.dataset.name, state: g.dataset.state})),
  links: [...document.querySelectorAll('#links g.link')].map(g => (
    {a: g.dataset.a, b: g.dataset.b, state: g.dataset.state})),
  rows: [...document.querySelectorAll('#nodes-table tr.node-row')].map(r => (
    {id: r.dataset.id, state: r.dataset.state})),
  subscriptions: [...document.querySelectorAll(
    '#patterns table[data-pattern=subscriptions] tr[data-name]')].map(r => r.dataset.name),
  feed: document.body.dataset.events || ""
})"""


def wait_for(what, check, chrome):
    """Poll the page's DOM until check(dom) is true (bounded)."""
    deadline = time.monotonic() + BOUND_S
    dom = None
    while time.monotonic() < deadline:
        dom = json.loads(chrome.evaluate(DOM) or "{}")
        if dom and check(dom):
            return dom
        time.sleep(0.2)
    raise AssertionError("%s: not seen; the page showed %s" % (what, json.dumps(dom)))


def main():
    tool, shots = sys.argv[1], sys.argv[2]
    if not shutil.which("chromium"):
        print("chromium is missing (./install-deps.sh installs it)")
        return 77
    os.makedirs(shots, exist_ok=True)
    cluster = "observe-dash-%d-%d" % (os.getpid(), random.randrange(1 << 30))
    port = str(random.randrange(20000, 60000))
    common = ["--cluster", cluster, "--port", port, "--suspect-ms", "500",
              "--gone-ms", str(GONE_MS)]
    procs = []
    profile = tempfile.mkdtemp(prefix="observe-chromium-")
    chrome = None
    try:
        names = ["node-%d" % i for i in range(5)]
        nodes = {}
        for name in names:
            p = subprocess.Popen([tool, "sub", "orders.#", "--name", name] + common,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
            procs.append(p)
            nodes[name] = p
        monitor = subprocess.Popen([tool, "monitor", "--http", "127.0.0.1:0", "--interval",
                                    "0.5", "--name", "monitor"] + common,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   start_new_session=True, text=True)
        procs.append(monitor)
        line = monitor.stdout.readline().strip()
        assert line.startswith("monitor: http://127.0.0.1:"), "monitor said %r" % line
        url = line.split(" ", 1)[1]
        chrome = Chromium(profile)
        chrome.call("Page.navigate", url=url)

        def all_up(dom):
            by_name = {n["name"]: n for n in dom["nodes"]}
            if not all(by_name.get(n, {}).get("state") == "ALIVE" for n in names):
                return False
            ids = {by_name[n]["id"] for n in names}
            pairs = {frozenset((l["a"], l["b"])) for l in dom["links"] if l["state"] == "ALIVE"}
            want = {frozenset((a, b)) for a in ids for b in ids if a < b}
            return want <= pairs and len({r["id"] for r in dom["rows"]} & ids) == 5
        dom = wait_for("5 nodes ALIVE and their 10 links", all_up, chrome)
        ids = {n["name"]: n["id"] for n in dom["nodes"]}
        print("page shows %d nodes (5 + the monitor), %d links" %
              (len(dom["nodes"]), len(dom["links"])))
        #   a click on a node shows its pattern tables
        chrome.evaluate("document.querySelector('#nodes g.node[data-id=\"%s\"]')"
                        ".dispatchEvent(new MouseEvent('click'))" % ids[names[0]])
        wait_for("the subscriptions table of %s" % names[0],
                 lambda dom: dom["subscriptions"] == ["orders.#"], chrome)
        print("a click on %s shows its subscriptions table (orders.#)" % names[0])
        chrome.screenshot(os.path.join(shots, "observe-dashboard.png"))

        victim = names[2]
        nodes[victim].send_signal(signal.SIGKILL)
        nodes[victim].wait()
        gone = ids[victim]

        def shown_gone(dom):
            states = {n["id"]: n["state"] for n in dom["nodes"]}
            linked = any(gone in (l["a"], l["b"]) for l in dom["links"])
            others = all(states.get(ids[n]) == "ALIVE" for n in names if n != victim)
            return states.get(gone, "GONE") == "GONE" and not linked and others
        wait_for("%s shown GONE after kill -9" % victim, shown_gone, chrome)
        print("%s killed -9: shown GONE, its links removed, the other 4 ALIVE" % victim)
        chrome.screenshot(os.path.join(shots, "observe-dashboard-gone.png"))
        events = chrome.evaluate("[...document.querySelectorAll('#events li')]"
                                 ".map(li => li.dataset.type + ' ' + li.dataset.node)")
        assert "EXIT " + gone in events, "no EXIT event for %s in the feed: %s" % (gone, events)
        feed = chrome.evaluate("document.body.dataset.events")
        assert feed == "stream", "the feed did not come as server-sent events: %r" % feed
        print("event feed (server-sent events) shows EXIT of %s" % victim)
        print("screenshots in %s" % shots)
        return 0
    finally:
        if chrome:
            chrome.close()
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAILED:", e)
        sys.exit(1)
