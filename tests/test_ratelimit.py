"""Rate limiters against a real redis-server: semantics, batches, faults, hostile input."""

from __future__ import annotations

import math
import time

import pytest
import redis

import fastredis
from fastredis.patterns.ratelimit import (
    CompositeLimiter,
    Decision,
    FixedWindowLimiter,
    SlidingWindowCounterLimiter,
    SlidingWindowLimiter,
    TokenBucketLimiter,
)

KINDS = ["log", "ctr", "fix", "gcra"]


def make(kind: str, client, limit: int = 5, window: float = 3600.0, **kw):  # type: ignore[no-untyped-def]
    if kind == "log":
        return SlidingWindowLimiter(client, limit, window, **kw)
    if kind == "ctr":
        return SlidingWindowCounterLimiter(client, limit, window, **kw)
    if kind == "fix":
        return FixedWindowLimiter(client, limit, window, **kw)
    return TokenBucketLimiter(client, rate=limit / window, capacity=limit, **kw)


def state_keys(client) -> list:  # type: ignore[no-untyped-def]
    return sorted(client.keys("*"))


@pytest.mark.parametrize("kind", KINDS)
def test_admits_limit_then_denies_and_denial_consumes_nothing(any_client, kind: str) -> None:  # type: ignore[no-untyped-def]
    lim = make(kind, any_client, limit=5)
    got = [lim.hit("user") for _ in range(5)]
    assert [d.allowed for d in got] == [True] * 5
    assert [d.remaining for d in got] == [4, 3, 2, 1, 0]
    assert all(d.limit == 5 and d.retry_after == 0.0 for d in got)
    (key,) = state_keys(any_client)
    before = any_client.dump(key)
    # The counter limiter's previous window keeps weight into the next one, so
    # its wait can reach into the window after next: up to 2 windows.
    longest_wait = 2 * 3600 if kind == "ctr" else 3600
    for _ in range(20):
        d = lim.hit("user")
        assert not d.allowed and d.remaining == 0 and 0 < d.retry_after <= longest_wait
    # The stored state is byte-for-byte unchanged by the 20 denials.
    assert any_client.dump(key) == before
    assert lim.peek("user").remaining == 0
    assert lim.hit("someone-else").allowed


@pytest.mark.parametrize("kind", KINDS)
def test_cost(any_client, kind: str) -> None:  # type: ignore[no-untyped-def]
    lim = make(kind, any_client, limit=5)
    assert lim.hit("k", cost=3).remaining == 2
    d = lim.hit("k", cost=3)
    assert not d.allowed and d.remaining == 2 and 0 < d.retry_after < math.inf
    big = lim.hit("k", cost=6)
    assert big == Decision(False, 5, 2, math.inf, big.reset_after)
    assert lim.hit("fresh", cost=6).retry_after == math.inf
    assert lim.peek("k").remaining == 2  # neither denial consumed
    assert lim.hit("k", cost=2).remaining == 0
    for bad in (0, -1):
        with pytest.raises(ValueError, match="cost"):
            lim.hit("k", cost=bad)
        with pytest.raises(ValueError, match="cost"):
            lim.hit_many(["k"], cost=bad)
    for bad in (True, 1.5, "1", None):
        with pytest.raises(TypeError, match="cost"):
            lim.hit("k", cost=bad)


@pytest.mark.parametrize("kind", KINDS)
def test_peek_reset_and_expiry(r, kind: str) -> None:  # type: ignore[no-untyped-def]
    lim = make(kind, r, limit=3, window=30)
    assert lim.peek("k") == Decision(True, 3, 3, 0.0, 0.0)
    assert r.keys("*") == [] or kind == "log"  # peek writes nothing (log may trim)
    lim.hit("k")
    assert lim.peek("k").remaining == 2
    (key,) = r.keys("*")
    ttl = r.pttl(key)
    # Keys expire when idle: within two windows (counter keeps the previous one).
    assert 0 < ttl <= 60_000
    lim.reset("k")
    assert r.keys("*") == []
    assert lim.peek("k").remaining == 3


