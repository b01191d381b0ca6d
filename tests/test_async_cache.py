"""The asyncio TieredCache against real servers, on fastredis.asyncio.Redis and
redis.asyncio.Redis: the sync twin's results and storage format, L1
coherence through the tracking task (writes by others, tags, FLUSHALL,
CLIENT KILL of the tracking connection, a server that stays down, restart),
single-flight across tasks and processes, async loaders, cancellation, the
decorator, and no task or connection left by a cache never closed."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing as mp
from typing import Any, List

import pytest
import redis
import redis.asyncio
from _async_patterns import aclient, akind, arun, await_until  # noqa: F401

import fastredis
import fastredis.asyncio as fa
from fastredis.exceptions import ClosedError


def _vkey(c: Any, key: str) -> str:
    return c._vkey(key)


def test_same_results_and_format_as_the_sync_twin(redis_url: str, akind: str) -> None:
    sync_client = fastredis.Redis.from_url(redis_url)
    sync_client.flushdb()

    async def main() -> None:
        async with aclient(akind, redis_url) as r, fa.TieredCache(r, prefix="tw", ttl=60) as c:
            assert c.tracking
            with fastredis.TieredCache(sync_client, prefix="tw", ttl=60) as twin:
                await c.set("a", {"x": [1, 2.5, "é"]}, tags=["t"])
                assert twin.get("a") == await c.get("a") == {"x": [1, 2.5, "é"]}  # one storage format
                twin.set("b", None)
                assert await c.get("b", "miss") is None and await c.get("zz", "miss") == "miss"
                await c.set_many({"c": 1, b"d": "D", 5: [5]})
                assert await c.get_many(["c", "d", "5", "zz"]) == twin.get_many(["c", "d", "5", "zz"])
                assert await c.delete("c", "zz") == 1
                twin.invalidate_tags("t")  # the sync twin's invalidation reaches the async L1
                assert await await_until_async(lambda: c.get("a", "miss"), "miss")
                db = {}
                assert await c.set_through("w", 1, lambda v: db.update(w=v), invalidate=["b"]) is None
                assert db == {"w": 1} and await c.get("b", "miss") == "miss"
                assert await c.warm({"m": 1}) == 1
                assert await c.warm(["m", "n"], loader=_upper) == 1 and twin.get("n") == "N"

    arun(main())
    sync_client.close()


async def _upper(key: Any) -> str:
    await asyncio.sleep(0)
    return str(key).upper()


def test_l1_coherence_from_other_writers(redis_url: str, akind: str) -> None:
    async def main() -> None:
        writer = redis.asyncio.Redis.from_url(redis_url)
        async with aclient(akind, redis_url) as r, fa.TieredCache(r, prefix="coh", ttl=60, local_ttl=60) as c:
            await r.flushdb()
            await c.set("k", "old")
            await _in_l1(c, "k", "old")
            await writer.set(_vkey(c, "k"), b'"new"')  # a redis-cli style write
            assert await await_until_async(lambda: c.get("k"), "new")
            await _in_l1(c, "k", "new")
            await writer.flushall()
            assert await await_until(lambda: "k" not in c._l1)
            assert await c.get("k", "miss") == "miss"
        await writer.aclose()

    arun(main())


async def _in_l1(c: Any, key: str, value: Any) -> None:
    for _ in range(500):
        if await c.get(key) == value and key in c._l1:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{key!r} never reached L1")


async def await_until_async(get: Any, want: Any, timeout: float = 5.0) -> bool:
    for _ in range(int(timeout / 0.01)):
        if await get() == want:
            return True
        await asyncio.sleep(0.01)
    return False


def test_killed_tracking_connection_and_server_down(private_server: Any, akind: str) -> None:
    """CLIENT KILL of the tracking connection flushes L1 and reconnects; a server
    that stays down never lets get() return the old L1 value."""

    async def main() -> None:
        killer = redis.Redis(port=private_server.port)
        r = aclient(akind, private_server.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        c = await fa.TieredCache(r, prefix="kill", ttl=60, local_ttl=60).start()
        try:
            await c.set("k", "old")
            await _in_l1(c, "k", "old")
            tracking_ids = [int(x["id"]) for x in killer.client_list() if "t" in str(x.get("flags", ""))]
            assert len(tracking_ids) == 1
            p = killer.pipeline(transaction=False)
            p.execute_command("CLIENT KILL", "ID", tracking_ids[0])
            p.set(_vkey(c, "k"), b'"new"')  # this write's invalidation can never reach the L1
            p.execute()
            assert await await_until_async(lambda: c.get("k"), "new")
            assert await await_until(lambda: c.tracking, 10) and c.tracking_failures >= 1
            await _in_l1(c, "k", "new")
            private_server.stop()
            assert await await_until(lambda: not c.tracking, 10)
            for _ in range(3):
                try:
                    got = await c.get("k", "miss")
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    continue  # L2 unreachable: an error, never the stale L1 copy
                assert got != "new"
            assert "k" not in c._l1
        finally:
            await c.aclose()
            await r.aclose()
            killer.close()

    arun(main())


def test_restart_and_script_flush(private_server: Any, akind: str) -> None:
    async def main() -> None:
        r = aclient(akind, private_server.port)
        async with fa.TieredCache(r, prefix="rs", ttl=60, local_ttl=60) as c:
            await c.set("k", "before", tags=["t"])
            await _in_l1(c, "k", "before")
            await r.script_flush()
            assert await c.get_or_set("k2", _const(2)) == 2
            private_server.restart()
            for _ in range(100):  # the restarted server lost the data: L1 must not serve "before"
                try:
                    if await c.get("k", "miss") == "miss":
                        break
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                await asyncio.sleep(0.05)
            assert await c.get("k", "miss") == "miss"
            assert await await_until(lambda: c.tracking, 10)
            await c.set("k", "tagged", tags=["t"])
            await c.invalidate_tags("t")
            assert await c.get_or_set("k", _const("loaded"), tags=["t"]) == "loaded"
        await r.aclose()

    arun(main())


def _const(value: Any) -> Any:
    async def load() -> Any:
        return value

    return load


def test_single_flight_across_tasks_and_cancellation(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r, fa.TieredCache(r, prefix="sf", ttl=60) as c:
            await r.flushdb()
            calls: List[int] = []

            async def loader() -> str:
                calls.append(1)
                await asyncio.sleep(0.2)
                return "value"

            waiters = [asyncio.ensure_future(c.get_or_set("cold", loader)) for _ in range(64)]
            await asyncio.sleep(0.05)
            for w in waiters[:10]:  # callers that give up do not cancel the shared load
                w.cancel()
            got = await asyncio.gather(*waiters, return_exceptions=True)
            assert len(calls) == 1
            assert got[10:] == ["value"] * 54
            assert all(isinstance(g, asyncio.CancelledError) for g in got[:10])
            assert await c.get("cold") == "value"
            # a failing loader reaches every caller, releases the lease, and a retry works
            async def broken() -> None:
                raise KeyError("boom")

            errors = await asyncio.gather(*(c.get_or_set("bad", broken) for _ in range(5)), return_exceptions=True)
            assert all(isinstance(e, KeyError) for e in errors)
            assert not await r.exists(c._lkey("bad"))
            assert await c.get_or_set("bad", lambda: "ok") == "ok"  # a plain function works too
            with pytest.raises(TypeError, match="loader"):
                await c.get_or_set("k", 5)  # type: ignore[arg-type]

    arun(main())


def _process_loads(args: Any) -> List[Any]:
    url, kind = args

    async def main() -> List[Any]:
        async with aclient(kind, url) as r, fa.TieredCache(r, prefix="stp", ttl=60) as c:
            async def loader() -> dict:
                await r.incr("loads")
                await asyncio.sleep(0.2)
                return {"v": 1}

            return list(await asyncio.gather(*(c.get_or_set("cold", loader) for _ in range(8))))

    return asyncio.run(main())


def test_single_flight_across_processes(redis_url: str, akind: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    with mp.get_context("fork").Pool(6) as pool:
        results = pool.map(_process_loads, [(redis_url, akind)] * 6)
    assert int(r.get("loads")) == 1  # one load in the fleet
    assert [v for res in results for v in res] == [{"v": 1}] * 48
    r.close()


def test_decorator_xfetch_and_negative_caching(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r, fa.TieredCache(r, prefix="dec", ttl=60) as c:
            await r.flushdb()
            calls: List[Any] = []

            @c.cached(ttl=60, tags=["users"])
            async def user(uid: int) -> dict:
                calls.append(uid)
                return {"id": uid}

            assert await user(1) == await user(1) == {"id": 1} and calls == [1]
            await c.invalidate_tags("users")
            assert await user(1) == {"id": 1} and calls == [1, 1]
            assert await user.invalidate(1) == 1
            assert await c.get_or_set("none", _const(None), negative_ttl=0) is None
            assert await c.get("none", "miss") == "miss"  # never cached
            assert await c.get_or_set("n3", _const(None), ttl=60, negative_ttl=2) is None
            assert 1000 < await r.pttl(c._vkey("n3")) <= 2000

    arun(main())


def test_closed_and_dropped_caches(redis_url: str, akind: str) -> None:
    async def main() -> None:
        observer = redis.asyncio.Redis.from_url(redis_url)

        async def tracking_connections() -> int:
            return sum(1 for x in await observer.client_list() if "t" in str(x.get("flags", "")))

        async with aclient(akind, redis_url) as r:
            base = await tracking_connections()
            c = await fa.TieredCache(r, prefix="closed").start()
            await c.set("k", 1)
            await c.aclose()
            await c.aclose()
            for use in (lambda: c.get("k"), lambda: c.set("k", 2), lambda: c.get_or_set("k", _const(3)),
                        lambda: c.get_many(["k"]), lambda: c.delete("k")):
                with pytest.raises(ClosedError):
                    await use()
            # caches never closed: once collected, their tasks end and their connections go
            caches = [await fa.TieredCache(r, prefix=f"gc{i}").start() for i in range(5)]
            tasks = [x._tracker for x in caches]
            assert all(x.tracking for x in caches) and await tracking_connections() == base + 5
            del caches
            gc.collect()
            assert await await_until(lambda: all(t is not None and t.done() for t in tasks), 5)
            for _ in range(200):
                if await tracking_connections() == base:
                    break
                await asyncio.sleep(0.02)
            assert await tracking_connections() == base
        await observer.aclose()

    arun(main())
