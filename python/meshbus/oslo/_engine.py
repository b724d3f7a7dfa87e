"""The engine: one meshbus Node per oslo transport, driven by one real
OS thread.

Every binding call that waits, and every binding call that touches the
binding's own Python locks, runs in the engine thread; the application's
threads (green under eventlet, see _green.py) hand it closures with
submit() and wait with a _green.Waiter. Handlers of requests and jobs run
here too and only queue what came for a listener (an XQueue), so a slow
oslo endpoint never holds the node.

Most data-path calls are made from the caller's thread directly, because
the library is thread safe and the binding's wrapper takes no lock for
them (cast, push, pending, launching a call; the deferred reply and
job_done below go straight to the C library): a thread hop per message
would cost more than the message. The engine thread blocks in
mesh_node_dispatch, which sees the inbox at once, and runs the rare
commands (listen, stop listening, close) between rounds.

Deferred answers: an oslo server answers a request later, from its
executor, and a batch notification listener acks after the batch. The
engine serves with ``serve(..., defer=True)`` and works with
``work(..., manual_ack=True)``: the handle of a request is its
meshbus.Request (``reply``/``fail``), of a job its meshbus.Job
(``ack``/``nack``), answered from any thread; the binding answers what
is still held when the node closes. Calls are launched with
``call_async(..., callback=)``, whose callback runs in the engine thread.
"""
import collections
import itertools
import logging
import os

import meshbus

from . import _green
from ._green import Waiter, monotonic, threading

LOG = logging.getLogger(__name__)

_TICK = 0.02        # s: longest wait in dispatch before commands are run


class _Deferred:
    """The handler of a served service: passes each request on with its
    handle (the request itself, None for a cast)."""

    def __init__(self, engine, service: str, dispatch):
        self.engine = engine
        self.service = service
        self.dispatch = dispatch

    def __call__(self, req: meshbus.Request) -> None:
        try:
            self.dispatch(req, req if req.wants_reply else None)
        except Exception:
            LOG.exception("meshbus: dispatching a request of %s failed", self.service)
            req.fail("dispatch failed")


class _DeferredJob:
    """The handler of a worked queue: passes each job on (held until
    job_done)."""

    def __init__(self, engine, queue: str, dispatch):
        self.engine = engine
        self.queue = queue
        self.dispatch = dispatch

    def __call__(self, job: meshbus.Job) -> None:
        try:
            self.dispatch(job)
        except Exception:
            LOG.exception("meshbus: dispatching a job of %s failed", self.queue)
            job.nack()


_engines = {}
_engines_lock = threading.Lock()


def acquire(name: str, node_options: dict) -> "Engine":
    """The engine of this process for these node options, started on first
    use. Transports of one process share one node: a node per transport
    made N nodes in a process hold N*N links (a test process with dozens
    of transports ran out of file descriptors), and a request between two
    transports of one process then never leaves it."""
    key = repr(sorted(node_options.items()))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None or engine._stopping:
            engine = _engines[key] = Engine(name, node_options)
            engine._key = key
        engine.users += 1
    # outside the lock: a green thread must not hold a real lock while it
    # yields to the hub
    try:
        engine.wait_started()
    except BaseException:
        release(engine)
        raise
    return engine


def release(engine: "Engine") -> None:
    """One transport less; the last one stops the engine and its node."""
    with _engines_lock:
        engine.users -= 1
        if engine.users > 0:
            return
        if _engines.get(engine._key) is engine:
            del _engines[engine._key]
    engine.stop()


