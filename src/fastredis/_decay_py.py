"""Forward-decay arithmetic (pure-Python twin of ``_decay_c``).

An event of weight ``w`` at time ``t`` adds ``w * exp(lam * (t - L))`` to its
member's stored score, where ``L`` is the landmark and ``lam = ln 2 /
half_life``. Every member shares the read-time divisor ``exp(lam * (now -
L))``, so the stored order is the decayed order. Before ``lam * (t - L)``
passes :data:`REBASE_EXPONENT` the landmark moves forward (a rebase), which
keeps ``w * exp(...)`` far from overflow (``e**300 ~ 1.9e130``).

Example::

    >>> lam = decay_rate(3600.0)
    >>> increment(2.0, 3600.0, 0.0, lam)
    4.0
    >>> decayed(4.0, 7200.0, 0.0, lam)
    1.0
    >>> aggregate_increments(["a", "b", "a"], [1.0, 1.0, 1.0], 0.0, 0.0, lam)
    (['a', 'b'], [2.0, 1.0])
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

__all__ = ["REBASE_EXPONENT", "decay_rate", "increment", "decayed", "decay_many",
           "rebase_factor", "choose_landmark", "aggregate", "aggregate_increments"]

#: Rebase once ``lam * (t - L)`` would exceed this (not ~700: ``w * e**700``
#: overflows for ``|w|`` above ~1e4 and ZINCRBY silently stores inf).
REBASE_EXPONENT = 300.0
_LN2 = math.log(2.0)
# Largest exponent folded into one exp() call when decaying: keeps each factor
# a normal double, so a huge stored score times a tiny factor stays accurate.
_SPLIT = 600.0


def decay_rate(half_life: float) -> float:
    """``ln 2 / half_life`` (per second); half_life must be a finite number > 0.

    Example::

        >>> decay_rate(1.0) == math.log(2)
        True
    """
    if isinstance(half_life, bool) or not isinstance(half_life, (int, float)):
        raise TypeError(f"half_life must be a number of seconds, got {type(half_life).__name__}")
    h = float(half_life)
    if not (h > 0.0) or h == math.inf:
        raise ValueError(f"half_life must be a finite number of seconds > 0, got {half_life!r}")
    lam = _LN2 / h
    if lam == 0.0:
        raise ValueError(f"half_life {half_life!r} is too large")
    return lam


def _finite(x: Any, name: str) -> float:
    if isinstance(x, (bool, str, bytes, bytearray)) or x is None:
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    try:
        f = float(x)
    except TypeError:
        raise TypeError(f"{name} must be a number, got {type(x).__name__}") from None
    except ValueError:
        raise ValueError(f"{name} must be a finite number, got {x!r}") from None
    if f != f or f in (math.inf, -math.inf):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return f


def increment(weight: float, t: float, landmark: float, lam: float) -> float:
    """``weight * exp(lam * (t - landmark))``; ValueError on NaN/inf or overflow.

    Example::

        >>> increment(-1.0, 0.0, 0.0, 1.0)
        -1.0
    """
    w = _finite(weight, "weight")
    e = lam * (_finite(t, "at") - landmark)
    try:
        v = w * math.exp(e)
    except OverflowError:
        v = math.inf
    if v != v or v in (math.inf, -math.inf):
        raise ValueError(f"weight {weight!r} at {t!r} overflows a double (exponent {e:.1f}); "
                         "the landmark is too far in the past for this weight")
    return v


def decayed(stored: float, now: float, landmark: float, lam: float) -> float:
    """The decayed value of a stored score at ``now``: ``stored / exp(lam * (now - L))``.

    Example::

        >>> round(decayed(8.0, 3.0, 0.0, math.log(2)), 12)
        1.0
    """
    x = lam * (now - landmark)
    s = float(stored)
    # Split big exponents so neither factor is subnormal or infinite.
    while x > _SPLIT:
        s *= math.exp(-_SPLIT)
        x -= _SPLIT
        if s == 0.0:
            return 0.0
    while x < -_SPLIT:
        s *= math.exp(_SPLIT)
        x += _SPLIT
    return s * math.exp(-x)


def decay_many(stored: Sequence[float], now: float, landmark: float, lam: float) -> List[float]:
    """:func:`decayed` over a sequence (or 1-d numpy array) of stored scores.

    Example::

        >>> decay_many([2.0, 4.0], 1.0, 0.0, math.log(2))
        [1.0, 2.0]
    """
    return [decayed(s, now, landmark, lam) for s in _items(stored, True)]


def rebase_factor(old_landmark: float, new_landmark: float, lam: float) -> float:
    """The factor that moves stored scores from ``old_landmark`` to ``new_landmark``.

    Example::

        >>> rebase_factor(0.0, 2.0, math.log(2))
        0.25
    """
    return math.exp(-lam * (new_landmark - old_landmark))


def choose_landmark(landmark: Optional[float], t_max: float, lam: float) -> float:
    """``landmark``, or ``t_max`` when there is none or ``t_max`` is past the rebase threshold.

    Example::

        >>> choose_landmark(None, 5.0, 1.0), choose_landmark(0.0, 5.0, 1.0), choose_landmark(0.0, 400.0, 1.0)
        (5.0, 0.0, 400.0)
    """
    if landmark is None or lam * (t_max - landmark) > REBASE_EXPONENT:
        return float(t_max)
    return float(landmark)


def _check_member(m: Any) -> None:
    if not isinstance(m, (str, bytes)) and (isinstance(m, bool) or not isinstance(m, int)):
        raise TypeError(f"a member must be str, bytes or int, got {type(m).__name__}")


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (int, float)) or (hasattr(x, "ndim") and getattr(x, "ndim") == 0)


def _items(seq: Any, numeric: bool) -> Sequence[Any]:
    """A caller sequence as an exact list or tuple (as the compiled twin), so
    ``len()`` is that of the items really there (a lying ``__len__`` is never
    trusted). numpy arrays of numbers via tolist()."""
    if type(seq) is tuple or type(seq) is list:
        return seq
    if numeric and hasattr(seq, "tolist"):
        seq = seq.tolist()
        if type(seq) is list:
            return seq
    return tuple(seq)


def aggregate(members: Sequence[Any], values: Sequence[float], name: str = "value") -> Tuple[List[Any], List[float]]:
    """Sum ``values`` per member (first-seen order), so a batch sends one change per member.

    Example::

        >>> aggregate(["x", "y", "x"], [1, 2, 3])
        (['x', 'y'], [4.0, 2.0])
    """
    mem = _items(members, False)
    vals = _items(values, True)  # numpy: plain floats, same values
    n = len(mem)
    if len(vals) != n:
        raise ValueError(f"members and {name}s differ in length ({n} != {len(vals)})")
    index: dict = {}
    out_m: List[Any] = []
    out_v: List[float] = []
    for i in range(n):
        m = mem[i]
        v = _finite(vals[i], name)
        j = index.get(m)
        if j is None:
            _check_member(m)
            index[m] = len(out_m)
            out_m.append(m)
            out_v.append(v)
        else:
            out_v[j] += v
    return out_m, out_v


def aggregate_increments(members: Sequence[Any], weights: Sequence[float], times: Any,
                         landmark: float, lam: float) -> Tuple[List[Any], List[float]]:
    """Per-member sums of :func:`increment` for events ``(member, weight, time)``.

    ``times`` is one number for every event, or a sequence/array aligned with
    ``members``. NaN/inf weights or times, and increments that overflow, raise
    ``ValueError``; nothing partial is returned.

    Example::

        >>> aggregate_increments(["a", "a"], [1.0, 1.0], [0.0, 1.0], 0.0, math.log(2))
        (['a'], [3.0])
    """
    mem = _items(members, False)
    ws = _items(weights, True)
    n = len(mem)
    if len(ws) != n:
        raise ValueError(f"members and weights differ in length ({n} != {len(ws)})")
    if _is_scalar(times):
        t0 = _finite(times, "at")
        times_l: Optional[Sequence[Any]] = None
    else:
        times_l = _items(times, True)
        if len(times_l) != n:
            raise ValueError(f"members and at differ in length ({n} != {len(times_l)})")
        t0 = 0.0
    incs = [increment(ws[i], t0 if times_l is None else times_l[i], landmark, lam) for i in range(n)]
    out_m, out_v = aggregate(mem, incs, "weight")
    for v in out_v:
        if v in (math.inf, -math.inf):
            raise ValueError("the sum of increments for one member overflows a double")
    return out_m, out_v
