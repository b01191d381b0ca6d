"""Helpers of the asyncio pattern tests (imported by tests/test_async_*.py).

- ``akind``: parametrised over ``fastredis.asyncio.Redis`` and ``redis.asyncio.Redis``;
- ``aclient(kind, url_or_port, **kwargs)``: a new asyncio client of that kind;
- ``arun(coro)``: run a coroutine on a fresh default event loop, with a timeout;
- ``wait_until(predicate)``: poll a sync predicate with a deadline.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Coroutine

import pytest
import redis.asyncio

import fastredis.asyncio

KINDS = ["fastredis", "redis-py"]


@pytest.fixture(params=KINDS)
def akind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def aclient(kind: str, where: Any, **kwargs: Any) -> Any:
    """A client of ``kind``. redis.asyncio's default pool stops at 100
    connections (one per concurrent command), so the tests raise it."""
    cls = fastredis.asyncio.Redis if kind == "fastredis" else redis.asyncio.Redis
    if kind != "fastredis":
        kwargs.setdefault("max_connections", 2000)
    if isinstance(where, int):
        return cls(port=where, **kwargs)
    return cls.from_url(where, **kwargs)


def arun(coro: Coroutine[Any, Any, Any], timeout: float = 120.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


async def await_until(predicate: Callable[[], Any], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return bool(predicate())
