"""fastredis.RedisCluster and its pipeline on a real 3-master cluster (one
replica each), started once for the module: results, errors, batches,
transactions, scripts, grouped redirects and the write-retry policy."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest
import redis
from redis.cluster import RedisCluster as PlainCluster
from redis.exceptions import TryAgainError

import fastredis
from fastredis import ClusterPipeline, RedisCluster
from fastredis.cluster import key_slot
from fastredis.connection import FastParser
from fastredis.exceptions import OutcomeUnknownError, OutcomeUnknownTimeoutError
from fastredis.scripts import LuaScript, pipeline_for, run_pipeline
from fastredis.server import RedisCluster as ClusterHarness

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterHarness]:
    if os.environ.get("FASTREDIS_REDIS_URL"):
        pytest.skip("needs private redis-server processes; FASTREDIS_REDIS_URL is set")
    with ClusterHarness(3, replicas=1) as c:
        yield c


@pytest.fixture
def rc(cluster: ClusterHarness) -> Iterator[RedisCluster]:
    client = RedisCluster(host=cluster.host, port=cluster.ports[0])
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def plain(cluster: ClusterHarness) -> Iterator[PlainCluster]:
    client = PlainCluster(host=cluster.host, port=cluster.ports[0])
    yield client
    client.close()


def _keys(n: int, prefix: str = "k") -> List[str]:
    return [f"{prefix}:{i}" for i in range(n)]


# -- the client --------------------------------------------------------------
def test_node_clients_are_fastredis_with_the_fast_parser(rc: RedisCluster) -> None:
    nodes = rc.get_nodes()
    assert len(nodes) == 6 and len(rc.get_primaries()) == 3
    for node in nodes:
        client = rc.get_redis_connection(node)
        assert type(client) is fastredis.Redis
        assert client.connection_pool.connection_kwargs["parser_class"] is FastParser
    assert rc.set("a", 1) and rc.get("a") == b"1"
    conn = rc.get_redis_connection(rc.get_node_from_key("a")).connection_pool.get_connection()
    try:
        assert isinstance(conn._parser, FastParser)
    finally:
        rc.get_redis_connection(rc.get_node_from_key("a")).connection_pool.release(conn)


def test_construction_paths(cluster: ClusterHarness) -> None:
    url = f"redis://{cluster.host}:{cluster.ports[0]}"
    with RedisCluster.from_url(url, decode_responses=True, retry_writes=True) as c:
        assert c.retry_writes and c.pipeline().retry_writes
        c.set("u", "v")
        assert c.get("u") == "v"
        assert all(c.get_redis_connection(n).retry_writes for n in c.get_nodes())
    nodes = [redis.cluster.ClusterNode(cluster.host, p) for p in cluster.ports[:2]]
    with RedisCluster(startup_nodes=nodes, protocol=2) as c:
        assert c.pipeline().hset("h", "f", 1).hgetall("h").execute() == [1, {b"f": b"1"}]
    with pytest.raises(TypeError, match="retry_writes"):
        RedisCluster(host=cluster.host, port=cluster.ports[0], retry_writes="yes")  # type: ignore[arg-type]
    assert fastredis.RedisCluster is RedisCluster


def test_key_slot_matches_redis() -> None:
    probe = redis.Redis  # noqa: F841  (redis-py computes the same with redis.crc)
    from redis.crc import key_slot as redis_key_slot

    for key in ["a", "user:1", "{user:1}:x", "{}x", "{x", "é", b"\xff{a}", 42, 1.5]:
        raw = key if isinstance(key, bytes) else str(key).encode()
        assert key_slot(key) == redis_key_slot(raw), key


# -- pipelines: results, errors ------------------------------------------------
def test_pipeline_spans_every_node_and_keeps_order(rc: RedisCluster) -> None:
    keys = _keys(3000)
    assert len({rc.get_node_from_key(k).name for k in keys}) == 3
    p = rc.pipeline()
    for i, k in enumerate(keys):
        p.set(k, i)
    assert p.execute() == [True] * 3000
    p = rc.pipeline()
    for k in keys:
        p.incr(k)
        p.get(k)
    out = p.execute()
    assert out[0::2] == list(range(1, 3001))
    assert out[1::2] == [str(i).encode() for i in range(1, 3001)]
    assert len(p) == 0  # reset after execute


def test_pipeline_errors_are_redis_py_s(rc: RedisCluster, plain: PlainCluster) -> None:
    def run(client: Any, raise_on_error: bool) -> Any:
        client.flushall()
        p = client.pipeline()
        p.set("x", 1).lpush("x", 2).set("y", 2).incr("y").hset("x", "f", "v")
        try:
            return [repr(r) if isinstance(r, Exception) else r for r in p.execute(raise_on_error=raise_on_error)]
        except redis.RedisError as e:
            return f"{type(e).__name__}: {e}"

    for raise_on_error in (True, False):
        assert run(rc, raise_on_error) == run(plain, raise_on_error)
    assert run(rc, True).startswith("ResponseError: Command # 2 (LPUSH x 2) of pipeline caused error: WRONGTYPE")


def test_batch_across_slots(rc: RedisCluster) -> None:
    np = pytest.importorskip("numpy")
    keys = _keys(500, "b")
    p = rc.pipeline()
    p.batch("SET", keys, np.arange(500, dtype=np.float64) + 0.5)
    p.batch("GET", keys[:3])
    p.batch("HSET", keys[:2] and ["h1", "h2"], "f", [1, 2])
    out = p.execute()
    assert out[:500] == [True] * 500
    assert out[500:503] == [b"0.5", b"1.5", b"2.5"]
    assert out[503:] == [1, 1]
    with pytest.raises(ValueError, match="differ in length"):
        rc.pipeline().batch("SET", ["a", "b"], [1])
    column = ["c1", "c2"]
    p = rc.pipeline().batch("SET", column, [1, 2])
    column.clear()  # staged rows are copies
    assert p.execute() == [True, True]
    with pytest.raises(redis.DataError):
        rc.pipeline().batch("SET", ["a"], [None]).execute()


def test_blocked_and_routing_errors_match_redis_py(rc: RedisCluster, plain: PlainCluster) -> None:
    def attempt(client: Any, build: Any) -> str:
        p = client.pipeline()
        try:
            build(p)
            return repr(p.execute())
        except Exception as e:  # noqa: BLE001
            return f"{type(e).__name__}: {e}"

    cases = [
        lambda p: p.mget("a", "b"),
        lambda p: p.delete("a", "b"),
        lambda p: p.execute_command("MGET", "a", "b"),
        lambda p: p.execute_command("SCRIPT LOAD", "return 1"),
        lambda p: p.execute_command("NOSUCHCOMMAND", "a"),
        lambda p: p.multi(),
        lambda p: p.watch("a"),
    ]
    for build in cases:
        assert attempt(rc, build) == attempt(plain, build)
    # A value no encoder takes: the same class; the text is redis-py's Encoder's
    # (redis-py with hiredis words it differently, as fastredis.Redis does).
    assert attempt(rc, lambda p: p.set("a", None)).startswith("DataError: Invalid input of type: 'NoneType'")
    assert attempt(plain, lambda p: p.set("a", None)).startswith("DataError:")


def test_commands_off_the_fast_table_route_as_redis_py(rc: RedisCluster) -> None:
    rc.zadd("z", {"a": 1, "b": 2})
    rc.rpush("l", 1, 2, 3)
    primary = rc.get_node_from_key("l")
    p = rc.pipeline()
    p.zcount("z", 0, 10).llen("l").execute_command("OBJECT ENCODING", "l").execute_command("PING")
    p.execute_command("DBSIZE", target_nodes=primary)
    p.execute_command("EVAL", "return #KEYS", 2, "{t}a", "{t}b")
    p.set("lower", 1).execute_command("get", "lower")
    out = p.execute()
    assert out[:4] == [2, 3, b"quicklist", True]  # redis 7.0: lists are quicklists
    assert out[4] >= 1
    assert out[5:] == [2, True, b"1"]


def test_decode_responses_and_never_decode(cluster: ClusterHarness) -> None:
    with RedisCluster(host=cluster.host, port=cluster.ports[0], decode_responses=True) as c:
        c.set("d", "é")
        p = c.pipeline()
        p.get("d").execute_command("GET", "d", **{redis.client.NEVER_DECODE: True}).hgetall("none")
        assert p.execute() == ["é", "é".encode(), {}]


def test_response_callbacks_set_on_the_cluster_apply(cluster: ClusterHarness) -> None:
    with RedisCluster(host=cluster.host, port=cluster.ports[0]) as c, PlainCluster(host=cluster.host, port=cluster.ports[0]) as p:
        for client in (c, p):
            client.set_response_callback("GET", lambda r, **kw: ("wrapped", r))
        c.set("cb", 1)
        assert c.pipeline().get("cb").execute() == p.pipeline().get("cb").execute() == [("wrapped", b"1")]


# -- transactions -----------------------------------------------------------
def test_transactions_one_slot_and_cross_slot(rc: RedisCluster, plain: PlainCluster) -> None:
    def run(client: Any) -> Any:
        client.flushall()
        out = []
        p = client.pipeline(transaction=True)
        p.set("{u}a", 1).incr("{u}b").get("{u}a").hset("{u}h", "f", 1).hgetall("{u}h")
        out.append(p.execute())
        p = client.pipeline(transaction=True)
        try:
            p.set("{u}a", 1).set("{v}b", 2)
            out.append(p.execute())
        except Exception as e:  # noqa: BLE001
            out.append(f"{type(e).__name__}: {e}")
        p = client.pipeline(transaction=True)
        p.set("{u}s", "x").lpush("{u}s", 1)
        try:
            out.append(p.execute())
        except Exception as e:  # noqa: BLE001
            out.append(f"{type(e).__name__}: {e}")
        return out

    assert run(rc) == run(plain)


def test_watch_transaction(rc: RedisCluster) -> None:
    rc.set("{w}n", 5)

    def double(pipe: Any) -> None:
        n = int(pipe.get("{w}n"))
        pipe.multi()
        pipe.set("{w}n", n * 2)

    assert rc.transaction(double, "{w}n") == [b"OK"]  # redis-py's cluster transactions skip callbacks
    assert rc.get("{w}n") == b"10"


def test_a_lost_watch_raises_watch_error(rc: RedisCluster) -> None:
    """A connection lost while keys are watched ends the WATCH: the
    transaction must not go on unwatched on a new connection (redis-py's
    cluster pipeline reconnects and commits)."""
    node = rc.get_node_from_key("{w}")
    with redis.Redis(host=node.host, port=node.port) as admin:
        rc.set("{w}k", "before")
        with rc.pipeline(transaction=True) as p:
            p.watch("{w}k")
            admin.client_kill_filter(_type="normal", skipme=True)
            time.sleep(0.1)
            rc.set("{w}k", "changed")  # the change WATCH was there to catch
            p.multi()
            p.set("{w}k", "mine")
            with pytest.raises(redis.WatchError):
                p.execute()
        assert rc.get("{w}k") == b"changed"
        with rc.pipeline(transaction=True) as p:  # an immediate read after WATCH: the same
            p.watch("{w}k")
            admin.client_kill_filter(_type="normal", skipme=True)
            time.sleep(0.1)
            with pytest.raises(redis.WatchError):
                p.get("{w}k")
        admin.client_kill_filter(_type="normal", skipme=True)  # idle connections die before the WATCH
        time.sleep(0.1)
        with rc.pipeline(transaction=True) as p:  # unharmed (a WATCH is re-sent), it commits
            p.watch("{w}k")
            assert p.get("{w}k") == b"changed"
            p.multi()
            p.set("{w}k", "mine")
            assert p.execute() == [b"OK"]
        assert rc.get("{w}k") == b"mine"


# -- scripts -------------------------------------------------------------------
def test_scripts_in_cluster_pipelines_and_noscript_repair(rc: RedisCluster) -> None:
    incr = LuaScript("return redis.call('INCR', KEYS[1])", name="incr")
    keys = _keys(50, "s")
    p = pipeline_for(rc)
    assert isinstance(p, ClusterPipeline) and hasattr(p, "scripts")
    for k in keys:
        incr.stage(p, [k])
    rc.script_flush()
    assert run_pipeline(p) == [1] * 50  # NOSCRIPT everywhere: loaded on every primary, only the EVALSHAs re-sent
    t = pipeline_for(rc, transaction=True)
    incr.stage(t, ["{s}x"])
    incr.stage(t, ["{s}x"])
    assert incr in t.scripts
    rc.script_flush()
    assert run_pipeline(t) == [1, 2]  # preloaded on the slot's node before MULTI


def test_pipeline_for_a_plain_cluster_client(plain: PlainCluster) -> None:
    p = pipeline_for(plain)
    assert isinstance(p, ClusterPipeline) and not p.retry_writes
    for k in _keys(100, "pp"):
        p.set(k, 1).incr(k)
    assert p.execute() == [True, 2] * 100


# -- redirects ------------------------------------------------------------------
def _count_rounds(monkeypatch: pytest.MonkeyPatch) -> List[Dict[str, int]]:
    rounds: List[Dict[str, int]] = []
    original = ClusterPipeline._send_and_read

    def spy(self: Any, groups: Any, rows: Any, stack: Any) -> None:
        rounds.append({f"{g.node.name}{' ASK' if g.asking else ''}": len(g.idxs) for g in groups})
        original(self, groups, rows, stack)

    monkeypatch.setattr(ClusterPipeline, "_send_and_read", spy)
    return rounds


def test_moved_commands_resent_grouped_once_per_node(rc: RedisCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = _keys(900, "m")
    rc.pipeline().batch("SET", keys, 1).execute()
    # A stale slot map: every slot "on" the first primary.
    manager = rc.nodes_manager
    first = rc.get_primaries()[0]
    manager.slots_cache = {s: [first] for s in range(16384)}
    rc.reinitialize_steps = 0  # patch slots from the MOVED replies, no full refresh
    rounds = _count_rounds(monkeypatch)
    p = rc.pipeline()
    p.reinitialize_steps = 0
    for k in keys:
        p.incr(k)
    assert p.execute() == [2] * 900
    assert len(rounds) == 2
    assert list(rounds[0].values()) == [900]
    moved = sum(rounds[1].values())
    assert len(rounds[1]) == 2 and moved == sum(rc.get_node_from_key(k).name != first.name for k in keys)
    assert rc.get_node_from_key(keys[0]).name == rc.nodes_manager.slots_cache[rc.keyslot(keys[0])][0].name
    # batch() rows redirected the same way, interleaved with other commands.
    manager.slots_cache = {s: [first] for s in range(16384)}
    rounds.clear()
    p = rc.pipeline(); p.reinitialize_steps = 0
    p.incr(keys[0]).batch("GET", keys).batch("HSET", "{hb}", keys[:5], [1, 2, 3, 4, 5]).get(keys[1])
    assert p.execute() == [3, b"3"] + [b"2"] * 899 + [1] * 5 + [b"2"]
    assert len(rounds) == 2


@contextlib.contextmanager
def _half_migrated(cluster: ClusterHarness, rc: RedisCluster, tag: str, keys: List[str]) -> Iterator[Any]:
    """``tag``'s slot MIGRATING to another primary with the first half of
    ``keys`` moved (they answer ASK): yields (source client, slot, target).
    After: the rest moved, the slot given to the target (the target first,
    as Redis's docs order it) and every node agreeing."""
    slot = key_slot(tag)
    source = rc.get_node_from_key(tag)
    target = next(n for n in rc.get_primaries() if n.name != source.name)
    rc.pipeline().batch("SET", keys, "v").execute()
    src = redis.Redis(host=source.host, port=source.port)
    try:
        with redis.Redis(host=target.host, port=target.port) as dst:
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", cluster.node_id(source.port))
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", cluster.node_id(target.port))
        src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys[: len(keys) // 2])
        yield src, slot, target
    finally:
        rest = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
        if rest:
            src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *rest)
        for port in sorted(cluster.master_ports(), key=lambda port: port != target.port):
            with redis.Redis(host=cluster.host, port=port) as node:
                node.execute_command("CLUSTER SETSLOT", slot, "NODE", cluster.node_id(target.port))
        src.close()
        cluster.wait_ok()  # every node agrees before the next test routes by it
        rc.nodes_manager.initialize()


def test_ask_redirects_are_grouped_with_asking(rc: RedisCluster, cluster: ClusterHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [f"{{ask}}:{i}" for i in range(40)]
    with _half_migrated(cluster, rc, "{ask}", keys) as (src, slot, target):
        with redis.Redis(host=target.host, port=target.port) as dst:
            dst.config_resetstat()
            rounds = _count_rounds(monkeypatch)
            p = rc.pipeline()
            for k in keys:
                p.get(k)
            assert p.execute() == [b"v"] * 40
            assert len(rounds) == 2 and rounds[1] == {f"{target.name} ASK": 20}
            assert dst.info("commandstats")["cmdstat_asking"]["calls"] == 20
    assert rc.pipeline().get(keys[0]).get(keys[-1]).execute() == [b"v", b"v"]


def test_tryagain_mid_migration_is_retried_until_the_keys_meet(
    rc: RedisCluster, cluster: ClusterHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multi-key command whose keys a migration split gets TRYAGAIN; it is
    re-sent after a short wait until they are all moved, then goes through ASK."""
    keys = [f"{{tg}}:{i}" for i in range(40)]
    with _half_migrated(cluster, rc, "{tg}", keys) as (src, slot, target):
        src.config_resetstat()
        rounds = _count_rounds(monkeypatch)

        def finish() -> None:
            time.sleep(0.3)
            rest = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
            src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *rest)

        finisher = threading.Thread(target=finish)
        finisher.start()
        try:
            p = rc.pipeline().execute_command("EXISTS", keys[0], keys[-1]).incr("elsewhere")
            assert p.execute() == [2, 1]
        finally:
            finisher.join()
        assert len(rounds) >= 3 and all(len(r) == 1 for r in rounds[1:])  # only EXISTS re-sent
        assert src.info("errorstats")["errorstat_TRYAGAIN"]["count"] >= 2
    assert rc.get("elsewhere") == b"1"  # INCR ran once


def test_tryagain_that_never_ends_gives_up_after_the_ttl(rc: RedisCluster, cluster: ClusterHarness) -> None:
    keys = [f"{{tn}}:{i}" for i in range(10)]
    with _half_migrated(cluster, rc, "{tn}", keys):
        got = rc.pipeline().execute_command("EXISTS", keys[0], keys[-1]).set("{x}y", 1).execute(raise_on_error=False)
        assert isinstance(got[0], TryAgainError) and got[1] is True
        with pytest.raises(TryAgainError, match=r"^Command # 1 \(EXISTS"):
            rc.pipeline().execute_command("EXISTS", keys[0], keys[-1]).execute()


def test_clusterdown_is_waited_out(rc: RedisCluster, cluster: ClusterHarness) -> None:
    """A slot served by no node takes the whole cluster down (full coverage
    is required by default): the pipeline waits, refreshes its slot map and
    goes on when the slot is served again; every command applied once."""
    keys = _keys(30, "cd")
    rc.pipeline().batch("SET", keys, 1).execute()
    owner = rc.get_node_from_key(keys[0])
    slot = key_slot(keys[0])
    admins = {port: redis.Redis(host=cluster.host, port=port) for port in cluster.master_ports()}
    try:
        # The owner first: else its gossip could teach the others the slot again.
        for port in sorted(admins, key=lambda port: port != owner.port):
            admins[port].execute_command("CLUSTER DELSLOTS", slot)
        restorer = threading.Timer(0.6, lambda: admins[owner.port].execute_command("CLUSTER ADDSLOTS", slot))
        restorer.start()
        try:
            assert rc.pipeline().batch("INCR", keys).execute() == [2] * 30
        finally:
            restorer.join()
        assert sum(a.info("errorstats").get("errorstat_CLUSTERDOWN", {}).get("count", 0) for a in admins.values()) > 0
    finally:
        cluster.wait_ok()
        for a in admins.values():
            a.close()
    assert rc.pipeline().batch("GET", keys).execute() == [b"2"] * 30


# -- the write-retry policy ----------------------------------------------------
def _paused(cluster: ClusterHarness, port: int, seconds: float) -> threading.Thread:
    server = cluster.server(port)
    server.pause()

    def resume() -> None:
        time.sleep(seconds)
        server.resume()

    t = threading.Thread(target=resume)
    t.start()
    return t


def test_writes_on_a_stalled_node_are_not_resent(cluster: ClusterHarness) -> None:
    with RedisCluster(host=cluster.host, port=cluster.ports[0], socket_timeout=0.3) as c:
        c.flushall()
        keys = _keys(60, "w")
        node = c.get_node_from_key(keys[0])
        on_node = [k for k in keys if c.get_node_from_key(k).name == node.name]
        elsewhere = [k for k in keys if k not in on_node]
        resumer = _paused(cluster, node.port, 1.0)
        try:
            p = c.pipeline()
            for k in keys:
                p.incr(k)
            out = p.execute(raise_on_error=False)
        finally:
            resumer.join()
        for k, r in zip(keys, out):
            if k in on_node:
                assert isinstance(r, OutcomeUnknownTimeoutError) and r.commands == [("INCRBY", k, 1)]
            else:
                assert r == 1
        time.sleep(0.2)
        values = dict(zip(keys, c.pipeline().batch("GET", keys).execute()))
        assert all(values[k] == b"1" for k in keys)  # applied exactly once, never twice
        # Raised: one error naming every command whose outcome is unknown.
        resumer = _paused(cluster, node.port, 1.0)
        try:
            with pytest.raises(OutcomeUnknownTimeoutError) as info:
                c.pipeline().incr(on_node[0]).incr(elsewhere[0]).execute()
        finally:
            resumer.join()
        assert info.value.commands == [("INCRBY", on_node[0], 1)]
        assert isinstance(info.value, redis.TimeoutError)


def test_reads_on_a_stalled_node_are_retried(cluster: ClusterHarness) -> None:
    with RedisCluster(host=cluster.host, port=cluster.ports[0], socket_timeout=0.3) as c:
        c.set("r", "v")
        node = c.get_node_from_key("r")
        resumer = _paused(cluster, node.port, 0.6)
        try:
            assert c.pipeline().get("r").execute() == [b"v"]
        finally:
            resumer.join()
        resumer = _paused(cluster, node.port, 0.6)
        try:
            assert c.get("r") == b"v"
        finally:
            resumer.join()


def test_single_write_on_a_stalled_node_is_not_resent(cluster: ClusterHarness) -> None:
    with RedisCluster(host=cluster.host, port=cluster.ports[0], socket_timeout=0.3) as c:
        c.delete("once")
        node = c.get_node_from_key("once")
        resumer = _paused(cluster, node.port, 1.0)
        try:
            with pytest.raises(OutcomeUnknownError) as info:
                c.incr("once")
        finally:
            resumer.join()
        assert info.value.commands == [("INCRBY", "once", 1)]
        time.sleep(0.2)
        assert c.get("once") == b"1"
    with RedisCluster(host=cluster.host, port=cluster.ports[0], socket_timeout=0.3) as c:
        c.delete("{once}t")  # a pooled connection: the stall then hits MULTI/EXEC, not the connect
        t = c.pipeline(transaction=True)
        t.incr("{once}t").incr("{once}t")
        node = c.get_node_from_key("{once}t")
        resumer = _paused(cluster, node.port, 1.0)
        try:
            with pytest.raises(OutcomeUnknownError) as tinfo:
                t.execute()
        finally:
            resumer.join()
        assert tinfo.value.commands == [("INCRBY", "{once}t", 1)] * 2
        time.sleep(0.2)
        assert c.get("{once}t") == b"2"


def test_single_commands_follow_moved_with_a_stale_slot_map(rc: RedisCluster) -> None:
    keys = _keys(60, "sm")
    rc.pipeline().batch("SET", keys, 5).execute()
    first = rc.get_primaries()[0]
    rc.nodes_manager.slots_cache = {s: [first] for s in range(16384)}
    rc.reinitialize_steps = 0
    assert [rc.incr(k) for k in keys] == [6] * 60  # MOVED followed, each applied once
    assert [rc.get(k) for k in keys] == [b"6"] * 60
    assert rc.get_node_from_key(keys[-1]).name == rc.nodes_manager.slots_cache[rc.keyslot(keys[-1])][0].name


def test_replies_are_read_as_they_arrive(cluster: ClusterHarness, rc: RedisCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stalled node does not hold up reading the others: their groups
    finish while it is still stopped."""
    keys = _keys(300, "arr")
    slow = rc.get_node_from_key(keys[0])
    rc.pipeline().batch("SET", keys, 1).execute()  # pooled connections everywhere
    finished: List[Any] = []
    original = ClusterPipeline._done

    def spy(self: Any, g: Any) -> None:
        finished.append((g.node.name, time.monotonic()))
        original(self, g)

    monkeypatch.setattr(ClusterPipeline, "_done", spy)
    resumer = _paused(cluster, slow.port, 0.5)
    resumed_at = time.monotonic() + 0.5
    try:
        assert rc.pipeline().batch("GET", keys).execute() == [b"1"] * 300
    finally:
        resumer.join()
    assert [name for name, _ in finished][-1] == slow.name and len(finished) == 3
    assert all(t < resumed_at - 0.1 for name, t in finished if name != slow.name)


def test_exhausted_pool_raises_before_anything_is_sent(cluster: ClusterHarness) -> None:
    with RedisCluster(host=cluster.host, port=cluster.ports[0], max_connections=1) as c:
        c.set("{m}n", 0)
        keys = ["{m}n"] + [k for k in _keys(50, "mx") if c.get_node_from_key(k).name != c.get_node_from_key("{m}n").name]
        watcher = c.pipeline(transaction=True)
        watcher.watch("{m}n")  # holds the only connection to that node
        try:
            p = c.pipeline()
            for k in keys:
                p.incr(k)
            with pytest.raises(redis.exceptions.MaxConnectionsError):
                p.execute()
        finally:
            watcher.reset()
        assert c.get("{m}n") == b"0" and all(c.get(k) is None for k in keys[1:])  # nothing was sent
