"""Pub/sub: ``Channel`` and ``Subscription``, which survives killed connections.

What a subscription decides (which commands subscribe, what a reply means,
when to PING, when the connection is dead, how long to back off, which gap
to report) is :class:`SubscriptionState`, plain code with no I/O; the sync
:class:`Subscription` here and its asyncio twin
(:class:`fastredis.asyncio.Subscription`) move the bytes.

Example::

    >>> import redis
    >>> news = Channel(redis.Redis(), "news")
    >>> news.child("sport").channel, news.plan_publish({"a": 1}).calls[0].args
    ('chan:news:sport', ('PUBLISH', 'chan:news', b'{"a":1}'))
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from .. import metrics as _metrics
from .._text import check_finite, to_str
from ..exceptions import ClosedError
from ..keys import KeySpace, escape_part
from ..serializers import Serializer, get_serializer
from ._clients import check_sync_client
from ._conn import FORKS, finalizer, owner_thread, private_connection
from ._plan import Call, Plan, sync_operation

__all__ = ["Channel", "Subscription", "SubscriptionState", "Message", "Gap"]

log = logging.getLogger(__name__)

_GLOB = {c: "\\" + c for c in "*?[]\\"}
_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def _glob_escape(name: str) -> str:
    """Escape glob characters so a name can only match itself in PSUBSCRIBE."""
    return "".join(_GLOB.get(c, c) for c in name)


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


class SubscriptionState:
    """The decisions of a subscription, without I/O.

    A shell connects, sends :meth:`commands`, calls :meth:`connected`, feeds
    every reply to :meth:`receive` (which returns the message, if any, and the
    :class:`Gap` to report once a reconnect is confirmed), asks
    :meth:`health` when idle (``"ping"``: send a PING; a dead peer raises
    ``TimeoutError``), and calls :meth:`dropped` when the connection fails.

    Example::

        >>> import time
        >>> st = SubscriptionState(["c"], [], get_serializer("json"))
        >>> st.commands()
        [('SUBSCRIBE', 'c')]
        >>> st.connected(time.monotonic()); st.subscribed
        False
        >>> st.receive([b"subscribe", b"c", 1], time.monotonic(), time.time()), st.subscribed
        ((None, None), True)
        >>> st.receive([b"message", b"c", b"[1]"], time.monotonic(), time.time())[0].data
        [1]
    """

    def __init__(self, channels: Sequence[str], patterns: Sequence[str], serializer: Serializer,
                 *, health_interval: float = 5.0, max_backoff: float = 1.0) -> None:
        if not channels and not patterns:
            raise ValueError("subscribe to at least one channel or pattern")
        self.channels = list(channels)
        self.patterns = list(patterns)
        self.serializer = serializer
        self.max_backoff = check_finite(max_backoff, "max_backoff")
        self.health_interval = check_finite(health_interval, "health_interval")
        if self.max_backoff <= 0 or self.health_interval <= 0:
            raise ValueError("max_backoff and health_interval must be > 0 seconds")
        self.reconnects = 0
        self.gaps: List[Gap] = []
        self.subscribed = False
        self._confirmations = 0
        self._gap_start: Optional[float] = None
        self._gap_reason = ""
        self._last_rx = 0.0
        self._ping_sent: Optional[float] = None

    def commands(self) -> List[Tuple[Any, ...]]:
        """What to send on a new connection."""
        out: List[Tuple[Any, ...]] = []
        if self.channels:
            out.append(("SUBSCRIBE", *self.channels))
        if self.patterns:
            out.append(("PSUBSCRIBE", *self.patterns))
        return out

    def connected(self, now: float) -> None:
        """A new connection was made and :meth:`commands` were sent."""
        self._confirmations = 0
        self._last_rx = now
        self._ping_sent = None

    def reconnected(self) -> None:
        """A connection replaced a lost one."""
        self.reconnects += 1
        if _metrics.ON:
            _metrics.pubsub_reconnect(self)

    def dropped(self, reason: str, wall: float) -> None:
        """The connection failed (or a connect attempt did): a gap starts, if none is open."""
        self.subscribed = False
        if self._gap_start is None:
            self._gap_start = wall
            self._gap_reason = reason
        elif not self._gap_reason:
            self._gap_reason = reason

    def health(self, now: float) -> Optional[str]:
        """``"ping"`` when a PING is due; raises ``TimeoutError`` when the last one went unanswered."""
        if self._ping_sent is None:
            if now - self._last_rx > self.health_interval:
                self._ping_sent = now
                return "ping"
        elif now - self._ping_sent > self.health_interval:
            raise RedisTimeoutError(f"no reply to PING within {self.health_interval}s")
        return None

    def backoff(self, delay: Optional[float]) -> float:
        """The pause before the next connect attempt (10 ms doubling up to ``max_backoff``)."""
        return 0.01 if delay is None else min(delay * 2, self.max_backoff)

    def receive(self, reply: Any, now: float, wall: float) -> Tuple[Optional[Message], Optional[Gap]]:
        """Interpret one reply of the subscribed connection (read undecoded)."""
        self._last_rx = now
        if not isinstance(reply, list) or not reply:
            return None, None
        kind = reply[0]
        if kind == b"message":
            return self._message(reply[1], reply[2], None), None
        if kind == b"pmessage":
            return self._message(reply[2], reply[3], reply[1]), None
        if kind in (b"subscribe", b"psubscribe"):
            self._confirmations += 1
            if self._confirmations >= len(self.channels) + len(self.patterns):
                self.subscribed = True
                if self._gap_start is not None:
                    gap = Gap(self._gap_start, wall, self._gap_reason)
                    self._gap_start = None
                    self._gap_reason = ""
                    self.gaps.append(gap)
                    return None, gap
        elif kind == b"pong":
            self._ping_sent = None
        return None, None

    def forked(self, wall: float) -> None:
        """In a forked child: the parent's connection is not ours; a gap starts."""
        self.dropped("fork", wall)

    def _message(self, channel: bytes, data: bytes, pattern: Optional[bytes]) -> Message:
        try:
            value = self.serializer.loads(data)
        except Exception:
            value = data  # not ours to reject: hand over the raw bytes
        return Message(to_str(channel), value, data, None if pattern is None else to_str(pattern))


