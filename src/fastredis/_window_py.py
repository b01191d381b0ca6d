"""Sliding-window bookkeeping, pure-Python twin of ``_window_c``.

The in-process memory layer of rate limiting:

- :class:`DenyCache`: keys known to be over their limit, held until their
  ``retry_after`` so a denied key costs no round trip;
- :class:`LocalWindow`: an in-process sliding-window counter (two weighted
  fixed windows, the same arithmetic as the Redis script);
- window arithmetic for batches: :func:`window_index`, :func:`counter_weight`,
  :func:`buckets_covering`, and :func:`decode_decisions`, which turns the flat
  reply of ``ratelimit_driver.lua`` into result objects.

Example::

    >>> from fastredis import _window_py as w
    >>> c = w.DenyCache()
    >>> c.deny("k", 10.0)
    >>> c.blocked("k", 9.5), c.blocked("k", 10.0)
    (0.5, 0.0)
    >>> w.counter_weight(15.0, 10.0), w.window_index(15.0, 10.0)
    (0.5, 1)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Hashable, List, Sequence, Tuple

__all__ = [
    "DenyCache",
    "LocalWindow",
    "window_index",
    "counter_weight",
    "buckets_covering",
    "decode_decisions",
]

_INF = float("inf")


def window_index(now: float, window: float) -> int:
    """The fixed window holding ``now``: ``floor(now / window)``.

    Example::

        >>> window_index(59.9, 60.0), window_index(60.0, 60.0)
        (0, 1)
    """
    if not window > 0:
        raise ValueError(f"window must be > 0, got {window!r}")
    return int(math.floor(now / window))


def counter_weight(now: float, window: float) -> float:
    """Weight of the previous window in a sliding-window counter at ``now``:
    the fraction of the sliding window still overlapping it.

    Example::

        >>> counter_weight(12.5, 10.0)
        0.75
    """
    if not window > 0:
        raise ValueError(f"window must be > 0, got {window!r}")
    start = math.floor(now / window) * window
    return 1.0 - (now - start) / window


def buckets_covering(start: float, end: float, width: float) -> List[int]:
    """Indices of the width-aligned buckets that overlap ``[start, end)``.

    Example::

        >>> buckets_covering(5.0, 25.0, 10.0)
        [0, 1, 2]
        >>> buckets_covering(10.0, 20.0, 10.0)
        [1]
    """
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    if not end > start:
        return []
    first = int(math.floor(start / width))
    if first * width > start:  # start/width underflowed or rounded up a boundary
        first -= 1
    # max(): end/width can round down onto first's boundary (end - start tiny).
    last = max(first, int(math.ceil(end / width)) - 1)
    if (last + 1) * width < end:  # end/width rounded down onto a boundary
        last += 1
    return list(range(first, last + 1))


def _num(value: Any) -> float:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii")
    return float(value)


def decode_decisions(reply: Sequence[Any], limits: Sequence[int], factory: Callable[..., Any]) -> List[Any]:
    """Decode the flat 5-per-request reply of ``ratelimit_driver.lua``.

    ``limits[s - 1]`` is the limit reported when limit ``s`` binds; each
    request becomes ``factory(allowed, limit, remaining, retry_after, reset_after)``.

    Example::

        >>> from collections import namedtuple
        >>> D = namedtuple("D", "allowed limit remaining retry_after reset_after")
        >>> decode_decisions([1, 1, 4, b"0", b"1.5"], [5], D)
        [D(allowed=True, limit=5, remaining=4, retry_after=0.0, reset_after=1.5)]
    """
    # An exact list or tuple (as the compiled twin), so len() is that of the
    # items really there; a list shrunk by caller code raises IndexError.
    r = reply if (type(reply) is list or type(reply) is tuple) else tuple(reply)
    lim = tuple(limits)
    n = len(r)
    if n % 5:
        raise ValueError(f"a rate-limit reply has 5 entries per request, got {n}")
    out = []
    for i in range(0, n, 5):
        out.append(factory(
            bool(r[i]),
            lim[_limit_slot(r[i + 1], len(lim))],
            int(r[i + 2]),
            _num(r[i + 3]),
            _num(r[i + 4]),
        ))
    return out


def _limit_slot(s: Any, nlim: int) -> int:
    """The 0-based index of limit number ``s`` (1-based, from the script's reply)."""
    k = int(s)
    if not 1 <= k <= nlim:
        raise ValueError(f"a rate-limit reply names limit {k}, but there are {nlim}")
    return k - 1


class DenyCache:
    """Keys denied until a deadline, bounded to ``maxsize`` entries.

    Deadlines are on any monotonic clock the caller chooses. When full, entries
    expired at ``now`` go first, then the oldest entries: forgetting a denial
    only costs a round trip, it never admits a request the server would deny.

    Example::

        >>> c = DenyCache(maxsize=2)
        >>> c.deny("a", 5.0); c.deny("b", 5.0); c.deny("c", 5.0)
        >>> len(c), c.blocked("a", 1.0), c.blocked("c", 1.0)
        (2, 0.0, 4.0)
    """

    __slots__ = ("maxsize", "_until")

    def __init__(self, maxsize: int = 100_000) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be an int >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self._until: Dict[Hashable, float] = {}

    def deny(self, key: Hashable, until: float, now: float = float("-inf")) -> None:
        """Hold ``key`` denied until ``until`` (a later deadline wins); ``now``
        lets a full cache drop expired entries before the oldest ones."""
        until = float(until)
        if until != until:
            raise ValueError("until must not be NaN")
        d = self._until
        old = d.get(key)
        if old is not None:
            if old < until:
                d[key] = until
            return
        if len(d) >= self.maxsize:
            self._evict(now)
        d[key] = until

    def _evict(self, now: float) -> None:
        d = self._until
        for k in [k for k, v in list(d.items()) if v <= now]:
            d.pop(k, None)
        while len(d) >= self.maxsize:  # then oldest first
            d.pop(next(iter(d)), None)

    def blocked(self, key: Hashable, now: float) -> float:
        """Seconds ``key`` stays denied after ``now``; 0.0 if it is not denied."""
        d = self._until
        until = d.get(key)
        if until is None:
            return 0.0
        if until <= now:
            d.pop(key, None)  # pop: another thread may have removed it
            return 0.0
        return until - now

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` (after a reset)."""
        self._until.pop(key, None)

    def clear(self) -> None:
        """Forget every key."""
        self._until.clear()

    def __len__(self) -> int:
        return len(self._until)


class LocalWindow:
    """An in-process sliding-window counter: ``limit`` per ``window`` seconds.

    Two weighted fixed windows, the arithmetic of the Redis script. State per
    key is (window index, current count, previous count). Not thread-safe:
    guard it with a lock when threads share it.

    Example::

        >>> lw = LocalWindow(2, 10.0)
        >>> [lw.hit("k", 1.0)[0] for _ in range(3)]
        [True, True, False]
        >>> lw.hit("k", 1.0)      # (allowed, remaining, retry_after, reset_after)
        (False, 0, 14.0, 19.0)
    """

    __slots__ = ("limit", "window", "_state")

    def __init__(self, limit: int, window: float) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        window = float(window)
        if not (window > 0 and math.isfinite(window)):
            raise ValueError(f"window must be a finite number > 0, got {window!r}")
        self.limit = limit
        self.window = window
        self._state: Dict[Hashable, List[float]] = {}

    def _load(self, key: Hashable, idx: int) -> Tuple[float, float]:
        st = self._state.get(key)
        if st is None:
            return 0.0, 0.0
        if st[0] == idx:
            return st[1], st[2]
        if st[0] == idx - 1:
            return 0.0, st[1]
        return 0.0, 0.0

    def _decide(self, key: Hashable, now: float, cost: int, consume: bool) -> Tuple[bool, int, float, float]:
        if isinstance(cost, bool) or not isinstance(cost, int) or cost <= 0:
            raise ValueError(f"cost must be an int > 0, got {cost!r}")
        limit, window = self.limit, self.window
        idx = int(math.floor(now / window))
        cur, prev = self._load(key, idx)
        start = idx * window
        est = prev * (1.0 - (now - start) / window) + cur
        left = max(0, int(math.floor(limit - est)))
        reset = start + 2 * window - now if cur > 0 else (start + window - now if prev > 0 else 0.0)
        if cost > limit:
            return False, left, _INF, reset
        if est + cost <= limit:
            if consume:
                self._state[key] = [idx, cur + cost, prev]
                return True, left - cost, 0.0, start + 2 * window - now
            return True, left, 0.0, reset
        if cur + cost > limit:
            retry = start + window + window * (1.0 - (limit - cost) / cur) - now
        else:
            retry = start + window * (1.0 - (limit - cost - cur) / prev) - now
        return False, left, max(retry, 0.0), reset

    def hit(self, key: Hashable, now: float, cost: int = 1) -> Tuple[bool, int, float, float]:
        """Count ``cost`` for ``key`` at ``now`` if it fits; returns
        ``(allowed, remaining, retry_after, reset_after)``. A denial consumes nothing."""
        return self._decide(key, now, cost, True)

    def peek(self, key: Hashable, now: float, cost: int = 1) -> Tuple[bool, int, float, float]:
        """What :meth:`hit` would answer, consuming nothing."""
        return self._decide(key, now, cost, False)

    def reset(self, key: Hashable) -> None:
        """Forget ``key``."""
        self._state.pop(key, None)

    def __len__(self) -> int:
        return len(self._state)
