"""fastredis.asyncio.RedisCluster on a real 3-master cluster (one for the
module): results, callbacks and errors as redis.asyncio.cluster.RedisCluster's,
redirects during a live slot migration, killed connections under the
write-retry policy, batch(), transactions and scripts."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List

import pytest
import redis.asyncio
import redis.asyncio.cluster
from redis.exceptions import (
    CrossSlotTransactionError,
    MaxConnectionsError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
    WatchError,
)

import fastredis.asyncio as fa
from fastredis import _resp_py
from fastredis.asyncio.cluster import ClusterPipeline, RedisCluster, cluster_class_for
from fastredis.asyncio.connection import FastAsyncParser
from fastredis.cluster import key_slot
from fastredis.exceptions import OutcomeUnknownConnectionError
from fastredis.scripts import LuaScript, arun_pipeline
from fastredis.server import RedisCluster as ClusterHarness

pytestmark = pytest.mark.cluster

PlainCluster = redis.asyncio.cluster.RedisCluster


def _run(cluster: ClusterHarness, body: Callable[..., Awaitable[None]], **kwargs: Any) -> None:
    """``body(fast, plain)`` on a flushed cluster, both clients closed after."""

    async def main() -> None:
        fast = RedisCluster(host=cluster.host, port=cluster.ports[0], **kwargs)
        plain = PlainCluster(host=cluster.host, port=cluster.ports[0], **kwargs)
        try:
            await fast.flushall()
            await body(fast, plain)
        finally:
            await fast.aclose()
            await plain.aclose()

    asyncio.run(asyncio.wait_for(main(), 60))


def _count_rounds(monkeypatch: pytest.MonkeyPatch) -> List[Dict[str, int]]:
    """Each round of a pipeline: node name (+ " ASK") -> commands sent."""
    rounds: List[Dict[str, int]] = []
    original = ClusterPipeline._send_and_read

    async def spy(self: Any, groups: Any, rows: Any, stack: Any) -> None:
        rounds.append({f"{g.node.name}{' ASK' if g.asking else ''}": len(g.idxs) for g in groups})
        await original(self, groups, rows, stack)

    monkeypatch.setattr(ClusterPipeline, "_send_and_read", spy)
    return rounds


# -- the client --------------------------------------------------------------
def test_client_construction_and_fast_parser(cluster: ClusterHarness) -> None:
    async def body(fast: Any, plain: Any) -> None:
        assert await fast.set("k", "v") and await fast.get("k") == b"v"
        node = fast.get_node_from_key("k")
        conn = node.acquire_connection()
        try:
            assert type(conn._parser) is FastAsyncParser
        finally:
            node.release(conn)
        assert type(fast.pipeline()) is ClusterPipeline
        url = RedisCluster.from_url(f"redis://{cluster.host}:{cluster.ports[0]}", retry_writes=True)
        assert type(url) is RedisCluster and url.retry_writes and url.pipeline().retry_writes
        await url.aclose()
        with pytest.raises(TypeError):
            RedisCluster(host=cluster.host, port=cluster.ports[0], retry_writes="yes")  # type: ignore[arg-type]
        assert fa.RedisCluster is RedisCluster and "RedisCluster" in fa.__all__

    _run(cluster, body)


# -- differential ---------------------------------------------------------------
async def _mixed(client: Any) -> List[Any]:
    p = client.pipeline()
    for i in range(60):
        key = f"key:{i}"
        p.set(key, i).get(key).incrby(key, 2).hset(f"h:{i}", mapping={"a": i, "b": "x"}).hgetall(f"h:{i}")
    p.zadd("z", {"m1": 1, "m2": 2.5}).zrange("z", 0, -1, withscores=True).zscore("z", "m2")
    p.lpush("l", 1, 2, 3).lrange("l", 0, -1).sadd("s", "a", "b").smembers("s").scard("s")
    p.set("e", 1, ex=100).ttl("e").expire("e", 50).set("g", "old").set("g", "new", get=True)
    p.exists("key:1", "key:2", "nokey").delete("key:3", "key:4").mset_nonatomic({"m:1": 1, "m:2": 2})
    p.hincrbyfloat("f", "x", 1.5).get("missing").type("z").execute_command("GET", "key:5")
    p.xadd("{x}s", {"f": "v"}, id="1-1").xlen("{x}s").xrange("{x}s").object("encoding", "l")
    return await p.execute()  # type: ignore[no-any-return]


@pytest.mark.parametrize("decode", [False, True])
def test_mixed_pipeline_matches_redis_py(cluster: ClusterHarness, decode: bool) -> None:
    async def body(fast: Any, plain: Any) -> None:
        expected = await _mixed(plain)
        await fast.flushall()
        got = await _mixed(fast)
        assert got == expected
        assert len({fast.keyslot(f"key:{i}") for i in range(60)}) == 60  # many slots, every node
        # A callback set on the client applies in pipelines, as in redis-py.
        for client in (fast, plain):
            client.set_response_callback("GET", lambda r, **kw: ("got", r))
        assert await fast.pipeline().get("key:7").strlen("key:7").execute() == await plain.pipeline().get("key:7").strlen("key:7").execute()
        assert (await fast.pipeline().get("key:7").execute())[0][0] == "got"

    _run(cluster, body, decode_responses=decode)


def test_pure_python_twin_gives_the_same_results(cluster: ClusterHarness) -> None:
    async def body(fast: Any, plain: Any) -> None:
        expected = await _mixed(fast)
        twin = cluster_class_for(_resp_py)(host=cluster.host, port=cluster.ports[0])
        try:
            await twin.flushall()
            assert await _mixed(twin) == expected
            conn = twin.get_node_from_key("key:1").acquire_connection()
            assert conn._parser.core is _resp_py
            twin.get_node_from_key("key:1").release(conn)
        finally:
            await twin.aclose()

    _run(cluster, body)


def test_options_only_redis_py_reads_take_its_path(cluster: ClusterHarness) -> None:
    async def run(client: Any) -> Any:
        await client.set("d", "\u00e9")
        return await client.pipeline().dump("d").get("d").strlen("d").execute()

    async def body(fast: Any, plain: Any) -> None:
        got = await run(fast)
        assert got == await run(plain)
        assert isinstance(got[0], bytes) and got[1] == "\u00e9"  # DUMP's payload not decoded (NEVER_DECODE)

    _run(cluster, body, decode_responses=True)


# -- errors -----------------------------------------------------------------------
def test_pipeline_errors_are_redis_py_s(cluster: ClusterHarness) -> None:
    async def build(client: Any, raise_on_error: bool) -> Any:
        p = client.pipeline()
        p.set("s", "text").incr("s").lpush("s", 1).get("s").set("n", 1).incr("n")
        try:
            return await p.execute(raise_on_error=raise_on_error)
        except ResponseError as e:
            return e

    async def body(fast: Any, plain: Any) -> None:
        expected = await build(plain, True)
        got = await build(fast, True)
        assert type(got) is type(expected) and str(got) == str(expected)
        assert str(got).startswith("Command # 2 (INCRBY s 1) of pipeline caused error: ")
        expected = await build(plain, False)
        got = await build(fast, False)
        assert [type(r) for r in got] == [type(r) for r in expected]
        assert [str(r) for r in got] == [str(r) for r in expected]
        assert got[3] == b"text" and got[5] == 2
        # redis-py's refusals and routing errors, raised as it raises them.
        for client in (fast, plain):
            with pytest.raises(RedisClusterException, match="unlinking multiple keys"):
                await client.pipeline().unlink("a", "b")
        texts = []
        for client in (fast, plain):
            with pytest.raises(RedisClusterException) as info:
                await client.pipeline().set("x", 1).execute_command("MSET", "a", 1, "b", 2).execute()
            texts.append(str(info.value))
        assert texts[0] == texts[1] and "same" in texts[0]

    _run(cluster, body)


# -- redirects ----------------------------------------------------------------------
async def _migrate(cluster: ClusterHarness, fast: Any, tag: str, keys: List[str], fully: bool) -> Any:
    """Move the slot of ``tag`` to another primary, all keys or only half
    (the slot then stays MIGRATING: the moved keys answer ASK). Returns the
    (source, target) node clients."""
    slot = key_slot(tag)
    source = fast.get_node_from_key(tag)
    target = next(n for n in fast.get_primaries() if n.name != source.name)
    src = redis.asyncio.Redis(host=source.host, port=source.port)
    dst = redis.asyncio.Redis(host=target.host, port=target.port)
    await dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", cluster.node_id(source.port))
    await src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", cluster.node_id(target.port))
    moved = keys if fully else keys[: len(keys) // 2]
    await src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *moved)
    if fully:
        await _settle(cluster, fast, slot, target)
    return src, dst, slot, target


async def _settle(cluster: ClusterHarness, fast: Any, slot: int, target: Any) -> None:
    """End the migration as Redis's docs order it (the target first, so its
    epoch bump wins over the source's gossip), then wait until every node
    agrees: else a node could still redirect back and the client ping-pong."""
    ports = sorted(cluster.ports, key=lambda port: port != target.port)
    for port in ports:
        node = redis.asyncio.Redis(host=cluster.host, port=port)
        try:
            await node.execute_command("CLUSTER SETSLOT", slot, "NODE", cluster.node_id(target.port))
        finally:
            await node.aclose()
    await asyncio.to_thread(cluster.wait_ok)


@contextlib.asynccontextmanager
async def _half_migrated(cluster: ClusterHarness, fast: Any, tag: str, keys: List[str]) -> AsyncIterator[Any]:
    """``tag``'s slot MIGRATING with the first half of ``keys`` moved (they
    answer ASK): yields (source, target node clients, slot, target node).
    After: the rest moved and the migration settled on every node."""
    await fast.pipeline().batch("SET", keys, "v").execute()
    src, dst, slot, target = await _migrate(cluster, fast, tag, keys, fully=False)
    try:
        yield src, dst, slot, target
    finally:
        rest = await src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
        if rest:
            await src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *rest)
        await _settle(cluster, fast, slot, target)
        await src.aclose()
        await dst.aclose()


def test_moved_during_slot_migration_resends_only_moved(cluster: ClusterHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body(fast: Any, plain: Any) -> None:
        tag = "{mv}"
        keys = [f"{tag}:{i}" for i in range(30)]
        others = [f"other:{i}" for i in range(30)]
        await fast.pipeline().batch("SET", keys + others, 1).execute()
        # The slot moves behind the client's back: its map is stale, MOVED follows.
        src, dst, slot, target = await _migrate(cluster, fast, tag, keys, fully=True)
        await src.aclose(); await dst.aclose()
        rounds = _count_rounds(monkeypatch)
        manager = type(fast.nodes_manager)
        updates: List[str] = []
        for name in ("move_slot", "initialize"):
            original = getattr(manager, name)

            async def spy(self: Any, *a: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
                updates.append(_name)
                return await _original(self, *a, **kw)

            monkeypatch.setattr(manager, name, spy)
        p = fast.pipeline()
        for a, b in zip(keys, others):
            p.incr(a).incr(b)
        assert await p.execute() == [2] * 60
        assert len(rounds) == 2 and rounds[1] == {target.name: 30}  # only the moved ones, one group
        assert updates == ["move_slot"]  # one slot-map update for the 30 redirects
        assert fast.nodes_manager.slots_cache[slot][0].name == target.name
        assert await fast.mget_nonatomic(keys + others) == [b"2"] * 60  # each incremented once

    _run(cluster, body)


def test_ask_mid_migration_resends_with_asking(cluster: ClusterHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body(fast: Any, plain: Any) -> None:
        keys = [f"{{ask}}:{i}" for i in range(40)]
        async with _half_migrated(cluster, fast, "{ask}", keys) as (src, dst, slot, target):
            await dst.config_resetstat()
            rounds = _count_rounds(monkeypatch)
            p = fast.pipeline()
            for k in keys:
                p.get(k)
            assert await p.execute() == [b"v"] * 40
            assert len(rounds) == 2 and rounds[1] == {f"{target.name} ASK": 20}
            assert (await dst.info("commandstats"))["cmdstat_asking"]["calls"] == 20
        assert await fast.pipeline().get(keys[0]).get(keys[-1]).execute() == [b"v", b"v"]

    _run(cluster, body)


def test_tryagain_mid_migration_is_retried_until_the_keys_meet(cluster: ClusterHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A multi-key command whose keys are split by a migration gets
    TRYAGAIN; it is re-sent (after a short wait) until the migration has
    moved them all, then answered through ASK."""

    async def body(fast: Any, plain: Any) -> None:
        keys = [f"{{tg}}:{i}" for i in range(40)]
        async with _half_migrated(cluster, fast, "{tg}", keys) as (src, dst, slot, target):
            await src.config_resetstat()
            rounds = _count_rounds(monkeypatch)

            async def finish() -> None:
                await asyncio.sleep(0.3)
                rest = await src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
                await src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *rest)

            finisher = asyncio.ensure_future(finish())
            p = fast.pipeline().execute_command("EXISTS", keys[0], keys[-1]).incr("elsewhere")
            assert await p.execute() == [2, 1]
            await finisher
            assert len(rounds) >= 3 and all(len(r) == 1 for r in rounds[1:])  # only EXISTS re-sent
            assert (await src.info("errorstats"))["errorstat_TRYAGAIN"]["count"] >= 2
        assert await fast.get("elsewhere") == b"1"  # INCR ran once

    _run(cluster, body)


