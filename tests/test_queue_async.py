"""The asyncio WorkQueue and Stack on fastredis.asyncio.Redis and
redis.asyncio.Redis: the same behaviour as the sync twins, the blocking pop
on its own connection (other commands go on meanwhile), close() ending a
waiting pop, cancelled and timed-out pops losing nothing, many tasks
consuming at once, SCRIPT FLUSH and CLIENT KILL."""

from __future__ import annotations

import asyncio
import collections
import random
import time
from typing import Any, Dict, List

import pytest
import redis
import redis.asyncio

import fastredis
import fastredis.asyncio as fa
from fastredis.exceptions import OutcomeUnknownError
from fastredis.patterns.queue import QueueClosedError

from _asyncio_fixtures import LOOPS, run_on

KINDS = ["fastredis", "redis-py"]


def aclient(kind: str, url: str) -> Any:
    if kind == "fastredis":
        return fa.Redis.from_url(url)
    return redis.asyncio.Redis.from_url(url, max_connections=1000)


def arun(coro: Any, timeout: float = 120.0, loop: str = "asyncio") -> Any:
    return run_on(loop, coro, timeout)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cls", ["WorkQueue", "Stack"])
def test_same_behaviour_as_the_sync_twin(redis_url: str, r: Any, kind: str, cls: str, loop: str) -> None:
    def play_sync() -> List[Any]:
        q = getattr(fastredis, cls)(r, "sync", consumer="c", max_deliveries=2)
        q.push_many([1, 2, 3])
        out: List[Any] = [q.peek(3), len(q)]
        a = q.pop(0)
        out += [a.value, a.deliveries, q.nack(a)]
        b = q.pop(0)
        out += [b.value, b.deliveries, q.ack(a), q.nack(b), [d.value for d in q.dead_letters()], q.requeue_dead()]
        items = [q.pop(0) for _ in range(3)]
        out += [[i.value for i in items], [q.ack(i) for i in items], q.pop(0), tuple(q.stats())]
        q.close()
        return out

    async def play_async() -> List[Any]:
        async with aclient(kind, redis_url) as ar:
            async with getattr(fa, cls)(ar, "async", consumer="c", max_deliveries=2) as q:
                await q.push_many([1, 2, 3])
                out: List[Any] = [await q.peek(3), await q.length()]
                a = await q.pop(0)
                out += [a.value, a.deliveries, await q.nack(a)]
                b = await q.pop(0)
                out += [b.value, b.deliveries, await q.ack(a), await q.nack(b),
                        [d.value for d in await q.dead_letters()], await q.requeue_dead()]
                items = [await q.pop(0) for _ in range(3)]
                out += [[i.value for i in items], [await q.ack(i) for i in items], await q.pop(0),
                        tuple(await q.stats())]
                return out

    assert arun(play_async(), loop=loop) == play_sync()


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("kind", KINDS)
def test_blocking_pop_has_its_own_connection_and_close_ends_it(redis_url: str, r: Any, kind: str, loop: str) -> None:
    async def main() -> None:
        async with aclient(kind, redis_url) as ar:
            q = fa.WorkQueue(ar, "block", consumer="w")
            waiting = asyncio.create_task(q.pop(timeout=None))
            while not any(c.get("cmd") == "blmove" for c in r.client_list()):
                await asyncio.sleep(0.01)
            # The client's own connections keep serving other commands meanwhile.
            started = time.monotonic()
            assert await ar.ping() and await ar.incr("n") == 1
            assert time.monotonic() - started < 5.0  # blocked behind BLMOVE it would wait forever; the margin is for a loaded machine
            await q.push("late")
            item = await asyncio.wait_for(waiting, 10)
            assert item.value == "late" and await q.ack(item)
            waiting = asyncio.create_task(q.pop(timeout=None))
            while not any(c.get("cmd") == "blmove" for c in r.client_list()):
                await asyncio.sleep(0.01)
            await q.close()
            assert await asyncio.wait_for(waiting, 5) is None
            with pytest.raises(QueueClosedError):
                await q.pop(0)

    arun(main(), loop=loop)
    assert not any(c.get("cmd") == "blmove" for c in r.client_list())


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("kind", KINDS)
def test_cancelled_and_timed_out_pops_lose_nothing(redis_url: str, kind: str, loop: str) -> None:
    n = 300

    async def main() -> Dict[int, int]:
        async with aclient(kind, redis_url) as ar:
            q = fa.WorkQueue(ar, "cancel", consumer="w", visibility_timeout=60)
            producer = fa.WorkQueue(ar, "cancel")
            got: Dict[int, int] = collections.Counter()
            rng = random.Random(3)

            async def produce() -> None:
                for i in range(n):
                    await producer.push(i)
                    await asyncio.sleep(rng.uniform(0, 0.003))

            task = asyncio.create_task(produce())
            while len(got) < n:
                try:
                    item = await asyncio.wait_for(q.pop(timeout=1), rng.uniform(0.0005, 0.01))
                except asyncio.TimeoutError:
                    continue  # cancelled mid-BLMOVE: the next pop looks at the processing list
                if item is not None:
                    assert await q.ack(item)
                    got[item.value] += 1
            await task
            assert tuple(await q.stats())[:3] == (0, 0, 0)
            await q.close()
            return got

    got = arun(main(), loop=loop)
    assert sorted(got) == list(range(n)) and set(got.values()) == {1}


