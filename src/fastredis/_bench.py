"""Benchmark cases shared by ``python -m fastredis bench`` and ``benchmarks/``.

Each case runs the same operations through redis-py + hiredis, fastredis and
fastredis on its pure-Python twin, against one server, in one run, so the
ratio is what counts. Figures are medians of several rounds.

Example::

    >>> from fastredis._bench import CASES
    >>> "pipeline 100k SET" in [c.name for c in CASES]
    True
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import multiprocessing
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import redis

IMPLS = ("redis-py", "fastredis", "fastredis-py")


@dataclass(frozen=True)
class Case:
    """One benchmark: ``prepare(client)`` returns a callable doing ``ops`` operations."""

    name: str
    ops: int
    prepare: Callable[[Any], Callable[[], Any]]
    target: str = ""
    decode: bool = False
    rounds: int = 5
    #: "" for the sync clients; "asyncio" or "uvloop" for the asyncio clients
    #: (then ``prepare`` is a coroutine function returning a coroutine function).
    loop: str = ""
    #: Runs on a throwaway 3-master cluster with the cluster clients
    #: (:func:`cluster_client_classes`) instead of one server.
    cluster: bool = False


def _keys(n: int) -> List[str]:
    return [f"key:{i}" for i in range(n)]


def _pipeline_set(n: int) -> Callable[[Any], Callable[[], Any]]:
    keys = _keys(n)

    def prepare(c: Any) -> Callable[[], Any]:
        def run() -> Any:
            p = c.pipeline(transaction=False)
            for k in keys:
                p.set(k, "value")
            return p.execute()

        return run

    return prepare


def _pipeline_get(n: int) -> Callable[[Any], Callable[[], Any]]:
    keys = _keys(n)

    def prepare(c: Any) -> Callable[[], Any]:
        p = c.pipeline(transaction=False)
        for k in keys:
            p.set(k, "value-" + k)
        p.execute()

        def run() -> Any:
            p = c.pipeline(transaction=False)
            for k in keys:
                p.get(k)
            return p.execute()

        return run

    return prepare


def _pipeline_zadd(n: int) -> Callable[[Any], Callable[[], Any]]:
    members = [f"m{i}" for i in range(n)]

    def prepare(c: Any) -> Callable[[], Any]:
        def run() -> Any:
            p = c.pipeline(transaction=False)
            for i, m in enumerate(members):
                p.zadd("board", {m: i * 0.5})
            return p.execute()

        return run

    return prepare


def _pipeline_hset(n: int) -> Callable[[Any], Callable[[], Any]]:
    fields = [f"f{i}" for i in range(n)]

    def prepare(c: Any) -> Callable[[], Any]:
        def run() -> Any:
            p = c.pipeline(transaction=False)
            for f in fields:
                p.hset("hash", f, "v")
            return p.execute()

        return run

    return prepare


def _pipeline_incr(n: int) -> Callable[[Any], Callable[[], Any]]:
    keys = [f"ctr:{i % 1000}" for i in range(n)]

    def prepare(c: Any) -> Callable[[], Any]:
        def run() -> Any:
            p = c.pipeline(transaction=False)
            for k in keys:
                p.incr(k)
            return p.execute()

        return run

    return prepare


def _pipeline_not_overridden(n: int) -> Callable[[Any], Callable[[], Any]]:
    def prepare(c: Any) -> Callable[[], Any]:
        c.zadd("z", {"a": 1, "b": 2})
        c.hset("h", mapping={"a": 1})

        def run() -> Any:
            p = c.pipeline(transaction=False)
            for i in range(n // 3):
                p.zcount("z", 0, 10)
                p.hlen("h")
                p.type("z")
            return p.execute()

        return run

    return prepare


def _transaction_mixed(n: int) -> Callable[[Any], Callable[[], Any]]:
    def prepare(c: Any) -> Callable[[], Any]:
        def run() -> Any:
            p = c.pipeline(transaction=True)
            for i in range(n // 4):
                k = f"{{t}}:{i % 500}"
                p.set(k, i)
                p.incr("{t}:ctr")
                p.hset("{t}:h", k, i)
                p.get(k)
            return p.execute()

        return run

    return prepare


def _batch_set(n: int) -> Callable[[Any], Callable[[], Any]]:
    keys = _keys(n)
    values = [float(i) + 0.25 for i in range(n)]

    def prepare(c: Any) -> Callable[[], Any]:
        if not hasattr(c.pipeline(), "batch"):
            def run_loop() -> Any:
                p = c.pipeline(transaction=False)
                for k, v in zip(keys, values):
                    p.set(k, v)
                return p.execute()

            return run_loop

        def run() -> Any:
            p = c.pipeline(transaction=False)
            p.batch("SET", keys, values)
            return p.execute()

        return run

    return prepare


def _batch_zadd(n: int) -> Callable[[Any], Callable[[], Any]]:
    members = [f"m{i}" for i in range(n)]
    scores = [i * 0.5 for i in range(n)]

    def prepare(c: Any) -> Callable[[], Any]:
        if not hasattr(c.pipeline(), "batch"):
            def run_loop() -> Any:
                p = c.pipeline(transaction=False)
                for m, s in zip(members, scores):
                    p.zadd("board", {m: s})
                return p.execute()

            return run_loop

        def run() -> Any:
            p = c.pipeline(transaction=False)
            p.batch("ZADD", "board", scores, members)
            return p.execute()

        return run

    return prepare


def _single_get(n: int) -> Callable[[Any], Callable[[], Any]]:
    def prepare(c: Any) -> Callable[[], Any]:
        c.set("single", "value")

        def run() -> Any:
            get = c.get
            for _ in range(n):
                get("single")

        return run

    return prepare


def _threads_get(n: int, threads: int) -> Callable[[Any], Callable[[], Any]]:
    """``threads`` threads sharing one client, each a GET loop (n GETs in all)."""

    def prepare(c: Any) -> Callable[[], Any]:
        c.set("single", "value")
        per = n // threads

        def worker() -> None:
            get = c.get
            for _ in range(per):
                get("single")

        def run() -> Any:
            pool = [threading.Thread(target=worker) for _ in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()

        return run

    return prepare


# -- asyncio cases: redis.asyncio (+hiredis) against fastredis.asyncio ----------


def _apipeline_set(n: int) -> Callable[[Any], Any]:
    keys = _keys(n)

    async def prepare(c: Any) -> Callable[[], Any]:
        async def run() -> Any:
            p = c.pipeline(transaction=False)
            for k in keys:
                p.set(k, "value")
            return await p.execute()

        return run

    return prepare


def _apipeline_get(n: int) -> Callable[[Any], Any]:
    keys = _keys(n)

    async def prepare(c: Any) -> Callable[[], Any]:
        p = c.pipeline(transaction=False)
        for k in keys:
            p.set(k, "value-" + k)
        await p.execute()

        async def run() -> Any:
            p = c.pipeline(transaction=False)
            for k in keys:
                p.get(k)
            return await p.execute()

        return run

    return prepare


def _atasks_get(tasks: int, each: int) -> Callable[[Any], Any]:
    import asyncio

    async def prepare(c: Any) -> Callable[[], Any]:
        await c.set("shared", "value")

        async def worker() -> None:
            get = c.get
            for _ in range(each):
                await get("shared")

        async def run() -> Any:
            await asyncio.gather(*(worker() for _ in range(tasks)))

        return run

    return prepare


def _processes_get(n: int, procs: int) -> Callable[[Any], Callable[[], Any]]:
    """``procs`` forked processes, each with its own client of the same class,
    each a GET loop (n GETs in all; the fork is inside the timing, for both)."""

    def prepare(c: Any) -> Callable[[], Any]:
        c.set("single", "value")
        kw = c.connection_pool.connection_kwargs
        cls, host, port, per = type(c), kw["host"], kw["port"], n // procs

        def worker() -> None:
            client = cls(host=host, port=port)
            get = client.get
            for _ in range(per):
                get("single")
            client.close()

        def run() -> Any:
            ctx = multiprocessing.get_context("fork")
            pool = [ctx.Process(target=worker) for _ in range(procs)]
            for p in pool:
                p.start()
            for p in pool:
                p.join()
                if p.exitcode != 0:
                    raise RuntimeError(f"a benchmark worker process failed with exit code {p.exitcode}")

        return run

    return prepare


def _aseq_get(n: int) -> Callable[[Any], Any]:
    async def prepare(c: Any) -> Callable[[], Any]:
        await c.set("single", "value")

        async def run() -> Any:
            get = c.get
            for _ in range(n):
                await get("single")

        return run

    return prepare


def _aburst(n: int) -> Callable[[Any], Any]:
    import asyncio

    async def prepare(c: Any) -> Callable[[], Any]:
        await c.set("burst", "value")

        async def run() -> Any:
            replies = await asyncio.gather(*(c.get("burst") for _ in range(n)), return_exceptions=True)
            errors = [e for e in replies if isinstance(e, BaseException)]
            if errors:
                raise errors[0]
            return replies

        return run

    return prepare


def _async_cases(loop: str) -> List[Case]:
    tag = "" if loop == "asyncio" else f" ({loop})"
    return [
        Case(f"asyncio pipeline 50k SET{tag}", 50_000, _apipeline_set(50_000), "≥ 8×", loop=loop),
        Case(f"asyncio pipeline 50k GET{tag}", 50_000, _apipeline_get(50_000), "≥ 6×", loop=loop),
        Case(f"asyncio 100 tasks x 200 GET{tag}", 20_000, _atasks_get(100, 200), "≥ 4×", loop=loop),
        Case(f"asyncio one task GET loop 5k{tag}", 5_000, _aseq_get(5_000), "≥ 1.5×", loop=loop, rounds=9),
        Case(f"asyncio 1,000-task burst GET{tag}", 1_000, _aburst(1_000), "no error", loop=loop, rounds=21),
    ]


#: The asyncio cases, on the default event loop and on uvloop.
ASYNC_CASES: List[Case] = _async_cases("asyncio") + _async_cases("uvloop")
#: Errors a client raised in an asyncio case (the burst): ``{(case, client class): text}``.
ERRORS: Dict[Any, str] = {}

CASES: List[Case] = [
    # 10k cases take ~10 ms a round, so one scheduler hiccup moves a median of
    # 5: they get 21 rounds.
    Case("pipeline 10k SET", 10_000, _pipeline_set(10_000), "≥ 6×", rounds=21),
    Case("pipeline 100k SET", 100_000, _pipeline_set(100_000), "≥ 6×"),
    Case("pipeline 10k GET", 10_000, _pipeline_get(10_000), "≥ 5×", rounds=21),
    Case("pipeline 100k GET", 100_000, _pipeline_get(100_000), "≥ 5×"),
    Case("pipeline 100k GET decoded", 100_000, _pipeline_get(100_000), "≥ 4×", decode=True),
    Case("pipeline 100k ZADD", 100_000, _pipeline_zadd(100_000), "≥ 4×"),
    Case("pipeline 100k HSET", 100_000, _pipeline_hset(100_000), "≥ 4×"),
    Case("pipeline 100k INCR", 100_000, _pipeline_incr(100_000), "≥ 4×"),
    Case("pipeline 99k not overridden (ZCOUNT/HLEN/TYPE)", 99_000, _pipeline_not_overridden(99_000), "≥ 2×"),
    Case("transaction 40k mixed (SET/INCR/HSET/GET)", 40_000, _transaction_mixed(40_000), "≥ 3×"),
    Case("batch() 100k SET", 100_000, _batch_set(100_000), "≥ 10×"),
    Case("batch() 100k ZADD", 100_000, _batch_zadd(100_000), "≥ 10×"),
    Case("single-command GET loop 10k", 10_000, _single_get(10_000), "≥ 1.2×"),
    Case("16 threads x GET loop, one client (32k)", 32_000, _threads_get(32_000, 16), "≥ 1×"),
    Case("4 processes x GET loop (32k)", 32_000, _processes_get(32_000, 4), "≥ 1×"),
    *ASYNC_CASES,
]


def _cluster_pipeline_mixed(n: int) -> Callable[[Any], Callable[[], Any]]:
    keys = _keys(n // 4)

    def prepare(c: Any) -> Callable[[], Any]:
        def run() -> Any:
            p = c.pipeline(transaction=False)
            for i, k in enumerate(keys):
                p.set(k, i)
                p.incr(f"ctr:{i % 1000}")
                p.hset(f"h:{i % 1000}", k, i)
                p.get(k)
            return p.execute()

        return run

    return prepare


#: Cluster cases: pipelines over keys in every slot of a 3-master cluster,
#: against redis-py's cluster pipeline (targets from the cluster issue).
CLUSTER_CASES: List[Case] = [
    Case("cluster pipeline 50k SET", 50_000, _pipeline_set(50_000), "≥ 5×", cluster=True),
    Case("cluster pipeline 50k GET", 50_000, _pipeline_get(50_000), "≥ 4×", cluster=True),
    Case("cluster pipeline 50k mixed (SET/INCR/HSET/GET)", 50_000, _cluster_pipeline_mixed(50_000), "≥ 3×", cluster=True),
    Case("cluster batch() 50k SET", 50_000, _batch_set(50_000), "", cluster=True),
    Case("cluster single-command GET loop 2k", 2_000, _single_get(2_000), "", cluster=True),
    # redis.asyncio.cluster.RedisCluster against fastredis.asyncio.RedisCluster
    # (the asyncio twins of the cluster classes: async_class_for).
    Case("asyncio cluster pipeline 50k SET", 50_000, _apipeline_set(50_000), "", loop="asyncio", cluster=True),
    Case("asyncio cluster pipeline 50k GET", 50_000, _apipeline_get(50_000), "", loop="asyncio", cluster=True),
    Case("asyncio cluster single-command GET loop 2k", 2_000, _aseq_get(2_000), "", loop="asyncio", cluster=True),
    # 50 tasks: redis.asyncio's cluster client opens a connection per task, 100 at most per node.
    Case("asyncio cluster 50 tasks x 200 GET", 10_000, _atasks_get(50, 200), "", loop="asyncio", cluster=True),
]


def cluster_client_classes() -> Dict[str, type]:
    """The cluster clients compared: redis-py's, fastredis's, and fastredis
    on its pure-Python twin."""
    import redis.cluster

    import fastredis
    from fastredis import _resp_py
    from fastredis.cluster import cluster_class_for

    if not redis.utils.HIREDIS_AVAILABLE:
        raise RuntimeError("redis-py must run with hiredis for a fair comparison: pip install hiredis")
    return {
        "redis-py": redis.cluster.RedisCluster,
        "fastredis": fastredis.RedisCluster,
        "fastredis-py": cluster_class_for(_resp_py),
    }


class cluster_for:
    """Context manager: a throwaway 3-master cluster if any of ``cases`` needs
    one (``.port`` its first node), else nothing (``.port`` None).

    Example::

        >>> with cluster_for([c for c in CASES if c.name == "pipeline 10k SET"]) as cl:
        ...     cl.port is None
        True
    """

    def __init__(self, cases: List[Case]) -> None:
        self._needed = any(c.cluster for c in cases)
        self._cluster: Any = None
        self.port: Optional[int] = None

    def __enter__(self) -> "cluster_for":
        if self._needed:
            from fastredis.server import RedisCluster

            self._cluster = RedisCluster(3)
            self.port = self._cluster.ports[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cluster is not None:
            self._cluster.stop()


def client_classes() -> Dict[str, type]:
    """The three clients compared: redis-py+hiredis, fastredis, its pure twin."""
    import fastredis
    from fastredis import _resp_py
    from fastredis.client import client_class_for

    if not redis.utils.HIREDIS_AVAILABLE:
        raise RuntimeError("redis-py must run with hiredis for a fair comparison: pip install hiredis")
    return {"redis-py": redis.Redis, "fastredis": fastredis.Redis, "fastredis-py": client_class_for(_resp_py)}


def async_class_for(cls: type) -> type:
    """The asyncio client matching the sync client ``cls`` of :func:`client_classes`.

    Example::

        >>> import redis.asyncio
        >>> async_class_for(redis.Redis) is redis.asyncio.Redis
        True
    """
    import redis.asyncio
    import redis.cluster

    if cls is redis.Redis:
        return redis.asyncio.Redis
    if isinstance(cls, type) and issubclass(cls, redis.cluster.RedisCluster):
        return _async_cluster_class_for(cls)
    import fastredis.asyncio
    from fastredis.asyncio.client import client_class_for

    parser = getattr(cls, "parser_class", None)
    core = getattr(parser, "core", None)
    if core is not None and core.__name__.endswith("_resp_py"):
        return client_class_for(core)
    return fastredis.asyncio.Redis


def _async_cluster_class_for(cls: type) -> type:
    """The asyncio cluster client matching the sync cluster client ``cls`` of
    :func:`cluster_client_classes` (on the same core)."""
    import redis.asyncio.cluster
    import redis.cluster

    if cls is redis.cluster.RedisCluster:
        return redis.asyncio.cluster.RedisCluster
    from fastredis import _resp
    from fastredis.asyncio.cluster import cluster_class_for

    return cluster_class_for(getattr(getattr(cls, "pipeline_class", None), "core", _resp))


def time_async_case(case: Case, cls: type, port: int, rounds: Optional[int] = None) -> float:
    """Median ops/s of the asyncio ``case`` on a fresh asyncio client of ``cls``
    (a sync class of :func:`client_classes`, or an asyncio class), on the
    case's event loop; NaN (and the error in :data:`ERRORS`) if it raised."""
    import asyncio

    acls = cls if getattr(cls, "_is_async_client", False) else async_class_for(cls)
    loop: Any
    if case.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    async def measure() -> List[float]:
        c = acls(host="127.0.0.1", port=port, decode_responses=case.decode)
        try:
            await c.flushdb()
            run: Any = await case.prepare(c)  # type: ignore[misc]  # async cases: a coroutine function
            await run()  # warm-up (connections, caches)
            samples = []
            for _ in range(rounds or case.rounds):
                t0 = time.perf_counter()
                await run()
                samples.append(time.perf_counter() - t0)
            return samples
        finally:
            await c.aclose()

    try:
        samples = loop.run_until_complete(measure())
    except Exception as e:
        ERRORS[(case.name, acls.__module__ + "." + acls.__name__)] = f"{type(e).__name__}: {e}"
        return float("nan")
    finally:
        loop.close()
    return case.ops / statistics.median(samples)


