"""Multiplexed connections: many tasks, few sockets, one write per loop iteration.

A :class:`Multiplexer` keeps up to ``size`` connections per client. Each
:class:`MuxConnection` is a connection of the client's own pool, connected and
handshaken by redis-py (so TLS, unix sockets, AUTH/HELLO, SELECT, CLIENT
SETNAME, Sentinel's address lookup and every other connection option behave as
in redis-py), whose transport is then handed to a
:class:`fastredis._aioproto.MuxProtocol`: no ``StreamReader``, replies parsed
by the core reader straight from ``data_received``.

A connection that fails (lost, ``socket_timeout`` without a byte, malformed
input, a failed health check) is closed and returned to the pool
disconnected; the next command opens a new one.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         replies = await asyncio.gather(*(r.incr("n") for _ in range(100)))
    ...         return max(replies), len(r._mux.conns)
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    (100, 1)
"""

from __future__ import annotations

import asyncio
from typing import Any, List, Optional, Set

from redis.exceptions import ConnectionError

from .. import _aioproto, _resp
from .._redispy import NOT_ENOUGH_DATA
from ..exceptions import ProtocolError
from .connection import FastAsyncParser

__all__ = ["Multiplexer", "MuxConnection"]

_PING = _resp.pack_command(("PING",))


