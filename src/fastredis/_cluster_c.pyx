# cython: language_level=3
"""Compiled twin of ``_cluster_py``: cluster pipeline routing (hash slots,
per-node grouping in stack order), encoding and reply scatter in C loops.

Example::

    >>> stack = [(("SET", "a", 1), ()), (("GET", "{a}x"), ()), (("PING",), ())]
    >>> groups = [[], []]
    >>> route(stack, [0, 1, 2], {"SET": 1, "GET": 1}, "utf-8", "strict",
    ...       lambda slot: 0, lambda i: 1, groups)
    True
    >>> groups
    [[0, 1], [2]]
    >>> slot_of(b"{user1}:a") == slot_of("user1")
    True
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.string cimport memset

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    PyObject* PyDict_GetItemWithError(object d, object k) except? NULL

__all__ = ["route", "slot_of", "slots_of", "encode_commands", "scatter"]

cdef enum:
    ONE_KEY = 1
    ALL_KEYS = 2
    SCRIPT_KEYS = 3
    SLOTS = 16384

cdef unsigned short _CRC[256]


cdef void _init_crc() noexcept:
    # CRC16-CCITT (XMODEM), as Redis Cluster and binascii.crc_hqx(data, 0).
    cdef unsigned int i, j, crc
    for i in range(256):
        crc = i << 8
        for j in range(8):
            crc = ((crc << 1) ^ 0x1021) if (crc & 0x8000) else (crc << 1)
        _CRC[i] = crc & 0xFFFF


_init_crc()


cdef inline int _slot_of_bytes(const char* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t s, e
    cdef unsigned int crc = 0
    for s in range(n):
        if p[s] == b'{':
            for e in range(s + 1, n):
                if p[e] == b'}':
                    if e > s + 1:
                        p = p + s + 1
                        n = e - s - 1
                    break
            break
    for s in range(n):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC[((crc >> 8) ^ <unsigned char>p[s]) & 0xFF]
    return crc & (SLOTS - 1)


cdef int _key_slot(object key, bint utf8, str encoding, str errors) except -2:
    """The slot of a str/bytes key, -1 for another type."""
    cdef Py_ssize_t n
    cdef const char* p
    cdef bytes raw
    if type(key) is bytes:
        return _slot_of_bytes(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key))
    if type(key) is str:
        if utf8:
            p = PyUnicode_AsUTF8AndSize(key, &n)
            return _slot_of_bytes(p, n)
        raw = (<str>key).encode(encoding, errors)
        return _slot_of_bytes(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))
    return -1


cdef int _same_slot(tuple args, Py_ssize_t lo, Py_ssize_t hi, bint utf8, str encoding, str errors) except -2:
    cdef Py_ssize_t j
    cdef int slot, other
    if hi <= lo or hi > PyTuple_GET_SIZE(args):
        return -1
    slot = _key_slot(<object>PyTuple_GET_ITEM(args, lo), utf8, encoding, errors)
    if slot < 0:
        return -1
    for j in range(lo + 1, hi):
        other = _key_slot(<object>PyTuple_GET_ITEM(args, j), utf8, encoding, errors)
        if other != slot:
            return -1
    return slot


cdef int _command_slot(tuple args, long spec, bint utf8, str encoding, str errors) except -2:
    cdef object n
    cdef long numkeys
    if spec == ONE_KEY:
        return _key_slot(<object>PyTuple_GET_ITEM(args, 1), utf8, encoding, errors)
    if spec == ALL_KEYS:
        return _same_slot(args, 1, PyTuple_GET_SIZE(args), utf8, encoding, errors)
    if spec == SCRIPT_KEYS and PyTuple_GET_SIZE(args) >= 3:
        n = <object>PyTuple_GET_ITEM(args, 2)
        if type(n) is not int:
            if (type(n) is not str and type(n) is not bytes) or not n.isdigit():
                return -1
            n = int(n)
        if n <= 0 or n > PyTuple_GET_SIZE(args) - 3:
            return -1
        numkeys = n
        return _same_slot(args, 3, 3 + numkeys, utf8, encoding, errors)
    return -1


def slot_of(key, str encoding="utf-8", str errors="strict"):
    """The hash slot of a str or bytes key (``{tag}`` rule), or -1 for any
    other type."""
    return _key_slot(key, encoding in ("utf-8", "utf8", "UTF-8") and errors == "strict", encoding, errors)


def slots_of(list keys, str encoding="utf-8", str errors="strict"):
    """``slot_of`` of every key of a list (-1 where the key is not str/bytes)."""
    cdef bint utf8 = encoding in ("utf-8", "utf8", "UTF-8") and errors == "strict"
    cdef Py_ssize_t k, n = PyList_GET_SIZE(keys)
    cdef list out = [None] * n
    for k in range(n):
        out[k] = _key_slot(<object>PyList_GET_ITEM(keys, k), utf8, encoding, errors)
    return out


def route(list stack, list pending, dict specs, str encoding, str errors, slot_group, command_group, list groups,
          dict batches=None):
    """Append each pending command index to its group (see ``_cluster_py``);
    False as soon as ``command_group`` returns -1 (nothing more is routed).
    ``batches`` maps a ``batch()`` stack entry to ``(start, slots)``."""
    cdef int memo[SLOTS]
    cdef Py_ssize_t k, n = PyList_GET_SIZE(pending), i
    cdef object i_obj, entry, args, options, found, batch
    cdef Py_ssize_t row
    cdef int slot
    cdef long gid
    cdef PyObject* hit
    cdef bint utf8 = encoding in ("utf-8", "utf8", "UTF-8") and errors == "strict"
    cdef Py_ssize_t ngroups
    memset(memo, 0xFF, sizeof(memo))
    for k in range(n):
        i_obj = <object>PyList_GET_ITEM(pending, k)
        i = i_obj
        if i < 0 or i >= PyList_GET_SIZE(stack):
            raise IndexError(f"command {i} is not in the stack")
        entry = <object>PyList_GET_ITEM(stack, i)
        args = entry[0]
        options = entry[1]
        slot = -1
        if type(args) is tuple:
            if PyTuple_GET_SIZE(args) >= 2 and not options:
                hit = PyDict_GetItemWithError(specs, <object>PyTuple_GET_ITEM(args, 0))
                if hit is not NULL:
                    slot = _command_slot(<tuple>args, <long><object>hit, utf8, encoding, errors)
        elif batches:
            hit = PyDict_GetItemWithError(batches, args)
            if hit is not NULL:
                batch = <object>hit
                row = i - <Py_ssize_t>batch[0]
                if row < 0:
                    raise IndexError(f"command {i} is before its batch")
                slot = batch[1][row]
                if slot >= SLOTS:
                    raise ValueError(f"slot {slot} out of range")
        if slot >= 0:
            gid = memo[slot]
            if gid < 0:
                gid = slot_group(slot)
                memo[slot] = <int>gid
        else:
            gid = command_group(i_obj)
        if gid < 0:
            return False
        ngroups = PyList_GET_SIZE(groups)
        if gid >= ngroups:
            raise IndexError(f"group {gid} of {ngroups}")
        (<object>PyList_GET_ITEM(groups, gid)).append(i_obj)
    return True


def encode_commands(command, list stack, list idxs):
    """``command(args)`` for the arguments of each stack entry in ``idxs``."""
    cdef Py_ssize_t k, n = PyList_GET_SIZE(idxs)
    for k in range(n):
        command(stack[<object>PyList_GET_ITEM(idxs, k)][0])


def scatter(list results, list idxs, list replies):
    """``results[idxs[k]] = replies[k]`` for every k (``len(idxs)`` replies)."""
    cdef Py_ssize_t k, n = PyList_GET_SIZE(idxs)
    if PyList_GET_SIZE(replies) < n:
        raise ValueError("fewer replies than commands")
    for k in range(n):
        results[<object>PyList_GET_ITEM(idxs, k)] = <object>PyList_GET_ITEM(replies, k)
