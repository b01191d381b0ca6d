"""Cluster pipelines: fastredis.RedisCluster vs redis-py's RedisCluster (+hiredis)
vs fastredis on its pure-Python twin, on one throwaway 3-master cluster, same run.

Run:  python -m pytest benchmarks/bench_cluster.py --benchmark-group-by=param:case \\
          --benchmark-columns=median,ops,rounds
The ratio of medians within each group is the figure that counts (targets:
SET >= 5x, GET >= 4x, mixed >= 3x).
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
import redis

from fastredis import _bench
from fastredis.server import RedisCluster

CLASSES = _bench.cluster_client_classes()


@pytest.fixture(scope="session")
def bench_cluster() -> Iterator[RedisCluster]:
    assert redis.utils.HIREDIS_AVAILABLE, "redis-py must run with hiredis for a fair comparison"
    with RedisCluster(3) as cluster:
        yield cluster


@pytest.mark.parametrize("impl", list(CLASSES))
@pytest.mark.parametrize("case", _bench.CLUSTER_CASES, ids=[c.name for c in _bench.CLUSTER_CASES])
def test_cluster(benchmark: Any, bench_cluster: RedisCluster, case: _bench.Case, impl: str) -> None:
    c = CLASSES[impl](host=bench_cluster.host, port=bench_cluster.ports[0], decode_responses=case.decode)
    c.flushdb()
    run = case.prepare(c)
    benchmark.extra_info["ops"] = case.ops
    benchmark.pedantic(run, rounds=case.rounds, warmup_rounds=1)
    c.close()
