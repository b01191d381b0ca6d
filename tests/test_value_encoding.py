"""Value encoding equals redis-py 8.1 + hiredis, on both twins and every encoder entry point.

The oracle is redis-py's own ``HiredisRespSerializer`` (what ``redis.Redis``
sends when hiredis is installed): the same bytes, or DataError from both.
One deliberate difference: float *subclasses* (``np.float64``) are sent as
``float.__repr__`` of their value, where hiredis calls the subclass's
``repr`` and stores ``b'np.float64(3.5)'``.
"""

from __future__ import annotations

import array
import enum
import fractions
from decimal import Decimal
from typing import Any, List

import hiredis
import numpy as np
import pytest
from redis.connection import HiredisRespSerializer
from redis.exceptions import DataError

MESSAGE = "Invalid input of type: '{}'. Convert to a bytes, string, int or float first."


class IE(enum.IntEnum):
    A = 1


class SE(str, enum.Enum):
    X = "x"


class FE(float, enum.Enum):
    H = 0.5


class I(int):  # noqa: E742
    pass


class S(str):
    def __str__(self) -> str:
        return "not-sent"


class B(bytes):
    pass


class F(float):
    def __repr__(self) -> str:
        return "F!"


VALUES: List[Any] = [
    # exact types
    "text", "", "ключ", b"raw\x00\xff", 0, -1, 7, 2**63 - 1, -(2**63), 2**63, 2**64, 2**100, -(2**100),
    0.0, -0.0, 0.1, 1.5, 10.0, 12345.25, 1e15, 1e16, 1e22, 1e300, 5e-324, 2.0**-1074 * 3,
    float("nan"), float("inf"), float("-inf"),
    # int subclasses: DataError
    True, False, IE.A, I(3),
    # str / bytes subclasses: their contents
    SE.X, S("sub"), B(b"bsub"), np.str_("npstr"), np.bytes_(b"npbytes"),
    # bytes-like
    bytearray(b"ba"), bytearray(), memoryview(b"mv"), memoryview(b"abcdef")[1:4], memoryview(b"abcdef")[::2],
    memoryview(array.array("i", [1, 2])),
    # rejected
    None, Decimal("1.5"), fractions.Fraction(1, 3), 1j, object(), [1], (1,), {"a": 1}, {1},
    np.int64(5), np.int8(-3), np.uint64(2**64 - 1), np.float32(1.5), np.float16(0.5), np.longdouble(1.5),
    np.bool_(True), np.complex128(1j), np.array(1.5), np.array([1, 2]),
    # float subclasses: the documented difference
    np.float64(3.5), np.float64(0.1), np.float64("nan"), F(2.5), FE.H,
]


def _id(v: Any) -> str:
    return f"{type(v).__name__}-{v!r}"[:40]


def oracle(*args: Any) -> Any:
    """redis-py + hiredis: the packed bytes, or the exception class."""
    try:
        return b"".join(HiredisRespSerializer().pack(*args))
    except Exception as exc:  # noqa: BLE001
        return type(exc)


