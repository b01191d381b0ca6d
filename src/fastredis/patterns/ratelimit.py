"""Rate limiting: sliding log, sliding-window counter, fixed window, token
bucket (GCRA), and a composite of any of them.

Every decision is one atomic Lua script with time from ``redis.call('TIME')``:
trim, count, check, and only if every limit admits the request, consume. Each
algorithm is one file, ``lua/ratelimit_<algorithm>.lua``; a limiter runs the
script composed of ``ratelimit_prelude``, its algorithm (a
:class:`CompositeLimiter`: each algorithm it uses) and ``ratelimit_driver``. A rejected request consumes nothing; log members are
unique per request (time, a per-call request id, position), so requests in
the same microsecond never collapse. State keys expire when idle. Each user
key is escaped and used as the hash tag, so all limits of one key (also
across a :class:`CompositeLimiter`) share a cluster slot.

Replay safety: these scripts run **without automatic retry**. A pooled
connection that went stale (server restart, ``CLIENT KILL``) is replaced by
the pool before the request is sent, and a ``NOSCRIPT`` reply (which means
the script did not run) is repaired with ``SCRIPT LOAD`` and re-sent. But a
connection error *after* the script was sent is raised to the caller as
``redis.ConnectionError``/``TimeoutError`` and never replayed, because the
script may already have counted the request: the client's retry policy would
count it twice.

Example::

    >>> from fastredis.server import RedisServer
    >>> from fastredis.patterns.ratelimit import FixedWindowLimiter
    >>> server = RedisServer()
    >>> limiter = FixedWindowLimiter(server.client(), limit=2, window=3600)
    >>> [limiter.hit("alice").allowed for _ in range(3)]
    [True, True, False]
    >>> limiter.peek("alice").remaining
    0
    >>> server.stop()
"""

from __future__ import annotations

import itertools
import math
import os
import time
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from redis.crc import key_slot

from .. import _window
from .. import metrics as _metrics
from ..keys import KeyPart, KeySpace
from ..scripts import LuaScript
from ._clients import check_sync_client, is_cluster
from ._plan import Call, Plan, sync_operation

__all__ = [
    "Decision",
    "SlidingWindowLimiter",
    "SlidingWindowCounterLimiter",
    "FixedWindowLimiter",
    "TokenBucketLimiter",
    "CompositeLimiter",
]

# Lua file per algorithm code, in the order a composed script lists them (a
# fixed order, so composites using the same algorithms share one script).
_ALGORITHM_FILES = {
    "log": "ratelimit_sliding_log",
    "fix": "ratelimit_fixed_window",
    "ctr": "ratelimit_sliding_counter",
    "gcra": "ratelimit_token_bucket",
}
# Requests per EVALSHA in hit_many: bounds how long one script blocks the
# server; all chunks still go out in one round trip.
_CHUNK = 2000
_INF = float("inf")
_KEY_CACHE_SIZE = 65536


class Decision(NamedTuple):
    """The answer to one rate-limited request.

    ``retry_after`` (seconds) is 0 when allowed and ``inf`` when the cost can
    never fit; ``reset_after`` is the seconds until the limit is full again.
    For a composite, ``limit`` and the times are those of the binding limit.

    Example::

        >>> d = Decision(True, 10, 9, 0.0, 1.0)
        >>> d.allowed, d.remaining
        (True, 9)
    """

    allowed: bool
    limit: int
    remaining: int
    retry_after: float
    reset_after: float


# -- request ids (unique log members across processes and calls) ----------
_COUNTER = itertools.count()
_TOKEN = [os.getpid(), os.urandom(6).hex()]


def _rid() -> str:
    pid = os.getpid()
    if _TOKEN[0] != pid:  # forked: a child must not reuse the parent's ids
        _TOKEN[:] = [pid, os.urandom(6).hex()]
    return f"{_TOKEN[1]}.{next(_COUNTER)}"


