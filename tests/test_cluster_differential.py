"""Differential test: one command script through ``redis.cluster.RedisCluster``
and ``fastredis.RedisCluster`` on one cluster, for every protocol/decoding
combination, comparing every result and every exception's class and text.

The script is the single-node differential script (keys in many slots:
redis-py's cross-slot errors, blocked pipeline commands and multi-key
splitting are part of what is compared) plus cluster cases: hash-tagged
multi-key commands, scripts, routing by ``target_nodes`` and transactions.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, List

import pytest
import redis
from redis.cluster import RedisCluster as PlainCluster

import fastredis
from fastredis import _resp_py
from fastredis.cluster import cluster_class_for
from fastredis.server import RedisCluster as ClusterHarness
from test_client_differential import OPS as SINGLE_NODE_OPS

pytestmark = pytest.mark.cluster

# fastredis on its selected core (compiled unless FASTREDIS_NO_EXTENSIONS=1),
# and on the pure-Python twin: both must equal redis-py.
FAST_CLASSES = [fastredis.RedisCluster, cluster_class_for(_resp_py)]

CONFIGS = [
    dict(protocol=proto, decode_responses=dec, legacy_responses=legacy)
    for proto, dec, legacy in itertools.product([None, 2, 3], [False, True], [True, False])
]
CONFIG_IDS = [
    f"resp{c['protocol']}-{'dec' if c['decode_responses'] else 'raw'}-{'legacy' if c['legacy_responses'] else 'unified'}"
    for c in CONFIGS
]

CLUSTER_OPS: List[Callable[[Any], Any]] = [
    lambda c: c.set("{t}a", 1),
    lambda c: c.set("{t}b", "two", ex=100),
    lambda c: c.mget("{t}a", "{t}b", "{t}none"),
    lambda c: c.mset({"{t}c": 3, "{t}d": 4}),
    lambda c: c.exists("{t}a", "{t}b", "{t}zz"),
    lambda c: c.delete("{t}c"),
    lambda c: c.execute_command("DEL", "{t}c", "{t}d"),
    lambda c: c.execute_command("EXISTS", "a1", "b2"),
    lambda c: c.execute_command("MGET", "a1", "b2"),
    lambda c: c.eval("return {KEYS[1], ARGV[1]}", 1, "{t}a", "x"),
    lambda c: c.execute_command("EVAL", "return redis.call('INCR', KEYS[1])", 1, "{t}n"),
    lambda c: c.execute_command("EVALSHA", "0" * 40, 1, "{t}n"),
    lambda c: c.execute_command("EVAL", "return 1", 2, "a1", "b2"),
    lambda c: c.execute_command("EVAL", "return 7", 0),
    lambda c: c.zadd("{t}z", {"a": 1.5, "b": 2, "c": -1}),
    lambda c: c.zrange("{t}z", 0, -1, withscores=True),
    lambda c: c.zrevrange("{t}z", 0, 1, withscores=True),
    lambda c: c.zincrby("{t}z", 2.25, "a"),
    lambda c: c.zscore("{t}z", "a"),
    lambda c: c.hset("{t}h", mapping={"f": 1, "g": 2}),
    lambda c: c.hgetall("{t}h"),
    lambda c: c.hincrbyfloat("{t}h", "f", 0.5),
    lambda c: c.pfadd("{t}hll", "a", "b"),
    lambda c: c.pfcount("{t}hll"),
    lambda c: c.xadd("{t}s", {"k": "v"}, id="1-1"),
    lambda c: c.xrange("{t}s"),
    lambda c: c.lpush("{t}a", 1),
    lambda c: c.incr("{t}b"),
    lambda c: c.execute_command("NOSUCHCOMMAND", "{t}a"),
    lambda c: c.execute_command("GET"),
    lambda c: c.type("{t}z"),
    lambda c: c.object("encoding", "{t}z"),
    lambda c: c.keyslot("{t}a"),
    lambda c: c.execute_command("PING"),
    lambda c: c.get("é"),
    lambda c: c.set("é", "ü"),
    lambda c: c.get("é"),
    lambda c: c.getex("é", px=50000),
]

# One slot: what a cluster transaction accepts (plus a refused and a failing command).
TX_OPS: List[Callable[[Any], Any]] = [
    lambda c: c.set("{t}a", 1),
    lambda c: c.set("{t}b", "two", ex=100),
    lambda c: c.get("{t}a"),
    lambda c: c.exists("{t}a", "{t}b", "{t}zz"),
    lambda c: c.execute_command("DEL", "{t}c", "{t}d"),
    lambda c: c.execute_command("EVAL", "return redis.call('INCR', KEYS[1])", 1, "{t}n"),
    lambda c: c.zadd("{t}z", {"a": 1.5, "b": 2, "c": -1}),
    lambda c: c.zrange("{t}z", 0, -1, withscores=True),
    lambda c: c.hset("{t}h", mapping={"f": 1, "g": 2}),
    lambda c: c.hgetall("{t}h"),
    lambda c: c.hincrbyfloat("{t}h", "f", 0.5),
    lambda c: c.incr("{t}n"),
    lambda c: c.lpush("{t}a", 1),
    lambda c: c.mget("{t}a", "{t}b"),
    lambda c: c.execute_command("PING"),
    lambda c: c.set("{t}x", "y"),
]


def _describe(r: Any) -> Any:
    if isinstance(r, BaseException):
        return ("error", type(r).__name__, str(r))
    if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], dict) and isinstance(r[1], list):
        r = (r[0], sorted(r[1]))  # SCAN: keys in the server's hash order
    return (type(r).__name__, r)


def _execute(p: Any, raise_on_error: bool) -> Any:
    try:
        return [_describe(r) for r in p.execute(raise_on_error=raise_on_error)]
    except Exception as e:  # noqa: BLE001 - compared
        return ("raised", _describe(e))


def _run(client: Any, mode: str, ops: List[Callable[[Any], Any]]) -> List[Any]:
    """Run ``ops``: one by one (``direct``); as one-command pipelines, then
    the ones a pipeline accepts together in one pipeline (``pipeline``); or
    as one transaction (``transaction``). Returns every result/exception."""
    out: List[Any] = []
    if mode == "direct":
        for op in ops:
            try:
                out.append(_describe(op(client)))
            except Exception as e:  # noqa: BLE001 - compared
                out.append(_describe(e))
        return out
    transaction = mode == "transaction"
    accepted = []
    if not transaction:
        for op in ops:  # redis-py refuses some commands at staging, some at routing
            p = client.pipeline()
            try:
                op(p)
            except Exception as e:  # noqa: BLE001
                out.append(("staging", _describe(e)))
                continue
            got = _execute(p, False)
            out.append(got)
            if not (isinstance(got, tuple) and got[0] == "raised"):
                accepted.append(op)
        client.flushall()
    else:
        accepted = ops
    for raise_on_error in (False, True):
        p = client.pipeline(transaction=transaction)
        for op in accepted:
            try:
                op(p)
            except Exception as e:  # noqa: BLE001
                out.append(("staging", _describe(e)))
        out.append(_execute(p, raise_on_error))
        client.flushall()
    return out


def _compare(cluster: ClusterHarness, cfg: dict, mode: str, ops: List[Callable[[Any], Any]]) -> None:
    runs = []
    for cls in (PlainCluster, *FAST_CLASSES):
        client = cls(host=cluster.host, port=cluster.ports[0], **cfg)
        client.flushall()
        client.script_flush()
        runs.append(_run(client, mode, ops))
        client.close()
    plain = runs[0]
    for cls, fast in zip(FAST_CLASSES, runs[1:]):
        assert len(plain) == len(fast)
        for i, (a, b) in enumerate(zip(plain, fast)):
            assert a == b, f"{cls.__name__} {mode} op {i}: redis-py {a!r} != fastredis {b!r}"


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("mode", ["direct", "pipeline"])
def test_same_results_as_redis_py_cluster(cluster: ClusterHarness, cfg: dict, mode: str) -> None:
    _compare(cluster, cfg, mode, SINGLE_NODE_OPS + CLUSTER_OPS)


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_same_transaction_results_as_redis_py_cluster(cluster: ClusterHarness, cfg: dict) -> None:
    _compare(cluster, cfg, "transaction", TX_OPS)


@pytest.mark.parametrize("raise_on_error", [True, False])
def test_same_raised_errors(cluster: ClusterHarness, raise_on_error: bool) -> None:
    def script(p: Any) -> None:
        p.set("a", 1).incr("b").lpush("a", 1).hset("c", "f", 1).execute_command("NOSUCH", "k").get("b")

    out = []
    for cls in (PlainCluster, *FAST_CLASSES):
        client = cls(host=cluster.host, port=cluster.ports[0])
        client.flushall()
        p = client.pipeline()
        script(p)
        try:
            out.append([_describe(r) for r in p.execute(raise_on_error=raise_on_error)])
        except redis.RedisError as e:
            out.append(_describe(e))
        client.close()
    assert out[0] == out[1] == out[2]
