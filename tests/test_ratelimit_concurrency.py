"""Exactness under concurrency: 8 processes hammer one key.

Each child makes its own client (after the fork). Bounds are checked from
server-side timestamps (sliding log) or from [send, receive] brackets around
each admitted request on the same host clock (token bucket), so a loaded
machine can only make the checks looser, never fail a correct limiter.
"""

from __future__ import annotations

import bisect
import multiprocessing as mp
import time
from typing import List, Tuple

import pytest

PROCS = 8


def _limiter(kind: str, url: str, limit: int, window: float):  # type: ignore[no-untyped-def]
    import fastredis
    from fastredis.patterns import ratelimit as rl

    client = fastredis.Redis.from_url(url)
    if kind == "fix":
        return rl.FixedWindowLimiter(client, limit, window, prefix="conc")
    if kind == "log":
        return rl.SlidingWindowLimiter(client, limit, window, prefix="conc")
    return rl.TokenBucketLimiter(client, rate=limit / window, capacity=limit, prefix="conc")


def _hammer(args: Tuple[str, str, int, float, float, int, float]) -> List[Tuple[float, float]]:
    kind, url, limit, window, duration, max_hits, pause = args
    lim = _limiter(kind, url, limit, window)
    admitted: List[Tuple[float, float]] = []
    end = time.time() + duration
    n = 0
    while time.time() < end and n < max_hits:
        t0 = time.time()
        d = lim.hit("shared")
        t1 = time.time()
        n += 1
        if d.allowed:
            admitted.append((t0, t1))
        if pause:
            time.sleep(pause)
    lim.client.close()
    return admitted


def _run(kind: str, url: str, limit: int, window: float, duration: float, max_hits: int, pause: float):  # type: ignore[no-untyped-def]
    ctx = mp.get_context("fork")
    with ctx.Pool(PROCS) as pool:
        return pool.map(_hammer, [(kind, url, limit, window, duration, max_hits, pause)] * PROCS)


def test_fixed_window_admits_exactly_limit(redis_url: str, r) -> None:  # type: ignore[no-untyped-def]
    # A window of ~11.6 days: the run sits inside one window (unless it
    # straddles a boundary, which then shows up as up to 2*limit, handled below).
    window = 10**6
    results = _run("fix", redis_url, 100, window, 30.0, 40, 0.0)
    admitted = sum(len(x) for x in results)
    assert sum(1 for _ in results) == PROCS
    straddled = int(time.time() // window) != int(min(t for x in results for t, _ in x) // window)
    assert admitted == (200 if straddled else 100)


def test_sliding_log_never_exceeds_limit_in_any_window(redis_url: str, r) -> None:  # type: ignore[no-untyped-def]
    limit, window = 15, 1.0
    ctx = mp.get_context("fork")
    seen = {}
    with ctx.Pool(PROCS) as pool:
        job = pool.map_async(_hammer, [("log", redis_url, limit, window, 3.0, 10**9, 0.01)] * PROCS)
        # Members live at least `window` in the ZSET: polling much faster than
        # that collects every admission with its server-side timestamp.
        while not job.ready():
            for key in r.keys("conc:*"):
                for member, score in r.zrange(key, 0, -1, withscores=True):
                    seen[member] = score
            time.sleep(0.05)
        results = job.get()
    for key in r.keys("conc:*"):
        for member, score in r.zrange(key, 0, -1, withscores=True):
            seen[member] = score
    admitted = sum(len(x) for x in results)
    assert admitted == len(seen), "every admission is one ZSET member, none collapsed"
    assert admitted >= 2 * limit  # the run spans several windows
    scores = sorted(seen.values())  # microseconds, server time
    w_us = window * 1e6
    worst = max(bisect.bisect_left(scores, s + w_us) - i for i, s in enumerate(scores))
    assert worst <= limit


def test_token_bucket_bound(redis_url: str, r) -> None:  # type: ignore[no-untyped-def]
    capacity, rate = 10, 20.0
    results = _run("gcra", redis_url, capacity, capacity / rate, 2.0, 10**9, 0.005)
    adm = sorted(a for x in results for a in x)  # (send, receive) brackets, by send time
    assert len(adm) >= capacity
    # Admissions whose server times all lie in [A, B] number at most
    # capacity + rate * (B - A); A = earliest send, B = latest receive.
    n = len(adm)
    for i in range(n):
        b = adm[i][1]
        for j in range(i, n):
            b = max(b, adm[j][1])
            assert j - i + 1 <= capacity + rate * (b - adm[i][0]) + 1e-6
    # And it is not overly strict: about capacity + rate * duration got through.
    span = adm[-1][1] - adm[0][0]
    assert len(adm) >= 0.5 * (capacity + rate * span)


@pytest.mark.soak
def test_soak_fixed_window_across_many_windows(redis_url: str, r) -> None:  # type: ignore[no-untyped-def]
    """Longer run: admissions per server window never exceed the limit."""
    limit, window = 20, 0.5
    ctx = mp.get_context("fork")
    with ctx.Pool(PROCS) as pool:
        results = pool.map(_hammer, [("fix", redis_url, limit, window, 20.0, 10**9, 0.002)] * PROCS)
    per_window: dict = {}
    for x in results:
        for t0, t1 in x:
            # A bracket inside one window pins the admission to that window.
            if int(t0 // window) == int(t1 // window):
                per_window[int(t0 // window)] = per_window.get(int(t0 // window), 0) + 1
    assert per_window and max(per_window.values()) <= limit
