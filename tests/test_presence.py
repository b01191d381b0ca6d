"""Presence: heartbeat ZSET, atomic prune on read, join/leave events."""

import time

import pytest

from fastredis.patterns.presence import Presence


def test_at_controlled_expiry(any_client):
    p = Presence(any_client, "room", timeout=30)
    assert p.heartbeat("ann", at=1000.0)
    assert p.heartbeat("bob", at=1010.0)
    assert not p.heartbeat("ann", at=1005.0)
    assert p.online(at=1020.0) == {"ann", "bob"}
    assert p.count(at=1035.0) == 2  # ann at 1005 is exactly at the cutoff: still online
    assert p.count(at=1035.5) == 1 and p.online(at=1035.5) == {"bob"}  # ann pruned
    assert p.is_online("bob", at=1040.0)
    assert not p.is_online("ann", at=1040.0)
    assert not p.is_online("bob", at=1040.1)  # exactly at the cutoff it is still online, after not
    assert any_client.zcard(p.key) == 0  # pruned in Redis, not only filtered


def test_real_time_short_timeout(any_client):
    p = Presence(any_client, "r", timeout=0.5)
    p.heartbeat("ann")
    assert p.online() == {"ann"}
    time.sleep(0.8)
    assert p.online() == set() and p.count() == 0


def test_leave_and_rooms_are_separate(any_client):
    a, b = Presence(any_client, "a"), Presence(any_client, "a*")
    a.heartbeat("u")
    assert b.online() == set()
    assert a.leave("u") and not a.leave("u")
    assert a.online() == set()


def test_events(any_client):
    p = Presence(any_client, "lobby", timeout=10, events=True)
    ch = p.events_channel()
    with ch.subscribe() as sub:
        p.heartbeat("ann", at=100.0)
        p.heartbeat("ann", at=101.0)  # no second join
        p.heartbeat("bob", at=102.0)
        p.leave("bob", at=103.0)
        p.online(at=200.0)  # ann pruned -> leave event
        got = []
        while len(got) < 4:
            m = sub.get(timeout=5)
            assert m is not None, got
            got.append((m.data["event"], m.data["user"], m.data["room"]))
    assert got == [("join", "ann", "lobby"), ("join", "bob", "lobby"), ("leave", "bob", "lobby"), ("leave", "ann", "lobby")]


def test_hostile_input(any_client):
    p = Presence(any_client, "r:*{x}", timeout=30)
    for bad_at in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            p.heartbeat("u", at=bad_at)
    for bad_at in ("soon", True):  # a wrong type is a TypeError
        with pytest.raises(TypeError):
            p.heartbeat("u", at=bad_at)
    with pytest.raises(ValueError):
        p.heartbeat("")
    with pytest.raises(ValueError):
        Presence(any_client, "r", timeout=0)
    with pytest.raises(ValueError):
        Presence(any_client, "r", timeout=float("nan"))
    user = "u:*\r\n\u00e9"
    p.heartbeat(user)
    assert p.online() == {user}


def test_script_flush(any_client):
    p = Presence(any_client, "r")
    p.heartbeat("a")
    any_client.script_flush()
    assert p.online() == {"a"}
