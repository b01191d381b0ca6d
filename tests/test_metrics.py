"""fastredis.metrics against real servers: every pattern's measurements, the
hook and OpenTelemetry sinks, and nothing swapped or recorded while off."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, Dict, List, Tuple

import pytest

import fastredis
import fastredis.asyncio as fa
from fastredis import metrics
from fastredis.patterns.cache import TieredCache


@pytest.fixture(autouse=True)
def metrics_off() -> Any:
    metrics.disable()
    yield
    metrics.disable()


def tally(events: List[metrics.Event], name: str, attr: str) -> Dict[Any, float]:
    out: Counter = Counter()
    for e in events:
        if e.name == name:
            out[e.attributes[attr]] += e.value
    return dict(out)


def test_off_by_default_and_hot_paths_untouched() -> None:
    original_get = TieredCache.__dict__["get"]
    original_aget = fa.TieredCache.__dict__["get"]
    assert metrics.ON is False
    metrics.set_hook(lambda *a: None)
    assert metrics.ON is True and TieredCache.__dict__["get"] is not original_get
    assert fa.TieredCache.__dict__["get"] is not original_aget
    metrics.disable()
    assert metrics.ON is False
    assert TieredCache.__dict__["get"] is original_get and fa.TieredCache.__dict__["get"] is original_aget
    with metrics.recording():
        pass
    assert TieredCache.__dict__["get"] is original_get


def test_limiter_decisions_sync_local_and_async(r: Any, redis_url: str) -> None:
    lim = fastredis.FixedWindowLimiter(r, limit=2, window=3600, local=True)
    lim.metrics_name = "api"
    with metrics.recording() as events:
        for _ in range(5):
            lim.hit("k")  # 2 allowed, 1 denied by Redis, 2 denied by the deny cache
        lim.hit_many(["a", "b", "a", "a"])
        lim.peek("k")  # not a decision
    assert tally(events, "fastredis.ratelimit.decisions", "fastredis.decision") == {"allowed": 5, "denied": 4}
    assert {e.attributes["fastredis.limiter"] for e in events} == {"api"}

    async def main() -> List[metrics.Event]:
        async with fa.Redis.from_url(redis_url) as ar:
            both = fa.CompositeLimiter([fa.FixedWindowLimiter(ar, 1, 3600, prefix="m1"), fa.FixedWindowLimiter(ar, 5, 3600, prefix="m1")])
            with metrics.recording() as got:
                await both.hit("x")
                await both.hit("x")
            return got

    events = asyncio.run(main())
    assert tally(events, "fastredis.ratelimit.decisions", "fastredis.decision") == {"allowed": 1, "denied": 1}
    assert events[0].attributes["fastredis.limiter"].startswith("CompositeLimiter(")


def test_cache_lookups_and_loads(r: Any) -> None:
    with TieredCache(r, prefix="mc", ttl=60) as cache:
        cache.set("a", 1)
        with metrics.recording() as events:
            assert cache.get("a") == 1  # L2 (our own write dropped it from L1)
            deadline = time.monotonic() + 2
            while cache.get_local("a", None) is None and time.monotonic() < deadline:
                cache.get("a")
            events.clear()
            cache.get("a")  # L1
            cache.get("missing")
            cache.get_or_set("loaded", lambda: 5)
            with pytest.raises(ZeroDivisionError):
                cache.get_or_set("broken", lambda: 1 / 0)
            cache.get_many(["a", "missing", "loaded"])
        lookups = tally(events, "fastredis.cache.lookups", "fastredis.result")
        assert lookups["l1_hit"] >= 2 and lookups["miss"] >= 2, lookups
        loads = tally(events, "fastredis.cache.loads", "fastredis.outcome")
        assert loads == {"ok": 1, "error": 1}
        durations = [e for e in events if e.name == "fastredis.cache.load.duration"]
        assert len(durations) == 2 and all(e.value >= 0 for e in durations)
        assert {e.attributes["fastredis.cache"] for e in events} == {"TieredCache:mc"}


def test_async_cache_lookups(redis_url: str) -> None:
    async def main() -> List[metrics.Event]:
        async with fa.Redis.from_url(redis_url) as ar:
            async with fa.TieredCache(ar, prefix="amc", ttl=60) as cache:
                await cache.set("a", 1)
                with metrics.recording() as events:
                    for _ in range(20):
                        await cache.get("a")
                        await asyncio.sleep(0.01)
                    await cache.get_or_set("b", lambda: 2)
                return events

    events = asyncio.run(main())
    lookups = tally(events, "fastredis.cache.lookups", "fastredis.result")
    assert lookups.get("l2_hit", 0) >= 1 and lookups.get("l1_hit", 0) >= 1, lookups
    assert tally(events, "fastredis.cache.loads", "fastredis.outcome") == {"ok": 1}


def test_lock_acquire_time_and_losses(r: Any, redis_url: str) -> None:
    a, b = fastredis.Lock(r, "job", ttl=0.2), fastredis.Lock(r, "job", ttl=0.2)
    with metrics.recording() as events:
        assert a.acquire()
        assert not b.acquire(timeout=0.05)
        time.sleep(0.3)  # a's hold expires
        with pytest.raises(fastredis.LockNotOwnedError):
            a.extend()
        with pytest.raises(fastredis.LockNotOwnedError):
            a.release()  # the same loss: counted once
        assert b.acquire()
        b.release()
    acquires = [(e.attributes["fastredis.acquired"], e.value) for e in events if e.name == "fastredis.lock.acquire.duration"]
    assert [ok for ok, _ in acquires] == [True, False, True]
    assert acquires[1][1] >= 0.04
    losses = [e for e in events if e.name == "fastredis.lock.losses"]
    assert len(losses) == 1 and losses[0].attributes["fastredis.lock"] == a.key

    servers = [redis_url]
    rl = fastredis.Redlock(servers, "rl-job")
    try:
        with metrics.recording() as events:
            assert rl.acquire()
            rl.release()
        assert [e.attributes["fastredis.acquired"] for e in events if e.name == "fastredis.lock.acquire.duration"] == [True]
    finally:
        rl.close()


def test_stream_deliveries_and_dead_letters(r: Any) -> None:
    s = fastredis.EventStream(r, "mq")
    s.add({"n": 1})
    s.add({"n": 2})
    with metrics.recording() as events:
        for i in range(3):  # crashing consumers: read, never ack
            c = s.consumer("g", f"crash{i}", min_idle=0, max_deliveries=2, block=0, claim_interval=0)
            c.read()
        final = s.consumer("g", "final", min_idle=0, max_deliveries=2, block=0, claim_interval=0)
        final.read()
        final.read()
    delivered = sum(e.value for e in events if e.name == "fastredis.stream.deliveries")
    dead = sum(e.value for e in events if e.name == "fastredis.stream.dead_letters")
    assert delivered >= 4
    assert dead == 2 == len(s.dead_letters())
    assert {e.attributes["fastredis.stream"] for e in events} == {s.key}
    assert {e.attributes["fastredis.group"] for e in events} == {"g"}


def test_pubsub_reconnects(private_server: Any) -> None:
    client = private_server.client()
    killer = private_server.client()
    chan = fastredis.Channel(client, "news")
    with metrics.recording() as events:
        sub = chan.subscribe()
        try:
            assert sub.get(timeout=0.2) is None or True
            for _ in range(2):
                killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
                chan.publish({"x": 1})
                deadline = time.monotonic() + 10
                while sub.get(timeout=0.2) is None and time.monotonic() < deadline:
                    chan.publish({"x": 1})
        finally:
            sub.close()
            chan.close()
    reconnects = [e for e in events if e.name == "fastredis.pubsub.reconnects"]
    assert len(reconnects) == 2 == sub.reconnects
    assert "news" in reconnects[0].attributes["fastredis.channel"]


def test_hook_errors_never_break_an_operation(r: Any, caplog: Any) -> None:
    def bad(name: str, value: float, attributes: Any) -> None:
        raise RuntimeError("exporter down")

    metrics.set_hook(bad)
    lim = fastredis.FixedWindowLimiter(r, limit=10, window=3600)
    with caplog.at_level(logging.WARNING, logger="fastredis.metrics"):
        assert lim.hit("k").allowed and lim.hit("k").allowed
    assert sum("exporter" in (rec.exc_text or "") or "raised" in rec.getMessage() for rec in caplog.records) == 1
    with pytest.raises(TypeError):
        metrics.set_hook("not callable")  # type: ignore[arg-type]


def test_opentelemetry_sink(r: Any) -> None:
    pytest.importorskip("opentelemetry.sdk.metrics")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    metrics.enable_opentelemetry(MeterProvider(metric_readers=[reader]))
    lim = fastredis.FixedWindowLimiter(r, limit=2, window=3600)
    lim.metrics_name = "otel"
    for _ in range(3):
        lim.hit("k")
    with TieredCache(r, prefix="otel") as cache:
        cache.get_or_set("x", lambda: 1)
        cache.get("absent")
        cache.apply_invalidations()
        for _ in range(5):
            cache.get("x")
    data = reader.get_metrics_data()
    points: Dict[Tuple[str, Any], float] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "fastredis"
            for m in sm.metrics:
                for p in m.data.data_points:
                    attrs = dict(p.attributes)
                    label = attrs.get("fastredis.decision") or attrs.get("fastredis.outcome") or attrs.get("fastredis.result")
                    points[(m.name, label)] = getattr(p, "value", getattr(p, "count", None))
    assert points[("fastredis.ratelimit.decisions", "allowed")] == 2
    assert points[("fastredis.ratelimit.decisions", "denied")] == 1
    assert points[("fastredis.cache.loads", "ok")] == 1
    assert points[("fastredis.cache.load.duration", "ok")] == 1  # a histogram: one measurement
    assert points[("fastredis.cache.lookups", "miss")] == 1
    assert points[("fastredis.cache.lookups", "l1_hit")] + points.get(("fastredis.cache.lookups", "l2_hit"), 0) == 5
