"""Reliable work queues and stacks on Redis lists: ``WorkQueue`` and ``Stack``.

For jobs that live in lists rather than streams. Each item is delivered to
one consumer at a time and survives the death of any consumer at any point:

- ``push`` / ``push_many``: LPUSH to the ready list ``<prefix>:{<name>}:ready``;
- ``pop(timeout)``: ``BLMOVE`` from the ready list into the consumer's own
  processing list ``<prefix>:{<name>}:proc:<consumer>``, on a connection of
  the consumer's own (so it never holds a pooled connection while it waits,
  and ``close()`` ends it), pipelined with a script that starts the item's
  visibility clock; a :class:`WorkQueue` pops the oldest item (FIFO), a
  :class:`Stack` the newest (LIFO);
- ``ack(item)``: one script removes exactly that delivery from the
  processing list: True once per delivery, False for a late ack (after the
  item was given back), so an item is acknowledged at most once;
- visibility timeout: an item not acknowledged within ``visibility_timeout``
  seconds of its pop goes back to the head of the ready list (delivered
  next) with its failure count raised, or to the dead-letter list
  ``<prefix>:{<name>}:dead`` once it failed ``max_deliveries`` times. The
  reaper that does this is run by the consumers themselves, each trying
  every ``reap_interval`` seconds; a lock lets at most one of them run per
  interval (or call :meth:`WorkQueue.reap` from a cron job);
- ``nack(item)``: give an item back early (a failure, or ``failed=False``
  for an uncounted release); ``extend(item, seconds)``: keep it longer;
- ``len``, ``peek``, ``stats``, ``dead_letters``, ``requeue_dead``, ``purge``.

Delivery is at least once: an item whose consumer died after working on it,
before ``ack``, is delivered again after the visibility timeout (its
``deliveries`` says which attempt this is). A consumer that restarts under
the same ``consumer`` name gets the items left in its processing list first.

Every key of one queue shares the hash tag ``{<name>}``, so every script
stays in one cluster slot. Items are ``"<id>.<failures>:<payload>"`` list
elements (the id is 24 hex digits); payloads are JSON by default
(``serializer=None``: raw bytes in, bytes out).

Retries: ``push`` (LPUSH), ``ack`` and ``nack`` are not idempotent, so a
lost reply raises :class:`~fastredis.exceptions.OutcomeUnknownError` rather
than being re-sent: after an unknown ack, acking again answers True if the
first did not happen and False if it did (or the item was given back). A
``pop`` whose reply was lost (a killed connection) looks at its processing
list and delivers what it finds there, so nothing waits for the timeout.

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer(); r = server.client()
    >>> jobs = WorkQueue(r, "emails", consumer="worker-1")
    >>> _ = jobs.push({"to": "ann"}); _ = jobs.push_many([{"to": "bob"}, {"to": "cy"}])
    >>> len(jobs), jobs.peek(2)
    (3, [{'to': 'ann'}, {'to': 'bob'}])
    >>> item = jobs.pop(timeout=1)
    >>> item.value, item.deliveries, jobs.ack(item), jobs.ack(item)
    ({'to': 'ann'}, 1, True, False)
    >>> jobs.close(); server.stop()
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

import redis
from redis.client import NEVER_DECODE
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..exceptions import ClosedError, OutcomeUnknownError
from ..keys import KeySpace
from ..scripts import LuaScript, run
from ..serializers import Serializer, get_serializer
from ._clients import check_sync_client, is_cluster
from ._conn import FORKS, connection_kwargs, finalizer
from ._plan import Call, Plan, Steps, script_call

__all__ = ["WorkQueue", "Stack", "QueueItem", "QueueStats", "ReapResult", "QueueClosedError"]

log = logging.getLogger(__name__)

_RAW = {NEVER_DECODE: True}
_MAX_BULK = 512 * 1024 * 1024
_PUSH_CHUNK = 10_000  # elements per LPUSH (one round trip for all chunks)
_REAP_BATCH = 100  # processing lists per reap script
_REAP_SCAN = 1000  # items examined per processing list per reap
_MIN_RETENTION = 60.0


def _script(name: str) -> LuaScript:
    return LuaScript.compose("queue_prelude", name, name=name)


_CLAIM = _script("queue_claim")
_HEARTBEAT = _script("queue_heartbeat")
_ACK = _script("queue_ack")
_NACK = _script("queue_nack")
_EXTEND = _script("queue_extend")
_REAP_BEGIN = LuaScript.load("queue_reap_begin")
_REAP = _script("queue_reap")
_PURGE = LuaScript.load("queue_purge")
_REQUEUE_DEAD = _script("queue_requeue_dead")


class QueueClosedError(ClosedError):
    """``pop`` was called on a queue object after its ``close()``
    (a :class:`fastredis.ClosedError`, like every pattern's).

    Example::

        >>> issubclass(QueueClosedError, RuntimeError)
        True
    """


@dataclass(frozen=True)
class QueueItem:
    """One delivery of an item: its ``id``, decoded ``value``, which attempt
    this is (``deliveries``, 1 for the first), and the ``consumer`` holding
    it. Pass it back to ``ack``, ``nack`` or ``extend`` (any object of the
    same queue may do so, e.g. a worker thread).

    For a dead letter, ``deliveries`` is the number of failed deliveries and
    ``consumer`` is empty.

    Example::

        >>> item = QueueItem("0" * 24, {"job": 1}, 1, "w1", b"")
        >>> item.value, item.deliveries
        ({'job': 1}, 1)
    """

    id: str
    value: Any
    deliveries: int
    consumer: str
    raw: bytes = field(repr=False)

    @property
    def header(self) -> bytes:
        """``b"<id>.<failures>"``: names this delivery in the deadlines set."""
        return self.raw[: self.raw.index(b":", 25)]


class QueueStats(NamedTuple):
    """Items ready, held by consumers (in processing lists), dead-lettered,
    and the consumers registered.

    Example::

        >>> QueueStats(3, 1, 0, 2).processing
        1
    """

    ready: int
    processing: int
    dead: int
    consumers: int


class ReapResult(NamedTuple):
    """What one reaper run did: items given back to the queue, items
    dead-lettered, visibility clocks started (items seen before their
    consumer's claim), consumers forgotten (idle, nothing held).

    Example::

        >>> ReapResult(2, 1, 0, 0).returned
        2
    """

    returned: int
    dead_lettered: int
    clocks_started: int
    consumers_forgotten: int


# -- argument checks ------------------------------------------------------------

def _seconds(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    f = float(value)
    if not math.isfinite(f) or f < 0 or (f == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        hint = " (use None to wait forever)" if name == "timeout" and f == math.inf else ""
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}{hint}")
    return f


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


def _ms(seconds: float) -> int:
    return max(1, int(math.ceil(seconds * 1000)))


def _identity(x: Any) -> Any:
    return x


def _raw(x: Any) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8", "surrogateescape")
    return bytes(x)


# -- ids: a random per-process prefix and a counter -----------------------------

_IDS: Dict[str, Any] = {"pid": None, "prefix": "", "next": 0}
_ID_LOCK = threading.Lock()


def _id_block(n: int) -> Tuple[str, int]:
    """A block of ``n`` fresh item ids: ``prefix + "%08x" % (first + k)``. The
    prefix is 16 random hex digits per process (new after a fork, and after
    2**32 ids); the counter makes the rest."""
    with _ID_LOCK:
        if _IDS["pid"] != os.getpid() or _IDS["next"] + n >= 2**32:
            _IDS.update(pid=os.getpid(), prefix=os.urandom(8).hex(), next=0)
        first = _IDS["next"]
        _IDS["next"] = first + n
        return _IDS["prefix"], first


# -- the consumer's own state (the shells' pops share it) -------------------------

class _PopState:
    __slots__ = ("recover", "orphans", "inflight", "last_beat", "next_reap")

    def __init__(self) -> None:
        self.recover = True  # first pop: look for items a previous life of this consumer left
        self.orphans: List[bytes] = []
        self.inflight: Set[bytes] = set()
        self.last_beat = -math.inf
        self.next_reap = 0.0


# -- plans ----------------------------------------------------------------------------

class _ListCore:
    """The planning half of :class:`WorkQueue` and :class:`Stack` (no I/O)."""

    _check_client = staticmethod(check_sync_client)
    _pop_end = "RIGHT"  # where pops take from
    _head = "R"  # where given-back items go (the next to be popped)

    def __init__(
        self,
        client: Any,
        name: Union[str, int],
        *,
        consumer: Optional[str] = None,
        prefix: str = "q",
        visibility_timeout: float = 30.0,
        max_deliveries: int = 5,
        reap_interval: Optional[float] = None,
        serializer: Union[str, Serializer, None] = "json",
        block_chunk: float = 2.0,
    ) -> None:
        self.client = self._check_client(client, type(self).__name__)
        if isinstance(name, bool) or not isinstance(name, (str, int)) or name == "":
            raise TypeError(f"name must be a non-empty str (or an int), got {name!r}")
        if consumer is not None and (not isinstance(consumer, str) or not consumer):
            raise TypeError(f"consumer must be a non-empty str, got {consumer!r}")
        self.name = name
        self.visibility_timeout = _seconds(visibility_timeout, "visibility_timeout")
        self.max_deliveries = _positive_int(max_deliveries, "max_deliveries")
        default_interval = max(0.05, min(self.visibility_timeout / 4, 5.0))
        self.reap_interval = default_interval if reap_interval is None else _seconds(reap_interval, "reap_interval")
        self.block_chunk = _seconds(block_chunk, "block_chunk")
        self._serializer: Optional[Serializer] = None if serializer is None else get_serializer(serializer)
        ks = self._ks = KeySpace(prefix)
        self.ready_key = ks.tagged(name, "ready")
        self.dead_key = ks.tagged(name, "dead")
        self.deadlines_key = ks.tagged(name, "deadlines")
        self.consumers_key = ks.tagged(name, "consumers")
        self.reaper_key = ks.tagged(name, "reaper")
        self._named = consumer is not None
        self._set_consumer(consumer or _default_consumer())
        #: An idle consumer is forgotten by the reaper after this long (its
        #: processing list empty); consumers refresh themselves 3x as often.
        self.retention = max(_MIN_RETENTION, 10 * self.visibility_timeout)
        self._state = _PopState()
        self._closed = False

    def _set_consumer(self, consumer: str) -> None:
        self.consumer = consumer
        self.proc_key = self._proc_key(consumer)

    def _proc_key(self, consumer: str) -> str:
        return self._ks.tagged(self.name, "proc", consumer)

    # -- encoding --------------------------------------------------------------
    def _payload(self, value: Any) -> bytes:
        if self._serializer is not None:
            data = self._serializer.dumps(value)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
        elif isinstance(value, str):
            data = value.encode("utf-8", "surrogateescape")
        else:
            raise TypeError(
                f"with serializer=None a {type(self).__name__} item must be bytes or str, got {type(value).__name__}"
            )
        if len(data) > _MAX_BULK - 64:
            raise ValueError(f"an item of {len(data)} bytes is larger than Redis accepts (512 MiB)")
        return data

    def _item(self, elem: bytes, consumer: str, dead: bool = False) -> Optional[QueueItem]:
        """The item an element holds, or None if it is not one of ours (or its payload does not decode)."""
        elem = _raw(elem)
        colon = elem.find(b":", 25)
        if len(elem) < 27 or elem[24:25] != b"." or colon < 0:
            return None
        try:
            failures = int(elem[25:colon])
            payload = elem[colon + 1:]
            value = payload if self._serializer is None else self._serializer.loads(payload)
        except Exception:
            return None
        return QueueItem(elem[:24].decode("ascii", "replace"), value, failures if dead else failures + 1, consumer, elem)

    # -- producers -------------------------------------------------------------
    def plan_push(self, value: Any) -> Plan[str]:
        """Add one item at the tail (queue) or the top (stack); its id. One LPUSH.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> len(q.push("job"))
            24
            >>> q.close(); server.stop()
        """
        prefix, first = _id_block(1)
        ident = f"{prefix}{first:08x}"
        elem = ident.encode() + b".0:" + self._payload(value)
        return Plan.one(Call(("LPUSH", self.ready_key, elem)), lambda _n: ident)

    def plan_push_many(self, values: Iterable[Any]) -> Plan[List[str]]:
        """Add items in order (a queue pops them in this order, a stack in
        reverse); their ids. One round trip (LPUSH per 10,000 items).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> len(q.push_many(range(3))), q.peek(3)
            (3, [0, 1, 2])
            >>> q.close(); server.stop()
        """
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise TypeError(f"push_many takes an iterable of items, got {type(values).__name__}")
        if self._serializer is not None:
            dumps = self._serializer.dumps
            payloads = [dumps(v) for v in values]
            if payloads and max(map(len, payloads)) > _MAX_BULK - 64:
                raise ValueError(f"an item of {max(map(len, payloads))} bytes is larger than Redis accepts (512 MiB)")
        else:
            payloads = [self._payload(v) for v in values]
        if not payloads:
            return Plan.done([])
        prefix, first = _id_block(len(payloads))
        head = prefix.encode()
        elems = [b"%s%08x.0:%s" % (head, first + k, p) for k, p in enumerate(payloads)]
        ids = [f"{prefix}{first + k:08x}" for k in range(len(payloads))]
        calls = [Call(("LPUSH", self.ready_key, *elems[k:k + _PUSH_CHUNK])) for k in range(0, len(elems), _PUSH_CHUNK)]
        return Plan(calls, lambda _replies: ids, batch=True)

    # -- consumers ---------------------------------------------------------------
    def plan_pop(self, timeout: Optional[float] = None) -> Steps[Optional[QueueItem]]:
        """The next item, moved into this consumer's processing list; None
        after ``timeout`` seconds (``None``: wait until an item comes or the
        object is closed; ``0``: do not wait). Runs the reaper when due.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> q.pop(timeout=0) is None
            True
            >>> q.close(); server.stop()
        """
        wait = None if timeout is None else _seconds(timeout, "timeout", allow_zero=True)
        return self._pop_steps(wait)

    def _pop_steps(self, wait: Optional[float]) -> Steps[Optional[QueueItem]]:
        st = self._state
        end = None if wait is None else time.monotonic() + wait
        while True:
            if st.recover:
                elems = yield Plan.one(Call(("LRANGE", self.proc_key, 0, -1), None, _RAW), _identity)
                held = st.inflight
                st.orphans = [e for e in reversed(elems or []) if e not in held]  # oldest first
                st.recover = False
            while st.orphans:
                item = yield from self._deliver(st.orphans.pop(0))
                if item is not None:
                    return item
            now = time.monotonic()
            if now >= st.next_reap:
                st.next_reap = now + self.reap_interval
                yield from self._reap_steps()
            left = None if end is None else end - time.monotonic()
            calls: List[Call] = []
            beat = now - st.last_beat > self.retention / 3
            if beat:
                calls.append(script_call(_HEARTBEAT, [self.consumers_key], [self.consumer]))
            move: Tuple[Any, ...]
            if left is not None and left < 0.001:
                move = ("LMOVE", self.ready_key, self.proc_key, self._pop_end, "LEFT")
            else:
                block = self.block_chunk if left is None else min(left, self.block_chunk)
                move = ("BLMOVE", self.ready_key, self.proc_key, self._pop_end, "LEFT", f"{block:.3f}")
            calls.append(Call(move, None, _RAW))
            calls.append(script_call(_CLAIM, [self.proc_key, self.deadlines_key, self.consumers_key],
                                     [_ms(self.visibility_timeout), self.consumer]))
            st.recover = True  # until the reply is in: a lost reply may hide a moved item
            try:
                replies = yield Plan(calls, _identity, batch=True)
            except (RedisConnectionError, RedisTimeoutError) as error:
                if self._closed:
                    return None
                if isinstance(error, OutcomeUnknownError):
                    continue  # the move may have happened: look at the processing list
                raise
            st.recover = False
            if beat:
                st.last_beat = now
            elem = replies[-2]
            if elem is not None:
                item = yield from self._deliver(elem)
                if item is not None:
                    return item
                continue
            if self._closed or (end is not None and time.monotonic() >= end):
                return None

    def _deliver(self, elem: Any) -> Steps[Optional[QueueItem]]:
        elem = _raw(elem)
        item = self._item(elem, self.consumer)
        if item is None:  # not written by a WorkQueue/Stack of this serializer: dead-letter it as it is
            log.warning("%s %r: dead-lettering an element that is not a queue item: %r",
                        type(self).__name__, self.name, elem[:80])
            yield Plan.one(self._nack_call(elem, True, 1), _identity)
            return None
        self._state.inflight.add(elem)
        return item

    def _nack_call(self, elem: bytes, failed: bool, max_deliveries: int, consumer: Optional[str] = None) -> Call:
        keys = [self._proc_key(consumer or self.consumer), self.ready_key, self.dead_key, self.deadlines_key]
        return script_call(_NACK, keys, [elem, 1 if failed else 0, max_deliveries, self._head])

    def _check_item(self, item: Any) -> QueueItem:
        if not isinstance(item, QueueItem):
            raise TypeError(f"expected a QueueItem from pop(), got {type(item).__name__}")
        if not item.consumer:
            raise ValueError("a dead letter is not held by a consumer: requeue_dead() moves dead letters back")
        return item

    def plan_ack(self, item: QueueItem) -> Plan[bool]:
        """Acknowledge a delivery: True if it was still held (the item is
        done), False if it was already acknowledged or given back after its
        visibility timeout. One script.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push(1); item = q.pop(0); q.ack(item), q.stats().processing
            (True, 0)
            >>> q.close(); server.stop()
        """
        item = self._check_item(item)
        inflight = self._state.inflight

        def done(reply: Any) -> bool:
            inflight.discard(item.raw)
            return bool(int(reply))

        keys = [self._proc_key(item.consumer), self.deadlines_key]
        return Plan.one(script_call(_ACK, keys, [item.raw, item.header]), done)

    def plan_nack(self, item: QueueItem, *, failed: bool = True) -> Plan[bool]:
        """Give a held item back now: to the head of the ready list, counted
        as a failed delivery (dead-lettered if that makes ``max_deliveries``),
        or with ``failed=False`` released uncounted. False if it was not held.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q", max_deliveries=2)
            >>> _ = q.push("x"); q.nack(q.pop(0)), q.pop(0).deliveries
            (True, 2)
            >>> q.close(); server.stop()
        """
        item = self._check_item(item)
        if not isinstance(failed, bool):
            raise TypeError(f"failed must be True or False, got {type(failed).__name__}")
        inflight = self._state.inflight

        def done(reply: Any) -> bool:
            inflight.discard(item.raw)
            return int(reply) != 0

        return Plan.one(self._nack_call(item.raw, failed, self.max_deliveries, item.consumer), done)

    def plan_extend(self, item: QueueItem, seconds: Optional[float] = None) -> Plan[bool]:
        """Keep a held item ``seconds`` (default: the visibility timeout) from
        now; False if it is no longer held. One script.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push(1); item = q.pop(0); q.extend(item, 600)
            True
            >>> q.close(); server.stop()
        """
        item = self._check_item(item)
        ms = _ms(self.visibility_timeout if seconds is None else _seconds(seconds, "seconds"))
        keys = [self._proc_key(item.consumer), self.deadlines_key]
        return Plan.one(script_call(_EXTEND, keys, [item.raw, item.header, ms]), lambda r: int(r) > 0)

    # -- the reaper ---------------------------------------------------------------
    def plan_reap(self) -> Steps[Optional[ReapResult]]:
        """Give back every item whose visibility timeout passed (dead-letter
        those out of deliveries), unless another reaper ran within
        ``reap_interval`` (then None). Two round trips; consumers run it
        themselves while they pop.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q", visibility_timeout=0.05)
            >>> _ = q.push("x"); item = q.pop(0); import time; time.sleep(0.1)
            >>> q.reap(), q.ack(item), q.pop(0).deliveries
            (ReapResult(returned=1, dead_lettered=0, clocks_started=0, consumers_forgotten=0), False, 2)
            >>> q.close(); server.stop()
        """
        return self._reap_steps()

    def _reap_steps(self) -> Steps[Optional[ReapResult]]:
        token = os.urandom(8).hex()
        names = yield Plan.one(
            script_call(_REAP_BEGIN, [self.reaper_key, self.consumers_key], [token, _ms(self.reap_interval)], **_RAW),
            _identity,
        )
        if names is None or names is False:  # RESP2 nil / RESP3 false: another reaper holds the lock
            return None
        consumers = [n.decode("utf-8", "surrogateescape") for n in names]
        batches = [consumers[i:i + _REAP_BATCH] for i in range(0, len(consumers), _REAP_BATCH)] or [[]]
        total = [0, 0, 0, 0]
        for k, batch in enumerate(batches):
            keys = [self.ready_key, self.dead_key, self.deadlines_key, self.consumers_key,
                    *[self._proc_key(c) for c in batch]]
            args = [_ms(self.visibility_timeout), self.max_deliveries, _ms(self.retention), self._head, _REAP_SCAN,
                    "1" if k == len(batches) - 1 else "0", *batch]
            reply = yield Plan.one(script_call(_REAP, keys, args), _identity)
            total = [a + int(b) for a, b in zip(total, reply)]
        return ReapResult(*total)

    # -- looking -------------------------------------------------------------------
    def plan_length(self) -> Plan[int]:
        """How many items are ready (not held, not dead). One LLEN.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push_many(["a", "b", "c"]); q.length()
            3
            >>> q.close(); server.stop()
        """
        return Plan.one(Call(("LLEN", self.ready_key)), int)

    def plan_peek(self, count: int = 1) -> Plan[List[Any]]:
        """The values of the next ``count`` items to be popped, next first;
        nothing moves. One LRANGE.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = Stack(server.client(), "s")
            >>> _ = s.push_many([1, 2, 3]); s.peek(2)
            [3, 2]
            >>> s.close(); server.stop()
        """
        count = _positive_int(count, "count")
        if self._head == "R":
            call, flip = Call(("LRANGE", self.ready_key, -count, -1), None, _RAW), True
        else:
            call, flip = Call(("LRANGE", self.ready_key, 0, count - 1), None, _RAW), False

        def values(elems: Any) -> List[Any]:
            out = []
            for e in reversed(elems) if flip else elems:
                item = self._item(e, "")
                out.append(item.value if item is not None else _raw(e))  # a foreign element: as it is
            return out

        return Plan.one(call, values)

    def plan_stats(self) -> Steps[QueueStats]:
        """Items ready, held, dead-lettered, and consumers registered. Two round trips.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push_many([1, 2]); _ = q.pop(0); q.stats()
            QueueStats(ready=1, processing=1, dead=0, consumers=1)
            >>> q.close(); server.stop()
        """
        names = yield Plan.one(Call(("ZRANGE", self.consumers_key, 0, -1), None, _RAW), _identity)
        consumers = [n.decode("utf-8", "surrogateescape") for n in names or []]
        calls = [Call(("LLEN", self.ready_key)), Call(("LLEN", self.dead_key))]
        calls += [Call(("LLEN", self._proc_key(c))) for c in consumers]
        replies = yield Plan(calls, _identity, batch=True)
        return QueueStats(int(replies[0]), sum(int(n) for n in replies[2:]), int(replies[1]), len(consumers))

    def plan_dead_letters(self, count: int = 100) -> Plan[List[QueueItem]]:
        """The ``count`` oldest dead letters (``deliveries`` = failed deliveries). One LRANGE.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q", max_deliveries=1)
            >>> _ = q.push("x"); _ = q.nack(q.pop(0)); [(d.value, d.deliveries) for d in q.dead_letters()]
            [('x', 1)]
            >>> q.close(); server.stop()
        """
        count = _positive_int(count, "count")

        def items(elems: Any) -> List[QueueItem]:
            out = []
            for e in reversed(elems or []):
                item = self._item(e, "", dead=True)
                out.append(item if item is not None else QueueItem("", _raw(e), 0, "", _raw(e)))
            return out

        return Plan.one(Call(("LRANGE", self.dead_key, -count, -1), None, _RAW), items)

    # -- maintenance ---------------------------------------------------------------
    def plan_requeue_dead(self, count: int = 1000) -> Plan[int]:
        """Move up to ``count`` dead letters (oldest first) back to the head
        of the ready list, failure count reset; how many moved. One script.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q", max_deliveries=1)
            >>> _ = q.push("x"); _ = q.nack(q.pop(0)); q.requeue_dead(), q.pop(0).deliveries
            (1, 1)
            >>> q.close(); server.stop()
        """
        count = _positive_int(count, "count")
        return Plan.one(script_call(_REQUEUE_DEAD, [self.dead_key, self.ready_key], [count, self._head]), int)

    def plan_purge(self) -> Plan[int]:
        """Drop every ready item; how many. Held items and dead letters stay. One script.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push_many([1, 2]); q.purge(), len(q)
            (2, 0)
            >>> q.close(); server.stop()
        """
        return Plan.one(script_call(_PURGE, [self.ready_key]), int)

    def plan_purge_dead(self) -> Plan[int]:
        """Drop every dead letter; how many. One script.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> q.purge_dead()
            0
            >>> q.close(); server.stop()
        """
        return Plan.one(script_call(_PURGE, [self.dead_key]), int)

    def _after_fork_in_child(self) -> None:
        self._state = _PopState()
        if not self._named:  # a fresh name: the parent keeps its own processing list
            self._set_consumer(_default_consumer())
        self._forked()

    def _forked(self) -> None:  # the shells forget their private connection
        pass

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, consumer={self.consumer!r}, prefix={self._ks.prefix!r}, "
                f"visibility_timeout={self.visibility_timeout})")


def _default_consumer() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


# -- the sync shells ------------------------------------------------------------------

def _blocking_client(client: Any, key: str, socket_timeout: float) -> Any:
    """A client of ``client``'s class on a pool of its own (the consumer's
    blocking connection), reading at most ``socket_timeout`` s per reply.
    On a cluster client: the node that owns ``key``'s slot."""
    if is_cluster(client):
        client = client.get_redis_connection(client.get_node_from_key(key))
    kwargs = connection_kwargs(client, socket_timeout=socket_timeout)
    pool = redis.ConnectionPool(connection_class=client.connection_pool.connection_class, **kwargs)
    return type(client)(connection_pool=pool)


class _SyncShell(_ListCore):
    def __init__(self, client: Any, name: Union[str, int], **kwargs: Any) -> None:
        super().__init__(client, name, **kwargs)
        self._pop_lock = threading.Lock()
        self._bclient: Any = None
        FORKS.add(self)

    def _blocking(self) -> Any:
        if self._bclient is None:
            self._bclient = _blocking_client(self.client, self.ready_key, self.block_chunk + 10.0)
            # a dropped queue object closes its connection with it
            finalizer(self, self._bclient.connection_pool.disconnect)
        return self._bclient

    def _forked(self) -> None:
        self._pop_lock = threading.Lock()
        self._bclient = None  # the parent's sockets stay the parent's

    def push(self, value: Any) -> str:
        """Add one item; its id (see :meth:`plan_push`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push({"n": 1}); len(q)
            1
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_push(value))

    def push_many(self, values: Iterable[Any]) -> List[str]:
        """Add items in order, in one round trip; their ids (see :meth:`plan_push_many`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> len(q.push_many(range(1000)))
            1000
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_push_many(values))

    def pop(self, timeout: Optional[float] = None) -> Optional[QueueItem]:
        """The next item, or None after ``timeout`` seconds or when
        :meth:`close` is called meanwhile (see :meth:`plan_pop`). Waits on
        this object's own connection; pops of one object run one at a time.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push("a"); q.pop(timeout=5).value, q.pop(timeout=0.05)
            ('a', None)
            >>> q.close(); server.stop()
        """
        if self._closed:
            raise QueueClosedError(f"{type(self).__name__} {self.name!r} is closed")
        with self._pop_lock:
            if self._closed:
                return None
            op = self.plan_pop(timeout)
            try:
                return run(self._blocking(), op)
            except (RedisConnectionError, RedisTimeoutError):
                if self._closed:
                    return None
                raise

    def ack(self, item: QueueItem) -> bool:
        """Acknowledge a delivery; True once per delivery (see :meth:`plan_ack`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push("a"); q.ack(q.pop(0))
            True
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_ack(item))

    def nack(self, item: QueueItem, *, failed: bool = True) -> bool:
        """Give a held item back now (see :meth:`plan_nack`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push("a"); q.nack(q.pop(0), failed=False), q.pop(0).deliveries
            (True, 1)
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_nack(item, failed=failed))

    def extend(self, item: QueueItem, seconds: Optional[float] = None) -> bool:
        """Keep a held item longer (see :meth:`plan_extend`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push("a"); item = q.pop(0); q.ack(item), q.extend(item)
            (True, False)
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_extend(item, seconds))

    def reap(self) -> Optional[ReapResult]:
        """Run the reaper now, unless one ran within ``reap_interval`` (see :meth:`plan_reap`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> q.reap(), q.reap()
            (ReapResult(returned=0, dead_lettered=0, clocks_started=0, consumers_forgotten=0), None)
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_reap())

    def length(self) -> int:
        """Items ready (also ``len(q)``).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> q.length()
            0
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_length())

    def __len__(self) -> int:
        return self.length()

    def peek(self, count: int = 1) -> List[Any]:
        """The next ``count`` values, next first (see :meth:`plan_peek`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> _ = q.push_many(["a", "b"]); q.peek(5)
            ['a', 'b']
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_peek(count))

    def stats(self) -> QueueStats:
        """Ready, held, dead, consumers (see :meth:`plan_stats`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> q.stats()
            QueueStats(ready=0, processing=0, dead=0, consumers=0)
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_stats())

    def dead_letters(self, count: int = 100) -> List[QueueItem]:
        """The oldest dead letters (see :meth:`plan_dead_letters`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> q.dead_letters()
            []
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_dead_letters(count))

    def requeue_dead(self, count: int = 1000) -> int:
        """Move dead letters back to the queue (see :meth:`plan_requeue_dead`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> q.requeue_dead()
            0
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_requeue_dead(count))

    def purge(self) -> int:
        """Drop every ready item; how many (see :meth:`plan_purge`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> q.purge()
            0
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_purge())

    def purge_dead(self) -> int:
        """Drop every dead letter; how many (see :meth:`plan_purge_dead`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> q.purge_dead()
            0
            >>> q.close(); server.stop()
        """
        return run(self.client, self.plan_purge_dead())

    def close(self) -> None:
        """Close the consumer's own connection; a ``pop`` waiting in another
        thread returns None. Held items stay held (acknowledge them, or they
        come back after their visibility timeout). Safe to call twice.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); q = WorkQueue(server.client(), "q")
            >>> q.close(); q.close()
            >>> server.stop()
        """
        self._closed = True
        FORKS.discard(self)
        bclient, self._bclient = self._bclient, None
        if bclient is not None:
            try:
                bclient.connection_pool.disconnect()
            except Exception:  # pragma: no cover - closing must not fail
                pass

    def __enter__(self) -> "_SyncShell":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WorkQueue(_SyncShell):
    """A reliable FIFO work queue on Redis lists (see the module docstring).

    ``client``: ``fastredis.Redis`` or ``redis.Redis`` (or a cluster
    client: the queue lives in one slot). ``name``: the queue. ``consumer``:
    this object's consumer name (default: host, pid and a random part;
    give a stable one to get a crashed consumer's items back at restart).
    ``visibility_timeout``: seconds a popped item may stay unacknowledged.
    ``max_deliveries``: failed deliveries before an item is dead-lettered.
    ``serializer``: ``"json"`` (default), an object with ``dumps``/``loads``,
    or None for raw bytes.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> with WorkQueue(r, "jobs") as q:
        ...     _ = q.push_many([1, 2])
        ...     [q.pop(0).value, q.pop(0).value]
        [1, 2]
        >>> server.stop()
    """


class Stack(_SyncShell):
    """A reliable LIFO stack on Redis lists: :class:`WorkQueue`'s API and
    guarantees, but ``pop`` takes the newest item, and items given back go
    on top.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> with Stack(r, "undo") as s:
        ...     _ = s.push_many(["a", "b"]); _ = s.push("c")
        ...     [s.pop(0).value for _ in range(3)]
        ['c', 'b', 'a']
        >>> server.stop()
    """

    _pop_end = "LEFT"
    _head = "L"
