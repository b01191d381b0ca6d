"""The threats of SECURITY.md that no other test file covers, one test (or a
few) per threat: the client (TLS verification, credentials, a hostile
server), the throwaway-server harness, rate limiters (memory per key, the
clock, cost, escaping), caches (tenants, payload size), locks (forged
tokens), streams (dead-letter bound) and the limits on untrusted input.

Every test runs in the default test run against real redis-server processes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import ssl
import threading
import time
import tracemalloc
import traceback
import warnings
from typing import Any, Iterator, List

import hiredis
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

import fastredis
import fastredis.asyncio
from fastredis.keys import KeySpace, escape_part, max_key_part, set_max_key_part
from fastredis.patterns.lock import Lock, LockNotOwnedError
from fastredis.server import InsecureServerWarning, RedisServer, is_loopback

# -- the client: TLS verification -----------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server() -> Iterator[RedisServer]:
    if os.environ.get("FASTREDIS_REDIS_URL"):
        pytest.skip("needs a private redis-server; FASTREDIS_REDIS_URL is set")
    with RedisServer(tls=True) as server:
        yield server


def test_tls_certificates_are_verified_by_default(tls_server: RedisServer) -> None:
    host, port = tls_server.host, tls_server.port
    # No CA given: the throwaway CA is not trusted, so the handshake fails
    # (ssl_cert_reqs="required" and hostname checks, as in redis-py).
    for make in (
        lambda: fastredis.Redis(host=host, port=port, ssl=True, retry=None, socket_timeout=5),
        lambda: fastredis.Redis.from_url(tls_server.tls_url, retry=None, socket_timeout=5),
    ):
        client = make()
        conn = client.connection_pool.make_connection()
        assert conn.cert_reqs == ssl.CERT_REQUIRED and conn.check_hostname
        with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            client.ping()
        client.close()
    # The CA named: verified, works. Opting out is explicit.
    assert fastredis.Redis(host=host, port=port, ssl=True, ssl_ca_certs=tls_server.ca_file).ping()
    assert fastredis.Redis(host=host, port=port, ssl=True, ssl_cert_reqs="none").ping()


def test_tls_verification_in_the_asyncio_client(tls_server: RedisServer) -> None:
    async def main() -> None:
        plain = fastredis.asyncio.Redis(host=tls_server.host, port=tls_server.port, ssl=True, retry=None)
        with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await plain.ping()
        await plain.aclose()
        url = fastredis.asyncio.Redis.from_url(tls_server.tls_url, retry=None)
        with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await url.ping()
        await url.aclose()
        async with fastredis.asyncio.Redis(host=tls_server.host, port=tls_server.port, ssl=True,
                                           ssl_ca_certs=tls_server.ca_file) as ok:
            assert await ok.ping()

    asyncio.run(main())


# -- the client: credentials never in messages, repr() or logs ----------------------------------

PASSWORD = "pw-Secret-4e1d93"
ACL_USER = "acl-user-7f3a"
ACL_PASSWORD = "acl-Secret-90b2c7"
SECRETS = (PASSWORD, ACL_USER, ACL_PASSWORD)


@pytest.fixture(scope="module")
def auth_server() -> Iterator[RedisServer]:
    if os.environ.get("FASTREDIS_REDIS_URL"):
        pytest.skip("needs a private redis-server; FASTREDIS_REDIS_URL is set")
    with RedisServer(password=PASSWORD) as server:
        server.client().acl_setuser(ACL_USER, enabled=True, passwords=[f"+{ACL_PASSWORD}"], keys=["*"], commands=["+@all"])
        yield server


def _clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into: {text[:300]}"


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) + repr(exc) + str(exc)


def test_credentials_never_in_repr_errors_or_logs(auth_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    host, port = auth_server.host, auth_server.port
    good = [
        fastredis.Redis(host=host, port=port, password=PASSWORD),
        fastredis.Redis(host=host, port=port, username=ACL_USER, password=ACL_PASSWORD),
        fastredis.Redis.from_url(f"redis://{ACL_USER}:{ACL_PASSWORD}@{host}:{port}/0"),
        fastredis.Redis(host=host, port=port, username=ACL_USER, password=ACL_PASSWORD, protocol=2),
    ]
    for client in good:
        assert client.ping()
        pipe = client.pipeline()
        pipe.set("k", 1).incr("k").lpush("k", 1)  # the last one fails (WRONGTYPE): an annotated error
        with pytest.raises(redis.ResponseError) as info:
            pipe.execute()
        for text in (repr(client), str(client), repr(client.connection_pool), repr(pipe),
                     repr(client.connection_pool.get_connection()), _error_text(info.value)):
            _clean(text)
        client.close()
    bad = [
        fastredis.Redis(host=host, port=port, password="x" + PASSWORD, retry=None),
        fastredis.Redis(host=host, port=port, username=ACL_USER, password="x" + ACL_PASSWORD, retry=None),
        fastredis.Redis.from_url(f"redis://{ACL_USER}:x{ACL_PASSWORD}@{host}:{port}/0", retry=None),
        fastredis.Redis(host=host, port=port, username=ACL_USER, password="x" + ACL_PASSWORD, protocol=2, retry=None),
        fastredis.Redis(host=host, port=_closed_port(), username=ACL_USER, password=ACL_PASSWORD, retry=None),
        fastredis.Redis.from_url(f"redis://{ACL_USER}:{ACL_PASSWORD}@{host}:{_closed_port()}/0", retry=None),
    ]
    for client in bad:
        with pytest.raises(redis.RedisError) as info:
            client.ping()
        assert isinstance(info.value, (redis.AuthenticationError, redis.ConnectionError, redis.ResponseError))
        _clean(_error_text(info.value))
        _clean(repr(client))
    with pytest.raises(Exception) as cluster_info:  # RedisClusterException: no node reachable
        fastredis.RedisCluster(host=host, port=_closed_port(), username=ACL_USER, password=ACL_PASSWORD)
    _clean(_error_text(cluster_info.value))
    for record in caplog.records:
        _clean(record.getMessage())


def test_credentials_never_in_the_asyncio_client(auth_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    host, port = auth_server.host, auth_server.port

    async def main() -> None:
        async with fastredis.asyncio.Redis(host=host, port=port, username=ACL_USER, password=ACL_PASSWORD) as ok:
            assert await ok.ping()
            _clean(repr(ok))
            _clean(repr(ok.connection_pool))
        for client in (
            fastredis.asyncio.Redis(host=host, port=port, username=ACL_USER, password="x" + ACL_PASSWORD, retry=None),
            fastredis.asyncio.Redis.from_url(f"redis://{ACL_USER}:x{ACL_PASSWORD}@{host}:{port}/0", retry=None),
            fastredis.asyncio.Redis(host=host, port=_closed_port(), password=PASSWORD, retry=None),
        ):
            with pytest.raises(redis.RedisError) as info:
                await client.ping()
            _clean(_error_text(info.value))
            _clean(repr(client))
            await client.aclose()

    asyncio.run(main())
    for record in caplog.records:
        _clean(record.getMessage())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the client: a hostile server's replies ------------------------------------------------------


class HostileServer:
    """A TCP server that answers CLIENT (handshake) commands with +OK and the
    first other command with ``payload``, then keeps the connection open."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns: List[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        reader = hiredis.Reader()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                reader.feed(data)
                while True:
                    cmd = reader.gets()
                    if cmd is False:
                        break
                    if cmd[0].upper() in (b"CLIENT", b"SELECT"):
                        conn.sendall(b"+OK\r\n")
                    elif cmd[0].upper() == b"HELLO":
                        conn.sendall(b"%1\r\n+proto\r\n:3\r\n")
                    else:
                        conn.sendall(self.payload)
        except OSError:
            return

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


