"""pytest plugin: run redis-py's own asyncio tests with ``redis.asyncio.Redis``
swapped for ``fastredis.asyncio.Redis``.

Usage, from an unpacked redis 8.1.0 source distribution (its tests/ folder),
with this folder and fastredis importable::

    PYTHONPATH=/path/to/fastredis/scripts:/path/to/fastredis/src \\
        python -m pytest -p swap_fastredis_asyncio tests/test_asyncio/test_commands.py \\
        --redis-url=redis://127.0.0.1:PORT/9

``FASTREDIS_SWAP=0`` loads the plugin without swapping (the baseline run of
plain redis-py on the same server, to tell its own failures apart).
"""

from __future__ import annotations

import os

import redis.asyncio
import redis.asyncio.client

if os.environ.get("FASTREDIS_SWAP", "1") != "0":
    import fastredis.asyncio

    for module in (redis.asyncio, redis.asyncio.client):
        module.Redis = fastredis.asyncio.Redis  # type: ignore[misc]
        module.StrictRedis = fastredis.asyncio.Redis  # type: ignore[misc]
