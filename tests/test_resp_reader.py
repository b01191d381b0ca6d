"""RESP reader: hiredis as the oracle on valid input, ProtocolError on malformed input.

Runs on both twins via ``resp_impl``.
"""

from __future__ import annotations

import math
import socket
import tracemalloc

import hiredis
import pytest
import redis
from redis._parsers.base import BaseParser
from redis.exceptions import InvalidResponse, NoScriptError, ResponseError

from fastredis.exceptions import ProtocolError

NOT_ENOUGH = object()


def reply_error(msg):
    return ("ERR-OBJ", msg)


def norm(x):
    """Comparable form: keeps container types, NaN equal to itself."""
    if isinstance(x, hiredis.PushNotification):
        return ("push", [norm(i) for i in x])
    if isinstance(x, list):
        return ("list", [norm(i) for i in x])
    if isinstance(x, dict):
        return ("dict", [(norm(k), norm(v)) for k, v in x.items()])
    if isinstance(x, float):
        return ("float", "nan" if math.isnan(x) else repr(x))
    return (type(x).__name__, x)


def parse_all(reader, data, chunk=None):
    """Feed data (optionally in chunks) and collect replies/exceptions."""
    out = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for p in pieces:
        reader.feed(p)
        while True:
            try:
                x = reader.gets()
            except (UnicodeDecodeError, LookupError) as e:
                out.append(("exc", type(e).__name__))
                continue
            if x is NOT_ENOUGH:
                break
            out.append(norm(x))
    return out


def hiredis_oracle(data, **kw):
    r = hiredis.Reader(replyError=reply_error, notEnoughData=NOT_ENOUGH, **kw)
    return parse_all(r, data)


VALID = [
    b"+OK\r\n",
    b"+\r\n",
    b"+\xff\xfe bin\r\n",
    b"-ERR bad thing\r\n",
    b"-ERR \xff\r\n",
    b":0\r\n:-1\r\n:9223372036854775807\r\n:-9223372036854775808\r\n",
    b"$5\r\nhello\r\n",
    b"$0\r\n\r\n",
    b"$4\r\na\r\nb\r\n",
    b"$3\r\n\x00\r\x00\r\n",
    b"$-1\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"*3\r\n:1\r\n$1\r\nx\r\n*2\r\n+a\r\n$-1\r\n",
    b"*2\r\n:1\r\n-ERR in exec\r\n",  # EXEC-style error in a slot
    b"_\r\n",
    b",1.5\r\n,-0\r\n,10\r\n,1e300\r\n,.5\r\n,1.\r\n,1E+5\r\n",
    b",inf\r\n,-inf\r\n,INF\r\n",
    b",nan\r\n",
    b"#t\r\n#f\r\n#T\r\n",
    b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n*1\r\n:2\r\n",
    b"%0\r\n",
    b"%-1\r\n~-1\r\n",
    b"~3\r\n:1\r\n:2\r\n+x\r\n",
    b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
    b">0\r\n",
    b"*1\r\n>1\r\n+a\r\n",
    b"|1\r\n+ttl\r\n:3600\r\n+OK\r\n",
    b"*2\r\n|1\r\n+a\r\n:1\r\n+b\r\n+c\r\n",
    b"=15\r\ntxt:Some string\r\n",
    b"=4\r\ntxt:\r\n",
    b"*2\r\n%1\r\n+k\r\n~2\r\n#t\r\n_\r\n,2.5\r\n",
    b"*1\r\n" * 200 + b":1\r\n",
    b"(3492890328409238509324850943850943825024385\r\n(-12\r\n(0\r\n(007\r\n",
    b"*2\r\n(1\r\n%1\r\n(2\r\n~1\r\n(-3\r\n",
]


@pytest.mark.parametrize("data", VALID)
@pytest.mark.parametrize("chunk", [None, 1, 3])
@pytest.mark.parametrize(
    "opts", [{}, {"encoding": "utf-8"}, {"encoding": "utf-8", "errors": "replace"}, {"encoding": "latin-1"}]
)
def test_matches_hiredis(resp_impl, data, chunk, opts):
    r = resp_impl.Reader(replyError=reply_error, notEnoughData=NOT_ENOUGH, **opts)
    assert parse_all(r, data, chunk) == hiredis_oracle(data, **opts)
    assert not r.has_data() and r.len() == 0


