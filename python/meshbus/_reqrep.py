"""Request-reply: Node.serve, call, call_async, cast, call_all."""
import concurrent.futures
import logging
import threading
from typing import Callable, Dict, Optional, Union

from ._meshbus import ffi, lib
from . import errors
from .errors import Timeout, check, error_for
from .types import Message, message_of
from ._util import Headers, body_of, enc

log = logging.getLogger("meshbus")

_MARGIN = 2.0       # s past a call's deadline before the binding gives up on its outcome


class _Service:
    """Runs a serve handler for one queued request and sends its reply."""

    def __init__(self, node, name: str, handler: Callable):
        self.node = node
        self.name = name
        self.handler = handler

    def __call__(self, arg) -> None:
        msg, reply = arg
        try:
            result = self.handler(msg)
        except Exception as exc:
            # the text travels as the caller's RemoteError
            log.debug("meshbus: handler of %r raised", self.name, exc_info=True)
            lib.mesh_node_count(self.node._node, ffi.NULL, b"python.handler-errors", 1)
            if reply != ffi.NULL:
                text = "%s: %s" % (type(exc).__name__, exc)
                lib.pyq_reply(reply, ffi.NULL, 0, ffi.NULL, text.encode("utf-8", "replace"))
            return
        except BaseException:
            self.cancel(arg, b"interrupted")
            raise
        if reply == ffi.NULL:
            return      # a cast: nothing to answer
        ctype = ffi.NULL
        if isinstance(result, tuple):
            result, ctype = result[0], enc(result[1], "content type")
        try:
            body = body_of(result)
        except TypeError as exc:
            lib.pyq_reply(reply, ffi.NULL, 0, ffi.NULL, str(exc).encode())
            log.error("meshbus: handler of %r: %s", self.name, exc)
            return
        lib.pyq_reply(reply, body, len(body), ctype, ffi.NULL)

    def cancel(self, arg, why: bytes = b"server closing") -> None:
        msg, reply = arg
        if reply != ffi.NULL:
            lib.pyq_reply(reply, ffi.NULL, 0, ffi.NULL, why)


class _Slot:
    """The outcome of one synchronous call."""

    __slots__ = ("done", "reply", "exc")

    def __init__(self):
        self.done = False
        self.reply = None
        self.exc = None

    def set(self, reply, exc):
        self.reply, self.exc = reply, exc
        self.done = True


class CallFuture(concurrent.futures.Future):
    """A concurrent.futures.Future of an asynchronous call. It completes
    while some thread drives the node; result() and exception() drive it
    themselves while they wait, so a single thread needs nothing else."""

    def __init__(self, node):
        super().__init__()
        self._node = node

    def set(self, reply, exc):
        if exc is None:
            self.set_result(reply)
        else:
            self.set_exception(exc)

    def result(self, timeout: Optional[float] = None) -> Message:
        if not self.done():
            self._node._drive(self.done, timeout)
        return super().result(0 if self.done() else timeout)

    def exception(self, timeout: Optional[float] = None):
        if not self.done():
            self._node._drive(self.done, timeout)
        return super().exception(0 if self.done() else timeout)


