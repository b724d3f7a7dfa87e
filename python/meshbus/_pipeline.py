"""Pipeline (work queues): Node.push, Node.work, Producer."""
import logging
from typing import Callable, List, NamedTuple, Optional, Union

from ._meshbus import ffi, lib
from . import errors
from .errors import Reject, Timeout, check
from .types import Message, headers_of
from ._util import Headers, body_of, enc

log = logging.getLogger("meshbus")


class DeadLetter(NamedTuple):
    """A job that failed too often (or was rejected): queue, job id, the
    job as a Message (``deliveries`` = times delivered), the last reason."""

    queue: str
    id: int
    job: Message
    reason: str


class _Worker:
    """Runs a work handler for one queued job, then acks or nacks it."""

    def __init__(self, node, queue: str, handler: Callable):
        self.node = node
        self.queue = queue
        self.handler = handler

    def __call__(self, job: Message) -> None:
        ok = False
        try:
            self.handler(job)
            ok = True
        except Reject as exc:
            log.info("meshbus: job %d of %r rejected: %s", job.id, self.queue, exc)
        except Exception:
            log.exception("meshbus: work handler of %r raised (job %d, delivery %d)",
                          self.queue, job.id, job.seq)
            lib.mesh_node_count(self.node._node, ffi.NULL, b"python.handler-errors", 1)
        finally:
            # a KeyboardInterrupt nacks too, then goes on up
            lib.mesh_job_done(self.node._pl, job.peer.encode(), job.id, ok)

    def cancel(self, job: Message) -> None:
        lib.mesh_job_done(self.node._pl, job.peer.encode(), job.id, False)


