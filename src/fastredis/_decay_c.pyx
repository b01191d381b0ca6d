# cython: language_level=3, cdivision=True
# Bounds checks stay on: these functions index caller sequences.
"""Forward-decay arithmetic (compiled twin of ``_decay_py``; same names, same results).

Example::

    >>> lam = decay_rate(3600.0)
    >>> increment(2.0, 3600.0, 0.0, lam)
    4.0
"""

from libc.math cimport exp, log, isfinite, INFINITY

__all__ = ["REBASE_EXPONENT", "decay_rate", "increment", "decayed", "decay_many",
           "rebase_factor", "choose_landmark", "aggregate", "aggregate_increments"]

REBASE_EXPONENT = 300.0
cdef double _REBASE = 300.0
cdef double _LN2 = log(2.0)
cdef double _SPLIT = 600.0


def decay_rate(half_life):
    """``ln 2 / half_life`` (per second); half_life must be a finite number > 0."""
    if isinstance(half_life, bool) or not isinstance(half_life, (int, float)):
        raise TypeError(f"half_life must be a number of seconds, got {type(half_life).__name__}")
    cdef double h = float(half_life)
    if not (h > 0.0) or h == INFINITY:
        raise ValueError(f"half_life must be a finite number of seconds > 0, got {half_life!r}")
    cdef double lam = _LN2 / h
    if lam == 0.0:
        raise ValueError(f"half_life {half_life!r} is too large")
    return lam


cdef inline double _finite(object x, str name) except? -1.0:
    cdef double f
    if isinstance(x, (bool, str, bytes, bytearray)) or x is None:
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    try:
        f = float(x)
    except TypeError:
        raise TypeError(f"{name} must be a number, got {type(x).__name__}") from None
    except ValueError:
        raise ValueError(f"{name} must be a finite number, got {x!r}") from None
    if not isfinite(f):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return f


cdef inline double _inc(double w, double t, double landmark, double lam, object weight, object at) except? -1.0:
    cdef double e = lam * (t - landmark)
    cdef double v = w * exp(e)
    if not isfinite(v):
        raise ValueError(f"weight {weight!r} at {at!r} overflows a double (exponent {e:.1f}); "
                         "the landmark is too far in the past for this weight")
    return v


def increment(weight, t, double landmark, double lam):
    """``weight * exp(lam * (t - landmark))``; ValueError on NaN/inf or overflow."""
    return _inc(_finite(weight, "weight"), _finite(t, "at"), landmark, lam, weight, t)


cdef inline double _decayed(double s, double now, double landmark, double lam):
    cdef double x = lam * (now - landmark)
    while x > _SPLIT:
        s *= exp(-_SPLIT)
        x -= _SPLIT
        if s == 0.0:
            return 0.0
    while x < -_SPLIT:
        s *= exp(_SPLIT)
        x += _SPLIT
    return s * exp(-x)


def decayed(stored, double now, double landmark, double lam):
    """The decayed value of a stored score at ``now``: ``stored / exp(lam * (now - L))``."""
    return _decayed(float(stored), now, landmark, lam)


def decay_many(stored, double now, double landmark, double lam):
    """:func:`decayed` over a sequence (or 1-d numpy array) of stored scores."""
    return [_decayed(float(s), now, landmark, lam) for s in _items(stored, True)]


def rebase_factor(double old_landmark, double new_landmark, double lam):
    """The factor that moves stored scores from ``old_landmark`` to ``new_landmark``."""
    return exp(-lam * (new_landmark - old_landmark))


def choose_landmark(landmark, double t_max, double lam):
    """``landmark``, or ``t_max`` when there is none or ``t_max`` is past the rebase threshold."""
    if landmark is None or lam * (t_max - <double>landmark) > _REBASE:
        return t_max
    return float(landmark)


cdef inline void _check_member(object m) except *:
    if not isinstance(m, (str, bytes)) and (isinstance(m, bool) or not isinstance(m, int)):
        raise TypeError(f"a member must be str, bytes or int, got {type(m).__name__}")


cdef inline bint _is_scalar(object x):
    return isinstance(x, (int, float)) or (hasattr(x, "ndim") and x.ndim == 0)


cdef object _items(object seq, bint numeric):
    """A caller sequence as an exact list or tuple, so ``len()`` is that of the
    items really there (a lying ``__len__`` is never trusted). Lists are used
    in place: caller code run by the loops (``__float__``, ``__hash__``) may
    shrink them, which the bounds-checked indexing turns into IndexError.
    numpy arrays of numbers via tolist()."""
    if type(seq) is tuple or type(seq) is list:
        return seq
    if numeric and hasattr(seq, "tolist"):
        seq = seq.tolist()
        if type(seq) is list:
            return seq
    return tuple(seq)


def aggregate(members, values, str name="value"):
    """Sum ``values`` per member (first-seen order), so a batch sends one change per member."""
    cdef object mem = _items(members, False)
    cdef object vals = _items(values, True)
    cdef Py_ssize_t n = len(mem), i
    cdef double v
    if len(vals) != n:
        raise ValueError(f"members and {name}s differ in length ({n} != {len(vals)})")
    cdef dict index = {}
    cdef list out_m = []
    cdef list out_v = []
    cdef list sums = []
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
            out_v[<Py_ssize_t>j] = <double>out_v[<Py_ssize_t>j] + v
    return out_m, out_v


def aggregate_increments(members, weights, times, double landmark, double lam):
    """Per-member sums of :func:`increment` for events ``(member, weight, time)``."""
    cdef object mem = _items(members, False)
    cdef object ws = _items(weights, True)
    cdef object ts = None
    cdef Py_ssize_t n = len(mem), i
    cdef double t0 = 0.0, w, t
    cdef bint scalar = _is_scalar(times)
    if len(ws) != n:
        raise ValueError(f"members and weights differ in length ({n} != {len(ws)})")
    if scalar:
        t0 = _finite(times, "at")
    else:
        ts = _items(times, True)
        if len(ts) != n:
            raise ValueError(f"members and at differ in length ({n} != {len(ts)})")
    cdef list incs = [None] * n
    for i in range(n):
        wo = ws[i]
        w = _finite(wo, "weight")
        if scalar:
            t = t0
            to = times
        else:
            to = ts[i]
            t = _finite(to, "at")
        incs[i] = _inc(w, t, landmark, lam, wo, to)
    out_m, out_v = aggregate(mem, incs, "weight")
    for v in out_v:
        if not isfinite(<double>v):
            raise ValueError("the sum of increments for one member overflows a double")
    return out_m, out_v
