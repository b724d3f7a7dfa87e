"""oslo.messaging over meshbus: RPC and notifications with no broker.

    transport = oslo_messaging.get_rpc_transport(conf, url="meshbus://")

Registered as the ``meshbus`` driver (entry point group
``oslo.messaging.drivers``). docs/oslo.md has the mapping, the options and
what is guaranteed; in short:

- every RPC server of (exchange, topic) serves the meshbus service
  ``oslo.rpc.E.T``, and the one named S also ``oslo.srv.E.T.S``; a call is
  a meshbus call (one provider, least loaded, with the call's deadline), a
  cast a meshbus cast, a fanout cast a cast to every provider;
- a notification listener works the queue ``oslo.ntf.E.T.POOL``
  (priority in T, POOL "%" when it has none); a notifier pushes a job to
  the default pool's queue and to every named pool it has heard of
  (listeners announce pools on ``oslo.pool.*``), and holds each job
  until a listener of the pool acks it.
"""
import itertools
import logging
import os
import socket

from oslo_config import cfg
from oslo_serialization import jsonutils

import meshbus
import oslo_messaging
from oslo_messaging._drivers import base
from oslo_messaging._drivers import common as rpc_common

from . import _green, _names
from . import _engine
from ._green import XQueue, monotonic

LOG = logging.getLogger(__name__)

meshbus_opts = [
    cfg.StrOpt("cluster", help="meshbus cluster name: only nodes of the same cluster "
                               "see each other (default: meshbus's own)."),
    cfg.StrOpt("iface", help="Beacon interfaces, e.g. eth0 or eth0,eth1 (default: loopback, "
                             "one host)."),
    cfg.IntOpt("beacon_port", help="UDP port of the discovery beacon (default 5670)."),
    cfg.ListOpt("seeds", default=[], help="tcp://HOST:PORT endpoints of nodes to join "
                                          "without broadcast."),
    cfg.StrOpt("curve", help="CURVE key file (meshbus keygen): every link encrypted."),
    cfg.StrOpt("trust", help="Directory of trusted *.pub keys."),
    cfg.StrOpt("secret", help="Cluster secret file."),
    cfg.FloatOpt("settle", default=1.0, min=0,
                 help="Seconds a fresh transport lets discovery settle before its first "
                      "notification (so it reaches pools that exist) and before a cast "
                      "with no server is given up."),
    cfg.BoolOpt("call_failover", default=True,
                help="A call whose server left before replying is sent again to "
                     "another server of the topic while its timeout lasts. False: it "
                     "fails with MessagingTimeout at once (at-most-once, as rabbit)."),
    cfg.IntOpt("notification_prefetch", default=100, min=1,
               help="Notifications a listener holds unacknowledged (at least the batch "
                    "size of a batch listener)."),
    cfg.IntOpt("notification_hold", default=10000, min=1,
               help="Notifications a notifier holds per pool queue while no listener "
                    "acknowledges them; beyond, sending fails with "
                    "MessageDeliveryFailure (the Notifier logs it)."),
    cfg.StrOpt("outbox", help="Directory of a durable outbox: notifications are on disk "
                              "before send returns and survive the notifier's restart."),
]

_FANOUT = "x-oslo-fanout"


def register_opts(conf) -> None:
    conf.register_opts(meshbus_opts, group="oslo_messaging_meshbus")


def list_opts():
    return [("oslo_messaging_meshbus", meshbus_opts)]


class ServerLeft(oslo_messaging.MessagingTimeout):
    """No reply will come: the server that took the call left (or failed)
    before answering. A MessagingTimeout, so code that handles timeouts
    handles it; raised at once instead of at the deadline."""


def _node_options(conf, url) -> dict:
    """Node options from [oslo_messaging_meshbus], the URL's hosts (seeds)
    and its query (?cluster=&iface=&seed=&curve=&trust=&secret=&port=),
    the URL winning."""
    group = conf.oslo_messaging_meshbus
    query = dict(url.query or {}) if url is not None else {}
    opts = {}
    for key in ("cluster", "iface", "curve", "trust", "secret"):
        value = query.pop(key, None) or getattr(group, key)
        if value:
            opts[key] = value
    port = query.pop("port", None) or group.beacon_port
    if port:
        opts["port"] = int(port)
    seeds = list(group.seeds)
    for seed in (query.pop("seed", None) or query.pop("seeds", None) or "").split(","):
        if seed.strip():
            seeds.append(seed.strip())
    for host in (url.hosts if url is not None else []):
        if host.hostname:
            seeds.append("tcp://%s:%s" % (host.hostname, host.port or 5671))
    if seeds:
        opts["seeds"] = seeds
    if query:
        LOG.warning("meshbus: unknown transport URL options ignored: %s",
                    ", ".join(sorted(query)))
    return opts


