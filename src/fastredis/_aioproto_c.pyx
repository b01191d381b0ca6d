# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of ``_aioproto_py``: the multiplexed connection's protocol core.

Same names and behaviour as the pure-Python module (see its docstring): a
FIFO of waiters fed by ``data_received``, one write per loop iteration,
cancelled waiters' replies read and dropped.

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

import asyncio
from collections import deque

from hiredis import PushNotification
from redis.exceptions import ConnectionError, TimeoutError

from fastredis.retry_policy import NotWritten

__all__ = ["MuxProtocol", "Group", "NotWritten"]


cdef class Group:
    """One waiter for ``count`` consecutive replies (a pipeline)."""

    cdef public object fut
    cdef public Py_ssize_t remaining
    cdef public list replies
    cdef public object error
    cdef public object payload

    def __init__(self, fut, Py_ssize_t count, payload):
        self.fut = fut
        self.remaining = count
        self.replies = []
        self.error = None
        self.payload = payload


cdef object _copy_error(object error):
    try:
        return type(error)(*error.args)
    except Exception:
        return error


cdef class MuxProtocolCore:
    """The compiled state and hot paths of :class:`MuxProtocol`."""

    cdef public object loop
    cdef public object reader
    cdef public object wbuf
    cdef public object not_enough
    cdef public object timeout
    cdef public str host_error
    cdef public object on_lost
    cdef public object on_push
    cdef public object on_health
    cdef public object transport
    cdef public object closed
    cdef public object waiters
    cdef public list pending
    cdef public list backlog
    cdef public list chunks
    cdef public bint flush_scheduled
    cdef public bint hold
    cdef public double health_interval
    cdef public double next_health
    cdef public double last_progress
    cdef public object timer
    cdef public Py_ssize_t bytes_written
    cdef object _flush_cb
    cdef object _create_future
    cdef object _call_soon

    def __init__(self, loop, reader, wbuf, timeout=None, str host_error="server", on_lost=None, on_push=None,
                 not_enough=False):
        self.loop = loop
        self.reader = reader
        self.wbuf = wbuf
        self.not_enough = not_enough
        self.timeout = timeout if timeout else None
        self.host_error = host_error
        self.on_lost = on_lost
        self.on_push = on_push
        self.on_health = None
        self.transport = None
        self.closed = None
        self.waiters = deque()
        self.pending = []
        self.backlog = []
        self.chunks = []
        self.flush_scheduled = False
        self.hold = False
        self.health_interval = 0.0
        self.next_health = 0.0
        self.last_progress = 0.0
        self.timer = None
        self.bytes_written = 0
        self._flush_cb = self.flush
        self._create_future = loop.create_future
        self._call_soon = loop.call_soon

    # -- asyncio.Protocol ----------------------------------------------------
    def connection_made(self, transport):
        self.start(transport)

    def start(self, transport):
        """Take over ``transport``: queued commands are encoded and written."""
        cdef list backlog = self.backlog
        cdef object waiter, item, fut
        self.transport = transport
        self.backlog = []
        wbuf = self.wbuf
        for waiter, item in backlog:
            fut = (<Group>waiter).fut if type(waiter) is Group else waiter
            if fut.done():
                continue
            if type(waiter) is Group:
                if len(wbuf):
                    self.chunks.append(wbuf.take())
                self.chunks.extend(item)
                (<Group>waiter).payload = None
            else:
                wbuf.command(item)
            self.pending.append(waiter)
        if self.pending:
            self.flush()

    def data_received(self, data):
        cdef object reader = self.reader
        cdef object waiters = self.waiters
        cdef object w, reply, fut
        cdef Group g
        cdef Py_ssize_t before, got
        cdef object not_enough = self.not_enough
        cdef object push = self._push
        cdef double now
        reader.feed(data)
        if self.timeout is not None or self.health_interval:
            now = self.loop.time()
            self.last_progress = now
            if self.health_interval:
                self.next_health = now + self.health_interval
        gets = reader.gets
        try:
            while waiters:
                w = waiters[0]
                if type(w) is Group:
                    g = <Group>w
                    before = len(g.replies)
                    try:
                        got = reader.read_into(g.replies, g.remaining, push)
                    except (ValueError, LookupError) as exc:
                        if g.error is None:
                            g.error = exc
                        g.remaining -= len(g.replies) - before + 1
                        if g.remaining:
                            continue
                    else:
                        g.remaining -= got
                        if g.remaining:
                            break
                    waiters.popleft()
                    fut = g.fut
                    if not fut.done():
                        if g.error is not None:
                            fut.set_exception(g.error)
                        else:
                            fut.set_result(g.replies)
                    continue
                try:
                    reply = gets()
                except (ValueError, LookupError) as exc:
                    waiters.popleft()
                    if not w.done():
                        w.set_exception(exc)
                    continue
                if reply is not_enough:
                    break
                if type(reply) is PushNotification:
                    push(reply)
                    continue
                waiters.popleft()
                if not w.done():
                    w.set_result(reply)
        except Exception as exc:
            self.abort(exc)

    def _push(self, frame):
        if self.on_push is not None:
            try:
                self.on_push(frame)
            except Exception:
                pass

    def eof_received(self):
        return None

    def connection_lost(self, exc):
        if self.closed is None:
            if exc is None:
                error = ConnectionError("Connection closed by server.")
            else:
                error = ConnectionError(f"Error while reading from {self.host_error} : {exc.args}")
            self._fail(error)
        on_lost = self.on_lost
        self.on_lost = None
        if on_lost is not None:
            on_lost(exc)

    def pause_writing(self):
        pass

    def resume_writing(self):
        pass

    # -- sending ---------------------------------------------------------------
    def send(self, args):
        """Queue one command; returns the future of its reply."""
        if self.closed is not None:
            raise NotWritten(self.closed)
        fut = self._create_future()
        if self.transport is None:
            wbuf = self.wbuf
            mark = wbuf.mark()
            try:
                wbuf.command(args)
            finally:
                wbuf.truncate(mark)
            self.backlog.append((fut, args))
            return fut
        self.wbuf.command(args)
        self.pending.append(fut)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self._call_soon(self._flush_cb)
        return fut

    def send_group(self, list payload, Py_ssize_t count):
        """Queue ``payload`` as one waiter for ``count`` replies."""
        if self.closed is not None:
            raise NotWritten(self.closed)
        fut = self._create_future()
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
            self._call_soon(self._flush_cb)
        return fut

    def flush(self):
        """Write everything queued since the last flush, in one write."""
        cdef list chunks, pending
        self.flush_scheduled = False
        transport = self.transport
        if transport is None or self.closed is not None or not self.pending or self.hold:
            return
        if self.health_interval and self.loop.time() > self.next_health and self.on_health is not None:
            self.hold = True
            self.on_health()
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

    def write_now(self, bytes data):
        """Write ``data`` ahead of everything pending; the future of its reply."""
        fut = self._create_future()
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

    def _on_timer(self):
        self.timer = None
        if self.closed is not None or not self.waiters:
            return
        deadline = self.last_progress + self.timeout
        if self.loop.time() >= deadline:
            self.abort(TimeoutError(f"Timeout reading from {self.host_error}"))
        else:
            self.timer = self.loop.call_at(deadline, self._on_timer)

    # -- failure ---------------------------------------------------------------
    def abort(self, error):
        """Close the connection at once (its state is unknown) and fail every waiter."""
        if self.closed is None:
            self._fail(error)
        if self.transport is not None:
            self.transport.abort()

    def close(self, error):
        """Close the connection and fail every waiter with ``error``."""
        if self.closed is None:
            self._fail(error)
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error, bint final=False):
        """Fail every waiter: written ones with ``error``, the others with
        ``NotWritten(error, final)`` (``final``: opening the connection failed)."""
        cdef object w, fut
        self.closed = error
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiters = self.waiters
        self.waiters = deque()
        pending = self.pending
        self.pending = []
        backlog = self.backlog
        self.backlog = []
        self.chunks = []
        self.wbuf.clear()
        for w in waiters:
            fut = (<Group>w).fut if type(w) is Group else w
            if not fut.done():
                fut.set_exception(_copy_error(error))
        for w in pending + [b[0] for b in backlog]:
            fut = (<Group>w).fut if type(w) is Group else w
            if not fut.done():
                fut.set_exception(NotWritten(_copy_error(error), final))

    @property
    def in_flight(self):
        """Waiters queued or written whose replies have not arrived."""
        return len(self.waiters) + len(self.pending) + len(self.backlog)


class MuxProtocol(MuxProtocolCore, asyncio.Protocol):
    """An ``asyncio.Protocol`` for one connection shared by many tasks (see ``_aioproto_py``)."""

    __slots__ = ()
