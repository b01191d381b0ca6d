"""``fastredis.asyncio.Redis``: a ``redis.asyncio.Redis`` whose commands share
a few multiplexed connections and run through the Cython core.

- Commands issued concurrently by many tasks go out together: one write per
  event-loop iteration on a multiplexed connection, replies matched in FIFO
  order (:mod:`fastredis.asyncio.mux`). A burst of thousands of tasks needs
  one connection, not one each.
- Blocking and stateful commands (BLPOP and friends, XREAD/XREADGROUP with
  BLOCK, WAIT, SELECT, CLIENT TRACKING/REPLY, pub/sub, MONITOR, WATCH
  pipelines) take a dedicated connection from the pool, as redis-py does.
- A task cancelled (or timed out by ``asyncio.wait_for``) while its command
  is in flight keeps its FIFO slot: the reply is read and dropped. A
  connection whose state is unknown is closed, never reused.
- Retries follow the write-retry policy (:mod:`fastredis.retry_policy`):
  ``retry_writes=True`` restores redis-py's behaviour.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port, decode_responses=True) as r:
    ...         await r.set("greeting", "hello")
    ...         return await asyncio.gather(*(r.get("greeting") for _ in range(3)))
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    ['hello', 'hello', 'hello']
"""

from __future__ import annotations

import inspect
import time
import warnings
from typing import Any, Dict, Optional

import redis.asyncio.client as _aclient
import redis.asyncio.connection as _aconnection
from redis.exceptions import ConnectionError, ResponseError, TimeoutError
from redis.retry import AbstractRetry

from .. import _aioproto, _redispy, _resp
from .. import pipeline as _sync_pipeline
from .._redispy import EMPTY_RESPONSE, NEVER_DECODE
from ..retry_policy import NotWritten, acall_with_policy
from .connection import FastAsyncParser, closed_by_server, install_fast_async_parser, is_fast_async_connection, refused_by_server
from .mux import Multiplexer
from .pipeline import BUILTIN_CALLBACKS, Pipeline

__all__ = ["Redis", "StrictRedis", "is_multiplexed", "DEDICATED_COMMANDS", "client_class_for"]

#: Commands that never share a multiplexed connection: they block the
#: connection, or change its state for the commands that follow.
DEDICATED_COMMANDS = frozenset(
    {
        "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP",
        "WAIT", "WAITAOF",
        "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR",
        "SELECT", "AUTH", "HELLO", "RESET", "QUIT",
        "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH",
        "READONLY", "READWRITE", "ASKING", "SYNC", "PSYNC", "REPLCONF", "HIMPORT",
    }
)  # fmt: skip
#: CLIENT subcommands that change the connection's state or read it.
DEDICATED_CLIENT_SUBCOMMANDS = frozenset({"TRACKING", "REPLY", "CACHING", "NO-EVICT", "NO-TOUCH", "TRACKINGINFO", "GETREDIR"})
_BLOCKING_WITH_OPTION = frozenset({"XREAD", "XREADGROUP"})

_MUX, _DEDICATED, _INSPECT = 0, 1, 2
_ROUTES: Dict[Any, int] = {}
_CONNECTION_ERRORS = (ConnectionError, TimeoutError, NotWritten)


def _text(x: Any) -> str:
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).decode("utf-8", "replace")
    return str(x)


def _classify(name: Any) -> int:
    parts = _text(name).upper().split()
    if not parts:
        return _MUX
    first = parts[0]
    if first in DEDICATED_COMMANDS:
        return _DEDICATED
    if first in _BLOCKING_WITH_OPTION:
        return _INSPECT
    if first == "CLIENT":
        if len(parts) > 1:
            return _DEDICATED if parts[1] in DEDICATED_CLIENT_SUBCOMMANDS else _MUX
        return _INSPECT
    return _MUX