def test_same_microsecond_requests_do_not_collapse(r) -> None:  # type: ignore[no-untyped-def]
    lim = SlidingWindowLimiter(r, 100, 60)
    got = lim.hit_many(["k"] * 7)  # one script run, one TIME value
    assert [d.remaining for d in got] == [99, 98, 97, 96, 95, 94, 93]
    lim.hit("k", cost=4)
    (key,) = r.keys("*")
    assert r.zcard(key) == 11
    assert len({s for _, s in r.zrange(key, 0, -1, withscores=True)}) <= 2  # same-µs scores


@pytest.mark.parametrize("kind", KINDS)
def test_hit_many_counts_every_occurrence(any_client, kind: str) -> None:  # type: ignore[no-untyped-def]
    lim = make(kind, any_client, limit=5000)
    got = lim.hit_many(["hot"] * 1000)
    assert [d.remaining for d in got] == list(range(4999, 3999, -1))
    assert lim.peek("hot").remaining == 4000
    keys = [f"user:{i}" for i in range(3000)]  # crosses the 2000-key chunk
    got = lim.hit_many(keys, cost=2)
    assert len(got) == 3000 and all(d.allowed and d.remaining == 4998 for d in got)
    again = lim.hit_many(keys[:5] + keys[:5], cost=2)
    assert [d.remaining for d in again] == [4996] * 5 + [4994] * 5
    assert [lim.peek(k).remaining for k in keys[:6]] == [4994] * 5 + [4998]
    small = make(kind, any_client, limit=3, prefix="small")
    assert [d.allowed for d in small.hit_many(["x"] * 6)] == [True] * 3 + [False] * 3
    assert lim.hit_many([]) == []


def test_1000_hits_in_one_pipeline_are_all_counted(any_client) -> None:  # type: ignore[no-untyped-def]
    """hit_many is one round trip: 1000 hits end in the server's state."""
    lim = FixedWindowLimiter(any_client, 10_000, 3600)
    any_client.config_resetstat()
    lim.hit_many(["k"] * 1000)
    stats = any_client.info("commandstats")
    (key,) = state_keys(any_client)
    assert int(any_client.hget(key, "n")) == 1000
    assert stats["cmdstat_evalsha"]["calls"] == 1  # one script call, one round trip


def test_retry_after_is_honest(r) -> None:  # type: ignore[no-untyped-def]
    for lim in (
        SlidingWindowLimiter(r, 2, 0.4),
        SlidingWindowCounterLimiter(r, 2, 0.4),
        FixedWindowLimiter(r, 2, 0.4),
        TokenBucketLimiter(r, rate=5, capacity=2),
    ):
        lim.hit("k")
        lim.hit("k")
        d = lim.hit("k")
        assert not d.allowed and 0 < d.retry_after <= 0.8, lim
        time.sleep(d.retry_after + 0.005)
        assert lim.hit("k").allowed, lim


def test_sliding_log_is_exact(r) -> None:  # type: ignore[no-untyped-def]
    lim = SlidingWindowLimiter(r, 3, 0.5)
    lim.hit("k")
    time.sleep(0.25)
    lim.hit("k", cost=2)
    d = lim.hit("k")
    assert not d.allowed and 0.15 < d.retry_after <= 0.25  # the first hit leaves first
    time.sleep(d.retry_after + 0.005)
    assert lim.hit("k").allowed
    assert not lim.hit("k").allowed  # the cost-2 hit is still inside the window


def test_token_bucket_refills(r) -> None:  # type: ignore[no-untyped-def]
    tb = TokenBucketLimiter(r, rate=10, capacity=3)
    assert [tb.hit("k").allowed for _ in range(4)] == [True, True, True, False]
    d = tb.peek("k")
    assert d.remaining == 0 and 0 < d.reset_after <= 0.3
    time.sleep(0.21)
    assert tb.peek("k").remaining == 2
    assert tb.hit("k", cost=2).allowed and not tb.hit("k").allowed


