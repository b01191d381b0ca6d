"""Which clients a pattern class accepts, checked at construction.

A sync pattern class takes a sync client: ``fastredis.Redis``,
``redis.Redis`` (and their cluster clients, ``redis.cluster.RedisCluster``
and subclasses); its asyncio twin in :mod:`fastredis.asyncio` takes an
asyncio client: ``fastredis.asyncio.Redis``, ``redis.asyncio.Redis`` or
``redis.asyncio.cluster.RedisCluster``. Anything else (a URL string, a
pipeline, the other kind of client) is a ``TypeError`` that names what is
accepted, raised when the pattern object is made rather than at its first
call.

Example::

    >>> import redis
    >>> check_sync_client(redis.Redis(), "Leaderboard") is not None
    True
    >>> check_sync_client("redis://x", "Leaderboard")
    Traceback (most recent call last):
    ...
    TypeError: Leaderboard needs a sync Redis client (fastredis.Redis or redis.Redis, or a cluster client: fastredis.RedisCluster or redis.cluster.RedisCluster), got str
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_sync_client", "check_async_client", "is_cluster"]

_SYNC = ("a sync Redis client (fastredis.Redis or redis.Redis, or a cluster client: "
         "fastredis.RedisCluster or redis.cluster.RedisCluster)")
_ASYNC = ("an asyncio Redis client (fastredis.asyncio.Redis or redis.asyncio.Redis, "
          "or redis.asyncio.cluster.RedisCluster)")


def _sync_types() -> tuple:
    import redis
    import redis.cluster

    return (redis.Redis, redis.cluster.RedisCluster)


def _async_types() -> tuple:
    import redis.asyncio
    import redis.asyncio.cluster

    return (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)


def _reject(client: Any, owner: str, wanted: str, other_kind: str) -> TypeError:
    got = type(client).__name__
    if hasattr(client, "command_stack"):
        return TypeError(f"{owner} needs {wanted}, not a pipeline ({got})")
    hint = f"; for this client use {other_kind}.{owner}" if other_kind else ""
    return TypeError(f"{owner} needs {wanted}, got {got}{hint}")


def check_sync_client(client: Any, owner: str) -> Any:
    """``client`` if a sync pattern class may use it, else ``TypeError``.

    Example::

        >>> import redis.asyncio
        >>> check_sync_client(redis.asyncio.Redis(), "Lock")
        Traceback (most recent call last):
        ...
        TypeError: Lock needs a sync Redis client (fastredis.Redis or redis.Redis, or a cluster client: fastredis.RedisCluster or redis.cluster.RedisCluster), got Redis; for this client use fastredis.asyncio.Lock
    """
    if isinstance(client, _sync_types()) and not hasattr(client, "command_stack"):
        return client
    other = "fastredis.asyncio" if isinstance(client, _async_types()) else ""
    raise _reject(client, owner, _SYNC, other)


def check_async_client(client: Any, owner: str) -> Any:
    """``client`` if an asyncio pattern class may use it, else ``TypeError``.

    Example::

        >>> import redis
        >>> check_async_client(redis.Redis(), "Lock")
        Traceback (most recent call last):
        ...
        TypeError: Lock needs an asyncio Redis client (fastredis.asyncio.Redis or redis.asyncio.Redis, or redis.asyncio.cluster.RedisCluster), got Redis; for this client use fastredis.Lock
    """
    if isinstance(client, _async_types()) and not hasattr(client, "command_stack"):
        return client
    other = "fastredis" if isinstance(client, _sync_types()) else ""
    raise _reject(client, owner, _ASYNC, other)


def is_cluster(client: Any) -> bool:
    """Whether ``client`` is a cluster client (sync or asyncio).

    Example::

        >>> import redis
        >>> is_cluster(redis.Redis())
        False
    """
    import redis.asyncio.cluster
    import redis.cluster

    return isinstance(client, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster))
