"""The cluster routing core (``_cluster_c`` and its twin ``_cluster_py``):
hash slots equal redis-py's, commands grouped per node in stack order, odd
input refused without crashing. No server needed."""

from __future__ import annotations

import importlib
from typing import Any, List

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot as redis_key_slot

from conftest import twin_params


@pytest.fixture(params=twin_params("_cluster"))
def core(request: pytest.FixtureRequest) -> Any:
    return importlib.import_module(request.param)


@given(st.one_of(st.binary(max_size=40), st.text(max_size=40)))
def test_slot_of_matches_redis_py(key: Any) -> None:
    for name in ("fastredis._cluster_py", "fastredis._cluster_c"):
        try:
            core = importlib.import_module(name)
        except ImportError:
            continue
        try:
            raw = key if isinstance(key, bytes) else key.encode("utf-8")
        except UnicodeEncodeError:
            with pytest.raises(UnicodeEncodeError):
                core.slot_of(key)
            continue
        assert core.slot_of(key) == redis_key_slot(raw)


def test_slot_of_hash_tags_and_other_types(core: Any) -> None:
    assert core.slot_of("{user1}:a") == core.slot_of("user1") == core.slot_of(b"x{user1}")
    assert core.slot_of("{}x") == redis_key_slot(b"{}x")  # an empty tag hashes the whole key
    assert core.slot_of("a{b") == redis_key_slot(b"a{b")
    assert core.slot_of("é", "latin-1") == redis_key_slot("é".encode("latin-1"))
    for other in (1, 1.5, None, bytearray(b"a"), ["a"]):
        assert core.slot_of(other) == -1


SPECS = {"GET": 1, "SET": 1, "DEL": 2, "EVALSHA": 3}


def _route(core: Any, stack: List[Any], groups_by_slot: Any = None) -> Any:
    groups: List[List[int]] = [[], [], []]
    asked: List[int] = []

    def slot_group(slot: int) -> int:
        asked.append(slot)
        return 0 if slot < 8192 else 1

    ok = core.route(stack, list(range(len(stack))), SPECS, "utf-8", "strict", slot_group, lambda i: 2, groups)
    return ok, groups, asked


def test_route_groups_in_stack_order_and_asks_once_per_slot(core: Any) -> None:
    keys = [f"k{i}" for i in range(200)]
    stack = [(("SET", k, 1), ()) for k in keys] + [(("GET", k), ()) for k in keys]
    ok, groups, asked = _route(core, stack)
    assert ok and len(asked) == len(set(asked)) == len({redis_key_slot(k.encode()) for k in keys})
    assert groups[0] == sorted(groups[0]) and groups[1] == sorted(groups[1])
    assert sorted(groups[0] + groups[1]) == list(range(400)) and groups[2] == []
    for i in groups[0]:
        assert redis_key_slot(stack[i][0][1].encode()) < 8192


def test_route_leaves_the_rest_to_python(core: Any) -> None:
    stack = [
        (("GET", "a"), {"withscores": True}),  # options
        (("GET", 5), ()),  # not str/bytes
        (("get", "a"), ()),  # not in the table
        (("DEL", "a", "b"), ()),  # two slots
        (("DEL", "{t}a", "{t}b"), ()),  # one slot
        (("EVALSHA", "s", 0), ()),  # no keys
        (("EVALSHA", "s", "2", "{t}a", "{t}b"), ()),
        (("EVALSHA", "s", 3, "{t}a"), ()),  # numkeys beyond the arguments
        (("EVALSHA", "s", -1), ()),
        (("EVALSHA", "s", "x1", "a"), ()),
        (("GET",), ()),
        ("not a tuple", ()),
    ]
    ok, groups, _ = _route(core, stack)
    assert ok
    assert groups[2] == [0, 1, 2, 3, 5, 7, 8, 9, 10, 11]
    assert sorted(groups[0] + groups[1]) == [4, 6]


def test_route_stops_when_python_says_so(core: Any) -> None:
    groups: List[List[int]] = [[]]
    stack = [(("PING",), ()), (("HIMPORT",), ()), (("PING",), ())]
    ok = core.route(stack, [0, 1, 2], SPECS, "utf-8", "strict", lambda s: 0, lambda i: -1 if i == 1 else 0, groups)
    assert ok is False and groups == [[0]]


def test_hostile_input_raises_instead_of_crashing(core: Any) -> None:
    groups: List[List[int]] = [[]]
    with pytest.raises(IndexError):
        core.route([(("GET", "a"), ())], [5], SPECS, "utf-8", "strict", lambda s: 0, lambda i: 0, groups)
    with pytest.raises(IndexError):
        core.route([(("GET", "a"), ())], [0], SPECS, "utf-8", "strict", lambda s: 7, lambda i: 0, groups)
    with pytest.raises((TypeError, ValueError, IndexError)):
        core.route([(("GET", "a"),)], [0], SPECS, "utf-8", "strict", lambda s: 0, lambda i: 0, groups)
    try:  # a spec that is not an int: refused by the compiled core, ignored by the twin
        core.route([(("GET", "a"), ())], [0], {"GET": "one"}, "utf-8", "strict", lambda s: 0, lambda i: 0, groups)
    except TypeError:
        pass
    with pytest.raises(ValueError):
        core.scatter([None, None], [0, 1], ["only one"])
    with pytest.raises(IndexError):
        core.scatter([None], [3], ["x"])


def test_encode_and_scatter(core: Any) -> None:
    from fastredis import _resp

    buf = _resp.CommandBuffer()
    stack = [(("SET", "a", 1), ()), (("GET", "a"), ()), (("GET", "b"), ())]
    core.encode_commands(buf.command, stack, [2, 0])
    assert buf.getvalue() == _resp.pack_command(("GET", "b")) + _resp.pack_command(("SET", "a", 1))
    results = [None] * 3
    core.scatter(results, [2, 0], ["b", "a"])
    assert results == ["a", None, "b"]


def test_route_batch_rows_by_precomputed_slots(core: Any) -> None:
    batch = object()  # stands for a batch() stack entry: rows 1..3
    stack = [(("GET", "a"), ()), (batch, ()), (batch, ()), (batch, ()), (("PING",), ())]
    slots = core.slots_of(["x", b"y", 7])
    assert slots[:2] == [redis_key_slot(b"x"), redis_key_slot(b"y")] and slots[2] == -1
    groups: List[List[int]] = [[], [], []]
    ok = core.route(stack, [0, 1, 2, 3, 4], SPECS, "utf-8", "strict",
                    lambda s: 0 if s < 8192 else 1, lambda i: 2, groups, {batch: (1, slots)})
    assert ok and sorted(groups[0] + groups[1]) == [0, 1, 2] and groups[2] == [3, 4]
    with pytest.raises(IndexError):  # a row before its batch: refused, not read out of bounds
        core.route(stack, [1], SPECS, "utf-8", "strict", lambda s: 0, lambda i: 2, groups, {batch: (2, slots)})
    with pytest.raises(IndexError):
        core.route(stack, [3], SPECS, "utf-8", "strict", lambda s: 0, lambda i: 2, groups, {batch: (1, [0])})
