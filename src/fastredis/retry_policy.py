"""The write-retry policy: a write that may have reached the server is never
re-sent by default.

redis-py re-sends a whole command or pipeline after a connection error or
timeout, even when its bytes already reached the server (measured: one INCR
applied 2 to 11 times and reported as a success). fastredis instead:

- retries as redis-py does when the failure came before any byte of the
  command was written (connecting, the health-check PING);
- after that, re-sends only what is known idempotent: commands the server
  flags ``readonly`` and not ``may_replicate`` (the generated table in
  ``_readonly_commands``, plus PING, ECHO and SCRIPT LOAD), and Lua scripts whose header
  says ``idempotent: yes`` (or ``LuaScript(..., idempotent=True)``);
- re-sends a pipeline only if every command in it is idempotent, and a
  transaction never once EXEC may have been written;
- otherwise raises :class:`~fastredis.exceptions.OutcomeUnknownConnectionError`
  or :class:`~fastredis.exceptions.OutcomeUnknownTimeoutError` (redis-py's
  ``ConnectionError`` / ``TimeoutError``), naming the commands whose outcome
  is unknown.

``retry_writes=True`` on the client restores redis-py's behaviour.

Example::

    >>> is_idempotent(("GET", "k")), is_idempotent(("INCR", "k"))
    (True, False)
    >>> is_idempotent(("OBJECT", "ENCODING", "k")), is_idempotent(("CONFIG GET", "maxmemory"))
    (True, False)
"""

from __future__ import annotations

import hashlib
import socket
import time
from typing import Any, Awaitable, Callable, Iterable, List, Optional, Sequence, Set, TypeVar

from redis.exceptions import AuthenticationError, BusyLoadingError, ConnectionError, TimeoutError
from redis.connection import Connection as _Connection
from redis.retry import Retry as _Retry

from ._readonly_commands import READONLY
from .connection import is_fast_connection
from .exceptions import OutcomeUnknownConnectionError, OutcomeUnknownError, OutcomeUnknownTimeoutError

__all__ = [
    "is_idempotent",
    "register_idempotent_script",
    "call_with_policy",
    "acall_with_policy",
    "NotWritten",
    "outcome_unknown",
]

T = TypeVar("T")

# Not flagged readonly by the server, but re-sending them changes nothing.
_ALSO_IDEMPOTENT = frozenset({"PING", "ECHO", "SCRIPT|LOAD"})
_IDEMPOTENT = READONLY | _ALSO_IDEMPOTENT
# Commands with subcommands in the table ("OBJECT" for "OBJECT|ENCODING").
_CONTAINERS = frozenset(name.split("|", 1)[0] for name in _IDEMPOTENT if "|" in name)
_SCRIPT_COMMANDS = frozenset({"EVALSHA", "EVAL"})
# SHA1 (hex, lower case) of every Lua script declared idempotent.
_IDEMPOTENT_SHAS: Set[str] = set()
_SEND_COMMAND = _Connection.send_command
_CONNECTION_ERRORS = (ConnectionError, TimeoutError, socket.timeout)
# Error replies redis-py raises as ConnectionError (also from parsers that do
# not mark replies, see FastParser._reply_error).
_REFUSALS = (BusyLoadingError, AuthenticationError)


def register_idempotent_script(sha: str) -> None:
    """Declare the script with SHA1 ``sha`` safe to re-send (``LuaScript`` does
    this for scripts whose header says ``idempotent: yes``).

    Example::

        >>> register_idempotent_script("0" * 40)
        >>> is_idempotent(("EVALSHA", "0" * 40, 0))
        True
    """
    _IDEMPOTENT_SHAS.add(sha.lower())


def _text(x: Any) -> str:
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).decode("utf-8", "replace")
    return str(x)


def is_idempotent(args: Sequence[Any]) -> bool:
    """Whether the command ``args`` (as passed to ``execute_command``) may be
    re-sent after it may have reached the server.

    Example::

        >>> is_idempotent(("SET", "k", "v")), is_idempotent(("XREAD", "STREAMS", "s", "0"))
        (False, True)
    """
    if not args:
        return False
    first = _text(args[0]).upper()
    if first in _IDEMPOTENT:
        return True
    parts = first.split()
    if not parts:
        return False
    name = parts[0]
    if name in _SCRIPT_COMMANDS and len(args) > 1:
        body = args[1]
        if name == "EVAL":
            raw = body if isinstance(body, bytes) else _text(body).encode("utf-8")
            return hashlib.sha1(raw).hexdigest() in _IDEMPOTENT_SHAS
        return _text(body).lower() in _IDEMPOTENT_SHAS
    if name in _CONTAINERS:
        sub = parts[1] if len(parts) > 1 else (_text(args[1]).upper() if len(args) > 1 else "")
        return f"{name}|{sub}" in _IDEMPOTENT
    return name in _IDEMPOTENT


