"""Request-reply: Node.serve, call, call_async, cast, call_all."""
import concurrent.futures
import logging
from typing import Callable, Dict, Optional, Union

from ._meshbus import ffi, lib
from . import errors
from .errors import Closed, Timeout, check, error_for
from .types import Message, message_of
from ._util import Headers, body_of, enc

log = logging.getLogger("meshbus")

_MARGIN = 2.0       # s past a call's deadline before the binding gives up on its outcome
_DEFAULT_TIMEOUT = lib.MESH_DEFAULT_CALL_TIMEOUT / 1000
_SLICE_MS = 100     # longest wait in C at once (Ctrl-C), as node._SLICE_MS
_call_wait = lib.pyq_call_wait
_reply = lib.pyq_reply
_NULL = ffi.NULL


class _Service:
    """Runs a serve handler for one queued request and sends its reply."""

    def __init__(self, node, name: str, handler: Callable):
        self.node = node
        self.name = name
        self.handler = handler

    def __call__(self, arg) -> None:
        # a request queued in the node's backlog
        self.serve(*arg)

    def serve(self, msg: Message, reply) -> None:
        """Run the handler for msg and send its reply (reply NULL: a cast)."""
        try:
            result = self.handler(msg)
        except Exception as exc:
            # the text travels as the caller's RemoteError
            log.debug("meshbus: handler of %r raised", self.name, exc_info=True)
            lib.mesh_node_count(self.node._node, ffi.NULL, b"python.handler-errors", 1)
            if reply != _NULL:
                text = "%s: %s" % (type(exc).__name__, exc)
                lib.pyq_reply(reply, _NULL, 0, _NULL, text.encode("utf-8", "replace"))
            return
        except BaseException:
            self.cancel((msg, reply), b"interrupted")
            raise
        if type(result) is bytes and reply != _NULL:
            _reply(reply, result, len(result), _NULL, _NULL)
            return
        if reply == _NULL:
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


def _outcome_of(it, prev):
    """(reply Message or None, exception or None) of an outcome item."""
    reply = message_of(it, prev) if it.msg != ffi.NULL else None
    exc = None
    if it.err:
        exc = error_for(it.err, ffi.string(it.error).decode("utf-8", "replace")
                        if it.error != ffi.NULL else "")
    return reply, exc


def _copy_message(cls, msg: Message):
    """msg's fields in a new object of a Message subclass."""
    m = cls.__new__(cls)
    for name in Message.__slots__:
        setattr(m, name, getattr(msg, name))
    return m


class Request(Message):
    """A request handed to a ``serve(..., defer=True)`` handler, to answer
    later, from any thread: ``reply(body)`` or ``fail(text)``. The first
    answer counts; later ones return False. A cast (``wants_reply`` is
    False) needs no answer. Requests still unanswered when the node
    closes are answered "server closing" (the caller's RemoteError)."""

    __slots__ = ("_node", "_handle", "_wants")

    @property
    def wants_reply(self) -> bool:
        """False for a cast: nobody waits for an answer."""
        return self._wants

    @property
    def answered(self) -> bool:
        """True once reply() or fail() was called (or the node closed)."""
        return self._handle is None

    def reply(self, body: Union[bytes, str, None] = b"",
              content_type: Optional[str] = None) -> bool:
        """Send the reply (bytes; a str goes as UTF-8). Any thread. Returns
        False if the request was answered already, is a cast, or the
        node closed meanwhile."""
        b = body_of(body)
        ctype = enc(content_type, "content type") if content_type else ffi.NULL
        return self._answer(b, ctype, ffi.NULL)

    def fail(self, text: str) -> bool:
        """Fail the request: the caller gets RemoteError(text). Any thread.
        Returns False as reply() does."""
        return self._answer(b"", ffi.NULL, str(text).encode("utf-8", "replace") or b"failed")

    def _answer(self, body, ctype, error) -> bool:
        node = self._node
        with node._answer_lock:
            handle = self._handle
            if handle is None:
                return False
            self._handle = None
            node._held.discard(self)
            lib.pyq_reply(handle, body, len(body), ctype, error)
        return True

    def _abandon(self) -> None:
        # the node closes (answer lock held): the caller must not wait
        handle, self._handle = self._handle, None
        if handle is not None:
            lib.pyq_reply(handle, ffi.NULL, 0, ffi.NULL, b"server closing")


