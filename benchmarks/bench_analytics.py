"""Analytics benchmarks, against the seed-style per-event redis-py calls in the same run.

Run: python -m pytest benchmarks/bench_analytics.py --benchmark-only --benchmark-group-by=group
Figures (events/s = 10k / mean):
- group "track-10k": PageAnalytics.track_many of 10k events over 20 pages (one round trip)
  vs the seed's tracker per event with redis-py (INCR, PFADD, SADD minute set, EXPIRE:
  4 commands, one round trip each). Target: *_many >= 100k events/s.
- group "track-single": one PageAnalytics.track (one round trip) vs the seed's 4 calls.
- group "stats": PageAnalytics.stats (one round trip) vs the seed's GET + PFCOUNT + 5 SCARDs.
- group "unique-add-10k": UniqueCounter.add of 10k ids vs redis-py PFADD of the same ids.
"""

from __future__ import annotations

import time

import pytest
import redis

from fastredis.patterns.analytics import PageAnalytics, UniqueCounter

EVENTS = [(f"/page/{i % 20}", f"user{i * 7919 % 5000}") for i in range(10_000)]


def _seed_track(c: redis.Redis, page: str, user: str) -> None:
    minute = int(time.time() // 60)
    c.incr(f"page:{page}:views")
    c.pfadd(f"page:{page}:uniques", user)
    c.sadd(f"active:{minute}", user)
    c.expire(f"active:{minute}", 300)


@pytest.mark.benchmark(group="track-10k")
def test_track_many(benchmark, fast):
    pa = PageAnalytics(fast)
    benchmark(pa.track_many, EVENTS)
    assert pa.stats("/page/0").unique > 0


@pytest.mark.benchmark(group="track-10k")
def test_seed_track_per_event(benchmark, plain):
    def run() -> None:
        for page, user in EVENTS:
            _seed_track(plain, page, user)

    benchmark.pedantic(run, rounds=2, iterations=1)


@pytest.mark.benchmark(group="track-single")
def test_track_single(benchmark, fast):
    pa = PageAnalytics(fast)
    benchmark(pa.track, "/one", "ann")


@pytest.mark.benchmark(group="track-single")
def test_seed_track_single(benchmark, plain):
    benchmark(_seed_track, plain, "/one", "ann")


@pytest.mark.benchmark(group="stats")
def test_stats(benchmark, fast):
    pa = PageAnalytics(fast)
    pa.track("/s", "ann")
    assert benchmark(pa.stats, "/s").total >= 1


@pytest.mark.benchmark(group="stats")
def test_seed_stats(benchmark, plain):
    def run() -> int:
        minute = int(time.time() // 60)
        plain.get("page:/s:views")
        plain.pfcount("page:/s:uniques")
        return sum(plain.scard(f"active:{minute - k}") for k in range(5))  # the seed's wrong sum

    benchmark(run)


@pytest.mark.benchmark(group="unique-add-10k")
def test_unique_add(benchmark, fast):
    uc = UniqueCounter(fast, "bench", bucket="day")
    ids = [u for _, u in EVENTS]
    benchmark(lambda: uc.add(*ids))


@pytest.mark.benchmark(group="unique-add-10k")
def test_redispy_pfadd(benchmark, plain):
    ids = [u for _, u in EVENTS]
    benchmark(plain.pfadd, "bench-raw-hll", *ids)
