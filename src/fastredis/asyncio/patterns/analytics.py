"""Analytics for asyncio: :class:`UniqueCounter`, :class:`PageAnalytics`,
:class:`ActivityBitmap` and :class:`CounterSeries`, the twins of
:mod:`fastredis.patterns.analytics` (same plans, scripts and results), awaited.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         pa = PageAnalytics(r)
    ...         for user in ("ann", "bob", "ann"):
    ...             await pa.track("/home", user)
    ...         return await pa.stats("/home")
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    Stats(total=3, unique=2, active=2)
"""

from __future__ import annotations

from typing import Any, Callable

from ...patterns import analytics as _core
from ...patterns._clients import check_async_client
from ...patterns._plan import async_operation
from ...patterns.analytics import Stats

__all__ = ["UniqueCounter", "PageAnalytics", "Stats", "ActivityBitmap", "CounterSeries"]

class UniqueCounter(_core._UniqueCounterPlans):
    """HyperLogLog distinct counts per time bucket (see :class:`fastredis.UniqueCounter`), awaited.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         uc = UniqueCounter(r, "visitors", bucket="day")
        ...         await uc.add("ann", "bob", at=0); await uc.add("ann", "cy", at=86400)
        ...         return await uc.count(0, 86400), await uc.merge_into("both", 0, 86400)
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (3, 3)
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    add = async_operation(_core._UniqueCounterPlans.plan_add)
    count = async_operation(_core._UniqueCounterPlans.plan_count)
    merge_into = async_operation(_core._UniqueCounterPlans.plan_merge_into)


class PageAnalytics(_core._PageAnalyticsPlans):
    """Totals, uniques and active users per page (see :class:`fastredis.PageAnalytics`), awaited.

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     pa = PageAnalytics(r)
        ...     await pa.track_many([("/a", "ann"), ("/a", "bob"), ("/b", "ann")])
        ...     stats = await pa.stats("/a")
        ...     await r.aclose()
        ...     return stats
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        Stats(total=2, unique=2, active=2)
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    track = async_operation(_core._PageAnalyticsPlans.plan_track)
    track_many = async_operation(_core._PageAnalyticsPlans.plan_track_many)
    stats = async_operation(_core._PageAnalyticsPlans.plan_stats)


class ActivityBitmap(_core._ActivityBitmapPlans):
    """Daily activity bitmaps (see :class:`fastredis.ActivityBitmap`), awaited.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         ab = ActivityBitmap(r, "logins")
        ...         for uid in (1, 2, 3):
        ...             await ab.mark(uid, "2024-01-01")
        ...         await ab.mark(2, "2024-01-02")
        ...         return await ab.count("2024-01-01"), await ab.retention("2024-01-01", "2024-01-02")
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (3, 0.3333333333333333)
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    mark = async_operation(_core._ActivityBitmapPlans.plan_mark)
    is_active = async_operation(_core._ActivityBitmapPlans.plan_is_active)
    count = async_operation(_core._ActivityBitmapPlans.plan_count)
    active_in_all = async_operation(_core._ActivityBitmapPlans.plan_active_in_all)
    active_in_any = async_operation(_core._ActivityBitmapPlans.plan_active_in_any)
    retention = async_operation(_core._ActivityBitmapPlans.plan_retention)


class CounterSeries(_core._CounterSeriesPlans):
    """Counters per time bucket (see :class:`fastredis.CounterSeries`), awaited.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         cs = CounterSeries(r, "api", bucket=60, retention=3600)
        ...         t0 = 1_900_000_000 // 60 * 60
        ...         await cs.incr("GET /", at=t0); await cs.incr("GET /", 2, at=t0 + 120)
        ...         return [n for _, n in await cs.range("GET /", t0, t0 + 120)]
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        [1, 0, 2]
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    incr = async_operation(_core._CounterSeriesPlans.plan_incr)
    range = async_operation(_core._CounterSeriesPlans.plan_range)
