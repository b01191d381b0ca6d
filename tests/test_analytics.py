"""UniqueCounter, PageAnalytics, ActivityBitmap, CounterSeries against real servers."""

import datetime
import multiprocessing as mp
import random
import time

import pytest
import redis

import fastredis
from fastredis.patterns._time import day_start
from fastredis.patterns.analytics import ActivityBitmap, CounterSeries, PageAnalytics, Stats, UniqueCounter

NOW = time.time()


def test_day_arguments():
    d = datetime.date(2024, 3, 1)
    assert day_start(d) == day_start("2024-03-01") == day_start(1709251200 + 86399.9) == 1709251200
    assert day_start(datetime.datetime(2024, 3, 1, 23, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))) == 1709251200 + 86400
    for bad in ("2024-3-1", "yesterday", float("nan"), -1):
        with pytest.raises(ValueError):
            day_start(bad)
    with pytest.raises(TypeError):
        day_start(None)


def test_seed_defect_active_counted_once(any_client):
    pa = PageAnalytics(any_client, active_window=300, bucket=60)
    t0 = NOW // 60 * 60 - 240
    for minute in range(5):
        pa.track("/home", "ann", at=t0 + 60 * minute + 1)
    assert pa.stats("/home", at=t0 + 60 * 4 + 2) == Stats(total=5, unique=1, active=1)


def test_page_analytics_window_and_batch(any_client):
    pa = PageAnalytics(any_client, active_window=200, bucket=60)
    t0 = time.time() // 60 * 60 - 240  # its bucket lives until t0 + 60 + 260
    pa.track_many([("/a", f"u{i}", t0) for i in range(50)] + [("/a", "late", t0 + 240), ("/b", "x")])
    st = pa.stats("/a", at=t0 + 270)
    assert st.total == 51 and 49 <= st.unique <= 52 and st.active == 1  # old bucket out of window
    assert pa.stats("/a", at=t0 + 10).active == pytest.approx(50, abs=1)
    assert pa.stats("/b").total == 1 and pa.stats("/b").active == 1  # server time path
    with pytest.raises(ValueError):
        pa.track_many([("/a",)])
    with pytest.raises(ValueError):
        pa.track("/a", "u", at=float("nan"))


def test_unique_counter_union_not_sum(any_client):
    uc = UniqueCounter(any_client, "v", bucket="day")
    rng = random.Random(1)
    days = [day_start(NOW) - k * 86400 for k in range(3)]
    truth = []
    for d in days:
        ids = {f"user{rng.randrange(20000)}" for _ in range(8000)}
        truth.append(ids)
        uc.add(*ids, at=d + 5)
    union = set().union(*truth)
    got = uc.count(days[-1], days[0])
    assert abs(got - len(union)) <= 0.02 * len(union)
    assert got < sum(len(s) for s in truth) * 0.9  # a union, not a sum
    assert abs(uc.count(days[1], days[1]) - len(truth[1])) <= 0.02 * len(truth[1])
    assert abs(uc.count() - len(truth[0])) <= 0.02 * len(truth[0])  # server's current day
    merged = uc.merge_into("3d", days[-1], days[0])
    assert merged == got and any_client.pfcount(uc.merged_key("3d")) == got
    assert uc.add("late") in (True, False)
    with pytest.raises(ValueError):
        uc.count(days[0], days[-1])


def test_unique_counter_hostile_ids(redis_url):
    c = fastredis.Redis.from_url(redis_url, decode_responses=True)
    c.flushdb()
    uc = UniqueCounter(c, "h:*{}\r\n", bucket="minute")
    ids = ["a:b", "*", "{x}", "\r\n", b"\xff", "é", 7]
    assert uc.add(*ids, at=NOW) is True
    assert uc.count(NOW, NOW) == len(ids)
    with pytest.raises(TypeError):
        uc.add(None)
    with pytest.raises(ValueError):
        UniqueCounter(c, "x", bucket="week")
    c.close()


