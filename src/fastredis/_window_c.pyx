# cython: language_level=3
# Bounds checks stay on: decode_decisions indexes caller sequences.
"""Sliding-window bookkeeping, compiled twin of ``_window_py`` (same names,
same results; see that module for the documentation).

Example::

    >>> from fastredis import _window_c as w
    >>> w.counter_weight(15.0, 10.0)
    0.5
"""

from libc.math cimport floor, ceil, isfinite

__all__ = [
    "DenyCache",
    "LocalWindow",
    "window_index",
    "counter_weight",
    "buckets_covering",
    "decode_decisions",
]

cdef double _INF = float("inf")


cdef inline void _check_window(double window, str name) except *:
    if not window > 0:
        raise ValueError(f"{name} must be > 0, got {window!r}")


def window_index(double now, double window):
    """The fixed window holding ``now``: ``floor(now / window)``."""
    _check_window(window, "window")
    return int(floor(now / window))


def counter_weight(double now, double window):
    """Weight of the previous window in a sliding-window counter at ``now``."""
    _check_window(window, "window")
    cdef double start = floor(now / window) * window
    return 1.0 - (now - start) / window


def buckets_covering(double start, double end, double width):
    """Indices of the width-aligned buckets that overlap ``[start, end)``."""
    _check_window(width, "width")
    if not end > start:
        return []
    cdef long long first = <long long>floor(start / width)
    cdef long long last = <long long>ceil(end / width) - 1
    if first * width > start:  # start/width underflowed or rounded up a boundary
        first -= 1
    if (last + 1) * width < end:  # end/width rounded down onto a boundary
        last += 1
    if last < first:  # end/width rounded onto first's boundary
        last = first
    return list(range(first, last + 1))


cdef inline double _num(object value) except? -1.0:
    if isinstance(value, bytes):
        return float((<bytes>value).decode("ascii"))
    if isinstance(value, bytearray):
        return float(bytes(value).decode("ascii"))
    return float(value)


def decode_decisions(reply, limits, factory):
    """Decode the flat 5-per-request reply of ``ratelimit_driver.lua``."""
    # An exact list or tuple, so len() is that of the items really there; the
    # factory and the items' conversions run caller code that may shrink a
    # list, which the bounds-checked indexing turns into IndexError.
    cdef object r = reply if (type(reply) is list or type(reply) is tuple) else tuple(reply)
    cdef tuple lim = tuple(limits)
    cdef Py_ssize_t n = len(r), i
    if n % 5:
        raise ValueError(f"a rate-limit reply has 5 entries per request, got {n}")
    cdef list out = []
    for i in range(0, n, 5):
        out.append(factory(
            bool(r[i]),
            lim[_limit_slot(r[i + 1], len(lim))],
            int(r[i + 2]),
            _num(r[i + 3]),
            _num(r[i + 4]),
        ))
    return out


cdef Py_ssize_t _limit_slot(object s, Py_ssize_t nlim) except -1:
    """The 0-based index of limit number ``s`` (1-based, from the script's reply)."""
    k = int(s)
    if not 1 <= k <= nlim:
        raise ValueError(f"a rate-limit reply names limit {k}, but there are {nlim}")
    return <Py_ssize_t>k - 1


cdef class DenyCache:
    """Keys denied until a deadline, bounded to ``maxsize`` entries."""

    cdef public Py_ssize_t maxsize
    cdef dict _until

    def __init__(self, maxsize=100_000):
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be an int >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self._until = {}

    def deny(self, key, double until, double now=-_INF):
        """Hold ``key`` denied until ``until`` (a later deadline wins)."""
        if until != until:
            raise ValueError("until must not be NaN")
        cdef dict d = self._until
        old = d.get(key)
        if old is not None:
            if <double>old < until:
                d[key] = until
            return
        if len(d) >= self.maxsize:
            self._evict(now)
        d[key] = until

    cdef _evict(self, double now):
        cdef dict d = self._until
        for k in [k for k, v in list(d.items()) if <double>v <= now]:
            d.pop(k, None)
        while len(d) >= self.maxsize:
            d.pop(next(iter(d)), None)

    def blocked(self, key, double now):
        """Seconds ``key`` stays denied after ``now``; 0.0 if it is not denied."""
        cdef dict d = self._until
        until = d.get(key)
        if until is None:
            return 0.0
        cdef double u = until
        if u <= now:
            d.pop(key, None)
            return 0.0
        return u - now

    def discard(self, key):
        """Forget ``key`` (after a reset)."""
        self._until.pop(key, None)

    def clear(self):
        """Forget every key."""
        self._until.clear()

    def __len__(self):
        return len(self._until)


cdef class LocalWindow:
    """An in-process sliding-window counter: ``limit`` per ``window`` seconds."""

    cdef public long long limit
    cdef public double window
    cdef dict _state

    def __init__(self, limit, window):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        cdef double w = float(window)
        if not (w > 0 and isfinite(w)):
            raise ValueError(f"window must be a finite number > 0, got {window!r}")
        self.limit = limit
        self.window = w
        self._state = {}

    cdef tuple _decide(self, key, double now, object cost_obj, bint consume):
        if isinstance(cost_obj, bool) or not isinstance(cost_obj, int) or cost_obj <= 0:
            raise ValueError(f"cost must be an int > 0, got {cost_obj!r}")
        cdef long long cost = cost_obj
        cdef long long limit = self.limit
        cdef double window = self.window
        cdef double idx = floor(now / window)
        cdef double cur = 0.0, prev = 0.0, start, est, reset, retry
        cdef long long left
        st = self._state.get(key)
        if st is not None:
            if <double>st[0] == idx:
                cur = st[1]
                prev = st[2]
            elif <double>st[0] == idx - 1:
                prev = st[1]
        start = idx * window
        est = prev * (1.0 - (now - start) / window) + cur
        left = <long long>floor(limit - est)
        if left < 0:
            left = 0
        if cur > 0:
            reset = start + 2 * window - now
        elif prev > 0:
            reset = start + window - now
        else:
            reset = 0.0
        if cost > limit:
            return (False, left, _INF, reset)
        if est + cost <= limit:
            if consume:
                self._state[key] = [int(idx), cur + cost, prev]
                return (True, left - cost, 0.0, start + 2 * window - now)
            return (True, left, 0.0, reset)
        if cur + cost > limit:
            retry = start + window + window * (1.0 - (limit - cost) / cur) - now
        else:
            retry = start + window * (1.0 - (limit - cost - cur) / prev) - now
        return (False, left, retry if retry > 0.0 else 0.0, reset)

    def hit(self, key, double now, cost=1):
        """Count ``cost`` for ``key`` at ``now`` if it fits; returns
        ``(allowed, remaining, retry_after, reset_after)``."""
        return self._decide(key, now, cost, True)

    def peek(self, key, double now, cost=1):
        """What :meth:`hit` would answer, consuming nothing."""
        return self._decide(key, now, cost, False)

    def reset(self, key):
        """Forget ``key``."""
        self._state.pop(key, None)

    def __len__(self):
        return len(self._state)
