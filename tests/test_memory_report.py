"""memory_report against real servers: groups, encodings, largest keys,
estimates from a partial sample, the time budget, no KEYS, hostile key
names, Redis 6.2 and 7.0, a cluster, the asyncio twin and the command line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest
import redis

import fastredis
import fastredis.asyncio as fa
from fastredis.memory import _prefix, _scan_progress, memory_report, plan_memory_report
from fastredis.server import RedisServer, find_redis_servers

VERSIONS = sorted(find_redis_servers().items())


def _fill(r: Any) -> None:
    p = r.pipeline(transaction=False)
    p.batch("SET", [f"user:{i}" for i in range(3000)], "x" * 30)
    p.batch("SET", [f"n:{i}" for i in range(500)], list(range(500)))
    p.execute()
    r.hset("h:small", mapping={"a": 1})
    r.hset("h:big", mapping={f"f{i}": "v" * 100 for i in range(600)})
    r.rpush("list:1", *range(10))
    r.zadd("z:1", {"a": 1.0})
    r.sadd("s:1", 1, 2)
    r.set("nosep", "v" * 5000)


@pytest.mark.parametrize("version", [v for v, _ in VERSIONS])
def test_groups_encodings_and_largest_keys(server_factory: Any, version: str) -> None:
    r = server_factory(binary=dict(VERSIONS)[version]).client()
    _fill(r)
    before = r.info("commandstats")
    report = memory_report(r, top=2)
    assert report.complete and report.coverage == 1.0 and report.sampled == report.dbsize == 3506
    groups = {g.prefix: g for g in report.groups}
    assert set(groups) == {"user:", "n:", "h:", "list:", "z:", "s:", "nosep"}
    compact = "listpack" if version.startswith("7") else "ziplist"
    assert groups["user:"].keys == groups["user:"].estimated_keys == 3000
    assert groups["user:"].encodings == {"string/embstr": 3000}
    assert groups["n:"].encodings == {"string/int": 500}
    assert groups["h:"].encodings == {f"hash/{compact}": 1, "hash/hashtable": 1}
    assert groups["h:"].largest[0].key == "h:big" and groups["h:"].largest[0].bytes > 60_000
    assert list(groups["z:"].encodings) == [f"zset/{compact}"]
    assert report.groups[0].prefix in ("h:", "user:")  # sorted by bytes
    assert report.info.used > 0 and report.info.peak >= report.info.used and report.info.fragmentation_ratio > 0
    after = r.info("commandstats")
    assert "cmdstat_keys" not in after and after["cmdstat_scan"]["calls"] > before.get("cmdstat_scan", {}).get("calls", 0)
    json.dumps(report.to_dict())
    table = report.table()
    assert "user:" in table and "string/embstr 3000" in table and "fragmentation" in table


def test_estimates_from_a_partial_sample(r: Any) -> None:
    _fill(r)
    report = memory_report(r, samples=700, count=100)
    assert not report.complete and report.sampled == 700
    est = {g.prefix: g.estimated_keys for g in report.groups}
    assert 0.6 * 3000 < est["user:"] < 1.4 * 3000
    # With a MATCH pattern the coverage comes from the SCAN cursor.
    report = memory_report(r, "user:*", samples=500, count=50)
    assert [g.prefix for g in report.groups] == ["user:"]
    assert 0.5 * 3000 < report.groups[0].estimated_keys < 2.0 * 3000
    assert _scan_progress(0, 10) == 1.0 and 0 < _scan_progress(0b1, 1000) <= 1.0


def test_time_budget_and_arguments(r: Any) -> None:
    _fill(r)
    report = memory_report(r, count=10, time_budget=0.001)
    assert not report.complete and report.sampled < 3506
    for kwargs in ({"samples": 0}, {"count": 0}, {"time_budget": 0}, {"time_budget": float("nan")},
                   {"depth": 0}, {"memory_samples": -1}, {"top": -1}):
        with pytest.raises(ValueError):
            memory_report(r, **kwargs)
    for kwargs in ({"match": ""}, {"separator": ""}, {"samples": 1.5}, {"samples": True}):
        with pytest.raises(TypeError):
            memory_report(r, **kwargs)
    with pytest.raises(TypeError):
        memory_report("redis://localhost")
    assert _prefix("a:b:c", ":", 2) == "a:b:" and _prefix("a:b", ":", 3) == "a:" and _prefix("abc", ":", 1) == "abc"
    report = memory_report(r, separator=":", depth=2, memory_samples=0)
    assert {g.prefix for g in report.groups} >= {"user:", "h:"}


def test_hostile_key_names(any_client: Any) -> None:
    any_client.set(b"\xff\xfe:bin", "v")
    any_client.set("line\r\nbreak:1", "v")
    any_client.set("*?[]{x}:1", "v")
    report = memory_report(any_client)
    prefixes = {g.prefix for g in report.groups}
    assert prefixes == {"\udcff\udcfe:", "line\r\nbreak:", "*?[]{x}:"}
    table = report.table()
    assert "\r" not in table and "line\\r\\nbreak:" in table
    assert json.loads(json.dumps(report.to_dict()))["sampled"] == 3


def test_asyncio_twin_matches(redis_url: str, r: Any) -> None:
    _fill(r)
    want = [(g.prefix, g.keys, g.encodings) for g in memory_report(r).groups]

    async def main() -> Any:
        async with fa.Redis.from_url(redis_url) as ar:
            return [(g.prefix, g.keys, g.encodings) for g in (await fa.memory_report(ar)).groups]

    assert asyncio.run(main()) == want


@pytest.mark.cluster
def test_cluster_primaries_are_merged() -> None:
    if os.environ.get("FASTREDIS_REDIS_URL"):
        pytest.skip("needs private redis-server processes")
    from fastredis.server import RedisCluster as ClusterHarness

    with ClusterHarness(3) as cluster:
        c = fastredis.RedisCluster(host=cluster.host, port=cluster.ports[0])
        c.mset_nonatomic({f"k:{i}": i for i in range(300)})
        report = memory_report(c)
        assert report.dbsize == 300 and report.groups[0].prefix == "k:" and report.groups[0].keys == 300
        assert report.complete
        c.close()


def test_command_line(private_server: RedisServer) -> None:
    r = private_server.client()
    _fill(r)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-m", "fastredis", "memory", private_server.url, "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["complete"] and {g["prefix"] for g in data["groups"]} >= {"user:", "h:"}
    out = subprocess.run([sys.executable, "-m", "fastredis", "memory", private_server.url, "--match", "user:*",
                          "--samples", "100"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "user:" in out.stdout and "estimated" in out.stdout
    private_server.stop()
    out = subprocess.run([sys.executable, "-m", "fastredis.memory", "redis://127.0.0.1:1/0"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "failed" in out.stderr
