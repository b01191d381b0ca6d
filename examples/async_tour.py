"""The asyncio patterns tour (docs/async_patterns.md), as a script that runs
(tests/test_examples.py runs it).

    python examples/async_tour.py       # starts a throwaway redis-server
"""

from __future__ import annotations

import asyncio
from typing import Any, List

import fastredis.asyncio
from fastredis.asyncio import (
    ActivityBitmap,
    Cart,
    Channel,
    CompositeLimiter,
    CounterSeries,
    DecayingLeaderboard,
    EventStream,
    FixedWindowLimiter,
    GeoIndex,
    Leaderboard,
    Lock,
    PageAnalytics,
    Presence,
    Redlock,
    SessionStore,
    SlidingWindowLimiter,
    TieredCache,
    TokenBucketLimiter,
    UniqueCounter,
    fenced_write,
)
from fastredis.server import RedisServer


async def tour(r: fastredis.asyncio.Redis, redlock_urls: List[str]) -> None:
    # --- rate limiting: one script per decision, never counted twice ---------
    per_second = FixedWindowLimiter(r, limit=10, window=1)
    per_hour = SlidingWindowLimiter(r, limit=1000, window=3600)
    both = CompositeLimiter([per_second, per_hour])
    decisions = await asyncio.gather(*(both.hit("user:7") for _ in range(12)))
    assert sum(d.allowed for d in decisions) == 10              # 100 tasks or 12: exact
    bucket = TokenBucketLimiter(r, rate=5, capacity=10, local=True)  # local: denied keys cost no round trip
    assert (await bucket.hit("ip:1", cost=10)).allowed

    # --- caching: async single-flight, lease, XFetch, tags, tracking --------
    async with TieredCache(r, prefix="cache", ttl=3600) as cache:
        loads: List[int] = []

        async def load_user() -> dict:                           # an async loader, run once
            loads.append(1)
            await asyncio.sleep(0.01)
            return {"id": 42, "name": "Ann"}

        users = await asyncio.gather(*(cache.get_or_set("user:42", load_user) for _ in range(50)))
        assert users == [{"id": 42, "name": "Ann"}] * 50 and loads == [1]
        assert await cache.get("user:42") == users[0]             # an in-process L1 hit

        @cache.cached(ttl=60, tags=["posts"])
        async def post(pid: int) -> dict:
            return {"id": pid}

        assert await post(1) == {"id": 1}
        await cache.invalidate_tags("posts")                      # reaches every process's L1

    # --- locks: pub/sub wake-up, fencing, renewal as a task -----------------
    async with Lock(r, "report", ttl=5, auto_renew=True) as held:
        assert await fenced_write(r, "report:data", "v1", held.fencing_token)
        waiter = asyncio.ensure_future(Lock(r, "report").acquire(timeout=5))
        await asyncio.sleep(0.05)                                 # the waiter sleeps on pub/sub, no polling
    assert await waiter                                           # woken by the release
    redlock = Redlock(redlock_urls, "job", ttl=10)
    async with redlock:
        assert redlock.validity > 0
    await redlock.aclose()

    # --- leaderboards and analytics ------------------------------------------
    board = Leaderboard(r, "weekly")
    await board.add_many(["ann", "bob", "cy"], [10, 30, 20])
    assert await board.top(2) == [("bob", 30.0), ("cy", 20.0)]
    hot = DecayingLeaderboard(r, "posts", half_life=3600)
    await hot.incr("a", 8, at=0)
    await hot.incr("b", 3, at=7200)
    assert await hot.top(2, at=7200) == [("b", 3.0), ("a", 2.0)]
    visitors = UniqueCounter(r, "visitors", bucket="day")
    await visitors.add("ann", "bob", at=0)
    await visitors.add("ann", at=86400)
    assert await visitors.count(0, 86400) == 2                    # a union, never a sum
    pages = PageAnalytics(r)
    await pages.track_many([("/home", "ann"), ("/home", "bob")])
    assert (await pages.stats("/home")).unique == 2
    logins = ActivityBitmap(r, "logins")
    await logins.mark(1, "2024-01-01")
    assert await logins.count("2024-01-01") == 1
    series = CounterSeries(r, "api", bucket=60)
    assert await series.incr("GET /") == 1

    # --- sessions, carts, presence, geo ---------------------------------------
    sessions = SessionStore(r, ttl=1800)
    sid = await sessions.create({"theme": "dark"}, user_id="ann")
    sid = await sessions.rotate(sid)                              # at login: defeats session fixation
    assert await sessions.get(sid) == {"theme": "dark"}
    cart = Cart(r)
    await cart.add("anon-1", "apple", 2)
    await cart.merge("anon-1", "ann")
    assert await cart.items("ann") == {"apple": 2}
    lobby = Presence(r, "lobby", timeout=30)
    assert await lobby.heartbeat("ann")
    assert await lobby.online() == {"ann"}
    shops = GeoIndex(r, "shops")
    await shops.add("louvre", 2.3376, 48.8606)
    assert [m for m, _ in await shops.near(2.3522, 48.8566, 5)] == ["louvre"]

    # --- messaging: async iterators that survive killed connections ---------
    news = Channel(r, "news")
    async with news.subscribe(children=True) as sub:              # resubscribes after CLIENT KILL
        await news.child("sport").publish({"score": 3})
        async for message in sub:
            assert (message.channel, message.data) == ("chan:news:sport", {"score": 3})
            break
    orders = EventStream(r, "orders")
    await orders.add({"order": 1})
    async with orders.consumer("billing", "worker-1", block=0.1) as worker:
        async for entry in worker:                                # own pending, claims, then new entries
            assert entry.fields == {"order": 1}
            await worker.ack(entry)
            worker.stop()


async def _main() -> None:
    servers = [RedisServer() for _ in range(4)]
    try:
        async with fastredis.asyncio.Redis(port=servers[0].port) as r:
            await tour(r, [s.url for s in servers[1:]])
    finally:
        for s in servers:
            s.stop()
    print("async tour ok")


def main(*_: Any) -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
