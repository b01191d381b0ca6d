"""``fastredis.Pipeline``: redis-py's pipeline with eager encoding, a batched
execute and the write-retry policy.

- Each staged command is encoded into one buffer at once; the hot commands
  (one table, :data:`HOT_COMMANDS`) skip redis-py's option handling.
- ``execute()`` sends the buffer with one write and parses every reply with
  one call into the core reader, then applies redis-py's callbacks.
- A pipeline is re-sent after a connection error only if nothing was written
  yet or every command in it is idempotent; a transaction never once EXEC may
  have been written (see :mod:`fastredis.retry_policy`).
- Anything the fast path does not own (a connection it does not drive, WATCH
  commands, NEVER_DECODE / EMPTY_RESPONSE options, HIMPORT) runs on redis-py's
  own code, with the batch rows materialised.

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

from __future__ import annotations

import time
from itertools import repeat
from typing import Any, Dict, List, Optional, Sequence, Tuple

import redis.client
from redis.exceptions import DataError, ExecAbortError, RedisError, ResponseError, WatchError

from . import _pipeline, _redispy, _resp
from ._redispy import EMPTY_RESPONSE, NEVER_DECODE, OK_CALLBACKS
from .connection import is_fast_connection, read_replies
from .retry_policy import call_with_policy

__all__ = ["Pipeline", "HOT_COMMANDS"]

_MULTI = _resp.pack_command(("MULTI",))
_EXEC = _resp.pack_command(("EXEC",))
# Commands that change the pipeline's WATCH state or that redis-py treats
# specially: a pipeline holding one takes redis-py's own path.
_SPECIAL_COMMANDS = frozenset({"WATCH", "UNWATCH", "DISCARD", "EXEC", "MULTI", "HIMPORT", "HIMPORT SET"})
# The options of a command staged without any. An empty tuple, not a dict: a
# stack entry holding only strings and tuples is untracked by the garbage
# collector after its first pass, while a dict would keep all 100k entries of
# a big pipeline tracked and make staging spend half its time in GC. Our
# execute paths only test it for truth; redis-py's own paths get a real dict
# from _materialise().
_NO_OPTIONS: Any = ()

#: The hot commands staged without redis-py's per-call overhead:
#: ``method: (COMMAND, parameters, arguments sent, fallback condition)``.
#: The fallback condition (also taken in WATCH's immediate mode) sends the
#: call to redis-py's own method, which handles every other option.
HOT_COMMANDS: Dict[str, Tuple[str, str, str, str]] = {
    "get": ("GET", "name", "name", ""),
    "set": ("SET", "name, value, *args, **kwargs", "name, value", "args or kwargs"),
    "incr": ("INCRBY", "name, amount=1", "name, amount", ""),
    "incrby": ("INCRBY", "name, amount=1", "name, amount", ""),
    "decr": ("DECRBY", "name, amount=1", "name, amount", ""),
    "decrby": ("DECRBY", "name, amount=1", "name, amount", ""),
    "hget": ("HGET", "name, key", "name, key", ""),
    "hset": ("HSET", "name, key=None, value=None, *args, **kwargs", "name, key, value", "args or kwargs or key is None"),
    "hincrby": ("HINCRBY", "name, key, amount=1", "name, key, amount", ""),
    "hgetall": ("HGETALL", "name", "name", ""),
    "zincrby": ("ZINCRBY", "name, amount, value", "name, amount, value", ""),
    "zscore": ("ZSCORE", "name, value", "name, value", ""),
    "zcard": ("ZCARD", "name", "name", ""),
    "scard": ("SCARD", "name", "name", ""),
    "smembers": ("SMEMBERS", "name", "name", ""),
    "sismember": ("SISMEMBER", "name, value", "name, value", ""),
    "ttl": ("TTL", "name", "name", ""),
    "getbit": ("GETBIT", "name, offset", "name, offset", ""),
    "setbit": ("SETBIT", "name, offset, value", "name, offset, value and 1 or 0", ""),
    "expire": ("EXPIRE", "name, time, *args, **kwargs", "name, time", "args or kwargs or not isinstance(time, int)"),
    "pexpire": ("PEXPIRE", "name, time, *args, **kwargs", "name, time", "args or kwargs or not isinstance(time, int)"),
    "lrange": ("LRANGE", "name, start, end", "name, start, end", ""),
    "publish": ("PUBLISH", "channel, message, **kwargs", "channel, message", "kwargs"),
    "delete": ("DEL", "*names", "*names", ""),
    "exists": ("EXISTS", "*names", "*names", ""),
    "sadd": ("SADD", "name, *values", "name, *values", ""),
    "srem": ("SREM", "name, *values", "name, *values", ""),
    "lpush": ("LPUSH", "name, *values", "name, *values", ""),
    "rpush": ("RPUSH", "name, *values", "name, *values", ""),
    "zrem": ("ZREM", "name, *values", "name, *values", ""),
    "pfadd": ("PFADD", "name, *values", "name, *values", ""),
    "pfcount": ("PFCOUNT", "*sources", "*sources", ""),
    "evalsha": ("EVALSHA", "sha, numkeys, *keys_and_args", "sha, numkeys, *keys_and_args", ""),
}


def _hdr(name: str) -> bytes:
    raw = name.encode()
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


def _names(params: str) -> str:
    """The call form of a parameter list: ``"a, b=1, *c, **d"`` -> ``"a, b, *c, **d"``."""
    return ", ".join(p.split("=")[0].strip() for p in params.split(","))


def _make_hot(method: str, command: str, params: str, sent: str, fallback: str) -> Any:
    """One staging method, compiled from its table row (as ``dataclasses``
    and ``namedtuple`` compile theirs): a real signature, and no generic
    argument handling on the hot path."""
    parts = [s.strip() for s in sent.split(",")]
    variadic = parts[-1].startswith("*")
    if variadic:
        add = "self._buf.addn(_HDR, (%s,))" % sent
    else:
        add = "self._buf.add%d(_HDR, %s)" % (len(parts), sent)
    guard = "self.watching and not self.explicit_transaction"
    if fallback:
        guard = f"{fallback} or {guard}"
    source = (
        f"def {method}(self, {params}):\n"
        f"    if {guard}:\n"
        f"        return _PARENT.{method}(self, {_names(params)})\n"
        f"    args = ({command!r}, {sent},)\n"
        f"    self.command_stack.append((args, _NO_OPTIONS))\n"
        f"    try:\n"
        f"        {add}\n"
        f"    except Exception as e:\n"
        f"        self._defer(e)\n"
        f"    return self\n"
    )
    namespace: Dict[str, Any] = {"_HDR": _hdr(command), "_PARENT": redis.client.Pipeline, "_NO_OPTIONS": _NO_OPTIONS}
    exec(compile(source, f"<fastredis.pipeline.{method}>", "exec"), namespace)
    func = namespace[method]
    func.__qualname__ = f"Pipeline.{method}"
    func.__doc__ = getattr(getattr(redis.client.Pipeline, method, None), "__doc__", None)
    return func


class Pipeline(redis.client.Pipeline):
    """A redis-py ``Pipeline`` with eager encoding and a batched execute.

    Behaviour is redis-py's: replies, callbacks, errors, transactions,
    ``raise_on_error=False``, WATCH, scripts and retries, except that writes
    are not re-sent once they may have reached the server
    (:mod:`fastredis.retry_policy`).

    Example::

        >>> import fastredis
        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = fastredis.Redis(port=server.port)
        >>> with r.pipeline() as p:
        ...     p.set("a", 1).incr("a").execute()
        [True, 2]
        >>> server.stop()
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
        # True once something is staged that only redis-py's own path handles.
        self._redis_path = not _redispy.FAST_PATH
        self._decoding = bool(kw.get("decode_responses"))

    # -- staging -----------------------------------------------------------
    def reset(self) -> None:  # type: ignore[override]  # Pipeline.reset, not the RESET command
        super().reset()
        buf = getattr(self, "_buf", None)
        if buf is not None:
            buf.clear()
            self._deferred_error = None
            self._redis_path = not _redispy.FAST_PATH

    def pipeline_execute_command(self, *args: Any, **options: Any) -> "Pipeline":
        if options:
            # "keys" only serves redis-py's client-side cache (never on this
            # path) and is popped before callbacks; keeping it would leave one
            # GC-tracked dict and list per staged command.
            options.pop("keys", None)
            if EMPTY_RESPONSE in options or (NEVER_DECODE in options and self._decoding):
                self._redis_path = True
        self.command_stack.append((args, options or _NO_OPTIONS))
        if args[0] in _SPECIAL_COMMANDS:
            self._redis_path = True
        try:
            self._buf.command(args)
        except Exception as e:  # DataError, UnicodeEncodeError: redis-py raises them from execute()
            self._defer(e)
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
            raise RedisError("batch() cannot run in immediate (WATCH) mode; call multi() first")
        mark = self._buf.mark()
        encoded: List[Any] = []  # the columns as read (numpy as Python numbers)
        n = self._buf.batch((command, *columns), encoded)
        try:
            self._stage_batch_stack(tuple(encoded), n)
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
        try:
            self._buf.addn(_H_ZADD, pieces)
        except Exception as e:
            self._defer(e)
        return self

    def _defer(self, error: BaseException) -> None:
        # redis-py encodes at execute(): a bad argument raises from there.
        if self._deferred_error is None:
            self._deferred_error = error

    # -- execution -----------------------------------------------------------
    def execute(self, raise_on_error: bool = True) -> List[Any]:
        """Execute the staged commands, as redis-py does, under the write-retry policy."""
        stack = self.command_stack
        if not stack and not self.watching:
            return []
        if self.scripts:
            self.load_scripts()
        transaction = bool(self.transaction or self.explicit_transaction)
        if transaction:
            execute, operation_name = self._execute_transaction, "MULTI"
        else:
            execute, operation_name = self._execute_pipeline, "PIPELINE"
        conn = self.connection
        if not conn:
            conn = self.connection_pool.get_connection()
            # reset() releases it back to the pool
            self.connection = conn
        start_time = time.monotonic()
        attempts = [0]

        def failure_callback(error: Exception, failure_count: int) -> None:
            attempts[0] = failure_count
            self._disconnect_raise_on_watching(conn, error, failure_count, start_time, operation_name)

        try:
            response = call_with_policy(
                conn,
                lambda: execute(conn, stack, raise_on_error),
                failure_callback,
                lambda: (self._row(i) for i in range(len(stack))),
                retry_writes=self.retry_writes,
                transaction=transaction,
            )
        except Exception as e:
            if _redispy.observability_enabled():
                _redispy.record_failure(conn, e, attempts[0])
            raise
        finally:
            self.reset()
        if _redispy.observability_enabled():
            _redispy.record_success(conn, operation_name, start_time)
        return response

    def _row(self, i: int) -> Tuple[Any, ...]:
        args = self.command_stack[i][0]
        return args.row(i - args.start) if isinstance(args, _BatchArgs) else args

    def _use_redis_path(self, conn: Any) -> bool:
        return self._redis_path or not is_fast_connection(conn)

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
        _pipeline.apply_callbacks(response, commands, self.response_callbacks.get, OK_CALLBACKS, has_errors)
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
        _pipeline.apply_callbacks(response, commands, self.response_callbacks.get, OK_CALLBACKS, bool(has_errors or errors))
        return response


