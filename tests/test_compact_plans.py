"""CompactMap's plans without a server: what each operation sends and how
replies are read (the logic both shells share)."""

from __future__ import annotations

from typing import Any, List

import pytest
import redis

from fastredis.patterns._plan import Plan, drive_value
from fastredis.patterns.compact import ColumnPlan, CompactLayout, CompactMap, _limits


def opened(**kwargs: Any) -> CompactMap:
    m = CompactMap(redis.Redis(), "m", **kwargs)
    m._layout = CompactLayout(100, 10, 512, 64)
    return m


def test_open_reads_limits_then_stores_a_layout() -> None:
    m = CompactMap(redis.Redis(), "users", prefix="p")
    sent: List[Any] = []

    def answer(plan: Plan[Any]) -> Any:
        sent.append([c.args for c in plan.calls])
        if len(sent) == 1:  # HGETALL meta, CONFIG GET, INFO
            return plan.interpret([{}, {b"hash-max-ziplist-entries": b"64", b"hash-max-ziplist-value": b"32"},
                                   {"redis_version": "6.2.14"}])
        return plan.interpret([b"v", b"1", b"n", b"61", b"b", b"25000", b"e", b"64", b"s", b"32"])

    layout = drive_value(m.plan_open(), answer, lambda e: None)
    assert layout == CompactLayout(61, 25000, 64, 32) and m.layout == layout
    assert sent[0] == [("HGETALL", "p:users:meta"), ("CONFIG", "GET", "hash-max-*"), ("INFO", "server")]
    assert sent[1][0][0] == "EVALSHA" and sent[1][0][2:5] == (1, "p:users:meta", 1)
    assert sent[1][0][5] == 61 and sent[1][0][7:] == (64, 32)  # n from the 6.2 limits; b from capacity
    assert m._hexpire is False


def test_open_with_a_stored_layout_is_one_round_trip() -> None:
    m = CompactMap(redis.Redis(), "m")
    calls: List[Any] = []

    def answer(plan: Plan[Any]) -> Any:
        calls.append(plan)
        return plan.interpret([{b"v": b"1", b"n": b"7", b"b": b"3", b"e": b"8", b"s": b"9"},
                               redis.ResponseError("ERR unknown command 'CONFIG'"), {"redis_version": "7.4.0"}])

    assert drive_value(m.plan_open(), answer, lambda e: None) == CompactLayout(7, 3, 8, 9)
    assert len(calls) == 1 and m._hexpire is True


def test_limits_fallbacks() -> None:
    assert _limits(redis.ResponseError("NOPERM"), 128, 64) == (128, 64)
    assert _limits([b"hash-max-listpack-entries", b"100", b"hash-max-listpack-value", b"10"], 1, 1) == (100, 10)
    assert _limits({}, 128, 64) == (128, 64)


def test_item_plans() -> None:
    m = opened()
    get = m.plan_get(250, default="d")
    assert get.calls[0].args == ("HGET", "cm:m:2", 50) and get.interpret(None) == "d"
    assert m.plan_set(-1, b"v").calls[0].args == ("HSET", "cm:m:-1", 99, b"v")
    assert m.plan_set("k", "v").calls[0].args[:3] == ("HSET", m._where("k")[0], b"k")
    assert m.plan_incr(5, 2).calls[0].args == ("HINCRBY", "cm:m:0", 5, 2)
    assert m.plan_contains(5).interpret(1) is True and m.plan_delete(5).interpret(0) is False


def test_many_plans_pick_columns_or_rows() -> None:
    m = opened()
    sparse = m.plan_get_many([1, 1001, 2001])
    assert isinstance(sparse, ColumnPlan) and sparse.groups == [("batch", "HGET", ["cm:m:0", "cm:m:10", "cm:m:20"], [1, 1, 1])]
    assert sparse.interpret([b"a", None, b"c"]) == [b"a", None, b"c"]
    dense = m.plan_get_many([5, 6, 105, 7])
    assert dense.groups == [("row", ("HMGET", "cm:m:0", 5, 6, 7)), ("row", ("HMGET", "cm:m:1", 5))]
    assert dense.interpret([[b"a", b"b", None], [b"c"]]) == [b"a", b"b", b"c", None]
    whole = m.plan_get_many(list(range(20)) + [99])  # 21 items of bucket 0: read it whole
    assert whole.groups == [("row", ("HGETALL", "cm:m:0"), {"NEVER_DECODE": True})]
    assert whole.interpret([{b"0": b"a", b"19": b"t", b"7": b"h"}]) == [b"a"] + [None] * 6 + [b"h"] + [None] * 11 + [b"t", None]
    scattered = m.plan_get_many([1, 101, 2, 102] * 10)  # not contiguous: grouped by bucket
    assert [g[1][0] for g in scattered.groups] == ["HGETALL", "HGETALL"]
    assert scattered.interpret([{b"1": b"a", b"2": b"b"}, {b"1": b"c"}]) == [b"a", b"c", b"b", None] * 10
    rows = m.plan_set_many({1: b"x", 2: b"y"})
    assert rows.groups == [("row", ("HSET", "cm:m:0", 1, b"x", 2, b"y"))] and rows.interpret([2]) == 2
    assert m.plan_get_many([]).interpret([]) == [] and m.plan_set_many([]).interpret([]) == 0


def test_json_values_and_argument_errors() -> None:
    m = opened(serializer="json")
    assert m.plan_set(1, {"a": [1]}).calls[0].args[-1] == b'{"a":[1]}'
    assert m.plan_get(1).interpret(b'{"a":[1]}') == {"a": [1]}
    assert m.plan_get_many([1, 101, 201]).interpret([b"1", None, b'"x"']) == [1, None, "x"]
    with pytest.raises(TypeError):
        m.plan_get(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        m.plan_set_many([(1, 2, 3)])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        m.plan_scan_page(-1)
    with pytest.raises(RuntimeError, match="not open"):
        CompactMap(redis.Redis(), "x").layout
