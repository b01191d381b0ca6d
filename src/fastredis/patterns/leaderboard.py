"""Leaderboards: plain (:class:`Leaderboard`) and time-decayed (:class:`DecayingLeaderboard`).

Ties are broken deterministically, the way Redis orders a sorted set: equal
scores are ordered by the members' bytes. With ``reverse=True`` (best =
highest first, the default) that order is reversed too, so among equal
scores the member with the greater bytes comes first; with ``reverse=False``
the smaller bytes come first. ``rank``, ``top``, ``page`` and ``around``
all use this one order.

A decaying leaderboard stores forward-decayed scores (see ``fastredis._decay``):
every member shares the read-time divisor, so its order is the decayed order
and the same tie rule applies.

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer(); r = server.client()
    >>> lb = Leaderboard(r, "weekly")
    >>> lb.add_many(["ann", "bob", "cy"], [10, 30, 20])
    >>> lb.top(2)
    [('bob', 30.0), ('cy', 20.0)]
    >>> lb.rank("ann"), lb.incr("ann", 25)
    (2, 35.0)
    >>> server.stop()
"""

from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .. import _decay
from .._text import check_finite, to_str
from ..keys import KeySpace
from ..scripts import LuaScript
from ._clients import check_sync_client
from ._common import RAW, check_count, check_member
from ._plan import Call, Operation, Plan, Steps, script_call, sync_operation
from ._time import check_at

__all__ = ["Leaderboard", "DecayingLeaderboard"]

_CHUNK = 10_000  # members per command/script call: bounds one call's server time
Entry = Tuple[str, float]

_INCR = LuaScript.load("leaderboard_incr")
_RANGE = LuaScript.load("leaderboard_range")
_DECAY_INCR = LuaScript.load("decaying_leaderboard_incr")
_PRUNE = LuaScript.load("decaying_leaderboard_prune")


def _range_args(reverse: bool, kind: str, a: Any, b: Any) -> List[Any]:
    return ["desc" if reverse else "asc", kind, a, b]


def _parse_range(reply: List[Any]) -> Tuple[float, Optional[float], int, List[Tuple[str, float]]]:
    """(server now, landmark or None, first rank, [(member, stored score)])."""
    now = int(reply[0]) + int(reply[1]) / 1e6
    raw_l = reply[2]
    landmark = float(raw_l) if raw_l not in (b"", "", None) else None
    first = int(reply[3])
    items = reply[4:]
    pairs = [(to_str(items[i]), float(items[i + 1])) for i in range(0, len(items), 2)]
    return now, landmark, first, pairs


def _optional_float(reply: Any) -> Optional[float]:
    return None if reply is None else float(reply)


def _optional_int(reply: Any) -> Optional[int]:
    return None if reply is None else int(reply)


def _nothing(_reply: Any) -> None:
    return None


def _first_float(reply: Any) -> float:
    return float(reply[0])


def _entries(reply: Any) -> List[Entry]:
    return _parse_range(reply)[3]


