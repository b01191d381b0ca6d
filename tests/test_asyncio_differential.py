"""Differential tests: one command script runs on redis.asyncio.Redis (with
hiredis) and on fastredis.asyncio.Redis against the same server, and every
result and every exception (class and text) must be equal.

Parametrised over RESP2, RESP3 and redis-py 8's default protocol,
``decode_responses`` True and False, the compiled core and its pure-Python
twins, and the default asyncio loop and uvloop."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, List

import pytest
import redis
import redis.asyncio
from _asyncio_fixtures import acls, loop_kind, run, url  # noqa: F401


def _norm(value: Any) -> Any:
    """A comparable form: exceptions become (class, text); containers recurse."""
    if isinstance(value, BaseException):
        return ("exception", type(value).__name__, str(value))
    if isinstance(value, dict):
        return ("dict", sorted(((repr(_norm(k)), _norm(v)) for k, v in value.items()), key=lambda kv: kv[0]))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_norm(v) for v in value])
    if isinstance(value, set):
        return ("set", sorted(repr(_norm(v)) for v in value))
    return value


async def _script(r: Any, other: Any) -> List[Any]:
    """Every step's outcome; ``other`` is a plain client that interferes (WATCH)."""
    out: List[Any] = []

    async def step(make: Callable[[], Awaitable[Any]]) -> None:
        try:
            out.append(("ok", _norm(await make())))
        except Exception as e:  # the class and the text must match too
            out.append(("raised", type(e).__name__, str(e)))

    # strings
    await step(lambda: r.set("s", "välue"))
    await step(lambda: r.get("s"))
    await step(lambda: r.set("s2", 1.5, ex=100, nx=True))
    await step(lambda: r.set("s2", "x", get=True))
    await step(lambda: r.getex("s2", persist=True))
    await step(lambda: r.mset({"m1": 1, "m2": b"\xff\x00"}))
    await step(lambda: r.mget(["m1", "m2", "missing"]))
    await step(lambda: r.mget([]))
    await step(lambda: r.incr("n"))
    await step(lambda: r.incrby("n", 10))
    await step(lambda: r.incrbyfloat("f", 2.5))
    await step(lambda: r.append("s", "!"))
    await step(lambda: r.strlen("s"))
    await step(lambda: r.getrange("s", 0, 2))
    await step(lambda: r.setnx("s", "no"))
    await step(lambda: r.ttl("s2"))
    await step(lambda: r.get("m2"))
    # hashes
    await step(lambda: r.hset("h", mapping={"a": 1, "b": "two", "c": 3.25}))
    await step(lambda: r.hget("h", "b"))
    await step(lambda: r.hgetall("h"))
    await step(lambda: r.hmget("h", ["a", "zz", "c"]))
    await step(lambda: r.hincrby("h", "a", 5))
    await step(lambda: r.hincrbyfloat("h", "c", 0.5))
    await step(lambda: r.hkeys("h"))
    await step(lambda: r.hlen("h"))
    await step(lambda: r.hexists("h", "zz"))
    await step(lambda: r.hdel("h", "b"))
    await step(lambda: r.hgetall("nohash"))
    # sorted sets with scores
    await step(lambda: r.zadd("z", {"ann": 1.5, "bob": 2, "cy": -0.25}))
    await step(lambda: r.zincrby("z", 3, "ann"))
    await step(lambda: r.zscore("z", "ann"))
    await step(lambda: r.zscore("z", "nobody"))
    await step(lambda: r.zrange("z", 0, -1, withscores=True))
    await step(lambda: r.zrevrange("z", 0, 1, withscores=True))
    await step(lambda: r.zrangebyscore("z", 0, 10, withscores=True))
    await step(lambda: r.zrank("z", "bob"))
    await step(lambda: r.zmscore("z", ["ann", "x"]))
    await step(lambda: r.zcard("z"))
    await step(lambda: r.zpopmin("z"))
    await step(lambda: r.zrange("z", 0, -1, withscores=True, score_cast_func=int))
    # lists
    await step(lambda: r.rpush("l", "a", "b", "c", "b"))
    await step(lambda: r.lpush("l", 0))
    await step(lambda: r.lrange("l", 0, -1))
    await step(lambda: r.lpop("l"))
    await step(lambda: r.lpop("l", 2))
    await step(lambda: r.rpop("l"))
    await step(lambda: r.lpos("l", "b"))
    await step(lambda: r.llen("l"))
    await step(lambda: r.lpop("nolist"))
    # sets, keys, streams, bits, hyperloglog, geo
    await step(lambda: r.sadd("set", "x", "y", "z"))
    await step(lambda: r.smembers("set"))
    await step(lambda: r.sismember("set", "x"))
    await step(lambda: r.smismember("set", ["x", "q"]))
    await step(lambda: r.exists("s", "h", "nope"))
    await step(lambda: r.type("z"))
    await step(lambda: r.expire("s", 100))
    await step(lambda: r.persist("s"))
    await step(lambda: r.delete("s2", "nope"))
    await step(lambda: r.xadd("st", {"f": "v"}, id="1-1"))
    await step(lambda: r.xadd("st", {"g": 2}, id="2-1"))
    await step(lambda: r.xrange("st"))
    await step(lambda: r.xread({"st": "0"}, count=1))
    await step(lambda: r.xlen("st"))
    await step(lambda: r.setbit("bits", 7, 1))
    await step(lambda: r.bitcount("bits"))
    await step(lambda: r.pfadd("hll", "a", "b"))
    await step(lambda: r.pfcount("hll"))
    await step(lambda: r.geoadd("geo", [13.361389, 38.115556, "palermo", 15.087269, 37.502669, "catania"]))
    await step(lambda: r.geodist("geo", "palermo", "catania", unit="km"))
    await step(lambda: r.sort("l", alpha=True))
    await step(lambda: r.object("encoding", "h"))
    await step(lambda: r.config_get("maxmemory*"))
    await step(lambda: r.echo("hi"))
    await step(lambda: r.ping())
    await step(lambda: r.dbsize())
    # errors
    await step(lambda: r.lpush("h", 1))
    await step(lambda: r.execute_command("NOSUCHCOMMAND", "x"))
    await step(lambda: r.incr("s"))
    await step(lambda: r.set("bad", True))  # type: ignore[arg-type]
    await step(lambda: r.evalsha("0" * 40, 0))
    # scripts
    await step(lambda: r.eval("return {1, 'two', {3, 'four'}, redis.status_reply('OK')}", 0))
    await step(lambda: r.eval("return redis.error_reply('MY error')", 0))
    script = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    await step(lambda: script(keys=["sc"], args=[3]))
    await step(lambda: r.script_flush())
    await step(lambda: script(keys=["sc"], args=[4]))

    # pipelines, without and with a transaction, with a failing command
    async def pipeline(transaction: bool, raise_on_error: bool) -> Any:
        p = r.pipeline(transaction=transaction)
        p.set("p1", 1).incr("p1").lpush("p1", "x").get("p1").hgetall("h").zrange("z", 0, -1, withscores=True)
        p.mget([]) if not transaction else p.ping()
        return await p.execute(raise_on_error=raise_on_error)

    for transaction in (False, True):
        for raise_on_error in (True, False):
            await step(lambda: pipeline(transaction, raise_on_error))

    async def exec_abort() -> Any:
        p = r.pipeline(transaction=True)
        p.set("a1", 1).execute_command("SET").get("a1")
        return await p.execute()

    await step(exec_abort)

    async def script_in_pipeline() -> Any:
        await r.script_flush()
        p = r.pipeline()
        await script(keys=["sc"], args=[1], client=p)
        p.get("sc")
        return await p.execute()

    await step(script_in_pipeline)

    async def watched(interfere: bool) -> Any:
        async with r.pipeline() as p:
            await p.watch("w")
            before = await p.get("w")
            if interfere:
                await other.set("w", "theirs")
            p.multi()
            p.set("w", "mine").get("w")
            return before, await p.execute()

    await step(lambda: watched(False))
    await step(lambda: watched(True))
    await step(lambda: r.get("w"))

    # pub/sub messages
    async def pubsub() -> Any:
        messages = []
        async with r.pubsub() as ps:
            await ps.subscribe("ch1")
            await ps.psubscribe("p*")
            # Publish only once the server confirmed both subscriptions: they
            # travel on another connection, so a PUBLISH sent at once may
            # overtake them (with either client).
            while len(messages) < 2:
                m = await ps.get_message(timeout=2)
                if m is None:
                    break
                messages.append(m)
            await r.publish("ch1", "one")
            await r.publish("px", b"two")
            while len(messages) < 4:  # then the message and the pmessage
                m = await ps.get_message(timeout=2)
                if m is None:
                    break
                messages.append(m)
            await ps.unsubscribe("ch1")
            messages.append(await ps.get_message(timeout=2))
        return messages

    await step(pubsub)
    return out