def test_composite_consumes_nothing_unless_all_admit(any_client) -> None:  # type: ignore[no-untyped-def]
    per_sec = FixedWindowLimiter(any_client, 2, 3600, prefix="a")
    per_hour = SlidingWindowLimiter(any_client, 5, 3600, prefix="b")
    both = CompositeLimiter([per_sec, per_hour])
    assert both.limit == 2 and both.limiters == (per_sec, per_hour)
    assert [d.remaining for d in (both.hit("u"), both.hit("u"))] == [1, 0]
    d = both.hit("u")
    assert not d.allowed and d.limit == 2
    assert per_hour.peek("u").remaining == 3  # the denied request consumed nothing
    per_sec.reset("u")
    assert both.hit("u", cost=2).remaining == 0  # binding: per_sec, 2-2
    d = both.hit("u", cost=2)
    assert not d.allowed and per_hour.peek("u").remaining == 1
    per_sec.reset("u")
    d = both.hit("u", cost=2)
    assert not d.allowed and d.limit == 5  # now the hourly limit binds
    assert per_sec.peek("u").remaining == 2
    assert [x.allowed for x in both.hit_many(["v"] * 3)] == [True, True, False]
    # All limits of one key share the key's hash tag (one cluster slot).
    tags = {k.split(b"{")[1].split(b"}")[0] for k in any_client.keys("*")}
    assert tags == {b"u", b"v"}
    with pytest.raises(ValueError, match="same limit twice"):
        CompositeLimiter([per_sec, FixedWindowLimiter(any_client, 2, 3600, prefix="a")])
    with pytest.raises(ValueError):
        CompositeLimiter([])
    with pytest.raises(TypeError):
        CompositeLimiter([both])  # type: ignore[list-item]


def test_local_deny_cache_skips_the_round_trip(r) -> None:  # type: ignore[no-untyped-def]
    lim = SlidingWindowLimiter(r, 2, 60, local=True)
    lim.hit("k")
    lim.hit("k")
    first = lim.hit("k")
    assert not first.allowed
    calls = lambda: r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)  # noqa: E731
    before = calls()
    again = [lim.hit("k") for _ in range(50)] + lim.hit_many(["k", "k"])
    assert calls() == before  # no round trip for a locally denied key
    assert all(not d.allowed and 0 < d.retry_after <= first.retry_after for d in again)
    assert lim.hit_many(["other", "k"])[0].allowed  # others still go to Redis
    assert calls() == before + 1
    lim.reset("k")
    assert lim.hit("k").allowed


def test_script_flush(any_client) -> None:  # type: ignore[no-untyped-def]
    lims = [make(k, any_client, limit=10) for k in KINDS]
    for lim in lims:
        assert lim.hit("k").allowed
    any_client.script_flush()
    for lim in lims:
        assert lim.hit("k").remaining == 8
    any_client.script_flush()
    assert all(d.remaining == 7 for d in lims[0].hit_many(["k"] * 3000)[:1])
    any_client.script_flush()
    assert lims[1].peek("k").remaining == 8


HOSTILE = ["*", "?", "[", "]", "{", "}", "{a}", ":", "a:b", "a\r\nb", "\n", " ", "%2A", "", b"\xff\xfe", b"\x00*", "é", "\udcff"]


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_keys_are_isolated(any_client, kind: str) -> None:  # type: ignore[no-untyped-def]
    lim = make(kind, any_client, limit=2)
    for k in HOSTILE:
        assert lim.hit(k).remaining == 1, k
    got = lim.hit_many(HOSTILE)
    assert all(d.remaining == 0 for d in got)
    keys = any_client.keys("*")
    assert len(keys) == len(HOSTILE)
    for k in keys:  # escaped: no glob, brace, separator or control byte from the user part
        tag = k.split(b"{", 1)[1].split(b"}", 1)[0]
        assert not set(tag) & set(b"*?[]{}: \r\n") and all(b < 128 for b in tag)
    lim.reset("*")
    assert lim.peek("*").remaining == 2 and lim.peek("?").remaining == 0


