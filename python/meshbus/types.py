"""Values meshbus hands to applications: messages, peers, events."""
from typing import Dict, NamedTuple, Optional

from ._meshbus import ffi, lib


class Message:
    """A message received: a published message, a request, a job or a reply.

    ``subject`` is the subject (the service for a request, the queue for a
    job), ``body`` the bytes exactly as sent, ``headers`` a dict of str,
    ``content_type`` a str ("" when none), ``peer`` the sender's id (32 hex
    chars) and ``peer_name`` its name, ``seq`` the stream's sequence number
    (a job's delivery count), ``id`` the message id (a job's id).
    """

    __slots__ = ("subject", "body", "headers", "content_type", "peer", "peer_name",
                 "seq", "id", "flags")

    def __init__(self, subject: str = "", body: bytes = b"", *, headers=None,
                 content_type: str = "", peer: str = "", peer_name: str = "",
                 seq: int = 0, id: int = 0, flags: int = 0):
        self.subject = subject
        self.body = body
        self.headers: Dict[str, str] = headers if headers is not None else {}
        self.content_type = content_type
        self.peer = peer
        self.peer_name = peer_name
        self.seq = seq
        self.id = id
        self.flags = flags

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    @property
    def replayed(self) -> bool:
        """Resent from the publisher's retained log (late, maybe out of order)."""
        return bool(self.flags & lib.MESH_FLAG_REPLAYED)

    @property
    def last_value(self) -> bool:
        """The last value of its subject, sent when the subscription appeared."""
        return bool(self.flags & lib.MESH_FLAG_LAST_VALUE)

    @property
    def deliveries(self) -> int:
        """For a job: how many times it was delivered (1 = first)."""
        return self.seq

    def __repr__(self):
        body = self.body if len(self.body) <= 40 else self.body[:40] + b"..."
        return "Message(subject=%r, body=%r, peer=%r)" % (self.subject, body, self.peer_name)


#   The reply to a call is a Message: subject "", body the reply bytes
Reply = Message


class Peer(NamedTuple):
    """A peer this node knows: id (32 hex chars), name, endpoint
    ("tcp://host:port"), state ("ALIVE", "SUSPECT", "CONNECTING") and the
    headers it announced."""

    id: str
    name: str
    endpoint: str
    state: str
    headers: Dict[str, str]


class Event(NamedTuple):
    """Something that happened in the mesh.

    type: "ENTER", "EXIT", "SUSPECT", "BACK", "UPDATE", "GAP", "REPLAYED",
    "GAP_LOST", "SERVICE_UP", "SERVICE_DOWN", "DEAD_LETTER"...; peer: the
    peer's id; peer_name; endpoint; detail: free text (the exit reason, a
    service name, a queue); count: a number that goes with it (a gap's
    size, a dead letter's job id).
    """

    type: str
    peer: str
    peer_name: str
    endpoint: str
    detail: str
    count: int
    code: int


#   A gap is an Event whose type is "GAP" (count = messages lost)
Gap = Event


def _str(p) -> str:
    return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else ""


def headers_of(msg) -> Dict[str, str]:
    """The headers of a library message (mesh_msg_t *)."""
    out = {}
    key, klen = ffi.new("char **"), ffi.new("size_t *")
    value, vlen = ffi.new("char **"), ffi.new("size_t *")
    i = 0
    while lib.pyq_header_at(msg, i, key, klen, value, vlen):
        out[ffi.unpack(key[0], klen[0]).decode("utf-8", "replace")] = \
            ffi.unpack(value[0], vlen[0]).decode("utf-8", "replace")
        i += 1
    return out


_SAME_SUBJECT = lib.PYQ_SAME_SUBJECT
_SAME_SENDER = lib.PYQ_SAME_SENDER
_SAME_CTYPE = lib.PYQ_SAME_CTYPE
_SAME_ALL = _SAME_SUBJECT | _SAME_SENDER | _SAME_CTYPE
_string = ffi.string
_unpack = ffi.unpack
_new = Message.__new__


def message_of(it, prev: Optional[Message] = None) -> Message:
    """A Message from a queued item (pyq_item_t) of the glue. prev: the
    Message of the item drained just before it, whose str fields are
    reused where the glue marked them equal (item.same): the per-message
    cost of a stream is then the body and a few ints."""
    m = _new(Message)
    if prev is not None and it.same == _SAME_ALL:
        # a stream from one sender on one subject, requests from one caller
        m.subject = prev.subject
        m.content_type = prev.content_type
        m.peer = prev.peer
        m.peer_name = prev.peer_name
    else:
        same = it.same if prev is not None else 0
        m.subject = prev.subject if same & _SAME_SUBJECT else \
            _string(it.subject).decode("utf-8", "replace")
        m.content_type = prev.content_type if same & _SAME_CTYPE else \
            _string(it.ctype).decode("utf-8", "replace")
        if same & _SAME_SENDER:
            m.peer = prev.peer
            m.peer_name = prev.peer_name
        else:
            m.peer = _string(it.sender).decode("ascii", "replace")
            m.peer_name = _string(it.sender_name).decode("utf-8", "replace")
    m.body = _unpack(it.body, it.size)
    m.headers = headers_of(it.msg) if it.header_count else {}
    m.seq = it.seq
    m.id = it.id
    m.flags = it.flags
    return m


def event_of(ev) -> Event:
    """An Event from a library event (mesh_event_t *)."""
    return Event(_str(lib.mesh_event_name(ev)), _str(lib.mesh_event_peer(ev)),
                 _str(lib.mesh_event_peer_name(ev)), _str(lib.mesh_event_endpoint(ev)),
                 _str(lib.mesh_event_detail(ev)), lib.mesh_event_count(ev),
                 lib.mesh_event_type(ev))
