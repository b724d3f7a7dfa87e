"""meshbus.Node: one member of the mesh, and how Python drives it.

Threading model (docs/python.md has the long version). The library runs
its handlers inside mesh_node_dispatch(); the binding's handlers there
(_glue.c) only queue what came. A Python thread that *drives* the node
calls mesh_node_dispatch() with the GIL released, drains that queue and
then runs the Python handlers itself, outside any library code. Threads
drive the node whenever they wait on it: ``run()``, iterating a
subscription, ``call()``, ``wait_peers()``, ``events()``, ``flush()``,
``Future.result()``. One thread at a time dispatches (the pump lock);
others waiting meanwhile sleep on a condition and are woken after each
round, so a call made in one thread is completed by a ``run()`` in
another. Waits are cut in slices of at most 100 ms so that Ctrl-C
(KeyboardInterrupt) interrupts any blocking call.
"""
import collections
import json
import logging
import os
import threading
import time
from typing import Callable, Dict, Iterable, Iterator, List, Optional

from ._meshbus import ffi, lib
from . import _threads, errors
from .errors import Closed, Timeout, check
from .types import Event, Peer, event_of, message_of
from ._pubsub import PubSubMixin
from ._reqrep import ReqRepMixin
from ._pipeline import PipelineMixin
from ._util import enc

log = logging.getLogger("meshbus")

_SLICE_MS = 100         # longest wait in C, so that Ctrl-C is seen
_BATCH = 256            # queued items drained per crossing
_STATES = {1: "CONNECTING", 2: "ALIVE", 3: "SUSPECT"}
_MSG, _REQ, _JOB = lib.PYQ_MSG, lib.PYQ_REQ, lib.PYQ_JOB
_OUTCOME, _GATHER = lib.PYQ_OUTCOME, lib.PYQ_GATHER
_ECLOSED = lib.MESH_ECLOSED
_monotonic = time.monotonic
_dispatch = lib.pyq_dispatch


