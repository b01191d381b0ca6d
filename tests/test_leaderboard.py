"""Leaderboard and DecayingLeaderboard against real redis-server processes."""

import math
import multiprocessing as mp
import random

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, given, settings, strategies as st

import fastredis
from fastredis.patterns.leaderboard import DecayingLeaderboard, Leaderboard

HOSTILE = ["a:b", "*", "?x[1]", "{tag}", "cr\r\nlf", "sp ace", b"\xff\xfe", "é"]


def as_str(m):
    return m.decode("utf-8", "surrogateescape") if isinstance(m, bytes) else m


def test_basic_ops(any_client):
    lb = Leaderboard(any_client, "g")
    lb.add_many(["ann", "bob", "cy", "dee"], [10, 30, 20, 5])
    assert lb.top(2) == [("bob", 30.0), ("cy", 20.0)]
    assert lb.rank("bob") == 0 and lb.rank("dee") == 3 and lb.rank("zed") is None
    assert lb.score("cy") == 20.0 and lb.score("zed") is None
    assert lb.page(1, 2) == [("ann", 10.0), ("dee", 5.0)]
    assert lb.page(5, 2) == []
    assert lb.around("cy", 1) == [("bob", 30.0), ("cy", 20.0), ("ann", 10.0)]
    assert lb.around("bob", 1) == [("bob", 30.0), ("cy", 20.0)]
    assert lb.around("zed", 1) == []
    assert lb.incr("dee", 100) == 105.0
    assert lb.count() == 4
    assert lb.remove("dee", "zed") == 1
    assert lb.count() == 3
    asc = Leaderboard(any_client, "g", reverse=False)
    assert asc.top(1) == [("ann", 10.0)] and asc.rank("bob") == 2


def test_tie_rule(any_client):
    lb = Leaderboard(any_client, "t")
    lb.add_many(["b", "a", "c"], [1, 1, 1])
    assert [m for m, _ in lb.top(3)] == ["c", "b", "a"]  # reverse=True: greater bytes first
    assert [lb.rank(m) for m in "cba"] == [0, 1, 2]
    asc = Leaderboard(any_client, "t", reverse=False)
    assert [m for m, _ in asc.top(3)] == ["a", "b", "c"]


def test_batches_numpy_and_aggregation(any_client):
    lb = Leaderboard(any_client, "n")
    members = [f"m{i}" for i in range(25_000)]
    lb.add_many(np.array(members, dtype=object), np.arange(25_000, dtype=np.float64))
    assert lb.count() == 25_000 and lb.top(1) == [("m24999", 24999.0)]
    lb.incr_many(["m0", "m1", "m0"] * 2, np.array([1.0, 2.0, 3.0] * 2))
    assert lb.score("m0") == 8.0 and lb.score("m1") == 5.0


@pytest.mark.parametrize("bad, error", [(math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError),
                                        ("3", TypeError), (None, TypeError)])
def test_bad_scores(any_client, bad, error):
    lb = Leaderboard(any_client, "bad")
    with pytest.raises(error):
        lb.add("a", bad)
    with pytest.raises(error):
        lb.incr("a", bad)
    with pytest.raises(error):
        lb.incr_many(["a", "b"], [1.0, bad])
    assert lb.count() == 0


def test_bad_members_and_args(any_client):
    lb = Leaderboard(any_client, "bad")
    for m in (None, 1.5, True):
        with pytest.raises(TypeError):
            lb.add(m, 1)
    with pytest.raises(ValueError):
        lb.add_many(["a"], [1, 2])
    with pytest.raises(ValueError):
        lb.top(-1)
    with pytest.raises(TypeError):
        lb.top("3")  # a wrong type is a TypeError, a wrong value a ValueError


def test_overflow_refused_atomically(any_client):
    lb = Leaderboard(any_client, "o")
    lb.add("big", 1.5e308)
    with pytest.raises(redis.ResponseError, match="overflow"):
        lb.incr_many(["x", "big"], [1.0, 1.5e308])
    assert lb.score("big") == 1.5e308 and lb.score("x") is None  # nothing applied


