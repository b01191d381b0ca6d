"""Connections and parsing: which connections fastredis drives itself, and how.

- :class:`FastParser` is redis-py's hiredis parser with the core's reader
  inside, so error classes, push frames and maintenance notifications stay
  redis-py's.
- :func:`read_replies` reads a whole pipeline's replies in one batched parse.
- :func:`is_fast_connection` tells a connection fastredis may drive itself
  (a plain, TLS, unix-socket or Sentinel-managed connection with a
  :class:`FastParser`) from one it does not own (a mock, a user subclass, a
  client-side-caching proxy): those take redis-py's own paths.
- :func:`install_fast_parser` gives a pool's new connections the fast parser,
  for pools built by the client and by the user alike.

Example::

    >>> import redis
    >>> pool = redis.ConnectionPool(host="localhost", port=6379)
    >>> install_fast_parser(pool)
    True
    >>> pool.connection_kwargs["parser_class"] is FastParser
    True
    >>> install_fast_parser(redis.ConnectionPool(connection_class=type("Mine", (redis.Connection,), {})))
    False
"""

from __future__ import annotations

import os
import select
import socket
import time
from typing import Any, List, Optional, Tuple

import redis.connection
from redis.exceptions import ConnectionError, ReadOnlyError, ResponseError, TimeoutError

from . import _redispy, _resp
from ._redispy import NOT_ENOUGH_DATA, SENTINEL, HiredisParser
from .exceptions import ProtocolError

__all__ = ["FastParser", "FastPacker", "read_replies", "is_fast_connection", "install_fast_parser", "SPIN_SECONDS"]


def _spin_seconds() -> float:
    raw = os.environ.get("FASTREDIS_SPIN_US", "50")
    try:
        us = float(raw)
    except ValueError:
        raise ValueError(f"FASTREDIS_SPIN_US must be a number of microseconds (0 turns polling off), got {raw!r}") from None
    return max(0.0, us) / 1e6 if us == us else 0.0


#: How long FastParser polls for a reply before a blocking read (seconds).
SPIN_SECONDS = _spin_seconds()
_FAST_TYPES = frozenset(_redispy.PLAIN_CONNECTIONS + _redispy.SENTINEL_CONNECTIONS)
_SENTINEL_TYPES = frozenset(_redispy.SENTINEL_CONNECTIONS)


class _SpinGovernor:
    """Decides whether a read may poll before blocking: only when polling pays.

    - Only while no other thread of the process is reading: with several
      threads waiting on replies, a polling thread holds the GIL and a core
      that the others need (16 threads sharing one client lost 10% to it).
    - Only while it works: of the last ``WINDOW`` polls, at least a quarter
      must have seen the reply arrive within ``SPIN_SECONDS``. With a remote
      server they do not, and polling stops for ``PAUSE`` seconds before it
      is tried again. (On a loaded machine a loopback reply still often
      arrives within the spin, and polling still pays: measured, half as a
      threshold turned it off too often.)

    Example::

        >>> g = _SpinGovernor()
        >>> g.readers = 1
        >>> g.may_spin()
        True
        >>> for _ in range(_SpinGovernor.WINDOW):
        ...     g.record(False)
        >>> g.may_spin()
        False
    """

    WINDOW = 32
    PAUSE = 1.0
    __slots__ = ("readers", "tries", "hits", "off_until")

    def __init__(self) -> None:
        self.readers = 0  # threads inside read_from_socket (the GIL makes += safe enough for a heuristic)
        self.tries = 0
        self.hits = 0
        self.off_until = 0.0

    def may_spin(self) -> bool:
        if self.readers > 1:
            return False
        return not self.off_until or time.monotonic() >= self.off_until

    def record(self, hit: bool) -> None:
        self.tries += 1
        self.hits += hit
        if self.tries >= self.WINDOW:
            self.off_until = time.monotonic() + self.PAUSE if 4 * self.hits < self.tries else 0.0
            self.tries = self.hits = 0


_GOVERNOR = _SpinGovernor()