def outcome_unknown(error: BaseException, commands: Sequence[Sequence[Any]]) -> OutcomeUnknownError:
    """The outcome-unknown error for ``error``, naming ``commands``.

    Example::

        >>> e = outcome_unknown(TimeoutError("Timeout reading from x"), [("INCR", "n")])
        >>> type(e).__name__, e.commands
        ('OutcomeUnknownTimeoutError', [('INCR', 'n')])
        >>> print(e)
        Timeout reading from x; outcome unknown for INCR n: it may have reached the server and is not idempotent, so it was not re-sent (retry_writes=True re-sends as redis-py does)
    """
    cls = OutcomeUnknownTimeoutError if isinstance(error, (TimeoutError, socket.timeout)) else OutcomeUnknownConnectionError
    cmds = [tuple(c) for c in commands]
    shown = "; ".join(" ".join(_text(a) for a in c)[:80] for c in cmds[:3])
    if len(cmds) > 3:
        shown += f"; and {len(cmds) - 3} more"
    one = len(cmds) == 1
    message = (
        f"{error}; outcome unknown for {shown}: {'it' if one else 'they'} may have reached the server "
        f"and {'is' if one else 'are'} not idempotent, so {'it was' if one else 'they were'} not re-sent "
        "(retry_writes=True re-sends as redis-py does)"
    )
    return cls(message, commands=cmds)


def call_with_policy(
    conn: Any,
    do: Callable[[], T],
    fail: Callable[[Exception, int], Any],
    commands: Any,
    retry_writes: bool = False,
    transaction: bool = False,
) -> T:
    """Run ``do()`` on ``conn`` under ``conn.retry``, with the write-retry policy.

    ``fail(error, failure_count)`` runs before each retry (it disconnects);
    ``commands`` lists what ``do`` sends: a sequence of argument tuples, or a
    callable returning one (called only after a failure). Before each attempt a connection fastredis drives is connected
    and health-checked, so a failure there is known to precede any write;
    for any other connection every failure counts as after a write.

    Example::

        >>> class Conn:  # a stand-in whose writes always time out
        ...     from redis.retry import Retry
        ...     from redis.backoff import NoBackoff
        ...     retry = Retry(NoBackoff(), 3)
        >>> calls = []
        >>> def send():
        ...     calls.append(1)
        ...     raise TimeoutError("Timeout reading from socket")
        >>> try:
        ...     call_with_policy(Conn(), send, lambda e, n: None, lambda: [("INCR", "n")])
        ... except OutcomeUnknownError as e:
        ...     print(len(calls), type(e).__name__)
        1 OutcomeUnknownTimeoutError
        >>> calls.clear()
        >>> try:
        ...     call_with_policy(Conn(), send, lambda e, n: None, lambda: [("GET", "n")])
        ... except TimeoutError as e:
        ...     print(len(calls), type(e).__name__)
        4 TimeoutError
    """
    retry = conn.retry
    if type(retry).call_with_retry is not _Retry.call_with_retry or not hasattr(retry, "_backoff"):
        return _call_with_user_retry(conn, do, fail, commands, retry_writes, transaction)
    # redis-py's Retry.call_with_retry, inlined (same order: is the error
    # retryable, then fail(), then the retry budget, then the backoff), so the
    # success path costs no closures.
    owned = is_fast_connection(conn)
    backoff = retry._backoff
    backoff.reset()
    supported = retry._supported_errors
    failures = 0
    while True:
        written = False
        try:
            if owned:
                _ready(conn, commands)
            written = True
            return do()
        except supported as error:
            if written and not retry_writes and _lost(error) and not _resendable(commands, transaction):
                raise _held_back(conn, error, commands, transaction) from error
            failures += 1
            fail(error, failures)
            if retry._retries >= 0 and failures > retry._retries:
                raise
            pause = backoff.compute(failures)
            if pause > 0:
                time.sleep(pause)


def _lost(error: BaseException) -> bool:
    """Whether ``error`` leaves a command's outcome unknown: a lost
    connection or a timeout, not an error reply that redis-py happens to map
    to ``ConnectionError`` (LOADING, AUTH failures, max clients): the server
    answered those, and did not run the command."""
    return isinstance(error, _CONNECTION_ERRORS) and not (
        getattr(error, "server_reply", False) or isinstance(error, _REFUSALS)
    )


def _ready(conn: Any, commands: Any) -> None:
    """Connect, drop a connection the server closed while idle, health-check:
    a failure here is known to come before any byte of the command.

    The idle-close check costs a ``poll``; a single read-only command skips
    it, since its failure would be retried anyway."""
    if conn._sock is None:
        conn.connect()
    elif not (type(commands) is tuple and len(commands) == 1 and commands[0][0] in _IDEMPOTENT) and conn._parser.peer_closed():
        conn.disconnect()
        raise ConnectionError("Connection closed by server.")
    if conn.health_check_interval and _own_send(conn):
        # Before the command, so a failing PING is known to precede it. A
        # patched send_command keeps redis-py's order (PING inside it).
        conn.check_health()


def _own_send(conn: Any) -> bool:
    return type(conn).send_command is _SEND_COMMAND and "send_command" not in conn.__dict__


def _listed(commands: Any) -> Iterable[Sequence[Any]]:
    return commands() if callable(commands) else commands


def _resendable(commands: Any, transaction: bool) -> bool:
    return not transaction and all(is_idempotent(c) for c in _listed(commands))