def test_tryagain_that_never_ends_gives_up_after_the_ttl(cluster: ClusterHarness) -> None:
    async def body(fast: Any, plain: Any) -> None:
        keys = [f"{{tn}}:{i}" for i in range(10)]
        async with _half_migrated(cluster, fast, "{tn}", keys):
            p = fast.pipeline().execute_command("EXISTS", keys[0], keys[-1]).set("{x}y", 1)
            got = await p.execute(raise_on_error=False)
            assert isinstance(got[0], TryAgainError) and got[1] is True
            with pytest.raises(TryAgainError, match=r"^Command # 1 \(EXISTS"):
                await fast.pipeline().execute_command("EXISTS", keys[0], keys[-1]).execute()

    _run(cluster, body)


def test_clusterdown_is_waited_out(cluster: ClusterHarness) -> None:
    """A slot served by no node takes the whole cluster down (full coverage
    is required by default): the pipeline waits, refreshes its slot map and
    goes on when the slot is served again; every command applied once."""

    async def body(fast: Any, plain: Any) -> None:
        keys = [f"cd:{i}" for i in range(30)]
        await fast.pipeline().batch("SET", keys, 1).execute()
        owner = fast.get_node_from_key(keys[0])
        slot = key_slot(keys[0])
        admins = {port: redis.asyncio.Redis(host=cluster.host, port=port) for port in cluster.ports}
        try:
            # The owner first: else its gossip could teach the others the slot again.
            for port in sorted(cluster.ports, key=lambda port: port != owner.port):
                await admins[port].execute_command("CLUSTER DELSLOTS", slot)

            async def restore() -> None:
                await asyncio.sleep(0.6)
                await admins[owner.port].execute_command("CLUSTER ADDSLOTS", slot)

            restorer = asyncio.ensure_future(restore())
            assert await fast.pipeline().batch("INCR", keys).execute() == [2] * 30
            await restorer
            downs = [(await a.info("errorstats")).get("errorstat_CLUSTERDOWN", {}).get("count", 0) for a in admins.values()]
            assert sum(downs) > 0  # the cluster really was down
        finally:
            await asyncio.to_thread(cluster.wait_ok)
            for a in admins.values():
                await a.aclose()
        assert await fast.pipeline().batch("GET", keys).execute() == [b"2"] * 30

    _run(cluster, body)


