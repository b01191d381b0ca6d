"""Geospatial index for asyncio: :class:`GeoIndex`, the twin of
:class:`fastredis.GeoIndex` (same plans and results), awaited.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         shops = GeoIndex(r, "shops")
    ...         await shops.add_many([("louvre", 2.3376, 48.8606), ("eiffel", 2.2945, 48.8584)])
    ...         return [m for m, _ in await shops.near(2.3522, 48.8566, 10)]
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    ['louvre', 'eiffel']
"""

from __future__ import annotations

from typing import Any, Callable

from ...patterns._clients import check_async_client
from ...patterns._plan import async_operation
from ...patterns.geo import _GeoPlans

__all__ = ["GeoIndex"]


class GeoIndex(_GeoPlans):
    """Members with a longitude/latitude (see :class:`fastredis.GeoIndex`), awaited.

    ``await index.count()`` replaces the sync ``len(index)``.

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     g = GeoIndex(r, "cities")
        ...     await g.add("paris", 2.3522, 48.8566); await g.add("london", -0.1276, 51.5072)
        ...     km = round(await g.distance("paris", "london"))
        ...     n = await g.count()
        ...     await r.aclose()
        ...     return km, n
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (344, 2)
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    add = async_operation(_GeoPlans.plan_add)
    add_many = async_operation(_GeoPlans.plan_add_many)
    remove = async_operation(_GeoPlans.plan_remove)
    position = async_operation(_GeoPlans.plan_position)
    distance = async_operation(_GeoPlans.plan_distance)
    near = async_operation(_GeoPlans.plan_near)
    near_member = async_operation(_GeoPlans.plan_near_member)
    within_box = async_operation(_GeoPlans.plan_within_box)
    count = async_operation(_GeoPlans.plan_count)
