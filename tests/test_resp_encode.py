"""Golden vectors for the RESP command encoder, run on both twins (``resp_impl``)."""

from __future__ import annotations

import enum

import numpy as np
import pytest
from redis._parsers.encoders import Encoder
from redis.connection import PythonRespSerializer
from redis.exceptions import DataError


def redis_py_pack(*args):
    return b"".join(PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode).pack(*args))


def bulk(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


def cmd(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(bulk(p) for p in parts)


GOLDEN = [
    (("SET", "k", "v"), cmd(b"SET", b"k", b"v")),
    # hiredis-py test_pack.py style: every supported argument type in one command.
    (
        ("HSET", "foo", "key", "value1", b"key_b", b"bytes str", b"key_mv",
         memoryview(b"bytes str"), b"key_i", 67, "key_f", 3.14159265359),
        cmd(b"HSET", b"foo", b"key", b"value1", b"key_b", b"bytes str", b"key_mv",
            b"bytes str", b"key_i", b"67", b"key_f", b"3.14159265359"),
    ),
    (("SET", "ключ", "值"), cmd(b"SET", "ключ".encode(), "值".encode())),
    (("SET", b"\xff\xfe\x00", b"a\x00b"), cmd(b"SET", b"\xff\xfe\x00", b"a\x00b")),
    (("SET", "k", 2**100), cmd(b"SET", b"k", b"1267650600228229401496703205376")),
    (("SET", "k", -(2**63)), cmd(b"SET", b"k", b"-9223372036854775808")),
    (("SET", "k", 2**63), cmd(b"SET", b"k", b"9223372036854775808")),
    (("SET", "k", 0), cmd(b"SET", b"k", b"0")),
    (("SET", "k", -1), cmd(b"SET", b"k", b"-1")),
    (("SET", "k", 1.5), cmd(b"SET", b"k", b"1.5")),
    (("SET", "k", 1e300), cmd(b"SET", b"k", b"1e+300")),
    (("SET", "k", 10.0), cmd(b"SET", b"k", b"10.0")),
    (("SET", "k", float("inf")), cmd(b"SET", b"k", b"inf")),
    (("SET", "k", float("-inf")), cmd(b"SET", b"k", b"-inf")),
    (("SET", "k", float("nan")), cmd(b"SET", b"k", b"nan")),
    (("SET", "k", -0.0), cmd(b"SET", b"k", b"-0.0")),
    (("SET", "k", 0.1), cmd(b"SET", b"k", b"0.1")),
    (("SET", "k", bytearray(b"ba")), cmd(b"SET", b"k", b"ba")),
    (("SET", "k", memoryview(b"abcdef")[1:3]), cmd(b"SET", b"k", b"bc")),
    (("SET", "k", ""), cmd(b"SET", b"k", b"")),
    (("CONFIG GET", "maxmemory"), cmd(b"CONFIG", b"GET", b"maxmemory")),
    ((b"CONFIG GET", "maxmemory"), cmd(b"CONFIG", b"GET", b"maxmemory")),
    (("CLIENT  NO-EVICT  on",), cmd(b"CLIENT", b"NO-EVICT", b"on")),
    ((memoryview(b"PING"),), cmd(b"PING")),
    (("PING",), cmd(b"PING")),
]


@pytest.mark.parametrize("args,expected", GOLDEN)
def test_golden(resp_impl, args, expected):
    assert resp_impl.pack_command(args) == expected
    assert redis_py_pack(*args) == expected


class MyStr(str):
    pass


class MyInt(int):
    pass


class MyFloat(float):
    def __repr__(self) -> str:
        return "myfloat"


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    "value,expected",
    [(MyStr("sub"), b"sub"), (MyInt(5), DataError), (MyFloat(2.5), b"2.5"), (Color.RED, DataError),
     (np.float64(1.5), b"1.5"), (True, DataError)],
)
def test_subclasses_follow_redis_py_with_hiredis(resp_impl, value, expected):
    # redis-py + hiredis: int subclasses are rejected; str subclasses send their
    # characters. Float subclasses send float.__repr__ (hiredis: the subclass's
    # repr, b"np.float64(1.5)": the documented difference). See test_value_encoding.py.
    if expected is DataError:
        with pytest.raises(DataError):
            resp_impl.pack_command(("SET", "k", value))
    else:
        assert resp_impl.pack_command(("SET", "k", value)) == cmd(b"SET", b"k", expected)


@pytest.mark.parametrize(
    "value,typename",
    [(True, "bool"), (False, "bool"), (None, "NoneType"), (object(), "object"), ({}, "dict"),
     ([1], "list"), (np.int64(1), "int64")],
)
def test_rejected_types_exact_message(resp_impl, value, typename):
    msg = f"Invalid input of type: '{typename}'. Convert to a bytes, string, int or float first."
    buf = resp_impl.CommandBuffer()
    buf.command(("GET", "a"))
    before = buf.getvalue()
    with pytest.raises(DataError) as exc:
        buf.command(("SET", "k", "v", value))
    assert str(exc.value) == msg
    with pytest.raises(DataError):
        redis_py_pack("SET", "k", "v", value)
    # Atomic: the failed command left nothing behind.
    assert buf.getvalue() == before
    for add in (lambda: buf.add1(b"$3\r\nGET\r\n", value),
                lambda: buf.add2(b"$3\r\nSET\r\n", "k", value),
                lambda: buf.add3(b"$4\r\nHSET\r\n", "h", "f", value),
                lambda: buf.addn(b"$5\r\nHMSET\r\n", ["h", "f", "v", value])):
        with pytest.raises(DataError):
            add()
        assert buf.getvalue() == before


def test_encoding_and_errors(resp_impl):
    buf = resp_impl.CommandBuffer("latin-1", "replace")
    buf.command(("SET", "é€", "x"))
    assert buf.take() == cmd(b"SET", b"\xe9?", b"x")
    buf = resp_impl.CommandBuffer("utf-8", "strict")
    with pytest.raises(UnicodeEncodeError):
        buf.command(("SET", "k", "\ud800"))
    assert len(buf) == 0
    buf = resp_impl.CommandBuffer("utf-8", "surrogateescape")
    buf.command(("SET", "k", b"\xff".decode("utf-8", "surrogateescape")))
    assert buf.take() == cmd(b"SET", b"k", b"\xff")
    # The command name is always utf-8 (redis-py: args[0].encode().split()).
    buf = resp_impl.CommandBuffer("utf-16")
    buf.command(("GET", "k"))
    assert buf.take() == cmd(b"GET", "k".encode("utf-16"))
    with pytest.raises(LookupError):
        resp_impl.CommandBuffer("no-such-codec")


def test_fast_paths_equal_command(resp_impl):
    buf = resp_impl.CommandBuffer()
    buf.add1(b"$3\r\nGET\r\n", "k")
    buf.add2(b"$3\r\nSET\r\n", "k", 1.5)
    buf.add3(b"$4\r\nHSET\r\n", b"h", "f", 7)
    buf.addn(b"$5\r\nRPUSH\r\n", ("l", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
    buf.addn(b"$4\r\nPING\r\n", [])
    expected = b"".join(
        resp_impl.pack_command(a)
        for a in [("GET", "k"), ("SET", "k", 1.5), ("HSET", b"h", "f", 7),
                  ("RPUSH", "l", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10), ("PING",)]
    )
    assert buf.getvalue() == expected


def test_buffer_bookkeeping(resp_impl):
    buf = resp_impl.CommandBuffer()
    assert len(buf) == 0 and buf.getvalue() == b""
    buf.command(("PING",))
    m = buf.mark()
    assert m == len(buf) == len(cmd(b"PING"))
    buf.command(("SET", "k", "x" * 100_000))  # forces growth
    assert len(buf) > 100_000
    buf.truncate(m)
    assert buf.getvalue() == cmd(b"PING")
    with pytest.raises(ValueError):
        buf.truncate(m + 1)
    assert buf.take() == cmd(b"PING")
    assert len(buf) == 0
    buf.command(("PING",))
    buf.clear()
    assert buf.getvalue() == b""
    with pytest.raises(ValueError):
        buf.command(())


def test_failure_mid_command_after_growth_is_atomic(resp_impl):
    buf = resp_impl.CommandBuffer()
    buf.command(("PING",))
    with pytest.raises(DataError):
        buf.command(("SET", "x" * 50_000, "y" * 50_000, None))
    assert buf.getvalue() == cmd(b"PING")


# ------------------------------------------------------------------ batch


def loop_encode(impl, name, *cols_or_scalars):
    n = max((len(c) for c in cols_or_scalars if isinstance(c, list)), default=1)
    out = b""
    for j in range(n):
        args = [name] + [c[j] if isinstance(c, list) else c for c in cols_or_scalars]
        out += impl.pack_command(args)
    return out


def test_batch_lists_tuples_and_scalars(resp_impl):
    buf = resp_impl.CommandBuffer()
    assert buf.batch(("SET", ["a", "b", "c"], (1, 2.5, b"x"))) == 3
    assert buf.getvalue() == loop_encode(resp_impl, "SET", ["a", "b", "c"], [1, 2.5, b"x"])
    buf = resp_impl.CommandBuffer()
    assert buf.batch(("ZADD", "board", [1, 2], ["m1", "m2"])) == 2
    assert buf.getvalue() == loop_encode(resp_impl, "ZADD", "board", [1, 2], ["m1", "m2"])
    buf = resp_impl.CommandBuffer()
    assert buf.batch(["CONFIG GET", ["a", "b"]]) == 2
    assert buf.getvalue() == cmd(b"CONFIG", b"GET", b"a") + cmd(b"CONFIG", b"GET", b"b")
    buf = resp_impl.CommandBuffer()
    assert buf.batch(("INCR", range(3))) == 3
    assert buf.getvalue() == b"".join(cmd(b"INCR", str(i).encode()) for i in range(3))


def test_batch_no_column_and_empty_columns(resp_impl):
    buf = resp_impl.CommandBuffer()
    assert buf.batch(("SET", "k", "v")) == 1
    assert buf.getvalue() == cmd(b"SET", b"k", b"v")
    buf = resp_impl.CommandBuffer()
    assert buf.batch(("SET", [], [])) == 0
    assert buf.batch(("SET", np.array([], dtype=np.int64), "v")) == 0
    assert buf.getvalue() == b""


def test_batch_numpy_arrays(resp_impl):
    buf = resp_impl.CommandBuffer()
    keys = np.array([b"k1", b"k2", b"k3"])
    assert buf.batch(("SET", keys, np.array([1, -2, 2**62], dtype=np.int64))) == 3
    assert buf.getvalue() == (
        cmd(b"SET", b"k1", b"1") + cmd(b"SET", b"k2", b"-2") + cmd(b"SET", b"k3", b"4611686018427387904")
    )
    buf = resp_impl.CommandBuffer()
    buf.batch(("SET", np.array(["é", "b"]), np.array([2**64 - 1, 0], dtype=np.uint64)))
    assert buf.getvalue() == cmd(b"SET", "é".encode(), b"18446744073709551615") + cmd(b"SET", b"b", b"0")
    buf = resp_impl.CommandBuffer()
    vals = np.array([0.1, 1.0, np.inf, -0.0, 1e300], dtype=np.float64)
    buf.batch(("ZADD", "z", vals, ["a", "b", "c", "d", "e"]))
    expected = b"".join(
        cmd(b"ZADD", b"z", repr(float(v)).encode(), m) for v, m in zip(vals, [b"a", b"b", b"c", b"d", b"e"])
    )
    assert buf.getvalue() == expected
    assert b"np." not in buf.getvalue()
    buf = resp_impl.CommandBuffer()
    buf.batch(("ZADD", "z", np.array([0.1], dtype=np.float32), ["m"]))
    assert buf.getvalue() == cmd(b"ZADD", b"z", repr(float(np.float32(0.1))).encode(), b"m")


def test_batch_numpy_scalars_in_lists(resp_impl):
    buf = resp_impl.CommandBuffer()
    buf.batch(("SET", ["a", "b", "c"], [np.int64(5), np.float64(2.5), np.uint8(7)]))
    assert buf.getvalue() == cmd(b"SET", b"a", b"5") + cmd(b"SET", b"b", b"2.5") + cmd(b"SET", b"c", b"7")
    buf = resp_impl.CommandBuffer()
    buf.batch(("SET", ["a", "b"], np.float32(0.5)))  # numpy scalar repeated
    assert buf.getvalue() == cmd(b"SET", b"a", b"0.5") + cmd(b"SET", b"b", b"0.5")


@pytest.mark.parametrize(
    "args,exc",
    [
        (("SET", ["a", "b"], [1]), ValueError),
        (("SET", ["a"], np.array([1, 2])), ValueError),
        (("SET", ["a", "b"], np.array([True, False])), DataError),
        (("SET", ["a", "b"], np.array([1, "x"], dtype=object)), DataError),
        (("SET", ["a", "b"], [np.bool_(True), 1]), DataError),
        (("SET", ["a", "b"], [1, None]), DataError),
        (("SET", ["a", "b"], [1, True]), DataError),
        (("SET", ["a", "b"], None), DataError),
        (("SET", ["a"], np.array([[1]])), ValueError),
    ],
)
def test_batch_rejects_and_is_atomic(resp_impl, args, exc):
    buf = resp_impl.CommandBuffer()
    buf.command(("PING",))
    with pytest.raises(exc):
        buf.batch(args)
    assert buf.getvalue() == cmd(b"PING")


def test_batch_large(resp_impl):
    n = 20_000
    keys = [f"key:{i}" for i in range(n)]
    vals = np.arange(n, dtype=np.int64)
    buf = resp_impl.CommandBuffer()
    assert buf.batch(("SET", keys, vals)) == n
    assert buf.getvalue() == b"".join(cmd(b"SET", k.encode(), str(i).encode()) for i, k in enumerate(keys))


@pytest.mark.parametrize(
    "value",
    [0.0, -0.0, 1.0, -1.0, 3.0, 0.5, 1e14, -1e14, 999999999999999.0, 1e15, -1e15, 1e16, 2.0**52, 2.0**63,
     123456.0, 1e300, 5e-324, float("inf"), float("-inf"), float("nan")],
)
def test_float_encoding_is_repr_including_integral_fast_path(resp_impl, value: float) -> None:
    assert resp_impl.pack_command(("SET", "k", value)).endswith(b"$%d\r\n%s\r\n" % (len(repr(value)), repr(value).encode()))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.mark.skipif(bool(__import__("os").environ.get("FASTREDIS_NO_EXTENSIONS")), reason="compiled twin not requested")
@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=1e-4, max_value=1e15, allow_nan=False),
        st.floats(min_value=-1e15, max_value=-1e-4, allow_nan=False),
        st.floats(allow_nan=False),
        st.builds(round, st.floats(min_value=-1e9, max_value=1e9), st.integers(0, 12)),
    )
)
def test_float_fast_path_equals_repr(value: float) -> None:
    # The compiled encoder prints fixed-notation floats without dtoa (exact
    # 128-bit search for the shortest round-trip digits); it must equal repr().
    from fastredis import _resp_c

    assert _resp_c.pack_command(("SET", "k", value)).rsplit(b"\r\n", 2)[-2] == repr(value).encode()