# -- argument checks -------------------------------------------------------
def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def _positive_seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    f = float(value)
    if not (math.isfinite(f) and f > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return f


def _window_us(window: float) -> int:
    us = int(round(window * 1_000_000))
    if us < 1:
        raise ValueError(f"window must be at least 1 microsecond, got {window!r}")
    return us


def _script_for(algorithms: Iterable[str]) -> LuaScript:
    """The composed script that runs limits of these algorithm codes (cached)."""
    used = set(algorithms)
    parts = [f for code, f in _ALGORITHM_FILES.items() if code in used]
    return LuaScript.compose("ratelimit_prelude", *parts, "ratelimit_driver")


# -- plans (no I/O), shared by the sync shells here and the asyncio shells ---
class _RateLimit:
    """Builds and interprets the composed rate-limit script for some limits.

    The ``plan_*`` methods validate their arguments and return a
    :class:`~fastredis.patterns._plan.Plan`; :func:`fastredis.scripts.run`
    (sync) or :func:`fastredis.scripts.arun` (asyncio) sends it.
    """

    _parts: Tuple["_Limiter", ...]
    _script: LuaScript  # set by _freeze, with _parts
    #: Checks the client at construction (sync shells: sync clients).
    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)

    def __init__(self, client: Any, local: bool) -> None:
        if not isinstance(local, bool):
            raise TypeError(f"local must be True or False, got {type(local).__name__}")
        self.client = self._check_client(client, type(self).__name__)
        self._cluster = is_cluster(client)
        self._deny: Optional[Any] = _window.DenyCache() if local else None
        self._spec_args: Tuple[Any, ...] = ()
        self._limits: Tuple[int, ...] = ()

    def _freeze(self) -> None:
        args: List[Any] = []
        for p in self._parts:
            args.extend(p._spec)
        self._spec_args = tuple(args)
        self._limits = tuple(p.limit for p in self._parts)
        self._script = _script_for(p._alg for p in self._parts)

    # build
    def _keys_of(self, key: KeyPart) -> List[str]:
        return [p._state_key(key) for p in self._parts]

    def _calls(self, keys: Sequence[KeyPart], cost: int, mode: str) -> Tuple[List[Call], List[int]]:
        """The EVALSHA calls for ``keys`` and the order their decisions come back in.

        Each call covers up to ``_CHUNK`` keys; on a cluster client a call's
        keys share a slot (keys are grouped by slot first)."""
        if self._cluster:
            by_slot: Dict[int, List[int]] = {}
            for i, k in enumerate(keys):
                by_slot.setdefault(key_slot(self._parts[0]._state_key(k).encode()), []).append(i)
            order = [i for positions in by_slot.values() for i in positions]
            calls = [c for positions in by_slot.values() for c in self._chunks([keys[i] for i in positions], cost, mode)]
            return calls, order
        return self._chunks(keys, cost, mode), []

    def _chunks(self, keys: Sequence[KeyPart], cost: int, mode: str) -> List[Call]:
        head = (mode, len(self._parts), cost, _rid()) + self._spec_args
        script = self._script
        calls = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            if len(self._parts) == 1:
                redis_keys = [*map(self._parts[0]._state_key, chunk)]
            else:
                redis_keys = []
                for k in chunk:
                    redis_keys.extend(self._keys_of(k))
            calls.append(Call(script.command(redis_keys, head), script))
        return calls

    def _decide(self, keys: Sequence[KeyPart], cost: int, mode: str) -> Plan[List[Decision]]:
        if not keys:
            return Plan.done([])
        calls, order = self._calls(keys, cost, mode)
        limits = self._limits

        def interpret(replies: Sequence[Any]) -> List[Decision]:
            out: List[Decision] = []
            for reply in replies:
                out.extend(_window.decode_decisions(reply, limits, Decision))
            if _metrics.ON and mode == "hit":
                _metrics.limiter_decisions(self, out)
            if not order:
                return out
            placed: List[Any] = [None] * len(out)
            for i, d in zip(order, out):
                placed[i] = d
            return placed

        return Plan(calls, interpret, batch=True)

    # public operations, as plans
    def plan_hit(self, key: KeyPart, cost: int = 1) -> Plan[Decision]:
        """Count one request of ``cost`` for ``key`` if every limit admits it.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> limiter = FixedWindowLimiter(server.client(), limit=1, window=3600)
            >>> limiter.hit("k").allowed, limiter.hit("k").allowed
            (True, False)
            >>> server.stop()
        """
        many = self.plan_hit_many([key], cost)
        return Plan(many.calls, lambda replies: many.interpret(replies)[0], batch=True)

    def plan_hit_many(self, keys: Iterable[KeyPart], cost: int = 1) -> Plan[List[Decision]]:
        """One decision per key, in order, in one round trip; a key repeated
        in ``keys`` counts once per occurrence.

        With a cluster client the keys are grouped by slot: one round trip
        to every node holding any of them.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> limiter = FixedWindowLimiter(server.client(), limit=1, window=60)
            >>> [d.allowed for d in limiter.hit_many(["a", "b", "a"])]
            [True, True, False]
            >>> server.stop()
        """
        cost = _positive_int(cost, "cost")
        keys = list(keys)
        deny = self._deny
        if deny is None:
            return self._decide(keys, cost, "hit")
        now = time.monotonic()
        waits = [deny.blocked(self._parts[0]._state_key(k), now) for k in keys]
        ask = self._decide([k for k, w in zip(keys, waits) if w <= 0.0], cost, "hit")
        floor = min(self._limits)

        def interpret(replies: Sequence[Any]) -> List[Decision]:
            got = iter(ask.interpret(replies))
            out: List[Decision] = []
            for k, w in zip(keys, waits):
                if w > 0.0:
                    out.append(Decision(False, floor, 0, w, w))
                    continue
                d = next(got)
                if not d.allowed and d.retry_after != _INF:
                    deny.deny(self._parts[0]._state_key(k), now + d.retry_after, now)
                out.append(d)
            if _metrics.ON:  # the decisions the deny cache made without a round trip
                _metrics.limiter_decisions(self, [d for d, w in zip(out, waits) if w > 0.0])
            return out

        return Plan(ask.calls, interpret, batch=True)

    def plan_peek(self, key: KeyPart, cost: int = 1) -> Plan[Decision]:
        """What :meth:`hit` would answer for ``key`` now; consumes nothing.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> FixedWindowLimiter(server.client(), limit=3, window=60).peek("k").remaining
            3
            >>> server.stop()
        """
        cost = _positive_int(cost, "cost")
        plan = self._decide([key], cost, "peek")
        return Plan(plan.calls, lambda replies: plan.interpret(replies)[0], batch=True)

    def plan_reset(self, key: KeyPart) -> Plan[None]:
        """Forget every count for ``key`` (one DEL of its state keys).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> limiter = FixedWindowLimiter(server.client(), limit=1, window=60)
            >>> _ = limiter.hit("k"); limiter.reset("k"); limiter.hit("k").allowed
            True
            >>> server.stop()
        """
        keys = self._keys_of(key)
        if self._deny is not None:
            self._deny.discard(keys[0])
        return Plan.one(Call(("DEL", *keys)), _none)