class MeshbusIncoming(base.RpcIncomingMessage):
    """A request, cast or notification handed to an oslo server."""

    def __init__(self, listener, ctxt, message, handle=None, job=None, key=None):
        super().__init__(ctxt, message)
        self._engine = listener.engine
        self._key = key             # the caller's key, echoed in the reply
        self._handle = handle       # reply handle of a call, None for a cast
        self._job = job             # the meshbus.Job of a notification from a peer

    def reply(self, reply=None, failure=None):
        if self._handle is None:
            return
        if failure is not None:
            body = {"f": rpc_common.serialize_remote_exception(failure)}
        else:
            body = {"r": reply}
        try:
            data = jsonutils.dump_as_bytes(body)
        except Exception as exc:
            LOG.error("meshbus: reply not serializable: %s", exc)
            data = jsonutils.dump_as_bytes(
                {"f": rpc_common.serialize_remote_exception((type(exc), exc, None))})
        if isinstance(self._key, int):
            # last, in a fixed form: the caller's key, as servers always did
            data = data[:-1] + b', "k": %d}' % self._key
        if isinstance(self._handle, _LocalCall):
            self._handle.waiter.set(data)
        elif not self._engine.reply(self._handle, data):
            LOG.warning("meshbus: the reply could not be sent (the server is closing)")
        self._handle = None

    def acknowledge(self):
        if self._job is not None:
            self._engine.job_done(self._job, True)
            self._job = None

    def requeue(self):
        if self._job is not None:
            self._engine.job_done(self._job, False)
            self._job = None

    def heartbeat(self):
        """Not supported: a meshbus call has one deadline (docs/oslo.md)."""


class _Listener(base.PollStyleListener):
    """What an oslo server polls: requests or jobs queued by the engine."""

    def __init__(self, driver, prefetch_size=-1):
        super().__init__(prefetch_size)
        self.driver = driver
        self.engine = driver._engine
        self.queue = XQueue()

    @base.batch_poll_helper
    def poll(self, timeout=None):
        item = self.queue.get(timeout)
        if item is None:
            return None
        return self._incoming(item)

    def _incoming(self, item):
        raise NotImplementedError

    def stop(self):
        self._unregister()
        self.queue.close()

    def cleanup(self):
        # what was never polled: calls fail over, notifications go back
        for item in self.queue.drain():
            self._give_back(item)

    def _unregister(self):
        raise NotImplementedError

    def _give_back(self, item):
        raise NotImplementedError


class _RpcListener(_Listener):

    def __init__(self, driver, services):
        super().__init__(driver)
        self.services = services
        self._stopped = False

    def _incoming(self, item):
        msg, handle = item
        try:
            data = jsonutils.loads(msg.body)
            return MeshbusIncoming(self, data.get("c") or {}, data.get("m"), handle=handle,
                                   key=data.get("k"))
        except Exception as exc:
            LOG.error("meshbus: dropped a malformed request on %s: %s", msg.subject, exc)
            if handle is not None:
                self.engine.reply(handle, None, error="malformed request")
            return None

    def _unregister(self):
        if not self._stopped:
            self._stopped = True
            self.driver._remove_rpc(self)

    def _give_back(self, item):
        msg, handle = item
        if isinstance(handle, _LocalCall):
            handle.waiter.set(None)
        elif handle is not None:
            self.engine.reply(handle, None, error="server closing")


