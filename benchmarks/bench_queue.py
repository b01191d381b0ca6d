"""WorkQueue against the hand-written redis-py reliable-queue loop, in the same run.

Run: python -m pytest benchmarks/bench_queue.py --benchmark-only --benchmark-group-by=group

- group "push-1000": ``WorkQueue.push_many`` of 1,000 JSON items (ids made,
  one LPUSH) vs redis-py ``LPUSH`` of the same 1,000 JSON payloads.
- group "cycle-1": one item through the queue: push, pop, ack. fastredis:
  ``push`` + ``pop`` (BLMOVE pipelined with the claim script, on the
  consumer's own connection) + ``ack`` (one script); redis-py: ``LPUSH``,
  ``BLMOVE ready proc RIGHT LEFT``, ``LREM proc -1 item`` (no visibility
  timeout, no delivery count: less work, fewer guarantees).
- group "drain-1000": pop + ack of 1,000 queued items; items/s = 1000 / mean.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

import fastredis

PAYLOADS = [{"job": i, "to": f"user{i}@example.com"} for i in range(1000)]


@pytest.mark.benchmark(group="push-1000")
def test_push_many_workqueue(benchmark: Any, fast: Any) -> None:
    q = fastredis.WorkQueue(fast, "bench-push")
    benchmark(q.push_many, PAYLOADS)
    q.purge()
    q.close()


@pytest.mark.benchmark(group="push-1000")
def test_push_many_redis_py(benchmark: Any, plain: Any) -> None:
    benchmark(lambda: plain.lpush("plain:push", *[orjson.dumps(p) for p in PAYLOADS]))
    plain.delete("plain:push")


@pytest.mark.benchmark(group="cycle-1")
def test_cycle_workqueue(benchmark: Any, fast: Any) -> None:
    q = fastredis.WorkQueue(fast, "bench-cycle", consumer="b")

    def cycle() -> None:
        q.push(PAYLOADS[0])
        item = q.pop(timeout=1)
        assert q.ack(item)

    benchmark(cycle)
    q.close()


@pytest.mark.benchmark(group="cycle-1")
def test_cycle_redis_py(benchmark: Any, plain: Any) -> None:
    def cycle() -> None:
        plain.lpush("plain:ready", orjson.dumps(PAYLOADS[0]))
        raw = plain.blmove("plain:ready", "plain:proc", 1, "RIGHT", "LEFT")
        orjson.loads(raw)
        assert plain.lrem("plain:proc", -1, raw) == 1

    benchmark(cycle)


@pytest.mark.benchmark(group="drain-1000")
def test_drain_workqueue(benchmark: Any, fast: Any) -> None:
    q = fastredis.WorkQueue(fast, "bench-drain", consumer="b")

    def setup() -> Any:
        q.push_many(PAYLOADS)
        return (), {}

    def drain() -> None:
        for _ in range(1000):
            q.ack(q.pop(timeout=1))

    benchmark.pedantic(drain, setup=setup, rounds=10, iterations=1)
    assert q.stats()[:3] == (0, 0, 0)
    q.close()


@pytest.mark.benchmark(group="drain-1000")
def test_drain_redis_py(benchmark: Any, plain: Any) -> None:
    def setup() -> Any:
        plain.lpush("plain:drain", *[orjson.dumps(p) for p in PAYLOADS])
        return (), {}

    def drain() -> None:
        for _ in range(1000):
            raw = plain.blmove("plain:drain", "plain:dproc", 1, "RIGHT", "LEFT")
            orjson.loads(raw)
            plain.lrem("plain:dproc", -1, raw)

    benchmark.pedantic(drain, setup=setup, rounds=10, iterations=1)
