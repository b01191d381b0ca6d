"""``fastredis.asyncio.Pipeline``: redis-py's asyncio pipeline with eager
encoding, one write, one batched parse, and the write-retry policy.

- Staging is the sync pipeline's: each command is encoded into one buffer at
  once, the hot commands (:data:`fastredis.pipeline.HOT_COMMANDS`) skip
  redis-py's option handling, and ``batch()`` stages columns in one C loop.
- ``execute()`` of a pipeline that does not WATCH goes over the client's
  multiplexed connection as one queued group (a transaction's MULTI ... EXEC
  is written contiguously, so no other task's command can land inside it).
- After ``watch()`` the pipeline holds a dedicated pool connection, as in
  redis-py; its commands still go through the core's encoder and reader.
- Anything else fastredis does not own (a connection it does not drive,
  NEVER_DECODE / EMPTY_RESPONSE options, HIMPORT) runs on redis-py's code.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         async with r.pipeline(transaction=False) as p:
    ...             return await p.set("x", "1").get("x").hgetall("missing").execute()
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    [True, b'1', {}]
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Dict, List, Optional, Tuple

import redis.asyncio.client as _aclient
from redis.exceptions import ConnectionError, ExecAbortError, ResponseError, TimeoutError, WatchError

from .. import _pipeline, _redispy, _resp
from .. import pipeline as _sync
from .._redispy import OK_CALLBACKS
from ..retry_policy import NotWritten, acall_with_policy
from .connection import aread_replies, closed_by_server, is_fast_async_connection

__all__ = ["Pipeline"]

_MULTI = _resp.pack_command(("MULTI",))
_EXEC = _resp.pack_command(("EXEC",))
_NO_OPTIONS: Any = _sync._NO_OPTIONS
_SPECIAL_COMMANDS = _sync._SPECIAL_COMMANDS
_CONNECTION_ERRORS = (ConnectionError, TimeoutError, NotWritten)
_PARENT = _aclient.Pipeline


def _builtin_callback_ids() -> frozenset:
    """ids of redis-py's own response callbacks: known not to return awaitables."""
    from redis._parsers.helpers import get_response_callbacks

    ids: set = set()
    for protocol in (None, 2, 3):
        for legacy in (True, False):
            try:
                ids.update(id(cb) for cb in get_response_callbacks(user_protocol=protocol, legacy_responses=legacy).values())
            except TypeError:  # pragma: no cover - older signature
                pass
    return frozenset(ids)


#: Callbacks that never return an awaitable (redis-py's own).
BUILTIN_CALLBACKS = _builtin_callback_ids()


def _make_hot(method: str, command: str, params: str, sent: str, fallback: str) -> Any:
    """One staging method compiled from its :data:`HOT_COMMANDS` row (as the
    sync pipeline does), falling back to redis-py's asyncio method."""
    parts = [s.strip() for s in sent.split(",")]
    if parts[-1].startswith("*"):
        add = "self._buf.addn(_HDR, (%s,))" % sent
    else:
        add = "self._buf.add%d(_HDR, %s)" % (len(parts), sent)
    guard = "self.watching and not self.explicit_transaction"
    if fallback:
        guard = f"{fallback} or {guard}"
    source = (
        f"def {method}(self, {params}):\n"
        f"    if {guard}:\n"
        f"        return _PARENT.{method}(self, {_sync._names(params)})\n"
        f"    args = ({command!r}, {sent},)\n"
        f"    self.command_stack.append((args, _NO_OPTIONS))\n"
        f"    try:\n"
        f"        {add}\n"
        f"    except Exception as e:\n"
        f"        self._defer(e)\n"
        f"    return self\n"
    )
    namespace: Dict[str, Any] = {"_HDR": _sync._hdr(command), "_PARENT": _PARENT, "_NO_OPTIONS": _NO_OPTIONS}
    exec(compile(source, f"<fastredis.asyncio.pipeline.{method}>", "exec"), namespace)
    func = namespace[method]
    func.__qualname__ = f"Pipeline.{method}"
    func.__doc__ = getattr(getattr(_PARENT, method, None), "__doc__", None)
    return func


