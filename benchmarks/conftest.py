"""Fixtures for the pytest-benchmark suites: one throwaway server per session."""

from __future__ import annotations

from typing import Iterator

import pytest
import redis

from fastredis.server import RedisServer


@pytest.fixture(scope="session")
def bench_server() -> Iterator[RedisServer]:
    assert redis.utils.HIREDIS_AVAILABLE, "redis-py must run with hiredis for a fair comparison"
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def server(bench_server: RedisServer) -> RedisServer:
    """The session's benchmark server (alias used by the pattern suites)."""
    return bench_server


@pytest.fixture(scope="session")
def fast(bench_server: RedisServer) -> Iterator["redis.Redis"]:
    """A fastredis client on the benchmark server."""
    import fastredis

    c = fastredis.Redis(port=bench_server.port)
    yield c
    c.close()


@pytest.fixture(scope="session")
def plain(bench_server: RedisServer) -> Iterator["redis.Redis"]:
    """A redis-py (+hiredis) client on the benchmark server."""
    c = redis.Redis(port=bench_server.port)
    yield c
    c.close()


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """After the tables: the ratios of suites that compute them (bench_integrations)."""
    import sys

    module = sys.modules.get("bench_integrations")
    if module is None or not getattr(module, "RESULTS", None):
        return
    terminalreporter.section("integrations: ratios (medians, same run)")
    for line in module.summary():
        terminalreporter.write_line(line)
