"""``fastredis.Sentinel``: redis-py's Sentinel client whose ``master_for`` and
``slave_for`` build fastredis clients by default.

Sentinel-managed connections take the fast path (the fast parser, batched
pipeline reads) and keep redis-py's failover rule: a READONLY reply on a
master connection means the master was demoted, so the connection is
dropped and ``ConnectionError`` raised.

Example::

    >>> from fastredis.sentinel import Sentinel
    >>> s = Sentinel([("localhost", 26379)])
    >>> type(s.master_for("mymaster")).__module__
    'fastredis.client'
"""

from __future__ import annotations

from typing import Any

import redis.sentinel

from .client import Redis

__all__ = ["Sentinel"]


class Sentinel(redis.sentinel.Sentinel):
    """``redis.sentinel.Sentinel`` with ``redis_class=fastredis.Redis`` by default.

    Example::

        >>> s = Sentinel([("localhost", 26379)], socket_timeout=0.5)
        >>> type(s.slave_for("mymaster")).__name__
        'Redis'
    """

    def master_for(self, service_name: str, redis_class: Any = Redis, *args: Any, **kwargs: Any) -> Any:
        return super().master_for(service_name, redis_class, *args, **kwargs)

    def slave_for(self, service_name: str, redis_class: Any = Redis, *args: Any, **kwargs: Any) -> Any:
        return super().slave_for(service_name, redis_class, *args, **kwargs)
