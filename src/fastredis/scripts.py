"""The one path every Lua script of fastredis runs through.

``EVALSHA`` first; on ``NOSCRIPT`` (a restarted server, ``SCRIPT FLUSH``, a
failover) the script is loaded with ``SCRIPT LOAD`` and the call retried once.
Scripts live one per file in ``fastredis/lua/<verb_noun>.lua``, each opening
with a header that names its KEYS, ARGV, return value and units, and says
whether it is ``idempotent: yes`` (safe to re-send after a lost reply) or
``idempotent: no``.

Every call runs under the write-retry policy (:mod:`fastredis.retry_policy`),
on a fastredis client and on a plain ``redis.Redis`` alike: a script that is
not idempotent is never re-sent once it may have reached the server.

Example::

    >>> from fastredis.scripts import LuaScript
    >>> from fastredis.server import RedisServer
    >>> server = RedisServer()
    >>> r = server.client()
    >>> double = LuaScript("return tonumber(ARGV[1]) * 2", name="double")
    >>> double(r, keys=[], args=[21])
    42
    >>> r.script_flush()
    True
    >>> double(r, args=[5])      # reloaded after NOSCRIPT, retried once
    10
    >>> server.stop()
"""

from __future__ import annotations

import hashlib
import inspect
import re
import time
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

import redis
import redis.cluster
from redis.client import Pipeline as _RedisPipeline
from redis.exceptions import NoScriptError, ResponseError

from .patterns._clients import is_cluster
from .patterns._plan import Call, FanOut, Invoke, Listen, Operation, Plan, Sleep, Subscribe
from .retry_policy import register_idempotent_script

T = TypeVar("T")

__all__ = ["LuaScript", "run", "arun", "run_pipeline", "pipeline_for", "execute",
           "arun_pipeline", "apipeline_for", "aexecute"]

_IDEMPOTENT_HEADER = re.compile(r"^--.*\bidempotent:\s*(yes|no)\b", re.MULTILINE | re.IGNORECASE)

# Every script made in this process, so a NOSCRIPT reply can be repaired by sha.
_BY_SHA: Dict[str, "LuaScript"] = {}


