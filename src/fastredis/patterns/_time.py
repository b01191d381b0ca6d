"""Parsing of ``at=`` / ``day`` arguments and UTC bucket arithmetic.

Buckets are numbered ``floor(t / width)``; bucket ``i`` covers
``[i*width, (i+1)*width)`` seconds since the epoch, so day buckets align to
UTC midnight. The Lua scripts compute the same index with the same double
division, so a bucket chosen here and one chosen there always agree.

Example::

    >>> import datetime
    >>> day_start("2024-03-01")
    1709251200
    >>> day_start(datetime.date(2024, 3, 1)) == day_start(1709251200.5)
    True
    >>> bucket_index(125.0, 60)
    2
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from typing import List, Optional, Union

from .._text import check_finite

__all__ = ["DayLike", "BUCKETS", "bucket_width", "check_at", "bucket_index",
           "candidate_indexes", "day_start", "day_label"]

DayLike = Union[_dt.date, str, int, float]

BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}
DAY = 86400


def bucket_width(bucket: Union[str, int, float], name: str = "bucket") -> int:
    """``"minute"``/``"hour"``/``"day"`` or a positive whole number of seconds.

    Example::

        >>> bucket_width("hour"), bucket_width(60)
        (3600, 60)
    """
    if isinstance(bucket, str):
        try:
            return BUCKETS[bucket]
        except KeyError:
            raise ValueError(f"{name} must be one of {sorted(BUCKETS)} or seconds, got {bucket!r}") from None
    width = check_finite(bucket, name)
    if width < 1 or width != int(width):
        raise ValueError(f"{name} must be a whole number of seconds >= 1, got {bucket!r}")
    return int(width)


def check_at(at: Optional[float], name: str = "at") -> Optional[float]:
    """``None`` (server time) or finite epoch seconds as float.

    Example::

        >>> check_at(None), check_at(10)
        (None, 10.0)
    """
    if at is None:
        return None
    t = check_finite(at, name)
    if t < 0:
        raise ValueError(f"{name} must be seconds since the epoch (>= 0), got {at!r}")
    return t


def bucket_index(t: float, width: int) -> int:
    """Index of the bucket holding epoch second ``t`` (same arithmetic as the Lua side).

    Example::

        >>> bucket_index(59.999, 60), bucket_index(60, 60)
        (0, 1)
    """
    return int(math.floor(t / width))


def candidate_indexes(width: int) -> List[int]:
    """The buckets the server's clock may be in: local bucket and its neighbours.

    Scripts run without ``at=`` read ``TIME`` on the server, but keys must be
    built here. So the client passes these three candidate buckets; the script
    picks the one holding the server time (or fails loudly when the clocks
    differ by more than one bucket).

    Example::

        >>> len(candidate_indexes(60))
        3
    """
    i = bucket_index(time.time(), width)
    return [i - 1, i, i + 1]


def day_start(day: DayLike, name: str = "day") -> int:
    """UTC midnight (epoch seconds) of ``day``: a date, ``"YYYY-MM-DD"`` or epoch seconds.

    Example::

        >>> day_start(86400 * 3 + 5)
        259200
    """
    if isinstance(day, _dt.datetime):
        if day.tzinfo is not None:
            day = day.astimezone(_dt.timezone.utc)
        day = day.date()
    if isinstance(day, _dt.date):
        return (day - _dt.date(1970, 1, 1)).days * DAY
    if isinstance(day, str):
        try:
            d = _dt.date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"{name} must be 'YYYY-MM-DD', got {day!r}") from None
        if len(day) != 10:
            raise ValueError(f"{name} must be 'YYYY-MM-DD', got {day!r}")
        return (d - _dt.date(1970, 1, 1)).days * DAY
    if isinstance(day, bool) or not isinstance(day, (int, float)):
        raise TypeError(f"{name} must be a datetime.date, 'YYYY-MM-DD' or epoch seconds, got {type(day).__name__}")
    t = check_at(day, name)
    assert t is not None
    return bucket_index(t, DAY) * DAY


def day_label(day: DayLike, name: str = "day") -> str:
    """``"YYYY-MM-DD"`` of ``day`` in UTC (used in readable keys).

    Example::

        >>> day_label(0)
        '1970-01-01'
    """
    return (_dt.date(1970, 1, 1) + _dt.timedelta(days=day_start(day, name) // DAY)).isoformat()
