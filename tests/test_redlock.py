"""Redlock over 5 private servers: quorum with nodes killed or stopped, bounded
failure time, validity, extension, release everywhere, processes in contention."""

from __future__ import annotations

import math
import multiprocessing as mp
import time

import pytest
import redis

import fastredis
from fastredis.exceptions import LockError, LockNotOwnedError
from fastredis.patterns.redlock import Redlock

KEY = "lock:{job}"


@pytest.fixture
def five(server_factory):
    servers = [server_factory() for _ in range(5)]
    try:
        yield servers
    finally:
        for s in servers:
            s.resume()  # a stopped server cannot be stopped cleanly


@pytest.fixture(params=[fastredis.Redis, redis.Redis], ids=["fastredis", "redis-py"])
def client_cls(request):
    return request.param


def _clients(servers, cls=fastredis.Redis):
    return [cls(port=s.port) for s in servers]


def _holders(servers, token):
    """Nodes (by index) whose lock key holds ``token``; stopped/killed ones skipped."""
    out = []
    for i, s in enumerate(servers):
        try:
            v = redis.Redis(port=s.port, socket_timeout=0.5, socket_connect_timeout=0.5,
                            retry=None).get(KEY)
        except redis.exceptions.RedisError:
            continue
        if v is not None and v.decode() == token:
            out.append(i)
    return out


def _wait_holders(servers, token, expected, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        got = _holders(servers, token)
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.01)


def test_acquire_validity_release(five, client_cls):
    lock = Redlock(_clients(five, client_cls), "job", ttl=5, node_timeout=0.2)
    try:
        assert lock.quorum == 3
        t0 = time.monotonic()
        assert lock.acquire()
        elapsed = time.monotonic() - t0
        v = lock.validity
        assert 0 < v <= 5 - elapsed
        assert v > 5 - elapsed - lock.drift - 0.5
        assert lock.owned()
        assert _wait_holders(five, lock.token, [0, 1, 2, 3, 4]) == [0, 1, 2, 3, 4]
        for s in five:  # the keys expire: a crashed holder frees the lock
            assert 0 < redis.Redis(port=s.port).pttl(KEY) <= 5000
        token = lock.token
        lock.release()
        assert _holders(five, token) == []
        assert not lock.owned() and lock.validity == 0
    finally:
        lock.close()


def test_validity_never_exceeds_ttl_minus_elapsed(five):
    lock = Redlock(_clients(five), "job", ttl=1.0, node_timeout=0.2)
    try:
        for _ in range(10):
            t0 = time.monotonic()
            assert lock.acquire()
            assert lock.validity <= 1.0 - (time.monotonic() - t0)
            lock.release()
    finally:
        lock.close()


def test_contention_between_two_redlocks(five):
    a = Redlock(_clients(five), "job", ttl=5, node_timeout=0.2)
    b = Redlock(_clients(five), "job", ttl=5, node_timeout=0.2, retry_count=2, retry_delay=0.05)
    try:
        assert a.acquire()
        assert b.acquire(blocking=False) is False
        assert b.acquire() is False
        assert _wait_holders(five, a.token, [0, 1, 2, 3, 4]) == [0, 1, 2, 3, 4]
        assert b.locked()
        a.release()
        assert not b.locked()
        assert b.acquire(blocking=False)
        b.release()
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("how", ["kill", "pause"])
def test_quorum_with_two_nodes_down(five, how):
    nt = 0.1
    lock = Redlock(_clients(five), "job", ttl=5, node_timeout=nt)
    try:
        # Warm the connections and the script cache first, then take nodes down.
        assert lock.acquire()
        lock.release()
        for s in five[:2]:
            s.kill() if how == "kill" else s.pause()
        t0 = time.monotonic()
        assert lock.acquire()
        took = time.monotonic() - t0
        assert took < nt + 2.0  # a stopped node costs about node_timeout (wide margin: shared machine)
        assert lock.validity > 0
        assert _wait_holders(five, lock.token, [2, 3, 4]) == [2, 3, 4]
        token = lock.token
        t0 = time.monotonic()
        lock.release()  # reaches the three reachable nodes
        assert time.monotonic() - t0 < 3 * nt + 2.0
        assert _holders(five, token) == []
    finally:
        lock.close()


def test_fails_with_three_nodes_down_within_bound(five):
    nt, rd, rc = 0.1, 0.2, 3
    lock = Redlock(_clients(five), "job", ttl=5, node_timeout=nt, retry_delay=rd, retry_count=rc)
    try:
        five[0].kill()
        five[1].pause()
        five[2].pause()
        t0 = time.monotonic()
        assert lock.acquire() is False
        took = time.monotonic() - t0
        assert took <= (rc + 1) * (nt + rd) + 1.5
        assert took >= rc * 0 + nt * 0.5  # it did wait on the stopped nodes
        assert lock.token is None and lock.validity == 0
        # Every attempt released what it took on the reachable nodes.
        for s in five[3:]:
            assert redis.Redis(port=s.port).get(KEY) is None
        with pytest.raises(LockError):
            lock.release()
    finally:
        lock.close()


def test_single_attempt_when_not_blocking(five):
    nt = 0.1
    lock = Redlock(_clients(five), "job", ttl=5, node_timeout=nt, retry_delay=1.0, retry_count=5)
    try:
        for s in five[:3]:
            s.pause()
        t0 = time.monotonic()
        assert lock.acquire(blocking=False) is False
        assert time.monotonic() - t0 < 3 * nt + 2.0  # no retry delays
    finally:
        lock.close()


