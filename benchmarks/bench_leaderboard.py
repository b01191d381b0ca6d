"""Leaderboard benchmarks, against redis-py + hiredis in the same run.

Run: python -m pytest benchmarks/bench_leaderboard.py --benchmark-only --benchmark-group-by=group
Figures (events/s = N / mean):
- group "incr_many-100k": DecayingLeaderboard.incr_many of 100k events (numpy weights and
  times, 1k members) vs a redis-py pipeline of 100k ZINCRBY. Target >= 10x, and >= 100k events/s.
- group "add_many-100k": Leaderboard.add_many of 100k (numpy) vs a redis-py pipeline of ZADD.
- group "top100": DecayingLeaderboard.top(100) with decayed scores vs redis-py ZREVRANGE
  0 99 WITHSCORES (one round trip each).
- group "incr-single": one DecayingLeaderboard.incr (one round trip) vs one redis-py ZINCRBY.
"""

from __future__ import annotations


import numpy as np
import pytest

from fastredis.patterns.leaderboard import DecayingLeaderboard, Leaderboard

N = 100_000
RNG = np.random.default_rng(7)
MEMBERS = np.array([f"post:{i}" for i in RNG.integers(0, 1000, N)], dtype=object)
WEIGHTS = RNG.uniform(0.5, 2.0, N)
TIMES = np.sort(RNG.uniform(1.7e9, 1.7e9 + 86400, N))
DISTINCT = np.array([f"m{i}" for i in range(N)], dtype=object)


@pytest.mark.benchmark(group="incr_many-100k")
def test_decaying_incr_many(benchmark, fast):
    hot = DecayingLeaderboard(fast, "bench-hot", half_life=3600)
    benchmark(hot.incr_many, MEMBERS, WEIGHTS, TIMES)
    assert hot.count() == len(set(MEMBERS.tolist()))


@pytest.mark.benchmark(group="incr_many-100k")
def test_redispy_zincrby_pipeline(benchmark, plain):
    members, weights = MEMBERS.tolist(), WEIGHTS.tolist()

    def run() -> None:
        p = plain.pipeline(transaction=False)
        for m, w in zip(members, weights):
            p.zincrby("bench-raw", w, m)
        p.execute()

    benchmark(run)


@pytest.mark.benchmark(group="add_many-100k")
def test_leaderboard_add_many(benchmark, fast):
    lb = Leaderboard(fast, "bench-add")
    benchmark(lb.add_many, DISTINCT, WEIGHTS)
    assert lb.count() == N


@pytest.mark.benchmark(group="add_many-100k")
def test_redispy_zadd_pipeline(benchmark, plain):
    members, weights = DISTINCT.tolist(), WEIGHTS.tolist()

    def run() -> None:
        p = plain.pipeline(transaction=False)
        for m, w in zip(members, weights):
            p.zadd("bench-raw-add", {m: w})
        p.execute()

    benchmark(run)


@pytest.mark.benchmark(group="top100")
def test_decaying_top100(benchmark, fast):
    hot = DecayingLeaderboard(fast, "bench-top", half_life=3600)
    hot.incr_many(MEMBERS[:5000], WEIGHTS[:5000], TIMES[:5000])
    assert len(benchmark(hot.top, 100)) == 100


@pytest.mark.benchmark(group="top100")
def test_redispy_zrevrange100(benchmark, plain):
    plain.zadd("bench-raw-top", {f"m{i}": i for i in range(1000)})
    assert len(benchmark(plain.zrevrange, "bench-raw-top", 0, 99, withscores=True)) == 100


@pytest.mark.benchmark(group="incr-single")
def test_decaying_incr_single(benchmark, fast):
    hot = DecayingLeaderboard(fast, "bench-one", half_life=3600)
    benchmark(hot.incr, "post:1", 1.0)


@pytest.mark.benchmark(group="incr-single")
def test_redispy_zincrby_single(benchmark, plain):
    benchmark(plain.zincrby, "bench-raw-one", 1.0, "post:1")
