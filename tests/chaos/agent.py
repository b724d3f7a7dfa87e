"""One workload process of the chaos soak (tests/chaos/soak.py starts them).

Each process plays one role on one meshbus node and writes every
operation it makes or sees, with ids and timestamps, as one JSON object a
line to its own history file (flushed at each line: a kill -9 loses at
most the line being written). The checker (check.py) reads them all.

Roles: producer (plain), dproducer (durable outbox), worker, server,
caller, publisher, subscriber (--mode plain | durable | lastvalue).

The runner steers every process through files in the run directory:
``final`` (faults are over and healed: the verification window begins),
``drain`` (producers and publishers stop making new work; producers wait
until their jobs are acked) and ``stop`` (close the node and exit 0);
``burst`` while the outbox's disk is full (the durable producer pushes
64 KiB jobs then, so that its outbox must grow).

Written on the Python binding rather than the `meshbus` tool because a
history needs what the tool does not print: the job id, the delivery
count and the producer of each job run, the request id of each call, the
publisher's message id and stream sequence of each message, and the
GAP / REPLAYED / GAP_LOST events with their publisher; and because one
process can make thousands of calls where the tool is one per call.
"""
import argparse
import json
import os
import sys
import time

import meshbus

QUEUE, DQUEUE, SERVICE, TOPIC = "soak.jobs", "soak.djobs", "soak.svc", "soak.ps"


class History:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def log(self, op, **fields):
        fields["op"] = op
        fields["ts"] = time.time()
        os.write(self.fd, (json.dumps(fields, separators=(",", ":")) + "\n").encode())