def is_multiplexed(args: Any) -> bool:
    """Whether the command ``args`` may share a multiplexed connection.

    Example::

        >>> is_multiplexed(("GET", "k")), is_multiplexed(("BLPOP", "q", 0))
        (True, False)
        >>> is_multiplexed(("XREAD", "STREAMS", "s", "0")), is_multiplexed(("XREAD", "BLOCK", 0, "STREAMS", "s", "$"))
        (True, False)
        >>> is_multiplexed(("CLIENT TRACKING", "on")), is_multiplexed(("CLIENT", "ID"))
        (False, True)
    """
    name = args[0]
    try:
        route = _ROUTES.get(name)
    except TypeError:  # an unhashable name: let the server judge it on a dedicated connection
        return False
    if route is None:
        route = _classify(name)
        if len(_ROUTES) < 4096:
            _ROUTES[name] = route
    if route == _MUX:
        return True
    if route == _DEDICATED:
        return False
    first = _text(name).upper().split()[0]
    if first == "CLIENT":
        return len(args) < 2 or _text(args[1]).upper() not in DEDICATED_CLIENT_SUBCOMMANDS
    for a in args[1:]:
        if isinstance(a, (str, bytes)) and len(a) == 5 and _text(a).upper() == "BLOCK":
            return False
    return True


class PubSub(_aclient.PubSub):
    """``redis.asyncio.client.PubSub``; before it takes its connection, a
    client's idle multiplexed connection gives its own back to a pool at its
    ``max_connections`` (see :meth:`fastredis.asyncio.mux.Multiplexer.make_room`)."""

    _mux: Any = None

    async def connect(self) -> None:
        if self.connection is None and self._mux is not None:
            await self._mux.make_room()
        await super().connect()


