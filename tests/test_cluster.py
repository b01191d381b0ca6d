"""Every pattern on a 3-master Redis Cluster (started by the test): every key a
script touches is in KEYS and keys of one operation share a hash tag, so the
scripts run unchanged on a cluster client."""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest
from redis.cluster import RedisCluster as ClusterClient

import fastredis
from fastredis.server import RedisCluster

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def rc() -> Iterator[Any]:
    if os.environ.get("FASTREDIS_REDIS_URL"):
        pytest.skip("needs private redis-server processes; FASTREDIS_REDIS_URL is set")
    with RedisCluster(3) as cluster:
        client = ClusterClient(host=cluster.host, port=cluster.ports[0])
        yield client
        client.close()


def test_cluster_has_three_masters(rc: Any) -> None:
    assert len(rc.get_primaries()) == 3


def test_limiters_count_exactly_across_slots(rc: Any) -> None:
    lim = fastredis.FixedWindowLimiter(rc, limit=3, window=60, prefix="rlc")
    keys = [f"user{i}" for i in range(60)]
    slots = {rc.keyslot(lim._parts[0]._state_key(k)) for k in keys}
    nodes = {rc.get_node_from_key(lim._parts[0]._state_key(k)).name for k in keys}
    assert len(slots) > 10 and len(nodes) == 3  # the batch really spans the cluster
    decisions = lim.hit_many(keys * 4)
    assert [d.allowed for d in decisions] == [True] * 180 + [False] * 60
    assert [d.remaining for d in decisions[:60]] == [2] * 60
    for cls in (fastredis.SlidingWindowLimiter, fastredis.SlidingWindowCounterLimiter):
        assert cls(rc, 1, 60, prefix="rlc2").hit("k").allowed
    assert fastredis.TokenBucketLimiter(rc, rate=1, capacity=1, prefix="rlc3").hit_many(["a", "a"])[1].allowed is False
    both = fastredis.CompositeLimiter([fastredis.FixedWindowLimiter(rc, 1, 60, prefix="c1"), fastredis.SlidingWindowLimiter(rc, 5, 60, prefix="c2")])
    assert [d.allowed for d in both.hit_many(["x", "y", "x"])] == [True, True, False]


def test_locks_and_fencing(rc: Any) -> None:
    with fastredis.Lock(rc, "job", ttl=5) as held:
        assert held.fencing_token > 0
        assert fastredis.fenced_write(rc, "out", "v", held.fencing_token)


def test_leaderboards_and_analytics(rc: Any) -> None:
    board = fastredis.Leaderboard(rc, "weekly")
    board.add_many(["a", "b"], [2, 1])
    assert board.top(1) == [("a", 2.0)]
    hot = fastredis.DecayingLeaderboard(rc, "hot", half_life=60)
    hot.incr_many(["a", "b", "a"], [1, 1, 1], at=1000)
    assert [m for m, _ in hot.top(2, at=1000)] == ["a", "b"]
    uc = fastredis.UniqueCounter(rc, "visitors")
    uc.add("u1", "u2", at=0)
    uc.add("u2", at=86400)
    assert uc.count(0, 86400) == 2
    pages = fastredis.PageAnalytics(rc)
    pages.track("/", "ann")
    assert pages.stats("/").unique == 1
    bits = fastredis.ActivityBitmap(rc, "logins")
    bits.mark(3, "2026-01-01")
    bits.mark(3, "2026-01-02")
    assert bits.active_in_all(["2026-01-01", "2026-01-02"]) == 1
    series = fastredis.CounterSeries(rc, "signups")
    assert series.incr("eu", 2) == 2


def test_sessions_carts_presence_geo_streams_cache(rc: Any) -> None:
    sessions = fastredis.SessionStore(rc)
    sid = sessions.create({"a": 1}, user_id=7)
    assert sessions.get(sessions.rotate(sid)) == {"a": 1}
    assert sessions.destroy_all_for(7) == 1
    cart = fastredis.Cart(rc)
    cart.add("owner", "apple", 2)
    assert cart.items("owner") == {"apple": 2}
    room = fastredis.Presence(rc, "room")
    room.heartbeat("ann")
    assert room.online() == {"ann"}
    geo = fastredis.GeoIndex(rc, "shops")
    geo.add("a", 2.35, 48.85)
    assert geo.near(2.35, 48.85, 1)[0][0] == "a"
    stream = fastredis.EventStream(rc, "orders")
    stream.add({"n": 1})
    worker = stream.consumer("billing", "w1", block=0.05)
    entries = worker.read()
    assert [e.fields["n"] for e in entries] == [1]
    worker.ack(entries[0])
    assert stream.pending("billing").count == 0
    cache = fastredis.TieredCache(rc, prefix="cc")
    try:
        cache.set("k", {"v": 1})
        assert cache.get("k") == {"v": 1}  # L2 works; L1 tracking needs a single-node client
    finally:
        cache.close()
