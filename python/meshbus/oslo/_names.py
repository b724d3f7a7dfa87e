"""oslo addresses as meshbus names (docs/oslo.md, "The mapping").

A meshbus service, queue or subject is dotted tokens of printable bytes
other than '.', '*' and '#', at most MESH_MAX_SUBJECT bytes. oslo's
exchange, topic, server and pool are any str (topics hold dots: the
notification topic "notifications.info"; servers are host names). Each
becomes exactly one token: '%', '.', '*', '#', spaces and control bytes
are written %XX, the empty string is "%" (which no escaped string can be).
A name longer than the limit is replaced by its kind and a SHA-256 of the
full name, the same on every node.
"""
import hashlib

from meshbus import MAX_SUBJECT

_SPECIAL = {ord(c) for c in "%.*#"} | set(range(0x21)) | {0x7f}


def token(value) -> str:
    """One token for an oslo string (None is the empty string)."""
    raw = (value or "").encode("utf-8")
    if not raw:
        return "%"
    if not any(b in _SPECIAL for b in raw):
        return raw.decode("utf-8")
    out = bytearray()
    for b in raw:
        if b in _SPECIAL:
            out += b"%%%02X" % b
        else:
            out.append(b)
    return out.decode("utf-8")


def name(kind: str, *parts) -> str:
    """kind.token(part)...; hashed when it would break the length limit."""
    full = ".".join([kind] + [token(p) for p in parts])
    if len(full.encode("utf-8")) <= MAX_SUBJECT:
        return full
    return "%s.h.%s" % (kind, hashlib.sha256(full.encode("utf-8")).hexdigest())


def topic_service(exchange, topic) -> str:
    """Every RPC server of a topic serves this: calls and casts to the
    topic go to one of them, fanout casts to all."""
    return name("oslo.rpc", exchange, topic)


def server_service(exchange, topic, server) -> str:
    """The RPC server named server on topic serves this."""
    return name("oslo.srv", exchange, topic, server)


def notify_queue(exchange, topic, pool) -> str:
    """The work queue of one pool (None: the default pool) of one
    notification topic ("topic.priority")."""
    return name("oslo.ntf", exchange, topic, pool)


POOL_SUBJECTS = "oslo.pool.#"


def pool_subject(exchange, topic, pool) -> str:
    """A listener in a named pool announces the pool here (last value)."""
    return name("oslo.pool", exchange, topic, pool)
