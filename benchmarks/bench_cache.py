"""TieredCache benchmarks, against hand-rolled redis-py + orjson in the same run.

Run: python -m pytest benchmarks/bench_cache.py --benchmark-only --benchmark-group-by=group
Figures (ops/s = 1 / mean; the *_many cases do 100 keys per round):
- group "l1-hit": TieredCache.get from L1. Target >= 1M gets/s.
- group "get_or_set-hit": TieredCache.get_or_set (L1 hit) vs redis-py cache-aside (GET + orjson.loads).
- group "l2-hit": TieredCache.get with L1 off vs redis-py GET + orjson.loads (one round trip each).
- group "get_many" / "set_many": 100 keys in one round trip vs a redis-py loop of GET / SET.
"""

from __future__ import annotations

from typing import Iterator

import orjson
import pytest
import redis

import fastredis
from fastredis.patterns.cache import TieredCache
from fastredis.server import RedisServer

VALUE = {"id": 42, "name": "Ada Lovelace", "tags": ["math", "engines"], "score": 99.5}
KEYS = [f"k{i}" for i in range(100)]


@pytest.fixture(scope="module")
def server(bench_server: RedisServer) -> RedisServer:
    """The session server of benchmarks/conftest.py (it checks hiredis)."""
    return bench_server


@pytest.fixture(scope="module")
def cache(server: RedisServer) -> Iterator[TieredCache]:
    with TieredCache(fastredis.Redis(port=server.port), prefix="bench_cache", ttl=3600, local_ttl=3600) as c:
        c.set("hot", VALUE)
        c.set_many({k: VALUE for k in KEYS})
        yield c


@pytest.fixture(scope="module")
def l2_cache(server: RedisServer) -> Iterator[TieredCache]:
    with TieredCache(fastredis.Redis(port=server.port), prefix="bench_cache", ttl=3600, local_maxsize=0) as c:
        yield c


@pytest.fixture(scope="module")
def plain(server: RedisServer) -> Iterator[redis.Redis]:
    r = redis.Redis(port=server.port)
    r.set("plain_cache:hot", orjson.dumps(VALUE))
    for k in KEYS:
        r.set("plain_cache:" + k, orjson.dumps(VALUE))
    yield r
    r.close()


def _warm_l1(cache: TieredCache, key: str) -> None:
    for _ in range(100):
        if cache.get(key) == VALUE and key in cache._l1:
            return
        import time

        time.sleep(0.01)
    raise AssertionError("L1 did not take the hot key")


@pytest.mark.benchmark(group="l1-hit")
def test_l1_hit(benchmark, cache: TieredCache) -> None:  # type: ignore[no-untyped-def]
    _warm_l1(cache, "hot")
    get = cache.get
    assert benchmark(get, "hot") == VALUE


@pytest.mark.benchmark(group="get_or_set-hit")
def test_get_or_set_hit_tiered(benchmark, cache: TieredCache) -> None:  # type: ignore[no-untyped-def]
    _warm_l1(cache, "hot")
    loader = lambda: VALUE  # noqa: E731
    assert benchmark(cache.get_or_set, "hot", loader) == VALUE


@pytest.mark.benchmark(group="get_or_set-hit")
def test_get_or_set_hit_redis_py(benchmark, plain: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    def cache_aside() -> object:
        raw = plain.get("plain_cache:hot")
        if raw is None:
            plain.set("plain_cache:hot", orjson.dumps(VALUE), ex=3600)
            return VALUE
        return orjson.loads(raw)

    assert benchmark(cache_aside) == VALUE


@pytest.mark.benchmark(group="l2-hit")
def test_l2_hit_tiered(benchmark, l2_cache: TieredCache) -> None:  # type: ignore[no-untyped-def]
    assert benchmark(l2_cache.get, "hot") == VALUE


@pytest.mark.benchmark(group="l2-hit")
def test_l2_hit_redis_py(benchmark, plain: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    assert benchmark(lambda: orjson.loads(plain.get("plain_cache:hot"))) == VALUE


@pytest.mark.benchmark(group="get_many")
def test_get_many_tiered_l2(benchmark, l2_cache: TieredCache) -> None:  # type: ignore[no-untyped-def]
    assert len(benchmark(l2_cache.get_many, KEYS)) == 100


@pytest.mark.benchmark(group="get_many")
def test_get_many_redis_py_loop(benchmark, plain: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    keys = ["plain_cache:" + k for k in KEYS]
    assert len(benchmark(lambda: {k: orjson.loads(plain.get(k)) for k in keys})) == 100


@pytest.mark.benchmark(group="set_many")
def test_set_many_tiered(benchmark, l2_cache: TieredCache) -> None:  # type: ignore[no-untyped-def]
    mapping = {k: VALUE for k in KEYS}
    benchmark(l2_cache.set_many, mapping)
    assert l2_cache.get("k99") == VALUE


@pytest.mark.benchmark(group="set_many")
def test_set_many_redis_py_loop(benchmark, plain: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    def loop() -> None:
        for k in KEYS:
            plain.set("plain_cache:" + k, orjson.dumps(VALUE), ex=3600)

    benchmark(loop)
    assert orjson.loads(plain.get("plain_cache:k99")) == VALUE
