"""Run redis-py's own tests with plain redis-py and with fastredis swapped in,
and compare. Called by scripts/redispy_suite.sh (which builds .venv and
unpacks redis-py's tests); usable directly:

    .venv/bin/python scripts/redispy_suite/run.py --tests-root .cache/redispy-8.1.0 \\
        [--suite sync|async] [--only-fastredis] [--variant NAME] [-k EXPR] [-- PYTEST_ARGS]

Two suites, both run by default: ``sync`` (redis-py's tests of ``redis.Redis``,
swapped for ``fastredis.Redis``) and ``async`` (``tests/test_asyncio/``,
``redis.asyncio.Redis`` swapped for ``fastredis.asyncio.Redis``). Each suite
runs once with plain redis-py, then once per fastredis variant, each session
on a fresh throwaway redis-server with the same config.

A test that fails with fastredis is allowed in exactly two cases, each listed
with its reason (``nodeid  # reason``):

1. it fails with plain redis-py too, in the same invocation, and is listed in
   known_failures.txt (the server or the test, not the client, is the cause);
2. it is listed in deliberate_differences.txt: it checks a behaviour fastredis
   changes on purpose (the write-retry policy, the asyncio client's
   multiplexed connection), so it fails with fastredis only, by design.

Anything else exits 1 with a summary, which counts the allowed failures per
category. A listed test that passes is reported, not failed. Fastredis-only
failures are rerun once on a fresh server; one that then passes is reported
as flaky, not failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The server redis-py's CI runs its standalone tests against (its docker
# "redis" service passes --enable-debug-command yes --enable-module-command
# yes; redis 7.0 added both options and turned DEBUG/MODULE off by default).
# No TLS port, modules, replica, cluster or sentinels: their tests are
# deselected by marker below.
SERVER_ARGS_7 = ("--enable-debug-command", "yes", "--enable-module-command", "yes")
SERVER_ARGS: Tuple[str, ...] = ()  # set by main() from the server's version

# Markers of redis-py tests that need infrastructure this script does not start.
DESELECT_MARKERS = {
    "onlycluster": "needs a Redis Cluster",
    "redismod": "needs Redis Stack modules (--redis-mod-url)",
    "ssl": "needs a TLS server and redis-py's test certificates",
    "replica": "needs a replica on port 6380",
}


@dataclasses.dataclass
class Suite:
    """One family of redis-py test files and how to swap fastredis into it."""

    name: str
    files: Sequence[str]
    # swap_plugin's REDISPY_SUITE_SWAP: "name[,name...]=module:attr".
    swap: str
    # Module that must import for the fastredis runs to make sense.
    requires: str
    # fastredis runs: variant name -> swap_plugin's REDISPY_SUITE_CONFTEST_HOOK
    # (None: redis-py's conftest unchanged).
    variants: Dict[str, Optional[str]]

    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self.requires) is not None
        except ModuleNotFoundError:
            return False


SYNC = Suite(
    name="sync",
    files=[
        "tests/test_commands.py",
        "tests/test_pipeline.py",
        "tests/test_lock.py",
        "tests/test_scripting.py",
        "tests/test_pubsub.py",
        "tests/test_connection_pool.py",
        "tests/test_connection.py",
        "tests/test_encoding.py",
        "tests/test_retry.py",
    ],
    # redis-py's tests get clients as redis.Redis (conftest's fixtures),
    # `from redis import Redis` and `from redis.client import Redis` (test
    # modules, imported after the swap). Pipelines need no swap:
    # fastredis.Redis.pipeline() builds fastredis's Pipeline.
    swap="redis.Redis,redis.client.Redis,redis.StrictRedis,redis.client.StrictRedis=fastredis:Redis",
    requires="fastredis",
    variants={
        # The literal swap: the conftest builds redis.ConnectionPool(...) and
        # passes it in, so connections keep redis-py's (hiredis) parser.
        "fastredis": None,
        # Those pools get fastredis's parser, as fastredis.Redis.from_url()
        # and fastredis.Redis(host=...) build them (see hooks.py).
        "fastredis+parser": "hooks:fast_parser_pools",
    },
)

# The async suite: redis-py's tests/test_asyncio/ (they need pytest-asyncio,
# which redispy_suite.sh installs; redis-py's pyproject.toml sets
# asyncio_mode = "auto"). Its conftest
# (tests/test_asyncio/conftest.py) does `import redis.asyncio as redis`; its
# create_redis fixture's client_factory(cls=redis.Redis) builds
# redis.ConnectionPool(**url_options) (that is, redis.asyncio's) and passes it
# in, as the sync conftest does; test modules import Redis from redis.asyncio
# and redis.asyncio.client. One variant suffices: fastredis.asyncio.Redis
# gives a pool it is handed its fast parser itself (install_fast_async_parser)
# and multiplexes over any redis-py ConnectionPool, so the literal swap already
# runs the whole fast path.
ASYNC = Suite(
    name="async",
    files=[
        "tests/test_asyncio/test_commands.py",
        "tests/test_asyncio/test_pipeline.py",
        "tests/test_asyncio/test_lock.py",
        "tests/test_asyncio/test_scripting.py",
        "tests/test_asyncio/test_pubsub.py",
        "tests/test_asyncio/test_connection_pool.py",
        "tests/test_asyncio/test_connection.py",
        "tests/test_asyncio/test_encoding.py",
        "tests/test_asyncio/test_retry.py",
        "tests/test_asyncio/test_monitor.py",
        "tests/test_asyncio/test_client.py",
        "tests/test_asyncio/test_usage_counter.py",
        "tests/test_asyncio/test_cwe_404.py",
        "tests/test_asyncio/test_hash.py",
        "tests/test_asyncio/test_keyspace_notifications.py",
        "tests/test_asyncio/test_sentinel_managed_connection.py",
        "tests/test_asyncio/test_connect.py",
        "tests/test_asyncio/test_command_parser.py",
        "tests/test_asyncio/test_utils.py",
        "tests/test_asyncio/test_himport_integration.py",
    ],
    swap="redis.asyncio.Redis,redis.asyncio.client.Redis,redis.asyncio.StrictRedis,redis.asyncio.client.StrictRedis=fastredis.asyncio:Redis",
    requires="fastredis.asyncio",
    variants={"fastredis": None},
)

SUITES: Dict[str, Suite] = {"sync": SYNC, "async": ASYNC}
DEFAULT_SUITES = ["sync", "async"]

BASELINE = "redis-py"
FAILED = ("failed", "error")
Results = Dict[str, Dict[str, Any]]


def log(msg: str = "") -> None:
    print(msg, file=sys.stderr, flush=True)


def read_list(path: str) -> Dict[str, str]:
    """``nodeid  # reason`` lines; blank lines and ``#`` comment lines skipped."""
    out: Dict[str, str] = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            nodeid, sep, reason = line.partition("  #")
            if not sep or not reason.strip():
                raise SystemExit(f"{path}:{lineno}: expected 'nodeid  # reason', got {line!r}")
            out[nodeid.strip()] = reason.strip()
    return out


