"""Tiered caching for asyncio: :class:`TieredCache`, the twin of
:class:`fastredis.TieredCache`: the same L1 rules, Lua scripts, lease, XFetch
and tags; loaders and writers may be ``async def``; single-flight shares one
load task among the callers of a key; L1 coherence comes from RESP3 client
tracking read by a task.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         async with TieredCache(r, prefix="demo", ttl=60) as cache:
    ...             await cache.set("user:1", {"name": "Ada"}, tags=["users"])
    ...             async def load():
    ...                 return {"name": "Bob"}
    ...             got = await cache.get("user:1"), await cache.get_or_set("user:2", load)
    ...             await cache.invalidate_tags("users")
    ...             return got, await cache.get("user:1", "gone")
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    (({'name': 'Ada'}, {'name': 'Bob'}), 'gone')
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional, TypeVar, Union

from redis._parsers import _AsyncHiredisParser, _AsyncRESP3Parser
from redis.utils import HIREDIS_AVAILABLE

from ...keys import KeyPart
from ...patterns._clients import check_async_client
from ...patterns._conn import FORKS, private_connection
from ...patterns._l1 import L1, MISSING
from ...patterns._plan import async_operation
from ._tasks import cancel_and_wait, end_with
from ...patterns.cache import CacheKey, _CachePlans, _canonical, _tag_list, cache_key_maker, tracking_kwargs
from ...scripts import arun

__all__ = ["TieredCache"]

log = logging.getLogger("fastredis.patterns.cache")

T = TypeVar("T")
_monotonic = time.monotonic
_PING_AFTER = 1.0  # idle seconds before a liveness PING on the tracking connection
_PONG_WITHIN = 5.0  # seconds a PING may go unanswered before the connection counts as dead


async def _connect_tracking(client: Any, state: L1) -> Any:
    """A private RESP3 connection subscribed to invalidations of the cache's keys."""
    parser = _AsyncHiredisParser if HIREDIS_AVAILABLE else _AsyncRESP3Parser
    conn = private_connection(client, **tracking_kwargs(parser))
    try:
        await conn.connect()

        async def invalidated(message: Any) -> None:
            state.on_invalidate(message)

        conn._parser.set_invalidation_push_handler(invalidated)
        await conn.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", state.vprefix, "PREFIX", state.tprefix)
        reply = await conn.read_response()
        if reply not in (b"OK", "OK", True):
            raise ConnectionError(f"CLIENT TRACKING failed: {reply!r}")
    except BaseException:
        await _disconnect(conn)
        raise
    return conn


async def _disconnect(conn: Any) -> None:
    try:
        await conn.disconnect(nowait=True)
    except Exception:
        pass


async def _track(state: L1, client: Any, label: str) -> None:
    """The tracking task: holds the L1 state, never the cache. One read is in
    flight at a time and never cancelled mid-reply; idle wake-ups PING."""
    backoff = 0.05
    while True:
        conn = None
        read: "Optional[asyncio.Future[Any]]" = None
        try:
            conn = await _connect_tracking(client, state)
            state.up()
            backoff = 0.05
            last = _monotonic()
            ping_sent: Optional[float] = None
            while True:
                if read is None:
                    read = asyncio.ensure_future(conn.read_response(push_request=True, timeout=math.inf))
                done, _ = await asyncio.wait({read}, timeout=0.1)
                now = _monotonic()
                if read in done:
                    read.result()  # pushes went to the handler; a PONG ends the probe
                    read = None
                    last, ping_sent = now, None
                elif ping_sent is None and now - last > _PING_AFTER:
                    await conn.send_command("PING")
                    ping_sent = now
                elif ping_sent is not None and now - ping_sent > _PONG_WITHIN:
                    raise TimeoutError(f"no reply to PING within {_PONG_WITHIN}s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state.failures += 1
            log.warning("TieredCache %r: invalidation connection lost (%s); L1 flushed and bypassed", label, exc)
        finally:
            state.down()
            if read is not None and not read.done():
                read.cancel()
            if conn is not None:
                await asyncio.shield(_disconnect(conn))
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 1.0)


