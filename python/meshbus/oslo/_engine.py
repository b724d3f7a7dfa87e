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

Deferred answers: meshbus.Node.serve() and work() run a handler and
answer (reply, ack) when it returns. An oslo server answers later, from
its executor, and a batch notification listener acks after the batch.
The binding has no public way to defer (see the closing note of issue
16: ``serve(..., defer=True)`` and ``work(..., manual_ack=True)`` would
remove this), so _serve and _work below register with the binding's glue
(pyq_serve, pyq_work) as its own serve/work do, keep the reply handle or
the job's (producer, id), and answer through the library later. Every
handle is answered exactly once, before the node is closed.
"""
import collections
import logging
import os

import meshbus
from meshbus._meshbus import ffi, lib
from meshbus.errors import check

from . import _green
from ._green import Waiter, monotonic, threading

LOG = logging.getLogger(__name__)

_TICK = 0.02        # s: longest wait in dispatch before commands are run


class _Deferred:
    """Target of the binding's glue for a served service: keeps the reply
    handle and passes the request on."""

    def __init__(self, engine, service: str, dispatch):
        self.engine = engine
        self.service = service
        self.dispatch = dispatch

    def __call__(self, arg) -> None:
        msg, reply = arg
        if reply != ffi.NULL:
            with self.engine._answer_lock:
                self.engine._replies.add(reply)
        try:
            self.dispatch(msg, reply if reply != ffi.NULL else None)
        except Exception:
            LOG.exception("meshbus: dispatching a request of %s failed", self.service)
            if reply != ffi.NULL:
                self.engine.reply(reply, None, error="dispatch failed")

    def cancel(self, arg, why: bytes = b"server closing") -> None:
        msg, reply = arg
        if reply != ffi.NULL:
            lib.pyq_reply(reply, ffi.NULL, 0, ffi.NULL, why)


class _DeferredJob:
    """Target of the binding's glue for a worked queue: holds the job."""

    def __init__(self, engine, queue: str, dispatch):
        self.engine = engine
        self.queue = queue
        self.dispatch = dispatch

    def __call__(self, job) -> None:
        key = (job.peer, job.id)
        with self.engine._answer_lock:
            self.engine._jobs.add(key)
        try:
            self.dispatch(job)
        except Exception:
            LOG.exception("meshbus: dispatching a job of %s failed", self.queue)
            self.engine.job_done(job.peer, job.id, False)

    def cancel(self, job) -> None:
        lib.mesh_job_done(self.engine.node._pl, job.peer.encode(), job.id, False)


class _Slot:
    """Where the binding puts a call's outcome (its _Slot protocol)."""

    __slots__ = ("waiter",)

    def __init__(self, waiter: Waiter):
        self.waiter = waiter

    def set(self, reply, exc) -> None:
        self.waiter.set((reply, exc))


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
        # Calls are launched from the caller's thread (see call()) and
        # completed in this engine's thread, both under this lock of the
        # binding: under eventlet the binding made it a green lock, which
        # two OS threads must never contend for; a real one is safe.
        self.node._calls_lock = threading.Lock()
        self._cmds = collections.deque()
        self._stopping = False
        # guards the reply handles and held jobs against the node's close
        self._answer_lock = threading.Lock()
        self._replies = set()
        self._jobs = set()
        self._open = True
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
        # every reply handle and held job is answered before the node goes
        with self._answer_lock:
            self._open = False
            replies, self._replies = self._replies, set()
            jobs, self._jobs = self._jobs, set()
        for reply in replies:
            lib.pyq_reply(reply, ffi.NULL, 0, ffi.NULL, b"server closing")
        for producer, job_id in jobs:
            lib.mesh_job_done(self.node._pl, producer.encode(), job_id, False)
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

    def call(self, service: str, body: bytes, timeout: float, wait: bool, waiter: Waiter):
        """Launch a call from the caller's thread (the library is thread
        safe): waiter gets (reply, None) or (None, meshbus.Error) from the
        engine thread. No retry on another provider after a timeout (that
        could run a request twice); a provider that leaves ends the call
        with ProviderLeft. Raises at once what fails at once."""
        self.node._launch(service, body, timeout, 0, None, None, wait, _Slot(waiter))
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
        """Offer service; dispatch(msg, reply_handle_or_None) runs in the
        engine thread for each request. Engine thread only."""
        node = self.node
        target = node._target(node._token(_Deferred(self, service, dispatch)))
        check(lib.pyq_serve(node._rr, service.encode(), target))

    def unserve(self, service: str) -> None:
        check(lib.mesh_unserve(self.node._rr, service.encode()))

    def work(self, queue: str, prefetch: int, dispatch) -> None:
        """Work queue; dispatch(job) runs in the engine thread for each
        job, which stays held until job_done(). Engine thread only."""
        node = self.node
        target = node._target(node._token(_DeferredJob(self, queue, dispatch)))
        check(lib.pyq_work(node._pl, queue.encode(), int(prefetch), target))

    def unwork(self, queue: str) -> None:
        check(lib.mesh_unwork(self.node._pl, queue.encode()))

    def reply(self, handle, body, error=None) -> bool:
        """Answer a request (any thread); False if it was answered already
        or the node closed meanwhile."""
        with self._answer_lock:
            if not self._open or handle not in self._replies:
                return False
            self._replies.discard(handle)
            if error is not None:
                lib.pyq_reply(handle, ffi.NULL, 0, ffi.NULL, error.encode("utf-8", "replace"))
            else:
                lib.pyq_reply(handle, body, len(body), ffi.NULL, ffi.NULL)
        self.wake()
        return True

    def job_done(self, producer: str, job_id: int, ok: bool) -> bool:
        """Ack (ok) or nack a held job (any thread)."""
        key = (producer, job_id)
        with self._answer_lock:
            if not self._open or key not in self._jobs:
                return False
            self._jobs.discard(key)
            lib.mesh_job_done(self.node._pl, producer.encode(), job_id, bool(ok))
        return True