class LuaScript:
    """A Lua script addressed by its SHA1, run with EVALSHA.

    ``LuaScript.load("acquire_lock")`` reads ``fastredis/lua/acquire_lock.lua``.
    The object has the ``sha`` and ``script`` attributes of redis-py's
    ``Script``, so a transaction pipeline can preload it through
    ``pipe.scripts``.

    ``idempotent``: whether running the script twice has the effect of
    running it once, so that it may be re-sent after a lost reply. ``None``
    (the default) reads it from a ``-- idempotent: yes|no`` header line;
    without one the script counts as not idempotent.

    Example::

        >>> s = LuaScript("return redis.call('GET', KEYS[1])", name="get", idempotent=True)
        >>> len(s.sha), s.idempotent
        (40, True)
        >>> LuaScript("return redis.call('INCR', KEYS[1])").idempotent  # no header: not idempotent
        False
        >>> LuaScript.load("acquire_lock").idempotent  # its header says "-- idempotent: yes"
        True
    """

    __slots__ = ("name", "script", "sha", "idempotent", "_encoded")

    def __init__(self, source: str, *, name: str = "<inline>", idempotent: Optional[bool] = None) -> None:
        if not isinstance(source, str) or not source.strip():
            raise ValueError("a Lua script needs non-empty str source")
        if idempotent is not None and not isinstance(idempotent, bool):
            raise TypeError(f"idempotent must be True, False or None, got {type(idempotent).__name__}")
        self.name = name
        self.script = source
        self._encoded = source.encode("utf-8")
        self.sha = hashlib.sha1(self._encoded).hexdigest()
        if idempotent is None:  # a composed script is idempotent only if every part says so
            declared = [m.lower() for m in _IDEMPOTENT_HEADER.findall(source)]
            idempotent = bool(declared) and all(d == "yes" for d in declared)
        self.idempotent = idempotent
        if idempotent:
            register_idempotent_script(self.sha)
        _BY_SHA.setdefault(self.sha, self)

    @classmethod
    def load(cls, name: str) -> "LuaScript":
        """The script in ``fastredis/lua/<name>.lua`` (cached per name)."""
        return _load_packaged(name)

    @classmethod
    def compose(cls, *names: str, name: Optional[str] = None) -> "LuaScript":
        """One script made of the packaged files ``names``, concatenated in order
        into one chunk (cached per names), e.g. shared helpers, the parts a
        caller needs, then a driver: locals of one file are in scope in the next.

        Example::

            >>> s = LuaScript.compose("ratelimit_prelude", "ratelimit_fixed_window", "ratelimit_driver")
            >>> s.name
            'ratelimit_prelude+ratelimit_fixed_window+ratelimit_driver'
            >>> s is LuaScript.compose("ratelimit_prelude", "ratelimit_fixed_window", "ratelimit_driver")
            True
        """
        if not names:
            raise ValueError("LuaScript.compose needs at least one script name")
        return _compose(tuple(names), name)

    def command(self, keys: Sequence[Any] = (), args: Iterable[Any] = ()) -> Tuple[Any, ...]:
        """The EVALSHA command tuple, for callers that build commands first."""
        keys = tuple(keys)
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def __call__(self, client: Any, keys: Sequence[Any] = (), args: Iterable[Any] = (), **options: Any) -> Any:
        """Run on ``client`` (a Redis client, not a pipeline) and return the reply.

        On NOSCRIPT: SCRIPT LOAD, then exactly one retry. ``options`` go to
        ``execute_command`` (e.g. ``{redis.client.NEVER_DECODE: True}`` keeps
        raw bytes on a ``decode_responses=True`` client). Runs under the
        write-retry policy, whatever the client.
        """
        if isinstance(client, _RedisPipeline):
            raise TypeError("use LuaScript.stage() to add a script call to a pipeline")
        return _call(client, Call(self.command(keys, args), self, options))

    def stage(self, pipe: Any, keys: Sequence[Any] = (), args: Iterable[Any] = ()) -> None:
        """Stage an EVALSHA in ``pipe``; run the pipe with :func:`run_pipeline`.

        In a transaction the script is preloaded before MULTI (as redis-py
        does for its ``Script``), because a NOSCRIPT inside EXEC cannot be
        retried without re-running the other commands.
        """
        if getattr(pipe, "transaction", False) or getattr(pipe, "explicit_transaction", False):
            pipe.scripts.add(self)
        keys = tuple(keys)
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    def __repr__(self) -> str:
        return f"<LuaScript {self.name} {self.sha[:10]}>"


@lru_cache(maxsize=None)
def _load_packaged(name: str) -> LuaScript:
    return LuaScript(_packaged_source(name), name=name)


@lru_cache(maxsize=None)
def _compose(names: Tuple[str, ...], name: Optional[str]) -> LuaScript:
    # A newline between files: a file ending in a comment must not swallow
    # the next file's first line.
    source = "\n".join(_packaged_source(n) for n in names)
    return LuaScript(source, name=name or "+".join(names))


def _packaged_source(name: str) -> str:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"bad script name {name!r}")
    try:
        return resources.files("fastredis").joinpath("lua", f"{name}.lua").read_text("utf-8")
    except FileNotFoundError:
        raise ValueError(f"no Lua script named {name!r} in fastredis/lua/") from None


def execute(client: Any, command: Sequence[Any], **options: Any) -> Any:
    """``client.execute_command(*command, **options)`` under the write-retry
    policy, also when ``client`` is a plain ``redis.Redis`` (whose own
    ``execute_command`` would re-send a write after a lost reply). A client
    class that overrides ``execute_command`` keeps its override.

    Example::

        >>> import redis
        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); plain = redis.Redis(port=server.port)
        >>> execute(plain, ("INCRBY", "n", 5))
        5
        >>> server.stop()
    """
    from .client import Redis, execute_command

    _not_a_pipeline(client)
    if (
        isinstance(client, Redis)  # applies the policy itself
        or not isinstance(client, redis.Redis)  # cluster clients: their own rules
        or type(client).execute_command is not redis.Redis.execute_command
    ):
        return client.execute_command(*command, **options)
    return execute_command(client, tuple(command), options)


