"""The drop-in client: ``fastredis.Redis`` is a ``redis.Redis`` whose hot paths
run in the Cython core.

- Pipelines encode each command into one buffer as it is staged (hot commands
  skip redis-py's option handling), send it with one write, and parse all the
  replies with one batched call into the core reader.
- Connections use :class:`FastParser`, redis-py's hiredis parser with the
  core's reader in place of hiredis's, so push frames, maintenance
  notifications and error classes behave exactly as in redis-py.
- Anything else falls through to redis-py unchanged: user connection classes,
  client-side caching (``cache_config``), HIMPORT, NEVER_DECODE replies.

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
import os
import select
import socket
import time
from itertools import repeat
from typing import Any, Dict, List, Optional, Sequence, Tuple

import redis
import redis.client
from redis._parsers.helpers import bool_ok, parse_set_result
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _HiredisParser
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import (
    ConnectionError,
    DataError,
    ExecAbortError,
    ResponseError,
    TimeoutError,
    WatchError,
)
from redis.utils import SENTINEL

from . import _pipeline, _resp
from .exceptions import ProtocolError

__all__ = ["Redis", "Pipeline", "FastParser"]

_EMPTY_RESPONSE = redis.client.EMPTY_RESPONSE
_NEVER_DECODE = redis.client.NEVER_DECODE
# The options of a command staged without any. An empty tuple, not a dict: a
# stack entry holding only strings and tuples is untracked by the garbage
# collector after its first pass, while a dict would keep all 100k entries of
# a big pipeline tracked and make staging spend half its time in GC. Our
# execute paths only test it for truth; redis-py's own paths get a real dict
# from _materialise().
_NO_OPTIONS: Any = ()
_OK_CALLBACKS = (parse_set_result, bool_ok)


def _spin_seconds() -> float:
    raw = os.environ.get("FASTREDIS_SPIN_US", "50")
    try:
        us = float(raw)
    except ValueError:
        raise ValueError(f"FASTREDIS_SPIN_US must be a number of microseconds (0 turns polling off), got {raw!r}") from None
    return max(0.0, us) / 1e6 if us == us else 0.0


#: How long FastParser polls for a reply before a blocking read (seconds).
SPIN_SECONDS = _spin_seconds()
_FAST_CONNECTIONS = (Connection, SSLConnection, UnixDomainSocketConnection)
_MULTI = _resp.pack_command(("MULTI",))
_EXEC = _resp.pack_command(("EXEC",))
# Commands whose replies change the pipeline's WATCH state, or that redis-py
# treats specially: a pipeline holding one takes redis-py's own path.
_SPECIAL_COMMANDS = frozenset({"WATCH", "UNWATCH", "DISCARD", "EXEC", "MULTI", "HIMPORT", "HIMPORT SET"})


def _hdr(name: str) -> bytes:
    raw = name.encode()
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


class FastParser(_HiredisParser):
    """redis-py's hiredis parser, with fastredis's core reader inside.

    Error replies and push frames go through redis-py's own ``parse_error``
    and push handlers, so error classes and RESP3 notifications are unchanged.
    """

    #: The RESP core module (compiled ``_resp_c`` or the ``_resp_py`` twin).
    core: Any = _resp

    def on_connect(self, connection: Any, **kwargs: Any) -> None:
        super().on_connect(connection, **kwargs)
        encoder = connection.encoder
        self._reader = self.core.Reader(
            protocolError=ProtocolError,
            replyError=self._reply_error,
            encoding=encoder.encoding if encoder.decode_responses else None,
            errors=encoder.encoding_errors,
            notEnoughData=NOT_ENOUGH_DATA,
        )
        self.connection_error: Optional[ConnectionError] = None
        self.error_count = 0
        self._spin_poller: Any = None
        if SPIN_SECONDS > 0 and hasattr(select, "poll") and type(self._sock) is socket.socket:  # not TLS: its buffered bytes are invisible to poll
            self._spin_poller = select.poll()
            self._spin_poller.register(self._sock, select.POLLIN)

    def read_from_socket(self, timeout: Any = SENTINEL, raise_on_timeout: bool = True) -> Any:
        """Poll the socket for up to ``SPIN_SECONDS`` before redis-py's blocking read.

        On a loopback or same-rack server the reply often arrives within tens
        of microseconds, and a thread blocked in ``recv`` then pays the
        scheduler's wake-up latency (about 60 µs of an 87 µs round trip on the
        development VM). Polling costs at most ``SPIN_SECONDS`` of CPU per
        read that waits longer; the read itself, its timeouts and its errors
        stay redis-py's. ``FASTREDIS_SPIN_US=0`` turns it off.
        """
        poller = self._spin_poller
        reader = self._reader  # None once disconnected: redis-py's read raises for it
        if poller is not None and reader is not None and timeout is SENTINEL and not reader.has_data():
            deadline = time.perf_counter() + SPIN_SECONDS
            while not poller.poll(0) and time.perf_counter() < deadline:
                pass
        return super().read_from_socket(timeout=timeout, raise_on_timeout=raise_on_timeout)

    def _reply_error(self, message: str) -> Exception:
        self.error_count += 1
        error = self.parse_error(message)
        if isinstance(error, ConnectionError) and self.connection_error is None:
            self.connection_error = error  # e.g. LOADING: raised after the batch
        return error


def read_replies(conn: Any, count: int) -> Tuple[List[Any], bool]:
    """Read ``count`` replies from ``conn`` in one batched parse.

    Returns the replies and whether any is an error. Error replies are left
    in their slots as exception objects (as redis-py's pipelines do); push
    frames go to the connection's push handlers and are not counted. Socket
    errors disconnect and raise as redis-py's ``Connection.read_response`` does.
    """
    parser = conn._parser
    reader = getattr(parser, "_reader", None)
    out: List[Any] = []
    if count <= 0:
        return out, False
    if not isinstance(parser, FastParser) or reader is None:
        errors = False
        for _ in range(count):
            try:
                out.append(conn.read_response())
            except ResponseError as e:
                out.append(e)
                errors = True
        return out, errors
    parser.connection_error = None
    errors_before = parser.error_count
    push = parser.handle_push_response
    try:
        got = reader.read_into(out, count, push)
        while got < count:
            parser.read_from_socket()
            got += reader.read_into(out, count - got, push)
    except socket.timeout:
        conn.disconnect()
        raise TimeoutError(f"Timeout reading from {conn._host_error()}")
    except OSError as e:
        conn.disconnect()
        raise ConnectionError(f"Error while reading from {conn._host_error()} : {e.args}")
    except BaseException:
        conn.disconnect()
        raise
    if conn.health_check_interval:
        conn.next_health_check = time.monotonic() + conn.health_check_interval
    if parser.connection_error is not None:
        error, parser.connection_error = parser.connection_error, None
        conn.disconnect()
        raise error
    return out, parser.error_count != errors_before


def _fast_pool(pool: Any) -> bool:
    """True when the pool builds plain connections we may give a FastParser."""
    parser = pool.connection_kwargs.get("parser_class")
    return (
        pool.connection_class in _FAST_CONNECTIONS
        and getattr(pool, "cache", None) is None
        and not pool.connection_kwargs.get("cache_config")
        and (parser is None or parser is redis.connection.DefaultParser or issubclass(parser, FastParser))
    )


class Pipeline(redis.client.Pipeline):
    """A redis-py ``Pipeline`` with eager encoding and a batched execute.

    Behaviour is redis-py's: replies, callbacks, errors, transactions,
    ``raise_on_error=False``, WATCH, scripts and retries.

    Example::

        >>> import fastredis
        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = fastredis.Redis(port=server.port)
        >>> p = r.pipeline(transaction=False)
        >>> _ = p.set("x", "1").get("x").hgetall("missing")
        >>> p.execute()
        [True, b'1', {}]
        >>> server.stop()
    """

    #: The RESP core module (compiled ``_resp_c`` or the ``_resp_py`` twin).
    core: Any = _resp

    def __init__(self, connection_pool: Any, response_callbacks: Any, transaction: bool, shard_hint: Any) -> None:
        super().__init__(connection_pool, response_callbacks, transaction, shard_hint)
        kw = connection_pool.connection_kwargs
        self._buf = self.core.CommandBuffer(kw.get("encoding", "utf-8"), kw.get("encoding_errors", "strict"))
        self._deferred_error: Optional[BaseException] = None
        self._plain_pool = _fast_pool(connection_pool)
        # True once something is staged that only redis-py's own path handles.
        self._redis_path = not self._plain_pool
        self._decoding = bool(kw.get("decode_responses"))

    # -- staging -----------------------------------------------------------
    def reset(self) -> None:  # type: ignore[override]  # Pipeline.reset, not the RESET command
        super().reset()
        buf = getattr(self, "_buf", None)
        if buf is not None:
            buf.clear()
            self._deferred_error = None
            self._redis_path = not self._plain_pool

    def pipeline_execute_command(self, *args: Any, **options: Any) -> "Pipeline":
        if options:
            # "keys" only serves redis-py's client-side cache (never on this
            # path) and is popped before callbacks; keeping it would leave one
            # GC-tracked dict and list per staged command.
            options.pop("keys", None)
        self.command_stack.append((args, options or _NO_OPTIONS))
        if options and (_EMPTY_RESPONSE in options or (_NEVER_DECODE in options and self._decoding)):
            self._redis_path = True
        if args[0] in _SPECIAL_COMMANDS:
            self._redis_path = True
        try:
            self._buf.command(args)
        except DataError as e:
            if self._deferred_error is None:
                self._deferred_error = e
        except Exception as e:  # e.g. UnicodeEncodeError: redis-py raises it from execute()
            if self._deferred_error is None:
                self._deferred_error = e
        return self

    def batch(self, command: str, *columns: Any) -> "Pipeline":
        """Stage ``len(column)`` commands in one C loop.

        Each argument that is a column (a sequence or numpy array, not
        str/bytes/bytearray/memoryview) is iterated; scalars repeat. Replies
        come back from :meth:`execute` in order, with redis-py's callbacks.

        Example::

            >>> import fastredis
            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); r = fastredis.Redis(port=server.port)
            >>> p = r.pipeline(transaction=False)
            >>> p.batch("ZADD", "board", [1.5, 2.0], ["ann", "bob"]).execute()
            [1, 1]
            >>> server.stop()
        """
        if not isinstance(command, (str, bytes)):
            raise TypeError("batch() takes the command name first, e.g. batch('SET', keys, values)")
        if self.watching and not self.explicit_transaction:
            raise redis.exceptions.RedisError("batch() cannot run in immediate (WATCH) mode; call multi() first")
        args = (command, *columns)
        mark = self._buf.mark()
        n = self._buf.batch(args)
        try:
            self._stage_batch_stack(args, n)
        except BaseException:
            self._buf.truncate(mark)
            raise
        return self

    def _stage_batch_stack(self, args: Tuple[Any, ...], n: int) -> None:
        name = args[0].decode() if isinstance(args[0], bytes) else args[0]
        if name.upper() in _SPECIAL_COMMANDS:
            self._redis_path = True
        stack = self.command_stack
        cols = [i for i, a in enumerate(args) if i and _is_column(a)]
        if not cols:
            stack.append(((name, *args[1:]), _NO_OPTIONS))
            return
        # One shared entry for all rows: len(), callbacks and error annotation
        # work without a tuple per command; rows are built only when needed.
        entry = (_BatchArgs(name, args, cols, len(stack)), _NO_OPTIONS)
        stack.extend(repeat(entry, n))

    # -- hot commands --------------------------------------------------------
    def get(self, name: Any) -> Any:
        if self.watching and not self.explicit_transaction:
            return super().get(name)
        self.command_stack.append((("GET", name), _NO_OPTIONS))
        try:
            self._buf.add1(_H_GET, name)
        except Exception as e:
            self._defer(e)
        return self

    def set(self, name: Any, value: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if args or kwargs or (self.watching and not self.explicit_transaction):
            return super().set(name, value, *args, **kwargs)
        self.command_stack.append((("SET", name, value), _NO_OPTIONS))
        try:
            self._buf.add2(_H_SET, name, value)
        except Exception as e:
            self._defer(e)
        return self

    def incr(self, name: Any, amount: int = 1) -> Any:  # type: ignore[override]
        return self.incrby(name, amount)

    def incrby(self, name: Any, amount: int = 1) -> Any:  # type: ignore[override]
        if self.watching and not self.explicit_transaction:
            return super().incrby(name, amount)
        self.command_stack.append((("INCRBY", name, amount), _NO_OPTIONS))
        try:
            self._buf.add2(_H_INCRBY, name, amount)
        except Exception as e:
            self._defer(e)
        return self

    def decr(self, name: Any, amount: int = 1) -> Any:  # type: ignore[override]
        return self.decrby(name, amount)

    def decrby(self, name: Any, amount: int = 1) -> Any:  # type: ignore[override]
        if self.watching and not self.explicit_transaction:
            return super().decrby(name, amount)
        self.command_stack.append((("DECRBY", name, amount), _NO_OPTIONS))
        self._add2(_H_DECRBY, name, amount)
        return self

    def hget(self, name: Any, key: Any) -> Any:
        if self.watching and not self.explicit_transaction:
            return super().hget(name, key)
        self.command_stack.append((("HGET", name, key), _NO_OPTIONS))
        try:
            self._buf.add2(_H_HGET, name, key)
        except Exception as e:
            self._defer(e)
        return self

    def hset(self, name: Any, key: Any = None, value: Any = None, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if args or kwargs or key is None or (self.watching and not self.explicit_transaction):
            return super().hset(name, key, value, *args, **kwargs)
        self.command_stack.append((("HSET", name, key, value), _NO_OPTIONS))
        try:
            self._buf.add3(_H_HSET, name, key, value)
        except Exception as e:
            self._defer(e)
        return self

    def hincrby(self, name: Any, key: Any, amount: int = 1) -> Any:  # type: ignore[override]
        if self.watching and not self.explicit_transaction:
            return super().hincrby(name, key, amount)
        self.command_stack.append((("HINCRBY", name, key, amount), _NO_OPTIONS))
        self._add3(_H_HINCRBY, name, key, amount)
        return self

    def hgetall(self, name: Any) -> Any:
        if self.watching and not self.explicit_transaction:
            return super().hgetall(name)
        self.command_stack.append((("HGETALL", name), _NO_OPTIONS))
        self._add1(_H_HGETALL, name)
        return self

    def zadd(self, name: Any, mapping: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if args or kwargs or (self.watching and not self.explicit_transaction) or type(mapping) is not dict or not mapping:
            return super().zadd(name, mapping, *args, **kwargs)
        if len(mapping) == 1:
            (member,) = mapping  # cheaper than unpacking mapping.items()
            score = mapping[member]
            self.command_stack.append((("ZADD", name, score, member), _NO_OPTIONS))
            try:
                self._buf.add3(_H_ZADD, name, score, member)
            except Exception as e:
                self._defer(e)
            return self
        pieces: List[Any] = [name]
        for member, score in mapping.items():
            pieces.append(score)
            pieces.append(member)
        self.command_stack.append((("ZADD", *pieces), _NO_OPTIONS))
        self._addn(_H_ZADD, pieces)
        return self

    def zincrby(self, name: Any, amount: Any, value: Any) -> Any:
        if self.watching and not self.explicit_transaction:
            return super().zincrby(name, amount, value)
        self.command_stack.append((("ZINCRBY", name, amount, value), _NO_OPTIONS))
        self._add3(_H_ZINCRBY, name, amount, value)
        return self

    def zscore(self, name: Any, value: Any) -> Any:
        if self.watching and not self.explicit_transaction:
            return super().zscore(name, value)
        self.command_stack.append((("ZSCORE", name, value), _NO_OPTIONS))
        self._add2(_H_ZSCORE, name, value)
        return self

    def zcard(self, name: Any) -> Any:
        return self._simple1("ZCARD", _H_ZCARD, name) if not (self.watching and not self.explicit_transaction) else super().zcard(name)

    def scard(self, name: Any) -> Any:
        return self._simple1("SCARD", _H_SCARD, name) if not (self.watching and not self.explicit_transaction) else super().scard(name)

    def ttl(self, name: Any) -> Any:
        return self._simple1("TTL", _H_TTL, name) if not (self.watching and not self.explicit_transaction) else super().ttl(name)

    def smembers(self, name: Any) -> Any:
        return self._simple1("SMEMBERS", _H_SMEMBERS, name) if not (self.watching and not self.explicit_transaction) else super().smembers(name)

    def sismember(self, name: Any, value: Any) -> Any:
        if self.watching and not self.explicit_transaction:
            return super().sismember(name, value)
        self.command_stack.append((("SISMEMBER", name, value), _NO_OPTIONS))
        self._add2(_H_SISMEMBER, name, value)
        return self

    def getbit(self, name: Any, offset: int) -> Any:
        if self.watching and not self.explicit_transaction:
            return super().getbit(name, offset)
        self.command_stack.append((("GETBIT", name, offset), _NO_OPTIONS))
        self._add2(_H_GETBIT, name, offset)
        return self

    def setbit(self, name: Any, offset: int, value: int) -> Any:
        if self.watching and not self.explicit_transaction:
            return super().setbit(name, offset, value)
        value = value and 1 or 0
        self.command_stack.append((("SETBIT", name, offset, value), _NO_OPTIONS))
        self._add3(_H_SETBIT, name, offset, value)
        return self

    def expire(self, name: Any, time: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if args or kwargs or (self.watching and not self.explicit_transaction) or not isinstance(time, int):
            return super().expire(name, time, *args, **kwargs)
        self.command_stack.append((("EXPIRE", name, time), _NO_OPTIONS))
        self._add2(_H_EXPIRE, name, time)
        return self

    def pexpire(self, name: Any, time: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if args or kwargs or (self.watching and not self.explicit_transaction) or not isinstance(time, int):
            return super().pexpire(name, time, *args, **kwargs)
        self.command_stack.append((("PEXPIRE", name, time), _NO_OPTIONS))
        self._add2(_H_PEXPIRE, name, time)
        return self

    def lrange(self, name: Any, start: int, end: int) -> Any:
        if self.watching and not self.explicit_transaction:
            return super().lrange(name, start, end)
        self.command_stack.append((("LRANGE", name, start, end), _NO_OPTIONS))
        self._add3(_H_LRANGE, name, start, end)
        return self

    def publish(self, channel: Any, message: Any, **kwargs: Any) -> Any:
        if kwargs or (self.watching and not self.explicit_transaction):
            return super().publish(channel, message, **kwargs)
        self.command_stack.append((("PUBLISH", channel, message), _NO_OPTIONS))
        self._add2(_H_PUBLISH, channel, message)
        return self

    # Variadic commands: one name, then the user's arguments as redis-py sends them.
    def delete(self, *names: Any) -> Any:
        return self._variadic("DEL", _H_DEL, names) if not (self.watching and not self.explicit_transaction) else super().delete(*names)

    def exists(self, *names: Any) -> Any:
        return self._variadic("EXISTS", _H_EXISTS, names) if not (self.watching and not self.explicit_transaction) else super().exists(*names)

    def sadd(self, name: Any, *values: Any) -> Any:
        return self._variadic("SADD", _H_SADD, (name, *values)) if not (self.watching and not self.explicit_transaction) else super().sadd(name, *values)

    def srem(self, name: Any, *values: Any) -> Any:
        return self._variadic("SREM", _H_SREM, (name, *values)) if not (self.watching and not self.explicit_transaction) else super().srem(name, *values)

    def lpush(self, name: Any, *values: Any) -> Any:
        return self._variadic("LPUSH", _H_LPUSH, (name, *values)) if not (self.watching and not self.explicit_transaction) else super().lpush(name, *values)

    def rpush(self, name: Any, *values: Any) -> Any:
        return self._variadic("RPUSH", _H_RPUSH, (name, *values)) if not (self.watching and not self.explicit_transaction) else super().rpush(name, *values)

    def zrem(self, name: Any, *values: Any) -> Any:
        return self._variadic("ZREM", _H_ZREM, (name, *values)) if not (self.watching and not self.explicit_transaction) else super().zrem(name, *values)

    def pfadd(self, name: Any, *values: Any) -> Any:
        return self._variadic("PFADD", _H_PFADD, (name, *values)) if not (self.watching and not self.explicit_transaction) else super().pfadd(name, *values)

    def pfcount(self, *sources: Any) -> Any:
        return self._variadic("PFCOUNT", _H_PFCOUNT, sources) if not (self.watching and not self.explicit_transaction) else super().pfcount(*sources)

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        if self.watching and not self.explicit_transaction:
            return super().evalsha(sha, numkeys, *keys_and_args)
        return self._variadic("EVALSHA", _H_EVALSHA, (sha, numkeys, *keys_and_args))

    # -- staging primitives ----------------------------------------------
    def _simple1(self, name: str, hdr: bytes, a: Any) -> "Pipeline":
        self.command_stack.append(((name, a), _NO_OPTIONS))
        self._add1(hdr, a)
        return self

    def _variadic(self, name: str, hdr: bytes, args: Tuple[Any, ...]) -> "Pipeline":
        self.command_stack.append(((name, *args), _NO_OPTIONS))
        self._addn(hdr, args)
        return self

    def _add1(self, hdr: bytes, a: Any) -> None:
        try:
            self._buf.add1(hdr, a)
        except Exception as e:
            self._defer(e)

    def _add2(self, hdr: bytes, a: Any, b: Any) -> None:
        try:
            self._buf.add2(hdr, a, b)
        except Exception as e:
            self._defer(e)

    def _add3(self, hdr: bytes, a: Any, b: Any, c: Any) -> None:
        try:
            self._buf.add3(hdr, a, b, c)
        except Exception as e:
            self._defer(e)

    def _addn(self, hdr: bytes, args: Sequence[Any]) -> None:
        try:
            self._buf.addn(hdr, args)
        except Exception as e:
            self._defer(e)

    def _defer(self, error: BaseException) -> None:
        # redis-py encodes at execute(): a bad argument raises from there.
        if self._deferred_error is None:
            self._deferred_error = error

    # -- execution -----------------------------------------------------------
    def _use_redis_path(self, conn: Any) -> bool:
        return self._redis_path

    def annotate_exception(self, exception: Exception, number: int, command: Any) -> None:
        if isinstance(command, _BatchArgs):
            command = command.row(number - 1 - command.start)
        super().annotate_exception(exception, number, command)

    def _raise_deferred(self) -> None:
        error = self._deferred_error
        if error is not None:
            raise error

    def _execute_pipeline(self, connection: Any, commands: Any, raise_on_error: bool) -> List[Any]:
        if self._use_redis_path(connection):
            return super()._execute_pipeline(connection, _materialise(commands), raise_on_error)
        self._raise_deferred()
        connection.send_packed_command([self._buf.getvalue()])
        response, has_errors = read_replies(connection, len(commands))
        _pipeline.apply_callbacks(response, commands, self.response_callbacks.get, _OK_CALLBACKS, has_errors)
        if raise_on_error and has_errors:
            self.raise_first_error(commands, response)
        return response

    def _execute_transaction(self, connection: Any, commands: Any, raise_on_error: bool) -> List[Any]:
        if self._use_redis_path(connection):
            return super()._execute_transaction(connection, _materialise(commands), raise_on_error)
        self._raise_deferred()
        connection.send_packed_command([_MULTI, self._buf.getvalue(), _EXEC])
        replies, has_errors = read_replies(connection, len(commands) + 2)
        errors: List[Tuple[int, Any]] = []
        if has_errors:  # MULTI or a queued command refused: redis-py's bookkeeping
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
                raise errors[0][1]
            raise response
        if isinstance(response, ResponseError):
            raise response
        self.watching = False
        if response is None:
            raise WatchError("Watched variable changed.")
        for i, e in errors:
            response.insert(i, e)
        if len(response) != len(commands):
            connection.disconnect()
            raise ResponseError("Wrong number of response items from pipeline execution")
        if raise_on_error and (has_errors or errors):
            self.raise_first_error(commands, response)
        _pipeline.apply_callbacks(response, commands, self.response_callbacks.get, _OK_CALLBACKS, bool(has_errors or errors))
        return response


def _materialise(commands: Any) -> List[Tuple[Tuple[Any, ...], Dict[str, Any]]]:
    """The stack with batch rows expanded, for redis-py's own execute paths."""
    out = []
    for i, (args, options) in enumerate(commands):
        if isinstance(args, _BatchArgs):
            args = args.row(i - args.start)
        out.append((args, options if options else {}))
    return out