class TieredCache(_CachePlans):
    """An in-process L1 over Redis L2 (see :class:`fastredis.TieredCache`), awaited.

    The tracking connection is read by a task, started on first use (or by
    ``async with``); it ends with ``aclose()``, or when the cache is garbage
    collected (the task does not keep the cache alive). Loaders, writers and
    decorated functions may be ``async def`` (their results are awaited) or
    plain functions. Concurrent ``get_or_set`` calls of one key share one
    load task: a caller cancelled while waiting does not cancel the load the
    others wait for. A closed cache raises
    :class:`~fastredis.exceptions.ClosedError`.

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     cache = TieredCache(r, ttl=30)
        ...     await cache.set("k", None)
        ...     got = await cache.get("k", "miss"), await cache.get("other", "miss")
        ...     await cache.aclose(); await r.aclose()
        ...     return got
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (None, 'miss')
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)

    def _open(self) -> None:
        self._tracker: Optional["asyncio.Task[None]"] = None
        self._flights: Dict[str, "asyncio.Task[Any]"] = {}

    # ---------------------------------------------------------------- tracking
    async def start(self, wait: float = 2.0) -> "TieredCache":
        """Start the tracking task (once) and wait up to ``wait`` s for it to be
        up; any operation starts it too, without waiting."""
        self._check_open()
        self._ensure_tracking()
        deadline = _monotonic() + wait
        tracker = self._tracker
        while tracker is not None and not self._state.healthy and _monotonic() < deadline and not tracker.done():
            await asyncio.sleep(0.005)
        return self

    def _ensure_tracking(self) -> None:
        if self._tracker is None and self._l1_enabled and not self._closed:
            task = asyncio.ensure_future(_track(self._state, self.client, self.prefix))
            self._tracker = task
            end_with(self, task)

    # ------------------------------------------------------------------ read
    async def get(self, key: CacheKey, default: Any = None) -> Any:
        """The cached value of ``key``, or ``default`` (see :meth:`fastredis.TieredCache.get`)."""
        hit = self._state.lookup(key)  # type: ignore[arg-type]
        if hit is not MISSING:
            return hit
        steps = self.plan_get(key, default)
        self._ensure_tracking()
        return await arun(self.client, steps)

    async def get_many(self, keys: Iterable[CacheKey]) -> Dict[CacheKey, Any]:
        """``{key: value}`` of the cached keys, one round trip (see :meth:`fastredis.TieredCache.get_many`)."""
        steps = self.plan_get_many(keys)
        self._ensure_tracking()
        return await arun(self.client, steps)

    set = async_operation(_CachePlans.plan_set)
    set_many = async_operation(_CachePlans.plan_set_many)
    delete = async_operation(_CachePlans.plan_delete)
    set_through = async_operation(_CachePlans.plan_set_through)
    invalidate_tags = async_operation(_CachePlans.plan_invalidate_tags)
    warm = async_operation(_CachePlans.plan_warm)

    async def get_or_set(
        self,
        key: CacheKey,
        loader: Callable[[], Union[T, Awaitable[T]]],
        ttl: Optional[float] = None,
        *,
        tags: Iterable[KeyPart] = (),
        negative_ttl: Optional[float] = None,
    ) -> T:
        """The cached value, or ``loader()`` (awaited if ``async def``) run once
        across tasks and processes (see :meth:`fastredis.TieredCache.get_or_set`).

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r, TieredCache(r) as cache:
            ...         calls = []
            ...         async def slow():
            ...             calls.append(1); await asyncio.sleep(0.05); return 42
            ...         got = await asyncio.gather(*(cache.get_or_set("answer", slow) for _ in range(10)))
            ...         return set(got), len(calls)
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            ({42}, 1)
        """
        hit = self._state.lookup(key)  # type: ignore[arg-type]
        if hit is not MISSING:
            return hit  # type: ignore[no-any-return]
        tag_list = self._load_args(loader, ttl, tags, negative_ttl)
        ck = _canonical(key)
        self._ensure_tracking()
        flight = self._flights.get(ck)
        if flight is None:
            flight = asyncio.ensure_future(arun(self.client, self._load_steps(ck, loader, ttl, tag_list, negative_ttl)))
            self._flights[ck] = flight
            flight.add_done_callback(functools.partial(_landed, self._flights, ck))
        return await asyncio.shield(flight)  # type: ignore[no-any-return]

    def cached(
        self,
        ttl: Optional[float] = None,
        key: Optional[Callable[..., CacheKey]] = None,
        *,
        tags: Iterable[KeyPart] = (),
    ) -> Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]:
        """Decorator: cache an (``async def``) function's results through
        :meth:`get_or_set`; the wrapper is a coroutine function with
        ``await .invalidate(*args, **kwargs)``.

        Example::

            >>> import asyncio, fastredis.asyncio
            >>> from fastredis.server import RedisServer
            >>> async def main(port):
            ...     async with fastredis.asyncio.Redis(port=port) as r, TieredCache(r) as cache:
            ...         @cache.cached(ttl=60)
            ...         async def square(x):
            ...             return x * x
            ...         return await square(4), await square(4), await square.invalidate(4)
            >>> with RedisServer() as server:
            ...     asyncio.run(main(server.port))
            (16, 16, 1)
        """
        if key is not None and not callable(key):
            raise TypeError("key must be a callable(*args, **kwargs) -> cache key")
        tag_list = _tag_list(tags)

        def decorate(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
            make_key = cache_key_maker(func, key)

            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.get_or_set(make_key(args, kwargs), lambda: func(*args, **kwargs), ttl, tags=tag_list)

            async def invalidate(*args: Any, **kwargs: Any) -> int:
                return await self.delete(make_key(args, kwargs))

            wrapper.invalidate = invalidate  # type: ignore[attr-defined]
            return wrapper

        return decorate

    # -------------------------------------------------------------- lifecycle
    async def aclose(self) -> None:
        """End the tracking task and any loads in flight, drop L1; later use
        raises ClosedError. Safe to call twice."""
        self._closed = True
        await cancel_and_wait([self._tracker, *self._flights.values()])
        self._tracker = None
        self._state.down()
        FORKS.discard(self)

    def _after_fork_in_child(self) -> None:
        # The parent's loop, tasks and socket are not ours: forget them.
        self._state.after_fork()
        self._tracker = None
        self._flights = {}

    async def __aenter__(self) -> "TieredCache":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _landed(flights: Dict[str, "asyncio.Task[Any]"], ck: str, task: "asyncio.Task[Any]") -> None:
    if flights.get(ck) is task:
        del flights[ck]
    if not task.cancelled():
        task.exception()  # retrieved: callers that stopped waiting see no warning

