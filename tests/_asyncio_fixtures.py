"""Fixtures of the asyncio client tests (imported by tests/test_asyncio_*.py).

- ``run``: runs a coroutine to completion on a fresh event loop, parametrised
  over the default asyncio loop and uvloop (both are tested).
- ``acls``: ``fastredis.asyncio.Redis`` on the compiled core and on its
  pure-Python twins (``_resp_py`` + ``_aioproto_py``).
"""

from __future__ import annotations

import asyncio
import importlib
import os
from typing import Any, Callable, Coroutine, Iterator

import pytest

NO_EXTENSIONS = bool(os.environ.get("FASTREDIS_NO_EXTENSIONS"))
LOOPS = ["asyncio", "uvloop"]


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop  # in the test extra: a missing uvloop fails, it is not skipped

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_on(kind: str, coro: Coroutine[Any, Any, Any], timeout: float = 120.0) -> Any:
    loop = new_loop(kind)
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


@pytest.fixture(params=LOOPS)
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(loop_kind: str) -> Callable[..., Any]:
    """``run(coro)``: the coroutine's result, on the parametrised event loop."""
    return lambda coro, timeout=120.0: run_on(loop_kind, coro, timeout)


def _twins() -> Any:
    marks_c = [pytest.mark.skipif(NO_EXTENSIONS, reason="FASTREDIS_NO_EXTENSIONS=1")]
    return [pytest.param("c", id="core-c", marks=marks_c), pytest.param("py", id="core-py")]


@pytest.fixture(params=_twins())
def acls(request: pytest.FixtureRequest) -> type:
    """fastredis.asyncio.Redis on the compiled core, or on the pure-Python twins."""
    from fastredis.asyncio.client import client_class_for

    if request.param == "c":
        import fastredis.asyncio

        assert importlib.import_module("fastredis._aioproto_c")  # fails if the compiled core did not load
        return fastredis.asyncio.Redis
    return client_class_for(importlib.import_module("fastredis._resp_py"))


@pytest.fixture
def url(redis_url: str) -> Iterator[str]:
    """The session server's URL, database flushed."""
    import redis

    r = redis.Redis.from_url(redis_url)
    r.flushall()
    r.close()
    yield redis_url
