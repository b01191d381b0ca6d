"""Every way users construct an asyncio client, run differentially against
redis.asyncio.

For each construction path (``Redis(host, port)``, ``from_url``, explicit and
blocking pools, ``from_pool``, unix sockets, ``single_connection_client``,
protocols, ``decode_responses``, TLS, Sentinel's ``master_for``, a user
connection class) the command script of tests/test_asyncio_differential.py
(strings, hashes, sorted sets, errors, scripts after SCRIPT FLUSH, pipelines
with and without transactions and failing commands, WATCH, pub/sub) runs on
``redis.asyncio.Redis`` and on ``fastredis.asyncio.Redis`` built the same
way, against the same real server, flushed in between. Every result and
every exception (class and text) must be equal. A second test checks that
the core's parser is on the connections of every path except the one
documented to fall back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List

import pytest
import redis
import redis.asyncio
import redis.asyncio.sentinel
from _asyncio_fixtures import acls, run_on  # noqa: F401  (fixture)
from _construction_servers import Env, env_for, plain_server, sentinel_setup, tls_server  # noqa: F401  (fixtures)
from test_asyncio_differential import _script

from fastredis.asyncio.connection import FastAsyncParser


class UserConnection(redis.asyncio.Connection):
    """A user-supplied connection class: fastredis falls back to redis-py's parser."""


@dataclass
class Path:
    id: str
    make: Callable[[type, Env], Any]
    server: str = "plain"
    falls_back: bool = False


def _kw(**kw: Any) -> Callable[[type, Env], Any]:
    return lambda cls, e: cls(host=e.host, port=e.port, **kw)


def _sentinel(**kw: Any) -> Callable[[type, Env], Any]:
    return lambda cls, e: redis.asyncio.sentinel.Sentinel(e.sentinels, **kw).master_for("mymaster", redis_class=cls)


PATHS = [
    Path("default", _kw()),
    Path("resp2-decode", _kw(protocol=2, decode_responses=True)),
    Path("resp3", _kw(protocol=3)),
    Path("from_url", lambda cls, e: cls.from_url(e.url)),
    Path("from_url-protocol2-decode", lambda cls, e: cls.from_url(e.url + "?protocol=2&decode_responses=True")),
    Path("explicit-ConnectionPool", lambda cls, e: cls(connection_pool=redis.asyncio.ConnectionPool(host=e.host, port=e.port))),
    Path(
        "explicit-ConnectionPool-resp3-decode",
        lambda cls, e: cls(connection_pool=redis.asyncio.ConnectionPool(host=e.host, port=e.port, protocol=3, decode_responses=True)),
    ),
    Path(
        "explicit-BlockingConnectionPool",
        lambda cls, e: cls(connection_pool=redis.asyncio.BlockingConnectionPool(host=e.host, port=e.port, max_connections=4, timeout=5)),
    ),
    Path("ConnectionPool.from_url", lambda cls, e: cls(connection_pool=redis.asyncio.ConnectionPool.from_url(e.url))),
    Path("from_pool", lambda cls, e: cls.from_pool(redis.asyncio.ConnectionPool(host=e.host, port=e.port))),
    Path("unix_socket_path", lambda cls, e: cls(unix_socket_path=e.unix_socket)),
    Path("unix-url", lambda cls, e: cls.from_url(e.unix_url)),
    Path("single_connection_client", _kw(single_connection_client=True)),
    Path("single_connection_client-resp3-decode", _kw(single_connection_client=True, protocol=3, decode_responses=True)),
    Path("tls-rediss-url", lambda cls, e: cls.from_url(e.url, ssl_ca_certs=e.ca_file), server="tls"),
    Path("tls-ssl-kwargs", lambda cls, e: cls(host=e.host, port=e.port, ssl=True, ssl_ca_certs=e.ca_file), server="tls"),
    Path(
        "tls-ConnectionPool.from_url",
        lambda cls, e: cls(connection_pool=redis.asyncio.ConnectionPool.from_url(e.url, ssl_ca_certs=e.ca_file)),
        server="tls",
    ),
    Path("sentinel-master_for", _sentinel(), server="sentinel"),
    Path("sentinel-master_for-protocol2", _sentinel(protocol=2), server="sentinel"),
    Path("user-connection-class", lambda cls, e: cls.from_url(e.url, connection_class=UserConnection), falls_back=True),
]


async def _run_script(make: Callable[[], Any], env: Env) -> List[Any]:
    env.flush()
    r = make()
    other = redis.asyncio.Redis(host=env.host, port=env.port, **env.admin_kwargs)
    try:
        return await _script(r, other)
    finally:
        await r.aclose()
        await other.aclose()
        pool = getattr(r, "connection_pool", None)
        manager = getattr(pool, "sentinel_manager", None)
        for s in getattr(manager, "sentinels", ()):
            await s.aclose()


@pytest.mark.parametrize("path", PATHS, ids=[p.id for p in PATHS])
def test_command_script_matches_redis_asyncio(request: pytest.FixtureRequest, acls: type, path: Path) -> None:
    env = env_for(request, path.server)
    expected = run_on("asyncio", _run_script(lambda: path.make(redis.asyncio.Redis, env), env))
    got = run_on("asyncio", _run_script(lambda: path.make(acls, env), env))
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert g == e, f"{path.id} step {i}: redis.asyncio gave {e!r}, fastredis.asyncio gave {g!r}"


@pytest.mark.parametrize("path", PATHS, ids=[p.id for p in PATHS])
def test_the_core_parser_is_on_every_path(request: pytest.FixtureRequest, acls: type, path: Path) -> None:
    env = env_for(request, path.server)

    async def main() -> Any:
        r = path.make(acls, env)
        try:
            await r.set("k", "v")
            assert await r.get("k") in (b"v", "v")
            conn = r.connection or await r.connection_pool.get_connection()
            try:
                return type(conn._parser)
            finally:
                if r.connection is None:
                    await r.connection_pool.release(conn)
        finally:
            await r.aclose()

    parser = run_on("asyncio", main())
    if path.falls_back:
        assert not issubclass(parser, FastAsyncParser)
    else:
        assert issubclass(parser, FastAsyncParser), parser
