"""Dedicated (pooled) asyncio connections: redis-py's connections with the
core's reply reader inside, and a batched read of many replies.

- :class:`FastAsyncParser` is redis-py's async hiredis parser with
  fastredis's reader, so error classes, push frames (pub/sub, invalidations,
  maintenance notifications) stay redis-py's.
- :func:`install_fast_async_parser` gives a pool's new connections that parser.
- :func:`is_fast_async_connection` tells a connection fastredis may drive
  itself (a known redis-py class with the fast parser) from one it does not
  own (a mock, a user subclass): those take redis-py's own paths.
- :func:`aread_replies` reads a pipeline's replies in one batched parse.

Example::

    >>> import redis.asyncio
    >>> pool = redis.asyncio.ConnectionPool(host="localhost", port=6379)
    >>> install_fast_async_parser(pool)
    True
    >>> pool.connection_kwargs["parser_class"] is FastAsyncParser
    True
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any, List, Tuple

import redis.asyncio.connection as _aconn
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from .. import _redispy, _resp
from .._redispy import NOT_ENOUGH_DATA, AsyncHiredisParser
from ..exceptions import ProtocolError

__all__ = ["FastAsyncParser", "install_fast_async_parser", "is_fast_async_connection", "aread_replies", "aread_into", "refused_by_server"]

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # pragma: no cover - 3.10
    from async_timeout import timeout as _timeout

#: redis-py's async connection classes whose sockets fastredis may drive.
KNOWN_CONNECTIONS = frozenset(_redispy.ASYNC_PLAIN_CONNECTIONS + _redispy.ASYNC_SENTINEL_CONNECTIONS)


class FastAsyncParser(AsyncHiredisParser):  # type: ignore[misc,valid-type]
    """redis-py's async hiredis parser with fastredis's core reader inside.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = fastredis.asyncio.Redis(port=port, multiplexed_connections=0)
        ...     await r.set("k", "v")
        ...     conn = await r.connection_pool.get_connection()
        ...     name = type(conn._parser).__name__
        ...     await r.connection_pool.release(conn); await r.aclose()
        ...     return name
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        'FastAsyncParser'
    """

    #: The RESP core module (compiled ``_resp_c`` or the ``_resp_py`` twin).
    core: Any = _resp

    @classmethod
    def parse_error(cls, response: str) -> Any:
        """redis-py's error class for an error reply; a ConnectionError-family
        reply (LOADING, an authentication error, "max number of clients
        reached") is marked :func:`refused_by_server`: the server answered
        and did not run the command, so re-sending it is safe."""
        error = super().parse_error(response)
        if isinstance(error, ConnectionError):
            error._fastredis_refused = True  # type: ignore[attr-defined]
        return error

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)
        encoder = connection.encoder
        self._reader = self.core.Reader(
            protocolError=ProtocolError,
            replyError=self.parse_error,
            encoding=encoder.encoding if encoder.decode_responses else None,
            errors=encoder.encoding_errors,
            notEnoughData=NOT_ENOUGH_DATA,
        )


def install_fast_async_parser(pool: Any, parser_class: type = FastAsyncParser) -> bool:
    """Give ``pool``'s new connections ``parser_class``; True if it did.

    Only pools of redis-py's own async connection classes with redis-py's
    default parser qualify; user connection classes and user parsers keep
    their own.
    """
    if not _redispy.ASYNC_FAST_PATH:
        return False
    kw = getattr(pool, "connection_kwargs", None)
    if not isinstance(kw, dict) or getattr(pool, "connection_class", None) not in KNOWN_CONNECTIONS:
        return False
    current = kw.get("parser_class")
    if current is not None and current is not _aconn.DefaultParser and current is not AsyncHiredisParser:
        if not (isinstance(current, type) and issubclass(current, FastAsyncParser)):
            return False
        if current is parser_class:
            return True
    kw["parser_class"] = parser_class
    # The pool's repr lists its connection kwargs: keep it what the user built.
    omitted = getattr(pool, "OMIT_REPR_KEYS", None)
    if isinstance(omitted, frozenset) and "parser_class" not in omitted:
        pool.OMIT_REPR_KEYS = omitted | {"parser_class"}
    return True


def closed_by_server(conn: Any) -> bool:
    """Whether the server closed ``conn`` while it sat idle (an idle
    ``timeout``, ``CLIENT KILL``, a restart), as far as the event loop has
    seen: a command written to it now would be lost without having run, so
    callers reconnect first instead of counting the failure as a lost write.

    Example::

        >>> from unittest import mock
        >>> closed_by_server(mock.Mock(_reader=None))
        False
    """
    reader = getattr(conn, "_reader", None)
    return reader is not None and (reader.at_eof() or reader.exception() is not None)


def is_fast_async_connection(conn: Any) -> bool:
    """Whether fastredis may drive ``conn`` itself: a redis-py async
    connection class it knows (not a subclass, not a mock) with a
    :class:`FastAsyncParser`.

    Example::

        >>> from unittest import mock
        >>> is_fast_async_connection(mock.Mock())
        False
    """
    return (
        _redispy.ASYNC_FAST_PATH
        and type(conn) in KNOWN_CONNECTIONS
        and isinstance(getattr(conn, "_parser", None), FastAsyncParser)
    )


async def aread_replies(conn: Any, count: int) -> Tuple[List[Any], bool]:
    """Read ``count`` replies from ``conn`` in one batched parse.

    Returns the replies and whether any is an error reply. Error replies stay
    in their slots as exception objects; push frames go to the connection's
    push handlers. A socket error or ``socket_timeout`` disconnects and raises
    as redis-py's ``read_response`` does.
    """
    out: List[Any] = []
    has_errors = await aread_into(conn, out, count)
    return out, has_errors


async def aread_into(conn: Any, out: List[Any], count: int) -> bool:
    """:func:`aread_replies` appending to ``out``: after a failure ``out``
    holds the replies that did arrive (a cluster pipeline re-sends only the
    others). Returns whether any reply read is an error reply."""
    if count <= 0:
        return False
    parser = conn._parser
    reader = getattr(parser, "_reader", None)
    if not isinstance(parser, FastAsyncParser) or reader is None:
        for _ in range(count):
            try:
                out.append(await conn.read_response())
            except ResponseError as e:
                out.append(e)
        return True
    pushes: List[Any] = []
    host_error = conn._host_error()
    got = 0
    try:
        timeout = conn.socket_timeout
        async with _timeout(timeout if timeout else None):
            while True:
                got += reader.read_into(out, count - got, pushes.append)
                if got >= count:
                    break
                await parser.read_from_socket()
    except (asyncio.TimeoutError, socket.timeout):
        await conn.disconnect(nowait=True)
        raise TimeoutError(f"Timeout reading from {host_error}") from None
    except OSError as e:
        await conn.disconnect(nowait=True)
        raise ConnectionError(f"Error while reading from {host_error} : {e.args}") from None
    except BaseException:
        await conn.disconnect(nowait=True)
        raise
    for frame in pushes:
        await parser.handle_push_response(frame)
    if conn.health_check_interval:
        conn.next_health_check = asyncio.get_running_loop().time() + conn.health_check_interval
    for r in out[len(out) - got:]:
        if isinstance(r, BaseException):
            return True
    return False


def refused_by_server(error: BaseException) -> bool:
    """Whether ``error`` is an error *reply* of the ConnectionError family
    (LOADING, authentication, too many clients): the server refused the
    command, so it was not applied.

    Example::

        >>> refused_by_server(FastAsyncParser.parse_error("LOADING Redis is loading the dataset in memory"))
        True
        >>> refused_by_server(ConnectionError("Error while reading from socket"))
        False
    """
    return bool(getattr(error, "_fastredis_refused", False))