def _is_column(a: Any) -> bool:
    return not isinstance(a, (str, bytes, bytearray, memoryview)) and hasattr(a, "__len__") and hasattr(a, "__getitem__")


class _BatchArgs:
    """The command of every row of one ``batch()``; ``[0]`` is the name."""

    __slots__ = ("name", "args", "cols", "start")

    def __init__(self, name: str, args: Tuple[Any, ...], cols: List[int], start: int) -> None:
        self.name, self.args, self.cols, self.start = name, args, cols, start

    def row(self, i: int) -> Tuple[Any, ...]:
        """The argument tuple of row ``i`` of the batch."""
        cols = self.cols
        return (self.name, *[a[i] if j in cols else a for j, a in enumerate(self.args) if j])

    def __getitem__(self, k: int) -> Any:
        if k == 0:
            return self.name
        raise IndexError("batch rows are read with row(i)")


_H_GET, _H_SET, _H_INCRBY, _H_DECRBY = _hdr("GET"), _hdr("SET"), _hdr("INCRBY"), _hdr("DECRBY")
_H_HGET, _H_HSET, _H_HINCRBY, _H_HGETALL = _hdr("HGET"), _hdr("HSET"), _hdr("HINCRBY"), _hdr("HGETALL")
_H_ZADD, _H_ZINCRBY, _H_ZSCORE, _H_ZCARD, _H_ZREM = _hdr("ZADD"), _hdr("ZINCRBY"), _hdr("ZSCORE"), _hdr("ZCARD"), _hdr("ZREM")
_H_SADD, _H_SREM, _H_SCARD, _H_SMEMBERS, _H_SISMEMBER = _hdr("SADD"), _hdr("SREM"), _hdr("SCARD"), _hdr("SMEMBERS"), _hdr("SISMEMBER")
_H_LPUSH, _H_RPUSH, _H_LRANGE = _hdr("LPUSH"), _hdr("RPUSH"), _hdr("LRANGE")
_H_DEL, _H_EXISTS, _H_EXPIRE, _H_PEXPIRE, _H_TTL = _hdr("DEL"), _hdr("EXISTS"), _hdr("EXPIRE"), _hdr("PEXPIRE"), _hdr("TTL")
_H_PFADD, _H_PFCOUNT, _H_GETBIT, _H_SETBIT = _hdr("PFADD"), _hdr("PFCOUNT"), _hdr("GETBIT"), _hdr("SETBIT")
_H_PUBLISH, _H_EVALSHA = _hdr("PUBLISH"), _hdr("EVALSHA")

