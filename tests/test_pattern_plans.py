"""The patterns' plans and interpretations, without a server: what each
operation sends (script, KEYS, ARGV) and how it reads replies. These run
once; the sync and asyncio shells each have their own tests against servers."""

from __future__ import annotations

import math
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

import fastredis
import fastredis.asyncio as fa
from fastredis.patterns._plan import Call, Plan, Sleep, drive_value
from fastredis.scripts import LuaScript


def test_limiter_plan_is_one_evalsha_per_chunk() -> None:
    lim = fastredis.FixedWindowLimiter(redis.Redis(), 5, 60)
    plan = lim.plan_hit_many(["a", "b", "a"])
    (call,) = plan.calls
    assert call.script is lim._script and call.args[0] == "EVALSHA" and call.args[1] == lim._script.sha
    assert call.args[2] == 3 and call.args[3:6] == (lim._state_key("a"), lim._state_key("b"), lim._state_key("a"))
    assert call.args[6:9] == ("hit", 1, 1)  # mode, number of limits, cost
    assert len(lim.plan_hit_many([f"k{i}" for i in range(4500)]).calls) == 3  # 2000 keys per call
    assert lim.plan_hit_many([]).calls == ()


def test_limiter_interpretation() -> None:
    lim = fastredis.TokenBucketLimiter(redis.Redis(), rate=1, capacity=5)
    plan = lim.plan_hit("k")
    # The driver's flat reply: allowed, binding limit, remaining, retry_after, reset_after per key.
    assert plan.interpret([[1, 1, 4, "0", "1.5"]]) == fastredis.Decision(True, 5, 4, 0.0, 1.5)
    denied = plan.interpret([[0, 1, 0, "0.25", "5"]])
    assert not denied.allowed and denied.retry_after == 0.25


