"""Pub/sub for asyncio: :class:`Channel` and :class:`Subscription`, the twins
of :mod:`fastredis.patterns.pubsub`. A subscription is an async iterator
that resubscribes after any disconnect; its decisions are the sync one's
(:class:`~fastredis.patterns.pubsub.SubscriptionState`).

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def first_message(news):
    ...     async for message in news:  # subscribed for the loop's duration
    ...         return message.data
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         news = Channel(r, "news")
    ...         reader = asyncio.ensure_future(first_message(news))
    ...         while await news.publish({"headline": "hi"}) == 0:
    ...             await asyncio.sleep(0.01)
    ...         return await reader
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    {'headline': 'hi'}
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from typing import Any, AsyncIterator, Callable, Generator, Optional

from redis.backoff import NoBackoff

from ...exceptions import ClosedError
from ._tasks import cancel_and_wait, end_with
from ...patterns._clients import check_async_client
from ...patterns._conn import FORKS, private_connection
from ...patterns._plan import async_operation
from ...patterns.pubsub import _CONNECTION_ERRORS, Gap, Message, SubscriptionState, _ChannelPlans, _Subscriber

__all__ = ["Channel", "Subscription", "Message", "Gap"]

log = logging.getLogger("fastredis.asyncio.pubsub")

_CLOSED: Any = object()  # wakes readers when the subscription closes
_QUEUE_SIZE = 10_000  # a full queue stops reading the socket: back-pressure, not memory growth


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class _Pump:
    """The I/O of one asyncio subscription: its private connection, read by a
    task into a bounded queue, PINGed when idle, reconnected with backoff.

    The task holds this object, never the :class:`Subscription`, so a dropped
    Subscription is collected and its task cancelled."""

    def __init__(self, client: Any, state: SubscriptionState, on_gap: Optional[Callable[[Gap], Any]]) -> None:
        self.client = client
        self.state = state
        self.on_gap = on_gap
        self.queue: "asyncio.Queue[Any]" = asyncio.Queue(_QUEUE_SIZE)
        self.conn: Any = None
        self.task: Optional["asyncio.Task[None]"] = None
        self.closed = False
        self.first_confirmation: "Optional[asyncio.Future[None]]" = None  # made on the loop by start()

    async def connect(self) -> None:
        from redis.asyncio.retry import Retry

        # A private RESP2 connection with no retry: messages arrive as plain
        # arrays, and reconnecting is ours to do.
        conn = private_connection(self.client, protocol=2, retry=Retry(NoBackoff(), 0), health_check_interval=0)
        try:
            await conn.connect()
            for command in self.state.commands():
                await conn.send_command(*command)
        except BaseException:
            await _disconnect(conn)
            raise
        self.conn = conn
        self.state.connected(time.monotonic())

    async def run(self) -> None:
        """Read until closed; reconnect whenever the connection fails."""
        delay: Optional[float] = None
        while not self.closed:
            if self.conn is None:
                try:
                    await self.connect()
                    self.state.reconnected()
                    delay = None
                except _CONNECTION_ERRORS as e:
                    self.state.dropped(str(e) or type(e).__name__, time.time())
                    delay = self.state.backoff(delay)
                    await asyncio.sleep(delay)
                    continue
            try:
                await self._read_until_failure()
            except _CONNECTION_ERRORS as e:
                await self.drop(str(e) or type(e).__name__)

    async def _read_until_failure(self) -> None:
        conn = self.conn
        # One read in flight at a time, never cancelled mid-reply: an idle
        # wake-up (for the health check) leaves it pending and waits again.
        read: "Optional[asyncio.Future[Any]]" = None
        try:
            while not self.closed:
                if read is None:
                    read = asyncio.ensure_future(conn.read_response(disable_decoding=True, timeout=math.inf))
                done, _ = await asyncio.wait({read}, timeout=min(0.25, self.state.health_interval))
                if read in done:
                    reply, read = read.result(), None
                    message, gap = self.state.receive(reply, time.monotonic(), time.time())
                    first = self.first_confirmation
                    if first is not None and not first.done() and self.state.subscribed:
                        first.set_result(None)
                    if gap is not None and self.on_gap is not None:
                        await _maybe_await(self.on_gap(gap))
                    if message is not None:
                        await self.queue.put(message)  # waits while the queue is full
                elif self.state.health(time.monotonic()) == "ping":
                    await conn.send_command("PING")
        finally:
            if read is not None and not read.done():
                read.cancel()

    async def drop(self, reason: str) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await _disconnect(conn)
        self.state.dropped(reason, time.time())

    def close(self) -> None:
        """Stop the task and drop the connection (callable from any code: no await)."""
        self.closed = True
        task = self.task
        if task is not None and not task.done():
            task.cancel()
        conn, self.conn = self.conn, None
        if conn is not None:
            _close_soon(conn)
        try:
            self.queue.put_nowait(_CLOSED)
        except asyncio.QueueFull:
            pass


async def _disconnect(conn: Any) -> None:
    try:
        await conn.disconnect(nowait=True)
    except Exception:
        pass


def _close_soon(conn: Any) -> None:
    """Close ``conn`` now if its transport allows, else on the loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        loop.create_task(_disconnect(conn))
        return
    writer = getattr(conn, "_writer", None)
    if writer is not None:
        try:
            writer.transport.abort()
        except Exception:
            pass