def test_allow_redirections_false_matches_redis_py(cluster: ClusterHarness) -> None:
    """With a stale slot map and ``allow_redirections=False``, MOVED replies
    are results (or raised), as redis-py gives them."""

    async def run(client: Any, **execute: Any) -> Any:
        await client.initialize()
        first = client.get_primaries()[0]
        client.nodes_manager.slots_cache = {s: [first] for s in range(16384)}
        p = client.pipeline()
        for k in keys:
            p.get(k)
        try:
            return await p.execute(allow_redirections=False, **execute)
        except Exception as e:  # noqa: BLE001 - compared below
            return e

    keys = [f"ar:{i}" for i in range(20)]

    async def body(fast: Any, plain: Any) -> None:
        await fast.pipeline().batch("SET", keys, "v").execute()
        mine = await run(fast, raise_on_error=False)
        theirs = await run(plain, raise_on_error=False)
        assert [type(r) for r in mine] == [type(r) for r in theirs]
        assert MovedError in {type(r) for r in mine} and b"v" in mine
        raised, raised_plain = await run(fast), await run(plain)
        assert type(raised) is type(raised_plain) is MovedError
        assert str(raised) == str(raised_plain)

    _run(cluster, body)


# -- killed connections ----------------------------------------------------------------
async def _kill_when_blocked(host: str, port: int, command: str) -> None:
    """CLIENT KILL the connection of ``port``'s node running ``command``."""
    admin = redis.asyncio.Redis(host=host, port=port)
    try:
        for _ in range(400):
            for client in await admin.client_list():
                if client.get("cmd") == command:
                    await admin.client_kill_filter(_id=client["id"])
                    return
            await asyncio.sleep(0.005)
        raise AssertionError(f"no connection ran {command}")
    finally:
        await admin.aclose()


