#!/usr/bin/python3
"""oslo.messaging over meshbus:// against rabbit:// in the same run.

    PYTHONPATH=build/release/python bench/oslo_bench.py [--runs 5] [--calls 2000]
                                                        [--casts 5000] [--only meshbus]

For each transport and run: an oslo RPC server in a process of its own
(threading executor), the client in this process, on loopback. Measured:
- call: round trip of a `call` whose endpoint returns at once, one at a
  time (p50, p99 over --calls, after a warm-up);
- cast: `cast`s sent back to back to the topic; throughput is the casts
  divided by the time from the first sent to the last handled by the
  server (a final call waits for the server's count).
Medians over the runs, and meshbus's ratios to rabbit's (the goal of
issue 16: p50 at least 3x lower, cast throughput at least 3x higher).

RabbitMQ is Debian's rabbitmq-server: installed with apt-get if absent,
started if not running, and stopped after when this bench started it.
Debian's Python (/usr/bin/python3) runs this: it sees python3-oslo.messaging.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

RABBIT_URL = "rabbit://guest:guest@127.0.0.1:5672/"

SERVER = r"""
import sys, threading, time
import oslo_messaging
from oslo_config import cfg
url, topic = sys.argv[1:3]

class Endpoint:
    def __init__(self):
        self.count = 0
        self.cv = threading.Condition()
    def echo(self, ctxt, x):
        return x
    def note(self, ctxt, i):
        with self.cv:
            self.count += 1
            self.cv.notify_all()
    def wait_for(self, ctxt, n):
        with self.cv:
            self.cv.wait_for(lambda: self.count >= n, timeout=120)
            return self.count

cfg.CONF([], project="oslo-bench")
transport = oslo_messaging.get_rpc_transport(cfg.CONF, url=url)
server = oslo_messaging.get_rpc_server(
    transport, oslo_messaging.Target(topic=topic, server="s1"), [Endpoint()],
    executor="threading")
server.start()
print("ready", flush=True)
sys.stdin.read()            # until the bench closes our stdin
server.stop()
server.wait()
transport.cleanup()
"""


def rabbit_running() -> bool:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not os.path.exists(ctl):
        return False
    return subprocess.run([ctl, "-q", "status"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def rabbit_start() -> bool:
    """Install and start RabbitMQ if needed. True when this bench started it."""
    if rabbit_running():
        return False
    if not os.path.exists("/usr/sbin/rabbitmq-server"):
        print("installing rabbitmq-server with apt-get ...", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", "rabbitmq-server"], check=True,
                       env=env, stdout=subprocess.DEVNULL)
        if rabbit_running():        # the package's own start (a system with init)
            return True
    subprocess.run(["/usr/sbin/rabbitmq-server", "-detached"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["/usr/sbin/rabbitmqctl", "-q", "wait", "--timeout", "60",
                    "/var/lib/rabbitmq/mnesia/rabbit@%s.pid" % os.uname().nodename],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(120):
        if rabbit_running():
            return True
        time.sleep(0.5)
    raise SystemExit("rabbitmq-server did not start")


def rabbit_stop() -> None:
    subprocess.run(["/usr/sbin/rabbitmqctl", "-q", "stop"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def config():
    from oslo_config import cfg
    from oslo_messaging._metrics import client as metrics
    conf = cfg.ConfigOpts()
    conf.register_opts(metrics.oslo_messaging_metrics, group="oslo_messaging_metrics")
    conf([], project="oslo-bench")
    return conf


def one_run(url: str, calls: int, casts: int) -> dict:
    import oslo_messaging
    topic = "bench%08x" % random.getrandbits(32)
    env = dict(os.environ)
    server = subprocess.Popen(["/usr/bin/python3", "-c", SERVER, url, topic],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        line = server.stdout.readline()
        if line.strip() != b"ready":
            raise SystemExit("the oslo server on %s did not start" % url)
        transport = oslo_messaging.get_rpc_transport(config(), url=url)
        client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic=topic), timeout=60)
        for i in range(200):                    # warm-up: links, queues, caches
            client.call({}, "echo", x=i)
        rtts = []
        for i in range(calls):
            start = time.perf_counter()
            client.call({}, "echo", x=i)
            rtts.append(time.perf_counter() - start)
        rtts.sort()
        start = time.perf_counter()
        for i in range(casts):
            client.cast({}, "note", i=i)
        got = client.call({}, "wait_for", n=casts)
        seconds = time.perf_counter() - start
        if got < casts:
            raise SystemExit("%s: the server handled %d of %d casts" % (url, got, casts))
        transport.cleanup()
        return {"p50_us": rtts[len(rtts) // 2] * 1e6,
                "p99_us": rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] * 1e6,
                "cast_per_s": casts / seconds}
    finally:
        server.stdin.close()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--casts", type=int, default=5000)
    ap.add_argument("--only", choices=["meshbus", "rabbit"])
    args = ap.parse_args()
    cluster = "oslo-bench-%d" % os.getpid()
    port = 20000 + random.randrange(40000)
    urls = {"meshbus": "meshbus://?cluster=%s&port=%d" % (cluster, port),
            "rabbit": RABBIT_URL}
    if args.only:
        urls = {args.only: urls[args.only]}
    started = "rabbit" in urls and rabbit_start()
    results = {name: [] for name in urls}
    try:
        for run in range(args.runs):
            for name, url in urls.items():      # interleaved: same machine state
                r = one_run(url, args.calls, args.casts)
                results[name].append(r)
                print("run %d %-8s call p50 %7.0f us  p99 %7.0f us  cast %8.0f /s" % (
                    run + 1, name, r["p50_us"], r["p99_us"], r["cast_per_s"]), flush=True)
    finally:
        if started:
            rabbit_stop()
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for name, rs in results.items()}
    print("\nmedians of %d runs (%d calls, %d casts each)" % (args.runs, args.calls,
                                                              args.casts))
    for name, m in med.items():
        print("%-8s call p50 %7.0f us  p99 %7.0f us  cast %8.0f /s" % (
            name, m["p50_us"], m["p99_us"], m["cast_per_s"]))
    if len(med) == 2:
        mb, rb = med["meshbus"], med["rabbit"]
        print("meshbus vs rabbit: call p50 %.1fx lower, p99 %.1fx lower, cast %.1fx higher"
              % (rb["p50_us"] / mb["p50_us"], rb["p99_us"] / mb["p99_us"],
                 mb["cast_per_s"] / rb["cast_per_s"]))


if __name__ == "__main__":
    main()
