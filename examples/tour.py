"""The README's API tour, line for line (tests/test_examples.py checks that
the README's block and this file's code are the same, and runs both).

    python examples/tour.py            # starts its own throwaway redis-servers
"""

import time

import fastredis
from fastredis import (
    ActivityBitmap, Cart, Channel, CompositeLimiter, CounterSeries, DecayingLeaderboard, EventStream,
    FixedWindowLimiter, GeoIndex, Leaderboard, Lock, LuaScript, PageAnalytics, Presence, Redlock,
    SessionStore, SlidingWindowCounterLimiter, SlidingWindowLimiter, TieredCache, TokenBucketLimiter,
    UniqueCounter, fenced_write,
)
from fastredis.server import RedisServer

# Throwaway redis-servers on free ports (no persistence; stopped at the end), so
# this runs as pasted. With your own server: r = fastredis.Redis(host="localhost", port=6379),
# the same arguments as redis.Redis.
servers = [RedisServer() for _ in range(4)]
r = servers[0].client()                              # a fastredis.Redis
redlock_nodes = [s.client() for s in servers[1:]]   # Redlock wants independent masters

# --- the drop-in client -------------------------------------------------
with r.pipeline(transaction=False) as p:
    for i in range(1000):
        p.set(f"user:{i}", i)
    assert p.execute() == [True] * 1000

p = r.pipeline(transaction=False)
p.batch("SET", ["a", "b", "c"], [1.5, 2.5, 3.5])           # one C loop, lists or numpy
p.batch("ZADD", "board", [10, 20, 30], ["ann", "bob", "cy"])
assert p.execute() == [True, True, True, 1, 1, 1]

incr_by = LuaScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
assert incr_by(r, keys=["n"], args=[5]) == 5                # EVALSHA, reloaded on NOSCRIPT

# --- caching ------------------------------------------------------------
with TieredCache(r, prefix="cache", ttl=3600) as cache:
    user = cache.get_or_set("user:42", lambda: {"id": 42, "name": "Ann"})  # single-flight + lease + XFetch
    assert cache.get("user:42") == user                       # now an in-process L1 hit
    cache.set("post:1", {"title": "hi"}, tags=["posts"])
    cache.invalidate_tags("posts")                            # O(1), reaches every process's L1
    assert cache.get("post:1") is None

    @cache.cached(ttl=60)
    def square(x: int) -> int:
        return x * x

    assert square(7) == 49

# --- rate limiting --------------------------------------------------------
decision = SlidingWindowLimiter(r, limit=100, window=60).hit("user:42")
assert decision.allowed and decision.remaining == 99      # Decision(allowed, limit, remaining, retry_after, reset_after)
assert FixedWindowLimiter(r, limit=10, window=1).hit("ip:1").allowed
assert SlidingWindowCounterLimiter(r, limit=1000, window=3600).hit("user:42", cost=5).allowed
bucket = TokenBucketLimiter(r, rate=10, capacity=20)      # 10 tokens/s, bursts of 20
assert all(d.allowed for d in bucket.hit_many(["a", "b", "a"]))
both = CompositeLimiter([FixedWindowLimiter(r, 10, 1), FixedWindowLimiter(r, 1000, 3600)])
assert both.hit("api-key").allowed                        # 10/s AND 1000/h, nothing consumed unless both admit

# --- leaderboards and analytics --------------------------------------------
board = Leaderboard(r, "weekly")
board.add_many(["ann", "bob", "cy"], [30, 20, 10])
assert board.top(2) == [("ann", 30.0), ("bob", 20.0)] and board.rank("cy") == 2

trending = DecayingLeaderboard(r, "trending", half_life=3600)
trending.incr("post:1", 8, at=0)
trending.incr("post:2", 3, at=7200)
top = trending.top(2, at=7200)                            # post:1 decayed to 2.0 after two half-lives
assert [m for m, _ in top] == ["post:2", "post:1"]

visitors = UniqueCounter(r, "visitors", bucket="day")
visitors.add("u1", "u2", at=0)
visitors.add("u2", "u3", at=86400)
assert visitors.count(0, 86400) == 3                      # a union of days (PFCOUNT k1 k2), never a sum

pages = PageAnalytics(r, active_window=300)
t0 = time.time() - 240
for minute in range(5):
    pages.track("/home", "ann", at=t0 + 60 * minute)       # the same user, five minutes
assert pages.stats("/home").active == 1                    # counted once (the seed counted 5)

days = ActivityBitmap(r, "logins")
days.mark(7, "2026-11-24")
days.mark(7, "2026-11-25")
assert days.retention("2026-11-24", "2026-11-25") == 1.0

series = CounterSeries(r, "signups", bucket=60, retention=86400)
minute = time.time() // 60 * 60
series.incr("eu", 3, at=minute)
assert series.range("eu", minute - 60, minute + 60) == [(minute - 60, 0), (minute, 3), (minute + 60, 0)]

# --- locks ---------------------------------------------------------------
with Lock(r, "report", ttl=10) as held:
    assert fenced_write(r, "report:data", "v1", held.fencing_token)   # storage rejects older tokens
with Redlock(redlock_nodes, "nightly-job", ttl=10) as job:
    assert job.validity > 0                                # trust it for validity seconds, no longer

# --- sessions, carts, presence, geo -----------------------------------------
sessions = SessionStore(r, ttl=1800)
sid = sessions.create({"cart": []}, user_id=42)
sessions.update(sid, theme="dark")
new_sid = sessions.rotate(sid)                             # at login: the old id stops working
assert sessions.get(sid) is None and sessions.get(new_sid)["theme"] == "dark"

carts = Cart(r)
carts.add("anon-1", "apple", 2)
carts.add("user-42", "apple", 1)
carts.merge("anon-1", "user-42")                           # atomic: quantities add
assert carts.items("user-42") == {"apple": 3}

room = Presence(r, "room:1", timeout=30)
room.heartbeat("ann")
assert room.online() == {"ann"}

places = GeoIndex(r, "shops")
places.add("louvre", 2.3376, 48.8606)
places.add("eiffel", 2.2945, 48.8584)
assert [m for m, _ in places.near(2.3376, 48.8606, 5, unit="km")] == ["louvre", "eiffel"]

# --- pub/sub and streams ----------------------------------------------------
got: list = []
with Channel(r, "news") as news:
    sub = news.subscribe(got.append)                       # background thread, resubscribes after a kill
    news.publish({"headline": "hello"})
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    sub.close()
assert got and got[0].data == {"headline": "hello"}

events = EventStream(r, "orders")
events.add({"order": 1})
worker = events.consumer("billing", "worker-1", block=0.1)
for entry in worker.read():                               # claims stuck entries, dead-letters poison ones
    worker.ack(entry)
assert events.pending("billing").count == 0

for s in servers:
    s.stop()
print("tour OK")
