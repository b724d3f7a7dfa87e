"""The threading primitives behind the binding's own locks.

Why: eventlet.monkey_patch() turns threading.Lock into a green lock that
only green threads of one OS thread may share. The binding's locks are
taken by OS threads (a thread driving the node, an oslo engine thread, a
C call's helper) as well as by the application's green threads; an OS
thread blocking on a green lock held by a green thread of another OS
thread never wakes. So when eventlet has patched threading, the binding
takes its locks from the real module (eventlet.patcher.original). The
thread-local state stays green: green threads are the application's
threads there.
"""
import sys
import threading as _threading


def real():
    """The unpatched threading module (threading itself unless eventlet
    monkey-patched it). Looked up when a Node is made, so that a patch
    applied after ``import meshbus`` is seen."""
    if "eventlet" in sys.modules:
        try:
            import eventlet.patcher
            if eventlet.patcher.is_monkey_patched("thread"):
                return eventlet.patcher.original("threading")
        except ImportError:     # pragma: no cover - eventlet half installed
            pass
    return _threading
