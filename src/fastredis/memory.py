"""Where a Redis server's memory goes: ``memory_report``.

It samples keys with ``SCAN`` (a ``COUNT`` per call, a time budget, never
``KEYS``) and asks ``MEMORY USAGE``, ``TYPE`` and ``OBJECT ENCODING`` of each
sampled key, pipelined per SCAN page; groups keys by prefix (the key up to
its first separator, ``":"`` by default; ``depth=2`` up to the second); and
reports per group the keys and bytes sampled, estimates for the whole
keyspace, the type/encoding mix and the largest keys, plus ``INFO memory``'s
headline figures (used, peak, RSS, fragmentation). Every command it sends is
O(1) or bounded (``MEMORY USAGE`` samples aggregate values, 5 elements by
default), so it never blocks the server.

Estimates: when the scan covered the keyspace (it ended, or the sample
limit / time budget stopped it part-way), each group's figures are divided
by the fraction covered, read from the SCAN cursor (``match="*"``: keys
sampled / DBSIZE).

From the shell: ``python -m fastredis memory redis://host:6379/0`` (a table;
``--json`` for machines). The asyncio twin is
:func:`fastredis.asyncio.memory_report`.

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer(); r = server.client()
    >>> _ = r.mset({f"user:{i}": "x" * 20 for i in range(100)}); _ = r.hset("cfg", "a", 1)
    >>> report = memory_report(r)
    >>> [(g.prefix, g.keys, g.encodings) for g in report.groups]
    [('user:', 100, {'string/embstr': 100}), ('cfg', 1, {'hash/listpack': 1})]
    >>> report.complete, report.info.used > 0
    (True, True)
    >>> server.stop()
"""

from __future__ import annotations

import heapq
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from redis.client import NEVER_DECODE

from .patterns._plan import Call, Plan, Steps
from .scripts import run

__all__ = ["memory_report", "plan_memory_report", "MemoryReport", "GroupReport", "KeySample", "MemoryInfo", "main"]

_RAW = {NEVER_DECODE: True}


class KeySample(NamedTuple):
    """One sampled key: name, ``MEMORY USAGE`` bytes, type, encoding.

    Example::

        >>> KeySample("user:1", 72, "string", "embstr").bytes
        72
    """

    key: str
    bytes: int
    type: str
    encoding: str


class MemoryInfo(NamedTuple):
    """``INFO memory``'s headline figures (bytes; ratio for fragmentation).

    Example::

        >>> MemoryInfo(100, 200, 300, 3.0, 80, 0, "noeviction").peak
        200
    """

    used: int
    peak: int
    rss: int
    fragmentation_ratio: float
    dataset: int
    maxmemory: int
    maxmemory_policy: str


@dataclass
class GroupReport:
    """The keys of one prefix: sampled count and bytes, whole-keyspace
    estimates, ``"type/encoding"`` counts, and the largest sampled keys.

    Example::

        >>> g = GroupReport("user:", 2, 150, 2, 150, {"string/embstr": 2}, [])
        >>> g.average
        75.0
    """

    prefix: str
    keys: int
    bytes: int
    estimated_keys: int
    estimated_bytes: int
    encodings: Dict[str, int]
    largest: List[KeySample] = field(default_factory=list)

    @property
    def average(self) -> float:
        """Bytes per sampled key."""
        return self.bytes / self.keys if self.keys else 0.0