def test_hostile_keys_with_decoded_client(redis_url: str) -> None:
    client = fastredis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    lim = SlidingWindowLimiter(client, 1, 60)
    assert lim.hit(b"\xff\x00").allowed and not lim.hit(b"\xff\x00").allowed
    assert lim.hit("\xff\x00").allowed  # the str is a different key from the bytes
    assert isinstance(lim.peek(b"\xff").retry_after, float)
    client.close()


@pytest.mark.parametrize(
    "args, exc, match",
    [
        ((0, 1), ValueError, "limit"),
        ((-3, 1), ValueError, "limit"),
        ((1.5, 1), TypeError, "limit"),
        ((True, 1), TypeError, "limit"),
        ((float("nan"), 1), TypeError, "limit"),
        ((1, 0), ValueError, "window"),
        ((1, -1), ValueError, "window"),
        ((1, float("nan")), ValueError, "window"),
        ((1, float("inf")), ValueError, "window"),
        ((1, 1e-9), ValueError, "window"),
        ((1, "1"), TypeError, "window"),
    ],
)
def test_bad_arguments(r, args, exc, match) -> None:  # type: ignore[no-untyped-def]
    for cls in (SlidingWindowLimiter, SlidingWindowCounterLimiter, FixedWindowLimiter):
        with pytest.raises(exc, match=match):
            cls(r, *args)


def test_bad_token_bucket_arguments(r) -> None:  # type: ignore[no-untyped-def]
    for rate in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="rate"):
            TokenBucketLimiter(r, rate=rate, capacity=1)
    with pytest.raises(ValueError, match="capacity"):
        TokenBucketLimiter(r, rate=1, capacity=0)
    with pytest.raises(ValueError, match="too small"):
        TokenBucketLimiter(r, rate=1e-320, capacity=10)
    with pytest.raises(TypeError, match="client"):
        FixedWindowLimiter(object(), 1, 1)
    with pytest.raises(TypeError, match="pipeline"):
        FixedWindowLimiter(r.pipeline(), 1, 1).hit("k")
    with pytest.raises(TypeError, match="key part"):
        FixedWindowLimiter(r, 1, 1).hit(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefix"):
        FixedWindowLimiter(r, 1, 1, prefix="")


def test_huge_values(r) -> None:  # type: ignore[no-untyped-def]
    lim = FixedWindowLimiter(r, 2**53, 10**9)
    assert lim.hit("k", cost=2**52).remaining == 2**52
    tb = TokenBucketLimiter(r, rate=1e9, capacity=10**6)
    assert tb.hit("k", cost=10**6).allowed
    assert lim.hit("k", cost=2**60).retry_after == math.inf
    big = SlidingWindowLimiter(r, 1, 1e7)  # 115 days, in microseconds
    assert big.hit("k").allowed and 1e7 - 5 < big.hit("k").retry_after <= 1e7


@pytest.mark.parametrize("kind", KINDS)
def test_killed_connections_and_restart(private_server, kind: str) -> None:  # type: ignore[no-untyped-def]
    client = fastredis.Redis(port=private_server.port)
    lim = make(kind, client, limit=100)
    assert lim.hit("k").allowed
    other = redis.Redis(port=private_server.port)
    other.client_kill_filter(_type="normal", skipme=True)
    assert lim.hit("k").remaining == 98  # a stale pooled connection is replaced
    other.close()
    private_server.restart()  # no persistence: state and script cache are gone
    assert lim.hit("k").remaining == 99
    assert lim.hit_many(["k"] * 3)[-1].remaining == 96


def test_no_replay_after_the_request_was_sent(private_server) -> None:  # type: ignore[no-untyped-def]
    """A connection lost after sending is raised, never replayed (no double count)."""
    client = redis.Redis(port=private_server.port, socket_timeout=0.3)
    lim = FixedWindowLimiter(client, 100, 3600)
    lim.hit("k")
    private_server.pause()
    try:
        with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
            lim.hit("k")
    finally:
        private_server.resume()
    time.sleep(0.05)
    # The paused server ran the script once when resumed; the client, with
    # redis-py's default retry policy, did not send it a second time.
    assert lim.peek("k").remaining == 98
    client.close()