def pipeline_for(client: Any, transaction: bool = False) -> Any:
    """A pipeline on ``client`` that runs under the write-retry policy: the
    client's own for fastredis clients, a fastredis
    :class:`~fastredis.pipeline.Pipeline` on the same pool for a plain
    ``redis.Redis``, a :class:`~fastredis.cluster.ClusterPipeline` on the
    same nodes for a plain ``redis.cluster.RedisCluster``.

    Example::

        >>> import redis
        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); plain = redis.Redis(port=server.port)
        >>> type(pipeline_for(plain)).__module__
        'fastredis.pipeline'
        >>> server.stop()
    """
    from .client import Redis
    from .cluster import ClusterPipeline, RedisCluster
    from .pipeline import Pipeline

    _not_a_pipeline(client)
    if isinstance(client, redis.cluster.RedisCluster) and not isinstance(client, RedisCluster):
        return ClusterPipeline.for_client(client, transaction)
    if isinstance(client, Redis) or not isinstance(client, redis.Redis):
        return client.pipeline(transaction=transaction)
    return Pipeline(client.connection_pool, client.response_callbacks, transaction, None)


def _not_a_pipeline(client: Any) -> None:
    if hasattr(client, "command_stack"):
        raise TypeError(f"needs a Redis client, not a pipeline ({type(client).__name__})")


def run_pipeline(pipe: Any, raise_on_error: bool = True) -> List[Any]:
    """Execute ``pipe``; re-run only the EVALSHA calls that hit NOSCRIPT.

    A non-transaction pipeline whose scripts were flushed gets NOSCRIPT for
    each EVALSHA and real replies for everything else. Those EVALSHA calls did
    not run, so they (and only they) are re-sent, in their original order,
    after SCRIPT LOAD: one extra round trip, no blind replay of the other
    commands. Transaction pipelines preload instead (see :meth:`LuaScript.stage`).
    Build ``pipe`` with :func:`pipeline_for` so that it runs under the
    write-retry policy.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> incr = LuaScript("return redis.call('INCR', KEYS[1])")
        >>> p = r.pipeline(transaction=False)
        >>> incr.stage(p, ["n"]); _ = p.set("x", 1); incr.stage(p, ["n"])
        >>> r.script_flush()
        True
        >>> run_pipeline(p)
        [1, True, 2]
        >>> server.stop()
    """
    if isinstance(pipe, redis.cluster.ClusterPipeline) and not hasattr(pipe, "fresh"):
        raise TypeError("run_pipeline needs a fastredis pipeline: build it with pipeline_for(client)")
    stack = _rows(pipe)
    replies = pipe.execute(raise_on_error=False)
    missing = _noscript_slots(stack, replies)
    if missing:
        loads, resend = _repair(stack, missing)
        retry = _retry_pipeline(pipe)
        preload = getattr(retry, "preload_scripts", None)
        if preload is not None:  # a cluster pipeline: SCRIPT LOAD runs on every primary first
            preload(loads)
            loads = []
        for script in loads:
            retry.execute_command("SCRIPT LOAD", script._encoded)
        for command in resend:
            retry.execute_command(*command)
        _merge(replies, missing, retry.execute(raise_on_error=False)[len(loads):])
    return _checked(stack, replies, raise_on_error)


# -- the parts of run_pipeline that do no I/O (shared with arun_pipeline) ----

def _rows(pipe: Any) -> List[Tuple[Any, ...]]:
    stack = pipe.command_stack
    return [_command_at(stack, i) for i in range(len(stack))]


def _noscript_slots(stack: Sequence[Tuple[Any, ...]], replies: Sequence[Any]) -> List[int]:
    """Positions of the EVALSHA calls answered NOSCRIPT (they did not run)."""
    return [
        i for i, r in enumerate(replies)
        if isinstance(r, NoScriptError) and i < len(stack) and stack[i] and str(stack[i][0]).upper() == "EVALSHA"
    ]


