"""No caller object may crash the interpreter: hostile inputs to every core twin.

Each case hands a core function objects that lie about their length, mutate
the containers being encoded (from ``__repr__``, ``__index__``, ``__float__``,
``__hash__``, a codec, a callback, ...), or are malformed. The compiled twins
index with bounds checks off, so an unchecked caller container there is a
segfault, not an exception. The cases therefore run in a subprocess (this file
run as a script); a crash or a hang fails the case instead of killing pytest.
A case passes when it ends in a clean Python exception of an allowed class, or
in the correct result; for the RESP core the two twins must also agree.

Run one family by hand: ``python tests/test_hostile_callers.py resp fastredis._resp_c``.
"""

from __future__ import annotations

import ast
import codecs
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

ANY = object()  # any result is acceptable (only a crash or a hang fails)


class Case(NamedTuple):
    name: str
    run: Callable[[Any], Any]
    ok: Any = None  # the correct result; None: must raise; ANY: any result
    errors: Tuple[str, ...] = ()  # allowed exception class names


CASES: Dict[str, List[Case]] = {"resp": [], "decay": [], "window": [], "pipeline": []}


def case(family: str, ok: Any = None, errors: Tuple[str, ...] = ()) -> Callable[[Callable[[Any], Any]], Any]:
    def deco(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        CASES[family].append(Case(fn.__name__, fn, ok, errors))
        return fn

    return deco


# ------------------------------------------------------------------ helpers

def pack(*args: Any) -> bytes:
    """The reference encoding (hiredis) of one command of plain values."""
    import hiredis

    return hiredis.pack_command(tuple(args))


def packs(name: str, *cols: List[Any]) -> bytes:
    return b"".join(pack(name, *row) for row in zip(*cols))


KEYS = [f"k{i}" for i in range(40)]
VALS = [f"v{i}" for i in range(40)]

# A codec that runs caller code (clearing registered containers) on every encode.
_CLEAR: List[Any] = []


def _hostile_encode(text: str, errors: str = "strict") -> Tuple[bytes, int]:
    for target in _CLEAR:
        if callable(target):
            target()
        elif isinstance(target, list):
            target.clear()
        elif isinstance(target, dict):
            target.clear()
    return codecs.utf_8_encode(text, errors)


def _search(name: str) -> Optional[codecs.CodecInfo]:
    if name == "hostile_clear":
        return codecs.CodecInfo(_hostile_encode, codecs.utf_8_decode, name="hostile_clear")
    return None


codecs.register(_search)


def clearing(*targets: Any) -> None:
    _CLEAR[:] = targets


class Liar(Sequence):
    """A Sequence whose ``len()`` is ``claimed`` whatever its items."""

    def __init__(self, items: List[Any], claimed: int) -> None:
        self.items, self.claimed = items, claimed

    def __len__(self) -> int:
        return self.claimed

    def __getitem__(self, i: Any) -> Any:
        return self.items[i]


class Clearer(Sequence):
    """A Sequence whose ``__getitem__`` clears ``victim`` on first use."""

    def __init__(self, items: List[Any], victim: List[Any]) -> None:
        self.items, self.victim = items, victim

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: Any) -> Any:
        self.victim.clear()
        return self.items[i]


class IterClearer(list):
    def __init__(self, items: List[Any], victim: List[Any]) -> None:
        super().__init__(items)
        self.victim = victim

    def __iter__(self) -> Any:
        self.victim.clear()
        return super().__iter__()


class LenClearer(list):
    def __len__(self) -> int:
        self.clear()
        return 0


def mutating(base: type, victim: List[Any], value: Any = 1) -> Any:
    """An instance of a ``base`` subclass whose dunders clear ``victim``."""

    def clear_then(result: Any) -> Callable[..., Any]:
        def method(self: Any, *a: Any) -> Any:
            victim.clear()
            return result

        return method

    ns = {
        "__repr__": clear_then("1"), "__str__": clear_then("1"), "__index__": clear_then(1),
        "__int__": clear_then(1), "__float__": clear_then(1.0), "__len__": clear_then(1),
        "__getitem__": clear_then(b"x"), "__iter__": clear_then(iter(())), "__bytes__": clear_then(b"x"),
        "__hash__": clear_then(7), "__eq__": lambda self, other: self is other,
    }
    cls = type(f"Mutating{base.__name__}", (base,), ns)
    return cls() if base is object else cls(value)


class ClassLiar:
    """``isinstance`` reads ``__class__``: this one clears ``victim`` when asked."""

    victim: List[Any] = []

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D401
        ClassLiar.victim.clear()
        return ClassLiar


