"""Distributed locks: :class:`Lock` on one Redis, :class:`Redlock` over N masters,
and :func:`fenced_write`, the storage-side check that makes a lock safe.

A lock on its own is safe only while its holder runs on time: a holder paused
(GC, SIGSTOP, swap) past its ttl still believes it holds the lock while a new
owner works. Every acquire therefore mints a *fencing token*, a strictly rising
integer per lock name; storage that rejects writes carrying a token older than
one it has seen (:func:`fenced_write`) turns the stale holder's late write into
a no-op.

Example::

    >>> from fastredis.server import RedisServer
    >>> from fastredis.patterns.lock import Lock, fenced_write
    >>> server = RedisServer(); r = server.client()
    >>> with Lock(r, "report", ttl=5) as held:
    ...     fenced_write(r, "report:data", "v1", held.fencing_token)
    True
    >>> Lock(r, "report").locked()
    False
    >>> server.stop()
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from concurrent.futures import TimeoutError as _FuturesTimeout
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .._text import check_finite, to_str
from ..exceptions import LockError, LockNotOwnedError
from ..keys import KeyPart, KeySpace
from ..scripts import LuaScript

__all__ = ["Lock", "Redlock", "fenced_write", "fence_key_for"]

log = logging.getLogger("fastredis.lock")

_ACQUIRE = LuaScript.load("acquire_lock")
_RELEASE = LuaScript.load("release_lock")
_EXTEND = LuaScript.load("extend_lock")
_FENCED_WRITE = LuaScript.load("fenced_write")

# Tokens are server microseconds (~1.7e15); Lua numbers are doubles, exact below 2**53.
_MAX_FENCE = 2**53
_MAX_TTL = 10**9  # seconds (~31 years): larger values overflow PX / PEXPIRE
_TOMBSTONE_MS = 10_000


# -- argument checks ---------------------------------------------------------

def _check_ttl(value: Any, name: str) -> int:
    """Seconds (finite, > 0) as whole milliseconds >= 1."""
    seconds = check_finite(value, name)
    if seconds <= 0 or seconds > _MAX_TTL:
        raise ValueError(f"{name} must be > 0 and <= {_MAX_TTL} seconds, got {value!r}")
    return max(1, int(round(seconds * 1000)))


def _check_timeout(value: Any, name: str = "timeout") -> Optional[float]:
    if value is None:
        return None
    seconds = check_finite(value, name)
    if seconds < 0:
        raise ValueError(f"{name} must be >= 0 seconds or None, got {value!r}")
    return seconds


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _new_token() -> str:
    return secrets.token_hex(16)


# -- commands built / replies interpreted (shared with an async twin) -------

def _acquire_args(keys: Tuple[str, str], token: str, ttl_ms: int) -> Tuple[Tuple[str, str], Tuple[Any, ...]]:
    return keys, (token, ttl_ms)


def _parse_acquire(reply: Sequence[Any]) -> Tuple[bool, int, int]:
    """``(acquired, fencing_token, pttl_ms)`` from the acquire script's reply."""
    ok, fence, pttl = reply
    return int(ok) == 1, int(to_str(fence)), int(pttl)


def _release_args(key: str, tombstone: str, token: str, channel: str, ttl_ms: int) -> Tuple[Tuple[str, str], Tuple[Any, ...]]:
    # The tombstone outlives the retry policy's backoff (redis-py's default
    # gives up within ~6 s), so a replayed release is recognised.
    return (key, tombstone), (token, channel, max(ttl_ms, _TOMBSTONE_MS))


def _parse_release(reply: Any) -> bool:
    """True when released now or by an earlier run of the same call (a replay)."""
    return int(reply) in (1, 2)


def _extend_args(keys: Tuple[str, str], token: str, ms: int, add: bool) -> Tuple[Tuple[str, str], Tuple[Any, ...]]:
    return keys, (token, ms, "add" if add else "set", _new_token() if add else "")


