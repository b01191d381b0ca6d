"""Redlock over N independent Redis masters: :class:`Redlock`.

The algorithm (draw a token, run the acquire script on every node at once,
count a quorum, compute the validity, release everywhere after a failed
attempt, retry after a jittered delay) is plan steps shared with the
asyncio twin; the fan-out to the nodes is the shell's: a thread pool here,
tasks in :class:`fastredis.asyncio.Redlock`.

Example::

    >>> from fastredis.server import RedisServer
    >>> servers = [RedisServer() for _ in range(3)]
    >>> with Redlock([s.url for s in servers], "job", ttl=10) as lock:
    ...     0 < lock.validity < 10
    True
    >>> for s in servers: s.stop()
"""

from __future__ import annotations

import logging
import os
import random
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from concurrent.futures import TimeoutError as _FuturesTimeout
from typing import Any, List, Optional, Sequence

from .._text import check_finite
from ..exceptions import LockError, LockNotOwnedError
from .. import metrics as _metrics
from ..keys import KeyPart, KeySpace
from ..scripts import run
from ._clients import check_sync_client, is_cluster
from ._conn import no_retry_client
from ._plan import Call, FanOut, Plan, Sleep, Steps
from .lock import SyncHold, acquire_plan, check_ttl, extend_plan, new_token, release_plan

__all__ = ["Redlock"]

log = logging.getLogger("fastredis.lock")


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _positive(ms: int) -> bool:
    return ms > 0


