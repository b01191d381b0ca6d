"""The multiplexed connection's protocol core: pure-Python twin of ``_aioproto_c``.

One :class:`MuxProtocol` drives one Redis connection shared by many tasks
(``fastredis.asyncio``):

- :meth:`MuxProtocol.send` encodes a command into the connection's write
  buffer at once (a bad argument raises there, and nothing is queued), queues
  a future for its reply and schedules one flush for the loop iteration: every
  command issued in the same iteration goes out in one ``transport.write``.
- ``data_received`` feeds the reply reader and hands replies to the waiting
  futures in FIFO order. A waiter whose task was cancelled keeps its slot:
  its reply is read and dropped, never handed to the next waiter.
- A group (a pipeline) is one waiter for ``count`` replies.
- Failures: when the connection is lost, times out (no byte received for
  ``socket_timeout`` while replies are due) or receives malformed input, it is
  closed, and every waiter fails. Waiters whose bytes were handed to the
  transport get the connection error itself (their command may have reached
  the server); waiters not yet written get :class:`NotWritten` (safe to
  re-send).

Example::

    >>> import asyncio
    >>> from fastredis import _resp
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     loop = asyncio.get_running_loop()
    ...     nothing = object()
    ...     proto = MuxProtocol(loop, _resp.Reader(notEnoughData=nothing), _resp.CommandBuffer(), not_enough=nothing)
    ...     await loop.create_connection(lambda: proto, "127.0.0.1", port)
    ...     return await asyncio.gather(proto.send(("SET", "k", 1)), proto.send(("GET", "k")))
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    [b'OK', b'1']
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable, List, Optional

from hiredis import PushNotification
from redis.exceptions import ConnectionError, TimeoutError

from fastredis.retry_policy import NotWritten

__all__ = ["MuxProtocol", "Group", "NotWritten"]


class Group:
    """One waiter for ``count`` consecutive replies (a pipeline)."""

    __slots__ = ("fut", "remaining", "replies", "error", "payload")

    def __init__(self, fut: Any, count: int, payload: Any) -> None:
        self.fut = fut
        self.remaining = count
        self.replies: List[Any] = []
        self.error: Optional[BaseException] = None
        self.payload = payload


def _copy_error(error: BaseException) -> BaseException:
    """A fresh instance per waiter, so tasks do not share one traceback."""
    try:
        return type(error)(*error.args)
    except Exception:
        return error


class MuxProtocol(asyncio.Protocol):
    """An ``asyncio.Protocol`` for one connection shared by many tasks.

    ``reader`` is a RESP reader (``fastredis._resp.Reader``) set up with the
    connection's decoding and error classes, whose ``gets()`` returns
    ``not_enough`` while a reply is incomplete (use a sentinel object: under
    RESP3 ``False`` is a reply); ``wbuf`` a
    ``fastredis._resp.CommandBuffer`` with its encoding. ``on_lost(exc)`` is
    called once when the connection ends; ``on_push(frame)`` receives RESP3
    push frames. Timeouts: ``timeout`` seconds without a byte while replies
    are due close the connection (``socket_timeout``).
    """

    def __init__(
        self,
        loop: Any,
        reader: Any,
        wbuf: Any,
        timeout: Optional[float] = None,
        host_error: str = "server",
        on_lost: Optional[Callable[[Optional[BaseException]], Any]] = None,
        on_push: Optional[Callable[[Any], Any]] = None,
        not_enough: Any = False,
    ) -> None:
        self.loop = loop
        self.reader = reader
        self.not_enough = not_enough
        self.wbuf = wbuf
        self.timeout = timeout if timeout else None
        self.host_error = host_error
        self.on_lost = on_lost
        self.on_push = on_push
        self.transport: Any = None
        self.closed: Optional[BaseException] = None
        self.waiters: Any = deque()  # written: Future (one reply) or Group
        self.pending: List[Any] = []  # encoded in wbuf/chunks, not yet written
        self.backlog: List[Any] = []  # queued before the transport is set: (waiter, args or payload)
        self.chunks: List[bytes] = []
        self.flush_scheduled = False
        self.hold = False  # a health check is in flight: writes wait
        self.health_interval = 0.0
        self.next_health = 0.0
        self.on_health: Optional[Callable[[], Any]] = None
        self.last_progress = 0.0
        self.timer: Any = None
        self.bytes_written = 0

    # -- asyncio.Protocol ----------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.start(transport)

    def start(self, transport: Any) -> None:
        """Take over ``transport``: queued commands are encoded and written."""
        self.transport = transport
        backlog, self.backlog = self.backlog, []
        wbuf = self.wbuf
        for waiter, item in backlog:
            fut = waiter.fut if type(waiter) is Group else waiter
            if fut.done():  # cancelled while connecting: never sent
                continue
            if type(waiter) is Group:
                if len(wbuf):
                    self.chunks.append(wbuf.take())
                self.chunks.extend(item)
                waiter.payload = None
            else:
                wbuf.command(item)
            self.pending.append(waiter)
        if self.pending:
            self.flush()

    def data_received(self, data: Any) -> None:
        reader = self.reader
        reader.feed(data)
        if self.timeout is not None or self.health_interval:
            now = self.loop.time()
            self.last_progress = now
            if self.health_interval:
                self.next_health = now + self.health_interval
        waiters = self.waiters
        try:
            while waiters:
                w = waiters[0]
                if type(w) is Group:
                    before = len(w.replies)
                    try:
                        got = reader.read_into(w.replies, w.remaining, self._push)
                    except (ValueError, LookupError) as exc:  # a decode error: the reply was consumed
                        if w.error is None:
                            w.error = exc
                        w.remaining -= len(w.replies) - before + 1
                        if w.remaining:
                            continue  # its next replies may be buffered already
                    else:
                        w.remaining -= got
                        if w.remaining:
                            break
                    waiters.popleft()
                    fut = w.fut
                    if not fut.done():
                        if w.error is not None:
                            fut.set_exception(w.error)
                        else:
                            fut.set_result(w.replies)
                    continue
                try:
                    reply = reader.gets()
                except (ValueError, LookupError) as exc:
                    waiters.popleft()
                    if not w.done():
                        w.set_exception(exc)
                    continue
                if reply is self.not_enough:
                    break
                if type(reply) is PushNotification:
                    self._push(reply)
                    continue
                waiters.popleft()
                if not w.done():
                    w.set_result(reply)
        except Exception as exc:  # malformed input: the connection state is unknown
            self.abort(exc)

    def _push(self, frame: Any) -> None:
        if self.on_push is not None:
            try:
                self.on_push(frame)
            except Exception:  # a handler's bug must not break the shared connection
                pass

    def eof_received(self) -> Optional[bool]:
        return None  # the transport closes itself: connection_lost follows

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if self.closed is None:
            if exc is None:
                error: BaseException = ConnectionError("Connection closed by server.")
            else:
                error = ConnectionError(f"Error while reading from {self.host_error} : {exc.args}")
            self._fail(error)
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None:
            on_lost(exc)

    def pause_writing(self) -> None:  # the transport buffers; callers await their replies
        pass

    def resume_writing(self) -> None:
        pass

    # -- sending ---------------------------------------------------------------
    def send(self, args: Any) -> Any:
        """Queue one command; returns the future of its reply (error replies
        are results, as exception objects)."""
        if self.closed is not None:
            raise NotWritten(self.closed)
        fut = self.loop.create_future()
        if self.transport is None:
            mark = self.wbuf.mark()
            try:
                self.wbuf.command(args)  # encoding errors raise now
            finally:
                self.wbuf.truncate(mark)
            self.backlog.append((fut, args))
            return fut
        self.wbuf.command(args)
        self.pending.append(fut)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)
        return fut

    def send_group(self, payload: List[bytes], count: int) -> Any:
        """Queue ``payload`` (encoded commands) as one waiter for ``count``
        replies; the future's result is the list of replies."""
        if self.closed is not None:
            raise NotWritten(self.closed)
        fut = self.loop.create_future()
        group = Group(fut, count, payload)
        if self.transport is None:
            self.backlog.append((group, payload))
            return fut
        wbuf = self.wbuf
        if len(wbuf):
            self.chunks.append(wbuf.take())
        self.chunks.extend(payload)
        group.payload = None
        self.pending.append(group)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)
        return fut

    def flush(self) -> None:
        """Write everything queued since the last flush, in one write."""
        self.flush_scheduled = False
        transport = self.transport
        if transport is None or self.closed is not None or not self.pending or self.hold:
            return
        if self.health_interval and self.loop.time() > self.next_health and self.on_health is not None:
            self.hold = True
            self.on_health()  # writes a PING via write_now; clears hold and flushes on PONG
            return
        chunks = self.chunks
        if chunks:
            if len(self.wbuf):
                chunks.append(self.wbuf.take())
            self.chunks = []
            data = b"".join(chunks)
        else:
            data = self.wbuf.take()
        pending = self.pending
        self.pending = []
        waiters = self.waiters
        if not waiters and self.timeout is not None:
            self.last_progress = self.loop.time()
        waiters.extend(pending)
        self.bytes_written += len(data)
        transport.write(data)
        if self.timeout is not None and self.timer is None:
            self.timer = self.loop.call_at(self.last_progress + self.timeout, self._on_timer)

    def write_now(self, data: bytes) -> Any:
        """Write ``data`` (one encoded command) ahead of everything pending;
        returns the future of its reply (the health check's PING)."""
        fut = self.loop.create_future()
        if self.closed is not None or self.transport is None:
            fut.set_exception(ConnectionError("Connection is not open"))
            return fut
        if not self.waiters and self.timeout is not None:
            self.last_progress = self.loop.time()
        self.waiters.append(fut)
        self.transport.write(data)
        if self.timeout is not None and self.timer is None:
            self.timer = self.loop.call_at(self.last_progress + self.timeout, self._on_timer)
        return fut

    def _on_timer(self) -> None:
        self.timer = None
        if self.closed is not None or not self.waiters:
            return
        deadline = self.last_progress + self.timeout  # type: ignore[operator]
        if self.loop.time() >= deadline:
            self.abort(TimeoutError(f"Timeout reading from {self.host_error}"))
        else:
            self.timer = self.loop.call_at(deadline, self._on_timer)

    # -- failure ---------------------------------------------------------------
    def abort(self, error: BaseException) -> None:
        """Close the connection at once (its state is unknown) and fail every waiter with ``error``."""
        if self.closed is None:
            self._fail(error)
        transport = self.transport
        if transport is not None:
            transport.abort()

    def close(self, error: BaseException) -> None:
        """Close the connection and fail every waiter with ``error``."""
        if self.closed is None:
            self._fail(error)
        transport = self.transport
        if transport is not None:
            transport.close()

    def _fail(self, error: BaseException, final: bool = False) -> None:
        """Fail every waiter: written ones with ``error``, the others with
        ``NotWritten(error, final)`` (``final``: opening the connection failed)."""
        self.closed = error
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiters, self.waiters = self.waiters, deque()
        pending, self.pending = self.pending, []
        backlog, self.backlog = self.backlog, []
        self.chunks = []
        self.wbuf.clear()
        for w in waiters:
            fut = w.fut if type(w) is Group else w
            if not fut.done():
                fut.set_exception(_copy_error(error))
        for w in pending + [b[0] for b in backlog]:
            fut = w.fut if type(w) is Group else w
            if not fut.done():
                fut.set_exception(NotWritten(_copy_error(error), final))

    @property
    def in_flight(self) -> int:
        """Waiters queued or written whose replies have not arrived."""
        return len(self.waiters) + len(self.pending) + len(self.backlog)
