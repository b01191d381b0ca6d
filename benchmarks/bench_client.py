"""fastredis vs redis-py + hiredis vs fastredis's pure-Python twin, same server, same run.

Run:  python -m pytest benchmarks/bench_client.py --benchmark-group-by=param:case \
          --benchmark-columns=median,ops,rounds
The ratio of medians within each group is the figure that counts.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastredis import _bench

CLASSES = _bench.client_classes()


@pytest.mark.parametrize("impl", list(CLASSES))
@pytest.mark.parametrize("case", _bench.CASES, ids=[c.name for c in _bench.CASES])
def test_client(benchmark: Any, bench_server: Any, case: _bench.Case, impl: str) -> None:
    c = CLASSES[impl](host="127.0.0.1", port=bench_server.port, decode_responses=case.decode)
    c.flushdb()
    run = case.prepare(c)
    benchmark.extra_info["ops"] = case.ops
    benchmark.pedantic(run, rounds=case.rounds, warmup_rounds=1)
    c.close()