@pytest.mark.parametrize("decode", [False, True])
def test_hostile_members(redis_url, decode):
    c = fastredis.Redis.from_url(redis_url, decode_responses=decode)
    c.flushdb()
    lb = Leaderboard(c, "h:*{x}\r\n")
    lb.add_many(HOSTILE, list(range(len(HOSTILE))))
    top = lb.top(len(HOSTILE))
    assert sorted(m for m, _ in top) == sorted(as_str(m) for m in HOSTILE)
    assert all(isinstance(m, str) for m, _ in top)
    assert lb.around(b"\xff\xfe", 0) == [(as_str(b"\xff\xfe"), 6.0)]
    d = DecayingLeaderboard(c, "h:*", half_life=60)
    d.incr_many(HOSTILE, [1.0] * len(HOSTILE), at=1000)
    assert {m for m, _ in d.top(100, at=1000)} == {as_str(m) for m in HOSTILE}
    assert all(k.startswith(b"lb:{h%3A%2A") for k in c.execute_command("KEYS", "*", **{"NEVER_DECODE": True}))
    c.close()


def test_script_flush(any_client):
    lb = Leaderboard(any_client, "f")
    d = DecayingLeaderboard(any_client, "f2", half_life=10)
    lb.incr("a", 1)
    d.incr("a", 1, at=0)
    any_client.script_flush()
    assert lb.incr("a", 1) == 2.0
    assert lb.top(1) == [("a", 2.0)]
    any_client.script_flush()
    d.incr_many(["a"] * 3 + [f"m{i}" for i in range(20_001)], [1.0] * 20_004, at=0)  # 3 chunks, pipeline
    assert d.score("a", at=0) == pytest.approx(4.0)


# -- decaying ---------------------------------------------------------------

def test_decay_basics(any_client):
    hot = DecayingLeaderboard(any_client, "posts", half_life=3600)
    hot.incr("a", 8, at=0)
    hot.incr("b", 3, at=7200)
    assert hot.top(2, at=7200) == [("b", pytest.approx(3.0)), ("a", pytest.approx(2.0))]
    assert hot.rank("a") == 1 and hot.count() == 2
    assert hot.score("a", at=3600) == pytest.approx(4.0)
    assert hot.around("a", 1, at=7200)[0][0] == "b"
    hot.incr("neg", -1, at=7200)
    assert hot.top(3, at=7200)[-1] == ("neg", pytest.approx(-1.0))
    # prune by |decayed| < floor (the seed treated scores as times)
    assert hot.prune(2.5, at=7200) == 2
    assert [m for m, _ in hot.top(5, at=7200)] == ["b"]


