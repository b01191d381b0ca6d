"""A Django cache backend on :class:`~fastredis.TieredCache`: an in-process L1
in front of Redis, kept coherent across processes by Redis client tracking.

Settings::

    CACHES = {
        "default": {
            "BACKEND": "fastredis.contrib.django.TieredCacheBackend",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "TIMEOUT": 300,                    # Django's default timeout, as usual
            "KEY_PREFIX": "site",              # and VERSION, KEY_FUNCTION: as usual
            "OPTIONS": {
                "prefix": "django",            # Redis key prefix: keys are {django}:v:<key>
                "local_ttl": 300,              # seconds an entry may live in L1
                "local_maxsize": 10_000,       # entries in L1 per process (0: no L1)
                "coherence": "strict",         # or "relaxed" (see below)
                "socket_timeout": 5,           # anything else goes to fastredis.Redis.from_url
            },
        }
    }

Behaviour is Django's (the backend passes Django's own cache test suite, see
``tests/test_contrib_django.py``): ``get``/``set``/``add``/``delete``/``touch``/
``has_key``/``get_many``/``set_many``/``delete_many``/``incr``/``decr``/
``get_or_set``/``clear``, ``timeout=None`` (forever), ``timeout=0`` (expires at
once, as a negative timeout), fractional timeouts (kept to the millisecond),
``version``, ``KEY_PREFIX``/``KEY_FUNCTION``, the memcached key warnings, and
the ``a*`` methods. Values are pickled as Django's own Redis backend does
(integers are stored as decimal text, so ``incr`` is Redis's atomic INCRBY),
or go through ``OPTIONS["serializer"]``.

What is different, on purpose:

- **L1.** A ``get`` of a key this process read recently is answered from
  memory, without a round trip. A mutable value (a list, a model instance)
  is unpickled afresh for every ``get``, as with Django's backends, so
  callers never share an object; immutable values (str, bytes, numbers,
  dates, tuples of those) are shared.
- **Coherence.** Every write, from any process or any Redis client,
  invalidates the entry in every process's L1 (``CLIENT TRACKING ... BCAST``).
  With ``coherence="strict"`` (the default) a ``get`` first applies the
  invalidations already received (one ``poll(2)``), and since Redis sends
  them before it answers the writer, a write acknowledged in one process is
  seen by the next ``get`` in any other. ``"relaxed"`` skips that check:
  reads may lag a write by the time the tracking thread takes to run.
  While the tracking connection is down, L1 is bypassed.
- **Stampedes.** ``get_or_set(key, callable, timeout)`` runs ``callable``
  once across threads and processes (single-flight, a Redis lease, early
  refresh of hot keys: :meth:`TieredCache.get_or_set <fastredis.TieredCache.get_or_set>`).
- **Atomic incr.** ``incr``/``decr`` are one script (Django's Redis backend
  checks and increments in two steps).
- ``clear()`` deletes this cache's keys (``{prefix}:*``, by SCAN), not the
  whole database; caches sharing ``OPTIONS["prefix"]`` share ``clear()``.
- One client and one L1 per process for each ``LOCATION`` + ``OPTIONS``, shared
  by every thread (Django makes a backend object per thread) and by every
  alias with the same settings; ``close()`` keeps them (as Django's Redis
  backend keeps its pool).
- ``OPTIONS["cluster"] = True``: a Redis Cluster (``fastredis.RedisCluster``);
  the cache then runs without L1 (every ``get`` is a round trip).

The ``a*`` methods answer an L1 hit on the event loop; everything else runs
the sync code in a worker thread (any thread: the client is thread-safe).
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import functools
import math
import pickle
import threading
import uuid
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..keys import validate_prefix
from ..patterns.cache import TieredCache
from ..scripts import LuaScript, pipeline_for, run_pipeline

__all__ = ["TieredCacheBackend", "DjangoSerializer", "close_shared"]

try:
    from asgiref.sync import sync_to_async
    from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache, memcache_key_warnings
    from django.core.exceptions import ImproperlyConfigured
except ImportError:  # pragma: no cover - Django is the django extra
    BaseCache = None  # type: ignore[assignment,misc]

_INCR = LuaScript.load("cache_incr")
_PERSIST = LuaScript.load("cache_persist")
_MISSING: Any = object()
_ENVELOPE = b"FRC1 "
_BARE_ENVELOPE = b"FRC1 0.0 0\n"


# -- values ---------------------------------------------------------------------

class _Fresh:
    """A mutable value in L1, kept serialized: each ``get`` decodes its own copy."""

    __slots__ = ("data", "loads")

    def __init__(self, data: bytes, loads: Any = pickle.loads) -> None:
        self.data = data
        self.loads = loads


def _immutable_types() -> frozenset:
    types: List[type] = [str, bytes, int, float, bool, type(None), complex, decimal.Decimal, fractions.Fraction,
                         datetime.date, datetime.datetime, datetime.time, datetime.timedelta, uuid.UUID, range]
    try:
        from django.utils.safestring import SafeString

        types.append(SafeString)
    except ImportError:  # pragma: no cover
        pass
    return frozenset(types)


_IMMUTABLE = _immutable_types()


def _is_immutable(value: Any, depth: int = 0) -> bool:
    t = type(value)
    if t in _IMMUTABLE:
        return True
    if (t is tuple or t is frozenset) and depth < 3 and len(value) <= 64:
        return all(_is_immutable(v, depth + 1) for v in value)
    return False


class DjangoSerializer:
    """Django's Redis value format: ``int`` as decimal text (so INCRBY works on
    it), everything else pickled. ``loads`` keeps mutable values pickled (a
    fresh copy per ``get``), see the module docstring.

    Example::

        >>> s = DjangoSerializer()
        >>> s.dumps(42), s.loads(b"42")
        (b'42', 42)
        >>> s.loads(s.dumps(("a", 1))), type(s.loads(s.dumps([1]))).__name__
        (('a', 1), '_Fresh')
    """

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, value: Any) -> bytes:
        if type(value) is int:
            return b"%d" % value
        return pickle.dumps(value, self.protocol)

    def loads(self, data: bytes) -> Any:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if data[:1].isdigit() or data[:1] == b"-":
            try:
                return int(data)
            except ValueError:
                pass
        value = pickle.loads(data)
        return value if _is_immutable(value) else _Fresh(bytes(data))


def _unwrap(value: Any) -> Any:
    return value.loads(value.data) if type(value) is _Fresh else value


class _UserSerializer:
    """A user's ``OPTIONS["serializer"]`` (dumps/loads); its values are never shared."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def dumps(self, value: Any) -> bytes:
        return self.inner.dumps(value)  # type: ignore[no-any-return]

    def loads(self, data: bytes) -> Any:
        value = self.inner.loads(data)
        return value if _is_immutable(value) else _Fresh(bytes(data), self.inner.loads)


