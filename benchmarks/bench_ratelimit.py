"""Rate-limiter benchmarks: fastredis against the `limits` library, same
algorithm, same server, same run; and hit_many decisions/s.

Run:  python -m pytest benchmarks/bench_ratelimit.py --benchmark-only \
          --benchmark-group-by=group --benchmark-columns=mean,ops,rounds

- group "hit-<algorithm>": one ``hit`` round trip; ``ops`` of fastredis vs
  limits (moving window = sliding log, fixed window, sliding-window counter).
- group "hit_many": one ``hit_many`` over 1000 distinct keys; decisions/s is
  1000 x ``ops`` (target >= 100k decisions/s, i.e. ops >= 100).
- group "local-deny": a key held by the ``local=True`` deny cache (no I/O).
"""

from __future__ import annotations

import itertools
from typing import Iterator

import pytest
import redis.utils

import fastredis
from fastredis.patterns import ratelimit as rl
from fastredis.server import RedisServer

limits = pytest.importorskip("limits")
import limits.storage  # noqa: E402
import limits.strategies  # noqa: E402

# Big enough that benchmark loops are admitted (the expensive, writing path).
LIMIT = 10**9
WINDOW = 3600


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    assert redis.utils.HIREDIS_AVAILABLE, "compare against redis-py with hiredis"
    s = RedisServer()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def client(server: RedisServer) -> Iterator[fastredis.Redis]:
    c = fastredis.Redis(port=server.port)
    c.flushdb()
    try:
        yield c
    finally:
        c.close()


def _keys() -> Iterator[str]:
    # Fresh keys in rotation, so the sliding log does not grow without bound.
    return itertools.cycle([f"user:{i}" for i in range(1000)])


PAIRS = {
    "log": (rl.SlidingWindowLimiter, limits.strategies.MovingWindowRateLimiter),
    "fix": (rl.FixedWindowLimiter, limits.strategies.FixedWindowRateLimiter),
    "ctr": (rl.SlidingWindowCounterLimiter, limits.strategies.SlidingWindowCounterRateLimiter),
}


@pytest.mark.parametrize("alg", sorted(PAIRS))
def test_hit_fastredis(benchmark, client, alg: str) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = f"hit-{alg}"
    lim = PAIRS[alg][0](client, 1000, WINDOW)
    keys = _keys()
    d = benchmark(lambda: lim.hit(next(keys)))
    assert d.limit == 1000


@pytest.mark.parametrize("alg", sorted(PAIRS))
def test_hit_limits(benchmark, server, client, alg: str) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = f"hit-{alg}"
    storage = limits.storage.storage_from_string(f"redis://127.0.0.1:{server.port}")
    lim = PAIRS[alg][1](storage)
    item = limits.RateLimitItemPerHour(1000)
    keys = _keys()
    assert benchmark(lambda: lim.hit(item, next(keys))) in (True, False)


def test_hit_token_bucket(benchmark, client) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "hit-gcra"  # limits has no token bucket: fastredis alone
    lim = rl.TokenBucketLimiter(client, rate=1000, capacity=1000)
    keys = _keys()
    benchmark(lambda: lim.hit(next(keys)))


@pytest.mark.parametrize("alg", ["fix", "ctr", "gcra", "log"])
def test_hit_many_1000_keys(benchmark, client, alg: str) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "hit_many"
    if alg == "gcra":
        lim = rl.TokenBucketLimiter(client, rate=1e6, capacity=LIMIT)
    else:
        lim = PAIRS[alg][0](client, LIMIT if alg != "log" else 10**6, WINDOW)
    keys = [f"user:{i}" for i in range(1000)]
    got = benchmark(lambda: lim.hit_many(keys))
    assert len(got) == 1000 and got[0].allowed
    benchmark.extra_info["decisions_per_call"] = 1000


def test_local_deny(benchmark, client) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "local-deny"
    lim = rl.SlidingWindowLimiter(client, 1, WINDOW, local=True)
    lim.hit("k")
    assert not lim.hit("k").allowed
    assert not benchmark(lambda: lim.hit("k")).allowed
