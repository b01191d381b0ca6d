"""Key building: the one helper that turns user-supplied parts into Redis keys.

User parts are percent-escaped so that no part can contain the separator
``:``, a hash-tag brace ``{``/``}``, a glob character ``*?[]`` (keys also
appear in SCAN MATCH and PSUBSCRIBE patterns), ``%``, ``\\``, whitespace,
CR/LF or a non-ASCII byte. Escaping is injective, so two different part lists
never build the same key, and the result is plain ASCII ``str``.

An escaped part longer than :func:`max_key_part` bytes (default 1024) raises
``ValueError``: user input cannot make keys of unbounded size. Hash long
input first, or raise the limit for the process with :func:`set_max_key_part`.

Example::

    >>> ks = KeySpace("rl")
    >>> ks.key("user:1", "w")
    'rl:user%3A1:w'
    >>> ks.tagged("user{1}", "w")        # the user part is the hash tag
    'rl:{user%7B1%7D}:w'
    >>> escape_part(b"\\xff*")
    '%FF%2A'
"""

from __future__ import annotations

from typing import Union

__all__ = ["KeyPart", "KeySpace", "escape_part", "validate_prefix", "max_key_part", "set_max_key_part",
           "DEFAULT_MAX_KEY_PART"]

#: The default limit on one escaped key part, in bytes.
DEFAULT_MAX_KEY_PART = 1024
_max_part = DEFAULT_MAX_KEY_PART


def max_key_part() -> int:
    """The longest escaped key part accepted, in bytes (process-wide).

    Example::

        >>> max_key_part()
        1024
    """
    return _max_part


def set_max_key_part(limit: int) -> int:
    """Set the longest escaped key part accepted (bytes, >= 16) for the whole
    process; returns the previous limit.

    Example::

        >>> previous = set_max_key_part(4096)
        >>> len(escape_part("k" * 3000))
        3000
        >>> set_max_key_part(previous)
        4096
    """
    global _max_part
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"the key part limit must be an int, got {type(limit).__name__}")
    if limit < 16:
        raise ValueError(f"the key part limit must be >= 16 bytes, got {limit!r}")
    previous, _max_part = _max_part, limit
    return previous


def _too_long(size: int, at_least: bool = False) -> ValueError:
    return ValueError(
        f"a key part is {'at least ' if at_least else ''}{size} bytes once escaped, over the limit of "
        f"{_max_part} bytes: shorten it (hash long user input first), or raise the limit for the "
        "process with fastredis.keys.set_max_key_part(n)"
    )

KeyPart = Union[str, bytes, int]

# Unreserved characters of RFC 3986 plus a few that are harmless in keys.
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~@!$&'()+,;=/|<>#^`\"")
_TABLE = [chr(b) if b in _SAFE else f"%{b:02X}" for b in range(256)]
# str.translate table for the common all-ASCII str part (no encode/join).
_ASCII_TRANSLATE = {b: _TABLE[b] for b in range(128) if b not in _SAFE}


def escape_part(part: KeyPart) -> str:
    """Escape one user-supplied key part (str, bytes or int; not bool/float).

    ``ValueError`` when the escaped part is longer than :func:`max_key_part`.

    Example::

        >>> escape_part("a b:c")
        'a%20b%3Ac'
    """
    if isinstance(part, bool) or not isinstance(part, (str, bytes, bytearray, int)):
        raise TypeError(f"a key part must be str, bytes or int, got {type(part).__name__}")
    if isinstance(part, int):
        out = str(part)
    elif isinstance(part, str) and part and part.isascii():
        out = part.translate(_ASCII_TRANSLATE)
    else:
        raw = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else bytes(part)
        if not raw:
            return "%"  # empty part: distinct from every non-empty escaped part
        if len(raw) > _max_part:  # escaping only lengthens it: refuse before building it
            raise _too_long(len(raw), at_least=True)
        table = _TABLE
        out = "".join([table[b] for b in raw])
    if len(out) > _max_part:
        raise _too_long(len(out))
    return out


def validate_prefix(prefix: str) -> str:
    """Check a key prefix chosen by the developer; it is escaped like any part."""
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("prefix must be a non-empty str")
    return escape_part(prefix)


class KeySpace:
    """Builds the keys of one pattern instance under ``prefix``.

    Example::

        >>> KeySpace("lb").key("weekly")
        'lb:weekly'
    """

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = validate_prefix(prefix)

    def key(self, *parts: KeyPart) -> str:
        """``prefix:part1:part2...`` with every part escaped."""
        if not parts:
            return self.prefix
        return self.prefix + ":" + ":".join([escape_part(p) for p in parts])

    def tagged(self, tag: KeyPart, *parts: KeyPart) -> str:
        """``prefix:{tag}:parts...``: keys sharing ``tag`` share a cluster slot."""
        k = f"{self.prefix}:{{{escape_part(tag)}}}"
        if parts:
            k += ":" + ":".join([escape_part(p) for p in parts])
        return k

    def pattern(self, *parts: KeyPart) -> str:
        """A SCAN MATCH pattern for every key below ``key(*parts)``."""
        return self.key(*parts) + ":*"

    def __repr__(self) -> str:
        return f"KeySpace({self.prefix!r})"