class Subscription(_Subscriber):
    """A live subscription on its own connection; resubscribes after any disconnect.

    Made (and confirmed) by ``await channel.subscribe()`` or ``async with
    channel.subscribe() as sub``. Iterate it with ``async for``, or ``await
    sub.get(timeout)``; with ``handler`` (a function or ``async def``) a task
    calls it for each message. ``on_gap(Gap)`` (a function or ``async def``)
    runs after each reconnect. ``aclose()`` ends the task and the
    connection; so does garbage collection of the Subscription (its Channel
    keeps it while the Channel lives). A closed subscription raises
    :class:`~fastredis.exceptions.ClosedError`.

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     room = Channel(r, "room")
        ...     got = []
        ...     async with room.subscribe(got.append, children=True):
        ...         await room.child("alice").publish("hi")
        ...         while not got:
        ...             await asyncio.sleep(0.01)
        ...     await r.aclose()
        ...     return got[0].channel, got[0].data
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        ('chan:room:alice', 'hi')
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)

    def _open(self, client: Any) -> None:
        self._pump = _Pump(client, self._state, self.on_gap)  # connected by start()
        self._handler_task: Optional["asyncio.Task[None]"] = None
        self._started = False

    async def start(self) -> "Subscription":
        """Connect and wait until every channel and pattern is confirmed (at
        most ``connect_timeout`` s); :meth:`Channel.subscribe` does this."""
        if self._started:
            return self
        pump = self._pump
        self._check_open()
        self._started = True
        try:
            pump.first_confirmation = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(pump.connect(), self.connect_timeout)
            pump.task = asyncio.ensure_future(pump.run())
            await asyncio.wait_for(asyncio.shield(pump.first_confirmation), self.connect_timeout)
        except BaseException:
            await self.aclose()
            raise
        FORKS.add(self)
        end_with(self, pump.task)
        if self.handler is not None:
            self._handler_task = asyncio.ensure_future(_handler_loop(pump, self.handler, self.on_error))
            end_with(self, self._handler_task)
        return self

    @property
    def closed(self) -> bool:
        """Whether the subscription was closed."""
        return self._pump.closed

    async def get(self, timeout: Optional[float] = 1.0) -> Optional[Message]:
        """The next message, or ``None`` after ``timeout`` seconds (``None`` = wait forever)."""
        self._check_open()
        if self._handler_task is not None:
            raise RuntimeError("this subscription has a handler task; it cannot also be read")
        try:
            item = await asyncio.wait_for(self._pump.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if item is _CLOSED:
            raise ClosedError("this subscription was closed while waiting")
        return item  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        while not self._pump.closed:
            try:
                message = await self.get(timeout=None)
            except ClosedError:
                return
            if message is not None:
                yield message

    async def aclose(self) -> None:
        """End the tasks and close the connection. Safe to call twice."""
        pump = self._pump
        pump.close()
        await cancel_and_wait([pump.task, self._handler_task])
        FORKS.discard(self)

    def _after_fork_in_child(self) -> None:
        # The parent's loop, tasks and socket are not ours: forget them.
        self._pump.conn = None
        self._pump.closed = True

    async def __aenter__(self) -> "Subscription":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _handler_loop(pump: _Pump, handler: Callable[[Message], Any],
                        on_error: Optional[Callable[[BaseException], Any]]) -> None:
    while not pump.closed:
        item = await pump.queue.get()
        if item is _CLOSED:
            return
        try:
            await _maybe_await(handler(item))
        except Exception as e:  # a failing handler must not kill the subscription
            if on_error is not None:
                await _maybe_await(on_error(e))
            else:
                log.exception("pub/sub handler failed")


class _Subscribing:
    """What :meth:`Channel.subscribe` returns: await it for a started
    :class:`Subscription`, or use it with ``async with``."""

    def __init__(self, channel: "Channel", sub: Subscription) -> None:
        self._channel = channel
        self._sub = sub

    def __await__(self) -> Generator[Any, None, Subscription]:
        return self._start().__await__()

    async def _start(self) -> Subscription:
        sub = await self._sub.start()
        self._channel._keep(sub)
        return sub

    async def __aenter__(self) -> Subscription:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        await self._sub.aclose()


class Channel(_ChannelPlans):
    """A pub/sub channel (see :class:`fastredis.Channel`), awaited; messages are JSON.

    ``async for message in channel`` subscribes (the channel only), yields
    messages forever and closes its subscription when the loop ends.
    ``aclose()`` closes every subscription made through the channel.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         async with Channel(r, "news") as news:
        ...             sub = await news.subscribe()
        ...             delivered = await news.publish([1, 2])
        ...             return delivered, (await sub.get(timeout=5)).data
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (1, [1, 2])
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    _subscription_class = Subscription
    publish = async_operation(_ChannelPlans.plan_publish)

    def subscribe(
        self,
        handler: Optional[Callable[[Message], Any]] = None,
        *,
        children: bool = False,
        on_gap: Optional[Callable[[Gap], Any]] = None,
        on_error: Optional[Callable[[BaseException], Any]] = None,
        max_backoff: float = 1.0,
        health_interval: float = 5.0,
    ) -> _Subscribing:
        """Subscribe: ``await`` it (or ``async with``) for a :class:`Subscription`
        already confirmed by the server.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         ch = Channel(r, "n")
            ...         async with ch.subscribe() as sub:
            ...             await ch.publish(1)
            ...             return (await sub.get(5)).data
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            1
        """
        sub = self._subscription(handler, children, on_gap=on_gap, on_error=on_error, max_backoff=max_backoff,
                                 health_interval=health_interval)
        return _Subscribing(self, sub)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        async with self.subscribe() as sub:
            async for message in sub:
                yield message

    async def aclose(self) -> None:
        """Close every subscription made through this channel; the channel is
        then closed too. Safe to call twice."""
        self._closed = True
        subs, self._subs = self._subs, []
        for sub in subs:
            await sub.aclose()

    async def __aenter__(self) -> "Channel":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