class Node(PubSubMixin, ReqRepMixin, PipelineMixin):
    """A meshbus node: finds its peers (beacon on loopback by default,
    seeds, gossip) and talks to them directly. No broker.

    >>> with meshbus.Node("billing") as node:
    ...     node.publish("orders.eu.created", b"{...}")

    Arguments (all optional): ``name`` (default: the start of the id);
    ``cluster``: only nodes of the same cluster see each other; ``iface``:
    beacon interfaces ("lo", the default, or "eth0,eth1"); ``port``: the
    beacon's UDP port; ``seeds``: endpoints "tcp://host:port" to join
    without broadcast; ``curve``: a key file from :func:`meshbus.keygen`
    (CURVE on every link); ``trust``: a directory of trusted ``*.pub``
    keys; ``secret``: a cluster secret file (or ``bytes``); ``headers``: a
    dict of str announced to peers; ``bind``: "host" or "host:port" of the
    inbox; ``node_id``: 32 hex chars instead of a random id;
    ``suspect``/``gone``: liveness timeouts in seconds; ``hwm``: messages
    queued per link. Arguments left out are read from the environment as
    the meshbus tool reads its flags: MESHBUS_CLUSTER, MESHBUS_IFACE,
    MESHBUS_PORT, MESHBUS_SEED (several: comma-separated), MESHBUS_CURVE,
    MESHBUS_TRUST, MESHBUS_SECRET.

    The node starts on ``start()``, on entering ``with``, or on first use.
    """

    def __init__(self, name: Optional[str] = None, *, cluster: Optional[str] = None,
                 iface: Optional[str] = None, port: Optional[int] = None,
                 seeds: Iterable[str] = (), curve: Optional[str] = None,
                 trust: Optional[str] = None, secret=None,
                 headers: Optional[Dict[str, str]] = None, bind: Optional[str] = None,
                 node_id: Optional[str] = None, suspect: Optional[float] = None,
                 gone: Optional[float] = None, hwm: Optional[int] = None):
        self._node = ffi.NULL
        self._q = ffi.NULL
        env = os.environ.get
        cluster = cluster if cluster is not None else env("MESHBUS_CLUSTER")
        iface = iface if iface is not None else env("MESHBUS_IFACE")
        port = port if port is not None else env("MESHBUS_PORT")
        if not seeds and env("MESHBUS_SEED"):
            seeds = env("MESHBUS_SEED").replace(",", " ").split()
        curve = curve if curve is not None else env("MESHBUS_CURVE")
        trust = trust if trust is not None else env("MESHBUS_TRUST")
        secret = secret if secret is not None else env("MESHBUS_SECRET")
        node = lib.mesh_node_new(enc(name, "name") if name is not None else ffi.NULL)
        if node == ffi.NULL:
            raise errors.last_error()
        self._node = node
        self._q = lib.pyq_new()
        if self._q == ffi.NULL:
            self._destroy()
            raise MemoryError("meshbus: out of memory")
        try:
            self._configure(cluster, iface, port, seeds, curve, trust, secret, headers,
                            bind, node_id, suspect, gone, hwm)
        except BaseException:
            self._destroy()
            raise
        self._id = ffi.string(lib.mesh_node_id(node)).decode()
        self._name = ffi.string(lib.mesh_node_name(node)).decode("utf-8", "replace")
        self._ps = lib.mesh_pubsub_new(node)
        self._rr = lib.mesh_reqrep_new(node)
        self._pl = lib.mesh_pipeline_new(node)
        self._started = False
        self._closed = False
        real = _threads.real()      # real locks even under eventlet (_threads.py)
        self._real_threading = real
        self._start_lock = real.Lock()
        self._pump_lock = real.Lock()
        self._cond = real.Condition(real.Lock())
        self._waiters = 0
        self._items = ffi.new("pyq_item_t[]", _BATCH)
        self._last = None                       # see _route
        self._backlog = collections.deque()     # (fn, arg) handlers to run
        self._targets = {}                      # token -> Subscription, service, worker...
        self._keep = []                         # C targets the library points at
        self._next_token = 1
        self._stop_run = 0
        self._running = []                      # a thread id per handler run going on
        self._active_cv = real.Condition(real.Lock())   # close() waits for _running
        self._answer_lock = real.RLock()        # deferred replies, held jobs vs close
        self._held = set()                      # Request / Job not answered yet
        self._held_open = True
        self._get_ident = threading.get_ident   # green under eventlet, as the threads
        PubSubMixin._init(self)
        ReqRepMixin._init(self)
        PipelineMixin._init(self)

    def _configure(self, cluster, iface, port, seeds, curve, trust, secret, headers,
                   bind, node_id, suspect, gone, hwm):
        node = self._node
        if cluster is not None:
            check(lib.mesh_node_set_cluster(node, enc(cluster, "cluster")))
        if iface is not None:
            check(lib.mesh_node_set_iface(node, enc(iface, "iface")))
        if port is not None:
            check(lib.mesh_node_set_beacon_port(node, int(port)))
        if isinstance(seeds, str):
            seeds = [seeds]
        for seed in seeds:
            check(lib.mesh_node_add_seed(node, enc(seed, "seed")))
        if bind is not None:
            host, _, bport = enc(bind, "bind").partition(b":")
            check(lib.mesh_node_set_bind(node, host, int(bport or 0)))
        for key, value in (headers or {}).items():
            check(lib.mesh_node_set_header(node, enc(key, "header key"),
                                           enc(value, "header value")))
        if node_id is not None:
            check(lib.mesh_node_set_id(node, enc(node_id, "node_id")))
        if suspect is not None or gone is not None:
            check(lib.mesh_node_set_timeouts(node, int((suspect or 1.0) * 1000),
                                             int((gone or 3.0) * 1000)))
        if hwm is not None:
            check(lib.mesh_node_set_hwm(node, int(hwm)))
        if curve is not None:
            check(lib.mesh_node_set_curve(node, enc(str(curve), "curve")))
        if trust is not None:
            check(lib.mesh_node_set_trust(node, enc(str(trust), "trust")))
        if isinstance(secret, (bytes, bytearray)):
            check(lib.mesh_node_set_secret_bytes(node, bytes(secret), len(secret)))
        elif secret is not None:
            check(lib.mesh_node_set_secret(node, enc(str(secret), "secret")))

    # ------------------------------------------------------------------
    # Life cycle

    def start(self) -> "Node":
        """Bind the inbox, start discovery. Returns the node. Idempotent."""
        with self._start_lock:
            if self._closed:
                raise Closed("node is closed")
            if not self._started:
                check(lib.mesh_node_start(self._node))
                self._started = True
        return self

    def _live(self):
        # every operation starts the node on first use, and fails once closed
        # (the library asserts on a freed node: never reach it)
        if not self._started or self._closed:
            self.start()

    def close(self) -> None:
        """Say BYE to every peer, flush what is queued (up to the linger
        time), and free the node. Requests and jobs not handled yet are
        answered with an error / given back; handlers running in other
        threads are waited for (called from a handler, the node is freed
        when that handler returns). Safe to call twice."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
        if self._node == ffi.NULL:
            return
        lib.pyq_close(self._q, self._pl)
        # deferred requests and held jobs answered before peers see BYE
        self._abandon_held()
        self._stop_run += 1
        # peers see EXIT now; a thread inside dispatch comes out
        lib.mesh_node_stop(self._node)
        with self._cond:
            self._cond.notify_all()
        if self._get_ident() in self._running:
            return      # called by a handler: the last handler to return frees the node
        with self._active_cv:
            while self._running:
                self._active_cv.wait(0.1)
        self._free()

    def _free(self):
        with self._pump_lock:
            if self._node == ffi.NULL:
                return
            self._finish_backlog()
            # deferred requests and held jobs are answered before their
            # request-reply and pipeline objects go
            with self._answer_lock:
                self._abandon_held()
                self._destroy()
        with self._cond:
            self._cond.notify_all()

    def _abandon_held(self):
        # answer lock taken (it is reentrant for _free)
        with self._answer_lock:
            self._held_open = False
            held, self._held = self._held, set()
            for obj in held:
                obj._abandon()

    def _hold(self, obj) -> None:
        """Keep a Request / Job until answered; at once abandoned (answered
        "server closing" / nacked) when the node closes already."""
        with self._answer_lock:
            if self._held_open:
                self._held.add(obj)
            else:
                obj._abandon()

    def _finish_backlog(self):
        # what was drained but not handled: answer requests, give jobs back
        while self._backlog:
            fn, arg = self._backlog.popleft()
            cancel = getattr(fn, "cancel", None)
            if cancel:
                cancel(arg)

    def _destroy(self):
        it = getattr(self, "_sync_item", None)
        if it is not None:
            lib.pyq_release(it, 1)      # the last call's outcome (pyq_call_wait)
        for name, destroy in (("_pl", lib.mesh_pipeline_destroy),
                              ("_rr", lib.mesh_reqrep_destroy),
                              ("_ps", lib.mesh_pubsub_destroy)):
            obj = getattr(self, name, ffi.NULL)
            if obj != ffi.NULL:
                destroy(ffi.new(ffi.typeof(obj).cname + " *", obj))
                setattr(self, name, ffi.NULL)
        if self._node != ffi.NULL:
            lib.mesh_node_destroy(ffi.new("mesh_node_t **", self._node))
            self._node = ffi.NULL
        if self._q != ffi.NULL:
            lib.pyq_destroy(self._q)
            self._q = ffi.NULL

    def __enter__(self) -> "Node":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------
    # Identity and peers

    @property
    def id(self) -> str:
        """The node's id: 32 hex chars."""
        return self._id

    @property
    def name(self) -> str:
        return self._name

    @property
    def endpoint(self) -> Optional[str]:
        """The inbox endpoint "tcp://host:port" once started (for seeds)."""
        self._live()
        p = lib.mesh_node_endpoint(self._node)
        return ffi.string(p).decode() if p != ffi.NULL else None

    @property
    def public_key(self) -> Optional[str]:
        """The CURVE public key (Z85), or None without CURVE."""
        self._live()
        p = lib.mesh_node_public_key(self._node)
        return ffi.string(p).decode() if p != ffi.NULL else None

    def fileno(self) -> int:
        """A file descriptor that is readable when the node has work: for
        select/poll/asyncio (then call :meth:`process`). Do not read it."""
        self._live()
        return lib.mesh_node_fd(self._node)

    def _peer_ids(self) -> List[str]:
        strv = lib.mesh_node_peers(self._node)
        ids = []
        if strv != ffi.NULL:
            i = 0
            while strv[i] != ffi.NULL:
                ids.append(ffi.string(strv[i]).decode())
                i += 1
            lib.mesh_strv_free(ffi.new("char ***", strv))
        return ids

    def _take_str(self, p) -> str:
        if p == ffi.NULL:
            return ""
        try:
            return ffi.string(p).decode("utf-8", "replace")
        finally:
            lib.free(p)

    def peers(self) -> List[Peer]:
        """The peers alive or suspect now."""
        self._live()
        out = []
        for pid in self._peer_ids():
            b = pid.encode()
            state = _STATES.get(lib.mesh_node_peer_state(self._node, b))
            if state is None:
                continue        # left since the list was made
            out.append(Peer(pid, self._take_str(lib.mesh_node_peer_name(self._node, b)),
                            self._take_str(lib.mesh_node_peer_endpoint(self._node, b)),
                            state, self._headers(b) or {}))
        return out

    def _headers(self, peer: bytes) -> Optional[Dict[str, str]]:
        strv = lib.mesh_node_peer_headers(self._node, peer)
        if strv == ffi.NULL:
            return None
        out, i = {}, 0
        while strv[i] != ffi.NULL:
            out[ffi.string(strv[i]).decode("utf-8", "replace")] = \
                ffi.string(strv[i + 1]).decode("utf-8", "replace")
            i += 2
        lib.mesh_strv_free(ffi.new("char ***", strv))
        return out

    def peer_headers(self, peer: str) -> Dict[str, str]:
        """Every header a peer announced (``Node(headers=...)``). Raises
        meshbus.NoPeer for a peer this node does not know."""
        self._live()
        headers = self._headers(enc(peer, "peer"))
        if headers is None:
            raise errors.last_error()
        return headers

    def peer_header(self, peer: str, key: str) -> Optional[str]:
        """The value of a header a peer announced, or None."""
        self._live()
        p = lib.mesh_node_peer_header(self._node, enc(peer, "peer"), enc(key, "key"))
        return self._take_str(p) if p != ffi.NULL else None

    def wait_peers(self, n: int = 1, timeout: Optional[float] = None) -> List[Peer]:
        """Wait until at least n peers are alive; returns them. Raises
        meshbus.Timeout."""
        self._live()
        if not self._drive(lambda: lib.mesh_node_peer_count(self._node) >= n, timeout):
            raise Timeout("%d of %d peers after %ss" % (
                lib.mesh_node_peer_count(self._node), n, timeout))
        return self.peers()

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Iterate over events (peers entering and leaving, gaps, services
        up and down, dead letters...). Stops after timeout seconds without
        one (None: never)."""
        self._live()
        box = []

        def ready():
            ev = lib.mesh_node_event(self._node)
            if ev != ffi.NULL:
                box.append(event_of(ev))
                lib.mesh_event_destroy(ffi.new("mesh_event_t **", ev))
            return bool(box)

        while True:
            if not self._drive(ready, timeout):
                return
            yield box.pop()

    def stats(self) -> dict:
        """Every counter of the node and of each peer (as ``meshbus stats
        --json``)."""
        self._live()
        p = lib.mesh_node_stats_json(self._node)
        if p == ffi.NULL:
            raise MemoryError("meshbus: out of memory")
        return json.loads(self._take_str(p))

    def counter(self, name: str, peer: Optional[str] = None) -> int:
        """The value of one counter, of the node or of one peer."""
        self._live()
        return lib.mesh_node_counter(self._node, enc(peer, "peer") if peer else ffi.NULL,
                                     enc(name, "name"))

    # ------------------------------------------------------------------
    # Driving the node

    def run(self, timeout: Optional[float] = None) -> None:
        """Handle messages, requests and jobs in this thread until
        :meth:`stop` is called (from a handler or another thread), timeout
        seconds pass, or the node is closed. Ctrl-C raises
        KeyboardInterrupt here."""
        self._live()
        mark = self._stop_run
        try:
            self._drive(lambda: self._stop_run != mark or self._closed, timeout)
        except Closed:
            if not self._closed:
                raise

    def stop(self) -> None:
        """Make every :meth:`run` return (the node stays up; close() ends it)."""
        self._stop_run += 1
        with self._cond:
            self._cond.notify_all()

    def run_in_thread(self) -> threading.Thread:
        """Start a daemon thread that runs :meth:`run` (handlers then run in
        it); :meth:`stop` or close() ends it."""
        self._live()
        thread = threading.Thread(target=self.run, name="meshbus-" + self.name, daemon=True)
        thread.start()
        return thread

    def process(self, timeout: float = 0) -> int:
        """Handle what is ready, waiting up to timeout seconds for something;
        returns the number of items handled (for a select/poll loop on
        :meth:`fileno`)."""
        self._live()
        return self._pump(int(timeout * 1000))

    def _token(self, target) -> int:
        token = self._next_token
        self._next_token += 1
        self._targets[token] = target
        return token

    def _target(self, token):
        t = ffi.new("pyq_target_t *")
        t.q = self._q
        t.token = token
        self._keep.append(t)    # the library may call it until the node is gone
        return t

    def _pump(self, wait_ms: int) -> int:
        """One round: drain what is queued, else dispatch (waiting up to
        wait_ms) and drain; then run handlers. Returns items handled."""
        if not self._pump_lock.acquire(blocking=wait_ms != 0):
            return 0
        return self._pump_locked(wait_ms)

    def _pump_locked(self, wait_ms: int) -> int:
        # with the pump lock held (released here): one crossing into C
        # drains the queue, or dispatches and drains (pyq_dispatch), and
        # frees the batch before. Handlers run after the lock is released.
        svc = me = None
        try:
            try:
                if self._closed:
                    raise Closed("node is closed")
                items = self._items
                n = _dispatch(self._node, self._q, items, _BATCH, wait_ms)
                if n == 1:
                    it = items[0]
                    if it.kind == _REQ and not self._backlog:
                        # the round of a server: one request, served by
                        # this thread with as little Python as can be in
                        # between (a round trip waits for it). Listed in
                        # _running before the check of _closed, as
                        # _run_backlog
                        try:
                            msg = message_of(it, self._last)
                        except BaseException:
                            self._last = None       # see _route
                            raise
                        self._last = msg
                        target = self._targets[it.token]
                        reply = it.reply
                        # a target of the glue is called with (msg, reply);
                        # a _Service has the shorter way
                        svc = getattr(target, "serve", None) or \
                            (lambda m, r, target=target: target((m, r)))
                        me = self._get_ident()
                        self._running.append(me)
                        if self._closed:
                            svc = None
                            # _free answers it ("server closing")
                            self._backlog.append((target, (msg, reply)))
                    else:
                        self._route(1)
                elif n > 1:
                    self._route(n)
                    total = n
                    while n == _BATCH:
                        n = lib.pyq_drain(self._q, items, _BATCH)
                        self._route(n)
                        total += n
                    n = total
                elif n < 0:
                    if lib.mesh_errno() == _ECLOSED:
                        raise Closed("node is closed")
                    n = 0
            finally:
                self._pump_lock.release()
            if self._waiters:
                with self._cond:
                    self._cond.notify_all()
            if svc is not None:
                run, svc = svc, None
                run(msg, reply)
        finally:
            if me is not None:
                if svc is not None:
                    # interrupted (Ctrl-C) before its handler ran: the next
                    # round runs it, or _free answers it
                    self._backlog.appendleft((target, (msg, reply)))
                self._left(me)
        if self._backlog:
            self._run_backlog()
        return n

    def _drain(self) -> int:
        # the pump lock held: what is queued, without dispatching
        total = 0
        while True:
            n = lib.pyq_drain(self._q, self._items, _BATCH)
            if not n:
                return total
            self._route(n)
            total += n
            if n < _BATCH:
                return total

    def _route(self, n: int) -> None:
        # with the pump lock held: only cheap moves, in arrival order (the
        # next pyq_drain frees the items' messages). prev is the Message
        # of the last item drained that had one (pyq_drain marks the
        # fields equal to it); after a failure half-way, None (always safe)
        items = self._items
        targets = self._targets
        backlog = self._backlog
        prev = self._last
        try:
            for i in range(n):
                it = items[i]
                kind = it.kind
                if kind == _MSG:
                    prev = message_of(it, prev)
                    sub = targets.get(it.token)
                    if sub is not None:
                        sub._put(prev)
                elif kind == _OUTCOME:
                    prev = self._outcome(it, prev) or prev
                elif kind == _REQ:
                    prev = message_of(it, prev)
                    backlog.append((targets[it.token], (prev, it.reply)))
                elif kind == _JOB:
                    prev = message_of(it, prev)
                    backlog.append((targets[it.token], prev))
                elif kind == _GATHER:
                    targets[it.token].append(self._gathered(it))
                    prev = None
        except BaseException:
            self._last = None
            raise
        self._last = prev

    def _run_backlog(self) -> None:
        backlog = self._backlog
        if not backlog:
            return
        # this thread is listed while it runs handlers, so that close()
        # never frees what a handler still holds (a deferred reply, a held
        # job) and a handler's own close() knows it is one
        running = self._running
        me = self._get_ident()
        running.append(me)
        try:
            # listed first, then the check: a close() that did not see us
            # listed had set _closed already, and _free cancels the rest
            if not self._closed:
                pop = backlog.popleft
                while backlog:
                    try:
                        fn, arg = pop()
                    except IndexError:
                        break
                    fn(arg)
        finally:
            self._left(me)

    def _left(self, me) -> None:
        # a thread is done running handlers (see _run_backlog)
        running = self._running
        running.remove(me)
        if self._closed:
            with self._active_cv:
                self._active_cv.notify_all()
            if not running:
                self._free()        # the last handler out (idempotent)

    def _drive(self, done: Callable[[], bool], timeout: Optional[float]) -> bool:
        """Drive the node until done() is true (returns True) or timeout
        seconds pass (returns False). Raises Closed if the node closes."""
        deadline = None if timeout is None else _monotonic() + timeout
        lock = self._pump_lock
        try:
            while True:
                if self._backlog:
                    self._run_backlog()
                if done():
                    return True
                if self._closed:
                    raise Closed("node is closed")
                wait = _SLICE_MS
                if deadline is not None:
                    left = deadline - _monotonic()
                    if left <= 0:
                        return False
                    wait = min(wait, max(1, int(left * 1000)))
                if lock.acquire(False):
                    self._pump_locked(wait)
                else:
                    # another thread dispatches: it wakes us after its round
                    with self._cond:
                        self._waiters += 1
                        try:
                            self._cond.wait(wait / 1000)
                        finally:
                            self._waiters -= 1
        finally:
            # a thread still waiting must take over the dispatching now
            if self._waiters:
                with self._cond:
                    self._cond.notify_all()
