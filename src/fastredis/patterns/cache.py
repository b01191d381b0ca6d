"""Tiered caching: a bounded, TTL'd in-process L1 in front of Redis (L2).

``TieredCache`` fixes the seed's ``getWithFallback``: a cold key is loaded
once (in-process single-flight plus a distributed lease), hot keys are
refreshed early (XFetch), and every L1 learns of writes made anywhere through
Redis server-assisted client tracking (``CLIENT TRACKING ON BCAST PREFIX``).

Example::

    >>> from fastredis.server import RedisServer
    >>> server = RedisServer()
    >>> with TieredCache(server.client(), prefix="demo", ttl=60) as cache:
    ...     cache.set("user:1", {"name": "Ada"}, tags=["users"])
    ...     cache.get("user:1")
    ...     cache.get_or_set("user:2", lambda: {"name": "Bob"})
    ...     cache.invalidate_tags("users")
    ...     cache.get("user:1", "gone")
    {'name': 'Ada'}
    {'name': 'Bob'}
    'gone'
    >>> server.stop()

Layout in Redis (all keys of one cache share the hash tag ``{prefix}``, so
tags, write-through invalidations and batches are single scripts; in a
cluster one cache lives in one slot: shard by using several prefixes):

- ``{prefix}:v:<key>``: a string ``FRC1 <delta> <ntags>\\n<tag> <version>\\n...<payload>``.
  A plain string written by someone else (``redis-cli SET``) is read as a bare payload.
- ``{prefix}:t:<tag>``: the tag's version (microseconds, only ever rising).
- ``{prefix}:l:<key>``: the load lease of a cold or refreshing key.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import select
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)
from urllib.parse import unquote_to_bytes

import orjson
from redis._parsers import _HiredisParser, _RESP3Parser
from redis.utils import HIREDIS_AVAILABLE

from .. import metrics as _metrics
from ..keys import KeyPart, escape_part, validate_prefix
from ..scripts import LuaScript, pipeline_for, run_pipeline
from ..serializers import Serializer, get_serializer
from .._text import check_finite

__all__ = ["TieredCache", "CacheKey"]

log = logging.getLogger(__name__)

CacheKey = Union[str, bytes, int]
T = TypeVar("T")

_MISSING: Any = object()
_monotonic = time.monotonic

_FETCH = LuaScript.load("cache_fetch")
_STORE = LuaScript.load("cache_store")
_BUMP = LuaScript.load("cache_bump_tags")
_RELEASE = LuaScript.load("cache_release_lease")

# L1 entry: (value, monotonic expiry, tag stamps or None); tag stamps are
# ((escaped tag, version), ...) and must match the L1's known tag versions.
_Entry = Tuple[Any, float, Optional[Tuple[Tuple[str, bytes], ...]]]


def _canonical(key: Any) -> str:
    """The L1 key of a user key: str as is; bytes and int as the str that escapes alike."""
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray)):
        return bytes(key).decode("utf-8", "surrogateescape")
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise TypeError(f"key must be str, bytes or int, got {type(key).__name__}")


def _unescape(part: str) -> str:
    if part == "%":
        return ""
    return unquote_to_bytes(part).decode("utf-8", "surrogateescape")


def _ttl_ms(ttl: Any, name: str = "ttl") -> int:
    seconds = check_finite(ttl, name)
    if seconds <= 0:
        raise ValueError(f"{name} must be > 0 seconds, got {ttl!r}")
    return max(1, int(round(seconds * 1000)))


# --------------------------------------------------------------------------
# envelope: build / interpret (no I/O)


def parse_envelope(data: Any) -> Tuple[bytes, float, Tuple[Tuple[str, bytes], ...]]:
    """Split a stored value into ``(payload, delta seconds, tag stamps)``.

    A value that does not start with the ``FRC1`` header (written by another
    tool) is a bare payload with no tags.

    Example::

        >>> parse_envelope(b"FRC1 0.5 1\\nusers 7\\n[1]")
        (b'[1]', 0.5, (('users', b'7'),))
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if not data.startswith(b"FRC1 "):
        return data, 0.0, ()
    try:
        nl = data.index(b"\n")
        _, delta_s, ntags_s = data[:nl].split(b" ")
        delta = float(delta_s)
        pos = nl + 1
        stamps = []
        for _ in range(int(ntags_s)):
            end = data.index(b"\n", pos)
            tag, ver = data[pos:end].split(b" ")
            stamps.append((tag.decode("ascii"), ver))
            pos = end + 1
    except (ValueError, UnicodeDecodeError):
        return data, 0.0, ()  # not our header after all: a bare payload
    return data[pos:], delta, tuple(stamps)


