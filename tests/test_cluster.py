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
    lim = fastredis.FixedWindowLimiter(rc, limit=3, window=3600, prefix="rlc")
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
    both = fastredis.CompositeLimiter([fastredis.FixedWindowLimiter(rc, 1, 3600, prefix="c1"), fastredis.SlidingWindowLimiter(rc, 5, 3600, prefix="c2")])
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


def test_session_destroy_all_for_on_a_cluster(rc: Any) -> None:
    """Session ids carry a random per-user tag kept server-side (SECURITY.md):
    the user's tag key and their sessions live in different slots, and
    destroy_all_for still removes every session of the user, also ones of the
    previous id scheme, and nothing else."""
    from test_session_store import _attack, _legacy_session

    for cls in (fastredis.RedisCluster, ClusterClient):
        client = cls(host=rc.get_default_node().host, port=rc.get_default_node().port)
        client.flushall()
        store = fastredis.SessionStore(client, prefix="sc", ttl=60)
        users = [f"user{i}" for i in range(12)]
        sids = {u: [store.create({"i": i}, user_id=u) for i in range(3)] for u in users}
        nodes = set()
        for u, ids in sids.items():
            keys = [store.keys.tagged(*sid.split(".")) for sid in ids]
            assert len({client.keyslot(k) for k in keys}) == 1  # one slot per user
            nodes.add(client.get_node_from_key(keys[0]).name)
        assert len(nodes) == 3  # the users spread over the three masters
        apart = [u for u in users if client.keyslot(store._user_key(u)) != client.keyslot(store.keys.tagged(*sids[u][0].split(".")))]
        assert len(apart) >= 11  # the tag key sits in its own slot (the same one by a 1/16384 chance)
        assert all(_attack(sid, prefix="sc", candidates=1000) == [] for sid in sids["user7"])
        legacy = _legacy_session(client, store, "user0", {"old": True})
        anon = store.create({"a": 1})
        assert store.get(legacy) == {"old": True}
        assert store.destroy_all_for("user0") == 4
        assert all(store.get(s) is None for s in sids["user0"] + [legacy])
        assert all(store.get(s) is not None for u in users[1:] for s in sids[u])
        assert store.get(anon) == {"a": 1}
        assert sum(store.destroy_all_for(u) for u in users) == 33
        client.close()


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
