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

import orjson
from redis._parsers import _HiredisParser, _RESP3Parser
from redis.utils import HIREDIS_AVAILABLE

from .. import metrics as _metrics
from .._text import check_finite
from ..exceptions import ClosedError
from ..keys import KeyPart, escape_part, validate_prefix
from ..scripts import LuaScript, run
from ..serializers import Serializer, get_serializer
from ._clients import check_sync_client
from ._conn import FORKS, owner_thread, private_connection
from ._l1 import L1, MISSING, Entry
from ._plan import Call, Invoke, Plan, Sleep, Steps, script_call

__all__ = ["TieredCache", "CacheKey", "parse_envelope", "DEFAULT_MAX_VALUE_BYTES"]

#: The largest serialized value a TieredCache stores or deserialises (16 MiB).
DEFAULT_MAX_VALUE_BYTES = 16 << 20

log = logging.getLogger(__name__)

CacheKey = Union[str, bytes, int]
T = TypeVar("T")

_monotonic = time.monotonic

_FETCH = LuaScript.load("cache_fetch")
_STORE = LuaScript.load("cache_store")
_BUMP = LuaScript.load("cache_bump_tags")
_RELEASE = LuaScript.load("cache_release_lease")


def _canonical(key: Any) -> str:
    """The L1 key of a user key: str as is; bytes and int as the str that escapes alike."""
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray)):
        return bytes(key).decode("utf-8", "surrogateescape")
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise TypeError(f"key must be str, bytes or int, got {type(key).__name__}")


def _ttl_ms(ttl: Any, name: str = "ttl") -> int:
    seconds = check_finite(ttl, name)
    if seconds <= 0:
        raise ValueError(f"{name} must be > 0 seconds, got {ttl!r}")
    return max(1, int(round(seconds * 1000)))


def _reply(value: Any) -> Any:
    return value


def _text(state: Any) -> Any:
    return state.decode() if isinstance(state, bytes) else state


def _tag_list(tags: Any) -> List[KeyPart]:
    if isinstance(tags, (str, bytes)):
        raise TypeError("tags must be a sequence of tags, not a single str/bytes")
    return list(tags)


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