def test_big_number_like_hiredis_through_redis_py(resp_impl):
    # redis-py's parser is hiredis's when hiredis is installed (fastredis's
    # FastParser derives from it): a RESP3 big number is its digits, as bytes,
    # or as str when decoding (decode_responses=True); gets(False) gives bytes.
    wire = b"(3492890328409238509324850943850943825024385\r\n(-12\r\n"
    for kw in ({}, {"encoding": "utf-8"}):
        for decode in (True, False):
            ours, theirs = resp_impl.Reader(**kw), hiredis.Reader(**kw)
            ours.feed(wire)
            theirs.feed(wire)
            got = [ours.gets(decode), ours.gets(decode)]
            assert got == [theirs.gets(decode), theirs.gets(decode)]
            kind = str if (kw and decode) else bytes
            assert got == [kind(b"3492890328409238509324850943850943825024385", "ascii") if kind is str
                           else b"3492890328409238509324850943850943825024385",
                           "-12" if kind is str else b"-12"]
    # hiredis takes "(" and "(-" as big numbers; they are not valid RESP3: ProtocolError.
    for bad in (b"(\r\n", b"(-\r\n", b"(+1\r\n", b"(1a\r\n", b"(1.5\r\n"):
        r = resp_impl.Reader()
        r.feed(bad)
        with pytest.raises(ProtocolError):
            r.gets()


def test_blob_error_like_redis_py(resp_impl):
    # hiredis 3.x rejects '!' (a deliberate difference): redis-py's _RESP3Parser decodes it.
    r = resp_impl.Reader(replyError=reply_error)
    r.feed(b"!21\r\nSYNTAX invalid syntax\r\n*1\r\n!3\r\nE\xffx\r\n")
    assert r.gets() == ("ERR-OBJ", "SYNTAX invalid syntax")
    assert r.gets() == [("ERR-OBJ", "E\ufffdx")]


def test_reply_error_through_parse_error(resp_impl):
    # redis-py passes BaseParser.parse_error: its error classes must come out.
    r = resp_impl.Reader(replyError=BaseParser.parse_error)
    r.feed(b"-NOSCRIPT No matching script\r\n*2\r\n+OK\r\n-WRONGTYPE Operation\r\n")
    err = r.gets()
    assert isinstance(err, NoScriptError)
    second = r.gets()
    assert second[0] == b"OK" and isinstance(second[1], ResponseError)
    r = resp_impl.Reader()
    r.feed(b"-ERR plain\r\n")
    err = r.gets()
    assert type(err) is ResponseError and str(err) == "ERR plain"


def test_decode_flag_and_set_encoding(resp_impl):
    r = resp_impl.Reader(encoding="utf-8")
    r.feed(b"$2\r\nhi\r\n$2\r\nhi\r\n%1\r\n+k\r\n+v\r\n")
    assert r.gets(False) == b"hi"
    assert r.gets() == "hi"
    assert r.gets() == {"k": "v"}
    r.set_encoding(None)
    r.feed(b"+x\r\n")
    assert r.gets() == b"x"
    r.set_encoding("latin-1", "strict")
    r.feed(b"+\xe9\r\n")
    assert r.gets() == "\xe9"
    with pytest.raises(LookupError):
        r.set_encoding("no-such-codec")
    with pytest.raises(LookupError):
        resp_impl.Reader(encoding="utf-8", errors="no-such-handler")


def test_strict_decode_error_then_continues(resp_impl):
    # Like hiredis: the whole reply is consumed, then UnicodeDecodeError; later replies parse.
    for rdr in (resp_impl.Reader(encoding="utf-8"), hiredis.Reader(encoding="utf-8")):
        rdr.feed(b"*2\r\n$1\r\n\xff\r\n$1\r\nok\r\n"[:0] + b"*2\r\n$1\r\n\xff\r\n$2\r\nok\r\n+next\r\n")
        with pytest.raises(UnicodeDecodeError):
            rdr.gets()
        assert rdr.gets() == "next"


def test_not_enough_data(resp_impl):
    r = resp_impl.Reader()
    assert r.gets() is False
    r = resp_impl.Reader(notEnoughData=NOT_ENOUGH)
    assert r.gets() is NOT_ENOUGH
    whole = b"*3\r\n$5\r\nhello\r\n%1\r\n+a\r\n:1\r\n,1.5\r\n"
    for cut in range(len(whole)):
        r = resp_impl.Reader(notEnoughData=NOT_ENOUGH)
        r.feed(whole[:cut])
        assert r.gets() is NOT_ENOUGH
        r.feed(whole[cut:])
        assert r.gets() == [b"hello", {b"a": 1}, 1.5]
        assert r.gets() is NOT_ENOUGH


