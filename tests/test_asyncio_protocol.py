"""The multiplexed connection's protocol core (``_aioproto_c`` and its twin
``_aioproto_py``) driven by hand: replies fed in fragments down to one byte,
cancelled waiters, groups, push frames, decode errors, malformed input,
timeouts, and what each waiter sees when the connection fails."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any, List

import pytest
from _asyncio_fixtures import NO_EXTENSIONS, loop_kind, run  # noqa: F401
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from fastredis.exceptions import ProtocolError
from fastredis.retry_policy import NotWritten


@pytest.fixture(params=[pytest.param("c", marks=pytest.mark.skipif(NO_EXTENSIONS, reason="pure twins")), "py"])
def core(request: pytest.FixtureRequest) -> Any:
    proto = importlib.import_module(f"fastredis._aioproto_{request.param}")
    resp = importlib.import_module(f"fastredis._resp_{request.param}")
    return proto, resp


class FakeTransport:
    def __init__(self) -> None:
        self.written: List[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted


def _make(core: Any, decode: bool = False, timeout: Any = None, pushes: Any = None) -> Any:
    proto_mod, resp = core
    nothing = object()
    reader = resp.Reader(
        protocolError=ProtocolError, replyError=ResponseError, encoding="utf-8" if decode else None, notEnoughData=nothing
    )
    loop = asyncio.get_running_loop()
    proto = proto_mod.MuxProtocol(
        loop, reader, resp.CommandBuffer(), timeout=timeout, host_error="test:1", not_enough=nothing,
        on_push=(pushes.append if pushes is not None else None),
    )  # fmt: skip
    transport = FakeTransport()
    proto.connection_made(transport)
    return proto, transport


def test_one_write_per_iteration_and_replies_in_fragments(run, core) -> None:
    async def main() -> None:
        proto, transport = _make(core)
        futs = [proto.send(("GET", f"k{i}")) for i in range(3)]
        group = proto.send_group([b"*1\r\n$4\r\nPING\r\n", b"*1\r\n$4\r\nPING\r\n"], 2)
        assert transport.written == []
        await asyncio.sleep(0)
        assert len(transport.written) == 1 and transport.written[0].count(b"GET") == 3
        stream = b"$2\r\nv0\r\n$-1\r\n-ERR boom\r\n+PONG\r\n+PONG\r\n"
        for i in range(len(stream)):  # one byte at a time
            proto.data_received(stream[i : i + 1])
        assert await futs[0] == b"v0" and await futs[1] is None
        error = await futs[2]
        assert isinstance(error, ResponseError) and str(error) == "ERR boom"
        assert await group == [b"PONG", b"PONG"]
        assert proto.in_flight == 0

    run(main())


def test_cancelled_waiters_keep_their_slot(run, core) -> None:
    async def main() -> None:
        proto, transport = _make(core)
        a, b, c = proto.send(("GET", "a")), proto.send(("GET", "b")), proto.send(("GET", "c"))
        g = proto.send_group([b"x"], 2)
        await asyncio.sleep(0)
        b.cancel()
        g.cancel()
        proto.data_received(b"$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n:1\r\n")
        assert await a == b"a" and await c == b"c"
        d = proto.send(("GET", "d"))
        await asyncio.sleep(0)
        proto.data_received(b":2\r\n$1\r\nd\r\n")  # the cancelled group's second reply, then d's
        assert await d == b"d"
        assert proto.in_flight == 0

    run(main())


def test_push_frames_are_not_replies(run, core) -> None:
    async def main() -> None:
        pushes: List[Any] = []
        proto, _ = _make(core, pushes=pushes)
        a = proto.send(("GET", "a"))
        g = proto.send_group([b"x"], 1)
        await asyncio.sleep(0)
        proto.data_received(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n$1\r\na\r\n>2\r\n$4\r\nmore\r\n$0\r\n\r\n:7\r\n")
        assert await a == b"a" and await g == [7]
        assert len(pushes) == 2

    run(main())


def test_decode_errors_fail_only_their_waiter(run, core) -> None:
    async def main() -> None:
        proto, _ = _make(core, decode=True)
        a, b = proto.send(("GET", "a")), proto.send(("GET", "b"))
        g = proto.send_group([b"x"], 3)
        c = proto.send(("GET", "c"))
        await asyncio.sleep(0)
        proto.data_received(b"$1\r\n\xff\r\n$1\r\nb\r\n$1\r\nx\r\n$1\r\n\xfe\r\n$1\r\nz\r\n$1\r\nc\r\n")
        with pytest.raises(UnicodeDecodeError):
            await a
        assert await b == "b"
        with pytest.raises(UnicodeDecodeError):
            await g
        assert await c == "c"  # the group's three replies were consumed
        assert proto.closed is None

    run(main())


def test_malformed_input_aborts_and_fails_every_waiter(run, core) -> None:
    async def main() -> None:
        proto, transport = _make(core)
        written = proto.send(("GET", "a"))
        await asyncio.sleep(0)
        queued = proto.send(("GET", "b"))  # not flushed yet
        proto.data_received(b"?garbage\r\n")
        assert transport.aborted
        with pytest.raises(ProtocolError):
            await written
        with pytest.raises(NotWritten) as info:
            await queued
        assert isinstance(info.value.error, ProtocolError) and not info.value.final
        with pytest.raises(NotWritten):
            proto.send(("GET", "c"))  # a closed connection takes nothing more

    run(main())


def test_connection_lost_and_timeout(run, core) -> None:
    async def main() -> None:
        proto, transport = _make(core, timeout=0.05)
        written = proto.send(("INCR", "n"))
        await asyncio.sleep(0)
        with pytest.raises(TimeoutError, match="Timeout reading from test:1"):
            await written
        assert transport.aborted
        proto2, _ = _make(core)
        lost = proto2.send(("INCR", "n"))
        await asyncio.sleep(0)
        unsent = proto2.send(("INCR", "n"))
        proto2.connection_lost(None)
        with pytest.raises(ConnectionError, match="Connection closed by server"):
            await lost
        with pytest.raises(NotWritten):
            await unsent

    run(main())


def test_bad_arguments_raise_at_send_and_queue_nothing(run, core) -> None:
    async def main() -> None:
        from redis.exceptions import DataError

        proto, transport = _make(core)
        with pytest.raises(DataError):
            proto.send(("SET", "k", object()))
        ok = proto.send(("GET", "k"))
        await asyncio.sleep(0)
        assert transport.written == [b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"]
        proto.data_received(b"$-1\r\n")
        assert await ok is None

    run(main())


def test_queued_while_connecting_cancelled_is_never_sent(run, core) -> None:
    async def main() -> None:
        proto_mod, resp = core
        nothing = object()
        loop = asyncio.get_running_loop()
        proto = proto_mod.MuxProtocol(loop, resp.Reader(notEnoughData=nothing), resp.CommandBuffer(), not_enough=nothing)
        keep, drop = proto.send(("GET", "keep")), proto.send(("INCR", "drop"))
        group = proto.send_group([b"*1\r\n$4\r\nPING\r\n"], 1)
        drop.cancel()
        transport = FakeTransport()
        proto.connection_made(transport)
        assert b"drop" not in b"".join(transport.written) and b"keep" in b"".join(transport.written)
        proto.data_received(b"$1\r\nv\r\n+PONG\r\n")
        assert await keep == b"v" and await group == [b"PONG"]

    run(main())