def cache_key_maker(func: Callable[..., Any], key: Optional[Callable[..., CacheKey]]) -> Callable[[Tuple[Any, ...], Dict[str, Any]], CacheKey]:
    """The entry name of a call of a :meth:`TieredCache.cached` function:
    ``key(*args, **kwargs)``, or the function's qualified name plus its
    JSON-encoded arguments.

    Example::

        >>> def area(w, h): return w * h
        >>> cache_key_maker(area, None)((2,), {"h": 3})
        'fastredis.patterns.cache.area:[[2],{"h":3}]'
    """
    if key is not None and not callable(key):
        raise TypeError("key must be a callable(*args, **kwargs) -> cache key")
    name = f"{func.__module__}.{func.__qualname__}"

    def make_key(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> CacheKey:
        if key is not None:
            return key(*args, **kwargs)
        try:
            blob = orjson.dumps([args, kwargs], option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        except TypeError as e:
            raise TypeError(f"{name}: arguments are not JSON-encodable for the cache key; pass key=: {e}") from None
        return name + ":" + blob.decode()

    return make_key


class _CachePlans:
    """What a :class:`TieredCache` decides (no I/O), shared with its asyncio
    twin: keys, the L1 rules (:class:`~fastredis.patterns._l1.L1`), and the
    steps of every operation (fetch, tag checks, single load with lease and
    XFetch, stores). Threads versus tasks (tracking, single-flight) live in
    the shells."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)

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
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    ) -> None:
        self.client = self._check_client(client, type(self).__name__)
        if isinstance(max_value_bytes, bool) or not isinstance(max_value_bytes, int):
            raise TypeError(f"max_value_bytes must be an int, got {type(max_value_bytes).__name__}")
        if max_value_bytes < 1:
            raise ValueError(f"max_value_bytes must be >= 1, got {max_value_bytes!r}")
        #: The largest serialized value stored or deserialised, in bytes.
        self.max_value_bytes = max_value_bytes
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
        if isinstance(local_maxsize, bool) or not isinstance(local_maxsize, int):
            raise TypeError(f"local_maxsize must be an int, got {type(local_maxsize).__name__}")
        if local_maxsize < 0:
            raise ValueError(f"local_maxsize must be an int >= 0, got {local_maxsize!r}")
        self.local_maxsize = local_maxsize
        self.serializer = get_serializer(serializer)
        self._lease_ms = _ttl_ms(lease_ttl, "lease_ttl")
        self.beta = check_finite(beta, "beta")
        if self.beta < 0:
            raise ValueError("beta must be >= 0")
        self._state = L1(local_maxsize, self._vprefix, self._tprefix)
        # The L1 containers, by their historical names (the fast path reads _l1).
        self._l1 = self._state.entries
        self._inflight = self._state.inflight
        self._closed = False
        self._pid = os.getpid()
        FORKS.add(self)
        self._open()

    def _open(self) -> None:
        """The shell's part of construction: single-flight and tracking."""

    # ------------------------------------------------------------------ state
    @property
    def tracking(self) -> bool:
        """True while the invalidation connection is up (L1 in use)."""
        return self._state.healthy

    @property
    def tracking_failures(self) -> int:
        """How many times the invalidation connection was lost."""
        return self._state.failures

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def _l1_enabled(self) -> bool:
        # L1 needs an invalidation connection built from the client's pool; a
        # cluster client has none, so it runs as L2 only (never stale).
        return self.local_maxsize > 0 and self.local_ttl > 0 and hasattr(self.client, "connection_pool")

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"TieredCache {self.prefix!r} was closed; make a new one")

    def clear_local(self) -> None:
        """Drop every L1 entry of this process (L2 is untouched).

        Example::

            >>> import redis
            >>> TieredCache(redis.Redis(), local_maxsize=0).clear_local()
        """
        self._state.flush()

    # ------------------------------------------------------------------ keys
    def _vkey(self, ck: str) -> str:
        return self._vprefix + escape_part(ck)

    def _lkey(self, ck: str) -> str:
        return self._lprefix + escape_part(ck)

    def _tkey(self, tag: KeyPart) -> str:
        return self._tprefix + escape_part(tag)

    # ------------------------------------------------------------------ read
    def _fetch(self, ck: str, vkey: str) -> Plan[Any]:
        return Plan.one(script_call(_FETCH, [vkey, self._lkey(ck)], ["0", "", self._lease_ms, 0]), _reply)

    def plan_get(self, key: CacheKey, default: Any = None) -> Steps[Any]:
        """The cached value of ``key``, or ``default`` on a miss (a cached None is None).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.get("absent", 0)
            0
            >>> cache.close(); server.stop()
        """
        self._check_open()
        ck = _canonical(key)
        return self._get_steps(ck, ck is not key, default)

    def _get_steps(self, ck: str, look_again: bool, default: Any) -> Steps[Any]:
        if look_again:  # bytes/int keys miss the fast path's exact-key lookup
            hit = self._state.lookup(ck)
            if hit is not MISSING:
                return hit
        vkey = self._vkey(ck)
        token = self._state.begin(vkey)
        try:
            reply = yield self._fetch(ck, vkey)
            value = yield from self._accept(ck, vkey, token, reply)
        finally:
            self._state.end(vkey, token)
        if _metrics.ON:
            _metrics.cache_lookups(self, "miss" if value is MISSING else "l2_hit")
        return default if value is MISSING else value

    def plan_get_many(self, keys: Iterable[CacheKey]) -> Steps[Dict[CacheKey, Any]]:
        """``{key: value}`` for the keys that are cached (misses are absent); one round trip.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set_many({"a": 1, "b": None})
            >>> cache.get_many(["a", "b", "c"])
            {'a': 1, 'b': None}
            >>> cache.close(); server.stop()
        """
        self._check_open()
        if isinstance(keys, (str, bytes)):
            raise TypeError("get_many takes an iterable of keys, not a single str/bytes")
        return self._get_many_steps(list(keys))

    def _get_many_steps(self, keys: List[CacheKey]) -> Steps[Dict[CacheKey, Any]]:
        state = self._state
        out: Dict[CacheKey, Any] = {}
        todo: List[Tuple[CacheKey, str, str, Optional[object]]] = []
        for key in keys:
            ck = _canonical(key)
            hit = state.lookup(ck)
            if hit is not MISSING:
                out[key] = hit
            else:
                vkey = self._vkey(ck)
                todo.append((key, ck, vkey, state.begin(vkey)))
        if _metrics.ON:
            _metrics.cache_lookups(self, "l1_hit", len(out))
        if not todo:
            return out
        try:
            calls = [self._fetch(ck, vkey).calls[0] for _, ck, vkey, _tok in todo]
            replies = yield Plan(calls, _reply, batch=True)
            for (key, ck, vkey, token), reply in zip(todo, replies):
                value = yield from self._accept(ck, vkey, token, reply)
                if value is not MISSING:
                    out[key] = value
        finally:
            for _, _, vkey, token in todo:
                state.end(vkey, token)
        if _metrics.ON:
            _metrics.cache_l2_results(self, [key in out for key, _ck, _vk, _tok in todo])
        return out

    def _accept(self, ck: str, vkey: str, token: Optional[object], reply: Sequence[Any]) -> Steps[Any]:
        """Interpret a ``cache_fetch`` reply; store a valid hit in L1 if ``token`` survived."""
        status = _text(reply[0])
        data = reply[1]
        if data is None or status not in ("hit", "refresh"):
            return MISSING
        payload, _delta, stamps = parse_envelope(data)
        if len(payload) > self.max_value_bytes:  # never deserialise more than we would store
            log.warning("TieredCache: a %d-byte value under %r (over max_value_bytes=%d) treated as a miss",
                        len(payload), vkey, self.max_value_bytes)
            return MISSING
        if stamps and not (yield from self._stamps_current(stamps)):
            return MISSING  # an invalidated tag: the L2 entry is stale
        try:
            value = self.serializer.loads(payload)
        except Exception as e:  # a corrupt or foreign payload is a miss, never a crash
            log.warning("TieredCache: undecodable value under %r treated as a miss: %s", vkey, e)
            return MISSING
        if token is not None:
            pttl = int(reply[2])
            life = self.local_ttl if pttl < 0 else min(self.local_ttl, pttl / 1000.0)
            entry: Entry = (value, _monotonic() + life, stamps or None)
            self._state.store(ck, vkey, token, entry)
        return value

    def _stamps_current(self, stamps: Tuple[Tuple[str, bytes], ...]) -> Steps[bool]:
        """Do the entry's tag stamps match the tags' versions (known in L1, else read)?"""
        state = self._state
        if state.healthy and state.stamps_ok(stamps):
            return True
        tkeys = [self._tprefix + tag for tag, _ in stamps]
        tokens = [state.begin(k) for k in tkeys]
        try:
            current = yield Plan.one(Call(("MGET", *tkeys)), _reply)
            ok = True
            for (tag, ver), tkey, tok, cur in zip(stamps, tkeys, tokens, current):
                if isinstance(cur, str):
                    cur = cur.encode()
                if cur != ver:
                    ok = False
                state.learn_tag(tag, tkey, tok, cur)
            return ok
        finally:
            for k, tok in zip(tkeys, tokens):
                state.end(k, tok)

    # ----------------------------------------------------------------- write
    def _payload(self, value: Any) -> bytes:
        data = self.serializer.dumps(value)
        if len(data) > self.max_value_bytes:
            raise ValueError(
                f"a value of {len(data)} bytes serialized is over max_value_bytes={self.max_value_bytes} of this "
                f"{type(self).__name__} (nothing was stored): cache less, or raise the limit with max_value_bytes="
            )
        return data

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
        etags = [escape_part(t) for t in _tag_list(tags)]
        keys = [self._vkey(ck), self._lkey(ck)]
        keys += [self._tprefix + t for t in etags]
        keys += list(delete)
        args: List[Any] = [payload, ttl_ms, repr(float(delta)), lease_token, len(etags), *etags]
        if expected:  # tag versions seen before the load: refuse the store if any moved
            args += expected
        return keys, args

    def _stored(self, plan: Plan[Any], cks: Sequence[str]) -> Steps[Any]:
        """Run a write; our L1 entries of ``cks`` are dropped whatever happens."""
        try:
            return (yield plan)
        finally:
            self._state.forget(cks, [self._vkey(ck) for ck in cks])

    def plan_set(self, key: CacheKey, value: Any, ttl: Optional[float] = None, tags: Iterable[KeyPart] = ()) -> Steps[None]:
        """Cache ``value`` (None included) under ``key`` for ``ttl`` seconds, tagged with ``tags``.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set("k", [1, 2], ttl=5, tags=["lists"])
            >>> cache.get("k")
            [1, 2]
            >>> cache.close(); server.stop()
        """
        self._check_open()
        ck = _canonical(key)
        keys, args = self._store_args(ck, self._payload(value), ttl, tags)
        return self._stored(Plan.one(script_call(_STORE, keys, args), _none), [ck])

    def plan_set_many(self, mapping: Mapping[CacheKey, Any], ttl: Optional[float] = None,
                      tags: Iterable[KeyPart] = ()) -> Steps[None]:
        """Cache every item of ``mapping``; one round trip.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set_many({"x": 1, "y": 2}, ttl=10)
            >>> cache.get("y")
            2
            >>> cache.close(); server.stop()
        """
        self._check_open()
        if not isinstance(mapping, Mapping):
            raise TypeError(f"set_many takes a mapping of key -> value, got {type(mapping).__name__}")
        tag_list = _tag_list(tags)
        calls, cks = [], []
        for key, value in mapping.items():
            ck = _canonical(key)
            calls.append(script_call(_STORE, *self._store_args(ck, self._payload(value), ttl, tag_list)))
            cks.append(ck)
        return self._stored(Plan(calls, _none, batch=True), cks)

    def plan_delete(self, *keys: CacheKey) -> Steps[int]:
        """Remove ``keys`` from L2 and from every L1; returns how many existed in L2.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set("k", 1); cache.delete("k", "other")
            1
            >>> cache.close(); server.stop()
        """
        self._check_open()
        cks = [_canonical(k) for k in keys]
        if not cks:
            return self._stored(Plan.done(0), [])
        return self._stored(Plan.one(Call(("DEL", *[self._vkey(ck) for ck in cks])), int), cks)

    def plan_set_through(
        self,
        key: CacheKey,
        value: Any,
        writer: Callable[[Any], Any],
        invalidate: Iterable[CacheKey] = (),
        *,
        ttl: Optional[float] = None,
        tags: Iterable[KeyPart] = (),
    ) -> Steps[Any]:
        """Write-through: ``writer(value)`` persists to the source first; then one
        script caches ``value`` and deletes the ``invalidate`` keys. Returns what
        ``writer`` returned (an asyncio cache awaits an ``async def`` writer).

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
        self._check_open()
        if not callable(writer):
            raise TypeError("writer must be callable")
        ck = _canonical(key)
        payload = self._payload(value)
        if isinstance(invalidate, (str, bytes)):
            raise TypeError("invalidate must be a sequence of keys, not a single str/bytes")
        others = [_canonical(k) for k in invalidate]
        keys, args = self._store_args(ck, payload, ttl, tags, delete=[self._vkey(o) for o in others])
        return self._set_through_steps(writer, value, Plan.one(script_call(_STORE, keys, args), _none), [ck, *others])

    def _set_through_steps(self, writer: Callable[[Any], Any], value: Any, store: Plan[None], cks: List[str]) -> Steps[Any]:
        result = yield Invoke(writer, (value,))
        yield from self._stored(store, cks)
        return result

    def plan_invalidate_tags(self, *tags: KeyPart) -> Steps[None]:
        """Invalidate every entry carrying any of ``tags``, in L2 and every L1: O(1) per tag.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set("a", 1, tags=["t"]); cache.invalidate_tags("t")
            >>> cache.get("a", "stale entry gone")
            'stale entry gone'
            >>> cache.close(); server.stop()
        """
        self._check_open()
        etags = [escape_part(t) for t in tags]
        return self._bump_steps(etags)

    def _bump_steps(self, etags: List[str]) -> Steps[None]:
        if not etags:
            return
        try:
            yield Plan.one(script_call(_BUMP, [self._tprefix + t for t in etags], []), _none)
        finally:
            self._state.forget_tags(etags)

    # ------------------------------------------------------------ get_or_set
    def _load_args(self, loader: Any, ttl: Optional[float], tags: Any, negative_ttl: Optional[float]) -> List[KeyPart]:
        """Check get_or_set's arguments before any I/O; the tags as a list."""
        self._check_open()
        if not callable(loader):
            raise TypeError("loader must be callable")
        if ttl is not None:
            _ttl_ms(ttl)
        if negative_ttl is not None and negative_ttl != 0:
            _ttl_ms(negative_ttl, "negative_ttl")
        return _tag_list(tags)

    def _load_steps(self, ck: str, loader: Callable[[], Any], ttl: Optional[float], tags: List[KeyPart],
                    negative_ttl: Optional[float]) -> Steps[Any]:
        """The cross-process part of get_or_set: lease, XFetch, load, store; waits
        (polling, with backoff) while another process holds the lease."""
        vkey, lkey = self._vkey(ck), self._lkey(ck)
        tkeys = [self._tkey(t) for t in tags]
        lease = uuid.uuid4().hex
        pause = 0.005
        state = self._state
        while True:
            draw = -self.beta * math.log(1.0 - random.random())  # 1-U in (0, 1]
            token = state.begin(vkey)
            try:
                call = script_call(_FETCH, [vkey, lkey, *tkeys], ["1", lease, self._lease_ms, repr(draw)])
                reply = yield Plan.one(call, _reply)
                status = _text(reply[0])
                before = list(reply[3:])
                if status in ("hit", "refresh"):
                    value = yield from self._accept(ck, vkey, token if status == "hit" else None, reply)
                    if value is not MISSING and status == "hit":
                        if _metrics.ON:
                            _metrics.cache_lookups(self, "l2_hit")
                        return value
                    if value is not MISSING:  # early refresh: keep serving the old value on failure
                        try:
                            return (yield from self._run_loader(ck, loader, ttl, tags, negative_ttl, lease, before))
                        except Exception:
                            log.warning("TieredCache: early refresh of %r failed; serving the cached value", ck, exc_info=True)
                            yield self._release_lease(lkey, lease)
                            return value
                    # a stale (tag-invalidated) or undecodable entry: reload it under the lease
                    if status == "hit":
                        status = "lease" if (yield from self._take_lease(lkey, lease)) else "wait"
                if status in ("lease", "refresh") or (status == "foreign" and (yield from self._take_lease(lkey, lease))):
                    return (yield from self._run_loader(ck, loader, ttl, tags, negative_ttl, lease, before))
            finally:
                state.end(vkey, token)
            # "wait": another process loads; poll until its value lands or its lease expires
            wait_ms = int(reply[2]) if status == "wait" and isinstance(reply[2], int) else -1
            yield Sleep(min(pause, wait_ms / 1000.0) if wait_ms > 0 else pause)
            pause = min(pause * 2, 0.05)

    def _release_lease(self, lkey: str, lease: str) -> Plan[None]:
        return Plan.one(script_call(_RELEASE, [lkey], [lease]), _none)

    def _take_lease(self, lkey: str, lease: str) -> Steps[bool]:
        if (yield Plan.one(Call(("SET", lkey, lease, "NX", "PX", self._lease_ms)), _reply)):
            return True
        held = yield Plan.one(Call(("GET", lkey)), _reply)  # replay-safe: a lease already ours
        return held in (lease, lease.encode())

    def _run_loader(self, ck: str, loader: Callable[[], Any], ttl: Optional[float], tags: List[KeyPart],
                    negative_ttl: Optional[float], lease: str, before: Sequence[Any] = ()) -> Steps[Any]:
        lkey = self._lkey(ck)
        started = _monotonic()
        try:
            value = yield Invoke(loader)
            payload = self._payload(value)
        except Exception:
            if _metrics.ON:
                _metrics.cache_load(self, _monotonic() - started, ok=False)
            yield self._release_lease(lkey, lease)
            raise
        delta = _monotonic() - started
        if _metrics.ON:
            _metrics.cache_load(self, delta, ok=True)
        if value is None and negative_ttl is not None:
            if negative_ttl == 0:
                yield self._release_lease(lkey, lease)
                return value
            ttl = negative_ttl
        keys, args = self._store_args(ck, payload, ttl, tags, delta=delta, lease_token=lease, expected=before)
        yield from self._stored(Plan.one(script_call(_STORE, keys, args), _none), [ck])
        return value

    # ------------------------------------------------------------ warm
    def plan_warm(self, mapping_or_keys: Union[Mapping[CacheKey, Any], Iterable[CacheKey]],
                  loader: Optional[Callable[[CacheKey], Any]] = None, ttl: Optional[float] = None) -> Steps[int]:
        """Fill the cache ahead of traffic; returns how many entries were written.

        A mapping is written as is (``set_many``). An iterable of keys needs
        ``loader(key) -> value``, called only for keys not yet in L2 (an
        asyncio cache awaits an ``async def`` loader).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.warm({"a": 1})
            1
            >>> cache.warm(["a", "b"], loader=lambda k: k.upper())
            1
            >>> cache.close(); server.stop()
        """
        self._check_open()
        if isinstance(mapping_or_keys, Mapping):
            return self._warm_mapping(mapping_or_keys, ttl)
        if loader is None or not callable(loader):
            raise TypeError("warm(keys) needs a callable loader(key) -> value")
        if isinstance(mapping_or_keys, (str, bytes)):
            raise TypeError("warm takes a mapping or an iterable of keys, not a single str/bytes")
        return self._warm_keys(list(mapping_or_keys), loader, ttl)

    def _warm_mapping(self, mapping: Mapping[CacheKey, Any], ttl: Optional[float]) -> Steps[int]:
        yield from self.plan_set_many(mapping, ttl=ttl)
        return len(mapping)

    def _warm_keys(self, keys: List[CacheKey], loader: Callable[[CacheKey], Any], ttl: Optional[float]) -> Steps[int]:
        present = yield from self._get_many_steps(keys)
        todo: Dict[CacheKey, Any] = {}
        for k in keys:
            if k not in present:
                todo[k] = yield Invoke(loader, (k,))
        yield from self.plan_set_many(todo, ttl=ttl)
        return len(todo)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} prefix={self.prefix!r} l1={len(self._l1)} tracking={self.tracking}>"


