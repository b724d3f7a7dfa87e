"""A meshbus peer in Python, from the docs alone: links, HELLO, liveness,
announcements, batch frames, and the codecs of the three patterns.

Written from docs/protocol.md, docs/wire-envelope.md, docs/pubsub.md,
docs/reqrep.md and docs/pipeline.md, without reading the C code: it is
the proof that those pages are enough to speak every pattern with the
C nodes. tests/test_python_patterns_peer.py drives it against the
meshbus tool. It is the full-peer version of tests/test_python_peer.py:
it keeps a table of peers (any number), answers every HELLO that asks,
relinks a peer that lost us, reads batch frames and framed bodies, and
checks what it decodes against the envelope's limits.

Single-threaded: everything happens in Peer.poll(), which the caller runs
in a loop (Peer.run_until); nothing here blocks for longer than a poll.
Needs python3-zmq and python3-msgpack.
"""
import os
import struct
import time
from collections import namedtuple

import msgpack
import zmq

# Kinds: docs/wire-envelope.md, "Kinds"
HELLO, PING, BYE, UPDATE, PEERS, DIRECT, STATS_REQ, STATS_REP = range(1, 9)
PUB, REPLAY_REQ, REPLAY_END, DACK, POS = 16, 17, 18, 19, 20
REQ, REP = 24, 25
JOB, CREDIT, ACK, NACK, JOBS = 32, 33, 34, 35, 36
# Core flags (protocol.md, "Core message kinds")
REPLY_WANTED, FRAMES, BATCHES = 0x1, 0x2, 0x4
PROBE, PING_ACK, INDIRECT = 0x100, 0x200, 0x400
# Pattern flags (the high 16 bits; each pattern's page)
PUB_REPLAYED, PUB_LAST_VALUE = 0x10000, 0x20000
REQ_CAST = 0x10000
REP_FAILED, REP_UNKNOWN_SERVICE = 0x20000, 0x40000
JOB_ACK_NOW = 0x20000               # JOB: ack this one at once
NACK_UNTRIED = 0x10000              # NACK: returned untried
JOBS_ENTRY_ACK_NOW = 0x0002         # a JOBS entry's own flag
# Limits (wire-envelope.md, protocol.md "Limits")
MAX_INLINE_BODY = 65535
MAX_FRAMES = 16
MAX_HEADER_FRAME = 98303
LINK, PROBE_ID = 0x00, 0x01         # routing id type bytes

Envelope = namedtuple("Envelope", "version kind flags seq id subject reply deadline "
                                  "ctype headers body")


def encode(kind, flags=0, seq=0, id=0, subject=None, reply=None, deadline=0,
           ctype=None, headers=None, body=None):
    """One header frame: an 11-element msgpack array, smallest encodings."""
    return msgpack.packb([1, kind, flags, seq, id, subject, reply, deadline, ctype,
                          headers or None, body], use_bin_type=True)


def _uint(value, limit=2**64 - 1):
    # bool is an int in Python but a wrong type on the wire
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("bad type")
    if value > limit:
        raise ValueError("too long")
    return value


def _str(value, limit):
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("bad type")
    if len(value.encode("utf-8", "surrogateescape")) > limit:
        raise ValueError("too long")
    return value


def decode(frame):
    """A header frame into an Envelope, or ValueError with the reason.

    msgpack's own limits keep it from allocating what a frame declares;
    then each field is checked as wire-envelope.md says. Strings that are
    not UTF-8 keep their bytes as surrogates (receivers do not check)."""
    if len(frame) > MAX_HEADER_FRAME:
        raise ValueError("too long")
    if not frame:
        raise ValueError("truncated")
    try:
        env = msgpack.unpackb(frame, raw=False, unicode_errors="surrogateescape",
                              strict_map_key=True, max_array_len=16, max_map_len=32,
                              max_bin_len=MAX_INLINE_BODY, max_str_len=MAX_INLINE_BODY,
                              max_ext_len=0)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as error:
        raise ValueError("bad shape: %s" % error)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise ValueError("truncated or too long: %s" % error)
    if not isinstance(env, list) or not env:
        raise ValueError("bad shape")
    if _uint(env[0]) != 1:
        raise ValueError("bad version")
    if not 11 <= len(env) <= 16:
        raise ValueError("bad shape")
    for extra in env[11:]:
        if isinstance(extra, (list, dict, float)):
            raise ValueError("bad shape")
    headers = env[9]
    if headers is not None:
        if not isinstance(headers, dict):
            raise ValueError("bad type")
        total = 0
        for key, value in headers.items():
            total += len(_str(key, 64) or "") + len(_str(value, 1024) or "")
            if key is None or value is None:
                raise ValueError("bad type")
        if total > 8192:
            raise ValueError("too long")
    body = env[10]
    if body is not None and not isinstance(body, bytes):
        raise ValueError("bad type")
    return Envelope(1, _uint(env[1], 255), _uint(env[2], 2**32 - 1), _uint(env[3]),
                    _uint(env[4]), _str(env[5], 255), _str(env[6], 255), _uint(env[7]),
                    _str(env[8], 127), headers or {}, body)


