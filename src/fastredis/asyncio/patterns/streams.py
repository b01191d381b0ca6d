"""Streams for asyncio: :class:`EventStream` and :class:`Consumer`, the twins
of :mod:`fastredis.patterns.streams` (the same read steps, claim script and
dead-letter stream), awaited; a consumer is an async iterator.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         orders = EventStream(r, "orders")
    ...         await orders.add({"order": 1, "total": 9.5})
    ...         async with orders.consumer("billing", "worker-1", block=0.1) as c:
    ...             return [(e.fields, await c.ack(e)) for e in await c.read()]
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    [({'order': 1, 'total': 9.5}, True)]
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable

from ...patterns._clients import check_async_client
from ...patterns._plan import async_operation
from ...patterns.streams import Entry, PendingStats, _ConsumerPlans, _StreamPlans

__all__ = ["EventStream", "Consumer", "Entry", "PendingStats"]


class EventStream(_StreamPlans["Consumer"]):
    """An event log read by consumer groups (see :class:`fastredis.EventStream`), awaited.

    ``await stream.length()`` replaces the sync ``len(stream)``.

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     s = EventStream(r, "log", maxlen=1000)
        ...     ids = await s.add_many([{"n": i} for i in range(3)])
        ...     n = await s.length()
        ...     await r.aclose()
        ...     return len(ids), n, s.dead_key
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (3, 3, 'stream:{log}:dead')
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    add = async_operation(_StreamPlans.plan_add)
    add_many = async_operation(_StreamPlans.plan_add_many)
    ensure_group = async_operation(_StreamPlans.plan_ensure_group)
    pending = async_operation(_StreamPlans.plan_pending)
    dead_letters = async_operation(_StreamPlans.plan_dead_letters)
    length = async_operation(_StreamPlans.plan_length)


class Consumer(_ConsumerPlans):
    """One consumer of a group (see :class:`fastredis.Consumer`), as an async iterator.

    ``async for entry in consumer`` reads (own pending, claims, new entries)
    until :meth:`stop`; :meth:`ack` each entry when done. After
    :meth:`aclose` (or leaving ``async with``) a read raises
    :class:`~fastredis.exceptions.ClosedError`.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         s = EventStream(r, "jobs")
        ...         await s.add({"job": 1})
        ...         c = s.consumer("workers", "w1", block=0.1)
        ...         async for entry in c:
        ...             await c.ack(entry); c.stop()
        ...         return (await c.pending()).count
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        0
    """

    _stream_type = EventStream
    read = async_operation(_ConsumerPlans.plan_read)
    ack = async_operation(_ConsumerPlans.plan_ack)
    pending = async_operation(_ConsumerPlans.plan_pending)

    def __aiter__(self) -> AsyncIterator[Entry]:
        return self._entries()

    async def _entries(self) -> AsyncIterator[Entry]:
        while not self._stopping.is_set():
            for entry in await self.read():
                yield entry
                if self._stopping.is_set():
                    return

    async def aclose(self) -> None:
        """Stop for good; the consumer stays in the group so its pending entries are not lost."""
        self.stop()
        self._closed = True

    async def __aenter__(self) -> "Consumer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


EventStream._consumer_class = Consumer  # type: ignore[misc]  # (defined after the stream)
