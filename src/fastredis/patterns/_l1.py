"""The in-process L1 of :class:`~fastredis.TieredCache` and its coherence rules (no I/O).

Shared by the sync cache (whose tracking thread feeds it) and the asyncio
cache (whose tracking task does): the entries, the tag versions they were
stamped with, the read tokens that an invalidation revokes, and what an
invalidation push or a lost tracking connection does to them. The tracking
thread or task holds this object, never the cache, so a dropped cache is
collected and its thread or task ends.

Example::

    >>> l1 = L1(maxsize=2, vprefix="{c}:v:", tprefix="{c}:t:")
    >>> l1.up()
    >>> token = l1.begin("{c}:v:k")
    >>> l1.store("k", "{c}:v:k", token, ("value", float("inf"), None))
    >>> l1.lookup("k")
    'value'
    >>> l1.on_invalidate([b"invalidate", [b"{c}:v:k"]]); l1.lookup("k") is MISSING
    True
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple
from urllib.parse import unquote_to_bytes

__all__ = ["L1", "MISSING", "Entry"]

#: What a lookup returns when the key is not (validly) in L1.
MISSING: Any = object()

# An entry: (value, monotonic expiry, tag stamps or None); tag stamps are
# ((escaped tag, version), ...) and must match the L1's known tag versions.
Entry = Tuple[Any, float, Optional[Tuple[Tuple[str, bytes], ...]]]

_monotonic = time.monotonic


def unescape(part: str) -> str:
    """The user key of an escaped key part (``"%"`` is the empty key).

    Example::

        >>> unescape("a%3Ab"), unescape("%")
        ('a:b', '')
    """
    if part == "%":
        return ""
    return unquote_to_bytes(part).decode("utf-8", "surrogateescape")


class L1:
    """Bounded entries with expiry, kept only while tracking is up (``healthy``).

    A read of L2 registers a token (:meth:`begin`); an invalidation of that
    key, or a flush, revokes it; :meth:`store` keeps the value only if the
    token survived, so a read racing an invalidation never stores stale data.
    """

    __slots__ = ("entries", "tagv", "inflight", "lock", "healthy", "maxsize", "vprefix", "tprefix", "failures")

    def __init__(self, maxsize: int, vprefix: str, tprefix: str) -> None:
        self.entries: "OrderedDict[str, Entry]" = OrderedDict()
        self.tagv: Dict[str, bytes] = {}
        self.inflight: Dict[str, object] = {}
        self.lock = threading.Lock()
        self.healthy = False
        self.maxsize = maxsize
        self.vprefix = vprefix
        self.tprefix = tprefix
        self.failures = 0  # tracking connections lost so far

    def stamps_ok(self, stamps: Tuple[Tuple[str, bytes], ...]) -> bool:
        """Whether every tag stamp matches the tag's version known here."""
        tagv = self.tagv
        for tag, ver in stamps:
            if tagv.get(tag) != ver:
                return False
        return True

    def lookup(self, ck: str) -> Any:
        """The value of a live, valid entry, else :data:`MISSING`."""
        e = self.entries.get(ck)
        if e is not None and e[1] > _monotonic() and (e[2] is None or self.stamps_ok(e[2])):
            return e[0]
        return MISSING

    def begin(self, rkey: str) -> Optional[object]:
        """Register an L2 read of ``rkey``; an invalidation of it revokes the token."""
        if not self.healthy:
            return None
        token = object()
        self.inflight[rkey] = token
        return token

    def end(self, rkey: str, token: Optional[object]) -> None:
        """The read of ``rkey`` is over."""
        if token is not None:
            with self.lock:
                if self.inflight.get(rkey) is token:
                    del self.inflight[rkey]

    def store(self, ck: str, vkey: str, token: object, entry: Entry) -> None:
        """Keep ``entry`` if tracking is up and the read's token survived."""
        with self.lock:
            if not self.healthy or self.inflight.get(vkey) is not token:
                return
            entries = self.entries
            entries[ck] = entry
            while len(entries) > self.maxsize:
                entries.popitem(last=False)

    def learn_tag(self, tag: str, tkey: str, token: Optional[object], version: Any) -> None:
        """Remember a tag version read from L2, if no invalidation overtook the read."""
        if version is not None and token is not None:
            with self.lock:
                if self.inflight.get(tkey) is token:
                    self.tagv[tag] = version

    def forget(self, cks: Iterable[str], vkeys: Iterable[str]) -> None:
        """Our own write: drop its entries now (the tracking echo comes later)."""
        with self.lock:
            for ck in cks:
                self.entries.pop(ck, None)
            for vkey in vkeys:
                self.inflight.pop(vkey, None)

    def forget_tags(self, etags: Iterable[str]) -> None:
        """Our own tag invalidation: drop the tags' known versions now."""
        with self.lock:
            for t in etags:
                self.tagv.pop(t, None)
                self.inflight.pop(self.tprefix + t, None)

    def flush(self) -> None:
        """Drop everything (entries, tag versions, read tokens)."""
        with self.lock:
            self._flush_unlocked()

    def _flush_unlocked(self) -> None:
        self.entries.clear()
        self.tagv.clear()
        self.inflight.clear()

    def up(self) -> None:
        """A tracking connection was (re)established: start from nothing, then serve L1."""
        with self.lock:
            self._flush_unlocked()
            self.healthy = True

    def down(self) -> None:
        """The tracking connection is gone: invalidations may be missed, so
        L1 is flushed and bypassed until :meth:`up`."""
        with self.lock:
            self.healthy = False
            self._flush_unlocked()

    def on_invalidate(self, message: Sequence[Any]) -> None:
        """Handle a RESP3 ``invalidate`` push: drop the named keys (all on FLUSHALL)."""
        keys = message[1] if len(message) > 1 else None
        with self.lock:
            if keys is None:  # FLUSHALL / FLUSHDB
                self._flush_unlocked()
                return
            vp, tp = self.vprefix, self.tprefix
            for k in keys:
                if isinstance(k, bytes):
                    k = k.decode("utf-8", "surrogateescape")
                self.inflight.pop(k, None)
                if k.startswith(vp):
                    self.entries.pop(unescape(k[len(vp):]), None)
                elif k.startswith(tp):
                    self.tagv.pop(k[len(tp):], None)

    def after_fork(self) -> None:
        """In a forked child: new locks, nothing inherited, tracking down."""
        self.lock = threading.Lock()
        self.healthy = False
        self._flush_unlocked()