HOSTILE_REPLIES = {
    "unknown-type": b"?what\r\n",
    "bulk-over-512MiB": b"$9999999999\r\n",
    "array-count-over-2**32": b"*4294967297\r\n",
    "negative-length": b"$-7\r\n",
    "nesting-5000-deep": b"*1\r\n" * 5000,
    "bad-integer": b":12x\r\n",
    "huge-bulk-announced-then-stall": b"$536870912\r\n" + b"x" * 10,
    "huge-array-announced-then-stall": b"*2000000000\r\n:1\r\n",
    "cut-mid-line": b"+OK",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_REPLIES))
def test_hostile_server_replies_raise_quickly_without_memory(name: str) -> None:
    server = HostileServer(HOSTILE_REPLIES[name])
    try:
        # (plain redis-py with hiredis is no oracle here: for "*2000000000" hiredis
        # preallocates the whole list, 16 GB, before any element arrives)
        for protocol in (2, 3):
            client = fastredis.Redis(port=server.port, protocol=protocol, socket_timeout=1, retry=None)
            tracemalloc.start()
            started = time.monotonic()
            try:
                with pytest.raises(redis.RedisError):
                    client.get("k")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert time.monotonic() - started < 10, "a hostile reply must not hang the client"
            assert peak < 20_000_000, f"{peak} bytes allocated for a reply of {len(HOSTILE_REPLIES[name])} bytes"
            client.close()

        async def main() -> None:
            client = fastredis.asyncio.Redis(port=server.port, protocol=2, socket_timeout=1, retry=None)
            with pytest.raises(redis.RedisError):
                await asyncio.wait_for(client.get("k"), 10)
            await client.aclose()

        asyncio.run(main())
    finally:
        server.close()