def buf_batch(mod: Any, args: Any, encoding: str = "utf-8") -> bytes:
    buf = mod.CommandBuffer(encoding)
    buf.batch(args)
    return buf.getvalue()


def buf_command(mod: Any, args: Any, encoding: str = "utf-8") -> bytes:
    buf = mod.CommandBuffer(encoding)
    buf.command(args)
    return buf.getvalue()


DATA_ERR = ("DataError",)
RESIZED = ("RuntimeError",)  # a list column resized while batch() encodes it

# ------------------------------------------------------------------ RESP encoder


@case("resp", errors=RESIZED)
def batch_codec_clears_value_column(mod: Any) -> Any:
    keys, vals = list(KEYS), list(VALS)
    clearing(vals)
    return buf_batch(mod, ("SET", keys, vals), "hostile_clear")


@case("resp", errors=RESIZED)
def batch_codec_clears_key_column(mod: Any) -> Any:
    keys, vals = list(KEYS), list(VALS)
    clearing(keys)
    return buf_batch(mod, ("SET", keys, vals), "hostile_clear")


@case("resp", errors=RESIZED)
def batch_codec_clears_outer_args_list(mod: Any) -> Any:
    args = ["SET", list(KEYS), list(VALS)]
    clearing(args, args[1], args[2])
    return buf_batch(mod, args, "hostile_clear")


@case("resp", ok=pack("MSET", *KEYS))
def command_codec_clears_args_list(mod: Any) -> Any:
    args = ["MSET"] + list(KEYS)
    clearing(args)
    return buf_command(mod, args, "hostile_clear")


@case("resp", ok=pack("MSET", *KEYS))
def addn_codec_clears_args_list(mod: Any) -> Any:
    args = list(KEYS)
    clearing(args)
    buf = mod.CommandBuffer("hostile_clear")
    buf.addn(b"$4\r\nMSET\r\n", args)
    return buf.getvalue()


@case("resp", ok=packs("SET", KEYS, VALS), errors=RESIZED)
def batch_codec_appends_to_column(mod: Any) -> Any:
    keys, vals = list(KEYS), list(VALS)

    class Grow(list):
        def clear(self) -> None:
            self.extend(["x"] * 1000)

    vals_g = Grow(vals)
    clearing(vals_g)
    return buf_batch(mod, ("SET", keys, vals_g), "hostile_clear")


@case("resp", errors=RESIZED)
def batch_codec_grows_exact_list(mod: Any) -> Any:
    keys, vals = list(KEYS), list(VALS)
    clearing(lambda: vals.extend(["x"] * 1000))
    return buf_batch(mod, ("SET", keys, vals), "hostile_clear")


@case("resp", ok=packs("SET", KEYS, VALS), errors=RESIZED)
def batch_codec_replaces_items_same_size(mod: Any) -> Any:
    # Same size, other items: the loop reads what is there (like iterating a
    # list in Python); here the codec puts back equal strings.
    keys, vals = list(KEYS), list(VALS)
    clearing(lambda: vals.__setitem__(slice(None), [f"v{i}" for i in range(40)]))
    return buf_batch(mod, ("SET", keys, vals), "hostile_clear")


def _reentrant(action: str) -> Callable[[Any], Any]:
    def run(mod: Any) -> Any:
        buf = mod.CommandBuffer("hostile_clear")
        buf.command(("PING",))
        calls = {
            "take": buf.take, "clear": buf.clear, "truncate": lambda: buf.truncate(0),
            "command": lambda: buf.command(("SET", "x", "y" * 100_000)),
            "add2": lambda: buf.add2(b"$3\r\nSET\r\n", "x", b"y" * 100_000),
            "batch": lambda: buf.batch(("SET", ["x"] * 100, b"y" * 1000)), "init": buf.__init__,
        }
        clearing(calls[action])
        try:
            buf.batch(("SET", list(KEYS), list(VALS)))
        finally:
            clearing()
        return buf.getvalue()

    return run


for _action in ("take", "clear", "truncate", "command", "add2", "batch", "init"):
    # The codec (caller code) uses the buffer being encoded into.
    CASES["resp"].append(Case(f"batch_codec_reenters_buffer_{_action}", _reentrant(_action), None, ("RuntimeError",)))
    CASES["resp"].append(Case(
        f"command_codec_reenters_buffer_{_action}",
        (lambda act: lambda mod: (clearing(), _reentrant_command(mod, act))[1])(_action), None, ("RuntimeError",)))


