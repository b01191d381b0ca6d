"""Exceptions of fastredis. Redis errors keep redis-py's classes, and every
name of ``redis.exceptions`` is here too (``import fastredis as redis`` works).

Example::

    >>> import redis
    >>> from fastredis import exceptions
    >>> exceptions.ConnectionError is redis.exceptions.ConnectionError
    True
"""

from __future__ import annotations

import redis.exceptions as _redis_exceptions

from redis.exceptions import DataError, InvalidResponse, LockError, RedisError, ResponseError
from redis.exceptions import ConnectionError as _RedisConnectionError
from redis.exceptions import LockNotOwnedError as _RedisLockNotOwnedError
from redis.exceptions import TimeoutError as _RedisTimeoutError

__all__ = [
    "FastRedisError",
    "LockNotOwnedError",
    "LockError",
    "DataError",
    "ProtocolError",
    "OutcomeUnknownError",
    "OutcomeUnknownConnectionError",
    "OutcomeUnknownTimeoutError",
    "ClosedError",
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


class ClosedError(FastRedisError, RuntimeError):
    """A pattern object (a cache, a channel, a subscription, a consumer) was
    used after ``close()``: it owns no connection or thread any more; make a
    new one."""


class OutcomeUnknownError(FastRedisError):
    """The connection failed after a command that is not idempotent may have
    reached the server, so fastredis did not re-send it: it may or may not
    have been applied.

    Raised as :class:`OutcomeUnknownConnectionError` or
    :class:`OutcomeUnknownTimeoutError`, which are also redis-py's
    ``ConnectionError`` / ``TimeoutError``, so existing ``except`` clauses
    still catch them. ``commands`` holds the commands whose outcome is
    unknown (argument tuples); ``__cause__`` is the original error. Pass
    ``retry_writes=True`` to the client for redis-py's behaviour (re-send
    anyway, at the risk of applying a write twice).

    Example::

        >>> import redis
        >>> e = OutcomeUnknownTimeoutError("INCR n: outcome unknown", commands=[("INCR", "n")])
        >>> isinstance(e, redis.exceptions.TimeoutError), e.commands
        (True, [('INCR', 'n')])
    """

    def __init__(self, *args: object, commands: "list[tuple[object, ...]] | None" = None) -> None:
        super().__init__(*args)
        self.commands = list(commands or [])


class OutcomeUnknownConnectionError(OutcomeUnknownError, _RedisConnectionError):
    """:class:`OutcomeUnknownError` after a lost connection (a redis-py ``ConnectionError``)."""


class OutcomeUnknownTimeoutError(OutcomeUnknownError, _RedisTimeoutError):
    """:class:`OutcomeUnknownError` after a timeout (a redis-py ``TimeoutError``)."""


for _name in dir(_redis_exceptions):
    _value = getattr(_redis_exceptions, _name)
    if isinstance(_value, type) and issubclass(_value, BaseException) and _name not in globals():
        globals()[_name] = _value
        __all__.append(_name)
del _name, _value
