"""Every way users construct a client, run differentially against redis-py.

For each construction path (``Redis(host, port)``, ``from_url``, explicit and
blocking pools, unix sockets, ``single_connection_client``, every protocol,
``decode_responses``, TLS, Sentinel, ...) one fixed command script runs on a
plain ``redis.Redis`` and on a ``fastredis.Redis`` built the same way, against
the same real server, flushed in between. Every result and every exception
(class and text) must be equal.

A second test checks that the fast path is really taken on each path: the
connections a ``fastredis.Redis`` uses carry a :class:`FastParser`, except on
the paths documented to fall back (user connection classes, ``cache_config``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import redis
import redis.sentinel
from redis.cache import CacheConfig

import fastredis
from fastredis.client import FastParser
from _construction_servers import Env, env_for, plain_server, sentinel_setup, tls_server  # noqa: F401  (fixtures)

# -- construction paths ---------------------------------------------------------------------


class UserConnection(redis.Connection):
    """A user-supplied connection class: fastredis documents falling back to redis-py."""


Make = Callable[[type, Env], redis.Redis]


@dataclass
class Path:
    id: str
    make: Make
    server: str = "plain"
    #: Documented to fall back to redis-py's parser (no FastParser expected).
    falls_back: bool = False
    #: Needs an attribute of fastredis that may not exist yet.
    requires: Optional[str] = None
    #: Oldest server version the path works with (redis-py's client-side cache needs 7.4).
    min_server: Tuple[int, ...] = ()


def _default(**kw: Any) -> Make:
    return lambda cls, e: cls(host=e.host, port=e.port, **kw)


def _fast_pool_class(cls: type, base: str) -> Any:
    """``fastredis.<base>`` on the fastredis side when it exists, else redis-py's."""
    if cls is not redis.Redis and hasattr(fastredis, base):
        return getattr(fastredis, base)
    return getattr(redis, base)


def _protocol_matrix() -> List[Path]:
    out = []
    for protocol in (None, 2, 3):
        for legacy in (None, False):
            for decode in (False, True):
                kw: Dict[str, Any] = {}
                if protocol is not None:
                    kw["protocol"] = protocol
                if legacy is not None:
                    kw["legacy_responses"] = legacy
                if decode:
                    kw["decode_responses"] = True
                name = f"default-proto{protocol or 'unset'}-legacy{'False' if legacy is False else 'unset'}-decode{decode}"
                out.append(Path(name, _default(**kw)))
    return out


PATHS: List[Path] = [
    *_protocol_matrix(),
    Path("from_url", lambda cls, e: cls.from_url(e.url)),
    Path("from_url-protocol2-decode", lambda cls, e: cls.from_url(e.url + "?protocol=2&decode_responses=True")),
    Path("from_url-protocol3", lambda cls, e: cls.from_url(e.url + "?protocol=3")),
    Path("explicit-ConnectionPool", lambda cls, e: cls(connection_pool=redis.ConnectionPool(host=e.host, port=e.port))),
    Path(
        "explicit-ConnectionPool-protocol2-decode",
        lambda cls, e: cls(connection_pool=redis.ConnectionPool(host=e.host, port=e.port, protocol=2, decode_responses=True)),
    ),
    Path(
        "explicit-BlockingConnectionPool",
        lambda cls, e: cls(connection_pool=redis.BlockingConnectionPool(host=e.host, port=e.port, max_connections=4, timeout=5)),
    ),
    Path("ConnectionPool.from_url", lambda cls, e: cls(connection_pool=redis.ConnectionPool.from_url(e.url))),
    Path("from_pool", lambda cls, e: cls.from_pool(redis.ConnectionPool(host=e.host, port=e.port))),
    Path(
        "fastredis.ConnectionPool",
        lambda cls, e: cls(connection_pool=_fast_pool_class(cls, "ConnectionPool")(host=e.host, port=e.port)),
        requires="ConnectionPool",
    ),
    Path("unix_socket_path", lambda cls, e: cls(unix_socket_path=e.unix_socket)),
    Path("unix-url", lambda cls, e: cls.from_url(e.unix_url)),
    Path("unix-ConnectionPool.from_url", lambda cls, e: cls(connection_pool=redis.ConnectionPool.from_url(e.unix_url))),
    Path("single_connection_client", _default(single_connection_client=True)),
    Path("single_connection_client-protocol2-decode", _default(single_connection_client=True, protocol=2, decode_responses=True)),
    Path("tls-rediss-url", lambda cls, e: cls.from_url(e.url, ssl_ca_certs=e.ca_file), server="tls"),
    Path("tls-ssl-kwargs", lambda cls, e: cls(host=e.host, port=e.port, ssl=True, ssl_ca_certs=e.ca_file), server="tls"),
    Path(
        "tls-ssl-kwargs-protocol2-decode",
        lambda cls, e: cls(host=e.host, port=e.port, ssl=True, ssl_ca_certs=e.ca_file, protocol=2, decode_responses=True),
        server="tls",
    ),
    Path(
        "tls-ConnectionPool.from_url",
        lambda cls, e: cls(connection_pool=redis.ConnectionPool.from_url(e.url, ssl_ca_certs=e.ca_file)),
        server="tls",
    ),
    Path(
        "sentinel-master_for",
        lambda cls, e: redis.sentinel.Sentinel(e.sentinels).master_for("mymaster", redis_class=cls),
        server="sentinel",
    ),
    Path(
        "sentinel-master_for-protocol2-decode",
        lambda cls, e: redis.sentinel.Sentinel(e.sentinels, protocol=2).master_for("mymaster", redis_class=cls, decode_responses=True),
        server="sentinel",
    ),
    Path("user-connection-class", lambda cls, e: cls.from_url(e.url, connection_class=UserConnection), falls_back=True),
    Path("cache_config", _default(protocol=3, cache_config=CacheConfig()), falls_back=True, min_server=(7, 4)),
]