async def _with_kill(client: Any, p: Any, tag: str, **execute: Any) -> Any:
    node = client.get_node_from_key(tag)
    killer = asyncio.ensure_future(_kill_when_blocked(node.host, node.port, "xread"))
    try:
        return await p.execute(**execute)
    finally:
        await killer


async def _xread_stats(client: Any, tag: str) -> int:
    node = client.get_node_from_key(tag)
    admin = redis.asyncio.Redis(host=node.host, port=node.port)
    try:
        return int((await admin.info("commandstats")).get("cmdstat_xread", {}).get("calls", 0))
    finally:
        await admin.aclose()


async def _kill_idle(fast: Any, tag: str) -> None:
    """CLIENT KILL every client connection of ``tag``'s node while idle, and
    let the event loop see the close."""
    node = fast.get_node_from_key(tag)
    admin = redis.asyncio.Redis(host=node.host, port=node.port)
    try:
        await admin.client_kill_filter(_type="normal", skipme=True)
    finally:
        await admin.aclose()
    await asyncio.sleep(0.05)


def test_killed_connection_resends_an_idempotent_pipeline(cluster: ClusterHarness) -> None:
    async def body(fast: Any, plain: Any) -> None:
        keys = [f"r:{i}" for i in range(40)]
        await fast.pipeline().batch("SET", keys, keys).execute()
        p = fast.pipeline()
        p.batch("GET", keys[:20]).xread({"{t}s": "$"}, block=300).batch("GET", keys[20:])
        before = await _xread_stats(fast, "{t}")
        got = await _with_kill(fast, p, "{t}")
        assert await _xread_stats(fast, "{t}") - before == 2  # sent, killed, sent again
        assert got[:20] + got[21:] == [k.encode() for k in keys]
        assert got[20] == await plain.xread({"{t}s": "$"}, block=1)  # the re-sent XREAD timed out

    _run(cluster, body)


