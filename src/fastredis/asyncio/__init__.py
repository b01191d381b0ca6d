"""``fastredis.asyncio``: a drop-in, faster ``redis.asyncio``.

``fastredis.asyncio.Redis`` subclasses ``redis.asyncio.Redis``: same
constructor, commands, pipelines, pub/sub, scripts and errors. Concurrent
commands from many tasks share a few multiplexed connections (one write per
event-loop iteration, replies matched in order), blocking and stateful
commands take a dedicated pool connection, and every command and reply goes
through the Cython core. ``fastredis.asyncio.RedisCluster`` does the same
for ``redis.asyncio.cluster.RedisCluster`` (:mod:`fastredis.asyncio.cluster`).
``import fastredis.asyncio as redis`` works: the other public names of
``redis.asyncio`` are re-exported.

Example::

    >>> import asyncio
    >>> import fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         async with r.pipeline(transaction=True) as p:
    ...             return await p.set("a", 1).incr("a").execute()
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    [True, 2]
"""

import redis.asyncio as _redis_asyncio

from .client import DEDICATED_COMMANDS, Redis, StrictRedis, is_multiplexed
from .cluster import ClusterPipeline, RedisCluster
from .connection import FastAsyncParser
from .pipeline import Pipeline
from .patterns.analytics import ActivityBitmap, CounterSeries, PageAnalytics, Stats, UniqueCounter
from .patterns.cache import TieredCache
from .patterns.geo import GeoIndex
from .patterns.leaderboard import DecayingLeaderboard, Leaderboard
from .patterns.lock import Lock, Redlock, fenced_write
from .patterns.pubsub import Channel, Gap, Message, Subscription
from .patterns.ratelimit import (
    CompositeLimiter,
    Decision,
    FixedWindowLimiter,
    SlidingWindowCounterLimiter,
    SlidingWindowLimiter,
    TokenBucketLimiter,
)
from .patterns.sessions import Cart, Presence, SessionStore
from .patterns.streams import Consumer, Entry, EventStream, PendingStats


def from_url(url: str, **kwargs: object) -> Redis:
    """``fastredis.asyncio.Redis.from_url(url, **kwargs)``, as ``redis.asyncio.from_url``.

    Example::

        >>> import fastredis.asyncio
        >>> type(fastredis.asyncio.from_url("redis://localhost:6379/0")).__name__
        'Redis'
    """
    return Redis.from_url(url, **kwargs)  # type: ignore[arg-type]


# redis.asyncio's public names that fastredis.asyncio does not replace.
_REDIS_ASYNCIO_NAMES = [n for n in _redis_asyncio.__all__ if n not in globals()]
for _name in _REDIS_ASYNCIO_NAMES:
    globals()[_name] = getattr(_redis_asyncio, _name)
del _name

__all__ = [
    "Redis",
    "StrictRedis",
    "Pipeline",
    "RedisCluster",
    "ClusterPipeline",
    "from_url",
    "FastAsyncParser",
    "DEDICATED_COMMANDS",
    "is_multiplexed",
    # the asyncio twins of the patterns
    "SlidingWindowLimiter",
    "SlidingWindowCounterLimiter",
    "FixedWindowLimiter",
    "TokenBucketLimiter",
    "CompositeLimiter",
    "Decision",
    "TieredCache",
    "Lock",
    "Redlock",
    "fenced_write",
    "Leaderboard",
    "DecayingLeaderboard",
    "UniqueCounter",
    "PageAnalytics",
    "Stats",
    "ActivityBitmap",
    "CounterSeries",
    "SessionStore",
    "Cart",
    "Presence",
    "GeoIndex",
    "Channel",
    "Subscription",
    "Message",
    "Gap",
    "EventStream",
    "Consumer",
    "Entry",
    "PendingStats",
    *_REDIS_ASYNCIO_NAMES,
]

# Memory-compact maps (issue 14).
from .patterns.compact import CompactMap  # noqa: E402

__all__ += ["CompactMap"]

# Reliable queues and stacks on lists (issue 14).
from .patterns.queue import Stack, WorkQueue  # noqa: E402

__all__ += ["WorkQueue", "Stack"]

# Memory by key prefix (issue 14).
from .memory import memory_report  # noqa: E402

__all__ += ["memory_report"]