_QUALIFIER = re.compile(r"^\[redis\s*([^\]]+)\]\s*")


def for_server(known: Dict[str, str], version: Optional[str]) -> Dict[str, str]:
    """The entries that apply to a server of ``version``: a reason may start
    with ``[redis<7]`` or ``[redis==7.0.*]`` (a PEP 440 specifier set on the
    redis-server version); entries without one always apply."""
    from packaging.specifiers import SpecifierSet

    out: Dict[str, str] = {}
    for nodeid, reason in known.items():
        m = _QUALIFIER.match(reason)
        if m and version is not None and version not in SpecifierSet(m.group(1), prereleases=True):
            continue
        out[nodeid] = reason
    return out


def run_pytest(
    suite: Suite,
    client: str,
    results_path: str,
    nodeids: Optional[Sequence[str]],
    args: argparse.Namespace,
    deselected: Dict[str, str],
) -> Tuple[Results, float]:
    """One pytest session on a fresh server; returns its results and seconds.

    ``client`` is BASELINE or one of ``suite.variants``; ``nodeids`` (a rerun)
    replaces the suite's files, -k and the deselections."""
    from fastredis.server import RedisServer

    log_path = results_path[: -len(".json")] + ".log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, env.get("PYTHONPATH")]))
    env["REDISPY_SUITE_RESULTS"] = results_path
    env.pop("REDISPY_SUITE_SWAP", None)
    env.pop("REDISPY_SUITE_CONFTEST_HOOK", None)
    hook = None
    if client != BASELINE:
        names, _, target = suite.swap.rpartition("=")
        env["REDISPY_SUITE_SWAP"] = f"{names}={args.client or target}"
        hook = suite.variants[client]
        if hook:
            env["REDISPY_SUITE_CONFTEST_HOOK"] = hook
    if os.path.exists(results_path):
        os.remove(results_path)

    server = RedisServer(*SERVER_ARGS)
    try:
        url = f"redis://{server.host}:{server.port}/0"
        cmd = [
            sys.executable, "-m", "pytest",
            *(nodeids if nodeids is not None else suite.files),
            "-p", "swap_plugin",
            "-p", "no:cacheprovider",
            # Quiet, captured output (over redis-py's "-s" addopts), and native
            # tracebacks: pytest's own format re-parses the 8,000-line
            # test_commands.py per frame, seconds per failure.
            "-q", "--capture=fd", "--disable-warnings", "-r", "fE", "--tb=native", "--color=no",
            "--redis-url", url,
            "--redis-mod-url", url,  # the module probe finds none, instead of probing port 6479
            "-m", " and ".join(f"not {m}" for m in DESELECT_MARKERS),
        ]
        if nodeids is None:
            for nodeid in deselected:
                cmd += ["--deselect", nodeid]
            if args.k:
                cmd += ["-k", args.k]
        cmd += args.pytest_args
        what = f"{len(nodeids)} tests (rerun)" if nodeids is not None else f"{len(suite.files)} files"
        log(f"== {suite.name} / {client}: redis-server {server.port}, {what}")
        t0 = time.monotonic()
        with open(log_path, "w") as out:
            proc = subprocess.Popen(cmd, cwd=args.tests_root, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace")
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    out.write(line)
                    if not args.quiet:
                        sys.stderr.write(line)
                code = proc.wait()
            finally:
                if proc.poll() is None:  # interrupted: stop pytest before its server
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        elapsed = time.monotonic() - t0
    finally:
        server.stop()

    results: Results = {}
    if os.path.exists(results_path):
        with open(results_path) as f:
            payload = json.load(f)
        results = payload["tests"]
        meta = payload["meta"]
        if client != BASELINE:
            # The comparison means nothing unless fastredis really was in place.
            if not meta["swapped"] or not all(meta["swapped"].values()):
                raise SystemExit(f"{suite.name}/{client}: the swap did not hold: {meta['swapped']}")
            if hook and not meta["hooks"]:
                raise SystemExit(f"{suite.name}/{client}: conftest hook {hook} never ran")
    log(f"== {suite.name} / {client}: exit {code}, {len(results)} tests, {elapsed:.0f}s "
        f"(log: {os.path.relpath(log_path, REPO)})")
    if code not in (0, 1, 5) or (not results and code != 5):
        raise SystemExit(f"pytest for {suite.name}/{client} ended with exit code {code}: see {log_path}")
    return results, elapsed


def failed(results: Results) -> Set[str]:
    return {n for n, r in results.items() if r["outcome"] in FAILED}


def short(entry: Dict[str, str]) -> str:
    msg = entry.get("message", "").strip().replace("\n", " ")
    return (msg[:200] + "...") if len(msg) > 200 else msg


_FRAME = re.compile(r'^\s*File "')
_HARNESS = ("/_pytest/", "/pluggy/")


def tail(text: str, lines: int, root: str = "") -> str:
    """The last ``lines`` lines of a native traceback, without pytest's and
    pluggy's frames, paths shortened."""
    kept: List[str] = []
    skipping = False
    for line in text.rstrip().splitlines():
        if _FRAME.match(line):
            skipping = any(h in line for h in _HARNESS)
        elif not line.startswith(" "):
            skipping = False  # "Traceback ...", the exception line, chained-exception headers
        if not skipping:
            line = re.sub(r'"[^"]*/site-packages/', '"', line)
            kept.append(line.replace(f'"{root}/', '"') if root else line)
    kept = kept[-lines:]
    while len(kept) > 1 and not (_FRAME.match(kept[0]) or kept[0].startswith("Traceback")):
        kept.pop(0)  # start at a frame, not inside one
    return "\n".join("      " + line for line in kept)


def slowest_files(results: Results, n: int = 5) -> str:
    """The ``n`` files whose tests took longest (setup, call and teardown
    together, from swap_plugin's per-test ``seconds``)."""
    per_file: Dict[str, float] = {}
    for nodeid, entry in results.items():
        name = nodeid.split("::", 1)[0]
        per_file[name] = per_file.get(name, 0.0) + float(entry.get("seconds") or 0.0)
    top = sorted(per_file.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{os.path.basename(name)} {secs:.0f}s" for name, secs in top)


def compare(
    suite: Suite,
    variant: str,
    fast: Results,
    base: Optional[Results],
    rerun: Optional[Results],
    known: Dict[str, str],
    args: argparse.Namespace,
) -> Tuple[bool, List[str]]:
    """Compare one fastredis variant's results with the baseline's; returns (ok, summary lines)."""
    tag = f"[{suite.name}/{variant}]"
    fast_failed = failed(fast)
    base_failed = failed(base) if base is not None else set(known)
    deliberate: Dict[str, str] = args.deliberate
    # Fails with fastredis by design (deliberate_differences.txt), whatever redis-py does.
    by_design = sorted(fast_failed & set(deliberate))
    only_fast = sorted(fast_failed - base_failed - set(deliberate))
    flaky = [n for n in only_fast if rerun is not None and rerun.get(n, {}).get("outcome") == "passed"]
    only_fast = [n for n in only_fast if n not in flaky]
    both = (fast_failed & base_failed) - set(deliberate)
    unlisted = sorted(both - set(known))
    listed_passing = sorted(n for n in known if fast.get(n, {}).get("outcome") == "passed")
    deliberate_passing = sorted(
        n for n in deliberate if n.startswith(tuple(f + "::" for f in suite.files)) and fast.get(n, {}).get("outcome") == "passed"
    )
    not_with_fast = sorted(set(base) - set(fast)) if base is not None else []

    counts: Dict[str, int] = {}
    for r in fast.values():
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    lines = [f"{tag} {len(fast)} tests: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
             + f"; allowed failures: {len(both)} known ("
             + ("fail with redis-py too" if base is not None else "listed in known_failures.txt")
             + f"), {len(by_design)} deliberate differences ({os.path.relpath(args.deliberate_path, REPO)})"]
    ok = True
    if only_fast:
        ok = False
        lines.append(f"{tag} FAIL: {len(only_fast)} test(s) fail with fastredis "
                     + ("but not with redis-py:" if base is not None else "and are not in known_failures.txt:"))
        groups: Dict[str, List[str]] = {}
        for n in only_fast:
            groups.setdefault(short(fast[n]), []).append(n)
        for message, nodes in groups.items():  # one traceback per distinct error
            lines.append(f"  -- {message}")
            for n in nodes:
                base_outcome = base.get(n, {}).get("outcome", "not run") if base is not None else "not run"
                lines.append(f"    {n}  [{fast[n]['outcome']} in {fast[n].get('when')}; redis-py: {base_outcome}]")
            if args.tracebacks:
                lines.append(tail(fast[nodes[0]].get("longrepr", ""), args.tracebacks, args.tests_root))
    if unlisted:
        ok = False
        lines.append(f"{tag} FAIL: {len(unlisted)} test(s) fail with redis-py too but are not in "
                     f"{os.path.relpath(args.known, REPO)}: add each with its reason:")
        lines += [f"  {n}  # {short(fast[n])}" for n in unlisted]
    if not_with_fast:
        ok = False
        lines.append(f"{tag} FAIL: {len(not_with_fast)} test(s) ran with redis-py but not with fastredis:")
        lines += [f"  {n}" for n in not_with_fast[:50]]
    if flaky:
        lines.append(f"{tag} warning: {len(flaky)} test(s) failed with fastredis only, then passed on a rerun (flaky?):")
        lines += [f"  {n}  ({short(fast[n])})" for n in flaky]
    if base is not None:
        only_base = sorted(base_failed - fast_failed)
        if only_base:
            lines.append(f"{tag} note: {len(only_base)} test(s) fail with redis-py but pass with fastredis:")
            lines += [f"  {n}  ({short(base[n])})" for n in only_base]
    if listed_passing:
        lines.append(f"{tag} note: {len(listed_passing)} listed known failure(s) pass with fastredis "
                     f"(remove any that pass with redis-py too, on the reference server):")
        for n in listed_passing:
            base_outcome = base.get(n, {}).get("outcome", "?") if base is not None else "not run"
            lines.append(f"  {n}  [redis-py: {base_outcome}]")
    if deliberate_passing:
        lines.append(f"{tag} note: {len(deliberate_passing)} listed deliberate difference(s) pass with fastredis "
                     f"(remove them from {os.path.relpath(args.deliberate_path, REPO)}):")
        lines += [f"  {n}" for n in deliberate_passing]
    return ok, lines


def run_suite(suite: Suite, args: argparse.Namespace, known: Dict[str, str], deselected: Dict[str, str]) -> Tuple[bool, List[str]]:
    """Run one suite (baseline, then each variant) and compare; returns (ok, summary lines)."""
    out_dir = os.path.join(args.results_dir, suite.name)
    os.makedirs(out_dir, exist_ok=True)
    timings: List[str] = []
    base: Optional[Results] = None
    if not args.only_fastredis:
        base, secs = run_pytest(suite, BASELINE, os.path.join(out_dir, f"{BASELINE}.json"), None, args, deselected)
        timings.append(f"{BASELINE} {secs:.0f}s")
    ok = True
    lines: List[str] = []
    seen: Set[str] = set(base or ())
    for variant in args.variant or list(suite.variants):
        if variant not in suite.variants:
            raise SystemExit(f"suite {suite.name} has no variant {variant!r}; it has {', '.join(suite.variants)}")
        stem = variant.replace("+", "-")
        fast, secs = run_pytest(suite, variant, os.path.join(out_dir, f"{stem}.json"), None, args, deselected)
        timings.append(f"{variant} {secs:.0f}s")
        seen |= set(fast)
        base_failed = failed(base) if base is not None else set(known)
        suspects = sorted(failed(fast) - base_failed - set(args.deliberate))
        rerun: Optional[Results] = None
        if suspects and not args.no_rerun:
            # Once more, on a fresh server, to tell a real difference from a
            # timing flake on a busy machine.
            rerun, secs = run_pytest(suite, variant, os.path.join(out_dir, f"{stem}-rerun.json"), suspects, args, deselected)
            timings.append(f"{variant} rerun {secs:.0f}s")
        variant_ok, variant_lines = compare(suite, variant, fast, base, rerun, known, args)
        ok = ok and variant_ok
        lines += variant_lines
        if fast:
            lines.append(f"[{suite.name}/{variant}] slowest files: {slowest_files(fast)}")
    if not args.k and not args.pytest_args:
        prefixes = tuple(f + "::" for f in suite.files)
        stale = sorted(n for n in [*known, *args.deliberate] if n.startswith(prefixes) and n not in seen)
        if stale:
            lines.append(f"[{suite.name}] note: {len(stale)} listed known failure(s) or deliberate difference(s) "
                         f"were not run (renamed or deselected?):")
            lines += [f"  {n}" for n in stale]
    lines.append(f"[{suite.name}] time: " + ", ".join(timings))
    return ok, lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: List[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tests-root", required=True, help="unpacked redis-py sdist (holds tests/ and pyproject.toml)")
    p.add_argument("--suite", action="append", choices=sorted(SUITES), help=f"default: {' '.join(DEFAULT_SUITES)}")
    p.add_argument("--variant", action="append", metavar="NAME",
                   help="fastredis variant(s) to run (sync: fastredis, fastredis+parser; async: fastredis); default: all")
    p.add_argument("--only-fastredis", action="store_true",
                   help="skip the redis-py run; compare with known_failures.txt and deliberate_differences.txt only")
    p.add_argument("-k", help="pytest -k expression (every run)")
    p.add_argument("--client", metavar="MODULE:ATTR",
                   help="the class swapped in instead of the suite's (e.g. a candidate fix on PYTHONPATH)")
    p.add_argument("--no-rerun", action="store_true", help="do not rerun fastredis-only failures")
    p.add_argument("--tracebacks", type=int, default=30, metavar="N", help="traceback lines shown per distinct fastredis-only failure (0: none)")
    p.add_argument("--quiet", action="store_true", help="do not echo pytest's output (it is in the logs)")
    p.add_argument("--known", default=os.path.join(HERE, "known_failures.txt"))
    p.add_argument("--deliberate", dest="deliberate_path", default=os.path.join(HERE, "deliberate_differences.txt"))
    p.add_argument("--deselected", default=os.path.join(HERE, "deselected.txt"))
    p.add_argument("--results-dir", default=os.path.join(REPO, ".cache", "redispy-suite"))
    args = p.parse_args(argv)
    args.pytest_args = extra
    args.tests_root = os.path.abspath(args.tests_root)
    args.results_dir = os.path.abspath(args.results_dir)
    if not os.path.isdir(os.path.join(args.tests_root, "tests")):
        p.error(f"{args.tests_root} has no tests/ directory")
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so servers and pytest are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    known = read_list(args.known)
    args.deliberate = read_list(args.deliberate_path)
    deselected = read_list(args.deselected)
    import redis
    from fastredis.server import find_redis_server

    global SERVER_ARGS
    binary = find_redis_server()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    found = re.search(r"v=(\d+\.\d+\.\d+)", version)
    server_version = found.group(1) if found else None
    SERVER_ARGS = SERVER_ARGS_7 if server_version is None or int(server_version.split(".")[0]) >= 7 else ()
    known = for_server(known, server_version)
    log(f"redis-py {redis.__version__} from {os.path.dirname(redis.__file__)}; tests from {args.tests_root}")
    log(f"server: {binary}: {version}; args: {' '.join(SERVER_ARGS)}")
    log("deselected by marker: " + ", ".join(f"{m} ({why})" for m, why in DESELECT_MARKERS.items())
        + f"; {len(deselected)} by node id ({os.path.relpath(args.deselected, REPO)})")
    t0 = time.monotonic()
    ok = True
    summary: List[str] = [f"server: redis {server_version or '?'} ({binary}); "
                          f"{len(known)} known failure(s) apply to it ({os.path.relpath(args.known, REPO)})"]
    for name in args.suite or DEFAULT_SUITES:
        suite = SUITES[name]
        if not suite.available():
            if args.suite:
                raise SystemExit(f"suite {name}: {suite.requires} is not importable")
            log(f"suite {name}: skipped, {suite.requires} is not importable")
            continue
        suite_ok, lines = run_suite(suite, args, known, deselected)
        ok = ok and suite_ok
        summary += lines
    summary.append(f"total {time.monotonic() - t0:.0f}s; {'OK' if ok else 'FAILED'}")
    text = "\n".join(["=" * 30 + " redis-py suite summary " + "=" * 30, *summary])
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, "summary.txt"), "w") as f:
        f.write(text + "\n")
    print("\n" + text, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
