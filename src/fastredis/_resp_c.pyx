# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled RESP core: command encoder and reply reader (twin of ``_resp_py``).

>>> buf = CommandBuffer()
>>> buf.command(("SET", "k", 1))
>>> buf.take()
b'*3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\n1\\r\\n'
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact, PyBytes_Check
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_FromObject
from cpython.bytearray cimport PyByteArray_Check
from cpython.memoryview cimport PyMemoryView_Check
from cpython.number cimport PyNumber_Index, PyNumber_Float
from cpython.unicode cimport PyUnicode_CheckExact, PyUnicode_Check, PyUnicode_AsEncodedString
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8, PyUnicode_Decode
from cpython.long cimport PyLong_CheckExact, PyLong_Check, PyLong_AsLongLongAndOverflow, PyLong_FromLongLong
from cpython.float cimport PyFloat_CheckExact, PyFloat_Check, PyFloat_AS_DOUBLE, PyFloat_FromDouble
from cpython.list cimport PyList_Append, PyList_GET_SIZE, PyList_GET_ITEM, PyList_CheckExact, PyList_Check
from cpython.tuple cimport PyTuple_CheckExact, PyTuple_Check, PyTuple_GET_SIZE, PyTuple_GET_ITEM
from cpython.dict cimport PyDict_SetItem, PyDict_GetItem
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free
from cpython.object cimport PyObject, PyObject_Str
from cpython.conversion cimport PyOS_double_to_string, PyOS_string_to_double
from libc.string cimport memcpy, memchr, memmove
from libc.math cimport isinf, signbit

import codecs
import sys
from collections.abc import Sequence

from hiredis import PushNotification
from redis.exceptions import DataError, ResponseError

from fastredis.exceptions import ProtocolError

cdef extern from "Python.h":
    int Py_DTSF_ADD_DOT_0

__all__ = ["CommandBuffer", "Reader", "pack_command", "MAX_BULK", "MAX_AGGREGATE", "MAX_DEPTH"]

# Caps on untrusted reply headers (design.md). Aggregates are capped at
# INT32_MAX rather than 2**32: ``*3333333333`` must be rejected, not awaited.
cdef enum:
    C_MAX_BULK = 536870912
    C_MAX_AGGREGATE = 2147483647
    C_MAX_DEPTH = 1024
MAX_BULK = C_MAX_BULK
MAX_AGGREGATE = C_MAX_AGGREGATE
MAX_DEPTH = C_MAX_DEPTH

cdef object _BYTES_LIKE = (bytes, bytearray, memoryview)
cdef object _INCOMPLETE = object()
cdef Py_ssize_t _NAME_CACHE_MAX = 512


cdef object _numpy():
    """numpy if it is imported (no numpy object can exist before), else None."""
    return sys.modules.get("numpy")


cdef object _invalid(object value):
    return DataError(
        f"Invalid input of type: '{type(value).__name__}'. "
        f"Convert to a bytes, string, int or float first."
    )


cdef extern from *:
    """
    #include <math.h>
    /* repr() of a double in fixed notation, without dtoa's digit search.

       The shortest decimal that reads back as d is the nearest k-decimal for
       the smallest k at which that nearest one reads back; repr() prints it
       (ties between shortest candidates are left to dtoa). With d = m * 2^e,
       d * 10^k = m * 5^k * 2^(e+k) is exact in 128-bit integers, and the
       candidate N / 10^k reads back as d iff it lies within half the gap to
       the neighbouring doubles: 2 * |N * 2^s - m * 5^k| < 5^k (a quarter
       below a power of two). Returns the length written to out, or -1 when
       dtoa must decide (ties, exponent notation, no 128-bit integers). */
    static Py_ssize_t fr_double_repr(double d, char *out) {
    #if defined(__SIZEOF_INT128__)
        typedef unsigned __int128 u128;
        double a = fabs(d);
        int ex, k, sh, n, i, len = 0;
        unsigned long long m, N64;
        u128 p5 = 1, X, N, D, rem, half;
        char digits[24];
        if (!(a >= 1e-4 && a < 1e15)) return -1;
        m = (unsigned long long)ldexp(frexp(a, &ex), 53);
        if (ex - 53 >= 0) return -1;
        for (k = 1; k <= 17; k++) {
            p5 *= 5;
            X = (u128)m * p5;
            sh = 53 - ex - k;            /* d * 10^k = X / 2^sh */
            if (sh <= 0) return -1;      /* integral at this k: not reached for non-integral d */
            N = X >> sh;
            rem = X & ((((u128)1) << sh) - 1);
            half = ((u128)1) << (sh - 1);
            if (rem > half) { N += 1; D = (((u128)1) << sh) - rem; }
            else if (rem == half) {
                /* d lies halfway between two k-digit decimals. Neither reads
                   back when the gap to them exceeds half an ulp (2D > 5^k):
                   try k+1 (e.g. 12345.25 at k=1). Else dtoa breaks the tie. */
                if (2 * rem > p5) continue;
                return -1;
            }
            else D = rem;
            if (m == (1ULL << 52) && rem <= half && D != 0) {
                if (4 * D < p5) break;   /* below a power of two the gap halves */
                if (4 * D == p5) return -1;
                continue;
            }
            if (2 * D < p5) break;
            if (2 * D == p5) return -1;
        }
        if (k > 17 || N >= (u128)100000000000000000ULL) return -1;
        N64 = (unsigned long long)N;
        if (N64 % 10 == 0) return -1;
        n = 0;
        while (N64) { digits[n++] = (char)('0' + N64 % 10); N64 /= 10; }
        if (d < 0) out[len++] = '-';
        if (n <= k) {
            out[len++] = '0'; out[len++] = '.';
            for (i = 0; i < k - n; i++) out[len++] = '0';
            for (i = n - 1; i >= 0; i--) out[len++] = digits[i];
        } else {
            for (i = n - 1; i >= k; i--) out[len++] = digits[i];
            out[len++] = '.';
            for (i = k - 1; i >= 0; i--) out[len++] = digits[i];
        }
        return len;
    #else
        (void)d; (void)out;
        return -1;
    #endif
    }
    """
    Py_ssize_t fr_double_repr(double d, char* out) noexcept