def test_server_time(any_client):
    hot = DecayingLeaderboard(any_client, "now", half_life=3600)
    hot.incr("a", 2)
    hot.incr_many(["a", "b"], [1, 1])
    top = hot.top(2)
    assert top[0] == ("a", pytest.approx(3.0, rel=1e-3)) and top[1] == ("b", pytest.approx(1.0, rel=1e-3))
    assert hot.prune(0.5) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]),
                       st.one_of(st.floats(0.01, 1e6), st.floats(-100, 0)),
                       st.floats(0, 5 * 365 * 86400)),
             min_size=1, max_size=40),
    st.sampled_from([60.0, 3600.0, 86400.0, 30 * 86400.0]),
    st.integers(1, 5),
)
def test_decay_matches_brute_force(r, evs, half_life, batches):
    r.flushdb()
    lam = math.log(2) / half_life
    hot = DecayingLeaderboard(r, "bf", half_life=half_life)
    # events arrive in batches (in time order across batches, any order within)
    evs = sorted(evs, key=lambda e: e[2])
    size = max(1, len(evs) // batches)
    for i in range(0, len(evs), size):
        part = evs[i:i + size]
        hot.incr_many([e[0] for e in part], [e[1] for e in part], at=[e[2] for e in part])
    now = evs[-1][2]
    got = dict(hot.top(10, at=now))
    for m in {e[0] for e in evs}:
        contrib = [w * math.exp(-lam * (now - t)) for mm, w, t in evs if mm == m]
        ref = math.fsum(contrib)
        # Scores that decayed to ~1e-260 lose relative precision in the stored
        # double; they are far below any meaningful value, hence the floor.
        bound = 1e-9 * math.fsum(abs(c) for c in contrib) + 1e-250
        assert abs(got[m] - ref) <= bound, (m, got[m], ref)
        assert math.isfinite(got[m])
    order = [m for m, _ in hot.top(10, at=now)]
    scores = [got[m] for m in order]
    assert scores == sorted(scores, reverse=True)


def test_long_horizon_100_years(r):
    hot = DecayingLeaderboard(r, "long", half_life=3600)
    year = 365.25 * 86400
    rng = random.Random(5)
    for k in range(200):
        t = k * 100 * year / 200
        hot.incr_many(["x", "y"], [rng.uniform(1, 1e100), rng.uniform(1, 1e100)], at=t)
    t_end = 100 * year
    hot.incr_many(["x", "y", "z"], [3.0, 2.0, 1e-300], at=t_end)
    stored = r.zrange(hot.key, 0, -1, withscores=True)
    assert all(math.isfinite(s) for _, s in stored)
    assert abs(max(s for _, s in stored)) < 1e250
    assert hot.top(3, at=t_end) == [("x", pytest.approx(3.0)), ("y", pytest.approx(2.0)),
                                    ("z", pytest.approx(1e-300))]
    assert float(r.get(hot.landmark_key)) > 99 * year  # rebased along the way


def _worker(url, half_life, seed, calls, q):
    c = redis.Redis.from_url(url)
    hot = DecayingLeaderboard(c, "conc", half_life=half_life)
    rng = random.Random(seed)
    lam = math.log(2) / half_life
    sent = []
    for _ in range(calls):
        ts = [rng.uniform(290 / lam, 310 / lam) for _ in range(20)]
        ms = [rng.choice("abcdef") for _ in ts]
        hot.incr_many(ms, [1.0] * len(ts), at=ts)
        sent.extend(zip(ms, ts))
    q.put(sent)
    c.close()


def test_rebase_under_concurrency(redis_url, r):
    half_life = 1.0
    lam = math.log(2)
    DecayingLeaderboard(r, "conc", half_life=half_life).incr("a", 0.0, at=0.0)  # L = 0
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(redis_url, half_life, s, 40, q)) for s in range(4)]
    for p in procs:
        p.start()
    sent = [e for _ in procs for e in q.get(timeout=120)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    landmark = float(r.get("lb:{conc}:L"))
    assert landmark > 290 / lam  # rebases did happen
    now = 310 / lam
    got = dict(DecayingLeaderboard(r, "conc", half_life=half_life).top(10, at=now))
    for m in "abcdef":
        contrib = [math.exp(-lam * (now - t)) for mm, t in sent if mm == m]
        assert got[m] == pytest.approx(math.fsum(contrib), rel=1e-9)


def test_restart_and_killed_connections(private_server):
    c = fastredis.Redis(port=private_server.port)
    hot = DecayingLeaderboard(c, "rs", half_life=60)
    lb = Leaderboard(c, "rs2")
    hot.incr("a", 1, at=1000)
    lb.incr("a", 1)
    private_server.restart()  # no persistence: data and script cache gone
    hot.incr("b", 2, at=1000)
    assert lb.incr("a", 5) == 5.0
    assert hot.top(5, at=1000) == [("b", pytest.approx(2.0))]
    other = private_server.client()
    other.execute_command("CLIENT KILL TYPE normal")
    hot.incr("b", 2, at=1000)
    assert hot.score("b", at=1000) == pytest.approx(4.0)
    assert lb.incr("a", 1) == 6.0
    c.close()