@pytest.mark.parametrize("protocol", [2, 3, None], ids=["resp2", "resp3", "default"])
@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "decoded"])
def test_same_results_and_errors_as_redis_asyncio(run, acls, url, protocol, decode) -> None:
    kwargs: Any = {"decode_responses": decode}
    if protocol is not None:
        kwargs["protocol"] = protocol

    async def one(cls: Any) -> List[Any]:
        plain = redis.Redis.from_url(url)
        plain.flushall()
        plain.close()
        r = cls.from_url(url, **kwargs)
        other = redis.asyncio.Redis.from_url(url)
        try:
            return await _script(r, other)
        finally:
            await r.aclose()
            await other.aclose()

    async def main() -> Any:
        expected = await one(redis.asyncio.Redis)
        got = await one(acls)
        return expected, got

    assert redis.utils.HIREDIS_AVAILABLE
    expected, got = run(main())
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert g == e, f"step {i}: redis.asyncio gave {e!r}, fastredis.asyncio gave {g!r}"


def test_same_results_under_concurrency(run, acls, url) -> None:
    """Many tasks at once (the multiplexed path) give what redis.asyncio gives one by one."""

    async def main() -> None:
        plain = redis.asyncio.Redis.from_url(url)
        r = acls.from_url(url)
        await plain.flushall()
        for i in range(200):
            await plain.zadd(f"z{i}", {f"m{j}": j * 0.5 for j in range(5)})
        expected = [await plain.zrange(f"z{i}", 0, -1, withscores=True) for i in range(200)]
        got = await asyncio.gather(*(r.zrange(f"z{i}", 0, -1, withscores=True) for i in range(200)))
        assert list(got) == expected
        await r.aclose()
        await plain.aclose()

    run(main())
