"""Messaging: ``Channel`` (pub/sub that survives killed connections) and
``EventStream`` (a stream with consumer groups, claiming and dead-lettering).

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

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from .._text import check_finite, to_str
from ..keys import KeySpace, escape_part
from ..scripts import LuaScript, execute, pipeline_for
from ..serializers import Serializer, get_serializer

__all__ = ["Channel", "Subscription", "Message", "Gap", "EventStream", "Consumer", "Entry", "PendingStats"]

log = logging.getLogger(__name__)

_GLOB = {c: "\\" + c for c in "*?[]\\"}


def _glob_escape(name: str) -> str:
    """Escape glob characters so a name can only match itself in PSUBSCRIBE."""
    return "".join(_GLOB.get(c, c) for c in name)


# -- pub/sub ------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    """One pub/sub message: ``data`` is decoded JSON (``raw`` bytes if it was not JSON).

    Example::

        >>> Message("chan:news", {"a": 1}, b'{"a":1}').data
        {'a': 1}
    """

    channel: str
    data: Any
    raw: bytes
    pattern: Optional[str] = None


@dataclass(frozen=True)
class Gap:
    """A time span (epoch seconds) during which messages may have been missed.

    Example::

        >>> round(Gap(10.0, 10.25, "killed").duration, 2)
        0.25
    """

    start: float
    end: float
    reason: str

    @property
    def duration(self) -> float:
        return self.end - self.start


_LIVE_SUBSCRIPTIONS: "weakref.WeakSet[Subscription]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sub in list(_LIVE_SUBSCRIPTIONS):
        sub._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Subscription:
    """A live subscription on its own connection; resubscribes after any disconnect.

    Made by :meth:`Channel.subscribe`. Iterate it for :class:`Message` objects,
    or give ``handler`` to run it in a background thread. When the connection
    dies (``CLIENT KILL``, a server restart, a silent peer caught by the PING
    health check) it reconnects with backoff (10 ms up to ``max_backoff``),
    resubscribes, and calls ``on_gap(Gap)``: messages published during the
    gap are lost, as pub/sub has no history (use :class:`EventStream` when
    that matters). After ``os.fork()`` the child owns no socket and no
    thread of the parent: an iterated subscription reconnects on first use,
    a handler subscription is closed in the child.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); ch = Channel(server.client(), "news")
        >>> with ch.subscribe() as sub:
        ...     _ = ch.publish({"headline": "hi"})
        ...     sub.get(timeout=5).data
        {'headline': 'hi'}
        >>> server.stop()
    """

    def __init__(
        self,
        client: Any,
        channels: Sequence[str] = (),
        patterns: Sequence[str] = (),
        *,
        serializer: Union[str, Serializer, None] = "json",
        handler: Optional[Callable[[Message], Any]] = None,
        on_gap: Optional[Callable[[Gap], Any]] = None,
        on_error: Optional[Callable[[BaseException], Any]] = None,
        max_backoff: float = 1.0,
        health_interval: float = 5.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if not channels and not patterns:
            raise ValueError("subscribe to at least one channel or pattern")
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        # A private RESP2 connection with no retry: messages arrive as plain
        # arrays (no RESP3 push routing), and reconnecting is ours to do.
        kwargs.update(protocol=2, retry=Retry(NoBackoff(), 0), health_check_interval=0)
        kwargs.pop("maint_notifications_pool_handler", None)
        kwargs.pop("maint_notifications_config", None)
        self._conn_factory = lambda: pool.connection_class(**kwargs)
        self.channels = list(channels)
        self.patterns = list(patterns)
        self.serializer = get_serializer(serializer)
        self.handler = handler
        self.on_gap = on_gap
        self.on_error = on_error
        self.max_backoff = check_finite(max_backoff, "max_backoff")
        self.health_interval = check_finite(health_interval, "health_interval")
        self.reconnects = 0
        self.gaps: List[Gap] = []
        self._conn: Any = None
        self._confirmations = 0
        self._gap_start: Optional[float] = None
        self._gap_reason = ""
        self._last_rx = 0.0
        self._ping_sent: Optional[float] = None
        self._closed = threading.Event()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._thread: Optional[threading.Thread] = None
        _LIVE_SUBSCRIPTIONS.add(self)
        deadline = time.monotonic() + connect_timeout
        self._connect()
        while not self._subscribed.is_set():  # subscribed before we return: no message missed
            if time.monotonic() > deadline:
                self.close()
                raise RedisTimeoutError("no SUBSCRIBE confirmation from the server")
            self._read_one(0.05)
        if handler is not None:
            self._thread = threading.Thread(target=self._run, name="fastredis-subscription", daemon=True)
            self._thread.start()

    # -- connection -------------------------------------------------------
    def _connect(self) -> None:
        conn = self._conn_factory()
        conn.connect()
        if self.channels:
            conn.send_command("SUBSCRIBE", *self.channels)
        if self.patterns:
            conn.send_command("PSUBSCRIBE", *self.patterns)
        self._conn = conn
        self._confirmations = 0
        self._last_rx = time.monotonic()
        self._ping_sent = None

    def _drop(self, reason: str) -> None:
        if self._conn is not None:
            try:
                self._conn.disconnect()
            except Exception:
                pass
            self._conn = None
        self._subscribed.clear()
        if self._gap_start is None:
            self._gap_start = time.time()
            self._gap_reason = reason

    def _reconnect(self, deadline: float) -> bool:
        delay = 0.01
        while not self._closed.is_set():
            try:
                self._connect()
                self.reconnects += 1
                return True
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                self._gap_reason = self._gap_reason or str(e)
                now = time.monotonic()
                if now >= deadline:
                    return False
                self._closed.wait(min(delay, deadline - now))
                delay = min(delay * 2, self.max_backoff)
        return False

    def _forked(self) -> None:
        # The child must never read or write the parent's socket: forget it
        # (the parent's side stays open) and drop the parent's thread.
        self._conn = None
        self._pid = os.getpid()
        if self._thread is not None:
            self._thread = None
            self._closed.set()
        elif self._gap_start is None:
            self._gap_start = time.time()
            self._gap_reason = "fork"

    # -- reading ----------------------------------------------------------
    def _read_one(self, timeout: float) -> Optional[Message]:
        conn = self._conn
        now = time.monotonic()
        if self._ping_sent is None and now - self._last_rx > self.health_interval:
            conn.send_command("PING")
            self._ping_sent = now
        elif self._ping_sent is not None and now - self._ping_sent > self.health_interval:
            raise RedisTimeoutError(f"no reply to PING within {self.health_interval}s")
        if not conn.can_read(timeout=timeout):
            return None
        reply = conn.read_response(disable_decoding=True)
        self._last_rx = time.monotonic()
        if not isinstance(reply, list) or not reply:
            return None
        kind = reply[0]
        if kind == b"message":
            return self._message(reply[1], reply[2], None)
        if kind == b"pmessage":
            return self._message(reply[2], reply[3], reply[1])
        if kind in (b"subscribe", b"psubscribe"):
            self._confirmations += 1
            if self._confirmations >= len(self.channels) + len(self.patterns):
                self._subscribed.set()
                if self._gap_start is not None:
                    gap = Gap(self._gap_start, time.time(), self._gap_reason)
                    self._gap_start = None
                    self._gap_reason = ""
                    self.gaps.append(gap)
                    if self.on_gap is not None:
                        self.on_gap(gap)
        elif kind == b"pong":
            self._ping_sent = None
        return None

    def _message(self, channel: bytes, data: bytes, pattern: Optional[bytes]) -> Message:
        try:
            value = self.serializer.loads(data)
        except Exception:
            value = data  # not ours to reject: hand over the raw bytes
        return Message(to_str(channel), value, data, None if pattern is None else to_str(pattern))

    def get(self, timeout: Optional[float] = 1.0) -> Optional[Message]:
        """The next message, or ``None`` after ``timeout`` seconds (``None`` = wait forever).

        Reconnects and resubscribes transparently while waiting.
        """
        deadline = float("inf") if timeout is None else time.monotonic() + timeout
        with self._lock:
            if os.getpid() != self._pid:
                self._forked()
            while not self._closed.is_set():
                if self._conn is None and not self._reconnect(deadline):
                    return None
                now = time.monotonic()
                try:
                    msg = self._read_one(max(0.0, min(0.1, deadline - now)))
                except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                    self._drop(str(e) or type(e).__name__)
                    continue
                if msg is not None:
                    return msg
                if time.monotonic() >= deadline:
                    return None
        return None

    def __iter__(self) -> Iterator[Message]:
        if self._thread is not None:
            raise RuntimeError("this subscription has a handler thread; it cannot also be iterated")
        while not self._closed.is_set():
            msg = self.get(timeout=0.5)
            if msg is not None:
                yield msg

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                msg = self.get(timeout=0.2)
                if msg is not None and self.handler is not None:
                    self.handler(msg)
            except Exception as e:  # a failing handler must not kill the subscription
                if self.on_error is not None:
                    self.on_error(e)
                else:
                    log.exception("pub/sub handler failed")

    @property
    def subscribed(self) -> bool:
        """Whether every channel and pattern is currently subscribed."""
        return self._subscribed.is_set()

    def close(self) -> None:
        """Stop the thread (if any) and close the connection. Safe to call twice."""
        self._closed.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._lock:
            if self._conn is not None and os.getpid() == self._pid:
                try:
                    self._conn.disconnect()
                except Exception:
                    pass
            self._conn = None
        _LIVE_SUBSCRIPTIONS.discard(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._closed.set()
        except Exception:
            pass


class Channel:
    """A pub/sub channel named ``<prefix>:<name>`` (name escaped); messages are JSON.

    ``subscribe(children=True)`` also receives sub-channels made by
    :meth:`child`, through a pattern built from the escaped name: a name
    containing ``*``, ``?`` or ``[`` matches only itself, never other channels.
    The Channel keeps track of its subscriptions; ``close()`` (or leaving
    ``with``) closes them all.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> with Channel(r, "room*") as room:
        ...     sub = room.subscribe(children=True)
        ...     _ = Channel(r, "roomA").publish("not for us")
        ...     _ = room.child("alice").publish({"hi": 1})
        ...     m = sub.get(timeout=5); (m.channel, m.data)
        ('chan:room%2A:alice', {'hi': 1})
        >>> server.stop()
    """

    def __init__(self, client: Any, name: Union[str, bytes, int], *, prefix: str = "chan", serializer: Union[str, Serializer, None] = "json") -> None:
        self.client = client
        self.channel = KeySpace(prefix).key(name)
        self.serializer = get_serializer(serializer)
        self._subs: "weakref.WeakSet[Subscription]" = weakref.WeakSet()

    @classmethod
    def _raw(cls, client: Any, channel: str, serializer: Union[str, Serializer, None] = "json") -> "Channel":
        self = cls.__new__(cls)
        self.client = client
        self.channel = channel
        self.serializer = get_serializer(serializer)
        self._subs = weakref.WeakSet()
        return self

    def child(self, *parts: Union[str, bytes, int]) -> "Channel":
        """A sub-channel ``<channel>:<part>...`` (parts escaped).

        Example::

            >>> Channel(None, "a").child("b:c").channel
            'chan:a:b%3Ac'
        """
        if not parts:
            raise ValueError("child() needs at least one part")
        return Channel._raw(self.client, self.channel + ":" + ":".join(escape_part(p) for p in parts), self.serializer)

    def publish(self, message: Any) -> int:
        """Publish ``message`` (serialized); returns how many subscribers got it.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> Channel(server.client(), "news").publish({"a": 1})
            0
            >>> server.stop()
        """
        return int(execute(self.client, ("PUBLISH", self.channel, self.serializer.dumps(message))))

    def subscribe(
        self,
        handler: Optional[Callable[[Message], Any]] = None,
        *,
        children: bool = False,
        on_gap: Optional[Callable[[Gap], Any]] = None,
        on_error: Optional[Callable[[BaseException], Any]] = None,
        max_backoff: float = 1.0,
        health_interval: float = 5.0,
    ) -> Subscription:
        """Subscribe; returns a :class:`Subscription` already confirmed by the server.

        Without ``handler`` iterate it (or call ``get``); with ``handler`` it
        runs in a daemon thread until ``close()``. ``on_gap`` is called with a
        :class:`Gap` after each reconnect.

        Example::

            >>> from fastredis.server import RedisServer
            >>> import threading
            >>> server = RedisServer(); ch = Channel(server.client(), "n")
            >>> got = threading.Event()
            >>> with ch.subscribe(lambda m: got.set()):
            ...     _ = ch.publish(1); got.wait(5)
            True
            >>> server.stop()
        """
        patterns = [_glob_escape(self.channel) + ":*"] if children else []
        sub = Subscription(
            self.client, [self.channel], patterns, serializer=self.serializer, handler=handler,
            on_gap=on_gap, on_error=on_error, max_backoff=max_backoff, health_interval=health_interval,
        )
        self._subs.add(sub)
        return sub

    def close(self) -> None:
        """Close every subscription made through this channel."""
        for sub in list(self._subs):
            sub.close()

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- streams --------------------------------------------------------------------

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


class EventStream:
    """An append-only event log (a Redis stream) read by consumer groups.

    ``add`` appends JSON-encoded fields with XADD. With ``maxlen`` the stream
    is trimmed approximately (``MAXLEN ~``): trimming drops the oldest entries
    whether or not every group has acked them, so an entry can be lost before
    it is processed; consumers then skip (and ack) the trimmed ids. Without
    ``maxlen`` nothing is lost: each entry is acked by some consumer or lands
    in the dead-letter stream ``dead_key``.

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

    _claim = LuaScript.load("stream_claim")

    def __init__(
        self,
        client: Any,
        name: Union[str, bytes, int],
        *,
        maxlen: Optional[int] = None,
        prefix: str = "stream",
        serializer: Union[str, Serializer, None] = "json",
    ) -> None:
        if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1):
            raise ValueError(f"maxlen must be a positive int or None, got {maxlen!r}")
        self.client = client
        keys = KeySpace(prefix)
        self.key = keys.tagged(name)
        self.dead_key = keys.tagged(name, "dead")
        self.maxlen = maxlen
        self.serializer = get_serializer(serializer)

    # -- writing ----------------------------------------------------------
    def _xadd_command(self, event: Mapping[str, Any]) -> List[Any]:
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
        return cmd

    def add(self, event: Mapping[str, Any]) -> str:
        """Append ``event`` (field -> JSON value); returns the entry id.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> s.add({"user": "ann"}).count("-")
            1
            >>> server.stop()
        """
        return to_str(execute(self.client, self._xadd_command(event)))

    def add_many(self, events: Sequence[Mapping[str, Any]]) -> List[str]:
        """Append many events in one pipeline; returns their ids.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> len(s.add_many([{"n": i} for i in range(3)]))
            3
            >>> server.stop()
        """
        commands = [self._xadd_command(e) for e in events]
        if not commands:
            return []
        pipe = pipeline_for(self.client)
        for cmd in commands:
            pipe.execute_command(*cmd)
        return [to_str(x) for x in pipe.execute()]

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

    # -- reading ----------------------------------------------------------
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
    ) -> "Consumer":
        """A consumer ``name`` in ``group`` (created from id 0 if missing). See :class:`Consumer`.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> s.consumer("g", "c1").group
            'g'
            >>> server.stop()
        """
        return Consumer(self, group, name, min_idle=min_idle, max_deliveries=max_deliveries, count=count, block=block, claim_interval=claim_interval)

    def ensure_group(self, group: str) -> None:
        """Create ``group`` reading from id 0 (and the stream) unless it exists."""
        try:
            self.client.execute_command("XGROUP", "CREATE", self.key, group, "0", "MKSTREAM")
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def pending(self, group: str) -> PendingStats:
        """Pending-entry stats of ``group``, plus the dead-letter stream's length.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> s.ensure_group("g"); s.pending("g").count
            0
            >>> server.stop()
        """
        pipe = pipeline_for(self.client)
        pipe.execute_command("XPENDING", self.key, group)
        pipe.execute_command("XLEN", self.dead_key)
        summary, dead = pipe.execute()
        return _pending_stats(summary, int(dead))

    def dead_letters(self, count: int = 100) -> List[Entry]:
        """The oldest ``count`` dead-lettered entries, with ``_dead_*`` fields saying why.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "log")
            >>> s.dead_letters()
            []
            >>> server.stop()
        """
        reply = self.client.execute_command("XRANGE", self.dead_key, "-", "+", "COUNT", count)
        found: List[Any] = []
        _collect_entries(reply, found)
        return [Entry(to_str(i), self._decode(f)) for i, f in found]

    def __len__(self) -> int:
        return int(self.client.xlen(self.key))


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