class _DeferredService(_Service):
    """Hands each request to its handler as a Request answered later."""

    def serve(self, msg: Message, reply) -> None:
        req = _copy_message(Request, msg)
        req._node = self.node
        req._wants = reply != ffi.NULL
        req._handle = reply if req._wants else None
        if req._wants:
            self.node._hold(req)
        try:
            self.handler(req)
        except Exception as exc:
            log.debug("meshbus: handler of %r raised", self.name, exc_info=True)
            lib.mesh_node_count(self.node._node, ffi.NULL, b"python.handler-errors", 1)
            req.fail("%s: %s" % (type(exc).__name__, exc))
        except BaseException:
            req.fail("interrupted")
            raise


class _CallbackSlot:
    """The outcome of call_async(..., callback=fn): fn(reply, exc) runs in
    the thread that drives the node, after the round that brought it."""

    __slots__ = ("node", "callback", "service")

    def __init__(self, node, callback, service):
        self.node = node
        self.callback = callback
        self.service = service

    def set(self, reply, exc) -> None:
        self.node._backlog.append((self._run, (reply, exc)))

    def _run(self, outcome) -> None:
        try:
            self.callback(*outcome)
        except Exception:
            log.exception("meshbus: callback of a call to %r raised", self.service)
            lib.mesh_node_count(self.node._node, ffi.NULL, b"python.handler-errors", 1)


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

    def is_done(self):
        return self.done


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
        self._calls_lock = self._real_threading.Lock()
        self._services = {}
        self._opts_cache = {}       # (timeout, retries, wait) -> mesh_call_opts_t
        self._names = {}            # service or subject str -> its UTF-8 bytes
        self._sync_item = ffi.new("pyq_item_t *")   # pump lock held: call()
        self._sync_id = ffi.new("uint64_t *")

    def serve(self, service: str, handler: Callable[[Message], Union[bytes, str, None]], *,
              defer: bool = False) -> None:
        """Offer a service. ``handler(request)`` returns the reply: bytes, a
        str (sent as UTF-8), None (empty), or (body, content_type); an
        exception it raises is the caller's RemoteError, with its text.
        The handler runs in the thread that drives the node.

        ``defer=True``: the handler gets a :class:`Request` and answers it
        when it likes, from any thread, with ``request.reply(body)`` or
        ``request.fail(text)`` (its return value is ignored; an exception
        it raises before answering fails the request). The caller's
        deadline still applies."""
        self._live()
        if not callable(handler):
            raise TypeError("handler must be callable")
        svc = (_DeferredService if defer else _Service)(self, service, handler)
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

    def _call_opts(self, timeout, retries, headers, content_type, wait):
        # the options of a call without headers are made once and kept:
        # the library only reads them
        if headers or content_type:
            return self._opts(timeout, retries, headers, content_type, wait)
        key = (timeout, retries, bool(wait))
        opts = self._opts_cache.get(key)
        if opts is None:
            opts, keep = self._opts(timeout, retries, None, None, wait)
            if len(self._opts_cache) < 64:
                self._opts_cache[key] = opts
        return opts, None

    def _prepare(self, service, body, timeout, retries, headers, content_type, wait):
        # what a call gives the library: service and body as bytes, options
        if not self._started or self._closed:
            self._live()
        s = self._names.get(service)
        if s is None:
            s = enc(service, "service")
            if len(self._names) < 1024:
                self._names[service] = s
        b = body if type(body) is bytes else body_of(body)
        opts, keep = self._call_opts(timeout, retries, headers, content_type, wait)
        return s, b, opts, keep

    def _register(self, call_id, slot):
        # the outcome goes to slot, whether it came already or not
        with self._calls_lock:
            early = self._early.pop(call_id, None)
            if early is None:
                self._calls[call_id] = slot
        if early is not None:
            slot.set(*early)

    def _launch(self, service, body, timeout, retries, headers, content_type, wait, slot):
        """Launch an asynchronous call whose outcome goes to slot.set(reply,
        exc) in the thread that drives the node. Raises at once what fails
        at once."""
        s, b, opts, keep = self._prepare(service, body, timeout, retries, headers,
                                         content_type, wait)
        call_id = lib.pyq_call_async(self._rr, s, b, len(b), opts, self._q,
                                     bool(self._services))
        if call_id == 0:
            raise errors.last_error()
        self._register(call_id, slot)
        return slot

    def _outcome(self, it, prev=None):
        # with the pump lock held (see Node._route); returns the reply
        reply, exc = _outcome_of(it, prev)
        with self._calls_lock:
            slot = self._calls.pop(it.id, None)
            if slot is None:
                self._early[it.id] = (reply, exc)
                return reply
        slot.set(reply, exc)
        return reply

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
        # As little Python as can be between the caller and the library:
        # on 2 cores the caller's CPU is taken from the I/O threads of the
        # round trip. Names and options come from their caches.
        if headers is None and content_type is None and type(body) is bytes:
            s = self._names.get(service)
            opts = self._opts_cache.get((timeout, retries, wait))
            if s is None or opts is None or not self._started:
                s, body, opts, keep = self._prepare(service, body, timeout, retries, None,
                                                    None, wait)
        else:
            s, body, opts, keep = self._prepare(service, body, timeout, retries, headers,
                                                content_type, wait)
        lock = self._pump_lock
        if not self._backlog and lock.acquire(False):
            # this thread may dispatch: one crossing launches the call and
            # waits for its outcome in C (pyq_call_wait), the GIL released
            try:
                if self._closed:
                    raise Closed("node is closed")
                it = self._sync_item
                # a node that serves may be calling itself: the glue then
                # serves the request at once (else at the library's timer)
                rc = _call_wait(self._node, self._rr, self._q, s, body, len(body), opts,
                                _SLICE_MS, it, self._sync_id, bool(self._services))
                if rc == 1:
                    # the reply, marked against the last drained message
                    # as _route's (the next pyq_call_wait frees the item)
                    try:
                        reply = message_of(it, self._last)
                    except BaseException:
                        self._last = None
                        raise
                    self._last = reply
                    return reply
                if rc == 2:
                    # a failure (the item may carry a reply all the same)
                    prev = self._last
                    self._last = None
                    reply, exc = _outcome_of(it, prev)
                    self._last = reply or prev
                    raise exc
                if rc < 0:
                    raise errors.last_error()
                # not yet (a handler or a message came first, or the slice
                # ended): the outcome comes through the queue
                slot = _Slot()
                self._register(self._sync_id[0], slot)
            finally:
                lock.release()
                if self._waiters:
                    with self._cond:
                        self._cond.notify_all()
        else:
            # another thread dispatches: launch, and wait for its round
            call_id = lib.pyq_call_async(self._rr, s, body, len(body), opts, self._q,
                                         bool(self._services))
            if call_id == 0:
                raise errors.last_error()
            slot = _Slot()
            self._register(call_id, slot)
        limit = (timeout if timeout is not None else _DEFAULT_TIMEOUT) + _MARGIN
        try:
            if not slot.done and not self._drive(slot.is_done, limit):
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
                   wait: bool = False,
                   callback: Optional[Callable[[Optional[Message], Optional[BaseException]],
                                               None]] = None) -> Optional[CallFuture]:
        """Like call() but returns at once with a concurrent.futures.Future
        of the reply (see CallFuture for who completes it).

        With ``callback``, no Future: ``callback(reply, exc)`` runs once, in
        the thread that drives the node (reply a Message and exc None, or
        reply None and exc the meshbus.Error call() would raise), and
        call_async returns None. Any thread may launch; what fails at
        once (NoResponders, a bad argument) is raised here, not given to
        the callback."""
        if callback is None:
            return self._launch(service, body, timeout, retries, headers, content_type, wait,
                                CallFuture(self))
        if not callable(callback):
            raise TypeError("callback must be callable")
        self._launch(service, body, timeout, retries, headers, content_type, wait,
                     _CallbackSlot(self, callback, service))
        return None

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

        # a real OS thread even under eventlet: it blocks in C
        helper = self._real_threading.Thread(target=gather, daemon=True)
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
