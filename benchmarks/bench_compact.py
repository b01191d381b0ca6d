"""CompactMap against one string key per item, in the same run.

Speed (pytest-benchmark; one throwaway server holding both layouts of the
same 1,000,000 items with 16-byte values):

    python -m pytest benchmarks/bench_compact.py --benchmark-only --benchmark-group-by=group

- group "get-1000-random": ``CompactMap.get_many`` of 1,000 random ids (one
  round trip: HGET per key staged with ``batch()``) vs redis-py ``MGET`` of
  the same 1,000 string keys (and fastredis ``MGET`` for reference); key
  names are built inside the timed call on both sides.
- group "get-1000-dense": 1,000 consecutive ids (``get_many`` sends one HMGET
  per bucket) vs redis-py ``MGET``.
- group "set-1000-random": ``set_many`` vs redis-py ``MSET``.
- group "get-one": ``CompactMap.get`` vs redis-py ``GET``.

Memory (``INFO memory`` on a throwaway server per layout; not a pytest test):

    python benchmarks/bench_compact.py --memory [--items 1000000] [--values 16,8-32]

prints bytes per item for one string key per item (``item:<id>``, ``SET``)
and for a ``CompactMap`` named ``item`` (server defaults, default bucket
size), and the ratio; ``used_memory`` is read after the map's first
operation (CONFIG GET and its first script cost ~0.2 MB once) and after
loading, on a fresh connection.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any, Dict, Iterator, List

import pytest
import redis

N = 1_000_000
ROUNDS = 64  # distinct random id sets, cycled


def _values(n: int, spec: str, rng: random.Random) -> List[bytes]:
    letters = b"abcdefghijklmnopqrstuvwxyz0123456789"
    if "-" in spec:
        lo, hi = map(int, spec.split("-"))
        return [bytes(rng.choices(letters, k=rng.randint(lo, hi))) for _ in range(n)]
    size = int(spec)
    return [bytes(rng.choices(letters, k=size)) for _ in range(n)]


@pytest.fixture(scope="module")
def loaded() -> Iterator[Dict[str, Any]]:
    """A private server holding N string keys ``item:<i>`` and a CompactMap
    ``item`` with the same N values."""
    import fastredis
    from fastredis.server import RedisServer

    assert redis.utils.HIREDIS_AVAILABLE, "redis-py must run with hiredis for a fair comparison"
    rng = random.Random(2024)
    values = _values(N, "16", rng)
    with RedisServer() as server:
        fast = fastredis.Redis(port=server.port)
        plain = redis.Redis(port=server.port)
        for start in range(0, N, 100_000):
            keys = [f"item:{i}" for i in range(start, start + 100_000)]
            fast.pipeline(transaction=False).batch("SET", keys, values[start:start + 100_000]).execute()
        cmap = fastredis.CompactMap(fast, "item")
        for start in range(0, N, 100_000):
            cmap.set_many(zip(range(start, start + 100_000), values[start:start + 100_000]))
        yield {
            "fast": fast,
            "plain": plain,
            "map": cmap,
            "plain_map": fastredis.CompactMap(plain, "item"),
            "values": values,
            "random": [rng.sample(range(N), 1000) for _ in range(ROUNDS)],
            "dense": [list(range(s, s + 1000)) for s in (rng.randrange(N - 1000) for _ in range(ROUNDS))],
        }
        fast.close()
        plain.close()


def _cycle(sets: List[List[int]]) -> Iterator[List[int]]:
    while True:
        yield from sets


# -- get_many of 1,000 random ids ------------------------------------------------

@pytest.mark.benchmark(group="get-1000-random")
def test_get_many_random_compactmap(benchmark: Any, loaded: Dict[str, Any]) -> None:
    ids, m, values = _cycle(loaded["random"]), loaded["map"], loaded["values"]
    first = loaded["random"][0]
    assert m.get_many(first) == [values[i] for i in first]
    benchmark(lambda: m.get_many(next(ids)))


@pytest.mark.benchmark(group="get-1000-random")
def test_get_many_random_compactmap_on_redis_py_client(benchmark: Any, loaded: Dict[str, Any]) -> None:
    ids, m = _cycle(loaded["random"]), loaded["plain_map"]
    benchmark(lambda: m.get_many(next(ids)))


@pytest.mark.benchmark(group="get-1000-random")
def test_get_many_random_mget_redis_py(benchmark: Any, loaded: Dict[str, Any]) -> None:
    ids, plain, values = _cycle(loaded["random"]), loaded["plain"], loaded["values"]
    first = loaded["random"][0]
    assert plain.mget([f"item:{i}" for i in first]) == [values[i] for i in first]
    benchmark(lambda: plain.mget([f"item:{i}" for i in next(ids)]))


@pytest.mark.benchmark(group="get-1000-random")
def test_get_many_random_mget_fastredis(benchmark: Any, loaded: Dict[str, Any]) -> None:
    ids, fast = _cycle(loaded["random"]), loaded["fast"]
    benchmark(lambda: fast.mget([f"item:{i}" for i in next(ids)]))


# -- get_many of 1,000 consecutive ids --------------------------------------------

@pytest.mark.benchmark(group="get-1000-dense")
def test_get_many_dense_compactmap(benchmark: Any, loaded: Dict[str, Any]) -> None:
    ids, m, values = _cycle(loaded["dense"]), loaded["map"], loaded["values"]
    first = loaded["dense"][0]
    assert m.get_many(first) == [values[i] for i in first]
    benchmark(lambda: m.get_many(next(ids)))


@pytest.mark.benchmark(group="get-1000-dense")
def test_get_many_dense_mget_redis_py(benchmark: Any, loaded: Dict[str, Any]) -> None:
    ids, plain = _cycle(loaded["dense"]), loaded["plain"]
    benchmark(lambda: plain.mget([f"item:{i}" for i in next(ids)]))


# -- set_many of 1,000 random ids ------------------------------------------------

@pytest.mark.benchmark(group="set-1000-random")
def test_set_many_random_compactmap(benchmark: Any, loaded: Dict[str, Any]) -> None:
    ids, m, values = _cycle(loaded["random"]), loaded["map"], loaded["values"]
    benchmark(lambda: m.set_many([(i, values[i]) for i in next(ids)]))


@pytest.mark.benchmark(group="set-1000-random")
def test_set_many_random_mset_redis_py(benchmark: Any, loaded: Dict[str, Any]) -> None:
    ids, plain, values = _cycle(loaded["random"]), loaded["plain"], loaded["values"]
    benchmark(lambda: plain.mset({f"item:{i}": values[i] for i in next(ids)}))


# -- one get ----------------------------------------------------------------------

@pytest.mark.benchmark(group="get-one")
def test_get_one_compactmap(benchmark: Any, loaded: Dict[str, Any]) -> None:
    m = loaded["map"]
    ids = iter(random.Random(1).choices(range(N), k=10**7))
    benchmark(lambda: m.get(next(ids)))


@pytest.mark.benchmark(group="get-one")
def test_get_one_redis_py(benchmark: Any, loaded: Dict[str, Any]) -> None:
    plain = loaded["plain"]
    ids = iter(random.Random(1).choices(range(N), k=10**7))
    benchmark(lambda: plain.get(f"item:{next(ids)}"))


# -- memory (python benchmarks/bench_compact.py --memory) ---------------------------

def measure_memory(items: int, spec: str, binary: Any = None, seed: int = 7) -> Dict[str, float]:
    """Bytes per item for string keys and for a CompactMap holding ``items``
    values of ``spec`` bytes ("16", or "8-32" uniform), each on a fresh server."""
    import time

    import fastredis
    from fastredis.server import RedisServer

    values = _values(items, spec, random.Random(seed))
    out: Dict[str, float] = {}
    for kind in ("strings", "compact"):
        with RedisServer(binary=binary) as server:
            r = fastredis.Redis(port=server.port)
            m = fastredis.CompactMap(r, "item")
            m.open()
            before = r.info("memory")["used_memory"]
            for start in range(0, items, 100_000):
                chunk = values[start:start + 100_000]
                if kind == "strings":
                    keys = [f"item:{i}" for i in range(start, start + len(chunk))]
                    r.pipeline(transaction=False).batch("SET", keys, chunk).execute()
                else:
                    m.set_many(zip(range(start, start + len(chunk)), chunk))
            r.close()
            time.sleep(0.2)
            r = fastredis.Redis(port=server.port)
            info = r.info("memory")
            out[kind] = (info["used_memory"] - before) / items
            if kind == "compact":
                out["bucket_size"] = m.layout.bucket_size
                out["memory_usage_per_bucket"] = r.memory_usage(f"cm:item:{items // m.layout.bucket_size // 2}")
                out["encoding"] = r.object("encoding", "cm:item:0").decode()  # type: ignore[assignment]
            else:
                out["memory_usage_per_key"] = r.memory_usage("item:0")
            out["version"] = r.info("server")["redis_version"]  # type: ignore[assignment]
            r.close()
    out["ratio"] = out["strings"] / out["compact"]
    return out


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", action="store_true", help="measure memory (the only mode)")
    parser.add_argument("--items", type=int, default=N)
    parser.add_argument("--values", default="8,16,24,32,8-32", help="value sizes: n or lo-hi, comma-separated")
    parser.add_argument("--all-servers", action="store_true", help="every redis-server found (6.2 and 7.x)")
    args = parser.parse_args(argv)
    from fastredis.server import find_redis_server, find_redis_servers

    binaries = list(find_redis_servers().values()) if args.all_servers else [find_redis_server()]
    print(f"{'server':8} {'values':7} {'strings B/item':>15} {'CompactMap B/item':>18} {'ratio':>6} "
          f"{'bucket':>6} {'encoding':>9}")
    for binary in binaries:
        for spec in args.values.split(","):
            m = measure_memory(args.items, spec, binary)
            print(f"{m['version']:8} {spec:7} {m['strings']:15.1f} {m['compact']:18.1f} {m['ratio']:5.2f}x "
                  f"{m['bucket_size']:6.0f} {m['encoding']:>9}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