class Agent:
    def __init__(self, args):
        self.args = args
        self.run_dir = args.run
        self.h = History(args.history)
        kw = dict(cluster=args.cluster, port=args.port, gone=args.gone_ms / 1000.0,
                  suspect=args.gone_ms / 3000.0)
        if args.iface:
            kw["iface"] = args.iface
        if args.node_id:
            kw["node_id"] = args.node_id
        self.node = meshbus.Node(args.name, **kw)
        self.node.start()
        self.phase = "run"
        self.h.log("start", role=args.role, name=args.name, inc=args.inc, node=self.node.id,
                   pid=os.getpid(), mode=args.mode)

    def flag(self, name):
        return os.path.exists(os.path.join(self.run_dir, name))

    def poll_phase(self):
        for name in ("stop", "drain", "final"):
            if self.flag(name):
                if self.phase != name:
                    self.phase = name
                    self.h.log("phase", phase=name)
                return name
        return self.phase

    def events(self):
        for ev in self.node.events(0):
            if ev.type in ("GAP", "REPLAYED", "GAP_LOST", "DEAD_LETTER"):
                self.h.log("event", type=ev.type, peer=ev.peer, count=ev.count,
                           detail=ev.detail)
            elif ev.type in ("ENTER", "EXIT"):
                self.h.log("peer", type=ev.type, peer=ev.peer, name=ev.peer_name)

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while True:
            self.node.process(max(0.0, min(0.05, end - time.monotonic())))
            self.events()
            if time.monotonic() >= end:
                return

    def finish(self):
        self.h.log("exit", rss_kib=rss_kib())
        self.node.close()
        self.h.log("closed")

    # -------------------------------------------------------------------
    def producer(self, durable):
        a, n = self.args, 0
        queue = DQUEUE if durable else QUEUE
        if durable:
            jobs = meshbus.Producer(self.node, queue, durable=a.outbox, ack_timeout=10,
                                    max_deliveries=1000)
            self.h.log("recovered", pending=jobs.pending)
        else:
            jobs = meshbus.Producer(self.node, queue, ack_timeout=10, max_deliveries=1000)
        batch = []
        while True:
            phase = self.poll_phase()
            if phase == "stop":
                break
            if phase == "drain" or (batch and not durable):
                #   plain: a batch is acked as a whole (no per-job ack is
                #   visible); wait for it before the next
                self.pump(0.05)
                if jobs.pending == 0:
                    if batch:
                        self.h.log("acked", keys=batch)
                        batch = []
                    if phase == "drain":
                        self.h.log("drained")
                        while self.poll_phase() != "stop":
                            self.pump(0.1)
                        break
                continue
            if durable and jobs.pending > 200:
                self.pump(0.05)
                continue
            size = 10 if phase == "final" else 1 + n % 7
            for _ in range(size):
                n += 1
                key = "%s.%s.%d" % (a.name, a.inc, n)
                #   while the runner fills the outbox's disk ("burst"), big
                #   jobs: the outbox must grow, and the disk refuses it
                body = key + "|" + "x" * (65536 if durable and self.flag("burst") else 8)
                try:
                    job = jobs.push(body)
                except meshbus.Error as e:
                    self.h.log("push_failed", key=key, error=type(e).__name__, text=str(e))
                    self.pump(0.5)
                    break
                self.h.log("committed" if durable else "pushed", key=key, job=job)
                if not durable:
                    batch.append(key)
            self.pump(a.interval)
        self.h.log("pending_at_stop", pending=jobs.pending, keys=batch)

    def worker(self):
        def make(queue):
            def handle(job):
                self.h.log("run", queue=queue, key=job.body.split(b"|", 1)[0].decode(),
                           job=job.id,
                           producer=job.peer, deliveries=job.deliveries)
                time.sleep(self.args.delay)
            return handle
        self.node.work(QUEUE, make(QUEUE), prefetch=self.args.prefetch)
        self.node.work(DQUEUE, make(DQUEUE), prefetch=self.args.prefetch)
        while self.poll_phase() != "stop":
            self.pump(0.1)

    def server(self):
        a = self.args

        def handle(req):
            key = req.body.decode()
            self.h.log("served", key=key, req=req.id, caller=req.peer)
            time.sleep(a.delay)
            return "%s|%s|%s" % (a.name, a.inc, key)
        self.node.serve(SERVICE, handle)
        while self.poll_phase() != "stop":
            self.pump(0.1)

    def caller(self):
        a, n = self.args, 0
        while True:
            phase = self.poll_phase()
            if phase == "stop":
                break
            if phase == "drain":
                self.pump(0.1)
                continue
            n += 1
            key = "%s.%s.%d" % (a.name, a.inc, n)
            t0 = time.time()
            try:
                reply = self.node.call(SERVICE, key, timeout=5, retries=2)
                self.h.log("call_ok", key=key, t0=t0, reply=reply.body.decode(),
                           server=reply.peer)
            except meshbus.Error as e:
                self.h.log("call_failed", key=key, t0=t0, error=type(e).__name__, text=str(e))
            self.events()
            self.pump(a.interval)

    def publisher(self):
        a, k = self.args, 0
        while True:
            phase = self.poll_phase()
            if phase == "stop":
                break
            if phase == "drain":
                self.pump(0.1)         # answer replays, send positions
                continue
            k += 1
            subject = "%s.%d" % (TOPIC, k % 4)
            reached = self.node.publish(subject, "%s:%d" % (a.name, k))
            self.h.log("pub", id=k, subject=subject, reached=reached)
            self.pump(a.interval)
        self.h.log("last", id=k)

    def subscriber(self):
        a = self.args
        kw = {}
        if a.mode == "durable":
            kw["durable"] = "soak-durable"
        elif a.mode == "lastvalue":
            kw["last_value"] = True

        def on_msg(msg):
            self.h.log("recv", peer=msg.peer, id=msg.id, seq=msg.seq, flags=msg.flags,
                       subject=msg.subject, body=msg.body.decode(), replayed=msg.replayed,
                       lv=msg.last_value)
        self.node.subscribe(TOPIC + ".#", on_msg, **kw)
        while self.poll_phase() != "stop":
            self.pump(0.1)


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--role", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--inc", default="1")
    p.add_argument("--node-id")
    p.add_argument("--run", required=True)
    p.add_argument("--history", required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--iface")
    p.add_argument("--gone-ms", type=int, default=3000)
    p.add_argument("--mode", default="plain")
    p.add_argument("--outbox")
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--delay", type=float, default=0.005)
    p.add_argument("--prefetch", type=int, default=1)
    args = p.parse_args()
    agent = Agent(args)
    try:
        {"producer": lambda: agent.producer(False), "dproducer": lambda: agent.producer(True),
         "worker": agent.worker, "server": agent.server, "caller": agent.caller,
         "publisher": agent.publisher, "subscriber": agent.subscriber}[args.role]()
    except Exception as e:     # recorded, and the run fails on it
        agent.h.log("crash", error=type(e).__name__, text=str(e))
        raise
    agent.finish()


if __name__ == "__main__":
    sys.exit(main())
