"""Streams: ``EventStream`` (a stream with consumer groups) and ``Consumer``
(own pending first, claims of stuck entries, dead-lettering).

A consumer's read is a small plan sequence (:meth:`Consumer.plan_read`):
create the group if missing, drain this consumer's own pending entries,
claim stuck ones every ``claim_interval``, else read new entries; NOGROUP
(the stream was deleted) recreates the group and retries. The sync classes
here and their asyncio twins run the same steps.

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer(); r = server.client()
    >>> orders = EventStream(r, "orders")
    >>> _ = orders.add({"order": 1, "total": 9.5})
    >>> with orders.consumer("billing", "worker-1", block=0.1) as c:
    ...     [(e.fields, c.ack(e)) for e in c.read()]
    [({'order': 1, 'total': 9.5}, True)]
    >>> server.stop()
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, Iterator, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._text import check_finite, to_str
from .. import metrics as _metrics
from ..exceptions import ClosedError
from ..keys import KeySpace
from ..scripts import LuaScript
from ..serializers import Serializer, get_serializer
from ._clients import check_sync_client
from ._plan import Call, Plan, Steps, script_call, sync_operation

__all__ = ["EventStream", "Consumer", "Entry", "PendingStats", "DEFAULT_DEAD_MAXLEN"]

#: The dead-letter stream keeps at most this many entries (the newest).
DEFAULT_DEAD_MAXLEN = 10_000

_CLAIM = LuaScript.load("stream_claim")


@dataclass
class Entry:
    """A stream entry: its id, its decoded fields, and how often it was delivered.

    Example::

        >>> Entry("1-0", {"a": 1}).id
        '1-0'
    """

    id: str
    fields: Dict[str, Any]
    deliveries: int = 1


@dataclass
class PendingStats:
    """Pending (delivered, not acked) entries of a group, and the dead-letter count.

    Example::

        >>> PendingStats(0, None, None, {}, 0).count
        0
    """

    count: int
    min_id: Optional[str]
    max_id: Optional[str]
    consumers: Dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0


def _is_id(x: Any) -> bool:
    s = to_str(x)
    if not isinstance(s, str) or "-" not in s:
        return False
    a, _, b = s.partition("-")
    return a.isdigit() and b.isdigit()


def _collect_entries(reply: Any, out: List[Any]) -> None:
    """Find ``(id, fields)`` pairs in any XREAD/XREADGROUP reply shape redis-py returns.

    RESP2 lists, RESP3 dicts and redis-py's legacy/unified callback shapes all
    nest the same pairs differently; stream keys carry ``:`` so they are
    never mistaken for ids.
    """
    if reply is None:
        return
    if isinstance(reply, dict):
        for value in reply.values():
            _collect_entries(value, out)
        return
    if isinstance(reply, (list, tuple)):
        if len(reply) == 2 and not isinstance(reply[0], (list, tuple, dict)) and _is_id(reply[0]) and (
            reply[1] is None or isinstance(reply[1], (list, tuple, dict))
        ):
            out.append(reply)
            return
        for item in reply:
            if isinstance(item, (list, tuple, dict)):
                _collect_entries(item, out)


def _pending_stats(summary: Any, dead: int) -> PendingStats:
    if isinstance(summary, dict):  # redis-py's parse_xpending
        consumers = summary.get("consumers") or []
        by_name = {to_str(c["name"]): int(c["pending"]) for c in consumers} if consumers and isinstance(consumers[0], dict) else {}
        min_id, max_id = summary.get("min"), summary.get("max")
        total = int(summary.get("pending") or 0)
    else:
        total, min_id, max_id, rows = summary
        by_name = {to_str(n): int(p) for n, p in (rows or [])}
        total = int(total)
    return PendingStats(total, to_str(min_id) if min_id else None, to_str(max_id) if max_id else None, by_name, dead)


def _group_created(replies: List[Any]) -> None:
    (reply,) = replies
    if isinstance(reply, ResponseError) and "BUSYGROUP" not in str(reply):
        raise reply


def _ids(replies: List[Any]) -> List[str]:
    return [to_str(x) for x in replies]


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} must be a non-empty str")
    return value


C = TypeVar("C")  # the Consumer class of a stream shell


class _StreamPlans(Generic[C]):
    """The plans of :class:`EventStream` (no I/O), shared with its asyncio twin."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)
    _consumer_class: Callable[..., C]  # the Consumer of the same kind (set by the shells)

    def __init__(
        self,
        client: Any,
        name: Union[str, bytes, int],
        *,
        maxlen: Optional[int] = None,
        prefix: str = "stream",
        serializer: Union[str, Serializer, None] = "json",
        dead_maxlen: int = DEFAULT_DEAD_MAXLEN,
    ) -> None:
        if maxlen is not None:
            if isinstance(maxlen, bool) or not isinstance(maxlen, int):
                raise TypeError(f"maxlen must be an int or None, got {type(maxlen).__name__}")
            if maxlen < 1:
                raise ValueError(f"maxlen must be a positive int or None, got {maxlen!r}")
        if isinstance(dead_maxlen, bool) or not isinstance(dead_maxlen, int):
            raise TypeError(f"dead_maxlen must be an int, got {type(dead_maxlen).__name__}")
        if dead_maxlen < 1:
            raise ValueError(f"dead_maxlen must be a positive int, got {dead_maxlen!r}")
        #: The dead-letter stream keeps at most this many entries, the newest.
        self.dead_maxlen = dead_maxlen
        self.client = self._check_client(client, type(self).__name__)
        keys = KeySpace(prefix)
        self.key = keys.tagged(name)
        self.dead_key = keys.tagged(name, "dead")
        self.maxlen = maxlen
        self.serializer = get_serializer(serializer)

    # -- writing ----------------------------------------------------------
    def _xadd(self, event: Mapping[str, Any]) -> Call:
        if not isinstance(event, Mapping):
            raise TypeError(f"an event must be a mapping of field -> value, got {type(event).__name__}")
        if not event:
            raise ValueError("an event needs at least one field")
        cmd: List[Any] = ["XADD", self.key]
        if self.maxlen is not None:
            cmd += ["MAXLEN", "~", self.maxlen]
        cmd.append("*")
        for name, value in event.items():
            if not isinstance(name, str):
                raise TypeError(f"event field names must be str, got {type(name).__name__}")
            cmd += [name, self.serializer.dumps(value)]
        return Call(tuple(cmd))

    def plan_add(self, event: Mapping[str, Any]) -> Plan[str]:
        """Append ``event`` (field -> JSON value); returns the entry id.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> s.add({"user": "ann"}).count("-")
            1
            >>> server.stop()
        """
        return Plan.one(self._xadd(event), to_str)

    def plan_add_many(self, events: Sequence[Mapping[str, Any]]) -> Plan[List[str]]:
        """Append many events in one pipeline; returns their ids.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> len(s.add_many([{"n": i} for i in range(3)]))
            3
            >>> server.stop()
        """
        if isinstance(events, Mapping):
            raise TypeError("add_many takes a sequence of events; use add() for one")
        return Plan([self._xadd(e) for e in events], _ids, batch=True)

    def _decode(self, raw: Any) -> Dict[str, Any]:
        if raw is None:
            return {}
        if isinstance(raw, dict):
            items = list(raw.items())
        else:
            items = [(raw[i], raw[i + 1]) for i in range(0, len(raw), 2)]
        out: Dict[str, Any] = {}
        for k, v in items:
            try:
                out[to_str(k)] = self.serializer.loads(v)
            except Exception:
                out[to_str(k)] = to_str(v)  # written by someone else, not JSON
        return out

    def _entries(self, reply: Any) -> List[Entry]:
        found: List[Any] = []
        _collect_entries(reply, found)
        return [Entry(to_str(i), self._decode(f)) for i, f in found if f is not None]

    # -- groups -----------------------------------------------------------
    def plan_ensure_group(self, group: str) -> Plan[None]:
        """Create ``group`` reading from id 0 (and the stream) unless it exists.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> s.ensure_group("g"); s.ensure_group("g")  # the second finds it
            >>> server.stop()
        """
        call = Call(("XGROUP", "CREATE", self.key, _check_name(group, "group"), "0", "MKSTREAM"))
        return Plan([call], _group_created, batch=True, raise_on_error=False)

    def plan_pending(self, group: str) -> Plan[PendingStats]:
        """Pending-entry stats of ``group``, plus the dead-letter stream's length.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> s.ensure_group("g"); s.pending("g").count
            0
            >>> server.stop()
        """
        calls = [Call(("XPENDING", self.key, _check_name(group, "group"))), Call(("XLEN", self.dead_key))]
        return Plan(calls, lambda replies: _pending_stats(replies[0], int(replies[1])), batch=True)

    def plan_dead_letters(self, count: int = 100) -> Plan[List[Entry]]:
        """The oldest ``count`` dead-lettered entries, with ``_dead_*`` fields saying why.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> s.dead_letters()
            []
            >>> server.stop()
        """
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"count must be an int, got {type(count).__name__}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")
        return Plan.one(Call(("XRANGE", self.dead_key, "-", "+", "COUNT", count)), self._entries)

    def plan_length(self) -> Plan[int]:
        """The number of entries in the stream (``len(stream)`` on the sync class).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> _ = s.add({"n": 1}); s.length(), len(s)
            (1, 1)
            >>> server.stop()
        """
        return Plan.one(Call(("XLEN", self.key)), int)

    def consumer(
        self,
        group: str,
        name: str,
        *,
        min_idle: float = 60.0,
        max_deliveries: int = 5,
        count: int = 10,
        block: float = 1.0,
        claim_interval: Optional[float] = None,
    ) -> C:
        """A consumer ``name`` in ``group`` (created from id 0 when it first
        reads); a :class:`Consumer` of this stream's kind (sync or asyncio).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> s.consumer("g", "c1").group
            'g'
            >>> server.stop()
        """
        return self._consumer_class(self, group, name, min_idle=min_idle, max_deliveries=max_deliveries,
                                    count=count, block=block, claim_interval=claim_interval)


