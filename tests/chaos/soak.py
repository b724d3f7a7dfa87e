"""meshbus chaos soak: a workload on several lab hosts, faults on a
schedule drawn from a seed, and a checker over every process's history.

    tests/chaos/soak.py [--seed N] [--minutes M] [--out DIR] [--loopback]

Run as root on the project's network lab (tests/lab/lab.sh: one network
namespace per host on a bridge); without root, or where namespaces cannot
be made, every process runs on loopback and the network faults are left
out (the reason is printed). The default is the suite's 60-second run;
``--minutes N`` for long soaks. The seed is printed first: ``--seed``
(or MESHBUS_SOAK_SEED, for the suite's run) replays the same schedule of
faults (the same kinds, targets, durations and order; what the processes
do meanwhile depends on the machine).

Phases: warm-up, faults (one at a time, each undone before the next),
heal (everything healed, continued and restarted), settle, "final"
(the verification window: every worker, provider and subscriber must be
used again), "drain" (producers stop and wait for their acks), "stop"
(every process must exit by itself). Then check.py reads the histories
and prints one verdict per property; the exit status is 0 only when every
property holds. Histories are kept in --out (or in a temporary directory
that is printed and kept when a property fails).
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
LAB = os.path.join(SRC, "tests", "lab", "lab.sh")
PY = "/usr/bin/python3"
GONE_MS = 3000
HOSTS = 5

#   name, role, host, extra agent arguments
LAYOUT = [
    ("P1", "producer", 1, ["--interval", "0.1"]),
    ("D1", "dproducer", 2, ["--interval", "0.1"]),
    ("W1", "worker", 3, []), ("W2", "worker", 4, []), ("W3", "worker", 5, []),
    ("R1", "server", 3, []), ("R2", "server", 4, []),
    ("C1", "caller", 1, ["--interval", "0.1"]), ("C2", "caller", 5, ["--interval", "0.1"]),
    ("B1", "publisher", 1, ["--interval", "0.05"]), ("B2", "publisher", 2, ["--interval", "0.05"]),
    ("S1", "subscriber", 4, ["--mode", "plain"]),
    ("S2", "subscriber", 5, ["--mode", "durable"]),
    ("S3", "subscriber", 2, ["--mode", "lastvalue"]),
]
NET_FAULTS = ("split", "loss", "rate")


def log(*a):
    print("soak:", *a, flush=True)


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.run = args.out
        os.makedirs(os.path.join(self.run, "hist"), exist_ok=True)
        self.faults = open(os.path.join(self.run, "faults.jsonl"), "a")
        self.res = open(os.path.join(self.run, "resources.jsonl"), "a")
        self.procs = {}         # name -> dict (role, host, inc, node_id, popen, state)
        self.lab = None
        self.outbox_mnt = None
        self.cluster = "soak%d" % self.rng.randrange(10 ** 9)
        self.port = 20000 + self.rng.randrange(20000)
        self.last_sample = 0

    # ---------------------------------------------------------------- setup
    def lab_cmd(self, *a, check=True):
        env = dict(os.environ, LAB_PREFIX=self.lab["prefix"], LAB_NET=self.lab["net"])
        r = subprocess.run(["bash", LAB] + list(a), env=env, capture_output=True, text=True,
                           timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError("lab.sh %s: %s" % (" ".join(a), r.stderr.strip()))
        return r

    def setup(self):
        why = None
        if self.args.loopback:
            why = "--loopback asked"
        elif os.geteuid() != 0:
            why = "not root (lab.sh needs CAP_SYS_ADMIN and CAP_NET_ADMIN)"
        else:
            self.lab = {"prefix": "cs%d" % (os.getpid() % 10 ** 7),
                        "net": "10.251.%d" % (os.getpid() % 250)}
            r = self.lab_cmd("up", str(HOSTS), check=False)
            if r.returncode != 0:
                why = "lab.sh up failed: " + r.stderr.strip().splitlines()[-1]
                self.lab_cmd("down", check=False)
                self.lab = None
        if why:
            log("no lab: every process on loopback, no split/loss/rate faults (%s)" % why)
        else:
            log("lab %s up: %d hosts on %s.0/24" % (self.lab["prefix"], HOSTS, self.lab["net"]))
        #   a small tmpfs under the durable outbox, in this process's own
        #   mount namespace (soak.py re-executes itself under unshare -m)
        mnt = os.path.join(self.run, "outbox")
        os.makedirs(mnt, exist_ok=True)
        if os.environ.get("CHAOS_MOUNTNS") == "1" and subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt]).returncode == 0:
            self.outbox_mnt = mnt
            os.makedirs(os.path.join(mnt, "d1"), exist_ok=True)
        else:
            log("no tmpfs under the outbox (not root, or mount failed): no disk-full faults")
        for name, role, host, extra in LAYOUT:
            self.procs[name] = dict(name=name, role=role, host=host, extra=extra, inc=0,
                                    node_id=self.new_id(), popen=None, state="dead")

    def new_id(self):
        return "%032x" % self.rng.getrandbits(128)

    # ------------------------------------------------------------ processes
    def start(self, name, new_id=False):
        p = self.procs[name]
        p["inc"] += 1
        if new_id:
            p["node_id"] = self.new_id()
        hist = os.path.join(self.run, "hist", "%s.%d.jsonl" % (name, p["inc"]))
        argv = [PY, os.path.join(HERE, "agent.py"), "--role", p["role"], "--name", name,
                "--inc", str(p["inc"]), "--node-id", p["node_id"], "--run", self.run,
                "--history", hist, "--cluster", self.cluster, "--port", str(self.port),
                "--gone-ms", str(GONE_MS), "--outbox", os.path.join(self.run, "outbox", "d1")]
        argv += p["extra"]
        if self.lab:
            argv = ["bash", LAB, "run", "h%d" % p["host"]] + argv + ["--iface", "eth0"]
            env = dict(os.environ, LAB_PREFIX=self.lab["prefix"], LAB_NET=self.lab["net"])
        else:
            env = dict(os.environ)
        out = open(os.path.join(self.run, "hist", "%s.%d.out" % (name, p["inc"])), "w")
        p["popen"] = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        p["state"] = "running"
        p["started"] = time.time()
        self.record("start", name, pid=p["popen"].pid, inc=p["inc"], node=p["node_id"])

    def signal(self, name, sig):
        p = self.procs[name]
        if p["popen"] and p["popen"].poll() is None:
            os.kill(p["popen"].pid, sig)   # a PID this runner started

    def record(self, kind, target, **kw):
        kw.update(kind=kind, target=target, ts=time.time())
        self.faults.write(json.dumps(kw) + "\n")
        self.faults.flush()

    def check_alive(self):
        """A process that exits by itself is recorded (a violation) and
        started again a second later (so one that cannot start, e.g. on
        an outbox it cannot open, is retried without a storm)."""
        now = time.time()
        for name, p in self.procs.items():
            if p["state"] in ("running", "stopped") and p["popen"].poll() is not None:
                self.record("unexpected-exit", name, code=p["popen"].returncode, inc=p["inc"])
                log("%s.%d exited by itself (%s): started again in 1 s" % (
                    name, p["inc"], p["popen"].returncode))
                p["state"], p["restart_at"] = "crashed", now + 1
            elif p["state"] == "crashed" and now >= p["restart_at"]:
                self.start(name)

    def sample(self, force=False):
        now = time.time()
        if not force and now - self.last_sample < 2:
            return
        self.last_sample = now
        for name, p in self.procs.items():
            if p["state"] == "dead" or p["popen"].poll() is not None:
                continue
            pid = p["popen"].pid
            try:
                rss = hwm = -1
                with open("/proc/%d/status" % pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss = int(line.split()[1])
                        elif line.startswith("VmHWM:"):
                            hwm = int(line.split()[1])
                fds = socks = 0
                for fd in os.listdir("/proc/%d/fd" % pid):
                    fds += 1
                    try:
                        socks += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
                    except OSError:
                        pass
            except OSError:
                continue
            self.res.write(json.dumps(dict(name=name, inc=p["inc"], ts=now, rss=rss, hwm=hwm,
                                           fds=fds, socks=socks)) + "\n")
        self.res.flush()

    def tcp_states(self):
        """TCP connections by state on each host (a connection its peer
        closed and this side never did stays in CLOSE-WAIT)."""
        states = {}
        for h in range(1, HOSTS + 1) if self.lab else [0]:
            cmd = ["ss", "-tanH"]
            if self.lab:
                cmd = ["ip", "netns", "exec", "%s-h%d" % (self.lab["prefix"], h)] + cmd
            r = subprocess.run(cmd, capture_output=True, text=True)
            count = {}
            for line in r.stdout.splitlines():
                if line.split():
                    count[line.split()[0]] = count.get(line.split()[0], 0) + 1
            states["h%d" % h if self.lab else "loopback"] = count
        return states

    def wait(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            time.sleep(min(0.1, max(0.0, end - time.time())))
            self.check_alive()
            self.sample()

    # --------------------------------------------------------------- faults
    def plan(self, seconds):
        """The whole schedule, drawn from the seed before anything runs."""
        kinds = ["kill", "kill", "pause-short", "pause-long", "dproducer-restart"]
        if self.lab:
            kinds += ["split", "split", "loss", "loss", "rate"]
        if self.outbox_mnt:
            kinds += ["disk-full"]
        r, t, plan = self.rng, 0.0, []
        killable = [n for n in self.procs]
        while t < seconds:
            kind = r.choice(kinds)
            f = dict(kind=kind, gap=r.uniform(0.5, 2.0))
            if kind == "kill":
                f.update(target=r.choice(killable), down=r.uniform(0.3, 4.0),
                         new_id=r.random() < 0.5, dur=0)
            elif kind == "dproducer-restart":
                f.update(target="D1", down=r.uniform(0.1, 2.0), new_id=r.random() < 0.5, dur=0)
            elif kind == "pause-short":
                f.update(target=r.choice(killable), dur=r.uniform(0.2, 0.6) * GONE_MS / 1000)
            elif kind == "pause-long":
                f.update(target=r.choice(killable), dur=r.uniform(1.5, 2.5) * GONE_MS / 1000)
            elif kind == "split":
                hosts = r.sample(range(1, HOSTS + 1), r.choice([1, 2]))
                f.update(target=["h%d" % h for h in hosts], dur=r.uniform(2, 8))
            elif kind == "loss":
                f.update(target="h%d" % r.randint(1, HOSTS), pct=r.randint(5, 20),
                         dur=r.uniform(3, 8))
            elif kind == "rate":
                f.update(target="h%d" % r.randint(1, HOSTS),
                         rate=r.choice(["256kbit", "512kbit", "1mbit"]), dur=r.uniform(3, 8))
            elif kind == "disk-full":
                f.update(target="outbox", dur=r.uniform(2, 5))
            t += f["dur"] + f.get("down", 0) + f["gap"]
            plan.append(f)
        return plan

    def inject(self, f):
        kind, target = f["kind"], f["target"]
        if kind in ("kill", "dproducer-restart"):
            p = self.procs[target]
            self.record(kind, target, pid=p["popen"].pid, inc=p["inc"], new_id=f["new_id"],
                        phase="begin")
            self.signal(target, signal.SIGKILL)
            p["popen"].wait(30)
            p["state"] = "dead"
            self.wait(f["down"])
            self.start(target, new_id=f["new_id"] and p["role"] != "publisher"
                       or p["role"] == "publisher")
            self.record(kind, target, phase="end", inc=self.procs[target]["inc"])
        elif kind.startswith("pause"):
            p = self.procs[target]
            if p["state"] != "running":
                return                  # crashed, waiting for its restart
            self.record(kind, target, inc=p["inc"], dur=f["dur"], phase="begin")
            self.signal(target, signal.SIGSTOP)
            p["state"] = "stopped"
            self.wait(f["dur"])
            self.signal(target, signal.SIGCONT)
            p["state"] = "running"
            self.record(kind, target, inc=p["inc"], phase="end")
        elif kind in NET_FAULTS:
            self.record(kind, target, phase="begin", **{k: f[k] for k in ("pct", "rate")
                                                        if k in f})
            if kind == "split":
                self.lab_cmd("split", *target)
            elif kind == "loss":
                self.lab_cmd("loss", target, str(f["pct"]))
            else:
                self.lab_cmd("rate", target, f["rate"])
            self.wait(f["dur"])
            self.lab_cmd("heal", "all")
            self.record(kind, target, phase="end")
        elif kind == "disk-full":
            filler = os.path.join(self.outbox_mnt, "filler")
            self.record(kind, target, phase="begin")
            burst = os.path.join(self.run, "burst")
            open(burst, "w").close()
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                chunk = b"\0" * (1 << 16)
                for _ in range(1024):       # 64 MiB at most; the tmpfs is 16
                    try:
                        os.write(fd, chunk)
                    except OSError:         # ENOSPC: full
                        break
                self.wait(f["dur"])
            finally:
                os.close(fd)
                os.unlink(filler)
                os.unlink(burst)
            self.record(kind, target, phase="end")

    # ------------------------------------------------------------------ run
    def touch(self, flag):
        open(os.path.join(self.run, flag), "w").close()
        self.record("phase", flag)
        log("phase", flag)

    def history_has(self, name, op):
        p = self.procs[name]
        path = os.path.join(self.run, "hist", "%s.%d.jsonl" % (name, p["inc"]))
        try:
            with open(path) as f:
                return any(json.loads(line).get("op") == op for line in f if line.strip())
        except (OSError, ValueError):
            return False

    def main(self):
        seconds = self.args.minutes * 60
        self.setup()
        plan = self.plan(seconds - 5)
        counts = {}
        for f in plan:
            counts[f["kind"]] = counts.get(f["kind"], 0) + 1
        log("schedule: %d faults planned (%s)" % (len(plan), ", ".join(
            "%s %d" % kv for kv in sorted(counts.items()))))
        for name in self.procs:
            self.start(name)
        self.wait(5)                                    # warm-up
        end = time.time() + seconds - 5
        done = 0
        for f in plan:
            if time.time() >= end:
                break
            try:
                self.inject(f)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                #   a fault the lab could not make: recorded, the run goes on
                self.record("fault-error", str(f["target"]), fault=f["kind"], error=str(e))
                log("fault %s on %s failed: %s" % (f["kind"], f["target"], e))
                if self.lab:
                    self.lab_cmd("heal", "all", check=False)
            done += 1
            self.wait(f["gap"])
        log("faults injected: %d of %d planned" % (done, len(plan)))
        #   heal: nothing cut, nothing stopped, everything running
        if self.lab:
            self.lab_cmd("heal", "all")
        for name, p in self.procs.items():
            if p["state"] == "stopped":
                self.signal(name, signal.SIGCONT)
                p["state"] = "running"
        self.record("healed", "all")
        self.wait(2 * GONE_MS / 1000 + 2)              # settle: old suspicions expire
        self.touch("final")
        self.wait(12)
        self.touch("drain")
        for _ in range(600):                            # bounded: 60 s
            if all(self.history_has(n, "drained") for n in ("P1", "D1")):
                break
            self.wait(0.1)
        self.wait(1.5)                                  # publishers' positions reach the tail
        self.sample(force=True)
        self.record("tcp", "all", states=self.tcp_states())
        self.touch("stop")
        for name, p in self.procs.items():
            try:
                code = p["popen"].wait(30)
                self.record("exit", name, code=code, inc=p["inc"])
            except subprocess.TimeoutExpired:
                self.record("exit", name, code=None, inc=p["inc"])
                self.signal(name, signal.SIGKILL)
                p["popen"].wait(10)
            p["state"] = "dead"

    def teardown(self):
        for name, p in self.procs.items():
            if p["popen"] and p["popen"].poll() is None:
                self.signal(name, signal.SIGCONT)
                self.signal(name, signal.SIGKILL)
                p["popen"].wait(10)
        if self.lab:
            self.lab_cmd("down", check=False)
        if self.outbox_mnt:
            subprocess.run(["umount", "-l", self.outbox_mnt])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--out")
    ap.add_argument("--loopback", action="store_true")
    args = ap.parse_args()
    if args.seed is None and os.environ.get("MESHBUS_SOAK_SEED"):
        args.seed = int(os.environ["MESHBUS_SOAK_SEED"])
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    #   own mount namespace (for the outbox's tmpfs), once, as root
    if os.geteuid() == 0 and os.environ.get("CHAOS_MOUNTNS") is None \
            and shutil.which("unshare"):
        env = dict(os.environ, CHAOS_MOUNTNS="1")
        argv = ["unshare", "--mount", "--propagation", "private", "--", PY] + sys.argv
        if "--seed" not in sys.argv:
            argv += ["--seed", str(args.seed)]
        os.execvpe("unshare", argv, env)
    print("soak: seed %d (replay: tests/chaos/soak.py --seed %d --minutes %g)"
          % (args.seed, args.seed, args.minutes), flush=True)
    tool = os.environ.get("MESHBUS_TOOL", os.path.join(SRC, "build", "debug", "tools",
                                                       "meshbus"))
    pypath = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(tool))), "python")
    if not os.path.isdir(os.path.join(pypath, "meshbus")):
        print("SKIP: no Python package at %s (scons -Q python)" % pypath)
        return 77
    os.environ["PYTHONPATH"] = pypath
    keep = args.out is not None
    if not keep:
        args.out = tempfile.mkdtemp(prefix="meshbus-soak-")
    soak = Soak(args)

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        soak.main()
    finally:
        soak.teardown()
    rc = subprocess.run([PY, os.path.join(HERE, "check.py"), args.out]).returncode
    if rc == 0 and not keep:
        shutil.rmtree(args.out, ignore_errors=True)
    else:
        log("histories kept in %s" % args.out)
    print("soak: seed %d: %s" % (args.seed, "every property holds" if rc == 0
                                 else "VIOLATIONS (replay with --seed %d)" % args.seed))
    return rc


if __name__ == "__main__":
    sys.exit(main())
