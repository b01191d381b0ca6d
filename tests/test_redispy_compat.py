"""Drop-in details: the redis-py internals fastredis hooks into, ``import
fastredis as redis``, and connections fastredis does not own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any
from unittest import mock

import pytest
import redis

import fastredis
from fastredis import _redispy
from fastredis.connection import FastParser, is_fast_connection


def test_installed_redis_py_has_every_hook() -> None:
    assert _redispy.PROBLEMS == []
    assert _redispy.FAST_PATH is True


def _run(code: str, url: str) -> str:
    out = subprocess.run(
        [sys.executable, "-W", "always", "-c", textwrap.dedent(code), url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def test_a_moved_hook_warns_once_and_falls_back_to_redis_py(redis_url: str) -> None:
    """If a newer redis-py moves a private method fastredis uses, fastredis
    warns once and takes redis-py's own paths: slower, never wrong."""
    out = _run(
        """
        import sys, redis.client
        del redis.client.Pipeline._execute_pipeline   # as if redis-py had renamed it
        import fastredis
        from fastredis import _redispy
        assert _redispy.FAST_PATH is False, _redispy.PROBLEMS
        r = fastredis.Redis.from_url(sys.argv[1])
        r.set("moved", 1)
        assert r.get("moved") == b"1"
        with r.pipeline() as p:
            assert p.set("m2", 2).incr("m2").execute() == [True, 3]
        conn = r.connection_pool.get_connection()
        assert type(conn._parser).__name__ != "FastParser"
        print("ok")
        """,
        redis_url,
    )
    assert "ok" in out
    assert out.count("RedisPyCompatWarning") == 1
    assert "Pipeline._execute_pipeline is missing" in out


def test_import_fastredis_as_redis(redis_url: str) -> None:
    import fastredis as redis_like

    for name in redis.__all__:
        assert hasattr(redis_like, name), name
    assert redis_like.Redis is fastredis.Redis and redis_like.StrictRedis is fastredis.Redis
    assert redis_like.ConnectionPool is redis.ConnectionPool
    assert redis_like.exceptions.ConnectionError is redis.exceptions.ConnectionError
    assert redis_like.exceptions.WatchError is redis.exceptions.WatchError
    assert issubclass(redis_like.Sentinel, redis.Sentinel)
    client = redis_like.from_url(redis_url)
    assert isinstance(client, fastredis.Redis) and client.ping()
    pool = redis_like.BlockingConnectionPool.from_url(redis_url)
    assert redis_like.Redis(connection_pool=pool).ping()


class _MyConnection(redis.Connection):
    """A user subclass: fastredis does not drive it."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


def test_user_connection_class_takes_redis_py_path(redis_url: str) -> None:
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=_MyConnection)
    r = fastredis.Redis(connection_pool=pool)
    plain = redis.Redis(connection_pool=redis.ConnectionPool.from_url(redis_url, connection_class=_MyConnection))
    for client in (r, plain):
        client.delete("c")
        client.set("u", 1)
        p = client.pipeline()
        p.set("a", 1).lpush("u", 1).set("b", 2)
        with pytest.raises(redis.ResponseError, match=r"Command # 2 \(LPUSH u 1\) of pipeline caused error: WRONGTYPE"):
            p.execute()
    conn = pool.get_connection()
    assert not is_fast_connection(conn) and not isinstance(conn._parser, FastParser)
    pool.release(conn)
    assert _MyConnection.sent > 0


def test_mock_connection_is_not_driven_by_the_fast_path() -> None:
    """redis-py's own tests mock connections: fastredis must use the mock as
    redis-py would (its send/read methods), not reach for its socket."""
    conn = mock.Mock(spec=redis.Connection)
    conn.retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
    conn.read_response.return_value = b"PONG"
    conn.should_reconnect.return_value = False
    pool = mock.Mock(spec=redis.ConnectionPool)
    pool.get_connection.return_value = conn
    pool.connection_kwargs = {}
    pool.get_encoder.return_value = redis.connection.Encoder("utf-8", "strict", False)
    r = fastredis.Redis(connection_pool=pool)
    assert not is_fast_connection(conn)
    assert r.ping() is True
    conn.send_command.assert_called_once_with("PING")  # as redis-py calls it
    pool.release.assert_called_once_with(conn)


def test_explicit_pool_gets_the_fast_parser_and_raises_pipeline_errors(redis_url: str) -> None:
    """The defect: a user-built pool swallowed a transaction's errors and lost the fast parser."""
    for pool in (
        redis.ConnectionPool.from_url(redis_url),
        redis.BlockingConnectionPool.from_url(redis_url),
    ):
        r = fastredis.Redis(connection_pool=pool)
        r.set("c", "x")
        for transaction in (False, True):
            p = r.pipeline(transaction=transaction)
            p.set("a", 1).set("b", 2).lpush("c", 3).set("d", 4)
            with pytest.raises(redis.ResponseError, match=r"^Command # 3 \(LPUSH c 3\) of pipeline caused error: WRONGTYPE"):
                p.execute()
        conn = pool.get_connection()
        assert isinstance(conn._parser, FastParser) and is_fast_connection(conn)
        pool.release(conn)


def test_connection_created_before_the_swap_still_raises(redis_url: str) -> None:
    """A pool shared with redis.Redis may hold connections with redis-py's
    parser; fastredis takes redis-py's path on those, with the same errors."""
    pool = redis.ConnectionPool.from_url(redis_url)
    plain = redis.Redis(connection_pool=pool)
    plain.set("c", "x")  # a connection with _HiredisParser now sits in the pool
    r = fastredis.Redis(connection_pool=pool)
    old = pool.get_connection()
    assert not isinstance(old._parser, FastParser)
    pool.release(old)
    p = r.pipeline(transaction=True)
    p.set("a", 1).lpush("c", 3)
    with pytest.raises(redis.ResponseError, match=r"^Command # 2 \(LPUSH c 3\)"):
        p.execute()


def test_max_bulk_len_is_configurable(redis_url: str) -> None:
    big = "x" * 100
    fastredis.Redis.from_url(redis_url).set("big", big)
    capped = fastredis.Redis.from_url(redis_url, max_bulk_len=10)
    with pytest.raises(fastredis.ProtocolError):
        capped.get("big")
    assert capped.get("missing") is None  # the bad connection was dropped, not reused
    assert fastredis.Redis.from_url(redis_url, max_bulk_len=None).get("big") == big.encode()
    assert fastredis.Redis.from_url(redis_url).get("big") == big.encode()  # default: 512 MiB
    with pytest.raises(TypeError, match="max_bulk_len"):
        fastredis.Redis(max_bulk_len=-1)


def test_batch_rows_are_what_was_encoded(r: fastredis.Redis) -> None:
    """A caller that reuses its lists after batch() does not change what the
    error annotation (or redis-py's fallback path) reports."""
    keys, values = ["a", "h", "c"], [1, 2, 3]
    r.hset("h", "f", 1)
    p = r.pipeline(transaction=False)
    p.batch("INCRBY", keys, values)
    keys[1], values[1] = "changed", 99
    with pytest.raises(redis.ResponseError, match=r"Command # 2 \(INCRBY h 2\) of pipeline caused error: WRONGTYPE"):
        p.execute()
