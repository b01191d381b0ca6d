"""Lock: API, fencing tokens, replay safety, waiting without polling, bad input.

Multi-process, restart and kill scenarios are in test_lock_faults.py.
"""

from __future__ import annotations

import math
import threading
import time

import pytest
import redis

import fastredis
from fastredis.exceptions import LockError, LockNotOwnedError
from fastredis.patterns.lock import _ACQUIRE, _RELEASE, Lock, _release_args, fence_key_for, fenced_write


def counting(client_cls, url, **kwargs):
    """A client of ``client_cls`` that counts the commands it sends (not pub/sub)."""

    class Counting(client_cls):
        sent: list

        def execute_command(self, *args, **options):
            self.sent.append(args[0])
            return super().execute_command(*args, **options)

    c = Counting.from_url(url, **kwargs)
    c.sent = []
    return c


@pytest.fixture(params=[fastredis.Redis, redis.Redis], ids=["fastredis", "redis-py"])
def client_cls(request):
    return request.param


def test_acquire_release_roundtrip(any_client):
    a = Lock(any_client, "job")
    b = Lock(any_client, "job")
    assert a.acquire(blocking=False) is True
    assert isinstance(a.token, str) and len(a.token) == 32
    assert isinstance(a.fencing_token, int) and a.fencing_token > 1_600_000_000 * 10**6
    assert a.locked() and b.locked()
    assert a.owned() and not b.owned()
    assert b.acquire(blocking=False) is False
    a.release()
    assert not a.locked() and not a.owned()
    assert b.acquire(blocking=False) is True
    b.release()


def test_fencing_tokens_strictly_increase(any_client):
    seen = []
    for _ in range(50):
        with Lock(any_client, "fence") as held:
            seen.append(held.fencing_token)
    assert all(b > a for a, b in zip(seen, seen[1:]))
    # The counter is stored, and never expires.
    assert any_client.ttl("lock:{fence}:state") == -1


def test_fencing_counter_ahead_of_clock_still_increases(any_client):
    # A counter ahead of server time (say a clock stepped back) keeps +1.
    ahead = int(time.time() * 1e6) + 10**12
    any_client.hset("lock:{ahead}:state", "n", ahead)
    with Lock(any_client, "ahead") as held:
        assert held.fencing_token == ahead + 1
    with Lock(any_client, "ahead") as held:
        assert held.fencing_token == ahead + 2


def test_different_names_do_not_conflict(any_client):
    with Lock(any_client, "a"), Lock(any_client, "b"):
        assert Lock(any_client, "a").locked()
        assert not Lock(any_client, "c").locked()


def test_uncontended_is_one_round_trip_each(client_cls, redis_url):
    c = counting(client_cls, redis_url)
    lock = Lock(c, "rt")
    lock.acquire()  # loads the script (NOSCRIPT path) on a fresh server
    lock.release()
    c.sent.clear()
    for _ in range(5):
        assert lock.acquire()
        assert c.sent == ["EVALSHA"]
        lock.release()
        assert c.sent == ["EVALSHA", "EVALSHA"]
        c.sent.clear()
    c.close()


def test_acquire_replay_is_harmless(any_client):
    lock = Lock(any_client, "replay")
    keys = (lock.key, lock.state_key)
    first = _ACQUIRE(any_client, keys, ("tok", 10_000))
    second = _ACQUIRE(any_client, keys, ("tok", 10_000))  # the same call run twice
    assert int(first[0]) == int(second[0]) == 1
    assert int(first[1]) == int(second[1])
    assert int(_ACQUIRE(any_client, keys, ("other", 10_000))[0]) == 0


def test_release_replay_is_harmless(any_client):
    lock = Lock(any_client, "replay")
    lock.acquire()
    token = lock.token
    keys, args = _release_args(lock.key, lock._space.tagged("replay", "done", token), token, "", 10_000)
    assert int(_RELEASE(any_client, keys, args)) == 1
    # Others take and release the lock before the replay arrives.
    for _ in range(3):
        with Lock(any_client, "replay"):
            pass
    assert int(_RELEASE(any_client, keys, args)) == 2  # replay: "already released by us"
    other_keys, other_args = _release_args(lock.key, lock._space.tagged("replay", "done", "x"), "x", "", 10_000)
    assert int(_RELEASE(any_client, other_keys, other_args)) == 0
    tombstone = keys[1]
    assert 9_000 < any_client.pttl(tombstone) <= 10_000  # it goes away on its own


def test_release_never_touches_another_owner(any_client):
    lock = Lock(any_client, "k", ttl=0.05)
    lock.acquire()
    time.sleep(0.1)
    other = Lock(any_client, "k", ttl=10)
    assert other.acquire(blocking=False)
    with pytest.raises(LockNotOwnedError) as info:
        lock.release()
    assert isinstance(info.value, redis.exceptions.LockNotOwnedError)
    assert other.owned()
    assert any_client.pttl(other.key) > 5000
    other.release()