class Consumer:
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
    for a later run or another consumer.

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

    def __init__(
        self,
        stream: EventStream,
        group: str,
        name: str,
        *,
        min_idle: float = 60.0,
        max_deliveries: int = 5,
        count: int = 10,
        block: float = 1.0,
        claim_interval: Optional[float] = None,
    ) -> None:
        for arg, value in (("group", group), ("name", name)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{arg} must be a non-empty str, got {value!r}")
        if isinstance(max_deliveries, bool) or not isinstance(max_deliveries, int) or max_deliveries < 1:
            raise ValueError(f"max_deliveries must be an int >= 1, got {max_deliveries!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an int >= 1, got {count!r}")
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

    @property
    def client(self) -> Any:
        return self.stream.client

    def _with_group(self, fn: Callable[[], Any]) -> Any:
        if not self._started:
            self.stream.ensure_group(self.group)
            self._started = True
        try:
            return fn()
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            # the stream key (and its groups) was deleted or the group destroyed
            self.stream.ensure_group(self.group)
            return fn()

    def _run_claim(self, mode: str, start: str) -> Any:
        args = [self.group, self.name, mode, int(self.min_idle * 1000), self.count, self.max_deliveries, start]
        return self._with_group(lambda: self.stream._claim(self.client, [self.stream.key, self.stream.dead_key], args))

    def _claimed(self, reply: Any) -> "tuple[str, List[Entry]]":
        next_start, entries, counts, dead, gone = reply
        self.dead_lettered += [to_str(i) for i in dead]
        self.trimmed += [to_str(i) for i in gone]
        out = []
        for (entry_id, raw), n in zip(entries or [], counts or []):
            out.append(Entry(to_str(entry_id), self.stream._decode(raw), int(n)))
        return to_str(next_start), out

    def _read_new(self, count: int, block: Optional[float]) -> List[Entry]:
        block_s = self.block if block is None else block
        cmd: List[Any] = ["XREADGROUP", "GROUP", self.group, self.name, "COUNT", count]
        if block_s > 0:
            cmd += ["BLOCK", max(1, int(block_s * 1000))]
        cmd += ["STREAMS", self.stream.key, ">"]
        reply = self._with_group(lambda: self.client.execute_command(*cmd))
        found: List[Any] = []
        _collect_entries(reply, found)
        return [Entry(to_str(i), self.stream._decode(f)) for i, f in found if f is not None]

    def read(self, count: Optional[int] = None, block: Optional[float] = None) -> List[Entry]:
        """The next batch of entries to process (possibly empty after ``block`` seconds).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); s = EventStream(server.client(), "q")
            >>> _ = s.add({"x": 1}); c = s.consumer("g", "c", block=0)
            >>> [e.fields for e in c.read()], c.read()
            ([{'x': 1}], [])
            >>> server.stop()
        """
        n = self.count if count is None else count
        while self._own_cursor is not None:
            cursor, entries = self._claimed(self._run_claim("own", self._own_cursor))
            self._own_cursor = cursor or None
            if entries:
                return entries
        now = time.monotonic()
        if now >= self._next_claim:
            cursor, entries = self._claimed(self._run_claim("auto", self._claim_cursor))
            self._claim_cursor = cursor or "0-0"
            if not cursor:
                self._next_claim = now + self.claim_interval
            if entries:
                return entries
        return self._read_new(n, block)

    def ack(self, *entries: Union[Entry, str]) -> bool:
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
            return True
        return int(self.client.xack(self.stream.key, self.group, *ids)) == len(ids)

    def pending(self) -> PendingStats:
        """The group's pending stats (see :meth:`EventStream.pending`)."""
        return self._with_group(lambda: self.stream.pending(self.group))

    def stop(self) -> None:
        """End iteration after the current read; pending entries stay pending."""
        self._stopping.set()

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    def __iter__(self) -> Iterator[Entry]:
        while not self._stopping.is_set():
            for entry in self.read():
                yield entry
                if self._stopping.is_set():
                    return

    def close(self) -> None:
        """Stop; the consumer stays in the group so its pending entries are not lost."""
        self.stop()

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
