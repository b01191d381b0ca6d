"""A master killed under the asyncio cluster client, on a 3-master cluster
with a replica per master (cluster-node-timeout 1 s), started for this module.

Many tasks send single INCRs (which share each node's multiplexed
connection) and pipelines of INCRs while the master stalls, is killed and
its replica is promoted by the cluster's own failover. The client recovers,
and every counter lies between the INCRs acknowledged and those plus the
ones reported outcome-unknown: no write is applied twice, none is lost
silently.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, List

import pytest
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from test_cluster_faults import _fail_over, _Tally, cluster  # noqa: F401  (the module's own cluster, as there)

from fastredis.asyncio import RedisCluster
from fastredis.server import RedisCluster as ClusterHarness

pytestmark = pytest.mark.cluster


def test_master_killed_under_single_commands_and_pipelines(cluster: ClusterHarness) -> None:
    keys = [f"actr:{i}" for i in range(120)]
    tally = _Tally()
    progress: List[int] = []

    async def singles(client: Any, stop: asyncio.Event, seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            k = rng.choice(keys)
            try:
                result: Any = await client.incr(k)
            except Exception as e:  # noqa: BLE001 - classified by the tally
                result = e
                await asyncio.sleep(0.02)
            tally.add([k], [result])
            progress.append(1)

    async def pipelines(client: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            p = client.pipeline()
            for k in keys:
                p.incr(k)
            try:
                tally.add(keys, await p.execute(raise_on_error=False))
            except Exception as e:  # noqa: BLE001 - recorded, fails the test
                tally.other.append(e)
                await asyncio.sleep(0.05)
            progress.append(1)

    async def wait_progress(more: int, timeout: float) -> None:
        target = len(progress) + more
        deadline = asyncio.get_running_loop().time() + timeout
        while len(progress) < target:
            assert asyncio.get_running_loop().time() < deadline, "the client stopped making progress"
            await asyncio.sleep(0.01)

    async def main() -> None:
        retry = Retry(ExponentialBackoff(cap=0.25, base=0.02), 80)
        client = RedisCluster(host=cluster.host, port=cluster.ports[0], socket_timeout=0.5, retry=retry)
        try:
            await client.pipeline().batch("SET", keys, 0).execute()
            victim = client.get_node_from_key(keys[0])
            on_victim = {k for k in keys if client.get_node_from_key(k).name == victim.name}
            stop = asyncio.Event()
            workers = [asyncio.ensure_future(singles(client, stop, seed)) for seed in range(50)]
            workers.append(asyncio.ensure_future(pipelines(client, stop)))
            try:
                await wait_progress(200, 30)
                promoted = await asyncio.to_thread(_fail_over, cluster, victim.host, victim.port)
                await wait_progress(500, 60)  # the client recovered
            finally:
                stop.set()
                await asyncio.gather(*workers)
            assert not tally.other, tally.other[:3]
            assert sum(tally.unknown[k] for k in on_victim) > 0  # the fault really hit in-flight writes
            assert not any(tally.unknown[k] for k in keys if k not in on_victim)
            values = dict(zip(keys, (int(v) for v in await client.pipeline().batch("GET", keys).execute())))
            for k in keys:
                assert tally.acked[k] <= values[k] <= tally.acked[k] + tally.unknown[k], (k, values[k], tally.acked[k], tally.unknown[k])
            assert client.get_node_from_key(keys[0]).port == promoted
            assert await asyncio.gather(*(client.incr(k) for k in keys)) == [values[k] + 1 for k in keys]
        finally:
            await client.aclose()

    asyncio.run(asyncio.wait_for(main(), 180))
