"""The soak's checker (check.py) finds what it must: a clean synthetic run
passes, and each kind of violation, planted alone, fails its property and
no other. Without this, a soak whose checker had gone blind would pass.

    /usr/bin/python3 tests/chaos/test_check.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
T = 1000000.0
NODES = {"P1": "a" * 32, "W1": "b" * 32, "D1": "c" * 32, "R1": "d" * 32, "C1": "e" * 32,
         "B1": "f" * 32, "S1": "1" * 32}
ROLES = {"P1": "producer", "W1": "worker", "D1": "dproducer", "R1": "server",
         "C1": "caller", "B1": "publisher", "S1": "subscriber"}


def clean():
    """name -> ops of a run where everything holds (ts relative to T)."""
    h = {n: [dict(op="start", role=ROLES[n], name=n, inc="1", node=NODES[n], pid=1,
                  mode="plain", ts=1)] for n in ROLES}
    h["P1"] += [dict(op="pushed", key="P1.1.1", job=1, ts=2),
                dict(op="acked", keys=["P1.1.1"], ts=3),
                dict(op="pushed", key="P1.1.2", job=2, ts=12),
                dict(op="acked", keys=["P1.1.2"], ts=13)]
    h["D1"] += [dict(op="committed", key="D1.1.1", job=1, ts=2)]
    h["W1"] += [dict(op="run", queue="soak.jobs", key="P1.1.1", job=1, producer=NODES["P1"],
                     deliveries=1, ts=2.5),
                dict(op="run", queue="soak.djobs", key="D1.1.1", job=1, producer=NODES["D1"],
                     deliveries=1, ts=2.6),
                dict(op="run", queue="soak.jobs", key="P1.1.2", job=2, producer=NODES["P1"],
                     deliveries=1, ts=12.5)]
    h["R1"] += [dict(op="served", key="C1.1.%d" % i, req=i, caller=NODES["C1"], ts=t)
                for i, t in ((1, 2), (2, 12))]
    h["C1"] += [dict(op="call_ok", key="C1.1.%d" % i, t0=t - 0.1, reply="R1|1|C1.1.%d" % i,
                     server=NODES["R1"], ts=t + 0.1) for i, t in ((1, 2), (2, 12))]
    h["B1"] += [dict(op="pub", id=i, subject="soak.ps.%d" % (i % 4), reached=1, ts=1 + i)
                for i in range(1, 13)]
    h["S1"] += [dict(op="recv", peer=NODES["B1"], id=i, seq=i, flags=0,
                     subject="soak.ps.%d" % (i % 4), body="B1:%d" % i, replayed=False,
                     lv=False, ts=1.1 + i) for i in range(1, 13)]
    for n in h:
        h[n] += [dict(op="exit", rss_kib=1, ts=21), dict(op="closed", ts=21.1)]
    return h


def faults():
    out = [dict(kind="phase", target=p, ts=t) for p, t in (("final", 10), ("drain", 20),
                                                          ("stop", 21))]
    out += [dict(kind="exit", target=n, code=0, inc=1, ts=22) for n in ROLES]
    return out


def verdicts(h, f):
    d = tempfile.mkdtemp(prefix="soak-check-")
    try:
        os.makedirs(os.path.join(d, "hist"))
        for n, ops in h.items():
            with open(os.path.join(d, "hist", "%s.1.jsonl" % n), "w") as out:
                for o in ops:
                    o = dict(o, ts=T + o["ts"])
                    if "t0" in o:
                        o["t0"] += T
                    out.write(json.dumps(o) + "\n")
        with open(os.path.join(d, "faults.jsonl"), "w") as out:
            for o in f:
                out.write(json.dumps(dict(o, ts=T + o["ts"])) + "\n")
        r = subprocess.run([sys.executable, os.path.join(HERE, "check.py"), d],
                           capture_output=True, text=True)
        bad = {line.split()[0] for line in r.stdout.splitlines()
               if line and not line.startswith(" ") and "VIOLATIONS" in line}
        return r.returncode, bad, r.stdout
    finally:
        shutil.rmtree(d)


def drop(h, name, pred):
    h[name] = [o for o in h[name] if not pred(o)]


def case_lost_job(h, f):
    drop(h, "W1", lambda o: o.get("key") == "P1.1.1")
    return "pipeline"


def case_job_twice_same_worker(h, f):
    h["W1"].insert(2, dict(h["W1"][1], ts=2.7))
    return "pipeline"


def case_committed_never_ran(h, f):
    drop(h, "W1", lambda o: o.get("key") == "D1.1.1")
    return "durable"


def case_wrong_reply(h, f):
    h["C1"][1]["reply"] = "R1|1|C1.1.9"
    return "reqrep"


def case_false_no_responders(h, f):
    h["C1"].insert(3, dict(op="call_failed", key="C1.1.3", t0=8, error="NoResponders",
                           text="no responders for soak.svc", ts=8.01))
    return "reqrep"


def case_request_run_twice(h, f):
    h["R1"].insert(2, dict(h["R1"][1], ts=2.05))
    return "reqrep"


def case_silent_gap(h, f):
    drop(h, "S1", lambda o: o.get("id") == 5)
    return "pubsub"


def case_out_of_order(h, f):
    i = next(k for k, o in enumerate(h["S1"]) if o.get("id") == 5)
    h["S1"][i], h["S1"][i + 1] = h["S1"][i + 1], h["S1"][i]
    return "pubsub"


def case_silent_tail(h, f):
    drop(h, "S1", lambda o: o.get("id") == 12)
    return "pubsub"


def case_idle_worker_after_heal(h, f):
    drop(h, "W1", lambda o: o.get("key") == "P1.1.2")
    h["P1"] = [o for o in h["P1"] if o.get("key") != "P1.1.2" and o.get("keys") != ["P1.1.2"]]
    return "membership"


def case_no_exit(h, f):
    f[-1]["code"] = None
    return "resources"


def main():
    rc, bad, out = verdicts(clean(), faults())
    failures = []
    if rc != 0 or bad:
        failures.append("the clean run failed: %s\n%s" % (sorted(bad), out))
    #   the reported gap makes the missing message no violation
    h = clean()
    drop(h, "S1", lambda o: o.get("id") == 5)
    h["S1"].insert(-2, dict(op="event", type="GAP", peer=NODES["B1"], count=1, detail="",
                            ts=6.5))
    h["S1"].insert(-2, dict(op="event", type="GAP_LOST", peer=NODES["B1"], count=1,
                            detail="", ts=6.6))
    rc, bad, out = verdicts(h, faults())
    if bad:
        failures.append("a reported gap was taken for a violation: %s\n%s" % (sorted(bad), out))
    for name, fn in sorted(globals().items()):
        if not name.startswith("case_"):
            continue
        h, f = clean(), faults()
        want = fn(h, f)
        rc, bad, out = verdicts(h, f)
        ok = rc == 1 and bad == {want}
        print("%s %s: %s" % ("PASS" if ok else "FAIL", name[5:], sorted(bad) or "no violation"))
        if not ok:
            failures.append("%s: wanted %s only, got %s\n%s" % (name, want, sorted(bad), out))
    for f in failures:
        print("FAILED:", f)
    print("test_check: %d cases, %d failed" % (len([n for n in globals()
                                                    if n.startswith("case_")]), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