class Engine:
    """A started meshbus Node and the real thread that drives it."""

    def __init__(self, name: str, node_options: dict):
        self.users = 0
        self._key = None
        # shared by the transports of the node (engine thread only):
        # service or queue -> its local listeners (driver._Local)
        self.local = {}
        # (exchange, topic) -> names of the notification pools heard of
        self.pools = {}
        self.pools_lock = threading.Lock()
        self.node = meshbus.Node(name, **node_options)
        self._keys = {}                 # key of a call in flight -> its Waiter
        self._next_key = itertools.count(1)     # next() is atomic in CPython
        self._cmds = collections.deque()
        self._stopping = False
        self._workers = {}              # queue -> meshbus.Worker (engine thread)
        self.started_at = monotonic()
        self._started = threading.Event()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name="meshbus-oslo-" + name,
                                        daemon=True)
        self._thread.start()

    def wait_started(self) -> None:
        """Wait (green or real) until the node runs; raise why it did not."""
        deadline = monotonic() + 30
        while not self._started.is_set():
            if monotonic() > deadline:
                raise meshbus.Error("the meshbus node did not start within 30 s")
            _green.sleep(0.002)
        if self._start_error is not None:
            raise self._start_error

    # ------------------------------------------------------------------
    # The thread

    def _run(self) -> None:
        try:
            self.node.start()
            self._fd = self.node.fileno()
            self.started_at = monotonic()
        except BaseException as exc:       # reported by wait_started
            self._start_error = exc
            self._stopping = True
            return
        finally:
            self._started.set()
        node = self.node
        while not self._stopping:
            self._run_commands()
            try:
                # waits in mesh_node_dispatch, which sees the inbox at once
                node.process(_TICK)
            except meshbus.Closed:
                break
            except Exception:
                LOG.exception("meshbus: engine round failed")
        self._run_commands()
        self._close_node()

    def _run_commands(self) -> None:
        cmds = self._cmds
        while cmds:
            fn = cmds.popleft()
            try:
                fn()
            except Exception:
                LOG.exception("meshbus: engine command failed")

    def _close_node(self) -> None:
        # the binding answers every request and job still held ("server
        # closing", given back) before the node goes
        try:
            self.node.close()
        except Exception:
            LOG.exception("meshbus: closing the node failed")

    # ------------------------------------------------------------------
    # Handing work to the thread

    def submit(self, fn) -> None:
        """Run fn() in the engine thread soon."""
        self._cmds.append(fn)
        self.wake()

    def run(self, fn, timeout=None):
        """Run fn() in the engine thread; return its result or raise what
        it raised. Raises meshbus.Timeout if the engine did not get to it."""
        waiter = Waiter()

        def cmd():
            try:
                waiter.set((True, fn()))
            except BaseException as exc:
                waiter.set((False, exc))

        self.submit(cmd)
        ok, outcome = waiter.wait(timeout)
        if not ok:
            raise meshbus.Timeout("the meshbus engine did not answer in %ss" % timeout)
        good, value = outcome
        if not good:
            raise value
        return value

    def new_key(self, waiter: Waiter) -> int:
        """A key for a call's request (the server echoes it in its reply,
        driver.py); forget() it when the call is over."""
        key = next(self._next_key)
        self._keys[key] = waiter
        return key

    def forget(self, key: int) -> None:
        self._keys.pop(key, None)

    def call(self, service: str, body: bytes, timeout: float, wait: bool, waiter: Waiter,
             key: int):
        """Launch a call from the caller's thread (call_async takes no lock
        a green thread could hold): waiter gets (reply, None) or (None,
        meshbus.Error) from the engine thread. No retry on another provider
        after a timeout (that could run a request twice); a provider that
        leaves ends the call with ProviderLeft. Raises at once what fails
        at once."""
        def outcome(reply, exc):
            self.forget(key)
            waiter.set((reply, exc))
        try:
            self.node.call_async(service, body, timeout=timeout, retries=0, wait=wait,
                                 callback=outcome)
        except BaseException:
            self.forget(key)
            raise
        self.wake()

    def wake(self) -> None:
        """Make the engine's dispatch look at the node now. The library
        does not signal a dispatcher when another thread queues a request
        for a provider of the same node, or answers one; its fd (an
        eventfd that dispatch polls) does."""
        try:
            os.eventfd_write(self._fd, 1)
        except OSError:
            pass        # closed: nothing to wake

    def stop(self, timeout: float = 10.0) -> None:
        """Close the node (answering what is held) and end the thread."""
        if self._stopping:
            return
        self._stopping = True
        if threading.current_thread() is not self._thread:
            # a green caller must not block its hub: poll the join
            deadline = monotonic() + timeout
            while self._thread.is_alive() and monotonic() < deadline:
                _green.sleep(0.01)

    # ------------------------------------------------------------------
    # Deferred serve / work (engine thread), answers (any thread)

    def serve(self, service: str, dispatch) -> None:
        """Offer service; dispatch(request, handle_or_None) runs in the
        engine thread for each request (handle: the meshbus.Request to
        answer with reply(), None for a cast). Engine thread only."""
        self.node.serve(service, _Deferred(self, service, dispatch), defer=True)

    def unserve(self, service: str) -> None:
        self.node.unserve(service)

    def work(self, queue: str, prefetch: int, dispatch) -> None:
        """Work queue; dispatch(job) runs in the engine thread for each
        job (a meshbus.Job), which stays held until job_done(). Engine
        thread only."""
        self._workers[queue] = self.node.work(queue, _DeferredJob(self, queue, dispatch),
                                              prefetch=int(prefetch), manual_ack=True)

    def unwork(self, queue: str) -> None:
        worker = self._workers.pop(queue, None)
        if worker is not None:
            worker.close()

    def reply(self, handle: meshbus.Request, body, error=None) -> bool:
        """Answer a request (any thread); False if it was answered already
        or the node closed meanwhile."""
        if error is not None:
            done = handle.fail(error)
        else:
            done = handle.reply(body)
        self.wake()
        return done

    def job_done(self, job: meshbus.Job, ok: bool) -> bool:
        """Ack (ok) or nack a held job (any thread); False if it was
        finished already or the node closed meanwhile."""
        return job.ack() if ok else job.nack()
