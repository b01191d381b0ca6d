"""Distributed locks: :class:`Lock` on one Redis (:class:`~fastredis.Redlock`
over N masters lives in :mod:`fastredis.patterns.redlock`), and
:func:`fenced_write`, the storage-side check that makes a lock safe.

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

import contextlib
import logging
import os
import secrets
import threading
import time
import weakref
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

from .._text import check_finite, to_str
from ..exceptions import LockError, LockNotOwnedError
from .. import metrics as _metrics
from ..keys import KeyPart, KeySpace
from ..scripts import LuaScript, run
from ._clients import check_sync_client
from ._plan import Call, Listen, Plan, Sleep, Steps, Subscribe, script_call, sync_operation

__all__ = ["Lock", "fenced_write", "fence_key_for", "plan_fenced_write", "SyncHold", "AsyncHold"]

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

def check_ttl(value: Any, name: str) -> int:
    """Seconds (finite, > 0) as whole milliseconds >= 1 (``TypeError`` for a non-number).

    Example::

        >>> check_ttl(1.5, "ttl")
        1500
    """
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


def new_token() -> str:
    """A fresh owner token: 128 random bits as hex.

    Example::

        >>> len(new_token())
        32
    """
    return secrets.token_hex(16)


# -- commands built / replies interpreted -----------------------------------

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
    return keys, (token, ms, "add" if add else "set", new_token() if add else "")


def acquire_plan(keys: Tuple[str, str], token: str, ttl_ms: int) -> Plan[Tuple[bool, int, int]]:
    """One try of the acquire script: ``(acquired, fencing_token, pttl_ms)``.

    Example::

        >>> acquire_plan(("lock:{x}", "lock:{x}:state"), "tok", 1000).calls[0].args[3:]
        ('lock:{x}', 'lock:{x}:state', 'tok', 1000)
    """
    return Plan.one(script_call(_ACQUIRE, *_acquire_args(keys, token, ttl_ms)), _parse_acquire)


def release_plan(space: KeySpace, name: KeyPart, key: str, token: str, channel: str, ttl_ms: int) -> Plan[bool]:
    """The release script for ``token``: True when released (now or by a replay).

    Example::

        >>> release_plan(KeySpace("lock"), "x", "lock:{x}", "tok", "", 5000).calls[0].args[3:5]
        ('lock:{x}', 'lock:{x}:done:tok')
    """
    keys, args = _release_args(key, space.tagged(name, "done", token), token, channel, ttl_ms)
    return Plan.one(script_call(_RELEASE, keys, args), _parse_release)


def extend_plan(keys: Tuple[str, str], token: str, ms: int, add: bool) -> Plan[int]:
    """The extend script: the new remaining ttl in ms, or 0 when the lock is not ours.

    Example::

        >>> extend_plan(("lock:{x}", "lock:{x}:state"), "tok", 1000, False).calls[0].args[5:8]
        ('tok', 1000, 'set')
    """
    return Plan.one(script_call(_EXTEND, *_extend_args(keys, token, ms, add)), int)


def held_here(lock: Any) -> bool:
    """Whether ``lock`` is held by this process (a ``with`` exit releases only then:
    a forked child leaves its parent's lock alone).

    Example::

        >>> class Free: token = None
        >>> held_here(Free())
        False
    """
    return lock.token is not None and lock._pid == os.getpid()


@contextlib.contextmanager
def keep_body_error(exc_type: Any) -> Iterator[None]:
    """Around a ``with`` exit's release: a lost lock raises
    :class:`LockNotOwnedError`, unless an exception from the body is already
    in flight (which it must not mask).

    Example::

        >>> with keep_body_error(KeyError):
        ...     raise LockNotOwnedError("lost while the body failed")
    """
    try:
        yield
    except LockNotOwnedError:
        if exc_type is None:
            raise


class _Hold:
    key: str

    def _not_taken(self) -> str:
        return f"could not acquire {self.key!r}"


class SyncHold(_Hold):
    """``with`` for a lock shell: acquire (LockError if not taken), then release
    on exit if held here, without masking an exception from the body.

    Example::

        >>> class Fake(SyncHold):
        ...     token, key, _pid = None, "k", os.getpid()
        ...     def acquire(self): self.token = "t"; return True
        ...     def release(self): self.token = None
        >>> with Fake() as held: held.token
        't'
    """

    def __enter__(self) -> Any:
        if not self.acquire():  # type: ignore[attr-defined]
            raise LockError(self._not_taken())
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if held_here(self):
            with keep_body_error(exc_type):
                self.release()  # type: ignore[attr-defined]


class AsyncHold(_Hold):
    """``async with`` for an asyncio lock shell (see :class:`SyncHold`).

    Example::

        >>> import asyncio
        >>> class Fake(AsyncHold):
        ...     token, key, _pid = None, "k", os.getpid()
        ...     async def acquire(self): self.token = "t"; return True
        ...     async def release(self): self.token = None
        >>> async def main():
        ...     async with Fake() as held:
        ...         return held.token
        >>> asyncio.run(main())
        't'
    """

    async def __aenter__(self) -> Any:
        if not await self.acquire():  # type: ignore[attr-defined]
            raise LockError(self._not_taken())
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if held_here(self):
            with keep_body_error(exc_type):
                await self.release()  # type: ignore[attr-defined]


class Renewal:
    """When a watchdog renews a held lock, and when it gives it up as lost (no I/O).

    Renew every ttl/3; a renewal that finds the lock gone, or no successful
    renewal for a whole ttl (the server unreachable), means lost.

    Example::

        >>> r = Renewal(("lock:{x}", "lock:{x}:state"), "tok", 900)
        >>> r.period, r.still_valid(r.last_ok + 0.5), r.still_valid(r.last_ok + 1.0)
        (0.3, True, False)
    """

    __slots__ = ("keys", "token", "ttl_ms", "period", "last_ok")

    def __init__(self, keys: Tuple[str, str], token: str, ttl_ms: int) -> None:
        self.keys = keys
        self.token = token
        self.ttl_ms = ttl_ms
        self.period = ttl_ms / 3000.0
        self.last_ok = time.monotonic()

    def plan(self) -> Plan[bool]:
        """One renewal: True while the lock is still ours."""
        extend = extend_plan(self.keys, self.token, self.ttl_ms, add=False)
        return Plan.one(extend.calls[0], self._judge)

    def _judge(self, reply: Any) -> bool:
        alive = int(reply) > 0
        if alive:
            self.last_ok = time.monotonic()
        return alive

    def still_valid(self, now: float) -> bool:
        """After a failed renewal (an outage): may the lock still be ours?"""
        return now - self.last_ok < self.ttl_ms / 1000.0


# -- Lock --------------------------------------------------------------------

class _LockPlans:
    """What a :class:`Lock` decides (no I/O), shared with its asyncio twin:
    the acquire steps (try, subscribe, try again, wait for a release or the
    holder's pttl), release, extend, and the state of the current hold."""

    _check_client: Callable[[Any, str], Any] = staticmethod(check_sync_client)

    def __init__(
        self,
        client: Any,
        name: KeyPart,
        *,
        ttl: float = 10.0,
        auto_renew: bool = False,
        on_lost: Optional[Callable[[Any], Any]] = None,
        prefix: str = "lock",
    ) -> None:
        if on_lost is not None and not callable(on_lost):
            raise TypeError(f"on_lost must be callable or None, got {type(on_lost).__name__}")
        if not isinstance(auto_renew, bool):
            raise TypeError(f"auto_renew must be a bool, got {auto_renew!r}")
        self._ttl_ms = check_ttl(ttl, "ttl")
        self.client = self._check_client(client, type(self).__name__)
        self.name = name
        space = KeySpace(prefix)
        self.key: str = space.tagged(name)
        self.state_key: str = space.tagged(name, "state")
        self.channel: str = space.tagged(name, "released")
        self._space = space
        self.ttl: float = self._ttl_ms / 1000.0
        self.auto_renew = auto_renew
        self.on_lost = on_lost
        #: The owner token of the current hold (None when not held).
        self.token: Optional[str] = None
        #: The fencing token of the current (or last) hold.
        self.fencing_token: Optional[int] = None
        self._lost = False
        self._pid = os.getpid()
        self._trying: Optional[str] = None  # the token of an acquire in progress

    @property
    def _keys(self) -> Tuple[str, str]:
        return (self.key, self.state_key)

    # -- acquire -----------------------------------------------------------
    def plan_acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> Steps[bool]:
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
        steps = self._acquire_steps(blocking, timeout)
        return _metrics.timed_acquire(self, steps) if _metrics.ON else steps

    def _acquire_steps(self, blocking: bool, timeout: Optional[float]) -> Steps[bool]:
        token = new_token()
        deadline = None if timeout is None else time.monotonic() + timeout
        ok, fence, pttl = yield from self._try(token)
        if ok:
            return self._took(token, fence)
        if not blocking or timeout == 0:
            return False
        # Subscribe first and wait for the confirmation, then try again: a
        # release published after that try cannot be missed. Each wake-up
        # (a release, or the holder's pttl running out: a crashed holder
        # publishes nothing) is followed by exactly one try. If the waiting
        # connection dies (CLIENT KILL, restart), a release may have been
        # missed: subscribe on a new connection and try again.
        subscribed: Optional[bool] = False
        while True:
            if not subscribed:
                wait_s = self.ttl if deadline is None else max(0.0, deadline - time.monotonic())
                subscribed = yield Subscribe(self.channel, wait_s)
            ok, fence, pttl = yield from self._try(token)
            if ok:
                return self._took(token, fence)
            wait_s = (pttl + 1) / 1000.0 if pttl > 0 else self.ttl
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                wait_s = min(wait_s, remaining)
            if subscribed is None:  # the client cannot subscribe (an asyncio cluster): sleep
                yield Sleep(min(wait_s, 0.1))
                continue
            if not subscribed:
                yield Sleep(min(wait_s, 0.05))  # lost the subscription: back off briefly
                continue
            heard = yield Listen(wait_s)
            if heard is None:
                log.debug("waiting connection of %r lost; resubscribing", self.key)
                subscribed = False

    def _try(self, token: str) -> Steps[Tuple[bool, int, int]]:
        # While the script is in flight, _trying names its token: a shell whose
        # acquire is interrupted there (an asyncio cancellation) releases it.
        self._trying = token
        result = yield acquire_plan(self._keys, token, self._ttl_ms)
        self._trying = None
        return result

    def _took(self, token: str, fence: int) -> bool:
        self.token = token
        self.fencing_token = fence
        self._lost = False
        self._pid = os.getpid()
        return True

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

    def plan_release(self) -> Plan[None]:
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
        release = release_plan(self._space, self.name, self.key, token, self.channel, self._ttl_ms)

        def interpret(reply: Any) -> None:
            known_lost, self._lost = self._lost, False
            self.token = None
            if not release.interpret(reply):
                if _metrics.ON and not known_lost:  # a watchdog that gave up counted it already
                    _metrics.lock_lost(self)
                raise LockNotOwnedError(f"cannot release {self.key!r}: the lock expired or has another owner")

        return Plan.one(release.calls[0], interpret)

    def plan_extend(self, additional: Optional[float] = None) -> Plan[float]:
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
            ms, add = check_ttl(additional, "additional"), True

        def interpret(reply: Any) -> float:
            new_ms = int(reply)
            if new_ms <= 0:
                if _metrics.ON and not self._lost:
                    _metrics.lock_lost(self)
                self._lost = True
                raise LockNotOwnedError(f"cannot extend {self.key!r}: the lock expired or has another owner")
            return new_ms / 1000.0

        return Plan.one(extend_plan(self._keys, token, ms, add).calls[0], interpret)

    # -- state ----------------------------------------------------------------
    def plan_locked(self) -> Plan[bool]:
        """True when anyone holds the lock.

        Example::

            >>> from fastredis.server import RedisServer
            >>> server = RedisServer(); r = server.client()
            >>> Lock(r, "x").locked()
            False
            >>> server.stop()
        """
        return Plan.one(Call(("EXISTS", self.key)), bool)

    def plan_owned(self) -> Plan[bool]:
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
            return Plan.done(False)
        return Plan.one(Call(("GET", self.key)), lambda held: to_str(held) == token)

    def _mark_lost(self) -> None:
        if _metrics.ON and not self._lost:
            _metrics.lock_lost(self)
        self._lost = True
        if self.on_lost is not None:
            try:
                self.on_lost(self)
            except Exception:
                log.exception("on_lost callback of %r raised", self.key)

    def _renewal(self) -> Renewal:
        assert self.token is not None
        return Renewal(self._keys, self.token, self._ttl_ms)

    def __repr__(self) -> str:
        state = "held" if self.token is not None and not self._lost else "free"
        return f"<{type(self).__name__} {self.key!r} ttl={self.ttl} {state} fencing_token={self.fencing_token}>"


class Lock(_LockPlans, SyncHold):
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

    _watchdog: "Optional[_Watchdog]" = None
    locked = sync_operation(_LockPlans.plan_locked)
    owned = sync_operation(_LockPlans.plan_owned)

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        ok = run(self.client, self.plan_acquire(blocking, timeout))
        if ok and self.auto_renew:
            self._watchdog = _Watchdog(self)
        return ok

    def release(self) -> None:
        self._stop_watchdog()
        run(self.client, self.plan_release())

    def extend(self, additional: Optional[float] = None) -> float:
        try:
            return run(self.client, self.plan_extend(additional))
        except LockNotOwnedError:
            self._stop_watchdog()
            raise

    for _op in (acquire, release, extend):  # the plans document the operations
        _op.__doc__ = getattr(_LockPlans, "plan_" + _op.__name__).__doc__
    del _op

    def _stop_watchdog(self) -> None:
        dog, self._watchdog = self._watchdog, None
        if dog is not None:
            dog.stop()

    def __del__(self) -> None:
        try:
            self._stop_watchdog()
        except Exception:
            pass


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
        self._thread = threading.Thread(
            target=_renew_loop,
            args=(weakref.ref(lock), self._stop, lock.client, lock._renewal()),
            name=f"fastredis-lock-watchdog {lock.key}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._finalizer.detach()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


def _renew_loop(ref: "weakref.ref[Lock]", stop: threading.Event, client: Any, renewal: Renewal) -> None:
    pid = os.getpid()
    while not stop.wait(renewal.period):
        if os.getpid() != pid:
            return
        lock = ref()
        if lock is None:
            return
        try:
            alive = run(client, renewal.plan())
        except Exception as exc:  # a transient outage: try again next period
            log.warning("renewing %r failed: %r", renewal.keys[0], exc)
            alive = renewal.still_valid(time.monotonic())
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


def plan_fenced_write(
    key: Union[str, bytes],
    value: Union[str, bytes, int, float],
    fencing_token: int,
    *,
    fence_key: Union[str, bytes, None] = None,
) -> Plan[bool]:
    """The plan of :func:`fenced_write` (no I/O): the checked arguments and the script.

    Example::

        >>> plan_fenced_write("doc", "v", 7).calls[0].args[3:]
        ('doc', '{doc}:fence', 7, 'v')
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
    return Plan.one(script_call(_FENCED_WRITE, (key, fence_key), (fencing_token, value)), _is_one)


def _is_one(reply: Any) -> bool:
    return int(reply) == 1


def fenced_write(
    client: Any,
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
    return run(check_sync_client(client, "fenced_write"), plan_fenced_write(key, value, fencing_token, fence_key=fence_key))
