"""The asyncio patterns on redis.asyncio.cluster.RedisCluster and
fastredis.asyncio.RedisCluster (one 3-master cluster for the module): batches whose keys span slots, NOSCRIPT repaired
on every primary, transactions in one slot, locks (waiting without pub/sub),
the cache as L2 only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio.cluster

import fastredis.asyncio as fa
from fastredis.server import RedisCluster as ClusterHarness

pytestmark = pytest.mark.cluster


@pytest.fixture(params=[redis.asyncio.cluster.RedisCluster, fa.RedisCluster], ids=["redis-py", "fastredis"])
def client_class(request: pytest.FixtureRequest) -> Any:
    return request.param


def _run(cluster: ClusterHarness, body: Any, client_class: Any) -> None:
    async def main() -> None:
        rc = client_class(host=cluster.host, port=cluster.ports[0])
        try:
            await rc.flushall()
            await body(rc)
        finally:
            await rc.aclose()

    asyncio.run(asyncio.wait_for(main(), 120))


def test_limiters_across_slots_and_script_flush(cluster: ClusterHarness, client_class: Any) -> None:
    async def body(rc: Any) -> None:
        keys = [f"user{i}" for i in range(200)]
        for lim in (fa.FixedWindowLimiter(rc, 2, 3600, prefix="fw"), fa.SlidingWindowLimiter(rc, 2, 3600, prefix="sw"),
                    fa.CompositeLimiter([fa.FixedWindowLimiter(rc, 2, 3600, prefix="c1"),
                                         fa.TokenBucketLimiter(rc, rate=0.001, capacity=5, prefix="c2")])):
            assert [d.allowed for d in await lim.hit_many(keys * 3)] == [True] * 400 + [False] * 200
        await rc.script_flush()
        got = await fa.FixedWindowLimiter(rc, 2, 3600, prefix="fw").hit_many(["user1", "fresh"])
        assert [d.allowed for d in got] == [False, True]

    _run(cluster, body, client_class)


def test_other_patterns(cluster: ClusterHarness, client_class: Any) -> None:
    async def body(rc: Any) -> None:
        board = fa.Leaderboard(rc, "weekly")
        await board.add_many([f"m{i}" for i in range(100)], list(range(100)))
        await rc.script_flush()
        await board.incr_many(["m0", "m1", "m0"], [200, 1, 200])
        assert await board.top(2) == [("m0", 400.0), ("m99", 99.0)]
        uc = fa.UniqueCounter(rc, "visitors")
        await uc.add("a", "b", at=0)
        await uc.add("b", "c", at=86400)
        assert await uc.merge_into("two-days", 0, 86400) == 3  # a one-slot transaction
        pages = fa.PageAnalytics(rc)
        await pages.track_many([(f"/p{i % 40}", f"user{i % 7}", 1_700_000_000 + i) for i in range(400)])
        assert (await pages.stats("/p3", at=1_700_000_400)).total == 10
        sessions = fa.SessionStore(rc)
        sid = await sessions.create({"a": 1}, user_id=7)
        assert await sessions.get(await sessions.rotate(sid)) == {"a": 1}
        assert await sessions.destroy_all_for(7) == 1
        stream = fa.EventStream(rc, "orders")
        assert len(await stream.add_many([{"n": i} for i in range(20)])) == 20
        worker = stream.consumer("g", "w", block=0.05)
        entries = await worker.read()
        assert len(entries) == 10 and await worker.ack(*entries)
        async with fa.TieredCache(rc, prefix="cc") as cache:  # L2 only: no tracking on a cluster client
            await cache.set_many({f"k{i}": i for i in range(10)})
            assert await cache.get_many(["k1", "k9", "x"]) == {"k1": 1, "k9": 9} and not cache.tracking

    _run(cluster, body, client_class)


def test_locks(cluster: ClusterHarness, client_class: Any) -> None:
    async def body(rc: Any) -> None:
        tokens = []
        for name in ["a", "b", "job:{1}", "zz"]:  # names landing on different nodes
            async with fa.Lock(rc, name, ttl=5) as held:
                tokens.append(held.fencing_token)
                assert await fa.fenced_write(rc, f"data:{name}", "v", held.fencing_token)
        holder = fa.Lock(rc, "w", ttl=30)
        await holder.acquire()
        waiter = asyncio.ensure_future(fa.Lock(rc, "w").acquire(timeout=10))
        await asyncio.sleep(0.3)
        await holder.release()
        assert await asyncio.wait_for(waiter, 5)  # no pub/sub on this client: short sleeps, not the 30 s ttl

    _run(cluster, body, client_class)
