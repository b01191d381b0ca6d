"""fastredis.asyncio.Redis against real redis-server processes: commands,
multiplexing, dedicated connections, constructions, pub/sub, scripts,
closing. Every test runs on the default asyncio loop and on uvloop, and on
the compiled core and its pure-Python twins."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import subprocess
import tempfile
import textwrap
import warnings
from typing import Any, List

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from _asyncio_fixtures import acls, loop_kind, run, url  # noqa: F401

import fastredis.asyncio
from fastredis import _aioproto
from fastredis.asyncio import is_multiplexed
from fastredis.server import RedisServer


def _server_clients(port: int) -> List[str]:
    r = redis.Redis(port=port)
    try:
        return [c["name"] for c in r.client_list() if c.get("cmd") != "client|list"]
    finally:
        r.close()


def test_commands_and_replies(run, acls, url) -> None:
    async def main() -> None:
        async with acls.from_url(url) as r:
            assert await r.set("a", "1") is True
            assert await r.get("a") == b"1"
            assert await r.incr("n") == 1
            assert await r.mget([]) == []
            assert await r.mget(["a", "missing"]) == [b"1", None]
            assert await r.hset("h", mapping={"f": 1, "g": 2}) == 2
            assert await r.hgetall("h") == {b"f": b"1", b"g": b"2"}
            assert await r.zadd("z", {"x": 1.5, "y": 2}) == 2
            assert await r.zrange("z", 0, -1, withscores=True) == [(b"x", 1.5), (b"y", 2.0)]
            assert await r.exists("a", "h", "nope") == 2
            assert await r.ping() is True
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                await r.lpush("a", 1)
            with pytest.raises(redis.DataError, match="Invalid input of type: 'bool'"):
                await r.set("b", True)  # type: ignore[arg-type]
            assert await r.config_get("maxmemory") == {"maxmemory": "0"}
            assert len(r._mux.conns) == 1

    run(main())


def test_concurrent_tasks_share_one_connection_and_one_write_per_iteration(run, acls, url) -> None:
    async def main() -> None:
        r = acls.from_url(url)
        await r.ping()
        proto = r._mux.conns[0].proto
        before = proto.bytes_written
        writes: List[int] = []
        transport = proto.transport
        original_write = transport.write

        def counting_write(data: bytes) -> None:
            writes.append(len(data))
            original_write(data)

        proto.transport = type("T", (), {"write": staticmethod(counting_write), "__getattr__": lambda s, n: getattr(transport, n)})()
        try:
            replies = await asyncio.gather(*(r.set(f"k{i}", i) for i in range(500)))
        finally:
            proto.transport = transport
        assert replies == [True] * 500
        assert len(writes) == 1 and proto.bytes_written > before
        values = await asyncio.gather(*(r.get(f"k{i}") for i in range(500)))
        assert values == [str(i).encode() for i in range(500)]
        await r.aclose()

    run(main())


def test_burst_of_1000_tasks_on_a_default_client(run, acls, redis_url) -> None:
    async def main() -> None:
        r = acls.from_url(redis_url)
        plain = redis.asyncio.Redis.from_url(redis_url)
        await r.set("burst", "v")

        async def one(i: int) -> Any:
            return await r.get("burst")

        results = await asyncio.gather(*(one(i) for i in range(1000)))
        assert results == [b"v"] * 1000
        assert len(r._mux.conns) == 1
        assert r.connection_pool.max_connections == 100  # redis-py's default pool, unchanged
        with pytest.raises(redis.exceptions.ConnectionError, match="Too many connections"):
            await asyncio.gather(*(plain.get("burst") for _ in range(1000)))
        await r.aclose()
        await plain.aclose()

    run(main())


def test_routing_of_blocking_and_stateful_commands() -> None:
    for args in [("BLPOP", "q", 0), ("brpop", "q", 1), ("BLMOVE", "a", "b", "LEFT", "RIGHT", 0), ("BZPOPMIN", "z", 0),
                 ("WAIT", 1, 0), ("SELECT", 1), ("SUBSCRIBE", "c"), ("MONITOR",), ("WATCH", "k"), ("MULTI",),
                 ("CLIENT TRACKING", "on"), ("CLIENT", "REPLY", "OFF"), ("XREADGROUP", "GROUP", "g", "c", "BLOCK", 10, "STREAMS", "s", ">"),
                 (b"XREAD", b"block", b"0", b"STREAMS", b"s", b"$"), ("HELLO", 3), ("AUTH", "pw")]:  # fmt: skip
        assert not is_multiplexed(args), args
    for args in [("GET", "k"), ("XREAD", "COUNT", 1, "STREAMS", "s", "0"), ("CLIENT", "ID"), ("CLIENT SETNAME", "x"),
                 ("CONFIG GET", "maxmemory"), (b"INCR", b"n"), ("EVALSHA", "0" * 40, 0)]:  # fmt: skip
        assert is_multiplexed(args), args


def test_blocking_commands_take_a_dedicated_connection(run, acls, url) -> None:
    async def main() -> None:
        r = acls.from_url(url)
        # A BLPOP waiting 0.5 s does not hold up the multiplexed connection.
        waiter = asyncio.ensure_future(r.blpop("queue", 2))
        await asyncio.sleep(0.05)
        assert await asyncio.wait_for(r.set("x", 1), 1) is True
        assert await r.rpush("queue", "job") == 1
        assert await asyncio.wait_for(waiter, 2) == (b"queue", b"job") or await waiter == [b"queue", b"job"]
        assert await r.xadd("s", {"f": "v"})
        assert len(await r.xread({"s": "0"}, block=100)) == 1
        # SELECT does not switch the shared connection's database.
        r2 = acls.from_url(url)
        await r2.set("db0key", "here")
        assert await r2.select(1) is True
        assert await r2.get("db0key") == b"here"
        await r.aclose()
        await r2.aclose()

    run(main())


def test_single_connection_client_and_no_multiplexing(run, acls, url) -> None:
    async def main() -> None:
        r = acls.from_url(url, single_connection_client=True)
        assert not r._mux.enabled
        assert await asyncio.gather(*(r.incr("n") for _ in range(20))) == list(range(1, 21))
        await r.aclose()
        r = acls.from_url(url, multiplexed_connections=0)
        assert not r._mux.enabled
        assert sorted(await asyncio.gather(*(r.incr("n") for _ in range(20)))) == list(range(21, 41))
        await r.aclose()
        r = acls.from_url(url, multiplexed_connections=3)
        await asyncio.gather(*(r.incr("n") for _ in range(300)))
        assert 1 <= len(r._mux.conns) <= 3
        assert await r.get("n") == b"340"
        await r.aclose()
        with pytest.raises(ValueError, match="multiplexed_connections"):
            acls(multiplexed_connections=-1)
        with pytest.raises(TypeError, match="retry_writes"):
            acls(retry_writes="yes")

    run(main())


@pytest.mark.parametrize("protocol", [2, 3, None])
@pytest.mark.parametrize("decode", [False, True])
def test_protocols_and_decoding(run, acls, url, protocol, decode) -> None:
    async def main() -> None:
        kw = {"decode_responses": decode}
        if protocol is not None:
            kw["protocol"] = protocol
        async with acls.from_url(url, **kw) as r:
            await r.set("k", "välue")
            assert await r.get("k") == ("välue" if decode else "välue".encode())
            await r.zadd("z", {"m": 2.5})
            assert await r.zscore("z", "m") == 2.5
            assert await r.dump("k")  # NEVER_DECODE: bytes even when decoding
            assert isinstance(await r.dump("k"), bytes)
            info = await r.client_info()
            assert int(info["resp"]) == (2 if protocol == 2 else 3)  # redis-py 8's default is RESP3

    run(main())


def test_pipelines(run, acls, url) -> None:
    async def main() -> None:
        async with acls.from_url(url) as r:
            async with r.pipeline() as p:
                assert await p.set("a", 1).incr("a").get("a").execute() == [True, 2, b"2"]
            p = r.pipeline(transaction=False)
            p.set("s", "v").lpush("s", 1).get("s")
            with pytest.raises(redis.ResponseError, match=r"Command # 2 \(LPUSH s 1\) of pipeline caused error"):
                await p.execute()
            p.set("s", "v").lpush("s", 1).get("s")
            out = await p.execute(raise_on_error=False)
            assert out[0] is True and isinstance(out[1], redis.ResponseError) and out[2] == b"v"
            assert await p.execute() == []  # reusable, empty
            p = r.pipeline()
            p.batch("SET", ["b1", "b2"], [1.5, 2])
            assert await p.execute() == [True, True]
            # WATCH / MULTI / WatchError
            async with r.pipeline() as p:
                await p.watch("w")
                assert await p.get("w") is None
                await r.set("w", "changed")  # another writer
                p.multi()
                p.set("w", "mine")
                with pytest.raises(redis.WatchError):
                    await p.execute()
            assert await r.get("w") == b"changed"

            async def incr_w(pipe: Any) -> None:
                value = await pipe.get("w2")
                pipe.multi()
                pipe.set("w2", int(value or 0) + 1)

            assert await r.transaction(incr_w, "w2") == [True]
            assert await r.get("w2") == b"1"

    run(main())


def test_pipeline_cancelled_then_client_reused(run, acls, url) -> None:
    async def main() -> None:
        r = acls.from_url(url)
        for i in range(50):
            await r.set(f"own:{i}", i)
        cancelled = 0
        for round_ in range(5):
            p = r.pipeline(transaction=bool(round_ % 2))
            for i in range(20000):
                p.incr("pipe:n")
            task = asyncio.ensure_future(p.execute())
            await asyncio.sleep(0.002 * round_)
            task.cancel()
            try:
                await task  # on a loaded machine it may have finished before the cancel
            except asyncio.CancelledError:
                cancelled += 1
            values = await asyncio.gather(*(r.get(f"own:{i}") for i in range(50)))
            assert values == [str(i).encode() for i in range(50)]
        assert cancelled >= 1
        assert r._mux.conns[0].proto.in_flight == 0
        await r.aclose()

    run(main())


def test_scripts(run, acls, url) -> None:
    async def main() -> None:
        async with acls.from_url(url) as r:
            incr_by = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            assert await incr_by(keys=["n"], args=[5]) == 5
            await r.script_flush()
            assert await incr_by(keys=["n"], args=[2]) == 7  # NOSCRIPT -> SCRIPT LOAD -> EVALSHA
            await r.script_flush()
            p = r.pipeline()
            await incr_by(keys=["n"], args=[1], client=p)
            p.get("n")
            assert await p.execute() == [8, b"8"]
            assert await r.eval("return {1, 'two', {3}}", 0) == [1, b"two", [3]]

    run(main())


def test_pubsub_and_monitor(run, acls, url) -> None:
    async def main() -> None:
        async with acls.from_url(url, decode_responses=True) as r:
            async with r.pubsub() as ps:
                await ps.subscribe("news")
                assert (await ps.get_message(timeout=1))["type"] == "subscribe"
                assert await r.publish("news", "hello") == 1
                msg = await ps.get_message(timeout=1)
                assert msg == {"type": "message", "pattern": None, "channel": "news", "data": "hello"}
                await ps.psubscribe("n*")
                assert (await ps.get_message(timeout=1))["type"] == "psubscribe"
            async with r.monitor() as m:
                await r.set("watched", 1)
                seen = await asyncio.wait_for(m.next_command(), 2)
                assert "watched" in seen["command"]

    run(main())


def test_callbacks_user_async_and_errors(run, acls, url) -> None:
    async def main() -> None:
        async with acls.from_url(url) as r:
            async def upper(response: Any, **options: Any) -> Any:
                return response.upper()

            r.set_response_callback("GET", upper)
            await r.set("c", "abc")
            assert await r.get("c") == b"ABC"
            p = r.pipeline(transaction=False)
            p.get("c")
            assert await p.execute() == [b"ABC"]
            with pytest.raises(redis.exceptions.NoScriptError):
                await r.evalsha("0" * 40, 0)

    run(main())


def test_aclose_async_with_and_garbage_collection(run, acls, redis_url) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])

    async def main() -> None:
        r = acls.from_url(redis_url, client_name="gc-test")
        await r.ping()
        assert _server_clients(port).count("gc-test") == 1
        await r.aclose()
        await asyncio.sleep(0.05)
        assert _server_clients(port).count("gc-test") == 0
        assert await r.ping() is True  # usable again after aclose, as in redis-py
        await r.aclose()
        async with acls.from_url(redis_url, client_name="gc-test") as r2:
            await r2.ping()
        await asyncio.sleep(0.05)
        assert _server_clients(port).count("gc-test") == 0
        r3 = acls.from_url(redis_url, client_name="gc-test")
        await r3.ping()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            del r3
            gc.collect()
        await asyncio.sleep(0.1)
        assert _server_clients(port).count("gc-test") == 0

    run(main())


def test_connection_options(run, acls, server_factory) -> None:
    path = os.path.join(tempfile.mkdtemp(prefix="fastredis-sock-"), "redis.sock")
    server = server_factory("--unixsocket", path, "--unixsocketperm", "700")
    redis.Redis(port=server.port).config_set("requirepass", "pw")  # after start: RedisServer's readiness PING has no password
    admin = redis.Redis(port=server.port, password="pw")
    admin.execute_command("ACL", "SETUSER", "ann", "on", ">annpw", "~*", "+@all")

    async def main() -> None:
        r = acls(port=server.port, password="pw", db=3, client_name="opt-test", health_check_interval=1, socket_timeout=2)
        await r.set("k", "in-db-3")
        assert admin.execute_command("CLIENT", "LIST").count(b"name=opt-test") == 1
        assert redis.Redis(port=server.port, password="pw", db=3).get("k") == b"in-db-3"
        assert await r.client_getname() in ("opt-test", b"opt-test")
        await asyncio.sleep(1.1)
        assert await r.get("k") == b"in-db-3"  # after a health-check PING
        await r.aclose()
        u = acls.from_url(f"unix://ann:annpw@{path}?db=2")
        assert await u.set("u", 1) and await u.acl_whoami() in ("ann", b"ann")
        assert await asyncio.gather(*(u.incr("c") for _ in range(50))) == list(range(1, 51))
        await u.aclose()
        bad = acls(port=server.port, password="wrong", retry=Retry(NoBackoff(), 1))
        with pytest.raises(redis.AuthenticationError):
            await bad.get("k")
        await bad.aclose()

    run(main())
    admin.close()


def _make_certificate(directory: str) -> Any:
    key, cert = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_tls(run, acls, server_factory) -> None:
    if not subprocess.run(["which", "openssl"], capture_output=True).stdout:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tempfile.mkdtemp(prefix="fastredis-tls-")
    key, cert = _make_certificate(directory)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tls_port = s.getsockname()[1]
    server = server_factory(
        "--tls-port", str(tls_port), "--tls-cert-file", cert, "--tls-key-file", key,
        "--tls-ca-cert-file", cert, "--tls-auth-clients", "no",
    )  # fmt: skip
    del server

    async def main() -> None:
        r = acls.from_url(f"rediss://127.0.0.1:{tls_port}/0", ssl_ca_certs=cert)
        assert await asyncio.gather(*(r.incr("tls") for _ in range(100))) == list(range(1, 101))
        p = r.pipeline()
        p.set("a", 1).get("a")
        assert await p.execute() == [True, b"1"]
        assert (await r.client_info())["flags"]  # served over the TLS connection
        await r.aclose()

    run(main())


def test_drop_in_names() -> None:
    assert issubclass(fastredis.asyncio.Redis, redis.asyncio.Redis)
    assert issubclass(fastredis.asyncio.Pipeline, redis.asyncio.client.Pipeline)
    assert fastredis.asyncio.ConnectionPool is redis.asyncio.ConnectionPool
    assert fastredis.asyncio.StrictRedis is fastredis.asyncio.Redis
    assert type(fastredis.asyncio.from_url("redis://localhost")) is fastredis.asyncio.Redis


def test_protocol_core_twin_selected() -> None:
    if os.environ.get("FASTREDIS_NO_EXTENSIONS"):
        assert _aioproto.IMPLEMENTATION == "py"
        return
    import fastredis._aioproto_c as compiled

    assert compiled.__file__.endswith((".so", ".pyd"))
    assert _aioproto.MuxProtocol is compiled.MuxProtocol
    assert fastredis.asyncio.Redis.mux_core is _aioproto


def test_server_restart_and_client_kill(run, acls, server_factory) -> None:
    server: RedisServer = server_factory()

    async def main() -> None:
        r = acls(port=server.port)
        await r.set("k", "v")
        server.restart()
        await asyncio.sleep(0.2)  # the loop notices the closed connection while idle
        assert await r.incr("after-restart") == 1  # not outcome-unknown: nothing was written before
        assert await r.set("k", "v2") is True
        my_id = await r.client_id()
        killer = redis.Redis(port=server.port)
        assert killer.client_kill_filter(_id=my_id) == 1
        await asyncio.sleep(0.1)
        assert await r.incr("after-kill") == 1
        assert await r.get("k") == b"v2"
        killer.close()
        await r.aclose()

    run(main())


@pytest.mark.parametrize("how", ["single_connection_client", "multiplexed_connections=0"])
def test_dedicated_connections_closed_while_idle_reconnect_before_writing(run, acls, server_factory, how) -> None:
    """A pooled or pinned connection the server closed while idle (an idle
    ``timeout``, CLIENT KILL) is reconnected before the command is written:
    a write then runs once instead of raising outcome-unknown. A WATCH on it
    is gone, so a transaction that watched raises WatchError."""
    server: RedisServer = server_factory()
    kwargs = {"single_connection_client": True} if how == "single_connection_client" else {"multiplexed_connections": 0}

    async def kill_all() -> None:
        with redis.Redis(port=server.port) as admin:
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
        await asyncio.sleep(0.1)  # the loop sees the close while the connection is idle

    async def main() -> None:
        r = acls(port=server.port, **kwargs)
        try:
            assert await r.incr("n") == 1
            await kill_all()
            assert await r.incr("n") == 2  # not outcome-unknown: nothing had been written
            if how == "single_connection_client":
                return
            async with r.pipeline(transaction=True) as p:
                p.incr("n").incr("n")
                assert await p.execute() == [3, 4]
            await kill_all()
            async with r.pipeline(transaction=True) as p:
                p.incr("n").incr("n")
                assert await p.execute() == [5, 6]
            async with r.pipeline(transaction=True) as p:
                await p.watch("n")
                await kill_all()
                await r.set("n", 100)  # the change WATCH was there to catch
                p.multi()
                p.incr("n")
                with pytest.raises(redis.WatchError):
                    await p.execute()
            assert await r.get("n") == b"100"
        finally:
            await r.aclose()

    run(main())


@pytest.mark.parametrize("max_connections", [1, 2])
@pytest.mark.parametrize("pool_class", ["ConnectionPool", "BlockingConnectionPool"])
def test_small_pools_serve_dedicated_commands_as_under_redis_py(run, acls, url, pool_class, max_connections) -> None:
    """A pool of one or two connections: the multiplexed connection must not
    starve dedicated commands (BLPOP, WATCH, transactions, pub/sub) that
    redis-py serves from the same pool."""

    async def script(cls: Any) -> List[Any]:
        redis.Redis.from_url(url).flushall()
        kw: Any = {"max_connections": max_connections}
        if pool_class == "BlockingConnectionPool":
            kw["timeout"] = 5
        pool = getattr(redis.asyncio, pool_class).from_url(url, **kw)
        r = cls(connection_pool=pool)
        out: List[Any] = []
        try:
            out.append(await r.set("k", 1))
            p = r.pipeline(transaction=True)
            p.incr("k").get("k")
            out.append(await p.execute())
            out.append(await r.blpop(["q"], timeout=0.1))
            out.append(await r.get("k"))
            async with r.pipeline() as p:
                await p.watch("k")
                value = await p.get("k")
                p.multi()
                p.set("k", int(value) + 1)
                out.append(await p.execute())
            if pool_class == "BlockingConnectionPool":  # (redis-py's plain pool raises Too many connections here)
                out.append(sorted(await asyncio.gather(*(r.incr("c") for _ in range(20)))))
            if max_connections == 2:  # two dedicated commands at once, as redis-py serves them
                out.append(await asyncio.gather(r.blpop(["q1"], timeout=0.1), r.blpop(["q2"], timeout=0.1)))
            async with r.pubsub() as ps:
                await ps.subscribe("ch")
                out.append(await ps.get_message(timeout=1))
            out.append(await r.get("k"))
        finally:
            await r.aclose()
            await pool.aclose()
        return out

    async def main() -> None:
        expected = await script(redis.asyncio.Redis)
        assert await script(acls) == expected

    run(main())


def test_asyncio_tour_runs(run, acls, url) -> None:
    """examples/asyncio_tour.py (shown in docs/asyncio.md) keeps running."""
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("asyncio_tour", os.path.join(root, "examples", "asyncio_tour.py"))
    assert spec and spec.loader
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)

    async def main() -> None:
        async with acls.from_url(url) as r:
            await tour.tour(r)

    run(main())
    with open(os.path.join(root, "docs", "asyncio.md")) as f:
        text = f.read()
    with open(os.path.join(root, "examples", "asyncio_tour.py")) as f:
        body = f.read()
    block = body[body.index("    # --- the drop-in asyncio client") : body.index("async def main()")]
    shown = textwrap.dedent(block).strip()
    assert shown in text, "docs/asyncio.md must show examples/asyncio_tour.py's tour() body verbatim"


def test_public_asyncio_names_have_examples() -> None:
    missing = []
    for name in fastredis.asyncio.__all__:
        obj = getattr(fastredis.asyncio, name)
        if name in fastredis.asyncio._REDIS_ASYNCIO_NAMES or not callable(obj):
            continue  # redis.asyncio's own names, re-exported unchanged
        if ">>>" not in (obj.__doc__ or ""):
            missing.append(name)
    assert not missing, f"public names without a runnable example: {missing}"
