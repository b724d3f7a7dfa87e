"""meshbus: a brokerless message bus. Publish-subscribe, request-reply and
work queues between processes and hosts, with no server to run.

>>> import meshbus
>>> with meshbus.Node("hello") as node:
...     node.serve("greet", lambda req: b"hello " + req.body)
...     print(node.call("greet", b"world").body)
b'hello world'

Everything is a method of :class:`Node`; failures are :class:`Error`
subclasses; ``meshbus.aio`` has the asyncio flavour. docs/python.md in
the source tree is the guide.
"""
from ._meshbus import ffi as _ffi, lib as _lib
from .errors import (Closed, Error, Full, NoPeer, NoResponders, ProviderLeft, Reject,
                     RemoteError, Timeout)
from .node import Node
from ._pipeline import DeadLetter, Producer, Worker
from ._pubsub import Subscription
from ._reqrep import CallFuture
from .types import Event, Gap, Message, Peer, Reply
from ._util import enc as _enc

__version__ = "%d.%d.%d" % (_lib.MESHBUS_VERSION_MAJOR, _lib.MESHBUS_VERSION_MINOR,
                            _lib.MESHBUS_VERSION_PATCH)

__all__ = ["Node", "Subscription", "Producer", "Worker", "DeadLetter", "CallFuture",
           "Message", "Reply", "Peer", "Event", "Gap", "Error", "NoResponders", "Timeout",
           "RemoteError", "ProviderLeft", "Closed", "Full", "NoPeer", "Reject", "keygen",
           "subject_valid", "pattern_valid", "subject_match", "MAX_SUBJECT"]

MAX_SUBJECT = _lib.MESH_MAX_SUBJECT     # bytes in a subject, pattern, service or queue


def keygen(name: str) -> str:
    """Write a new CURVE key pair: NAME.key (secret and public, mode 0600,
    never overwritten) and NAME.pub (for trust directories). Returns the
    path of NAME.key. Raises FileExistsError if either file exists."""
    import os
    from .errors import check
    try:
        check(_lib.mesh_keygen(_enc(str(name), "name")))
    except ValueError as exc:
        if os.path.exists(str(name) + ".key") or os.path.exists(str(name) + ".pub"):
            raise FileExistsError(str(exc)) from None
        raise
    return str(name) + ".key"


def subject_valid(subject: str) -> bool:
    """A valid subject: 1..255 bytes of dotted non-empty tokens, no * or #."""
    return bool(_lib.mesh_subject_valid(_enc(subject, "subject")))


def pattern_valid(pattern: str) -> bool:
    """A valid pattern: like a subject, tokens may be * (one) or # (any)."""
    return bool(_lib.mesh_pattern_valid(_enc(pattern, "pattern")))


def subject_match(pattern: str, subject: str) -> bool:
    """Does subject match pattern?"""
    return bool(_lib.mesh_subject_match(_enc(pattern, "pattern"), _enc(subject, "subject")))