class _SyncShell:
    """The sync operations of every limiter: each runs its plan on ``self.client``."""

    hit = sync_operation(_RateLimit.plan_hit)
    hit_many = sync_operation(_RateLimit.plan_hit_many)
    peek = sync_operation(_RateLimit.plan_peek)
    reset = sync_operation(_RateLimit.plan_reset)


def _none(_reply: Any) -> None:
    return None


class _Limiter(_RateLimit):
    """One limit: its algorithm code, its key suffix and its script parameters."""

    _alg = ""

    def __init__(self, client: Any, limit: int, window: float, *, prefix: str = "rl", local: bool = False) -> None:
        self.limit = _positive_int(limit, "limit")
        self.window = _positive_seconds(window, "window")
        self._ks = KeySpace(prefix)
        self._key_cache: dict = {}
        self._spec: Tuple[Any, ...] = (self._alg, self.limit, _window_us(self.window))
        self._suffix = (self._alg, str(self.limit), repr(self.window))
        super().__init__(client, local)
        self._parts = (self,)
        self._freeze()

    def _state_key(self, key: KeyPart) -> str:
        # The user key is the hash tag; the suffix names the limit, so two
        # limiters with different settings never share state. Escaping costs
        # ~3 us per key, so hot keys are remembered (bounded; str/bytes only,
        # since 1 == True would alias in a dict).
        cache = self._key_cache
        k = cache.get(key) if type(key) is str or type(key) is bytes else None
        if k is None:
            k = self._ks.tagged(key, *self._suffix)
            if type(key) is str or type(key) is bytes:
                if len(cache) >= _KEY_CACHE_SIZE:
                    cache.clear()
                cache[key] = k
        return k

    def __repr__(self) -> str:
        return f"{type(self).__name__}(limit={self.limit}, window={self.window}, prefix={self._ks.prefix!r})"


class _SlidingLog(_Limiter):
    _alg = "log"


class _SlidingCounter(_Limiter):
    _alg = "ctr"


class _FixedWindow(_Limiter):
    _alg = "fix"


class _TokenBucket(_Limiter):
    _alg = "gcra"

    def __init__(self, client: Any, rate: float, capacity: int, *, prefix: str = "rl", local: bool = False) -> None:
        self.rate = _positive_seconds(rate, "rate")
        self.capacity = _positive_int(capacity, "capacity")
        interval = 1_000_000.0 / self.rate
        if not math.isfinite(interval * self.capacity):
            raise ValueError(f"rate {rate!r} is too small for capacity {capacity!r}")
        _RateLimit.__init__(self, client, local)
        self.limit = self.capacity
        self._ks = KeySpace(prefix)
        self._key_cache = {}
        self._spec = (self._alg, self.capacity, repr(interval))
        self._suffix = (self._alg, str(self.capacity), repr(self.rate))
        self._parts = (self,)
        self._freeze()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate}, capacity={self.capacity}, prefix={self._ks.prefix!r})"