# -- the throwaway-server harness ----------------------------------------------------------------


def test_harness_binds_loopback_unless_asked() -> None:
    import inspect

    from fastredis.server import RedisCluster, RedisSentinel

    for cls in (RedisServer, RedisSentinel, RedisCluster):
        assert inspect.signature(cls).parameters["host"].default == "127.0.0.1"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default binds warn about nothing
        with RedisServer() as server:
            bind = server.client().config_get("bind")["bind"]
            assert bind.split() == ["127.0.0.1"]
            other = _non_loopback_address()
            if other is not None:  # this machine's outside address does not reach the server
                with pytest.raises(OSError):
                    socket.create_connection((other, server.port), timeout=2).close()
        for host in ("::1", "localhost", "127.0.0.1"):
            RedisServer(host=host, start=False).stop()


def _non_loopback_address() -> Any:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if is_loopback(addr) else addr


def test_harness_warns_when_bound_elsewhere_without_password() -> None:
    for host in ("0.0.0.0", "::"):
        with pytest.warns(InsecureServerWarning, match="not a loopback address, without a password"):
            RedisServer(host=host, start=False).stop()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RedisServer(host="0.0.0.0", password="pw", start=False).stop()
    assert not is_loopback("0.0.0.0") and is_loopback("127.0.0.1") and is_loopback("::1")


def test_harness_password_stays_off_the_command_line(auth_server: RedisServer) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=auth_server.host, port=auth_server.port, retry=None).ping()
    assert auth_server.client().ping()
    assert PASSWORD not in repr(auth_server) and PASSWORD not in auth_server.url
    import psutil

    assert auth_server.pid is not None
    assert not any(PASSWORD in arg for arg in psutil.Process(auth_server.pid).cmdline())  # what `ps` shows
    conf = os.path.join(auth_server._dir, "auth.conf")
    assert os.stat(conf).st_mode & 0o077 == 0  # readable by its owner only
    auth_server.restart()
    assert auth_server.client().ping()


# -- rate limiters --------------------------------------------------------------------------------

KINDS = ["log", "ctr", "fix", "gcra"]


def _limiter(kind: str, client: Any, limit: int, window: float) -> Any:
    if kind == "log":
        return fastredis.SlidingWindowLimiter(client, limit, window)
    if kind == "ctr":
        return fastredis.SlidingWindowCounterLimiter(client, limit, window)
    if kind == "fix":
        return fastredis.FixedWindowLimiter(client, limit, window)
    return fastredis.TokenBucketLimiter(client, rate=limit / window, capacity=limit)


@pytest.mark.parametrize("kind", KINDS)
def test_limiter_keys_chosen_by_an_attacker_are_bounded_and_expire(r: Any, kind: str) -> None:
    lim = _limiter(kind, r, limit=5, window=1.0)
    keys = [f"attacker-{i}" for i in range(300)]
    for _ in range(4):  # 4 x 300 x 5 hits: 20 per key, four times the limit
        lim.hit_many(keys * 5)
    names = r.keys("*")
    assert 0 < len(names) <= 2 * len(keys)  # a bounded number of keys per limited key
    for name in names:
        ttl = r.pttl(name)
        assert ttl == -2 or 0 < ttl <= 2_100, (name, ttl)  # every key expires when idle (-2: already gone)
        assert (r.memory_usage(name) or 0) < 1024  # denied hits are not stored: memory per key is bounded
        if r.type(name) == b"zset":
            assert r.zcard(name) <= 5
    time.sleep(2.3)
    assert r.dbsize() == 0  # idle keys are gone