def test_killed_connection_with_a_write_raises_outcome_unknown(cluster: ClusterHarness) -> None:
    async def body(fast: Any, plain: Any) -> None:
        p = fast.pipeline()
        p.incr("{t}c").xread({"{t}s": "$"}, block=2000).incr("{t}c").get("elsewhere")
        with pytest.raises(OutcomeUnknownConnectionError) as info:
            await _with_kill(fast, p, "{t}")
        assert info.value.commands == [("INCRBY", "{t}c", 1)]  # the XREAD is idempotent; the first INCR had its reply
        assert await fast.get("{t}c") == b"1"  # never incremented twice
        # raise_on_error=False: the error in place, the other replies kept.
        p = fast.pipeline().incr("{t}c").xread({"{t}s": "$"}, block=2000).incr("{t}c")
        got = await _with_kill(fast, p, "{t}", raise_on_error=False)
        assert got[0] == 2 and isinstance(got[2], OutcomeUnknownConnectionError)
        assert await fast.get("{t}c") == b"2"
        # retry_writes=True re-sends the lost write (as redis-py) but never one that had its reply.
        fast.retry_writes = True
        p = fast.pipeline().incr("{t}c").xread({"{t}s": "$"}, block=2000).incr("{t}c")
        assert (await _with_kill(fast, p, "{t}"))[::2] == [3, 4]
        # A killed idle connection: the next single write reconnects, nothing is lost.
        fast.retry_writes = False
        await _kill_idle(fast, "{t}")
        assert await fast.incr("{t}c") == 5

    _run(cluster, body)