class _NotifyListener(_Listener):

    def __init__(self, driver, queues, prefetch):
        super().__init__(driver, prefetch)
        self.queues = queues
        self._stopped = False

    def _incoming(self, job):
        try:
            data = jsonutils.loads(job.body)
            return MeshbusIncoming(self, data.get("c") or {}, data.get("m"),
                                   job=job if isinstance(job, meshbus.Job) else None)
        except Exception as exc:
            # not a notification: acked so that it is not redelivered forever
            LOG.error("meshbus: dropped a malformed notification on %s: %s", job.subject, exc)
            if isinstance(job, meshbus.Job):
                self.engine.job_done(job, True)
            return None

    def _unregister(self):
        if not self._stopped:
            self._stopped = True
            self.driver._remove_notify(self)

    def _give_back(self, job):
        if isinstance(job, meshbus.Job):
            self.engine.job_done(job, False)
        else:
            LOG.warning("meshbus: a notification of %s for a listener of this process "
                        "was not handled before it stopped", job.subject)


class _Local:
    """The listeners of one node for one service or queue; a request goes
    to the next in turn, a fanout cast to each. Any thread."""

    def __init__(self):
        self.listeners = []
        self.turn = itertools.count()      # next() is atomic in CPython

    def pick(self):
        listeners = list(self.listeners)
        if not listeners:
            return None
        return listeners[next(self.turn) % len(listeners)]


class _LocalCall:
    """The reply handle of a call served by a listener of the caller's own
    node: it never leaves the process (see MeshbusDriver._local_target)."""

    __slots__ = ("waiter",)

    def __init__(self):
        self.waiter = _green.Waiter()