def ours(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        return type(exc)


def expected_for(value: Any, *prefix: Any) -> Any:
    """The oracle for ``prefix + (value,)`` (default ``SET k value``), with the
    float-subclass difference applied."""
    prefix = prefix or ("SET", "k")
    if isinstance(value, float) and type(value) is not float:
        return oracle(*prefix, float.__repr__(value).encode())
    return oracle(*prefix, value)


def expected_in_batch(value: Any) -> Any:
    """batch() also accepts numpy integer and floating scalars (never bool)."""
    if isinstance(value, np.integer):
        return oracle("SET", "k", int(value))
    if isinstance(value, np.floating) and not isinstance(value, float):
        return oracle("SET", "k", float(value))
    return expected_for(value)


@pytest.mark.parametrize("value", VALUES, ids=_id)
def test_pack_command_matches_redis_py_hiredis(resp_impl, value):
    assert ours(lambda: resp_impl.pack_command(("SET", "k", value))) == expected_for(value)


@pytest.mark.parametrize("value", VALUES, ids=_id)
def test_every_entry_point_encodes_alike(resp_impl, value):
    expected = expected_for(value)
    if expected is DataError:
        # The same message as redis-py's pure-Python Encoder.
        with pytest.raises(DataError) as exc:
            resp_impl.pack_command(("SET", "k", value))
        assert str(exc.value) == MESSAGE.format(type(value).__name__)

    def via(call: Any) -> Any:
        buf = resp_impl.CommandBuffer()
        buf.command(("PING",))
        before = buf.getvalue()
        got = ours(lambda: call(buf))
        if isinstance(got, type):
            assert buf.getvalue() == before  # a failed encode leaves nothing behind
            return got
        return buf.getvalue()[len(before):]

    assert via(lambda b: b.command(["SET", "k", value])) == expected
    assert via(lambda b: b.add2(b"$3\r\nSET\r\n", "k", value)) == expected
    assert via(lambda b: b.addn(b"$3\r\nSET\r\n", ["k", value])) == expected
    assert via(lambda b: b.addn(b"$3\r\nSET\r\n", ("k", value))) == expected
    assert via(lambda b: b.add1(b"$3\r\nGET\r\n", value)) == expected_for(value, "GET")
    assert via(lambda b: b.add3(b"$4\r\nHSET\r\n", "h", "k", value)) == expected_for(value, "HSET", "h", "k")
    in_batch = expected_in_batch(value)
    # As a scalar repeated over a column, and as an item of a column.
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray)):
        return  # these are columns in batch(), not values
    assert via(lambda b: b.batch(("SET", ["k"], value))) == in_batch
    assert via(lambda b: b.batch(("SET", "k", [value]))) == in_batch
    assert via(lambda b: b.batch(("SET", ("k",), (value,)))) == in_batch


def test_documented_float_subclass_difference(resp_impl):
    # redis-py + hiredis stores repr() of the subclass: silent corruption.
    assert oracle("SET", "k", np.float64(3.5)) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$15\r\nnp.float64(3.5)\r\n"
    assert resp_impl.pack_command(("SET", "k", np.float64(3.5))) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n3.5\r\n"
    assert resp_impl.pack_command(("SET", "k", F(2.5))).endswith(b"$3\r\n2.5\r\n")
    assert resp_impl.pack_command(("SET", "k", FE.H)).endswith(b"$3\r\n0.5\r\n")


@pytest.mark.parametrize(
    "value,stored",
    [(IE.A, DataError), (I(3), DataError), (True, DataError), (SE.X, b"x"), (S("sub"), b"sub"),
     (np.bytes_(b"q"), b"q"), (bytearray(b"ba"), b"ba"), (memoryview(b"mv"), b"mv"),
     (None, DataError), (Decimal(1), DataError), (np.int64(1), DataError), (np.float32(1), DataError),
     (2**100, b"1267650600228229401496703205376"), (-0.0, b"-0.0"), (5e-324, b"5e-324"),
     (float("nan"), b"nan"), (float("inf"), b"inf"), (np.float64(3.5), b"3.5")],
)
def test_rules_as_stated(resp_impl, value, stored):
    got = ours(lambda: resp_impl.pack_command(("SET", "k", value)))
    if isinstance(stored, type):
        assert got is stored
    else:
        assert got == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n" % (len(stored), stored)


def test_str_uses_the_client_encoding(resp_impl):
    # hiredis always sends utf-8; fastredis (like redis-py's Python serializer)
    # honours the client's encoding and encoding_errors, for str subclasses too.
    buf = resp_impl.CommandBuffer("latin-1", "replace")
    buf.command(("SET", S("é€"), SE.X))
    assert buf.take() == b"*3\r\n$3\r\nSET\r\n$2\r\n\xe9?\r\n$1\r\nx\r\n"
    with pytest.raises(UnicodeEncodeError):
        resp_impl.pack_command(("SET", "k", S("\ud800")))
    assert oracle("SET", "k", "\ud800") is UnicodeEncodeError


def test_int_beyond_the_str_digits_limit_raises(resp_impl):
    # hiredis.pack_command segfaults on this (repr() fails, NULL is used):
    # fastredis raises the ValueError of int -> str conversion.
    with pytest.raises(ValueError):
        resp_impl.pack_command(("SET", "k", 10**5000))
    buf = resp_impl.CommandBuffer()
    with pytest.raises(ValueError):
        buf.batch(("SET", ["a", "b"], [1, 10**5000]))
    assert len(buf) == 0


