"""Metrics for every pattern: OpenTelemetry when you turn it on, a plain
callback hook otherwise, and nothing at all (not even a check on the L1 hit
path) while neither is configured.

Turn metrics on with :func:`enable_opentelemetry` (the OpenTelemetry metrics
API must be installed: ``pip install fastredis[otel]``; instruments come from
the global ``MeterProvider`` unless you pass one) and/or :func:`set_hook`
(any callable ``hook(name, value, attributes)``). :func:`disable` turns both
off. :func:`recording` collects events in a list, for tests.

=============================== ========= ======= ==========================================
name                            kind      unit    attributes
=============================== ========= ======= ==========================================
fastredis.ratelimit.decisions   counter   1       fastredis.limiter, fastredis.decision
                                                  (``allowed`` / ``denied``)
fastredis.cache.lookups         counter   1       fastredis.cache, fastredis.result
                                                  (``l1_hit`` / ``l2_hit`` / ``miss``)
fastredis.cache.loads           counter   1       fastredis.cache, fastredis.outcome
                                                  (``ok`` / ``error``)
fastredis.cache.load.duration   histogram s       fastredis.cache, fastredis.outcome
fastredis.lock.acquire.duration histogram s       fastredis.lock, fastredis.acquired (bool)
fastredis.lock.losses           counter   1       fastredis.lock
fastredis.stream.deliveries     counter   1       fastredis.stream, fastredis.group
fastredis.stream.dead_letters   counter   1       fastredis.stream, fastredis.group
fastredis.pubsub.reconnects     counter   1       fastredis.channel
=============================== ========= ======= ==========================================

Under OpenTelemetry ``fastredis.cache.lookups`` is an observable counter:
lookups (one per L1 hit) are summed in-process and read when the SDK collects.

The ``fastredis.limiter`` / ``fastredis.cache`` / ``fastredis.lock`` ...
attribute names the instance: its ``metrics_name`` attribute when you set
one (``limiter.metrics_name = "login"``), else its class and key prefix.

A lock's ``losses`` are locks found lost while held: a renewal, extension or
release that finds the lock no longer ours. An acquire that gives up is
recorded in ``fastredis.lock.acquire.duration`` with ``acquired=False``.

Cost: while off, the patterns run exactly the code they run without this
module, except one module-attribute test (``metrics.ON``) on paths that do a
round trip anyway. The L1 cache hit path is swapped for a counting one only
while metrics are on (see ``benchmarks/bench_metrics.py``).

Example::

    >>> from fastredis import metrics
    >>> from fastredis.server import RedisServer
    >>> import fastredis
    >>> server = RedisServer(); r = server.client()
    >>> limiter = fastredis.FixedWindowLimiter(r, limit=1, window=60)
    >>> limiter.metrics_name = "login"
    >>> with metrics.recording() as events:
    ...     _ = limiter.hit("ada"); _ = limiter.hit("ada")
    >>> [(e.name, e.value, e.attributes["fastredis.decision"]) for e in events]
    [('fastredis.ratelimit.decisions', 1, 'allowed'), ('fastredis.ratelimit.decisions', 1, 'denied')]
    >>> metrics.ON
    False
    >>> server.stop()
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Tuple

__all__ = [
    "ON",
    "Hook",
    "Event",
    "set_hook",
    "enable_opentelemetry",
    "disable",
    "recording",
    "name_of",
    "METRICS",
]

log = logging.getLogger(__name__)

#: True while any sink (hook or OpenTelemetry) is configured. Patterns test
#: it before building an event, so a disabled run builds nothing.
ON = False

#: ``hook(name, value, attributes)``; ``value`` is a count or seconds.
Hook = Callable[[str, float, Mapping[str, Any]], None]

#: name -> (kind, unit, description) of every metric fastredis records.
METRICS: Dict[str, Tuple[str, str, str]] = {
    "fastredis.ratelimit.decisions": ("counter", "1", "Rate-limit decisions, allowed or denied"),
    "fastredis.cache.lookups": ("counter", "1", "TieredCache lookups by where they were answered"),
    "fastredis.cache.loads": ("counter", "1", "TieredCache loader runs"),
    "fastredis.cache.load.duration": ("histogram", "s", "TieredCache loader run time"),
    "fastredis.lock.acquire.duration": ("histogram", "s", "Time spent acquiring a lock, acquired or not"),
    "fastredis.lock.losses": ("counter", "1", "Locks found lost while held"),
    "fastredis.stream.deliveries": ("counter", "1", "Stream entries delivered to consumers"),
    "fastredis.stream.dead_letters": ("counter", "1", "Stream entries moved to the dead-letter stream"),
    "fastredis.pubsub.reconnects": ("counter", "1", "Pub/sub subscriptions re-established after a lost connection"),
}


class Event(NamedTuple):
    """One recorded measurement, as :func:`recording` collects it.

    Example::

        >>> Event("fastredis.lock.losses", 1, {"fastredis.lock": "Lock:jobs"}).value
        1
    """

    name: str
    value: float
    attributes: Mapping[str, Any]


# -- sinks ---------------------------------------------------------------------
_hooks: List[Hook] = []
_otel: Optional["_OTel"] = None
_state_lock = threading.Lock()
_hook_errors = {"last_logged": 0.0}


class _OTel:
    """The OpenTelemetry instruments, made once from one meter.

    Cache lookups (one per L1 hit: the hottest event) are summed in-process
    and read by an observable counter when the SDK collects, so an L1 hit
    costs a dict update, not an SDK call."""

    def __init__(self, meter_provider: Any) -> None:
        from opentelemetry import metrics as otel_metrics

        from . import __version__

        provider = meter_provider if meter_provider is not None else otel_metrics.get_meter_provider()
        meter = provider.get_meter("fastredis", __version__)
        self.instruments: Dict[str, Any] = {}
        self.lookups: Dict[Tuple[str, str], int] = {}
        self.lookups_lock = threading.Lock()
        for name, (kind, unit, description) in METRICS.items():
            if name == "fastredis.cache.lookups":
                meter.create_observable_counter(name, callbacks=[self._observe_lookups], unit=unit, description=description)
                continue
            make = meter.create_counter if kind == "counter" else meter.create_histogram
            self.instruments[name] = make(name, unit=unit, description=description)

    def emit(self, name: str, value: float, attributes: Mapping[str, Any]) -> None:
        instrument = self.instruments[name]
        if METRICS[name][0] == "counter":
            instrument.add(value, attributes)
        else:
            instrument.record(value, attributes)

    def count_lookups(self, cache: str, result: str, count: int) -> None:
        key = (cache, result)
        with self.lookups_lock:
            self.lookups[key] = self.lookups.get(key, 0) + count

    def _observe_lookups(self, options: Any) -> Iterator[Any]:
        from opentelemetry.metrics import Observation

        with self.lookups_lock:
            totals = list(self.lookups.items())
        for (cache, result), total in totals:
            yield Observation(total, {"fastredis.cache": cache, "fastredis.result": result})


def _refresh() -> None:
    global ON
    on = bool(_hooks) or _otel is not None
    if on != ON:
        _swap_hot_paths(on)
    ON = on


def set_hook(hook: Optional[Hook]) -> None:
    """Send every measurement to ``hook(name, value, attributes)`` (None removes it).

    A hook that raises is logged (at most once a minute) and never breaks the
    pattern operation that produced the measurement. Hooks run on the thread
    (or event loop) of the operation: keep them fast.

    Example::

        >>> from fastredis import metrics
        >>> seen = []
        >>> metrics.set_hook(lambda name, value, attrs: seen.append(name))
        >>> metrics.ON
        True
        >>> metrics.set_hook(None); metrics.ON
        False
    """
    with _state_lock:
        _hooks.clear()
        if hook is not None:
            if not callable(hook):
                raise TypeError(f"hook must be callable(name, value, attributes), got {type(hook).__name__}")
            _hooks.append(hook)
        _refresh()


def enable_opentelemetry(meter_provider: Any = None) -> None:
    """Record every measurement through the OpenTelemetry metrics API.

    Instruments come from ``meter_provider`` or, by default, the global one
    (``opentelemetry.metrics.set_meter_provider``), under the meter name
    ``fastredis``. Raises ``ImportError`` naming the package to install when
    the API is missing.

    Example::

        >>> try:
        ...     from opentelemetry.sdk.metrics import MeterProvider
        ...     from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        ... except ImportError:                       # the otel extra is not installed
        ...     print(["fastredis.lock.losses"])
        ... else:
        ...     reader = InMemoryMetricReader()
        ...     enable_opentelemetry(MeterProvider(metric_readers=[reader]))
        ...     _emit("fastredis.lock.losses", 1, {"fastredis.lock": "demo"})
        ...     data = reader.get_metrics_data()
        ...     disable()
        ...     print([m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics])
        ['fastredis.lock.losses']
    """
    global _otel
    try:
        otel = _OTel(meter_provider)
    except ImportError:
        raise ImportError(
            "fastredis.metrics.enable_opentelemetry needs the OpenTelemetry metrics API: "
            "pip install 'fastredis[otel]' (or opentelemetry-api opentelemetry-sdk)"
        ) from None
    with _state_lock:
        _otel = otel
        _refresh()


def disable() -> None:
    """Turn every sink off: patterns go back to recording nothing.

    Example::

        >>> from fastredis import metrics
        >>> metrics.set_hook(print); metrics.disable(); metrics.ON
        False
    """
    global _otel
    with _state_lock:
        _hooks.clear()
        _otel = None
        _refresh()


@contextlib.contextmanager
def recording() -> Iterator[List[Event]]:
    """Collect every measurement made inside the block (any thread) in a list.

    Replaces the hook for the duration, then puts the previous one back.

    Example::

        >>> with recording() as events:
        ...     _emit("fastredis.pubsub.reconnects", 1, {"fastredis.channel": "news"})
        >>> events[0].name
        'fastredis.pubsub.reconnects'
    """
    events: List[Event] = []
    lock = threading.Lock()

    def hook(name: str, value: float, attributes: Mapping[str, Any]) -> None:
        with lock:
            events.append(Event(name, value, dict(attributes)))

    with _state_lock:
        previous = list(_hooks)
        _hooks[:] = [hook]
        _refresh()
    try:
        yield events
    finally:
        with _state_lock:
            _hooks[:] = previous
            _refresh()


def name_of(obj: Any) -> str:
    """The name a pattern instance carries in its metrics' attributes.

    ``obj.metrics_name`` if set, else its Redis key (locks, streams), else
    ``<class>:<prefix>``.

    Example::

        >>> class Thing: prefix = "jobs"
        >>> name_of(Thing())
        'Thing:jobs'
    """
    name = getattr(obj, "metrics_name", None)
    if name:
        return str(name)
    key = getattr(obj, "key", None)
    if isinstance(key, str):
        return key
    prefix = getattr(obj, "prefix", None)
    if prefix is None:
        ks = getattr(obj, "_ks", None)
        prefix = getattr(ks, "prefix", None)
    if prefix is None:
        parts = getattr(obj, "limiters", None) or getattr(obj, "_parts", None)
        if parts and parts[0] is not obj:
            return type(obj).__name__ + "(" + ",".join(name_of(p) for p in parts) + ")"
    cls = type(obj).__name__
    return f"{cls}:{prefix}" if prefix is not None else cls


def _emit(name: str, value: float, attributes: Mapping[str, Any]) -> None:
    otel = _otel
    if otel is not None:
        try:
            otel.emit(name, value, attributes)
        except Exception:  # an exporter problem must not break a pattern operation
            _log_hook_error(name)
    if _hooks:
        _emit_hooks(name, value, attributes)


def _emit_hooks(name: str, value: float, attributes: Mapping[str, Any]) -> None:
    for hook in list(_hooks):
        try:
            hook(name, value, attributes)
        except Exception:
            _log_hook_error(name)


def _log_hook_error(name: str) -> None:
    now = time.monotonic()
    if now - _hook_errors["last_logged"] >= 60.0:
        _hook_errors["last_logged"] = now
        log.warning("fastredis.metrics: a metrics sink raised while recording %s (ignored)", name, exc_info=True)


# -- events: called by the patterns only while ON --------------------------------

def limiter_decisions(limiter: Any, decisions: Iterable[Any]) -> None:
    """Count allowed and denied decisions of ``limiter``."""
    name = name_of(limiter)
    allowed = denied = 0
    for d in decisions:
        if d.allowed:
            allowed += 1
        else:
            denied += 1
    if allowed:
        _emit("fastredis.ratelimit.decisions", allowed, {"fastredis.limiter": name, "fastredis.decision": "allowed"})
    if denied:
        _emit("fastredis.ratelimit.decisions", denied, {"fastredis.limiter": name, "fastredis.decision": "denied"})


def cache_lookups(cache: Any, result: str, count: int = 1) -> None:
    """Count ``count`` lookups answered as ``result`` (l1_hit, l2_hit or miss)."""
    if not count:
        return
    name = name_of(cache)
    otel = _otel
    if otel is not None:
        otel.count_lookups(name, result, count)
    if _hooks:
        _emit_hooks("fastredis.cache.lookups", count, {"fastredis.cache": name, "fastredis.result": result})


def cache_l2_results(cache: Any, found: Iterable[bool]) -> None:
    """Count L2 lookups: each True an ``l2_hit``, each False a ``miss``."""
    hits = misses = 0
    for f in found:
        if f:
            hits += 1
        else:
            misses += 1
    cache_lookups(cache, "l2_hit", hits)
    cache_lookups(cache, "miss", misses)


def cache_load(cache: Any, seconds: float, ok: bool) -> None:
    """One loader run of ``seconds``, successful or not."""
    attributes = {"fastredis.cache": name_of(cache), "fastredis.outcome": "ok" if ok else "error"}
    _emit("fastredis.cache.loads", 1, attributes)
    _emit("fastredis.cache.load.duration", seconds, attributes)


def lock_acquire(lock: Any, seconds: float, acquired: bool) -> None:
    """One acquire attempt that took ``seconds`` and got the lock or gave up."""
    _emit("fastredis.lock.acquire.duration", seconds, {"fastredis.lock": name_of(lock), "fastredis.acquired": bool(acquired)})


def lock_lost(lock: Any) -> None:
    """A lock found lost while held."""
    _emit("fastredis.lock.losses", 1, {"fastredis.lock": name_of(lock)})


def stream_deliveries(stream: Any, group: Any, count: int) -> None:
    """``count`` entries delivered to a consumer of ``group``."""
    if count:
        _emit("fastredis.stream.deliveries", count, {"fastredis.stream": name_of(stream), "fastredis.group": str(group)})


def stream_dead_letters(stream: Any, group: Any, count: int) -> None:
    """``count`` entries moved to the dead-letter stream."""
    if count:
        _emit("fastredis.stream.dead_letters", count, {"fastredis.stream": name_of(stream), "fastredis.group": str(group)})


def pubsub_reconnect(subscription: Any) -> None:
    """A subscription (its channels and patterns) re-established after its connection was lost."""
    names = [*getattr(subscription, "channels", ()), *getattr(subscription, "patterns", ())]
    name = ",".join(str(n) for n in names) if names else name_of(subscription)
    _emit("fastredis.pubsub.reconnects", 1, {"fastredis.channel": name})


def timed_acquire(lock: Any, steps: Any) -> Any:
    """``steps`` of a lock acquire, recording how long it took and whether it got the lock."""
    start = time.monotonic()
    acquired = False
    try:
        acquired = yield from steps
        return acquired
    finally:
        lock_acquire(lock, time.monotonic() - start, bool(acquired))


def counted_reads(consumer: Any, steps: Any) -> Any:
    """``steps`` of a stream consumer's read, counting the entries delivered."""
    entries = yield from steps
    stream_deliveries(consumer.stream, consumer.group, len(entries))
    return entries


