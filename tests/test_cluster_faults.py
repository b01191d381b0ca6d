"""Cluster faults while pipelines run, on one 3-master cluster with a replica
per master (cluster-node-timeout 1 s), started for this module:

- a live slot migration (MIGRATING/IMPORTING, MIGRATE of half the keys, then
  the rest, then SETSLOT NODE) under pipelines of INCRs: every counter ends
  exact;
- a master killed under pipelines of INCRs: its replica is promoted by the
  cluster's own failover, the client recovers, and every counter lies between
  the INCRs acknowledged and those plus the ones reported outcome-unknown
  (no write applied twice).

The failover test runs last: it leaves the cluster with one master fewer
replicas.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any, Dict, Iterator, List

import pytest
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from fastredis import RedisCluster
from fastredis.cluster import key_slot
from fastredis.exceptions import OutcomeUnknownError
from fastredis.server import RedisCluster as ClusterHarness

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterHarness]:
    if os.environ.get("FASTREDIS_REDIS_URL"):
        pytest.skip("needs private redis-server processes; FASTREDIS_REDIS_URL is set")
    with ClusterHarness(3, replicas=1, node_timeout=1000) as c:
        yield c


class _Tally:
    """Per-key counts of INCRs acknowledged, of unknown outcome, and failed
    before reaching a node (not applied)."""

    def __init__(self) -> None:
        self.acked: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.other: List[BaseException] = []
        self.lock = threading.Lock()

    def add(self, keys: List[str], results: List[Any]) -> None:
        with self.lock:
            for k, r in zip(keys, results):
                if isinstance(r, int):
                    self.acked[k] += 1
                elif isinstance(r, OutcomeUnknownError):
                    self.unknown[k] += 1
                elif isinstance(r, (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError)):
                    self.refused[k] += 1  # never written (connect failed) or refused every round
                else:
                    self.other.append(r)


def _worker(client: RedisCluster, keys: List[str], tally: _Tally, stop: threading.Event, rounds: List[int]) -> None:
    while not stop.is_set():
        p = client.pipeline()
        for k in keys:
            p.incr(k)
        try:
            out = p.execute(raise_on_error=False)
        except Exception as e:  # noqa: BLE001 - recorded, fails the test
            tally.other.append(e)
            time.sleep(0.05)
            continue
        tally.add(keys, out)
        rounds.append(1)


def _run_workers(client: RedisCluster, keys: List[str], n: int = 2) -> "tuple[_Tally, threading.Event, List[threading.Thread], List[int]]":
    tally = _Tally()
    stop = threading.Event()
    rounds: List[int] = []
    threads = [threading.Thread(target=_worker, args=(client, keys, tally, stop, rounds), daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return tally, stop, threads, rounds


def _wait_rounds(rounds: List[int], more: int, timeout: float = 30) -> None:
    target = len(rounds) + more
    deadline = time.monotonic() + timeout
    while len(rounds) < target:
        assert time.monotonic() < deadline, "the pipelines stopped making progress"
        time.sleep(0.01)


def test_live_slot_migration_keeps_every_counter_exact(cluster: ClusterHarness) -> None:
    client = RedisCluster(host=cluster.host, port=cluster.ports[0])
    tag = "{mig}"
    slot = key_slot(tag)
    migrating = [f"{tag}:{i}" for i in range(200)]
    others = [f"other:{i}" for i in range(100)]
    keys = migrating + others
    client.pipeline().batch("SET", keys, 0).execute()
    source = client.get_node_from_key(tag)
    target = next(n for n in client.get_primaries() if n.name != source.name)
    src = redis.Redis(host=source.host, port=source.port)
    dst = redis.Redis(host=target.host, port=target.port)
    dst.config_resetstat()
    tally, stop, threads, rounds = _run_workers(client, keys)
    try:
        _wait_rounds(rounds, 5)
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", cluster.node_id(source.port))
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", cluster.node_id(target.port))
        _wait_rounds(rounds, 3)
        in_slot = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
        assert len(in_slot) == 200
        half = in_slot[: len(in_slot) // 2]
        for i in range(0, len(half), 20):  # half the keys, in batches, while INCRs run
            src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *half[i:i + 20])
            time.sleep(0.01)
        _wait_rounds(rounds, 5)  # INCRs on the migrated half go through ASK -> ASKING
        rest = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
        src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *rest)
        _wait_rounds(rounds, 3)
        # The target first, as Redis's docs order it: its epoch bump then
        # wins over the source's gossip.
        for port in sorted(cluster.master_ports(), key=lambda port: port != target.port):
            with redis.Redis(host=cluster.host, port=port) as node:
                node.execute_command("CLUSTER SETSLOT", slot, "NODE", cluster.node_id(target.port))
        _wait_rounds(rounds, 5)  # MOVED: the client patches its slot map
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    try:
        assert not tally.other, tally.other[:3]
        assert not tally.unknown and not tally.refused
        values = dict(zip(keys, client.pipeline().batch("GET", keys).execute()))
        wrong = {k: (int(values[k]), tally.acked[k]) for k in keys if int(values[k]) != tally.acked[k]}
        assert not wrong, list(wrong.items())[:5]
        assert all(tally.acked[k] == tally.acked[keys[0]] for k in keys)  # every pipeline ran whole
        assert dst.info("commandstats")["cmdstat_asking"]["calls"] > 0  # ASK really happened
        assert client.nodes_manager.slots_cache[slot][0].name == target.name
        assert src.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0
    finally:
        src.close()
        dst.close()
        client.close()


def _fail_over(cluster: ClusterHarness, host: str, master_port: int) -> int:
    """Stall writes on a master (in-flight pipelines time out: outcome
    unknown), wait until its replica has every write it acknowledged, kill it,
    and wait for the cluster's own failover. Returns the promoted replica's
    port."""
    replica_port = cluster.replica_ports(master_port)[0]
    with redis.Redis(host=host, port=master_port) as m, redis.Redis(host=host, port=replica_port) as r:
        m.execute_command("CLIENT PAUSE", 10_000, "WRITE")
        time.sleep(0.7)  # > socket_timeout: in-flight INCRs become outcome-unknown
        deadline = time.monotonic() + 10
        while m.info("replication")["master_repl_offset"] != r.info("replication")["slave_repl_offset"]:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.01)
        cluster.server(master_port).kill()
        deadline = time.monotonic() + 20
        while r.info("replication")["role"] != "master":  # the cluster's own failover
            assert time.monotonic() < deadline, "the replica was not promoted"
            time.sleep(0.05)
    cluster.wait_ok(20)
    return replica_port


def _check_counters(client: RedisCluster, keys: List[str], tally: _Tally) -> Dict[str, int]:
    assert not tally.other, tally.other[:3]
    values = {k: int(v) for k, v in zip(keys, client.pipeline().batch("GET", keys).execute())}
    for k in keys:
        v = values[k]
        assert tally.acked[k] <= v <= tally.acked[k] + tally.unknown[k], (k, v, tally.acked[k], tally.unknown[k])
    return values


def test_master_killed_under_pipelines(cluster: ClusterHarness) -> None:
    retry = Retry(ExponentialBackoff(cap=0.25, base=0.02), 80)
    client = RedisCluster(host=cluster.host, port=cluster.ports[0], socket_timeout=0.5, retry=retry)
    keys = [f"ctr:{i}" for i in range(300)]
    client.pipeline().batch("SET", keys, 0).execute()
    victim = client.get_node_from_key(keys[0])
    on_victim = [k for k in keys if client.get_node_from_key(k).name == victim.name]
    tally, stop, threads, rounds = _run_workers(client, keys)
    try:
        _wait_rounds(rounds, 5)
        promoted = _fail_over(cluster, victim.host, victim.port)
        _wait_rounds(rounds, 6, timeout=60)  # the client recovered
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    try:
        assert sum(tally.unknown[k] for k in on_victim) > 0  # the fault really hit in-flight writes
        assert not any(tally.unknown[k] for k in keys if k not in on_victim)
        values = _check_counters(client, keys, tally)
        # Recovery: the last pipelines ran whole on the promoted replica.
        assert client.get_node_from_key(keys[0]).port == promoted
        p = client.pipeline()
        for k in keys:
            p.incr(k)
        assert [r - values[k] for k, r in zip(keys, p.execute())] == [1] * len(keys)
        assert client.incr(keys[0]) == values[keys[0]] + 2  # single commands too
    finally:
        client.close()


@pytest.mark.soak
def test_repeated_failovers_soak() -> None:
    """Four failovers in a row under pipelines (each killed master comes back
    as a replica of its successor): every counter stays within its bounds."""
    if os.environ.get("FASTREDIS_REDIS_URL"):
        pytest.skip("needs private redis-server processes; FASTREDIS_REDIS_URL is set")
    with ClusterHarness(3, replicas=1, node_timeout=1000) as cluster:
        retry = Retry(ExponentialBackoff(cap=0.25, base=0.02), 80)
        client = RedisCluster(host=cluster.host, port=cluster.ports[0], socket_timeout=0.5, retry=retry)
        keys = [f"soak:{i}" for i in range(600)]
        client.pipeline().batch("SET", keys, 0).execute()
        tally, stop, threads, rounds = _run_workers(client, keys, n=3)
        try:
            for n in range(4):
                _wait_rounds(rounds, 5, timeout=60)
                victim = client.get_node_from_key(keys[n * 7])
                _fail_over(cluster, victim.host, victim.port)
                cluster.server(victim.port).restart()  # rejoins as a replica (nodes.conf kept)
                deadline = time.monotonic() + 30
                with redis.Redis(host=victim.host, port=victim.port) as back:
                    while back.info("replication").get("master_link_status") != "up":
                        assert time.monotonic() < deadline, "the old master did not rejoin as a replica"
                        time.sleep(0.05)
                cluster.wait_ok(30)
            _wait_rounds(rounds, 10, timeout=60)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        try:
            assert sum(tally.unknown.values()) > 0
            _check_counters(client, keys, tally)
        finally:
            client.close()
