"""WorkQueue and Stack against real servers: order, ack once per delivery,
visibility timeout and the reaper, dead letters, the consumer's own blocking
connection and close(), hostile input, SCRIPT FLUSH, restart with AOF,
CLIENT KILL under load, and consumers killed at random in several processes
while thousands of items flow (then everything is counted)."""

from __future__ import annotations

import collections
import math
import multiprocessing as mp
import os
import random
import signal
import threading
import time
from typing import Any, Dict, List

import pytest
import redis

import fastredis
from fastredis.exceptions import OutcomeUnknownError
from fastredis.patterns.queue import QueueClosedError
from fastredis.server import RedisServer, find_redis_servers

VERSIONS = sorted(find_redis_servers().items())


def wait_until(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@pytest.mark.parametrize("version", [v for v, _ in VERSIONS])
@pytest.mark.parametrize("cls", ["WorkQueue", "Stack"])
def test_order_ack_nack_dead_letters(server_factory: Any, version: str, cls: str) -> None:
    r = server_factory(binary=dict(VERSIONS)[version]).client()
    Q = getattr(fastredis, cls)
    with Q(r, "jobs", consumer="c1", max_deliveries=2) as q:
        ids = q.push_many([1, 2, 3])
        assert len(ids) == 3 and len(set(ids)) == 3 and all(len(i) == 24 for i in ids)
        first = 1 if cls == "WorkQueue" else 3
        assert q.peek(3) == ([1, 2, 3] if cls == "WorkQueue" else [3, 2, 1])
        item = q.pop(0)
        assert (item.value, item.deliveries, item.consumer, item.id) == (first, 1, "c1", ids[first - 1])
        assert q.stats() == fastredis.QueueStats(2, 1, 0, 1) and len(q) == 2
        assert q.nack(item) is True and q.nack(item) is False  # back at the head, one failure
        again = q.pop(0)
        assert (again.value, again.deliveries) == (first, 2)
        assert q.ack(item) is False  # the first delivery's ack comes too late
        assert q.nack(again) is True  # second failure: dead
        assert [(d.value, d.deliveries, d.id) for d in q.dead_letters()] == [(first, 2, item.id)]
        with pytest.raises(ValueError, match="dead letter"):
            q.ack(q.dead_letters()[0])
        assert q.requeue_dead() == 1 and q.purge_dead() == 0
        got = [q.pop(0) for _ in range(3)]
        assert [g.value for g in got] == ([1, 2, 3] if cls == "WorkQueue" else [3, 2, 1])
        assert got[0].deliveries == 1  # requeued with the count reset
        assert [q.ack(g) for g in got] == [True] * 3 and [q.ack(g) for g in got] == [False] * 3
        assert q.pop(0) is None and q.stats() == fastredis.QueueStats(0, 0, 0, 1)
        released = q.push("r")
        rel = q.pop(0)
        assert q.nack(rel, failed=False) and q.pop(0).deliveries == 1 and rel.id == released
        assert q.push_many([]) == [] and q.purge() == 0
    assert r.zcard(q.deadlines_key) == 1  # the one still held ("r"), until acked or reaped


def test_visibility_timeout_returns_items_and_the_reaper_runs_once_per_interval(r: Any) -> None:
    a = fastredis.WorkQueue(r, "vt", consumer="a", visibility_timeout=0.3, reap_interval=0.1)
    b = fastredis.WorkQueue(r, "vt", consumer="b", visibility_timeout=0.3, reap_interval=0.1)
    a.push_many(["x", "y"])
    held = a.pop(0)  # a's first pop also ran the reaper
    assert b.reap() is None
    time.sleep(0.15)
    assert b.reap() is not None and a.reap() is None  # one reaper per interval, whoever runs it
    time.sleep(0.45)
    item = b.pop(1)  # b's pop runs the reaper: "x" is back at the head
    assert (item.value, item.deliveries, item.id) == ("x", 2, held.id)
    assert a.ack(held) is False and b.ack(item) is True
    assert a.extend(held) is False
    keep = b.pop(0)
    assert b.extend(keep, 5)
    time.sleep(0.45)
    assert a.reap() is not None and b.ack(keep) is True  # extended: still held
    for q in (a, b):
        q.close()


def test_items_seen_before_their_claim_get_a_clock(r: Any) -> None:
    q = fastredis.WorkQueue(r, "raw", consumer="dead", visibility_timeout=0.2, reap_interval=0.05)
    q.push("x")
    r.lmove(q.ready_key, q.proc_key, "RIGHT", "LEFT")  # as if the consumer died right after BLMOVE
    r.zadd(q.consumers_key, {"dead": 0})
    res = q.reap()
    assert res is not None and res.clocks_started == 1 and res.returned == 0
    time.sleep(0.3)
    assert q.reap().returned == 1
    assert q.pop(0).deliveries == 2
    q.close()


def test_dead_lettering_by_timeout_and_forgetting_idle_consumers(r: Any) -> None:
    q = fastredis.WorkQueue(r, "dl", consumer="w", visibility_timeout=0.1, reap_interval=0.01, max_deliveries=2)
    q.push("poison")
    for expected in (1, 2):
        item = q.pop(1)
        assert item is not None and item.deliveries == expected
        time.sleep(0.15)
        q.reap()
    assert q.pop(0) is None
    assert [(d.value, d.deliveries) for d in q.dead_letters()] == [("poison", 2)]
    q.retention = 0.2  # (tests only: normally max(60 s, 10 x visibility_timeout))
    other = fastredis.WorkQueue(r, "dl", consumer="busy", visibility_timeout=60, reap_interval=0.01)
    other.push("held")
    assert other.pop(0).value == "held"
    time.sleep(0.3)
    assert q.reap().consumers_forgotten == 1  # "w": idle and empty; "busy" holds an item
    assert [m.decode() for m in r.zrange(q.consumers_key, 0, -1)] == ["busy"]
    q.close()
    other.close()


def test_blocking_pop_uses_its_own_connection_and_ends_on_close(r: Any) -> None:
    q = fastredis.WorkQueue(r, "block", consumer="w")
    got: List[Any] = []
    t = threading.Thread(target=lambda: got.append(q.pop(timeout=None)))
    t.start()
    assert wait_until(lambda: any(c.get("cmd") == "blmove" for c in r.client_list()))
    # The user's pool is free: its one connection runs other commands meanwhile.
    assert r.connection_pool._in_use_connections == set() and r.ping()
    q.push("late")
    t.join(10)
    assert got[0].value == "late"
    # close() from another thread ends a pop waiting forever.
    t = threading.Thread(target=lambda: got.append(q.pop(timeout=None)))
    t.start()
    assert wait_until(lambda: any(c.get("cmd") == "blmove" for c in r.client_list()))
    started = time.monotonic()
    q.close()
    t.join(10)
    assert not t.is_alive() and got[1] is None and time.monotonic() - started < 5
    with pytest.raises(QueueClosedError):
        q.pop(0)
    assert q.ack(got[0]) is True  # acks go through the user's client: still fine
    assert wait_until(lambda: not any(c.get("cmd") == "blmove" for c in r.client_list()))


def test_hostile_input(any_client: Any) -> None:
    name = "we:ird*?[]{x}\r\n"
    q = fastredis.WorkQueue(any_client, name, consumer="c:*?[]{y}\r\n", serializer=None)
    payloads = [b"", b"\x00\xff\xfe\r\n", "ünï".encode(), b"x" * 5_000_000, b"0123456789abcdefghijklmn.7:x"]
    q.push_many(payloads)
    got = [q.pop(0) for _ in payloads]
    assert [g.value for g in got] == payloads and all(q.ack(g) for g in got)
    assert all(k.decode().startswith("q:{we%3Aird%2A%3F%5B%5D%7Bx%7D%0D%0A}:") for k in any_client.keys("*"))
    assert q.push("str payload") and q.pop(0).value == b"str payload"
    with pytest.raises(TypeError):
        q.push(5)
    j = fastredis.WorkQueue(any_client, "json")
    for bad in ([math.nan], {"x": math.inf}):
        with pytest.raises(ValueError):
            j.push(bad)
    with pytest.raises(TypeError):
        j.push(object())
    with pytest.raises(TypeError):
        j.push_many("abc")
    for bad_timeout in (math.nan, math.inf, -1):
        with pytest.raises(ValueError):
            j.pop(bad_timeout)
    with pytest.raises(TypeError):
        j.pop("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        j.ack("not an item")  # type: ignore[arg-type]
    for kwargs in ({"visibility_timeout": 0}, {"visibility_timeout": math.nan}, {"max_deliveries": 0},
                   {"max_deliveries": 1.5}, {"consumer": ""}, {"reap_interval": -1}):
        with pytest.raises((TypeError, ValueError)):
            fastredis.WorkQueue(any_client, "bad", **kwargs)
    with pytest.raises(TypeError):
        fastredis.WorkQueue("redis://x", "q")
    # Elements someone else pushed are dead-lettered as they are, never delivered.
    any_client.lpush(j.ready_key, b"not ours", b"0123456789abcdef01234567.x:", b'0123456789abcdef01234567.0:{bad json')
    j.push({"ok": 1})
    assert j.pop(0).value == {"ok": 1} and j.pop(0) is None
    assert sorted(d.raw for d in j.dead_letters()) == sorted(  # (the last: one failed delivery)
        [b"not ours", b"0123456789abcdef01234567.x:", b'0123456789abcdef01234567.1:{bad json'])
    j.close()
    q.close()


def test_restart_with_persistence_script_flush_and_restart_recovery(server_factory: Any) -> None:
    server = server_factory("--appendonly", "yes", "--appendfsync", "always")
    r = fastredis.Redis(port=server.port)
    q = fastredis.WorkQueue(r, "p", consumer="same-name", visibility_timeout=0.5, reap_interval=0.05)
    q.push_many(range(10))
    held = [q.pop(0) for _ in range(3)]
    server.restart()  # the AOF brings everything back; connections and scripts do not survive
    r.script_flush()
    assert q.ack(held[0]) is True  # NOSCRIPT -> SCRIPT LOAD -> run, on a new connection
    # A new object with the same consumer name (a restarted worker) gets the
    # items its previous life still held first.
    q2 = fastredis.WorkQueue(r, "p", consumer="same-name", visibility_timeout=0.5, reap_interval=0.05)
    recovered = [q2.pop(0), q2.pop(0)]
    assert [i.value for i in recovered] == [1, 2] and all(q2.ack(i) for i in recovered)
    assert q.ack(held[1]) is False
    rest = []
    while (item := q2.pop(0)) is not None:
        rest.append(item.value)
        q2.ack(item)
    assert rest == list(range(3, 10))
    q.close()
    q2.close()


def test_killed_connections_while_threads_consume(private_server: RedisServer) -> None:
    r = fastredis.Redis(port=private_server.port)
    plain = redis.Redis(port=private_server.port)
    n = 2000
    producer = fastredis.WorkQueue(r, "kill")
    producer.push_many(range(n))
    acked: Dict[int, int] = collections.Counter()
    unknown: List[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def consume(i: int) -> None:
        client = r if i % 2 else plain
        q = fastredis.WorkQueue(client, "kill", consumer=f"t{i}", visibility_timeout=1.0, reap_interval=0.1)
        while not stop.is_set():
            try:
                item = q.pop(timeout=0.2)
            except redis.ConnectionError:
                continue
            if item is None:
                continue
            while True:
                try:
                    ok = q.ack(item)
                    break
                except OutcomeUnknownError:
                    with lock:
                        unknown.append(item.value)  # then retried: True only if the first did not apply
                except redis.ConnectionError:
                    time.sleep(0.01)
            if ok:
                with lock:
                    acked[item.value] += 1
        q.close()

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    killer = redis.Redis(port=private_server.port)
    kills = 0
    while (len(acked) + len(set(unknown) - set(acked))) < n and kills < 400:
        time.sleep(random.uniform(0.005, 0.03))
        killer.client_kill_filter(_type="normal", skipme=True)
        kills += 1
    assert wait_until(lambda: len(set(acked) | set(unknown)) == n and producer.stats()[:3] == (0, 0, 0), 60)
    stop.set()
    for t in threads:
        t.join(30)
    assert kills > 10
    print(f"kills={kills} unknown_acks={len(unknown)} acked={len(acked)}")
    assert all(c == 1 for c in acked.values()), [v for v, c in acked.items() if c > 1]
    assert set(acked) | set(unknown) == set(range(n))
    assert r.zcard(producer.deadlines_key) == 0


def _consumer_process(url: str, name: str, consumer: str, log_path: str) -> None:
    r = fastredis.Redis.from_url(url)
    q = fastredis.WorkQueue(r, name, consumer=consumer, visibility_timeout=1.0, reap_interval=0.1, max_deliveries=1000)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    while True:
        try:
            item = q.pop(timeout=0.2)
        except redis.ConnectionError:
            continue
        if item is None:
            if r.exists("stop"):
                return
            continue
        r.hincrby("done", item.id, 1)  # the work (at least once)
        time.sleep(random.uniform(0, 0.004))
        os.write(fd, f"A {item.id}\n".encode())
        ok = q.ack(item)
        os.write(fd, f"{'T' if ok else 'F'} {item.id}\n".encode())


def test_consumers_killed_at_random_lose_nothing_and_ack_once(redis_url: str, r: Any, tmp_path: Any) -> None:
    n = 3000
    q = fastredis.WorkQueue(r, "procs")
    ids = q.push_many(range(n))
    ctx = mp.get_context("fork")  # fast to start: the kills land while items flow
    rng = random.Random(14)
    logs: List[str] = []
    live: Dict[str, Any] = {}

    def start(consumer: str) -> None:
        path = str(tmp_path / f"{consumer}.{len(logs)}.log")
        logs.append(path)
        p = ctx.Process(target=_consumer_process, args=(redis_url, "procs", consumer, path), daemon=True)
        p.start()
        live[consumer] = p

    for i in range(4):
        start(f"c{i}")
    kills = 0
    deadline = time.monotonic() + 120
    while r.hlen("done") < n and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.05, 0.25))
        if kills < 20 and r.hlen("done") < n * 0.9:
            victim = rng.choice(sorted(live))
            os.kill(live[victim].pid, signal.SIGKILL)
            live.pop(victim).join(10)
            kills += 1
            # half the time a restarted worker under the same name, else a new one
            start(victim if rng.random() < 0.5 else f"c{len(logs)}")
    assert wait_until(lambda: q.stats()[:3] == (0, 0, 0) and r.hlen("done") == n, 60), q.stats()
    r.set("stop", 1)
    for p in live.values():
        p.join(30)
        assert p.exitcode == 0
    assert kills >= 5
    done = {k.decode(): int(v) for k, v in r.hgetall("done").items()}
    assert set(done) == set(ids)  # no loss
    results: Dict[str, List[str]] = collections.defaultdict(list)
    for path in logs:
        if os.path.exists(path):
            for line in open(path).read().splitlines():
                kind, ident = line.split()
                results[ident].append(kind)
    trues = {i: v.count("T") for i, v in results.items()}
    assert max(trues.values()) == 1  # no item acknowledged twice
    for i in ids:  # every item acknowledged, or its ack was cut short by a SIGKILL
        assert trues.get(i, 0) == 1 or results[i].count("A") > results[i].count("T") + results[i].count("F"), i
    assert r.zcard(q.deadlines_key) == 0
    print(f"kills={kills} redelivered={sum(1 for v in done.values() if v > 1)} "
          f"cut_short={sum(1 for v in results.values() if v.count('A') > v.count('T') + v.count('F'))} "
          f"late_acks={sum(v.count('F') for v in results.values())}")
    q.close()


def test_fork_gives_the_child_its_own_consumer_and_connection(r: Any) -> None:
    q = fastredis.WorkQueue(r, "fork")
    q.push_many([1, 2])
    held = q.pop(0)
    parent_name = q.consumer
    pid = os.fork()
    if pid == 0:  # the child: a new consumer name, a new connection, the parent's items untouched
        code = 1
        try:
            item = q.pop(1)
            ok = item is not None and item.value == 2 and q.consumer != parent_name and q.ack(item)
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert q.ack(held) and q.pop(0) is None and q.consumer == parent_name
    q.close()


def test_a_dropped_queue_closes_its_connection(r: Any) -> None:
    import gc

    q = fastredis.WorkQueue(r, "gc", consumer="dropped")
    assert q.pop(0) is None  # opens the queue's own connection
    before = len(r.client_list())
    del q
    gc.collect()
    assert wait_until(lambda: len(r.client_list()) == before - 1, 10)