class Redis(_aclient.Redis):
    """``redis.asyncio.Redis`` with multiplexed connections and the Cython core.

    Same constructor, commands, options and return values as redis-py 8.x,
    plus:

    - ``retry_writes`` (default False): whether a write whose bytes may have
      reached the server is re-sent after a connection error, as redis-py
      does. By default it is not, and
      :class:`~fastredis.exceptions.OutcomeUnknownConnectionError` /
      :class:`~fastredis.exceptions.OutcomeUnknownTimeoutError` say so.
    - ``multiplexed_connections`` (default 1): how many connections the
      client's non-blocking commands share; 0 gives every command a pool
      connection of its own, as redis-py does.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = fastredis.asyncio.Redis(port=port)
        ...     await asyncio.gather(*(r.incr("hits") for _ in range(1000)))
        ...     hits = await r.get("hits")
        ...     await r.aclose()
        ...     return hits
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        b'1000'
    """

    parser_class: Any = FastAsyncParser
    pipeline_class: Any = Pipeline
    #: The multiplexed-connection protocol core (``_aioproto_c`` or ``_aioproto_py``).
    mux_core: Any = _aioproto
    #: The RESP core (``_resp_c`` or ``_resp_py``).
    core: Any = _resp

    def __init__(self, *, retry_writes: bool = False, multiplexed_connections: int = 1, **kwargs: Any) -> None:
        if not isinstance(retry_writes, bool):
            raise TypeError(f"retry_writes must be True or False, got {type(retry_writes).__name__}")
        _check_size(multiplexed_connections)
        super().__init__(**kwargs)
        self.retry_writes = retry_writes
        install_fast_async_parser(self.connection_pool, self.parser_class)
        size = multiplexed_connections
        if self.single_connection_client or not _redispy.ASYNC_FAST_PATH:
            size = 0
        elif not isinstance(self.connection_pool, _aconnection.ConnectionPool):
            size = 0  # a pool we do not know (a test double): redis-py's paths only
        elif getattr(self.connection_pool, "max_connections", 2) <= 1:
            size = 0  # one connection in all: the user asked for redis-py's one-at-a-time
        self._mux = Multiplexer(self.connection_pool, size, self.mux_core, self.core)
        self._decoding = bool(self.connection_pool.connection_kwargs.get("decode_responses"))

    @classmethod
    def from_url(  # type: ignore[override]
        cls,
        url: str,
        single_connection_client: bool = False,
        auto_close_connection_pool: Optional[bool] = None,
        *,
        retry_writes: bool = False,
        multiplexed_connections: int = 1,
        **kwargs: Any,
    ) -> "Redis":
        """As ``redis.asyncio.Redis.from_url`` (plus ``retry_writes`` and
        ``multiplexed_connections``), with the fast parser on the pool it builds.

        Example::

            >>> import fastredis.asyncio
            >>> r = fastredis.asyncio.Redis.from_url("redis://localhost:6379/0", retry_writes=True)
            >>> type(r).__name__, r.retry_writes
            ('Redis', True)
        """
        if not isinstance(retry_writes, bool):
            raise TypeError(f"retry_writes must be True or False, got {type(retry_writes).__name__}")
        _check_size(multiplexed_connections)
        client: Any = super().from_url(
            url, single_connection_client=single_connection_client, auto_close_connection_pool=auto_close_connection_pool, **kwargs
        )
        client.retry_writes = retry_writes
        if client._mux.enabled:
            client._mux.size = multiplexed_connections
            client._mux.enabled = multiplexed_connections > 0
        return client  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<{self.__class__.__module__}.{self.__class__.__name__}({self.connection_pool!r})>"

    def client(self) -> "Redis":
        """A client pinned to one connection of this pool (redis-py's
        ``client()``), with the same ``retry_writes``."""
        pinned = self.__class__(connection_pool=self.connection_pool, single_connection_client=True)
        pinned.retry_writes = self.retry_writes
        return pinned

    # -- pipelines -----------------------------------------------------------
    def pubsub(self, **kwargs: Any) -> "PubSub":
        """redis-py's ``PubSub`` (on a small pool, the idle multiplexed
        connection makes room for its connection first)."""
        ps = PubSub(self.connection_pool, event_dispatcher=self._event_dispatcher, **kwargs)
        ps._mux = self._mux
        return ps

    def pipeline(self, transaction: bool = True, shard_hint: Optional[str] = None) -> Pipeline:  # type: ignore[override]
        """A :class:`~fastredis.asyncio.pipeline.Pipeline` (redis-py semantics,
        fast staging, one write, one batched parse)."""
        pipe = self.pipeline_class(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe._client = self
        if self.retry_writes:
            pipe.retry_writes = True
        return pipe  # type: ignore[no-any-return]

    # -- commands --------------------------------------------------------------
    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Execute a command and return its parsed reply, on a multiplexed
        connection unless it blocks or changes connection state."""
        mux = self._mux
        if (
            mux.enabled
            and self.connection is None  # a pinned connection (single_connection_client, a test's mock) is used as is
            and is_multiplexed(args)
            and not (options and NEVER_DECODE in options and self._decoding)
        ):
            if _redispy.async_observability_enabled():
                return await self._observed(args, options)
            return await self._execute_multiplexed(args, options)
        return await self._execute_pooled(args, options)

    async def _execute_multiplexed(self, args: Any, options: Any) -> Any:
        try:
            reply = await self._mux.connection().proto.send(args)
        except _CONNECTION_ERRORS as error:
            return await self._multiplexed_slow(args, options, error)
        if isinstance(reply, BaseException):
            return await self._multiplexed_slow(args, options, None, reply)
        if options:
            options.pop(EMPTY_RESPONSE, None)
            options.pop("keys", None)
        callback = self.response_callbacks.get(args[0])
        if callback is None:
            return reply
        value = callback(reply, **options) if options else callback(reply)
        if id(callback) not in BUILTIN_CALLBACKS and inspect.isawaitable(value):
            value = await value
        return value

    async def _multiplexed_slow(self, args: Any, options: Any, failure: Optional[BaseException], reply: Any = None) -> Any:
        """After a failed send (``failure``) or an error reply: the write-retry
        policy, then redis-py's handling of the reply."""
        mux = self._mux
        if failure is not None:
            if not mux.enabled:  # the pool's connections cannot be multiplexed
                return await self._execute_pooled(args, options)
            if isinstance(failure, NotWritten) and failure.final:
                raise failure.error from None
            reply = await self._retry_multiplexed(args, failure)
        if isinstance(reply, ConnectionError):  # LOADING and kin: refused, so retried as redis-py does
            reply = await self._retry_multiplexed(args, NotWritten(reply))
        if isinstance(reply, BaseException):
            if isinstance(reply, ResponseError) and options and EMPTY_RESPONSE in options:
                return options[EMPTY_RESPONSE]
            raise reply
        if options:
            options.pop(EMPTY_RESPONSE, None)
            options.pop("keys", None)
        callback = self.response_callbacks.get(args[0])
        if callback is None:
            return reply
        value = callback(reply, **options) if options else callback(reply)
        if id(callback) not in BUILTIN_CALLBACKS and inspect.isawaitable(value):
            value = await value
        return value

    async def _retry_multiplexed(self, args: Any, first_error: BaseException) -> Any:
        """The write-retry policy after a first failed attempt."""
        mux = self._mux

        async def attempt() -> Any:
            reply = await mux.connection().proto.send(args)
            if isinstance(reply, ConnectionError):  # an error reply: the server refused it
                raise NotWritten(reply)
            return reply

        return await acall_with_policy(
            mux.retry(), attempt, _nothing, lambda: (args,), retry_writes=self.retry_writes, first_error=first_error
        )

    async def _observed(self, args: Any, options: Any) -> Any:
        """:meth:`_execute_multiplexed` with redis-py's metrics (when OpenTelemetry is on)."""
        kw = self.connection_pool.connection_kwargs
        host, port = kw.get("host") or kw.get("path") or "", int(kw.get("port") or 0)
        start_time = time.monotonic()
        try:
            result = await self._execute_multiplexed(args, options)
        except Exception as e:
            await _aclient.record_error_count(
                server_address=host, server_port=port, network_peer_address=host, network_peer_port=port,
                error_type=e, retry_attempts=0, is_internal=False,
            )  # fmt: skip
            raise
        await _aclient.record_operation_duration(
            command_name=args[0],
            duration_seconds=time.monotonic() - start_time,
            server_address=host,
            server_port=port,
            db_namespace=str(kw.get("db", 0)),
        )
        return result

    async def _execute_pooled(self, args: Any, options: Any) -> Any:
        """redis-py's ``execute_command`` on a pool connection (dedicated
        commands, ``single_connection_client``, ``multiplexed_connections=0``),
        under the write-retry policy."""
        await self.initialize()
        pinned = self.connection
        if not isinstance(self.connection_pool, _aconnection.ConnectionPool) or (
            pinned is not None and not isinstance(getattr(pinned, "retry", None), AbstractRetry)
        ):
            # Test doubles (a mocked pool or connection, a stand-in Retry): redis-py's own code.
            return await super().execute_command(*args, **options)
        pool = self.connection_pool
        command_name = args[0]
        conn = self.connection
        if conn is None:
            await self._mux.make_room()
            conn = await pool.get_connection()
        start_time = time.monotonic()
        attempts = [0]
        owned = is_fast_async_connection(conn)

        async def attempt() -> Any:
            if owned:
                try:
                    if conn.is_connected and closed_by_server(conn):
                        await conn.disconnect(nowait=True)  # closed while idle: nothing written yet
                    if not conn.is_connected:
                        await conn.connect()
                    if conn.health_check_interval:
                        await conn.check_health()
                except (ConnectionError, TimeoutError) as e:
                    raise NotWritten(e) from e
            try:
                return await self._send_command_parse_response(conn, command_name, *args, **options)
            except ConnectionError as e:
                if refused_by_server(e):  # the server answered LOADING (or kin): not applied
                    raise NotWritten(e) from e
                raise

        async def failure(error: Exception, failure_count: int) -> None:
            attempts[0] = failure_count
            await self._close_connection(conn, error, failure_count, start_time, command_name)

        async def abandon() -> None:
            await conn.disconnect(nowait=True)

        if self.single_connection_client:
            await self._single_conn_lock.acquire()
        try:
            result = await acall_with_policy(
                conn.retry, attempt, failure, lambda: (args,), retry_writes=self.retry_writes, abandon=abandon
            )
            await _aclient.record_operation_duration(
                command_name=command_name,
                duration_seconds=time.monotonic() - start_time,
                server_address=getattr(conn, "host", None),
                server_port=getattr(conn, "port", None),
                db_namespace=str(getattr(conn, "db", "")),
            )
            return result
        except Exception as e:
            await _aclient.record_error_count(
                server_address=getattr(conn, "host", None),  # type: ignore[arg-type]
                server_port=getattr(conn, "port", None),  # type: ignore[arg-type]
                network_peer_address=getattr(conn, "host", None),  # type: ignore[arg-type]
                network_peer_port=getattr(conn, "port", None),  # type: ignore[arg-type]
                error_type=e,
                retry_attempts=attempts[0],
                is_internal=False,
            )
            raise
        finally:
            try:
                if self.single_connection_client and conn and conn.should_reconnect():
                    await self._close_connection(conn)
                    await conn.connect()
            finally:
                if self.single_connection_client:
                    self._single_conn_lock.release()
                if not self.connection:
                    await pool.release(conn)

    async def _send_command_parse_response(self, conn: Any, command_name: Any, *args: Any, **options: Any) -> Any:
        if command_name in ("HIMPORT", "HIMPORT SET") or not is_fast_async_connection(conn):
            return await super()._send_command_parse_response(conn, command_name, *args, **options)
        await conn.send_packed_command([self.core.pack_command(args, conn.encoder.encoding, conn.encoder.encoding_errors)])
        return await self.parse_response(conn, command_name, **options)

    # -- closing -----------------------------------------------------------------
    async def aclose(self, close_connection_pool: Optional[bool] = None) -> None:
        """Close the multiplexed connections (their in-flight commands fail
        with ``ConnectionError``), then as redis-py's ``aclose``."""
        mux = getattr(self, "_mux", None)
        if mux is not None:
            await mux.aclose()
        await super().aclose(close_connection_pool)

    def __del__(self, _warn: Any = warnings.warn, *args: Any) -> None:  # type: ignore[override]
        mux = getattr(self, "_mux", None)
        if mux is not None and mux.conns:
            try:
                _warn(f"Unclosed client {self!r}: its multiplexed connections are closed now", ResourceWarning, source=self)
            except Exception:
                pass
            mux.close_sync()
        try:
            super().__del__()
        except Exception:
            pass


def _make_hot(method: str, command: str, params: str, sent: str, fallback: str) -> Any:
    """One command method compiled from its :data:`fastredis.pipeline.HOT_COMMANDS`
    row: straight to the multiplexed connection, without redis-py's generic
    ``execute_command`` (options dict, callback lookup by upper-cased name);
    redis-py's own method for everything else (other options, a pinned or
    dedicated connection, metrics on)."""
    guard = "self.connection is not None or not self._mux.enabled or _observing()"
    if fallback:
        guard = f"{fallback} or {guard}"
    source = (
        f"async def {method}(self, {params}):\n"
        f"    if {guard}:\n"
        f"        return await _PARENT.{method}(self, {_sync_pipeline._names(params)})\n"
        f"    args = ({command!r}, {sent},)\n"
        f"    try:\n"
        f"        reply = await self._mux.connection().proto.send(args)\n"
        f"    except _CONNECTION_ERRORS as error:\n"
        f"        return await self._multiplexed_slow(args, None, error)\n"
        f"    if isinstance(reply, BaseException):\n"
        f"        return await self._multiplexed_slow(args, None, None, reply)\n"
        f"    callback = _dict_get(self.response_callbacks, {command!r})\n"
        f"    if callback is None:\n"
        f"        return reply\n"
        f"    value = callback(reply)\n"
        f"    if id(callback) not in _BUILTIN and _isawaitable(value):\n"
        f"        value = await value\n"
        f"    return value\n"
    )
    namespace: Dict[str, Any] = {
        "_PARENT": _aclient.Redis,
        "_CONNECTION_ERRORS": _CONNECTION_ERRORS,
        "_dict_get": dict.get,
        "_BUILTIN": BUILTIN_CALLBACKS,
        "_isawaitable": inspect.isawaitable,
        "_observing": _redispy.async_observability_enabled,
    }
    exec(compile(source, f"<fastredis.asyncio.client.{method}>", "exec"), namespace)
    func = namespace[method]
    func.__qualname__ = f"Redis.{method}"
    func.__doc__ = getattr(getattr(_aclient.Redis, method, None), "__doc__", None)
    return func


for _method, _row_spec in _sync_pipeline.HOT_COMMANDS.items():
    setattr(Redis, _method, _make_hot(_method, *_row_spec))
del _method, _row_spec

StrictRedis = Redis


async def _nothing(error: Exception, failure_count: int) -> None:
    """A multiplexed connection closes itself on failure: nothing to clean up."""


def _check_size(size: Any) -> None:
    if type(size) is not int or size < 0:
        raise ValueError(f"multiplexed_connections must be an int >= 0 (0 turns multiplexing off), got {size!r}")


def client_class_for(core: Any) -> type:
    """A ``Redis`` subclass running on ``core`` (``_resp_c`` or ``_resp_py``)
    with the matching protocol core; tests and benchmarks run both twins.

    Example::

        >>> from fastredis import _resp_py
        >>> client_class_for(_resp_py).mux_core.__name__
        'fastredis._aioproto_py'
    """
    if core is _resp:
        return Redis
    import importlib

    suffix = core.__name__.rsplit(".", 1)[-1]
    mux_core = importlib.import_module("fastredis._aioproto" + suffix[len("_resp") :])
    parser = type(f"FastAsyncParser{suffix}", (FastAsyncParser,), {"core": core})
    pipe = type(f"Pipeline{suffix}", (Pipeline,), {"core": core})
    return type(
        f"Redis{suffix}", (Redis,), {"parser_class": parser, "pipeline_class": pipe, "mux_core": mux_core, "core": core}
    )