# -- shared clients and L1s -----------------------------------------------------------

_SHARED: Dict[str, Tuple[Any, TieredCache, Any]] = {}
_SHARED_LOCK = threading.Lock()
_OUR_OPTIONS = ("prefix", "local_ttl", "local_maxsize", "lease_ttl", "coherence", "serializer", "cluster", "pickle_protocol")


def _shared(location: str, options: Dict[str, Any]) -> Tuple[Any, TieredCache, Any]:
    ident = repr((location, sorted((k, repr(v)) for k, v in options.items())))
    with _SHARED_LOCK:
        found = _SHARED.get(ident)
        if found is not None:
            return found
        opts = dict(options)
        ours = {k: opts.pop(k) for k in _OUR_OPTIONS if k in opts}
        serializer = ours.get("serializer")
        if serializer is None:
            ser: Any = DjangoSerializer(int(ours.get("pickle_protocol", pickle.HIGHEST_PROTOCOL)))
        else:
            if serializer == "json":
                from ..serializers import JsonSerializer

                serializer = JsonSerializer()
            elif serializer == "pickle":
                serializer = pickle
            elif isinstance(serializer, str):
                from django.utils.module_loading import import_string

                serializer = import_string(serializer)
            if isinstance(serializer, type):
                serializer = serializer()
            if not (callable(getattr(serializer, "dumps", None)) and callable(getattr(serializer, "loads", None))):
                raise ImproperlyConfigured("OPTIONS['serializer'] needs dumps(obj) -> bytes and loads(bytes) -> obj")
            ser = _UserSerializer(serializer)
        if ours.get("cluster"):
            from ..cluster import RedisCluster

            client: Any = RedisCluster.from_url(location, **opts)
        else:
            from ..client import Redis

            client = Redis.from_url(location, **opts)
        cache = TieredCache(
            client,
            prefix=str(ours.get("prefix", "django")),
            ttl=300,
            local_ttl=float(ours.get("local_ttl", 300)),
            local_maxsize=int(ours.get("local_maxsize", 10_000)),
            lease_ttl=float(ours.get("lease_ttl", 10.0)),
            serializer=ser,
        )
        cache.metrics_name = f"django:{cache.prefix}"  # type: ignore[attr-defined]
        entry = (client, cache, ser)
        _SHARED[ident] = entry
        return entry


