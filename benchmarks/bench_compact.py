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

The same get_many/MGET cases timed in alternation (every round runs each
case once, in a shuffled order; robust to other load on the machine):

    python benchmarks/bench_compact.py --speed [--rounds 400]

Memory (``INFO memory`` on a throwaway server per layout; not a pytest test):

    python benchmarks/bench_compact.py --memory [--items 1000000] [--values 16,8-32] [--keys int|str] [--all-servers]

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

def measure_memory(items: int, spec: str, binary: Any = None, seed: int = 7, keys: str = "int",
                   value_size: int = 16) -> Dict[str, float]:
    """Bytes per item for string keys and for a CompactMap holding ``items``
    values of ``spec`` bytes ("16", or "8-32" uniform), each on a fresh
    server. ``keys="int"``: the map's keys are the ids; ``keys="str"``: the
    map's keys are the same strings as the string keys (``item:<id>``), with
    ``capacity=items``. ``value_size``: the map's sizing hint."""
    import time

    import fastredis
    from fastredis.server import RedisServer

    values = _values(items, spec, random.Random(seed))
    out: Dict[str, float] = {}
    for kind in ("strings", "compact"):
        with RedisServer(binary=binary) as server:
            r = fastredis.Redis(port=server.port)
            m = fastredis.CompactMap(r, "item", capacity=items, value_size=value_size)
            m.open()
            before = r.info("memory")["used_memory"]
            for start in range(0, items, 100_000):
                chunk = values[start:start + 100_000]
                if kind == "strings":
                    names = [f"item:{i}" for i in range(start, start + len(chunk))]
                    r.pipeline(transaction=False).batch("SET", names, chunk).execute()
                elif keys == "int":
                    m.set_many(zip(range(start, start + len(chunk)), chunk))
                else:
                    m.set_many(zip((f"item:{i}" for i in range(start, start + len(chunk))), chunk))
            r.close()
            time.sleep(0.2)
            r = fastredis.Redis(port=server.port)
            info = r.info("memory")
            out[kind] = (info["used_memory"] - before) / items
            if kind == "compact":
                out["bucket_size"] = m.layout.bucket_size if keys == "int" else items / m.layout.str_buckets
                bucket = "cm:item:0" if keys == "int" else "cm:item:h0"
                out["encoding"] = r.object("encoding", bucket).decode()  # type: ignore[assignment]
            out["version"] = r.info("server")["redis_version"]  # type: ignore[assignment]
            r.close()
    out["ratio"] = out["strings"] / out["compact"]
    return out


def paired_speed(items: int = N, rounds: int = 400, seed: int = 11) -> Dict[str, Any]:
    """Median times of get_many / MGET of 1,000 ids measured in alternation
    (every round times each case once, in a shuffled order), so load from
    other processes hits every case alike; ratios are medians of per-round
    ratios."""
    import statistics
    import time

    import fastredis
    from fastredis.server import RedisServer

    assert redis.utils.HIREDIS_AVAILABLE, "redis-py must run with hiredis for a fair comparison"
    rng = random.Random(seed)
    values = _values(items, "16", rng)
    with RedisServer() as server:
        fast = fastredis.Redis(port=server.port)
        plain = redis.Redis(port=server.port)
        cmap = fastredis.CompactMap(fast, "item")
        for start in range(0, items, 100_000):
            chunk = values[start:start + 100_000]
            fast.pipeline(transaction=False).batch("SET", [f"item:{i}" for i in range(start, start + len(chunk))],
                                                   chunk).execute()
            cmap.set_many(zip(range(start, start + len(chunk)), chunk))
        cases = {
            "CompactMap.get_many random": lambda ids, dense: cmap.get_many(ids),
            "redis-py MGET random": lambda ids, dense: plain.mget([f"item:{i}" for i in ids]),
            "fastredis MGET random": lambda ids, dense: fast.mget([f"item:{i}" for i in ids]),
            "CompactMap.get_many dense": lambda ids, dense: cmap.get_many(dense),
            "redis-py MGET dense": lambda ids, dense: plain.mget([f"item:{i}" for i in dense]),
        }
        check = rng.sample(range(items), 1000)
        assert cmap.get_many(check) == plain.mget([f"item:{i}" for i in check]) == [values[i] for i in check]
        times: Dict[str, List[float]] = {name: [] for name in cases}
        names = list(cases)
        for _ in range(rounds):
            ids = rng.sample(range(items), 1000)
            lo = rng.randrange(items - 1000)
            dense = list(range(lo, lo + 1000))
            rng.shuffle(names)
            for name in names:
                t = time.perf_counter()
                cases[name](ids, dense)
                times[name].append(time.perf_counter() - t)
        fast.close()
        plain.close()
    out: Dict[str, Any] = {name: statistics.median(ts) for name, ts in times.items()}
    for kind in ("random", "dense"):
        pairs = zip(times[f"CompactMap.get_many {kind}"], times[f"redis-py MGET {kind}"])
        out[f"ratio {kind} (CompactMap / redis-py MGET)"] = statistics.median(a / b for a, b in pairs)
    pairs = zip(times["CompactMap.get_many random"], times["fastredis MGET random"])
    out["ratio random (CompactMap / fastredis MGET)"] = statistics.median(a / b for a, b in pairs)
    return out


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", action="store_true", help="measure memory")
    parser.add_argument("--speed", action="store_true", help="get_many vs MGET, timed in alternation")
    parser.add_argument("--rounds", type=int, default=400, help="--speed rounds")
    parser.add_argument("--items", type=int, default=N)
    parser.add_argument("--values", default="8,16,24,32,8-32", help="value sizes: n or lo-hi, comma-separated")
    parser.add_argument("--all-servers", action="store_true", help="every redis-server found (6.2 and 7.x)")
    parser.add_argument("--keys", default="int", choices=["int", "str"], help="the map's keys: ids or 'item:<id>'")
    parser.add_argument("--value-size", type=int, default=16, help="CompactMap(value_size=...) sizing hint")
    args = parser.parse_args(argv)
    from fastredis.server import find_redis_server, find_redis_servers

    if args.speed:
        for name, value in paired_speed(args.items, args.rounds).items():
            print(f"{name:45} {value:.3f}" if name.startswith("ratio") else f"{name:45} {value * 1e3:8.3f} ms")
        return 0
    binaries = list(find_redis_servers().values()) if args.all_servers else [find_redis_server()]
    print(f"{'server':8} {'values':7} {'keys':4} {'strings B/item':>15} {'CompactMap B/item':>18} {'ratio':>6} "
          f"{'bucket':>6} {'encoding':>9}")
    for binary in binaries:
        for spec in args.values.split(","):
            m = measure_memory(args.items, spec, binary, keys=args.keys, value_size=args.value_size)
            print(f"{m['version']:8} {spec:7} {args.keys:4} {m['strings']:15.1f} {m['compact']:18.1f} {m['ratio']:5.2f}x "
                  f"{m['bucket_size']:6.0f} {m['encoding']:>9}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
