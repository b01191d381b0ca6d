"""``memory_report`` for asyncio: :func:`fastredis.memory_report`, awaited.

The same SCAN pages and pipelined ``MEMORY USAGE`` / ``TYPE`` / ``OBJECT
ENCODING`` calls (:func:`fastredis.memory.plan_memory_report`), run by
:func:`fastredis.scripts.arun`.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         await r.mset({f"user:{i}": i for i in range(10)})
    ...         report = await memory_report(r)
    ...         return [(g.prefix, g.keys) for g in report.groups]
    >>> with RedisServer() as server:
    ...     asyncio.run(main(server.port))
    [('user:', 10)]
"""

from __future__ import annotations

from typing import Any, Optional

from ..memory import GroupReport, KeySample, MemoryInfo, MemoryReport, plan_memory_report
from ..patterns._clients import check_async_client, is_cluster
from ..scripts import arun

__all__ = ["memory_report", "MemoryReport", "GroupReport", "KeySample", "MemoryInfo"]


async def memory_report(
    client: Any,
    match: str = "*",
    samples: int = 10_000,
    *,
    separator: str = ":",
    depth: int = 1,
    count: int = 500,
    time_budget: float = 5.0,
    top: int = 5,
    memory_samples: Optional[int] = None,
) -> MemoryReport:
    """Memory by key prefix (see :func:`fastredis.memory_report`), awaited.
    A cluster client is not supported here (use the sync function, or one
    client per primary).

    Example::

        >>> import asyncio, redis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def main(port):
        ...     r = redis.asyncio.Redis(port=port)
        ...     await r.hset("h:1", mapping={"a": 1})
        ...     report = await memory_report(r, separator=":")
        ...     await r.aclose()
        ...     return report.groups[0].encodings
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        {'hash/listpack': 1}
    """
    check_async_client(client, "memory_report")
    if is_cluster(client):
        raise TypeError("the asyncio memory_report takes a single-node client; "
                        "fastredis.memory_report samples every primary of a sync cluster client")
    return await arun(client, plan_memory_report(match, samples, separator=separator, depth=depth, count=count,
                                                 time_budget=time_budget, top=top, memory_samples=memory_samples))