def test_activity_bitmap(any_client):
    ab = ActivityBitmap(any_client, "logins", max_id=10_000)
    rng = random.Random(2)
    d1, d2, d3 = "2024-01-01", datetime.date(2024, 1, 2), day_start("2024-01-03") + 100
    s1 = {rng.randrange(10_001) for _ in range(3000)}
    s2 = {rng.randrange(10_001) for _ in range(3000)}
    s3 = {rng.randrange(10_001) for _ in range(3000)}
    for day, ids in ((d1, s1), (d2, s2), (d3, s3)):
        for i in ids:
            ab.mark(i, day)
    assert ab.count(d1) == len(s1)
    assert ab.is_active(next(iter(s1)), d1) and not ab.is_active(max(s1 | s2 | s3) + 1 if max(s1 | s2 | s3) < 10_000 else 0, "2023-12-31")
    assert ab.active_in_all([d1, d2, d3]) == len(s1 & s2 & s3)
    assert ab.active_in_any([d1, d2, d3]) == len(s1 | s2 | s3)
    assert ab.retention(d1, d2) == len(s1 & s2) / len(s1)
    assert ab.retention("1999-01-01", d2) == 0.0
    assert not any(k.endswith(b":tmp") for k in any_client.keys("*") if isinstance(k, bytes))
    for bad in (-1, 10_001):
        with pytest.raises(ValueError):
            ab.mark(bad, d1)
    for bad in (1.0, "7", True, None):  # a wrong type is a TypeError
        with pytest.raises(TypeError):
            ab.mark(bad, d1)
    with pytest.raises(ValueError):
        ab.active_in_all([])


def test_counter_series_gaps_and_expiry(any_client):
    cs = CounterSeries(any_client, "api", bucket=60, retention=600)
    t0 = NOW // 60 * 60 - 300
    assert cs.incr("GET /x", at=t0 + 1) == 1
    assert cs.incr("GET /x", 4, at=t0 + 59) == 5
    assert cs.incr("GET /x", 2, at=t0 + 180) == 2
    got = cs.range("GET /x", t0, t0 + 180)
    assert got == [(t0, 5), (t0 + 60, 0), (t0 + 120, 0), (t0 + 180, 2)]
    ttl = any_client.ttl(cs._key("GET /x", int(t0 // 60)))
    assert 600 - 300 - 60 <= ttl <= 660  # NOW was read at import; the test may run a minute later
    assert cs.incr("GET /x", at=NOW - 3600) == 1  # older than retention: already expired
    assert cs.range("GET /x", NOW - 3600, NOW - 3600) == [((NOW - 3600) // 60 * 60, 0)]
    assert cs.incr("s2") == 1 and sum(n for _, n in cs.range("s2", NOW - 120, NOW + 120)) == 1
    for bad in (1.5, True, "1"):
        with pytest.raises(TypeError):
            cs.incr("s", bad)
    with pytest.raises(ValueError):
        cs.incr("s", 2**64)


def test_script_flush_and_restart(private_server):
    c = fastredis.Redis(port=private_server.port)
    pa = PageAnalytics(c)
    uc = UniqueCounter(c, "u")
    cs = CounterSeries(c, "c")
    ab = ActivityBitmap(c, "b")
    pa.track("/p", "u1")
    c.script_flush()
    assert pa.track("/p", "u2") == 2
    assert uc.add("x") is True
    assert cs.incr("s") == 1
    ab.mark(1, NOW)
    private_server.restart()
    assert pa.track("/p", "u3") == 1
    assert pa.stats("/p") == Stats(1, 1, 1)
    assert uc.count() == 0 and uc.add("y") is True and uc.count() == 1
    c2 = private_server.client()
    c2.execute_command("CLIENT KILL TYPE normal")
    assert cs.incr("s") == 1 and ab.active_in_any([NOW]) == 0
    c.close()


def _track_worker(url, seed, q):
    c = redis.Redis.from_url(url)
    pa = PageAnalytics(c, active_window=300, bucket=60)
    rng = random.Random(seed)
    users = [f"u{rng.randrange(500)}" for _ in range(400)]
    for i in range(0, 400, 40):
        pa.track_many([("/c", u) for u in users[i:i + 40]])
    q.put(users)
    c.close()


def test_concurrent_track_many(redis_url, r):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_track_worker, args=(redis_url, s, q)) for s in range(4)]
    for p in procs:
        p.start()
    users = [u for _ in procs for u in q.get(timeout=120)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    st = PageAnalytics(r, active_window=300, bucket=60).stats("/c")
    assert st.total == len(users)
    distinct = len(set(users))
    assert abs(st.unique - distinct) <= 0.02 * distinct and abs(st.active - distinct) <= 0.02 * distinct
