"""The rate-limit scripts: one Lua file per algorithm, composed per limiter
(prelude + the algorithms used + driver) by LuaScript.compose."""

from __future__ import annotations

import itertools
import time

import pytest
import redis

from fastredis.patterns.ratelimit import (
    CompositeLimiter,
    FixedWindowLimiter,
    SlidingWindowCounterLimiter,
    SlidingWindowLimiter,
    TokenBucketLimiter,
)
from fastredis.scripts import LuaScript

PARTS = {
    "log": "ratelimit_sliding_log",
    "fix": "ratelimit_fixed_window",
    "ctr": "ratelimit_sliding_counter",
    "gcra": "ratelimit_token_bucket",
}


def limiters(client, limit: int = 5, window: float = 3600.0):  # type: ignore[no-untyped-def]
    return {
        "log": SlidingWindowLimiter(client, limit, window, prefix="l"),
        "fix": FixedWindowLimiter(client, limit, window, prefix="f"),
        "ctr": SlidingWindowCounterLimiter(client, limit, window, prefix="c"),
        "gcra": TokenBucketLimiter(client, rate=limit / window, capacity=limit, prefix="g"),
    }


def test_each_limiter_runs_its_algorithm_plus_the_driver(r) -> None:  # type: ignore[no-untyped-def]
    for code, lim in limiters(r).items():
        expected = LuaScript.compose("ratelimit_prelude", PARTS[code], "ratelimit_driver")
        assert lim._script is expected
        # The other algorithms are not in it.
        for other, part in PARTS.items():
            own = LuaScript.load(part).script in lim._script.script
            assert own == (other == code)


def test_composites_carry_only_the_algorithms_they_use(r) -> None:  # type: ignore[no-untyped-def]
    lims = limiters(r)
    a = CompositeLimiter([lims["gcra"], lims["log"]])
    b = CompositeLimiter([lims["log"], lims["gcra"]])
    assert a._script is b._script  # one script per set of algorithms
    assert a._script is LuaScript.compose(
        "ratelimit_prelude", "ratelimit_sliding_log", "ratelimit_token_bucket", "ratelimit_driver"
    )
    # Two limits of one algorithm: that algorithm's code once.
    two_logs = CompositeLimiter([lims["log"], SlidingWindowLimiter(r, 2, 1.0, prefix="l")])
    assert two_logs._script is lims["log"]._script


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_every_composition_compiles_and_decides(r, size: int) -> None:  # type: ignore[no-untyped-def]
    lims = limiters(r)
    for combo in itertools.combinations(sorted(lims), size):
        both = CompositeLimiter([lims[c] for c in combo])
        assert r.script_load(both._script.script) == both._script.sha
        r.script_flush()  # EVALSHA -> NOSCRIPT -> SCRIPT LOAD -> retry
        key = "-".join(combo)
        assert [d.allowed for d in both.hit_many([key] * 6)] == [True] * 5 + [False]
        assert both.peek(key).remaining == 0
        for c in combo:  # every limit counted the 5 admissions, not the denial
            assert lims[c].peek(key).remaining == 0


def test_an_algorithm_missing_from_the_script_is_a_clear_error(r) -> None:  # type: ignore[no-untyped-def]
    fixed_only = LuaScript.compose("ratelimit_prelude", "ratelimit_fixed_window", "ratelimit_driver")
    with pytest.raises(redis.ResponseError, match="algorithm log is not in this script"):
        fixed_only(r, ["k"], ["hit", 1, 1, "rid", "log", 5, 1_000_000])
    assert r.keys("*") == []


def test_compose_is_cached_and_checks_names() -> None:
    a = LuaScript.compose("ratelimit_prelude", "ratelimit_driver")
    assert a is LuaScript.compose("ratelimit_prelude", "ratelimit_driver")
    assert a.name == "ratelimit_prelude+ratelimit_driver"
    assert LuaScript.compose("ratelimit_prelude", "ratelimit_driver", name="x").name == "x"
    assert a.script.startswith(LuaScript.load("ratelimit_prelude").script)
    with pytest.raises(ValueError, match="at least one"):
        LuaScript.compose()
    with pytest.raises(ValueError, match="no Lua script"):
        LuaScript.compose("ratelimit_prelude", "no_such_script")
    with pytest.raises(ValueError, match="bad script name"):
        LuaScript.compose("../etc/passwd")


def test_sliding_log_repeated_key_in_a_batch_trims_and_expires(r) -> None:  # type: ignore[no-untyped-def]
    # A key repeated in one script call is trimmed and given its expiry once;
    # the decisions must be those of one-by-one hits.
    lim = SlidingWindowLimiter(r, 3, 1.0)
    assert [d.allowed for d in lim.hit_many(["k"] * 5)] == [True] * 3 + [False] * 2
    (key,) = r.keys("*")
    assert r.zcard(key) == 3
    assert 0 < r.pttl(key) <= 1001  # ms, rounded up
    time.sleep(1.05)  # the three admissions leave the window
    got = lim.hit_many(["k"] * 5)
    assert [d.allowed for d in got] == [True] * 3 + [False] * 2
    assert [d.remaining for d in got] == [2, 1, 0, 0, 0]
    assert r.zcard(key) == 3  # the stale three were trimmed
    assert 0 < r.pttl(key) <= 1001
    assert all(0 < d.retry_after <= 1.0 for d in got[3:])


def test_sliding_log_reset_after(r) -> None:  # type: ignore[no-untyped-def]
    lim = SlidingWindowLimiter(r, 2, 10.0)
    assert lim.hit("k").reset_after == 10.0  # from what the commit wrote
    time.sleep(0.05)
    peek = lim.peek("k")  # from the newest admission
    assert 5.0 < peek.reset_after < 10.0
    lim.hit("k")
    denied = lim.hit("k")
    assert not denied.allowed
    assert 5.0 < denied.reset_after <= 10.0  # the newest admission leaves last
    assert denied.retry_after < denied.reset_after  # the oldest leaves first