async def _lose_in_flight(fast: Any, tag: str, command: Any) -> Any:
    """Run ``command()`` while its node holds writes (CLIENT PAUSE WRITE),
    kill every client connection of that node, resume: the command's
    outcome is unknown to the client (here it did not run)."""
    node = fast.get_node_from_key(tag)
    admin = redis.asyncio.Redis(host=node.host, port=node.port)
    try:
        await admin.execute_command("CLIENT PAUSE", 3000, "WRITE")
        task = asyncio.ensure_future(command())
        await asyncio.sleep(0.3)
        await admin.client_kill_filter(_type="normal", skipme=True)
        await admin.execute_command("CLIENT UNPAUSE")
        return await asyncio.gather(task, return_exceptions=True)
    finally:
        await admin.aclose()


def test_single_commands_follow_the_write_policy(cluster: ClusterHarness) -> None:
    async def body(fast: Any, plain: Any) -> None:
        await fast.set("{t}one", 10)
        (lost,) = await _lose_in_flight(fast, "{t}", lambda: fast.incr("{t}one"))  # the direct one-key path
        assert isinstance(lost, OutcomeUnknownConnectionError) and lost.commands == [("INCRBY", "{t}one", 1)]
        (lost,) = await _lose_in_flight(fast, "{t}", lambda: fast.rpoplpush("{t}a", "{t}b"))  # redis-py's loop
        assert isinstance(lost, OutcomeUnknownConnectionError)
        assert await fast.get("{t}one") == b"10"
        fast.retry_writes = True  # redis-py's behaviour: re-sent
        assert await _lose_in_flight(fast, "{t}", lambda: fast.incr("{t}one")) == [11]
        assert await _lose_in_flight(fast, "{t}", lambda: plain.incr("{t}one")) == [12]

    _run(cluster, body)


# -- batch, transactions, scripts ------------------------------------------------------
def test_transactions_follow_the_write_policy(cluster: ClusterHarness) -> None:
    """A MULTI/EXEC lost on the way is not re-sent (redis-py's retry would
    run it a second time if the first EXEC had run): outcome unknown."""

    async def body(fast: Any, plain: Any) -> None:
        await fast.set("{t}tx", 0)  # a pooled connection: the stall hits MULTI/EXEC, not the connect

        async def tx(client: Any) -> Any:
            async with client.pipeline(transaction=True) as p:
                p.incr("{t}tx").incr("{t}tx")
                return await p.execute()

        (lost,) = await _lose_in_flight(fast, "{t}", lambda: tx(fast))
        assert isinstance(lost, OutcomeUnknownConnectionError), repr(lost)
        assert lost.commands == [("INCRBY", "{t}tx", 1)] * 2
        await asyncio.sleep(0.1)
        assert await fast.get("{t}tx") == b"0"  # killed before EXEC ran, and not re-sent
        await plain.initialize()
        assert await _lose_in_flight(plain, "{t}", lambda: tx(plain)) == [[1, 2]]  # redis-py re-sends
        fast.retry_writes = True  # the pipeline takes the client's choice: redis-py's behaviour
        assert await _lose_in_flight(fast, "{t}", lambda: tx(fast)) == [[3, 4]]
        fast.retry_writes = False
        # A connection killed while idle: reconnected before MULTI is written, applied once.
        await _kill_idle(fast, "{t}")
        assert await tx(fast) == [5, 6]

    _run(cluster, body)


