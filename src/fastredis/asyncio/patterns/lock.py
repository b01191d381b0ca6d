"""Locks for asyncio: :class:`Lock`, :class:`Redlock` and :func:`fenced_write`,
the twins of :mod:`fastredis.patterns.lock` and :mod:`~fastredis.patterns.redlock`.

The same acquire steps and scripts: a contended acquire subscribes to the
release channel and sleeps until a release is published or the holder's
ttl runs out (no polling); ``auto_renew`` renews in a task that ends with
the lock (release, loss, or garbage collection of the Lock). An acquire
cancelled while its script may have run releases what it may have taken,
so a cancelled waiter never keeps the lock.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         async with Lock(r, "report", ttl=5) as held:
    ...             return await fenced_write(r, "report:data", "v1", held.fencing_token)
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    True
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, Callable, List, Optional, Set, Union

from ._tasks import cancel_soon
from ...exceptions import LockNotOwnedError
from ...patterns._clients import check_async_client, is_cluster
from ...patterns._conn import no_retry_client
from ...patterns._plan import FanOut, async_operation
from ...patterns.lock import AsyncHold, Renewal, _LockPlans, plan_fenced_write, release_plan
from ...patterns.redlock import _RedlockPlans
from ...scripts import arun

__all__ = ["Lock", "Redlock", "fenced_write"]

log = logging.getLogger("fastredis.lock")

# Releases of cancelled acquires, kept until they finish (a task nobody
# references may be collected before it runs).
_CLEANUPS: Set["asyncio.Task[Any]"] = set()


def _release_cancelled(lock: _LockPlans, token: str) -> None:
    """An acquire was cancelled after its script may have run: release what
    it may have taken (the script only deletes a key holding ``token``)."""
    plan = release_plan(lock._space, lock.name, lock.key, token, lock.channel, lock._ttl_ms)

    async def release() -> None:
        try:
            await arun(lock.client, plan)
        except Exception as exc:  # the key then expires with its ttl
            log.debug("releasing the cancelled acquire of %r failed: %r", lock.key, exc)

    task = asyncio.ensure_future(release())
    _CLEANUPS.add(task)
    task.add_done_callback(_CLEANUPS.discard)


class Lock(_LockPlans, AsyncHold):
    """A lock on one Redis (see :class:`fastredis.Lock`), awaited.

    ``async with Lock(r, name, ttl=...)`` acquires and releases; waiting
    uses pub/sub, never polling; ``auto_renew=True`` renews every ttl/3 in
    a task (``on_lost(lock)`` runs if the lock is lost; it may be a
    coroutine function).

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     lock = Lock(r, "job:42", ttl=10)
        ...     first = await lock.acquire(blocking=False)
        ...     second = await Lock(r, "job:42").acquire(blocking=False)
        ...     owned = await lock.owned()
        ...     await lock.release()
        ...     await r.aclose()
        ...     return first, second, owned
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (True, False, True)
    """

    _check_client: Callable[[Any, str], Any] = staticmethod(check_async_client)
    _renewer: Optional["asyncio.Task[None]"] = None
    locked = async_operation(_LockPlans.plan_locked)
    owned = async_operation(_LockPlans.plan_owned)

    async def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        steps = self.plan_acquire(blocking, timeout)
        try:
            ok = await arun(self.client, steps)
        except asyncio.CancelledError:
            token, self._trying = self._trying, None
            if token is not None:  # cancelled while an acquire script was in flight
                _release_cancelled(self, token)
            raise
        if ok and self.auto_renew:
            self._renewer = asyncio.ensure_future(_renew(weakref.ref(self), self.client, self._renewal()))
        return ok

    async def release(self) -> None:
        self._stop_renewer()
        await arun(self.client, self.plan_release())

    async def extend(self, additional: Optional[float] = None) -> float:
        try:
            return await arun(self.client, self.plan_extend(additional))
        except LockNotOwnedError:
            self._stop_renewer()
            raise

    acquire.__doc__ = "Take the lock (see :meth:`fastredis.Lock.acquire`); a cancelled acquire holds nothing."
    release.__doc__ = "Release the lock (see :meth:`fastredis.Lock.release`)."
    extend.__doc__ = "Extend the hold; the new remaining ttl in seconds (see :meth:`fastredis.Lock.extend`)."

    def _stop_renewer(self) -> None:
        task, self._renewer = self._renewer, None
        if task is not None and not task.done() and task is not _current_task():
            task.cancel()

    def __del__(self) -> None:
        if self._renewer is not None:
            cancel_soon(self._renewer)


def _current_task() -> Optional["asyncio.Task[Any]"]:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


async def _renew(ref: "weakref.ref[Lock]", client: Any, renewal: Renewal) -> None:
    """The watchdog task: holds the Lock weakly, so a collected Lock ends it."""
    while True:
        await asyncio.sleep(renewal.period)
        lock = ref()
        if lock is None:
            return
        try:
            alive = await arun(client, renewal.plan())
        except Exception as exc:  # a transient outage: try again next period
            log.warning("renewing %r failed: %r", renewal.keys[0], exc)
            alive = renewal.still_valid(time.monotonic())
        if not alive:
            lock._renewer = None
            lock._lost = True
            if lock.on_lost is not None:
                try:
                    result = lock.on_lost(lock)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("on_lost callback of %r raised", lock.key)
            return
        del lock


async def fenced_write(
    client: Any,
    key: Union[str, bytes],
    value: Union[str, bytes, int, float],
    fencing_token: int,
    *,
    fence_key: Union[str, bytes, None] = None,
) -> bool:
    """SET ``key`` unless a newer fencing token wrote it (see :func:`fastredis.fenced_write`).

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         new = await fenced_write(r, "doc", "new", fencing_token=20)
        ...         stale = await fenced_write(r, "doc", "stale", fencing_token=10)
        ...         return new, stale, await r.get("doc")
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        (True, False, b'new')
    """
    plan = plan_fenced_write(key, value, fencing_token, fence_key=fence_key)
    return await arun(check_async_client(client, "fenced_write"), plan)


class Redlock(_RedlockPlans, AsyncHold):
    """Redlock over N masters (see :class:`fastredis.Redlock`), awaited; the
    nodes are asyncio clients (or URLs) and are called concurrently.

    ``async with`` acquires and releases; ``aclose()`` closes the cloned
    node clients.

    Example::

        >>> import asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(urls):
        ...     lock = Redlock(urls, "job", ttl=10)
        ...     async with lock:
        ...         valid = 0 < lock.validity < 10
        ...     await lock.aclose()
        ...     return valid, lock.owned()
        >>> servers = [RedisServer() for _ in range(3)]
        >>> asyncio.run(main([s.url for s in servers]))
        (True, False)
        >>> for s in servers: s.stop()
    """

    def _node(self, client: Any) -> Any:
        import redis.asyncio

        if isinstance(client, str):
            client = redis.asyncio.Redis.from_url(client)
        if is_cluster(client):
            raise TypeError("Redlock needs independent masters, not a cluster client")
        return no_retry_client(check_async_client(client, "Redlock"), self.node_timeout)

    async def acquire(self, blocking: bool = True) -> bool:
        return await arun(None, self.plan_acquire(blocking), fan_out=self._fan_out)

    async def locked(self) -> bool:
        return await arun(None, self.plan_locked(), fan_out=self._fan_out)

    async def extend(self) -> float:
        return await arun(None, self.plan_extend(), fan_out=self._fan_out)

    async def release(self) -> None:
        await arun(None, self.plan_release(), fan_out=self._fan_out)

    acquire.__doc__ = "Try up to ``1 + retry_count`` times (see :meth:`fastredis.Redlock.acquire`)."
    locked.__doc__ = "True when a quorum of nodes has the lock key (see :meth:`fastredis.Redlock.locked`)."
    extend.__doc__ = "Reset the ttl on a quorum; the new validity (see :meth:`fastredis.Redlock.extend`)."
    release.__doc__ = "Release on every reachable node (see :meth:`fastredis.Redlock.release`)."

    async def _fan_out(self, effect: FanOut) -> int:
        """Nodes whose result was truthy, all called at once; stops counting
        once the quorum is reached or can no longer be reached."""
        guard = self._guard()
        loop = asyncio.get_running_loop()
        stragglers = [t for t in self._stragglers if t.get_loop() is loop]
        if stragglers:  # see fastredis.Redlock: the last fan-out's calls end first
            await asyncio.wait(stragglers, timeout=guard)
        tasks: List["asyncio.Task[Any]"] = [
            asyncio.ensure_future(asyncio.wait_for(arun(node, effect.plan), guard)) for node in self.nodes
        ]
        ok = failed = 0
        n = len(tasks)
        try:
            for next_done in asyncio.as_completed(tasks):
                try:
                    if await next_done:
                        ok += 1
                    else:
                        failed += 1
                except Exception as exc:
                    failed += 1
                    log.debug("redlock node call failed: %r", exc)
                if effect.quorum is not None and (ok >= effect.quorum or failed > n - effect.quorum):
                    break
        finally:
            for t in tasks:  # the rest finish within node_timeout; their results no longer count
                if not t.done():
                    _CLEANUPS.add(t)
                    t.add_done_callback(_CLEANUPS.discard)
            self._stragglers = [t for t in tasks if not t.done()]
        return ok

    async def aclose(self) -> None:
        """Close the cloned node clients."""
        for node in self.nodes:
            try:
                await node.aclose()
            except Exception:
                pass
