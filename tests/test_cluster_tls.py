"""The cluster clients, sync and asyncio, on a cluster that speaks TLS only
(client port, cluster bus and replication), compared with redis-py's on the
same nodes: construction by keywords and by ``rediss://`` URL, certificate
verification on by default, pipelines whose replies span many TLS records
(the sync reader polls raw sockets only, so TLS nodes take the other path),
and single commands on the fast path."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Iterator, List

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

import fastredis
import fastredis.asyncio
from fastredis.connection import FastParser
from fastredis.server import RedisCluster as ClusterHarness
from fastredis.server import TLSUnavailable

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterHarness]:
    from conftest import EXTERNAL_URL

    if EXTERNAL_URL:
        pytest.skip("needs private redis-server processes; FASTREDIS_REDIS_URL is set")
    try:
        with ClusterHarness(3, tls=True) as c:
            yield c
    except TLSUnavailable as e:  # no openssl and no cryptography: said, not hidden
        pytest.skip(str(e))


def _url(cluster: ClusterHarness) -> str:
    return f"rediss://{cluster.host}:{cluster.ports[0]}/0"


def _workload(client: Any) -> List[Any]:
    """Mixed commands over many slots, replies far larger than a TLS record."""
    big = b"\xff\x00" * 20_000  # 40 kB, not UTF-8
    keys = [f"tls:{i}" for i in range(200)]
    p = client.pipeline()
    for i, k in enumerate(keys):
        p.set(k, big if i % 10 == 0 else i).get(k).incr(f"{{c}}{i % 7}").hset(f"h{i}", "f", i)
    out: List[Any] = p.execute()
    out.append(client.get(keys[0]) == big)
    out.append(client.get(keys[1]))
    return out


def test_sync_client_over_tls_matches_redis_py(cluster: ClusterHarness) -> None:
    kw = cluster.client_kwargs()
    plain = redis.cluster.RedisCluster(host=cluster.host, port=cluster.ports[0], **kw)
    fast = fastredis.RedisCluster(host=cluster.host, port=cluster.ports[0], **kw)
    try:
        plain.flushall()
        expected = _workload(plain)
        fast.flushall()
        assert _workload(fast) == expected
        for node in fast.get_primaries():
            conn = node.redis_connection.connection_pool.get_connection()
            try:
                assert isinstance(conn._sock, ssl.SSLSocket) and isinstance(conn._parser, FastParser)
            finally:
                node.redis_connection.connection_pool.release(conn)
        keys = [f"b:{i}" for i in range(3000)]
        assert fast.pipeline().batch("SET", keys, "v" * 100).execute() == [True] * 3000
        assert fast.pipeline().batch("GET", keys).execute() == [b"v" * 100] * 3000
    finally:
        plain.close()
        fast.close()


def test_sync_from_url_and_verification(cluster: ClusterHarness) -> None:
    with fastredis.RedisCluster.from_url(_url(cluster), ssl_ca_certs=cluster.ca_file) as rc:
        assert rc.pipeline().set("{u}a", 1).incr("{u}a").execute() == [True, 2]
    # Verification is on by default, as in redis-py: a CA the client does not know is refused.
    with pytest.raises(redis.exceptions.RedisClusterException, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        fastredis.RedisCluster(host=cluster.host, port=cluster.ports[0], ssl=True)


def test_asyncio_client_over_tls_matches_redis_py(cluster: ClusterHarness) -> None:
    async def workload(client: Any) -> List[Any]:
        big = b"\xff\x00" * 20_000
        keys = [f"atls:{i}" for i in range(200)]
        p = client.pipeline()
        for i, k in enumerate(keys):
            p.set(k, big if i % 10 == 0 else i).get(k).incr(f"{{c}}{i % 7}").hset(f"h{i}", "f", i)
        out: List[Any] = await p.execute()
        out.append(await client.get(keys[0]) == big)
        out.append(await client.get(keys[1]))
        # Concurrent single commands, each on a pooled connection of its own
        # (20: a new TLS connection costs redis-py tens of ms of CPU for its
        # SSL context, which would stretch a bigger burst past the timeout).
        out.extend(await asyncio.gather(*(client.incr(f"n{i % 5}") for i in range(20))))
        return out

    async def main() -> None:
        kw = cluster.client_kwargs()
        plain = redis.asyncio.cluster.RedisCluster(host=cluster.host, port=cluster.ports[0], **kw)
        fast = fastredis.asyncio.RedisCluster(host=cluster.host, port=cluster.ports[0], **kw)
        try:
            await plain.flushall()
            expected = await workload(plain)
            await fast.flushall()
            got = await workload(fast)
            assert got[:-20] == expected[:-20]
            assert sorted(got[-20:]) == sorted(expected[-20:])  # concurrent INCRs: the same set of counts
            async with fastredis.asyncio.RedisCluster.from_url(_url(cluster), ssl_ca_certs=cluster.ca_file) as by_url:
                assert await by_url.pipeline().batch("GET", ["atls:1", "atls:2"]).execute() == [b"1", b"2"]
            unverified = fastredis.asyncio.RedisCluster(host=cluster.host, port=cluster.ports[0], ssl=True)
            with pytest.raises(redis.exceptions.RedisClusterException, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                await unverified.initialize()
            await unverified.aclose()
        finally:
            await plain.aclose()
            await fast.aclose()

    asyncio.run(asyncio.wait_for(main(), 60))
