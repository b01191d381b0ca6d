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
from typing import Any, List, Optional, Sequence, Tuple

from .._text import check_finite, to_str
from ..keys import KeySpace
from ..scripts import LuaScript, pipeline_for, run_pipeline
from .. import _decay
from ._common import RAW, check_member
from ._time import check_at

__all__ = ["Leaderboard", "DecayingLeaderboard"]

_CHUNK = 10_000  # members per command/script call: bounds one call's server time
Entry = Tuple[str, float]


def _check_count(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{name} must be an int >= 0, got {n!r}")
    return n


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


class Leaderboard:
    """A sorted-set leaderboard; best first (highest score) unless ``reverse=False``.

    Keys: ``<prefix>:{<name>}:z`` (one hash tag per board). Scores are finite
    floats; NaN/inf raise ``ValueError``; an increment that would make a score
    infinite is refused (``ResponseError``) and nothing of that call is applied.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> lb = Leaderboard(r, "g")
        >>> lb.add("ann", 5); lb.incr_many(["bob", "bob"], [1, 2])
        >>> lb.around("bob", 1), lb.count()
        ([('ann', 5.0), ('bob', 3.0)], 2)
        >>> server.stop()
    """

    _incr_script = LuaScript.load("leaderboard_incr")
    _range_script = LuaScript.load("leaderboard_range")

    def __init__(self, client: Any, name: Any, *, prefix: str = "lb", reverse: bool = True) -> None:
        self.client = client
        self.name = name
        self.reverse = bool(reverse)
        self._ks = KeySpace(prefix)
        self.key = self._ks.tagged(name, "z")

    # -- writes ---------------------------------------------------------
    def add(self, member: Any, score: float) -> None:
        """Set ``member``'s score (replacing any previous one).

        Example: ``lb.add("ann", 12.5)``
        """
        self.client.execute_command("ZADD", self.key, check_finite(score, "score"), check_member(member))

    def incr(self, member: Any, delta: float = 1.0) -> float:
        """Add ``delta`` to ``member``'s score and return the new score.

        Never re-sent once it may have reached the server: a lost reply raises
        :class:`~fastredis.exceptions.OutcomeUnknownError`.

        Example: ``lb.incr("ann", 2)  # -> 14.5``
        """
        reply = self._incr_script(self.client, [self.key], [check_member(member), check_finite(delta, "delta")])
        return float(reply[0])

    def remove(self, *members: Any) -> int:
        """Remove members; returns how many were present.

        Example: ``lb.remove("ann", "bob")``
        """
        if not members:
            return 0
        return int(self.client.execute_command("ZREM", self.key, *[check_member(m) for m in members]))

    def add_many(self, members: Sequence[Any], scores: Sequence[float]) -> None:
        """Set many scores in one round trip (lists or numpy arrays; last duplicate wins).

        Example: ``lb.add_many(["a", "b"], numpy.array([1.0, 2.0]))``
        """
        members, scores = _check_columns(members, scores, "scores")
        if not members:
            return
        pipe = pipeline_for(self.client)
        if hasattr(pipe, "batch"):
            pipe.batch("ZADD", self.key, scores, members)
        else:
            for part in range(0, len(members), _CHUNK):
                flat: List[Any] = [None] * (2 * min(_CHUNK, len(members) - part))
                flat[0::2] = scores[part:part + _CHUNK]
                flat[1::2] = members[part:part + _CHUNK]
                pipe.execute_command("ZADD", self.key, *flat)
        pipe.execute()

    def incr_many(self, members: Sequence[Any], deltas: Sequence[float]) -> None:
        """Add many deltas in one round trip; repeated members are summed on the client.

        Each chunk of 10 000 distinct members is applied atomically.

        Example: ``lb.incr_many(["a", "b", "a"], [1, 1, 1])  # a += 2, b += 1``
        """
        ms, ds = _decay.aggregate(members, deltas, "delta")
        if not ms:
            return
        pipe = pipeline_for(self.client)
        for part in range(0, len(ms), _CHUNK):
            self._incr_script.stage(pipe, [self.key], _interleave(ms[part:part + _CHUNK], ds[part:part + _CHUNK]))
        run_pipeline(pipe)

    # -- reads ----------------------------------------------------------
    def score(self, member: Any) -> Optional[float]:
        """``member``'s score, or None if absent.

        Example: ``lb.score("ann")  # -> 12.5``
        """
        s = self.client.execute_command("ZSCORE", self.key, check_member(member))
        return None if s is None else float(s)

    def rank(self, member: Any) -> Optional[int]:
        """0-based rank, best first (tie rule in the module docstring), None if absent.

        Example: ``lb.rank("ann")  # -> 0``
        """
        cmd = "ZREVRANK" if self.reverse else "ZRANK"
        r = self.client.execute_command(cmd, self.key, check_member(member))
        return None if r is None else int(r)

    def top(self, n: int = 10) -> List[Entry]:
        """The best ``n`` as ``(member, score)``.

        Example: ``lb.top(3)  # -> [('bob', 30.0), ...]``
        """
        if _check_count(n, "n") == 0:
            return []
        return self._slice("range", 0, n - 1)

    def page(self, number: int, size: int = 10) -> List[Entry]:
        """Page ``number`` (0-based) of ``size`` entries.

        Example: ``lb.page(0, 10) == lb.top(10)``
        """
        _check_count(number, "number")
        if _check_count(size, "size") == 0:
            return []
        return self._slice("range", number * size, number * size + size - 1)

    def around(self, member: Any, n: int = 5) -> List[Entry]:
        """``member`` with up to ``n`` neighbours on each side, in one round trip; [] if absent.

        Example: ``lb.around("ann", 1)  # -> [('cy', 20.0), ('ann', 12.5), ('dee', 3.0)]``
        """
        return self._slice("around", check_member(member), _check_count(n, "n"))

    def count(self) -> int:
        """The number of members.

        Example: ``lb.count()  # -> 4``
        """
        return int(self.client.execute_command("ZCARD", self.key))

    def _slice(self, kind: str, a: Any, b: Any) -> List[Entry]:
        reply = self._range_script(self.client, [self.key], _range_args(self.reverse, kind, a, b), **RAW)
        return _parse_range(reply)[3]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"


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


class DecayingLeaderboard:
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

    _incr_script = LuaScript.load("decaying_leaderboard_incr")
    _range_script = LuaScript.load("leaderboard_range")
    _prune_script = LuaScript.load("decaying_leaderboard_prune")

    def __init__(self, client: Any, name: Any, *, half_life: float, prefix: str = "lb") -> None:
        self.client = client
        self.name = name
        self.half_life = half_life
        self.lam = _decay.decay_rate(half_life)
        self._ks = KeySpace(prefix)
        self.key = self._ks.tagged(name, "z")
        self.landmark_key = self._ks.tagged(name, "L")
        self._landmark: Optional[float] = None  # the last landmark the server told us

    # -- writes ---------------------------------------------------------
    def incr(self, member: Any, weight: float = 1.0, at: Optional[float] = None) -> None:
        """Add an event of ``weight`` for ``member`` at ``at`` (server time if None).

        Example: ``hot.incr("post:1", 1.0)``
        """
        self.incr_many([check_member(member)], [weight], at)

    def incr_many(self, members: Sequence[Any], weights: Sequence[float], at: Any = None) -> None:
        """Add many events in one round trip (lists or numpy arrays).

        ``at`` is None (server time), one epoch time for all events, or one per
        event. Increments ``w * exp(lambda * (t - L))`` are computed and summed per
        member on the client, against the landmark L it last saw; the script
        rescales them if L has moved since. Each chunk of 10 000 distinct
        members is applied atomically and at most once (never re-sent once it
        may have reached the server).

        Example: ``hot.incr_many(["a", "b", "a"], [1, 1, 1], at=[0, 5, 9])``
        """
        if at is None:
            ms, vs = _decay.aggregate(members, weights, "weight")
            mode: Any = "now"
        else:
            times = _check_times(at, len(members))
            t_max = times if isinstance(times, float) else (max(times) if len(times) else 0.0)
            if self._landmark is None:
                self._landmark = self._read_landmark()
            mode = _decay.choose_landmark(self._landmark, t_max, self.lam)
            ms, vs = _decay.aggregate_increments(members, weights, times, mode, self.lam)
        if not ms:
            return
        self._apply(ms, vs, mode)

    def _apply(self, ms: List[Any], vs: List[float], mode: Any) -> None:
        keys_args = [
            ([self.key, self.landmark_key],
             [self.lam, _decay.REBASE_EXPONENT, mode,
              *_interleave(ms[p:p + _CHUNK], vs[p:p + _CHUNK])])
            for p in range(0, len(ms), _CHUNK)
        ]
        if len(keys_args) == 1:
            replies = [self._incr_script(self.client, *keys_args[0])]
        else:
            pipe = pipeline_for(self.client)
            for k, a in keys_args:
                self._incr_script.stage(pipe, k, a)
            replies = run_pipeline(pipe)
        for reply in replies:
            self._note_landmark(reply[0])

    def _note_landmark(self, raw: Any) -> None:
        if raw not in (b"", "", None):
            value = float(raw)
            if self._landmark is None or value > self._landmark:
                self._landmark = value

    def _read_landmark(self) -> Optional[float]:
        raw = self.client.execute_command("GET", self.landmark_key)
        return None if raw is None else float(raw)

    def remove(self, *members: Any) -> int:
        """Remove members; returns how many were present.

        Example: ``hot.remove("post:1")``
        """
        if not members:
            return 0
        return int(self.client.execute_command("ZREM", self.key, *[check_member(m) for m in members]))

    def prune(self, floor: float, at: Optional[float] = None) -> int:
        """Drop members whose |decayed score| at ``at`` is below ``floor``; returns how many.

        This replaces the seed's ``zremrangebyscore(0, weekAgo)``, which
        treated scores as times.

        Example: ``hot.prune(0.01)``
        """
        f = check_finite(floor, "floor")
        if f < 0:
            raise ValueError(f"floor must be >= 0, got {floor!r}")
        t = check_at(at)
        return int(self._prune_script(self.client, [self.key, self.landmark_key],
                                      [self.lam, f, "" if t is None else t]))

    # -- reads ----------------------------------------------------------
    def score(self, member: Any, at: Optional[float] = None) -> Optional[float]:
        """The decayed score at ``at`` (server time if None), or None if absent.

        Example: ``hot.score("post:1")``
        """
        rank, entries = self._around(check_member(member), 0, at)
        return entries[0][1] if entries else None

    def rank(self, member: Any) -> Optional[int]:
        """0-based rank, highest decayed score first, None if absent.

        Example: ``hot.rank("post:1")  # -> 0``
        """
        r = self.client.execute_command("ZREVRANK", self.key, check_member(member))
        return None if r is None else int(r)

    def top(self, n: int = 10, at: Optional[float] = None) -> List[Entry]:
        """The ``n`` highest decayed scores at ``at``.

        Example: ``hot.top(10)``
        """
        if _check_count(n, "n") == 0:
            return []
        return self._read("range", 0, n - 1, at)[1]

    def page(self, number: int, size: int = 10, at: Optional[float] = None) -> List[Entry]:
        """Page ``number`` (0-based) of ``size`` entries, decayed at ``at``.

        Example: ``hot.page(1, 20)``
        """
        _check_count(number, "number")
        if _check_count(size, "size") == 0:
            return []
        return self._read("range", number * size, number * size + size - 1, at)[1]

    def around(self, member: Any, n: int = 5, at: Optional[float] = None) -> List[Entry]:
        """``member`` and up to ``n`` neighbours on each side, decayed, one round trip.

        Example: ``hot.around("post:1", 2)``
        """
        return self._around(check_member(member), _check_count(n, "n"), at)[1]

    def count(self) -> int:
        """The number of members.

        Example: ``hot.count()``
        """
        return int(self.client.execute_command("ZCARD", self.key))

    def _around(self, member: Any, n: int, at: Optional[float]) -> Tuple[int, List[Entry]]:
        return self._read("around", member, n, at)

    def _read(self, kind: str, a: Any, b: Any, at: Optional[float]) -> Tuple[int, List[Entry]]:
        t = check_at(at)
        reply = self._range_script(self.client, [self.key, self.landmark_key], _range_args(True, kind, a, b), **RAW)
        now, landmark, first, pairs = _parse_range(reply)
        if landmark is None:
            return first, pairs
        self._note_landmark(landmark)
        now = now if t is None else t
        values = _decay.decay_many([s for _, s in pairs], now, landmark, self.lam)
        return first, [(m, v) for (m, _), v in zip(pairs, values)]

    def __repr__(self) -> str:
        return f"<DecayingLeaderboard {self.key} half_life={self.half_life}>"


def _check_times(at: Any, n: int) -> Any:
    """One finite epoch time (float) or a list of them aligned with the events."""
    if isinstance(at, (int, float)) or (hasattr(at, "ndim") and at.ndim == 0):
        t = check_at(at)
        assert t is not None
        return t
    if hasattr(at, "tolist"):
        at = at.tolist()
    times = list(at)
    if len(times) != n:
        raise ValueError(f"members and at differ in length ({n} != {len(times)})")
    for t in times:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise ValueError(f"at must hold finite epoch seconds >= 0, got {t!r}")
    return times