@dataclass
class MemoryReport:
    """What :func:`memory_report` found. ``groups`` are sorted by estimated
    bytes, largest first; ``coverage`` is the fraction of the keyspace the
    sample stands for (1.0 when ``complete``).

    Example::

        >>> info = MemoryInfo(1000, 1000, 2000, 2.0, 500, 0, "noeviction")
        >>> MemoryReport([], 0, 0, 1.0, True, 0.01, info, "*", ":").to_dict()["complete"]
        True
    """

    groups: List[GroupReport]
    sampled: int
    dbsize: int
    coverage: float
    complete: bool
    elapsed: float
    info: MemoryInfo
    match: str
    separator: str

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict (``--json``).

        Example::

            >>> info = MemoryInfo(1, 1, 1, 1.0, 1, 0, "noeviction")
            >>> sorted(MemoryReport([], 0, 0, 1.0, True, 0.0, info, "*", ":").to_dict())
            ['complete', 'coverage', 'dbsize', 'elapsed', 'groups', 'info', 'match', 'sampled', 'separator']
        """
        return {
            "info": self.info._asdict(),
            "dbsize": self.dbsize,
            "sampled": self.sampled,
            "coverage": self.coverage,
            "complete": self.complete,
            "elapsed": self.elapsed,
            "match": self.match,
            "separator": self.separator,
            "groups": [
                {
                    "prefix": g.prefix,
                    "keys": g.keys,
                    "bytes": g.bytes,
                    "estimated_keys": g.estimated_keys,
                    "estimated_bytes": g.estimated_bytes,
                    "average": g.average,
                    "encodings": g.encodings,
                    "largest": [s._asdict() for s in g.largest],
                }
                for g in self.groups
            ],
        }

    def table(self) -> str:
        """A readable table (what ``python -m fastredis memory`` prints).

        Example::

            >>> info = MemoryInfo(2048, 4096, 8192, 4.0, 1024, 0, "noeviction")
            >>> g = GroupReport("user:", 2, 150, 2, 150, {"string/embstr": 2}, [KeySample("user:1", 80, "string", "embstr")])
            >>> print(MemoryReport([g], 2, 2, 1.0, True, 0.01, info, "*", ":").table())  # doctest: +NORMALIZE_WHITESPACE
            memory: used 2.0K, peak 4.0K, rss 8.0K, fragmentation 4.00, dataset 1.0K, maxmemory none (noeviction)
            keys: 2 sampled of 2 (100%, complete) in 0.01 s, match '*', grouped up to ':'
            <BLANKLINE>
            prefix  keys (est)  bytes (est)  B/key  share  types/encodings  largest
            ------  ----------  -----------  -----  -----  ---------------  -----------
            user:            2          150     75   100%  string/embstr 2  user:1 (80)
        """
        i = self.info
        head = [
            f"memory: used {_human(i.used)}, peak {_human(i.peak)}, rss {_human(i.rss)}, "
            f"fragmentation {i.fragmentation_ratio:.2f}, dataset {_human(i.dataset)}, "
            f"maxmemory {_human(i.maxmemory) if i.maxmemory else 'none'} ({i.maxmemory_policy})",
            f"keys: {self.sampled} sampled of {self.dbsize} ({self.coverage:.0%}, "
            f"{'complete' if self.complete else 'estimated'}) in {self.elapsed:.2f} s, "
            f"match {self.match!r}, grouped up to {self.separator!r}",
            "",
        ]
        total = sum(g.estimated_bytes for g in self.groups) or 1
        rows = [["prefix", "keys (est)", "bytes (est)", "B/key", "share", "types/encodings", "largest"]]
        for g in self.groups:
            mix = ", ".join(f"{k} {v}" for k, v in sorted(g.encodings.items(), key=lambda kv: -kv[1]))
            big = ", ".join(f"{s.key} ({_human(s.bytes)})" for s in g.largest)
            rows.append([_printable(g.prefix) or "(no separator)", f"{g.estimated_keys:,}", _human(g.estimated_bytes),
                         f"{g.average:,.0f}", f"{g.estimated_bytes / total:.0%}", mix, _printable(big)])
        rows.insert(1, ["-" * len(h) for h in rows[0]])
        widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
        rows[1] = ["-" * w for w in widths]
        right = {1, 2, 3, 4}
        lines = ["  ".join(cell.rjust(w) if c in right and n > 1 else cell.ljust(w)
                           for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
                 for n, row in enumerate(rows)]
        return "\n".join(head + lines)


def _human(n: float) -> str:
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:,.0f}" if unit == "" else f"{n:,.1f}{unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _text(x: Any) -> str:
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).decode("utf-8", "surrogateescape")
    return str(x)


def _info(reply: Any) -> MemoryInfo:
    if not isinstance(reply, dict):
        raise TypeError(f"unexpected INFO reply {type(reply).__name__}")
    d = {_text(k): v for k, v in reply.items()}

    def num(name: str) -> int:
        try:
            return int(d.get(name, 0))
        except (TypeError, ValueError):
            return 0

    try:
        frag = float(d.get("mem_fragmentation_ratio", 0.0))
    except (TypeError, ValueError):
        frag = 0.0
    return MemoryInfo(num("used_memory"), num("used_memory_peak"), num("used_memory_rss"), frag,
                      num("used_memory_dataset"), num("maxmemory"), _text(d.get("maxmemory_policy", "")))


def _reverse_bits(cursor: int, bits: int) -> int:
    return int(format(cursor, f"0{bits}b")[::-1], 2) if bits else 0


def _scan_progress(cursor: int, dbsize: int) -> float:
    """Fraction of the keyspace SCAN has passed at ``cursor`` (Redis walks
    the hash table in reverse-binary order; its size is taken as the power
    of two at or above the key count, or larger if the cursor says so)."""
    if cursor == 0:
        return 1.0
    bits = max(cursor.bit_length(), max(1, dbsize - 1).bit_length())
    return min(1.0, max(_reverse_bits(cursor, bits) / (1 << bits), 1e-9))


def plan_memory_report(
    match: str = "*",
    samples: int = 10_000,
    *,
    separator: str = ":",
    depth: int = 1,
    count: int = 500,
    time_budget: float = 5.0,
    top: int = 5,
    memory_samples: Optional[int] = None,
) -> Steps[MemoryReport]:
    """The steps of :func:`memory_report` (no I/O): run them with
    :func:`fastredis.scripts.run` or :func:`fastredis.scripts.arun`.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client(); _ = r.set("a:1", "x")
        >>> run(r, plan_memory_report()).groups[0].prefix
        'a:'
        >>> server.stop()
    """
    _check_args(match, samples, separator, depth, count, time_budget, top, memory_samples)
    return _steps(match, samples, separator, depth, count, time_budget, top, memory_samples)


def _check_args(match: Any, samples: Any, separator: Any, depth: Any, count: Any, time_budget: Any, top: Any,
                memory_samples: Any) -> None:
    if not isinstance(match, str) or not match:
        raise TypeError(f"match must be a non-empty str (a SCAN MATCH pattern), got {match!r}")
    if not isinstance(separator, str) or not separator:
        raise TypeError(f"separator must be a non-empty str, got {separator!r}")
    for name, value, low in (("samples", samples, 1), ("depth", depth, 1), ("count", count, 1), ("top", top, 0)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if memory_samples is not None and (isinstance(memory_samples, bool) or not isinstance(memory_samples, int)
                                       or memory_samples < 0):
        raise ValueError(f"memory_samples must be None or an int >= 0, got {memory_samples!r}")
    if isinstance(time_budget, bool) or not isinstance(time_budget, (int, float)):
        raise TypeError(f"time_budget must be a number of seconds, got {type(time_budget).__name__}")
    if not math.isfinite(time_budget) or time_budget <= 0:
        raise ValueError(f"time_budget must be a finite number of seconds > 0, got {time_budget!r}")


def _prefix(key: str, separator: str, depth: int) -> str:
    end = -1
    for _ in range(depth):
        end = key.find(separator, end + 1)
        if end < 0:
            break
    if end < 0:
        # fewer separators than depth: the key up to its last separator, or the key itself
        last = key.rfind(separator)
        return key[: last + len(separator)] if last >= 0 else key
    return key[: end + len(separator)]


def _steps(match: str, samples: int, separator: str, depth: int, count: int, time_budget: float, top: int,
           memory_samples: Optional[int]) -> Steps[MemoryReport]:
    started = time.monotonic()
    info_reply, dbsize = yield Plan([Call(("INFO", "memory")), Call(("DBSIZE",))], list, batch=True)
    info = _info(info_reply)
    dbsize = int(dbsize)
    usage_tail: Sequence[Any] = () if memory_samples is None else ("SAMPLES", memory_samples)
    cursor, returned, examined, complete = 0, 0, 0, False
    found: List[KeySample] = []
    while True:
        cursor, keys = yield Plan.one(Call(("SCAN", cursor, "MATCH", match, "COUNT", count), None, _RAW), _scan)
        returned += len(keys)
        keys = keys[: samples - len(found)]
        examined += len(keys)
        if keys:
            calls = []
            for k in keys:
                calls += [Call(("MEMORY", "USAGE", k, *usage_tail)), Call(("TYPE", k), None, _RAW),
                          Call(("OBJECT", "ENCODING", k), None, _RAW)]
            replies = yield Plan(calls, list, batch=True, raise_on_error=False)
            for i, k in enumerate(keys):
                usage, kind, encoding = replies[3 * i: 3 * i + 3]
                if usage is None or isinstance(usage, Exception):
                    continue  # gone since SCAN returned it
                found.append(KeySample(_text(k), int(usage), _text(kind),
                                       "?" if isinstance(encoding, Exception) or encoding is None else _text(encoding)))
        if cursor == 0:
            complete = examined == returned
            break
        if len(found) >= samples or time.monotonic() - started > time_budget:
            break
    if complete:
        coverage = 1.0
    elif match == "*" and dbsize:
        coverage = min(1.0, len(found) / dbsize)
    else:
        kept = examined / returned if returned else 1.0
        coverage = _scan_progress(cursor, dbsize) * kept
    coverage = max(coverage, 1e-9)
    groups: Dict[str, List[KeySample]] = {}
    for s in found:
        groups.setdefault(_prefix(s.key, separator, depth), []).append(s)
    out = []
    for prefix, members in groups.items():
        nbytes = sum(s.bytes for s in members)
        mix: Dict[str, int] = {}
        for s in members:
            label = f"{s.type}/{s.encoding}"
            mix[label] = mix.get(label, 0) + 1
        out.append(GroupReport(prefix, len(members), nbytes, round(len(members) / coverage), round(nbytes / coverage),
                               mix, heapq.nlargest(top, members, key=lambda s: s.bytes)))
    out.sort(key=lambda g: (-g.estimated_bytes, g.prefix))
    return MemoryReport(out, len(found), dbsize, min(coverage, 1.0), complete, time.monotonic() - started, info,
                        match, separator)


def _scan(reply: Any) -> Any:
    cursor, keys = reply
    return int(cursor), list(keys)


def memory_report(
    client: Any,
    match: str = "*",
    samples: int = 10_000,
    *,
    separator: str = ":",
    depth: int = 1,
    count: int = 500,
    time_budget: float = 5.0,
    top: int = 5,
    memory_samples: Optional[int] = None,
) -> MemoryReport:
    """Sample up to ``samples`` keys matching ``match`` (SCAN ``COUNT
    count``, stopping after ``time_budget`` seconds) and report memory by key
    prefix (see the module docstring). ``client``: ``fastredis.Redis`` or
    ``redis.Redis``; with a cluster client every primary is sampled (up to
    ``samples`` keys each) and the figures are summed.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> _ = r.mset({f"s:{i}": i for i in range(50)}); _ = r.rpush("q:{jobs}:ready", *range(10))
        >>> report = memory_report(r, samples=1000, top=1)
        >>> [(g.prefix, g.keys, g.largest[0].type) for g in report.groups]
        [('s:', 50, 'string'), ('q:', 1, 'list')]
        >>> server.stop()
    """
    from .patterns._clients import check_sync_client, is_cluster

    check_sync_client(client, "memory_report")
    args = (match, samples)
    kwargs = dict(separator=separator, depth=depth, count=count, time_budget=time_budget, top=top,
                  memory_samples=memory_samples)
    if not is_cluster(client):
        return run(client, plan_memory_report(*args, **kwargs))  # type: ignore[arg-type]
    reports = [run(client.get_redis_connection(node), plan_memory_report(*args, **kwargs))  # type: ignore[arg-type]
               for node in client.get_primaries()]
    return merge_reports(reports, top)


def merge_reports(reports: Sequence[MemoryReport], top: int = 5) -> MemoryReport:
    """One report of several servers (a cluster's primaries): figures summed,
    fragmentation the used-weighted mean.

    Example::

        >>> info = MemoryInfo(100, 100, 200, 2.0, 50, 0, "noeviction")
        >>> g = GroupReport("a:", 1, 10, 1, 10, {"string/int": 1}, [])
        >>> one = MemoryReport([g], 1, 1, 1.0, True, 0.1, info, "*", ":")
        >>> two = merge_reports([one, one])
        >>> two.groups[0].keys, two.info.used, two.dbsize
        (2, 200, 2)
    """
    if not reports:
        raise ValueError("merge_reports needs at least one report")
    groups: Dict[str, GroupReport] = {}
    for rep in reports:
        for g in rep.groups:
            m = groups.get(g.prefix)
            if m is None:
                groups[g.prefix] = GroupReport(g.prefix, g.keys, g.bytes, g.estimated_keys, g.estimated_bytes,
                                               dict(g.encodings), list(g.largest))
                continue
            m.keys += g.keys
            m.bytes += g.bytes
            m.estimated_keys += g.estimated_keys
            m.estimated_bytes += g.estimated_bytes
            for k, v in g.encodings.items():
                m.encodings[k] = m.encodings.get(k, 0) + v
            m.largest = heapq.nlargest(top, m.largest + g.largest, key=lambda s: s.bytes)
    infos = [r.info for r in reports]
    used = sum(i.used for i in infos)
    frag = sum(i.fragmentation_ratio * i.used for i in infos) / used if used else 0.0
    info = MemoryInfo(used, sum(i.peak for i in infos), sum(i.rss for i in infos), frag,
                      sum(i.dataset for i in infos), sum(i.maxmemory for i in infos), infos[0].maxmemory_policy)
    dbsize = sum(r.dbsize for r in reports)
    sampled = sum(r.sampled for r in reports)
    est = sum(g.estimated_keys for g in groups.values())
    out = sorted(groups.values(), key=lambda g: (-g.estimated_bytes, g.prefix))
    return MemoryReport(out, sampled, dbsize, min(1.0, sampled / est) if est else 1.0,
                        all(r.complete for r in reports), max(r.elapsed for r in reports), info,
                        reports[0].match, reports[0].separator)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m fastredis memory URL`` (also ``python -m fastredis.memory URL``):
    print the report of the server at URL as a table, or ``--json``.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); _ = server.client().set("k:1", "v")
        >>> main([server.url, "--json", "--budget", "2"])  # doctest: +ELLIPSIS, +NORMALIZE_WHITESPACE
        { "info": { "used": ...
        0
        >>> server.stop()
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fastredis memory",
                                     description="memory by key prefix (SCAN + MEMORY USAGE; never KEYS)")
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))


def add_arguments(parser: Any) -> None:
    """The command-line options of ``memory`` (shared with ``python -m fastredis``).

    Example::

        >>> import argparse; p = argparse.ArgumentParser(); add_arguments(p)
        >>> p.parse_args(["redis://x"]).samples
        10000
    """
    parser.add_argument("url", help="redis://[user:password@]host:port/db (rediss:// for TLS)")
    parser.add_argument("--match", default="*", help="SCAN MATCH pattern (default: every key)")
    parser.add_argument("--samples", type=int, default=10_000, help="keys to sample at most (default 10000)")
    parser.add_argument("--separator", default=":", help="group keys by prefix up to this (default ':')")
    parser.add_argument("--depth", type=int, default=1, help="up to the n-th separator (default 1)")
    parser.add_argument("--count", type=int, default=500, help="SCAN COUNT per call (default 500)")
    parser.add_argument("--budget", type=float, default=5.0, help="stop sampling after this many seconds (default 5)")
    parser.add_argument("--top", type=int, default=3, help="largest keys shown per group (default 3)")
    parser.add_argument("--cluster", action="store_true", help="URL is a cluster node: sample every primary")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run_cli(args: Any) -> int:
    """Run ``memory`` with parsed ``args`` (see :func:`add_arguments`); the exit status.

    Example::

        >>> import argparse; p = argparse.ArgumentParser(); add_arguments(p)
        >>> run_cli(p.parse_args(["redis://127.0.0.1:1/0", "--budget", "1"]))  # nothing listens on port 1
        2
    """
    import sys

    import redis

    from .client import Redis
    from .cluster import RedisCluster

    try:
        client = (RedisCluster if args.cluster else Redis).from_url(args.url, socket_connect_timeout=5)
        report = memory_report(client, args.match, args.samples, separator=args.separator, depth=args.depth,
                               count=args.count, time_budget=args.budget, top=args.top)
    except (redis.RedisError, OSError) as error:
        print(f"memory report of {args.url} failed: {error}", file=sys.stderr)
        return 2
    except (TypeError, ValueError) as error:
        print(f"bad argument: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
