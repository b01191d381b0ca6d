"""Leaderboards for asyncio: :class:`Leaderboard` and :class:`DecayingLeaderboard`,
the twins of :mod:`fastredis.patterns.leaderboard` (same plans, same scripts,
same results), awaited.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         lb = Leaderboard(r, "weekly")
    ...         await lb.add_many(["ann", "bob", "cy"], [10, 30, 20])
    ...         return await lb.top(2), await lb.rank("ann")
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    ([('bob', 30.0), ('cy', 20.0)], 2)
"""

from __future__ import annotations

from typing import Any, Callable

from ...patterns import leaderboard as _core
from ...patterns._clients import check_async_client
from ...patterns._plan import async_operation

__all__ = ["Leaderboard", "DecayingLeaderboard"]

_L = _core._LeaderboardPlans
_D = _core._DecayingPlans


class Leaderboard(_L):
    """A sorted-set leaderboard (see :class:`fastredis.Leaderboard`), awaited.

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     lb = Leaderboard(r, "g")
        ...     await lb.add("ann", 5); await lb.incr_many(["bob", "bob"], [1, 2])
        ...     result = await lb.around("bob", 1), await lb.count()
        ...     await r.aclose()
        ...     return result
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        ([('ann', 5.0), ('bob', 3.0)], 2)
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    add = async_operation(_L.plan_add)
    incr = async_operation(_L.plan_incr)
    remove = async_operation(_L.plan_remove)
    add_many = async_operation(_L.plan_add_many)
    incr_many = async_operation(_L.plan_incr_many)
    score = async_operation(_L.plan_score)
    rank = async_operation(_L.plan_rank)
    top = async_operation(_L.plan_top)
    page = async_operation(_L.plan_page)
    around = async_operation(_L.plan_around)
    count = async_operation(_L.plan_count)


class DecayingLeaderboard(_D):
    """A forward-decayed leaderboard (see :class:`fastredis.DecayingLeaderboard`), awaited.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         hot = DecayingLeaderboard(r, "posts", half_life=3600)
        ...         await hot.incr("a", 8, at=0); await hot.incr("b", 3, at=7200)
        ...         return await hot.top(2, at=7200)
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        [('b', 3.0), ('a', 2.0)]
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    incr = async_operation(_D.plan_incr)
    incr_many = async_operation(_D.plan_incr_many)
    remove = async_operation(_D.plan_remove)
    prune = async_operation(_D.plan_prune)
    score = async_operation(_D.plan_score)
    rank = async_operation(_D.plan_rank)
    top = async_operation(_D.plan_top)
    page = async_operation(_D.plan_page)
    around = async_operation(_D.plan_around)
    count = async_operation(_D.plan_count)
