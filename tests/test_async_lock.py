"""The asyncio Lock and Redlock against real servers, on fastredis.asyncio.Redis
and redis.asyncio.Redis: the sync twin's semantics (fencing, replay-safe
scripts, waiting on pub/sub without polling), cancellation (a cancelled
acquire holds nothing), auto-renew as a task that ends with the lock,
mutual exclusion across tasks and processes, restart, CLIENT KILL, SCRIPT FLUSH."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing as mp
import time
from typing import Any, List

import pytest
import redis
import redis.asyncio
from _async_patterns import aclient, akind, arun, await_until  # noqa: F401

import fastredis
import fastredis.asyncio as fa
from fastredis.exceptions import LockError, LockNotOwnedError


def counting(kind: str, url: str) -> Any:
    """An asyncio client of ``kind`` that records the commands it sends."""
    base = fa.Redis if kind == "fastredis" else redis.asyncio.Redis

    class Counting(base):  # type: ignore[misc, valid-type]
        sent: List[Any]

        async def execute_command(self, *args: Any, **options: Any) -> Any:
            self.sent.append(args[0])
            return await super().execute_command(*args, **options)

    c = Counting.from_url(url)
    c.sent = []
    return c


def test_roundtrip_fencing_and_the_sync_twin(redis_url: str, akind: str) -> None:
    sync_client = fastredis.Redis.from_url(redis_url)

    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            await r.flushdb()  # the other variant's locks (held up to 40 s) share this server
            a, b = fa.Lock(r, "job"), fa.Lock(r, "job")
            assert await a.acquire(blocking=False) is True
            assert await a.locked() and await a.owned() and not await b.owned()
            assert await b.acquire(blocking=False) is False
            # the sync twin sees the same lock, and refuses too
            assert not fastredis.Lock(sync_client, "job").acquire(blocking=False)
            first = a.fencing_token
            await a.release()
            with fastredis.Lock(sync_client, "job") as held:  # tokens rise across both twins
                assert held.fencing_token > first
                mid = held.fencing_token
            async with fa.Lock(r, "job") as again:
                assert again.fencing_token > mid
                assert await fa.fenced_write(r, "doc", "v", again.fencing_token)
                assert not await fa.fenced_write(r, "doc", "old", first)
            assert 30 < await (await _held(r, "ext", 20)).extend(20) <= 40  # wide: a loaded machine
            with pytest.raises(LockError, match="not reentrant"):
                lock = await _held(r, "re", 5)
                await lock.acquire(blocking=False)
            with pytest.raises(LockNotOwnedError):
                async with fa.Lock(r, "lost") as held2:
                    await r.delete(held2.key)

    arun(main())
    sync_client.close()


async def _held(r: Any, name: str, ttl: float) -> Any:
    lock = fa.Lock(r, name, ttl=ttl)
    assert await lock.acquire()
    return lock


def test_waiter_woken_by_release_not_by_polling(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as holder_client:
            await holder_client.flushdb()
            holder = fa.Lock(holder_client, "w", ttl=30)  # a waiter bound by pttl would wait 30 s
            await holder.acquire()
            waiter_client = counting(akind, redis_url)
            waiter = fa.Lock(waiter_client, "w")
            task = asyncio.ensure_future(waiter.acquire(timeout=20))
            assert await await_until(lambda: False, 0.5) is False  # let it subscribe and sleep
            numsub = await holder_client.pubsub_numsub(waiter.channel)
            assert numsub[0][1] == 1
            assert waiter_client.sent.count("EVALSHA") <= 2, waiter_client.sent
            t_release = time.monotonic()
            await holder.release()
            assert await asyncio.wait_for(task, 10) is True
            assert time.monotonic() - t_release < 2.0
            assert await waiter.owned()
            await waiter.release()
            assert (await holder_client.pubsub_numsub(waiter.channel))[0][1] == 0  # waiting connection closed
            await waiter_client.aclose()

    arun(main())


def test_timeout_and_crashed_holder(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            await r.flushdb()  # the other variant's waiter still holds "crash"
            holder = await _held(r, "t", 30)
            t0 = time.monotonic()
            assert await fa.Lock(r, "t").acquire(timeout=0.3) is False
            assert 0.25 < time.monotonic() - t0 < 3.0
            await holder.release()
            crashed = await _held(r, "crash", 0.4)
            crashed.token = None  # dies without releasing: nothing is published
            t0 = time.monotonic()
            waiter = fa.Lock(r, "crash")
            assert await waiter.acquire(timeout=10)
            assert 0.2 < time.monotonic() - t0 < 3.0

    arun(main())


def test_cancelled_acquire_holds_nothing(redis_url: str, akind: str) -> None:
    """A waiter cancelled while it sleeps holds nothing; thousands of acquires
    cancelled at random points leave no key behind (their scripts may have
    run: the cancelled acquire releases what it may have taken)."""

    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            await r.flushdb()
            holder = await _held(r, "c", 30)
            waiter = fa.Lock(r, "c")
            task = asyncio.ensure_future(waiter.acquire())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await holder.release()
            assert waiter.token is None and not await fa.Lock(r, "c").locked()
            # many cancellations mid-flight, uncontended names: never a leftover lock
            tasks = []
            for i in range(1000):
                lock = fa.Lock(r, f"n{i % 50}", ttl=30)
                tasks.append((lock, asyncio.ensure_future(lock.acquire(blocking=False))))
                if i % 7 == 0:
                    await asyncio.sleep(0)
                    tasks[-1][1].cancel()
            for i, (lock, t) in enumerate(tasks):
                if i % 3 == 1:
                    t.cancel()
            results = await asyncio.gather(*(t for _, t in tasks), return_exceptions=True)
            for (lock, _), res in zip(tasks, results):
                if res is True:
                    await lock.release()
            await asyncio.sleep(0.3)  # cleanups of cancelled acquires
            left = [k for k in await r.keys("lock:{n*}") if b":state" not in k and b":done:" not in k]
            assert left == []

    arun(main())


def test_mutual_exclusion_between_tasks(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            await r.flushdb()
            inside = []
            max_inside = 0

            async def worker() -> None:
                nonlocal max_inside
                for _ in range(5):
                    async with fa.Lock(r, "mx", ttl=10):
                        inside.append(1)
                        max_inside = max(max_inside, len(inside))
                        value = int(await r.get("counter") or 0)
                        await asyncio.sleep(0.001)
                        await r.set("counter", value + 1)
                        inside.pop()

            await asyncio.gather(*(worker() for _ in range(20)))
            assert max_inside == 1 and int(await r.get("counter")) == 100

    arun(main())


def _process_worker(args: Any) -> int:
    url, kind, rounds = args

    async def main() -> int:
        async with aclient(kind, url) as r:
            for _ in range(rounds):
                async with fa.Lock(r, "procs", ttl=10):
                    value = int(await r.get("pcounter") or 0)
                    await asyncio.sleep(0.001)
                    await r.set("pcounter", value + 1)
            return rounds

    return asyncio.run(main())


def test_mutual_exclusion_across_processes(redis_url: str, akind: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    with mp.get_context("fork").Pool(4) as pool:
        assert sum(pool.map(_process_worker, [(redis_url, akind, 10)] * 4)) == 40
    assert int(r.get("pcounter")) == 40
    r.close()


def test_auto_renew_task_and_on_lost(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            lost: List[Any] = []

            async def on_lost(lock: Any) -> None:
                lost.append(lock)

            lock = fa.Lock(r, "renew", ttl=0.6, auto_renew=True, on_lost=on_lost)
            await lock.acquire()
            await asyncio.sleep(2.0)  # > 3 x ttl of "work"
            assert await lock.owned() and not lost
            assert not await fa.Lock(r, "renew").acquire(blocking=False)
            renewer = lock._renewer
            await lock.release()
            await asyncio.sleep(0)
            assert renewer is not None and renewer.done()
            # a deleted key is noticed within one period, and on_lost (async) runs
            gone = fa.Lock(r, "gone", ttl=0.9, auto_renew=True, on_lost=on_lost)
            await gone.acquire()
            await r.delete(gone.key)
            assert await await_until(lambda: lost == [gone], 5)
            with pytest.raises(LockNotOwnedError):
                await gone.release()
            # a collected lock ends its renew task; the key then expires
            dropped = fa.Lock(r, "gc", ttl=0.6, auto_renew=True)
            await dropped.acquire()
            task = dropped._renewer
            del dropped
            gc.collect()
            assert await await_until(lambda: task is not None and task.done(), 3)
            await asyncio.sleep(0.8)
            assert not await r.exists("lock:{gc}")

    arun(main())


def test_restart_kill_and_script_flush(private_server: Any, akind: str) -> None:
    async def main() -> None:
        r = aclient(akind, private_server.port)
        killer = redis.Redis(port=private_server.port)
        try:
            lock = await _held(r, "f", 30)
            await r.script_flush()
            assert await lock.extend() > 0
            await r.script_flush()
            await lock.release()
            # a waiter whose pub/sub connection is killed subscribes again and is still woken
            holder = await _held(r, "k", 30)
            waiter = fa.Lock(r, "k")
            task = asyncio.ensure_future(waiter.acquire(timeout=20))
            await asyncio.sleep(0.3)
            killer.client_kill_filter(_type="pubsub")
            await asyncio.sleep(0.3)
            await holder.release()
            assert await asyncio.wait_for(task, 10)
            await waiter.release()
            # tokens keep rising across a restart that lost everything
            before = (await _held(r, "rs", 30)).fencing_token
            private_server.restart()
            for _ in range(50):
                try:
                    after = await _held(r, "rs", 30)
                    break
                except (redis.ConnectionError, redis.TimeoutError):
                    await asyncio.sleep(0.05)
            assert after.fencing_token > before
        finally:
            await r.aclose()
            killer.close()

    arun(main())


def test_redlock(server_factory: Any, akind: str) -> None:
    servers = [server_factory() for _ in range(3)]

    async def main() -> None:
        clients = [aclient(akind, s.port) for s in servers]
        a = fa.Redlock(clients, "job", ttl=5, node_timeout=0.2)
        b = fa.Redlock([s.url for s in servers], "job", ttl=5, node_timeout=0.2, retry_count=0)
        try:
            assert await a.acquire() and 0 < a.validity <= 5 and a.owned()
            assert not await b.acquire()
            assert await a.locked()
            assert 4.5 < await a.extend() <= 5
            await a.release()
            assert not await a.locked() and not a.owned()
            servers[0].kill()  # one node of three down: a quorum still works
            async with b:
                assert b.validity > 0
            with pytest.raises(LockError):
                await b.release()
        finally:
            await a.aclose()
            await b.aclose()
            for c in clients:
                await c.aclose()
        with pytest.raises(TypeError):
            fa.Redlock([redis.Redis()], "x")

    arun(main())


def test_redlock_release_waits_for_the_acquire_calls_still_running(server_factory: Any, akind: str) -> None:
    """The asyncio twin of the sync test: a release right after an acquire
    that returned at the quorum must not overtake a slow node's acquire (the
    delay is in the client, a slow link, not in Redis)."""
    servers = [server_factory() for _ in range(5)]

    async def main() -> None:
        clients = [aclient(akind, s.port) for s in servers]
        lock = fa.Redlock(clients, "job", ttl=30, node_timeout=0.5)
        pool = lock.nodes[4].connection_pool  # the node's first connection comes late
        get_connection = pool.get_connection
        delayed: List[Any] = []

        async def slow_link(*args: Any, **kwargs: Any) -> Any:
            if not delayed:
                delayed.append(True)
                await asyncio.sleep(0.2)
            return await get_connection(*args, **kwargs)

        pool.get_connection = slow_link
        try:
            assert await lock.acquire()
            token = lock.token
            await lock.release()
            assert delayed
            await asyncio.sleep(0.4)  # past the delayed call
            held = [await redis.asyncio.Redis(port=s.port).get("lock:{job}") for s in servers]
            assert token is not None and token.encode() not in held, held
        finally:
            await lock.aclose()
            for c in clients:
                await c.aclose()

    arun(main())