def test_feed_offset_length_and_buffers(resp_impl):
    r = resp_impl.Reader()
    r.feed(bytearray(b"xx+OK\r\nyy"), 2, 5)
    r.feed(memoryview(b"+A\r\n"))
    assert r.gets() == b"OK" and r.gets() == b"A"
    with pytest.raises(ValueError):
        r.feed(b"abc", 2, 5)
    with pytest.raises(ValueError):
        r.feed(b"abc", -1)


def test_has_data_and_len(resp_impl):
    r = resp_impl.Reader()
    assert not r.has_data() and r.len() == 0
    r.feed(b"+OK\r\n+O")
    assert r.has_data() and r.len() == 7
    assert r.gets() == b"OK"
    assert r.has_data() and r.len() == 2
    r.feed(b"K\r\n")
    assert r.gets() == b"OK"
    assert not r.has_data() and r.len() == 0


def test_read_into_counts_and_push_routing(resp_impl):
    r = resp_impl.Reader()
    push = b">3\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n_\r\n"
    r.feed(push + b"+OK\r\n" + push + b":1\r\n$2\r\nab\r\n")
    out, pushes = [], []
    assert r.read_into(out, 2, pushes.append) == 2
    assert out == [b"OK", 1]
    assert len(pushes) == 2 and all(type(p) is hiredis.PushNotification for p in pushes)
    assert pushes[0] == [b"invalidate", [b"k"], None]
    assert r.read_into(out, 5, pushes.append) == 1
    assert out[-1] == b"ab"
    assert r.read_into(out, 5) == 0
    # Without a handler push frames are appended and counted, as gets() returns them.
    r.feed(push + b"+OK\r\n")
    out = []
    assert r.read_into(out, 5) == 2
    assert type(out[0]) is hiredis.PushNotification and out[1] == b"OK"
    # decode=False keeps bytes on an encoding reader.
    r = resp_impl.Reader(encoding="utf-8")
    r.feed(b"+OK\r\n+OK\r\n")
    out = []
    assert r.read_into(out, 1, None, False) == 1 and out == [b"OK"]
    assert r.read_into(out, 1) == 1 and out[1] == "OK"


def test_large_reply_in_many_chunks(resp_impl):
    n = 20_000
    data = b"*%d\r\n" % n + b"".join(b"$6\r\nv%05d\r\n" % i for i in range(n))
    r = resp_impl.Reader()
    for i in range(0, len(data), 997):
        r.feed(data[i : i + 997])
        if i + 997 < len(data):
            assert r.gets() is False
    got = r.gets()
    assert len(got) == n and got[0] == b"v00000" and got[-1] == b"v%05d" % (n - 1)


def test_compaction_keeps_memory_bounded(resp_impl):
    r = resp_impl.Reader()
    chunk = b"$1000\r\n" + b"x" * 1000 + b"\r\n"
    tracemalloc.start()
    try:
        for _ in range(20_000):  # ~20 MB through the reader
            r.feed(chunk)
            assert len(r.gets()) == 1000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


MALFORMED = [
    b"?\r\n",
    b"@foo\r\n",
    b"$3\r\nabcXY",
    b"$3\r\nabc\rX",
    b":12x\r\n",
    b":\r\n",
    b":+5\r\n",
    b":99999999999999999999\r\n",
    b"+a\rb\r\n",
    b"+a\nb\r\n",
    b"$-5\r\n",
    b"$01\r\na\r\n",
    b"$abc\r\n",
    b"*-2\r\n",
    b"*3333333333\r\n",
    b"*2147483648\r\n",
    b"%2147483648\r\n",
    b"$536870913\r\n",
    b"$9999999999\r\n",
    b"*1\r\n" * 2000,
    b"_x\r\n",
    b"#x\r\n",
    b",abc\r\n",
    b",1e500\r\n",
    b",+inf\r\n",
    b"=3\r\nabc\r\n",
    b"=4\r\ntxtx\r\n",
]


@pytest.mark.parametrize("data", MALFORMED)
def test_malformed_raises_protocol_error(resp_impl, data):
    r = resp_impl.Reader()
    r.feed(data)
    with pytest.raises(ProtocolError) as exc:
        r.gets()
    assert isinstance(exc.value, InvalidResponse)
    # The reader stays failed (the connection gets dropped), never hangs or crashes.
    with pytest.raises(ProtocolError):
        r.read_into([], 1)