class _ConsumerPlans:
    """What a :class:`Consumer` decides (no I/O): its read steps, claims, acks."""

    _stream_type: type = _StreamPlans  # a shell reads only streams of its own kind

    def __init__(
        self,
        stream: _StreamPlans[Any],
        group: str,
        name: str,
        *,
        min_idle: float = 60.0,
        max_deliveries: int = 5,
        count: int = 10,
        block: float = 1.0,
        claim_interval: Optional[float] = None,
    ) -> None:
        if not isinstance(stream, self._stream_type):
            raise TypeError(f"{type(self).__name__} needs a {self._stream_type.__module__}.EventStream, "
                            f"got {type(stream).__module__}.{type(stream).__name__}")
        _check_name(group, "group")
        _check_name(name, "name")
        for arg, value in (("max_deliveries", max_deliveries), ("count", count)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{arg} must be an int >= 1, got {value!r}")
        self.stream = stream
        self.group = group
        self.name = name
        self.min_idle = check_finite(min_idle, "min_idle")
        if self.min_idle < 0:
            raise ValueError(f"min_idle must be >= 0 seconds, got {min_idle!r}")
        self.max_deliveries = max_deliveries
        self.count = count
        self.block = check_finite(block, "block")
        if self.block < 0:
            raise ValueError(f"block must be >= 0 seconds, got {block!r}")
        interval = self.min_idle / 2 if claim_interval is None else check_finite(claim_interval, "claim_interval")
        self.claim_interval = max(interval, 0.01)
        self.dead_lettered: List[str] = []
        self.trimmed: List[str] = []
        self._own_cursor: Optional[str] = "0-0"
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._started = False
        self._stopping = threading.Event()
        self._closed = False

    @property
    def client(self) -> Any:
        return self.stream.client

    def _with_group(self, plan: Plan[Any]) -> Steps[Any]:
        """Run ``plan`` in the group: create it on first use, and again on NOGROUP."""
        if not self._started:
            yield self.stream.plan_ensure_group(self.group)
            self._started = True
        try:
            return (yield plan)
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            # the stream key (and its groups) was deleted or the group destroyed
            yield self.stream.plan_ensure_group(self.group)
            return (yield plan)

    def _claim(self, mode: str, start: str) -> Plan[Tuple[str, List[Entry]]]:
        args = [self.group, self.name, mode, int(self.min_idle * 1000), self.count, self.max_deliveries, start,
                self.stream.dead_maxlen]
        return Plan.one(script_call(_CLAIM, [self.stream.key, self.stream.dead_key], args), self._claimed)

    def _claimed(self, reply: Any) -> Tuple[str, List[Entry]]:
        next_start, entries, counts, dead, gone = reply
        if dead and _metrics.ON:
            _metrics.stream_dead_letters(self.stream, self.group, len(dead))
        self.dead_lettered += [to_str(i) for i in dead]
        self.trimmed += [to_str(i) for i in gone]
        out = []
        for (entry_id, raw), n in zip(entries or [], counts or []):
            out.append(Entry(to_str(entry_id), self.stream._decode(raw), int(n)))
        return to_str(next_start), out

    def _read_new(self, count: int, block: Optional[float]) -> Plan[List[Entry]]:
        block_s = self.block if block is None else check_finite(block, "block")
        cmd: List[Any] = ["XREADGROUP", "GROUP", self.group, self.name, "COUNT", count]
        if block_s > 0:
            cmd += ["BLOCK", max(1, int(block_s * 1000))]
        cmd += ["STREAMS", self.stream.key, ">"]
        return Plan.one(Call(tuple(cmd)), self.stream._entries)

    def plan_read(self, count: Optional[int] = None, block: Optional[float] = None) -> Steps[List[Entry]]:
        """The next batch of entries to process (possibly empty after ``block`` seconds).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "q")
            >>> _ = s.add({"x": 1}); c = s.consumer("g", "c", block=0)
            >>> [e.fields for e in c.read()], c.read()
            ([{'x': 1}], [])
            >>> server.stop()
        """
        self._check_open()
        n = self.count if count is None else count
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"count must be an int, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"count must be >= 1, got {n!r}")
        steps = self._read_steps(n, block)
        return _metrics.counted_reads(self, steps) if _metrics.ON else steps

    def _read_steps(self, n: int, block: Optional[float]) -> Steps[List[Entry]]:
        while self._own_cursor is not None:  # a restart after a crash: our own pending first
            cursor, entries = yield from self._with_group(self._claim("own", self._own_cursor))
            self._own_cursor = cursor or None
            if entries:
                return entries
        now = time.monotonic()
        if now >= self._next_claim:
            cursor, entries = yield from self._with_group(self._claim("auto", self._claim_cursor))
            self._claim_cursor = cursor or "0-0"
            if not cursor:
                self._next_claim = now + self.claim_interval
            if entries:
                return entries
        try:
            return (yield from self._with_group(self._read_new(n, block)))
        except (RedisConnectionError, RedisTimeoutError, GeneratorExit):
            # The read may have been delivered (a lost reply, a cancelled
            # await): its entries are then pending for us, so the next read
            # drains our own pending entries first instead of waiting for a claim.
            self._own_cursor = "0-0"
            raise

    def plan_ack(self, *entries: Union[Entry, str]) -> Plan[bool]:
        """Acknowledge entries (or ids); ``True`` if all were pending. Idempotent.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "q")
            >>> c = s.consumer("g", "c"); c.ack("0-1")
            False
            >>> server.stop()
        """
        ids = [e.id if isinstance(e, Entry) else to_str(e) for e in entries]
        if not ids:
            return Plan.done(True)
        return Plan.one(Call(("XACK", self.stream.key, self.group, *ids)), lambda n: int(n) == len(ids))

    def plan_pending(self) -> Steps[PendingStats]:
        """The group's pending stats (see :meth:`EventStream.pending`).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "q")
            >>> s.consumer("g", "c").pending().count
            0
            >>> server.stop()
        """
        return self._with_group(self.stream.plan_pending(self.group))

    def stop(self) -> None:
        """End iteration after the current read; pending entries stay pending.
        Safe from a signal handler or another thread."""
        self._stopping.set()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` (or :meth:`close`) was called."""
        return self._stopping.is_set()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"consumer {self.name!r} of group {self.group!r} was closed; make a new one")


class EventStream(_StreamPlans["Consumer"]):
    """An append-only event log (a Redis stream) read by consumer groups.

    ``add`` appends JSON-encoded fields with XADD. With ``maxlen`` the stream
    is trimmed approximately (``MAXLEN ~``): trimming drops the oldest entries
    whether or not every group has acked them, so an entry can be lost before
    it is processed; consumers then skip (and ack) the trimmed ids. Without
    ``maxlen`` nothing is lost: each entry is acked by some consumer or lands
    in the dead-letter stream ``dead_key``. The dead-letter stream is itself
    trimmed to ``dead_maxlen`` entries (default 10,000; the oldest go
    first), so a flood of poison messages cannot grow it without bound.

    The stream and its dead-letter stream share a hash tag (one cluster slot).

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); s = EventStream(server.client(), "log", maxlen=1000)
        >>> s.key, s.dead_key
        ('stream:{log}', 'stream:{log}:dead')
        >>> _ = s.add({"n": 1}); len(s)
        1
        >>> server.stop()
    """

    add = sync_operation(_StreamPlans.plan_add)
    add_many = sync_operation(_StreamPlans.plan_add_many)
    ensure_group = sync_operation(_StreamPlans.plan_ensure_group)
    pending = sync_operation(_StreamPlans.plan_pending)
    dead_letters = sync_operation(_StreamPlans.plan_dead_letters)
    length = sync_operation(_StreamPlans.plan_length)

    def __len__(self) -> int:
        return self.length()


class Consumer(_ConsumerPlans):
    """One consumer of a group: own pending first, then new entries, plus claims of stuck ones.

    Each :meth:`read`:

    1. on first use, creates the group from id 0 if it is missing (and again
       whenever Redis answers NOGROUP, e.g. after the stream key was deleted);
    2. drains this consumer's own pending entries (a restart after a crash);
    3. every ``claim_interval`` seconds (default ``min_idle / 2``) claims
       entries idle for ``min_idle`` seconds from dead consumers with
       XAUTOCLAIM, after moving those already delivered ``max_deliveries``
       times to the dead-letter stream (counts from ``XPENDING … IDLE``);
    4. otherwise reads new entries with XREADGROUP, blocking up to ``block`` s.

    Iterate it (``for entry in consumer``) and :meth:`ack` each entry when
    done; :meth:`stop` (safe from a signal handler or another thread) ends
    the iteration after the current read, leaving unacked entries pending
    for a later run or another consumer. After :meth:`close` a read raises
    :class:`~fastredis.exceptions.ClosedError`.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); s = EventStream(server.client(), "jobs")
        >>> _ = s.add({"job": 1})
        >>> c = s.consumer("workers", "w1", block=0.1)
        >>> for entry in c:
        ...     c.ack(entry); c.stop()
        True
        >>> c.pending().count
        0
        >>> server.stop()
    """

    _stream_type = EventStream
    read = sync_operation(_ConsumerPlans.plan_read)
    ack = sync_operation(_ConsumerPlans.plan_ack)
    pending = sync_operation(_ConsumerPlans.plan_pending)

    def __iter__(self) -> Iterator[Entry]:
        while not self._stopping.is_set():
            for entry in self.read():
                yield entry
                if self._stopping.is_set():
                    return

    def close(self) -> None:
        """Stop for good; the consumer stays in the group so its pending entries are not lost."""
        self.stop()
        self._closed = True

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


EventStream._consumer_class = Consumer  # type: ignore[misc]  # (defined after the stream)