def _reentrant_command(mod: Any, action: str) -> Any:
    buf = mod.CommandBuffer("hostile_clear")
    calls = {
        "take": buf.take, "clear": buf.clear, "truncate": lambda: buf.truncate(0),
        "command": lambda: buf.command(("SET", "x", "y")), "add2": lambda: buf.add2(b"$3\r\nSET\r\n", "x", b"y"),
        "batch": lambda: buf.batch(("SET", ["x"], b"y")), "init": buf.__init__,
    }
    clearing(calls[action])
    try:
        buf.add2(b"$3\r\nSET\r\n", "k", "v")
    finally:
        clearing()
    return buf.getvalue()


@case("resp", errors=("RuntimeError",))
def reader_reply_error_reinits_reader(mod: Any) -> Any:
    r = mod.Reader(replyError=lambda msg: r.__init__())
    r.feed(b"*2\r\n-ERR a\r\n$3\r\nabc\r\n")
    return r.gets()


def _dunder_case(dunder_base: type, value: Any, where: str) -> Callable[[Any], Any]:
    def run(mod: Any) -> Any:
        vals = list(VALS)
        vals[3] = mutating(dunder_base, vals, value)
        if where == "batch":
            return buf_batch(mod, ("SET", list(KEYS), vals))
        if where == "command":
            return buf_command(mod, ["MSET"] + vals)
        buf = mod.CommandBuffer()
        buf.addn(b"$4\r\nMSET\r\n", vals)
        return buf.getvalue()

    return run


for _where in ("batch", "command", "addn"):
    # int subclasses (IntEnum, ...) are rejected before any of their methods runs.
    CASES["resp"].append(Case(f"{_where}_int_subclass_mutating_repr_index", _dunder_case(int, 5, _where),
                              None, DATA_ERR))
    # Objects with __index__ / __float__ / __len__ / __getitem__ / __iter__ are not values.
    CASES["resp"].append(Case(f"{_where}_object_mutating_dunders", _dunder_case(object, None, _where),
                              None, DATA_ERR))
    CASES["resp"].append(Case(f"{_where}_list_subclass_mutating_dunders", _dunder_case(list, [], _where),
                              None, DATA_ERR))

_VALS_F = list(VALS)
_VALS_F[3] = 2.5


def _float_sub(mod: Any, where: str) -> Any:
    vals = list(VALS)
    vals[3] = mutating(float, vals, 2.5)  # sent as float.__repr__: its __repr__ never runs
    if where == "batch":
        return buf_batch(mod, ("SET", list(KEYS), vals))
    return buf_command(mod, ["MSET"] + vals)


CASES["resp"].append(Case("batch_float_subclass_mutating_repr", lambda m: _float_sub(m, "batch"),
                          packs("SET", KEYS, _VALS_F)))
CASES["resp"].append(Case("command_float_subclass_mutating_repr", lambda m: _float_sub(m, "command"),
                          pack("MSET", *_VALS_F)))


@case("resp", errors=DATA_ERR)
def batch_class_property_clears_column(mod: Any) -> Any:
    vals = list(VALS)
    ClassLiar.victim = vals
    vals[3] = ClassLiar()
    return buf_batch(mod, ("SET", list(KEYS), vals))


@case("resp", errors=DATA_ERR)
def batch_class_property_clears_keys(mod: Any) -> Any:
    keys = list(KEYS)
    ClassLiar.victim = keys
    return buf_batch(mod, ("SET", keys, ClassLiar()))


def _np_sub(kind: str) -> Callable[[Any], Any]:
    def run(mod: Any) -> Any:
        import numpy as np

        vals = list(range(40))
        base = np.int64 if kind == "int" else np.float32

        class N(base):  # type: ignore[misc, valid-type]
            def __index__(self) -> int:
                vals.clear()
                return 9

            def __int__(self) -> int:
                vals.clear()
                return 9

            def __float__(self) -> float:
                vals.clear()
                return 9.0

        vals[3] = N(9)
        return buf_batch(mod, ("SET", list(KEYS), vals))

    return run


_NP_INT = list(range(40))
_NP_INT[3] = 9
_NP_FLOAT = list(range(40))
_NP_FLOAT[3] = 9.0
CASES["resp"].append(Case("batch_numpy_int_subclass_mutating_index", _np_sub("int"), packs("SET", KEYS, _NP_INT),
                          ("DataError", "TypeError") + RESIZED))
CASES["resp"].append(Case("batch_numpy_float_subclass_mutating_float", _np_sub("float"),
                          packs("SET", KEYS, _NP_FLOAT), ("DataError", "TypeError") + RESIZED))


@case("resp", errors=("ValueError",))
def batch_len_bigger_than_items(mod: Any) -> Any:
    return buf_batch(mod, ("SET", list(KEYS), Liar(list(VALS[:5]), len(KEYS))))


