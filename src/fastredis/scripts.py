"""The one path every Lua script of fastredis runs through.

``EVALSHA`` first; on ``NOSCRIPT`` (a restarted server, ``SCRIPT FLUSH``, a
failover) the script is loaded with ``SCRIPT LOAD`` and the call retried once.
Scripts live one per file in ``fastredis/lua/<verb_noun>.lua``, each opening
with a header that names its KEYS, ARGV, return value and units.

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
from functools import lru_cache
from importlib import resources
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from redis.client import Pipeline as _RedisPipeline
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

__all__ = ["LuaScript", "run_pipeline", "run_once"]

# Every script made in this process, so a NOSCRIPT reply can be repaired by sha.
_BY_SHA: Dict[str, "LuaScript"] = {}


class LuaScript:
    """A Lua script addressed by its SHA1, run with EVALSHA.

    ``LuaScript.load("acquire_lock")`` reads ``fastredis/lua/acquire_lock.lua``.
    The object has the ``sha`` and ``script`` attributes of redis-py's
    ``Script``, so a transaction pipeline can preload it through
    ``pipe.scripts``.

    Example::

        >>> s = LuaScript("return redis.call('GET', KEYS[1])", name="get")
        >>> len(s.sha)
        40
    """

    __slots__ = ("name", "script", "sha", "_encoded")

    def __init__(self, source: str, *, name: str = "<inline>") -> None:
        if not isinstance(source, str) or not source.strip():
            raise ValueError("a Lua script needs non-empty str source")
        self.name = name
        self.script = source
        self._encoded = source.encode("utf-8")
        self.sha = hashlib.sha1(self._encoded).hexdigest()
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
        raw bytes on a ``decode_responses=True`` client).
        """
        if isinstance(client, _RedisPipeline):
            raise TypeError("use LuaScript.stage() to add a script call to a pipeline")
        keys = tuple(keys)
        args = tuple(args)
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args, **options)
        except NoScriptError:
            client.execute_command("SCRIPT LOAD", self._encoded)
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args, **options)

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


def run_pipeline(pipe: Any, raise_on_error: bool = True) -> List[Any]:
    """Execute ``pipe``; re-run only the EVALSHA calls that hit NOSCRIPT.

    A non-transaction pipeline whose scripts were flushed gets NOSCRIPT for
    each EVALSHA and real replies for everything else. Those EVALSHA calls did
    not run, so they (and only they) are re-sent, in their original order,
    after SCRIPT LOAD: one extra round trip, no blind replay of the other
    commands. Transaction pipelines preload instead (see :meth:`LuaScript.stage`).

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
    stack: List[Tuple[Tuple[Any, ...], Dict[str, Any]]] = list(pipe.command_stack)
    client = _client_of(pipe)
    replies = pipe.execute(raise_on_error=False)
    missing = [
        i for i, r in enumerate(replies)
        if isinstance(r, NoScriptError) and stack[i][0] and stack[i][0][0] == "EVALSHA"
    ]
    if missing:
        by_sha = _known_scripts(pipe, stack, missing)
        retry = client.pipeline(transaction=False)
        for sha, script in by_sha.items():
            if script is None:
                continue
            retry.execute_command("SCRIPT LOAD", script._encoded)
        for i in missing:
            retry.execute_command(*stack[i][0])
        loaded = [s for s in by_sha.values() if s is not None]
        again = retry.execute(raise_on_error=False)[len(loaded):]
        for i, r in zip(missing, again):
            replies[i] = r
    if raise_on_error:
        for i, r in enumerate(replies):
            if isinstance(r, ResponseError):
                if stack and i < len(stack):
                    _annotate(r, i + 1, stack[i][0])
                raise r
    return replies


def run_once(client: Any, script: LuaScript, commands: Sequence[Tuple[Any, ...]]) -> List[Any]:
    """Send ``commands`` (EVALSHAs of ``script``) in one round trip on one
    connection, outside the client's retry policy: for scripts that must not
    be replayed after a lost reply (they may already have run).

    A stale pooled connection is replaced by the pool before anything is
    sent. NOSCRIPT replies (the script did not run) are repaired by SCRIPT
    LOAD and only those commands re-sent; any other ResponseError is raised;
    a connection error after sending disconnects and propagates.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> incr = LuaScript("return redis.call('INCR', KEYS[1])")
        >>> r.script_flush()
        True
        >>> run_once(r, incr, [incr.command(["n"]), incr.command(["n"])])
        [1, 2]
        >>> server.stop()
    """
    if hasattr(client, "command_stack"):
        raise TypeError("run_once needs a client, not a pipeline")
    if not hasattr(client, "connection_pool"):
        raise TypeError(f"run_once needs a redis.Redis or fastredis.Redis client, got {type(client).__name__}")
    pool = client.connection_pool
    conn = getattr(client, "connection", None)
    lock = getattr(client, "single_connection_lock", None) if conn is not None else None
    own = conn is None
    if own:
        conn = pool.get_connection()
    elif lock is not None:
        lock.acquire()
    try:
        replies = _round_trip(conn, commands)
        missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        if missing:
            again = _round_trip(conn, [("SCRIPT", "LOAD", script.script)] + [commands[i] for i in missing])
            for i, r in zip(missing, again[1:]):
                replies[i] = r
        for r in replies:
            if isinstance(r, ResponseError):
                raise r
        return replies
    finally:
        if own:
            pool.release(conn)
        elif lock is not None:
            lock.release()


def _round_trip(conn: Any, commands: Sequence[Tuple[Any, ...]]) -> List[Any]:
    try:
        conn.send_packed_command(conn.pack_commands(commands))
        replies: List[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except ResponseError as e:
                replies.append(e)
        return replies
    except (ConnectionError, TimeoutError, OSError):
        conn.disconnect()
        raise


def _known_scripts(pipe: Any, stack: Sequence[Any], missing: Sequence[int]) -> Dict[str, Optional[LuaScript]]:
    out: Dict[str, Optional[LuaScript]] = {}
    for i in missing:
        sha = stack[i][0][1]
        sha = sha.decode() if isinstance(sha, bytes) else str(sha)
        out.setdefault(sha, _BY_SHA.get(sha))
    return out


def _client_of(pipe: Any) -> Any:
    from redis import Redis

    return Redis(connection_pool=pipe.connection_pool)


def _annotate(exc: Exception, number: int, command: Sequence[Any]) -> None:
    from redis.utils import safe_str, truncate_text

    cmd = " ".join(map(safe_str, command))
    exc.args = (f"Command # {number} ({truncate_text(cmd)}) of pipeline caused error: {exc.args[0]}",) + exc.args[1:]