def _none(_reply: Any) -> None:
    return None


# --------------------------------------------------------------------------
# the sync shell: a tracking thread, threads for single-flight


class _Flight:
    """One in-process load that concurrent callers of the same key wait for."""

    __slots__ = ("done", "value", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: Optional[BaseException] = None


def tracking_kwargs(parser_class: Any) -> Dict[str, Any]:
    """Overrides of the client's connection settings for a tracking connection:
    RESP3, raw bytes, redis-py's own push-capable parser, a read timeout.

    Example::

        >>> tracking_kwargs(object)["protocol"]
        3
    """
    return {"protocol": 3, "decode_responses": False, "socket_timeout": 5.0, "parser_class": parser_class}


def _connect_tracking(client: Any, state: L1) -> Any:
    """A private RESP3 connection subscribed to invalidations of the cache's keys."""
    # redis-py's own RESP3 parser: its push-handler API is what tracking relies on
    conn = private_connection(client, **tracking_kwargs(_HiredisParser if HIREDIS_AVAILABLE else _RESP3Parser))
    conn.connect()
    conn._parser.set_invalidation_push_handler(state.on_invalidate)
    conn.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", state.vprefix, "PREFIX", state.tprefix)
    reply = conn.read_response()
    if reply not in (b"OK", "OK", True):
        raise ConnectionError(f"CLIENT TRACKING failed: {reply!r}")
    return conn


class _Link:
    """The tracking connection as other threads may drain it
    (:meth:`TieredCache.apply_invalidations`): one reader at a time."""

    __slots__ = ("lock", "conn", "ready", "close")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: Any = None
        self.ready: Optional[Callable[[], Any]] = None  # is data waiting on the socket (no data consumed)
        self.close: Callable[[], None] = _nothing

    def attach(self, conn: Any) -> None:
        sock = conn._sock
        if hasattr(select, "epoll"):  # unlike select.poll objects, several threads may poll it at once
            ep = select.epoll()
            ep.register(sock.fileno(), select.EPOLLIN)
            self.ready, self.close = functools.partial(ep.poll, 0), ep.close
        else:  # pragma: no cover - not Linux
            fd = sock.fileno()
            self.ready = lambda: select.select([fd], [], [], 0)[0]
        self.conn = conn

    def detach(self) -> None:
        close, self.close = self.close, _nothing
        self.ready = None
        self.conn = None
        close()

    def drain(self) -> None:
        """Read every reply already received (pushes go to the L1's handler); hold ``lock``."""
        conn = self.conn
        while conn.can_read(timeout=0):
            conn.read_response(push_request=True)


def _nothing() -> None:
    return None


def _track(stop: threading.Event, client: Any, state: L1, label: str, link: Optional[_Link] = None) -> None:
    """The tracking thread: holds the L1 state, never the cache."""
    backoff = 0.05
    link = link if link is not None else _Link()
    while not stop.is_set():
        conn = None
        try:
            conn = _connect_tracking(client, state)
            state.up()
            backoff = 0.05
            last = _monotonic()
            poll = select.poll()
            poll.register(conn._sock, select.POLLIN)
            link.attach(conn)
            while not stop.is_set():
                # wait on the socket, then read under the link's lock: another
                # thread's apply_invalidations may drain the same connection
                if poll.poll(100):
                    with link.lock:
                        link.drain()
                    last = _monotonic()
                elif _monotonic() - last > 1.0:
                    # liveness probe; pushes queued before the reply are handled by read_response
                    with link.lock:
                        conn.send_command("PING")
                        conn.read_response()
                    last = _monotonic()
        except Exception as exc:
            if not stop.is_set():
                state.failures += 1
                log.warning("TieredCache %r: invalidation connection lost (%s); L1 flushed and bypassed", label, exc)
        finally:
            state.down()
            link.detach()
            if conn is not None:
                try:
                    conn.disconnect()
                except Exception:
                    pass
        stop.wait(backoff)
        backoff = min(backoff * 2, 1.0)


class TieredCache(_CachePlans):
    """Bounded, TTL'd in-process L1 over Redis L2, kept coherent by client tracking.

    ``ttl`` and ``local_ttl`` are seconds; ``local_ttl=None`` means ``ttl/10``;
    ``local_maxsize=0`` disables L1 (and the tracking thread). Values go
    through ``serializer`` (orjson JSON by default; never pickle). L1 returns
    the cached object itself: treat cached values as read-only.

    ``max_value_bytes`` (default 16 MiB) bounds a serialized value: a larger
    one is refused on write (``ValueError``, nothing stored; from a
    ``get_or_set`` loader too), and one found in Redis (written by another
    program) is a miss, never deserialised.

    Coherence: a background thread holds a dedicated RESP3 connection with
    ``CLIENT TRACKING ON BCAST PREFIX {prefix}:v: PREFIX {prefix}:t:``; every
    write to those keys, by anyone, evicts the L1 entry. While that connection
    is down L1 is flushed and bypassed (it may have missed invalidations).
    A read racing an invalidation never stores stale data: each L2 read
    registers a token that an invalidation or a flush revokes, and the L1
    store happens only if the token survived.

    Lifetime: ``close()`` (or leaving ``with``) stops the thread and its
    connection; a cache that is never closed stops them when it is garbage
    collected (the thread does not keep the cache alive). A closed cache
    raises :class:`~fastredis.exceptions.ClosedError`.

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

    def _open(self) -> None:
        self._flights: Dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stop: Optional[threading.Event] = None
        self._link = _Link()
        if self._l1_enabled:
            self._start_tracking(wait=2.0)

    # ------------------------------------------------------------------ read
    def get(self, key: CacheKey, default: Any = None) -> Any:
        e = self._l1.get(key)  # type: ignore[arg-type]
        if e is not None and e[1] > _monotonic() and (e[2] is None or self._state.stamps_ok(e[2])):
            return e[0]
        steps = self.plan_get(key, default)
        self._ensure_tracking()
        return run(self.client, steps)

    def get_many(self, keys: Iterable[CacheKey]) -> Dict[CacheKey, Any]:
        steps = self.plan_get_many(keys)
        self._ensure_tracking()
        return run(self.client, steps)

    def set(self, key: CacheKey, value: Any, ttl: Optional[float] = None, tags: Iterable[KeyPart] = ()) -> None:
        return run(self.client, self.plan_set(key, value, ttl, tags))

    def set_many(self, mapping: Mapping[CacheKey, Any], ttl: Optional[float] = None, tags: Iterable[KeyPart] = ()) -> None:
        return run(self.client, self.plan_set_many(mapping, ttl, tags))

    def delete(self, *keys: CacheKey) -> int:
        return run(self.client, self.plan_delete(*keys))

    def set_through(self, key: CacheKey, value: Any, writer: Callable[[Any], Any], invalidate: Iterable[CacheKey] = (),
                    *, ttl: Optional[float] = None, tags: Iterable[KeyPart] = ()) -> Any:
        return run(self.client, self.plan_set_through(key, value, writer, invalidate, ttl=ttl, tags=tags))

    def invalidate_tags(self, *tags: KeyPart) -> None:
        return run(self.client, self.plan_invalidate_tags(*tags))

    def warm(self, mapping_or_keys: Union[Mapping[CacheKey, Any], Iterable[CacheKey]],
             loader: Optional[Callable[[CacheKey], Any]] = None, ttl: Optional[float] = None) -> int:
        return run(self.client, self.plan_warm(mapping_or_keys, loader, ttl))

    for _op in (get, get_many, set, set_many, delete, set_through, invalidate_tags, warm):
        _op.__doc__ = getattr(_CachePlans, "plan_" + _op.__name__).__doc__  # the plans document them
    del _op

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
        hit = self._state.lookup(key)  # type: ignore[arg-type]
        if hit is not MISSING:
            return hit  # type: ignore[no-any-return]
        tag_list = self._load_args(loader, ttl, tags, negative_ttl)
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
            return flight.value  # type: ignore[no-any-return]
        try:
            flight.value = run(self.client, self._load_steps(ck, loader, ttl, tag_list, negative_ttl))
            return flight.value  # type: ignore[no-any-return]
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                self._flights.pop(ck, None)
            flight.done.set()

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
        tag_list = _tag_list(tags)

        def decorate(func: Callable[..., T]) -> Callable[..., T]:
            make_key = cache_key_maker(func, key)

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> T:
                return self.get_or_set(make_key(args, kwargs), lambda: func(*args, **kwargs), ttl, tags=tag_list)

            def invalidate(*args: Any, **kwargs: Any) -> int:
                return self.delete(make_key(args, kwargs))

            wrapper.invalidate = invalidate  # type: ignore[attr-defined]
            return wrapper

        return decorate

    # ---------------------------------------------------------------- tracking
    def _ensure_tracking(self) -> None:
        if self._pid != os.getpid():  # a fork we missed (no register_at_fork)
            self._after_fork_in_child()
        if self._thread is None and self._l1_enabled and not self._closed:
            self._start_tracking(wait=0)

    def _start_tracking(self, wait: float) -> None:
        with self._flights_lock:
            if self._thread is not None:
                return
            self._thread, self._stop = owner_thread(self, _track, self.client, self._state, self.prefix, self._link,
                                                    name=f"fastredis-cache-tracking-{self.prefix}")
            t = self._thread
        deadline = _monotonic() + wait
        while not self._state.healthy and _monotonic() < deadline and t.is_alive():
            time.sleep(0.005)

    def _after_fork_in_child(self) -> None:
        """In a forked child: forget the parent's thread and socket; start afresh on demand."""
        self._pid = os.getpid()
        self._flights_lock = threading.Lock()
        self._flights = {}
        self._state.after_fork()
        self._thread = None  # the parent's thread and socket: never used, never shut down here
        self._stop = None
        self._link = _Link()

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
        ``default``; never a round trip (in an event loop: fall back to a
        thread on a miss).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); cache = TieredCache(server.client())
            >>> cache.set("k", 1); cache.get_local("k", "not in L1")
            'not in L1'
            >>> cache.apply_invalidations()   # our own write's echo, before reading into L1
            >>> cache.get("k"), cache.get_local("k")
            (1, 1)
            >>> cache.close(); server.stop()
        """
        value = self._state.lookup(_canonical(key))
        return default if value is MISSING else value

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
        cks = [_canonical(k) for k in keys]
        self._state.forget(cks, [self._vkey(ck) for ck in cks])

    def apply_invalidations(self) -> None:
        """Apply now the invalidations that already reached this process.

        The tracking thread applies them within moments (or, while this
        process keeps the GIL busy, some milliseconds later). Call this
        before an L1 read that must see every write acknowledged before it,
        in any process: Redis sends a write's invalidation to every tracking
        connection before it answers the writer, so after this call no write
        acknowledged earlier is missed. Costs one ``epoll_wait(2)`` when
        nothing is pending.

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
        link = self._link
        ready = link.ready
        if ready is None:
            return
        try:
            if not ready() and not link.lock.locked():
                return
        except (OSError, ValueError):  # closed by a reconnect: the new connection starts with an empty L1
            return
        with link.lock:
            if link.conn is None:
                return
            try:
                link.drain()
            except Exception:  # the tracking thread reconnects; until then L1 is bypassed
                self._state.down()

    # -------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop the tracking thread and drop L1; later use raises ClosedError. Safe to call twice."""
        self._closed = True
        if self._stop is not None:
            self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)
        self._thread = None
        self._state.down()
        FORKS.discard(self)

    def __enter__(self) -> "TieredCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
