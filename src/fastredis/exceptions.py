"""Exceptions of fastredis. Redis errors keep redis-py's classes."""

from __future__ import annotations

from redis.exceptions import DataError, InvalidResponse, LockError, RedisError, ResponseError
from redis.exceptions import LockNotOwnedError as _RedisLockNotOwnedError

__all__ = [
    "FastRedisError",
    "LockNotOwnedError",
    "LockError",
    "DataError",
    "ProtocolError",
    "RedisError",
    "ResponseError",
]


class FastRedisError(RedisError):
    """Base class of errors raised by fastredis itself."""


class ProtocolError(InvalidResponse, FastRedisError):
    """Malformed RESP from the server; the connection must be dropped.

    A subclass of redis-py's ``InvalidResponse``, which redis-py's own parsers
    raise in the same situation.
    """


class LockNotOwnedError(_RedisLockNotOwnedError, FastRedisError):
    """The lock is no longer ours: it expired or another owner holds it."""