class ReqRepMixin:
    """Request-reply methods of Node."""

    def _init(self):
        self._calls = {}            # call id -> _Slot / CallFuture
        self._early = {}            # outcomes that came before their waiter
        self._calls_lock = threading.Lock()
        self._services = {}

    def serve(self, service: str, handler: Callable[[Message], Union[bytes, str, None]]) -> None:
        """Offer a service. ``handler(request)`` returns the reply: bytes, a
        str (sent as UTF-8), None (empty), or (body, content_type); an
        exception it raises is the caller's RemoteError, with its text.
        The handler runs in the thread that drives the node."""
        self._live()
        if not callable(handler):
            raise TypeError("handler must be callable")
        svc = _Service(self, service, handler)
        target = self._target(self._token(svc))
        check(lib.pyq_serve(self._rr, enc(service, "service"), target))
        self._services[service] = svc

    def unserve(self, service: str) -> None:
        """Stop offering a service (requests taken are still answered)."""
        self._live()
        check(lib.mesh_unserve(self._rr, enc(service, "service")))
        self._services.pop(service, None)

    def providers(self, service: str) -> int:
        """How many providers of a service are known now (this node included)."""
        self._live()
        return lib.mesh_reqrep_providers(self._rr, enc(service, "service"))

    def wait_providers(self, service: str, n: int = 1, timeout: Optional[float] = None) -> int:
        """Wait until a service has at least n providers; raises Timeout."""
        self._live()
        s = enc(service, "service")
        if not self._drive(lambda: lib.mesh_reqrep_providers(self._rr, s) >= n, timeout):
            raise Timeout("%d of %d providers of %r after %ss" % (
                lib.mesh_reqrep_providers(self._rr, s), n, service, timeout))
        return lib.mesh_reqrep_providers(self._rr, s)

    def set_settle(self, seconds: float) -> None:
        """How long a fresh node lets discovery settle before a call that
        finds no provider fails with NoResponders (default 1.1 s)."""
        self._live()
        check(lib.mesh_reqrep_set_settle(self._rr, int(seconds * 1000)))

    def _opts(self, timeout, retries, headers, content_type, wait):
        opts = ffi.new("mesh_call_opts_t *")
        keep = [opts]
        if timeout is not None:
            if timeout <= 0:
                raise ValueError("timeout must be > 0")
            opts.timeout_ms = max(1, int(timeout * 1000))
        if retries is not None:
            opts.retries = -1 if retries == 0 else int(retries)
        opts.wait_for_provider = bool(wait)
        if content_type:
            ctype = ffi.new("char[]", enc(content_type, "content_type"))
            keep.append(ctype)
            opts.ctype = ctype
        if headers:
            h = Headers(headers)
            keep.append(h)
            opts.headers = h.array
            opts.header_count = h.count
        return opts, keep

    def _launch(self, service, body, timeout, retries, headers, content_type, wait, slot):
        self._live()
        s = enc(service, "service")
        b = body_of(body)
        opts, keep = self._opts(timeout, retries, headers, content_type, wait)
        call_id = lib.pyq_call_async(self._rr, s, b, len(b), opts, self._q)
        if call_id == 0:
            raise errors.last_error()
        with self._calls_lock:
            early = self._early.pop(call_id, None)
            if early is None:
                self._calls[call_id] = slot
        if early is not None:
            slot.set(*early)
        return slot

    def _outcome(self, it) -> None:
        # with the pump lock held (see Node._route)
        reply = message_of(it) if it.msg != ffi.NULL else None
        exc = None
        if it.err:
            exc = error_for(it.err, ffi.string(it.error).decode("utf-8", "replace")
                            if it.error != ffi.NULL else "")
        with self._calls_lock:
            slot = self._calls.pop(it.id, None)
            if slot is None:
                self._early[it.id] = (reply, exc)
                return
        slot.set(reply, exc)

    def call(self, service: str, body: Union[bytes, str] = b"", *,
             timeout: Optional[float] = None, retries: Optional[int] = None,
             headers: Optional[dict] = None, content_type: Optional[str] = None,
             wait: bool = False) -> Message:
        """Call a service and return its reply (a Message; ``.body`` is the
        bytes). ``timeout`` in seconds (default 5), retries included;
        ``retries``: further providers tried after a timeout or a provider
        leaving (default 2, 0 = none); ``wait``: with no provider yet, wait
        for one until the deadline instead of failing at once.

        Raises NoResponders, Timeout, ProviderLeft or RemoteError."""
        slot = self._launch(service, body, timeout, retries, headers, content_type, wait,
                            _Slot())
        limit = (timeout if timeout is not None
                 else lib.MESH_DEFAULT_CALL_TIMEOUT / 1000) + _MARGIN
        try:
            if not self._drive(lambda: slot.done, limit):
                raise Timeout("%s: no outcome within %ss" % (service, limit))
        except BaseException:
            with self._calls_lock:
                for cid, s in list(self._calls.items()):
                    if s is slot:
                        del self._calls[cid]
            raise
        if slot.exc is not None:
            raise slot.exc
        return slot.reply

    def call_async(self, service: str, body: Union[bytes, str] = b"", *,
                   timeout: Optional[float] = None, retries: Optional[int] = None,
                   headers: Optional[dict] = None, content_type: Optional[str] = None,
                   wait: bool = False) -> CallFuture:
        """Like call() but returns at once with a concurrent.futures.Future
        of the reply (see CallFuture for who completes it)."""
        return self._launch(service, body, timeout, retries, headers, content_type, wait,
                            CallFuture(self))

    def cast(self, service: str, body: Union[bytes, str] = b"", *, all: bool = False,
             headers: Optional[dict] = None, content_type: Optional[str] = None) -> None:
        """Send a request that wants no reply, to one provider (or, with
        all=True, to every provider). Raises NoResponders."""
        self._live()
        b = body_of(body)
        opts, keep = self._opts(None, None, headers, content_type, False)
        check(lib.mesh_cast(self._rr, enc(service, "service"), b, len(b), bool(all), opts))

    def call_all(self, service: str, body: Union[bytes, str] = b"", *,
                 timeout: Optional[float] = None, headers: Optional[dict] = None,
                 content_type: Optional[str] = None) -> Dict[str, Union[Message, errors.Error]]:
        """Call every provider of a service; returns {provider id: reply
        Message, or the Error it gave (Timeout if it did not answer)}.
        Raises NoResponders when nobody offers it."""
        self._live()
        s = enc(service, "service")
        b = body_of(body)
        opts, keep = self._opts(timeout, None, headers, content_type, False)
        gathered = []
        target = self._target(self._token(gathered))
        result = {}

        def gather():
            # in a helper thread: the library call blocks, and this thread
            # must keep running handlers (a local provider among them)
            result["rc"] = lib.pyq_call_all(self._rr, s, b, len(b), opts, target)
            if result["rc"] < 0:
                result["exc"] = errors.last_error()

        helper = threading.Thread(target=gather, daemon=True)
        helper.start()
        self._drive(lambda: not helper.is_alive(), None)
        self._pump(0)      # what the helper's dispatch queued last
        if "exc" in result:
            raise result["exc"]
        out = {}
        for provider, reply, exc in gathered:
            out[provider] = exc if exc is not None else reply
        return out

    def _gathered(self, it):
        reply = message_of(it) if it.msg != ffi.NULL else None
        exc = error_for(it.err, ffi.string(it.error).decode("utf-8", "replace")) \
            if it.err else None
        return (ffi.string(it.provider).decode(), reply, exc)