class Pipeline(_aclient.Pipeline):
    """redis-py's asyncio ``Pipeline`` with eager encoding and a batched execute.

    Replies, callbacks, errors, transactions, ``raise_on_error=False``,
    WATCH, scripts and retries are redis-py's, except that writes are not
    re-sent once they may have reached the server
    (:mod:`fastredis.retry_policy`).

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         async with r.pipeline() as p:
        ...             return await p.set("a", 1).incr("a").execute()
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        [True, 2]
    """

    #: The RESP core module (compiled ``_resp_c`` or the ``_resp_py`` twin).
    core: Any = _resp
    #: Re-send pipelines after a connection error as redis-py does (set from
    #: the client's ``retry_writes``).
    retry_writes: bool = False

    def __init__(self, connection_pool: Any, response_callbacks: Any, transaction: bool, shard_hint: Any) -> None:
        super().__init__(connection_pool, response_callbacks, transaction, shard_hint)
        kw = connection_pool.connection_kwargs
        self._buf = self.core.CommandBuffer(kw.get("encoding", "utf-8"), kw.get("encoding_errors", "strict"))
        self._deferred_error: Optional[BaseException] = None
        self._redis_path = not _redispy.ASYNC_FAST_PATH
        self._decoding = bool(kw.get("decode_responses"))
        self._client: Any = None  # the fastredis.asyncio.Redis that made it (its multiplexer)

    # -- staging (the sync pipeline's, which does no I/O) --------------------
    pipeline_execute_command: Any = _sync.Pipeline.pipeline_execute_command
    batch: Any = _sync.Pipeline.batch
    _stage_batch_stack: Any = _sync.Pipeline._stage_batch_stack
    _defer: Any = _sync.Pipeline._defer
    _row: Any = _sync.Pipeline._row
    _raise_deferred: Any = _sync.Pipeline._raise_deferred

    def zadd(self, name: Any, mapping: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if args or kwargs or (self.watching and not self.explicit_transaction) or type(mapping) is not dict or not mapping:
            return super().zadd(name, mapping, *args, **kwargs)
        pieces: List[Any] = [name]
        for member, score in mapping.items():
            pieces.append(score)
            pieces.append(member)
        self.command_stack.append((("ZADD", *pieces), _NO_OPTIONS))
        try:
            self._buf.addn(_sync._H_ZADD, pieces)
        except Exception as e:
            self._defer(e)
        return self

    def annotate_exception(self, exception: Exception, number: int, command: Any) -> None:
        if isinstance(command, _sync._BatchArgs):
            command = command.row(number - 1 - command.start)
        super().annotate_exception(exception, number, command)

    async def reset(self) -> None:  # type: ignore[override]
        await super().reset()
        buf = getattr(self, "_buf", None)
        if buf is not None:
            buf.clear()
            self._deferred_error = None
            self._redis_path = not _redispy.ASYNC_FAST_PATH

    # -- execution ---------------------------------------------------------
    def _mux(self) -> Any:
        client = self._client
        mux = getattr(client, "_mux", None)
        if mux is None or not mux.enabled or self.connection is not None or self.watching or self._redis_path:
            return None
        return mux

    async def _make_room(self) -> None:
        """Before this pipeline takes a pool connection of its own: see
        :meth:`fastredis.asyncio.mux.Multiplexer.make_room`."""
        mux = getattr(self._client, "_mux", None)
        if mux is not None:
            await mux.make_room()

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        """redis-py's (WATCH and the commands after it, on the pipeline's own connection)."""
        if not self.connection:
            await self._make_room()
        return await super().immediate_execute_command(*args, **options)

    async def load_scripts(self) -> None:
        """Make sure every script this pipeline runs is loaded (SCRIPT EXISTS,
        then SCRIPT LOAD for the missing ones), over the multiplexed
        connection when the pipeline does not hold one of its own."""
        if self._mux() is None:
            return await super().load_scripts()
        scripts = list(self.scripts)
        client = self._client
        exists = await client.execute_command("SCRIPT EXISTS", *[s.sha for s in scripts])
        if not all(exists):
            for s, exist in zip(scripts, exists):
                if not exist:
                    s.sha = await client.execute_command("SCRIPT LOAD", s.script)

    async def execute(self, raise_on_error: bool = True) -> List[Any]:
        """Execute the staged commands, as redis-py does, under the write-retry policy."""
        stack = self.command_stack
        if not stack and not self.watching:
            return []
        try:
            if self.scripts:
                await self.load_scripts()
            mux = self._mux()
            if mux is not None:
                replies = await self._send_mux(mux, stack)
                if replies is not None:
                    transaction = bool(self.is_transaction or self.explicit_transaction)
                    if transaction:
                        return await self._finish_transaction(replies, stack, raise_on_error)
                    return await self._finish_pipeline(replies, stack, raise_on_error)
            return await self._execute_dedicated(stack, raise_on_error)
        finally:
            await self.reset()

    async def _send_mux(self, mux: Any, stack: Any) -> Optional[List[Any]]:
        """Send the pipeline as one group on a multiplexed connection; None if
        multiplexing turned out impossible (then the dedicated path runs)."""
        self._raise_deferred()
        transaction = bool(self.is_transaction or self.explicit_transaction)
        body = self._buf.getvalue()
        payload = [_MULTI, body, _EXEC] if transaction else [body]
        count = len(stack) + (2 if transaction else 0)

        async def attempt() -> Any:
            replies = await mux.connection().proto.send_group(payload, count)
            _raise_refusals(replies, transaction)
            return replies

        try:
            return await attempt()
        except _CONNECTION_ERRORS as first:
            if not mux.enabled:
                return None
            if isinstance(first, NotWritten) and first.final:
                raise first.error from None
            return await acall_with_policy(
                mux.retry(),
                attempt,
                _no_cleanup,
                lambda: (self._row(i) for i in range(len(stack))),
                retry_writes=self.retry_writes,
                transaction=transaction,
                first_error=first,
            )

    async def _execute_dedicated(self, stack: Any, raise_on_error: bool) -> List[Any]:
        transaction = bool(self.is_transaction or self.explicit_transaction)
        if transaction:
            execute, operation_name = self._execute_transaction, "MULTI"
        else:
            execute, operation_name = self._execute_pipeline, "PIPELINE"
        conn = self.connection
        if not conn:
            await self._make_room()
            conn = await self.connection_pool.get_connection()
            self.connection = conn  # reset() releases it
        start_time = time.monotonic()
        owned = is_fast_async_connection(conn)

        async def attempt() -> Any:
            if owned:
                if conn.is_connected and closed_by_server(conn):
                    # Closed while idle: nothing of this pipeline was written,
                    # but a WATCH on that connection is gone (WatchError).
                    await self._disconnect_raise_on_watching(conn, ConnectionError("Connection closed by server."))
                try:
                    if not conn.is_connected:
                        await conn.connect()
                    if conn.health_check_interval:
                        await conn.check_health()
                except (ConnectionError, TimeoutError) as e:
                    raise NotWritten(e) from e
            return await execute(conn, stack, raise_on_error)

        async def failure(error: Exception, failure_count: int) -> None:
            await self._disconnect_raise_on_watching(conn, error, failure_count, start_time, operation_name)

        async def abandon() -> None:
            await conn.disconnect(nowait=True)

        return await acall_with_policy(
            conn.retry,
            attempt,
            failure,
            lambda: (self._row(i) for i in range(len(stack))),
            retry_writes=self.retry_writes,
            transaction=transaction,
            abandon=abandon,
        )

    async def _send_command_parse_response(self, conn: Any, command_name: Any, *args: Any, **options: Any) -> Any:
        if (command_name in _SPECIAL_COMMANDS and command_name not in ("WATCH", "UNWATCH")) or not is_fast_async_connection(conn):
            return await super()._send_command_parse_response(conn, command_name, *args, **options)
        await conn.send_packed_command([self.core.pack_command(args, conn.encoder.encoding, conn.encoder.encoding_errors)])
        return await self.parse_response(conn, command_name, **options)

    async def _execute_pipeline(self, connection: Any, commands: Any, raise_on_error: bool) -> List[Any]:
        if self._redis_path or not is_fast_async_connection(connection):
            return await super()._execute_pipeline(connection, _sync._materialise(commands), raise_on_error)  # type: ignore[arg-type]
        self._raise_deferred()
        await connection.send_packed_command([self._buf.getvalue()])
        replies, _ = await aread_replies(connection, len(commands))
        await _disconnect_on_refusals(connection, replies, False)
        return await self._finish_pipeline(replies, commands, raise_on_error)

    async def _execute_transaction(self, connection: Any, commands: Any, raise_on_error: bool) -> List[Any]:
        if self._redis_path or not is_fast_async_connection(connection):
            return await super()._execute_transaction(connection, _sync._materialise(commands), raise_on_error)  # type: ignore[arg-type]
        self._raise_deferred()
        await connection.send_packed_command([_MULTI, self._buf.getvalue(), _EXEC])
        replies, _ = await aread_replies(connection, len(commands) + 2)
        await _disconnect_on_refusals(connection, replies, True)
        return await self._finish_transaction(replies, commands, raise_on_error)

    # -- replies -----------------------------------------------------------
    async def _finish_pipeline(self, response: List[Any], commands: Any, raise_on_error: bool) -> List[Any]:
        has_errors = _has_errors(response)
        if raise_on_error and has_errors:
            self.raise_first_error(commands, response)
        return await self._apply_callbacks(response, commands, has_errors)

    async def _finish_transaction(self, replies: List[Any], commands: Any, raise_on_error: bool) -> List[Any]:
        errors: List[Tuple[int, Any]] = []
        if _has_errors(replies):  # MULTI or a queued command refused: redis-py's bookkeeping
            if isinstance(replies[0], ResponseError):
                errors.append((0, replies[0]))
            for i in range(len(commands)):
                r = replies[i + 1]
                if isinstance(r, ResponseError):
                    self.annotate_exception(r, i + 1, commands[i][0])
                    errors.append((i, r))
        response = replies[-1]
        if isinstance(response, ExecAbortError):
            if errors:
                raise errors[0][1] from response
            raise response
        if isinstance(response, BaseException):
            raise response
        self.watching = False
        if response is None:
            raise WatchError("Watched variable changed.") from None
        for i, e in errors:
            response.insert(i, e)
        if len(response) != len(commands):
            if self.connection:
                await self.connection.disconnect()
            raise ResponseError("Wrong number of response items from pipeline execution") from None
        has_errors = bool(errors) or _has_errors(response)
        if raise_on_error and has_errors:
            self.raise_first_error(commands, response)
        return await self._apply_callbacks(response, commands, has_errors)

    async def _apply_callbacks(self, response: List[Any], commands: Any, has_errors: bool) -> List[Any]:
        return await aapply_callbacks(response, commands, self.response_callbacks, has_errors)


async def aapply_callbacks(response: List[Any], commands: Any, callbacks: Any, has_errors: bool) -> List[Any]:
    """``callbacks[name](reply, **options)`` for each reply, in place, as
    redis-py's asyncio pipelines do (a user callback may return an awaitable).
    ``commands``: the ``(args, options)`` of each reply."""
    custom = [False]

    def lookup(name: Any) -> Any:
        cb = callbacks.get(name)
        if cb is not None and id(cb) not in BUILTIN_CALLBACKS:
            custom[0] = True
        return cb

    _pipeline.apply_callbacks(response, commands, lookup, OK_CALLBACKS, has_errors)
    if custom[0]:  # a user callback may be a coroutine function, as redis-py allows
        for i, r in enumerate(response):
            if inspect.isawaitable(r):
                response[i] = await r
    return response


def _refusals(replies: List[Any], transaction: bool) -> List[Any]:
    """The ConnectionError-family error replies (LOADING and kin) that
    redis-py's parser raises: at the top level, or first in EXEC's reply."""
    found = [r for r in replies if isinstance(r, ConnectionError)]
    if transaction and replies:
        last = replies[-1]
        if isinstance(last, list) and last and isinstance(last[0], ConnectionError):
            found.append(last[0])
    return found


def _raise_refusals(replies: List[Any], transaction: bool) -> None:
    """Raise a refusal as redis-py does: retried if the server refused every
    command (nothing was applied), raised as it is otherwise (the replies
    arrived, the outcome is known)."""
    found = _refusals(replies, transaction)
    if found:
        everything = len(found) == len(replies) and all(isinstance(r, ConnectionError) for r in replies)
        raise NotWritten(found[0], final=not everything)


async def _disconnect_on_refusals(connection: Any, replies: List[Any], transaction: bool) -> None:
    if _refusals(replies, transaction):
        await connection.disconnect(nowait=True)  # as redis-py's read_response does
        _raise_refusals(replies, transaction)


def _has_errors(replies: List[Any]) -> bool:
    for r in replies:
        if isinstance(r, BaseException):
            return True
    return False


async def _no_cleanup(error: Exception, failure_count: int) -> None:
    """The multiplexed connection closed itself already."""


for _method, _row_spec in _sync.HOT_COMMANDS.items():
    setattr(Pipeline, _method, _make_hot(_method, *_row_spec))
del _method, _row_spec
