"""The drop-in client: ``fastredis.Redis`` is a ``redis.Redis`` whose hot paths
run in the Cython core.

- Pipelines: :class:`fastredis.pipeline.Pipeline` (eager encoding, one write,
  one batched parse).
- Connections: the pool's connections get :class:`~fastredis.connection.FastParser`,
  whether the client built the pool or the user did (``connection_pool=``,
  ``from_url``, Sentinel's ``master_for``). Connections fastredis does not
  drive (user connection classes, ``cache_config``, mocks) take redis-py's
  own paths.
- Retries: writes are not re-sent once they may have reached the server
  (:mod:`fastredis.retry_policy`); ``retry_writes=True`` restores redis-py's
  behaviour.

Example::

    >>> import fastredis
    >>> from fastredis.server import RedisServer
    >>> server = RedisServer()
    >>> r = fastredis.Redis(port=server.port)
    >>> with r.pipeline() as p:
    ...     _ = p.set("a", 1).incr("a")
    ...     p.execute()
    [True, 2]
    >>> p = r.pipeline(transaction=False)
    >>> p.batch("SET", ["k1", "k2"], [1.5, 2]).execute()
    [True, True]
    >>> server.stop()
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Optional

import redis

from . import _redispy, _resp
from .connection import _FAST_TYPES, FastParser, install_fast_parser
from .pipeline import _SPECIAL_COMMANDS, Pipeline
from .retry_policy import call_with_policy

__all__ = ["Redis", "Pipeline", "FastParser", "client_class_for", "execute_command"]

_REDIS_INIT = inspect.signature(redis.Redis.__init__)
_DEFAULT_BULK = FastParser.max_bulk_len
_SEND_COMMAND = redis.connection.Connection.send_command


class Redis(redis.Redis):
    """``redis.Redis`` with a faster pipeline, batch staging and reply parsing.

    Same constructor, commands, options and return values as redis-py 8.x,
    plus:

    - ``retry_writes`` (default False): whether a write whose bytes may have
      reached the server is re-sent after a connection error, as redis-py
      does. By default it is not, and
      :class:`~fastredis.exceptions.OutcomeUnknownConnectionError` /
      :class:`~fastredis.exceptions.OutcomeUnknownTimeoutError` say so.
    - ``max_bulk_len`` (default 512 MiB, the server's default
      ``proto-max-bulk-len``): the longest bulk reply accepted; ``None``
      accepts any length, as hiredis does (for a server with a raised
      ``proto-max-bulk-len``).

    Example::

        >>> import fastredis
        >>> from fastredis.server import RedisServer
        >>> server = RedisServer()
        >>> r = fastredis.Redis(port=server.port, decode_responses=True)
        >>> r.set("greeting", "hello")
        True
        >>> r.get("greeting")
        'hello'
        >>> server.stop()
    """

    parser_class: Any = FastParser
    pipeline_class: Any = Pipeline

    def __init__(
        self, *args: Any, retry_writes: bool = False, max_bulk_len: Optional[int] = _DEFAULT_BULK, **kwargs: Any
    ) -> None:
        if not isinstance(retry_writes, bool):
            raise TypeError(f"retry_writes must be True or False, got {type(retry_writes).__name__}")
        self.retry_writes = retry_writes
        parser_class = self.parser_class
        if max_bulk_len != parser_class.max_bulk_len:
            if max_bulk_len is not None and (isinstance(max_bulk_len, bool) or not isinstance(max_bulk_len, int) or max_bulk_len < 0):
                raise TypeError(f"max_bulk_len must be an int >= 0 or None, got {max_bulk_len!r}")
            parser_class = type(parser_class.__name__, (parser_class,), {"max_bulk_len": max_bulk_len})
        bound = _REDIS_INIT.bind(self, *args, **kwargs)
        single = bool(bound.arguments.get("single_connection_client", False))
        if single:  # built after the fast parser is installed, below
            bound.arguments["single_connection_client"] = False
        super().__init__(*bound.args[1:], **bound.kwargs)
        install_fast_parser(self.connection_pool, parser_class)
        if single:
            self._single_connection_client = True
            self.connection = self.connection_pool.get_connection()
            _redispy.single_connection_event(self)

    @classmethod
    def from_url(  # type: ignore[override]
        cls, url: str, *, retry_writes: bool = False, max_bulk_len: Optional[int] = _DEFAULT_BULK, **kwargs: Any
    ) -> "Redis":
        """As ``redis.Redis.from_url`` (plus ``retry_writes`` and
        ``max_bulk_len``), with the fast parser on the pool it builds."""
        single_connection_client = kwargs.pop("single_connection_client", False)
        pool = redis.ConnectionPool.from_url(url, **kwargs)
        client = cls(
            connection_pool=pool,
            single_connection_client=single_connection_client,
            retry_writes=retry_writes,
            max_bulk_len=max_bulk_len,
        )
        client.auto_close_connection_pool = True
        return client

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        """A :class:`Pipeline` (redis-py semantics, fast staging and execute)."""
        if not _redispy.FAST_PATH:  # redis-py moved what Pipeline hooks into
            return redis.client.Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)  # type: ignore[return-value]
        pipe = self.pipeline_class(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        if self.retry_writes:
            pipe.retry_writes = True
        return pipe

    def _execute_command(self, *args: Any, **options: Any) -> Any:
        """redis-py's single-command path (pool, retry, health checks,
        reconnect) under the write-retry policy. Written to work on any
        ``redis.Redis`` (see :func:`execute_command`)."""
        if not _redispy.FAST_PATH:
            return super()._execute_command(*args, **options)
        pool = self.connection_pool
        command_name = args[0]
        conn = self.connection or _redispy.checkout(pool)
        start_time = time.monotonic()
        attempts = [0]

        def failure_callback(error: Exception, failure_count: int) -> None:
            attempts[0] = failure_count
            self._close_connection(conn, error, failure_count, start_time, command_name)

        single = self._single_connection_client
        if single:
            self.single_connection_lock.acquire()
        try:
            result = call_with_policy(
                conn,
                lambda: self._send_command_parse_response(conn, command_name, *args, **options),
                failure_callback,
                (args,),
                getattr(self, "retry_writes", False),
            )
            if _redispy.observability_enabled():
                _redispy.record_success(conn, command_name, start_time)
            return result
        except Exception as e:
            if _redispy.observability_enabled():
                _redispy.record_failure(conn, e, attempts[0])
            raise
        finally:
            try:
                if conn and conn.should_reconnect():
                    self._close_connection(conn)
                    conn.connect()
            finally:
                if single:
                    self.single_connection_lock.release()
                if not self.connection:
                    _redispy.checkin(pool, conn)

    def _send_command_parse_response(self, conn: Any, command_name: str, *args: Any, **options: Any) -> Any:
        # redis-py's own path for connections we do not drive, and for a
        # send_command that someone patched (tests, instrumentation): they see
        # every command, as with redis-py. Ours skips its per-command HIMPORT
        # parsing and one frame.
        if (
            command_name in _SPECIAL_COMMANDS
            or type(conn) not in _FAST_TYPES
            or type(conn).send_command is not _SEND_COMMAND
            or "send_command" in conn.__dict__
            or not isinstance(conn._parser, FastParser)
        ):
            return super()._send_command_parse_response(conn, command_name, *args, **options)
        conn.send_packed_command([self.parser_class.core.pack_command(args, conn.encoder.encoding, conn.encoder.encoding_errors)])
        return self.parse_response(conn, command_name, **options)


def execute_command(client: Any, args: Any, options: Any) -> Any:
    """Run one command on ``client`` (any ``redis.Redis``, fastredis or not)
    as redis-py's ``_execute_command`` does, under the write-retry policy.

    The patterns use it so that a plain ``redis.Redis`` passed to them does
    not re-send their writes either.

    Example::

        >>> import redis
        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); plain = redis.Redis(port=server.port)
        >>> execute_command(plain, ("INCR", "n"), {})
        1
        >>> server.stop()
    """
    return Redis._execute_command(client, *args, **options)


def client_class_for(core: Any) -> type:
    """A ``Redis`` subclass running on ``core`` (``_resp_c`` or ``_resp_py``).

    Used by the tests and benchmarks to run both twins in one process.

    Example::

        >>> from fastredis import _resp_py
        >>> client_class_for(_resp_py).parser_class.core is _resp_py
        True
    """
    if core is _resp:
        return Redis
    suffix = core.__name__.rsplit(".", 1)[-1]
    parser = type(f"FastParser_{suffix}", (FastParser,), {"core": core})
    pipe = type(f"Pipeline_{suffix}", (Pipeline,), {"core": core})
    return type(f"Redis_{suffix}", (Redis,), {"parser_class": parser, "pipeline_class": pipe})