def _held_back(conn: Any, error: BaseException, commands: Any, transaction: bool) -> OutcomeUnknownError:
    try:
        conn.disconnect()
    except Exception:
        pass
    listed = list(_listed(commands))
    return outcome_unknown(error, listed if transaction else [c for c in listed if not is_idempotent(c)])


def _call_with_user_retry(
    conn: Any,
    do: Callable[[], T],
    fail: Callable[[Exception, int], Any],
    commands: Any,
    retry_writes: bool,
    transaction: bool,
) -> T:
    """The policy around a user's own ``Retry`` subclass, through its ``call_with_retry``."""
    owned = is_fast_connection(conn)
    state = [False, False]  # [this attempt may have written, a write was held back]

    def attempt() -> T:
        state[0] = False
        if owned:
            _ready(conn, commands)
        state[0] = True
        return do()

    def retryable(error: Exception) -> bool:
        if retry_writes or not state[0] or not _lost(error) or _resendable(commands, transaction):
            return True
        state[1] = True
        return False

    try:
        return conn.retry.call_with_retry(attempt, fail, is_retryable=retryable, with_failure_count=True)
    except _CONNECTION_ERRORS as error:
        if not state[1]:
            raise
        raise _held_back(conn, error, commands, transaction) from error


class NotWritten(Exception):
    """Raised by an attempt that failed before any byte of its commands was
    written (the health-check PING, a queue that never reached the socket):
    re-sending is safe. ``error`` is the cause, what the caller finally sees.
    ``final=True`` marks a failure to open a connection, which redis-py does
    not retry at the command level either (the connection's own ``connect()``
    already retried it).

    Example::

        >>> e = NotWritten(ConnectionError("Connection refused"))
        >>> type(e.error).__name__, str(e.error), e.final
        ('ConnectionError', 'Connection refused', False)
    """

    def __init__(self, error: BaseException, final: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.final = final


class _Final(Exception):
    """Carries a final error past ``Retry.call_with_retry`` (not a RedisError)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


async def acall_with_policy(
    retry: Any,
    attempt: Callable[[], Awaitable[T]],
    fail: Callable[[Exception, int], Awaitable[Any]],
    commands: Callable[[], Iterable[Sequence[Any]]],
    *,
    retry_writes: bool = False,
    transaction: bool = False,
    first_error: Optional[BaseException] = None,
    abandon: Optional[Callable[[], Awaitable[Any]]] = None,
) -> T:
    """The asyncio twin of :func:`call_with_policy`: run ``attempt()`` under
    ``retry`` (a ``redis.asyncio.retry.Retry``) with the write-retry policy.

    ``attempt()`` raises :class:`NotWritten` for a failure known to precede
    any write; any other connection error or timeout counts as after a
    write. ``fail(error, failure_count)`` is awaited before each retry;
    ``commands()`` lists what ``attempt`` sends, and is called only after a
    failure. ``first_error``, when given, is the failure of an attempt the
    caller already made (so the happy path costs no retry machinery).
    ``abandon()`` is awaited when a write is held back (it drops the
    connection, whose state is unknown).

    Example::

        >>> import asyncio
        >>> from redis.asyncio.retry import Retry
        >>> from redis.backoff import NoBackoff
        >>> calls = []
        >>> async def send():
        ...     calls.append(1)
        ...     raise TimeoutError("Timeout reading from socket")
        >>> async def nothing(error, count):
        ...     pass
        >>> async def main(command):
        ...     try:
        ...         await acall_with_policy(Retry(NoBackoff(), 3), send, nothing, lambda: [command])
        ...     except TimeoutError as e:
        ...         return len(calls), type(e).__name__
        >>> asyncio.run(main(("INCR", "n")))
        (1, 'OutcomeUnknownTimeoutError')
        >>> calls.clear(); asyncio.run(main(("GET", "n")))
        (4, 'TimeoutError')
    """
    state = [False, False]  # [this attempt may have written, a write was held back]
    first: List[BaseException] = [first_error] if first_error is not None else []

    async def do() -> T:
        if first:
            error = first.pop()
            if isinstance(error, NotWritten):
                state[0] = False
                if error.final:
                    raise _Final(error.error)
                raise error.error
            state[0] = True
            raise error
        state[0] = True
        try:
            return await attempt()
        except NotWritten as e:
            state[0] = False
            if e.final:
                raise _Final(e.error) from None
            raise e.error from None

    def retryable(error: Exception) -> bool:
        if retry_writes or not state[0] or not isinstance(error, _CONNECTION_ERRORS):
            return True
        if not transaction and all(is_idempotent(c) for c in commands()):
            return True
        state[1] = True
        return False

    try:
        return await retry.call_with_retry(do, fail, is_retryable=retryable, with_failure_count=True)
    except _Final as final:
        raise final.error from None
    except _CONNECTION_ERRORS as error:
        if not state[1]:
            raise
        if abandon is not None:
            try:
                await abandon()
            except Exception:
                pass
        unknown = list(commands()) if transaction else [c for c in commands() if not is_idempotent(c)]
        raise outcome_unknown(error, unknown) from error