for _method, _row_spec in HOT_COMMANDS.items():
    setattr(Pipeline, _method, _make_hot(_method, *_row_spec))
del _method, _row_spec


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

    __slots__ = ("name", "args", "cols", "start", "_plain")

    def __init__(self, name: str, args: Tuple[Any, ...], cols: List[int], start: int) -> None:
        self.name, self.args, self.cols, self.start = name, args, cols, start
        self._plain: Optional[Tuple[Any, ...]] = None

    def row(self, i: int) -> Tuple[Any, ...]:
        """The argument tuple of row ``i`` of the batch, with numpy values as
        Python numbers (so redis-py's encoder sends ``3.5``, not ``np.float64(3.5)``)."""
        plain = self._plain
        if plain is None:
            plain = self._plain = tuple(_plain_column(a) if j in self.cols else a for j, a in enumerate(self.args))
        cols = self.cols
        return (self.name, *[a[i] if j in cols else a for j, a in enumerate(plain) if j])

    def __getitem__(self, k: int) -> Any:
        if k == 0:
            return self.name
        raise IndexError("batch rows are read with row(i)")


def _plain_column(column: Any) -> Sequence[Any]:
    tolist = getattr(column, "tolist", None)
    if callable(tolist):  # numpy arrays: Python scalars out
        return list(tolist())
    return [v.item() if _is_numpy_scalar(v) else v for v in column]


def _is_numpy_scalar(v: Any) -> bool:
    return type(v).__module__ == "numpy" and hasattr(v, "item") and not isinstance(v, (str, bytes))


_H_ZADD = _hdr("ZADD")