class MeshbusDriver(base.BaseDriver):
    """The oslo.messaging transport driver for meshbus:// URLs."""

    def __init__(self, conf, url, default_exchange=None, allowed_remote_exmods=None):
        register_opts(conf)
        super().__init__(conf, url, default_exchange, allowed_remote_exmods)
        self._group = conf.oslo_messaging_meshbus
        self._settle = self._group.settle
        name = "oslo-%s-%d" % (socket.gethostname(), os.getpid())
        self._engine = _engine.acquire(name, _node_options(conf, url))
        self._node = self._engine.node
        self._local = self._engine.local        # service or queue -> _Local
        self._pools = self._engine.pools        # (exchange, topic) -> {pools heard of}
        self._pools_lock = self._engine.pools_lock
        self._closed = False
        self._engine.run(self._setup_node)

    def _setup_node(self):
        # engine thread, for every transport: once per node
        engine = self._engine
        if getattr(engine, "oslo_ready", False):
            return
        if self._group.outbox:
            self._node._set_outbox(self._group.outbox, sync=False)
        self._node.subscribe(_names.POOL_SUBJECTS, self._heard_pool, last_value=True)
        engine.oslo_ready = True

    def require_features(self, requeue=False):
        pass        # notifications can be requeued (nack: redelivered)

    # ------------------------------------------------------------------
    # Sending RPC

    def _exchange(self, target):
        return target.exchange or self._default_exchange

    def send(self, target, ctxt, message, wait_for_reply=None, timeout=None,
             call_monitor_timeout=None, retry=None, transport_options=None):
        exchange = self._exchange(target)
        if target.fanout:
            service = _names.topic_service(exchange, target.topic)
        elif target.server:
            service = _names.server_service(exchange, target.topic, target.server)
        else:
            service = _names.topic_service(exchange, target.topic)
        mandatory = bool(transport_options and transport_options.at_least_once)
        local = self._local_target(service)
        if wait_for_reply and not target.fanout and local is None:
            return self._call(target, service, ctxt, message, timeout, mandatory)
        body = jsonutils.dump_as_bytes({"c": ctxt, "m": message})
        if local is not None:
            return self._send_local(target, local, service, body, wait_for_reply, timeout)
        self._cast(target, service, body, bool(target.fanout), mandatory)
        return None

    def _local_target(self, service):
        """The local listeners of service when they are its only providers.
        Then the message stays in the process: the library serves a request
        for its own node from a 10 ms timer when another thread made it,
        and a call between two transports of one process (oslo's own tests,
        a service calling itself) would wait for it each time."""
        local = self._local.get(service)
        if local is None or not local.listeners:
            return None
        if self._node.providers(service) > 1:
            return None         # others serve it too: the library chooses
        return local

    def _send_local(self, target, local, service, body, wait_for_reply, timeout):
        msg = meshbus.Message(service, body)
        if target.fanout:
            for listener in list(local.listeners):
                listener.queue.put((msg, None))
            return None
        listener = local.pick()
        if listener is None:
            raise oslo_messaging.MessageDeliveryFailure("meshbus: the server of %s left"
                                                        % target)
        if not wait_for_reply:
            listener.queue.put((msg, None))
            return None
        handle = _LocalCall()
        listener.queue.put((msg, handle))
        timeout = timeout if timeout else 60.0
        ok, data = handle.waiter.wait(timeout)
        if not ok:
            raise oslo_messaging.MessagingTimeout(
                "Timed out waiting for a reply on %s after %ss" % (target, timeout))
        if data is None:
            raise ServerLeft("No reply will come from %s: the server stopped" % target)
        return self._result(data)

    def _result(self, data):
        try:
            data = jsonutils.loads(data)
        except ValueError as exc:
            raise oslo_messaging.MessagingException("meshbus: malformed reply: %s" % exc)
        if "f" in data:
            raise rpc_common.deserialize_remote_exception(data["f"],
                                                          self._allowed_remote_exmods)
        return data.get("r")

    def _cast(self, target, service, body, fanout, mandatory):
        headers = {_FANOUT: "1"} if fanout else None
        while True:
            try:
                # thread safe in the library, no binding lock: from here
                self._node.cast(service, body, all=fanout, headers=headers)
                return
            except meshbus.NoResponders:
                if monotonic() - self._engine.started_at < self._settle:
                    _green.sleep(0.02)      # discovery has not settled yet
                    continue
                if mandatory:
                    raise oslo_messaging.MessageUndeliverable(
                        meshbus.NoResponders("no server"), self._exchange(target),
                        target.topic, body)
                # as rabbit without the mandatory flag: said, not raised
                LOG.warning("meshbus: cast to %s dropped: no server listens on it", target)
                return
            except meshbus.Error as exc:
                raise oslo_messaging.MessageDeliveryFailure(
                    "meshbus: cast to %s failed: %s" % (target, exc))

    def _call(self, target, service, ctxt, message, timeout, mandatory):
        timeout = timeout if timeout else 60.0
        deadline = monotonic() + timeout
        failover = self._group.call_failover and not target.server
        while True:
            left = deadline - monotonic()
            if left <= 0:
                raise oslo_messaging.MessagingTimeout(
                    "Timed out waiting for a reply on %s" % target)
            try:
                reply = self._call_once(service, ctxt, message, left, wait=not mandatory)
                break
            except meshbus.Timeout:
                raise oslo_messaging.MessagingTimeout(
                    "Timed out waiting for a reply on %s after %ss" % (target, timeout))
            except meshbus.NoResponders:
                raise oslo_messaging.MessageUndeliverable(
                    meshbus.NoResponders("no server"), self._exchange(target),
                    target.topic, message)
            except (meshbus.ProviderLeft, meshbus.RemoteError) as exc:
                # the server went (or closed) with the call in hand
                if failover and deadline - monotonic() > 0:
                    LOG.info("meshbus: call to %s failed over: %s", target, exc)
                    continue
                raise ServerLeft("No reply will come from %s: %s" % (target, exc))
        return self._result(reply.body)

    def _call_once(self, service, ctxt, message, timeout, wait):
        waiter = _green.Waiter()
        key = self._engine.new_key(waiter)
        # "k": the key the server echoes at the end of its reply
        body = jsonutils.dump_as_bytes({"c": ctxt, "m": message, "k": key})
        self._engine.call(service, body, timeout, wait, waiter, key)
        # the library ends the call at its deadline; the margin is for a stuck engine
        ok, outcome = waiter.wait(timeout + 5.0)
        self._engine.forget(key)
        if not ok:
            raise meshbus.Timeout("no outcome from the meshbus engine")
        reply, exc = outcome
        if exc is not None:
            raise exc
        return reply

    # ------------------------------------------------------------------
    # RPC servers

    def listen(self, target, batch_size, batch_timeout):
        exchange = self._exchange(target)
        services = [_names.topic_service(exchange, target.topic)]
        if target.server:
            services.append(_names.server_service(exchange, target.topic, target.server))
        listener = _RpcListener(self, services)
        self._engine.run(lambda: self._add(listener, services, self._engine.serve,
                                           self._rpc_dispatcher))
        return base.PollStyleListenerAdapter(listener, batch_size, batch_timeout)

    def _add(self, listener, names, register, dispatcher):
        # engine thread: one meshbus handler per name and node, shared by
        # the node's listeners of that name
        for name in names:
            local = self._local.get(name)
            if local is None:
                local = self._local[name] = _Local()
                register(name, dispatcher(local))
            local.listeners.append(listener)

    def _rpc_dispatcher(self, local):
        def dispatch(msg, handle):
            if handle is None and msg.headers.get(_FANOUT):
                for listener in list(local.listeners):
                    listener.queue.put((msg, None))
                return
            listener = local.pick()
            if listener is None:
                if handle is not None:
                    self._engine.reply(handle, None, error="no server")
                return
            listener.queue.put((msg, handle))
        return dispatch

    def _remove_rpc(self, listener):
        def remove():
            for name in listener.services:
                local = self._local.get(name)
                if local and listener in local.listeners:
                    local.listeners.remove(listener)
                    if not local.listeners:
                        del self._local[name]
                        self._engine.unserve(name)
        self._run_quiet(remove)

    def _run_quiet(self, fn):
        try:
            self._engine.run(fn, timeout=10)
        except Exception:
            LOG.exception("meshbus: engine command failed")

    # ------------------------------------------------------------------
    # Notifications

    def send_notification(self, target, ctxt, message, version, retry=None):
        exchange = self._exchange(target)
        # pools are learnt from announcements: give discovery its time once
        wait = self._settle - (monotonic() - self._engine.started_at)
        if wait > 0:
            _green.sleep(wait)
        with self._pools_lock:
            pools = [None] + sorted(self._pools.get((exchange, target.topic), ()))
        body = jsonutils.dump_as_bytes({"c": ctxt, "m": message})
        hold = self._group.notification_hold
        for pool in pools:
            queue = _names.notify_queue(exchange, target.topic, pool)
            local = self._local.get(queue)
            listener = local.pick() if local is not None else None
            if listener is not None:
                # a listener of this process: the library's pipeline does not
                # hand a node's jobs to its own worker, so it stays here
                listener.queue.put(meshbus.Message(queue, body))
                continue
            # pending and push: thread safe in the library, no binding lock
            if self._node.pending(queue) >= hold:
                raise oslo_messaging.MessageDeliveryFailure(
                    "meshbus: %d notifications of %s (pool %s) wait for a listener; "
                    "this one is not sent" % (hold, target.topic, pool or "default"))
            try:
                self._node.push(queue, body)
            except meshbus.Error as exc:
                raise oslo_messaging.MessageDeliveryFailure(
                    "meshbus: notification to %s not sent: %s" % (target.topic, exc))

    def _heard_pool(self, msg):
        # engine thread: a listener announced its pool
        try:
            data = jsonutils.loads(msg.body)
            key, pool = (data["e"], data["t"]), data["p"]
        except (ValueError, KeyError, TypeError):
            return
        with self._pools_lock:
            self._pools.setdefault(key, set()).add(pool)

    def listen_for_notifications(self, targets_and_priorities, pool, batch_size,
                                 batch_timeout):
        queues, announce = [], []
        for target, priority in targets_and_priorities:
            exchange = self._exchange(target)
            topic = "%s.%s" % (target.topic, priority)
            queues.append(_names.notify_queue(exchange, topic, pool))
            if pool:
                announce.append((_names.pool_subject(exchange, topic, pool),
                                 jsonutils.dump_as_bytes({"e": exchange, "t": topic,
                                                          "p": pool})))
        prefetch = max(self._group.notification_prefetch, batch_size or 1)
        listener = _NotifyListener(self, queues, prefetch)

        def register(queue, dispatch):
            self._engine.work(queue, prefetch, dispatch)

        def add():
            self._add(listener, queues, register, self._job_dispatcher)
            for subject, body in announce:
                self._node.publish(subject, body)
        self._engine.run(add)
        return base.PollStyleListenerAdapter(listener, batch_size, batch_timeout)

    def _job_dispatcher(self, local):
        def dispatch(job):
            listener = local.pick()
            if listener is None:
                self._engine.job_done(job, False)
                return
            listener.queue.put(job)
        return dispatch

    def _remove_notify(self, listener):
        def remove():
            for name in listener.queues:
                local = self._local.get(name)
                if local and listener in local.listeners:
                    local.listeners.remove(listener)
                    if not local.listeners:
                        del self._local[name]
                        self._engine.unwork(name)
        self._run_quiet(remove)

    # ------------------------------------------------------------------

    def cleanup(self):
        if not self._closed:
            self._closed = True
            _engine.release(self._engine)