def _repair(stack: Sequence[Tuple[Any, ...]], missing: Sequence[int]) -> Tuple[List["LuaScript"], List[Tuple[Any, ...]]]:
    """The scripts to SCRIPT LOAD (those this process knows) and the calls to re-send."""
    loads = [s for s in _known_scripts(stack, missing).values() if s is not None]
    return loads, [stack[i] for i in missing]


def _merge(replies: List[Any], missing: Sequence[int], again: Sequence[Any]) -> None:
    for i, r in zip(missing, again):
        replies[i] = r


def _checked(stack: Sequence[Tuple[Any, ...]], replies: List[Any], raise_on_error: bool) -> List[Any]:
    if raise_on_error:
        for i, r in enumerate(replies):
            if isinstance(r, ResponseError):
                if stack and i < len(stack):
                    _annotate(r, i + 1, stack[i])
                raise r
    return replies


def _command_at(stack: Sequence[Any], i: int) -> Tuple[Any, ...]:
    """Command ``i`` of a pipeline stack, with ``batch()`` rows expanded."""
    args = stack[i][0]
    row = getattr(args, "row", None)
    return row(i - args.start) if row is not None else tuple(args)


def _known_scripts(stack: Sequence[Any], missing: Sequence[int]) -> Dict[str, Optional[LuaScript]]:
    out: Dict[str, Optional[LuaScript]] = {}
    for i in missing:
        sha = stack[i][1]
        sha = sha.decode() if isinstance(sha, bytes) else str(sha)
        out.setdefault(sha, _BY_SHA.get(sha))
    return out


def _retry_pipeline(pipe: Any) -> Any:
    from .cluster import ClusterPipeline
    from .pipeline import Pipeline

    if isinstance(pipe, ClusterPipeline):
        return pipe.fresh()
    if isinstance(pipe, Pipeline):
        again = type(pipe)(pipe.connection_pool, pipe.response_callbacks, False, None)
        again.retry_writes = pipe.retry_writes
        return again
    if isinstance(pipe, _RedisPipeline):
        return Pipeline(pipe.connection_pool, pipe.response_callbacks, False, None)
    raise TypeError(f"run_pipeline cannot re-send scripts on a {type(pipe).__name__}")


def _annotate(exc: Exception, number: int, command: Sequence[Any]) -> None:
    from redis.utils import safe_str, truncate_text

    cmd = " ".join(map(safe_str, command))
    exc.args = (f"Command # {number} ({truncate_text(cmd)}) of pipeline caused error: {exc.args[0]}",) + exc.args[1:]


# -- the runners: one for sync clients, one for asyncio clients ---------------

def run(client: Any, op: Operation[T], *, fan_out: Optional[Callable[[FanOut], Any]] = None) -> T:
    """Run a pattern operation (a :class:`~fastredis.patterns._plan.Plan`, or
    steps yielding plans and effects) on a sync client, and return its result.

    Scripts run as EVALSHA; NOSCRIPT is repaired with SCRIPT LOAD and one
    retry; everything runs under the write-retry policy (also on a plain
    ``redis.Redis``); a plan of several calls is one pipeline (or
    transaction), on a cluster client one cluster pipeline. ``fan_out``
    answers :class:`~fastredis.patterns._plan.FanOut` effects (Redlock).

    Example::

        >>> from fastredis.patterns._plan import Call, Plan
        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> run(r, Plan.one(Call(("INCRBY", "n", 3)), int))
        3
        >>> server.stop()
    """
    if isinstance(op, Plan):
        return _run_plan(client, op)
    effects = _Effects(client, fan_out)
    try:
        item = next(op)
        while True:
            try:
                answer = effects.answer(item)
            except Exception as error:  # the steps decide: handle it, or let it propagate
                item = op.throw(error)
            else:
                item = op.send(answer)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        effects.close()
        op.close()


