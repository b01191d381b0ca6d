"""``CompactMap`` for asyncio: :class:`fastredis.CompactMap`, awaited.

The same layout (read from, or stored in, the map's layout hash), the same
plans and replies; ``*_many`` calls are staged with ``batch()`` on a
``fastredis.asyncio`` pipeline. ``in`` cannot be awaited: use
``await m.contains(key)``; :meth:`CompactMap.scan` is an async iterator.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         users = CompactMap(r, "users")
    ...         await users.set_many({1: "ann", 2: "bob"})
    ...         return await users.get_many([1, 2, 3]), await users.contains(2)
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    ([b'ann', b'bob', None], True)
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterable, List, Mapping, Optional, Tuple, Union

from ...patterns import compact as _core
from ...patterns._clients import check_async_client
from ...patterns._plan import Operation, Plan
from ...patterns.compact import (
    ColumnPlan,
    CompactLayout,
    CompactStats,
    ItemKey,
    ItemTTLUnsupportedError,
    LargeValueWarning,
)
from ...scripts import apipeline_for, arun

__all__ = ["CompactMap", "CompactLayout", "CompactStats", "LargeValueWarning", "ItemTTLUnsupportedError",
           "arun_columns"]


async def arun_columns(client: Any, plan: Plan[Any]) -> Any:
    """The asyncio twin of :func:`fastredis.patterns.compact.run_columns`.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         return await arun_columns(r, ColumnPlan([("batch", "SET", ["a", "b"], [1, 2])], list))
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        [True, True]
    """
    if type(plan) is not ColumnPlan:
        return await arun(client, plan)
    if not plan.groups:
        return plan.interpret([])
    pipe = apipeline_for(client)
    plan.stage(pipe)
    return plan.interpret(await pipe.execute(raise_on_error=plan.raise_on_error))


class CompactMap(_core._Core):
    """A map of small values in bucketed hashes (see :class:`fastredis.CompactMap`), awaited.

    ``client``: ``fastredis.asyncio.Redis`` or ``redis.asyncio.Redis`` (or
    an asyncio cluster client for the per-item and ``*_many`` calls).

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     m = CompactMap(r, "counters")
        ...     values = [await m.incr(7), await m.incr(7, 5)]
        ...     await r.aclose()
        ...     return values
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        [1, 6]
    """

    _check_client = staticmethod(check_async_client)

    async def open(self) -> CompactLayout:
        """Read (or store) the layout now; the first operation does it otherwise.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return (await CompactMap(r, "m", bucket_size=40).open()).bucket_size
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            40
        """
        if self._layout is None:
            await arun(self.client, self.plan_open())
        return self._layout  # type: ignore[return-value]

    async def _run(self, op: Operation[Any]) -> Any:
        if type(op) is ColumnPlan:
            return await arun_columns(self.client, op)
        return await arun(self.client, op)

    async def get(self, key: ItemKey, default: Any = None) -> Any:
        """The value of ``key``, or ``default``.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         m = CompactMap(r, "m")
            ...         return await m.get(1, "none"), await m.set(1, b"x"), await m.get(1)
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            ('none', True, b'x')
        """
        return await self._run(self.plan_get(key, default))

    async def set(self, key: ItemKey, value: Any, *, ttl: Optional[float] = None) -> bool:
        """Store ``value``; True if the item is new (``ttl``: Redis 7.4+ only).

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         m = CompactMap(r, "m")
            ...         return await m.set("a", 1), await m.set("a", 2)
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            (True, False)
        """
        return await self._run(self.plan_set(key, value, ttl=ttl))  # type: ignore[no-any-return]

    async def delete(self, key: ItemKey) -> bool:
        """Remove ``key``; True if it was there.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return await CompactMap(r, "m").delete(1)
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            False
        """
        return await self._run(self.plan_delete(key))  # type: ignore[no-any-return]

    async def contains(self, key: ItemKey) -> bool:
        """Whether ``key`` is in the map.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         m = CompactMap(r, "m"); await m.set("k", "v")
            ...         return await m.contains("k"), await m.contains("j")
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            (True, False)
        """
        return await self._run(self.plan_contains(key))  # type: ignore[no-any-return]

    async def incr(self, key: ItemKey, amount: int = 1) -> int:
        """Add ``amount`` to an integer value; the new value.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return await CompactMap(r, "m").incr("n", -2)
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            -2
        """
        return await self._run(self.plan_incr(key, amount))  # type: ignore[no-any-return]

    async def get_many(self, keys: Iterable[ItemKey]) -> List[Any]:
        """The values of ``keys``, in order, in one round trip.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         m = CompactMap(r, "m"); await m.set(5, "five")
            ...         return await m.get_many([4, 5])
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            [None, b'five']
        """
        return await self._run(self.plan_get_many(keys))  # type: ignore[no-any-return]

    async def set_many(self, items: Union[Mapping[ItemKey, Any], Iterable[Tuple[ItemKey, Any]]]) -> int:
        """Store many items in one round trip; how many are new.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return await CompactMap(r, "m").set_many({i: i for i in range(500)})
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            500
        """
        return await self._run(self.plan_set_many(items))  # type: ignore[no-any-return]

    async def delete_many(self, keys: Iterable[ItemKey]) -> int:
        """Remove many items in one round trip; how many were there.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         m = CompactMap(r, "m"); await m.set_many({1: "a", 2: "b"})
            ...         return await m.delete_many([1, 2, 3])
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            2
        """
        return await self._run(self.plan_delete_many(keys))  # type: ignore[no-any-return]

    async def scan_page(self, cursor: int = 0, count: int = 100) -> Tuple[int, List[Tuple[Any, Any]]]:
        """One page of :meth:`scan`: ``(next cursor, [(key, value), ...])``.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         return await CompactMap(r, "m").scan_page()
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            (0, [])
        """
        return await self._run(self.plan_scan_page(cursor, count))  # type: ignore[no-any-return]

    async def scan(self, count: int = 100) -> AsyncIterator[Tuple[Any, Any]]:
        """Every ``(key, value)`` of the map (``async for``), SCAN page by page.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         m = CompactMap(r, "m"); await m.set_many({1: "a", "b": "c"})
            ...         return sorted([item async for item in m.scan()], key=lambda item: str(item[0]))
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            [(1, b'a'), ('b', b'c')]
        """
        cursor = 0
        while True:
            cursor, items = await self.scan_page(cursor, count)
            for item in items:
                yield item
            if cursor == 0:
                return

    async def stats(self, count: int = 100) -> CompactStats:
        """Buckets, items, memory and buckets by encoding over the whole map.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> import warnings
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         m = CompactMap(r, "m")
            ...         with warnings.catch_warnings(record=True):  # a LargeValueWarning: 100 > 64 bytes
            ...             await m.set(1, "x" * 100)
            ...         return (await m.stats()).encodings
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            {'hashtable': 1}
        """
        cursor, total = 0, CompactStats(0, 0, 0, {}, [])
        while True:
            cursor, page = await self._run(self.plan_stats_page(cursor, count))
            total = _core._add_stats(total, page)
            if cursor == 0:
                return total

    async def clear(self, count: int = 500) -> int:
        """Remove every item (UNLINK of the buckets; not atomic); buckets removed.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r:
            ...         m = CompactMap(r, "m"); await m.set(1, "x")
            ...         return await m.clear(), await m.get(1)
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            (1, None)
        """
        cursor, removed = 0, 0
        while True:
            cursor, n = await self._run(self.plan_clear_page(cursor, count))
            removed += int(n)
            if cursor == 0:
                return removed
