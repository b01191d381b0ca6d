"""Differential tests: the same operations through redis-py and fastredis on one
server must give identical results, for every protocol/decoding combination.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, List

import pytest
import redis
from redis.exceptions import DataError, ResponseError, WatchError

import fastredis
from fastredis import _resp_py
from fastredis import client as fclient

# fastredis on its selected core (compiled unless FASTREDIS_NO_EXTENSIONS=1),
# and fastredis forced onto the pure-Python twin: both must equal redis-py.
FAST_CLASSES = [fastredis.Redis, fclient.client_class_for(_resp_py)]

CONFIGS = [
    dict(protocol=proto, decode_responses=dec, legacy_responses=legacy)
    for proto, dec, legacy in itertools.product([None, 2, 3], [False, True], [True, False])
]
CONFIG_IDS = [f"resp{c['protocol']}-{'dec' if c['decode_responses'] else 'raw'}-{'legacy' if c['legacy_responses'] else 'unified'}" for c in CONFIGS]

# Every hot override, with each keyword argument it accepts (the lean path and
# the fall-through to redis-py), and non-overridden commands of every type.
OPS: List[Callable[[Any], Any]] = [
    lambda c: c.set("s", "v"),
    lambda c: c.set("s", b"\x00\x01bin\r\n"),
    lambda c: c.set("s2", 1.5, ex=100),
    lambda c: c.set("s2", 2, px=100000, xx=True),
    lambda c: c.set("s3", "x", nx=True),
    lambda c: c.set("s3", "y", nx=True),
    lambda c: c.set("s3", "z", get=True),
    lambda c: c.set("s3", "k", keepttl=True),
    lambda c: c.get("s"),
    lambda c: c.get("missing"),
    lambda c: c.getex("s3"),
    lambda c: c.getex("s3", ex=50),
    lambda c: c.getex("s3", persist=True),
    lambda c: c.mset({"m1": 1, "m2": "two"}),
    lambda c: c.mget(["m1", "m2", "missing"]),
    lambda c: c.mget("m1", "m2"),
    lambda c: c.incr("n"),
    lambda c: c.incr("n", 10),
    lambda c: c.incrby("n", -3),
    lambda c: c.decr("n"),
    lambda c: c.decr("n", 2),
    lambda c: c.decrby("n", 2),
    lambda c: c.expire("s", 100),
    lambda c: c.expire("s", 200, xx=True),
    lambda c: c.pexpire("s", 100000),
    lambda c: c.pexpire("s", 200000, gt=True),
    lambda c: c.ttl("s"),
    lambda c: c.ttl("missing"),
    lambda c: c.exists("s", "m1", "missing"),
    lambda c: c.delete("m2", "missing"),
    lambda c: c.hset("h", "f", "v"),
    lambda c: c.hset("h", mapping={"a": 1, "b": 2.5}),
    lambda c: c.hset("h", "g", 3, mapping={"c": "x"}),
    lambda c: c.hget("h", "f"),
    lambda c: c.hget("h", "nope"),
    lambda c: c.hmget("h", ["a", "b", "nope"]),
    lambda c: c.hmget("h", "a", "b"),
    lambda c: c.hgetall("h"),
    lambda c: c.hgetall("missing"),
    lambda c: c.hincrby("h", "a"),
    lambda c: c.hincrby("h", "a", 5),
    lambda c: c.sadd("set", "a", "b", "c"),
    lambda c: c.srem("set", "c", "zz"),
    lambda c: c.smembers("set"),
    lambda c: c.smembers("missing"),
    lambda c: c.sismember("set", "a"),
    lambda c: c.sismember("set", "zz"),
    lambda c: c.scard("set"),
    lambda c: c.lpush("l", 1, 2, 3),
    lambda c: c.rpush("l", "x", b"y"),
    lambda c: c.lpop("l"),
    lambda c: c.rpop("l"),
    lambda c: c.lpop("l", 2),
    lambda c: c.rpop("missing"),
    lambda c: c.lrange("l", 0, -1),
    lambda c: c.zadd("z", {"a": 1, "b": 2.5, "c": -1e300}),
    lambda c: c.zadd("z", {"d": 4}),
    lambda c: c.zadd("z", {"a": 10}, xx=True, ch=True),
    lambda c: c.zadd("z", {"a": 1}, incr=True),
    lambda c: c.zadd("z", {"e": 5}, nx=True),
    lambda c: c.zincrby("z", 2.5, "b"),
    lambda c: c.zincrby("z", 1, "new"),
    lambda c: c.zscore("z", "b"),
    lambda c: c.zscore("z", "nope"),
    lambda c: c.zrange("z", 0, -1),
    lambda c: c.zrange("z", 0, -1, withscores=True),
    lambda c: c.zrange("z", 0, 1, desc=True, withscores=True),
    lambda c: c.zrange("z", 0, -1, withscores=True, score_cast_func=int),
    lambda c: c.zrevrange("z", 0, -1),
    lambda c: c.zrevrange("z", 0, -1, withscores=True),
    lambda c: c.zrank("z", "b"),
    lambda c: c.zrank("z", "nope"),
    lambda c: c.zrem("z", "e", "nope"),
    lambda c: c.zcard("z"),
    lambda c: c.pfadd("hll", "a", "b", "c"),
    lambda c: c.pfcount("hll"),
    lambda c: c.setbit("bits", 7, 1),
    lambda c: c.setbit("bits", 100, True),
    lambda c: c.getbit("bits", 7),
    lambda c: c.bitcount("bits"),
    lambda c: c.bitcount("bits", 0, 0),
    lambda c: c.xadd("st", {"f": "v", "n": 1}, id="1-1"),
    lambda c: c.xadd("st", {"f": "w"}, id="2-1", maxlen=10),
    lambda c: c.xrange("st"),
    lambda c: c.xlen("st"),
    lambda c: c.publish("chan", "msg"),
    lambda c: c.evalsha("0" * 40, 0),
    lambda c: c.eval("return {1, 'two', KEYS[1]}", 1, "kk"),
    lambda c: c.zcount("z", 0, 100),
    lambda c: c.hlen("h"),
    lambda c: c.type("h"),
    lambda c: c.scan(0, count=100),
    lambda c: c.config_get("maxmemory"),
    lambda c: c.lpush("s", 1),  # WRONGTYPE error
    lambda c: c.incr("s"),  # not an integer
    lambda c: c.execute_command("NOSUCHCOMMAND"),
    lambda c: c.ping(),
    lambda c: c.echo("hi"),
    lambda c: c.dbsize(),
]


def _client(cls: type, redis_url: str, cfg: dict) -> Any:
    return cls.from_url(redis_url, **cfg)


def _run_direct(c: Any) -> List[Any]:
    out: List[Any] = []
    for op in OPS:
        try:
            out.append(op(c))
        except ResponseError as e:
            out.append(("error", type(e).__name__, str(e)))
    return out


def _normalise(results: List[Any]) -> List[Any]:
    out = []
    for r in results:
        if isinstance(r, Exception):
            out.append(("error", type(r).__name__, str(r)))
        elif isinstance(r, tuple) and r and r[0] == "error":
            out.append(r)
        else:
            out.append(r)
    return out


def _scan_normalise(results: List[Any]) -> List[Any]:
    # SCAN order is the server's; sort the key list so runs are comparable.
    out = []
    for r in results:
        if isinstance(r, tuple) and len(r) == 2 and isinstance(r[1], list) and isinstance(r[0], int):
            out.append((r[0], sorted(r[1])))
        else:
            out.append(r)
    return out


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("mode", ["direct", "pipeline", "transaction"])
def test_same_results_as_redis_py(redis_url: str, cfg: dict, mode: str) -> None:
    results = []
    for cls in (redis.Redis, *FAST_CLASSES):
        c = _client(cls, redis_url, cfg)
        c.flushdb()
        if mode == "direct":
            res = _run_direct(c)
        else:
            p = c.pipeline(transaction=(mode == "transaction"))
            for op in OPS:
                op(p)
            try:
                res = _normalise(p.execute(raise_on_error=False))
            except ResponseError as e:  # e.g. a command unknown to this server aborts MULTI
                res = [("raised", type(e).__name__, str(e))] * len(OPS)
        results.append(_scan_normalise(res))
        c.close()
    assert len(results[0]) == len(OPS)
    for other, cls in zip(results[1:], FAST_CLASSES):
        for i, (a, b) in enumerate(zip(results[0], other)):
            assert a == b and type(a) is type(b), f"{cls.__name__} op {i}: redis-py {a!r} != fastredis {b!r}"


@pytest.mark.parametrize("cfg", CONFIGS[:4], ids=CONFIG_IDS[:4])
def test_fast_parser_in_use(redis_url: str, cfg: dict) -> None:
    c = fastredis.Redis.from_url(redis_url, **cfg)
    c.ping()
    conn = c.connection_pool.get_connection()
    try:
        assert isinstance(conn._parser, fclient.FastParser)
    finally:
        c.connection_pool.release(conn)
    host, port = redis_url.split("//")[1].split("/")[0].split(":")
    c2 = fastredis.Redis(host=host, port=int(port), **cfg)
    c2.ping()
    conn = c2.connection_pool.get_connection()
    assert isinstance(conn._parser, fclient.FastParser)
    c2.connection_pool.release(conn)


def test_raise_on_error_annotation_matches(redis_url: str) -> None:
    msgs = []
    for cls in (redis.Redis, fastredis.Redis):
        c = cls.from_url(redis_url)
        c.flushdb()
        for tx in (False, True):
            p = c.pipeline(transaction=tx)
            p.set("a", 1).lpush("a", 2).get("a")
            with pytest.raises(ResponseError) as ei:
                p.execute()
            msgs.append((tx, type(ei.value).__name__, str(ei.value)))
    assert msgs[:2] == msgs[2:]
    assert "Command # 2 (LPUSH a 2) of pipeline caused error" in msgs[2][2]


def test_transaction_syntax_error_aborts_like_redis_py(redis_url: str) -> None:
    out = []
    for cls in (redis.Redis, fastredis.Redis):
        c = cls.from_url(redis_url)
        c.flushdb()
        p = c.pipeline()
        p.set("a", 1).execute_command("SET", "only-one-arg").set("b", 2)
        with pytest.raises(ResponseError) as ei:
            p.execute()
        out.append((type(ei.value).__name__, str(ei.value), c.get("a"), c.get("b")))
    assert out[0] == out[1]
    assert out[1][2] is None  # nothing applied


def test_watch_conflict_raises_watch_error(r: fastredis.Redis, raw: redis.Redis) -> None:
    r.set("w", 1)
    with r.pipeline() as p:
        p.watch("w")
        assert p.get("w") == b"1"  # immediate mode while watching
        raw.set("w", 2)  # concurrent change
        p.multi()
        p.set("w", 3).incr("x")
        with pytest.raises(WatchError):
            p.execute()
    assert r.get("w") == b"2"
    assert r.get("x") is None


def test_transaction_helper_retries_on_conflict(r: fastredis.Redis, raw: redis.Redis) -> None:
    r.set("c", 0)
    calls = []

    def fn(pipe: Any) -> None:
        v = int(pipe.get("c"))
        if not calls:
            raw.incr("c")
        calls.append(v)
        pipe.multi()
        pipe.set("c", v + 10)

    r.transaction(fn, "c")
    assert len(calls) == 2
    assert int(r.get("c")) == 11


def test_pipeline_reuse_and_context_manager(r: fastredis.Redis) -> None:
    with r.pipeline(transaction=False) as p:
        p.set("a", 1).get("a")
        assert len(p) == 2
        assert p.execute() == [True, b"1"]
        assert len(p) == 0
        p.incr("a")
        assert p.execute() == [2]
        assert p.execute() == []


def test_data_error_from_execute_and_nothing_sent(r: fastredis.Redis, raw: redis.Redis) -> None:
    for tx in (False, True):
        expected = None
        for c in (raw, r):
            c.flushdb()
            p = c.pipeline(transaction=tx)
            p.set("before", 1)
            p.set("bad", True)  # bool is rejected, from execute() as in redis-py
            p.set("after", 1)
            with pytest.raises(DataError) as ei:
                p.execute()
            # redis-py+hiredis words it "A tuple item must be ..."; the class and state match.
            got = (type(ei.value), c.exists("before", "after"), len(p))
            expected = expected or got
            assert got == expected
        assert expected[1] == 0
    p = r.pipeline()
    p.get(None)
    with pytest.raises(DataError, match="Invalid input of type: 'NoneType'"):
        p.execute()
    p.set("ok", 1)
    assert p.execute() == [True]  # the failed pipeline was reset


def test_scripts_in_pipeline(r: fastredis.Redis, raw: redis.Redis) -> None:
    for c in (raw, r):
        c.flushdb()
        c.script_flush()
        script = c.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        p = c.pipeline()
        script(keys=["k"], args=[5], client=p)
        script(keys=["k"], args=[2], client=p)
        assert p.execute() == [5, 7]


def test_single_connection_client_and_from_url(redis_url: str) -> None:
    c = fastredis.Redis.from_url(redis_url, single_connection_client=True, decode_responses=True)
    assert c.connection is not None
    assert c.set("x", "y") is True and c.get("x") == "y"
    with c.pipeline() as p:
        assert p.set("a", 1).get("a").execute() == [True, "1"]
    c.close()
    host, port = redis_url.split("//")[1].split("/")[0].split(":")
    c = fastredis.Redis(host=host, port=int(port), single_connection_client=True)
    assert isinstance(c.connection._parser, fclient.FastParser)
    assert c.ping() is True
    c.close()


def test_killed_connection_is_retried(redis_url: str, raw: redis.Redis) -> None:
    """A connection the server closed while idle: the next pipeline behaves as
    on redis-py (redis-py 8.1's default Retry reconnects; 8.0's from_url has
    no retries), and never reports an unknown outcome: nothing was written."""
    outcomes = []
    for cls in (redis.Redis, fastredis.Redis):
        r = cls.from_url(redis_url)
        r.set("k", "v")
        p = r.pipeline(transaction=False)
        p.get("k")
        assert p.execute() == [b"v"]
        raw.client_kill_filter(_id=r.client_id())
        p.set("k", "w").get("k")
        try:
            outcomes.append(p.execute())
        except redis.exceptions.ConnectionError as e:
            assert not isinstance(e, fastredis.OutcomeUnknownError)
            outcomes.append(type(e))
        assert r.get("k") == b"w" or outcomes[-1] is redis.exceptions.ConnectionError
        r.close()
    assert outcomes[0] == outcomes[1]


def test_watch_lost_on_killed_connection(r: fastredis.Redis, raw: redis.Redis) -> None:
    r.set("w", 1)
    p = r.pipeline()
    p.watch("w")
    conn_id = p.client_id()
    raw.client_kill_filter(_id=conn_id)
    p.multi()
    p.set("w", 2)
    with pytest.raises((WatchError, redis.exceptions.ConnectionError)):
        p.execute()


def test_user_connection_pool_still_works(redis_url: str) -> None:
    pool = redis.ConnectionPool.from_url(redis_url)
    c = fastredis.Redis(connection_pool=pool)
    p = c.pipeline(transaction=False)
    p.set("pool", 1).get("pool")
    assert p.execute() == [True, b"1"]
    pool.disconnect()


def test_custom_response_callback_is_honoured(redis_url: str) -> None:
    c = fastredis.Redis.from_url(redis_url)
    c.set_response_callback("GET", lambda r: ("wrapped", r))
    c.set("a", 1)
    p = c.pipeline(transaction=False)
    p.get("a")
    assert p.execute() == [("wrapped", b"1")]


# ---------------------------------------------------------------- batch()


def test_batch_matches_per_command(r: fastredis.Redis) -> None:
    keys = [f"k{i}" for i in range(100)]
    values = [i * 1.5 for i in range(100)]
    p = r.pipeline(transaction=False)
    p.batch("SET", keys, values)
    assert p.execute() == [True] * 100
    assert r.mget(keys) == [repr(v).encode() for v in values]
    p.batch("ZADD", "board", [1, 2, 3], ["a", "b", "c"]).batch("INCR", "counter")
    assert p.execute() == [1, 1, 1, 1]
    assert r.zrange("board", 0, -1, withscores=True) == [(b"a", 1.0), (b"b", 2.0), (b"c", 3.0)]


def test_batch_numpy_columns(r: fastredis.Redis) -> None:
    np = pytest.importorskip("numpy")
    scores = np.array([0.1, 2.5, 1e-7, 3.0], dtype=np.float64)
    members = np.array(["a", "b", "c", "d"])
    p = r.pipeline(transaction=False)
    p.batch("ZADD", "np", scores, members)
    p.batch("SET", np.array(["x", "y"]), np.array([1, 2], dtype=np.int64))
    assert p.execute() == [1, 1, 1, 1, True, True]
    assert r.zscore("np", "c") == 1e-7
    assert r.get("x") == b"1"
    with pytest.raises(DataError):
        r.pipeline().batch("SET", ["a", "b"], np.array([True, False]))


def test_batch_mismatched_lengths_stage_nothing(r: fastredis.Redis) -> None:
    p = r.pipeline(transaction=False)
    p.set("first", 1)
    with pytest.raises(ValueError):
        p.batch("SET", ["a", "b"], [1])
    assert len(p) == 1
    assert p.execute() == [True]
    assert r.exists("a") == 0


def test_batch_errors_annotated_with_row(r: fastredis.Redis) -> None:
    r.set("str", "x")
    p = r.pipeline(transaction=False)
    p.batch("LPUSH", ["l1", "str", "l2"], "v")
    with pytest.raises(ResponseError, match=r"Command # 2 \(LPUSH str v\)"):
        p.execute()
    p.batch("LPUSH", ["l1", "str", "l2"], "v")
    res = p.execute(raise_on_error=False)
    assert res[0] == 2 and isinstance(res[1], ResponseError) and res[2] == 2


def test_batch_in_transaction_and_fallback(r: fastredis.Redis) -> None:
    p = r.pipeline(transaction=True)
    p.batch("SET", ["a", "b"], ["1", "2"]).get("a")
    assert p.execute() == [True, True, b"1"]
    # NEVER_DECODE under decoding forces redis-py's own path: batch rows expand.
    c = fastredis.Redis.from_url(r.connection_pool.connection_kwargs and f"redis://{r.connection_pool.connection_kwargs['host']}:{r.connection_pool.connection_kwargs['port']}", decode_responses=True)
    p = c.pipeline(transaction=False)
    p.batch("SET", ["a", "b"], ["3", "4"]).dump("a")
    res = p.execute()
    assert res[:2] == [True, True] and isinstance(res[2], bytes)
    assert c.get("b") == "4"


def test_slow_reply_after_spin_budget_and_socket_timeout(redis_url: str) -> None:
    # FastParser polls ~50 µs for a reply, then blocks like redis-py: a reply
    # that takes longer still arrives, and socket_timeout still fires.
    c = fastredis.Redis.from_url(redis_url)
    assert c.blpop(["empty-list"], timeout=0.2) is None
    from fastredis import connection as fconnection
    assert fconnection.SPIN_SECONDS > 0
    slow = fastredis.Redis.from_url(redis_url, socket_timeout=0.1, retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0))
    with pytest.raises(redis.exceptions.TimeoutError):
        slow.blpop(["empty-list"], timeout=1)
    slow.close()
    assert c.ping() is True


def test_spin_can_be_turned_off(redis_url: str) -> None:
    import subprocess
    import sys

    code = (
        "import fastredis, fastredis.connection as c, sys; "
        "assert c.SPIN_SECONDS == 0; r = fastredis.Redis.from_url(sys.argv[1]); "
        "r.set('spin-off', 1); assert r.get('spin-off') == b'1'"
    )
    env = {**__import__("os").environ, "FASTREDIS_SPIN_US": "0"}
    subprocess.run([sys.executable, "-c", code, redis_url], check=True, env=env)


def test_health_check_interval_pings_like_redis_py(redis_url: str, raw: redis.Redis) -> None:
    def pings() -> int:
        return int(raw.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))

    counts = []
    for cls in (redis.Redis, fastredis.Redis):
        c = cls.from_url(redis_url, health_check_interval=1)
        c.get("x")
        before = pings()
        c.get("x")  # within the interval: no PING
        assert pings() == before
        import time

        time.sleep(1.2)
        c.get("x")  # idle past the interval: one PING first
        counts.append(pings() - before)
        p = c.pipeline(transaction=False)
        time.sleep(1.2)
        p.get("x")
        p.execute()
        counts.append(pings() - before)
        c.close()
    assert counts[:2] == counts[2:] == [1, 2]


def test_resp3_push_frames_are_routed_not_counted(redis_url: str, raw: redis.Redis) -> None:
    # Client tracking sends invalidation pushes on the tracked connection;
    # they arrive between pipeline replies and must reach redis-py's push
    # handler, not a reply slot.
    c = fastredis.Redis.from_url(redis_url, protocol=3, max_connections=1)
    raw.set("tracked", "1")
    p = c.pipeline(transaction=False)
    p.execute_command("CLIENT", "TRACKING", "ON").get("tracked")
    assert p.execute() == [b"OK", b"1"]
    (conn,) = c.connection_pool._available_connections
    seen: List[Any] = []
    conn._parser.invalidation_push_handler_func = seen.append
    for i in range(3):
        # The key is tracked by the idle pooled connection: this write pushes
        # an invalidation to it, which the next execute() reads before replies.
        raw.set("tracked", str(i + 2))
        p = c.pipeline(transaction=False)
        p.get("tracked")  # re-tracks the key
        p.execute_command("CLIENT", "ID")
        p.get("tracked").set("other", i).get("other")
        got = p.execute()
        assert got[0] == str(i + 2).encode() and got[2:] == [str(i + 2).encode(), True, str(i).encode()]
    assert conn is c.connection_pool._available_connections[0]
    assert seen, "no invalidation push reached redis-py's handler"
    assert all(frame[0] in (b"invalidate", "invalidate") for frame in seen)
    c.close()