class _Composite(_RateLimit):
    def __init__(self, limiters: Sequence[_Limiter], *, client: Any = None, local: bool = False) -> None:
        if isinstance(limiters, (str, bytes)) or not isinstance(limiters, Iterable):
            raise TypeError(f"CompositeLimiter takes a sequence of limiters, got {type(limiters).__name__}")
        parts = tuple(limiters)
        if not parts:
            raise ValueError("CompositeLimiter needs at least one limiter")
        for p in parts:
            if not isinstance(p, _Limiter):
                raise TypeError(f"CompositeLimiter takes limiters, got {type(p).__name__}")
        if len({p._state_key("x") for p in parts}) != len(parts):
            raise ValueError("CompositeLimiter got the same limit twice (same prefix, algorithm and settings)")
        super().__init__(client if client is not None else parts[0].client, local)
        self._parts = parts
        self._freeze()

    @property
    def limit(self) -> int:
        """The smallest limit (capacity) of the combined limiters."""
        return min(self._limits)

    @property
    def limiters(self) -> Tuple[_Limiter, ...]:
        """The combined limiters, in order."""
        return self._parts

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._parts)!r})"


# -- sync shells ----------------------------------------------------------------
class SlidingWindowLimiter(_SlidingLog, _SyncShell):
    """An exact sliding log: at most ``limit`` admissions in any ``window``
    seconds, one sorted-set member per admitted unit of cost.

    Memory is O(limit) per key, so prefer :class:`SlidingWindowCounterLimiter`
    for large limits. ``local=True`` keeps denied keys denied in-process until
    their ``retry_after``, at no round trip.

    Replay safety: runs without automatic retry (see the module docstring).

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer()
        >>> sw = SlidingWindowLimiter(server.client(), limit=1, window=10, local=True)
        >>> sw.hit("ip:1").allowed, sw.hit("ip:1").allowed
        (True, False)
        >>> 9 < sw.hit("ip:1").retry_after <= 10     # from the deny cache
        True
        >>> server.stop()
    """


class SlidingWindowCounterLimiter(_SlidingCounter, _SyncShell):
    """A sliding-window counter: the previous fixed window weighted by its
    overlap with the sliding window, plus the current one. O(1) memory per key,
    approximate (assumes the previous window's requests were evenly spread).

    Replay safety: runs without automatic retry (see the module docstring).

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer()
        >>> swc = SlidingWindowCounterLimiter(server.client(), limit=5, window=60)
        >>> swc.hit("k", cost=5).remaining, swc.hit("k").allowed
        (0, False)
        >>> server.stop()
    """


class FixedWindowLimiter(_FixedWindow, _SyncShell):
    """At most ``limit`` per fixed window; windows are aligned to multiples of
    ``window`` seconds since the epoch (server time).

    Replay safety: runs without automatic retry (see the module docstring).

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer()
        >>> fw = FixedWindowLimiter(server.client(), limit=3, window=3600)
        >>> fw.hit("k", cost=2).remaining
        1
        >>> fw.hit("k", cost=9).retry_after     # more than the limit: never
        inf
        >>> server.stop()
    """


class TokenBucketLimiter(_TokenBucket, _SyncShell):
    """A token bucket of ``capacity`` tokens refilled at ``rate`` tokens per
    second, run as GCRA: one stored number (the theoretical arrival time) per
    key, which expires when the bucket is full again.

    Replay safety: runs without automatic retry (see the module docstring).

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer()
        >>> tb = TokenBucketLimiter(server.client(), rate=1.0, capacity=2)
        >>> [tb.hit("k").allowed for _ in range(3)]
        [True, True, False]
        >>> 0 < tb.peek("k").retry_after <= 1.0
        True
        >>> server.stop()
    """


class CompositeLimiter(_Composite, _SyncShell):
    """Several limits checked together in one script: a request is admitted
    only if every limit admits it, and nothing is consumed otherwise.

    The limiters' own clients are ignored: the composite runs on the first
    limiter's client (or ``client=``). Every limit of one key shares the key's
    hash tag, so a composite decision stays in one cluster slot.

    Replay safety: runs without automatic retry (see the module docstring).

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> both = CompositeLimiter([FixedWindowLimiter(r, 10, 1), FixedWindowLimiter(r, 1000, 3600)])
        >>> d = both.hit("user:7")
        >>> d.allowed, d.limit, d.remaining
        (True, 10, 9)
        >>> server.stop()
    """
