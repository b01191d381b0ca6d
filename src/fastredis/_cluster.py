"""Selector for the cluster routing core: the compiled ``_cluster_c``, or the
pure-Python ``_cluster_py`` when ``FASTREDIS_NO_EXTENSIONS=1`` or the compiled
module cannot be imported.

Example::

    >>> from fastredis import _cluster
    >>> _cluster.COMPILED in (True, False)
    True
    >>> _cluster.slot_of("foo")
    12182
"""

import os

COMPILED = False
if not os.environ.get("FASTREDIS_NO_EXTENSIONS"):
    try:
        from ._cluster_c import encode_commands, route, scatter, slot_of, slots_of  # noqa: F401

        COMPILED = True
    except ImportError:
        pass
if not COMPILED:
    from ._cluster_py import encode_commands, route, scatter, slot_of, slots_of  # type: ignore[assignment]  # noqa: F401

__all__ = ["COMPILED", "route", "slot_of", "slots_of", "encode_commands", "scatter"]
