"""Lock benchmarks, against redis-py's Lock, python-redis-lock and pottery in the same run.

Run: python -m pytest benchmarks/bench_lock.py --benchmark-only --benchmark-group-by=group
Figures:
- group "lock-cycle": one uncontended acquire + release (cycles/s = 1 / mean).
  fastredis Lock makes 2 round trips per cycle (asserted below, on a counting client);
  redis-py's Lock makes 2 as well; python-redis-lock makes 2 (SET NX EX; release script).
  Target: fastredis >= redis-py and >= python-redis-lock.
- group "lock-handover": time from the holder's release() call to a blocked waiter
  (another thread, waiting on the release channel) holding the lock; the *median*
  is the hand-over latency. Target: median <= 5 ms on loopback.
- group "redlock-cycle": Redlock acquire + release over N=5 local servers, against
  pottery's Redlock (same ttl, both contact the masters concurrently).
python-redis-lock and pottery are optional (`pip install python-redis-lock pottery`);
their cases are skipped when they are missing.
"""

from __future__ import annotations

import threading
import time
from typing import Iterator, List

import pytest
import redis

import fastredis
from fastredis.patterns.lock import Lock, Redlock
from fastredis.server import RedisServer


@pytest.fixture(scope="module")
def masters() -> Iterator[List[RedisServer]]:
    servers = [RedisServer() for _ in range(5)]
    yield servers
    for s in servers:
        s.stop()


def _cycle(lock) -> None:
    lock.acquire(blocking=False)
    lock.release()


@pytest.mark.benchmark(group="lock-cycle")
def test_lock_cycle_fastredis(benchmark, fast):
    lock = Lock(fast, "bench", ttl=10)
    _cycle(lock)  # script loaded
    benchmark(_cycle, lock)
    assert not lock.locked()


@pytest.mark.benchmark(group="lock-cycle")
def test_lock_cycle_fastredis_lock_on_redis_py_client(benchmark, plain):
    lock = Lock(plain, "bench-plain", ttl=10)
    _cycle(lock)
    benchmark(_cycle, lock)


@pytest.mark.benchmark(group="lock-cycle")
def test_lock_cycle_redis_py(benchmark, plain):
    lock = plain.lock("bench-redis-py", timeout=10)
    benchmark(_cycle, lock)


@pytest.mark.benchmark(group="lock-cycle")
def test_lock_cycle_python_redis_lock(benchmark, plain):
    redis_lock = pytest.importorskip("redis_lock")
    lock = redis_lock.Lock(plain, "bench-prl", expire=10)
    benchmark(_cycle, lock)


def test_lock_cycle_is_two_round_trips(fast):
    sent: List[str] = []

    class Counting(fastredis.Redis):
        def execute_command(self, *args, **options):
            sent.append(args[0])
            return super().execute_command(*args, **options)

    c = Counting(port=fast.connection_pool.connection_kwargs["port"])
    lock = Lock(c, "rt", ttl=10)
    _cycle(lock)
    sent.clear()
    _cycle(lock)
    assert sent == ["EVALSHA", "EVALSHA"]
    c.close()


class _Handover:
    """A holder and a waiter thread; each round times release -> waiter holds."""

    def __init__(self, server: RedisServer) -> None:
        self.admin = fastredis.Redis(port=server.port)
        self.holder = Lock(fastredis.Redis(port=server.port), "handover", ttl=30)
        self.waiter = Lock(fastredis.Redis(port=server.port), "handover", ttl=30)
        self.got = threading.Event()
        self.thread: threading.Thread = threading.Thread()

    def _wait(self) -> None:
        self.waiter.acquire(timeout=20)
        self.got.set()

    def setup(self) -> None:
        if self.thread.is_alive():
            self.thread.join()
        if self.waiter.token is not None:
            self.waiter.release()
        self.got.clear()
        assert self.holder.acquire(timeout=5)
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 5
        while self.admin.pubsub_numsub(self.holder.channel)[0][1] < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("waiter never subscribed")
            time.sleep(0.001)
        time.sleep(0.005)  # let the waiter's post-subscribe try fail and go to sleep

    def hand_over(self) -> None:
        self.holder.release()
        if not self.got.wait(10):
            raise RuntimeError("waiter was not woken")

    def close(self) -> None:
        if self.thread.is_alive():
            self.thread.join()
        if self.waiter.token is not None:
            self.waiter.release()


@pytest.mark.benchmark(group="lock-handover")
def test_lock_handover_latency(benchmark, server):
    h = _Handover(server)
    try:
        benchmark.pedantic(h.hand_over, setup=h.setup, rounds=200, warmup_rounds=5)
        assert h.waiter.owned()
    finally:
        h.close()


@pytest.mark.benchmark(group="redlock-cycle")
def test_redlock_cycle_fastredis(benchmark, masters):
    lock = Redlock([fastredis.Redis(port=s.port) for s in masters], "bench-rl", ttl=10, node_timeout=0.05)
    try:
        def cycle() -> None:
            assert lock.acquire()
            lock.release()

        cycle()
        benchmark(cycle)
    finally:
        lock.close()


@pytest.mark.benchmark(group="redlock-cycle")
def test_redlock_cycle_pottery(benchmark, masters):
    pottery = pytest.importorskip("pottery")
    lock = pottery.Redlock(key="bench-pottery", masters={redis.Redis(port=s.port) for s in masters},
                           auto_release_time=10)

    def cycle() -> None:
        assert lock.acquire()
        lock.release()

    benchmark(cycle)
