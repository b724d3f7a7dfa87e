"""meshbus for asyncio.

>>> async with meshbus.aio.Node("api") as node:
...     reply = await node.call("billing.quote", b"...")
...     async for msg in node.subscribe("orders.#"):
...         ...

The node is driven by the event loop itself: ``loop.add_reader`` on the
node's fd (readable when messages wait) plus a timer for the library's
own timers (deadlines, retries, redelivery), every 20 ms. No thread is
started. Handlers given to ``serve`` and ``work`` may be coroutine
functions; each request or job runs as its own task, and its reply or
ack goes when the task ends. Everything else (``publish``, ``push``,
``peers``...) is the plain :class:`meshbus.Node` method.
"""
import asyncio
import inspect
import logging
from typing import AsyncIterator, Callable, Optional

from ._meshbus import ffi, lib
from . import node as _node
from .errors import Timeout
from .types import Message
from ._reqrep import _Service
from ._pipeline import _Worker, Worker
from ._util import body_of, enc

log = logging.getLogger("meshbus")

_TICK = 0.02        # s between runs of the library's timers


class _Future:
    """Adapts an asyncio future to the binding's outcome slot."""

    __slots__ = ("fut",)

    def __init__(self, fut):
        self.fut = fut

    def set(self, reply, exc):
        if not self.fut.done():
            if exc is None:
                self.fut.set_result(reply)
            else:
                self.fut.set_exception(exc)


class Subscription:
    """``async for msg in sub`` / ``await sub.get(timeout)``; ``close()``."""

    def __init__(self, node: "Node", pattern: str, **opts):
        self._queue = asyncio.Queue()
        self._sub = node._sync.subscribe(pattern, self._queue.put_nowait, **opts)

    async def get(self, timeout: Optional[float] = None) -> Message:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise Timeout("no message within %ss" % timeout) from None

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        return await self._queue.get()

    def close(self) -> None:
        self._sub.close()


class _AioService(_Service):
    def serve(self, msg, reply):
        if not inspect.iscoroutinefunction(self.handler):
            return _Service.serve(self, msg, reply)
        self.node._spawn(self._run((msg, reply)))

    async def _run(self, arg):
        msg, reply = arg
        try:
            result = await self.handler(msg)
        except Exception as exc:
            lib.mesh_node_count(self.node._node, ffi.NULL, b"python.handler-errors", 1)
            if reply != ffi.NULL:
                text = "%s: %s" % (type(exc).__name__, exc)
                lib.pyq_reply(reply, ffi.NULL, 0, ffi.NULL, text.encode("utf-8", "replace"))
            return
        except BaseException:
            self.cancel(arg, b"interrupted")
            raise
        if reply == ffi.NULL:
            return
        ctype = ffi.NULL
        if isinstance(result, tuple):
            result, ctype = result[0], enc(result[1], "content type")
        body = body_of(result)
        lib.pyq_reply(reply, body, len(body), ctype, ffi.NULL)


class _AioWorker(_Worker):
    def __call__(self, job):
        if not inspect.iscoroutinefunction(self.handler):
            return _Worker.__call__(self, job)
        self.node._spawn(self._run(job))

    async def _run(self, job):
        ok = False
        try:
            await self.handler(job)
            ok = True
        except Exception:
            log.exception("meshbus: work handler of %r raised (job %d)", self.queue, job.id)
            lib.mesh_node_count(self.node._node, ffi.NULL, b"python.handler-errors", 1)
        finally:
            lib.mesh_job_done(self.node._pl, job.peer.encode(), job.id, ok)


class _SyncNode(_node.Node):
    """The plain node, with handler runners that may start tasks."""

    def _spawn(self, coro):
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class Node:
    """An asyncio meshbus node: the arguments of :class:`meshbus.Node`."""

    def __init__(self, name: Optional[str] = None, **kwargs):
        self._sync = _SyncNode(name, **kwargs)
        self._sync._tasks = set()
        self._loop = None
        self._timer = None

    def __getattr__(self, name):
        # publish, push, peers, stats, id... as the plain node has them
        return getattr(self._sync, name)

    async def start(self) -> "Node":
        if self._loop is None:
            self._sync.start()
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._sync.fileno(), self._process)
            self._timer = self._loop.call_later(_TICK, self._tick)
        return self

    def _process(self):
        try:
            self._sync._pump(0)
        except Exception:
            log.exception("meshbus: processing failed")

    def _tick(self):
        self._process()
        if self._loop is not None:
            self._timer = self._loop.call_later(_TICK, self._tick)

    async def aclose(self) -> None:
        """Stop reading the node, let running handler tasks finish, close."""
        if self._loop is not None:
            self._loop.remove_reader(self._sync.fileno())
            self._timer.cancel()
            self._loop = None
        if self._sync._tasks:
            await asyncio.gather(*list(self._sync._tasks), return_exceptions=True)
        self._sync.close()

    async def __aenter__(self) -> "Node":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def call(self, service: str, body=b"", **kwargs) -> Message:
        """As :meth:`meshbus.Node.call`, awaited."""
        await self.start()
        fut = self._loop.create_future()
        self._sync._launch(service, body, kwargs.get("timeout"), kwargs.get("retries"),
                           kwargs.get("headers"), kwargs.get("content_type"),
                           kwargs.get("wait", False), _Future(fut))
        self._loop.call_soon(self._process)
        return await fut

    def subscribe(self, pattern: str, **opts) -> Subscription:
        """An async-iterable subscription (options of meshbus.Node.subscribe)."""
        return Subscription(self, pattern, **opts)

    async def serve(self, service: str, handler: Callable) -> None:
        """Offer a service; handler may be a coroutine function."""
        await self.start()
        svc = _AioService(self._sync, service, handler)
        target = self._sync._target(self._sync._token(svc))
        from .errors import check
        check(lib.pyq_serve(self._sync._rr, enc(service, "service"), target))
        self._sync._services[service] = svc     # calls to it from this node: at once

    async def work(self, queue: str, handler: Callable, *, prefetch: int = 1) -> Worker:
        """Work a queue; handler may be a coroutine function (returning acks,
        raising nacks)."""
        await self.start()
        worker = _AioWorker(self._sync, queue, handler)
        target = self._sync._target(self._sync._token(worker))
        from .errors import check
        check(lib.pyq_work(self._sync._pl, enc(queue, "queue"), int(prefetch), target))
        return Worker(self._sync, queue)

    async def _until(self, predicate, timeout, what):
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate():
            if deadline is not None and loop.time() >= deadline:
                raise Timeout("%s after %ss" % (what, timeout))
            await asyncio.sleep(_TICK)

    async def wait_peers(self, n: int = 1, timeout: Optional[float] = None):
        await self.start()
        await self._until(lambda: lib.mesh_node_peer_count(self._sync._node) >= n, timeout,
                          "fewer than %d peers" % n)
        return self._sync.peers()

    async def wait_providers(self, service: str, n: int = 1, timeout: Optional[float] = None):
        await self.start()
        await self._until(lambda: self._sync.providers(service) >= n, timeout,
                          "fewer than %d providers of %r" % (n, service))

    async def wait_subscribers(self, subject: str, n: int = 1,
                               timeout: Optional[float] = None):
        await self.start()
        await self._until(lambda: self._sync.subscribers(subject) >= n, timeout,
                          "fewer than %d subscribers of %r" % (n, subject))
