"""Cancellation, timeouts and failures of fastredis.asyncio against real
redis-server processes: a reply is never handed to another caller, a
connection in an unknown state is never reused, and writes are not re-sent
once they may have reached the server (the write-retry policy).

Each test runs on the default asyncio loop and on uvloop, and on the
compiled core and its pure-Python twins."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any, Dict, List

import pytest
import redis
from _asyncio_fixtures import acls, loop_kind, run, url  # noqa: F401
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

from fastredis.exceptions import OutcomeUnknownConnectionError, OutcomeUnknownTimeoutError
from fastredis.server import RedisServer


@pytest.mark.parametrize("connections", [1, 3])
def test_random_cancellations_and_timeouts_never_cross_replies(run, acls, url, connections) -> None:
    """Hundreds of tasks, thousands of random cancellations and wait_for
    timeouts: every reply received is the request's own key's value."""
    tasks_n, rounds = 200, 25
    rng = random.Random(1234 + connections)

    async def main() -> Dict[str, int]:
        r = acls.from_url(url, multiplexed_connections=connections)
        p = r.pipeline(transaction=False)
        for i in range(tasks_n):
            p.set(f"own:{i}", f"value-{i}")
            p.hset(f"hash:{i}", mapping={"id": i})
        await p.execute()
        stats = {"ok": 0, "cancelled": 0, "timeout": 0}

        async def worker(i: int) -> None:
            key, expected = f"own:{i}", f"value-{i}".encode()
            for _ in range(rounds):
                mode = rng.random()
                if mode < 0.3:  # wait_for with a timeout that often fires mid-flight
                    try:
                        got = await asyncio.wait_for(r.get(key), rng.choice([0, 0.0001, 0.001, 0.01]))
                    except asyncio.TimeoutError:
                        stats["timeout"] += 1
                        continue
                    assert got == expected, (i, got)
                elif mode < 0.6:  # cancel after a random number of loop iterations
                    task = asyncio.ensure_future(r.get(key))
                    for _ in range(rng.randrange(3)):
                        await asyncio.sleep(0)
                    task.cancel()
                    try:
                        got = await task
                    except asyncio.CancelledError:
                        stats["cancelled"] += 1
                        continue
                    assert got == expected, (i, got)
                elif mode < 0.8:  # a pipeline of this task's own keys, sometimes cancelled
                    pipe = r.pipeline(transaction=rng.random() < 0.5)
                    pipe.get(key).hget(f"hash:{i}", "id").get(key)
                    task = asyncio.ensure_future(pipe.execute())
                    if rng.random() < 0.5:
                        await asyncio.sleep(0)
                        task.cancel()
                    try:
                        got = await task
                    except asyncio.CancelledError:
                        stats["cancelled"] += 1
                        continue
                    assert got == [expected, str(i).encode(), expected], (i, got)
                else:
                    got = await r.get(key)
                    assert got == expected, (i, got)
                stats["ok"] += 1

        await asyncio.gather(*(worker(i) for i in range(tasks_n)))
        # The connections are the same ones, healthy, with no slot left behind.
        assert 1 <= len(r._mux.conns) <= connections
        assert await r.get("own:7") == b"value-7"
        await asyncio.sleep(0.05)
        assert all(c.proto.in_flight == 0 for c in r._mux.conns)
        await r.aclose()
        return stats

    stats = run(main())
    assert stats["cancelled"] + stats["timeout"] >= 1000, stats
    assert stats["ok"] >= 1000, stats


def test_cancelled_before_the_connection_opens_is_never_sent(run, acls, private_server: RedisServer) -> None:
    async def main() -> None:
        r = acls(port=private_server.port)
        private_server.pause()  # TCP accepts, the handshake hangs
        try:
            task = asyncio.ensure_future(r.incr("never"))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            private_server.resume()
        assert await r.incr("counted") == 1
        assert await r.get("never") is None
        await r.aclose()

    run(main())


def _stall(port: int, seconds: float) -> threading.Thread:
    """Another connection runs DEBUG SLEEP: the server stops answering."""

    def sleep() -> None:
        c = redis.Redis(port=port, socket_timeout=30)
        c.execute_command("DEBUG", "SLEEP", seconds)
        c.close()

    t = threading.Thread(target=sleep)
    t.start()
    return t


@pytest.fixture
def debug_server(server_factory: Any) -> RedisServer:
    """A private server that accepts DEBUG SLEEP."""
    return server_factory("--enable-debug-command", "yes")


def test_stall_write_applied_once_outcome_unknown_and_read_retried(run, acls, debug_server: RedisServer) -> None:
    port = debug_server.port

    async def main() -> None:
        r = acls(port=port, socket_timeout=0.1, retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 10))
        await r.set("k", "v")
        # A single INCR: timed out after it was written; applied once, not re-sent.
        t = _stall(port, 0.3)
        await asyncio.sleep(0.05)
        with pytest.raises(OutcomeUnknownTimeoutError) as info:
            await r.incr("n")
        assert info.value.commands == [("INCRBY", "n", 1)] or info.value.commands == [("INCR", "n")]
        assert "outcome unknown for INCR" in str(info.value)
        assert isinstance(info.value, redis.exceptions.TimeoutError)
        t.join()
        # A GET in the same situation is re-sent and succeeds.
        t = _stall(port, 0.3)
        await asyncio.sleep(0.05)
        assert await r.get("k") == b"v"
        t.join()
        assert await r.get("n") == b"1"  # applied exactly once
        # A transaction: never re-sent once EXEC may have been written.
        t = _stall(port, 0.3)
        await asyncio.sleep(0.05)
        p = r.pipeline(transaction=True)
        p.incr("t").get("k")
        with pytest.raises(OutcomeUnknownTimeoutError) as info:
            await p.execute()
        assert len(info.value.commands) == 2
        t.join()
        assert await r.get("t") == b"1"
        # A read-only pipeline is re-sent.
        t = _stall(port, 0.3)
        await asyncio.sleep(0.05)
        p = r.pipeline(transaction=False)
        p.get("k").get("t")
        assert await p.execute() == [b"v", b"1"]
        t.join()
        await r.aclose()
        # retry_writes=True restores redis-py's behaviour: re-sent, applied twice.
        w = acls(port=port, socket_timeout=0.1, retry_writes=True, retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 10))
        await w.ping()
        t = _stall(port, 0.3)
        await asyncio.sleep(0.05)
        assert await w.incr("twice") in (1, 2)
        t.join()
        assert await w.get("twice") in (b"1", b"2")
        await w.aclose()

    run(main())


def test_connection_killed_with_a_write_in_flight(run, acls, private_server: RedisServer) -> None:
    port = private_server.port

    async def main() -> None:
        r = acls(port=port, retry=Retry(NoBackoff(), 3))
        await r.set("k", "v")
        my_id = await r.client_id()
        admin = redis.Redis(port=port)
        admin.execute_command("CLIENT", "PAUSE", 2000, "WRITE")  # our INCR waits in the server
        incr = asyncio.ensure_future(r.incr("n"))
        get = asyncio.ensure_future(r.get("k"))  # behind the INCR, on the same connection
        await asyncio.sleep(0.2)
        assert admin.client_kill_filter(_id=my_id) == 1
        admin.execute_command("CLIENT", "UNPAUSE")
        with pytest.raises(OutcomeUnknownConnectionError) as info:
            await incr
        assert isinstance(info.value, redis.exceptions.ConnectionError)
        assert await get == b"v"  # re-sent on a new connection
        assert await r.get("n") is None  # the killed INCR never ran
        admin.close()
        await r.aclose()

    run(main())


def test_stall_during_a_pipeline_then_reuse(run, acls, debug_server: RedisServer) -> None:
    port = debug_server.port

    async def main() -> None:
        r = acls(port=port, socket_timeout=0.2, retry=Retry(NoBackoff(), 5))
        for i in range(20):
            await r.set(f"own:{i}", i)
        t = _stall(port, 0.1)  # shorter than socket_timeout: nothing fails
        await asyncio.sleep(0.03)
        values = await asyncio.gather(*(r.get(f"own:{i}") for i in range(20)))
        assert values == [str(i).encode() for i in range(20)]
        t.join()
        # A big pipeline cancelled mid-flight while the server is stalled.
        p = r.pipeline(transaction=False)
        for i in range(5000):
            p.incr("big")
        t = _stall(port, 0.15)
        await asyncio.sleep(0.03)
        task = asyncio.ensure_future(p.execute())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        values = await asyncio.gather(*(r.get(f"own:{i}") for i in range(20)))
        assert values == [str(i).encode() for i in range(20)]
        t.join()
        assert await r.get("big") == b"5000"  # written before the cancel: applied, once
        await r.aclose()

    run(main())


def test_connection_refused_then_server_back(run, acls, server_factory) -> None:
    server = server_factory()
    port = server.port

    async def main() -> None:
        r = acls(port=port, retry=Retry(NoBackoff(), 1), socket_connect_timeout=0.5)
        await r.set("k", "v")
        server.kill()
        await asyncio.sleep(0.1)
        with pytest.raises(redis.exceptions.ConnectionError):
            await r.get("k")
        results: List[Any] = await asyncio.gather(*(r.incr("x") for _ in range(50)), return_exceptions=True)
        assert all(isinstance(e, redis.exceptions.ConnectionError) for e in results)
        assert not any(isinstance(e, OutcomeUnknownConnectionError) for e in results)  # nothing was written
        server.restart()
        assert await r.incr("x") == 1
        await r.aclose()

    run(main())


def test_refused_replies_are_retried_and_raised_as_redis_py(run, acls, debug_server: RedisServer) -> None:
    """A LOADING reply (or another ConnectionError-family reply) means the
    server refused the command: re-sent as redis-py does, then raised with
    redis-py's class, never reported outcome-unknown."""

    async def main() -> None:
        for multiplexed in (1, 0):
            r = acls(port=debug_server.port, retry=Retry(NoBackoff(), 2), multiplexed_connections=multiplexed)
            with pytest.raises(redis.exceptions.BusyLoadingError) as info:
                await r.execute_command("DEBUG", "ERROR", "LOADING fake message")
            assert not isinstance(info.value, OutcomeUnknownConnectionError)
            with pytest.raises(redis.exceptions.AuthenticationError):
                await r.execute_command("DEBUG", "ERROR", "ERR invalid password")
            p = r.pipeline()
            p.execute_command("DEBUG", "ERROR", "LOADING fake message")
            with pytest.raises(redis.exceptions.BusyLoadingError):
                await p.execute()
            assert await r.set("still", "works") is True
            await r.aclose()

    run(main())