_REDIS_INIT = inspect.signature(redis.Redis.__init__)


class Redis(redis.Redis):
    """``redis.Redis`` with a faster pipeline, batch staging and reply parsing.

    Same constructor, commands, options and return values as redis-py 8.x.

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = _REDIS_INIT.bind(self, *args, **kwargs)
        single = bool(bound.arguments.get("single_connection_client", False))
        own_pool = bound.arguments.get("connection_pool") is None
        if single and own_pool:
            bound.arguments["single_connection_client"] = False
        super().__init__(*bound.args[1:], **bound.kwargs)
        pool = self.connection_pool
        if own_pool and _fast_pool(pool):
            pool.connection_kwargs["parser_class"] = self.parser_class
        if single and own_pool:
            from redis.event import AfterSingleConnectionInstantiationEvent, ClientType

            self._single_connection_client = True
            self.connection = pool.get_connection()
            self._event_dispatcher.dispatch(
                AfterSingleConnectionInstantiationEvent(self.connection, ClientType.SYNC, self.single_connection_lock)
            )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "Redis":
        """As ``redis.Redis.from_url``, with the fast parser on the pool it builds."""
        if "connection_class" not in kwargs and "parser_class" not in kwargs and not kwargs.get("cache_config") and not kwargs.get("cache"):
            kwargs["parser_class"] = cls.parser_class
        return super().from_url(url, **kwargs)  # type: ignore[return-value]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        """A :class:`Pipeline` (redis-py semantics, fast staging and execute)."""
        return self.pipeline_class(self.connection_pool, self.response_callbacks, transaction, shard_hint)

    def _execute_command(self, *args: Any, **options: Any) -> Any:
        """redis-py's single-command path (pool, retry policy, health checks,
        reconnect) without its per-call observability bookkeeping, which is
        skipped only while redis-py observability is disabled."""
        if _observability_enabled():
            return super()._execute_command(*args, **options)
        pool = self.connection_pool
        command_name = args[0]
        conn = self.connection or pool.get_connection()
        start_time = time.monotonic()

        def failure_callback(error: Exception, failure_count: int) -> None:
            self._close_connection(conn, error, failure_count, start_time, command_name)

        if self._single_connection_client:
            self.single_connection_lock.acquire()
        try:
            return conn.retry.call_with_retry(
                lambda: self._send_command_parse_response(conn, command_name, *args, **options),
                failure_callback,
                with_failure_count=True,
            )
        finally:
            try:
                if conn and conn.should_reconnect():
                    self._close_connection(conn)
                    conn.connect()
            finally:
                if self._single_connection_client:
                    self.single_connection_lock.release()
                if not self.connection:
                    pool.release(conn)

    def _send_command_parse_response(self, conn: Any, command_name: str, *args: Any, **options: Any) -> Any:
        if command_name in _SPECIAL_COMMANDS or not isinstance(conn._parser, FastParser):
            return super()._send_command_parse_response(conn, command_name, *args, **options)
        conn.send_packed_command([self.parser_class.core.pack_command(args, conn.encoder.encoding, conn.encoder.encoding_errors)])
        return self.parse_response(conn, command_name, **options)


_observability_checked_at = -1e9
_observability_on = False


def _observability_enabled() -> bool:
    """Whether redis-py's metrics are on; re-checked at most once a second
    because redis-py's own check costs microseconds per command."""
    global _observability_checked_at, _observability_on
    now = time.monotonic()
    if now - _observability_checked_at > 1.0:
        from redis.observability import recorder

        _observability_on = recorder._metrics_collector is not None or recorder._get_or_create_collector() is not None
        _observability_checked_at = now
    return _observability_on


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
    parser = type(f"FastParser_{core.__name__.rsplit('.', 1)[-1]}", (FastParser,), {"core": core})
    pipe = type(f"Pipeline_{core.__name__.rsplit('.', 1)[-1]}", (Pipeline,), {"core": core})
    return type(f"Redis_{core.__name__.rsplit('.', 1)[-1]}", (Redis,), {"parser_class": parser, "pipeline_class": pipe})