@case("resp", ok=packs("SET", KEYS, VALS), errors=("ValueError",))
def batch_len_smaller_than_items(mod: Any) -> Any:
    return buf_batch(mod, ("SET", list(KEYS), Liar(list(VALS), 3)))


@case("resp", ok=packs("SET", KEYS[:5], VALS[:5]), errors=("ValueError",))
def batch_only_liar_columns(mod: Any) -> Any:
    return buf_batch(mod, ("SET", Liar(KEYS[:5], 1000), Liar(VALS[:5], 2)))


@case("resp", errors=("ValueError",))
def batch_columns_of_different_lengths(mod: Any) -> Any:
    return buf_batch(mod, ("SET", list(KEYS), list(VALS[:-1])))


@case("resp", errors=("MemoryError", "OverflowError", "ValueError"))
def batch_huge_len(mod: Any) -> Any:
    return buf_batch(mod, ("SET", Liar(KEYS[:3], sys.maxsize), Liar(VALS[:3], sys.maxsize)))


@case("resp", errors=("MemoryError", "OverflowError", "ValueError"))
def batch_len_beyond_ssize_t(mod: Any) -> Any:
    return buf_batch(mod, ("SET", Liar(KEYS[:3], 2**100), list(VALS[:3])))


@case("resp", errors=("ValueError", "TypeError"))
def batch_negative_len(mod: Any) -> Any:
    return buf_batch(mod, ("SET", Liar(KEYS[:3], -5), list(VALS[:3])))


@case("resp", ok=packs("SET", KEYS, VALS), errors=("ValueError",))
def batch_getitem_clears_other_column(mod: Any) -> Any:
    vals = list(VALS)
    return buf_batch(mod, ("SET", Clearer(list(KEYS), vals), vals))


@case("resp", ok=packs("SET", KEYS, VALS), errors=("ValueError",) + RESIZED)
def batch_getitem_clears_earlier_column(mod: Any) -> Any:
    keys = list(KEYS)
    return buf_batch(mod, ("SET", keys, Clearer(list(VALS), keys)))


@case("resp", ok=packs("SET", KEYS, VALS), errors=("ValueError",) + RESIZED)
def batch_iter_clears_other_column(mod: Any) -> Any:
    keys = list(KEYS)
    return buf_batch(mod, ("SET", keys, IterClearer(list(VALS), keys)))


@case("resp", ok=ANY, errors=("ValueError",))
def batch_len_clears_itself(mod: Any) -> Any:
    return buf_batch(mod, ("SET", list(KEYS), LenClearer(VALS)))


@case("resp", errors=DATA_ERR)
def batch_generator_column(mod: Any) -> Any:
    return buf_batch(mod, ("SET", list(KEYS), (v for v in VALS)))


@case("resp", errors=DATA_ERR)
def batch_numpy_bool_array(mod: Any) -> Any:
    import numpy as np

    return buf_batch(mod, ("SET", KEYS[:2], np.array([True, False])))


@case("resp", errors=DATA_ERR)
def batch_numpy_object_array(mod: Any) -> Any:
    import numpy as np

    return buf_batch(mod, ("SET", KEYS[:2], np.array(["a", 1], dtype=object)))


@case("resp", ok=packs("SET", KEYS[:20], [repr(float(i)) for i in range(0, 40, 2)]))
def batch_numpy_non_contiguous(mod: Any) -> Any:
    import numpy as np

    return buf_batch(mod, ("SET", KEYS[:20], np.arange(40, dtype=np.float64)[::2]))


@case("resp", ok=packs("SET", KEYS[:4], [str(i) for i in (0, 3, 6, 9)]))
def batch_numpy_fortran_column(mod: Any) -> Any:
    import numpy as np

    a = np.asfortranarray(np.arange(12, dtype=np.int32).reshape(4, 3))
    return buf_batch(mod, ("SET", KEYS[:4], a[:, 0]))


@case("resp", errors=("ValueError", "TypeError", "DataError"))
def batch_numpy_zero_d(mod: Any) -> Any:
    import numpy as np

    return buf_batch(mod, ("SET", KEYS[:2], np.array(1.5)))


@case("resp", errors=("ValueError", "TypeError", "DataError"))
def batch_numpy_two_d(mod: Any) -> Any:
    import numpy as np

    return buf_batch(mod, ("SET", KEYS[:2], np.ones((2, 2))))


@case("resp", errors=("ValueError", "TypeError", "DataError"))
def batch_numpy_masked_array(mod: Any) -> Any:
    import numpy as np

    return buf_batch(mod, ("SET", KEYS[:2], np.ma.array([1.0, 2.0], mask=[False, True])))


