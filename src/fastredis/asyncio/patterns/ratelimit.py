"""Rate limiters for asyncio: the five limiters of
:mod:`fastredis.patterns.ratelimit`, awaited.

Same arguments, same :class:`~fastredis.patterns.ratelimit.Decision`
results, the same composed Lua script per limiter, the same replay safety: a
hit is never re-sent once it may have reached the server, so a cancelled or
timed-out ``await limiter.hit(key)`` counts the request at most once.

Example::

    >>> import asyncio
    >>> import fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         limiter = FixedWindowLimiter(r, limit=2, window=60)
    ...         return [(await limiter.hit("alice")).allowed for _ in range(3)]
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    [True, True, False]
"""

from __future__ import annotations

from typing import Any, Callable

from ...patterns import ratelimit as _core
from ...patterns._clients import check_async_client
from ...patterns._plan import async_operation
from ...patterns.ratelimit import Decision

__all__ = [
    "Decision",
    "SlidingWindowLimiter",
    "SlidingWindowCounterLimiter",
    "FixedWindowLimiter",
    "TokenBucketLimiter",
    "CompositeLimiter",
]


class _AsyncShell:
    """The awaited operations of every limiter: each runs its plan on ``self.client``."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    hit = async_operation(_core._RateLimit.plan_hit)
    hit_many = async_operation(_core._RateLimit.plan_hit_many)
    peek = async_operation(_core._RateLimit.plan_peek)
    reset = async_operation(_core._RateLimit.plan_reset)


class SlidingWindowLimiter(_AsyncShell, _core._SlidingLog):
    """An exact sliding log (see :class:`fastredis.SlidingWindowLimiter`), awaited.

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     sw = SlidingWindowLimiter(r, limit=1, window=10)
        ...     first, second = await sw.hit("ip:1"), await sw.hit("ip:1")
        ...     await r.aclose()
        ...     return first.allowed, second.allowed, 9 < second.retry_after <= 10
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (True, False, True)
    """


class SlidingWindowCounterLimiter(_AsyncShell, _core._SlidingCounter):
    """A sliding-window counter (see :class:`fastredis.SlidingWindowCounterLimiter`), awaited.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         swc = SlidingWindowCounterLimiter(r, limit=5, window=60)
        ...         return (await swc.hit("k", cost=5)).remaining, (await swc.hit("k")).allowed
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (0, False)
    """


class FixedWindowLimiter(_AsyncShell, _core._FixedWindow):
    """At most ``limit`` per fixed window (see :class:`fastredis.FixedWindowLimiter`), awaited.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         fw = FixedWindowLimiter(r, limit=3, window=3600)
        ...         return (await fw.hit("k", cost=2)).remaining, (await fw.hit("k", cost=9)).retry_after
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (1, inf)
    """


class TokenBucketLimiter(_AsyncShell, _core._TokenBucket):
    """A token bucket run as GCRA (see :class:`fastredis.TokenBucketLimiter`), awaited.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         tb = TokenBucketLimiter(r, rate=1.0, capacity=2)
        ...         return [d.allowed for d in await tb.hit_many(["k", "k", "k"])]
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        [True, True, False]
    """


class CompositeLimiter(_AsyncShell, _core._Composite):
    """Several limits in one script (see :class:`fastredis.CompositeLimiter`), awaited.

    Combine asyncio limiters; the composite runs on the first one's client
    (or ``client=``).

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         both = CompositeLimiter([FixedWindowLimiter(r, 10, 1), FixedWindowLimiter(r, 1000, 3600)])
        ...         d = await both.hit("user:7")
        ...         return d.allowed, d.limit, d.remaining
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (True, 10, 9)
    """