def test_custom_protocol_error_class(resp_impl):
    r = resp_impl.Reader(protocolError=InvalidResponse)
    r.feed(b"?\r\n")
    with pytest.raises(InvalidResponse):
        r.gets()
    with pytest.raises(TypeError):
        resp_impl.Reader(protocolError=1)


def test_depth_limit_boundary(resp_impl):
    r = resp_impl.Reader()
    r.feed(b"*1\r\n" * 1024 + b":1\r\n")
    x = r.gets()
    for _ in range(1024):
        x = x[0]
    assert x == 1
    r = resp_impl.Reader()
    r.feed(b"*1\r\n" * 1025 + b":1\r\n")
    with pytest.raises(ProtocolError):
        r.gets()


def test_huge_bulk_header_does_not_allocate(resp_impl):
    r = resp_impl.Reader()
    tracemalloc.start()
    try:
        r.feed(b"$524288000\r\n0123456789")  # announces 500 MiB, 10 bytes arrive
        assert r.gets() is False
        r.feed(b"x" * 10)
        assert r.gets() is False
        r2 = resp_impl.Reader()
        r2.feed(b"*2000000000\r\n:1\r\n")  # announces 2e9 elements, one arrives
        assert r2.gets() is False
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_reentrant_reply_error_cannot_corrupt(resp_impl):
    box = []

    def evil(msg):
        try:
            box[0].feed(b"+X\r\n" * 10_000)
        except RuntimeError:
            pass
        return msg

    r = resp_impl.Reader(replyError=evil)
    box.append(r)
    r.feed(b"*2\r\n-E1\r\n$3\r\nabc\r\n")
    assert r.gets() == ["E1", b"abc"]


# ------------------------------------------------------- inside redis-py, on a real server


def _reader_parser(impl):
    from redis._parsers.hiredis import _HiredisParser

    class Parser(_HiredisParser):
        def on_connect(self, connection, **kwargs):
            super().on_connect(connection, **kwargs)
            old = self._reader
            kw = {"protocolError": InvalidResponse, "replyError": self.parse_error,
                  "errors": connection.encoder.encoding_errors, "notEnoughData": self._reader.gets()}
            if connection.encoder.decode_responses:
                kw["encoding"] = connection.encoder.encoding
            assert old.gets() is kw["notEnoughData"]
            self._reader = impl.Reader(**kw)

    return Parser


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("decode", [False, True])
def test_drop_in_for_hiredis_reader_in_redis_py(resp_impl, redis_url, protocol, decode):
    pool = redis.ConnectionPool.from_url(
        redis_url, protocol=protocol, decode_responses=decode, parser_class=_reader_parser(resp_impl)
    )
    ref = redis.Redis.from_url(redis_url, protocol=protocol, decode_responses=decode)
    c = redis.Redis(connection_pool=pool)
    try:
        c.flushdb()

        def ops(cl):
            cl.set("s", "v\xe9")
            cl.hset("h", mapping={"a": 1, "b": "x"})
            cl.zadd("z", {"m1": 1.5, "m2": -2})
            cl.rpush("l", *range(50))
            p = cl.pipeline()
            p.get("s").hgetall("h").zrange("z", 0, -1, withscores=True).lrange("l", 0, -1)
            p.incr("s")  # error in its slot
            p.zscore("z", "m1").exists("nope").smembers("nope")
            res = p.execute(raise_on_error=False)
            res[4] = type(res[4]).__name__
            return res

        got = ops(c)
        c.flushdb()
        want = ops(ref)
        assert got == want
        with pytest.raises(NoScriptError):
            c.evalsha("0" * 40, 0)
        big = b"x" * 300_000
        c.set("big", big)
        assert c.get("big") in (big, big.decode())
    finally:
        c.close()
        ref.close()
        pool.disconnect()


def test_pubsub_push_frames_under_resp3(resp_impl, redis_url):
    pool = redis.ConnectionPool.from_url(redis_url, protocol=3, parser_class=_reader_parser(resp_impl))
    c = redis.Redis(connection_pool=pool)
    try:
        ps = c.pubsub()
        ps.subscribe("chan")
        assert ps.get_message(timeout=5)["type"] == "subscribe"
        c.publish("chan", "hello")
        msg = None
        for _ in range(50):
            msg = ps.get_message(timeout=0.2)
            if msg:
                break
        assert msg["type"] == "message" and msg["data"] == b"hello"
        ps.close()
    finally:
        c.close()
        pool.disconnect()