@pytest.mark.parametrize("kind", KINDS)
def test_limiters_read_the_server_clock_only(r: Any, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lim = _limiter(kind, r, limit=3, window=3600)
    assert [lim.hit("k").allowed for _ in range(4)] == [True, True, True, False]
    # The wait as the server's clock sees it (a sliding-window counter's can
    # exceed the window: the full previous window still weighs on the next one).
    wait = lim.peek("k").retry_after
    assert 0 < wait <= 2 * 3600
    for fake in (0.0, 4e9, -1e9):  # the client's clock jumps (or is set) far away
        monkeypatch.setattr(time, "time", lambda: fake)
        monkeypatch.setattr(time, "time_ns", lambda: int(fake * 1e9))
        d = lim.hit("k")
        assert not d.allowed and wait - 60 < d.retry_after <= wait
    monkeypatch.undo()
    assert not lim.hit("k").allowed


@pytest.mark.parametrize("kind", KINDS)
def test_limiter_cost_cannot_overflow(r: Any, kind: str) -> None:
    lim = _limiter(kind, r, limit=10, window=3600)
    assert lim.hit("k", cost=4).remaining == 6
    for cost in (2**63, 2**64 + 1, 10**30):
        d = lim.hit("k", cost=cost)
        assert not d.allowed and d.retry_after == math.inf  # more than the limit: nothing consumed
    for cost, error in ((0, ValueError), (-1, ValueError), (-(2**63), ValueError), (1.5, TypeError),
                        (float("inf"), TypeError), (float("nan"), TypeError), (True, TypeError), ("1", TypeError)):
        with pytest.raises(error):
            lim.hit("k", cost=cost)
    assert lim.hit("k", cost=6).allowed and not lim.hit("k").allowed  # exactly the 6 left


@settings(max_examples=300)
@given(st.lists(st.one_of(st.text(), st.binary(), st.integers(min_value=0)), min_size=1, max_size=3),
       st.lists(st.one_of(st.text(), st.binary(), st.integers(min_value=0)), min_size=1, max_size=3))
def test_keys_never_collide_after_escaping(a: List[Any], b: List[Any]) -> None:
    ks = KeySpace("rl")
    same = [escape_part(x) for x in a] == [escape_part(x) for x in b]
    assert (ks.key(*a) == ks.key(*b)) == same
    assert (ks.tagged(*a) == ks.tagged(*b)) == same
    # equal escapes only for the same part (str, its UTF-8 bytes and a decimal int coincide by design)
    for x, y in zip(a, b):
        if escape_part(x) == escape_part(y):
            canon = [v.encode("utf-8", "surrogateescape") if isinstance(v, str) else str(v).encode() if isinstance(v, int) else v
                     for v in (x, y)]
            assert canon[0] == canon[1]
    for k in (ks.key(*a), ks.tagged(*a)):
        body = k[len("rl:"):].replace("{", "", 1).replace("}", "", 1) if "{" in k else k[len("rl:"):]
        assert not set(body) & set("*?[]{} \r\n\\") and body.isascii()


# -- caches ------------------------------------------------------------------------------------


def test_cache_tenants_sharing_a_server_are_isolated(r: Any) -> None:
    prefixes = ["tenant-a", "tenant-b", "tenant-a:v", "tenant-a}:v:{x", "*"]
    caches = [fastredis.TieredCache(r, prefix=p) for p in prefixes]
    try:
        for i, c in enumerate(caches):
            c.set("shared-key", i, tags=["t"])
        for i, c in enumerate(caches):
            assert c.get("shared-key") == i and c.get_or_set("shared-key", lambda: "poisoned") == i
        caches[0].invalidate_tags("t")
        caches[1].delete("shared-key")
        assert caches[0].get("shared-key", "miss") == "miss" and caches[1].get("shared-key", "miss") == "miss"
        assert [c.get("shared-key") for c in caches[2:]] == [2, 3, 4]
        tags = {k.split(b"}", 1)[0] + b"}" for k in r.keys("*")}
        assert tags == {b"{" + escape_part(p).encode() + b"}" for p in prefixes}  # one own hash tag per tenant
    finally:
        for c in caches:
            c.close()


def test_cache_payload_size_is_bounded_both_ways(r: Any) -> None:
    from fastredis.patterns.cache import DEFAULT_MAX_VALUE_BYTES

    with fastredis.TieredCache(r, prefix="big") as default:
        assert default.max_value_bytes == DEFAULT_MAX_VALUE_BYTES == 16 << 20
    with fastredis.TieredCache(r, prefix="c", max_value_bytes=1000) as cache:
        cache.set("ok", "x" * 990)
        with pytest.raises(ValueError, match=r"over max_value_bytes=1000 .*max_value_bytes="):
            cache.set("big", "x" * 1000)
        with pytest.raises(ValueError, match="max_value_bytes=1000"):
            cache.set_many({"a": 1, "big": "x" * 5000})
        with pytest.raises(ValueError, match="max_value_bytes=1000"):
            cache.get_or_set("loaded", lambda: "x" * 5000)
        assert cache.get("big", "miss") == "miss" and cache.get("a", "miss") == "miss"
        assert cache.get_or_set("loaded", lambda: "small") == "small"  # the lease was released
        # a larger value written by someone else (another tenant, a bigger limit) is
        # a miss, never deserialised
        with fastredis.TieredCache(r, prefix="c", max_value_bytes=10**6, local_maxsize=0) as writer:
            writer.set("from-elsewhere", "y" * 50_000)
        assert cache.get("from-elsewhere", "miss") == "miss"
        assert cache.get_many(["ok", "from-elsewhere"]) == {"ok": "x" * 990}
    for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="max_value_bytes"):
            fastredis.TieredCache(r, max_value_bytes=bad)