def split_batch(frame):
    """A batch frame (0xc1, then uint32 BE length + envelope, repeated) into
    its envelopes; ValueError on a zero length or one past the end."""
    out, at = [], 1
    while at < len(frame):
        if at + 4 > len(frame):
            raise ValueError("batch: truncated length")
        (size,) = struct.unpack_from(">I", frame, at)
        at += 4
        if size == 0 or at + size > len(frame):
            raise ValueError("batch: bad length %d" % size)
        out.append(frame[at:at + size])
        at += size
    if not out:
        raise ValueError("batch: empty")
    return out


# Announcements: wire-envelope.md, "Announcements"
def _escape(field):
    return field.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n")


def _unescape(field):
    out, i = bytearray(), 0
    while i < len(field):
        byte = field[i]
        if byte == 0x5c:
            nxt = field[i + 1:i + 2]
            if nxt not in (b"\\", b"t", b"n"):
                raise ValueError("bad escape")
            out += {b"\\": b"\\", b"t": b"\t", b"n": b"\n"}[nxt]
            i += 2
        elif byte == 0:
            raise ValueError("NUL in a field")
        else:
            out.append(byte)
            i += 1
    if len(out) > 1024:
        raise ValueError("field too long")
    return bytes(out)


def announcement(records):
    """records: lists of str/bytes fields, the tag first."""
    lines = [b"@1"]
    for record in records:
        fields = [f if isinstance(f, bytes) else str(f).encode() for f in record]
        lines.append(b"\t".join(_escape(f) for f in fields))
    return b"\n".join(lines) + b"\n"


def parse_announcement(value):
    """A value into its records (lists of bytes); malformed ones skipped.
    None when the value is not in the format; [] when empty (withdrawn)."""
    if not value:
        return []
    lines = value.split(b"\n")
    if lines[0] != b"@1":
        return None
    records = []
    # every line ends with LF: what follows the last one must be nothing
    # (a last record without its LF is malformed, like an empty line)
    for line in lines[1:-1][:131072]:
        try:
            fields = [_unescape(f) for f in line.split(b"\t")]
        except ValueError:
            continue
        if 1 <= len(fields) <= 8 and fields[0]:
            records.append(fields)
    return records


def subject_matches(pattern, subject):
    """AMQP topic matching (pubsub.md, "Subjects and patterns")."""
    pat, sub = pattern.split("."), subject.split(".")

    def match(p, s):
        if p == len(pat):
            return s == len(sub)
        if pat[p] == "#":
            return any(match(p + 1, k) for k in range(s, len(sub) + 1))
        if s == len(sub):
            return False
        return (pat[p] == "*" or pat[p] == sub[s]) and match(p + 1, s + 1)
    return match(0, 0)


class Remote:
    """What we hold of one peer: its link, its name, its announcements."""

    def __init__(self, node_id, endpoint, link):
        self.id = node_id
        self.hex = node_id.hex()
        self.endpoint = endpoint
        self.link = link
        self.name = ""
        self.incarnation = None
        self.headers = {}
        self.heartbeat_s = 0.25
        self.sent = 0.0
        self.heard = time.monotonic()
        self.announced = {}             # key -> (version, value)