@pytest.mark.parametrize("scale", [2, 4, 8, 16, 1024, 2**20])
def test_dyadic_floats_halfway_between_short_decimals(resp_impl, scale: int) -> None:
    # d = m / 2^j lies exactly halfway between two shorter decimals (12345.25 at
    # one digit): the compiled fast path must look one digit further, not stop.
    for m in (1, 3, 5, 12345 * scale + 1, 99999 * scale + scale - 1, 2**40 + 1):
        value = m / scale
        for v in (value, -value):
            assert resp_impl.pack_command(("SET", "k", v)).rsplit(b"\r\n", 2)[-2] == repr(v).encode()


def test_batch_snapshot_is_what_was_encoded(resp_impl):
    keys, vals = ["a", "b"], [1, 2]
    snap: list = []
    buf = resp_impl.CommandBuffer()
    assert buf.batch(("SET", keys, vals, "NX"), snap) == 2
    keys.clear()  # the caller reuses its lists: the snapshot keeps the rows that were sent
    assert snap[0] == "SET" and list(snap[1]) == ["a", "b"] and list(snap[2]) == [1, 2] and snap[3] == "NX"
    assert buf.getvalue() == b"".join(
        resp_impl.pack_command(("SET", snap[1][i], snap[2][i], "NX")) for i in range(2))
    snap = []
    with pytest.raises(DataError):
        buf.batch(("SET", ["a"], [None]), snap)
    assert snap == []  # filled only on success
