"""Every pattern batch method on a cluster client, fastredis's and redis-py's
(one 3-master cluster for the module): batches whose keys span many slots go
out as one cluster pipeline, and scripts flushed on every node are reloaded."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from redis.cluster import RedisCluster as PlainCluster

import fastredis
from fastredis.server import RedisCluster as ClusterHarness

pytestmark = pytest.mark.cluster


@pytest.fixture(params=["fastredis", "redis-py"])
def client(request: pytest.FixtureRequest, cluster: ClusterHarness) -> Iterator[Any]:
    cls = fastredis.RedisCluster if request.param == "fastredis" else PlainCluster
    c = cls(host=cluster.host, port=cluster.ports[0])
    c.flushall()
    c.script_flush()
    yield c
    c.close()


def test_tiered_cache_batches(client: Any) -> None:
    with fastredis.TieredCache(client, prefix="tc") as cache:
        data = {f"k{i}": {"v": i} for i in range(300)}
        cache.set_many(data)
        assert cache.get_many(list(data) + ["missing"]) == data
        client.script_flush()  # every node: the batch reloads and re-runs only the scripts
        assert cache.warm(["k1", "new1", "new2"], loader=lambda k: k.upper()) == 2
        assert cache.get_many(["new1", "k2"]) == {"new1": "NEW1", "k2": {"v": 2}}
        assert cache.warm({"w": 1}) == 1 and cache.get("w") == 1
    # Several caches (prefixes) spread over slots, each one slot.
    caches = [fastredis.TieredCache(client, prefix=f"shard{i}") for i in range(6)]
    try:
        slots = {client.keyslot(c._vkey("x")) for c in caches}
        assert len(slots) == 6
        for i, c in enumerate(caches):
            c.set_many({"x": i})
        assert [c.get_many(["x"]) for c in caches] == [{"x": i} for i in range(6)]
    finally:
        for c in caches:
            c.close()


def test_leaderboards(client: Any) -> None:
    board = fastredis.Leaderboard(client, "weekly")
    board.add_many([f"m{i}" for i in range(100)], list(range(100)))
    board.incr_many(["m0", "m1", "m0"], [200, 1, 200])
    assert board.top(2) == [("m0", 400.0), ("m99", 99.0)]
    hot = fastredis.DecayingLeaderboard(client, "hot", half_life=3600)
    members = [f"u{i}" for i in range(25_000)]  # above one 10k chunk: three scripts in one pipeline
    hot.incr_many(members, [1.0] * len(members), at=1_000_000)
    hot.incr_many(["u7"], [5.0], at=1_000_000)
    assert hot.count() == 25_000
    assert hot.top(1, at=1_000_000)[0][0] == "u7"
    client.script_flush()
    hot.incr_many(members[:20_001], [1.0] * 20_001, at=1_000_000)
    assert hot.score("u20000", at=1_000_000) == pytest.approx(2.0)


def test_page_analytics_and_counters(client: Any) -> None:
    pages = fastredis.PageAnalytics(client)
    events = [(f"/p{i % 40}", f"user{i % 7}", 1_700_000_000 + i) for i in range(400)]
    pages.track_many(events)
    stats = pages.stats("/p3", at=1_700_000_400)
    assert stats.total == 10 and stats.unique == 7
    client.script_flush()
    pages.track_many([("/p3", "newbie", 1_700_000_401)])
    assert pages.stats("/p3", at=1_700_000_401).unique == 8


def test_limiters_hit_many_across_slots(client: Any) -> None:
    keys = [f"user{i}" for i in range(300)]
    for lim in (
        fastredis.FixedWindowLimiter(client, 2, 3600, prefix="fw"),
        fastredis.SlidingWindowLimiter(client, 2, 3600, prefix="sw"),
        fastredis.SlidingWindowCounterLimiter(client, 2, 3600, prefix="swc"),
        fastredis.TokenBucketLimiter(client, rate=0.001, capacity=2, prefix="tb"),
        fastredis.CompositeLimiter([fastredis.FixedWindowLimiter(client, 2, 3600, prefix="c1"),
                                    fastredis.SlidingWindowLimiter(client, 5, 60, prefix="c2")]),
    ):
        decisions = lim.hit_many(keys * 3)
        assert [d.allowed for d in decisions] == [True] * 600 + [False] * 300, lim
    client.script_flush()
    assert fastredis.FixedWindowLimiter(client, 2, 3600, prefix="fw").hit_many(["user1", "fresh"])[1].allowed


def test_stream_batches(client: Any) -> None:
    stream = fastredis.EventStream(client, "orders")
    ids = stream.add_many([{"n": i} for i in range(50)])
    assert len(ids) == 50
    stream.ensure_group("g")
    assert stream.pending("g").count == 0


def test_unique_counter_merge_is_a_one_slot_transaction(client: Any) -> None:
    uc = fastredis.UniqueCounter(client, "visitors")
    uc.add("a", "b", at=0)
    uc.add("b", "c", at=86400)
    assert uc.merge_into("two-days", 0, 86400) == 3