class Peer:
    """A node: a ROUTER inbox, a DEALER link per peer, HELLO and liveness.

    Patterns plug in with on(kind, fn(remote, envelope)); announce(key,
    value) publishes an announcement to every peer now and later."""

    def __init__(self, name, suspect_ms=1000, gone_ms=3000, log=None):
        self.name = name
        self.id = os.urandom(16)
        self.hex = self.id.hex()
        self.incarnation = int.from_bytes(os.urandom(8), "big") | 1
        self.suspect_ms, self.gone_ms = suspect_ms, gone_ms
        self.ctx = zmq.Context()
        self.inbox = self.ctx.socket(zmq.ROUTER)
        self.inbox.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.inbox.setsockopt(zmq.LINGER, 0)
        port = self.inbox.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = "tcp://127.0.0.1:%d" % port
        self.peers = {}                 # node id (16 bytes) -> Remote
        self.announcements = {}         # key -> (version, value)
        self.handlers = {}
        self.counts = {}                # what we saw: for reports and asserts
        self.log = log or (lambda text: None)

    def count(self, name, n=1):
        self.counts[name] = self.counts.get(name, 0) + n

    def on(self, kind, handler):
        self.handlers[kind] = handler

    # sending ------------------------------------------------------------

    def send(self, remote, kind, body=None, **fields):
        """A message on remote's link; a body past 65535 bytes travels as
        one frame after the header frame, with FRAMES set."""
        if body is not None and len(body) > MAX_INLINE_BODY:
            fields["flags"] = fields.get("flags", 0) | FRAMES
            remote.link.send_multipart([encode(kind, **fields), body])
        else:
            remote.link.send(encode(kind, body=body, **fields))
        remote.sent = time.monotonic()

    def _hello(self, flags):
        # no PROBES: the node sends us a frame every seq/4 and we judge it
        # by silence; no DELTAS: announcements come whole
        return encode(HELLO, flags | BATCHES, seq=self.suspect_ms, id=self.incarnation,
                      subject=self.name, reply=self.endpoint,
                      headers={"lang": "python"})

    def _open_link(self, endpoint):
        link = self.ctx.socket(zmq.DEALER)
        link.setsockopt(zmq.ROUTING_ID, bytes([LINK]) + self.id)
        link.setsockopt(zmq.LINGER, 500)
        link.connect(endpoint)
        return link

    def _greet(self, remote, flags):
        """HELLO first on a link, then every announcement, whole."""
        remote.link.send(self._hello(flags))
        for key, (version, value) in self.announcements.items():
            self.send(remote, UPDATE, subject=key, id=version, body=value)
        remote.sent = time.monotonic()

    def announce(self, key, value):
        version = self.announcements.get(key, (0, b""))[0] + 1
        self.announcements[key] = (version, value)
        for remote in self.peers.values():
            self.send(remote, UPDATE, subject=key, id=version, body=value)

    # receiving ----------------------------------------------------------

    def _on_hello(self, node_id, env, on_link):
        if node_id == self.id:
            return
        endpoint = env.reply or ""
        if not endpoint.startswith("tcp://") or ":" not in endpoint[6:]:
            self.count("malformed.hello-endpoint")
            return
        host, port = endpoint[6:].rsplit(":", 1)
        if host == "0.0.0.0":
            endpoint = "tcp://127.0.0.1:%s" % port      # we only live on loopback
        remote = self.peers.get(node_id)
        if remote and remote.incarnation != env.id:
            self.log("%s restarted" % remote.hex)
            self._remove(remote, "restarted")
            remote = None
        if not remote:
            # a new peer: link to its inbox, HELLO asking for an answer
            remote = Remote(node_id, endpoint, self._open_link(endpoint))
            self.peers[node_id] = remote
            self._greet(remote, REPLY_WANTED)
            self.log("ENTER %s (%s) at %s via %s" % (env.subject, remote.hex, endpoint,
                                                    "link" if on_link else "probe"))
            self.count("peers.entered")
        elif env.flags & REPLY_WANTED:
            # always answer: the asker dropped us (or is a seed probe).
            # It forgot what we announced: a fresh link, HELLO, every value
            remote.link.close(0)
            remote.link = self._open_link(remote.endpoint)
            self._greet(remote, 0)
            self.count("link.relinked")
        remote.incarnation = env.id
        remote.name = "".join(c for c in (env.subject or "") if c >= " " and c != "\x7f")
        remote.headers = dict(env.headers)
        if 50 <= env.seq <= 3600000:
            remote.heartbeat_s = env.seq / 4000

    def _remove(self, remote, reason):
        self.peers.pop(remote.id, None)
        remote.link.close(0)
        self.count("peers.exited.%s" % reason)
        handler = self.handlers.get("exit")
        if handler:
            handler(remote, reason)

    def _on_update(self, remote, env):
        if not env.subject:
            self.count("malformed.update")
            return
        remote.announced[env.subject] = (env.id, env.body or b"")
        handler = self.handlers.get("update")
        if handler:
            handler(remote, env.subject, env.body or b"")

    def _dispatch(self, routing_id, header, body_frames, batched):
        try:
            env = decode(header)
        except ValueError as error:
            self.count("malformed")
            self.log("malformed frame: %s" % error)
            return
        if env.flags & FRAMES:
            if env.body is not None or not 1 <= len(body_frames) <= MAX_FRAMES or batched:
                self.count("malformed.frames")
                return
            env = env._replace(body=b"".join(body_frames))
        node_id = routing_id[1:17]          # bytes 17..20: the link's tag, if any
        if env.kind == HELLO:
            if batched:
                self.count("malformed.batched-hello")
            else:
                self._on_hello(node_id, env, routing_id[0] == LINK)
            return
        remote = self.peers.get(node_id)
        if routing_id[0] != LINK or not remote:
            self.count("dropped.unknown-sender")
            return
        remote.heard = time.monotonic()
        self.count("messages.in")
        if env.kind == PING:
            if env.flags & PROBE and not env.flags & INDIRECT:
                self.send(remote, PING, flags=PING_ACK, id=env.id)
        elif env.kind == BYE:
            self.log("BYE from %s (%s)" % (remote.name, remote.hex))
            self._remove(remote, "bye")
        elif env.kind == UPDATE:
            self._on_update(remote, env)
        elif env.kind in self.handlers:
            self.handlers[env.kind](remote, env)
        elif env.kind in (PEERS, STATS_REQ):
            pass                        # one mesh per test: nobody to gossip about
        else:
            self.count("dropped.no-handler.%d" % env.kind)

    def poll(self, timeout_ms=20):
        """Heartbeats, silence verdicts, then every frame waiting."""
        now = time.monotonic()
        for remote in list(self.peers.values()):
            if now - remote.heard >= self.gone_ms / 1000:
                self.log("%s (%s) went silent" % (remote.name, remote.hex))
                self._remove(remote, "silent")
            elif now - remote.sent >= remote.heartbeat_s:
                self.send(remote, PING)         # any frame is a sign of life
        if not self.inbox.poll(timeout_ms):
            return
        for _ in range(1000):
            try:
                frames = self.inbox.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if len(frames) < 2 or len(frames[0]) not in (17, 21) or frames[0][0] not in (LINK, PROBE_ID):
                self.count("malformed.routing-id")
                continue
            header = frames[1]
            if header[:1] == b"\xc1":
                if len(frames) > 2:
                    self.count("malformed.batch")
                    continue
                try:
                    envelopes = split_batch(header)
                except ValueError as error:
                    self.log(str(error))
                    self.count("malformed.batch")
                    continue
                self.count("frames.batch")
                self.count("messages.batched", len(envelopes))
                for one in envelopes:
                    self._dispatch(frames[0], one, [], True)
            else:
                self._dispatch(frames[0], header, frames[2:], False)

    def run_until(self, done, timeout_s, what):
        """Poll until done() is true; AssertionError naming `what` after
        timeout_s (a bound against hangs, never a measurement)."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() >= deadline:
                raise AssertionError("timed out waiting for %s" % what)
            self.poll()

    def find(self, name):
        for remote in self.peers.values():
            if remote.name == name:
                return remote
        return None

    def close(self):
        for remote in list(self.peers.values()):
            remote.link.send(encode(BYE))
            remote.link.close()         # lingers until BYE is out
        self.peers.clear()
        self.inbox.close(0)
        self.ctx.term()