class _RedlockPlans:
    """What a :class:`Redlock` decides (no I/O), shared with its asyncio twin."""

    def __init__(
        self,
        clients: Sequence[Any],
        name: KeyPart,
        *,
        ttl: float = 10.0,
        node_timeout: float = 0.05,
        drift_factor: float = 0.01,
        retry_count: int = 3,
        retry_delay: float = 0.2,
        max_extensions: int = 3,
        prefix: str = "lock",
    ) -> None:
        if isinstance(clients, (str, bytes)) or not isinstance(clients, Sequence) or not clients:
            raise ValueError("clients must be a non-empty sequence of redis clients or URLs")
        self._ttl_ms = check_ttl(ttl, "ttl")
        self.ttl: float = self._ttl_ms / 1000.0
        self.node_timeout = check_finite(node_timeout, "node_timeout")
        if self.node_timeout <= 0:
            raise ValueError(f"node_timeout must be > 0 seconds, got {node_timeout!r}")
        self.drift_factor = check_finite(drift_factor, "drift_factor")
        if not 0 <= self.drift_factor < 1:
            raise ValueError(f"drift_factor must be in [0, 1), got {drift_factor!r}")
        self.retry_count = _check_count(retry_count, "retry_count")
        self.retry_delay = check_finite(retry_delay, "retry_delay")
        if self.retry_delay < 0:
            raise ValueError(f"retry_delay must be >= 0 seconds, got {retry_delay!r}")
        self.max_extensions = _check_count(max_extensions, "max_extensions")
        space = KeySpace(prefix)
        self.name = name
        self.key: str = space.tagged(name)
        self.state_key: str = space.tagged(name, "state")
        self._space = space
        self.nodes: List[Any] = [self._node(c) for c in clients]
        self.quorum: int = len(self.nodes) // 2 + 1
        self.drift: float = self.ttl * self.drift_factor + 0.002
        #: The owner token of the current hold (None when not held).
        self.token: Optional[str] = None
        self.extensions = 0
        self._valid_until = 0.0
        self._pid = os.getpid()
        # Node calls of the last fan-out still running when it returned (it
        # stops at the quorum): the next fan-out waits for them first, else a
        # release could reach a node before the acquire it undoes and leave
        # the lock held there until it expires.
        self._stragglers: List[Any] = []

    def _node(self, client: Any) -> Any:
        """A node client that gives up after ``node_timeout``, without retry."""
        import redis

        if isinstance(client, str):
            client = redis.Redis.from_url(client)
        if is_cluster(client):
            raise TypeError("Redlock needs independent masters, not a cluster client")
        return no_retry_client(check_sync_client(client, "Redlock"), self.node_timeout)

    @property
    def _keys(self) -> "tuple[str, str]":
        return (self.key, self.state_key)

    def _release_everywhere(self, token: str) -> FanOut:
        return FanOut(release_plan(self._space, self.name, self.key, token, "", self._ttl_ms))

    def plan_acquire(self, blocking: bool = True) -> Steps[bool]:
        """Try up to ``1 + retry_count`` times (once with ``blocking=False``).

        Example::

            >>> from fastredis.server import RedisServer
            >>> servers = [RedisServer() for _ in range(3)]
            >>> a = Redlock([s.url for s in servers], "x")
            >>> b = Redlock([s.url for s in servers], "x", retry_count=0)
            >>> a.acquire(), b.acquire()
            (True, False)
            >>> a.close(); b.close()
            >>> for s in servers: s.stop()
        """
        if not isinstance(blocking, bool):
            raise TypeError(f"blocking must be a bool, got {blocking!r}")
        if self.token is not None and self._pid == os.getpid() and self.validity > 0:
            raise LockError(f"{self.key!r} is already held by this Redlock object; it is not reentrant")
        steps = self._acquire_steps(1 + (self.retry_count if blocking else 0))
        return _metrics.timed_acquire(self, steps) if _metrics.ON else steps

    def _acquire_steps(self, attempts: int) -> Steps[bool]:
        for attempt in range(attempts):
            token = new_token()
            start = time.monotonic()
            acquire = acquire_plan(self._keys, token, self._ttl_ms)
            taken = yield FanOut(Plan.one(acquire.calls[0], lambda r: acquire.interpret(r)[0]), self.quorum)
            valid_until = start + self.ttl - self.drift
            if taken >= self.quorum and valid_until > time.monotonic():
                self.token, self._valid_until, self.extensions = token, valid_until, 0
                self._pid = os.getpid()
                return True
            # Release everywhere: a node may have taken it after we stopped listening.
            yield self._release_everywhere(token)
            if attempt + 1 < attempts:
                yield Sleep(random.uniform(0, self.retry_delay))
        return False

    @property
    def validity(self) -> float:
        """Seconds the lock can still be trusted (0 when not held): at most
        ``ttl - elapsed - drift`` measured from the start of the acquire."""
        if self.token is None:
            return 0.0
        return max(0.0, self._valid_until - time.monotonic())

    def owned(self) -> bool:
        """True while held with validity left (local clock; no round trip).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lock = Redlock([server.url], "x")
            >>> lock.owned(), lock.acquire(), lock.owned()
            (False, True, True)
            >>> lock.release(); lock.close(); server.stop()
        """
        return self.token is not None and self._pid == os.getpid() and self.validity > 0

    def plan_locked(self) -> Steps[bool]:
        """True when a quorum of nodes has the lock key (anyone's).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); lock = Redlock([server.url], "x")
            >>> lock.locked()
            False
            >>> lock.close(); server.stop()
        """
        count = yield FanOut(Plan.one(Call(("EXISTS", self.key)), bool), self.quorum)
        return count >= self.quorum

    def plan_extend(self) -> Steps[float]:
        """Reset the ttl on a quorum; returns the new validity in seconds.

        At most ``max_extensions`` per hold (LockError after that). On failure
        the lock is released on every node and LockNotOwnedError is raised.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> lock = Redlock([server.url], "x", ttl=2, max_extensions=1)
            >>> lock.acquire() and 1.9 < lock.extend() <= 2
            True
            >>> lock.extend()
            Traceback (most recent call last):
            ...
            redis.exceptions.LockError: 'lock:{x}' was extended 1 times, the cap (max_extensions)
            >>> lock.release(); lock.close(); server.stop()
        """
        token = self._held_token("extend")
        if self.extensions >= self.max_extensions:
            raise LockError(f"{self.key!r} was extended {self.extensions} times, the cap (max_extensions)")
        return self._extend_steps(token)

    def _extend_steps(self, token: str) -> Steps[float]:
        start = time.monotonic()
        extend = extend_plan(self._keys, token, self._ttl_ms, add=False)
        done = yield FanOut(Plan.one(extend.calls[0], lambda r: _positive(extend.interpret(r))), self.quorum)
        valid_until = start + self.ttl - self.drift
        if done >= self.quorum and valid_until > time.monotonic():
            self._valid_until = valid_until
            self.extensions += 1
            return self.validity
        self.token = None
        if _metrics.ON:
            _metrics.lock_lost(self)
        yield self._release_everywhere(token)
        raise LockNotOwnedError(f"cannot extend {self.key!r}: only {done} of {len(self.nodes)} nodes still had it")

    def plan_release(self) -> Steps[None]:
        """Release on every reachable node (each bounded by ``node_timeout``).

        Raises LockNotOwnedError when fewer than a quorum still had our token.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer()
            >>> lock = Redlock([server.url], "x")
            >>> lock.acquire(); lock.locked()
            True
            True
            >>> lock.release(); lock.locked(), lock.owned(), lock.validity
            (False, False, 0.0)
            >>> lock.close(); server.stop()
        """
        token = self._held_token("release")
        self.token = None
        return self._release_steps(token)

    def _release_steps(self, token: str) -> Steps[None]:
        done = yield self._release_everywhere(token)
        if done < self.quorum:
            if _metrics.ON:
                _metrics.lock_lost(self)
            raise LockNotOwnedError(
                f"released {self.key!r} on {done} of {len(self.nodes)} nodes, fewer than the quorum {self.quorum}"
            )

    def _held_token(self, action: str) -> str:
        if self.token is None:
            raise LockError(f"cannot {action} {self.key!r}: this Redlock object does not hold it")
        if self._pid != os.getpid():
            raise LockError(f"cannot {action} {self.key!r}: it was acquired by process {self._pid}")
        return self.token

    def _not_taken(self) -> str:
        return f"could not acquire {self.key!r} on a quorum of {len(self.nodes)} nodes"

    def _guard(self) -> float:
        # Each call already gives up after node_timeout per socket operation;
        # this bound only guards against a call stuck elsewhere.
        return 3 * self.node_timeout + 0.05

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key!r} nodes={len(self.nodes)} quorum={self.quorum} validity={self.validity:.3f}>"