def close_shared() -> None:
    """Close every client and L1 the backend made in this process (tests, shutdown).

    A backend used after this makes new ones.

    Example::

        >>> close_shared()
    """
    with _SHARED_LOCK:
        entries = list(_SHARED.values())
        _SHARED.clear()
    for client, cache, _ in entries:
        cache.close()
        try:
            client.close()
        except Exception:
            pass


def _milliseconds(timeout: Optional[float]) -> Optional[int]:
    """Django timeout (seconds, None = forever, <= 0 = expired) -> PX milliseconds."""
    if timeout is None:
        return None
    if timeout <= 0:
        return 0
    return max(1, int(math.ceil(timeout * 1000)))


if BaseCache is not None:

    class TieredCacheBackend(BaseCache):  # type: ignore[misc,valid-type]
        """Django cache backend: ``TieredCache`` L1 over Redis (see the module docstring).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> cache = TieredCacheBackend(server.url, {"KEY_PREFIX": "site", "OPTIONS": {"prefix": "doc"}})
            >>> cache.set("greeting", "hello", timeout=60)
            >>> cache.get("greeting"), cache.get("greeting")     # the second from L1
            ('hello', 'hello')
            >>> cache.add("greeting", "other"), cache.incr("visits", 1) if cache.add("visits", 0) else None
            (False, 1)
            >>> cache.get_or_set("answer", lambda: 42, timeout=None)
            42
            >>> close_shared(); server.stop()
        """

        def __init__(self, server: Any, params: Dict[str, Any]) -> None:
            super().__init__(params)
            if isinstance(server, (list, tuple)):
                if len(server) != 1:
                    raise ImproperlyConfigured(
                        "TieredCacheBackend takes one LOCATION (a redis:// URL); for several nodes use a "
                        "Redis Cluster URL with OPTIONS['cluster'] = True"
                    )
                server = server[0]
            if not isinstance(server, str) or "://" not in server:
                raise ImproperlyConfigured(f"TieredCacheBackend LOCATION must be a redis:// URL, got {server!r}")
            options = dict(params.get("OPTIONS") or {})
            for k in ("MAX_ENTRIES", "CULL_FREQUENCY"):  # Django's cull options do not apply to Redis
                options.pop(k, None)
            coherence = options.get("coherence", "strict")
            if coherence not in ("strict", "relaxed"):
                raise ImproperlyConfigured(f"OPTIONS['coherence'] must be 'strict' or 'relaxed', got {coherence!r}")
            self._strict = coherence == "strict"
            self._location = server
            self._options = options
            self._client, self._tiered, self._serializer = _shared(server, options)

        # -- keys: Django's rules, with the made key of a plain str key remembered
        @property
        def key_func(self) -> Any:
            return self._key_func

        @key_func.setter
        def key_func(self, func: Any) -> None:
            self._key_func = func
            self._memo: Dict[str, str] = {}

        @property
        def key_prefix(self) -> Any:
            return self._key_prefix

        @key_prefix.setter
        def key_prefix(self, prefix: Any) -> None:
            self._key_prefix = prefix
            self._memo = {}

        @property
        def version(self) -> Any:
            return self._version

        @version.setter
        def version(self, version: Any) -> None:
            self._version = version
            self._memo = {}

        def _key(self, key: Any, version: Any) -> str:
            if version is None and type(key) is str:
                made = self._memo.get(key)
                if made is not None:
                    return made
                made = self.make_and_validate_key(key)
                memo = self._memo
                if (
                    type(self).validate_key is BaseCache.validate_key
                    and type(self).make_key is BaseCache.make_key
                    and not any(True for _ in memcache_key_warnings(made))
                ):
                    if len(memo) >= 65536:
                        memo.clear()
                    memo[key] = made
                return made
            return self.make_and_validate_key(key, version=version)  # type: ignore[no-any-return]

        def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> Optional[float]:
            """Seconds from now (None: forever; 0: expired), as Django's Redis backend (without truncating)."""
            if timeout is DEFAULT_TIMEOUT:
                timeout = self.default_timeout
            return None if timeout is None else max(0, timeout)

        def _payload(self, value: Any) -> bytes:
            data = self._serializer.dumps(value)
            if data[:5] == _ENVELOPE:  # a user serializer's bytes that would read as an envelope
                data = _BARE_ENVELOPE + data
            return data  # type: ignore[no-any-return]

        # -- reads
        def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
            made = self._key(key, version)
            if self._strict:
                self._tiered.apply_invalidations()
            value = self._tiered.get(made, _MISSING)
            if value is _MISSING:
                return default
            return value.loads(value.data) if type(value) is _Fresh else value

        def get_many(self, keys: Iterable[Any], version: Any = None) -> Dict[Any, Any]:
            made: Dict[Any, Any] = {self._key(k, version): k for k in keys}
            if not made:
                return {}
            if self._strict:
                self._tiered.apply_invalidations()
            got = self._tiered.get_many(list(made))
            return {made[k]: _unwrap(v) for k, v in got.items()}

        def has_key(self, key: Any, version: Any = None) -> bool:
            made = self._key(key, version)
            return bool(self._client.exists(self._tiered.redis_key(made)))

        # -- writes
        def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> None:
            made = self._key(key, version)
            payload = self._payload(value)
            ms = _milliseconds(self.get_backend_timeout(timeout))
            rkey = self._tiered.redis_key(made)
            try:
                if ms is None:
                    self._client.set(rkey, payload)
                elif ms == 0:
                    self._client.delete(rkey)
                else:
                    self._client.set(rkey, payload, px=ms)
            finally:
                self._tiered.forget_local(made)

        def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
            made = self._key(key, version)
            payload = self._payload(value)
            ms = _milliseconds(self.get_backend_timeout(timeout))
            rkey = self._tiered.redis_key(made)
            if ms == 0:  # Django: added and expired at once, if it was absent
                return not self._client.exists(rkey)
            try:
                return bool(self._client.set(rkey, payload, nx=True, px=ms))
            finally:
                self._tiered.forget_local(made)

        def set_many(self, data: Dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> List[Any]:
            if not data:
                return []
            ms = _milliseconds(self.get_backend_timeout(timeout))
            items = [(self._key(k, version), self._payload(v)) for k, v in data.items()]
            pipe = pipeline_for(self._client)
            for made, payload in items:
                rkey = self._tiered.redis_key(made)
                if ms is None:
                    pipe.set(rkey, payload)
                elif ms == 0:
                    pipe.delete(rkey)
                else:
                    pipe.set(rkey, payload, px=ms)
            try:
                run_pipeline(pipe)
            finally:
                self._tiered.forget_local(*[made for made, _ in items])
            return []

        def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
            made = self._key(key, version)
            ms = _milliseconds(self.get_backend_timeout(timeout))
            rkey = self._tiered.redis_key(made)
            try:
                if ms is None:
                    return bool(_PERSIST(self._client, [rkey]))
                return bool(self._client.pexpire(rkey, ms))  # 0: deleted now
            finally:
                self._tiered.forget_local(made)

        def delete(self, key: Any, version: Any = None) -> bool:
            made = self._key(key, version)
            try:
                return bool(self._client.delete(self._tiered.redis_key(made)))
            finally:
                self._tiered.forget_local(made)

        def delete_many(self, keys: Iterable[Any], version: Any = None) -> None:
            made = [self._key(k, version) for k in keys]
            if not made:
                return
            try:
                self._client.delete(*[self._tiered.redis_key(m) for m in made])
            finally:
                self._tiered.forget_local(*made)

        def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
            made = self._key(key, version)
            try:
                value = _INCR(self._client, [self._tiered.redis_key(made)], [int(delta)])
            finally:
                self._tiered.forget_local(made)
            if value is None:
                raise ValueError("Key '%s' not found." % key)
            return int(value)

        def get_or_set(self, key: Any, default: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
            ms = _milliseconds(self.get_backend_timeout(timeout))
            if not callable(default) or ms is None or ms == 0:
                return super().get_or_set(key, default, timeout=timeout, version=version)
            made = self._key(key, version)
            if self._strict:
                self._tiered.apply_invalidations()
            value = self._tiered.get_or_set(made, default, ms / 1000.0)
            if type(value) is _Fresh:
                return value.loads(value.data)
            if _is_immutable(value):
                return value
            # the loader's own object, maybe shared with other threads of this
            # process that waited for the same load: give each caller a copy
            return _unwrap(self._serializer.loads(self._serializer.dumps(value)))

        def clear(self) -> None:
            """Delete every key of this cache's Redis prefix (not the whole database)."""
            pattern = "{" + validate_prefix(self._tiered.prefix) + "}:*"  # every key of this TieredCache
            batch: List[Any] = []
            for k in self._client.scan_iter(match=pattern, count=1000):
                batch.append(k)
                if len(batch) >= 500:
                    self._client.unlink(*batch)
                    batch = []
            if batch:
                self._client.unlink(*batch)
            self._tiered.clear_local()

        def close(self, **kwargs: Any) -> None:
            """Nothing to do: the client and L1 are shared and kept (see :func:`close_shared`)."""

        # -- asyncio: L1 hits on the loop, the rest in a worker thread
        async def aget(self, key: Any, default: Any = None, version: Any = None) -> Any:
            made = self._key(key, version)
            if self._strict:
                self._tiered.apply_invalidations()
            value = self._tiered.get_local(made, _MISSING)
            if value is not _MISSING:
                return value.loads(value.data) if type(value) is _Fresh else value
            return await _thread(self.get, key, default, version)

        async def aget_many(self, keys: Iterable[Any], version: Any = None) -> Dict[Any, Any]:
            return await _thread(self.get_many, list(keys), version)  # type: ignore[no-any-return]

        async def ahas_key(self, key: Any, version: Any = None) -> bool:
            return await _thread(self.has_key, key, version)  # type: ignore[no-any-return]

        async def aset(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> None:
            await _thread(self.set, key, value, timeout, version)

        async def aadd(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
            return await _thread(self.add, key, value, timeout, version)  # type: ignore[no-any-return]

        async def aset_many(self, data: Dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> List[Any]:
            return await _thread(self.set_many, data, timeout, version)  # type: ignore[no-any-return]

        async def atouch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
            return await _thread(self.touch, key, timeout, version)  # type: ignore[no-any-return]

        async def adelete(self, key: Any, version: Any = None) -> bool:
            return await _thread(self.delete, key, version)  # type: ignore[no-any-return]

        async def adelete_many(self, keys: Iterable[Any], version: Any = None) -> None:
            await _thread(self.delete_many, list(keys), version)

        async def aincr(self, key: Any, delta: int = 1, version: Any = None) -> int:
            return await _thread(self.incr, key, delta, version)  # type: ignore[no-any-return]

        async def aget_or_set(self, key: Any, default: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
            value = await self.aget(key, _MISSING, version)
            if value is not _MISSING:
                return value
            return await _thread(self.get_or_set, key, default, timeout, version)

        async def aclear(self) -> None:
            await _thread(self.clear)

        async def aclose(self, **kwargs: Any) -> None:
            self.close(**kwargs)

        def __repr__(self) -> str:
            return f"<TieredCacheBackend {self._location!r} prefix={self._tiered.prefix!r} strict={self._strict}>"

    async def _thread(func: Any, *args: Any) -> Any:
        return await sync_to_async(functools.partial(func, *args), thread_sensitive=False)()

else:  # pragma: no cover - without Django

    class TieredCacheBackend:  # type: ignore[no-redef]
        """Needs Django: ``pip install fastredis[django]``."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ImportError("fastredis.contrib.django needs Django: pip install 'fastredis[django]'")