def test_extend_with_quorum_and_cap(five):
    lock = Redlock(_clients(five), "job", ttl=1.0, node_timeout=0.2, max_extensions=2)
    try:
        assert lock.acquire()
        time.sleep(0.5)
        assert lock.validity < 0.6
        assert lock.extend() > 0.8
        assert lock.extend() > 0.8
        with pytest.raises(LockError, match="max_extensions"):
            lock.extend()
        for s in five:
            assert redis.Redis(port=s.port).pttl(KEY) > 500
        lock.release()
        assert lock.acquire()  # the cap counts per hold
        assert lock.extensions == 0
        lock.extend()
        lock.release()
    finally:
        lock.close()


def test_extend_without_quorum_releases_and_raises(five):
    lock = Redlock(_clients(five), "job", ttl=5, node_timeout=0.2)
    try:
        assert lock.acquire()
        token = lock.token
        _wait_holders(five, token, [0, 1, 2, 3, 4])
        for s in five[:3]:
            redis.Redis(port=s.port).delete(KEY)
        with pytest.raises(LockNotOwnedError):
            lock.extend()
        assert _holders(five, token) == []  # released where it still held
        assert not lock.owned()
    finally:
        lock.close()


def test_release_after_expiry_raises(five):
    lock = Redlock(_clients(five), "job", ttl=0.1, node_timeout=0.2)
    try:
        assert lock.acquire()
        time.sleep(0.25)
        assert lock.validity == 0 and not lock.owned()
        with pytest.raises(LockNotOwnedError):
            lock.release()
    finally:
        lock.close()


def test_script_flush_between_acquire_and_release(five):
    lock = Redlock(_clients(five), "job", ttl=5, node_timeout=0.2)
    try:
        assert lock.acquire()
        token = lock.token
        _wait_holders(five, token, [0, 1, 2, 3, 4])
        for s in five:
            redis.Redis(port=s.port).script_flush()
        lock.extend()
        for s in five:
            redis.Redis(port=s.port).script_flush()
        lock.release()
        assert _holders(five, token) == []
    finally:
        lock.close()


def test_release_waits_for_the_acquire_calls_still_running(five):
    """acquire() returns at the quorum while slower nodes are still being
    called; a release right after must not reach such a node before the
    acquire does (it would find nothing, and the late SET would leave the
    lock held there until the ttl). One node's call is delayed in the
    client (a slow link), not in Redis."""
    lock = Redlock(_clients(five), "job", ttl=30, node_timeout=0.5)
    slow = lock.nodes[4]
    send = slow.execute_command
    delayed = []

    def slow_link(*args, **kwargs):
        if not delayed:
            delayed.append(args[0])
            time.sleep(0.2)
        return send(*args, **kwargs)

    slow.execute_command = slow_link
    try:
        assert lock.acquire()
        token = lock.token
        lock.release()
        assert delayed  # the slow node's acquire was still running at the quorum
        time.sleep(0.4)  # past the delayed call: whatever it was going to do is done
        assert _holders(five, token) == []  # released everywhere, the slow node too
    finally:
        lock.close()


def test_context_manager_and_urls(five):
    with_urls = Redlock([s.url for s in five], "job", ttl=5, node_timeout=0.2)
    try:
        with with_urls as held:
            assert held.owned()
            token = held.token
        assert _holders(five, token) == []
    finally:
        with_urls.close()


def test_hostile_name(five):
    lock = Redlock(_clients(five), "a:{b}*\r\n", ttl=5, node_timeout=0.2)
    try:
        assert lock.acquire()
        assert lock.key == "lock:{a%3A%7Bb%7D%2A%0D%0A}"
        lock.release()
    finally:
        lock.close()


def test_bad_arguments(five):
    cs = _clients(five)
    for kwargs in [dict(ttl=math.nan), dict(ttl=0), dict(node_timeout=0), dict(node_timeout=math.inf),
                   dict(drift_factor=1.0), dict(drift_factor=-0.1), dict(retry_count=-1), dict(retry_delay=-1)]:
        with pytest.raises(ValueError):
            Redlock(cs, "job", **kwargs)
    for kwargs in [dict(retry_count=True), dict(max_extensions=1.5), dict(ttl="10")]:  # wrong types
        with pytest.raises(TypeError):
            Redlock(cs, "job", **kwargs)
    with pytest.raises(ValueError, match="clients"):
        Redlock([], "job")
    with pytest.raises(ValueError, match="clients"):
        Redlock("redis://localhost", "job")
    with pytest.raises(TypeError):
        Redlock([object()], "job")


def _redlock_worker(ports, i, rounds, start, out):
    c = redis.Redis(port=ports[0])
    lock = Redlock([fastredis.Redis(port=p) if i % 2 else redis.Redis(port=p) for p in ports],
                   "job", ttl=10, node_timeout=0.5, retry_delay=0.02)
    log = []
    start.wait(30)
    for _ in range(rounds):
        while not lock.acquire():
            pass
        t_in = time.monotonic()
        v = int(c.get("counter") or 0)
        c.set("counter", v + 1)
        t_out = time.monotonic()
        lock.release()
        log.append((t_in, t_out))
    lock.close()
    out.put(log)


def test_mutual_exclusion_across_processes(five):
    ctx = mp.get_context("fork")
    ports = [s.port for s in five]
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_redlock_worker, args=(ports, i, 5, start, out)) for i in range(6)]
    for p in procs:
        p.start()
    start.set()
    logs = []
    for _ in procs:
        logs.extend(out.get(timeout=120))
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert int(redis.Redis(port=ports[0]).get("counter")) == 30
    logs.sort()
    for (_, out1), (in2, _) in zip(logs, logs[1:]):
        assert in2 > out1