@case("resp", ok=pack("SET", "k", "v"))
def command_liar_args(mod: Any) -> Any:
    return buf_command(mod, Liar(["SET", "k", "v"], 10))


@case("resp", errors=("ValueError",))
def command_liar_args_empty(mod: Any) -> Any:
    return buf_command(mod, Liar([], 5))


@case("resp", ok=pack("SET", "k", "v"))
def command_iterator_args(mod: Any) -> Any:
    return buf_command(mod, iter(["SET", "k", "v"]))


@case("resp", ok=pack("SET", "k", "v"), errors=("TypeError",))
def command_args_len_clears(mod: Any) -> Any:
    class L(list):
        def __len__(self) -> int:
            return 3

        def __bool__(self) -> bool:
            self.clear()
            return True

    return buf_command(mod, L(["SET", "k", "v"]))


@case("resp", errors=("ValueError", "OverflowError"))
def reader_feed_offset_overflow(mod: Any) -> Any:
    r = mod.Reader()
    r.feed(b"+OK\r\n", 2**62, 2**62)
    return r.gets()


@case("resp", errors=("ValueError", "OverflowError"))
def reader_feed_offset_beyond(mod: Any) -> Any:
    r = mod.Reader()
    r.feed(b"+OK\r\n", 6)
    return r.gets()


@case("resp", errors=("ValueError", "OverflowError"))
def reader_feed_length_beyond(mod: Any) -> Any:
    r = mod.Reader()
    r.feed(b"+OK\r\n", 1, 2**63 - 1)
    return r.gets()


@case("resp", ok=b"OK", errors=("BufferError", "TypeError", "ValueError"))
def reader_feed_non_contiguous(mod: Any) -> Any:
    r = mod.Reader()
    r.feed(memoryview(b"++OOKK\r\r\n\n")[::2])
    return r.gets()


@case("resp", errors=("RuntimeError",))
def reader_reply_error_feeds(mod: Any) -> Any:
    r = mod.Reader(replyError=lambda msg: r.feed(b"+X\r\n" * 10000))
    r.feed(b"*2\r\n-ERR a\r\n$3\r\nabc\r\n")
    return r.gets()


@case("resp", errors=("RuntimeError",))
def reader_reply_error_reenters_gets(mod: Any) -> Any:
    r = mod.Reader(replyError=lambda msg: r.gets())
    r.feed(b"*2\r\n-ERR a\r\n-ERR b\r\n+OK\r\n")
    return r.gets()


@case("resp", ok=["KeyError", b"OK"])
def reader_reply_error_raises_then_continues(mod: Any) -> Any:
    def bad(msg: str) -> Any:
        raise KeyError(msg)

    r = mod.Reader(replyError=bad)
    r.feed(b"*2\r\n-ERR a\r\n-ERR b\r\n+OK\r\n")
    try:
        r.gets()
        first = "none"
    except KeyError as exc:
        first = type(exc).__name__
    # The failed reply was consumed whole: the reader is in sync again.
    return [first, r.gets()]


@case("resp", ok=["TypeError", b"OK"])
def reader_unhashable_map_key(mod: Any) -> Any:
    r = mod.Reader()
    r.feed(b"%1\r\n*0\r\n:1\r\n+OK\r\n")
    try:
        r.gets()
        out = ["none"]
    except TypeError as exc:
        out = [type(exc).__name__]
    return out + [r.gets()]


@case("resp", ok=[b"OK"], errors=("RuntimeError",))
def reader_codec_feeds(mod: Any) -> Any:
    def dec(data: bytes, errors: str = "strict") -> Tuple[str, int]:
        r.feed(b"+more\r\n" * 1000)
        return codecs.utf_8_decode(data, errors)

    def search(name: str) -> Optional[codecs.CodecInfo]:
        if name == "hostile_feed":
            return codecs.CodecInfo(codecs.utf_8_encode, dec, name="hostile_feed")
        return None

    codecs.register(search)
    r = mod.Reader(encoding="hostile_feed")
    r.feed(b"*2\r\n+a\r\n+b\r\n+OK\r\n")
    try:
        r.gets()
    except RuntimeError:
        pass
    return [r.gets(False)]


@case("resp", ok=[b"x", b"y"])
def reader_push_handler_feeds(mod: Any) -> Any:
    r = mod.Reader()
    r.feed(b">1\r\n+p\r\n+x\r\n")
    out: List[Any] = []
    r.read_into(out, 5, lambda push: r.feed(b"+y\r\n"))
    r.read_into(out, 5)
    return out


# ------------------------------------------------------------------ decay