def _reply_int(reply: Any) -> int:
    return int(reply)


class _ChannelPlans:
    """What :class:`Channel` decides (no I/O): its name, children, publishing."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)
    _subscription_class: Callable[..., Any]  # the shell's Subscription

    def __init__(self, client: Any, name: Union[str, bytes, int], *, prefix: str = "chan",
                 serializer: Union[str, Serializer, None] = "json") -> None:
        self.client = self._check_client(client, type(self).__name__)
        self.channel = KeySpace(prefix).key(name)
        self.serializer = get_serializer(serializer)
        self._subs: List[Any] = []
        self._closed = False

    @classmethod
    def _raw(cls, client: Any, channel: str, serializer: Union[str, Serializer, None] = "json") -> Any:
        self = cls.__new__(cls)
        self.client = client
        self.channel = channel
        self.serializer = get_serializer(serializer)
        self._subs = []
        self._closed = False
        return self

    def child(self, *parts: Union[str, bytes, int]) -> Any:
        """A sub-channel ``<channel>:<part>...`` (parts escaped).

        Example::

            >>> import redis
            >>> Channel(redis.Redis(), "a").child("b:c").channel
            'chan:a:b%3Ac'
        """
        if not parts:
            raise ValueError("child() needs at least one part")
        return type(self)._raw(self.client, self.channel + ":" + ":".join(escape_part(p) for p in parts), self.serializer)

    def plan_publish(self, message: Any) -> Plan[int]:
        """Publish ``message`` (serialized); returns how many subscribers got it.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> Channel(server.client(), "news").publish({"a": 1})
            0
            >>> server.stop()
        """
        self._check_open()
        return Plan.one(Call(("PUBLISH", self.channel, self.serializer.dumps(message))), _reply_int)

    def _subscription(self, handler: Any, children: bool, **options: Any) -> Any:
        """A subscription of the shell's kind to this channel (and its children)."""
        self._check_open()
        if not isinstance(children, bool):
            raise TypeError(f"children must be True or False, got {type(children).__name__}")
        patterns = [_glob_escape(self.channel) + ":*"] if children else []
        return self._subscription_class(self.client, [self.channel], patterns, serializer=self.serializer,
                                        handler=handler, **options)

    def _keep(self, sub: Any) -> None:
        self._subs = [s for s in self._subs if not s.closed]
        self._subs.append(sub)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"channel {self.channel!r} was closed")


