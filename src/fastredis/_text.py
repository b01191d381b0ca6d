"""Reply normalisation shared by the patterns: members come back as ``str``
whatever the client's ``decode_responses``; non-UTF-8 bytes survive the round
trip through ``surrogateescape``.
"""

from __future__ import annotations

import math
from typing import Any, Union

__all__ = ["to_str", "to_bytes", "to_float", "check_finite"]


def to_str(value: Any) -> Any:
    """bytes -> str (surrogateescape); anything else unchanged."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value


def to_bytes(value: Union[str, bytes, int, float]) -> bytes:
    """A member or value as bytes; str is UTF-8 (surrogateescape), so to_str round-trips."""
    if isinstance(value, bool):
        raise TypeError("bool is not a valid member; convert it to str or int first")
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (int, float)):
        return repr(value).encode()
    raise TypeError(f"expected str, bytes, int or float, got {type(value).__name__}")


def to_float(value: Any) -> float:
    """A reply (bytes/str/number) as float; Lua returns floats as strings."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode()
    return float(value)


def check_finite(value: Any, name: str) -> float:
    """``float(value)``: ``TypeError`` for a bool, a str or any non-number,
    ``ValueError`` for NaN, inf or a number too large for a float.

    Example::

        >>> check_finite(2, "ttl")
        2.0
        >>> check_finite("10", "ttl")
        Traceback (most recent call last):
        ...
        TypeError: ttl must be a number, got str
    """
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a finite number, got {value!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return f