cdef inline Py_ssize_t _fmt_ll(char* out, long long v) noexcept:
    """Decimal digits of v into out (at least 21 bytes); returns the length."""
    cdef char tmp[24]
    cdef Py_ssize_t i = 24, n
    cdef unsigned long long u
    if v < 0:
        u = <unsigned long long>(-(v + 1)) + 1
    else:
        u = <unsigned long long>v
    while True:
        i -= 1
        tmp[i] = <char>(48 + u % 10)
        u //= 10
        if u == 0:
            break
    if v < 0:
        i -= 1
        tmp[i] = 45
    n = 24 - i
    memcpy(out, &tmp[i], n)
    return n


cdef bint _is_ndarray(object v):
    cdef object tp = type(v)
    return tp.__name__ == "ndarray" and tp.__module__ == "numpy"


cdef bint _is_column(object v):
    if PyUnicode_Check(v) or PyBytes_Check(v) or PyByteArray_Check(v) or PyMemoryView_Check(v):
        return False
    if PyList_Check(v) or PyTuple_Check(v) or isinstance(v, (range, Sequence)):
        return True
    return _is_ndarray(v)


cdef object _column_values(object col):
    """The column as an exact list or tuple whose size the encoding loop can trust.

    A tuple is immutable. An exact list is used in place (copying 100k
    references costs more than encoding them): the loop re-reads its size
    before every item, since an item's encoding may run caller code (a
    codec, a numpy conversion) that resizes it. Anything else is copied once
    into a tuple, so ``len()`` is that of the items really there (a lying
    ``__len__`` is never trusted). numpy arrays become fresh lists of Python
    scalars via ``tolist()``.
    """
    if PyTuple_CheckExact(col) or PyList_CheckExact(col):
        return col
    if _is_ndarray(col):
        if col.ndim != 1:
            raise ValueError(f"batch columns must be 1-D, got a {col.ndim}-D array")
        if col.dtype.kind not in "iufSU":
            raise DataError(
                f"Invalid input of type: 'numpy.ndarray[{col.dtype}]'. "
                f"Convert to a bytes, string, int or float first."
            )
        return list(col.tolist())
    return tuple(col)