def time_case(case: Case, cls: type, port: int, rounds: Optional[int] = None) -> float:
    """Median ops/s of ``case`` on a fresh client of ``cls`` (its asyncio
    twin for an asyncio case)."""
    if case.loop:
        return time_async_case(case, cls, port, rounds)
    c = cls(host="127.0.0.1", port=port, decode_responses=case.decode)
    c.flushdb()
    run = case.prepare(c)
    run()  # warm-up (connection, caches)
    samples = []
    for _ in range(rounds or case.rounds):
        t0 = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t0)
    c.close()
    return case.ops / statistics.median(samples)


def redis_benchmark_ceiling(port: int, n: int = 1_000_000) -> Optional[float]:
    """``redis-benchmark -c 1 -P 100 -t set -n N`` in requests/s, if installed."""
    exe = shutil.which("redis-benchmark")
    if not exe:
        return None
    out = subprocess.run(
        [exe, "-p", str(port), "-c", "1", "-P", "100", "-t", "set", "-n", str(n), "-q"],
        capture_output=True, text=True, timeout=300,
    ).stdout
    m = re.findall(r"SET:\s*([\d.]+)\s*requests per second", out.replace("\r", "\n"))
    return float(m[-1]) if m else None


def machine() -> Dict[str, Any]:
    """Facts about this machine and the library versions, for the table footer."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import hiredis

    import fastredis
    from fastredis import _resp
    from fastredis.server import find_redis_server

    server = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "redis-py": redis.__version__,
        "hiredis": getattr(hiredis, "__version__", "?"),
        "fastredis": fastredis.__version__,
        "fastredis core": "compiled" if _resp.COMPILED else "pure-python",
        "redis-server": server.split(" sha=")[0],
    }


@dataclass
class Result:
    case: str
    target: str
    ops_per_s: Dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        base = self.ops_per_s.get("redis-py")
        fast = self.ops_per_s.get("fastredis")
        return fast / base if base and fast else float("nan")
