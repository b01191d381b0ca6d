"""The asyncio twins of the single-round-trip patterns (leaderboards,
analytics, sessions, carts, presence, geo) against real servers, on
fastredis.asyncio.Redis and redis.asyncio.Redis: every operation gives what
the sync twin gives; SCRIPT FLUSH, CLIENT KILL and a restart are survived;
wrong clients and wrong arguments are refused the same way."""

from __future__ import annotations

import asyncio
import math
from typing import Any, Callable, List, Tuple

import pytest
import redis
import redis.asyncio
from _async_patterns import aclient, akind, arun  # noqa: F401

import fastredis
import fastredis.asyncio as fa
from fastredis.exceptions import OutcomeUnknownError

# (class name, constructor args, constructor kwargs, [(method, args, kwargs), ...])
Op = Tuple[str, tuple, dict]
SCENARIOS: List[Tuple[str, tuple, dict, List[Op]]] = [
    ("Leaderboard", ("weekly",), {}, [
        ("add_many", (["ann", "bob", "cy", "dee"], [10, 30, 20, 5]), {}),
        ("top", (2,), {}), ("rank", ("bob",), {}), ("rank", ("zed",), {}), ("score", ("cy",), {}),
        ("page", (1, 2), {}), ("around", ("cy", 1), {}), ("incr", ("dee", 100), {}),
        ("incr_many", (["a", "b", "a"], [1, 2, 3]), {}), ("remove", ("dee", "zed"), {}), ("count", (), {}),
        ("add", (b"\xff:*", 7.5), {}), ("top", (10,), {}),
    ]),
    ("DecayingLeaderboard", ("hot",), {"half_life": 3600}, [
        ("incr", ("a", 8), {"at": 0}), ("incr", ("b", 3), {"at": 7200}),
        ("incr_many", (["c", "a", "c"], [1, 1, 1]), {"at": [3600, 3600, 7200]}),
        ("top", (3,), {"at": 7200}), ("score", ("a",), {"at": 3600}), ("rank", ("a",), {}),
        ("around", ("a", 1), {"at": 7200}), ("page", (0, 2), {"at": 7200}), ("prune", (2.5,), {"at": 7200}),
        ("count", (), {}), ("remove", ("b",), {}),
    ]),
    ("UniqueCounter", ("visitors",), {"bucket": "day"}, [
        ("add", ("ann", "bob"), {"at": 0}), ("add", ("ann", "cy"), {"at": 86400}), ("add", (), {}),
        ("count", (0, 86400), {}), ("count", (0, 0), {}), ("merge_into", ("both", 0, 86400), {}),
    ]),
    ("PageAnalytics", (), {"active_window": 300, "bucket": 60}, [
        ("track", ("/a", "ann"), {"at": 1_900_000_000}), ("track", ("/a", "bob"), {"at": 1_900_000_030}),
        ("track_many", ([("/a", "cy", 1_900_000_050), ("/b", "ann", 1_900_000_050)],), {}),
        ("stats", ("/a",), {"at": 1_900_000_060}), ("stats", ("/b",), {"at": 1_900_000_900}),
    ]),
    ("ActivityBitmap", ("logins",), {}, [
        ("mark", (1, "2024-01-01"), {}), ("mark", (2, "2024-01-01"), {}), ("mark", (2, "2024-01-02"), {}),
        ("mark", (2, "2024-01-02"), {}), ("is_active", (2, "2024-01-02"), {}), ("count", ("2024-01-01",), {}),
        ("active_in_all", (["2024-01-01", "2024-01-02"],), {}), ("active_in_any", (["2024-01-01", "2024-01-02"],), {}),
        ("retention", ("2024-01-01", "2024-01-02"), {}),
    ]),
    ("CounterSeries", ("api",), {"bucket": 60, "retention": 3600}, [
        ("incr", ("GET /",), {"at": 1_900_000_000}), ("incr", ("GET /", 2), {"at": 1_900_000_120}),
        ("range", ("GET /", 1_900_000_000 // 60 * 60, 1_900_000_120), {}),
    ]),
    ("Cart", (), {"max_qty": 10}, [
        ("add", ("u", "apple"), {}), ("add", ("u", "apple", 4), {}), ("set_qty", ("u", "pear", 7), {}),
        ("items", ("u",), {}), ("count", ("u",), {}), ("remove", ("u", "pear"), {}), ("add", ("anon", "apple", 9), {}),
        ("merge", ("anon", "u"), {}), ("items", ("u",), {}), ("clear", ("u",), {}), ("items", ("u",), {}),
    ]),
    ("Presence", ("lobby",), {"timeout": 30}, [
        ("heartbeat", ("ann",), {"at": 1000.0}), ("heartbeat", ("bob",), {"at": 1010.0}),
        ("heartbeat", ("ann",), {"at": 1011.0}), ("online", (), {"at": 1020.0}), ("count", (), {"at": 1045.0}),
        ("is_online", ("ann",), {"at": 1020.0}), ("leave", ("ann",), {"at": 1021.0}), ("online", (), {"at": 1022.0}),
    ]),
    ("GeoIndex", ("shops",), {}, [
        ("add_many", ([("louvre", 2.3376, 48.8606), ("eiffel", 2.2945, 48.8584)],), {}),
        ("add", ("paris", 2.3522, 48.8566), {}), ("near", (2.3522, 48.8566, 10), {}), ("near_member", ("louvre", 5), {}),
        ("near_member", ("nowhere", 5), {}), ("within_box", (2.3522, 48.8566, 20, 20), {}), ("position", ("paris",), {}),
        ("distance", ("louvre", "eiffel"), {}), ("distance", ("louvre", "nowhere"), {}), ("remove", ("paris", "x"), {}),
        ("count", (), {}),
    ]),
]


def _same(a: Any, b: Any) -> bool:
    """Equal, with floats compared to 1e-9 (decayed scores, distances)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and type(a) is type(b) and len(a) == len(b):
        return all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b) and type(a) is type(b)


@pytest.mark.parametrize("name, args, kwargs, ops", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_same_results_as_the_sync_twin(redis_url: str, akind: str, name: str, args: tuple, kwargs: dict, ops: List[Op]) -> None:
    sync_client = fastredis.Redis.from_url(redis_url)
    sync_client.flushdb()
    sync_obj = getattr(fastredis, name)(sync_client, *args, **kwargs, prefix="sync")
    want = [getattr(sync_obj, method)(*a, **kw) for method, a, kw in ops]

    async def play() -> List[Any]:
        async with aclient(akind, redis_url) as r:
            obj = getattr(fa, name)(r, *args, **kwargs, prefix="async")
            return [await getattr(obj, method)(*a, **kw) for method, a, kw in ops]

    got = arun(play())
    for (method, _, _), g, w in zip(ops, got, want):
        assert _same(g, w), (name, method, g, w)
    sync_client.close()


def test_sessions_same_behaviour(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            await r.flushdb()
            store = fa.SessionStore(r, ttl=60)
            sync_store = fastredis.SessionStore(redis.Redis.from_url(redis_url), ttl=60)
            sid = await store.create({"cart": [1, 2]}, user_id=42)
            assert sync_store.get(sid) == await store.get(sid) == {"cart": [1, 2]}  # one format, both twins
            assert await store.update(sid, theme="dark") and await store.touch(sid)
            assert await store.delete_fields(sid, "cart")
            new = await store.rotate(sid)
            assert await store.get(sid) is None and await store.get(new) == {"theme": "dark"}
            assert await store.get("not-a-session-id") is None and not await store.destroy("0" * 16 + "." + "x" * 32)
            await store.create(user_id=42)
            assert await store.destroy_all_for(42) == 2 and sync_store.destroy_all_for(42) == 0
            other = await store.create()
            assert await store.destroy(other) and await store.get(other) is None
            with pytest.raises(TypeError):
                await store.create(["not", "a", "mapping"])  # type: ignore[arg-type]

    arun(main())


def test_presence_events_channel(redis_url: str, akind: str) -> None:
    async def main() -> List[Any]:
        async with aclient(akind, redis_url) as r:
            room = fa.Presence(r, "lobby", events=True)
            events = room.events_channel()
            assert isinstance(events, fa.Channel)
            async with events.subscribe() as sub:
                await room.heartbeat("ann")
                await room.leave("ann")
                got = [await sub.get(5), await sub.get(5)]
            return [(m.data["event"], m.data["user"]) for m in got]

    assert arun(main()) == [("join", "ann"), ("leave", "ann")]


def test_script_flush_kill_and_restart(private_server: Any, akind: str) -> None:
    async def main() -> None:
        r = aclient(akind, private_server.port)
        killer = redis.Redis(port=private_server.port)
        try:
            lb = fa.Leaderboard(r, "g")
            hot = fa.DecayingLeaderboard(r, "h", half_life=60)
            pa = fa.PageAnalytics(r)
            assert await lb.incr("a", 1) == 1.0
            await r.script_flush()
            assert await lb.incr("a", 1) == 2.0
            await hot.incr_many([f"m{i}" for i in range(20_001)], [1.0] * 20_001, at=0)  # 3 chunks in one pipeline
            await r.script_flush()
            await hot.incr_many(["m0"] * 3 + [f"m{i}" for i in range(20_001)], [1.0] * 20_004, at=0)
            assert await hot.score("m0", at=0) == pytest.approx(5.0)
            await r.script_flush()
            await pa.track_many([("/a", "u1"), ("/b", "u2")])
            assert (await pa.stats("/a")).total == 1
            killer.client_kill_filter(_type="normal", skipme=True)
            await asyncio.sleep(0.05)
            await _tolerating_unknown(akind, lambda: lb.add("b", 5))
            assert await lb.top(1) == [("b", 5.0)]
            private_server.restart()
            await _tolerating_unknown(akind, lambda: lb.count(), retries=50)
            assert await lb.count() == 0 and await lb.incr("a", 5) == 5.0
        finally:
            await r.aclose()
            killer.close()

    arun(main())


async def _tolerating_unknown(akind: str, op: Callable[[], Any], retries: int = 1) -> Any:
    """``op()``; a write meeting a connection the server already closed may be
    outcome-unknown (plain redis.asyncio cannot tell before writing): once more."""
    for _ in range(retries + 1):
        try:
            return await op()
        except (OutcomeUnknownError, redis.ConnectionError, redis.TimeoutError):
            await asyncio.sleep(0.05)
    return await op()


def test_accepted_clients_and_argument_errors(redis_url: str) -> None:
    sync_client = redis.Redis.from_url(redis_url)
    aclient_ = redis.asyncio.Redis.from_url(redis_url)
    for name, args in [("Leaderboard", ("g",)), ("UniqueCounter", ("v",)), ("PageAnalytics", ()), ("Cart", ()),
                       ("SessionStore", ()), ("GeoIndex", ("g",)), ("Presence", ("r",)), ("EventStream", ("s",)),
                       ("Channel", ("c",)), ("Lock", ("l",)), ("TieredCache", ()), ("CounterSeries", ("c",)),
                       ("ActivityBitmap", ("a",)), ("DecayingLeaderboard", ("d",))]:
        kwargs = {"half_life": 60} if name == "DecayingLeaderboard" else {}
        with pytest.raises(TypeError, match=f"fastredis.{name}"):
            getattr(fa, name)(sync_client, *args, **kwargs)
        with pytest.raises(TypeError, match=f"fastredis.asyncio.{name}"):
            getattr(fastredis, name)(aclient_, *args, **kwargs)
        with pytest.raises(TypeError, match="needs"):
            getattr(fa, name)("redis://localhost", *args, **kwargs)

    async def main() -> None:
        lb = fa.Leaderboard(aclient_, "g")
        with pytest.raises(TypeError):
            await lb.top("3")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await lb.top(-1)
        with pytest.raises(TypeError):
            await fa.Lock(aclient_, "x").acquire(timeout="1")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            fa.Lock(aclient_, "x", ttl="10")  # type: ignore[arg-type]
        await aclient_.aclose()

    arun(main())
    sync_client.close()
