"""The drop-in client: ``fastredis.Redis`` is a ``redis.Redis`` whose hot paths
run in the Cython core. (Foundation placeholder: behaves exactly as redis-py.)

Example::

    >>> import fastredis
    >>> from fastredis.server import RedisServer
    >>> server = RedisServer()
    >>> r = fastredis.Redis(port=server.port)
    >>> with r.pipeline() as p:
    ...     _ = p.set("a", 1).incr("a")
    ...     p.execute()
    [True, 2]
    >>> server.stop()
"""

from __future__ import annotations

from typing import Any

import redis
import redis.client

__all__ = ["Redis", "Pipeline"]


class Pipeline(redis.client.Pipeline):
    """A redis-py ``Pipeline`` with fast staging and execution."""


class Redis(redis.Redis):
    """``redis.Redis`` with a faster pipeline and hot commands."""

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
