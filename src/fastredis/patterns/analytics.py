"""Analytics: unique counts (HyperLogLog), page tracking, activity bitmaps, counter series.

Time buckets are computed on the client and passed to the scripts in KEYS
(bucket ``i`` covers epoch seconds ``[i*width, (i+1)*width)``, UTC-aligned).
Without ``at=`` the server's clock decides: the client passes its own bucket
and both neighbours, and the script picks the one holding ``TIME``.
A count over several buckets is their union (``PFCOUNT k1 k2 ...``), never a
sum, so a user active in five minutes counts once (the seed's ``getAnalytics``
summed per-minute SCARDs).

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer(); r = server.client()
    >>> import time; t0 = time.time() - 240
    >>> pa = PageAnalytics(r)
    >>> for minute in range(5):
    ...     _ = pa.track("/home", "ann", at=t0 + 60 * minute)
    >>> pa.stats("/home", at=t0 + 60 * 4)
    Stats(total=5, unique=1, active=1)
    >>> server.stop()
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from .._text import check_finite
from ..keys import KeySpace
from ..scripts import LuaScript
from ._clients import check_sync_client
from ._common import check_member
from ._plan import Call, Plan, script_call, sync_operation
from ._time import (DayLike, bucket_index, bucket_width, candidate_indexes, check_at,
                    day_label)

__all__ = ["UniqueCounter", "PageAnalytics", "Stats", "ActivityBitmap", "CounterSeries"]

_UC_ADD = LuaScript.load("unique_counter_add")
_UC_COUNT = LuaScript.load("unique_counter_count")
_PA_TRACK = LuaScript.load("page_analytics_track")
_PA_STATS = LuaScript.load("page_analytics_stats")
_AB_COMBINE = LuaScript.load("activity_bitmap_combine")
_CS_INCR = LuaScript.load("counter_series_incr")


def _at_and_indexes(at: Optional[float], width: int) -> Tuple[Any, List[int]]:
    """The ``at`` ARGV ('' = server TIME) and the candidate bucket indexes."""
    t = check_at(at)
    if t is None:
        return "", candidate_indexes(width)
    return t, [bucket_index(t, width)]


def _index_range(start: Optional[float], end: Optional[float], width: int) -> Tuple[Any, Any, List[int]]:
    """Bounds (ARGV; '' = server's current bucket) and the bucket indexes to pass."""
    s, e = check_at(start, "start"), check_at(end, "end")
    local = candidate_indexes(width)
    lo: Any = "" if s is None else bucket_index(s, width)
    hi: Any = "" if e is None else bucket_index(e, width)
    first: int = local[0] if lo == "" else lo
    last: int = local[-1] if hi == "" else hi
    if s is None and e is not None:
        lo = hi  # only the end bucket
        first = hi
    if first > last:
        raise ValueError(f"start ({start!r}) is after end ({end!r})")
    if last - first > 100_000:
        raise ValueError("the range spans more than 100000 buckets; use a wider bucket")
    return lo, hi, list(range(first, last + 1))


class _Analytics:
    """The client check every analytics class makes at construction."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)

    def __init__(self, client: Any) -> None:
        self.client = self._check_client(client, type(self).__name__)


def _truthy_second(reply: Any) -> bool:
    return bool(int(reply[1]))


def _int_second(reply: Any) -> int:
    return int(reply[1])


class _UniqueCounterPlans(_Analytics):
    """The plans of :class:`UniqueCounter` (no I/O), shared with its asyncio twin."""

    def __init__(self, client: Any, name: Any, *, bucket: Any = "day", prefix: str = "uc") -> None:
        super().__init__(client)
        self.name = name
        self.width = bucket_width(bucket)
        self._ks = KeySpace(prefix)
        self._ks.tagged(name)  # a bad name fails here, not at the first call

    def bucket_key(self, index: int) -> str:
        """The key of bucket ``index`` (start ``index * width``).

        Example::

            >>> import redis
            >>> UniqueCounter(redis.Redis(), "visitors").bucket_key(19000)
            'uc:{visitors}:1641600000'
        """
        return self._ks.tagged(self.name, index * self.width)

    def plan_add(self, *ids: Any, at: Optional[float] = None) -> Plan[bool]:
        """Add ids to the bucket of ``at`` (server time if None); True if the estimate changed.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); uc = UniqueCounter(server.client(), "v")
            >>> uc.add("ann", "bob"), uc.add("ann")
            (True, False)
            >>> server.stop()
        """
        if not ids:
            return Plan.done(False)
        at_arg, idx = _at_and_indexes(at, self.width)
        call = script_call(_UC_ADD, [self.bucket_key(i) for i in idx],
                           [self.width, at_arg, *idx, *[check_member(i, "id") for i in ids]])
        return Plan.one(call, _truthy_second)

    def plan_count(self, start: Optional[float] = None, end: Optional[float] = None) -> Plan[int]:
        """Distinct ids over the buckets of ``start``..``end`` (inclusive): a union, never a sum.

        ``end=None`` is the server's current bucket; ``start=None`` is ``end``'s bucket.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); uc = UniqueCounter(server.client(), "v")
            >>> _ = uc.add("ann", "bob", at=0); _ = uc.add("ann", at=86400)
            >>> uc.count(0, 86400)
            2
            >>> server.stop()
        """
        lo, hi, idx = _index_range(start, end, self.width)
        return Plan.one(script_call(_UC_COUNT, [self.bucket_key(i) for i in idx], [self.width, lo, hi, *idx]), int)

    def plan_merge_into(self, dest: Any, start: float, end: float) -> Plan[int]:
        """``PFMERGE`` the buckets from ``start`` to ``end`` into the counter key ``dest``
        (escaped, under this counter's hash tag); returns its count.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); uc = UniqueCounter(server.client(), "v")
            >>> _ = uc.add("ann", at=0); _ = uc.add("bob", at=86400)
            >>> uc.merge_into("two-days", 0, 86400)
            2
            >>> server.stop()
        """
        s, e = check_at(start, "start"), check_at(end, "end")
        if s is None or e is None:
            raise ValueError("merge_into needs explicit start and end epoch seconds")
        _, _, idx = _index_range(s, e, self.width)
        dest_key = self.merged_key(dest)
        calls = [Call(("PFMERGE", dest_key, *[self.bucket_key(i) for i in idx])), Call(("PFCOUNT", dest_key))]
        return Plan(calls, _int_second, batch=True, transaction=True)

    def merged_key(self, dest: Any) -> str:
        """The key ``merge_into(dest, ...)`` writes.

        Example::

            >>> import redis
            >>> UniqueCounter(redis.Redis(), "v").merged_key("week-1")
            'uc:{v}:merged:week-1'
        """
        return self._ks.tagged(self.name, "merged", dest)


class UniqueCounter(_UniqueCounterPlans):
    """Approximate distinct counts per time bucket (HyperLogLog, 0.81% standard error).

    Keys: ``<prefix>:{<name>}:<bucket start>``, one hash tag per counter, so a
    union over buckets is one ``PFCOUNT`` even on a cluster.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> uc = UniqueCounter(r, "visitors", bucket="day")
        >>> uc.add("ann", "bob", at=0); uc.add("ann", "cy", at=86400)
        True
        True
        >>> uc.count(0, 86400), uc.count(0, 0)
        (3, 2)
        >>> server.stop()
    """

    add = sync_operation(_UniqueCounterPlans.plan_add)
    count = sync_operation(_UniqueCounterPlans.plan_count)
    merge_into = sync_operation(_UniqueCounterPlans.plan_merge_into)


class Stats(NamedTuple):
    """Page statistics: total views, all-time unique users, users active in the window.

    Example::

        >>> Stats(total=5, unique=1, active=1).active
        1
    """

    total: int
    unique: int
    active: int


def _stats(reply: Any) -> Stats:
    return Stats(int(reply[0]), int(reply[1]), int(reply[2]))


def _nothing(_replies: Any) -> None:
    return None


class _PageAnalyticsPlans(_Analytics):
    """The plans of :class:`PageAnalytics` (no I/O), shared with its asyncio twin."""

    def __init__(self, client: Any, *, prefix: str = "pa", active_window: float = 300, bucket: Any = 60) -> None:
        super().__init__(client)
        self.width = bucket_width(bucket)
        self.active_window = check_finite(active_window, "active_window")
        if self.active_window <= 0:
            raise ValueError(f"active_window must be > 0 seconds, got {active_window!r}")
        self._ks = KeySpace(prefix)
        self._ttl = int(self.active_window) + self.width

    def _keys(self, page: Any) -> List[str]:
        return [self._ks.tagged(page, "total"), self._ks.tagged(page, "uniq")]

    def _bucket_key(self, page: Any, index: int) -> str:
        return self._ks.tagged(page, "active", index * self.width)

    def _call(self, page: Any, events: Sequence[Tuple[Any, Any]]) -> Call:
        """The track call for ``events`` = [(at ARGV, user)] of one page."""
        idx: List[int] = []
        if any(a == "" for a, _ in events):
            idx.extend(candidate_indexes(self.width))
        idx.extend(bucket_index(a, self.width) for a, _ in events if a != "")
        idx = sorted(set(idx))
        keys = self._keys(page) + [self._bucket_key(page, i) for i in idx]
        args: List[Any] = [self.width, self._ttl, *idx]
        for a, user in events:
            args.append(a)
            args.append(user)
        return script_call(_PA_TRACK, keys, args)

    def plan_track(self, page: Any, user_id: Any, at: Optional[float] = None) -> Plan[int]:
        """Count a view of ``page`` by ``user_id`` in one round trip; returns the page's total.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); pa = PageAnalytics(server.client())
            >>> pa.track("/home", "ann"), pa.track("/home", "bob")
            (1, 2)
            >>> server.stop()
        """
        t = check_at(at)
        call = self._call(check_member(page, "page"), [("" if t is None else t, check_member(user_id, "user_id"))])
        return Plan.one(call, int)

    def plan_track_many(self, events: Iterable[Sequence[Any]]) -> Plan[None]:
        """Track ``(page, user_id)`` or ``(page, user_id, at)`` events in one round trip.

        Events are grouped per page on the client: one script call per page.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); pa = PageAnalytics(server.client())
            >>> pa.track_many([("/a", "ann"), ("/b", "bob"), ("/a", "cy")]); pa.stats("/a").total
            2
            >>> server.stop()
        """
        by_page: Dict[Any, List[Tuple[Any, Any]]] = {}
        for ev in events:
            if isinstance(ev, (str, bytes)) or not hasattr(ev, "__len__"):
                raise TypeError(f"an event is a (page, user_id[, at]) tuple, got {type(ev).__name__}")
            if len(ev) == 2:
                page, user, at = ev[0], ev[1], None
            elif len(ev) == 3:
                page, user, at = ev
            else:
                raise ValueError(f"an event is (page, user_id) or (page, user_id, at), got {ev!r}")
            t = check_at(at)
            by_page.setdefault(check_member(page, "page"), []).append(("" if t is None else t, check_member(user, "user_id")))
        return Plan([self._call(page, evs) for page, evs in by_page.items()], _nothing, batch=True)

    def plan_stats(self, page: Any, at: Optional[float] = None) -> Plan[Stats]:
        """``Stats(total, unique, active)`` of ``page`` at ``at`` (server time if None), one round trip.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); pa = PageAnalytics(server.client())
            >>> _ = pa.track("/home", "ann"); pa.stats("/home")
            Stats(total=1, unique=1, active=1)
            >>> server.stop()
        """
        t = check_at(at)
        page = check_member(page, "page")
        hi = candidate_indexes(self.width)[-1] if t is None else bucket_index(t, self.width)
        n_back = int(self.active_window // self.width) + 2
        idx = list(range(hi - n_back, hi + 1))
        keys = self._keys(page)[:2] + [self._bucket_key(page, i) for i in idx]
        call = script_call(_PA_STATS, keys, [self.width, self.active_window, "" if t is None else t, *idx])
        return Plan.one(call, _stats)


class PageAnalytics(_PageAnalyticsPlans):
    """The seed's page tracker done right: totals, uniques and active users per page.

    ``active`` counts the *distinct* users of the buckets overlapping the last
    ``active_window`` seconds (so up to one bucket more than the window), as a
    HyperLogLog union. Keys of one page share the hash tag ``{<page>}``;
    activity buckets expire ``active_window`` seconds after they end.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> pa = PageAnalytics(r, active_window=300, bucket=60)
        >>> import time; t0 = time.time() // 60 * 60
        >>> pa.track_many([("/a", "ann", t0), ("/a", "bob", t0), ("/b", "ann", t0 + 30)])
        >>> pa.stats("/a", at=t0 + 10)
        Stats(total=2, unique=2, active=2)
        >>> server.stop()
    """

    track = sync_operation(_PageAnalyticsPlans.plan_track)
    track_many = sync_operation(_PageAnalyticsPlans.plan_track_many)
    stats = sync_operation(_PageAnalyticsPlans.plan_stats)


def _combined(reply: Any) -> Tuple[int, int]:
    return int(reply[0]), int(reply[1])


def _retention(reply: Any) -> float:
    both, cohort = _combined(reply)
    return both / cohort if cohort else 0.0


def _first_of_pair(reply: Any) -> int:
    return int(reply[0])


class _ActivityBitmapPlans(_Analytics):
    """The plans of :class:`ActivityBitmap` (no I/O), shared with its asyncio twin."""

    def __init__(self, client: Any, name: Any, *, max_id: int = 2**27, prefix: str = "ab") -> None:
        if isinstance(max_id, bool) or not isinstance(max_id, int):
            raise TypeError(f"max_id must be an int, got {type(max_id).__name__}")
        if not 0 <= max_id < 2**32:
            raise ValueError(f"max_id must be in [0, 2**32), got {max_id!r}")
        super().__init__(client)
        self.name = name
        self.max_id = max_id
        self._ks = KeySpace(prefix)
        self._ks.tagged(name)

    def day_key(self, day: DayLike) -> str:
        """The bitmap key of ``day``.

        Example::

            >>> import redis
            >>> ActivityBitmap(redis.Redis(), "logins").day_key("2024-01-01")
            'ab:{logins}:2024-01-01'
        """
        return self._ks.tagged(self.name, day_label(day))

    def _id(self, user_id: Any) -> int:
        if isinstance(user_id, bool) or not isinstance(user_id, int):
            raise TypeError(f"user_id must be an int, got {type(user_id).__name__}")
        if not 0 <= user_id <= self.max_id:
            raise ValueError(f"user_id must be in [0, {self.max_id}], got {user_id}")
        return user_id

    def plan_mark(self, user_id: int, day: DayLike) -> Plan[bool]:
        """Mark ``user_id`` active on ``day``; True if it already was.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); ab = ActivityBitmap(server.client(), "logins")
            >>> ab.mark(42, "2024-01-01"), ab.mark(42, "2024-01-01")
            (False, True)
            >>> server.stop()
        """
        return Plan.one(Call(("SETBIT", self.day_key(day), self._id(user_id), 1)), bool)

    def plan_is_active(self, user_id: int, day: DayLike) -> Plan[bool]:
        """Whether ``user_id`` was marked on ``day``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); ab = ActivityBitmap(server.client(), "logins")
            >>> _ = ab.mark(42, "2024-01-01"); ab.is_active(42, "2024-01-01"), ab.is_active(7, "2024-01-01")
            (True, False)
            >>> server.stop()
        """
        return Plan.one(Call(("GETBIT", self.day_key(day), self._id(user_id))), bool)

    def plan_count(self, day: DayLike) -> Plan[int]:
        """The number of ids active on ``day``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); ab = ActivityBitmap(server.client(), "logins")
            >>> _ = ab.mark(1, "2024-01-01"); _ = ab.mark(2, "2024-01-01"); ab.count("2024-01-01")
            2
            >>> server.stop()
        """
        return Plan.one(Call(("BITCOUNT", self.day_key(day))), int)

    def _combine(self, op: str, days: Iterable[DayLike], interpret: Callable[[Any], Any]) -> Plan[Any]:
        if isinstance(days, (str, bytes)):
            raise TypeError("days must be a sequence of days, not a single str")
        days = list(days)
        if not days:
            raise ValueError("days must not be empty")
        keys = [self._ks.tagged(self.name, "tmp")] + [self.day_key(d) for d in days]
        return Plan.one(script_call(_AB_COMBINE, keys, [op]), interpret)

    def plan_active_in_all(self, days: Iterable[DayLike]) -> Plan[int]:
        """Ids active on every one of ``days`` (BITOP AND).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); ab = ActivityBitmap(server.client(), "logins")
            >>> _ = ab.mark(1, "2024-01-01"); _ = ab.mark(1, "2024-01-02"); _ = ab.mark(2, "2024-01-02")
            >>> ab.active_in_all(["2024-01-01", "2024-01-02"])
            1
            >>> server.stop()
        """
        return self._combine("AND", days, _first_of_pair)

    def plan_active_in_any(self, days: Iterable[DayLike]) -> Plan[int]:
        """Ids active on at least one of ``days`` (BITOP OR).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); ab = ActivityBitmap(server.client(), "logins")
            >>> _ = ab.mark(1, "2024-01-01"); _ = ab.mark(2, "2024-01-02")
            >>> ab.active_in_any(["2024-01-01", "2024-01-02"])
            2
            >>> server.stop()
        """
        return self._combine("OR", days, _first_of_pair)

    def plan_retention(self, cohort_day: DayLike, later_day: DayLike) -> Plan[float]:
        """Share of ``cohort_day``'s ids also active on ``later_day``; 0.0 for an empty cohort.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); ab = ActivityBitmap(server.client(), "logins")
            >>> _ = ab.mark(1, "2024-01-01"); _ = ab.mark(2, "2024-01-01"); _ = ab.mark(2, "2024-01-08")
            >>> ab.retention("2024-01-01", "2024-01-08")
            0.5
            >>> server.stop()
        """
        return self._combine("AND", [cohort_day, later_day], _retention)


class ActivityBitmap(_ActivityBitmapPlans):
    """Daily activity of integer user ids as bitmaps (one bit per id per UTC day).

    Keys: ``<prefix>:{<name>}:<YYYY-MM-DD>``, one hash tag, so BITOP across
    days is one script. Ids must be ints in ``[0, max_id]``.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> ab = ActivityBitmap(r, "logins")
        >>> for uid in (1, 2, 3): _ = ab.mark(uid, "2024-01-01")
        >>> _ = ab.mark(2, "2024-01-02")
        >>> ab.count("2024-01-01"), ab.retention("2024-01-01", "2024-01-02")
        (3, 0.3333333333333333)
        >>> server.stop()
    """

    mark = sync_operation(_ActivityBitmapPlans.plan_mark)
    is_active = sync_operation(_ActivityBitmapPlans.plan_is_active)
    count = sync_operation(_ActivityBitmapPlans.plan_count)
    active_in_all = sync_operation(_ActivityBitmapPlans.plan_active_in_all)
    active_in_any = sync_operation(_ActivityBitmapPlans.plan_active_in_any)
    retention = sync_operation(_ActivityBitmapPlans.plan_retention)


class _CounterSeriesPlans(_Analytics):
    """The plans of :class:`CounterSeries` (no I/O), shared with its asyncio twin."""

    def __init__(self, client: Any, name: Any, *, bucket: Any = 60, retention: float = 86400, prefix: str = "cs") -> None:
        super().__init__(client)
        self.name = name
        self.width = bucket_width(bucket)
        self.retention = bucket_width(retention, "retention")
        self._ks = KeySpace(prefix)
        self._ks.tagged(name)

    def _key(self, series: Any, index: int) -> str:
        return self._ks.tagged(self.name, series, index * self.width)

    def plan_incr(self, series: Any, n: int = 1, at: Optional[float] = None) -> Plan[int]:
        """Add ``n`` to the bucket of ``at`` (server time if None); returns the bucket's count.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cs = CounterSeries(server.client(), "api")
            >>> cs.incr("GET /"), cs.incr("GET /", 4)
            (1, 5)
            >>> server.stop()
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if abs(n) >= 2**63:
            raise ValueError(f"n must fit in 64 bits, got {n!r}")
        series = check_member(series, "series")
        at_arg, idx = _at_and_indexes(at, self.width)
        call = script_call(_CS_INCR, [self._key(series, i) for i in idx], [self.width, self.retention, n, at_arg, *idx])
        return Plan.one(call, _int_second)

    def plan_range(self, series: Any, start: float, end: float) -> Plan[List[Tuple[float, int]]]:
        """``(bucket_start, count)`` for every bucket from ``start`` to ``end``, gaps as 0.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cs = CounterSeries(server.client(), "api", bucket=60, retention=3600)
            >>> t0 = 1_900_000_020 // 60 * 60; _ = cs.incr("GET /", 2, at=t0 + 60)
            >>> [n for _, n in cs.range("GET /", t0, t0 + 60)]
            [0, 2]
            >>> server.stop()
        """
        s, e = check_at(start, "start"), check_at(end, "end")
        if s is None or e is None:
            raise ValueError("range needs start and end epoch seconds")
        _, _, idx = _index_range(s, e, self.width)
        series = check_member(series, "series")
        width = self.width

        def interpret(values: Any) -> List[Tuple[float, int]]:
            return [(float(i * width), int(v) if v is not None else 0) for i, v in zip(idx, values)]

        return Plan.one(Call(("MGET", *[self._key(series, i) for i in idx])), interpret)


class CounterSeries(_CounterSeriesPlans):
    """Counters per time bucket (e.g. requests per minute), each bucket expiring after ``retention``.

    Keys: ``<prefix>:{<name>}:<series>:<bucket start>``: every series of one
    CounterSeries shares the hash tag ``{<name>}``.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> cs = CounterSeries(r, "api", bucket=60, retention=3600)
        >>> t0 = 1_900_000_000 // 60 * 60  # epoch seconds; buckets older than retention expire
        >>> _ = cs.incr("GET /", at=t0); _ = cs.incr("GET /", 2, at=t0 + 120)
        >>> [n for _, n in cs.range("GET /", t0, t0 + 120)]
        [1, 0, 2]
        >>> server.stop()
    """

    incr = sync_operation(_CounterSeriesPlans.plan_incr)
    range = sync_operation(_CounterSeriesPlans.plan_range)