class _Board:
    """What both boards share: the client check and the key space."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)

    def __init__(self, client: Any, name: Any, prefix: str) -> None:
        self.client = self._check_client(client, type(self).__name__)
        self.name = name
        self._ks = KeySpace(prefix)
        self.key = self._ks.tagged(name, "z")

    def plan_remove(self, *members: Any) -> Plan[int]:
        """Remove members; returns how many were present.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.add("ann", 1); lb.remove("ann", "bob")
            1
            >>> server.stop()
        """
        if not members:
            return Plan.done(0)
        return Plan.one(Call(("ZREM", self.key, *[check_member(m) for m in members])), int)

    def plan_count(self) -> Plan[int]:
        """The number of members.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.add_many(["a", "b"], [1, 2]); lb.count()
            2
            >>> server.stop()
        """
        return Plan.one(Call(("ZCARD", self.key)), int)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"


class _LeaderboardPlans(_Board):
    """The plans of :class:`Leaderboard` (no I/O), shared with its asyncio twin."""

    def __init__(self, client: Any, name: Any, *, prefix: str = "lb", reverse: bool = True) -> None:
        if not isinstance(reverse, bool):
            raise TypeError(f"reverse must be True or False, got {type(reverse).__name__}")
        super().__init__(client, name, prefix)
        self.reverse = reverse

    # -- writes ---------------------------------------------------------
    def plan_add(self, member: Any, score: float) -> Plan[None]:
        """Set ``member``'s score (replacing any previous one).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.add("ann", 12.5); lb.score("ann")
            12.5
            >>> server.stop()
        """
        return Plan.one(Call(("ZADD", self.key, check_finite(score, "score"), check_member(member))), _nothing)

    def plan_incr(self, member: Any, delta: float = 1.0) -> Plan[float]:
        """Add ``delta`` to ``member``'s score and return the new score.

        Never re-sent once it may have reached the server: a lost reply raises
        :class:`~fastredis.exceptions.OutcomeUnknownError`.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.incr("ann", 2), lb.incr("ann", 0.5)
            (2.0, 2.5)
            >>> server.stop()
        """
        call = script_call(_INCR, [self.key], [check_member(member), check_finite(delta, "delta")])
        return Plan.one(call, _first_float)

    def plan_add_many(self, members: Sequence[Any], scores: Sequence[float]) -> Plan[None]:
        """Set many scores in one round trip (lists or numpy arrays; last duplicate wins).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.add_many(["a", "b", "a"], [1.0, 2.0, 3.0]); lb.top(2)
            [('a', 3.0), ('b', 2.0)]
            >>> server.stop()
        """
        members, scores = _check_columns(members, scores, "scores")
        calls = [Call(("ZADD", self.key, *_interleave(scores[p:p + _CHUNK], members[p:p + _CHUNK])))
                 for p in range(0, len(members), _CHUNK)]
        return Plan(calls, _nothing, batch=True)

    def plan_incr_many(self, members: Sequence[Any], deltas: Sequence[float]) -> Plan[None]:
        """Add many deltas in one round trip; repeated members are summed on the client.

        Each chunk of 10 000 distinct members is applied atomically.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.incr_many(["a", "b", "a"], [1, 1, 1]); lb.top(2)
            [('a', 2.0), ('b', 1.0)]
            >>> server.stop()
        """
        ms, ds = _decay.aggregate(members, deltas, "delta")
        calls = [script_call(_INCR, [self.key], _interleave(ms[p:p + _CHUNK], ds[p:p + _CHUNK]))
                 for p in range(0, len(ms), _CHUNK)]
        return Plan(calls, _nothing, batch=True)

    # -- reads ----------------------------------------------------------
    def plan_score(self, member: Any) -> Plan[Optional[float]]:
        """``member``'s score, or None if absent.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.add("ann", 12.5); lb.score("ann"), lb.score("zed")
            (12.5, None)
            >>> server.stop()
        """
        return Plan.one(Call(("ZSCORE", self.key, check_member(member))), _optional_float)

    def plan_rank(self, member: Any) -> Plan[Optional[int]]:
        """0-based rank, best first (tie rule in the module docstring), None if absent.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.add_many(["a", "b"], [1, 2]); lb.rank("b"), lb.rank("zed")
            (0, None)
            >>> server.stop()
        """
        command = "ZREVRANK" if self.reverse else "ZRANK"
        return Plan.one(Call((command, self.key, check_member(member))), _optional_int)

    def plan_top(self, n: int = 10) -> Plan[List[Entry]]:
        """The best ``n`` as ``(member, score)``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.add_many(["a", "b", "c"], [1, 3, 2]); lb.top(2)
            [('b', 3.0), ('c', 2.0)]
            >>> server.stop()
        """
        if check_count(n, "n") == 0:
            return Plan.done([])
        return self._slice("range", 0, n - 1)

    def plan_page(self, number: int, size: int = 10) -> Plan[List[Entry]]:
        """Page ``number`` (0-based) of ``size`` entries.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.add_many(["a", "b", "c"], [1, 3, 2]); lb.page(1, 2)
            [('a', 1.0)]
            >>> server.stop()
        """
        check_count(number, "number")
        if check_count(size, "size") == 0:
            return Plan.done([])
        return self._slice("range", number * size, number * size + size - 1)

    def plan_around(self, member: Any, n: int = 5) -> Plan[List[Entry]]:
        """``member`` with up to ``n`` neighbours on each side, in one round trip; [] if absent.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lb = Leaderboard(server.client(), "g")
            >>> lb.add_many(["a", "b", "c"], [1, 3, 2]); lb.around("c", 1)
            [('b', 3.0), ('c', 2.0), ('a', 1.0)]
            >>> server.stop()
        """
        return self._slice("around", check_member(member), check_count(n, "n"))

    def _slice(self, kind: str, a: Any, b: Any) -> Plan[List[Entry]]:
        return Plan.one(script_call(_RANGE, [self.key], _range_args(self.reverse, kind, a, b), **RAW), _entries)


class Leaderboard(_LeaderboardPlans):
    """A sorted-set leaderboard; best first (highest score) unless ``reverse=False``.

    Keys: ``<prefix>:{<name>}:z`` (one hash tag per board). Scores are finite
    floats; NaN/inf raise ``ValueError`` (a non-number ``TypeError``); an
    increment that would make a score infinite is refused (``ResponseError``)
    and nothing of that call is applied.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> lb = Leaderboard(r, "g")
        >>> lb.add("ann", 5); lb.incr_many(["bob", "bob"], [1, 2])
        >>> lb.around("bob", 1), lb.count()
        ([('ann', 5.0), ('bob', 3.0)], 2)
        >>> server.stop()
    """

    add = sync_operation(_LeaderboardPlans.plan_add)
    incr = sync_operation(_LeaderboardPlans.plan_incr)
    remove = sync_operation(_LeaderboardPlans.plan_remove)
    add_many = sync_operation(_LeaderboardPlans.plan_add_many)
    incr_many = sync_operation(_LeaderboardPlans.plan_incr_many)
    score = sync_operation(_LeaderboardPlans.plan_score)
    rank = sync_operation(_LeaderboardPlans.plan_rank)
    top = sync_operation(_LeaderboardPlans.plan_top)
    page = sync_operation(_LeaderboardPlans.plan_page)
    around = sync_operation(_LeaderboardPlans.plan_around)
    count = sync_operation(_LeaderboardPlans.plan_count)


def _interleave(a: Sequence[Any], b: Sequence[Any]) -> List[Any]:
    flat: List[Any] = [None] * (2 * len(a))
    flat[0::2] = a
    flat[1::2] = b
    return flat


def _check_columns(members: Sequence[Any], values: Any, name: str) -> Tuple[List[Any], List[float]]:
    """Members as a list (type-checked) and values as finite floats, same length."""
    if hasattr(members, "tolist"):
        members = members.tolist()
    members = list(members)
    if hasattr(values, "tolist"):
        values = values.tolist()
    values = list(values)
    if len(values) != len(members):
        raise ValueError(f"members and {name} differ in length ({len(members)} != {len(values)})")
    out = [check_finite(v, name) for v in values]
    for m in members:
        check_member(m)
    return members, out


class _DecayingPlans(_Board):
    """The plans of :class:`DecayingLeaderboard` (no I/O), shared with its asyncio twin.

    The last landmark the server reported is remembered in ``_landmark``;
    plans read it when built and interpretations update it."""

    def __init__(self, client: Any, name: Any, *, half_life: float, prefix: str = "lb") -> None:
        self.lam = _decay.decay_rate(half_life)
        super().__init__(client, name, prefix)
        self.half_life = half_life
        self.landmark_key = self._ks.tagged(name, "L")
        self._landmark: Optional[float] = None  # the last landmark the server told us

    # -- writes ---------------------------------------------------------
    def plan_incr(self, member: Any, weight: float = 1.0, at: Optional[float] = None) -> Operation[None]:
        """Add an event of ``weight`` for ``member`` at ``at`` (server time if None).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); hot = DecayingLeaderboard(server.client(), "p", half_life=60)
            >>> hot.incr("post:1", 4.0, at=0); hot.score("post:1", at=60)
            2.0
            >>> server.stop()
        """
        return self.plan_incr_many([check_member(member)], [weight], at)

    def plan_incr_many(self, members: Sequence[Any], weights: Sequence[float], at: Any = None) -> Operation[None]:
        """Add many events in one round trip (lists or numpy arrays).

        ``at`` is None (server time), one epoch time for all events, or one per
        event. Increments ``w * exp(lambda * (t - L))`` are computed and summed per
        member on the client, against the landmark L it last saw (read first,
        one more round trip, when it has seen none); the script rescales them
        if L has moved since. Each chunk of 10 000 distinct members is applied
        atomically and at most once (never re-sent once it may have reached
        the server).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); hot = DecayingLeaderboard(server.client(), "p", half_life=60)
            >>> hot.incr_many(["a", "b", "a"], [1, 1, 1], at=[0, 5, 9]); hot.count()
            2
            >>> server.stop()
        """
        if at is None:
            ms, vs = _decay.aggregate(members, weights, "weight")
            return self._apply(ms, vs, "now")
        times = _check_times(at, len(members))
        if self._landmark is None:
            return self._read_landmark_then_apply(members, weights, times)
        return self._apply_at(members, weights, times)

    def _read_landmark_then_apply(self, members: Sequence[Any], weights: Sequence[float], times: Any) -> Steps[None]:
        raw = yield Plan.one(Call(("GET", self.landmark_key)), _optional_float)
        self._note_landmark(raw)
        yield self._apply_at(members, weights, times)

    def _apply_at(self, members: Sequence[Any], weights: Sequence[float], times: Any) -> Plan[None]:
        t_max = times if isinstance(times, float) else (max(times) if len(times) else 0.0)
        mode = _decay.choose_landmark(self._landmark, t_max, self.lam)
        ms, vs = _decay.aggregate_increments(members, weights, times, mode, self.lam)
        return self._apply(ms, vs, mode)

    def _apply(self, ms: List[Any], vs: List[float], mode: Any) -> Plan[None]:
        calls = [
            script_call(_DECAY_INCR, [self.key, self.landmark_key],
                        [self.lam, _decay.REBASE_EXPONENT, mode, *_interleave(ms[p:p + _CHUNK], vs[p:p + _CHUNK])])
            for p in range(0, len(ms), _CHUNK)
        ]

        def interpret(replies: Sequence[Any]) -> None:
            for reply in replies:
                self._note_landmark(reply[0])

        return Plan(calls, interpret, batch=True)

    def _note_landmark(self, raw: Any) -> None:
        if raw not in (b"", "", None):
            value = float(raw)
            if self._landmark is None or value > self._landmark:
                self._landmark = value

    def plan_prune(self, floor: float, at: Optional[float] = None) -> Plan[int]:
        """Drop members whose |decayed score| at ``at`` is below ``floor``; returns how many.

        This replaces the seed's ``zremrangebyscore(0, weekAgo)``, which
        treated scores as times.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); hot = DecayingLeaderboard(server.client(), "p", half_life=60)
            >>> hot.incr_many(["a", "b"], [1, 100], at=0); hot.prune(0.5, at=120)
            1
            >>> server.stop()
        """
        f = check_finite(floor, "floor")
        if f < 0:
            raise ValueError(f"floor must be >= 0, got {floor!r}")
        t = check_at(at)
        call = script_call(_PRUNE, [self.key, self.landmark_key], [self.lam, f, "" if t is None else t])
        return Plan.one(call, int)

    # -- reads ----------------------------------------------------------
    def plan_score(self, member: Any, at: Optional[float] = None) -> Plan[Optional[float]]:
        """The decayed score at ``at`` (server time if None), or None if absent.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); hot = DecayingLeaderboard(server.client(), "p", half_life=60)
            >>> hot.incr("a", 8, at=0); hot.score("a", at=120), hot.score("zed")
            (2.0, None)
            >>> server.stop()
        """
        around = self._read("around", check_member(member), 0, at)
        return Plan.one(around.calls[0], lambda reply: _first_score(around.interpret(reply)))

    def plan_rank(self, member: Any) -> Plan[Optional[int]]:
        """0-based rank, highest decayed score first, None if absent.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); hot = DecayingLeaderboard(server.client(), "p", half_life=60)
            >>> hot.incr_many(["a", "b"], [1, 2], at=0); hot.rank("a")
            1
            >>> server.stop()
        """
        return Plan.one(Call(("ZREVRANK", self.key, check_member(member))), _optional_int)

    def plan_top(self, n: int = 10, at: Optional[float] = None) -> Plan[List[Entry]]:
        """The ``n`` highest decayed scores at ``at``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); hot = DecayingLeaderboard(server.client(), "p", half_life=60)
            >>> hot.incr("a", 8, at=0); hot.incr("b", 3, at=120); hot.top(2, at=120)
            [('b', 3.0), ('a', 2.0)]
            >>> server.stop()
        """
        if check_count(n, "n") == 0:
            return Plan.done([])
        return self._read("range", 0, n - 1, at)

    def plan_page(self, number: int, size: int = 10, at: Optional[float] = None) -> Plan[List[Entry]]:
        """Page ``number`` (0-based) of ``size`` entries, decayed at ``at``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); hot = DecayingLeaderboard(server.client(), "p", half_life=60)
            >>> hot.incr_many(["a", "b", "c"], [1, 2, 3], at=0); hot.page(1, 2, at=0)
            [('a', 1.0)]
            >>> server.stop()
        """
        check_count(number, "number")
        if check_count(size, "size") == 0:
            return Plan.done([])
        return self._read("range", number * size, number * size + size - 1, at)

    def plan_around(self, member: Any, n: int = 5, at: Optional[float] = None) -> Plan[List[Entry]]:
        """``member`` and up to ``n`` neighbours on each side, decayed, one round trip.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); hot = DecayingLeaderboard(server.client(), "p", half_life=60)
            >>> hot.incr_many(["a", "b", "c"], [1, 2, 3], at=0); hot.around("b", 1, at=0)
            [('c', 3.0), ('b', 2.0), ('a', 1.0)]
            >>> server.stop()
        """
        return self._read("around", check_member(member), check_count(n, "n"), at)

    def _read(self, kind: str, a: Any, b: Any, at: Optional[float]) -> Plan[List[Entry]]:
        t = check_at(at)
        lam = self.lam

        def interpret(reply: Any) -> List[Entry]:
            now, landmark, _first, pairs = _parse_range(reply)
            if landmark is None:
                return pairs
            self._note_landmark(landmark)
            values = _decay.decay_many([s for _, s in pairs], now if t is None else t, landmark, lam)
            return [(m, v) for (m, _), v in zip(pairs, values)]

        call = script_call(_RANGE, [self.key, self.landmark_key], _range_args(True, kind, a, b), **RAW)
        return Plan.one(call, interpret)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key} half_life={self.half_life}>"


def _first_score(entries: List[Entry]) -> Optional[float]:
    return entries[0][1] if entries else None


class DecayingLeaderboard(_DecayingPlans):
    """A leaderboard whose scores halve every ``half_life`` seconds (forward decay).

    An event of weight ``w`` at time ``t`` counts ``w * 2**-((now - t) / half_life)``
    at read time ``now``. Weights may be negative; NaN/inf raise ``ValueError``.
    Time is the server's (``TIME`` in Lua) unless ``at=`` (epoch seconds) is given.

    Keys: ``<prefix>:{<name>}:z`` (stored scores) and ``<prefix>:{<name>}:L``
    (landmark), one hash tag. Rebasing is automatic: a script moves the
    landmark forward (``ZUNIONSTORE k 1 k WEIGHTS f`` and the new L, atomically)
    before ``lambda * (t - L)`` passes ~300, so stored scores never overflow.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> hot = DecayingLeaderboard(r, "posts", half_life=3600)
        >>> hot.incr("a", 8, at=0); hot.incr("b", 3, at=7200)
        >>> hot.top(2, at=7200)
        [('b', 3.0), ('a', 2.0)]
        >>> server.stop()
    """

    incr = sync_operation(_DecayingPlans.plan_incr)
    incr_many = sync_operation(_DecayingPlans.plan_incr_many)
    remove = sync_operation(_DecayingPlans.plan_remove)
    prune = sync_operation(_DecayingPlans.plan_prune)
    score = sync_operation(_DecayingPlans.plan_score)
    rank = sync_operation(_DecayingPlans.plan_rank)
    top = sync_operation(_DecayingPlans.plan_top)
    page = sync_operation(_DecayingPlans.plan_page)
    around = sync_operation(_DecayingPlans.plan_around)
    count = sync_operation(_DecayingPlans.plan_count)


def _check_times(at: Any, n: int) -> Any:
    """One finite epoch time (float) or a list of them aligned with the events."""
    if isinstance(at, (int, float)) or (hasattr(at, "ndim") and at.ndim == 0):
        t = check_at(at)
        assert t is not None
        return t
    if hasattr(at, "tolist"):
        at = at.tolist()
    if isinstance(at, (str, bytes)) or not hasattr(at, "__iter__"):
        raise TypeError(f"at must be epoch seconds or a sequence of them, got {type(at).__name__}")
    times = list(at)
    if len(times) != n:
        raise ValueError(f"members and at differ in length ({n} != {len(times)})")
    for t in times:
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise TypeError(f"at must hold epoch seconds, got {type(t).__name__}")
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"at must hold finite epoch seconds >= 0, got {t!r}")
    return times