def _run_plan(client: Any, plan: Plan[T]) -> T:
    calls = plan.calls
    if not plan.batch:
        return plan.interpret(_call(client, calls[0]))
    if not calls:
        return plan.interpret([])
    if len(calls) == 1 and not plan.transaction:  # no pipeline for one call
        try:
            reply = _call(client, calls[0])
        except ResponseError as error:
            if plan.raise_on_error:
                raise
            reply = error
        return plan.interpret([reply])
    # On a cluster client this is one cluster pipeline: every node written
    # before any is read, NOSCRIPT repaired on every primary.
    return plan.interpret(_run_calls(pipeline_for(client, plan.transaction), calls, plan))


def _run_calls(pipe: Any, calls: Sequence[Call], plan: Plan[Any]) -> List[Any]:
    for call in calls:
        if call.script is not None and plan.transaction:
            pipe.scripts.add(call.script)  # NOSCRIPT inside EXEC cannot be retried: preload
        pipe.execute_command(*call.args, **call.options)
    return run_pipeline(pipe, plan.raise_on_error)


def _call(client: Any, call: Call) -> Any:
    """One call under the write-retry policy; NOSCRIPT -> SCRIPT LOAD -> one retry."""
    try:
        return execute(client, call.args, **call.options)
    except NoScriptError:
        if call.script is None:
            raise
        execute(client, ("SCRIPT LOAD", call.script._encoded))
        return execute(client, call.args, **call.options)


def _confirmation(timeout: Optional[float]) -> Any:
    """Waiting for a SUBSCRIBE confirmation, without I/O: yields how long to
    wait for the next message, gets it (or None), returns True once
    confirmed, False when ``timeout`` ran out."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        message = yield 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if message is not None and message.get("type") == "subscribe":
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


def _heard(message: Any) -> bool:
    return message is not None and message.get("type") == "message"


class _EffectsBase:
    """What a runner needs to answer effects: its client, Redlock's fan-out,
    and the operation's private pub/sub connection (closed when it ends)."""

    __slots__ = ("client", "fan_out", "pubsub")

    def __init__(self, client: Any, fan_out: Optional[Callable[[FanOut], Any]]) -> None:
        self.client = client
        self.fan_out = fan_out
        self.pubsub: Any = None


class _Effects(_EffectsBase):
    """The sync answers to effects: sleeping, user code, a private pub/sub wait."""

    __slots__ = ()

    def answer(self, item: Any) -> Any:
        if isinstance(item, Plan):
            return _run_plan(self.client, item)
        if isinstance(item, Sleep):
            if item.seconds > 0:
                time.sleep(item.seconds)
            return None
        if isinstance(item, Invoke):
            return item.fn(*item.args)
        if isinstance(item, Subscribe):
            return self.subscribe(item.channel, item.timeout)
        if isinstance(item, Listen):
            return self.listen(item.timeout)
        if isinstance(item, FanOut) and self.fan_out is not None:
            return self.fan_out(item)
        raise TypeError(f"a pattern operation yielded {item!r}, which this shell cannot run")

    def subscribe(self, channel: str, timeout: Optional[float]) -> Optional[bool]:
        self.close()
        make = getattr(self.client, "pubsub", None)
        if make is None:
            return None
        pubsub = self.pubsub = make()
        pubsub.subscribe(channel)  # an unreachable server raises here, to the caller
        steps = _confirmation(timeout)
        try:
            wait = next(steps)
            while True:
                wait = steps.send(pubsub.get_message(timeout=wait))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        except redis.exceptions.ConnectionError:
            self.close()
            return False

    def listen(self, timeout: float) -> Optional[bool]:
        if self.pubsub is None:
            return None
        try:
            message = self.pubsub.get_message(timeout=timeout)
        except redis.exceptions.ConnectionError:
            self.close()
            return None
        return _heard(message)

    def close(self) -> None:
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                pass


