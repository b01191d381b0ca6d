"""Pure-Python twin of the RESP core (``_resp_c``): command encoder and reply reader.

Same names and results as the compiled module; ``fastredis._resp`` picks one.

>>> buf = CommandBuffer()
>>> buf.command(("SET", "k", 1))
>>> buf.take()
b'*3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\n1\\r\\n'
>>> reader = Reader()
>>> reader.feed(b"+OK\\r\\n:1\\r\\n")
>>> out = []
>>> reader.read_into(out, 10)
2
>>> out
[b'OK', 1]
"""

from __future__ import annotations

import codecs
import math
import operator
import re
import sys
from collections.abc import Sequence
from typing import Any, Callable, List, Optional, Tuple

from hiredis import PushNotification
from redis.exceptions import DataError, ResponseError

from fastredis.exceptions import ProtocolError

__all__ = ["CommandBuffer", "Reader", "pack_command", "MAX_BULK", "MAX_AGGREGATE", "MAX_DEPTH"]

# Caps on untrusted reply headers (design.md). Aggregates are capped at
# INT32_MAX rather than 2**32: ``*3333333333`` must be rejected, not awaited.
MAX_BULK = 512 * 1024 * 1024
MAX_AGGREGATE = 2**31 - 1
MAX_DEPTH = 1024

_CRLF = b"\r\n"
_COMPACT_AT = 64 * 1024


def _invalid(value: Any) -> DataError:
    return DataError(
        f"Invalid input of type: '{type(value).__name__}'. "
        f"Convert to a bytes, string, int or float first."
    )


def _encode(value: Any, encoding: str, errors: str) -> bytes:
    """One argument by the rules of redis-py 8.1 + hiredis (``hiredis.pack_command``).

    - bytes (and subclasses): as they are; bytearray, memoryview: their bytes;
    - str (and subclasses, e.g. a str Enum member): its characters in
      ``encoding``/``errors`` (never its ``__str__``);
    - exact int: decimal digits; any int subclass (bool, IntEnum, ...): DataError;
    - float (and subclasses): ``float.__repr__`` of the value. hiredis calls the
      subclass's ``repr`` (``b'np.float64(3.5)'``): a deliberate difference;
    - anything else (None, Decimal, numpy ints, ...): DataError with redis-py's message.
    """
    tp = type(value)
    if tp is bytes:
        return value
    if tp is str:
        return value.encode(encoding, errors)
    if tp is int:
        return int.__repr__(value).encode()
    if tp is float:
        return float.__repr__(value).encode()
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, str):
        return str.encode(value, encoding, errors)
    if isinstance(value, float):
        return float.__repr__(value).encode()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise _invalid(value)


def _encode_batch_item(value: Any, encoding: str, errors: str) -> bytes:
    """Like _encode, but numpy integer / floating scalars are accepted as int / float."""
    tp = type(value)
    if tp is bytes or tp is str or tp is int or tp is float:
        return _encode(value, encoding, errors)
    if not isinstance(value, (int, bytes, str, float, bytearray, memoryview)):
        np = sys.modules.get("numpy")
        if np is not None:
            if isinstance(value, np.bool_):
                raise DataError(
                    "Invalid input of type: 'bool'. Convert to a bytes, string, int or float first."
                )
            if isinstance(value, np.integer) and not isinstance(value, np.timedelta64):
                i = operator.index(value)
                if type(i) is int:
                    return int.__repr__(i).encode()
            elif isinstance(value, np.floating):
                f = float(value)
                if isinstance(f, float):
                    return float.__repr__(f).encode()
    return _encode(value, encoding, errors)


def _split_name(name: Any) -> Tuple[Any, ...]:
    """args[0] split exactly as redis-py's PythonRespSerializer.pack does."""
    if isinstance(name, str):
        return tuple(name.encode().split())
    if b" " in name:
        return tuple(name.split())
    return (name,)


def _bulk(out: bytearray, data: bytes) -> None:
    out += b"$%d\r\n" % len(data)
    out += data
    out += _CRLF


def _is_ndarray(value: Any) -> bool:
    tp = type(value)
    return tp.__name__ == "ndarray" and tp.__module__ == "numpy"


def _is_column(value: Any) -> bool:
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return False
    if isinstance(value, (list, tuple, range, Sequence)):
        return True
    return _is_ndarray(value)


