"""The write-retry policy against real servers: a write that may have reached
the server is applied exactly once and reported as outcome-unknown; reads and
failures before any write are retried as redis-py does.

The stall: the private server is SIGSTOPped for 0.4 s while the client has
``socket_timeout=0.1``, so the command is written, times out, and is then run
by the server when it resumes (the way a slow fsync, a long Lua script or a
network hiccup looks to a client).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest
import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry

import fastredis
from fastredis import EventStream, Leaderboard, LuaScript
from fastredis.exceptions import OutcomeUnknownConnectionError, OutcomeUnknownError, OutcomeUnknownTimeoutError
from fastredis.retry_policy import is_idempotent
from fastredis.server import RedisServer

STALL = 0.4


@pytest.fixture
def stalled(private_server: RedisServer) -> Iterator[Callable[[], None]]:
    """Call it to stall the server for STALL seconds (from a background thread)."""
    threads = []

    def stall() -> None:
        private_server.pause()
        t = threading.Timer(STALL, private_server.resume)
        t.start()
        threads.append(t)

    yield stall
    for t in threads:
        t.join()
    private_server.resume()


def _client(cls: Any, server: RedisServer, **kw: Any) -> Any:
    kw.setdefault("retry", Retry(ConstantBackoff(0.05), 10))
    client = cls(port=server.port, socket_timeout=0.1, **kw)
    client.ping()  # connected before the stall: the command itself is what gets written
    return client


def _settled(server: RedisServer) -> "redis.Redis":
    time.sleep(STALL + 0.2)
    return redis.Redis(port=server.port)


def test_single_write_applied_once_and_reported(private_server: RedisServer, stalled: Callable[[], None]) -> None:
    r = _client(fastredis.Redis, private_server)
    stalled()
    with pytest.raises(OutcomeUnknownTimeoutError) as info:
        r.incr("n")
    assert isinstance(info.value, redis.exceptions.TimeoutError)  # old except clauses still catch it
    assert info.value.commands == [("INCRBY", "n", 1)]
    assert "outcome unknown for INCRBY n 1" in str(info.value)
    assert _settled(private_server).get("n") == b"1"
    assert r.incr("n") == 2  # the client recovers


def test_retry_writes_restores_redis_py_behaviour(private_server: RedisServer, stalled: Callable[[], None]) -> None:
    r = _client(fastredis.Redis, private_server, retry_writes=True)
    stalled()
    r.incr("n")  # re-sent after the timeout: applied again
    assert int(_settled(private_server).get("n")) >= 2


def test_plain_redis_py_replays_the_write(private_server: RedisServer, stalled: Callable[[], None]) -> None:
    """The defect fastredis fixes, shown on redis-py itself."""
    r = _client(redis.Redis, private_server)
    stalled()
    assert r.incr("n") >= 1  # reported as a success...
    assert int(_settled(private_server).get("n")) >= 2  # ...but applied more than once


def test_reads_are_retried(private_server: RedisServer, stalled: Callable[[], None]) -> None:
    r = _client(fastredis.Redis, private_server)
    r.set("k", "v")
    stalled()
    assert r.get("k") == b"v"
    stalled_again = time.monotonic()
    assert r.mget("k", "missing") == [b"v", None]
    assert time.monotonic() - stalled_again < 5


def test_failure_before_write_is_retried(private_server: RedisServer) -> None:
    r = fastredis.Redis(port=private_server.port, retry=Retry(ConstantBackoff(0.1), 50))
    r.ping()
    private_server.kill()
    t = threading.Timer(0.5, private_server.restart)
    t.start()
    try:
        # connection refused until the restart: nothing was written, so INCR is retried
        assert r.incr("n") == 1
    finally:
        t.join()
    assert redis.Redis(port=private_server.port).get("n") == b"1"


def test_write_pipeline_applied_once(private_server: RedisServer, stalled: Callable[[], None]) -> None:
    r = _client(fastredis.Redis, private_server)
    p = r.pipeline(transaction=False)
    p.incr("a").get("a").incr("b")
    stalled()
    with pytest.raises(OutcomeUnknownError) as info:
        p.execute()
    assert info.value.commands == [("INCRBY", "a", 1), ("INCRBY", "b", 1)]  # GET is not unknown
    check = _settled(private_server)
    assert check.mget("a", "b") == [b"1", b"1"]
    assert len(p) == 0  # reset after the failure, ready for reuse
    assert p.incr("a").execute() == [2]


def test_read_pipeline_is_retried(private_server: RedisServer, stalled: Callable[[], None]) -> None:
    r = _client(fastredis.Redis, private_server)
    r.set("a", 1)
    p = r.pipeline(transaction=False)
    p.get("a").exists("a").ttl("a").hgetall("h")
    stalled()
    assert p.execute() == [b"1", 1, -1, {}]


def test_transaction_never_resent(private_server: RedisServer, stalled: Callable[[], None]) -> None:
    r = _client(fastredis.Redis, private_server)
    stalled()
    with pytest.raises(OutcomeUnknownTimeoutError) as info:
        with r.pipeline(transaction=True) as p:
            p.incr("a").get("a").execute()
    assert [c[0] for c in info.value.commands] == ["INCRBY", "GET"]  # the whole transaction is unknown
    assert _settled(private_server).get("a") == b"1"
    r.ping()  # reconnected before the next stall
    stalled()
    with pytest.raises(OutcomeUnknownTimeoutError):  # even a read-only transaction
        r.pipeline(transaction=True).get("a").execute()


def test_script_not_idempotent_applied_once(private_server: RedisServer, stalled: Callable[[], None]) -> None:
    incr = LuaScript("return redis.call('INCR', KEYS[1])", name="test_incr")
    assert not incr.idempotent
    for cls in (fastredis.Redis, redis.Redis):  # the script path applies the policy on both
        r = _client(cls, private_server)
        r.delete("s")
        incr(r, ["warm"])  # loaded: the stalled call is the EVALSHA itself, not a NOSCRIPT
        stalled()
        with pytest.raises(OutcomeUnknownError):
            incr(r, ["s"])
        assert _settled(private_server).get("s") == b"1", cls


def test_idempotent_script_is_retried(private_server: RedisServer, stalled: Callable[[], None]) -> None:
    put = LuaScript("redis.call('SET', KEYS[1], ARGV[1]) return 1", name="test_put", idempotent=True)
    r = _client(redis.Redis, private_server)
    put(r, ["x"], ["v"])
    stalled()
    assert put(r, ["x"], ["w"]) == 1
    assert r.get("x") == b"w"


def test_script_after_script_flush_then_stall(private_server: RedisServer, stalled: Callable[[], None]) -> None:
    incr = LuaScript("return redis.call('INCRBY', KEYS[1], ARGV[1])", name="test_incrby")
    r = _client(fastredis.Redis, private_server)
    assert incr(r, ["f"], [2]) == 2
    r.script_flush()
    assert incr(r, ["f"], [3]) == 5  # NOSCRIPT: load, one retry
    stalled()
    with pytest.raises(OutcomeUnknownError):
        incr(r, ["f"], [10])
    assert _settled(private_server).get("f") == b"15"


@pytest.mark.parametrize("cls", [fastredis.Redis, redis.Redis], ids=["fastredis", "redis-py"])
def test_patterns_never_replay(private_server: RedisServer, stalled: Callable[[], None], cls: Any) -> None:
    r = _client(cls, private_server)
    board = Leaderboard(r, "lb")
    stream = EventStream(r, "ev")
    board.incr("warm", 1)  # the script is loaded
    stalled()
    with pytest.raises(OutcomeUnknownError):
        board.incr("ann", 5)
    assert _settled(private_server).zscore("lb:{lb}:z", "ann") == 5.0
    r.ping()
    stalled()
    with pytest.raises(OutcomeUnknownError):
        stream.add({"n": 1})
    assert _settled(private_server).xlen(stream.key) == 1


def test_connection_error_after_write_is_outcome_unknown(private_server: RedisServer) -> None:
    """A connection killed while a blocking write waits: the error says the outcome is unknown."""
    r = fastredis.Redis(port=private_server.port, retry=Retry(ConstantBackoff(0.05), 5))
    r.ping()
    killer = redis.Redis(port=private_server.port)

    def kill() -> None:
        time.sleep(0.3)
        killer.client_kill_filter(_type="normal", skipme=True)

    t = threading.Thread(target=kill)
    t.start()
    try:
        with pytest.raises(OutcomeUnknownConnectionError) as info:
            r.blmove("src", "dst", 5)  # a write (it moves an element) that blocks
        assert isinstance(info.value, redis.exceptions.ConnectionError)
    finally:
        t.join()
    assert r.ping()


def test_read_only_table_matches_the_live_server(r: "redis.Redis") -> None:
    """The generated table agrees with the server's own command flags for
    every command the server knows (regenerate with scripts/gen_readonly_commands.py)."""
    import importlib.util
    import pathlib

    from fastredis._readonly_commands import READONLY

    spec = importlib.util.spec_from_file_location(
        "gen_readonly_commands", pathlib.Path(__file__).parent.parent / "scripts" / "gen_readonly_commands.py"
    )
    gen = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    live = gen.readonly_from_server(r)
    known = {n.upper() for n in r.command_list()} if hasattr(r, "command_list") else set()
    assert live, "the server reported no read-only commands"
    missing = sorted(live - READONLY)
    assert not missing, f"read-only on this server but not in the table (regenerate it): {missing}"
    wrong = sorted(n for n in READONLY - live if n.split("|")[0] in known and "|" not in n)
    assert not wrong, f"in the table but not read-only on this server: {wrong}"


@pytest.mark.parametrize(
    "args, expected",
    [
        (("GET", "k"), True),
        ((b"get", "k"), True),
        (("MGET", "a", "b"), True),
        (("SET", "k", "v"), False),
        (("INCR", "k"), False),
        (("XREAD", "STREAMS", "s", "0"), True),
        (("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), False),  # it moves the group's cursor
        (("OBJECT", "ENCODING", "k"), True),
        (("OBJECT ENCODING", "k"), True),
        (("CONFIG GET", "maxmemory"), False),
        (("PING",), True),
        (("PUBLISH", "c", "m"), False),
        (("EVALSHA", "f" * 40, 0), False),
        (("EVAL", "return 1", 0), False),
        (("EVAL_RO", "return 1", 0), True),
        (("SCRIPT LOAD", "return 1"), True),
        ((), False),
    ],
)
def test_idempotency_of_commands(args: Any, expected: bool) -> None:
    assert is_idempotent(args) is expected


def test_retry_writes_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="retry_writes"):
        fastredis.Redis(retry_writes="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="retry_writes"):
        fastredis.Redis.from_url("redis://localhost", retry_writes=1)  # type: ignore[arg-type]
