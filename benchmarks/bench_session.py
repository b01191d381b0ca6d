"""Session, presence and stream benchmarks, against plain redis-py equivalents in the same run.

Run: python -m pytest benchmarks/bench_session.py --benchmark-only --benchmark-group-by=group
Figures (ops/s = 1 / mean):
- group "session-get": SessionStore.get (one script: HGETALL + sliding PEXPIRE, one round trip)
  vs redis-py GET + PEXPIRE of a JSON blob (pipelined, one round trip) + orjson.loads.
- group "session-update": SessionStore.update (one script) vs redis-py GET, modify, SET ... XX PX
  (two round trips; the plain way, and not atomic).
- group "presence-heartbeat": Presence.heartbeat (prune + ZADD in one script) vs redis-py
  ZREMRANGEBYSCORE + ZADD pipelined.
- group "stream-1k": 1000 events added (add_many, one pipeline) then consumed with ack in
  batches of 100; events/s = 1000 / mean. vs redis-py xadd pipeline + xreadgroup/xack batches.
"""

from __future__ import annotations

import time

import orjson
import pytest

from fastredis.patterns.messaging import EventStream
from fastredis.patterns.session import Presence, SessionStore

DATA = {"user": "alice", "theme": "dark", "cart": [1, 2, 3], "n": 42}


@pytest.mark.benchmark(group="session-get")
def test_session_get_fastredis(benchmark, fast):
    store = SessionStore(fast, ttl=600)
    sid = store.create(DATA, user_id="alice")
    assert benchmark(store.get, sid) == DATA


@pytest.mark.benchmark(group="session-get")
def test_session_get_redis_py(benchmark, plain):
    plain.set("plain:sess", orjson.dumps(DATA), px=600_000)

    def get():
        p = plain.pipeline(transaction=False)
        p.get("plain:sess")
        p.pexpire("plain:sess", 600_000)
        raw, _ = p.execute()
        return orjson.loads(raw)

    assert benchmark(get) == DATA


@pytest.mark.benchmark(group="session-update")
def test_session_update_fastredis(benchmark, fast):
    store = SessionStore(fast, ttl=600)
    sid = store.create(DATA)
    assert benchmark(store.update, sid, theme="light")


@pytest.mark.benchmark(group="session-update")
def test_session_update_redis_py(benchmark, plain):
    plain.set("plain:sess", orjson.dumps(DATA), px=600_000)

    def update():
        data = orjson.loads(plain.get("plain:sess"))
        data["theme"] = "light"
        return plain.set("plain:sess", orjson.dumps(data), xx=True, px=600_000)

    assert benchmark(update)


@pytest.mark.benchmark(group="presence-heartbeat")
def test_presence_heartbeat_fastredis(benchmark, fast):
    p = Presence(fast, "bench", timeout=30)
    benchmark(p.heartbeat, "alice")
    assert p.is_online("alice")


@pytest.mark.benchmark(group="presence-heartbeat")
def test_presence_heartbeat_redis_py(benchmark, plain):
    def heartbeat():
        now = time.time()
        p = plain.pipeline(transaction=False)
        p.zremrangebyscore("plain:presence", "-inf", now - 30)
        p.zadd("plain:presence", {"alice": now})
        return p.execute()

    benchmark(heartbeat)
    assert plain.zscore("plain:presence", "alice") is not None


EVENTS = [{"order": i, "total": i * 1.5} for i in range(1000)]


@pytest.mark.benchmark(group="stream-1k")
def test_stream_roundtrip_fastredis(benchmark, fast):
    def run():
        fast.delete("stream:{bench}")
        s = EventStream(fast, "bench")
        s.add_many(EVENTS)
        c = s.consumer("g", "c", count=100, block=0)
        n = 0
        while True:
            batch = c.read()
            if not batch:
                return n
            c.ack(*batch)
            n += len(batch)

    assert benchmark(run) == 1000


@pytest.mark.benchmark(group="stream-1k")
def test_stream_roundtrip_redis_py(benchmark, plain):
    def run():
        plain.delete("plain:stream")
        p = plain.pipeline(transaction=False)
        for e in EVENTS:
            p.xadd("plain:stream", {k: orjson.dumps(v) for k, v in e.items()})
        p.execute()
        plain.xgroup_create("plain:stream", "g", id="0", mkstream=True)
        n = 0
        while True:
            reply = plain.xreadgroup("g", "c", {"plain:stream": ">"}, count=100)
            entries = [e for _, es in (reply.items() if isinstance(reply, dict) else reply) for e in (es[0] if es and isinstance(es[0], list) else es)]
            if not entries:
                return n
            _ = [{k: orjson.loads(v) for k, v in f.items()} for _, f in entries]
            plain.xack("plain:stream", "g", *[i for i, _ in entries])
            n += len(entries)

    assert benchmark(run) == 1000