def _column_items(col: Any) -> Sequence[Any]:
    """The column as an exact list or tuple, as in the compiled twin: lists
    are used in place (their size is re-checked before every item); other
    sequences are copied once, so a lying ``__len__`` is never trusted."""
    if type(col) is tuple or type(col) is list:
        return col
    if _is_ndarray(col):
        if col.ndim != 1:
            raise ValueError(f"batch columns must be 1-D, got a {col.ndim}-D array")
        if col.dtype.kind not in "iufSU":
            raise DataError(
                f"Invalid input of type: 'numpy.ndarray[{col.dtype}]'. "
                f"Convert to a bytes, string, int or float first."
            )
        return col.tolist()
    return tuple(col)


def _busy_error() -> None:
    raise RuntimeError("CommandBuffer used by caller code run while it encodes (a codec, __index__, ...)")


class CommandBuffer:
    """One growable output buffer that commands are encoded into (RESP arrays of bulk strings).

    >>> buf = CommandBuffer()
    >>> buf.add2(b"$3\\r\\nSET\\r\\n", "k", b"v")
    >>> buf.batch(("GET", ["a", "b"]))
    2
    >>> len(buf.take())
    67
    """

    __slots__ = ("_buf", "encoding", "errors", "_busy")

    def __init__(self, encoding: str = "utf-8", errors: str = "strict") -> None:
        if getattr(self, "_busy", False):
            _busy_error()
        self._busy = False
        codecs.lookup(encoding)
        codecs.lookup_error(errors)
        self._buf = bytearray()
        self.encoding = encoding
        self.errors = errors

    def command(self, args: Any) -> None:
        """Encode one command; ``args[0]`` is the name (split on spaces as redis-py does)."""
        if self._busy:
            _busy_error()
        self._busy = True
        try:
            self._command(args)
        finally:
            self._busy = False

    def _command(self, args: Any) -> None:
        args = args if type(args) is tuple else tuple(args)
        if not args:
            raise ValueError("args must contain at least the command name")
        enc, err = self.encoding, self.errors
        parts = _split_name(args[0]) + args[1:]
        out = bytearray(b"*%d\r\n" % len(parts))
        for a in parts:
            _bulk(out, _encode(a, enc, err))
        self._buf += out

    def _fixed(self, name: bytes, args: Any) -> None:
        if self._busy:
            _busy_error()
        self._busy = True
        try:
            self._fixed_body(name, args)
        finally:
            self._busy = False

    def _fixed_body(self, name: bytes, args: Any) -> None:
        args = args if type(args) is tuple else tuple(args)
        enc, err = self.encoding, self.errors
        out = bytearray(b"*%d\r\n" % (len(args) + 1))
        out += name
        for a in args:
            _bulk(out, _encode(a, enc, err))
        self._buf += out

    def add1(self, name: bytes, a: Any) -> None:
        """Fast path: ``name`` is the pre-encoded bulk of the command name, e.g. b"$3\\r\\nGET\\r\\n"."""
        self._fixed(name, (a,))

    def add2(self, name: bytes, a: Any, b: Any) -> None:
        """Fast path with two args after the pre-encoded name."""
        self._fixed(name, (a, b))

    def add3(self, name: bytes, a: Any, b: Any, c: Any) -> None:
        """Fast path with three args after the pre-encoded name."""
        self._fixed(name, (a, b, c))

    def addn(self, name: bytes, args: Any) -> None:
        """Fast path with any number of args after the pre-encoded name."""
        self._fixed(name, args)

    def batch(self, args: Any, snapshot: Optional[list] = None) -> int:
        """Column encoding: ``batch(("SET", keys, values))``; returns the number of commands.

        ``snapshot``, if given, receives the arguments as encoded: the name,
        then each column as the sequence that was read and each scalar as
        itself (rows rebuilt from it match the bytes whatever the caller
        does to its lists afterwards).
        """
        if self._busy:
            _busy_error()
        self._busy = True
        try:
            return self._batch(args, snapshot)
        finally:
            self._busy = False

    def _batch(self, args: Any, snapshot: Optional[list]) -> int:
        args = args if type(args) is tuple else tuple(args)
        if not args:
            raise ValueError("args must contain at least the command name")
        enc, err = self.encoding, self.errors
        name = _split_name(args[0])
        head = bytearray(b"*%d\r\n" % (len(name) + len(args) - 1))
        for part in name:
            _bulk(head, _encode(part, enc, err))
        n = -1
        cols: List[Any] = []
        for i, a in enumerate(args[1:], 1):
            if _is_column(a):
                c = _column_items(a)
                if n == -1:
                    n = len(c)
                elif len(c) != n:
                    raise ValueError(
                        f"batch columns must have the same length: argument {i} has "
                        f"{len(c)} items, expected {n}"
                    )
                cols.append(c)
            else:
                cols.append(None)
        if n == -1:
            n = 1
        # Every item is encoded before anything is written: a failure leaves the
        # buffer as it was. Scalars first, as the compiled twin does.
        enc_cols: List[Any] = [
            None if c is not None or n == 0 else _encode_batch_item(a, enc, err) for a, c in zip(args[1:], cols)
        ]
        for idx, c in enumerate(cols):
            if c is None:
                continue
            if type(c) is list:
                items = []
                for j in range(n):
                    if len(c) != n:  # an item's encoding ran caller code that resized the list
                        raise RuntimeError(f"batch() argument {idx + 1} changed size during encoding")
                    items.append(_encode_batch_item(c[j], enc, err))
                enc_cols[idx] = items
            else:
                enc_cols[idx] = [_encode_batch_item(v, enc, err) for v in c]
        out = bytearray()
        for j in range(n):
            out += head
            for c in enc_cols:
                _bulk(out, c[j] if type(c) is list else c)
        self._buf += out
        if snapshot is not None:
            snapshot.append(args[0])
            snapshot.extend(a if c is None else tuple(c) for a, c in zip(args[1:], cols))
        return n

    def __len__(self) -> int:
        return len(self._buf)

    def getvalue(self) -> bytes:
        """The encoded bytes."""
        return bytes(self._buf)

    def take(self) -> bytes:
        """The encoded bytes; the buffer is then empty."""
        if self._busy:
            _busy_error()
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def clear(self) -> None:
        """Drop everything."""
        if self._busy:
            _busy_error()
        self._buf.clear()

    def mark(self) -> int:
        """Current length, for a later truncate()."""
        return len(self._buf)

    def truncate(self, mark: int) -> None:
        """Drop everything after ``mark``."""
        if self._busy:
            _busy_error()
        if mark < 0 or mark > len(self._buf):
            raise ValueError(f"mark {mark} out of range 0..{len(self._buf)}")
        del self._buf[mark:]


