"""fastredis: a drop-in faster redis-py client, and Redis patterns done right.

``import fastredis as redis`` works: every public name of redis-py is here,
with fastredis's own class where it has one (``Redis``, ``StrictRedis``,
``from_url``, ``Sentinel`` whose clients are fastredis clients). One name
differs: ``Subscription`` is fastredis's pub/sub subscription (redis-py's
keyspace ``Subscription`` stays at ``redis.Subscription``).

Example::

    >>> import fastredis
    >>> from fastredis.server import RedisServer
    >>> server = RedisServer()
    >>> r = fastredis.Redis(port=server.port)
    >>> fastredis.FixedWindowLimiter(r, limit=2, window=60).hit("user:1").allowed
    True
    >>> server.stop()
"""

import redis as _redis

from . import exceptions
from .client import Pipeline, Redis
from .cluster import ClusterPipeline, RedisCluster
from .exceptions import (
    ClosedError,
    FastRedisError,
    LockNotOwnedError,
    OutcomeUnknownConnectionError,
    OutcomeUnknownError,
    OutcomeUnknownTimeoutError,
    ProtocolError,
)
from .patterns.analytics import ActivityBitmap, CounterSeries, PageAnalytics, Stats, UniqueCounter
from .patterns.cache import TieredCache
from .patterns.geo import GeoIndex
from .patterns.leaderboard import DecayingLeaderboard, Leaderboard
from .patterns.lock import Lock, fence_key_for, fenced_write
from .patterns.pubsub import Channel, Gap, Message, Subscription
from .patterns.streams import Consumer, Entry, EventStream, PendingStats
from .patterns.redlock import Redlock
from .patterns.ratelimit import (
    CompositeLimiter,
    Decision,
    FixedWindowLimiter,
    SlidingWindowCounterLimiter,
    SlidingWindowLimiter,
    TokenBucketLimiter,
)
from .patterns.cart import Cart
from .patterns.presence import Presence
from .patterns.sessions import SessionStore
from .scripts import LuaScript
from .sentinel import Sentinel
from .server import RedisServer

__version__ = "0.1.0"

StrictRedis = Redis


def from_url(url: str, **kwargs: object) -> Redis:
    """``fastredis.Redis.from_url(url, **kwargs)``, as ``redis.from_url``.

    Example::

        >>> import fastredis
        >>> type(fastredis.from_url("redis://localhost:6379/0")).__name__
        'Redis'
    """
    return Redis.from_url(url, **kwargs)  # type: ignore[arg-type]


# redis-py's public names that fastredis does not replace.
_REDIS_PY_NAMES = [n for n in _redis.__all__ if n not in globals()]
for _name in _REDIS_PY_NAMES:
    globals()[_name] = getattr(_redis, _name)
del _name

__all__ = [
    "Redis",
    "StrictRedis",
    "from_url",
    "Sentinel",
    "RedisCluster",
    "ClusterPipeline",
    "exceptions",
    "Pipeline",
    "LuaScript",
    "RedisServer",
    "FastRedisError",
    "ClosedError",
    "LockNotOwnedError",
    "ProtocolError",
    "OutcomeUnknownError",
    "OutcomeUnknownConnectionError",
    "OutcomeUnknownTimeoutError",
    "TieredCache",
    "Lock",
    "Redlock",
    "fenced_write",
    "fence_key_for",
    "Decision",
    "SlidingWindowLimiter",
    "SlidingWindowCounterLimiter",
    "FixedWindowLimiter",
    "TokenBucketLimiter",
    "CompositeLimiter",
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
    "__version__",
    *_REDIS_PY_NAMES,
]

# Memory-compact maps (issue 14).
from .patterns.compact import CompactMap, ItemTTLUnsupportedError, LargeValueWarning  # noqa: E402

__all__ += ["CompactMap", "ItemTTLUnsupportedError", "LargeValueWarning"]

# Reliable queues and stacks on lists (issue 14).
from .patterns.queue import QueueItem, QueueStats, ReapResult, Stack, WorkQueue  # noqa: E402

__all__ += ["WorkQueue", "Stack", "QueueItem", "QueueStats", "ReapResult"]

# Memory by key prefix (issue 14).
from .memory import MemoryReport, memory_report  # noqa: E402

__all__ += ["memory_report", "MemoryReport"]
