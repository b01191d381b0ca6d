"""WorkQueue's plans without a server: the pop steps (recovery, reaper,
heartbeat + BLMOVE + claim in one pipeline), ack/nack/extend calls, and
argument checks."""

from __future__ import annotations

from typing import Any, List

import pytest
import redis

from fastredis.exceptions import OutcomeUnknownConnectionError
from fastredis.patterns._plan import Plan
from fastredis.patterns.queue import QueueItem, Stack, WorkQueue


def names(plan: Plan[Any]) -> List[str]:
    return [c.args[0] if c.script is None else c.script.name for c in plan.calls]


def test_pop_steps() -> None:
    q = WorkQueue(redis.Redis(), "jobs", consumer="w", visibility_timeout=10)
    steps = q.plan_pop(timeout=5)
    plan = next(steps)
    assert plan.calls[0].args == ("LRANGE", "q:{jobs}:proc:w", 0, -1)  # first pop: what a previous life left
    plan = steps.send([])
    assert names(plan) == ["queue_reap_begin"]  # the reaper is due
    plan = steps.send(None)  # another reaper holds the lock
    assert names(plan) == ["queue_heartbeat", "BLMOVE", "queue_claim"]
    assert plan.calls[1].args == ("BLMOVE", "q:{jobs}:ready", "q:{jobs}:proc:w", "RIGHT", "LEFT", "2.000")
    elem = b"0123456789abcdef01234567.2:" + b'{"n":1}'
    with pytest.raises(StopIteration) as done:
        steps.send([1, elem, 1])
    item = done.value.value
    assert (item.id, item.value, item.deliveries, item.consumer) == ("0123456789abcdef01234567", {"n": 1}, 3, "w")
    # The next pop: no recovery, no reaper, no heartbeat; a lost reply makes it look at its list.
    steps = q.plan_pop(timeout=0)
    plan = next(steps)
    assert names(plan) == ["LMOVE", "queue_claim"]
    plan = steps.throw(OutcomeUnknownConnectionError("lost"))
    assert plan.calls[0].args[0] == "LRANGE"
    with pytest.raises(StopIteration) as done:  # ours (held) and an orphan: the orphan is delivered
        steps.send([elem, b"0123456789abcdef01234568.0:" + b"2"])
    assert done.value.value.value == 2


def test_stack_pops_the_top() -> None:
    s = Stack(redis.Redis(), "s", consumer="w")
    s._state.recover = False
    s._state.next_reap = float("inf")
    plan = next(s.plan_pop(timeout=1))
    assert plan.calls[1].args[3:5] == ("LEFT", "LEFT")


def test_item_calls_and_errors() -> None:
    q = WorkQueue(redis.Redis(), "jobs", consumer="w")
    item = QueueItem("0123456789abcdef01234567", 1, 1, "other", b"0123456789abcdef01234567.0:1")
    ack = q.plan_ack(item)
    assert ack.calls[0].args[2:] == (2, "q:{jobs}:proc:other", "q:{jobs}:deadlines", item.raw, item.header)
    assert ack.interpret(1) is True and ack.interpret(0) is False
    nack = q.plan_nack(item, failed=False)
    assert nack.calls[0].args[-4:] == (item.raw, 0, 5, "R")
    assert q.plan_extend(item, 2).calls[0].args[-1] == 2000
    with pytest.raises(TypeError):
        q.plan_nack(item, failed=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        q.plan_extend(item, float("nan"))
    with pytest.raises(ValueError):
        q.plan_peek(0)
    push = q.plan_push_many([{"a": 1}, [2]])
    ids = push.interpret([2])
    assert push.calls[0].args[:2] == ("LPUSH", "q:{jobs}:ready") and len(ids) == 2
    assert push.calls[0].args[2] == ids[0].encode() + b'.0:{"a":1}'