def pack_command(args: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Encode one command to bytes.

    >>> pack_command(("CONFIG GET", "maxmemory"))
    b'*3\\r\\n$6\\r\\nCONFIG\\r\\n$3\\r\\nGET\\r\\n$9\\r\\nmaxmemory\\r\\n'
    """
    buf = CommandBuffer(encoding, errors)
    buf.command(args)
    return buf.take()


# ---------------------------------------------------------------- reader

_INT_RE = re.compile(rb"-?(?:0|[1-9][0-9]*)\Z")
_BIG_RE = re.compile(rb"-?[0-9]+\Z")
_DOUBLE_RE = re.compile(rb"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INCOMPLETE = object()
_NO_KEY = object()
_AGGREGATES = frozenset(b"*~%>|")


def _parse_int(line: bytes, what: str) -> int:
    if _INT_RE.match(line) is None or line == b"-0":
        raise _Malformed(f"Bad {what} value")
    v = int(line)
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise _Malformed(f"Bad {what} value")
    return v


def _parse_double(line: bytes) -> float:
    low = line.lower()
    if low in (b"inf", b"-inf", b"nan", b"-nan"):
        return float(low)
    if _DOUBLE_RE.match(line) is None:
        raise _Malformed("Bad double value")
    v = float(line)
    if math.isinf(v):
        raise _Malformed("Bad double value")
    return v


class _Malformed(Exception):
    """Internal: malformed input; converted to the reader's protocolError."""


def _check_max_bulk(value: Any) -> Optional[int]:
    """max_bulk_len: None (no cap, as hiredis) or an int >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_bulk_len must be an int >= 0 or None, got {value!r}")
    if value < 0:
        raise ValueError(f"max_bulk_len must be >= 0 or None, got {value!r}")
    return None if value > 2**63 - 1 else int(value)


class Reader:
    """Incremental RESP2/RESP3 parser, API-compatible with hiredis.Reader.

    >>> r = Reader(encoding="utf-8")
    >>> r.feed(b"*2\\r\\n$1\\r\\na\\r\\n:")
    >>> r.gets()
    False
    >>> r.feed(b"7\\r\\n")
    >>> r.gets()
    ['a', 7]
    """

    def __init__(
        self,
        protocolError: Callable[[str], BaseException] = ProtocolError,
        replyError: Callable[[str], Any] = ResponseError,
        encoding: Optional[str] = None,
        errors: Optional[str] = None,
        notEnoughData: Any = False,
        max_bulk_len: Optional[int] = MAX_BULK,
    ) -> None:
        if getattr(self, "_busy", False):
            raise RuntimeError("Reader.__init__() called while the reader is parsing")
        if not callable(protocolError) or not callable(replyError):
            raise TypeError("Expected a callable")
        self._max_bulk = _check_max_bulk(max_bulk_len)
        self._busy = False
        self._protocol_error = protocolError
        self._reply_error = replyError
        self._not_enough = notEnoughData
        self._buf = bytearray()
        self._pos = 0
        # Partial aggregates: [container, remaining, type byte, pending map key].
        self._stack: List[list] = []
        self._decode_error: Optional[BaseException] = None
        self._failed: Optional[str] = None
        self.set_encoding(encoding, errors)

    @property
    def max_bulk_len(self) -> Optional[int]:
        """The largest bulk string accepted (a longer header is a ProtocolError); None: no cap."""
        return self._max_bulk

    def set_encoding(self, encoding: Optional[str] = None, errors: Optional[str] = None) -> None:
        """Decode strings with ``encoding`` (None: return bytes)."""
        if encoding is not None:
            codecs.lookup(encoding)
        if errors is not None:
            codecs.lookup_error(errors)
        self._encoding = encoding
        self._errors = errors or "strict"

    def feed(self, data: Any, offset: int = 0, length: int = -1) -> None:
        """Append input bytes (bytes, bytearray or memoryview)."""
        if self._busy:
            raise RuntimeError("Reader.feed() called while the reader is parsing")
        mv = memoryview(data)
        if not mv.c_contiguous:  # as hiredis and the compiled twin (PyBUF_SIMPLE)
            raise BufferError("memoryview: underlying buffer is not C-contiguous")
        mv = mv.cast("B")
        if length == -1:
            length = len(mv) - offset
        if offset < 0 or length < 0:
            raise ValueError("negative input")
        if offset + length > len(mv):
            raise ValueError("input is larger than buffer size")
        if self._pos and self._pos >= _COMPACT_AT:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += mv[offset : offset + length]

    def len(self) -> int:
        """Unparsed bytes buffered."""
        return len(self._buf) - self._pos

    def has_data(self) -> bool:
        """True when unparsed bytes are buffered."""
        return len(self._buf) > self._pos

    def gets(self, decode: bool = True) -> Any:
        """One complete reply, or notEnoughData."""
        reply = self._next(decode)
        return self._not_enough if reply is _INCOMPLETE else reply

    def read_into(
        self, out: list, n: int, push_handler: Optional[Callable[[Any], Any]] = None, decode: bool = True
    ) -> int:
        """Append up to ``n`` complete replies to ``out``; return how many were appended."""
        count = 0
        while count < n:
            reply = self._next(decode)
            if reply is _INCOMPLETE:
                break
            if push_handler is not None and type(reply) is PushNotification:
                push_handler(reply)
                continue
            out.append(reply)
            count += 1
        return count

    # -- internals

    def _fail(self, msg: str) -> BaseException:
        self._failed = msg
        self._buf = bytearray()
        self._pos = 0
        self._stack = []
        err = self._protocol_error(msg)
        return err if isinstance(err, BaseException) else ProtocolError(msg)

    def _next(self, decode: bool) -> Any:
        if self._busy:
            raise RuntimeError("Reader.gets() called while the reader is parsing")
        if self._failed is not None:
            raise self._fail(self._failed)
        # _busy: replyError and decoders run caller code that must not feed()
        # or parse re-entrantly (the compiled twin's buffer would move).
        self._busy = True
        try:
            reply = self._parse(decode)
        except _Malformed as exc:
            raise self._fail(str(exc)) from None
        except BaseException as exc:
            # Not from a callback (those are recorded): e.g. KeyboardInterrupt
            # mid-reply. The partial reply cannot be resumed.
            self._fail(f"reader interrupted mid-reply by {type(exc).__name__}")
            raise
        finally:
            self._busy = False
        if reply is not _INCOMPLETE and self._decode_error is not None:
            err, self._decode_error = self._decode_error, None
            raise err
        return reply

    def _text(self, data: bytes, decode: bool) -> Any:
        if not decode or self._encoding is None:
            return data
        try:
            return data.decode(self._encoding, self._errors)
        except Exception as exc:
            # hiredis semantics: finish the reply, then raise the first decode error.
            if self._decode_error is None:
                self._decode_error = exc
            return None

    def _error_reply(self, data: bytes) -> Any:
        """replyError(message); if it raises, finish the reply, then raise that (as hiredis)."""
        try:
            return self._reply_error(data.decode("utf-8", "replace"))
        except Exception as exc:
            if self._decode_error is None:
                self._decode_error = exc
            return None

    def _map_set(self, d: dict, key: Any, value: Any) -> None:
        """d[key] = value; an unhashable key is recorded and raised once the reply is complete."""
        try:
            d[key] = value
        except Exception as exc:
            if self._decode_error is None:
                self._decode_error = exc

    def _parse(self, decode: bool) -> Any:
        buf, pos, stack = self._buf, self._pos, self._stack
        end = len(buf)
        while True:
            if pos >= end:
                self._pos = pos
                return _INCOMPLETE
            cr = buf.find(b"\r", pos)
            if cr < 0 or cr + 1 >= end:
                self._pos = pos
                return _INCOMPLETE
            if buf[cr + 1] != 10:
                raise _Malformed("Missing CRLF after reply line")
            t = buf[pos]
            line = bytes(buf[pos + 1 : cr])
            nxt = cr + 2
            if t == 43:  # '+'
                if b"\n" in line:
                    raise _Malformed("Bad simple string value")
                value = self._text(line, decode)
            elif t == 58:  # ':'
                value = _parse_int(line, "integer")
            elif t in (36, 61, 33):  # '$' '=' '!'
                size = _parse_int(line, "bulk string length")
                if size == -1:
                    value = None
                else:
                    if size < 0:
                        raise _Malformed("Bulk string length out of range")
                    if self._max_bulk is not None and size > self._max_bulk:
                        raise _Malformed(f"Bulk string length {size} above the {self._max_bulk} cap "
                                         f"(Reader max_bulk_len)")
                    # Wait for the whole bulk: nothing is allocated ahead of the bytes fed.
                    if nxt + size + 2 > end:
                        self._pos = pos
                        return _INCOMPLETE
                    if buf[nxt + size] != 13 or buf[nxt + size + 1] != 10:
                        raise _Malformed("Missing CRLF after bulk string")
                    data = bytes(buf[nxt : nxt + size])
                    nxt += size + 2
                    if t == 36:
                        value = self._text(data, decode)
                    elif t == 61:
                        if size < 4 or data[3:4] != b":":
                            raise _Malformed("Verbatim string 4 bytes of content type are missing")
                        value = self._text(data[4:], decode)
                    else:
                        value = self._error_reply(data)
            elif t == 45:  # '-'
                value = self._error_reply(line)
            elif t == 95:  # '_'
                if line:
                    raise _Malformed("Bad nil value")
                value = None
            elif t == 44:  # ','
                value = _parse_double(line)
            elif t == 35:  # '#'
                if len(line) != 1 or line not in b"tTfF":
                    raise _Malformed("Bad bool value")
                value = line in b"tT"
            elif t == 40:  # '('
                if _BIG_RE.match(line) is None:
                    raise _Malformed("Bad bignum value")
                # As hiredis (redis-py's parser when hiredis is installed):
                # the digits as bytes, or str when decoding.
                value = self._text(line, decode)
            elif t in _AGGREGATES:
                count = _parse_int(line, "multi-bulk length")
                if count < -1:
                    raise _Malformed("Multi-bulk length out of range")
                if count > MAX_AGGREGATE:
                    raise _Malformed(f"Aggregate count {count} above the {MAX_AGGREGATE} cap")
                if count == -1:
                    value = None
                else:
                    container: Any = {} if t == 37 else PushNotification() if t == 62 else []
                    if count:
                        if len(stack) >= MAX_DEPTH:
                            raise _Malformed(f"Nesting deeper than {MAX_DEPTH}")
                        stack.append([container, count * 2 if t in (37, 124) else count, t, _NO_KEY])
                        pos = nxt
                        continue
                    value = container
            else:
                raise _Malformed(f'Protocol error, got "{chr(t)}" as reply type byte')
            pos = nxt
            # Attach the finished value to its parents, closing finished aggregates.
            while stack:
                frame = stack[-1]
                if frame[2] == 37:
                    if frame[3] is _NO_KEY:
                        frame[3] = value
                        frame[1] -= 1
                        break
                    self._map_set(frame[0], frame[3], value)
                    frame[3] = _NO_KEY
                else:
                    frame[0].append(value)
                frame[1] -= 1
                if frame[1]:
                    break
                stack.pop()
                value = frame[0]
            else:
                self._pos = pos
                return value