class MuxConnection:
    """One multiplexed connection: a pool connection driven by a ``MuxProtocol``."""

    def __init__(self, mux: "Multiplexer", loop: Any) -> None:
        self.mux = mux
        self.loop = loop
        kw = mux.pool.connection_kwargs
        self.proto = mux.core.MuxProtocol(
            loop, None, mux.resp.CommandBuffer(kw.get("encoding", "utf-8"), kw.get("encoding_errors", "strict"))
        )
        self.conn: Any = None  # the redis-py connection whose transport we drive
        self._orig_protocol: Any = None
        self._released = False
        self._task: Optional[asyncio.Task[None]] = loop.create_task(self._open())

    # -- opening ---------------------------------------------------------------
    async def _open(self) -> None:
        proto = self.proto
        pool = self.mux.pool
        try:
            conn = await pool.get_connection()
        except asyncio.CancelledError:
            proto._fail(ConnectionError("Connection closed by the client"))
            self.mux._forget(self)
            raise
        except Exception as e:
            # Every queued command fails with e, not retried by the command:
            # connect() already retried, as in redis-py's get_connection.
            proto._fail(e, True)
            self.mux._forget(self)
            return
        finally:
            self._task = None
        self.conn = conn
        writer = getattr(conn, "_writer", None)
        stream = getattr(conn, "_reader", None)
        transport = getattr(writer, "transport", None)
        if not isinstance(writer, asyncio.StreamWriter) or not isinstance(stream, asyncio.StreamReader):
            # Not a stream-based connection (a mock, an exotic class): redis-py's paths only.
            self.mux.enabled = False
            proto._fail(ConnectionError("this connection class cannot be multiplexed"))
            self.mux._forget(self)
            self.mux._spawn(self._release(disconnect=False))
            return
        if proto.closed is not None or transport is None or transport.is_closing() or stream.at_eof():
            proto._fail(proto.closed or ConnectionError("Connection closed by server."))
            self.mux._forget(self)
            self.mux._spawn(self._release())
            return
        parser = conn._parser
        encoder = conn.encoder
        if isinstance(parser, FastAsyncParser) and parser._reader is not None:
            reader, not_enough = parser._reader, NOT_ENOUGH_DATA
        else:
            not_enough = object()
            reader = self.mux.resp.Reader(
                protocolError=ProtocolError,
                replyError=getattr(parser, "parse_error", FastAsyncParser.parse_error),
                encoding=encoder.encoding if encoder.decode_responses else None,
                errors=encoder.encoding_errors,
                notEnoughData=not_enough,
            )
        leftover = getattr(stream, "_buffer", None)
        if leftover:
            reader.feed(bytes(leftover))
            leftover.clear()
        proto.reader = reader
        proto.not_enough = not_enough
        proto.timeout = conn.socket_timeout or None
        proto.host_error = conn._host_error()
        proto.on_lost = self._lost
        proto.on_push = self._push
        if conn.health_check_interval:
            proto.health_interval = float(conn.health_check_interval)
            proto.next_health = self.loop.time() + proto.health_interval
            proto.on_health = self._health_check
        self._orig_protocol = transport.get_protocol()
        transport.set_protocol(proto)
        proto.start(transport)

    # -- events ----------------------------------------------------------------
    def _lost(self, exc: Optional[BaseException]) -> None:
        self.mux._forget(self)
        orig, self._orig_protocol = self._orig_protocol, None
        if orig is not None:
            try:  # lets the StreamWriter's wait_closed() finish
                orig.connection_lost(exc)
            except Exception:
                pass
        self.mux._spawn(self._release())

    def _push(self, frame: Any) -> None:
        conn = self.conn
        parser = getattr(conn, "_parser", None)
        handle = getattr(parser, "handle_push_response", None)
        if handle is not None:
            self.mux._spawn(handle(frame))

    def _health_check(self) -> None:
        fut = self.proto.write_now(_PING)
        fut.add_done_callback(self._health_done)

    def _health_done(self, fut: Any) -> None:
        proto = self.proto
        if proto.closed is not None:
            return
        reply = None if fut.cancelled() or fut.exception() is not None else fut.result()
        if reply in (b"PONG", "PONG"):
            proto.hold = False
            proto.next_health = self.loop.time() + proto.health_interval
            proto.flush()
        else:
            proto.abort(ConnectionError("Bad response from PING health check"))

    # -- closing ---------------------------------------------------------------
    async def _release(self, disconnect: bool = True) -> None:
        if self._released or self.conn is None:
            return
        self._released = True
        conn = self.conn
        try:
            if disconnect:
                await conn.disconnect(nowait=True)
        except Exception:
            pass
        finally:
            try:
                await self.mux.pool.release(conn)
            except (KeyError, ValueError, RuntimeError):  # the pool was reset meanwhile
                pass

    def close(self, error: BaseException) -> None:
        """Close now (sync); waiters fail with ``error`` (or NotWritten)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        self.proto.close(error)

    async def aclose(self, error: BaseException) -> None:
        """Close, and return the connection to its pool disconnected."""
        self.close(error)
        task = self._task
        if task is not None:
            try:
                await task
            except BaseException:
                pass
        await self._release()


class Multiplexer:
    """Up to ``size`` multiplexed connections of ``pool`` (0 turns multiplexing off)."""

    def __init__(self, pool: Any, size: int = 1, core: Any = _aioproto, resp: Any = _resp) -> None:
        self.pool = pool
        self.size = size
        self.enabled = size > 0
        self.core = core
        self.resp = resp
        self.conns: List[MuxConnection] = []
        self._tasks: Set[Any] = set()
        self._template: Any = None

    def connection(self) -> MuxConnection:
        """A connection to queue a command on: open or opening, on the running loop."""
        loop = asyncio.get_running_loop()
        conns = self.conns
        if conns:
            best = conns[0]
            if best.loop is loop and best.proto.closed is None:
                if len(conns) == 1 and (self.size == 1 or not best.proto.in_flight):
                    return best
            stale = [c for c in conns if c.loop is not loop or c.proto.closed is not None]
            for c in stale:
                self._drop_stale(c, loop)
            if conns:
                best = min(conns, key=lambda c: c.proto.in_flight)
                if not best.proto.in_flight or len(conns) >= self.size:
                    return best
        conn = MuxConnection(self, loop)
        conns.append(conn)
        return conn

    def _drop_stale(self, conn: MuxConnection, loop: Any) -> None:
        self._forget(conn)
        if conn.loop is not loop:  # from another (maybe closed) event loop
            try:
                conn.close(ConnectionError("the event loop changed"))
            except Exception:
                pass

    def _forget(self, conn: MuxConnection) -> None:
        try:
            self.conns.remove(conn)
        except ValueError:
            pass

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no running loop (garbage collection, shutdown)
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def make_room(self) -> None:
        """Give the pool back the multiplexed connections when it cannot hand
        out another without waiting and they are idle: a pool with a small
        ``max_connections`` then serves dedicated commands, pub/sub and WATCH
        as it does under redis-py. The next multiplexed command opens one again."""
        if not self.conns:
            return
        can_get = getattr(self.pool, "can_get_connection", None)
        if can_get is None or can_get() or any(c.proto.in_flight for c in self.conns):
            return
        await self.aclose()

    def retry(self) -> Any:
        """The ``Retry`` of the pool's connections (as configured by the client)."""
        for c in self.conns:
            if c.conn is not None:
                return c.conn.retry
        template = self._template
        if template is None or template[0] is not self.pool.connection_kwargs.get("retry"):
            template = self._template = (self.pool.connection_kwargs.get("retry"), self.pool.make_connection().retry)
        return template[1]

    async def aclose(self) -> None:
        """Close every multiplexed connection and wait for their release."""
        conns, self.conns = self.conns, []
        error = ConnectionError("Connection closed by the client")
        loop = asyncio.get_running_loop()
        for c in conns:
            if c.loop is loop:
                await c.aclose(error)
            else:
                try:
                    c.close(error)
                except Exception:
                    pass
        tasks = [t for t in self._tasks if t.get_loop() is loop]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def close_sync(self) -> None:
        """Close every multiplexed connection without awaiting (garbage collection)."""
        conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.close(ConnectionError("Connection closed by the client"))
            except Exception:
                pass

    def __repr__(self) -> str:
        return f"<Multiplexer size={self.size} open={len(self.conns)}>"
