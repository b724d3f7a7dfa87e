"""Waiting across real threads and eventlet green threads.

Why this exists: OpenStack services (and oslo.messaging's own test suite)
run under eventlet.monkey_patch(): ``threading`` makes green threads that
all share one OS thread. A blocking C call there (mesh_node_dispatch, a
call waiting for its reply) would freeze every green thread of the
process, the RPC server that must answer included. So the driver keeps
every blocking meshbus call in one real OS thread per node (the engine,
_engine.py) and the application's threads, green or real, only hand it
work and wait for outcomes with the primitives below:

- a real thread waits on an unpatched threading.Event;
- a green thread waits on an eventlet Event, which a green "bridge" in
  the main OS thread's hub fires when a real thread posts to it through
  an eventfd (the way eventlet.tpool wakes its callers).

Without eventlet, or when it did not patch threading, everything is
plain threading.
"""
import collections
import os
import sys
import time

_eventlet = None
if "eventlet" in sys.modules:
    try:
        import eventlet.patcher
        if eventlet.patcher.is_monkey_patched("thread"):
            _eventlet = eventlet
    except ImportError:         # pragma: no cover - eventlet half installed
        _eventlet = None

if _eventlet is not None:
    threading = _eventlet.patcher.original("threading")
    select = _eventlet.patcher.original("select")
    monotonic = _eventlet.patcher.original("time").monotonic
else:
    import select
    import threading
    monotonic = time.monotonic


def green() -> bool:
    """True when the calling thread is a green thread of the main hub: its
    waits must yield to eventlet instead of blocking the OS thread."""
    return _eventlet is not None and threading.current_thread() is threading.main_thread()


class _Bridge:
    """Fires eventlet Events of the main hub from any OS thread."""

    def __init__(self):
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._lock = threading.Lock()
        self._ready = []
        _eventlet.spawn_n(self._reader)

    def _reader(self):
        from eventlet import hubs
        while True:
            hubs.trampoline(self._fd, read=True)
            try:
                os.eventfd_read(self._fd)
            except BlockingIOError:
                pass
            with self._lock:
                ready, self._ready = self._ready, []
            for event, value in ready:
                if not event.ready():
                    event.send(value)

    def fire(self, event, value) -> None:
        with self._lock:
            self._ready.append((event, value))
        os.eventfd_write(self._fd, 1)


_bridge = None
_bridge_lock = threading.Lock()


def _get_bridge() -> _Bridge:
    global _bridge
    with _bridge_lock:
        if _bridge is None:
            _bridge = _Bridge()
        return _bridge


class Waiter:
    """A one-shot outcome: set(value) from any thread, wait(timeout) in the
    thread that made the waiter. wait returns (True, value) or (False, None)
    at the timeout."""

    __slots__ = ("_event", "_value", "_green")

    def __init__(self):
        self._green = green()
        if self._green:
            from eventlet import event
            _get_bridge()
            self._event = event.Event()
        else:
            self._event = threading.Event()
        self._value = None

    def set(self, value=None) -> None:
        if self._green:
            _get_bridge().fire(self._event, (value,))
        else:
            self._value = value
            self._event.set()

    def wait(self, timeout=None):
        if self._green:
            # the bridge sends (value,): a bare None is eventlet's timeout
            boxed = self._event.wait(None if timeout is None else max(0.0, timeout))
            if boxed is None:
                return False, None
            return True, boxed[0]
        if self._event.wait(timeout):
            return True, self._value
        return False, None


class XQueue:
    """A queue filled by the engine thread and read by one consumer thread
    (an oslo listener's poll loop), green or real. Unbounded: what fills it
    is bounded upstream (requests by callers' deadlines, jobs by prefetch)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = collections.deque()
        self._waiter = None
        self._closed = False

    def put(self, item) -> None:
        with self._lock:
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.set(True)

    def get(self, timeout=None):
        """The next item, or None at the timeout or once closed and empty."""
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                if self._closed:
                    return None
                waiter = self._waiter = Waiter()
            left = None if deadline is None else deadline - monotonic()
            if left is not None and left <= 0:
                return None
            waiter.wait(left)

    def drain(self) -> list:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items

    def close(self) -> None:
        """Wake the consumer; get() returns None once the queue is empty."""
        with self._lock:
            self._closed = True
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.set(False)


def sleep(seconds: float) -> None:
    """Sleep without freezing green threads (time.sleep is green when
    eventlet patched it, and real otherwise)."""
    time.sleep(seconds)