def test_limiter_plan_checks_arguments_before_any_io() -> None:
    lim = fa.SlidingWindowLimiter(redis.asyncio.Redis(), 5, 60)
    with pytest.raises(ValueError, match="cost"):
        lim.plan_hit("k", 0)
    with pytest.raises(TypeError, match="cost"):
        lim.plan_hit("k", 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key part"):
        lim.plan_hit(None)  # type: ignore[arg-type]


def test_local_deny_cache_answers_without_calls() -> None:
    lim = fastredis.FixedWindowLimiter(redis.Redis(), 1, 60, local=True)
    first = lim.plan_hit("k")
    assert len(first.calls) == 1
    assert first.interpret([[0, 1, 0, "30", "30"]]).allowed is False  # remembered as denied
    again = lim.plan_hit("k")
    assert again.calls == ()
    d = again.interpret([])
    assert not d.allowed and 29 < d.retry_after <= 30


def test_cluster_plan_groups_keys_by_slot() -> None:
    cluster = redis.cluster.RedisCluster.__new__(redis.cluster.RedisCluster)  # no connection needed
    lim = fastredis.FixedWindowLimiter(cluster, 3, 60)
    keys = [f"user{i}" for i in range(40)]
    plan = lim.plan_hit_many(keys)
    for call in plan.calls:  # every call's keys share one slot
        n = call.args[2]
        assert len({key_slot(k.encode()) for k in call.args[3:3 + n]}) == 1
    # Decisions come back in the order of the keys asked.
    replies = []
    for call in plan.calls:
        n = call.args[2]
        replies.append([x for k in call.args[3:3 + n] for x in (1, 1, int(k.split("user")[1].split("}")[0]), "0", "0")])
    assert [d.remaining for d in plan.interpret(replies)] == list(range(40))


def test_plan_shapes() -> None:
    with pytest.raises(ValueError):
        Plan([], lambda r: r)
    assert Plan.done(5).interpret([]) == 5
    s = LuaScript("return 'plan shapes'", name="plan-shapes", idempotent=True)
    assert repr(Plan([Call(("GET", "a")), Call(s.command(["k"]), s)], list, batch=True)) == "<Plan [GET, EVALSHA]>"

    def steps() -> Any:
        got = yield Plan.one(Call(("GET", "a")), int)
        try:
            yield Sleep(1)
        except KeyError:
            return got * 2
        return -1

    def answer(item: Any) -> Any:
        if isinstance(item, Sleep):
            raise KeyError("thrown into the steps")
        return item.interpret(b"21")

    assert drive_value(steps(), answer, lambda e: None) == 42


def test_decision_is_shared() -> None:
    assert fa.Decision is fastredis.Decision
    assert math.isinf(fastredis.Decision(False, 1, 0, math.inf, 0).retry_after)


SYNC_CLASSES = [("Leaderboard", ("lb",), {}), ("DecayingLeaderboard", ("d",), {"half_life": 60}),
                ("UniqueCounter", ("u",), {}), ("PageAnalytics", (), {}), ("ActivityBitmap", ("a",), {}),
                ("CounterSeries", ("c",), {}), ("SessionStore", (), {}), ("Cart", (), {}), ("Presence", ("r",), {}),
                ("GeoIndex", ("g",), {}), ("Channel", ("c",), {}), ("EventStream", ("s",), {}), ("Lock", ("l",), {}),
                ("TieredCache", (), {"local_maxsize": 0}), ("FixedWindowLimiter", (1, 1), {}),
                ("SlidingWindowLimiter", (1, 1), {}), ("SlidingWindowCounterLimiter", (1, 1), {}),
                ("TokenBucketLimiter", (1, 1), {})]


@pytest.mark.parametrize("name, args, kwargs", SYNC_CLASSES, ids=[c[0] for c in SYNC_CLASSES])
def test_clients_are_checked_at_construction(name: str, args: tuple, kwargs: dict) -> None:
    """Issue 12, item 6: a wrong client is a TypeError naming what is accepted,
    when the object is made (not an AttributeError at its first call)."""
    cls, acls = getattr(fastredis, name), getattr(fa, name)
    cluster = redis.cluster.RedisCluster.__new__(redis.cluster.RedisCluster)  # the type is what counts
    for good in (redis.Redis(), fastredis.Redis(), cluster):
        cls(good, *args, **kwargs)
    acls(redis.asyncio.Redis(), *args, **kwargs)
    acls(fa.Redis(), *args, **kwargs)
    for bad in ("redis://x", None, object(), redis.Redis().pipeline()):
        with pytest.raises(TypeError, match="needs a sync Redis client .*fastredis.Redis or redis.Redis"):
            cls(bad, *args, **kwargs)
        with pytest.raises(TypeError, match="needs an asyncio Redis client"):
            acls(bad, *args, **kwargs)
    with pytest.raises(TypeError, match=f"use fastredis.asyncio.{name}"):
        cls(redis.asyncio.Redis(), *args, **kwargs)
    with pytest.raises(TypeError, match=f"use fastredis.{name}"):
        acls(redis.Redis(), *args, **kwargs)


def test_wrong_types_and_values() -> None:
    """Issue 12, item 7: a wrong type is a TypeError, a wrong value a ValueError."""
    r = redis.Redis()
    with pytest.raises(TypeError, match="ttl"):
        fastredis.Lock(r, "x", ttl="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        fastredis.Lock(r, "x", ttl=-1)
    with pytest.raises(TypeError, match="n must be an int"):
        fastredis.Leaderboard(r, "lb").plan_top("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fastredis.Leaderboard(r, "lb").plan_top(-3)
    with pytest.raises(TypeError):
        fastredis.FixedWindowLimiter(r, "10", 60)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fastredis.TieredCache(r, ttl="1", local_maxsize=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fastredis.GeoIndex(r, "g").plan_near("0", 0, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fastredis.GeoIndex(r, "g").plan_near(0, 91, 1)
    with pytest.raises(TypeError):
        fastredis.fenced_write("redis://x", "k", "v", 1)  # type: ignore[arg-type]
