"""Checker of a chaos soak run (tests/chaos/soak.py): reads every process's
history (hist/NAME.INC.jsonl), the runner's record of faults and phases
(faults.jsonl) and of resources (resources.jsonl), and prints one verdict
per property, the figures of the run, and for each violation the history
lines that show it. Exit 0 when every property holds.

    check.py RUN_DIR

Properties (the guarantees of docs/pipeline.md, docs/reqrep.md,
docs/pubsub.md, docs/protocol.md):

pipeline     every job a plain producer saw acked ran at least once; every
             duplicate run is explained by a fault around it (the worker
             killed or paused, the producer restarted, the network cut,
             lossy or slow) and counted by cause; one worker process never
             runs a job twice (its duplicate filter)
durable      every job the durable producer committed (push returned) ran,
             across kill -9 and restarts of that producer and a full disk
reqrep       a reply matches its request and came from a server that ran
             it; one server process runs a request at most once (its
             cache); a failed call says the true failure: "no responders"
             only when no provider was reachable, "provider left" only
             when one left
pubsub       per (publisher, subscriber) stream: order kept, bodies
             intact, received + reported gaps = published (the tail too,
             for streams alive to the end); the durable subscriber, over
             all its restarts, got every message from its first on
membership   after the faults healed, every worker runs jobs, every
             (caller, server) pair is used, every (publisher, subscriber)
             stream flows: no peer ALIVE but unusable
resources    every process exits by itself at the end (exit 0), none
             crashed, RSS and descriptors do not grow without bound
"""
import collections
import glob
import json
import os
import re
import sys

GONE = 3.0          # the gone timeout the runner gives every node (s)
EXCERPT = 4         # violations shown per property


