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
