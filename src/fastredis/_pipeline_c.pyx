# cython: language_level=3
# Bounds checks stay on: callbacks are caller code and may resize ``response``.
"""Compiled twin of ``_pipeline_py``: redis-py's response callbacks applied to
a whole batch of pipeline replies in one C loop.

Example::

    >>> from redis._parsers.helpers import parse_set_result
    >>> replies = [b"OK", None]
    >>> apply_callbacks(replies, [(("SET", "a", 1), {}), (("SET", "b", 2), {})],
    ...                 {"SET": parse_set_result}.get, (parse_set_result,), False)
    >>> replies
    [True, None]
"""

from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.object cimport PyObject
from cpython.exc cimport PyErr_Occurred

__all__ = ["apply_callbacks"]

cdef object _MISSING = object()
cdef bytes _OK_B = b"OK"
cdef str _OK_S = "OK"


cdef inline object _ok(object r):
    if r is None:
        return None
    if type(r) is bytes:
        return True if r == _OK_B else (False if r else r)
    if type(r) is str:
        return True if r == _OK_S else (False if r else r)
    return r and (r == _OK_B or r == _OK_S)


def apply_callbacks(list response, commands, lookup, tuple ok_callbacks, bint has_errors):
    """Replace each reply by ``callback(reply, **options)``, in place (see ``_pipeline_py``)."""
    cdef dict resolved = {}
    cdef object last_args = None
    cdef object cb = None
    cdef object args, options, r, name, entry
    cdef PyObject* found
    cdef Py_ssize_t i, n
    cdef object ok1 = ok_callbacks[0] if len(ok_callbacks) > 0 else _MISSING
    cdef object ok2 = ok_callbacks[1] if len(ok_callbacks) > 1 else _MISSING
    cdef dict opts
    # An exact list or tuple, so len() is that of the items really there.
    # Callbacks may shrink a list (or ``response``): the bounds-checked
    # indexing turns that into IndexError.
    cdef object cmds = commands if (type(commands) is list or type(commands) is tuple) else tuple(commands)
    n = len(cmds)
    for i in range(n):
        args, options = cmds[i]
        if args is not last_args:
            last_args = args
            name = args[0]
            found = PyDict_GetItem(resolved, name)
            if found is NULL:
                cb = lookup(name)
                PyDict_SetItem(resolved, name, cb)
            else:
                cb = <object>found
        if cb is None:
            continue
        r = response[i]
        if has_errors and isinstance(r, BaseException):
            continue
        if options:
            opts = {k: v for k, v in options.items() if k != "keys"}
            if opts:
                response[i] = cb(r, **opts)
                continue
        if cb is ok1 or cb is ok2:
            response[i] = _ok(r)
        else:
            response[i] = cb(r)
