"""fastredis.asyncio vs redis.asyncio + hiredis vs fastredis's pure-Python twins,
same server, same run, on the default asyncio loop and on uvloop.

Run:  python -m pytest benchmarks/bench_asyncio.py --benchmark-group-by=param:case \\
          --benchmark-columns=median,ops,rounds
The ratio of medians within each group is the figure that counts. The burst
case is skipped for redis.asyncio, which raises "Too many connections" there
(``python -m fastredis bench --case burst`` shows the error).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fastredis import _bench

CLASSES = {name: _bench.async_class_for(cls) for name, cls in _bench.client_classes().items()}


@pytest.mark.parametrize("impl", list(CLASSES))
@pytest.mark.parametrize("case", _bench.ASYNC_CASES, ids=[c.name for c in _bench.ASYNC_CASES])
def test_asyncio_client(benchmark: Any, bench_server: Any, case: _bench.Case, impl: str) -> None:
    if impl == "redis-py" and "burst" in case.name:
        pytest.skip("redis.asyncio raises MaxConnectionsError on a 1,000-task burst with a default client")
    if case.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    c = CLASSES[impl](host="127.0.0.1", port=bench_server.port, decode_responses=case.decode)
    try:
        loop.run_until_complete(c.flushdb())
        run = loop.run_until_complete(case.prepare(c))
        benchmark.extra_info["ops"] = case.ops
        benchmark.pedantic(lambda: loop.run_until_complete(run()), rounds=case.rounds, warmup_rounds=1)
    finally:
        loop.run_until_complete(c.aclose())
        loop.close()