def test_extend_set_and_add(any_client):
    lock = Lock(any_client, "ext", ttl=2)
    lock.acquire()
    assert 3.5 < lock.extend(2) <= 4.0
    assert 3500 < any_client.pttl(lock.key) <= 4000
    assert lock.extend() == 2.0
    assert 1500 < any_client.pttl(lock.key) <= 2000
    any_client.delete(lock.key)
    with pytest.raises(LockNotOwnedError):
        lock.extend()
    assert not lock.owned()
    with pytest.raises(LockNotOwnedError):
        lock.release()
    # The object can be used again after a lost hold.
    assert lock.acquire(blocking=False)
    lock.release()


def test_release_unheld_and_reentry_raise(any_client):
    lock = Lock(any_client, "x")
    with pytest.raises(LockError):
        lock.release()
    with pytest.raises(LockError):
        lock.extend()
    lock.acquire()
    with pytest.raises(LockError, match="not reentrant"):
        lock.acquire(blocking=False)
    lock.release()


def test_context_manager_exposes_tokens(any_client):
    with Lock(any_client, "cm") as held:
        assert held.owned()
        assert held.token and held.fencing_token
        token = held.fencing_token
    assert not Lock(any_client, "cm").locked()
    assert held.fencing_token == token


def test_context_manager_raises_when_lost(any_client):
    with pytest.raises(LockNotOwnedError):
        with Lock(any_client, "cm") as held:
            any_client.delete(held.key)


def test_context_manager_does_not_mask_body_error(any_client):
    with pytest.raises(KeyError):
        with Lock(any_client, "cm") as held:
            any_client.delete(held.key)
            raise KeyError("body")


def test_timeout_expires(any_client):
    holder = Lock(any_client, "t", ttl=30)
    holder.acquire()
    t0 = time.monotonic()
    assert Lock(any_client, "t").acquire(timeout=0.3) is False
    assert 0.25 < time.monotonic() - t0 < 3.0
    assert Lock(any_client, "t").acquire(timeout=0) is False
    holder.release()


def test_waiter_woken_by_release_not_by_polling(client_cls, redis_url):
    holder_client = client_cls.from_url(redis_url)
    holder_client.flushdb()
    holder = Lock(holder_client, "w", ttl=30)  # a waiter bound by pttl would wait 30 s
    holder.acquire()
    waiter_client = counting(client_cls, redis_url)
    waiter = Lock(waiter_client, "w")
    result = {}

    def wait():
        result["ok"] = waiter.acquire(timeout=20)
        result["at"] = time.monotonic()

    th = threading.Thread(target=wait)
    th.start()
    wait_subscribed(holder_client, waiter.channel)
    time.sleep(0.5)
    # Waiting: the first try, and the one after subscribing; nothing while asleep.
    assert waiter_client.sent.count("EVALSHA") <= 2, waiter_client.sent
    t_release = time.monotonic()
    holder.release()
    th.join(10)
    assert result["ok"] is True
    assert result["at"] - t_release < 2.0
    assert waiter.owned()
    waiter.release()
    # The waiting connection was closed, not returned subscribed.
    assert holder_client.pubsub_numsub(waiter.channel)[0][1] == 0
    holder_client.close()
    waiter_client.close()


def test_crashed_holder_bounded_by_pttl(any_client):
    crashed = Lock(any_client, "crash", ttl=0.4)
    crashed.acquire()
    crashed.token = None  # the holder dies without releasing: nothing is published
    t0 = time.monotonic()
    waiter = Lock(any_client, "crash")
    assert waiter.acquire(timeout=10)
    waited = time.monotonic() - t0
    assert 0.2 < waited < 3.0
    waiter.release()


def test_holder_key_without_expiry_still_waits_bounded(any_client):
    any_client.set("lock:{noexp}", "foreign")  # somebody set the key without a ttl
    t0 = time.monotonic()
    assert Lock(any_client, "noexp", ttl=0.2).acquire(timeout=0.5) is False
    assert time.monotonic() - t0 < 3.0


def test_script_flush_between_acquire_and_release(any_client):
    lock = Lock(any_client, "flush")
    lock.acquire()
    any_client.script_flush()
    assert lock.extend() > 0
    any_client.script_flush()
    lock.release()
    any_client.script_flush()
    assert lock.acquire(blocking=False)
    lock.release()


def test_decode_responses_client(redis_url):
    c = fastredis.Redis.from_url(redis_url, decode_responses=True)
    with Lock(c, "dec") as held:
        assert held.owned()
        assert isinstance(held.fencing_token, int)
    assert fenced_write(c, "dec:data", "x", 5) is True
    c.close()