async def arun(client: Any, op: Operation[T], *, fan_out: Optional[Callable[[FanOut], Any]] = None) -> T:
    """The asyncio twin of :func:`run`: the same plans and steps on
    ``fastredis.asyncio.Redis``, ``redis.asyncio.Redis`` or an asyncio
    cluster client, under the same write-retry policy (a plain
    ``redis.asyncio.Redis`` never re-sends a script that is not idempotent
    either). ``fan_out`` is awaited when it returns an awaitable.

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.patterns._plan import Call, Plan
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     client = redis.asyncio.Redis(port=port)
        ...     try:
        ...         return await arun(client, Plan.one(Call(("INCRBY", "n", 3)), int))
        ...     finally:
        ...         await client.aclose()
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        3
    """
    if isinstance(op, Plan):
        return await _arun_plan(client, op)
    effects = _AsyncEffects(client, fan_out)
    try:
        item = next(op)
        while True:
            try:
                answer = await effects.answer(item)
            except Exception as error:  # the steps decide: handle it, or let it propagate
                item = op.throw(error)
            else:
                item = op.send(answer)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        await effects.close()
        op.close()


async def _arun_plan(client: Any, plan: Plan[T]) -> T:
    calls = plan.calls
    if not plan.batch:
        return plan.interpret(await _acall(client, calls[0]))
    if not calls:
        return plan.interpret([])
    if len(calls) == 1 and not plan.transaction:
        try:
            reply = await _acall(client, calls[0])
        except ResponseError as error:
            if plan.raise_on_error:
                raise
            reply = error
        return plan.interpret([reply])
    pipe = apipeline_for(client, plan.transaction)
    scripts = getattr(pipe, "scripts", None)
    for call in calls:
        if call.script is not None and plan.transaction:
            if scripts is None:  # an asyncio cluster pipeline: load before MULTI, on every primary
                await aexecute(client, ("SCRIPT LOAD", call.script._encoded))
            else:
                scripts.add(call.script)
        pipe.execute_command(*call.args, **call.options)
    stack = [call.args for call in calls]
    return plan.interpret(await arun_pipeline(client, pipe, plan.raise_on_error, stack))


async def _acall(client: Any, call: Call) -> Any:
    try:
        return await aexecute(client, call.args, **call.options)
    except NoScriptError:
        if call.script is None:
            raise
        await aexecute(client, ("SCRIPT LOAD", call.script._encoded))
        return await aexecute(client, call.args, **call.options)


def _async_policy_is_the_clients(client: Any) -> bool:
    """True when ``client.execute_command`` already follows the write-retry
    policy or its own rules (fastredis.asyncio clients, cluster clients, a
    user's override); False for a plain ``redis.asyncio.Redis``."""
    import redis.asyncio

    from .asyncio.client import Redis as FastAsyncRedis

    return (
        isinstance(client, FastAsyncRedis)
        or not isinstance(client, redis.asyncio.Redis)
        or type(client).execute_command is not redis.asyncio.Redis.execute_command
    )


async def aexecute(client: Any, command: Sequence[Any], **options: Any) -> Any:
    """The asyncio twin of :func:`execute`. On a plain ``redis.asyncio.Redis``
    the command runs as a one-command fastredis pipeline on the client's own
    pool, which applies the write-retry policy (redis-py's ``execute_command``
    would re-send a write after a lost reply).

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     client = redis.asyncio.Redis(port=port)
        ...     try:
        ...         return await aexecute(client, ("INCRBY", "n", 5))
        ...     finally:
        ...         await client.aclose()
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        5
    """
    _not_a_pipeline(client)
    if _async_policy_is_the_clients(client):
        return await client.execute_command(*command, **options)
    pipe = apipeline_for(client)
    pipe.execute_command(*command, **options)
    (reply,) = await pipe.execute(raise_on_error=False)
    if isinstance(reply, Exception):
        raise reply
    return reply


