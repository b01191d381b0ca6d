"""The asyncio Channel/Subscription and EventStream/Consumer against real
servers, on fastredis.asyncio.Redis and redis.asyncio.Redis: messages and
entries as the sync twins see them, resubscription after CLIENT KILL (channels
and patterns) and restart, the health check, handlers, async iteration,
claims and dead letters, NOGROUP recovery, cancellation, closed objects,
and no task or connection left by a subscription never closed."""

from __future__ import annotations

import asyncio
import gc
from typing import Any, List

import pytest
import redis
import redis.asyncio
from _async_patterns import aclient, akind, arun, await_until  # noqa: F401

import fastredis
import fastredis.asyncio as fa
from fastredis.exceptions import ClosedError, OutcomeUnknownError


def test_publish_subscribe_like_the_sync_twin(redis_url: str, akind: str) -> None:
    sync_client = fastredis.Redis.from_url(redis_url)
    sync_ch = fastredis.Channel(sync_client, "news")

    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            ch = fa.Channel(r, "news")
            with sync_ch.subscribe() as sync_sub:
                async with ch.subscribe() as sub:
                    assert sub.subscribed
                    assert await ch.publish({"a": [1, 2.5]}) == 2  # both twins' subscribers
                    await r.publish(ch.channel, b"\xffnot json")
                    got = [await sub.get(5), await sub.get(5)]
                    want = [sync_sub.get(5), sync_sub.get(5)]
                    assert got == want
                    assert (got[0].channel, got[0].data) == ("chan:news", {"a": [1, 2.5]})
                    assert got[1].data == b"\xffnot json"
                    assert await sub.get(0.05) is None

    arun(main())
    sync_client.close()


