"""Pipeline reply post-processing: redis-py's response callbacks applied to a
whole batch of replies in one pass. Pure-Python twin of ``_pipeline_c``.

Example::

    >>> from redis._parsers.helpers import parse_set_result
    >>> replies = [b"OK", b"v", 3]
    >>> stack = [(("SET", "k", "v"), {}), (("GET", "k"), {}), (("INCR", "n"), {})]
    >>> apply_callbacks(replies, stack, {"SET": parse_set_result}.get, (parse_set_result,), False)
    >>> replies
    [True, b'v', 3]
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

__all__ = ["apply_callbacks"]

_MISSING = object()


def apply_callbacks(
    response: List[Any],
    commands: Sequence[Tuple[Any, Any]],
    lookup: Callable[[Any], Optional[Callable[..., Any]]],
    ok_callbacks: Tuple[Callable[..., Any], ...],
    has_errors: bool,
) -> None:
    """Replace each reply by ``callback(reply, **options)``, in place.

    ``lookup(name)`` gives a command's callback (or None). Error replies are
    left alone; the ``keys`` option is never passed (redis-py pops it). A
    callback in ``ok_callbacks`` (redis-py's ``parse_set_result`` and
    ``bool_ok``) is applied inline as ``r and str_if_bytes(r) == "OK"``
    when the command has no options.
    """
    resolved: dict = {}
    last_args: Any = None
    cb: Any = None
    # An exact list or tuple, as the compiled twin (a lying len() is never trusted).
    cmds = commands if (type(commands) is list or type(commands) is tuple) else tuple(commands)
    for i in range(len(cmds)):
        args, options = cmds[i]
        if args is not last_args:
            last_args = args
            name = args[0]
            cb = resolved.get(name, _MISSING)
            if cb is _MISSING:
                cb = resolved[name] = lookup(name)
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
        if cb in ok_callbacks:
            response[i] = r and (r == b"OK" or r == "OK")
        else:
            response[i] = cb(r)
