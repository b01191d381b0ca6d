"""Small helpers shared by the leaderboard and analytics patterns.

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

__all__ = ["RAW", "chunks", "check_member"]


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