def load(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass        # the line a kill -9 cut short
    return out


class Inc:
    """One process incarnation: its history and its life."""

    def __init__(self, path, ops):
        m = re.match(r"(\w+)\.(\d+)\.jsonl$", os.path.basename(path))
        self.name, self.inc = m.group(1), int(m.group(2))
        self.key = "%s.%d" % (self.name, self.inc)
        self.ops = ops
        start = next((o for o in ops if o["op"] == "start"), {})
        self.role, self.node = start.get("role"), start.get("node")
        self.mode = start.get("mode")
        self.t0 = start.get("ts", ops[0]["ts"] if ops else 0)
        self.t1 = ops[-1]["ts"] if ops else self.t0
        self.closed = any(o["op"] == "closed" for o in ops)
        self.killed_at = None
        self.pauses = []


class Run:
    def __init__(self, d):
        self.dir = d
        self.incs = {}
        for path in sorted(glob.glob(os.path.join(d, "hist", "*.jsonl"))):
            inc = Inc(path, load(path))
            self.incs[inc.key] = inc
        self.faults = load(os.path.join(d, "faults.jsonl"))
        self.res = load(os.path.join(d, "resources.jsonl")) \
            if os.path.exists(os.path.join(d, "resources.jsonl")) else []
        self.phase = {f["target"]: f["ts"] for f in self.faults if f["kind"] == "phase"}
        self.net = []           # (start, end, kind, target)
        self.disk = []
        self.restarts = {}      # name -> [kill ts]
        opened = {}
        for f in self.faults:
            if f.get("phase") == "begin":
                opened[(f["kind"], str(f["target"]))] = f
            elif f.get("phase") == "end":
                b = opened.pop((f["kind"], str(f["target"])), None)
                if not b:
                    continue
                if f["kind"] in ("split", "loss", "rate"):
                    self.net.append((b["ts"], f["ts"], f["kind"], b["target"]))
                elif f["kind"] == "disk-full":
                    self.disk.append((b["ts"], f["ts"]))
                elif f["kind"].startswith("pause"):
                    inc = self.incs.get("%s.%d" % (f["target"], b["inc"]))
                    if inc:
                        inc.pauses.append((b["ts"], f["ts"]))
                elif f["kind"] in ("kill", "dproducer-restart"):
                    inc = self.incs.get("%s.%d" % (f["target"], b["inc"]))
                    if inc:
                        inc.killed_at = b["ts"]
                    self.restarts.setdefault(f["target"], []).append(b["ts"])
        self.end = self.phase.get("stop", max((i.t1 for i in self.incs.values()), default=0))
        self.by_node = collections.defaultdict(list)
        for inc in self.incs.values():
            self.by_node[inc.node].append(inc)
        self.violations = collections.defaultdict(list)
        self.figures = collections.OrderedDict()

    def role(self, role):
        return [i for i in self.incs.values() if i.role == role]

    def inc_of(self, node, ts):
        """The incarnation of a node id living at ts."""
        cands = self.by_node.get(node, [])
        for inc in cands:
            if inc.t0 - 1 <= ts <= (inc.killed_at or inc.t1) + 1:
                return inc
        return cands[-1] if cands else None

    def alive_at_end(self, inc):
        return inc.killed_at is None and inc.closed

    def net_fault(self, a, b):
        return [n for n in self.net if n[0] <= b and n[1] >= a]

    def hurt(self, inc, a, b):
        """Why inc may have been unusable in [a, b]: killed, paused."""
        if inc is None:
            return "unknown process"
        if inc.killed_at and a <= inc.killed_at <= b + GONE:
            return "killed"
        for p in inc.pauses:
            if p[0] <= b and p[1] >= a:
                return "paused"
        return None

    def violate(self, prop, why, *lines):
        self.violations[prop].append((why, lines))


# --------------------------------------------------------------------- pipeline
def check_pipeline(run):
    runs = collections.defaultdict(list)        # key -> [(ts, worker inc, op)]
    for w in run.role("worker"):
        for o in w.ops:
            if o["op"] == "run":
                runs[o["key"]].append((o["ts"], w, o))
    acked, pushed, lost_with_producer = {}, 0, 0
    for p in run.role("producer"):
        for o in p.ops:
            if o["op"] == "pushed":
                pushed += 1
            elif o["op"] == "acked":
                for k in o["keys"]:
                    acked[k] = (p, o)
            elif o["op"] == "pending_at_stop":
                lost_with_producer += len(o.get("keys", []))
        if p.killed_at:
            acked_here = {k for k, v in acked.items() if v[0] is p}
            lost_with_producer += sum(1 for o in p.ops if o["op"] == "pushed"
                                      and o["key"] not in acked_here)
    #   (producer node, job id) -> runs: a job that never ran although a
    #   worker ran an earlier job of the same producer id under the same
    #   job id was taken for a duplicate of it (ids reused after a restart)
    by_id = collections.defaultdict(list)
    for rs in runs.values():
        for ts, w, o in rs:
            by_id[(o["producer"], o["job"])].append((ts, w, o))

    def never_ran(prop, k, p, o, what):
        earlier = [r for r in by_id.get((p.node, o["job"]), []) if r[0] < o["ts"]]
        if earlier:
            run.violate(prop, "job %s (id %d) %s by %s never ran: %s ran job id %d of the "
                        "same producer id before (%s), so took it for a duplicate: job ids "
                        "reused after a restart" % (k, o["job"], what, p.key, earlier[0][1].key,
                                                    o["job"], earlier[0][2]["key"]),
                        o, earlier[0][2])
        else:
            run.violate(prop, "job %s %s by %s never ran" % (k, what, p.key), o)
    pushed_op = {o["key"]: o for p in run.role("producer") for o in p.ops if o["op"] == "pushed"}
    for k, (p, o) in acked.items():
        if not runs.get(k):
            never_ran("pipeline", k, p, pushed_op.get(k, o), "acked")
    committed, failed_push = {}, collections.Counter()
    for d in run.role("dproducer"):
        for o in d.ops:
            if o["op"] == "committed":
                committed[o["key"]] = (d, o)
            elif o["op"] == "push_failed":
                failed_push[o["error"] + ": " + o["text"][:90]] += 1
                if not re.search(r"full|space|ENOSPC|MAP_FULL", o["text"], re.I):
                    run.violate("durable", "a push failed without saying the disk is full "
                                "(%s)" % o["text"], o)
    for k, (d, o) in committed.items():
        if not runs.get(k):
            never_ran("durable", k, d, o, "committed")
    causes = collections.Counter()
    restarted = run.restarts.get("D1", [])
    for k, rs in runs.items():
        rs.sort(key=lambda r: r[0])
        for (ta, wa, oa), (tb, wb, ob) in zip(rs, rs[1:]):
            if wa is wb:
                causes["the same worker process twice"] += 1
                run.violate("pipeline", "%s ran job %s twice" % (wa.key, k), oa, ob)
                continue
            #   either worker: a job delivered just before a pause runs
            #   after it, later than its redelivery ran elsewhere
            why = run.hurt(wa, ta - 2 * GONE, tb) or run.hurt(wb, ta - 2 * GONE, tb)
            prod = run.inc_of(oa["producer"], ta)
            if why:
                cause = "worker %s" % why
            elif oa["queue"] == "soak.djobs" and any(ta - 1 <= t <= tb for t in restarted):
                cause = "durable producer restarted (ack not committed)"
            elif prod is not None and run.hurt(prod, ta, tb):
                cause = "producer %s" % run.hurt(prod, ta, tb)
            elif run.net_fault(ta - 1, tb):
                cause = "network %s" % run.net_fault(ta - 1, tb)[0][2]
            else:
                cause = "unexplained"
                run.violate("pipeline", "job %s ran on %s and again on %s with no fault "
                            "around" % (k, wa.key, wb.key), oa, ob)
            causes[cause] += 1
    run.figures["jobs pushed (plain)"] = pushed
    run.figures["jobs acked (plain, checked)"] = len(acked)
    run.figures["jobs lost with a killed plain producer (allowed: not durable)"] = \
        lost_with_producer
    run.figures["jobs committed (durable, checked)"] = len(committed)
    run.figures["durable pushes refused"] = dict(failed_push) or 0
    run.figures["job runs"] = sum(len(r) for r in runs.values())
    run.figures["job duplicates by cause"] = dict(causes) or 0


# ----------------------------------------------------------------------- reqrep
def check_reqrep(run):
    served = collections.defaultdict(list)      # key -> [(server inc, op)]
    for s in run.role("server"):
        for o in s.ops:
            if o["op"] == "served":
                served[o["key"]].append((s, o))
    servers = run.role("server")
    outcomes, extra = collections.Counter(), collections.Counter()
    for c in run.role("caller"):
        for o in c.ops:
            if o["op"] == "call_ok":
                outcomes["ok"] += 1
                name, inc, key = (o["reply"].split("|", 2) + ["", ""])[:3]
                ran = [s for s, _ in served.get(o["key"], []) if s.key == "%s.%s" % (name, inc)]
                if key != o["key"] or not ran:
                    run.violate("reqrep", "call %s got a reply that is not its own, or from "
                                "a server that did not run it" % o["key"], o)
            elif o["op"] == "call_failed":
                outcomes[o["error"]] += 1
                a, b = o["t0"], o["ts"]
                err = o["error"]
                if err == "NoResponders":
                    w = (a - GONE - 2, b)
                    reachable = [s for s in servers if s.t0 <= a - 3
                                 and (s.killed_at or run.end) > b and not run.hurt(s, *w)]
                    if reachable and not run.net_fault(*w) and not run.hurt(c, *w):
                        run.violate("reqrep", "'no responders' while %s was up and reachable"
                                    % ", ".join(s.key for s in reachable), o)
                elif err == "ProviderLeft":
                    w = (a - 1, b)
                    if not run.net_fault(*w) and not any(run.hurt(s, *w) for s in servers) \
                            and not run.hurt(c, *w):
                        run.violate("reqrep", "'provider left' while no provider left", o)
                elif err == "RemoteError":
                    run.violate("reqrep", "a remote error (the handler never fails)", o)
    for key, ss in served.items():
        per = collections.Counter(s.key for s, _ in ss)
        for skey, n in per.items():
            if n > 1:
                run.violate("reqrep", "%s ran request %s %d times (its cache must answer "
                            "a retry)" % (skey, key, n), *[o for s, o in ss if s.key == skey])
        if len(per) > 1:
            first = ss[0][0]
            why = run.hurt(first, ss[0][1]["ts"], ss[-1][1]["ts"])
            extra["provider %s" % why if why else
                  ("network fault" if run.net_fault(ss[0][1]["ts"] - 1, ss[-1][1]["ts"])
                   else "attempt timed out (retry to another provider)")] += 1
    run.figures["calls by outcome"] = dict(outcomes)
    run.figures["requests run on two servers (allowed, docs/reqrep.md), by cause"] = \
        dict(extra) or 0


# ----------------------------------------------------------------------- pubsub
def check_pubsub(run):
    pubs = {}
    for p in run.role("publisher"):
        pubs[p.node] = p
        p.log = {o["id"]: o for o in p.ops if o["op"] == "pub"}
        p.last = max(p.log) if p.log else 0
    gaps_total = collections.Counter()
    durable_cov = collections.defaultdict(set)      # pub key -> ids
    durable_lost = collections.Counter()
    durable_first = {}
    subs = run.role("subscriber")
    for s in subs:
        recv = collections.defaultdict(list)
        ev = collections.defaultdict(collections.Counter)
        for o in s.ops:
            if o["op"] == "recv":
                recv[o["peer"]].append(o)
            elif o["op"] == "event":
                ev[o["peer"]][o["type"]] += o["count"]
        for peer, msgs in recv.items():
            p = pubs.get(peer)
            if p is None:
                run.violate("pubsub", "%s got a message from an unknown publisher" % s.key,
                            msgs[0])
                continue
            for o in msgs:
                want = p.log.get(o["id"])
                if want is None and o["id"] <= p.last or want is not None and (
                        want["subject"] != o["subject"] or o["body"] != "%s:%d" % (
                            p.name, o["id"])):
                    run.violate("pubsub", "%s got a message that %s did not publish so"
                                % (s.key, p.key), o, want or {})
            live = [o for o in msgs if o["seq"] > 0]
            for a, b in zip(live, live[1:]):
                if b["seq"] <= a["seq"] or b["id"] <= a["id"]:
                    run.violate("pubsub", "%s: %s's stream out of order" % (s.key, p.key),
                                a, b)
                    break
            #   a replay fills a gap once: a plain or last-value subscriber
            #   gets each message once (last values aside); a durable one
            #   may get again what it had not acknowledged (counted)
            seen = collections.Counter(o["id"] for o in msgs if not o["lv"])
            twice = [i for i, n in seen.items() if n > 1]
            if s.mode == "durable":
                gaps_total["durable duplicates"] += len(twice)
            elif twice:
                run.violate("pubsub", "%s got %d messages of %s more than once (ids %s)"
                            % (s.key, len(twice), p.key, sorted(twice)[:10]),
                            *[o for o in msgs if o["id"] == twice[0]])
            e = ev.get(peer, collections.Counter())
            gaps_total["GAP"] += e["GAP"]
            gaps_total["REPLAYED"] += e["REPLAYED"]
            gaps_total["GAP_LOST"] += e["GAP_LOST"]
            if live:
                missing = live[-1]["seq"] - live[0]["seq"] + 1 - len({o["seq"] for o in live})
                if e["GAP"] < missing:
                    run.violate("pubsub", "%s: %d messages of %s's stream missing, %d "
                                "reported (GAP)" % (s.key, missing, p.key, e["GAP"]),
                                live[0], live[-1])
            first = min((o["id"] for o in live), default=None)
            got = {o["id"] for o in msgs}
            if s.mode == "durable" and got:
                durable_cov[p.key] |= got
                durable_lost[p.key] += e["GAP_LOST"]
                durable_first.setdefault(p.key, min(got))
            elif first is not None and run.alive_at_end(s) and run.alive_at_end(p):
                want = set(range(first, p.last + 1))
                unresolved = e["GAP"] - e["REPLAYED"] - e["GAP_LOST"]
                silent = len(want - got) - e["GAP_LOST"] - max(0, unresolved)
                if silent > 0:
                    run.violate("pubsub", "%s: %d of %s's messages %d..%d neither received "
                                "nor reported lost" % (s.key, silent, p.key, first, p.last),
                                {"missing": sorted(want - got)[:20], "events": dict(e)})
    for pkey, got in durable_cov.items():
        p = run.incs[pkey]
        last_dur = max((s for s in subs if s.mode == "durable"), key=lambda s: s.t0)
        if not (run.alive_at_end(p) and run.alive_at_end(last_dur)):
            continue
        want = set(range(durable_first[pkey], p.last + 1))
        silent = len(want - got) - durable_lost[pkey]
        if silent > 0:
            run.violate("pubsub", "durable subscription: %d of %s's messages %d..%d never "
                        "received nor reported lost, over %d restarts" % (
                            silent, pkey, durable_first[pkey], p.last,
                            sum(1 for s in subs if s.mode == "durable") - 1),
                        {"missing": sorted(want - got)[:20]})
    run.figures["messages published"] = sum(len(p.log) for p in pubs.values())
    run.figures["messages received"] = sum(1 for s in subs for o in s.ops if o["op"] == "recv")
    run.figures["gap events (messages)"] = dict(gaps_total)


# ------------------------------------------------------------------- membership
def check_membership(run):
    f0, f1 = run.phase.get("final"), run.phase.get("drain")
    if f0 is None or f1 is None:
        run.violate("membership", "the run did not reach its final phase")
        return
    end_alive = lambda role: [i for i in run.role(role) if run.alive_at_end(i)]
    for w in end_alive("worker"):
        if not any(o["op"] == "run" and f0 <= o["ts"] <= f1 for o in w.ops):
            run.violate("membership", "%s ran no job after the faults healed" % w.key)
    for c in end_alive("caller"):
        for s in end_alive("server"):
            if not any(o["op"] == "served" and o["caller"] == c.node and f0 <= o["ts"] <= f1
                       for o in s.ops):
                run.violate("membership", "%s served no call of %s after the faults healed"
                            % (s.key, c.key))
    for s in end_alive("subscriber"):
        for p in end_alive("publisher"):
            if not any(o["op"] == "recv" and o["peer"] == p.node and f0 <= o["ts"] <= f1
                       and o["seq"] > 0 for o in s.ops):
                run.violate("membership", "%s received nothing from %s after the faults "
                            "healed" % (s.key, p.key))


# -------------------------------------------------------------------- resources
def check_resources(run):
    for f in run.faults:
        if f["kind"] == "unexpected-exit":
            run.violate("resources", "%s.%s exited by itself during the run (status %s)"
                        % (f["target"], f["inc"], f["code"]), f)
        elif f["kind"] == "exit" and f["code"] != 0:
            run.violate("resources", "%s.%s: exit status %s at the end (None: did not exit)"
                        % (f["target"], f["inc"], f["code"]), f)
    for inc in run.incs.values():
        for o in inc.ops:
            if o["op"] == "crash":
                run.violate("resources", "%s crashed" % inc.key, o)
    series = collections.defaultdict(list)
    for r in run.res:
        series["%s.%d" % (r["name"], r["inc"])].append(r)
    peak = (0, "")
    for key, rs in series.items():
        for r in rs:
            peak = max(peak, (max(r["rss"], r["hwm"]), key))
        if len(rs) < 9:
            continue        # too short a life to see growth
        third = len(rs) // 3
        head, tail = rs[1:third + 1], rs[-third:]
        rss0, rss1 = max(r["rss"] for r in head), max(r["rss"] for r in tail)
        fd0, fd1 = max(r["fds"] for r in head), max(r["fds"] for r in tail)
        if rss1 > rss0 * 1.5 + 20 * 1024:
            run.violate("resources", "%s: RSS grew from %d to %d KiB" % (key, rss0, rss1))
        if fd1 > fd0 + 16:
            run.violate("resources", "%s: descriptors grew from %d to %d" % (key, fd0, fd1))
    run.figures["peak RSS"] = "%.1f MiB (%s)" % (peak[0] / 1024.0, peak[1])


def mask(why):
    """A violation's text with names, numbers and asides masked: its kind."""
    why = re.sub(r"\b[A-Z]+\d\.\d+(\.\d+)?\b", "X", why)
    for _ in range(3):
        why = re.sub(r" ?\([^()]*\)", "", why)
    return re.sub(r"\d+", "N", why)[:120]


def main():
    run = Run(sys.argv[1])
    ops = collections.Counter(o["op"] for i in run.incs.values() for o in i.ops)
    faults = collections.Counter(f["kind"] for f in run.faults if f.get("phase") == "begin")
    run.figures["operations"] = {k: ops[k] for k in (
        "pushed", "committed", "push_failed", "run", "call_ok", "call_failed", "served",
        "pub", "recv", "event") if ops[k]}
    run.figures["faults injected"] = dict(faults)
    run.figures["process incarnations"] = len(run.incs)
    for fn in (check_pipeline, check_reqrep, check_pubsub, check_membership, check_resources):
        fn(run)
    props = ("pipeline", "durable", "reqrep", "pubsub", "membership", "resources")
    for k, v in run.figures.items():
        print("  %s: %s" % (k, json.dumps(v) if isinstance(v, dict) else v))
    kinds = {}
    for prop in props:
        vs = run.violations.get(prop, [])
        print("%-11s %s" % (prop, "OK" if not vs else "%d VIOLATIONS" % len(vs)))
        #   how many of each kind: the text with names and numbers masked
        kind = collections.Counter(mask(why) for why, _ in vs)
        kinds[prop] = dict(kind)
        for k, n in kind.most_common():
            print("  %5d x %s" % (n, k))
        for why, lines in vs[:EXCERPT]:
            print("    - " + why)
            for line in lines:
                print("        " + json.dumps(line)[:400])
    with open(os.path.join(run.dir, "summary.json"), "w") as f:
        json.dump({"figures": run.figures,
                   "violations": {p: len(run.violations.get(p, [])) for p in props},
                   "violations by kind": kinds}, f,
                  indent=1)
    return 1 if any(run.violations.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
