"""Selector for the RESP core: the compiled ``_resp_c``, else the pure-Python ``_resp_py``.

``FASTREDIS_NO_EXTENSIONS=1`` forces the pure-Python twin; an ImportError of the
compiled module falls back to it too. ``COMPILED`` says which one loaded.

>>> from fastredis._resp import CommandBuffer, Reader, pack_command, COMPILED
>>> pack_command(("PING",))
b'*1\\r\\n$4\\r\\nPING\\r\\n'
"""

from __future__ import annotations

import os

COMPILED = False
if not os.environ.get("FASTREDIS_NO_EXTENSIONS"):
    try:
        from fastredis._resp_c import (  # noqa: F401
            MAX_AGGREGATE,
            MAX_BULK,
            MAX_DEPTH,
            CommandBuffer,
            Reader,
            pack_command,
        )

        COMPILED = True
    except ImportError:
        pass
if not COMPILED:
    from fastredis._resp_py import (  # type: ignore[assignment]  # noqa: F401
        MAX_AGGREGATE,
        MAX_BULK,
        MAX_DEPTH,
        CommandBuffer,
        Reader,
        pack_command,
    )

__all__ = ["COMPILED", "CommandBuffer", "Reader", "pack_command", "MAX_BULK", "MAX_AGGREGATE", "MAX_DEPTH"]
