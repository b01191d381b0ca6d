"""SessionStore against real servers: sliding TTL, rotation, destroy-all, faults."""

import time

import pytest

from fastredis.patterns.sessions import SessionStore


def test_create_get_update_delete(any_client):
    store = SessionStore(any_client, ttl=60)
    sid = store.create({"a": 1, "nested": {"x": [1, 2.5, None]}, "s": "é"})
    assert store.get(sid) == {"a": 1, "nested": {"x": [1, 2.5, None]}, "s": "é"}
    assert store.update(sid, a=2, b="new")
    assert store.delete_fields(sid, "s", "missing")
    assert store.get(sid) == {"a": 2, "nested": {"x": [1, 2.5, None]}, "b": "new"}
    assert store.destroy(sid)
    assert store.get(sid) is None
    assert not store.destroy(sid)


def test_ids_are_random_and_long(any_client):
    store = SessionStore(any_client)
    ids = {store.create() for _ in range(200)}
    assert len(ids) == 200
    for sid in ids:
        tag, secret = sid.split(".")
        assert len(secret) == 32  # 24 bytes = 192 bits of secrets.token_urlsafe
    # a user's ids share the tag (slot) but not the secret
    a, b = store.create(user_id="u"), store.create(user_id="u")
    assert a.split(".")[0] == b.split(".")[0] and a != b


def test_empty_session_exists(any_client):
    store = SessionStore(any_client)
    sid = store.create()
    assert store.get(sid) == {}
    assert store.touch(sid)


def test_unknown_expired_and_malformed_look_the_same(any_client):
    store = SessionStore(any_client, ttl=0.2)
    sid = store.create({"a": 1})
    time.sleep(0.5)
    fake = "0123456789abcdef." + "A" * 32
    for bad in (sid, fake, "garbage", "", "x" * 5000, "a.b\r\nc", "*"):
        assert store.get(bad) is None
        assert store.update(bad, a=1) is False
        assert store.delete_fields(bad, "a") is False
        assert store.touch(bad) is False
        assert store.rotate(bad) is None
        assert store.destroy(bad) is False
    # update on an unknown id must not create anything
    assert any_client.dbsize() == 0
    with pytest.raises(TypeError):
        store.get(123)


def test_sliding_ttl_extends_on_get(any_client):
    store = SessionStore(any_client, ttl=1.0)
    sid = store.create({"a": 1})
    for _ in range(4):  # 4 x 0.4 s = 1.6 s > ttl, kept alive by reads
        time.sleep(0.4)
        assert store.get(sid) == {"a": 1}
    time.sleep(1.4)
    assert store.get(sid) is None


def test_non_sliding_expires_despite_reads(any_client):
    store = SessionStore(any_client, ttl=1.0, sliding=False)
    sid = store.create({"a": 1})
    time.sleep(0.5)
    assert store.get(sid) == {"a": 1}
    time.sleep(0.8)
    assert store.get(sid) is None


def test_touch_extends_even_when_not_sliding(any_client):
    store = SessionStore(any_client, ttl=100, sliding=False)
    sid = store.create()
    tag, secret = sid.split(".")
    key = store.keys.tagged(tag, secret)
    any_client.pexpire(key, 1000)
    assert store.touch(sid)
    assert any_client.pttl(key) > 50_000


def test_rotate_keeps_data_kills_old(any_client):
    store = SessionStore(any_client, ttl=60)
    old = store.create({"cart": [1]}, user_id="alice")
    new = store.rotate(old)
    assert new and new != old
    assert store.get(old) is None
    assert store.get(new) == {"cart": [1]}
    assert store.update(old, x=1) is False
    # the index follows the rotation: destroy_all_for still finds it
    assert store.destroy_all_for("alice") == 1
    assert store.get(new) is None


def test_destroy_all_for_user_only(any_client):
    store = SessionStore(any_client, ttl=60)
    mine = [store.create({"i": i}, user_id="bob") for i in range(5)]
    other = store.create({"o": 1}, user_id="carol")
    anon = store.create({"a": 1})
    assert store.destroy_all_for("bob") == 5
    assert all(store.get(s) is None for s in mine)
    assert store.get(other) == {"o": 1}
    assert store.get(anon) == {"a": 1}
    assert store.destroy_all_for("bob") == 0


def test_index_drops_expired_sessions(any_client):
    store = SessionStore(any_client, ttl=0.2)
    store.create(user_id="dave")
    time.sleep(0.4)
    store2 = SessionStore(any_client, ttl=60)
    live = store2.create(user_id="dave")
    index = store.keys.tagged(live.split(".")[0], "idx")
    assert any_client.zcard(index) == 1  # the expired one was pruned
    assert any_client.pttl(index) > 50_000


def test_hostile_values_and_field_names(any_client):
    store = SessionStore(any_client, ttl=60)
    weird = {"a:b*?[]{}": "x\r\ny", "m:uid": "not-meta", "": [1], "big": "z" * 1_000_000}
    sid = store.create(weird, user_id="u:*{x}\r\n")
    assert store.get(sid) == weird
    with pytest.raises(ValueError):
        store.create({"nan": float("nan")})
    with pytest.raises((TypeError, ValueError)):
        store.update(sid, bad=object())
    assert store.destroy_all_for("u:*{x}\r\n") == 1
    with pytest.raises(ValueError):
        SessionStore(any_client, ttl=float("inf"))
    with pytest.raises(ValueError):
        SessionStore(any_client, ttl=0)


def test_script_flush(any_client):
    store = SessionStore(any_client, ttl=60)
    sid = store.create({"a": 1}, user_id="e")
    any_client.script_flush()
    assert store.get(sid) == {"a": 1}
    any_client.script_flush()
    assert store.rotate(sid)
    any_client.script_flush()
    assert store.destroy_all_for("e") == 1


def test_killed_connection_and_restart(private_server):
    c = private_server.client()
    store = SessionStore(c, ttl=60)
    sid = store.create({"a": 1})
    private_server.client().execute_command("CLIENT", "KILL", "TYPE", "normal")
    assert store.get(sid) == {"a": 1}  # reconnects through the retry policy
    private_server.restart()
    assert store.get(sid) is None  # data gone with the server (no persistence)
    assert store.get(store.create({"b": 2})) == {"b": 2}
