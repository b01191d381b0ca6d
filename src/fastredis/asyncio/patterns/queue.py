"""``WorkQueue`` and ``Stack`` for asyncio: :class:`fastredis.WorkQueue`, awaited.

The same keys, items, scripts and guarantees; ``pop`` waits in ``BLMOVE``
on a connection of the object's own (never a multiplexed one), so one task
waiting does not hold up the client's other commands, and ``await
q.close()`` ends a pop waiting in another task (it returns None). A pop that
is cancelled or times out (``asyncio.wait_for``) leaves nothing behind: an
item it may have moved is delivered by the object's next pop.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         async with WorkQueue(r, "emails") as q:
    ...             await q.push_many(["a", "b"])
    ...             item = await q.pop(timeout=1)
    ...             return item.value, await q.ack(item), await q.length()
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    ('a', True, 1)
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable, List, Optional, Union

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...patterns import queue as _core
from ...patterns._clients import check_async_client, is_cluster
from ...patterns._conn import connection_kwargs
from ...patterns.queue import QueueClosedError, QueueItem, QueueStats, ReapResult
from ...scripts import arun

__all__ = ["WorkQueue", "Stack", "QueueItem", "QueueStats", "ReapResult", "QueueClosedError"]


def _blocking_client(client: Any, socket_timeout: float) -> Any:
    """A client of ``client``'s class on a pool of its own (the consumer's connection)."""
    if is_cluster(client):
        raise TypeError(
            "pop on an asyncio cluster client is not supported: give the queue a client of the node "
            "that owns its slot (every key of a queue shares one hash tag)"
        )
    kwargs = connection_kwargs(client, socket_timeout=socket_timeout)
    pool = redis.asyncio.ConnectionPool(connection_class=client.connection_pool.connection_class, **kwargs)
    return type(client)(connection_pool=pool)


class _AsyncShell(_core._ListCore):
    _check_client = staticmethod(check_async_client)

    def __init__(self, client: Any, name: Union[str, int], **kwargs: Any) -> None:
        super().__init__(client, name, **kwargs)
        self._pop_lock: Optional[asyncio.Lock] = None
        self._bclient: Any = None

    def _blocking(self) -> Any:
        if self._bclient is None:
            self._bclient = _blocking_client(self.client, self.block_chunk + 10.0)
        return self._bclient

    async def push(self, value: Any) -> str:
        """Add one item; its id.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         q = WorkQueue(r, "q"); await q.push({"n": 1}); return await q.length()
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            1
        """
        return await arun(self.client, self.plan_push(value))

    async def push_many(self, values: Iterable[Any]) -> List[str]:
        """Add items in order, in one round trip; their ids.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return len(await WorkQueue(r, "q").push_many(range(100)))
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            100
        """
        return await arun(self.client, self.plan_push_many(values))

    async def pop(self, timeout: Optional[float] = None) -> Optional[QueueItem]:
        """The next item, or None after ``timeout`` seconds (``None``: until
        one comes) or when :meth:`close` is awaited meanwhile. Pops of one
        object run one at a time.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         async with Stack(r, "s") as s:
            ...             await s.push_many([1, 2])
            ...             return [(await s.pop(1)).value, (await s.pop(1)).value, await s.pop(0.05)]
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            [2, 1, None]
        """
        if self._closed:
            raise QueueClosedError(f"{type(self).__name__} {self.name!r} is closed")
        if self._pop_lock is None:
            self._pop_lock = asyncio.Lock()
        async with self._pop_lock:
            if self._closed:
                return None
            op = self.plan_pop(timeout)
            try:
                return await arun(self._blocking(), op)
            except (RedisConnectionError, RedisTimeoutError):
                if self._closed:
                    return None
                raise

    async def ack(self, item: QueueItem) -> bool:
        """Acknowledge a delivery; True once per delivery.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         async with WorkQueue(r, "q") as q:
            ...             await q.push("x"); item = await q.pop(0)
            ...             return await q.ack(item), await q.ack(item)
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            (True, False)
        """
        return await arun(self.client, self.plan_ack(item))

    async def nack(self, item: QueueItem, *, failed: bool = True) -> bool:
        """Give a held item back now (a failure, or ``failed=False``).

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         async with WorkQueue(r, "q") as q:
            ...             await q.push("x"); await q.nack(await q.pop(0))
            ...             return (await q.pop(0)).deliveries
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            2
        """
        return await arun(self.client, self.plan_nack(item, failed=failed))

    async def extend(self, item: QueueItem, seconds: Optional[float] = None) -> bool:
        """Keep a held item longer; False if no longer held.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         async with WorkQueue(r, "q") as q:
            ...             await q.push("x"); return await q.extend(await q.pop(0), 60)
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            True
        """
        return await arun(self.client, self.plan_extend(item, seconds))

    async def reap(self) -> Optional[ReapResult]:
        """Run the reaper now, unless one ran within ``reap_interval``.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return (await WorkQueue(r, "q").reap()).returned
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            0
        """
        return await arun(self.client, self.plan_reap())

    async def length(self) -> int:
        """Items ready.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return await WorkQueue(r, "q").length()
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            0
        """
        return await arun(self.client, self.plan_length())

    async def peek(self, count: int = 1) -> List[Any]:
        """The next ``count`` values, next first.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         q = WorkQueue(r, "q"); await q.push_many([1, 2]); return await q.peek(2)
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            [1, 2]
        """
        return await arun(self.client, self.plan_peek(count))

    async def stats(self) -> QueueStats:
        """Ready, held, dead, consumers.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return await WorkQueue(r, "q").stats()
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            QueueStats(ready=0, processing=0, dead=0, consumers=0)
        """
        return await arun(self.client, self.plan_stats())

    async def dead_letters(self, count: int = 100) -> List[QueueItem]:
        """The oldest dead letters.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return await WorkQueue(r, "q").dead_letters()
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            []
        """
        return await arun(self.client, self.plan_dead_letters(count))

    async def requeue_dead(self, count: int = 1000) -> int:
        """Move dead letters back to the queue; how many.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return await WorkQueue(r, "q").requeue_dead()
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            0
        """
        return await arun(self.client, self.plan_requeue_dead(count))

    async def purge(self) -> int:
        """Drop every ready item; how many.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         q = WorkQueue(r, "q"); await q.push(1); return await q.purge()
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            1
        """
        return await arun(self.client, self.plan_purge())

    async def purge_dead(self) -> int:
        """Drop every dead letter; how many.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return await WorkQueue(r, "q").purge_dead()
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            0
        """
        return await arun(self.client, self.plan_purge_dead())

    async def close(self) -> None:
        """Close the object's own connection; a pop waiting in another task
        returns None. Held items stay held. Safe to call twice.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         q = WorkQueue(r, "q"); await q.close(); await q.close()
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
        """
        self._closed = True
        bclient, self._bclient = self._bclient, None
        if bclient is not None:
            try:
                await bclient.connection_pool.disconnect()
            finally:
                await bclient.aclose()

    async def __aenter__(self) -> "_AsyncShell":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class WorkQueue(_AsyncShell):
    """A reliable FIFO work queue on lists (see :class:`fastredis.WorkQueue`), awaited.

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     async with WorkQueue(r, "jobs", visibility_timeout=60) as q:
        ...         await q.push_many([1, 2])
        ...         got = [(await q.pop(0)).value, (await q.pop(0)).value]
        ...     await r.aclose()
        ...     return got
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        [1, 2]
    """


class Stack(_AsyncShell):
    """A reliable LIFO stack on lists (see :class:`fastredis.Stack`), awaited.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         async with Stack(r, "s") as s:
        ...             await s.push_many(["a", "b", "c"])
        ...             return [(await s.pop(0)).value for _ in range(3)]
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        ['c', 'b', 'a']
    """

    _pop_end = "LEFT"
    _head = "L"
