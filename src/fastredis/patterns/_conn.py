"""Private connections and fork safety for the patterns that own them.

Three patterns keep connections of their own next to the user's client: the
cache's tracking connection, a subscription's pub/sub connection, Redlock's
node clients. They are built here, from the client's pool settings (host,
TLS, auth, db, socket options), with the overrides the pattern needs.

Patterns that own threads or sockets register with :data:`FORKS`: after
``os.fork()`` the child calls each one's ``_after_fork_in_child()``, which
forgets the parent's thread and socket (never closing the parent's socket
from the child) and starts afresh on demand.

Example::

    >>> import redis
    >>> kwargs = connection_kwargs(redis.Redis(port=7000), protocol=3)
    >>> kwargs["port"], kwargs["protocol"]
    (7000, 3)
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Callable, Dict, Optional

__all__ = ["connection_kwargs", "private_connection", "no_retry_client", "ForkRegistry", "FORKS",
           "owner_thread", "finalizer"]

# Pool settings that belong to the user's connections, not to a private one:
# client-side caching and maintenance notifications would intercept the
# pushes the pattern reads itself.
_NOT_CLONED = ("cache", "cache_config", "maint_notifications_pool_handler", "maint_notifications_config")


def connection_kwargs(client: Any, **overrides: Any) -> Dict[str, Any]:
    """The keyword arguments of ``client``'s connections, with ``overrides``.

    Works for sync and asyncio clients alike (both pools keep
    ``connection_kwargs``); a client without a pool (a cluster client) raises
    ``TypeError``.

    Example::

        >>> import redis
        >>> connection_kwargs(redis.Redis(db=3), decode_responses=False)["db"]
        3
    """
    pool = getattr(client, "connection_pool", None)
    if pool is None or not hasattr(pool, "connection_kwargs"):
        raise TypeError(f"needs a client with a connection pool, got {type(client).__name__}")
    kwargs = dict(pool.connection_kwargs)
    for name in _NOT_CLONED:
        kwargs.pop(name, None)
    kwargs.update(overrides)
    return kwargs


def private_connection(client: Any, **overrides: Any) -> Any:
    """A new, unconnected connection of ``client``'s pool class (sync or
    asyncio), never returned to the pool: the caller connects and closes it.

    Example::

        >>> import redis
        >>> conn = private_connection(redis.Redis(port=7001), protocol=2)
        >>> type(conn).__name__, conn.port
        ('Connection', 7001)
    """
    kwargs = connection_kwargs(client, **overrides)
    return client.connection_pool.connection_class(**kwargs)


def no_retry_client(client: Any, timeout: float) -> Any:
    """A client of ``client``'s class on the same server whose every call gives
    up after ``timeout`` seconds, with no automatic retry (a dead Redlock node
    costs one timeout, not ten). Sync or asyncio, as ``client`` is.

    Example::

        >>> import redis
        >>> clone = no_retry_client(redis.Redis(port=7002), 0.05)
        >>> clone.connection_pool.connection_kwargs["socket_timeout"]
        0.05
    """
    from redis.backoff import NoBackoff

    is_async = _is_async(client)
    if is_async:
        import redis.asyncio
        from redis.asyncio.retry import Retry as AsyncRetry

        retry: Any = AsyncRetry(NoBackoff(), 0)
        pool_class: Any = redis.asyncio.ConnectionPool
    else:
        import redis
        from redis.retry import Retry

        retry = Retry(NoBackoff(), 0)
        pool_class = redis.ConnectionPool
    kwargs = connection_kwargs(
        client,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=retry,
        retry_on_error=[],
        retry_on_timeout=False,
    )
    pool = pool_class(connection_class=client.connection_pool.connection_class, **kwargs)
    return type(client)(connection_pool=pool)


def _is_async(client: Any) -> bool:
    import redis.asyncio

    return isinstance(client, redis.asyncio.Redis)


class ForkRegistry:
    """Live objects owning threads or sockets, told when the process forked.

    Each registered object has ``_after_fork_in_child()``; it is held weakly.

    Example::

        >>> class Owner:
        ...     forked = False
        ...     def _after_fork_in_child(self):
        ...         self.forked = True
        >>> registry = ForkRegistry(); o = Owner(); registry.add(o)
        >>> registry.run_in_child(); o.forked
        True
    """

    def __init__(self) -> None:
        self._live: "weakref.WeakSet[Any]" = weakref.WeakSet()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.run_in_child)

    def add(self, obj: Any) -> None:
        """Tell ``obj`` about forks from now on."""
        self._live.add(obj)

    def discard(self, obj: Any) -> None:
        """Stop telling ``obj`` (it closed)."""
        self._live.discard(obj)

    def run_in_child(self) -> None:
        """Call every live object's ``_after_fork_in_child()`` (in the child)."""
        for obj in list(self._live):
            try:
                obj._after_fork_in_child()
            except Exception:  # one broken object must not spoil the others
                pass


#: The registry every pattern uses.
FORKS = ForkRegistry()


def owner_thread(owner: Any, target: Callable[..., Any], *args: Any, name: str) -> "tuple[threading.Thread, threading.Event]":
    """Start a daemon thread running ``target(stop, *args)`` that ends when
    ``stop`` is set, which happens on request or when ``owner`` is garbage
    collected. The thread must not reference ``owner`` (it holds what it
    needs in ``args``), so a dropped owner is collected and its thread and
    connection end with it.

    Example::

        >>> class Owner: pass
        >>> o = Owner()
        >>> t, stop = owner_thread(o, lambda stop: stop.wait(), name="demo")
        >>> del o; t.join(5); t.is_alive()
        False
    """
    stop = threading.Event()
    weakref.finalize(owner, stop.set)
    thread = threading.Thread(target=target, args=(stop, *args), name=name, daemon=True)
    thread.start()
    return thread, stop


def finalizer(owner: Any, fn: Callable[..., Any], *args: Any) -> Optional[weakref.finalize]:
    """``weakref.finalize(owner, fn, *args)`` that is not run at interpreter
    exit (a daemon thread's connection dies with the process anyway).

    Example::

        >>> class Owner: pass
        >>> f = finalizer(Owner(), print, "collected")
        collected
    """
    f = weakref.finalize(owner, fn, *args)
    f.atexit = False
    return f
