"""fastredis: a drop-in faster redis-py client, and Redis patterns done right.

Example::

    >>> import fastredis
    >>> from fastredis.server import RedisServer
    >>> server = RedisServer()
    >>> r = fastredis.Redis(port=server.port)
    >>> fastredis.FixedWindowLimiter(r, limit=2, window=60).hit("user:1").allowed
    True
    >>> server.stop()
"""

from .client import Pipeline, Redis
from .exceptions import FastRedisError, LockNotOwnedError, ProtocolError
from .patterns.analytics import ActivityBitmap, CounterSeries, PageAnalytics, Stats, UniqueCounter
from .patterns.cache import TieredCache
from .patterns.geo import GeoIndex
from .patterns.leaderboard import DecayingLeaderboard, Leaderboard
from .patterns.lock import Lock, Redlock, fence_key_for, fenced_write
from .patterns.messaging import Channel, Consumer, Entry, EventStream, Gap, Message, PendingStats, Subscription
from .patterns.ratelimit import (
    CompositeLimiter,
    Decision,
    FixedWindowLimiter,
    SlidingWindowCounterLimiter,
    SlidingWindowLimiter,
    TokenBucketLimiter,
)
from .patterns.session import Cart, Presence, SessionStore
from .scripts import LuaScript
from .server import RedisServer

__version__ = "0.1.0"

__all__ = [
    "Redis",
    "Pipeline",
    "LuaScript",
    "RedisServer",
    "FastRedisError",
    "LockNotOwnedError",
    "ProtocolError",
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
]