def test_cache_payload_limit_in_the_asyncio_twin(redis_url: str) -> None:
    async def main() -> None:
        async with fastredis.asyncio.Redis.from_url(redis_url) as client:
            await client.flushdb()
            cache = fastredis.asyncio.TieredCache(client, prefix="ac", max_value_bytes=100)
            try:
                with pytest.raises(ValueError, match="max_value_bytes=100"):
                    await cache.set("big", "x" * 200)
                await client.set("{ac}:v:x", b"y" * 500)  # a foreign, oversized payload
                assert await cache.get("x", "miss") == "miss"
            finally:
                await cache.aclose()

    asyncio.run(main())


# -- locks --------------------------------------------------------------------------------------


def test_forged_lock_tokens_release_and_extend_nothing(any_client: Any) -> None:
    holder = Lock(any_client, "job", ttl=30)
    assert holder.acquire(blocking=False)
    assert len(holder.token) == 32 and int(holder.token, 16) >= 0  # 128 random bits
    real = holder.token
    forged = [real[:-1] + ("0" if real[-1] != "0" else "1"), real.upper(), real[:16], "", "*", str(holder.fencing_token),
              "x" * 500]
    for token in forged:
        attacker = Lock(any_client, "job", ttl=30)
        for action in ("release", "extend", "owned"):
            attacker.token, attacker._pid = token, holder._pid  # a guessed or forged owner token
            if action == "owned":
                assert not attacker.owned()
                continue
            with pytest.raises(LockNotOwnedError):
                getattr(attacker, action)(*((100,) if action == "extend" else ()))
    assert holder.owned() and 25_000 < any_client.pttl(holder.key) <= 30_000
    holder.release()


# -- streams -----------------------------------------------------------------------------------


def test_dead_letter_stream_is_bounded(r: Any) -> None:
    from fastredis.patterns.streams import DEFAULT_DEAD_MAXLEN

    assert fastredis.EventStream(r, "x").dead_maxlen == DEFAULT_DEAD_MAXLEN == 10_000
    s = fastredis.EventStream(r, "poison", dead_maxlen=20)
    s.add_many([{"n": i} for i in range(100)])
    taker = s.consumer("g", "taker", min_idle=0, max_deliveries=1, block=0, claim_interval=0, count=100)
    assert len(taker.read()) == 100  # delivered once, never acked: each one is dead on the next claim
    burier = s.consumer("g", "burier", min_idle=0, max_deliveries=1, block=0, claim_interval=0, count=100)
    burier.read()
    assert len(burier.dead_lettered) == 100
    assert r.xlen(s.dead_key) == 20  # only the newest 20 kept
    assert [e.fields["n"] for e in s.dead_letters(100)] == list(range(80, 100))
    with pytest.raises(ValueError, match="dead_maxlen"):
        fastredis.EventStream(r, "x", dead_maxlen=0)