# -- the L1 hit paths: swapped for counting twins only while ON -----------------
# (class, attribute) -> the original function
_ORIGINALS: Dict[Tuple[type, str], Any] = {}


def _counting_get(original: Callable[..., Any]) -> Callable[..., Any]:
    from .patterns._l1 import MISSING
    from .patterns.cache import _canonical

    def get(self: Any, key: Any, default: Any = None) -> Any:
        hit = self._state.lookup(key if type(key) is str else _canonical(key))
        if hit is not MISSING:
            cache_lookups(self, "l1_hit")
            return hit
        return original(self, key, default)

    return get


def _counting_get_or_set(original: Callable[..., Any]) -> Callable[..., Any]:
    from .patterns._l1 import MISSING
    from .patterns.cache import _canonical

    def get_or_set(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        hit = self._state.lookup(key if type(key) is str else _canonical(key))
        if hit is not MISSING:
            cache_lookups(self, "l1_hit")
            return hit
        return original(self, key, *args, **kwargs)

    return get_or_set


def _counting_aget(original: Callable[..., Any]) -> Callable[..., Any]:
    from .patterns._l1 import MISSING
    from .patterns.cache import _canonical

    async def get(self: Any, key: Any, default: Any = None) -> Any:
        hit = self._state.lookup(key if type(key) is str else _canonical(key))
        if hit is not MISSING:
            cache_lookups(self, "l1_hit")
            return hit
        return await original(self, key, default)

    return get


def _counting_aget_or_set(original: Callable[..., Any]) -> Callable[..., Any]:
    from .patterns._l1 import MISSING
    from .patterns.cache import _canonical

    async def get_or_set(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        hit = self._state.lookup(key if type(key) is str else _canonical(key))
        if hit is not MISSING:
            cache_lookups(self, "l1_hit")
            return hit
        return await original(self, key, *args, **kwargs)

    return get_or_set


def _hot_paths() -> List[Tuple[type, str, Callable[[Callable[..., Any]], Callable[..., Any]]]]:
    """The L1 hit paths: (class, method, counting twin maker)."""
    from .asyncio.patterns.cache import TieredCache as AsyncTieredCache
    from .patterns.cache import TieredCache

    return [
        (TieredCache, "get", _counting_get),
        (TieredCache, "get_or_set", _counting_get_or_set),
        (AsyncTieredCache, "get", _counting_aget),
        (AsyncTieredCache, "get_or_set", _counting_aget_or_set),
    ]


def _swap_hot_paths(on: bool) -> None:
    import functools

    for cls, attr, make in _hot_paths():
        if on:
            if (cls, attr) not in _ORIGINALS:
                original = cls.__dict__[attr]
                _ORIGINALS[(cls, attr)] = original
                setattr(cls, attr, functools.wraps(original)(make(original)))
        else:
            original = _ORIGINALS.pop((cls, attr), None)
            if original is not None:
                setattr(cls, attr, original)