cdef class CommandBuffer:
    """One growable output buffer that commands are encoded into (RESP arrays of bulk strings).

    >>> buf = CommandBuffer()
    >>> buf.add2(b"$3\\r\\nSET\\r\\n", "k", b"v")
    >>> buf.batch(("GET", ["a", "b"]))
    2
    >>> len(buf.take())
    67
    """

    def __cinit__(self):
        self._data = NULL
        self._len = 0
        self._cap = 0

    def __init__(self, str encoding="utf-8", str errors="strict"):
        self._check_idle()
        codecs.lookup(encoding)
        codecs.lookup_error(errors)
        self.encoding = encoding
        self.errors = errors
        self._enc_b = encoding.encode("ascii")
        self._err_b = errors.encode("ascii")
        self._utf8_strict = codecs.lookup(encoding).name == "utf-8" and errors == "strict"
        self._names = {}
        if self._data == NULL:
            self._data = <char*>PyMem_Malloc(4096)
            if self._data == NULL:
                raise MemoryError()
            self._cap = 4096

    def __dealloc__(self):
        if self._data != NULL:
            PyMem_Free(self._data)
            self._data = NULL

    cdef inline int _check_idle(self) except -1:
        """Encoding may run caller code (a codec, ``__index__``, ``tolist()``);
        that code must not use this buffer until the encoding is done."""
        if self._busy:
            raise RuntimeError("CommandBuffer used by caller code run while it encodes (a codec, __index__, ...)")
        return 0

    cdef int _grow(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t need = self._len + extra
        cdef Py_ssize_t cap = self._cap * 2
        cdef char* p
        if cap < need:
            cap = need + 64
        p = <char*>PyMem_Realloc(self._data, cap)
        if p == NULL:
            raise MemoryError()
        self._data = p
        self._cap = cap
        return 0

    cdef inline int _ensure(self, Py_ssize_t extra) except -1:
        if self._len + extra > self._cap:
            return self._grow(extra)
        return 0

    cdef inline void _put(self, const char* p, Py_ssize_t n) noexcept:
        memcpy(self._data + self._len, p, n)
        self._len += n

    cdef int _write_count(self, char tag, Py_ssize_t n) except -1:
        self._ensure(24)
        self._data[self._len] = tag
        self._len += 1
        self._len += _fmt_ll(self._data + self._len, n)
        self._data[self._len] = 13
        self._data[self._len + 1] = 10
        self._len += 2
        return 0

    cdef int _write_bulk(self, const char* p, Py_ssize_t n) except -1:
        cdef char* d
        self._ensure(n + 26)
        d = self._data + self._len
        d[0] = 36
        d += 1
        d += _fmt_ll(d, n)
        d[0] = 13
        d[1] = 10
        d += 2
        memcpy(d, p, n)
        d += n
        d[0] = 13
        d[1] = 10
        self._len = (d + 2) - self._data
        return 0

    cdef int _write_arg(self, object v) except -1:
        """One argument by redis-py + hiredis's rules (see _write_arg_slow)."""
        cdef Py_ssize_t n
        cdef const char* p
        cdef long long ll
        cdef int overflow = 0
        cdef char num[32]
        if PyBytes_CheckExact(v):
            return self._write_bulk(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
        if PyUnicode_CheckExact(v):
            return self._write_text(v)
        if PyLong_CheckExact(v):
            ll = PyLong_AsLongLongAndOverflow(v, &overflow)
            if not overflow:
                n = _fmt_ll(num, ll)
                return self._write_bulk(num, n)
            b = PyObject_Str(v)   # exact int: int.__repr__, no caller code
            p = PyUnicode_AsUTF8AndSize(b, &n)
            return self._write_bulk(p, n)
        if PyFloat_CheckExact(v):
            return self._write_double(PyFloat_AS_DOUBLE(v))
        return self._write_arg_slow(v, False)

    cdef inline int _write_text(self, object v) except -1:
        """A str (or str subclass: its characters, never its __str__) in the client's encoding."""
        cdef Py_ssize_t n
        cdef const char* p
        cdef bint was
        if self._utf8_strict:
            p = PyUnicode_AsUTF8AndSize(v, &n)
            return self._write_bulk(p, n)
        was = self._busy
        self._busy = True   # the codec may be caller code
        try:
            b = PyUnicode_AsEncodedString(v, self._enc_b, self._err_b)
        finally:
            self._busy = was
        return self._write_bulk(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))

    cdef int _write_double(self, double d) except -1:
        """``float.__repr__(d)``, without dtoa for the common fixed-notation cases."""
        cdef Py_ssize_t n
        cdef char num[32]
        cdef char* s
        # Integral scores are common and repr() of them is "<int>.0":
        # skip the shortest-digits search (dtoa) for them. Below 1e15
        # repr uses fixed notation; -0.0 must keep its sign.
        if -1e15 < d < 1e15 and d == <double>(<long long>d) and not (d == 0.0 and signbit(d)):
            n = _fmt_ll(num, <long long>d)
            num[n] = 46   # '.'
            num[n + 1] = 48   # '0'
            return self._write_bulk(num, n + 2)
        n = fr_double_repr(d, num)
        if n > 0:
            return self._write_bulk(num, n)
        s = PyOS_double_to_string(d, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
        try:
            n = 0
            while s[n]:
                n += 1
            self._write_bulk(s, n)
        finally:
            PyMem_Free(s)
        return 0

    cdef int _write_arg_slow(self, object v, bint batch) except -1:
        """_write_arg_slow_body, marking the buffer busy: caller code may run."""
        cdef bint was = self._busy
        self._busy = True
        try:
            return self._write_arg_slow_body(v, batch)
        finally:
            self._busy = was

    cdef int _write_arg_slow_body(self, object v, bint batch) except -1:
        """Everything but exact bytes/str/int/float: the rules of redis-py 8.1 + hiredis.

        - bytes and str subclasses: their contents (a str subclass in the
          client's encoding; str Enum members send their value);
        - float subclasses: ``float.__repr__`` of the value (hiredis calls the
          subclass's ``repr``, so redis-py sends ``b'np.float64(3.5)'``: a
          deliberate difference);
        - bytearray and memoryview: their bytes;
        - int subclasses (bool, IntEnum, ...), None and anything else:
          DataError with redis-py's message.

        ``batch`` (columns of ``batch()``) also accepts numpy integer and
        floating scalars as decimal integers and ``float.__repr__``; numpy bools
        are rejected. Only C-level type checks run before the value's bytes
        are taken: no caller code runs here except a numpy conversion or a
        codec.
        """
        cdef Py_buffer view
        if PyBytes_Check(v):
            return self._write_bulk(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
        if PyUnicode_Check(v):
            return self._write_text(v)
        if PyFloat_Check(v):
            return self._write_double(PyFloat_AS_DOUBLE(v))
        if PyByteArray_Check(v):
            PyObject_GetBuffer(v, &view, PyBUF_SIMPLE)
            try:
                self._write_bulk(<const char*>view.buf, view.len)
            finally:
                PyBuffer_Release(&view)
            return 0
        if PyMemoryView_Check(v):
            b = PyBytes_FromObject(v)   # C order, as redis-py's bytes(arg)
            return self._write_bulk(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
        if batch and not PyLong_Check(v):
            np = _numpy()
            if np is not None:
                if isinstance(v, np.bool_):
                    raise DataError(
                        "Invalid input of type: 'bool'. Convert to a bytes, string, int or float first."
                    )
                if isinstance(v, np.integer) and not isinstance(v, np.timedelta64):
                    i = PyNumber_Index(v)
                    if PyLong_CheckExact(i):
                        return self._write_arg(i)
                elif isinstance(v, np.floating):
                    f = PyNumber_Float(v)
                    if PyFloat_Check(f):
                        return self._write_double(PyFloat_AS_DOUBLE(f))
        raise _invalid(v)

    cdef bytes _name_parts(self, object name, Py_ssize_t* count):
        """Encoded bulks of args[0], split exactly as redis-py's PythonRespSerializer.pack."""
        cdef object cached
        cdef Py_ssize_t mark
        cdef PyObject* hit
        if PyUnicode_CheckExact(name):
            hit = PyDict_GetItem(self._names, name)
            if hit != NULL:
                cached = <object>hit
                count[0] = cached[0]
                return cached[1]
        if isinstance(name, str):
            parts = tuple(name.encode().split())
        elif b" " in name and not isinstance(name, memoryview):
            parts = tuple(name.split())
        else:
            parts = (name,)
        mark = self._len
        try:
            for part in parts:
                self._write_arg(part)
            out = PyBytes_FromStringAndSize(self._data + mark, self._len - mark)
        finally:
            self._len = mark
        count[0] = len(parts)
        if PyUnicode_CheckExact(name) and len(self._names) < _NAME_CACHE_MAX:
            self._names[name] = (len(parts), out)
        return out

    def command(self, args):
        """Encode one command; ``args[0]`` is the name (split on spaces as redis-py does)."""
        cdef Py_ssize_t nparts = 0, i, n, mark = self._len
        cdef tuple t
        self._check_idle()
        # A tuple is immutable; anything else (a list an argument's codec
        # could resize) is copied once, so the loop indexes a fixed size.
        self._busy = True
        try:
            t = args if PyTuple_CheckExact(args) else tuple(args)
            n = PyTuple_GET_SIZE(t)
            if n == 0:
                raise ValueError("args must contain at least the command name")
            head = self._name_parts(t[0], &nparts)
        finally:
            self._busy = False
        try:
            self._write_count(42, nparts + n - 1)
            self._ensure(PyBytes_GET_SIZE(head))
            self._put(PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head))
            for i in range(1, n):
                self._write_arg(<object>PyTuple_GET_ITEM(t, i))
        except BaseException:
            self._len = mark
            raise

    cdef inline int _fixed_head(self, bytes name, Py_ssize_t n) except -1:
        cdef Py_ssize_t size = PyBytes_GET_SIZE(name)
        self._ensure(size + 4)
        self._data[self._len] = 42
        self._data[self._len + 1] = <char>(48 + n)
        self._data[self._len + 2] = 13
        self._data[self._len + 3] = 10
        self._len += 4
        self._put(PyBytes_AS_STRING(name), size)
        return 0

    def add1(self, bytes name not None, a):
        """Fast path: ``name`` is the pre-encoded bulk of the command name, e.g. b"$3\\r\\nGET\\r\\n"."""
        cdef Py_ssize_t mark = self._len
        self._check_idle()
        try:
            self._fixed_head(name, 2)
            self._write_arg(a)
        except BaseException:
            self._len = mark
            raise

    def add2(self, bytes name not None, a, b):
        """Fast path with two args after the pre-encoded name."""
        cdef Py_ssize_t mark = self._len
        self._check_idle()
        try:
            self._fixed_head(name, 3)
            self._write_arg(a)
            self._write_arg(b)
        except BaseException:
            self._len = mark
            raise

    def add3(self, bytes name not None, a, b, c):
        """Fast path with three args after the pre-encoded name."""
        cdef Py_ssize_t mark = self._len
        self._check_idle()
        try:
            self._fixed_head(name, 4)
            self._write_arg(a)
            self._write_arg(b)
            self._write_arg(c)
        except BaseException:
            self._len = mark
            raise

    def addn(self, bytes name not None, args):
        """Fast path with any number of args after the pre-encoded name."""
        cdef Py_ssize_t mark = self._len, i, n
        cdef tuple t
        self._check_idle()
        self._busy = True
        try:
            t = args if PyTuple_CheckExact(args) else tuple(args)
        finally:
            self._busy = False
        n = PyTuple_GET_SIZE(t)
        try:
            self._write_count(42, n + 1)
            self._ensure(PyBytes_GET_SIZE(name))
            self._put(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name))
            for i in range(n):
                self._write_arg(<object>PyTuple_GET_ITEM(t, i))
        except BaseException:
            self._len = mark
            raise

    def batch(self, args, list snapshot=None):
        """Column encoding: ``batch(("SET", keys, values))``; returns the number of commands.

        Each column (any sequence or 1-D numpy array but str, bytes,
        bytearray and memoryview) gives one command per item; scalars repeat.
        ``snapshot``, if given, receives the arguments as encoded: the name,
        then each column as a tuple and each scalar as itself; rows rebuilt
        from it later match the bytes even if the caller reuses its lists
        meanwhile (it costs a copy of each list column).
        """
        self._check_idle()
        self._busy = True
        try:
            return self._batch(args, snapshot)
        finally:
            self._busy = False

    cdef Py_ssize_t _batch(self, object args, list snapshot) except -1:
        """batch() under the busy flag. Columns are exact lists or tuples of
        ``n`` items (see _column_values); a list that changes size while it is
        encoded raises RuntimeError and nothing is written."""
        cdef Py_ssize_t nparts = 0, ncols, i, j, n = -1, m, mark = self._len, size
        cdef tuple t
        cdef list cols = []
        cdef list scalars = []
        cdef object c, a, v
        t = args if PyTuple_CheckExact(args) else tuple(args)
        if PyTuple_GET_SIZE(t) == 0:
            raise ValueError("args must contain at least the command name")
        ncols = PyTuple_GET_SIZE(t) - 1
        name = self._name_parts(t[0], &nparts)
        for i in range(1, ncols + 1):
            a = <object>PyTuple_GET_ITEM(t, i)
            if _is_column(a):
                c = _column_values(a)
                m = PyList_GET_SIZE(c) if PyList_CheckExact(c) else PyTuple_GET_SIZE(c)
                if n == -1:
                    n = m
                elif m != n:
                    raise ValueError(
                        f"batch columns must have the same length: argument {i} has "
                        f"{m} items, expected {n}"
                    )
                cols.append(c)
            else:
                cols.append(None)
        if n == -1:
            n = 1
        # Scalars are encoded once; columns item by item. The row loop reads
        # plain C arrays: kind[i] is 0 (scalar: bytes sp/sl), 1 (exact list)
        # or 2 (tuple); colp[i] is borrowed from ``cols``, which keeps it alive.
        cdef char* kind = NULL
        cdef PyObject** colp = NULL
        cdef const char** sp = NULL
        cdef Py_ssize_t* sl = NULL
        cdef PyObject* col
        cdef char k
        try:
            kind = <char*>PyMem_Malloc(ncols + 1)
            colp = <PyObject**>PyMem_Malloc((ncols + 1) * sizeof(PyObject*))
            sp = <const char**>PyMem_Malloc((ncols + 1) * sizeof(char*))
            sl = <Py_ssize_t*>PyMem_Malloc((ncols + 1) * sizeof(Py_ssize_t))
            if kind == NULL or colp == NULL or sp == NULL or sl == NULL:
                raise MemoryError()
            for i in range(ncols):
                c = <object>PyList_GET_ITEM(cols, i)
                colp[i] = <PyObject*>c
                if c is None:
                    kind[i] = 0
                    if n:
                        self._write_arg_batch(<object>PyTuple_GET_ITEM(t, i + 1))
                        s = PyBytes_FromStringAndSize(self._data + mark, self._len - mark)
                        self._len = mark
                    else:
                        s = b""
                    scalars.append(s)
                    sp[i] = PyBytes_AS_STRING(s)
                    sl[i] = PyBytes_GET_SIZE(s)
                else:
                    kind[i] = 1 if PyList_CheckExact(c) else 2
            self._write_count(42, nparts + ncols)
            head = PyBytes_FromStringAndSize(self._data + mark, self._len - mark) + name
            self._len = mark
            size = PyBytes_GET_SIZE(head)
            for j in range(n):
                self._ensure(size)
                self._put(PyBytes_AS_STRING(head), size)
                for i in range(ncols):
                    k = kind[i]
                    col = colp[i]
                    if k == 0:
                        self._ensure(sl[i])
                        self._put(sp[i], sl[i])
                    elif k == 1:
                        # Bounds checks are off: re-read the size, the previous
                        # item's encoding may have run caller code.
                        if PyList_GET_SIZE(<object>col) != n:
                            raise RuntimeError(f"batch() argument {i + 1} changed size during encoding")
                        v = <object>PyList_GET_ITEM(<object>col, j)   # a new reference for the call
                        self._write_arg_batch(v)
                    else:
                        self._write_arg_batch(<object>PyTuple_GET_ITEM(<object>col, j))
        except BaseException:
            self._len = mark
            raise
        finally:
            PyMem_Free(kind)
            PyMem_Free(colp)
            PyMem_Free(sp)
            PyMem_Free(sl)
        if snapshot is not None:
            snapshot.append(t[0])
            for i in range(ncols):
                c = <object>PyList_GET_ITEM(cols, i)
                snapshot.append(<object>PyTuple_GET_ITEM(t, i + 1) if c is None else tuple(c))
        return n

    cdef inline int _write_arg_batch(self, object v) except -1:
        if PyBytes_CheckExact(v) or PyUnicode_CheckExact(v) or PyLong_CheckExact(v) or PyFloat_CheckExact(v):
            return self._write_arg(v)
        return self._write_arg_slow(v, True)

    def __len__(self):
        return self._len

    def getvalue(self):
        """The encoded bytes."""
        return PyBytes_FromStringAndSize(self._data, self._len)

    def take(self):
        """The encoded bytes; the buffer is then empty."""
        self._check_idle()
        out = PyBytes_FromStringAndSize(self._data, self._len)
        self._len = 0
        return out

    def clear(self):
        """Drop everything."""
        self._check_idle()
        self._len = 0

    def mark(self):
        """Current length, for a later truncate()."""
        return self._len

    def truncate(self, Py_ssize_t mark):
        """Drop everything after ``mark``."""
        self._check_idle()
        if mark < 0 or mark > self._len:
            raise ValueError(f"mark {mark} out of range 0..{self._len}")
        self._len = mark


def pack_command(args, str encoding="utf-8", str errors="strict"):
    """Encode one command to bytes.

    >>> pack_command(("CONFIG GET", "maxmemory"))
    b'*3\\r\\n$6\\r\\nCONFIG\\r\\n$3\\r\\nGET\\r\\n$9\\r\\nmaxmemory\\r\\n'
    """
    cdef CommandBuffer buf = CommandBuffer(encoding, errors)
    buf.command(args)
    return buf.take()


# ---------------------------------------------------------------- reader

cdef class _Frame:
    cdef object container
    cdef Py_ssize_t remaining
    cdef int kind
    cdef object key
    cdef bint has_key


class _Malformed(Exception):
    """Internal: malformed input; converted to the reader's protocolError."""


cdef long long _check_max_bulk(object value) except -2:
    """max_bulk_len: None (no cap, as hiredis) or an int >= 0; -1 stands for None."""
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_bulk_len must be an int >= 0 or None, got {value!r}")
    if value < 0:
        raise ValueError(f"max_bulk_len must be >= 0 or None, got {value!r}")
    if value > 9223372036854775807:
        return -1
    return value


cdef int _parse_ll(const char* p, Py_ssize_t n, long long* out) noexcept:
    """Strict decimal int64 (no '+', no leading zeros, no '-0'); 0 on success, -1 if bad."""
    cdef bint neg = False
    cdef unsigned long long v = 0, limit
    cdef Py_ssize_t i = 0
    cdef int d
    if n > 0 and p[0] == 45:
        neg = True
        i = 1
    if i >= n or n - i > 19:
        return -1
    if p[i] == 48 and n - i > 1:
        return -1
    limit = 9223372036854775808ULL if neg else 9223372036854775807ULL
    while i < n:
        d = p[i] - 48
        if d < 0 or d > 9:
            return -1
        v = v * 10 + d
        i += 1
    if v > limit or (neg and v == 0):
        return -1
    if neg:
        out[0] = <long long>(0 - v)
    else:
        out[0] = <long long>v
    return 0


cdef inline char _lower(char c) noexcept:
    if 65 <= c <= 90:
        return c + 32
    return c


cdef bint _ieq(const char* p, Py_ssize_t n, const char* lit) noexcept:
    cdef Py_ssize_t i = 0
    while i < n:
        if lit[i] == 0 or _lower(p[i]) != lit[i]:
            return False
        i += 1
    return lit[n] == 0


cdef object _parse_double(const char* p, Py_ssize_t n):
    cdef char tmp[352]
    cdef Py_ssize_t i = 0, digits = 0
    cdef double d
    if _ieq(p, n, b"inf"):
        return float("inf")
    if _ieq(p, n, b"-inf"):
        return float("-inf")
    if _ieq(p, n, b"nan") or _ieq(p, n, b"-nan"):
        return float("nan")
    if n == 0 or n >= 350:
        raise _Malformed("Bad double value")
    # -?(digits[.digits*] | .digits)([eE][+-]?digits)?
    if p[i] == 45:
        i += 1
    while i < n and 48 <= p[i] <= 57:
        i += 1
        digits += 1
    if i < n and p[i] == 46:
        i += 1
        while i < n and 48 <= p[i] <= 57:
            i += 1
            digits += 1
    if digits == 0:
        raise _Malformed("Bad double value")
    if i < n and (p[i] == 101 or p[i] == 69):
        i += 1
        if i < n and (p[i] == 43 or p[i] == 45):
            i += 1
        digits = 0
        while i < n and 48 <= p[i] <= 57:
            i += 1
            digits += 1
        if digits == 0:
            raise _Malformed("Bad double value")
    if i != n:
        raise _Malformed("Bad double value")
    memcpy(tmp, p, n)
    tmp[n] = 0
    d = PyOS_string_to_double(tmp, NULL, NULL)
    if isinf(d):
        raise _Malformed("Bad double value")
    return PyFloat_FromDouble(d)


cdef int _check_bignum(const char* p, Py_ssize_t n) except -1:
    """RESP3 big number: -?[0-9]+ (hiredis also accepts "" and "-": not valid RESP)."""
    cdef Py_ssize_t i = 0
    if n > 0 and p[0] == 45:
        i = 1
    if i >= n:
        raise _Malformed("Bad bignum value")
    while i < n:
        if not 48 <= p[i] <= 57:
            raise _Malformed("Bad bignum value")
        i += 1
    return 0


cdef class Reader:
    """Incremental RESP2/RESP3 parser, API-compatible with hiredis.Reader.

    >>> r = Reader(encoding="utf-8")
    >>> r.feed(b"*2\\r\\n$1\\r\\na\\r\\n:")
    >>> r.gets()
    False
    >>> r.feed(b"7\\r\\n")
    >>> r.gets()
    ['a', 7]
    """

    def __cinit__(self):
        self._buf = NULL
        self._start = 0
        self._end = 0
        self._cap = 0

    def __init__(self, protocolError=ProtocolError, replyError=ResponseError, encoding=None,
                 errors=None, notEnoughData=False, max_bulk_len=MAX_BULK):
        if self._busy:
            raise RuntimeError("Reader.__init__() called while the reader is parsing")
        if not callable(protocolError) or not callable(replyError):
            raise TypeError("Expected a callable")
        self._max_bulk = _check_max_bulk(max_bulk_len)
        self._protocol_error = protocolError
        self._reply_error = replyError
        self._not_enough = notEnoughData
        self._stack = []
        self._decode_error = None
        self._failed = None
        self.set_encoding(encoding, errors)

    def __dealloc__(self):
        if self._buf != NULL:
            PyMem_Free(self._buf)
            self._buf = NULL

    @property
    def max_bulk_len(self):
        """The largest bulk string accepted (a longer header is a ProtocolError); None: no cap."""
        return None if self._max_bulk < 0 else self._max_bulk

    def set_encoding(self, encoding=None, errors=None):
        """Decode strings with ``encoding`` (None: return bytes)."""
        if encoding is not None:
            info = codecs.lookup(encoding)
        if errors is not None:
            codecs.lookup_error(errors)
        self._encoding = encoding
        self._errors = errors or "strict"
        self._err_b = self._errors.encode("ascii")
        if encoding is None:
            self._decode_mode = 0
            self._enc_b = None
        else:
            self._enc_b = str(encoding).encode("ascii")
            self._decode_mode = 1 if (info.name == "utf-8" and self._errors == "strict") else 2

    def feed(self, data, Py_ssize_t offset=0, Py_ssize_t length=-1):
        """Append input bytes (bytes, bytearray or memoryview)."""
        cdef Py_buffer view
        cdef Py_ssize_t need, cap, live
        cdef char* p
        if self._busy:
            raise RuntimeError("Reader.feed() called while the reader is parsing")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if length == -1:
                length = view.len - offset
            if offset < 0 or length < 0:
                raise ValueError("negative input")
            if offset > view.len or length > view.len - offset:   # no overflowing offset + length
                raise ValueError("input is larger than buffer size")
            live = self._end - self._start
            # Compact: drop the consumed prefix before growing, or when it dominates.
            if self._start and (self._end + length > self._cap or self._start >= live):
                memmove(self._buf, self._buf + self._start, live)
                self._start = 0
                self._end = live
            need = self._end + length
            if need > self._cap:
                cap = self._cap * 2
                if cap < need:
                    cap = need
                if cap < 4096:
                    cap = 4096
                p = <char*>PyMem_Realloc(self._buf, cap)
                if p == NULL:
                    raise MemoryError()
                self._buf = p
                self._cap = cap
            memcpy(self._buf + self._end, <char*>view.buf + offset, length)
            self._end += length
        finally:
            PyBuffer_Release(&view)

    def len(self):
        """Unparsed bytes buffered."""
        return self._end - self._start

    def has_data(self):
        """True when unparsed bytes are buffered."""
        return self._end > self._start

    def gets(self, decode=True):
        """One complete reply, or notEnoughData."""
        reply = self._next(decode)
        if reply is _INCOMPLETE:
            return self._not_enough
        return reply

    def read_into(self, list out not None, Py_ssize_t n, push_handler=None, decode=True):
        """Append up to ``n`` complete replies to ``out``; return how many were appended."""
        cdef Py_ssize_t count = 0
        cdef bint dec = decode
        while count < n:
            reply = self._next(dec)
            if reply is _INCOMPLETE:
                break
            if push_handler is not None and type(reply) is PushNotification:
                push_handler(reply)
                continue
            PyList_Append(out, reply)
            count += 1
        return count

    cdef object _fail(self, str msg):
        self._failed = msg
        self._start = self._end = 0
        self._stack = []
        err = self._protocol_error(msg)
        if isinstance(err, BaseException):
            return err
        return ProtocolError(msg)

    cdef object _next(self, bint decode):
        if self._busy:
            raise RuntimeError("Reader.gets() called while the reader is parsing")
        if self._failed is not None:
            raise self._fail(self._failed)
        # _busy: replyError and decoders run Python code that must not feed() us
        # (a realloc would move the buffer under the parser) nor parse re-entrantly.
        self._busy = True
        try:
            reply = self._parse(decode)
        except _Malformed as exc:
            raise self._fail(str(exc)) from None
        except BaseException as exc:
            # Not from a callback (those are recorded): e.g. KeyboardInterrupt or
            # MemoryError mid-reply. The partial reply cannot be resumed.
            self._fail(f"reader interrupted mid-reply by {type(exc).__name__}")
            raise
        finally:
            self._busy = False
        if reply is not _INCOMPLETE and self._decode_error is not None:
            err = self._decode_error
            self._decode_error = None
            raise err
        return reply

    cdef object _text(self, const char* p, Py_ssize_t n, bint decode):
        if not decode or self._decode_mode == 0:
            return PyBytes_FromStringAndSize(p, n)
        try:
            if self._decode_mode == 1:
                return PyUnicode_DecodeUTF8(p, n, NULL)
            return PyUnicode_Decode(p, n, self._enc_b, self._err_b)
        except Exception as exc:
            # hiredis semantics: finish the reply, then raise the first decode error.
            if self._decode_error is None:
                self._decode_error = exc
            return None

    cdef object _error_reply(self, const char* p, Py_ssize_t n):
        """replyError(message); if it raises, finish the reply, then raise that (as hiredis)."""
        try:
            return self._reply_error(PyUnicode_DecodeUTF8(p, n, "replace"))
        except Exception as exc:
            if self._decode_error is None:
                self._decode_error = exc
            return None

    cdef int _map_set(self, object d, object key, object value) except -1:
        """d[key] = value; an unhashable key is recorded and raised once the reply is complete."""
        try:
            PyDict_SetItem(d, key, value)
        except Exception as exc:
            if self._decode_error is None:
                self._decode_error = exc
        return 0

    cdef object _parse(self, bint decode):
        cdef char* buf = self._buf
        cdef Py_ssize_t pos = self._start, end = self._end, nxt, cr, size
        cdef const char* line
        cdef const char* hit
        cdef Py_ssize_t linelen
        cdef long long ll
        cdef char t
        cdef list stack = self._stack
        cdef _Frame frame
        cdef object value, container
        while True:
            if pos >= end:
                self._start = pos
                return _INCOMPLETE
            hit = <const char*>memchr(buf + pos, 13, end - pos)
            if hit == NULL:
                self._start = pos
                return _INCOMPLETE
            cr = hit - buf
            if cr + 1 >= end:
                self._start = pos
                return _INCOMPLETE
            if buf[cr + 1] != 10:
                raise _Malformed("Missing CRLF after reply line")
            t = buf[pos]
            line = buf + pos + 1
            linelen = cr - pos - 1
            nxt = cr + 2
            if t == 36 or t == 61 or t == 33:  # '$' '=' '!'
                if _parse_ll(line, linelen, &ll) < 0:
                    raise _Malformed("Bad bulk string length")
                if ll == -1:
                    value = None
                else:
                    if ll < 0:
                        raise _Malformed("Bulk string length out of range")
                    if self._max_bulk >= 0 and ll > self._max_bulk:
                        raise _Malformed(f"Bulk string length {ll} above the {self._max_bulk} cap "
                                         f"(Reader max_bulk_len)")
                    # Wait for the whole bulk (nothing is allocated ahead of
                    # the bytes fed); compared without overflowing nxt + ll.
                    if ll > <long long>(end - nxt) - 2:
                        self._start = pos
                        return _INCOMPLETE
                    size = <Py_ssize_t>ll
                    if buf[nxt + size] != 13 or buf[nxt + size + 1] != 10:
                        raise _Malformed("Missing CRLF after bulk string")
                    if t == 36:
                        value = self._text(buf + nxt, size, decode)
                    elif t == 61:
                        if size < 4 or buf[nxt + 3] != 58:
                            raise _Malformed("Verbatim string 4 bytes of content type are missing")
                        value = self._text(buf + nxt + 4, size - 4, decode)
                    else:
                        value = self._error_reply(buf + nxt, size)
                    nxt += size + 2
            elif t == 43:  # '+'
                if memchr(line, 10, linelen) != NULL:
                    raise _Malformed("Bad simple string value")
                value = self._text(line, linelen, decode)
            elif t == 58:  # ':'
                if _parse_ll(line, linelen, &ll) < 0:
                    raise _Malformed("Bad integer value")
                value = PyLong_FromLongLong(ll)
            elif t == 45:  # '-'
                value = self._error_reply(line, linelen)
            elif t == 42 or t == 37 or t == 126 or t == 62 or t == 124:  # '*' '%' '~' '>' '|'
                if _parse_ll(line, linelen, &ll) < 0:
                    raise _Malformed("Bad multi-bulk length")
                if ll < -1:
                    raise _Malformed("Multi-bulk length out of range")
                if ll > C_MAX_AGGREGATE:
                    raise _Malformed(f"Aggregate count {ll} above the {C_MAX_AGGREGATE} cap")
                if ll == -1:
                    value = None
                else:
                    if t == 37:
                        container = {}
                    elif t == 62:
                        container = PushNotification()
                    else:
                        container = []
                    if ll:
                        if PyList_GET_SIZE(stack) >= C_MAX_DEPTH:
                            raise _Malformed(f"Nesting deeper than {C_MAX_DEPTH}")
                        frame = _Frame.__new__(_Frame)
                        frame.container = container
                        frame.remaining = <Py_ssize_t>(ll * 2 if (t == 37 or t == 124) else ll)
                        frame.kind = t
                        frame.has_key = False
                        PyList_Append(stack, frame)
                        pos = nxt
                        continue
                    value = container
            elif t == 95:  # '_'
                if linelen:
                    raise _Malformed("Bad nil value")
                value = None
            elif t == 44:  # ','
                value = _parse_double(line, linelen)
            elif t == 35:  # '#'
                if linelen != 1 or not (line[0] == 116 or line[0] == 84 or line[0] == 102 or line[0] == 70):
                    raise _Malformed("Bad bool value")
                value = line[0] == 116 or line[0] == 84
            elif t == 40:  # '('
                # As hiredis (redis-py's parser when hiredis is installed):
                # the digits as bytes, or str when decoding.
                _check_bignum(line, linelen)
                value = self._text(line, linelen, decode)
            else:
                raise _Malformed(f'Protocol error, got "{chr(<unsigned char>t)}" as reply type byte')
            pos = nxt
            # Attach the finished value to its parents, closing finished aggregates.
            while PyList_GET_SIZE(stack):
                frame = <_Frame>PyList_GET_ITEM(stack, PyList_GET_SIZE(stack) - 1)
                if frame.kind == 37:
                    if not frame.has_key:
                        frame.key = value
                        frame.has_key = True
                        frame.remaining -= 1
                        break
                    self._map_set(frame.container, frame.key, value)
                    frame.key = None
                    frame.has_key = False
                else:
                    PyList_Append(frame.container, value)
                frame.remaining -= 1
                if frame.remaining:
                    break
                stack.pop()
                value = frame.container
            else:
                self._start = pos
                return value