def test_a_lost_watch_raises_watch_error(cluster: ClusterHarness) -> None:
    """A connection lost while keys are watched ends the WATCH: the
    transaction must not run unwatched on a new connection."""

    async def body(fast: Any, plain: Any) -> None:
        node = fast.get_node_from_key("{w}")
        admin = redis.asyncio.Redis(host=node.host, port=node.port)
        try:
            await fast.set("{w}k", "before")
            async with fast.pipeline(transaction=True) as p:
                await p.watch("{w}k")
                await admin.client_kill_filter(_type="normal", skipme=True)
                await asyncio.sleep(0.1)
                await fast.set("{w}k", "changed")  # the change WATCH was there to catch
                p.multi()
                p.set("{w}k", "mine")
                with pytest.raises(WatchError):
                    await p.execute()
            assert await fast.get("{w}k") == b"changed"
            # An immediate command after WATCH on a killed connection: the same.
            async with fast.pipeline(transaction=True) as p:
                await p.watch("{w}k")
                await admin.client_kill_filter(_type="normal", skipme=True)
                await asyncio.sleep(0.1)
                with pytest.raises(WatchError):
                    await p.get("{w}k")
            # Unharmed (idle connections killed before the WATCH), a WATCH transaction still commits.
            await admin.client_kill_filter(_type="normal", skipme=True)
            await asyncio.sleep(0.1)
            async with fast.pipeline(transaction=True) as p:
                await p.watch("{w}k")
                assert await p.get("{w}k") == b"changed"
                p.multi()
                p.set("{w}k", "mine")
                assert await p.execute() == [True]
            assert await fast.get("{w}k") == b"mine"
        finally:
            await admin.aclose()

    _run(cluster, body)


# -- many tasks, one connection per node ------------------------------------------
def test_burst_of_1000_tasks_shares_one_connection_per_node(cluster: ClusterHarness) -> None:
    async def body(fast: Any, plain: Any) -> None:
        keys = [f"burst:{i}" for i in range(100)]
        before = [len(n._connections) for n in fast.get_primaries()]
        got = await asyncio.gather(*(fast.incr(keys[i % 100]) for i in range(1000)))
        assert sorted(got) == sorted(list(range(1, 11)) * 100)  # every INCR applied once
        assert await fast.mget_nonatomic(keys) == [b"10"] * 100
        after = [len(n._connections) for n in fast.get_primaries()]
        assert all(a - b <= 1 for a, b in zip(after, before)), (before, after)  # the shared one
        # redis-py's client takes a pooled connection per task (at most 100 per node).
        await plain.get(keys[0])
        with pytest.raises(MaxConnectionsError):
            await asyncio.gather(*(plain.incr(keys[i % 100]) for i in range(1000)))

    _run(cluster, body)


def test_blocking_commands_do_not_share_the_connection(cluster: ClusterHarness) -> None:
    """BLPOP waits on a connection of its own: commands to the same node go
    on meanwhile (were it on the shared connection, they would wait for it)."""

    async def body(fast: Any, plain: Any) -> None:
        popper = asyncio.ensure_future(fast.blpop(["{q}list"], timeout=0))
        await asyncio.sleep(0.1)
        for i in range(20):
            assert await asyncio.wait_for(fast.set("{q}other", i), 5) is True
        assert await asyncio.wait_for(fast.rpush("{q}list", "x"), 5) == 1
        assert tuple(await asyncio.wait_for(popper, 5)) == (b"{q}list", b"x")

    _run(cluster, body)


def test_cancelled_tasks_never_get_another_task_s_reply(cluster: ClusterHarness) -> None:
    async def body(fast: Any, plain: Any) -> None:
        keys = [f"cx:{i}" for i in range(200)]
        await fast.pipeline().batch("SET", keys, keys).execute()
        rng = random.Random(7)

        async def check(key: str) -> None:
            assert await fast.get(key) == key.encode()

        for _ in range(20):
            tasks = [asyncio.ensure_future(check(rng.choice(keys))) for _ in range(100)]
            await asyncio.sleep(0)
            for t in rng.sample(tasks, 30):
                t.cancel()
            timed = [asyncio.wait_for(check(rng.choice(keys)), rng.choice([0.0001, 0.001, 1])) for _ in range(50)]
            results = await asyncio.gather(*tasks, *timed, return_exceptions=True)
            assert all(r is None or isinstance(r, (asyncio.CancelledError, asyncio.TimeoutError)) for r in results), results
        assert await fast.mget_nonatomic(keys[:3]) == [k.encode() for k in keys[:3]]

    _run(cluster, body)


