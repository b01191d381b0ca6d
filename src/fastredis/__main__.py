"""Command line: ``python -m fastredis bench`` and ``python -m fastredis server``.

Example (shell)::

    python -m fastredis bench                    # the full comparison table
    python -m fastredis bench --quick --json out.json --plot out.png
    python -m fastredis bench --case "pipeline 100k SET"
    python -m fastredis server                   # a throwaway server until Ctrl-C
    python -m fastredis memory redis://host:6379/0 [--json]   # memory by key prefix
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any, Dict, List, Optional, Sequence


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fmt(x: Optional[float]) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.0f}"


def run_bench(args: argparse.Namespace) -> int:
    from . import _bench
    from .server import RedisServer

    all_cases = _bench.CASES + _bench.CLUSTER_CASES
    cases = [c for c in all_cases if not args.case or any(s.lower() in c.name.lower() for s in args.case)]
    if not cases:
        _progress(f"no case matches {args.case!r}; cases: " + ", ".join(c.name for c in all_cases))
        return 2
    impls = _bench.client_classes()
    cluster_impls = _bench.cluster_client_classes()
    if args.no_pure:
        impls.pop("fastredis-py")
        cluster_impls.pop("fastredis-py")
    rounds = 2 if args.quick else None
    results: List[_bench.Result] = []
    with RedisServer() as server, _bench.cluster_for(cases) as cluster:
        _progress(f"redis-server on port {server.port}; {len(cases)} cases x {len(impls)} clients")
        if cluster.port:
            _progress(f"3-master cluster from port {cluster.port} for the cluster cases")
        total = len(cases) * len(impls)
        step = 0
        for case in cases:
            res = _bench.Result(case.name, case.target)
            classes, port = (cluster_impls, cluster.port) if case.cluster else (impls, server.port)
            for name, cls in classes.items():
                step += 1
                t0 = time.perf_counter()
                _progress(f"[{step}/{total}] {case.name} :: {name} ...")
                res.ops_per_s[name] = _bench.time_case(case, cls, port or 0, rounds)
                _progress(f"          {res.ops_per_s[name]:,.0f} ops/s ({time.perf_counter() - t0:.1f}s)")
            results.append(res)
        ceiling = None
        if not args.no_ceiling:
            _progress("redis-benchmark -c 1 -P 100 -t set -n 1000000 (the ceiling) ...")
            ceiling = _bench.redis_benchmark_ceiling(server.port)
    info = _bench.machine()
    _print_table(results, ceiling, info, impls)
    for (case_name, client), error in _bench.ERRORS.items():
        print(f"{case_name} :: {client} raised {error}")
    if args.json:
        payload: Dict[str, Any] = {
            "machine": info,
            "ceiling_redis_benchmark_set_P100": ceiling,
            "results": [
                {"case": r.case, "target": r.target, "ops_per_s": r.ops_per_s, "ratio": r.ratio} for r in results
            ],
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=2)
        _progress(f"wrote {args.json}")
    if args.plot:
        _plot(results, args.plot)
        _progress(f"wrote {args.plot}")
    return 0


def _print_table(results: Sequence[Any], ceiling: Optional[float], info: Dict[str, Any], impls: Dict[str, Any]) -> None:
    head = ["case", "redis-py ops/s", "fastredis ops/s", "ratio", "target"]
    if "fastredis-py" in impls:
        head.insert(3, "pure-py ops/s")
    rows = []
    for r in results:
        row = [r.case, _fmt(r.ops_per_s.get("redis-py")), _fmt(r.ops_per_s.get("fastredis")), f"{r.ratio:.2f}x", r.target]
        if "fastredis-py" in impls:
            row.insert(3, _fmt(r.ops_per_s.get("fastredis-py")))
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths)))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(row, widths))))
    if ceiling:
        batch = next((r for r in results if r.case == "batch() 100k SET"), None)
        share = f"; batch() 100k SET reaches {batch.ops_per_s['fastredis'] / ceiling:.0%} of it" if batch else ""
        print(f"\nredis-benchmark -c 1 -P 100 -t set: {ceiling:,.0f} req/s (the ceiling){share}")
    print("\nmachine: " + "; ".join(f"{k}: {v}" for k, v in info.items()))


def _plot(results: Sequence[Any], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'fastredis[bench]'") from None
    names = [r.case for r in results]
    impls = ["redis-py", "fastredis", "fastredis-py"]
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(names) + 1.5))
    h = 0.27
    for j, impl in enumerate(impls):
        vals = [r.ops_per_s.get(impl, 0) / 1000 for r in results]
        ax.barh([i + (j - 1) * h for i in range(len(names))], vals, height=h, label=impl)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("thousand ops/s (median)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_server(args: argparse.Namespace) -> int:
    from .server import RedisServer

    with RedisServer(*args.extra) as server:
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastredis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="compare fastredis with redis-py + hiredis on a throwaway server")
    b.add_argument("--case", action="append", help="run only cases whose name contains this (repeatable)")
    b.add_argument("--quick", action="store_true", help="2 rounds per case instead of 5")
    b.add_argument("--json", metavar="FILE", help="write machine-readable results")
    b.add_argument("--plot", metavar="FILE.png", help="draw a bar chart (needs matplotlib)")
    b.add_argument("--no-pure", action="store_true", help="skip the pure-Python twin")
    b.add_argument("--no-ceiling", action="store_true", help="skip the redis-benchmark ceiling")
    b.set_defaults(func=run_bench)
    s = sub.add_parser("server", help="run a throwaway redis-server until Ctrl-C")
    s.add_argument("extra", nargs="*", help="extra redis-server arguments")
    s.set_defaults(func=run_server)
    from .memory import add_arguments as memory_arguments, run_cli as run_memory

    m = sub.add_parser("memory", help="memory by key prefix of a server at URL (SCAN + MEMORY USAGE, never KEYS)")
    memory_arguments(m)
    m.set_defaults(func=run_memory)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
