"""Lock under concurrency and faults: many processes, a stalled holder, server
restarts, killed connections, renewal, garbage collection and fork."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import queue
import signal
import threading
import time

import pytest
import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

import fastredis
from fastredis.exceptions import LockError, LockNotOwnedError
from fastredis.patterns.lock import Lock, fenced_write
from test_lock import wait_subscribed

CTX = mp.get_context("fork")


def _client(url, i=0):
    # Half the processes use plain redis-py: both must interoperate. from_url
    # clients have no retry by default; these retry as redis.Redis() does.
    cls = fastredis.Redis if i % 2 == 0 else redis.Redis
    return cls.from_url(url, retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), 10))


def _mutex_worker(url, i, rounds, start, out):
    c = _client(url, i)
    log = []
    start.wait(30)
    for _ in range(rounds):
        with Lock(c, "mutex", ttl=20) as held:
            t_in = time.monotonic()
            v = int(c.get("counter") or 0)  # deliberately non-atomic
            time.sleep(0.0005)
            for _ in range(10):
                try:
                    c.set("counter", v + 1)
                    break
                except fastredis.OutcomeUnknownError:
                    continue  # an absolute SET under the lock is safe to repeat; the client cannot know that
            t_out = time.monotonic()
            log.append((held.fencing_token, t_in, t_out))
    out.put((i, log))


def _run_mutex(url, procs_n, rounds, chaos=None):
    """``procs_n`` processes take the lock ``rounds`` times each; checks the log."""
    c = redis.Redis.from_url(url)
    c.flushdb()
    start, out = CTX.Event(), CTX.Queue()
    procs = [CTX.Process(target=_mutex_worker, args=(url, i, rounds, start, out)) for i in range(procs_n)]
    for p in procs:
        p.start()
    start.set()
    logs = []
    for _ in procs:
        while True:
            try:
                logs.extend(out.get(timeout=0.3)[1])
                break
            except queue.Empty:
                assert any(p.is_alive() for p in procs), "a worker died"
                if chaos is not None:
                    chaos(c)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(logs) == procs_n * rounds
    assert int(c.get("counter")) == procs_n * rounds
    logs.sort(key=lambda e: e[1])
    for (f1, _, out1), (f2, in2, _) in zip(logs, logs[1:]):
        assert in2 > out1, "two holders overlapped"
        assert f2 > f1, "fencing tokens must rise in hold order"
    c.close()


def test_mutual_exclusion_many_processes(redis_url):
    _run_mutex(redis_url, 16, 20)


@pytest.mark.soak
def test_soak_mutual_exclusion_with_killed_connections(private_server):
    kills = []

    def chaos(c):  # every ~300 ms kill the workers' connections, waiting ones included
        kills.append(c.client_kill_filter(_type="normal", skipme=True) + c.client_kill_filter(_type="pubsub"))

    _run_mutex(private_server.url, 16, 300, chaos)
    assert sum(kills) > 0 and len(kills) >= 10, kills


def _stalled_holder(url, ready, go, out):
    c = _client(url)
    lock = Lock(c, "stall", ttl=0.5)
    assert lock.acquire()
    ready.put(lock.fencing_token)
    go.wait(60)  # SIGSTOPped around here, past the ttl
    try:
        lock.release()
        result = "released"
    except LockNotOwnedError:
        result = "not-owned"
    wrote = fenced_write(c, "stall:data", "stale write", lock.fencing_token)
    out.put((result, wrote))


def test_stalled_holder_is_fenced(redis_url):
    c = fastredis.Redis.from_url(redis_url)
    c.flushdb()
    ready, out, go = CTX.Queue(), CTX.Queue(), CTX.Event()
    p = CTX.Process(target=_stalled_holder, args=(redis_url, ready, go, out))
    p.start()
    old_token = ready.get(timeout=30)
    os.kill(p.pid, signal.SIGSTOP)
    try:
        new = Lock(c, "stall", ttl=30)
        assert new.acquire(timeout=10)  # after the stalled holder's ttl ran out
        assert new.fencing_token > old_token
        assert fenced_write(c, "stall:data", "new owner", new.fencing_token)
    finally:
        os.kill(p.pid, signal.SIGCONT)  # before go.set(): notify() waits for the sleeper
        go.set()
    result, wrote = out.get(timeout=30)
    p.join(10)
    assert result == "not-owned"
    assert wrote is False
    assert new.owned()  # the new owner's key is intact
    assert c.get(new.key).decode() == new.token
    assert c.get("stall:data") == b"new owner"
    new.release()
    c.close()


def test_tokens_rise_across_restart_without_persistence(private_server):
    c = private_server.client()
    with Lock(c, "restart") as held:
        before = held.fencing_token
    for _ in range(5):  # push the counter a little ahead
        with Lock(c, "restart") as held:
            before = held.fencing_token
    private_server.restart()
    assert c.hget("lock:{restart}:state", "n") is None  # the counter is gone
    with Lock(c, "restart") as held:
        assert held.fencing_token > before


def test_restart_while_held(private_server):
    c = private_server.client()
    lock = Lock(c, "held", ttl=30)
    lock.acquire()
    first = lock.fencing_token
    private_server.restart()
    with pytest.raises(LockNotOwnedError):
        lock.release()
    assert lock.acquire(blocking=False)
    assert lock.fencing_token > first
    lock.release()


def _blocked_waiter(server, name):
    """A holder (ttl 60 s) and a waiter thread already subscribed to its release channel."""
    c = server.client()
    holder = Lock(c, name, ttl=60)
    assert holder.acquire()
    got = {}
    waiter = Lock(server.client(), name)
    th = threading.Thread(target=lambda: got.update(ok=waiter.acquire(timeout=30), at=time.monotonic()))
    th.start()
    wait_subscribed(c, waiter.channel)
    return c, holder, waiter, th, got


def test_waiter_survives_server_restart(private_server):
    c, holder, waiter, th, got = _blocked_waiter(private_server, "rw")
    t0 = time.monotonic()
    private_server.restart()  # the holder's key is lost; nobody publishes
    th.join(40)
    assert got["ok"] is True
    assert got["at"] - t0 < 15  # woken by the reconnect, not the 60 s ttl
    waiter.release()


def test_client_kill_of_waiting_connection(private_server):
    c, holder, waiter, th, got = _blocked_waiter(private_server, "ck")
    killed = c.client_kill_filter(_type="pubsub") + c.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    wait_subscribed(c, waiter.channel)  # it resubscribed
    t0 = time.monotonic()
    holder.release()
    th.join(40)
    assert got["ok"] is True
    assert got["at"] - t0 < 5
    waiter.release()


def test_killed_connection_before_release(private_server):
    c = private_server.client()
    lock = Lock(c, "kill", ttl=30)
    lock.acquire()
    other = private_server.client()
    assert other.client_kill_filter(_type="normal", skipme=True) >= 1
    lock.release()  # the client reconnects (retry policy); release is replay-safe
    assert not other.exists(lock.key)


@pytest.mark.parametrize("client_cls", [fastredis.Redis, redis.Redis], ids=["fastredis", "redis-py"])
def test_auto_renew_survives_three_ttls(redis_url, client_cls):
    c = client_cls.from_url(redis_url)
    lost = threading.Event()
    lock = Lock(c, "renew", ttl=0.6, auto_renew=True, on_lost=lambda l: lost.set())
    lock.acquire()
    time.sleep(2.0)  # > 3 x ttl of "work"
    assert lock.owned()
    assert not lost.is_set()
    assert not Lock(c, "renew").acquire(blocking=False)
    lock.release()
    assert not _watchdogs()
    c.close()


def test_on_lost_fires_when_key_deleted(redis_url):
    c = fastredis.Redis.from_url(redis_url)
    lost = []
    fired = threading.Event()

    def on_lost(l):
        lost.append(l)
        fired.set()

    lock = Lock(c, "lost", ttl=0.9, auto_renew=True, on_lost=on_lost)
    lock.acquire()
    c.delete(lock.key)
    t0 = time.monotonic()
    assert fired.wait(5)
    assert time.monotonic() - t0 < 0.3 + 1.5  # one renewal period (ttl/3) + wide margin
    assert lost == [lock]
    assert not lock.owned()
    with pytest.raises(LockNotOwnedError):
        lock.release()
    c.close()


def test_on_lost_when_taken_over(redis_url):
    c = fastredis.Redis.from_url(redis_url)
    fired = threading.Event()
    lock = Lock(c, "over", ttl=0.9, auto_renew=True, on_lost=lambda l: fired.set())
    lock.acquire()
    c.set(lock.key, "intruder", px=10_000)
    assert fired.wait(5)
    assert c.get(lock.key) == b"intruder"  # the watchdog never extends another owner
    assert c.pttl(lock.key) <= 10_000
    c.close()


def test_watchdog_stops_on_gc(redis_url):
    c = fastredis.Redis.from_url(redis_url)
    lock = Lock(c, "gc", ttl=0.6, auto_renew=True)
    lock.acquire()
    assert _watchdogs()
    del lock
    gc.collect()
    deadline = time.monotonic() + 3
    while _watchdogs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _watchdogs()
    time.sleep(0.8)
    assert not c.exists("lock:{gc}")  # no longer renewed: it expired
    c.close()


def test_fork_child_neither_renews_nor_releases(redis_url):
    c = fastredis.Redis.from_url(redis_url)
    lock = Lock(c, "fork", ttl=0.9, auto_renew=True)
    lock.acquire()
    pid = os.fork()
    if pid == 0:  # child: no watchdog, no ownership of the parent's lock
        code = 0
        try:
            if _watchdogs():
                code = 1
            elif lock.owned():
                code = 2
            else:
                try:
                    lock.release()
                    code = 3
                except LockError:
                    pass
                if code == 0 and lock.acquire(blocking=False):
                    code = 5  # the parent still holds it
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    time.sleep(1.2)  # longer than the ttl: the parent's watchdog keeps it alive
    assert lock.owned()
    lock.release()
    c.close()


def _watchdogs():
    return [t for t in threading.enumerate() if t.name.startswith("fastredis-lock-watchdog") and t.is_alive()]



def test_lock_on_redis_cluster(server_factory):
    from redis.cluster import RedisCluster as ClusterClient

    from fastredis.server import RedisCluster

    with RedisCluster(3) as cluster:
        rc = ClusterClient(host=cluster.host, port=cluster.ports[0])
        try:
            tokens = []
            for name in ["a", "b", "job:{1}", "zz"]:  # names landing on different nodes
                with Lock(rc, name, ttl=5) as held:
                    tokens.append(held.fencing_token)
                    assert fenced_write(rc, f"data:{name}", "v", held.fencing_token)
            holder = Lock(rc, "w", ttl=30)
            holder.acquire()
            got = {}
            waiter = Lock(rc, "w")
            th = threading.Thread(target=lambda: got.update(ok=waiter.acquire(timeout=10), at=time.monotonic()))
            th.start()
            time.sleep(0.3)
            t0 = time.monotonic()
            holder.release()
            th.join(15)
            assert got["ok"] and got["at"] - t0 < 3  # woken by the release, not the 30 s ttl
            waiter.release()
        finally:
            rc.close()