def test_multiplexing_can_be_turned_off(cluster: ClusterHarness) -> None:
    async def body(fast: Any, plain: Any) -> None:
        async with RedisCluster(host=cluster.host, port=cluster.ports[0], multiplexed=False) as rc:
            assert sorted(await asyncio.gather(*(rc.incr("{off}n") for _ in range(10)))) == list(range(1, 11))
            assert await rc.get("{off}n") == b"10" and rc._muxes == {}
        with pytest.raises(TypeError, match="multiplexed must be True or False"):
            RedisCluster(host=cluster.host, port=cluster.ports[0], multiplexed=1)

    _run(cluster, body)


def test_batch_across_slots(cluster: ClusterHarness) -> None:
    async def body(fast: Any, plain: Any) -> None:
        keys = [f"b:{i}" for i in range(300)]
        hashes = [f"bh:{i}" for i in range(3)]
        p = fast.pipeline()
        got = await p.set("first", 0).batch("SET", keys, range(300)).batch("HSET", hashes, "f", [1.5, 2, "x"]).execute()
        assert got == [True] * 301 + [1, 1, 1]
        assert len({fast.get_node_from_key(k).name for k in keys}) == 3
        assert await fast.pipeline().batch("GET", keys).get("first").execute() == [str(i).encode() for i in range(300)] + [b"0"]
        assert await plain.mget_nonatomic(keys[:5]) == [b"0", b"1", b"2", b"3", b"4"]
        assert await fast.pipeline().batch("HGET", hashes, "f").execute() == [b"1.5", b"2", b"x"]
        # Concurrent pipelines from many tasks: each on its own node connections.
        runs = await asyncio.gather(*(fast.pipeline().batch("INCR", keys).execute() for _ in range(10)))
        assert sorted(r[0] for r in runs) == list(range(1, 11))
        assert await fast.pipeline().batch("GET", keys).execute() == [str(i + 10).encode() for i in range(300)]

    _run(cluster, body)


def test_transactions_same_slot_and_cross_slot(cluster: ClusterHarness) -> None:
    async def same(client: Any) -> Any:
        async with client.pipeline(transaction=True) as p:
            p.set("{u}a", 1).incr("{u}a").get("{u}a").hset("{u}h", "f", "v").hgetall("{u}h")
            return await p.execute()

    async def cross(client: Any) -> str:
        async with client.pipeline(transaction=True) as p:
            p.set("{u}a", 1).set("{v}b", 2)
            with pytest.raises(CrossSlotTransactionError) as info:
                await p.execute()
            return str(info.value)

    async def body(fast: Any, plain: Any) -> None:
        expected = await same(plain)
        await fast.flushall()
        assert await same(fast) == expected == [True, 2, b"2", 1, {b"f": b"v"}]
        assert await cross(fast) == await cross(plain)

    _run(cluster, body)


def test_script_flush_then_scripts_in_a_pipeline(cluster: ClusterHarness) -> None:
    incr = LuaScript("return redis.call('INCR', KEYS[1])")

    async def body(fast: Any, plain: Any) -> None:
        keys = [f"sc:{i}" for i in range(20)]
        await fast.script_flush()
        p = fast.pipeline()
        for k in keys:
            incr.stage(p, [k])
        got = await p.execute(raise_on_error=False)
        assert all(isinstance(r, NoScriptError) for r in got)
        p = fast.pipeline()
        for k in keys:
            incr.stage(p, [k])
            p.get(k)
        # NOSCRIPT repaired: reloaded, and only the EVALSHA calls re-run (the GETs ran before them)
        assert await arun_pipeline(fast, p) == [1, None] * 20
        assert await fast.pipeline().batch("GET", keys).execute() == [b"1"] * 20
        await fast.script_flush()
        p = fast.pipeline()
        for k in keys:
            incr.stage(p, [k])
        assert await arun_pipeline(fast, p) == [2] * 20

    _run(cluster, body)