class FastParser(HiredisParser):  # type: ignore[misc,valid-type]
    """redis-py's hiredis parser, with fastredis's core reader inside.

    Error replies and push frames go through redis-py's own ``parse_error``
    and push handlers, so error classes and RESP3 notifications are unchanged.

    Example::

        >>> import fastredis
        >>> from fastredis.server import RedisServer
        >>> server = RedisServer(); r = fastredis.Redis(port=server.port)
        >>> r.ping()
        True
        >>> conn = r.connection_pool.get_connection()
        >>> type(conn._parser).__name__
        'FastParser'
        >>> r.connection_pool.release(conn); server.stop()
    """

    #: The RESP core module (compiled ``_resp_c`` or the ``_resp_py`` twin).
    core: Any = _resp
    #: Longest bulk string accepted (bytes), as the server's default
    #: ``proto-max-bulk-len``; ``None`` accepts any length, as hiredis does.
    max_bulk_len: Optional[int] = 512 * 1024 * 1024

    def on_connect(self, connection: Any, **kwargs: Any) -> None:
        super().on_connect(connection, **kwargs)
        encoder = connection.encoder
        self._reader = self.core.Reader(
            protocolError=ProtocolError,
            replyError=self._reply_error,
            encoding=encoder.encoding if encoder.decode_responses else None,
            errors=encoder.encoding_errors,
            notEnoughData=NOT_ENOUGH_DATA,
            max_bulk_len=self.max_bulk_len,
        )
        self.connection_error: Optional[ConnectionError] = None
        self.error_count = 0
        self._poller: Any = None
        self._spin_poller: Any = None
        # Not TLS: bytes buffered inside the TLS layer are invisible to poll.
        if hasattr(select, "poll") and type(self._sock) is socket.socket:
            self._poller = select.poll()
            self._poller.register(self._sock, select.POLLIN)
            if SPIN_SECONDS > 0:
                self._spin_poller = self._poller

    def peer_closed(self) -> bool:
        """Whether the server closed this idle connection (an idle timeout,
        ``CLIENT KILL``, a restart): one ``poll``; the socket is read only if
        it is readable. A command written to such a socket was never run, so
        the write-retry policy checks this before writing."""
        poller = self._poller
        if poller is None or not poller.poll(0):
            return False
        try:
            self.read_from_socket(timeout=0, raise_on_timeout=False)
        except (ConnectionError, TimeoutError, OSError):
            return True
        return False

    def read_from_socket(self, timeout: Any = SENTINEL, raise_on_timeout: bool = True) -> Any:
        """Poll the socket for up to ``SPIN_SECONDS`` before redis-py's blocking read,
        when polling pays (see :class:`_SpinGovernor`).

        On a loopback or same-rack server the reply often arrives within tens
        of microseconds, and a thread blocked in ``recv`` then pays the
        scheduler's wake-up latency (about 60 µs of an 87 µs round trip on the
        development VM). The read itself, its timeouts and its errors stay
        redis-py's. ``FASTREDIS_SPIN_US=0`` turns polling off.
        """
        poller = self._spin_poller
        reader = self._reader  # None once disconnected: redis-py's read raises for it
        governor = _GOVERNOR
        governor.readers += 1
        try:
            if poller is not None and reader is not None and timeout is SENTINEL and governor.may_spin() and not reader.has_data():
                deadline = time.perf_counter() + SPIN_SECONDS
                ready = poller.poll(0)
                while not ready and time.perf_counter() < deadline:
                    ready = poller.poll(0)
                governor.record(bool(ready))
            return super().read_from_socket(timeout=timeout, raise_on_timeout=raise_on_timeout)
        finally:
            governor.readers -= 1

    def _reply_error(self, message: str) -> Exception:
        self.error_count += 1
        error = self.parse_error(message)
        # A reply, even one redis-py maps to ConnectionError (LOADING, auth
        # failures, max clients): the server answered, so the write-retry
        # policy knows the outcome.
        error.server_reply = True  # type: ignore[attr-defined]
        if isinstance(error, ConnectionError) and self.connection_error is None:
            self.connection_error = error  # e.g. LOADING: raised after the batch
        return error


class FastPacker:
    """redis-py's ``command_packer`` interface over the core encoder: single
    commands go through redis-py's own ``Connection.send_command`` (so
    subclasses, patches and mocks of it see them) with fastredis's encoding.

    Example::

        >>> FastPacker().pack("SET", "k", 1.5)[0].split()
        [b'*3', b'$3', b'SET', b'$1', b'k', b'$3', b'1.5']
    """

    __slots__ = ("encoding", "errors", "_pack")

    def __init__(self, encoding: str = "utf-8", errors: str = "strict", core: Any = _resp) -> None:
        self.encoding = encoding
        self.errors = errors
        self._pack = core.pack_command

    def pack(self, *args: Any) -> List[bytes]:
        return [self._pack(args, self.encoding, self.errors)]


