"""Key building: the one helper that turns user-supplied parts into Redis keys.

User parts are percent-escaped so that no part can contain the separator
``:``, a hash-tag brace ``{``/``}``, a glob character ``*?[]`` (keys also
appear in SCAN MATCH and PSUBSCRIBE patterns), ``%``, ``\\``, whitespace,
CR/LF or a non-ASCII byte. Escaping is injective, so two different part lists
never build the same key, and the result is plain ASCII ``str``.

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

__all__ = ["KeyPart", "KeySpace", "escape_part", "validate_prefix"]

KeyPart = Union[str, bytes, int]

# Unreserved characters of RFC 3986 plus a few that are harmless in keys.
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~@!$&'()+,;=/|<>#^`\"")
_TABLE = [chr(b) if b in _SAFE else f"%{b:02X}" for b in range(256)]
# str.translate table for the common all-ASCII str part (no encode/join).
_ASCII_TRANSLATE = {b: _TABLE[b] for b in range(128) if b not in _SAFE}


def escape_part(part: KeyPart) -> str:
    """Escape one user-supplied key part (str, bytes or int; not bool/float).

    Example::

        >>> escape_part("a b:c")
        'a%20b%3Ac'
    """
    if isinstance(part, bool) or not isinstance(part, (str, bytes, bytearray, int)):
        raise TypeError(f"a key part must be str, bytes or int, got {type(part).__name__}")
    if isinstance(part, int):
        return str(part)
    if isinstance(part, str) and part and part.isascii():
        return part.translate(_ASCII_TRANSLATE)
    raw = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else bytes(part)
    if not raw:
        return "%"  # empty part: distinct from every non-empty escaped part
    table = _TABLE
    return "".join([table[b] for b in raw])


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