def _build(request: pytest.FixtureRequest, path: Path, cls: type) -> Tuple[Env, redis.Redis]:
    if path.requires and not hasattr(fastredis, path.requires):
        pytest.skip(f"fastredis.{path.requires} does not exist (yet)")
    env = env_for(request, path.server)
    if path.min_server and env.version() < path.min_server:
        pytest.skip(f"{path.id} needs redis-server >= {'.'.join(map(str, path.min_server))}, this one is {'.'.join(map(str, env.version()))}")
    return env, path.make(cls, env)


def _close(client: redis.Redis) -> None:
    pool = client.connection_pool
    client.close()
    pool.disconnect()
    manager = getattr(pool, "sentinel_manager", None)
    if manager is not None:
        if hasattr(manager, "close"):  # redis-py 8.1; 8.0's Sentinel has none
            manager.close()
        else:
            for s in manager.sentinels:
                s.close()


# -- recording outcomes ------------------------------------------------------------------------

PLACEHOLDER = "<P>"


def _normalise(value: Any, prefix: str) -> Any:
    """Make one run's outcome comparable with another's: the run's key prefix
    becomes ``<P>``, exceptions become ``("raised"/"returned", class, text)``."""
    if isinstance(value, BaseException):
        cls = type(value)
        return ("exception", f"{cls.__module__}.{cls.__qualname__}", _normalise(str(value), prefix))
    if isinstance(value, str):
        return value.replace(prefix, PLACEHOLDER)
    if isinstance(value, bytes):
        return value.replace(prefix.encode(), PLACEHOLDER.encode())
    if isinstance(value, list):
        return [_normalise(v, prefix) for v in value]
    if isinstance(value, tuple):
        return tuple(_normalise(v, prefix) for v in value)
    if isinstance(value, dict):
        return {_normalise(k, prefix): _normalise(v, prefix) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return type(value)(_normalise(v, prefix) for v in value)
    return value


class Recorder:
    """Runs labelled steps; records each one's return value or raised exception."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.outcomes: List[Tuple[str, str, Any]] = []

    def __call__(self, label: str, step: Callable[[], Any]) -> None:
        try:
            value = step()
        except Exception as e:  # the exception is the outcome being compared
            self.outcomes.append((label, "raised", _normalise(e, self.prefix)))
        else:
            self.outcomes.append((label, "returned", _normalise(value, self.prefix)))


FAILING_LUA = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('LPUSH', KEYS[2], ARGV[1])"
OK_LUA = "return {KEYS[1], ARGV[1], redis.call('INCRBY', KEYS[1], ARGV[1])}"
NON_ASCII = "héllo wörld ✓ 日本語 \U0001f600"


def command_script(r: redis.Redis, prefix: str) -> List[Tuple[str, str, Any]]:
    """The fixed script: plain commands, pipelines with failing commands, Lua
    in pipelines, WATCH, ``mget([])``, non-ASCII values, NEVER_DECODE replies."""
    rec = Recorder(prefix)

    def k(name: str) -> str:
        return prefix + name

    # plain commands
    rec("set", lambda: r.set(k("s"), "v1"))
    rec("get", lambda: r.get(k("s")))
    rec("get missing", lambda: r.get(k("missing")))
    rec("set nx on existing", lambda: r.set(k("s"), "v2", nx=True))
    rec("set get=True", lambda: r.set(k("s"), "v3", get=True))
    rec("incr", lambda: r.incr(k("n")))
    rec("incr 5", lambda: r.incr(k("n"), 5))
    rec("incr on non-integer", lambda: r.incr(k("s")))
    rec("hset mapping", lambda: r.hset(k("h"), mapping={"f1": "1", "f2": "two"}))
    rec("hset field", lambda: r.hset(k("h"), "f3", 3.5))
    rec("hgetall", lambda: r.hgetall(k("h")))
    rec("hgetall missing", lambda: r.hgetall(k("missing")))
    rec("zadd", lambda: r.zadd(k("z"), {"m1": 1.5, "m2": 2, "m3": -1}))
    rec("zrange withscores", lambda: r.zrange(k("z"), 0, -1, withscores=True))
    rec("zrange desc withscores", lambda: r.zrange(k("z"), 0, 1, desc=True, withscores=True))
    rec("zrange", lambda: r.zrange(k("z"), 0, -1))
    rec("zscore", lambda: r.zscore(k("z"), "m1"))
    rec("lpush", lambda: r.lpush(k("l"), 1, "two", 3.0))
    rec("lrange", lambda: r.lrange(k("l"), 0, -1))
    rec("mget", lambda: r.mget([k("s"), k("missing"), k("n")]))
    rec("mget varargs", lambda: r.mget(k("s"), k("n")))
    rec("mget []", lambda: r.mget([]))
    rec("expire", lambda: r.expire(k("s"), 100))
    rec("ttl", lambda: r.ttl(k("s")))
    rec("ttl missing", lambda: r.ttl(k("missing")))
    rec("delete", lambda: r.delete(k("s"), k("missing")))
    rec("delete none left", lambda: r.delete(k("s")))
    rec("set non-ascii", lambda: r.set(k("u"), NON_ASCII))
    rec("get non-ascii", lambda: r.get(k("u")))
    rec("strlen non-ascii", lambda: r.strlen(k("u")))
    rec("set non-ascii key", lambda: r.set(k("ключ"), "v"))
    rec("get non-ascii key", lambda: r.get(k("ключ")))
    rec("set bytes not utf-8", lambda: r.set(k("raw"), b"\xff\xfe\x00"))
    rec("get bytes not utf-8", lambda: r.get(k("raw")))  # UnicodeDecodeError under decode_responses
    rec("dump (NEVER_DECODE)", lambda: r.dump(k("n")))
    rec("dump missing", lambda: r.dump(k("missing")))
    rec("restore from dump", lambda: r.restore(k("n2"), 0, r.dump(k("n"))))
    rec("get restored", lambda: r.get(k("n2")))
    rec("lpush on a string (WRONGTYPE)", lambda: r.lpush(k("u"), 1))
    rec("unknown command", lambda: r.execute_command("NOSUCHCOMMAND", k("x")))
    rec("wrong arity", lambda: r.execute_command("GET"))
    rec("ping", lambda: r.ping())
    rec("echo non-ascii", lambda: r.echo(NON_ASCII))

    # pipelines: SET a 1; SET b 2; LPUSH c 3 (c holds a string); SET d 4
    def failing_pipeline(transaction: bool, raise_on_error: bool) -> Any:
        r.delete(k("a"), k("b"), k("d"))
        r.set(k("c"), "a string")
        with r.pipeline(transaction=transaction) as pipe:
            pipe.set(k("a"), 1).set(k("b"), 2).lpush(k("c"), 3).set(k("d"), 4)
            return pipe.execute(raise_on_error=raise_on_error)

    for transaction in (False, True):
        for raise_on_error in (True, False):
            tag = f"transaction={transaction} raise_on_error={raise_on_error}"
            rec(f"pipeline with WRONGTYPE, {tag}", lambda: failing_pipeline(transaction, raise_on_error))
            rec(f"keys after pipeline, {tag}", lambda: r.mget([k("a"), k("b"), k("c"), k("d")]))

    def queue_time_error(raise_on_error: bool) -> Any:
        # A command the server refuses while queuing: EXECABORT in redis-py's bookkeeping.
        with r.pipeline(transaction=True) as pipe:
            pipe.set(k("q1"), 1).execute_command("SET", k("q2")).set(k("q3"), 3)
            return pipe.execute(raise_on_error=raise_on_error)

    rec("transaction with queue-time error", lambda: queue_time_error(True))
    rec("transaction with queue-time error, raise_on_error=False", lambda: queue_time_error(False))
    rec("keys after queue-time error", lambda: r.mget([k("q1"), k("q2"), k("q3")]))

    def mixed_pipeline(transaction: bool) -> Any:
        with r.pipeline(transaction=transaction) as pipe:
            pipe.set(k("p"), NON_ASCII).get(k("p")).mget([]).mget([k("p"), k("missing")])
            pipe.hset(k("ph"), mapping={"a": 1}).hgetall(k("ph")).hgetall(k("missing"))
            pipe.zadd(k("pz"), {"x": 1, "y": 2.5}).zrange(k("pz"), 0, -1, withscores=True)
            pipe.incr(k("pn")).expire(k("pn"), 50).ttl(k("pn"))
            pipe.lpush(k("pl"), "a", "b").lrange(k("pl"), 0, -1).delete(k("pl"), k("missing"))
            return pipe.execute()

    rec("mixed pipeline, transaction=False", lambda: mixed_pipeline(False))
    r.delete(k("p"), k("ph"), k("pz"), k("pn"))
    rec("mixed pipeline, transaction=True", lambda: mixed_pipeline(True))

    def dump_pipeline(transaction: bool) -> Any:
        # NEVER_DECODE: raw bytes under decode_responses, except that redis-py
        # reads a transaction's EXEC reply in one go and decodes DUMP's payload
        # with it (UnicodeDecodeError). Kept apart so that quirk hides nothing else.
        with r.pipeline(transaction=transaction) as pipe:
            return pipe.get(k("p")).dump(k("pn")).dump(k("missing")).incr(k("pn")).execute()

    rec("dump in pipeline, transaction=False", lambda: dump_pipeline(False))
    rec("dump in pipeline, transaction=True", lambda: dump_pipeline(True))
    rec("after dump in pipeline", lambda: r.mget([k("p"), k("pn")]))

    def reused_pipeline() -> Any:
        pipe = r.pipeline()
        first = pipe.set(k("r"), 1).incr(k("r")).execute()
        second = pipe.incr(k("r")).get(k("r")).execute()
        return first, second, len(pipe)

    rec("pipeline reused after execute", reused_pipeline)
    rec("empty pipeline", lambda: r.pipeline().execute())

    # Lua scripts inside pipelines (redis-py's Script with client=pipe)
    failing = r.register_script(FAILING_LUA)
    ok = r.register_script(OK_LUA)

    def script_pipeline(transaction: bool, raise_on_error: bool) -> Any:
        r.set(k("sc"), "a string")
        with r.pipeline(transaction=transaction) as pipe:
            pipe.set(k("s1"), 1)
            failing(keys=[k("s2"), k("sc")], args=[7], client=pipe)
            ok(keys=[k("s3")], args=[5], client=pipe)
            pipe.get(k("s2"))
            return pipe.execute(raise_on_error=raise_on_error)

    for transaction in (False, True):
        for raise_on_error in (True, False):
            tag = f"transaction={transaction} raise_on_error={raise_on_error}"
            rec(f"failing Lua in pipeline, {tag}", lambda: script_pipeline(transaction, raise_on_error))
            rec(f"keys after Lua pipeline, {tag}", lambda: r.mget([k("s1"), k("s2"), k("s3")]))
            r.delete(k("s1"), k("s2"), k("s3"))
    rec("failing Lua direct", lambda: failing(keys=[k("s2"), k("sc")], args=[7]))
    rec("ok Lua direct", lambda: ok(keys=[k("s3")], args=[1]))

    # WATCH / MULTI / WatchError
    def watch(conflict: bool) -> Any:
        r.set(k("w"), 10)
        with r.pipeline() as pipe:
            pipe.watch(k("w"))
            value = pipe.get(k("w"))
            if conflict:
                r.set(k("w"), 99)  # another connection writes the watched key
            pipe.multi()
            pipe.set(k("w"), int(value) + 1).get(k("w"))
            return value, pipe.execute()

    rec("watch/multi/exec", lambda: watch(False))
    rec("watch/multi/exec with a conflicting write", lambda: watch(True))
    rec("watched key after conflict", lambda: r.get(k("w")))

    def transaction_helper(pipe: Any) -> None:
        current = int(pipe.get(k("w")))
        pipe.multi()
        pipe.set(k("w"), current * 2)

    rec("Redis.transaction()", lambda: r.transaction(transaction_helper, k("w")))
    rec("after Redis.transaction()", lambda: r.get(k("w")))
    return rec.outcomes


def _diff(expected: List[Tuple[str, str, Any]], got: List[Tuple[str, str, Any]]) -> List[str]:
    lines = []
    for (label, kind, value), (label2, kind2, value2) in zip(expected, got):
        assert label == label2
        if (kind, value) != (kind2, value2):
            lines.append(f"{label}:\n    redis-py  {kind} {value!r}\n    fastredis {kind2} {value2!r}")
    if len(expected) != len(got):
        lines.append(f"{len(expected)} steps in redis-py's run, {len(got)} in fastredis's")
    return lines


@pytest.mark.parametrize("path", PATHS, ids=[p.id for p in PATHS])
def test_command_script_matches_redis_py(request: pytest.FixtureRequest, path: Path) -> None:
    runs = []
    for cls in (redis.Redis, fastredis.Redis):
        env, client = _build(request, path, cls)
        env.flush()
        prefix = f"cp:{secrets.token_hex(4)}:"
        try:
            runs.append(command_script(client, prefix))
        finally:
            _close(client)
    expected, got = runs
    problems = _diff(expected, got)
    if problems:
        pytest.fail(f"{len(problems)} of {len(expected)} steps differ on {path.id}:\n" + "\n".join(problems), pytrace=False)


def test_script_catches_the_annotated_pipeline_error(request: pytest.FixtureRequest) -> None:
    """The script's key step, pinned against redis-py itself: a transaction
    with a failing LPUSH raises the annotated WRONGTYPE error."""
    env, client = _build(request, PATHS[0], redis.Redis)
    env.flush()
    try:
        outcomes = {label: (kind, value) for label, kind, value in command_script(client, "cp:pin:")}
    finally:
        _close(client)
    for transaction in (False, True):
        kind, value = outcomes[f"pipeline with WRONGTYPE, transaction={transaction} raise_on_error=True"]
        assert kind == "raised"
        assert value[1] == "redis.exceptions.ResponseError"
        assert value[2].startswith("Command # 3 (LPUSH <P>c 3) of pipeline caused error: WRONGTYPE ")
        kind, value = outcomes[f"pipeline with WRONGTYPE, transaction={transaction} raise_on_error=False"]
        assert kind == "returned" and value[0] is True and value[1] is True and value[3] is True
        assert value[2][:2] == ("exception", "redis.exceptions.ResponseError")
    assert outcomes["mget []"] == ("returned", [])
    kind, value = outcomes["watch/multi/exec with a conflicting write"]
    assert kind == "raised" and value[1] == "redis.exceptions.WatchError"


# -- the fast path is taken ------------------------------------------------------------------------


def _connections_used(client: redis.Redis) -> List[Any]:
    if client.connection is not None:
        return [client.connection]
    pool = client.connection_pool
    conn = pool.get_connection()  # the connection the commands above used, back from the pool
    pool.release(conn)
    return [conn]


@pytest.mark.parametrize("path", [p for p in PATHS if not p.falls_back], ids=[p.id for p in PATHS if not p.falls_back])
def test_fast_path_is_taken(request: pytest.FixtureRequest, path: Path) -> None:
    env, client = _build(request, path, fastredis.Redis)
    try:
        assert client.ping()
        pipe = client.pipeline()
        assert isinstance(pipe, fastredis.Pipeline), type(pipe)
        assert pipe.set("fast-path", 1).get("fast-path").execute()[0] is True
        for conn in _connections_used(client):
            assert isinstance(conn._parser, FastParser), (
                f"{path.id}: {type(conn).__name__} uses {type(conn._parser).__module__}."
                f"{type(conn._parser).__qualname__}, not FastParser"
            )
    finally:
        _close(client)


@pytest.mark.parametrize("path", [p for p in PATHS if p.falls_back], ids=[p.id for p in PATHS if p.falls_back])
def test_documented_fallbacks_still_work(request: pytest.FixtureRequest, path: Path) -> None:
    """User connection classes and cache_config fall back to redis-py's parser,
    and still run a pipeline through fastredis's Pipeline class."""
    env, client = _build(request, path, fastredis.Redis)
    try:
        assert client.set("fallback", 1) is True
        assert client.pipeline().get("fallback").incr("fallback").execute() == [b"1", 2]
    finally:
        _close(client)