class Redlock(_RedlockPlans, SyncHold):
    """The Redlock algorithm over N independent Redis masters.

    Each attempt draws a token and runs the acquire script on every node at
    once; each call gives up after ``node_timeout`` (the clients are cloned
    without automatic retry). The lock is held when a quorum (N//2+1) took it
    and ``validity = ttl - elapsed - drift`` is still positive, where
    ``drift = ttl * drift_factor + 0.002`` s. Otherwise the attempt releases
    on every node and, up to ``retry_count`` more times, retries after a
    delay drawn uniformly from ``[0, retry_delay]``. An operation returns at
    the quorum; the calls it leaves running finish (or time out) before the
    next operation's calls start, so a release never overtakes a slow node's
    acquire.

    Only trust the lock for ``validity`` seconds. Redlock assumes bounded
    clock drift and pauses; it offers no fencing token that storage could
    check (see the README for Kleppmann's critique): for correctness use
    :class:`~fastredis.Lock` with :func:`~fastredis.fenced_write`.

    Owns a thread pool and connections: ``close()`` them (``with`` acquires
    and releases, it does not close).

    Example::

        >>> from fastredis.server import RedisServer
        >>> servers = [RedisServer() for _ in range(3)]
        >>> lock = Redlock([s.client() for s in servers], "job", ttl=10)
        >>> lock.acquire()
        True
        >>> 0 < lock.validity < 10
        True
        >>> lock.release(); lock.close()
        >>> for s in servers: s.stop()
    """

    _executor: Optional[ThreadPoolExecutor] = None
    _executor_pid = 0
    _finalizer: Optional[weakref.finalize] = None

    def acquire(self, blocking: bool = True) -> bool:
        return run(None, self.plan_acquire(blocking), fan_out=self._fan_out)

    def locked(self) -> bool:
        return run(None, self.plan_locked(), fan_out=self._fan_out)

    def extend(self) -> float:
        return run(None, self.plan_extend(), fan_out=self._fan_out)

    def release(self) -> None:
        run(None, self.plan_release(), fan_out=self._fan_out)

    for _op in (acquire, locked, extend, release):  # the plans document the operations
        _op.__doc__ = getattr(_RedlockPlans, "plan_" + _op.__name__).__doc__
    del _op

    # -- node fan-out ----------------------------------------------------------
    def _pool(self) -> ThreadPoolExecutor:
        # Threads do not survive fork(): a child builds its own pool.
        if self._executor is None or self._executor_pid != os.getpid():
            # 2N workers: calls still hanging on a stopped node never delay the next round.
            self._executor = ThreadPoolExecutor(max_workers=2 * len(self.nodes), thread_name_prefix="fastredis-redlock")
            self._executor_pid = os.getpid()
            if self._finalizer is not None:
                self._finalizer.detach()
            self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False)
        return self._executor

    def _fan_out(self, effect: FanOut) -> int:
        """Nodes whose result was truthy; stops early once the quorum is reached
        or can no longer be reached (when the effect names a quorum)."""
        plan = effect.plan
        if self._stragglers:
            wait(self._stragglers, timeout=self._guard())
        futures: List["Future[Any]"] = [self._pool().submit(run, node, plan) for node in self.nodes]
        ok = failed = 0
        n = len(futures)
        try:
            for f in as_completed(futures, timeout=self._guard()):
                exc = f.exception()
                if exc is None and f.result():
                    ok += 1
                else:
                    failed += 1
                    if exc is not None:
                        log.debug("redlock node call failed: %r", exc)
                if effect.quorum is not None and (ok >= effect.quorum or failed > n - effect.quorum):
                    break
        except _FuturesTimeout:
            pass
        self._stragglers = [f for f in futures if not f.done()]
        return ok

    def close(self) -> None:
        """Stop the thread pool and close the cloned node clients."""
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._executor is not None and self._executor_pid == os.getpid():
            self._executor.shutdown(wait=False)
        self._executor = None
        for node in self.nodes:
            try:
                node.close()
                node.connection_pool.disconnect()
            except Exception:
                pass