def test_server_kill_mid_reply_leaves_reader_waiting(resp_impl, redis_url):
    # A truncated reply (connection killed) is never reported as complete.
    host, port = redis_url.split("//")[1].split("/")[0].split(":")
    s = socket.create_connection((host, int(port)))
    try:
        s.sendall(resp_impl.pack_command(("SET", "big", "y" * 100_000)) + resp_impl.pack_command(("GET", "big")))
        data = b""
        while len(data) < len(b"+OK\r\n$100000\r\n") + 100_000 + 2:
            data += s.recv(65536)
    finally:
        s.close()
    r = resp_impl.Reader()
    r.feed(data[:-5])
    assert r.gets() == b"OK"
    assert r.gets() is False
    r.feed(data[-5:])
    assert r.gets() == b"y" * 100_000


# ------------------------------------------------------- max_bulk_len


def test_max_bulk_len_default_and_property(resp_impl):
    assert resp_impl.MAX_BULK == 512 * 1024 * 1024
    assert resp_impl.Reader().max_bulk_len == resp_impl.MAX_BULK
    assert resp_impl.Reader(max_bulk_len=None).max_bulk_len is None
    assert resp_impl.Reader(max_bulk_len=0).max_bulk_len == 0
    assert resp_impl.Reader(max_bulk_len=2**70).max_bulk_len is None  # beyond int64: no cap
    for bad, exc in ((-1, ValueError), (True, TypeError), (1.5, TypeError), ("10", TypeError)):
        with pytest.raises(exc):
            resp_impl.Reader(max_bulk_len=bad)


@pytest.mark.parametrize("cap", [0, 1, 10, 1000])
def test_max_bulk_len_boundary(resp_impl, cap):
    for t in (b"$", b"=", b"!"):
        body = (b"txt:" + b"x" * (cap - 4)) if t == b"=" and cap >= 4 else b"x" * cap
        if t == b"=" and cap < 4:
            continue
        r = resp_impl.Reader(max_bulk_len=cap, replyError=reply_error)
        r.feed(t + b"%d\r\n%s\r\n" % (len(body), body))
        assert r.gets() is not False
        r = resp_impl.Reader(max_bulk_len=cap)
        r.feed(t + b"%d\r\n" % (cap + 1))
        with pytest.raises(ProtocolError, match="max_bulk_len"):
            r.gets()


def test_max_bulk_len_none_lifts_the_cap_without_preallocating(resp_impl):
    r = resp_impl.Reader(max_bulk_len=None)
    tracemalloc.start()
    try:
        r.feed(b"$536870913\r\n0123456789")  # above the default cap: accepted, awaited
        assert r.gets() is False
        r.feed(b"x" * 10)
        assert r.gets() is False
        # int64-max length: no overflow of offset + length, just waiting.
        r2 = resp_impl.Reader(max_bulk_len=None)
        r2.feed(b"$9223372036854775807\r\nabc")
        assert r2.gets() is False
        r2.feed(b"def\r\n")
        assert r2.gets() is False
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    r = resp_impl.Reader(max_bulk_len=None)
    r.feed(b"$9223372036854775808\r\n")  # not an int64: malformed whatever the cap
    with pytest.raises(ProtocolError):
        r.gets()