class _Subscriber:
    """What both subscription shells share: the options, checked; the
    :class:`SubscriptionState`; its figures as attributes. A shell opens the
    connection in ``_open(client)`` and reports ``closed``."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)

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
        self._check_client(client, "Subscription")
        for name, fn in (("handler", handler), ("on_gap", on_gap), ("on_error", on_error)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
        self._state = SubscriptionState(channels, patterns, get_serializer(serializer),
                                        health_interval=health_interval, max_backoff=max_backoff)
        self.connect_timeout = check_finite(connect_timeout, "connect_timeout")
        self.handler = handler
        self.on_gap = on_gap
        self.on_error = on_error
        self._open(client)

    def _open(self, client: Any) -> None:
        raise NotImplementedError

    # The state, as attributes of the subscription.
    channels = property(lambda self: self._state.channels, doc="The subscribed channels.")
    patterns = property(lambda self: self._state.patterns, doc="The subscribed patterns.")
    serializer = property(lambda self: self._state.serializer, doc="Decodes message data.")
    reconnects = property(lambda self: self._state.reconnects, doc="Reconnections so far.")
    gaps = property(lambda self: self._state.gaps, doc="Every :class:`Gap` so far.")
    max_backoff = property(lambda self: self._state.max_backoff, doc="Longest pause between connect attempts.")
    health_interval = property(lambda self: self._state.health_interval, doc="Idle seconds before a PING.")

    @property
    def subscribed(self) -> bool:
        """Whether every channel and pattern is currently subscribed."""
        return self._state.subscribed

    def _check_open(self) -> None:
        if self.closed:
            raise ClosedError("this subscription was closed; subscribe again")

    @property
    def closed(self) -> bool:
        raise NotImplementedError


class _SyncSubscriber:
    """The I/O of one sync subscription: its private connection, read under a lock.

    Held by the handler thread; never holds the :class:`Subscription` itself,
    so a dropped Subscription is collected and its thread ends."""

    def __init__(self, client: Any, state: SubscriptionState) -> None:
        self.client = client
        self.state = state
        self.conn: Any = None
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.pid = os.getpid()

    def connect(self) -> None:
        # A private RESP2 connection with no retry: messages arrive as plain
        # arrays (no RESP3 push routing), and reconnecting is ours to do.
        conn = private_connection(self.client, protocol=2, retry=Retry(NoBackoff(), 0), health_check_interval=0)
        conn.connect()
        for command in self.state.commands():
            conn.send_command(*command)
        self.conn = conn
        self.state.connected(time.monotonic())

    def drop(self, reason: str) -> None:
        if self.conn is not None:
            try:
                self.conn.disconnect()
            except Exception:
                pass
            self.conn = None
        self.state.dropped(reason, time.time())

    def reconnect(self, deadline: float) -> bool:
        delay = self.state.backoff(None)
        while not self.closed.is_set():
            try:
                self.connect()
                self.state.reconnected()
                return True
            except _CONNECTION_ERRORS as e:
                self.state.dropped(str(e), time.time())
                now = time.monotonic()
                if now >= deadline:
                    return False
                self.closed.wait(min(delay, deadline - now))
                delay = self.state.backoff(delay)
        return False

    def read_one(self, timeout: float) -> Tuple[Optional[Message], Optional[Gap]]:
        conn = self.conn
        if self.state.health(time.monotonic()) == "ping":
            conn.send_command("PING")
        if not conn.can_read(timeout=timeout):
            return None, None
        reply = conn.read_response(disable_decoding=True)
        return self.state.receive(reply, time.monotonic(), time.time())

    def get(self, timeout: Optional[float], on_gap: Optional[Callable[[Gap], Any]]) -> Optional[Message]:
        deadline = float("inf") if timeout is None else time.monotonic() + timeout
        with self.lock:
            if os.getpid() != self.pid:
                self.forked()
            while not self.closed.is_set():
                if self.conn is None and not self.reconnect(deadline):
                    return None
                try:
                    msg, gap = self.read_one(max(0.0, min(0.1, deadline - time.monotonic())))
                except _CONNECTION_ERRORS as e:
                    self.drop(str(e) or type(e).__name__)
                    continue
                if gap is not None and on_gap is not None:
                    on_gap(gap)
                if msg is not None:
                    return msg
                if time.monotonic() >= deadline:
                    return None
        return None

    def forked(self) -> None:
        # The child must never read or write the parent's socket: forget it
        # (the parent's side stays open).
        self.conn = None
        self.pid = os.getpid()
        self.state.forked(time.time())

    def close(self) -> None:
        self.closed.set()
        with self.lock:
            if self.conn is not None and os.getpid() == self.pid:
                try:
                    self.conn.disconnect()
                except Exception:
                    pass
            self.conn = None


def _handler_loop(stop: threading.Event, core: _SyncSubscriber, handler: Callable[[Message], Any],
                  on_gap: Optional[Callable[[Gap], Any]], on_error: Optional[Callable[[BaseException], Any]]) -> None:
    """The handler thread: runs until the subscription is closed or collected."""
    try:
        while not stop.is_set() and not core.closed.is_set():
            try:
                msg = core.get(0.2, on_gap)
                if msg is not None:
                    handler(msg)
            except Exception as e:  # a failing handler must not kill the subscription
                if on_error is not None:
                    on_error(e)
                else:
                    log.exception("pub/sub handler failed")
    finally:
        if stop.is_set():  # the Subscription was garbage-collected: release its connection
            core.close()


class Subscription(_Subscriber):
    """A live subscription on its own connection; resubscribes after any disconnect.

    Made by :meth:`Channel.subscribe`. Iterate it for :class:`Message` objects,
    or give ``handler`` to run it in a background thread. When the connection
    dies (``CLIENT KILL``, a server restart, a silent peer caught by the PING
    health check) it reconnects with backoff (10 ms up to ``max_backoff``),
    resubscribes (channels and patterns), and calls ``on_gap(Gap)``: messages
    published during the gap are lost, as pub/sub has no history (use
    :class:`~fastredis.EventStream` when that matters).

    A handler thread runs until ``close()``, the Channel's ``close()``, or
    until the Subscription is garbage-collected (its Channel keeps it while
    the Channel lives): it never holds the Subscription itself, so nothing
    leaks. After ``close()``, ``get`` and iteration raise
    :class:`~fastredis.exceptions.ClosedError`. After ``os.fork()`` the child
    owns no socket and no thread of the parent: an iterated subscription
    reconnects on first use, a handler subscription is closed in the child.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); ch = Channel(server.client(), "news")
        >>> with ch.subscribe() as sub:
        ...     _ = ch.publish({"headline": "hi"})
        ...     sub.get(timeout=5).data
        {'headline': 'hi'}
        >>> server.stop()
    """

    def _open(self, client: Any) -> None:
        deadline = time.monotonic() + self.connect_timeout
        self._core = core = _SyncSubscriber(client, self._state)
        self._thread: Optional[threading.Thread] = None
        self._stop: Optional[threading.Event] = None
        FORKS.add(self)
        core.connect()
        while not self._state.subscribed:  # subscribed before we return: no message missed
            if time.monotonic() > deadline:
                self.close()
                raise RedisTimeoutError("no SUBSCRIBE confirmation from the server")
            core.read_one(0.05)
        finalizer(self, core.close)  # a collected subscription closes its connection
        if self.handler is not None:
            self._thread, self._stop = owner_thread(self, _handler_loop, core, self.handler, self.on_gap,
                                                    self.on_error, name="fastredis-subscription")

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._core.closed.is_set()

    def get(self, timeout: Optional[float] = 1.0) -> Optional[Message]:
        """The next message, or ``None`` after ``timeout`` seconds (``None`` = wait forever).

        Reconnects and resubscribes transparently while waiting.
        """
        self._check_open()
        return self._core.get(timeout, self.on_gap)

    def __iter__(self) -> Iterator[Message]:
        if self._thread is not None:
            raise RuntimeError("this subscription has a handler thread; it cannot also be iterated")
        self._check_open()
        while not self._core.closed.is_set():
            msg = self._core.get(0.5, self.on_gap)
            if msg is not None:
                yield msg

    def close(self) -> None:
        """Stop the thread (if any) and close the connection. Safe to call twice."""
        core = self._core
        core.closed.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        core.close()
        FORKS.discard(self)

    def _after_fork_in_child(self) -> None:
        if self._thread is not None:  # the parent's thread does not exist here
            self._thread = None
            self._core.conn = None
            self._core.closed.set()
        else:
            self._core.forked()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Channel(_ChannelPlans):
    """A pub/sub channel named ``<prefix>:<name>`` (name escaped); messages are JSON.

    ``subscribe(children=True)`` also receives sub-channels made by
    :meth:`child`, through a pattern built from the escaped name: a name
    containing ``*``, ``?`` or ``[`` matches only itself, never other channels.
    The Channel keeps its subscriptions (a handler subscription runs while
    its Channel or the Subscription itself is referenced); ``close()`` (or
    leaving ``with``) closes them all, and a closed Channel refuses further
    use with :class:`~fastredis.exceptions.ClosedError`.

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

    _subscription_class = Subscription
    publish = sync_operation(_ChannelPlans.plan_publish)

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
        sub = self._subscription(handler, children, on_gap=on_gap, on_error=on_error, max_backoff=max_backoff,
                                 health_interval=health_interval)
        self._keep(sub)
        return sub  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close every subscription made through this channel; the channel is
        then closed too. Safe to call twice."""
        self._closed = True
        subs, self._subs = self._subs, []
        for sub in subs:
            sub.close()

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
