"""The asyncio patterns (``fastredis.asyncio``) against their redis.asyncio
(+hiredis) or ``limits.aio`` equivalents, same server, same run.

Run:  python -m pytest benchmarks/bench_async_patterns.py --benchmark-only \\
          --benchmark-group-by=group --benchmark-columns=median,ops,rounds

Every case is one round of ``TASKS`` concurrent tasks, each awaiting ``EACH``
operations (1,000 operations per round), as a web server's handlers would;
the ratio of medians within a group is the figure that counts. The
redis.asyncio side gets a pool large enough for one connection per task
(its default of 100 raises "Too many connections" at 200 tasks).

- ``limiter-<algorithm>``: one decision per operation; fastredis's limiter on
  fastredis.asyncio.Redis vs ``limits.aio`` (implementation ``redispy``).
- ``cache-l1`` / ``cache-l2``: TieredCache.get served by L1 (no I/O) or by
  L2 (``local_maxsize=0``), vs GET + JSON decode on redis.asyncio.
- ``lock``: acquire + release of an uncontended lock vs ``redis.asyncio.lock.Lock``.
- ``leaderboard``: incr vs ZINCRBY; ``top`` vs ZREVRANGE WITHSCORES.
- ``unique-counter``: UniqueCounter.add vs PFADD.
- ``session``: SessionStore.get vs HGETALL + JSON decode of the fields.
- ``stream-add`` / ``publish``: EventStream.add vs XADD of a JSON field;
  Channel.publish vs PUBLISH of a JSON payload.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Awaitable, Callable, Iterator

import orjson
import pytest
import redis.asyncio
import redis.asyncio.lock

import fastredis.asyncio as fa

TASKS, EACH = 200, 5
OPS = TASKS * EACH


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def fast(loop: asyncio.AbstractEventLoop, bench_server: Any) -> Iterator[Any]:
    c = fa.Redis(port=bench_server.port)
    yield c
    loop.run_until_complete(c.aclose())


@pytest.fixture(scope="module")
def plain(loop: asyncio.AbstractEventLoop, bench_server: Any) -> Iterator[Any]:
    c = redis.asyncio.Redis(port=bench_server.port, max_connections=TASKS + 16)
    yield c
    loop.run_until_complete(c.aclose())


def _bench(benchmark: Any, loop: asyncio.AbstractEventLoop, group: str, op: Callable[[int], Awaitable[Any]],
           rounds: int = 15) -> None:
    """Benchmark ``TASKS`` tasks x ``EACH`` awaits of ``op(i)`` per round."""
    benchmark.group = group
    benchmark.extra_info["ops_per_round"] = OPS
    counter = itertools.count()

    async def worker() -> None:
        for _ in range(EACH):
            await op(next(counter))

    async def one_round() -> None:
        await asyncio.gather(*(worker() for _ in range(TASKS)))

    loop.run_until_complete(one_round())  # warm-up: connections, scripts
    benchmark.pedantic(lambda: loop.run_until_complete(one_round()), rounds=rounds, warmup_rounds=1)


# -- rate limiting --------------------------------------------------------------

LIMITERS = {
    "log": (fa.SlidingWindowLimiter, "MovingWindowRateLimiter"),
    "fix": (fa.FixedWindowLimiter, "FixedWindowRateLimiter"),
    "ctr": (fa.SlidingWindowCounterLimiter, "SlidingWindowCounterRateLimiter"),
}


@pytest.mark.parametrize("alg", sorted(LIMITERS))
def test_limiter_fastredis(benchmark: Any, loop: Any, fast: Any, alg: str) -> None:
    lim = LIMITERS[alg][0](fast, 10**9, 3600, prefix=f"bench-{alg}")
    _bench(benchmark, loop, f"limiter-{alg}", lambda i: lim.hit(f"user:{i % 1000}"))


@pytest.mark.parametrize("alg", sorted(LIMITERS))
def test_limiter_limits_aio(benchmark: Any, loop: Any, bench_server: Any, alg: str) -> None:
    pytest.importorskip("limits")
    import limits
    import limits.aio.storage
    import limits.aio.strategies

    async def make() -> Any:
        # limits names its keys alike for every strategy: a prefix per algorithm keeps them apart
        return limits.aio.storage.RedisStorage(f"async+redis://127.0.0.1:{bench_server.port}",
                                               implementation="redispy", key_prefix=f"LIMITS-{alg}",
                                               max_connections=TASKS + 16)

    storage = loop.run_until_complete(make())
    strategy = getattr(limits.aio.strategies, LIMITERS[alg][1])(storage)
    item = limits.RateLimitItemPerHour(10**9)
    _bench(benchmark, loop, f"limiter-{alg}", lambda i: strategy.hit(item, f"user:{i % 1000}"))


# -- caching --------------------------------------------------------------------

def test_cache_l1_fastredis(benchmark: Any, loop: Any, fast: Any) -> None:
    cache = loop.run_until_complete(fa.TieredCache(fast, prefix="bench-l1", ttl=600).start())
    loop.run_until_complete(cache.set_many({f"k{i}": {"i": i} for i in range(100)}))
    for i in range(100):
        loop.run_until_complete(cache.get(f"k{i}"))
    _bench(benchmark, loop, "cache-l1", lambda i: cache.get(f"k{i % 100}"))
    loop.run_until_complete(cache.aclose())


def test_cache_l1_redis_asyncio_get(benchmark: Any, loop: Any, plain: Any) -> None:
    loop.run_until_complete(plain.mset({f"raw{i}": orjson.dumps({"i": i}) for i in range(100)}))

    async def get(i: int) -> Any:
        return orjson.loads(await plain.get(f"raw{i % 100}"))

    _bench(benchmark, loop, "cache-l1", get)


def test_cache_l2_fastredis(benchmark: Any, loop: Any, fast: Any) -> None:
    cache = fa.TieredCache(fast, prefix="bench-l2", ttl=600, local_maxsize=0)
    loop.run_until_complete(cache.set_many({f"k{i}": {"i": i} for i in range(100)}))
    _bench(benchmark, loop, "cache-l2", lambda i: cache.get(f"k{i % 100}"))


def test_cache_l2_redis_asyncio_get(benchmark: Any, loop: Any, plain: Any) -> None:
    loop.run_until_complete(plain.mset({f"raw{i}": orjson.dumps({"i": i}) for i in range(100)}))

    async def get(i: int) -> Any:
        return orjson.loads(await plain.get(f"raw{i % 100}"))

    _bench(benchmark, loop, "cache-l2", get)


# -- locks ------------------------------------------------------------------------

def test_lock_fastredis(benchmark: Any, loop: Any, fast: Any) -> None:
    async def cycle(i: int) -> None:
        lock = fa.Lock(fast, f"bench:{i}", ttl=10)
        await lock.acquire(blocking=False)
        await lock.release()

    _bench(benchmark, loop, "lock", cycle)


def test_lock_redis_asyncio(benchmark: Any, loop: Any, plain: Any) -> None:
    async def cycle(i: int) -> None:
        lock = redis.asyncio.lock.Lock(plain, f"rbench:{i}", timeout=10)
        await lock.acquire(blocking=False)
        await lock.release()

    _bench(benchmark, loop, "lock", cycle)


# -- leaderboards -----------------------------------------------------------------

def test_leaderboard_incr_fastredis(benchmark: Any, loop: Any, fast: Any) -> None:
    lb = fa.Leaderboard(fast, "bench")
    _bench(benchmark, loop, "leaderboard-incr", lambda i: lb.incr(f"m{i % 500}", 1))


def test_leaderboard_incr_redis_asyncio(benchmark: Any, loop: Any, plain: Any) -> None:
    _bench(benchmark, loop, "leaderboard-incr", lambda i: plain.zincrby("rbench:lb", 1, f"m{i % 500}"))


def test_leaderboard_top_fastredis(benchmark: Any, loop: Any, fast: Any) -> None:
    lb = fa.Leaderboard(fast, "bench-top")
    loop.run_until_complete(lb.add_many([f"m{i}" for i in range(1000)], list(range(1000))))
    _bench(benchmark, loop, "leaderboard-top10", lambda i: lb.top(10))


def test_leaderboard_top_redis_asyncio(benchmark: Any, loop: Any, plain: Any) -> None:
    loop.run_until_complete(plain.zadd("rbench:top", {f"m{i}": i for i in range(1000)}))
    _bench(benchmark, loop, "leaderboard-top10", lambda i: plain.zrevrange("rbench:top", 0, 9, withscores=True))


# -- analytics, sessions, messaging -----------------------------------------------

def test_unique_counter_fastredis(benchmark: Any, loop: Any, fast: Any) -> None:
    uc = fa.UniqueCounter(fast, "bench")
    _bench(benchmark, loop, "unique-counter", lambda i: uc.add(f"u{i}"))


def test_unique_counter_redis_asyncio(benchmark: Any, loop: Any, plain: Any) -> None:
    _bench(benchmark, loop, "unique-counter", lambda i: plain.pfadd("rbench:uc", f"u{i}"))


def test_session_get_fastredis(benchmark: Any, loop: Any, fast: Any) -> None:
    store = fa.SessionStore(fast, ttl=600)
    sids = [loop.run_until_complete(store.create({"user": i, "theme": "dark"})) for i in range(100)]
    _bench(benchmark, loop, "session-get", lambda i: store.get(sids[i % 100]))


def test_session_get_redis_asyncio(benchmark: Any, loop: Any, plain: Any) -> None:
    for i in range(100):
        loop.run_until_complete(plain.hset(f"rbench:s{i}", mapping={"user": orjson.dumps(i), "theme": b'"dark"'}))

    async def get(i: int) -> Any:
        raw = await plain.hgetall(f"rbench:s{i % 100}")
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    _bench(benchmark, loop, "session-get", get)


def test_stream_add_fastredis(benchmark: Any, loop: Any, fast: Any) -> None:
    stream = fa.EventStream(fast, "bench", maxlen=10_000)
    _bench(benchmark, loop, "stream-add", lambda i: stream.add({"n": i}))


def test_stream_add_redis_asyncio(benchmark: Any, loop: Any, plain: Any) -> None:
    _bench(benchmark, loop, "stream-add",
           lambda i: plain.xadd("rbench:stream", {"n": orjson.dumps(i)}, maxlen=10_000, approximate=True))


def test_publish_fastredis(benchmark: Any, loop: Any, fast: Any) -> None:
    ch = fa.Channel(fast, "bench")
    _bench(benchmark, loop, "publish", lambda i: ch.publish({"n": i}))


def test_publish_redis_asyncio(benchmark: Any, loop: Any, plain: Any) -> None:
    _bench(benchmark, loop, "publish", lambda i: plain.publish("rbench:chan", orjson.dumps({"n": i})))