def apipeline_for(client: Any, transaction: bool = False) -> Any:
    """The asyncio twin of :func:`pipeline_for`: the client's own pipeline for
    fastredis.asyncio and cluster clients, a :class:`fastredis.asyncio.Pipeline`
    on the same pool (under the write-retry policy) for a plain ``redis.asyncio.Redis``.

    Example::

        >>> import redis.asyncio
        >>> type(apipeline_for(redis.asyncio.Redis())).__module__
        'fastredis.asyncio.pipeline'
    """
    import redis.asyncio

    from .asyncio.client import Redis as FastAsyncRedis
    from .asyncio.pipeline import Pipeline as FastAsyncPipeline

    _not_a_pipeline(client)
    if isinstance(client, FastAsyncRedis) or not isinstance(client, redis.asyncio.Redis):
        return client.pipeline(transaction=transaction)
    return FastAsyncPipeline(client.connection_pool, client.response_callbacks, transaction, None)


async def arun_pipeline(client: Any, pipe: Any, raise_on_error: bool = True,
                        stack: Optional[List[Tuple[Any, ...]]] = None) -> List[Any]:
    """The asyncio twin of :func:`run_pipeline` (``client`` made ``pipe``): only
    the EVALSHA calls answered NOSCRIPT are re-sent, after SCRIPT LOAD.
    ``stack`` lists the staged commands when the pipeline does not expose
    them (an asyncio cluster pipeline).

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> incr = LuaScript("return redis.call('INCR', KEYS[1])")
        >>> async def main(port):
        ...     client = redis.asyncio.Redis(port=port)
        ...     pipe = apipeline_for(client)
        ...     incr.stage(pipe, ["n"]); _ = pipe.set("x", 1); incr.stage(pipe, ["n"])
        ...     await client.script_flush()
        ...     try:
        ...         return await arun_pipeline(client, pipe)
        ...     finally:
        ...         await client.aclose()
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        [1, True, 2]
    """
    if stack is None:
        stack = _rows(pipe)
    replies = await pipe.execute(raise_on_error=False)
    missing = _noscript_slots(stack, replies)
    if missing:
        loads, resend = _repair(stack, missing)
        retry = apipeline_for(client, False)
        if is_cluster(client):  # SCRIPT LOAD has no key to route by: every primary, first
            for script in loads:
                await aexecute(client, ("SCRIPT LOAD", script._encoded))
            loads = []
        for script in loads:
            retry.execute_command("SCRIPT LOAD", script._encoded)
        for command in resend:
            retry.execute_command(*command)
        _merge(replies, missing, (await retry.execute(raise_on_error=False))[len(loads):])
    return _checked(stack, replies, raise_on_error)


class _AsyncEffects(_EffectsBase):
    """The asyncio answers to effects (see :class:`_Effects`)."""

    __slots__ = ()

    async def answer(self, item: Any) -> Any:
        import asyncio

        if isinstance(item, Plan):
            return await _arun_plan(self.client, item)
        if isinstance(item, Sleep):
            await asyncio.sleep(max(0.0, item.seconds))
            return None
        if isinstance(item, Invoke):
            result = item.fn(*item.args)
            return await result if inspect.isawaitable(result) else result
        if isinstance(item, Subscribe):
            return await self.subscribe(item.channel, item.timeout)
        if isinstance(item, Listen):
            return await self.listen(item.timeout)
        if isinstance(item, FanOut) and self.fan_out is not None:
            result = self.fan_out(item)
            return await result if inspect.isawaitable(result) else result
        raise TypeError(f"a pattern operation yielded {item!r}, which this shell cannot run")

    async def subscribe(self, channel: str, timeout: Optional[float]) -> Optional[bool]:
        await self.close()
        make = getattr(self.client, "pubsub", None)
        if make is None:  # e.g. redis.asyncio.cluster.RedisCluster
            return None
        pubsub = self.pubsub = make()
        await pubsub.subscribe(channel)
        steps = _confirmation(timeout)
        try:
            wait = next(steps)
            while True:
                wait = steps.send(await pubsub.get_message(timeout=wait))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        except redis.exceptions.ConnectionError:
            await self.close()
            return False

    async def listen(self, timeout: float) -> Optional[bool]:
        if self.pubsub is None:
            return None
        try:
            message = await self.pubsub.get_message(timeout=timeout)
        except redis.exceptions.ConnectionError:
            await self.close()
            return None
        return _heard(message)

    async def close(self) -> None:
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:
                pass