class Worker:
    """A queue being worked; close() stops (jobs not acked go back)."""

    def __init__(self, node, queue: str):
        self.node = node
        self.queue = queue

    def close(self) -> None:
        if not self.node._closed:
            lib.mesh_unwork(self.node._pl, enc(self.queue, "queue"))

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PipelineMixin:
    """Pipeline methods of Node."""

    def _init(self):
        self._outbox = None
        self._queue_opts = {}

    def _set_outbox(self, durable, sync: bool = True) -> None:
        path = str(durable)
        if self._outbox == path:
            return
        if self._outbox is not None:
            raise ValueError("this node's outbox is %r already" % self._outbox)
        check(lib.mesh_pipeline_set_outbox(self._pl, enc(path, "durable"),
                                           lib.MESH_STORE_SYNC if sync
                                           else lib.MESH_STORE_GROUP))
        self._outbox = path

    def _set_queue(self, queue: bytes, max_deliveries, ack_timeout, backoff) -> None:
        want = (max_deliveries, ack_timeout, backoff)
        if want == (None, None, None) or self._queue_opts.get(queue) == want:
            return
        opts = ffi.new("mesh_queue_opts_t *")
        opts.max_deliveries = max_deliveries or 0
        opts.ack_timeout_ms = int((ack_timeout or 0) * 1000)
        opts.backoff_ms = int((backoff or 0) * 1000)
        check(lib.mesh_pipeline_set_queue(self._pl, queue, opts))
        self._queue_opts[queue] = want

    def push(self, queue: str, body: Union[bytes, str] = b"", *,
             headers: Optional[dict] = None, content_type: Optional[str] = None,
             durable: Optional[str] = None, max_deliveries: Optional[int] = None,
             ack_timeout: Optional[float] = None, backoff: Optional[float] = None) -> int:
        """Push a job to a queue; returns its id. The job stays with this
        node until a worker acks it (redelivered on a nack, a worker's death
        or after ack_timeout seconds; a dead letter after max_deliveries).
        ``durable``: a directory: the job is on disk before push returns,
        and survives this process (the node's one outbox). Raises Full when
        too many jobs are held."""
        self._live()
        q = enc(queue, "queue")
        if durable is not None:
            self._set_outbox(durable)
        self._set_queue(q, max_deliveries, ack_timeout, backoff)
        b = body if type(body) is bytes else body_of(body)
        if headers is None and content_type is None:
            job = lib.mesh_push(self._pl, q, b, len(b))
        else:
            h = Headers(headers)
            head = ffi.new("mesh_head_t *")
            subj = ffi.new("char[]", q)
            head.subject = subj
            ctype = ffi.new("char[]", enc(content_type, "content_type")) if content_type \
                else ffi.NULL
            head.ctype = ctype
            head.headers = h.array
            head.header_count = h.count
            job = lib.mesh_push_ex(self._pl, head, b, len(b))
        if job == 0:
            raise errors.last_error()
        return job

    def pending(self, queue: Optional[str] = None) -> int:
        """Jobs pushed here and not acked yet (of one queue, or all)."""
        self._live()
        return lib.mesh_pipeline_pending(self._pl, enc(queue, "queue") if queue else ffi.NULL)

    def wait_acked(self, timeout: Optional[float] = None, queue: Optional[str] = None) -> None:
        """Wait until every job pushed here (of queue) is acked; raises
        Timeout with how many remain."""
        self._live()
        q = enc(queue, "queue") if queue else ffi.NULL
        if not self._drive(lambda: lib.mesh_pipeline_pending(self._pl, q) == 0, timeout):
            raise Timeout("%d jobs not acked after %ss" % (
                lib.mesh_pipeline_pending(self._pl, q), timeout))

    def work(self, queue: str, handler: Callable[[Message], None], *,
             prefetch: int = 1) -> Worker:
        """Work a queue: ``handler(job)`` runs for each job (in the thread
        that drives the node), at most prefetch unacked at once. Returning
        acks the job; raising nacks it (redelivered, maybe elsewhere, after
        a backoff); raising meshbus.Reject fails it without handling."""
        self._live()
        if not callable(handler):
            raise TypeError("handler must be callable")
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        worker = _Worker(self, queue, handler)
        target = self._target(self._token(worker))
        check(lib.pyq_work(self._pl, enc(queue, "queue"), int(prefetch), target))
        return Worker(self, queue)

    def dead_letters(self, queue: Optional[str] = None, limit: int = 1000) -> List[DeadLetter]:
        """Dead letters of this producer (of one queue, or all)."""
        self._live()
        items = ffi.new("pyq_item_t[]", limit)
        reasons = ffi.new("char *[]", limit)
        queues = ffi.new("char *[]", limit)
        n = lib.pyq_dlq_list(self._pl, enc(queue, "queue") if queue else ffi.NULL,
                             items, reasons, queues, limit)
        out = []
        try:
            for i in range(n):
                it = items[i]
                job = Message(ffi.string(it.subject).decode("utf-8", "replace"),
                              ffi.unpack(it.body, it.size),
                              headers=headers_of(it.msg) if it.header_count else {},
                              content_type=ffi.string(it.ctype).decode("utf-8", "replace"),
                              peer=ffi.string(it.sender).decode(), seq=it.seq, id=it.id,
                              flags=it.flags)
                out.append(DeadLetter(ffi.string(queues[i]).decode("utf-8", "replace"),
                                      it.id, job,
                                      ffi.string(reasons[i]).decode("utf-8", "replace")))
        finally:
            lib.pyq_release(items, n)
            for i in range(n):
                lib.free(reasons[i])
                lib.free(queues[i])
        return out

    def replay(self, queue: str, job_id: int = 0) -> int:
        """Push dead letters of queue again (one job, or all); returns how many."""
        self._live()
        return check(lib.mesh_dlq_replay(self._pl, enc(queue, "queue"), job_id))


class Producer:
    """A producer of one queue, optionally durable (jobs on disk under
    ``durable`` before push returns; jobs not acked when the process died
    are sent again by the next Producer on the same directory).

    >>> jobs = meshbus.Producer(node, "images.resize", durable="/var/lib/app/outbox")
    >>> jobs.push(b"cat.png")
    >>> jobs.flush(timeout=30)     # every job acked
    """

    def __init__(self, node, queue: str, *, durable: Optional[str] = None,
                 max_deliveries: Optional[int] = None, ack_timeout: Optional[float] = None,
                 backoff: Optional[float] = None):
        self.node = node
        self.queue = queue
        node._live()
        if durable is not None:
            node._set_outbox(durable)
        node._set_queue(enc(queue, "queue"), max_deliveries, ack_timeout, backoff)

    def push(self, body: Union[bytes, str] = b"", *, headers: Optional[dict] = None,
             content_type: Optional[str] = None) -> int:
        """Push a job; returns its id."""
        return self.node.push(self.queue, body, headers=headers, content_type=content_type)

    @property
    def pending(self) -> int:
        """Jobs of this queue not acked yet."""
        return self.node.pending(self.queue)

    def flush(self, timeout: Optional[float] = None) -> None:
        """Wait until every job pushed is acked; raises Timeout."""
        self.node.wait_acked(timeout, self.queue)

    def dead_letters(self) -> List[DeadLetter]:
        return self.node.dead_letters(self.queue)

    def replay(self, job_id: int = 0) -> int:
        """Push this queue's dead letters again; returns how many."""
        return self.node.replay(self.queue, job_id)