def _parse_extend(reply: Any) -> int:
    """The new remaining ttl in ms, or 0 when the lock is not ours."""
    return int(reply)


def _release_on_exit(lock: Union["Lock", "Redlock"], exc_type: Any) -> None:
    """``with`` exit: release if held here; a lost lock raises unless an
    exception from the body is already in flight (it is not masked)."""
    if lock.token is None or lock._pid != os.getpid():
        return  # not held here (a forked child leaves its parent's lock alone)
    try:
        lock.release()
    except LockNotOwnedError:
        if exc_type is None:
            raise


# -- Lock --------------------------------------------------------------------

class Lock:
    """A lock on one Redis, with fencing tokens, optional renewal and waiting
    without polling.

    ``name`` is any str/bytes/int (escaped into the key); ``ttl`` (seconds) is
    mandatory, so a crashed holder frees the lock. Every acquire draws a fresh
    owner token (``.token``) and a fencing token (``.fencing_token``, strictly
    rising per name, still rising after a restart that lost all data).

    Keys (one hash tag, so one cluster slot): ``{prefix}:{name}`` holds the
    owner token, ``{prefix}:{name}:state`` (never expires) the fencing counter.
    Releases PUBLISH on ``{prefix}:{name}:released``, which waiters subscribe to,
    and leave ``{prefix}:{name}:done:<token>`` for max(ttl, 10 s) so that a
    replayed release is recognised.

    Cost: an uncontended acquire is one round trip, a release one more. A
    contended acquire subscribes, tries once more, then sleeps until a release
    is published or the holder's ttl runs out (a crashed holder publishes
    nothing); it never polls.

    All scripts are safe to replay under the client's retry policy: acquire
    succeeds when the key already holds our token, release answers "already
    released by us", extend-by-amount carries a request id.

    A ``Lock`` object holds one lock at a time and is not reentrant; threads
    share the name, not the object (each makes its own ``Lock``). After
    ``os.fork()`` the child does not own its parent's lock: it cannot release
    or renew it, and a ``with`` block exiting in the child leaves it alone.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> lock = Lock(r, "job:42", ttl=10)
        >>> lock.acquire(blocking=False)
        True
        >>> Lock(r, "job:42").acquire(blocking=False)
        False
        >>> lock.owned(), lock.fencing_token > 0
        (True, True)
        >>> lock.release()
        >>> server.stop()
    """

    def __init__(
        self,
        client: "redis.Redis",
        name: KeyPart,
        *,
        ttl: float = 10.0,
        auto_renew: bool = False,
        on_lost: Optional[Callable[["Lock"], Any]] = None,
        prefix: str = "lock",
    ) -> None:
        if on_lost is not None and not callable(on_lost):
            raise TypeError(f"on_lost must be callable or None, got {type(on_lost).__name__}")
        if not isinstance(auto_renew, bool):
            raise TypeError(f"auto_renew must be a bool, got {auto_renew!r}")
        self.client = client
        self.name = name
        space = KeySpace(prefix)
        self.key: str = space.tagged(name)
        self.state_key: str = space.tagged(name, "state")
        self.channel: str = space.tagged(name, "released")
        self._space = space
        self._ttl_ms = _check_ttl(ttl, "ttl")
        self.ttl: float = self._ttl_ms / 1000.0
        self.auto_renew = auto_renew
        self.on_lost = on_lost
        #: The owner token of the current hold (None when not held).
        self.token: Optional[str] = None
        #: The fencing token of the current (or last) hold.
        self.fencing_token: Optional[int] = None
        self._lost = False
        self._pid = os.getpid()
        self._watchdog: Optional[_Watchdog] = None

    @property
    def _keys(self) -> Tuple[str, str]:
        return (self.key, self.state_key)

    # -- acquire -----------------------------------------------------------
    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Take the lock; True when taken, False when ``blocking=False`` or
        ``timeout`` (seconds) ran out.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); r = server.client()
            >>> a, b = Lock(r, "x"), Lock(r, "x")
            >>> a.acquire(), b.acquire(timeout=0.1)
            (True, False)
            >>> server.stop()
        """
        if not isinstance(blocking, bool):
            raise TypeError(f"blocking must be a bool, got {blocking!r}")
        timeout = _check_timeout(timeout)
        if not blocking and timeout is not None:
            raise ValueError("timeout cannot be given with blocking=False")
        if self.token is not None and not self._lost and self._pid == os.getpid():
            raise LockError(f"{self.key!r} is already held by this Lock object; Lock is not reentrant")
        token = _new_token()
        deadline = None if timeout is None else time.monotonic() + timeout
        ok, fence, pttl = self._try(token)
        if ok:
            self._took(token, fence)
            return True
        if not blocking or timeout == 0:
            return False
        return self._wait(token, pttl, deadline)

    def _try(self, token: str) -> Tuple[bool, int, int]:
        keys, args = _acquire_args(self._keys, token, self._ttl_ms)
        return _parse_acquire(_ACQUIRE(self.client, keys, args))

    def _wait(self, token: str, pttl: int, deadline: Optional[float]) -> bool:
        # Subscribe first and wait for the confirmation, then try again: a
        # release published after that try cannot be missed. Each wake-up
        # (a release, or the holder's pttl running out: a crashed holder
        # publishes nothing) is followed by exactly one try. If the waiting
        # connection dies (CLIENT KILL, restart), a release may have been
        # missed: subscribe on a new connection and try again.
        pubsub = None
        try:
            while True:
                if pubsub is None:
                    pubsub = self.client.pubsub()
                    pubsub.subscribe(self.channel)  # raises if the server is unreachable
                    if not self._await_subscribed(pubsub, deadline):
                        pubsub.close()
                        pubsub = None
                ok, fence, pttl = self._try(token)
                if ok:
                    self._took(token, fence)
                    return True
                wait_s = (pttl + 1) / 1000.0 if pttl > 0 else self.ttl
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    wait_s = min(wait_s, remaining)
                if pubsub is None:
                    time.sleep(min(wait_s, 0.05))  # lost the subscription: back off briefly
                    continue
                try:
                    pubsub.get_message(timeout=wait_s)
                except redis.exceptions.ConnectionError as exc:
                    log.debug("waiting connection of %r lost (%r); resubscribing", self.key, exc)
                    pubsub.close()
                    pubsub = None
        finally:
            if pubsub is not None:
                pubsub.close()

    def _await_subscribed(self, pubsub: Any, deadline: Optional[float]) -> bool:
        """True once the server confirmed the subscription; False when the
        connection died first (or the deadline passed)."""
        try:
            while True:
                wait_s = self.ttl if deadline is None else max(0.0, deadline - time.monotonic())
                message = pubsub.get_message(timeout=wait_s)
                if message is not None and message.get("type") == "subscribe":
                    return True
                if deadline is not None and time.monotonic() >= deadline:
                    return False
        except redis.exceptions.ConnectionError:
            return False

    def _took(self, token: str, fence: int) -> None:
        self.token = token
        self.fencing_token = fence
        self._lost = False
        self._pid = os.getpid()
        if self.auto_renew:
            self._watchdog = _Watchdog(self)

    # -- release / extend -----------------------------------------------------
    def _held_token(self, action: str) -> str:
        if self.token is None:
            raise LockError(f"cannot {action} {self.key!r}: this Lock object does not hold it")
        if self._pid != os.getpid():
            raise LockError(
                f"cannot {action} {self.key!r}: it was acquired by process {self._pid}, "
                "a forked child does not own its parent's lock"
            )
        return self.token

    def release(self) -> None:
        """Release the lock; raises :class:`LockNotOwnedError` when it expired or
        another owner holds it (whose key is left untouched).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); r = server.client()
            >>> lock = Lock(r, "x", ttl=0.05); lock.acquire()
            True
            >>> import time; time.sleep(0.1)
            >>> try:
            ...     lock.release()
            ... except LockNotOwnedError:
            ...     print("expired")
            expired
            >>> server.stop()
        """
        token = self._held_token("release")
        self._stop_watchdog()
        keys, args = _release_args(self.key, self._space.tagged(self.name, "done", token),
                                   token, self.channel, self._ttl_ms)
        released = _parse_release(_RELEASE(self.client, keys, args))
        self.token = None
        self._lost = False
        if not released:
            raise LockNotOwnedError(f"cannot release {self.key!r}: the lock expired or has another owner")

    def extend(self, additional: Optional[float] = None) -> float:
        """Extend the hold; returns the new remaining ttl in seconds.

        ``additional=None`` resets the remaining ttl to ``ttl``; a number of
        seconds adds to the remaining ttl. Raises :class:`LockNotOwnedError`
        when the lock is no longer ours.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); r = server.client()
            >>> lock = Lock(r, "x", ttl=10); lock.acquire()
            True
            >>> 19 < lock.extend(10) <= 20
            True
            >>> lock.extend()
            10.0
            >>> server.stop()
        """
        token = self._held_token("extend")
        if additional is None:
            ms, add = self._ttl_ms, False
        else:
            ms, add = _check_ttl(additional, "additional"), True
        keys, args = _extend_args(self._keys, token, ms, add)
        new_ms = _parse_extend(_EXTEND(self.client, keys, args))
        if new_ms <= 0:
            self._lost = True
            self._stop_watchdog()
            raise LockNotOwnedError(f"cannot extend {self.key!r}: the lock expired or has another owner")
        return new_ms / 1000.0

    # -- state ----------------------------------------------------------------
    def locked(self) -> bool:
        """True when anyone holds the lock.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); r = server.client()
            >>> Lock(r, "x").locked()
            False
            >>> server.stop()
        """
        return bool(self.client.exists(self.key))

    def owned(self) -> bool:
        """True when this object holds the lock right now (asks Redis).

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); r = server.client()
            >>> lock = Lock(r, "x"); lock.owned()
            False
            >>> lock.acquire(); lock.owned()
            True
            True
            >>> server.stop()
        """
        token = self.token
        if token is None or self._lost or self._pid != os.getpid():
            return False
        return to_str(self.client.get(self.key)) == token

    # -- watchdog ---------------------------------------------------------
    def _stop_watchdog(self) -> None:
        dog, self._watchdog = self._watchdog, None
        if dog is not None:
            dog.stop()

    def _mark_lost(self) -> None:
        self._lost = True
        if self.on_lost is not None:
            try:
                self.on_lost(self)
            except Exception:
                log.exception("on_lost callback of %r raised", self.key)

    # -- context manager -------------------------------------------------------
    def __enter__(self) -> "Lock":
        if not self.acquire():
            raise LockError(f"could not acquire {self.key!r}")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        _release_on_exit(self, exc_type)

    def __del__(self) -> None:
        try:
            self._stop_watchdog()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "held" if self.token is not None and not self._lost else "free"
        return f"<Lock {self.key!r} ttl={self.ttl} {state} fencing_token={self.fencing_token}>"


class _Watchdog:
    """Renews a held lock every ttl/3 on a daemon thread.

    The thread keeps only a weak reference to the Lock, so a collected Lock
    stops it (the key then expires). A renewal that finds the lock gone, or
    no successful renewal for a whole ttl, marks the lock lost and calls
    ``on_lost``. Threads do not survive ``fork()``, and the child does not own
    the lock, so it never renews it.
    """

    __slots__ = ("_stop", "_thread", "_finalizer", "__weakref__")

    def __init__(self, lock: Lock) -> None:
        self._stop = threading.Event()
        self._finalizer = weakref.finalize(lock, self._stop.set)
        assert lock.token is not None
        self._thread = threading.Thread(
            target=_renew_loop,
            args=(weakref.ref(lock), self._stop, lock.client, lock._keys, lock.token, lock._ttl_ms),
            name=f"fastredis-lock-watchdog {lock.key}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._finalizer.detach()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


def _renew_loop(ref: "weakref.ref[Lock]", stop: threading.Event, client: Any,
                keys: Tuple[str, str], token: str, ttl_ms: int) -> None:
    period = ttl_ms / 3000.0
    last_ok = time.monotonic()
    pid = os.getpid()
    while not stop.wait(period):
        if os.getpid() != pid:
            return
        lock = ref()
        if lock is None:
            return
        try:
            _, args = _extend_args(keys, token, ttl_ms, add=False)
            alive = _parse_extend(_EXTEND(client, keys, args)) > 0
            if alive:
                last_ok = time.monotonic()
        except Exception as exc:  # a transient outage: try again next period
            log.warning("renewing %r failed: %r", keys[0], exc)
            alive = time.monotonic() - last_ok < ttl_ms / 1000.0
        if not alive:
            if not stop.is_set():
                lock._mark_lost()
            return
        del lock


# -- fenced writes ---------------------------------------------------------------

def _hash_tag(key: bytes) -> Optional[bytes]:
    """The part of ``key`` Redis Cluster hashes, when ``key`` has a hash tag."""
    start = key.find(b"{")
    if start < 0:
        return None
    end = key.find(b"}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1:end]


def fence_key_for(key: Union[str, bytes]) -> Union[str, bytes]:
    """The key holding the highest fencing token that wrote ``key``; it lands
    in ``key``'s cluster slot.

    Example::

        >>> fence_key_for("report"), fence_key_for("user:{7}:name")
        ('{report}:fence', 'user:{7}:name:fence')
    """
    if isinstance(key, str):
        raw = key.encode("utf-8", "surrogateescape")
    elif isinstance(key, (bytes, bytearray)):
        raw = bytes(key)
    else:
        raise TypeError(f"key must be str or bytes, got {type(key).__name__}")
    if not raw:
        raise ValueError("key must not be empty")
    if _hash_tag(raw) is not None:
        fence = raw + b":fence"
    elif b"{" in raw or b"}" in raw:
        # "{" + key + "}" would not hash as key does; the caller must choose.
        raise ValueError(f"cannot derive a fence key in the slot of {key!r}; pass fence_key=")
    else:
        fence = b"{" + raw + b"}:fence"
    return fence.decode("utf-8", "surrogateescape") if isinstance(key, str) else fence


def fenced_write(
    client: "redis.Redis",
    key: Union[str, bytes],
    value: Union[str, bytes, int, float],
    fencing_token: int,
    *,
    fence_key: Union[str, bytes, None] = None,
) -> bool:
    """SET ``key`` to ``value`` unless a newer fencing token has written it.

    Returns True when written, False when rejected (a holder that lost its
    lock writing late). ``fence_key`` (default :func:`fence_key_for`) keeps
    the highest token seen. Equal tokens may write again: one hold may write
    many times. One round trip, one Lua script.

    Example::

        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = server.client()
        >>> fenced_write(r, "doc", "new", fencing_token=20)
        True
        >>> fenced_write(r, "doc", "stale", fencing_token=10)
        False
        >>> r.get("doc")
        b'new'
        >>> server.stop()
    """
    if isinstance(fencing_token, bool) or not isinstance(fencing_token, int):
        raise TypeError(f"fencing_token must be an int, got {type(fencing_token).__name__}")
    if not 1 <= fencing_token <= _MAX_FENCE:
        raise ValueError(f"fencing_token must be in 1..2**53, got {fencing_token!r}")
    if isinstance(value, bool) or not isinstance(value, (str, bytes, bytearray, memoryview, int, float)):
        raise TypeError(f"value must be str, bytes, int or float, got {type(value).__name__}")
    if isinstance(value, float):
        check_finite(value, "value")
    if fence_key is None:
        fence_key = fence_key_for(key)
    elif not isinstance(fence_key, (str, bytes)) or not fence_key:
        raise TypeError("fence_key must be a non-empty str or bytes")
    return int(_FENCED_WRITE(client, (key, fence_key), (fencing_token, value))) == 1


# -- Redlock ----------------------------------------------------------------------

def _no_retry_clone(client: Any, node_timeout: float) -> "redis.Redis":
    """A client on the same server whose every call gives up after ``node_timeout``
    seconds, with no automatic retry (so a dead node costs one timeout, not ten)."""
    if isinstance(client, str):
        client = redis.Redis.from_url(client)
    pool = getattr(client, "connection_pool", None)
    if pool is None or not hasattr(pool, "connection_kwargs"):
        raise TypeError(f"Redlock needs redis.Redis clients (or URLs), got {type(client).__name__}")
    kwargs = dict(pool.connection_kwargs)
    kwargs.update(
        socket_timeout=node_timeout,
        socket_connect_timeout=node_timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
        retry_on_timeout=False,
    )
    new_pool = redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    return type(client)(connection_pool=new_pool)


class Redlock:
    """The Redlock algorithm over N independent Redis masters.

    Each attempt draws a token and runs the acquire script on every node at
    once; each call gives up after ``node_timeout`` (the clients are cloned
    without automatic retry). The lock is held when a quorum (N//2+1) took it
    and ``validity = ttl - elapsed - drift`` is still positive, where
    ``drift = ttl * drift_factor + 0.002`` s. Otherwise the attempt releases
    on every node and, up to ``retry_count`` more times, retries after a
    delay drawn uniformly from ``[0, retry_delay]``.

    Only trust the lock for ``validity`` seconds. Redlock assumes bounded
    clock drift and pauses; it offers no fencing token that storage could
    check (see the README for Kleppmann's critique): for correctness use
    :class:`Lock` with :func:`fenced_write`.

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

    def __init__(
        self,
        clients: Sequence[Union["redis.Redis", str]],
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
        self._ttl_ms = _check_ttl(ttl, "ttl")
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
        self.nodes: List["redis.Redis"] = [_no_retry_clone(c, self.node_timeout) for c in clients]
        self.quorum: int = len(self.nodes) // 2 + 1
        self.drift: float = self.ttl * self.drift_factor + 0.002
        #: The owner token of the current hold (None when not held).
        self.token: Optional[str] = None
        self.extensions = 0
        self._valid_until = 0.0
        self._pid = os.getpid()
        self._executor: Optional[ThreadPoolExecutor] = None
        self._executor_pid = 0
        self._finalizer: Optional[weakref.finalize] = None

    @property
    def _keys(self) -> Tuple[str, str]:
        return (self.key, self.state_key)

    # -- node fan-out ----------------------------------------------------------
    def _pool(self) -> ThreadPoolExecutor:
        # Threads do not survive fork(): a child builds its own pool.
        if self._executor is None or self._executor_pid != os.getpid():
            # 2N workers: calls still hanging on a stopped node never delay the next round.
            self._executor = ThreadPoolExecutor(max_workers=2 * len(self.nodes),
                                                thread_name_prefix="fastredis-redlock")
            self._executor_pid = os.getpid()
            if self._finalizer is not None:
                self._finalizer.detach()
            self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False)
        return self._executor

    def _submit(self, call: Callable[["redis.Redis"], bool]) -> List["Future[bool]"]:
        pool = self._pool()
        return [pool.submit(call, node) for node in self.nodes]

    def _count(self, futures: List["Future[bool]"], *, stop_at_quorum: bool) -> int:
        """Nodes that answered True; stops early once the quorum is reached or
        can no longer be reached (when ``stop_at_quorum``)."""
        ok = failed = 0
        n = len(futures)
        # Each call already gives up after node_timeout per socket operation;
        # this bound only guards against a call stuck elsewhere.
        guard = 3 * self.node_timeout + 0.05
        try:
            for f in as_completed(futures, timeout=guard):
                exc = f.exception()
                if exc is None and f.result():
                    ok += 1
                else:
                    failed += 1
                    if exc is not None:
                        log.debug("redlock node call failed: %r", exc)
                if stop_at_quorum and (ok >= self.quorum or failed > n - self.quorum):
                    break
        except _FuturesTimeout:
            pass
        return ok

    def _acquire_on(self, token: str) -> Callable[["redis.Redis"], bool]:
        keys, args = _acquire_args(self._keys, token, self._ttl_ms)
        return lambda node: _parse_acquire(_ACQUIRE(node, keys, args))[0]

    def _release_on(self, token: str) -> Callable[["redis.Redis"], bool]:
        keys, args = _release_args(self.key, self._space.tagged(self.name, "done", token),
                                   token, "", self._ttl_ms)
        return lambda node: _parse_release(_RELEASE(node, keys, args))

    def _extend_on(self, token: str) -> Callable[["redis.Redis"], bool]:
        keys, args = _extend_args(self._keys, token, self._ttl_ms, add=False)
        return lambda node: _parse_extend(_EXTEND(node, keys, args)) > 0

    # -- public API ----------------------------------------------------------------
    def acquire(self, blocking: bool = True) -> bool:
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
        attempts = 1 + (self.retry_count if blocking else 0)
        for attempt in range(attempts):
            token = _new_token()
            start = time.monotonic()
            taken = self._count(self._submit(self._acquire_on(token)), stop_at_quorum=True)
            valid_until = start + self.ttl - self.drift
            if taken >= self.quorum and valid_until > time.monotonic():
                self.token, self._valid_until, self.extensions = token, valid_until, 0
                self._pid = os.getpid()
                return True
            # Release everywhere (a node may have taken it after we stopped
            # listening); the release overlaps the retry delay.
            pending = self._submit(self._release_on(token))
            if attempt + 1 < attempts:
                time.sleep(random.uniform(0, self.retry_delay))
            wait(pending, timeout=3 * self.node_timeout + 0.05)
        return False

    @property
    def validity(self) -> float:
        """Seconds the lock can still be trusted (0 when not held): at most
        ``ttl - elapsed - drift`` measured from the start of the acquire."""
        if self.token is None:
            return 0.0
        return max(0.0, self._valid_until - time.monotonic())

    def owned(self) -> bool:
        """True while held with validity left (local clock; no round trip)."""
        return self.token is not None and self._pid == os.getpid() and self.validity > 0

    def locked(self) -> bool:
        """True when a quorum of nodes has the lock key (anyone's)."""
        key = self.key
        return self._count(self._submit(lambda node: bool(node.exists(key))), stop_at_quorum=True) >= self.quorum

    def extend(self) -> float:
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
        start = time.monotonic()
        done = self._count(self._submit(self._extend_on(token)), stop_at_quorum=True)
        valid_until = start + self.ttl - self.drift
        if done >= self.quorum and valid_until > time.monotonic():
            self._valid_until = valid_until
            self.extensions += 1
            return self.validity
        self.token = None
        self._count(self._submit(self._release_on(token)), stop_at_quorum=False)
        raise LockNotOwnedError(f"cannot extend {self.key!r}: only {done} of {len(self.nodes)} nodes still had it")

    def release(self) -> None:
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
        done = self._count(self._submit(self._release_on(token)), stop_at_quorum=False)
        if done < self.quorum:
            raise LockNotOwnedError(
                f"released {self.key!r} on {done} of {len(self.nodes)} nodes, fewer than the quorum {self.quorum}"
            )

    def _held_token(self, action: str) -> str:
        if self.token is None:
            raise LockError(f"cannot {action} {self.key!r}: this Redlock object does not hold it")
        if self._pid != os.getpid():
            raise LockError(f"cannot {action} {self.key!r}: it was acquired by process {self._pid}")
        return self.token

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

    def __enter__(self) -> "Redlock":
        if not self.acquire():
            raise LockError(f"could not acquire {self.key!r} on a quorum of {len(self.nodes)} nodes")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        _release_on_exit(self, exc_type)

    def __repr__(self) -> str:
        return f"<Redlock {self.key!r} nodes={len(self.nodes)} quorum={self.quorum} validity={self.validity:.3f}>"