def test_async_iteration_children_and_glob_escape(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            star = fa.Channel(r, "room*")
            async with star.subscribe(children=True) as sub:
                assert await fa.Channel(r, "roomA").child("x").publish("no") == 0
                assert await star.child("a:b*").publish("yes") == 1
                await star.publish("direct")
                seen = []
                async for m in sub:
                    seen.append((m.data, m.pattern))
                    if len(seen) == 2:
                        break
            assert seen == [("yes", "chan:room%2A:*"), ("direct", None)]
            # a Channel is itself an async iterator of its messages
            plain = fa.Channel(r, "plain")

            async def first() -> Any:
                async for m in plain:
                    return m.data

            task = asyncio.ensure_future(first())
            assert await await_until(lambda: False, 0.3) is False
            await plain.publish(7)
            assert await asyncio.wait_for(task, 5) == 7

    arun(main())


def test_handler_task_async_handler_and_errors(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            got: List[Any] = []
            errors: List[Any] = []

            async def handler(m: Any) -> None:
                if m.data == "boom":
                    raise RuntimeError("a failing handler must not end the subscription")
                got.append(m.data)

            async with fa.Channel(r, "h") as ch:
                sub = await ch.subscribe(handler, on_error=errors.append)
                for x in ("boom", 1, 2):
                    await ch.publish(x)
                assert await await_until(lambda: got == [1, 2], 5)
                with pytest.raises(RuntimeError):
                    await sub.get(0.1)
            assert len(errors) == 1 and sub.closed
            with pytest.raises(ClosedError):
                await ch.publish("x")
            assert await await_until(lambda: True)
            assert await fa.Channel(r, "h").publish("x") == 0  # the channel closed its subscription

    arun(main())


def test_resubscribes_channels_and_patterns_after_kill(private_server: Any, akind: str) -> None:
    async def main() -> None:
        killer = redis.Redis(port=private_server.port)
        r = aclient(akind, private_server.port)
        room = fa.Channel(r, "room")
        gaps: List[Any] = []
        async with room.subscribe(children=True, on_gap=gaps.append, max_backoff=0.1) as sub:
            for i in range(5):
                assert killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
                assert await await_until(lambda: len(gaps) == i + 1 and sub.subscribed, 5), f"kill #{i}"
                assert killer.pubsub_numpat() == 1
                assert await room.child("kid").publish({"n": i}) == 1  # a pattern match
                assert await room.publish(i) == 1  # the channel itself
                m1, m2 = await sub.get(5), await sub.get(5)
                assert (m1.data, m1.channel, m2.data) == ({"n": i}, "chan:room:kid", i)
            assert sub.reconnects == 5 and all(g.end >= g.start for g in gaps)
            private_server.restart()
            assert await await_until(lambda: len(gaps) == 6 and sub.subscribed, 10)
            for _ in range(20):
                try:
                    if await room.publish("back") == 1:
                        break
                except (redis.ConnectionError, redis.TimeoutError):
                    await asyncio.sleep(0.05)
            assert (await sub.get(5)).data == "back"
        await r.aclose()
        killer.close()

    arun(main())


def test_silent_server_caught_by_health_check(private_server: Any, akind: str) -> None:
    async def main() -> None:
        r = aclient(akind, private_server.port)
        ch = fa.Channel(r, "s")
        async with ch.subscribe(health_interval=0.3) as sub:
            private_server.pause()
            try:
                assert await sub.get(1.5) is None
            finally:
                private_server.resume()
            assert await await_until(lambda: len(sub.gaps) >= 1 and sub.subscribed, 10)
            await ch.publish("after")
            assert (await sub.get(5)).data == "after"
        await r.aclose()

    arun(main())


def test_closed_and_dropped_subscriptions(redis_url: str, akind: str) -> None:
    async def main() -> None:
        observer = redis.asyncio.Redis.from_url(redis_url)

        async def pubsub_connections() -> int:
            return sum(1 for x in await observer.client_list() if "P" in str(x.get("flags", "")))

        async with aclient(akind, redis_url) as r:
            base = await pubsub_connections()
            sub = await fa.Channel(r, "c").subscribe()
            await sub.aclose()
            with pytest.raises(ClosedError):
                await sub.get(0.1)
            got: List[Any] = []
            subs = [await fa.Channel(r, f"gc{i}").subscribe(got.append) for i in range(5)]
            tasks = [s._pump.task for s in subs]
            assert await pubsub_connections() == base + 5
            del subs
            gc.collect()
            assert await await_until(lambda: all(t.done() for t in tasks), 5)
            for _ in range(200):
                if await pubsub_connections() == base:
                    break
                await asyncio.sleep(0.02)
            assert await pubsub_connections() == base
        await observer.aclose()

    arun(main())


# -- streams -------------------------------------------------------------------


def test_stream_like_the_sync_twin(redis_url: str, akind: str) -> None:
    sync_client = fastredis.Redis.from_url(redis_url)
    sync_client.flushdb()
    sync_stream = fastredis.EventStream(sync_client, "ev")

    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            s = fa.EventStream(r, "ev")
            ids = await s.add_many([{"n": i} for i in range(3)])
            assert await s.length() == len(sync_stream) == 3
            c = s.consumer("g", "c1", block=0.05)
            entries = await c.read()
            assert [e.fields["n"] for e in entries] == [0, 1, 2] and [e.id for e in entries] == ids
            assert await c.ack(*entries) and not await c.ack("0-1")
            assert (await s.pending("g")).count == 0 == sync_stream.pending("g").count
            await s.add({"n": 3})
            # the sync twin reads the same group
            assert [e.fields for e in sync_stream.consumer("g", "c2", block=0.05).read()] == [{"n": 3}]
            assert await c.read() == []
            assert await s.dead_letters() == []

    arun(main())
    sync_client.close()


def test_claims_dead_letters_and_nogroup(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            await r.flushdb()
            s = fa.EventStream(r, "jobs")
            await s.add({"job": 1})
            crashed = s.consumer("w", "crashed", block=0.05)
            assert len(await crashed.read()) == 1  # delivered, never acked
            rescuer = s.consumer("w", "rescuer", min_idle=0.1, max_deliveries=3, block=0.05, claim_interval=0.05)
            await asyncio.sleep(0.15)
            claimed = await rescuer.read()
            assert [e.fields for e in claimed] == [{"job": 1}] and claimed[0].deliveries == 2
            await asyncio.sleep(0.15)
            await asyncio.sleep(0.1)
            again = await rescuer.read()  # its own pending: deliveries 3
            assert again and again[0].deliveries == 3
            await asyncio.sleep(0.15)
            for _ in range(3):
                await rescuer.read()
            assert rescuer.dead_lettered == [claimed[0].id]
            dead = await s.dead_letters()
            assert dead[0].fields["_dead_id"] == claimed[0].id
            await r.delete(s.key)  # NOGROUP: the group is recreated
            await s.add({"job": 2})
            assert [e.fields for e in await rescuer.read()] == [{"job": 2}]

    arun(main())


def test_consumer_iteration_stop_cancel_and_close(redis_url: str, akind: str) -> None:
    async def main() -> None:
        async with aclient(akind, redis_url) as r:
            await r.flushdb()
            s = fa.EventStream(r, "it")
            await s.add_many([{"n": i} for i in range(5)])
            seen = []
            async with s.consumer("g", "c", block=0.05) as c:
                async for entry in c:
                    seen.append(entry.fields["n"])
                    await c.ack(entry)
                    if len(seen) == 5:
                        c.stop()
            assert seen == [0, 1, 2, 3, 4] and c.stopped
            with pytest.raises(ClosedError):
                await c.read()
            # a blocking read cancelled mid-flight: the client stays usable, entries are not lost
            waiter = s.consumer("g", "w", block=5)
            task = asyncio.ensure_future(waiter.read())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await s.add({"n": 5})
            got = await s.consumer("g", "w2", block=0.5).read() + await waiter.read(block=0.1)
            assert [e.fields["n"] for e in got] == [5]  # delivered once, and never lost
            assert await r.set("x", 1) and await r.get("x") == b"1"

    arun(main())


def test_stream_restart_and_kill(private_server: Any, akind: str) -> None:
    async def main() -> None:
        r = aclient(akind, private_server.port)
        killer = redis.Redis(port=private_server.port)
        s = fa.EventStream(r, "ev")
        await s.add({"n": 1})
        con = s.consumer("g", "c", block=0.05)
        first = await con.read()
        assert len(first) == 1 and await con.ack(*first)
        await r.script_flush()
        await s.add({"n": 2})
        second = await con.read()
        assert [e.fields["n"] for e in second] == [2] and await con.ack(*second)
        killer.execute_command("CLIENT", "KILL", "TYPE", "normal")
        await asyncio.sleep(0.05)
        for _ in range(3):
            try:
                await s.add({"n": 3})
                break
            except (redis.ConnectionError, redis.TimeoutError):
                pass
        try:
            got = await con.read()
        except (OutcomeUnknownError, redis.ConnectionError, redis.TimeoutError):
            # a blocking read met its killed pooled connection: outcome unknown.
            # Whatever it may have been delivered is read back from our own pending.
            got = await con.read()
        assert [e.fields["n"] for e in got] == [3]
        private_server.restart()
        for _ in range(50):
            try:
                assert await con.read() == []  # stream and group gone: recreated
                break
            except (redis.ConnectionError, redis.TimeoutError):
                await asyncio.sleep(0.05)
        await s.add({"n": 4})
        assert [e.fields["n"] for e in await con.read()] == [4]
        await r.aclose()
        killer.close()

    arun(main())


def test_bad_arguments(redis_url: str) -> None:
    r = redis.asyncio.Redis.from_url(redis_url)
    s = fa.EventStream(r, "x")
    with pytest.raises(TypeError):
        s.consumer("g", "c", count="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        s.consumer("g", "c", count=0)
    with pytest.raises(ValueError):
        s.consumer("", "c")
    with pytest.raises(TypeError):
        fa.EventStream(r, "x", maxlen="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fa.Channel(r, "c").subscribe(children="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fastredis.Consumer(s, "g", "c")  # a sync consumer of an asyncio stream
    arun(r.aclose())