def test_max_bulk_len_lifted_bulk_arrives(resp_impl):
    size = 3 * 1024 * 1024
    r = resp_impl.Reader(max_bulk_len=size - 1)
    r.feed(b"$%d\r\n" % size)
    with pytest.raises(ProtocolError):
        r.gets()
    r = resp_impl.Reader(max_bulk_len=None)
    payload = bytes(range(256)) * (size // 256)
    wire = b"$%d\r\n%s\r\n" % (size, payload)
    for i in range(0, len(wire), 65536):
        assert r.gets() is False
        r.feed(wire[i : i + 65536])
    assert r.gets() == payload


@pytest.mark.parametrize("data", VALID)
def test_uncapped_reader_matches_hiredis(resp_impl, data):
    r = resp_impl.Reader(replyError=reply_error, notEnoughData=NOT_ENOUGH, max_bulk_len=None)
    assert parse_all(r, data, 2) == hiredis_oracle(data)


# ------------------------------------------------------- caller code inside the parser


def _drain(reader):
    out = []
    while True:
        try:
            x = reader.gets()
        except Exception as exc:  # noqa: BLE001
            out.append(("exc", type(exc).__name__))
            continue
        if x is False:
            return out
        out.append(norm(x))


@pytest.mark.parametrize("wire", [
    b"*2\r\n-ERR x\r\n:1\r\n+OK\r\n",
    b"-ERR a\r\n-ERR b\r\n+OK\r\n",
    b"*3\r\n!3\r\nbad\r\n-ERR y\r\n*1\r\n-ERR z\r\n:5\r\n",
])
def test_raising_reply_error_finishes_the_reply_like_hiredis(resp_impl, wire):
    def bad(msg):
        raise KeyError(msg)

    theirs = hiredis.Reader(replyError=bad)
    theirs.feed(wire.replace(b"!3\r\nbad", b"$3\r\nbad"))  # hiredis 3 rejects '!'
    ours = resp_impl.Reader(replyError=bad)
    ours.feed(wire.replace(b"!3\r\nbad", b"$3\r\nbad"))
    assert _drain(ours) == _drain(theirs)
    if b"!" in wire:  # a blob error: same outcome
        ours = resp_impl.Reader(replyError=bad)
        ours.feed(wire)
        assert _drain(ours) == [("exc", "KeyError"), ("int", 5)]


def test_reentrant_gets_is_refused(resp_impl):
    calls = []

    def reenter(msg):
        try:
            box[0].gets()
        except RuntimeError as exc:
            calls.append(str(exc))
        return msg

    box = [resp_impl.Reader(replyError=reenter)]
    box[0].feed(b"*2\r\n-E1\r\n+a\r\n+after\r\n")
    assert box[0].gets() == ["E1", b"a"]
    assert box[0].gets() == b"after"
    assert len(calls) == 1 and "parsing" in calls[0]


def test_unhashable_map_key_raises_after_the_reply_and_reader_stays_in_sync(resp_impl):
    # hiredis leaves its reader broken ("Out of memory" forever) on this input.
    r = resp_impl.Reader()
    r.feed(b"%2\r\n*0\r\n:1\r\n+k\r\n:2\r\n+OK\r\n")
    with pytest.raises(TypeError):
        r.gets()
    assert r.gets() == b"OK"
    assert r.gets() is False


def test_failing_codec_is_raised_after_the_reply(resp_impl):
    import codecs

    def dec(data, errors="strict"):
        if data == b"boom":
            raise LookupError("codec failed")
        return codecs.utf_8_decode(data, errors)

    def search(name):
        return codecs.CodecInfo(codecs.utf_8_encode, dec, name=name) if name == "fr_test_failing" else None

    codecs.register(search)
    r = resp_impl.Reader(encoding="fr_test_failing")
    r.feed(b"*2\r\n+boom\r\n+ok\r\n+next\r\n")
    with pytest.raises(LookupError):
        r.gets()
    assert r.gets() == "next"


def test_interrupt_mid_reply_fails_the_reader(resp_impl):
    # A BaseException (not a callback's Exception) cannot be resumed: the
    # reader fails for good, as on malformed input; the connection is dropped.
    def interrupt(msg):
        raise KeyboardInterrupt

    r = resp_impl.Reader(replyError=interrupt)
    r.feed(b"*2\r\n-ERR\r\n+a\r\n+OK\r\n")
    with pytest.raises(KeyboardInterrupt):
        r.gets()
    with pytest.raises(ProtocolError, match="interrupted"):
        r.gets()


def test_feed_offset_and_length_cannot_overflow(resp_impl):
    r = resp_impl.Reader()
    for off, length in ((2**62, 2**62), (1, 2**63 - 1), (6, -1), (5, 1)):
        with pytest.raises((ValueError, OverflowError)):
            r.feed(b"+OK\r\n", off, length)
    with pytest.raises(BufferError):
        r.feed(memoryview(b"++OOKK\r\r\n\n")[::2])
    assert r.len() == 0


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("decode", [False, True])
def test_big_number_from_a_server_like_redis_py_with_hiredis(resp_impl, server_factory, protocol, decode):
    # DEBUG PROTOCOL bignum sends a RESP3 big number ("(1234567999...").
    from fastredis.client import client_class_for

    server = server_factory("--enable-debug-command", "yes")
    results = []
    for cls in (redis.Redis, client_class_for(resp_impl)):
        c = cls(port=server.port, protocol=protocol, decode_responses=decode)
        try:
            p = c.pipeline()
            p.execute_command("DEBUG", "PROTOCOL", "bignum")
            results.append((c.execute_command("DEBUG", "PROTOCOL", "bignum"), p.execute()))
        finally:
            c.close()
    assert redis.utils.HIREDIS_AVAILABLE
    assert results[0] == results[1]
    digits = "1234567999999999999999999999999999999"
    assert results[1][0] == (digits if decode else digits.encode())
