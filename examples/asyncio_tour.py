"""The asyncio client's tour (docs/asyncio.md shows it; tests/test_asyncio_client.py runs it).

    python examples/asyncio_tour.py    # starts a throwaway redis-server
"""

from __future__ import annotations

import asyncio

import fastredis.asyncio
from fastredis.exceptions import OutcomeUnknownError


async def tour(r: fastredis.asyncio.Redis) -> None:
    # --- the drop-in asyncio client ------------------------------------------
    # r = fastredis.asyncio.Redis(host="localhost", port=6379)  # same arguments as redis.asyncio.Redis
    await r.set("greeting", "hello")
    assert await r.get("greeting") == b"hello"

    # 1,000 tasks at once: one multiplexed connection, one write per loop iteration
    replies = await asyncio.gather(*(r.incr("hits") for _ in range(1000)))
    assert sorted(replies) == list(range(1, 1001))

    async with r.pipeline(transaction=True) as p:              # MULTI/EXEC, written contiguously
        p.set("a", 1).incr("a").get("a")
        assert await p.execute() == [True, 2, b"2"]

    p = r.pipeline(transaction=False)
    p.batch("SET", ["k1", "k2", "k3"], [1.5, 2.5, 3.5])       # one C loop, lists or numpy
    assert await p.execute() == [True, True, True]

    async def add_one(pipe: fastredis.asyncio.Pipeline) -> None:   # WATCH: a dedicated connection
        value = int(await pipe.get("counter") or 0)
        pipe.multi()
        pipe.set("counter", value + 1)

    assert await r.transaction(add_one, "counter") == [True]

    # blocking commands take a dedicated pool connection: others keep flowing
    waiter = asyncio.ensure_future(r.blpop("jobs", timeout=5))
    await r.rpush("jobs", "job-1")
    assert await waiter in ((b"jobs", b"job-1"), [b"jobs", b"job-1"])

    incr_by = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await incr_by(keys=["n"], args=[5]) == 5

    async with r.pubsub() as ps:                               # redis-py's PubSub, the core's parser
        await ps.subscribe("news")
        await ps.get_message(timeout=1)                        # the subscribe confirmation
        await r.publish("news", "hi")
        message = await ps.get_message(timeout=1)
        assert message is not None and message["data"] == b"hi"

    # cancellation is safe: the reply is read and dropped, never handed to another task
    try:
        await asyncio.wait_for(r.get("greeting"), timeout=0)
    except asyncio.TimeoutError:
        pass
    assert await r.get("greeting") == b"hello"

    # writes are not re-sent once they may have reached the server
    try:
        await r.incr("hits")
    except OutcomeUnknownError as e:                           # a ConnectionError/TimeoutError too
        print("may or may not have been applied:", e.commands)


async def main() -> None:
    from fastredis.server import RedisServer

    with RedisServer() as server:
        async with fastredis.asyncio.Redis(port=server.port) as r:
            await tour(r)
    print("asyncio tour OK")


if __name__ == "__main__":
    asyncio.run(main())
