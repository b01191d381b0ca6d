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
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import redis
import redis.cluster
from redis.client import Pipeline as _RedisPipeline
from redis.exceptions import NoScriptError, ResponseError

from .retry_policy import register_idempotent_script

__all__ = ["LuaScript", "run_pipeline", "pipeline_for", "execute"]

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
        keys = tuple(keys)
        command = ("EVALSHA", self.sha, len(keys), *keys, *args)
        try:
            return execute(client, command, **options)
        except NoScriptError:
            execute(client, ("SCRIPT LOAD", self._encoded))
            return execute(client, command, **options)

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
    stack = [_command_at(pipe.command_stack, i) for i in range(len(pipe.command_stack))]
    replies = pipe.execute(raise_on_error=False)
    missing = [
        i for i, r in enumerate(replies)
        if isinstance(r, NoScriptError) and stack[i] and str(stack[i][0]).upper() == "EVALSHA"
    ]
    if missing:
        by_sha = _known_scripts(stack, missing)
        retry = _retry_pipeline(pipe)
        loaded = [s for s in by_sha.values() if s is not None]
        preload = getattr(retry, "preload_scripts", None)
        if preload is not None:  # a cluster pipeline: SCRIPT LOAD runs on every primary first
            preload(loaded)
            loaded = []
        for script in loaded:
            retry.execute_command("SCRIPT LOAD", script._encoded)
        for i in missing:
            retry.execute_command(*stack[i])
        again = retry.execute(raise_on_error=False)[len(loaded):]
        for i, r in zip(missing, again):
            replies[i] = r
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
