"""RESP core micro-benchmarks: encode 100k SET, parse 100k +OK / $5 replies.

Run: python -m pytest benchmarks/bench_resp.py --benchmark-group-by=group
Groups: encode-set (add2 c/py vs hiredis.pack_command vs redis-py PythonRespSerializer),
parse-ok and parse-bulk (read_into c/py vs a hiredis.Reader.gets loop).
"""

from __future__ import annotations

import hiredis
import pytest
from redis._parsers.encoders import Encoder
from redis.connection import PythonRespSerializer

import fastredis._resp_c as C
import fastredis._resp_py as P

N = 100_000
KEYS = [f"key:{i}" for i in range(N)]
VALUE = b"value-123"
SET = b"$3\r\nSET\r\n"


@pytest.mark.benchmark(group="encode-set")
@pytest.mark.parametrize("impl", [C, P], ids=["fastredis-c", "fastredis-py"])
def test_encode_add2(benchmark, impl):
    def run():
        buf = impl.CommandBuffer()
        add2 = buf.add2
        for k in KEYS:
            add2(SET, k, VALUE)
        return len(buf.take())

    assert benchmark(run) > N * 20


@pytest.mark.benchmark(group="encode-set")
def test_encode_hiredis(benchmark):
    def run():
        pack = hiredis.pack_command
        return len(b"".join([pack(("SET", k, VALUE)) for k in KEYS]))

    assert benchmark(run) > N * 20


@pytest.mark.benchmark(group="encode-set")
def test_encode_redis_py(benchmark):
    pack = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode).pack

    def run():
        return sum(len(b"".join(pack("SET", k, VALUE))) for k in KEYS)

    assert benchmark(run) > N * 20


@pytest.mark.parametrize("group,payload", [("parse-ok", b"+OK\r\n"), ("parse-bulk", b"$5\r\nhello\r\n")])
@pytest.mark.parametrize("impl", [C, P, hiredis], ids=["fastredis-c", "fastredis-py", "hiredis"])
def test_parse(benchmark, impl, group, payload):
    benchmark.group = group
    data = payload * N

    def run():
        r = impl.Reader()
        r.feed(data)
        if impl is hiredis:
            gets = r.gets
            out = [gets() for _ in range(N)]
            return len(out)
        out = []
        return r.read_into(out, N)

    assert benchmark(run) == N
