"""Shared fixtures: real redis-server processes started by the tests.

- ``redis_url``: one server for the whole session (or ``$FASTREDIS_REDIS_URL``).
- ``r`` / ``raw``: a fastredis / plain redis-py client on it, database flushed.
- ``any_client``: parametrised over both client classes.
- ``server_factory``: private servers a test may restart, kill or pause.
- ``resp_impl``: parametrised over the compiled and pure-Python RESP twins.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Iterator, List

import pytest
import redis
from hypothesis import settings

from fastredis.server import RedisCluster, RedisServer

# No per-example deadline: the machines are shared and noisy. CI also runs
# hypothesis with a fixed seed, so a green run here is a green run there;
# local runs keep exploring new examples.
settings.register_profile("local", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")

EXTERNAL_URL = os.environ.get("FASTREDIS_REDIS_URL")
NO_EXTENSIONS = bool(os.environ.get("FASTREDIS_NO_EXTENSIONS"))


def twin_params(base: str) -> List["pytest.param"]:
    """pytest params selecting ``fastredis.<base>_c`` and ``fastredis.<base>_py``.

    The compiled twin is never skipped silently: if it should have loaded and
    did not, its tests fail at import (see test_compiled_core_loaded).
    """
    marks_c = [pytest.mark.skipif(NO_EXTENSIONS, reason="FASTREDIS_NO_EXTENSIONS=1")]
    return [
        pytest.param(f"fastredis.{base}_c", id="c", marks=marks_c),
        pytest.param(f"fastredis.{base}_py", id="py"),
    ]


@pytest.fixture(params=twin_params("_resp"))
def resp_impl(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return importlib.import_module(request.param)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if EXTERNAL_URL:
        yield EXTERNAL_URL
        return
    server = RedisServer()
    try:
        yield server.url
    finally:
        server.stop()


def _flushed_client(cls: type, redis_url: str) -> Iterator["redis.Redis"]:
    client = cls.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def r(redis_url: str) -> Iterator["redis.Redis"]:
    import fastredis

    yield from _flushed_client(fastredis.Redis, redis_url)


@pytest.fixture
def raw(redis_url: str) -> Iterator["redis.Redis"]:
    yield from _flushed_client(redis.Redis, redis_url)


@pytest.fixture(params=["fastredis", "redis-py"])
def any_client(request: pytest.FixtureRequest, redis_url: str) -> Iterator["redis.Redis"]:
    """A fastredis.Redis and a plain redis.Redis: patterns must work with both."""
    import fastredis

    yield from _flushed_client(fastredis.Redis if request.param == "fastredis" else redis.Redis, redis_url)


@pytest.fixture
def server_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start private servers (``server_factory(*extra_args, **RedisServer_kwargs)``,
    e.g. ``server_factory(unixsocket=True)`` or ``server_factory(tls=True)``);
    all stop at teardown.

    Tests that restart, kill or pause a server need their own, so they are
    skipped when ``FASTREDIS_REDIS_URL`` points at an external server.
    """
    if EXTERNAL_URL:
        pytest.skip("needs private redis-server processes; FASTREDIS_REDIS_URL is set")
    started: List[RedisServer] = []

    def start(*extra_args: str, **kwargs: Any) -> RedisServer:
        server = RedisServer(*extra_args, **kwargs)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for s in started:
            s.stop()


@pytest.fixture
def private_server(server_factory: Callable[..., RedisServer]) -> RedisServer:
    """One private server this test may restart, kill or pause."""
    return server_factory()


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    """A private 3-master cluster shared by the tests of one module (a module
    that needs replicas or other timeouts defines its own)."""
    if EXTERNAL_URL:
        pytest.skip("needs private redis-server processes; FASTREDIS_REDIS_URL is set")
    with RedisCluster(3) as c:
        yield c
