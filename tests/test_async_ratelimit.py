"""The asyncio limiters against real servers, on fastredis.asyncio.Redis and
redis.asyncio.Redis: the same decisions as the sync twins, SCRIPT FLUSH,
CLIENT KILL, restart, cancellation (never counted twice), and concurrency
from many tasks and several processes."""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import random
import time
from typing import Any, List

import pytest
import redis
import redis.asyncio
from _async_patterns import aclient, akind, arun  # noqa: F401

import fastredis
import fastredis.asyncio as fa
from fastredis.exceptions import OutcomeUnknownError

KINDS = ["log", "ctr", "fix", "gcra"]


def make(mod: Any, kind: str, client: Any, limit: int = 5, window: float = 3600.0, prefix: str = "rl") -> Any:
    if kind == "log":
        return mod.SlidingWindowLimiter(client, limit, window, prefix=prefix)
    if kind == "ctr":
        return mod.SlidingWindowCounterLimiter(client, limit, window, prefix=prefix)
    if kind == "fix":
        return mod.FixedWindowLimiter(client, limit, window, prefix=prefix)
    return mod.TokenBucketLimiter(client, rate=limit / window, capacity=limit, prefix=prefix)


def _shape(decisions: List[Any]) -> List[Any]:
    """Decisions without the clock-dependent times (compared separately)."""
    return [(d.allowed, d.limit, d.remaining, math.isinf(d.retry_after)) for d in decisions]


@pytest.mark.parametrize("kind", KINDS)
def test_same_results_as_the_sync_twin(redis_url: str, akind: str, kind: str) -> None:
    sync_client = fastredis.Redis.from_url(redis_url)
    sync_client.flushdb()
    ops = [("hit", "a", 1), ("hit", "a", 2), ("peek", "a", 1), ("hit", "a", 9), ("hit", "a", 3),
           ("many", ["a", "b", "a", "c"], 1), ("reset", "a", 0), ("hit", "a", 1)]

    def play_sync(lim: Any) -> List[Any]:
        out: List[Any] = []
        for op, key, cost in ops:
            if op == "reset":
                lim.reset(key)
            elif op == "many":
                out += lim.hit_many(key, cost)
            else:
                out.append(getattr(lim, op)(key, cost))
        return out

    async def play_async() -> List[Any]:
        async with aclient(akind, redis_url) as r:
            lim = make(fa, kind, r, prefix="async")
            out: List[Any] = []
            for op, key, cost in ops:
                if op == "reset":
                    await lim.reset(key)
                elif op == "many":
                    out += await lim.hit_many(key, cost)
                else:
                    out.append(await getattr(lim, op)(key, cost))
            return out

    want = play_sync(make(fastredis, kind, sync_client, prefix="sync"))
    got = arun(play_async())
    assert _shape(got) == _shape(want)
    for g, w in zip(got, want):
        assert type(g) is type(w) is fastredis.Decision
        assert g.retry_after == pytest.approx(w.retry_after, abs=2.0) or math.isinf(w.retry_after)
    # Same scripts, same keys apart from the prefix.
    names = sorted(k.decode().replace("async", "sync", 1) for k in sync_client.keys("async*"))
    assert names == sorted(k.decode() for k in sync_client.keys("sync*"))
    sync_client.close()


