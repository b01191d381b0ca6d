"""The single-command path's pool checkout and release (``_redispy.checkout``
and ``checkin``) leave the pool and its connections exactly as redis-py's
``get_connection``/``release`` do, and hand over to those whenever the lean
steps would skip something that matters."""

from __future__ import annotations

import os
from typing import Any, List

import pytest
import redis

import fastredis
from fastredis import _redispy
from fastredis.server import RedisServer


def _counting(pool: Any, calls: List[str]) -> None:
    get, release = pool.get_connection, pool.release

    def get_connection(*a: Any, **k: Any) -> Any:
        calls.append("get")
        return get(*a, **k)

    def release_(conn: Any) -> None:
        calls.append("release")
        release(conn)

    pool.get_connection, pool.release = get_connection, release_


def test_lean_path_is_available_and_leaves_the_pool_as_redis_py_does(redis_url: str) -> None:
    assert _redispy.LEAN_POOL, _redispy.PROBLEMS
    clients = [cls.from_url(redis_url) for cls in (redis.Redis, fastredis.Redis)]
    for client in clients:
        client.set("pool:k", "v")
        assert [client.get("pool:k") for _ in range(3)] == [b"v"] * 3
    plain, fast = (c.connection_pool for c in clients)
    for pool in (plain, fast):
        assert len(pool._available_connections) == 1 and not pool._in_use_connections
        assert pool._created_connections == 1
    calls: List[str] = []
    _counting(fast, calls)
    assert clients[1].get("pool:k") == b"v"
    assert calls == []  # the lean steps ran: redis-py's methods were not needed
    for client in clients:
        client.close()


def test_a_connection_with_unread_data_is_treated_as_by_redis_py(redis_url: str) -> None:
    """A connection released with a reply still unread (a caller's bug, or an
    interrupted read): the next command gets what it gets with redis-py
    (redis-py 8 keeps such a connection while maintenance notifications are
    on, and reconnects it otherwise)."""
    import time

    got = []
    for cls in (redis.Redis, fastredis.Redis):
        client = cls.from_url(redis_url)
        client.set("pool:dirty", "right")
        conn = client.connection_pool.get_connection()
        conn.send_command("ECHO", "stale")
        time.sleep(0.05)  # the stale reply is in the socket
        client.connection_pool.release(conn)
        got.append((client.get("pool:dirty"), client.get("pool:dirty"), client.connection_pool._created_connections))
        client.close()
    assert got[0] == got[1]


def test_a_connection_the_server_closed_is_reconnected(private_server: RedisServer) -> None:
    client = fastredis.Redis(port=private_server.port)
    client.set("k", "v")
    admin = redis.Redis(port=private_server.port)
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    import time

    time.sleep(0.05)
    assert client.get("k") == b"v"  # reconnected at checkout, nothing raised
    assert client.incr("n") == 1  # a write on a fresh connection: applied once
    assert admin.get("n") == b"1"
    client.close()
    admin.close()


@pytest.mark.parametrize("why", ["observability", "blocking-pool", "fork", "re-auth-listener"])
def test_redis_py_methods_are_used_where_the_lean_steps_do_not_apply(redis_url: str, why: str, monkeypatch: Any) -> None:
    if why == "blocking-pool":
        client = fastredis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(redis_url))
    else:
        client = fastredis.Redis.from_url(redis_url)
    client.set("pool:k", "v")
    pool = client.connection_pool
    calls: List[str] = []
    _counting(pool, calls)
    if why == "observability":
        monkeypatch.setattr(_redispy, "observability_enabled", lambda: True)
    elif why == "fork":
        monkeypatch.setattr(_redispy, "_getpid", lambda: os.getpid() + 1)
    elif why == "re-auth-listener":

        class Listener:
            def listen(self, event: Any) -> None:
                calls.append("listener")

        from redis.event import AfterConnectionReleasedEvent

        pool._event_dispatcher.register_listeners({AfterConnectionReleasedEvent: [Listener()]})
    assert client.get("pool:k") == b"v"
    if why == "re-auth-listener":
        assert calls == ["release", "listener"]  # checkout stays lean; release dispatches the event
    elif why == "fork":
        assert calls[:1] == ["get"]
    else:
        assert calls == ["get", "release"]
    client.close()
