"""TieredCache: API, L1 coherence through client tracking, stampede control,
faults (script flush, killed invalidation connection, restart), hostile input."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import threading
import time
from typing import Any, Iterator, List

import pytest
import redis

import fastredis
from fastredis.patterns.cache import TieredCache, parse_envelope

# Propagation of an invalidation is ~1 ms on an idle machine; the issue asks for
# 100 ms. On this shared 2-core box we allow 1 s before calling it a failure.
COHERENCE_DEADLINE = 1.0

FORK = mp.get_context("fork")


def wait_for(pred: Any, timeout: float = COHERENCE_DEADLINE) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():
            return time.monotonic() - start
        time.sleep(0.002)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def cache(any_client: redis.Redis) -> Iterator[TieredCache]:
    with TieredCache(any_client, prefix="t", ttl=60, local_ttl=30) as c:
        assert c.tracking
        yield c


def run_threads(target: Any, n: int, timeout: float = 30) -> None:
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive()


def in_l1(c: TieredCache, key: Any, value: Any) -> None:
    """Read ``key`` until L1 holds ``value``: a set's own tracking echo may evict
    the first copy L1 took (harmless, but tests asserting L1 state must wait)."""
    from fastredis.patterns.cache import _canonical

    wait_for(lambda: c.get(key) == value and _canonical(key) in c._l1 and c.get(key) == value)


def _vkey(c: TieredCache, key: Any) -> str:
    from fastredis.patterns.cache import _canonical

    return c._vkey(_canonical(key))


# ---------------------------------------------------------------- basic API


def test_get_set_delete_and_cached_none(cache: TieredCache) -> None:
    assert cache.get("a") is None
    assert cache.get("a", "miss") == "miss"
    cache.set("a", {"x": [1, 2.5, "é"]})
    assert cache.get("a") == {"x": [1, 2.5, "é"]}
    in_l1(cache, "a", {"x": [1, 2.5, "é"]})
    cache.set("none", None)
    assert cache.get("none", "miss") is None
    assert cache.get("none", "miss") is None  # L1 hit keeps the cached None
    assert cache.delete("a", "none", "zzz") == 2
    assert cache.get("a", "miss") == "miss"
    assert cache.get("none", "miss") == "miss"


def test_decoded_and_resp2_clients(redis_url: str) -> None:
    for kw in ({"decode_responses": True}, {"protocol": 2}, {"protocol": 2, "decode_responses": True}):
        client = fastredis.Redis.from_url(redis_url, **kw)
        client.flushdb()
        with TieredCache(client, prefix="d", ttl=60) as c:
            c.set("k", ["v", None], tags=["g"])
            assert c.get("k") == ["v", None]
            assert c.get("k") == ["v", None]
            c.invalidate_tags("g")
            assert c.get("k", "miss") == "miss"
            assert c.get_or_set("k", lambda: 7) == 7
            assert c.get_many(["k", "x"]) == {"k": 7}
        client.close()


def test_get_many_set_many(cache: TieredCache) -> None:
    cache.set_many({"a": 1, "b": None, b"c": "C", 5: [5]})
    got = cache.get_many(["a", "b", "c", "5", "zz"])
    assert got == {"a": 1, "b": None, "c": "C", "5": [5]}
    # second call: served from L1, same result
    assert cache.get_many(["a", "b", "c", "5", "zz"]) == got
    assert cache.get_many([]) == {}
    cache.set_many({})


def test_bytes_int_and_str_keys_are_one_entry(cache: TieredCache) -> None:
    cache.set(b"k\xff", 1)
    assert cache.get("k\udcff") == 1
    cache.set(12, "twelve")
    assert cache.get("12") == "twelve"
    with pytest.raises(TypeError, match="key"):
        cache.get(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        cache.set(None, 1)  # type: ignore[arg-type]


def test_ttls(any_client: redis.Redis) -> None:
    with TieredCache(any_client, prefix="ttl", ttl=0.3, local_ttl=10) as c:
        c.set("k", 1)
        assert c.get("k") == 1
        assert c.get("k") == 1
        # L1 entries never outlive the L2 entry they copy
        time.sleep(0.45)
        assert c.get("k", "expired") == "expired"
        c.set("k2", 2, ttl=5)
        pttl = any_client.pttl(_vkey(c, "k2"))
        assert 4000 < pttl <= 5000
    with TieredCache(any_client, prefix="ttl2", ttl=60, local_ttl=0.2) as c:
        c.set("k", 1)
        in_l1(c, "k", 1)
        time.sleep(0.3)
        any_client.set(_vkey(c, "k"), b"2")  # bare payload written behind our back...
        assert c.get("k") == 2  # ...seen (by tracking or by the expired L1 entry)


def test_bad_arguments(any_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="ttl"):
        TieredCache(any_client, ttl=0)
    with pytest.raises(ValueError, match="ttl"):
        TieredCache(any_client, ttl=float("nan"))
    with pytest.raises(ValueError, match="local_maxsize"):
        TieredCache(any_client, local_maxsize=-1)
    with pytest.raises(ValueError, match="prefix"):
        TieredCache(any_client, prefix="")
    with pytest.raises(TypeError, match="client"):
        TieredCache(None)
    with TieredCache(any_client, prefix="bad") as c:
        with pytest.raises(ValueError, match="ttl"):
            c.set("k", 1, ttl=-1)
        with pytest.raises(ValueError, match="ttl"):
            c.set("k", 1, ttl=float("inf"))
        with pytest.raises(TypeError, match="tags"):
            c.set("k", 1, tags="single")
        with pytest.raises(TypeError, match="loader"):
            c.get_or_set("k", 5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="writer"):
            c.set_through("k", 1, None)  # type: ignore[arg-type]


def test_l1_is_bounded(any_client: redis.Redis) -> None:
    with TieredCache(any_client, prefix="b", ttl=60, local_maxsize=5) as c:
        c.set_many({f"k{i}": i for i in range(20)})
        for i in range(20):
            assert c.get(f"k{i}") == i
        assert len(c._l1) <= 5


def test_local_maxsize_zero_disables_l1(any_client: redis.Redis) -> None:
    with TieredCache(any_client, prefix="n", local_maxsize=0) as c:
        assert c._thread is None and not c.tracking
        c.set("k", 1)
        assert c.get("k") == 1 and c.get("k") == 1
        assert len(c._l1) == 0


# ------------------------------------------------------------- coherence


def _write_from_other_process(url: str, key: str, payload: bytes) -> None:
    r = redis.Redis.from_url(url)
    r.set(key, payload)
    r.close()


@pytest.mark.parametrize("key", ["plain", "a:b*c?[d]{e}", "cr\r\nlf sp", b"\xff\xfe"])
def test_write_from_other_process_reaches_l1(any_client: redis.Redis, redis_url: str, key: Any) -> None:
    with TieredCache(any_client, prefix="coh", ttl=60, local_ttl=60) as c:
        c.set(key, "old")
        in_l1(c, key, "old")
        # a redis-cli style write: a bare JSON payload from another process
        p = FORK.Process(target=_write_from_other_process, args=(redis_url, _vkey(c, key), b'"new"'))
        p.start()
        p.join(10)
        assert p.exitcode == 0
        latency = wait_for(lambda: c.get(key) == "new")
        assert latency < COHERENCE_DEADLINE


def test_tag_invalidation_reaches_every_l1(redis_url: str) -> None:
    clients = [fastredis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)]
    clients[0].flushdb()
    caches = [TieredCache(cl, prefix="tags", ttl=60, local_ttl=60) for cl in clients]
    try:
        caches[0].set("u1", "one", tags=["users", "team:{1}"])
        caches[0].set("u2", "two", tags=["users"])
        caches[0].set("other", "x", tags=["misc"])
        for c in caches:
            in_l1(c, "u1", "one")
            in_l1(c, "u2", "two")
            in_l1(c, "other", "x")
        with TieredCache(redis.Redis.from_url(redis_url), prefix="tags") as third:
            third.invalidate_tags("users")
        for c in caches:
            wait_for(lambda: c.get("u1", "miss") == "miss")
            assert c.get("u2", "miss") == "miss"
            assert c.get("other") == "x"
        # a re-set after invalidation is valid again, under the new tag version
        caches[1].set("u1", "again", tags=["users"])
        for c in caches:
            assert wait_for(lambda: c.get("u1") == "again") < COHERENCE_DEADLINE
        caches[0].invalidate_tags("team:{1}", "nothing-tagged")
        assert caches[1].get("u1") == "again"  # u1 no longer carries team:{1}
    finally:
        for c in caches:
            c.close()
        for cl in clients:
            cl.close()


def test_get_racing_an_invalidation_does_not_store_stale(redis_url: str) -> None:
    """The L2 reply is delayed until a newer write's invalidation has been processed:
    L1 must not keep the stale value it carries."""
    writer = redis.Redis.from_url(redis_url)
    writer.flushdb()
    holder: dict = {}

    class Slow(redis.Redis):
        def execute_command(self, *args: Any, **options: Any) -> Any:
            reply = super().execute_command(*args, **options)
            if holder.get("armed") and args[0] == "EVALSHA":
                holder["armed"] = False
                c = holder["cache"]
                writer.set(_vkey(c, "k"), b'"new"')
                wait_for(lambda: c._inflight.get(_vkey(c, "k")) is None)
            return reply

    client = Slow.from_url(redis_url)
    with TieredCache(client, prefix="race", ttl=60, local_ttl=60) as c:
        holder["cache"] = c
        c.set("k", "old")
        time.sleep(0.05)  # let our own write's invalidation pass
        holder["armed"] = True
        assert c.get("k") == "old"  # the raced read returns what it read...
        assert "k" not in c._l1  # ...but does not cache it
        assert c.get("k") == "new"
    client.close()
    writer.close()


def test_flushall_clears_l1(cache: TieredCache, any_client: redis.Redis) -> None:
    cache.set("k", 1)
    in_l1(cache, "k", 1)
    any_client.flushall()
    wait_for(lambda: "k" not in cache._l1)
    assert cache.get("k", "miss") == "miss"


def _tracking_client_id(r: redis.Redis) -> int:
    for c in r.client_list():
        flags = c.get("flags", "")
        flags = flags.decode() if isinstance(flags, bytes) else flags
        if "t" in flags:
            return int(c["id"])
    raise AssertionError("no tracking connection found")


def test_killed_invalidation_connection_flushes_l1(private_server: Any) -> None:
    r = redis.Redis(port=private_server.port)
    with TieredCache(fastredis.Redis(port=private_server.port), prefix="kill", ttl=60, local_ttl=60) as c:
        c.set("k", "old")
        in_l1(c, "k", "old")
        # kill the tracking connection and write in the same server-side
        # sequence: the write's invalidation can never reach this L1
        p = r.pipeline(transaction=False)
        p.execute_command("CLIENT KILL", "ID", _tracking_client_id(r))
        p.set(_vkey(c, "k"), b'"new"')
        p.execute()
        wait_for(lambda: c.get("k") == "new")
        wait_for(lambda: c.tracking)
        assert c.tracking_failures >= 1
        # after the reconnect L1 works and is coherent again
        assert c.get("k") == "new" and c.get("k") == "new"
        r.set(_vkey(c, "k"), b'"newer"')
        wait_for(lambda: c.get("k") == "newer")
        # CLIENT KILL TYPE normal (every connection) also leaves no stale L1
        r.execute_command("CLIENT KILL TYPE normal")
        r.set(_vkey(c, "k"), b'"newest"')
        wait_for(lambda: c.get("k") == "newest")
    r.close()


def test_server_restart(private_server: Any) -> None:
    client = fastredis.Redis(port=private_server.port)
    with TieredCache(client, prefix="rs", ttl=60, local_ttl=60) as c:
        c.set("k", "before", tags=["t"])
        in_l1(c, "k", "before")
        private_server.restart()
        r = redis.Redis(port=private_server.port)
        # the restarted server lost the data: L1 must not serve "before"
        wait_for(lambda: c.get("k", "miss") == "miss", timeout=10)
        r.set(_vkey(c, "k"), b'"after"')
        wait_for(lambda: c.get("k") == "after", timeout=10)
        wait_for(lambda: c.tracking, timeout=10)
        c.set("k", "tagged", tags=["t"])
        assert c.get("k") == "tagged"
        c.invalidate_tags("t")
        assert c.get("k", "miss") == "miss"
        assert c.get_or_set("k", lambda: "loaded") == "loaded"
        r.close()
    client.close()


def test_script_flush(cache: TieredCache, any_client: redis.Redis) -> None:
    cache.set("k", 1, tags=["t"])
    any_client.script_flush()
    assert cache.get("k") == 1
    any_client.script_flush()
    cache.invalidate_tags("t")
    any_client.script_flush()
    assert cache.get_or_set("k", lambda: 2) == 2
    any_client.script_flush()
    cache.set_many({"a": 1, "b": 2})
    any_client.script_flush()
    cache.clear_local()
    assert cache.get_many(["a", "b"]) == {"a": 1, "b": 2}


# --------------------------------------------------------------- stampede


def test_stampede_threads_load_once(any_client: redis.Redis) -> None:
    calls = []
    barrier = threading.Barrier(64)
    results = []

    def loader() -> str:
        calls.append(1)
        time.sleep(0.2)
        return "value"

    with TieredCache(any_client, prefix="st", ttl=60) as c:

        def worker() -> None:
            barrier.wait()
            results.append(c.get_or_set("cold", loader))

        run_threads(worker, 64)
        assert len(calls) == 1
        assert results == ["value"] * 64


def _stampede_child(url: str, counter_key: str, barrier: Any, out: Any) -> None:
    r = fastredis.Redis.from_url(url)

    def loader() -> dict:
        r.incr(counter_key)
        time.sleep(0.2)
        return {"v": 1}

    got = []
    with TieredCache(r, prefix="stp", ttl=60) as c:
        barrier.wait()
        run_threads(lambda: got.append(c.get_or_set("cold", loader)), 8)
    out.put(got)
    r.close()


def test_stampede_processes_load_once(r: redis.Redis, redis_url: str) -> None:
    """8 processes x 8 threads = 64 callers on one cold key: one load in the fleet."""
    barrier = FORK.Barrier(8)
    out = FORK.Queue()
    procs = [FORK.Process(target=_stampede_child, args=(redis_url, "loads", barrier, out)) for _ in range(8)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert int(r.get("loads")) == 1
    assert [v for res in results for v in res] == [{"v": 1}] * 64


def _die_holding_lease(url: str) -> None:
    c = TieredCache(redis.Redis.from_url(url), prefix="lease", ttl=60, lease_ttl=1.0, local_maxsize=0)

    def loader() -> None:
        os._exit(3)  # the loader's process dies with the lease held

    c.get_or_set("k", loader)


def test_lease_expiry_lets_another_take_over(r: redis.Redis, redis_url: str) -> None:
    p = FORK.Process(target=_die_holding_lease, args=(redis_url,))
    p.start()
    p.join(10)
    assert p.exitcode == 3
    with TieredCache(r, prefix="lease", ttl=60, lease_ttl=1.0) as c:
        assert r.exists(c._lkey("k"))
        start = time.monotonic()
        assert c.get_or_set("k", lambda: "taken over") == "taken over"
        waited = time.monotonic() - start
        assert 0.05 < waited < 5  # waited for the dead holder's lease to expire
        assert not r.exists(c._lkey("k"))  # our lease was released with the store


def test_loader_error_releases_lease_and_reaches_followers(cache: TieredCache, any_client: redis.Redis) -> None:
    errors = []
    barrier = threading.Barrier(4)

    def loader() -> None:
        time.sleep(0.1)
        raise KeyError("db down")

    def worker() -> None:
        barrier.wait()
        try:
            cache.get_or_set("k", loader)
        except KeyError as e:
            errors.append(e)

    run_threads(worker, 4)
    assert len(errors) == 4
    assert not any_client.exists(cache._lkey("k"))
    assert cache.get_or_set("k", lambda: "ok") == "ok"


def test_negative_caching(cache: TieredCache, any_client: redis.Redis) -> None:
    calls = []

    def loader() -> None:
        calls.append(1)
        return None

    assert cache.get_or_set("n1", loader) is None
    assert cache.get_or_set("n1", loader) is None
    assert len(calls) == 1
    assert cache.get_or_set("n2", loader, negative_ttl=0) is None
    assert cache.get_or_set("n2", loader, negative_ttl=0) is None
    assert len(calls) == 3
    assert cache.get_or_set("n3", loader, ttl=60, negative_ttl=2) is None
    assert 1000 < any_client.pttl(_vkey(cache, "n3")) <= 2000


def test_xfetch_refreshes_hot_key_early(any_client: redis.Redis) -> None:
    with TieredCache(any_client, prefix="xf", ttl=60, local_maxsize=0, beta=1e6) as c:
        calls = []

        def loader() -> int:
            calls.append(1)
            time.sleep(0.05)
            return len(calls)

        assert c.get_or_set("hot", loader, ttl=30) == 1
        stored, delta, _ = parse_envelope(any_client.get(_vkey(c, "hot")))
        assert stored == b"1" and delta >= 0.04
        # with a huge beta the next read is (almost surely) an early refresh
        assert c.get_or_set("hot", loader, ttl=30) == 2
        assert len(calls) == 2
    with TieredCache(any_client, prefix="xf0", ttl=60, local_maxsize=0, beta=0) as c:
        calls.clear()
        c.get_or_set("hot", loader, ttl=30)
        for _ in range(20):
            assert c.get_or_set("hot", loader, ttl=30) == 1  # beta=0: never early
        assert len(calls) == 1


def test_early_refresh_failure_serves_old_value(any_client: redis.Redis) -> None:
    with TieredCache(any_client, prefix="xf2", ttl=60, local_maxsize=0, beta=1e6) as c:
        c.get_or_set("hot", lambda: (time.sleep(0.02), "old")[1])

        def broken() -> str:
            raise RuntimeError("source down")

        assert c.get_or_set("hot", broken) == "old"
        assert not any_client.exists(c._lkey("hot"))


def test_tag_invalidated_entry_is_reloaded_by_get_or_set(cache: TieredCache) -> None:
    cache.set("k", "old", tags=["t"])
    cache.invalidate_tags("t")
    assert cache.get_or_set("k", lambda: "new", tags=["t"]) == "new"
    assert cache.get("k") == "new"


def test_invalidation_during_load_is_not_cached(cache: TieredCache) -> None:
    """A tag invalidated while the loader runs (its data changed meanwhile):
    the caller gets the loaded value, but the cache must not keep it."""

    def loader() -> str:
        value = "read before the change"
        cache.invalidate_tags("t")  # the source changed and was invalidated
        return value

    assert cache.get_or_set("k", loader, tags=["t"]) == "read before the change"
    assert cache.get("k", "miss") == "miss"
    assert cache.get_or_set("k", lambda: "fresh", tags=["t"]) == "fresh"
    assert cache.get("k") == "fresh"
    with pytest.raises(TypeError, match="tags"):
        cache.get_or_set("k2", lambda: 1, tags="t")


# ----------------------------------------------------------- write-through


def test_set_through_order_and_invalidation(cache: TieredCache) -> None:
    cache.set("user:1", "old")
    cache.set("users:list", ["old"])
    assert cache.get("user:1") == "old" and cache.get("users:list") == ["old"]
    seen_during_write = []
    db = {}

    def writer(value: Any) -> str:
        seen_during_write.append(cache.get("user:1"))  # the cache is updated after the write
        db["user:1"] = value
        return "written"

    assert cache.set_through("user:1", "new", writer, invalidate=["users:list"]) == "written"
    assert seen_during_write == ["old"]
    assert db == {"user:1": "new"}
    assert cache.get("user:1") == "new"
    assert cache.get("users:list", "miss") == "miss"

    def failing(value: Any) -> None:
        raise IOError("source down")

    with pytest.raises(IOError):
        cache.set_through("user:1", "lost", failing)
    assert cache.get("user:1") == "new"  # writer failed: cache untouched
    with pytest.raises(ValueError, match="NaN"):
        cache.set_through("user:1", float("nan"), writer)
    assert db == {"user:1": "new"}  # bad value rejected before the writer ran


# --------------------------------------------------------------- decorator


def test_cached_decorator(cache: TieredCache) -> None:
    calls = []

    @cache.cached(ttl=60)
    def area(w: int, h: int = 1) -> int:
        calls.append((w, h))
        return w * h

    assert area(2, h=3) == 6 and area(2, h=3) == 6 and area(2, 3) == 6
    assert area(4) == 4
    assert calls == [(2, 3), (2, 3), (4, 1)]  # positional vs keyword are distinct keys
    assert area.invalidate(4) == 1
    assert area(4) == 4 and len(calls) == 4
    assert area.__name__ == "area"

    @cache.cached(key=lambda uid: f"user:{uid}", tags=["users"])
    def user(uid: int) -> dict:
        calls.append(uid)
        return {"id": uid}

    assert user(1) == {"id": 1} and user(1) == {"id": 1}
    assert cache.get("user:1") == {"id": 1}
    cache.invalidate_tags("users")
    assert user(1) == {"id": 1}
    assert calls.count(1) == 2
    with pytest.raises(TypeError, match="key="):
        area(object())


def test_warm(cache: TieredCache) -> None:
    assert cache.warm({"a": 1, "b": 2}) == 2
    loaded = []
    assert cache.warm(["a", "c", "d"], loader=lambda k: loaded.append(k) or k * 2) == 2
    assert loaded == ["c", "d"]
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": "cc", "d": "dd"}
    with pytest.raises(TypeError, match="loader"):
        cache.warm(["x"])


# ---------------------------------------------------------------- hostile


def test_nan_and_inf_are_never_stored(cache: TieredCache, any_client: redis.Redis) -> None:
    for bad in (float("nan"), float("inf"), [1.0, float("nan")], {"a": {"b": float("-inf")}}):
        with pytest.raises(ValueError, match="NaN|infinity"):
            cache.set("k", bad)
        with pytest.raises(ValueError):
            cache.set_many({"ok": 1, "k": bad})
        with pytest.raises(ValueError):
            cache.get_or_set("k", lambda: bad)
    assert not any_client.exists(_vkey(cache, "k"), _vkey(cache, "ok"))
    assert not any_client.exists(cache._lkey("k"))  # the failed load released its lease
    with pytest.raises(TypeError, match="JSON"):
        cache.set("k", object())
    cache.set("k", [None, 1e308, -0.0])
    assert cache.get("k") == [None, 1e308, -0.0]


def test_hostile_keys_tags_and_values(cache: TieredCache, any_client: redis.Redis) -> None:
    keys = ["*", "?", "[", "]", "{", "}", ":", "a:{b}*", "\r\n", " ", "", "%", "%41", b"\xff\x00", "é"]
    for i, k in enumerate(keys):
        cache.set(k, i, tags=[k if isinstance(k, str) else "bytes"])
    for i, k in enumerate(keys):
        assert cache.get(k) == i
        assert cache.get(k) == i
    assert len({_vkey(cache, k) for k in keys}) == len(keys)
    # every stored key stays inside the cache's hash tag
    for name in any_client.keys("*"):
        name = name.decode() if isinstance(name, bytes) else name
        assert name.startswith("{t}:")
    cache.invalidate_tags("a:{b}*")
    assert cache.get("a:{b}*", "miss") == "miss"
    assert cache.get("*") == 0
    huge = "x" * (8 * 1024 * 1024)
    cache.set("huge", huge)
    assert cache.get("huge") == huge
    cache.set("text", "\x00\r\nnon-ascii ü 𝄞")
    assert cache.get("text") == "\x00\r\nnon-ascii ü 𝄞"
    with pytest.raises(TypeError):
        cache.set("surrogate", "\udcff")  # not encodable as UTF-8 JSON


def test_corrupt_and_foreign_payloads_are_misses(cache: TieredCache, any_client: redis.Redis) -> None:
    any_client.set(_vkey(cache, "garbage"), b"\xff\x00not json")
    assert cache.get("garbage", "miss") == "miss"
    any_client.set(_vkey(cache, "badhdr"), b"FRC1 x y\nzz")
    assert cache.get("badhdr", "miss") == "miss"
    any_client.set(_vkey(cache, "trunc"), b"FRC1 0 3\nonly 1\n")
    assert cache.get("trunc", "miss") == "miss"
    any_client.hset(_vkey(cache, "hash"), "f", "v")
    assert cache.get("hash", "miss") == "miss"
    assert cache.get_many(["garbage", "hash"]) == {}
    # get_or_set repairs corrupt and foreign entries
    assert cache.get_or_set("garbage", lambda: 1) == 1
    assert cache.get_or_set("hash", lambda: 2) == 2
    assert cache.get("hash") == 2
    # a pickle-looking payload is just bytes that do not decode: a miss, no code runs
    any_client.set(_vkey(cache, "pickle"), b"\x80\x04\x95\x00cos\nsystem\n")
    assert cache.get("pickle", "miss") == "miss"


def test_custom_serializer(any_client: redis.Redis) -> None:
    class Upper:
        def dumps(self, v: Any) -> bytes:
            return str(v).upper().encode()

        def loads(self, b: Any) -> Any:
            return b.decode() if isinstance(b, bytes) else b

    with TieredCache(any_client, prefix="ser", serializer=Upper()) as c:
        c.set("k", "abc")
        assert c.get("k") == "ABC"
    with pytest.raises(ValueError, match="serializer"):
        TieredCache(any_client, serializer="pickle")


# ------------------------------------------------------------- fork, close


def _child_after_fork(cache: TieredCache, url: str, out: Any) -> None:
    try:
        assert len(cache._l1) == 0 and not cache.tracking  # nothing inherited
        assert cache.get("k") == "parent"
        deadline = time.monotonic() + 5
        while not cache.tracking and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cache._thread is not None and cache._thread.is_alive()
        deadline = time.monotonic() + 5
        while not (cache.get("k") == "parent" and "k" in cache._l1) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "k" in cache._l1
        redis.Redis.from_url(url).set(cache._vkey("k"), b'"changed"')
        deadline = time.monotonic() + COHERENCE_DEADLINE
        while cache.get("k") != "changed" and time.monotonic() < deadline:
            time.sleep(0.002)
        out.put(cache.get("k"))
        cache.close()
    except BaseException as e:
        out.put(repr(e))


def test_fork_child_gets_its_own_tracking(r: redis.Redis, redis_url: str) -> None:
    with TieredCache(fastredis.Redis.from_url(redis_url), prefix="fork", ttl=60) as c:
        c.set("k", "parent")
        in_l1(c, "k", "parent")
        out = FORK.Queue()
        p = FORK.Process(target=_child_after_fork, args=(c, redis_url, out))
        p.start()
        assert out.get(timeout=20) == "changed"
        p.join(10)
        assert p.exitcode == 0
        # the parent's tracking connection survived the child's exit
        assert c.tracking
        assert wait_for(lambda: c.get("k") == "changed") < COHERENCE_DEADLINE


def test_close_stops_thread(any_client: redis.Redis) -> None:
    c = TieredCache(any_client, prefix="cl")
    t = c._thread
    assert t is not None and t.is_alive()
    c.set("k", 1)
    assert c.get("k") == 1
    c.close()
    c.close()
    assert not t.is_alive()
    assert not c.tracking and len(c._l1) == 0
    assert c._thread is None
    # a closed cache refuses use instead of silently working on
    for use in (lambda: c.get("k"), lambda: c.set("k", 2), lambda: c.get_or_set("k", lambda: 3),
                lambda: c.get_many(["k"]), lambda: c.delete("k"), lambda: c.invalidate_tags("t")):
        with pytest.raises(fastredis.ClosedError, match="closed"):
            use()


def _tracking_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fastredis-cache-tracking-gc") and t.is_alive()]


def _tracking_connections(r: redis.Redis) -> int:
    return sum(1 for c in r.client_list() if "t" in str(c.get("flags", "")))


def test_dropped_caches_leak_no_thread_or_connection(private_server: Any) -> None:
    """Caches never closed: once collected, their threads end and the server
    sees their tracking connections go (issue 12, item 9)."""
    observer = redis.Redis(port=private_server.port)
    client = fastredis.Redis(port=private_server.port)
    caches = [TieredCache(client, prefix=f"gc{i}") for i in range(5)]
    assert all(c.tracking for c in caches)
    assert len(_tracking_threads()) == 5 and _tracking_connections(observer) == 5
    caches[0].set("k", 1)
    assert caches[0].get("k") == 1
    del caches
    gc.collect()
    wait_for(lambda: not _tracking_threads(), timeout=10)
    wait_for(lambda: _tracking_connections(observer) == 0, timeout=10)
    observer.close()
    client.close()


def test_no_stale_l1_while_the_server_stays_down(private_server: Any) -> None:
    """Once the tracking connection is lost and the server does not come back,
    get() must not return the old L1 value (issue 12: a missing test)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = fastredis.Redis(port=private_server.port, socket_timeout=0.5, socket_connect_timeout=0.5,
                             retry=Retry(NoBackoff(), 1))
    with TieredCache(client, prefix="down", ttl=60, local_ttl=60) as c:
        c.set("k", "old")
        in_l1(c, "k", "old")
        private_server.stop()
        wait_for(lambda: not c.tracking, timeout=10)
        for _ in range(3):
            try:
                got = c.get("k", "miss")
            except (redis.ConnectionError, redis.TimeoutError):
                continue  # L2 unreachable: an error, never the stale L1 copy
            assert got != "old"
        assert "k" not in c._l1
    client.close()