def is_fast_connection(conn: Any) -> bool:
    """Whether fastredis may drive ``conn`` itself: a redis-py connection
    class it knows (not a subclass, not a mock) whose parser is a
    :class:`FastParser`.

    Example::

        >>> from unittest import mock
        >>> is_fast_connection(mock.Mock())
        False
    """
    return (
        _redispy.FAST_PATH
        and type(conn) in _FAST_TYPES
        and isinstance(getattr(conn, "_parser", None), FastParser)
    )


def install_fast_parser(pool: Any, parser_class: type = FastParser) -> bool:
    """Give ``pool``'s new connections ``parser_class`` and the core's
    encoder (:class:`FastPacker`); True if it did.

    Only pools of plain, TLS, unix-socket or Sentinel-managed connections
    with redis-py's default parser qualify; user connection classes, user
    parsers and client-side caching (``cache_config``) keep their own.
    Connections the pool already holds keep their parser until they
    reconnect; the fast path recognises them and takes redis-py's path.
    """
    if not _redispy.FAST_PATH:
        return False
    kw = getattr(pool, "connection_kwargs", None)
    if not isinstance(kw, dict) or getattr(pool, "connection_class", None) not in _FAST_TYPES:
        return False
    if getattr(pool, "cache", None) is not None or kw.get("cache_config") or kw.get("cache"):
        return False
    current = kw.get("parser_class")
    default = getattr(redis.connection, "DefaultParser", None)
    if current is not None and current is not default and current is not HiredisParser:
        if not (isinstance(current, type) and issubclass(current, FastParser)):
            return False
        if current is parser_class:
            return True
    kw["parser_class"] = parser_class
    if kw.get("command_packer") is None or isinstance(kw["command_packer"], FastPacker):
        kw["command_packer"] = FastPacker(kw.get("encoding", "utf-8"), kw.get("encoding_errors", "strict"), parser_class.core)
    return True


def read_replies(conn: Any, count: int) -> Tuple[List[Any], bool]:
    """Read ``count`` replies from ``conn`` in one batched parse.

    Returns the replies and whether any is an error. Error replies are left
    in their slots as exception objects (as redis-py's pipelines do); push
    frames go to the connection's push handlers and are not counted. Socket
    errors disconnect and raise as redis-py's ``Connection.read_response``
    does. On a Sentinel-managed master connection a READONLY reply means the
    master was demoted: the connection is dropped and ``ConnectionError``
    raised, as redis-py's ``SentinelManagedConnection`` does.
    """
    parser = conn._parser
    reader = getattr(parser, "_reader", None)
    out: List[Any] = []
    if count <= 0:
        return out, False
    if not isinstance(parser, FastParser) or reader is None:
        # A connection we do not drive: redis-py's reads. Nested errors (inside
        # an EXEC reply) are not seen here, so report "maybe" and let the
        # caller's error bookkeeping look.
        for _ in range(count):
            try:
                out.append(conn.read_response())
            except ResponseError as e:
                out.append(e)
        return out, True
    parser.connection_error = None
    errors_before = parser.error_count
    push = parser.handle_push_response
    try:
        got = reader.read_into(out, count, push)
        while got < count:
            parser.read_from_socket()
            got += reader.read_into(out, count - got, push)
    except socket.timeout:
        conn.disconnect()
        raise TimeoutError(f"Timeout reading from {conn._host_error()}")
    except OSError as e:
        conn.disconnect()
        raise ConnectionError(f"Error while reading from {conn._host_error()} : {e.args}")
    except BaseException:
        conn.disconnect()
        raise
    if conn.health_check_interval:
        conn.next_health_check = time.monotonic() + conn.health_check_interval
    if parser.connection_error is not None:
        error, parser.connection_error = parser.connection_error, None
        conn.disconnect()
        raise error
    has_errors = parser.error_count != errors_before
    if has_errors and type(conn) in _SENTINEL_TYPES and conn.connection_pool.is_master:
        if any(isinstance(r, ReadOnlyError) for r in out):
            conn.disconnect()
            raise ConnectionError("The previous master is now a slave")
    return out, has_errors