def test_composite_and_local_deny_cache(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            await r.flushdb()
            both = fa.CompositeLimiter([fa.FixedWindowLimiter(r, 2, 3600), fa.SlidingWindowLimiter(r, 5, 60)], local=True)
            got = [await both.hit("u") for _ in range(3)]
            assert [d.allowed for d in got] == [True, True, False]
            calls = (await r.info("commandstats"))["cmdstat_evalsha"]["calls"]
            denied = await both.hit("u")  # answered by the deny cache: no round trip
            assert not denied.allowed and denied.retry_after > 0
            assert (await r.info("commandstats"))["cmdstat_evalsha"]["calls"] == calls
            assert (await both.peek("u")).remaining == 0
            with pytest.raises(TypeError, match="fastredis.CompositeLimiter"):
                fa.CompositeLimiter([fa.FixedWindowLimiter(r, 2, 60)], client=redis.Redis())

    arun(main())


def test_script_flush_kill_and_restart(private_server: Any, akind: str) -> None:
    async def main() -> None:
        r = aclient(akind, private_server.port)
        killer = redis.Redis(port=private_server.port)
        try:
            lim = fa.FixedWindowLimiter(r, 100, 3600)
            assert (await lim.hit("k")).remaining == 99
            await r.script_flush()
            assert (await lim.hit("k")).remaining == 98  # NOSCRIPT: loaded, sent once more
            await r.script_flush()
            assert [d.remaining for d in await lim.hit_many(["k", "j", "k"])] == [97, 99, 96]
            killer.client_kill_filter(_type="normal", skipme=True)
            await asyncio.sleep(0.05)  # the loop sees the close (a write racing it is outcome-unknown)
            if akind == "redis-py":
                # redis-py's pool cannot tell a killed idle connection from a
                # live one before writing, and a plain connection's failures
                # all count as after the write: outcome unknown, never re-sent.
                with pytest.raises(OutcomeUnknownError):
                    await lim.hit("k")
            assert (await lim.hit("k")).remaining == 95  # the dead connection is replaced
            private_server.restart()  # no persistence: state and scripts are gone
            for _ in range(50):  # the first call may meet the dead connection: outcome unknown
                try:
                    d = await lim.hit("fresh")
                    break
                except (redis.ConnectionError, redis.TimeoutError):
                    await asyncio.sleep(0.05)
            assert d.remaining == 99
            assert (await lim.hit_many(["k"] * 3))[-1].remaining == 97
        finally:
            await r.aclose()
            killer.close()

    arun(main())


def test_no_replay_after_the_request_was_sent(private_server: Any, akind: str) -> None:
    """A stalled reply raises (timeout); the hit is never re-sent, so it counts once."""

    async def main() -> None:
        r = aclient(akind, private_server.port, socket_timeout=0.3)
        lim = fa.FixedWindowLimiter(r, 100, 3600)
        await lim.hit("k")
        private_server.pause()
        try:
            with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
                await lim.hit("k")
        finally:
            private_server.resume()
        await asyncio.sleep(0.1)
        assert (await lim.peek("k")).remaining == 98
        await r.aclose()

    arun(main())


def test_cancelled_hits_count_at_most_once(redis_url: str, akind: str) -> None:
    """Thousands of hits, many cancelled mid-flight: the server counted each
    at most once, and every hit that returned a decision was counted."""

    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            await r.flushdb()
            lim = fa.FixedWindowLimiter(r, 10**9, 3600, prefix="cancel")
            rng = random.Random(7)
            decided = 0

            async def one() -> None:
                nonlocal decided
                await lim.hit("k")
                decided += 1

            tasks = []
            n = 2000 if akind == "fastredis" else 600  # redis.asyncio: a connection per command in flight
            for i in range(n):
                tasks.append(asyncio.ensure_future(one()))
                if i % 50 == 49:
                    await asyncio.sleep(0)
            for t in tasks:
                if rng.random() < 0.5:
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0.2)  # replies of cancelled commands are read and dropped
            counted = 10**9 - (await lim.peek("k")).remaining
            assert decided <= counted <= n
            # The client is still usable and replies still match their requests.
            assert (await lim.hit("other")).remaining == 10**9 - 1
            assert await r.set("x", "1") and await r.get("x") == b"1"

    arun(main())


@pytest.mark.parametrize("kind", KINDS)
def test_many_tasks_one_key_exact(redis_url: str, akind: str, kind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            await r.flushdb()
            lim = make(fa, kind, r, limit=50, window=3600, prefix="tasks")
            got = await asyncio.gather(*(lim.hit("hot") for _ in range(400)))
            assert sum(d.allowed for d in got) == 50
            assert sorted(d.remaining for d in got if d.allowed) == list(range(50))

    arun(main())


def _process_hits(args: Any) -> int:
    url, kind, n = args

    async def main() -> int:
        async with aclient(kind, url) as r:
            lim = fa.SlidingWindowLimiter(r, 300, 3600, prefix="procs")
            admitted = 0
            for _ in range(0, n, 25):  # 25 in flight at a time: redis.asyncio opens one connection each
                got = await asyncio.gather(*(lim.hit("shared") for _ in range(25)))
                admitted += sum(d.allowed for d in got)
            return admitted

    return asyncio.run(main())


def test_several_processes_share_one_limit(redis_url: str, akind: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    with mp.get_context("fork").Pool(4) as pool:
        admitted = pool.map(_process_hits, [(redis_url, akind, 150)] * 4)
    assert sum(admitted) == 300  # 600 requests from 4 processes, exactly the limit admitted
    r.close()


def test_accepts_only_asyncio_clients(redis_url: str) -> None:
    sync_client = redis.Redis.from_url(redis_url)
    with pytest.raises(TypeError, match="fastredis.FixedWindowLimiter"):
        fa.FixedWindowLimiter(sync_client, 1, 1)
    with pytest.raises(TypeError, match="fastredis.asyncio.FixedWindowLimiter"):
        fastredis.FixedWindowLimiter(redis.asyncio.Redis(), 1, 1)
    with pytest.raises(TypeError, match="asyncio Redis client"):
        fa.TokenBucketLimiter("redis://localhost", rate=1, capacity=1)
    with pytest.raises(TypeError, match="pipeline"):
        fa.SlidingWindowLimiter(redis.asyncio.Redis().pipeline(), 1, 1)
    with pytest.raises(TypeError, match="cost"):
        arun(fa.FixedWindowLimiter(redis.asyncio.Redis.from_url(redis_url), 1, 1).hit("k", cost="1"))
    sync_client.close()


def test_uvloop_smoke(redis_url: str) -> None:
    import uvloop

    async def main() -> Any:
        async with fa.Redis.from_url(redis_url) as r:
            lim = fa.TokenBucketLimiter(r, rate=1, capacity=3, prefix="uv")
            return [d.allowed for d in await asyncio.gather(*(lim.hit("k") for _ in range(5)))]

    loop = uvloop.new_event_loop()
    try:
        assert sorted(loop.run_until_complete(main())) == [False, False, True, True, True]
    finally:
        loop.close()
