"""Small argument helpers shared by the patterns.

Example::

    >>> chunks([1, 2, 3], 2)
    [[1, 2], [3]]
"""

from __future__ import annotations

from typing import Any, List, Sequence

from redis.client import NEVER_DECODE


# execute_command options for undecoded replies: members may be any bytes,
# also on a decode_responses=True client.
RAW = {NEVER_DECODE: True}

__all__ = ["RAW", "chunks", "check_member", "check_count"]


def chunks(seq: Sequence[Any], size: int) -> List[Sequence[Any]]:
    """``seq`` cut into slices of at most ``size``.

    Example::

        >>> chunks("abcde", 2)
        ['ab', 'cd', 'e']
    """
    return [seq[i:i + size] for i in range(0, len(seq), size)]


def check_member(member: Any, name: str = "member") -> Any:
    """A member/id must be str, bytes or int (not bool): returned unchanged.

    Example::

        >>> check_member("a")
        'a'
    """
    if isinstance(member, (str, bytes)):
        return member
    if isinstance(member, bool) or not isinstance(member, int):
        raise TypeError(f"{name} must be str, bytes or int, got {type(member).__name__}")
    return member


def check_count(n: Any, name: str) -> int:
    """A count: an int >= 0 (``TypeError`` for another type, ``ValueError`` below 0).

    Example::

        >>> check_count(3, "n")
        3
        >>> check_count("3", "n")
        Traceback (most recent call last):
        ...
        TypeError: n must be an int, got str
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n!r}")
    return n
