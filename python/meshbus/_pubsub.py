"""Publish-subscribe: Node.publish, Node.subscribe and Subscription."""
import collections
import datetime
import logging
from typing import Callable, Iterator, Optional, Union

from ._meshbus import ffi, lib
from .errors import Closed, Timeout, check
from .types import Message
from ._util import Headers, body_of, enc

log = logging.getLogger("meshbus")


class Subscription:
    """Messages of one pattern. Iterate it (``for msg in sub:``), or
    ``get(timeout)``, or ``messages(timeout, count)``; or give
    ``subscribe()`` a callback instead. ``close()`` (or leaving ``with``)
    unsubscribes. ``dropped`` counts messages this subscription's queue
    could not hold (its bound is MESH_PUBSUB_QUEUE_MAX, 10 000: iterate
    faster, or use a callback). Lost messages upstream are GAP events, see
    :meth:`Node.events`."""

    def __init__(self, node, pattern: str, callback: Optional[Callable]):
        self.node = node
        self.pattern = pattern
        self.callback = callback
        self.dropped = 0
        self._queue = collections.deque()
        self._id = 0
        self._closed = False

    def _put(self, msg: Message) -> None:
        if self.callback is not None:
            self.node._backlog.append((self._call, msg))
        elif len(self._queue) < lib.MESH_PUBSUB_QUEUE_MAX:
            self._queue.append(msg)
        else:
            self.dropped += 1
            lib.mesh_node_count(self.node._node, msg.peer.encode(),
                                b"pubsub.dropped.queue-full", 1)

    def _call(self, msg: Message) -> None:
        try:
            self.callback(msg)
        except Exception:
            # a handler's exception never kills the node
            log.exception("meshbus: subscription handler for %r raised", self.pattern)
            lib.mesh_node_count(self.node._node, ffi.NULL, b"python.handler-errors", 1)

    def get(self, timeout: Optional[float] = None) -> Message:
        """The next message, driving the node while none is there. Raises
        meshbus.Timeout after timeout seconds, meshbus.Closed once closed."""
        queue = self._queue
        if queue:
            return queue.popleft()
        if not self.node._drive(lambda: queue or self._closed, timeout):
            raise Timeout("no message for %r within %ss" % (self.pattern, timeout))
        if queue:
            return queue.popleft()
        raise Closed("subscription closed")

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        try:
            return self.get()
        except Closed:
            raise StopIteration from None

    def messages(self, timeout: Optional[float] = None,
                 count: Optional[int] = None) -> Iterator[Message]:
        """Iterate until no message came for timeout seconds, or count
        messages were taken."""
        n = 0
        while count is None or n < count:
            try:
                yield self.get(timeout)
            except (Timeout, Closed):
                return
            n += 1

    def close(self) -> None:
        """Unsubscribe (messages still queued stay readable)."""
        if self._closed:
            return
        self._closed = True
        node = self.node
        if not node._closed and self._id > 0:
            lib.mesh_unsubscribe(node._ps, self._id)
        with node._cond:
            node._cond.notify_all()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _since_ms(since) -> int:
    if since is None:
        return 0
    if isinstance(since, datetime.datetime):
        since = since.timestamp()
    return max(1, int(since * 1000))


class PubSubMixin:
    """Publish-subscribe methods of Node."""

    def _init(self):
        pass

    def publish(self, subject: str, body: Union[bytes, str] = b"", *,
                headers: Optional[dict] = None, content_type: Optional[str] = None) -> int:
        """Publish body (bytes; a str is sent as UTF-8) to subject (dotted
        tokens, no wildcards). Returns how many subscribers it went to.
        Never blocks on a slow subscriber unless it subscribed with
        block=True; what is dropped for slow ones is counted."""
        if self._closed or not self._started:
            self._live()
        s = enc(subject, "subject")
        b = body if type(body) is bytes else body_of(body)
        if headers is None and content_type is None:
            return check(lib.mesh_publish(self._ps, s, b, len(b)))
        h = Headers(headers)
        head = ffi.new("mesh_head_t *")
        subj = ffi.new("char[]", s)
        head.subject = subj
        ctype = ffi.new("char[]", enc(content_type, "content_type")) if content_type \
            else ffi.NULL
        head.ctype = ctype
        head.headers = h.array
        head.header_count = h.count
        return check(lib.mesh_publish_ex(self._ps, head, b, len(b)))

    def subscribe(self, pattern: str, callback: Optional[Callable[[Message], None]] = None,
                  *, durable: Optional[str] = None, last_value: bool = False,
                  since=None, block: bool = False, no_replay: bool = False) -> Subscription:
        """Subscribe to a pattern ("orders.*.created", "logs.#": ``*`` is one
        token, ``#`` zero or more).

        With a callback, ``callback(msg)`` runs in the thread that drives
        the node (``run()``...); without one, iterate the Subscription.
        ``durable``: a name under which what was published while this
        subscriber was away is kept for it (within retention);
        ``last_value``: get the last message of each matching subject at
        once; ``since``: also what publishers retained since this time
        (epoch seconds or datetime); ``block``: publishers wait for this
        subscriber instead of dropping when it is slow; ``no_replay``: do
        not ask for what a gap lost."""
        self._live()
        p = enc(pattern, "pattern")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        sub = Subscription(self, pattern, callback)
        opts = ffi.new("mesh_sub_opts_t *")
        opts.mode = lib.MESH_SUB_BLOCK if block else lib.MESH_SUB_DROP
        keep = ffi.new("char[]", enc(durable, "durable")) if durable else ffi.NULL
        opts.durable = keep
        opts.last_value = bool(last_value)
        opts.no_replay = bool(no_replay)
        opts.since_ms = _since_ms(since)
        target = self._target(self._token(sub))
        sub._id = check(lib.pyq_subscribe(self._ps, p, opts, target))
        return sub

    def subscribers(self, subject: str) -> int:
        """How many subscribers (peers and local) a subject has now."""
        self._live()
        return lib.mesh_pubsub_subscribers(self._ps, enc(subject, "subject"))

    def wait_subscribers(self, subject: str, n: int = 1,
                         timeout: Optional[float] = None) -> int:
        """Wait until subject has at least n subscribers; raises Timeout."""
        self._live()
        s = enc(subject, "subject")
        if not self._drive(lambda: lib.mesh_pubsub_subscribers(self._ps, s) >= n, timeout):
            raise Timeout("%d of %d subscribers for %r after %ss" % (
                lib.mesh_pubsub_subscribers(self._ps, s), n, subject, timeout))
        return lib.mesh_pubsub_subscribers(self._ps, s)

    def set_retention(self, count: int = 0, bytes: int = 0, age: float = 0,
                      data_dir: Optional[str] = None) -> None:
        """Bounds of what this publisher retains for replay, late joiners
        and durable subscribers (0 = library default); data_dir keeps it in
        LMDB across restarts (before the first publish)."""
        self._live()
        if data_dir is not None:
            check(lib.mesh_pubsub_set_data_dir(self._ps, enc(str(data_dir), "data_dir")))
        check(lib.mesh_pubsub_set_retention(self._ps, count, bytes, int(age * 1000)))