# hiredis-py tests/test_pack.py, ported: (args, packed)
HIREDIS_PACK_VECTORS = [
    (('HSET', 'foo', 'key', 'value1', b'key_b', b'bytes str', 'key_mv', memoryview(b'bytes str'), b'key_i', 67,
      'key_f', 3.14159265359),
     b'*12\r\n$4\r\nHSET\r\n$3\r\nfoo\r\n$3\r\nkey\r\n$6\r\nvalue1\r\n$5\r\nkey_b\r\n$9\r\nbytes str\r\n$6\r\n'
     b'key_mv\r\n$9\r\nbytes str\r\n$5\r\nkey_i\r\n$2\r\n67\r\n$5\r\nkey_f\r\n$13\r\n3.14159265359\r\n'),
    (('COMMAND', 'GETKEYS', 'EVAL', 'return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}', 2, 'key1', 'key2', 'first',
      'second'),
     b'*9\r\n$7\r\nCOMMAND\r\n$7\r\nGETKEYS\r\n$4\r\nEVAL\r\n$40\r\nreturn {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}\r\n'
     b'$1\r\n2\r\n$4\r\nkey1\r\n$4\r\nkey2\r\n$5\r\nfirst\r\n$6\r\nsecond\r\n'),
    (('SET', 'a', bytes(b'\xaa\x00\xffU')), b'*3\r\n$3\r\nSET\r\n$1\r\na\r\n$4\r\n\xaa\x00\xffU\r\n'),
    (('SET', 'a', "йדב문諺"),
     b'*3\r\n$3\r\nSET\r\n$1\r\na\r\n$12\r\n\xD0\xB9\xD7\x93\xD7\x91\xEB\xAC\xB8\xE8\xAB\xBA\r\n'),
    (('SET', 'a', 2**128), b'*3\r\n$3\r\nSET\r\n$1\r\na\r\n$39\r\n340282366920938463463374607431768211456\r\n'),
]


@pytest.mark.parametrize("args,packed", HIREDIS_PACK_VECTORS,
                         ids=["all_types", "spaces_in_cmd", "null_chars", "encoding", "big_int"])
def test_hiredis_pack_vectors(resp_impl, args, packed):
    assert hiredis.pack_command(args) == packed
    assert resp_impl.pack_command(args) == packed
    assert resp_impl.pack_command(list(args)) == packed


def test_hiredis_pack_wrong_type(resp_impl):
    class Bar:
        def __init__(self) -> None:
            self.key = "key"
            self.value = 36

    for value in (True, Bar()):
        with pytest.raises(TypeError):
            hiredis.pack_command(("HSET", "foo", value))
        with pytest.raises(DataError):
            resp_impl.pack_command(("HSET", "foo", value))


# ------------------------------------------------------------ batch + numpy

NUMERIC_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                  "float16", "float32", "float64", "longdouble"]


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
def test_batch_numpy_numbers_are_python_reprs(resp_impl, dtype):
    raw = [0, 1, 7, 100] if "int" in dtype else [0.0, -0.0, 0.1, 1.5, 1000.0, float("inf"), float("nan")]
    arr = np.array(raw, dtype=dtype)
    keys = [f"k{i}" for i in range(len(arr))]
    py = [int(v) if "int" in dtype else float(v) for v in arr]
    expected = b"".join(oracle("SET", k, v) for k, v in zip(keys, py))
    for column in (arr, list(arr), tuple(arr), arr[::-1][::-1]):
        buf = resp_impl.CommandBuffer()
        assert buf.batch(("SET", keys, column)) == len(arr)
        out = buf.getvalue()
        assert out == expected, column
        assert b"np." not in out and b"numpy" not in out


@pytest.mark.parametrize(
    "column",
    [np.array([True, False]), np.array([1, "x"], dtype=object), np.array([1, 2], dtype=object),
     [np.bool_(True), np.bool_(False)], np.array([1 + 2j, 3j]), np.array(["2020-01-01"] * 2, dtype="M8[D]"),
     np.array([1, 2], dtype="m8[s]"), [np.timedelta64(1, "s"), np.timedelta64(2, "s")], [IE.A, IE.A],
     [True, 1]],
    ids=["bool", "object-mixed", "object-ints", "np.bool_-list", "complex", "datetime64", "timedelta64",
         "timedelta64-list", "IntEnum-list", "bool-list"],
)
def test_batch_rejects_bool_object_and_other_dtypes(resp_impl, column):
    buf = resp_impl.CommandBuffer()
    with pytest.raises((DataError, TypeError)):
        buf.batch(("SET", ["a", "b"], column))
    assert len(buf) == 0