@pytest.mark.parametrize("name", [
    "a:b", "*", "?", "[x]", "{tag}", "}{", "a\r\nb", " ", "%", b"\xff\xfe", "é", 0, 12345, "",
])
def test_hostile_names(any_client, name):
    lock = Lock(any_client, name)
    assert lock.acquire(blocking=False)
    assert lock.owned()
    lock.release()
    keys = [k.decode() if isinstance(k, bytes) else k for k in any_client.keys("*")]
    assert len(keys) == 2 and lock.state_key in keys  # state + release tombstone
    tag = lock.key[len("lock:"):]
    for k in keys:
        assert k.startswith(lock.key + ":")  # one hash tag: one cluster slot
        assert k.count("{") == 1 and k.count("}") == 1
        assert not any(c in k[len("lock:"):].replace(tag, "") for c in "*?[]{} \r\n")
    # Distinct names never share a key.
    assert Lock(any_client, "a:b").key != Lock(any_client, "a").key


def test_name_glob_chars_do_not_match_others(any_client):
    with Lock(any_client, "job1"):
        assert not Lock(any_client, "job*").locked()
        assert Lock(any_client, "job*").acquire(blocking=False)


@pytest.mark.parametrize("ttl, error", [(math.nan, ValueError), (math.inf, ValueError), (-1, ValueError),
                                        (0, ValueError), (1e300, ValueError),
                                        (True, TypeError), ("10", TypeError), (None, TypeError)])
def test_bad_ttl(any_client, ttl, error):
    with pytest.raises(error, match="ttl"):
        Lock(any_client, "x", ttl=ttl)


@pytest.mark.parametrize("timeout, error", [(math.nan, ValueError), (math.inf, ValueError), (-0.5, ValueError),
                                            (True, TypeError), ("1", TypeError)])
def test_bad_timeout(any_client, timeout, error):
    with pytest.raises(error, match="timeout"):
        Lock(any_client, "x").acquire(timeout=timeout)


def test_bad_arguments(any_client):
    with pytest.raises(ValueError):
        Lock(any_client, "x").acquire(blocking=False, timeout=1)
    with pytest.raises(TypeError):
        Lock(any_client, "x").acquire(blocking=1)
    with pytest.raises(TypeError, match="on_lost"):
        Lock(any_client, "x", on_lost=42)
    with pytest.raises(TypeError):
        Lock(any_client, 1.5)
    with pytest.raises(TypeError):
        Lock(any_client, None)
    with pytest.raises(ValueError, match="prefix"):
        Lock(any_client, "x", prefix="")
    lock = Lock(any_client, "x")
    lock.acquire()
    for bad in (math.nan, math.inf, 0, -1):
        with pytest.raises(ValueError, match="additional"):
            lock.extend(bad)
    lock.release()


# -- fenced writes -------------------------------------------------------------

def test_fenced_write_rejects_older_tokens(any_client):
    assert fenced_write(any_client, "doc", "v1", 100)
    assert fenced_write(any_client, "doc", "v1b", 100)  # same hold writes again
    assert fenced_write(any_client, "doc", "v2", 200)
    assert not fenced_write(any_client, "doc", "stale", 150)
    assert any_client.get("doc") == b"v2"
    assert int(any_client.get("{doc}:fence")) == 200


def test_fenced_write_with_lock_tokens(any_client):
    with Lock(any_client, "res") as first:
        old = first.fencing_token
        assert fenced_write(any_client, "res:data", "first", old)
    with Lock(any_client, "res") as second:
        assert fenced_write(any_client, "res:data", "second", second.fencing_token)
    assert not fenced_write(any_client, "res:data", "late", old)
    assert any_client.get("res:data") == b"second"


def test_fence_key_shares_slot():
    from redis.crc import key_slot

    for key in ["report", "user:{7}:name", b"\xffraw", "a b"]:
        fk = fence_key_for(key)
        kb = key.encode() if isinstance(key, str) else key
        fb = fk.encode() if isinstance(fk, str) else fk
        assert key_slot(kb) == key_slot(fb)
    for key in ["a}b", "{}x", "x{"]:
        with pytest.raises(ValueError, match="fence_key"):
            fence_key_for(key)


def test_fenced_write_bad_input(any_client):
    for token in (0, -1, 2**60, True, 1.5, "7", None):
        with pytest.raises((TypeError, ValueError), match="fencing_token"):
            fenced_write(any_client, "k", "v", token)
    for value in (None, True, object(), math.nan):
        with pytest.raises((TypeError, ValueError), match="value"):
            fenced_write(any_client, "k", value, 5)
    with pytest.raises(TypeError):
        fenced_write(any_client, 5, "v", 5)
    assert fenced_write(any_client, "k{", "v", 5, fence_key="k{:fence") is True
    assert not any_client.exists("k")


def test_fenced_write_binary_values(any_client):
    assert fenced_write(any_client, b"bin\xff", b"\x00\xff\r\n", 3)
    assert any_client.get(b"bin\xff") == b"\x00\xff\r\n"


def wait_subscribed(client, channel, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.pubsub_numsub(channel)[0][1] >= 1:
            return
        time.sleep(0.01)
    raise AssertionError(f"nobody subscribed to {channel}")