class _Readable:
    """Is there data on a socket? Safe to ask from several threads at once
    (``select.poll`` objects are not); no data is consumed."""

    __slots__ = ("ready", "close")

    def __init__(self, sock: Any) -> None:
        if hasattr(select, "epoll"):
            ep = select.epoll()
            ep.register(sock.fileno(), select.EPOLLIN)
            self.ready: Callable[[], Any] = functools.partial(ep.poll, 0)
            self.close: Callable[[], None] = ep.close
        else:  # pragma: no cover - not Linux
            fd = sock.fileno()
            self.ready = lambda: select.select([fd], [], [], 0)[0]
            self.close = lambda: None


class _Flight:
    """One in-process load that concurrent callers of the same key wait for."""

    __slots__ = ("done", "value", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: Optional[BaseException] = None


_LIVE: "weakref.WeakSet[TieredCache]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for cache in list(_LIVE):
        cache._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class TieredCache:
    """Bounded, TTL'd in-process L1 over Redis L2, kept coherent by client tracking.

    ``ttl`` and ``local_ttl`` are seconds; ``local_ttl=None`` means ``ttl/10``;
    ``local_maxsize=0`` disables L1 (and the tracking thread). Values go
    through ``serializer`` (orjson JSON by default; never pickle). L1 returns
    the cached object itself: treat cached values as read-only.

    Coherence: a background thread holds a dedicated RESP3 connection with
    ``CLIENT TRACKING ON BCAST PREFIX {prefix}:v: PREFIX {prefix}:t:``; every
    write to those keys, by anyone, evicts the L1 entry. While that connection
    is down L1 is flushed and bypassed (it may have missed invalidations).
    A read racing an invalidation never stores stale data: each L2 read
    registers a token that an invalidation or a flush revokes, and the L1
    store happens only if the token survived.

    Retries: every script is safe to replay under redis-py's retry policy.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer()
        >>> cache = TieredCache(server.client(), ttl=30)
        >>> cache.set("k", None)
        >>> cache.get("k", "miss"), cache.get("other", "miss")
        (None, 'miss')
        >>> cache.close(); server.stop()
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "cache",
        ttl: float = 3600,
        local_ttl: Optional[float] = None,
        local_maxsize: int = 10_000,
        serializer: Union[str, Serializer, None] = "json",
        lease_ttl: float = 10.0,
        beta: float = 1.0,
    ) -> None:
        if client is None or not hasattr(client, "execute_command"):
            raise TypeError("client must be a redis.Redis or fastredis.Redis")
        self.client = client
        self.prefix = prefix
        base = "{" + validate_prefix(prefix) + "}:"
        self._vprefix = base + "v:"
        self._tprefix = base + "t:"
        self._lprefix = base + "l:"
        self.ttl = check_finite(ttl, "ttl")
        self._ttl_ms = _ttl_ms(ttl)
        if local_ttl is None:
            local_ttl = self.ttl / 10
        self.local_ttl = check_finite(local_ttl, "local_ttl")
        if self.local_ttl < 0:
            raise ValueError("local_ttl must be >= 0 seconds")
        if isinstance(local_maxsize, bool) or not isinstance(local_maxsize, int) or local_maxsize < 0:
            raise ValueError(f"local_maxsize must be an int >= 0, got {local_maxsize!r}")
        self.local_maxsize = local_maxsize
        self.serializer = get_serializer(serializer)
        self._lease_ms = _ttl_ms(lease_ttl, "lease_ttl")
        self.beta = check_finite(beta, "beta")
        if self.beta < 0:
            raise ValueError("beta must be >= 0")

        self._l1: "OrderedDict[str, _Entry]" = OrderedDict()
        self._tagv: Dict[str, bytes] = {}
        self._inflight: Dict[str, object] = {}
        self._lock = threading.Lock()
        self._flights: Dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()
        self._healthy = False
        self._closed = False
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._conn: Any = None
        self._poll: Any = None  # select.poll on the tracking socket (apply_invalidations)
        self._read_lock = threading.Lock()  # one reader of the tracking connection at a time
        self._pid = os.getpid()
        self.tracking_failures = 0
        _LIVE.add(self)
        if self._l1_enabled:
            self._start_tracking(wait=2.0)

    # ------------------------------------------------------------------ keys
    @property
    def _l1_enabled(self) -> bool:
        # L1 needs an invalidation connection built from the client's pool; a
        # cluster client has none, so it runs as L2 only (never stale).
        return self.local_maxsize > 0 and self.local_ttl > 0 and hasattr(self.client, "connection_pool")

    def _vkey(self, ck: str) -> str:
        return self._vprefix + escape_part(ck)

    def _lkey(self, ck: str) -> str:
        return self._lprefix + escape_part(ck)

    def _tkey(self, tag: KeyPart) -> str:
        return self._tprefix + escape_part(tag)

    # ------------------------------------------------------------------ read
    def get(self, key: CacheKey, default: Any = None) -> Any:
        """The cached value of ``key``, or ``default`` on a miss (a cached None is None).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.get("absent", 0)
            0
            >>> cache.close(); server.stop()
        """
        e = self._l1.get(key)  # type: ignore[arg-type]
        if e is not None and e[1] > _monotonic() and (e[2] is None or self._stamps_ok(e[2])):
            return e[0]
        return self._get_slow(key, default)

    def _stamps_ok(self, stamps: Tuple[Tuple[str, bytes], ...]) -> bool:
        tagv = self._tagv
        for tag, ver in stamps:
            if tagv.get(tag) != ver:
                return False
        return True

    def _l1_lookup(self, ck: str) -> Any:
        e = self._l1.get(ck)
        if e is not None and e[1] > _monotonic() and (e[2] is None or self._stamps_ok(e[2])):
            return e[0]
        return _MISSING

    def _get_slow(self, key: CacheKey, default: Any) -> Any:
        ck = _canonical(key)
        self._ensure_tracking()
        if ck is not key:
            hit = self._l1_lookup(ck)
            if hit is not _MISSING:
                return hit
        vkey = self._vkey(ck)
        token = self._begin(vkey)
        try:
            reply = _FETCH(self.client, [vkey, self._lkey(ck)], ["0", "", self._lease_ms, 0])
            value = self._accept(ck, vkey, token, reply)
        finally:
            self._end(vkey, token)
        if _metrics.ON:
            _metrics.cache_lookups(self, "miss" if value is _MISSING else "l2_hit")
        return default if value is _MISSING else value

    def get_many(self, keys: Iterable[CacheKey]) -> Dict[CacheKey, Any]:
        """``{key: value}`` for the keys that are cached (misses are absent); one round trip.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set_many({"a": 1, "b": None})
            >>> cache.get_many(["a", "b", "c"])
            {'a': 1, 'b': None}
            >>> cache.close(); server.stop()
        """
        self._ensure_tracking()
        out: Dict[CacheKey, Any] = {}
        todo: List[Tuple[CacheKey, str, str, object]] = []
        for key in keys:
            ck = _canonical(key)
            hit = self._l1_lookup(ck)
            if hit is not _MISSING:
                out[key] = hit
            else:
                vkey = self._vkey(ck)
                todo.append((key, ck, vkey, self._begin(vkey)))
        if _metrics.ON:
            _metrics.cache_lookups(self, "l1_hit", len(out))
        if not todo:
            return out
        try:
            pipe = pipeline_for(self.client)
            for _, ck, vkey, _tok in todo:
                _FETCH.stage(pipe, [vkey, self._lkey(ck)], ["0", "", self._lease_ms, 0])
            replies = run_pipeline(pipe)
            for (key, ck, vkey, token), reply in zip(todo, replies):
                value = self._accept(ck, vkey, token, reply)
                if value is not _MISSING:
                    out[key] = value
        finally:
            for _, _, vkey, token in todo:
                self._end(vkey, token)
        if _metrics.ON:
            _metrics.cache_l2_results(self, [key in out for key, _ck, _vk, _tok in todo])
        return out

    def _accept(self, ck: str, vkey: str, token: Optional[object], reply: Sequence[Any]) -> Any:
        """Interpret a ``cache_fetch`` reply; store a valid hit in L1 if ``token`` survived."""
        state = reply[0]
        if isinstance(state, bytes):
            state = state.decode()
        data = reply[1]
        if data is None or state not in ("hit", "refresh"):
            return _MISSING
        payload, _delta, stamps = parse_envelope(data)
        if stamps and not self._stamps_current(stamps):
            return _MISSING  # an invalidated tag: the L2 entry is stale
        try:
            value = self.serializer.loads(payload)
        except Exception as e:  # a corrupt or foreign payload is a miss, never a crash
            log.warning("TieredCache: undecodable value under %r treated as a miss: %s", vkey, e)
            return _MISSING
        if token is not None:
            pttl = int(reply[2])
            life = self.local_ttl if pttl < 0 else min(self.local_ttl, pttl / 1000.0)
            self._store_l1(ck, vkey, token, (value, _monotonic() + life, stamps or None))
        return value

    def _stamps_current(self, stamps: Tuple[Tuple[str, bytes], ...]) -> bool:
        """Do the entry's tag stamps match the tags' versions (known in L1, else read)?"""
        if self._healthy and self._stamps_ok(stamps):
            return True
        tkeys = [self._tprefix + tag for tag, _ in stamps]
        tokens = [self._begin(k) for k in tkeys]
        try:
            current = self.client.execute_command("MGET", *tkeys)
            ok = True
            for (tag, ver), tkey, tok, cur in zip(stamps, tkeys, tokens, current):
                if isinstance(cur, str):
                    cur = cur.encode()
                if cur != ver:
                    ok = False
                if cur is not None and tok is not None:
                    with self._lock:
                        if self._inflight.get(tkey) is tok:
                            self._tagv[tag] = cur
            return ok
        finally:
            for k, tok in zip(tkeys, tokens):
                self._end(k, tok)

    # ----------------------------------------------------------- L1 tokens
    def _begin(self, rkey: str) -> Optional[object]:
        """Register an L2 read of ``rkey``; an invalidation of it revokes the token."""
        if not self._healthy:
            return None
        token = object()
        self._inflight[rkey] = token
        return token

    def _end(self, rkey: str, token: Optional[object]) -> None:
        if token is not None:
            with self._lock:
                if self._inflight.get(rkey) is token:
                    del self._inflight[rkey]

    def _store_l1(self, ck: str, vkey: str, token: object, entry: _Entry) -> None:
        with self._lock:
            if not self._healthy or self._inflight.get(vkey) is not token:
                return
            l1 = self._l1
            l1[ck] = entry
            while len(l1) > self.local_maxsize:
                l1.popitem(last=False)

    def _forget_local(self, cks: Iterable[str]) -> None:
        """Our own write: drop L1 entries now (the tracking echo comes later)."""
        with self._lock:
            for ck in cks:
                self._l1.pop(ck, None)
                self._inflight.pop(self._vkey(ck), None)

    def _flush_local(self) -> None:
        with self._lock:
            self._l1.clear()
            self._tagv.clear()
            self._inflight.clear()

    # ----------------------------------------------------------------- write
    def _payload(self, value: Any) -> bytes:
        return self.serializer.dumps(value)

    def _store_args(
        self,
        ck: str,
        payload: bytes,
        ttl: Optional[float],
        tags: Iterable[KeyPart],
        delta: float = 0.0,
        lease_token: str = "",
        delete: Iterable[str] = (),
        expected: Sequence[Any] = (),
    ) -> Tuple[List[str], List[Any]]:
        ttl_ms = self._ttl_ms if ttl is None else _ttl_ms(ttl)
        if isinstance(tags, (str, bytes)):
            raise TypeError("tags must be a sequence of tags, not a single str/bytes")
        etags = [escape_part(t) for t in tags]
        keys = [self._vkey(ck), self._lkey(ck)]
        keys += [self._tprefix + t for t in etags]
        keys += list(delete)
        args: List[Any] = [payload, ttl_ms, repr(float(delta)), lease_token, len(etags), *etags]
        if expected:  # tag versions seen before the load: refuse the store if any moved
            args += expected
        return keys, args

    def set(self, key: CacheKey, value: Any, ttl: Optional[float] = None, tags: Iterable[KeyPart] = ()) -> None:
        """Cache ``value`` (None included) under ``key`` for ``ttl`` seconds, tagged with ``tags``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set("k", [1, 2], ttl=5, tags=["lists"])
            >>> cache.get("k")
            [1, 2]
            >>> cache.close(); server.stop()
        """
        ck = _canonical(key)
        keys, args = self._store_args(ck, self._payload(value), ttl, tags)
        try:
            _STORE(self.client, keys, args)
        finally:
            self._forget_local([ck])

    def set_many(self, mapping: Mapping[CacheKey, Any], ttl: Optional[float] = None, tags: Iterable[KeyPart] = ()) -> None:
        """Cache every item of ``mapping``; one round trip.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set_many({"x": 1, "y": 2}, ttl=10)
            >>> cache.get("y")
            2
            >>> cache.close(); server.stop()
        """
        tags = list(tags) if not isinstance(tags, (str, bytes)) else tags
        staged = []
        for key, value in mapping.items():
            ck = _canonical(key)
            staged.append((ck, self._store_args(ck, self._payload(value), ttl, tags)))
        if not staged:
            return
        pipe = pipeline_for(self.client)
        for _, (keys, args) in staged:
            _STORE.stage(pipe, keys, args)
        try:
            run_pipeline(pipe)
        finally:
            self._forget_local([ck for ck, _ in staged])

    def delete(self, *keys: CacheKey) -> int:
        """Remove ``keys`` from L2 and from every L1; returns how many existed in L2.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set("k", 1); cache.delete("k", "other")
            1
            >>> cache.close(); server.stop()
        """
        if not keys:
            return 0
        cks = [_canonical(k) for k in keys]
        try:
            return int(self.client.execute_command("DEL", *[self._vkey(ck) for ck in cks]))
        finally:
            self._forget_local(cks)

    def set_through(
        self,
        key: CacheKey,
        value: Any,
        writer: Callable[[Any], Any],
        invalidate: Iterable[CacheKey] = (),
        *,
        ttl: Optional[float] = None,
        tags: Iterable[KeyPart] = (),
    ) -> Any:
        """Write-through: ``writer(value)`` persists to the source first; then one
        script caches ``value`` and deletes the ``invalidate`` keys. Returns what
        ``writer`` returned.

        If ``writer`` raises, the cache is untouched. If the cache step fails
        after the writer succeeded, the error propagates and the old entry may
        live until its TTL: delete the key when you catch it.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> db = {}
            >>> cache.set_through("user:1", {"n": 1}, lambda v: db.update({"user:1": v}), invalidate=["users"])
            >>> db["user:1"], cache.get("user:1")
            ({'n': 1}, {'n': 1})
            >>> cache.close(); server.stop()
        """
        if not callable(writer):
            raise TypeError("writer must be callable")
        ck = _canonical(key)
        payload = self._payload(value)
        others = [_canonical(k) for k in invalidate] if not isinstance(invalidate, (str, bytes)) else None
        if others is None:
            raise TypeError("invalidate must be a sequence of keys, not a single str/bytes")
        keys, args = self._store_args(ck, payload, ttl, tags, delete=[self._vkey(o) for o in others])
        result = writer(value)
        try:
            _STORE(self.client, keys, args)
        finally:
            self._forget_local([ck, *others])
        return result

    def invalidate_tags(self, *tags: KeyPart) -> None:
        """Invalidate every entry carrying any of ``tags``, in L2 and every L1: O(1) per tag.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set("a", 1, tags=["t"]); cache.invalidate_tags("t")
            >>> cache.get("a", "stale entry gone")
            'stale entry gone'
            >>> cache.close(); server.stop()
        """
        if not tags:
            return
        etags = [escape_part(t) for t in tags]
        try:
            _BUMP(self.client, [self._tprefix + t for t in etags], [])
        finally:
            with self._lock:
                for t in etags:
                    self._tagv.pop(t, None)
                    self._inflight.pop(self._tprefix + t, None)

    # ------------------------------------------------------------ get_or_set
    def get_or_set(
        self,
        key: CacheKey,
        loader: Callable[[], T],
        ttl: Optional[float] = None,
        *,
        tags: Iterable[KeyPart] = (),
        negative_ttl: Optional[float] = None,
    ) -> T:
        """The cached value, or ``loader()`` run once across threads and processes.

        - In-process single-flight: concurrent callers of one key share one load.
        - Distributed lease: one process loads a cold key; the others poll for
          its value. A lease older than ``lease_ttl`` (the loader died) lets
          another caller take over.
        - XFetch: a hit close to expiry is recomputed early, with probability
          rising as ``delta * beta * -ln(U)`` approaches the remaining TTL
          (``delta`` = the last load's duration); one caller wins the lease.
        - Negative caching: a ``None`` result is cached for ``negative_ttl``
          seconds when given (``0`` = never cache None), else for ``ttl``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.get_or_set("answer", lambda: 42, ttl=60)
            42
            >>> cache.get_or_set("answer", lambda: 0)
            42
            >>> cache.close(); server.stop()
        """
        e = self._l1.get(key)  # type: ignore[arg-type]
        if e is not None and e[1] > _monotonic() and (e[2] is None or self._stamps_ok(e[2])):
            return e[0]
        if not callable(loader):
            raise TypeError("loader must be callable")
        if ttl is not None:
            _ttl_ms(ttl)
        if negative_ttl is not None and negative_ttl != 0:
            _ttl_ms(negative_ttl, "negative_ttl")
        if isinstance(tags, (str, bytes)):
            raise TypeError("tags must be a sequence of tags, not a single str/bytes")
        tags = list(tags)
        ck = _canonical(key)
        self._ensure_tracking()
        with self._flights_lock:
            flight = self._flights.get(ck)
            leader = flight is None
            if leader:
                flight = self._flights[ck] = _Flight()
        assert flight is not None
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            flight.value = self._load(ck, loader, ttl, tags, negative_ttl)
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                self._flights.pop(ck, None)
            flight.done.set()

    def _load(self, ck: str, loader: Callable[[], Any], ttl: Optional[float], tags: Any, negative_ttl: Optional[float]) -> Any:
        vkey, lkey = self._vkey(ck), self._lkey(ck)
        tkeys = [self._tkey(t) for t in tags]
        lease = uuid.uuid4().hex
        pause = 0.005
        while True:
            draw = -self.beta * math.log(1.0 - random.random())  # 1-U in (0, 1]
            token = self._begin(vkey)
            try:
                reply = _FETCH(self.client, [vkey, lkey, *tkeys], ["1", lease, self._lease_ms, repr(draw)])
                state = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
                before = list(reply[3:])
                if state in ("hit", "refresh"):
                    value = self._accept(ck, vkey, token if state == "hit" else None, reply)
                    if value is not _MISSING and state == "hit":
                        if _metrics.ON:
                            _metrics.cache_lookups(self, "l2_hit")
                        return value
                    if value is not _MISSING:  # early refresh: keep serving the old value on failure
                        try:
                            return self._run_loader(ck, loader, ttl, tags, negative_ttl, lease, before)
                        except Exception:
                            log.warning("TieredCache: early refresh of %r failed; serving the cached value", ck, exc_info=True)
                            _RELEASE(self.client, [lkey], [lease])
                            return value
                    # a stale (tag-invalidated) or undecodable entry: reload it under the lease
                    if state == "hit":
                        state = "lease" if self._take_lease(lkey, lease) else "wait"
                if state in ("lease", "refresh") or (state == "foreign" and self._take_lease(lkey, lease)):
                    return self._run_loader(ck, loader, ttl, tags, negative_ttl, lease, before)
            finally:
                self._end(vkey, token)
            # "wait": another process loads; poll until its value lands or its lease expires
            wait_ms = int(reply[2]) if state == "wait" and isinstance(reply[2], int) else -1
            time.sleep(min(pause, wait_ms / 1000.0) if wait_ms > 0 else pause)
            pause = min(pause * 2, 0.05)

    def _take_lease(self, lkey: str, lease: str) -> bool:
        if self.client.execute_command("SET", lkey, lease, "NX", "PX", self._lease_ms):
            return True
        held = self.client.execute_command("GET", lkey)  # replay-safe: a lease already ours
        return held in (lease, lease.encode())

    def _run_loader(
        self,
        ck: str,
        loader: Callable[[], Any],
        ttl: Optional[float],
        tags: Any,
        negative_ttl: Optional[float],
        lease: str,
        before: Sequence[Any] = (),
    ) -> Any:
        lkey = self._lkey(ck)
        started = _monotonic()
        try:
            value = loader()
            payload = self._payload(value)
        except BaseException:
            if _metrics.ON:
                _metrics.cache_load(self, _monotonic() - started, ok=False)
            _RELEASE(self.client, [lkey], [lease])
            raise
        delta = _monotonic() - started
        if _metrics.ON:
            _metrics.cache_load(self, delta, ok=True)
        if value is None and negative_ttl is not None:
            if negative_ttl == 0:
                _RELEASE(self.client, [lkey], [lease])
                return value
            ttl = negative_ttl
        keys, args = self._store_args(ck, payload, ttl, tags, delta=delta, lease_token=lease, expected=before)
        try:
            _STORE(self.client, keys, args)
        finally:
            self._forget_local([ck])
        return value

    # ------------------------------------------------------------ warm, decorator
    def warm(self, mapping_or_keys: Union[Mapping[CacheKey, Any], Iterable[CacheKey]], loader: Optional[Callable[[CacheKey], Any]] = None, ttl: Optional[float] = None) -> int:
        """Fill the cache ahead of traffic; returns how many entries were written.

        A mapping is written as is (``set_many``). An iterable of keys needs
        ``loader(key) -> value``, called only for keys not yet in L2.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.warm({"a": 1})
            1
            >>> cache.warm(["a", "b"], loader=lambda k: k.upper())
            1
            >>> cache.close(); server.stop()
        """
        if isinstance(mapping_or_keys, Mapping):
            self.set_many(mapping_or_keys, ttl=ttl)
            return len(mapping_or_keys)
        if loader is None or not callable(loader):
            raise TypeError("warm(keys) needs a callable loader(key) -> value")
        if isinstance(mapping_or_keys, (str, bytes)):
            raise TypeError("warm takes a mapping or an iterable of keys, not a single str/bytes")
        keys = list(mapping_or_keys)
        present = self.get_many(keys)
        todo = {k: loader(k) for k in keys if k not in present}
        self.set_many(todo, ttl=ttl)
        return len(todo)

    def cached(
        self,
        ttl: Optional[float] = None,
        key: Optional[Callable[..., CacheKey]] = None,
        *,
        tags: Iterable[KeyPart] = (),
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: cache a function's results through :meth:`get_or_set`.

        ``key(*args, **kwargs)`` names the entry; by default it is the
        function's qualified name plus its JSON-encoded arguments. The wrapper
        has ``.invalidate(*args, **kwargs)`` to drop one entry.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> @cache.cached(ttl=60)
            ... def square(x):
            ...     return x * x
            >>> square(4), square(4)
            (16, 16)
            >>> square.invalidate(4)
            1
            >>> cache.close(); server.stop()
        """
        if key is not None and not callable(key):
            raise TypeError("key must be a callable(*args, **kwargs) -> cache key")
        tag_list = list(tags)

        def decorate(func: Callable[..., T]) -> Callable[..., T]:
            name = f"{func.__module__}.{func.__qualname__}"

            def make_key(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> CacheKey:
                if key is not None:
                    return key(*args, **kwargs)
                try:
                    blob = orjson.dumps([args, kwargs], option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
                except TypeError as e:
                    raise TypeError(f"{name}: arguments are not JSON-encodable for the cache key; pass key=: {e}") from None
                return name + ":" + blob.decode()

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> T:
                return self.get_or_set(make_key(args, kwargs), lambda: func(*args, **kwargs), ttl, tags=tag_list)

            def invalidate(*args: Any, **kwargs: Any) -> int:
                return self.delete(make_key(args, kwargs))

            wrapper.invalidate = invalidate  # type: ignore[attr-defined]
            return wrapper

        return decorate

    # ---------------------------------------------------------------- tracking
    @property
    def tracking(self) -> bool:
        """True while the invalidation connection is up (L1 in use)."""
        return self._healthy

    def _ensure_tracking(self) -> None:
        if self._pid != os.getpid():  # a fork we missed (no register_at_fork)
            self._reset_after_fork()
        if self._thread is None and self._l1_enabled and not self._closed:
            self._start_tracking(wait=0)

    def _start_tracking(self, wait: float) -> None:
        with self._flights_lock:
            if self._thread is not None:
                return
            self._stop = threading.Event()
            t = threading.Thread(target=self._track, name=f"fastredis-cache-tracking-{self.prefix}", daemon=True)
            self._thread = t
        t.start()
        deadline = _monotonic() + wait
        while not self._healthy and _monotonic() < deadline and t.is_alive():
            time.sleep(0.005)

    def _tracking_connection(self) -> Any:
        pool = self.client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs["protocol"] = 3
        kwargs["decode_responses"] = False
        kwargs["socket_timeout"] = 5.0
        kwargs.pop("cache", None)
        kwargs.pop("cache_config", None)
        # redis-py's own RESP3 parser: its push-handler API is what this loop relies on
        kwargs["parser_class"] = _HiredisParser if HIREDIS_AVAILABLE else _RESP3Parser
        conn = pool.connection_class(**kwargs)
        conn.connect()
        conn._parser.set_invalidation_push_handler(self._on_invalidate)
        conn.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", self._vprefix, "PREFIX", self._tprefix)
        reply = conn.read_response()
        if reply not in (b"OK", "OK", True):
            raise ConnectionError(f"CLIENT TRACKING failed: {reply!r}")
        return conn

    def _track(self) -> None:
        stop = self._stop
        backoff = 0.05
        while not stop.is_set():
            conn = None
            try:
                conn = self._tracking_connection()
                self._conn = conn
                with self._lock:
                    self._flush_unlocked()
                    self._healthy = True
                backoff = 0.05
                last = _monotonic()
                poll = select.poll()
                poll.register(conn._sock, select.POLLIN)
                self._poll = _Readable(conn._sock)
                while not stop.is_set():
                    # wait on the socket, then read under _read_lock: apply_invalidations
                    # (another thread) may drain the same connection
                    if poll.poll(100):
                        with self._read_lock:
                            while conn.can_read(timeout=0):
                                conn.read_response(push_request=True)
                        last = _monotonic()
                    elif _monotonic() - last > 1.0:
                        # liveness probe; pushes queued before the reply are handled by read_response
                        with self._read_lock:
                            conn.send_command("PING")
                            conn.read_response()
                        last = _monotonic()
            except Exception as exc:
                if not stop.is_set():
                    self.tracking_failures += 1
                    log.warning("TieredCache %r: invalidation connection lost (%s); L1 flushed and bypassed", self.prefix, exc)
            finally:
                with self._lock:
                    self._healthy = False
                    self._flush_unlocked()
                self._conn = None
                readable, self._poll = self._poll, None
                if readable is not None:
                    readable.close()
                if conn is not None:
                    try:
                        conn.disconnect()
                    except Exception:
                        pass
            stop.wait(backoff)
            backoff = min(backoff * 2, 1.0)

    def _flush_unlocked(self) -> None:
        self._l1.clear()
        self._tagv.clear()
        self._inflight.clear()

    def _on_invalidate(self, message: Sequence[Any]) -> None:
        keys = message[1] if len(message) > 1 else None
        with self._lock:
            if keys is None:  # FLUSHALL / FLUSHDB
                self._flush_unlocked()
                return
            vp, tp = self._vprefix, self._tprefix
            for k in keys:
                if isinstance(k, bytes):
                    k = k.decode("utf-8", "surrogateescape")
                self._inflight.pop(k, None)
                if k.startswith(vp):
                    self._l1.pop(_unescape(k[len(vp):]), None)
                elif k.startswith(tp):
                    self._tagv.pop(k[len(tp):], None)

    def _reset_after_fork(self) -> None:
        """In a forked child: forget the parent's thread and socket; start afresh on demand."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._flights_lock = threading.Lock()
        self._flights = {}
        self._healthy = False
        self._flush_unlocked()
        self._thread = None
        self._conn = None  # the parent's socket: never used, never shut down here
        self._poll = None
        self._read_lock = threading.Lock()
        self._stop = threading.Event()

    # ------------------------------------------- for integrations (Django backend)
    def redis_key(self, key: CacheKey) -> str:
        """The Redis (L2) key that holds ``key``'s value.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client(), prefix="app")
            >>> cache.redis_key("user:1")
            '{app}:v:user%3A1'
            >>> cache.close(); server.stop()
        """
        return self._vkey(_canonical(key))

    def get_local(self, key: CacheKey, default: Any = None) -> Any:
        """``key``'s value from this process's L1 if it holds a fresh one, else
        ``default``; never a round trip (for event loops: fall back to a
        thread or an asyncio client on a miss).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set("k", 1); cache.get_local("k", "not in L1")
            'not in L1'
            >>> cache.get("k"), cache.get_local("k")
            (1, 1)
            >>> cache.close(); server.stop()
        """
        value = self._l1_lookup(_canonical(key))
        return default if value is _MISSING else value

    def forget_local(self, *keys: CacheKey) -> None:
        """Drop ``keys`` from this process's L1 now: call it after writing their
        Redis keys (:meth:`redis_key`) yourself. Other processes learn of the
        write through tracking, as for every write.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); r = server.client(); cache = TieredCache(r)
            >>> cache.set("k", 1); cache.get("k")
            1
            >>> _ = r.set(cache.redis_key("k"), b"2"); cache.forget_local("k"); cache.get("k")
            2
            >>> cache.close(); server.stop()
        """
        self._forget_local([_canonical(k) for k in keys])

    def apply_invalidations(self) -> None:
        """Apply now the invalidations that already reached this process.

        The tracking thread applies them within moments; call this before an
        L1 read that must see every write acknowledged before it, in any
        process: Redis sends a write's invalidation to every tracking
        connection before it answers the writer, so after this call no write
        acknowledged earlier is missed. Costs one ``poll(2)`` when nothing is
        pending.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); r = server.client(); cache = TieredCache(r)
            >>> cache.set("k", 1); cache.get("k")
            1
            >>> other = server.client(); _ = other.set(cache.redis_key("k"), b"2")
            >>> cache.apply_invalidations(); cache.get("k")
            2
            >>> cache.close(); server.stop()
        """
        readable = self._poll
        if readable is None:
            return
        lock = self._read_lock
        try:
            if not readable.ready() and not lock.locked():
                return
        except (OSError, ValueError):  # closed by a reconnect: the new connection starts with an empty L1
            return
        with lock:
            conn = self._conn
            if conn is None or self._poll is not readable:
                return
            try:
                while conn.can_read(timeout=0):
                    conn.read_response(push_request=True)
            except Exception:  # the tracking thread reconnects; until then L1 is bypassed
                with self._lock:
                    self._healthy = False
                    self._flush_unlocked()

    # -------------------------------------------------------------- lifecycle
    def clear_local(self) -> None:
        """Drop every L1 entry of this process (L2 is untouched)."""
        self._flush_local()

    def close(self) -> None:
        """Stop the tracking thread and drop L1. Safe to call twice."""
        self._closed = True
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)
        self._thread = None
        with self._lock:
            self._healthy = False
            self._flush_unlocked()
        _LIVE.discard(self)

    def __enter__(self) -> "TieredCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._closed = True
            self._stop.set()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<TieredCache prefix={self.prefix!r} l1={len(self._l1)} tracking={self._healthy}>"