@pytest.mark.parametrize("kind", KINDS)
def test_many_tasks_consume_once_each_through_kills_and_script_flush(private_server: Any, kind: str) -> None:
    n = 1500
    url = private_server.url
    plain = redis.Redis(port=private_server.port)

    async def main() -> Any:
        async with aclient(kind, url) as ar:
            await fa.WorkQueue(ar, "tasks").push_many(range(n))
            acked: Dict[int, int] = collections.Counter()
            unknown: List[int] = []
            stop = asyncio.Event()

            async def consume(i: int) -> None:
                async with fa.WorkQueue(ar, "tasks", consumer=f"t{i}", visibility_timeout=1.0,
                                        reap_interval=0.1) as q:
                    while not stop.is_set():
                        try:
                            item = await q.pop(timeout=0.2)
                        except redis.ConnectionError:
                            await asyncio.sleep(0.01)
                            continue
                        if item is None:
                            continue
                        while True:
                            try:
                                ok = await q.ack(item)
                                break
                            except OutcomeUnknownError:
                                unknown.append(item.value)
                            except redis.ConnectionError:
                                await asyncio.sleep(0.01)
                        if ok:
                            acked[item.value] += 1

            async def chaos() -> int:
                kills = 0
                while len(set(acked) | set(unknown)) < n:
                    await asyncio.sleep(random.uniform(0.01, 0.05))
                    if kills % 10 == 5:
                        plain.script_flush()
                    plain.client_kill_filter(_type="normal", skipme=True)
                    kills += 1
                return kills

            consumers = [asyncio.create_task(consume(i)) for i in range(8)]
            kills = await chaos()
            q = fa.WorkQueue(ar, "tasks")

            async def stats() -> Any:
                while True:
                    try:
                        return tuple(await q.stats())
                    except redis.ConnectionError:  # the last kill may still be landing
                        await asyncio.sleep(0.05)

            deadline = time.monotonic() + 60
            while (await stats())[:3] != (0, 0, 0) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*consumers)
            return acked, unknown, kills, await stats()

    acked, unknown, kills, stats = arun(main(), 180)
    assert stats[:3] == (0, 0, 0)
    assert all(c == 1 for c in acked.values())
    assert set(acked) | set(unknown) == set(range(n))
    assert kills > 3


def test_accepts_only_asyncio_clients(r: Any) -> None:
    with pytest.raises(TypeError, match="fastredis.WorkQueue"):
        fa.WorkQueue(r, "q")
    with pytest.raises(TypeError, match="fastredis.asyncio.Stack"):
        fastredis.Stack(redis.asyncio.Redis(), "q")