@case("decay", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def aggregate_float_clears_members(mod: Any) -> Any:
    members = [f"m{i % 7}" for i in range(40)]
    values = [1.0] * 40
    values[3] = _FloatClear(members)
    return mod.aggregate(members, values)


class _FloatClear:
    def __init__(self, victim: List[Any]) -> None:
        self.victim = victim

    def __float__(self) -> float:
        self.victim.clear()
        return 1.0


class _HashClear(str):
    victim: List[Any] = []

    def __hash__(self) -> int:
        _HashClear.victim.clear()
        return str.__hash__(self)

    def __eq__(self, other: Any) -> bool:
        return str.__eq__(self, other)


@case("decay", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def aggregate_float_clears_values(mod: Any) -> Any:
    values: List[Any] = [1.0] * 40
    values[3] = _FloatClear(values)
    return mod.aggregate([f"m{i % 7}" for i in range(40)], values)


@case("decay", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def aggregate_member_hash_clears_values(mod: Any) -> Any:
    values = [1.0] * 40
    _HashClear.victim = values
    members = [_HashClear(f"m{i % 7}") for i in range(40)]
    return mod.aggregate(members, values)


@case("decay", errors=("ValueError",))
def aggregate_len_lies_bigger(mod: Any) -> Any:
    return mod.aggregate(Liar(["a", "b"], 40), [1.0] * 40)


@case("decay", ok=ANY, errors=("ValueError",))
def aggregate_len_lies_smaller(mod: Any) -> Any:
    return mod.aggregate(Liar(["a", "b", "c"], 1), Liar([1.0, 2.0, 3.0], 1))


@case("decay", errors=("ValueError", "TypeError", "MemoryError", "OverflowError"))
def aggregate_huge_len(mod: Any) -> Any:
    return mod.aggregate(Liar(["a"], sys.maxsize), Liar([1.0], sys.maxsize))


@case("decay", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def aggregate_increments_weight_clears_times(mod: Any) -> Any:
    times = [float(i) for i in range(40)]
    weights: List[Any] = [1.0] * 40
    weights[3] = _FloatClear(times)
    return mod.aggregate_increments([f"m{i}" for i in range(40)], weights, times, 0.0, 0.001)


@case("decay", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def aggregate_increments_time_clears_members(mod: Any) -> Any:
    members = [f"m{i}" for i in range(40)]
    times: List[Any] = [float(i) for i in range(40)]
    times[3] = _FloatClear(members)
    return mod.aggregate_increments(members, [1.0] * 40, times, 0.0, 0.001)


@case("decay", errors=("ValueError",))
def aggregate_increments_len_lies(mod: Any) -> Any:
    return mod.aggregate_increments(["a"] * 40, Liar([1.0], 40), Liar([0.0], 40), 0.0, 0.001)


@case("decay", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def decay_many_float_clears(mod: Any) -> Any:
    stored: List[Any] = [1.0] * 40
    stored[3] = _FloatClear(stored)
    return mod.decay_many(stored, 1.0, 0.0, 0.001)


@case("decay", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def decay_many_liar(mod: Any) -> Any:
    return mod.decay_many(Liar([1.0, 2.0], 40), 1.0, 0.0, 0.001)


@case("decay", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def decay_many_numpy_odd(mod: Any) -> Any:
    import numpy as np

    out = []
    for arr in (np.array(2.0), np.ones((2, 2)), np.array([1, "x"], dtype=object), np.arange(10.0)[::3]):
        try:
            out.append(mod.decay_many(arr, 1.0, 0.0, 0.001))
        except (ValueError, TypeError) as exc:
            out.append(type(exc).__name__)
    return out


# ------------------------------------------------------------------ window

def _factory(*a: Any) -> Tuple[Any, ...]:
    return a


class _IntClear:
    def __init__(self, victim: List[Any], value: int = 1) -> None:
        self.victim, self.value = victim, value

    def __int__(self) -> int:
        self.victim.clear()
        return self.value

    __index__ = __int__

    def __float__(self) -> float:
        self.victim.clear()
        return float(self.value)

    def __bool__(self) -> bool:
        self.victim.clear()
        return True


@case("window", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def decode_decisions_int_clears_reply(mod: Any) -> Any:
    reply: List[Any] = [1, 1, 4, b"0", b"1.5"] * 8
    reply[2] = _IntClear(reply, 4)
    return mod.decode_decisions(reply, [5], _factory)


@case("window", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def decode_decisions_bool_clears_reply(mod: Any) -> Any:
    reply: List[Any] = [1, 1, 4, b"0", b"1.5"] * 8
    reply[5] = _IntClear(reply, 1)
    return mod.decode_decisions(reply, [5], _factory)


@case("window", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def decode_decisions_factory_clears_reply(mod: Any) -> Any:
    reply: List[Any] = [1, 1, 4, b"0", b"1.5"] * 8

    def factory(*a: Any) -> Any:
        reply.clear()
        return a

    return mod.decode_decisions(reply, [5], factory)


@case("window", ok=ANY, errors=("ValueError", "TypeError", "IndexError"))
def decode_decisions_factory_clears_limits(mod: Any) -> Any:
    limits = [5, 6]

    def factory(*a: Any) -> Any:
        limits.clear()
        return a

    return mod.decode_decisions([1, 2, 4, b"0", b"1.5"] * 8, limits, factory)


@case("window", errors=("ValueError", "IndexError"))
def decode_decisions_limit_index_zero(mod: Any) -> Any:
    return mod.decode_decisions([1, 0, 4, b"0", b"1.5"], [5], _factory)


@case("window", errors=("ValueError", "IndexError"))
def decode_decisions_limit_index_negative(mod: Any) -> Any:
    return mod.decode_decisions([1, -3, 4, b"0", b"1.5"], [5], _factory)


@case("window", errors=("ValueError", "IndexError", "OverflowError"))
def decode_decisions_limit_index_huge(mod: Any) -> Any:
    return mod.decode_decisions([1, 10**6, 4, b"0", b"1.5"], [5], _factory)


@case("window", errors=("ValueError", "IndexError", "OverflowError"))
def decode_decisions_limit_index_beyond_int64(mod: Any) -> Any:
    return mod.decode_decisions([1, 2**70, 4, b"0", b"1.5"], [5], _factory)


@case("window", ok=[(True, 5, 4, 0.0, 1.5)], errors=("ValueError", "IndexError"))
def decode_decisions_len_lies(mod: Any) -> Any:
    return mod.decode_decisions(Liar([1, 1, 4, b"0", b"1.5"], 40), [5], _factory)


@case("window", ok=ANY, errors=("ValueError", "TypeError"))
def deny_cache_key_hash_clears(mod: Any) -> Any:
    cache = mod.DenyCache(maxsize=2)
    for i in range(5):
        cache.deny(_HashClear(f"k{i}"), 10.0 + i, 0.0)
    return len(cache)


# ------------------------------------------------------------------ pipeline

def _stack(n: int) -> List[Any]:
    return [(("GET", f"k{i}"), {}) for i in range(n)]


@case("pipeline", ok=ANY, errors=("IndexError", "RuntimeError", "ValueError"))
def callback_clears_response(mod: Any) -> Any:
    response: List[Any] = [b"x"] * 40

    def cb(r: Any) -> Any:
        response.clear()
        return r

    mod.apply_callbacks(response, _stack(40), {"GET": cb}.get, (), False)
    return response


@case("pipeline", ok=ANY, errors=("IndexError", "RuntimeError", "ValueError"))
def callback_clears_commands(mod: Any) -> Any:
    response: List[Any] = [b"x"] * 40
    commands = _stack(40)

    def cb(r: Any) -> Any:
        commands.clear()
        return r

    mod.apply_callbacks(response, commands, {"GET": cb}.get, (), False)
    return response


@case("pipeline", ok=ANY, errors=("IndexError", "RuntimeError", "ValueError"))
def lookup_clears_both(mod: Any) -> Any:
    response: List[Any] = [b"x"] * 40
    commands = _stack(40)

    def lookup(name: Any) -> Any:
        commands.clear()
        response.clear()
        return None

    mod.apply_callbacks(response, commands, lookup, (), False)
    return response


@case("pipeline", ok=ANY, errors=("IndexError", "RuntimeError", "ValueError"))
def options_items_clears_response(mod: Any) -> Any:
    response: List[Any] = [b"x"] * 40

    class Opts(dict):
        def items(self) -> Any:
            response.clear()
            return dict.items(self)

    commands = [(("GET", f"k{i}"), Opts(a=1)) for i in range(40)]
    mod.apply_callbacks(response, commands, {"GET": lambda r, **kw: r}.get, (), False)
    return response


@case("pipeline", errors=("IndexError", "ValueError", "TypeError"))
def response_shorter_than_commands(mod: Any) -> Any:
    response: List[Any] = [b"x"] * 3
    mod.apply_callbacks(response, _stack(40), {"GET": lambda r: r}.get, (), False)
    return response


@case("pipeline", errors=("IndexError", "ValueError", "TypeError"))
def command_with_empty_args(mod: Any) -> Any:
    mod.apply_callbacks([b"x"], [((), {})], {"GET": lambda r: r}.get, (), False)


@case("pipeline", errors=("IndexError", "ValueError", "TypeError"))
def command_entry_not_a_pair(mod: Any) -> Any:
    mod.apply_callbacks([b"x"], [(("GET", "k"),)], {"GET": lambda r: r}.get, (), False)


@case("pipeline", ok=ANY, errors=("IndexError", "ValueError", "TypeError"))
def commands_liar(mod: Any) -> Any:
    response: List[Any] = [b"x"] * 40
    mod.apply_callbacks(response, Liar(_stack(3), 40), {"GET": lambda r: r}.get, (), False)
    return response


# ------------------------------------------------------------------ the runner (subprocess side)

def _encode_outcome(value: Any) -> str:
    try:
        text = repr(value)
        ast.literal_eval(text)
        return text
    except Exception:  # noqa: BLE001 - a result we cannot compare: only "it did not crash"
        return repr(repr(value))


def _run_family(family: str, module: str, start: int) -> None:
    mod = importlib.import_module(module)
    for i, c in enumerate(CASES[family]):
        if i < start:
            continue
        try:
            out = {"i": i, "kind": "ok", "value": _encode_outcome(c.run(mod))}
        except Exception as exc:  # noqa: BLE001
            out = {"i": i, "kind": "exc", "value": type(exc).__name__, "msg": str(exc)[:200]}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _run_family(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    sys.exit(0)


# ------------------------------------------------------------------ the tests (pytest side)

import pytest  # noqa: E402

NO_EXTENSIONS = bool(os.environ.get("FASTREDIS_NO_EXTENSIONS"))

MODULES = {"resp": "_resp", "decay": "_decay", "window": "_window", "pipeline": "_pipeline"}
_OUTCOMES: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}


def outcomes(family: str, module: str) -> List[Dict[str, Any]]:
    """Run every case of ``family`` on ``module`` in subprocesses; a crash or
    hang is recorded for its case and the run resumes after it."""
    key = (family, module)
    if key in _OUTCOMES:
        return _OUTCOMES[key]
    n = len(CASES[family])
    results: List[Optional[Dict[str, Any]]] = [None] * n
    start = 0
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    while start < n:
        try:
            proc = subprocess.run(
                [sys.executable, __file__, family, module, str(start)],
                capture_output=True, text=True, timeout=120, env=env,
            )
            lines, rc, err = proc.stdout.splitlines(), proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
            lines = (out.decode() if isinstance(out, bytes) else out).splitlines()
            rc, err = "timeout", ""
        last = start - 1
        for line in lines:
            rec = json.loads(line)
            results[rec["i"]] = rec
            last = rec["i"]
        if last == n - 1 and rc == 0:
            break
        crashed = last + 1
        if crashed < n:
            results[crashed] = {"i": crashed, "kind": "crash", "value": f"exit {rc}", "msg": err[-2000:]}
        start = crashed + 1
    _OUTCOMES[key] = [r if r is not None else {"kind": "missing"} for r in results]
    return _OUTCOMES[key]


def _params() -> List[Any]:
    out = []
    for family, cases in CASES.items():
        for idx, c in enumerate(cases):
            for twin in ("c", "py"):
                marks = [pytest.mark.skipif(NO_EXTENSIONS, reason="FASTREDIS_NO_EXTENSIONS=1")] if twin == "c" else []
                out.append(pytest.param(family, idx, twin, id=f"{family}-{c.name}-{twin}", marks=marks))
    return out


@pytest.mark.parametrize("family,idx,twin", _params())
def test_hostile_case(family: str, idx: int, twin: str) -> None:
    c = CASES[family][idx]
    rec = outcomes(family, f"fastredis.{MODULES[family]}_{twin}")[idx]
    assert rec["kind"] in ("ok", "exc"), f"{c.name}: {rec['kind']} {rec.get('value')}\n{rec.get('msg', '')}"
    if rec["kind"] == "exc":
        assert rec["value"] in c.errors, f"{c.name} raised {rec['value']}: {rec.get('msg')}"
        return
    assert c.ok is not None, f"{c.name} should raise one of {c.errors}, returned {rec['value'][:200]}"
    if c.ok is not ANY:
        assert ast.literal_eval(rec["value"]) == c.ok, c.name


@pytest.mark.skipif(NO_EXTENSIONS, reason="FASTREDIS_NO_EXTENSIONS=1")
@pytest.mark.parametrize("idx", range(len(CASES["resp"])), ids=[c.name for c in CASES["resp"]])
def test_resp_twins_agree(idx: int) -> None:
    c_rec = outcomes("resp", "fastredis._resp_c")[idx]
    py_rec = outcomes("resp", "fastredis._resp_py")[idx]
    assert (c_rec["kind"], c_rec["value"]) == (py_rec["kind"], py_rec["value"])
