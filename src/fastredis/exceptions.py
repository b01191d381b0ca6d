"""Exceptions of fastredis. Redis errors keep redis-py's classes."""

from __future__ import annotations

from redis.exceptions import DataError, LockError, ProtocolError, RedisError, ResponseError
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


class LockNotOwnedError(_RedisLockNotOwnedError, FastRedisError):
    """The lock is no longer ours: it expired or another owner holds it."""