# -- limits on untrusted input -------------------------------------------------------------------


def test_key_part_length_limit(any_client: Any) -> None:
    assert max_key_part() == 1024
    lim = fastredis.FixedWindowLimiter(any_client, 5, 3600)
    assert lim.hit("k" * 1024).allowed
    for key in ("k" * 1025, "é" * 200, b"\xff" * 400, 10**1100):  # 1025, 1200, 1200 and 1101 bytes escaped
        with pytest.raises(ValueError, match=r"once escaped, over the limit of 1024 bytes.*set_max_key_part"):
            lim.hit(key)
    with pytest.raises(ValueError, match="over the limit of 1024"):
        lim.hit(b"x" * 10_000_000)  # refused before escaping anything
    for make in (lambda: fastredis.SessionStore(any_client).create(user_id="u" * 2000),
                 lambda: fastredis.Lock(any_client, "n" * 2000),
                 lambda: fastredis.Cart(any_client).add("o" * 2000, "item"),
                 lambda: fastredis.Cart(any_client).add("owner", "i" * 2000),
                 lambda: fastredis.Leaderboard(any_client, "b" * 2000),
                 lambda: fastredis.Presence(any_client, "room" * 500)):
        with pytest.raises(ValueError, match="over the limit of 1024"):
            make()
    with fastredis.TieredCache(any_client, prefix="kl") as cache:
        with pytest.raises(ValueError, match="over the limit of 1024"):
            cache.set("c" * 2000, 1)
        with pytest.raises(ValueError, match="over the limit of 1024"):
            cache.get("c" * 2000)
    assert any_client.dbsize() == 1  # only the 1024-byte key
    previous = set_max_key_part(4096)
    try:
        assert previous == 1024 and lim.hit("k" * 4000).allowed
    finally:
        set_max_key_part(previous)
    with pytest.raises(ValueError, match=">= 16"):
        set_max_key_part(0)
    with pytest.raises(TypeError):
        set_max_key_part(1.5)  # type: ignore[arg-type]


def test_cart_items_are_bounded(any_client: Any) -> None:
    from fastredis.patterns.cart import DEFAULT_MAX_ITEMS

    assert fastredis.Cart(any_client).max_items == DEFAULT_MAX_ITEMS == 1000
    cart = fastredis.Cart(any_client, max_items=3)
    for item in ("a", "b", "c"):
        cart.add("u", item)
    with pytest.raises(ValueError, match=r"max_items=3 .*max_items="):
        cart.add("u", "d")
    with pytest.raises(ValueError, match="max_items=3"):
        cart.set_qty("u", "d", 1)
    assert cart.add("u", "a", 2) == 3 and cart.set_qty("u", "b", 5) == 5  # known items still change
    assert cart.set_qty("u", "c", 0) == 0 and cart.add("u", "d") == 1  # room again after a removal
    for item in ("x", "y", "a"):
        cart.add("anon", item)
    with pytest.raises(ValueError, match="max_items=3"):
        cart.add("anon", "w")
    assert cart.merge("anon", "u") == 1  # only "a" fits (it is already there); x and y are dropped
    assert cart.items("u") == {"a": 4, "b": 5, "d": 1}
    with pytest.raises(ValueError, match="max_items"):
        fastredis.Cart(any_client, max_items=0)


def test_cart_limit_in_the_asyncio_twin(redis_url: str) -> None:
    async def main() -> None:
        async with fastredis.asyncio.Redis.from_url(redis_url) as client:
            await client.flushdb()
            cart = fastredis.asyncio.Cart(client, max_items=1)
            await cart.add("u", "a")
            with pytest.raises(ValueError, match="max_items=1"):
                await cart.add("u", "b")
            assert await cart.items("u") == {"a": 1}

    asyncio.run(main())
