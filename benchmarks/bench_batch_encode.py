"""Encoder micro-benchmarks for the column path and the per-argument paths.

Run: python -m pytest benchmarks/bench_batch_encode.py --benchmark-group-by=group \
         --benchmark-columns=median,ops,rounds
Groups: batch-set-list (SET keys/float values as lists), batch-zadd-list
(ZADD with a scalar key), batch-set-numpy (float64 array), command (one
``command()`` per SET tuple), all for the compiled and pure-Python twins.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastredis._resp_c as C
import fastredis._resp_py as P

N = 100_000
KEYS = [f"key:{i}" for i in range(N)]
FLOATS = [float(i) + 0.25 for i in range(N)]
MEMBERS = [f"m{i}" for i in range(N)]
SCORES = [i * 0.5 for i in range(N)]
ARRAY = np.array(FLOATS)
IMPLS = pytest.mark.parametrize("impl", [C, P], ids=["c", "py"])


@pytest.mark.benchmark(group="batch-set-list")
@IMPLS
def test_batch_set_lists(benchmark, impl):
    def run():
        buf = impl.CommandBuffer()
        return buf.batch(("SET", KEYS, FLOATS))

    assert benchmark(run) == N


@pytest.mark.benchmark(group="batch-zadd-list")
@IMPLS
def test_batch_zadd_lists(benchmark, impl):
    def run():
        buf = impl.CommandBuffer()
        return buf.batch(("ZADD", "board", SCORES, MEMBERS))

    assert benchmark(run) == N


@pytest.mark.benchmark(group="batch-set-numpy")
@IMPLS
def test_batch_set_numpy(benchmark, impl):
    def run():
        buf = impl.CommandBuffer()
        return buf.batch(("SET", KEYS, ARRAY))

    assert benchmark(run) == N


@pytest.mark.benchmark(group="command")
@IMPLS
def test_command_tuples(benchmark, impl):
    cmds = [("SET", k, v) for k, v in zip(KEYS, FLOATS)]

    def run():
        buf = impl.CommandBuffer()
        command = buf.command
        for c in cmds:
            command(c)
        return len(buf.take())

    assert benchmark(run) > N * 20
