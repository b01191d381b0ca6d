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


# -- session ids disclose nothing (SECURITY.md: sessions) ---------------------------------

import asyncio  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402

import redis  # noqa: E402

from fastredis.patterns.sessions import DEFAULT_MAX_AGE  # noqa: E402


def _unkeyed_tags(prefix: str, uid: str) -> set:
    """What an attacker can compute from a candidate user id without a server
    secret: the previous scheme's tag and the obvious variants of it."""
    raw = uid.encode()
    return {
        hashlib.sha256(f"{prefix}\x00{uid}".encode()).hexdigest()[:16],  # the previous scheme
        hashlib.sha256(f"{prefix}:{uid}".encode()).hexdigest()[:16],
        hashlib.sha256(raw).hexdigest()[:16],
        hashlib.sha1(raw).hexdigest()[:16],
        hashlib.md5(raw).hexdigest()[:16],
        raw.hex()[:16].ljust(16, "0"),
    }


@functools.lru_cache(maxsize=None)
def _candidate_tags(prefix: str, candidates: int) -> dict:
    """Every tag computable from the candidate user ids 0 .. candidates-1."""
    table: dict = {}
    for n in range(candidates):
        for tag in _unkeyed_tags(prefix, str(n)):
            table.setdefault(tag, []).append(n)
    return table


def _attack(sid: str, prefix: str = "sess", candidates: int = 100_000) -> list:
    """Try every candidate user id against one observed session id."""
    return list(_candidate_tags(prefix, candidates).get(sid.split(".")[0], []))


def _legacy_session(client, store: SessionStore, uid: str, data: dict, ttl_ms: int = 60_000) -> str:
    """A session as the previous version wrote it: the tag is a hash of the
    prefix and user id, no m:c / m:n / m:f bookkeeping."""
    tag = store._legacy_tag(uid)
    secret = "L" * 22 + "egacy" + uid[-5:].rjust(5, "0")
    assert len(secret) == 32
    key, index = store.keys.tagged(tag, secret), store.keys.tagged(tag, "idx")
    mapping = {"m:v": "1", "m:uid": uid}
    mapping.update({"d:" + k: store.serializer.dumps(v) for k, v in data.items()})
    client.hset(key, mapping=mapping)
    client.pexpire(key, ttl_ms)
    now_ms = int(client.time()[0]) * 1000
    client.zadd(index, {secret: now_ms + ttl_ms})
    client.pexpire(index, ttl_ms)
    return f"{tag}.{secret}"


def test_attacker_loop_over_100k_user_ids_finds_nothing(r):
    any_client = r
    store = SessionStore(any_client, ttl=60)
    sids = [store.create({"a": 1}, user_id=48213) for _ in range(2)] + [store.create(user_id="48213")]
    for sid in sids:
        assert _attack(sid) == [], sid
        assert "48213" not in sid  # (a random id holds these 5 digits with odds of about 1e-5)
    # the same loop against an id of the previous scheme finds the user at once
    legacy = _legacy_session(any_client, store, "48213", {"a": 1})
    assert 48213 in _attack(legacy)


def test_ids_of_one_user_and_of_two_users_share_nothing_computable(any_client):
    store = SessionStore(any_client, ttl=60)
    a1, a2 = store.create(user_id="alice"), store.create(user_id="alice")
    b1 = store.create(user_id="bob")
    (ta1, sa1), (ta2, sa2), (tb1, sb1) = (s.split(".") for s in (a1, a2, b1))
    assert ta1 == ta2 and sa1 != sa2  # one slot per user (destroy_all_for), independent secrets
    assert ta1 != tb1 and len({sa1, sa2, sb1}) == 3
    for uid, tag in (("alice", ta1), ("bob", tb1)):
        assert tag not in _unkeyed_tags("sess", uid)
    # the tag is drawn at random, not derived: once the user's tag key is gone
    # (it expires max_age after the last login) the same user gets a new one
    any_client.delete(store._user_key("alice"))
    assert store.create(user_id="alice").split(".")[0] != ta1
    # two stores (prefixes) give one user unrelated tags
    other = SessionStore(any_client, prefix="other")
    assert other.create(user_id="bob").split(".")[0] != tb1
    # what the server keeps: the tag under the user's key, with a lifetime past max_age
    assert any_client.get(store._user_key("bob")).decode() == tb1
    assert DEFAULT_MAX_AGE * 1000 < any_client.pttl(store._user_key("bob")) <= DEFAULT_MAX_AGE * 1000 + 3_600_000


def test_previous_scheme_ids_keep_working_and_are_destroyed(any_client):
    store = SessionStore(any_client, ttl=60, max_age=3600)
    old = _legacy_session(any_client, store, "carol", {"cart": [1]})
    new = store.create({"n": 1}, user_id="carol")
    assert old.split(".")[0] != new.split(".")[0]
    assert store.get(old) == {"cart": [1]}
    assert store.update(old, theme="dark") and store.touch(old)
    assert store.delete_fields(old, "theme")
    assert store.get(old) == {"cart": [1]}
    key = store.keys.tagged(*old.split("."))
    # its absolute lifetime counts from its first use by this version
    assert any_client.hget(key, "m:c") is not None and any_client.pttl(key) <= 60_000
    rotated = store.rotate(old)
    assert rotated and store.get(old) is None and store.get(rotated) == {"cart": [1]}
    assert store.destroy_all_for("carol") == 2  # the new-scheme and the previous-scheme session
    assert store.get(rotated) is None and store.get(new) is None
    assert store.destroy_all_for("carol") == 0


def test_max_age_ends_a_session_however_it_is_used(any_client):
    store = SessionStore(any_client, ttl=1.0, max_age=1.2)
    sid = store.create({"a": 1}, user_id="dan")
    t0 = time.monotonic()
    seen = []
    while time.monotonic() - t0 < 2.0:
        seen.append(store.get(sid) is not None)
        time.sleep(0.1)
    assert seen[0] and not seen[-1]  # used every 0.1 s (< ttl), yet ended after max_age
    assert store.get(sid) is None and store.touch(sid) is False and store.rotate(sid) is None
    # rotation keeps the creation time: it cannot extend a session
    sid = store.create({"a": 1}, user_id="dan")
    time.sleep(0.7)
    sid = store.rotate(sid)
    assert sid and any_client.pttl(store.keys.tagged(*sid.split("."))) <= 600
    # max_age below ttl caps the first lifetime too
    short = SessionStore(any_client, ttl=60, max_age=0.5)
    s2 = short.create(user_id="dan")
    assert any_client.pttl(short.keys.tagged(*s2.split("."))) <= 500


def test_without_max_age_the_user_tag_key_never_expires(any_client):
    store = SessionStore(any_client, ttl=60, max_age=None)
    store.create(user_id="erin")
    assert any_client.pttl(store._user_key("erin")) == -1
    # a store with max_age never shortens it (the other store's sessions need it)
    SessionStore(any_client, ttl=60).create(user_id="erin")
    assert any_client.pttl(store._user_key("erin")) == -1


def test_replay_after_destroy_and_rotate_is_refused(any_client):
    store = SessionStore(any_client, ttl=60)
    for end in ("destroy", "destroy_all_for", "rotate"):
        sid = store.create({"role": "user"}, user_id="frank")
        if end == "destroy":
            assert store.destroy(sid)
        elif end == "destroy_all_for":
            assert store.destroy_all_for("frank") == 1
        else:
            assert store.rotate(sid)
        keys_before = sorted(any_client.keys("*"))
        assert store.get(sid) is None
        assert store.update(sid, role="admin") is False
        assert store.delete_fields(sid, "role") is False
        assert store.touch(sid) is False
        assert store.rotate(sid) is None
        assert store.destroy(sid) is False
        assert sorted(any_client.keys("*")) == keys_before  # nothing resurrected
        store.destroy_all_for("frank")


def test_lookups_do_not_compare_secrets_in_python(any_client):
    """An unknown secret costs what a known one does: one script call whose
    key is the secret (the server hashes the whole key, so response time does
    not reveal how much of a guess matched); no comparison happens here."""
    store = SessionStore(any_client, ttl=60)
    live = store.create({"a": 1}, user_id="gina")
    tag, secret = live.split(".")
    near_miss = f"{tag}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    other = "0123456789abcdef." + "x" * 32
    plans = [store.plan_get(s) for s in (live, near_miss, other)]
    shapes = [(len(p.calls), p.calls[0].args[0], p.calls[0].args[1], len(p.calls[0].args)) for p in plans]
    assert shapes[0] == shapes[1] == shapes[2] and shapes[0][:2] == (1, "EVALSHA")
    assert store.get(near_miss) is None and store.get(other) is None and store.get(live) == {"a": 1}
    import inspect

    import fastredis.patterns.sessions as mod

    source = inspect.getsource(mod)
    assert "compare_digest" not in source and "== secret" not in source and "secret ==" not in source


# -- limits on what callers store (SECURITY.md: limits) ---------------------------------------


def test_session_limits_have_defaults_and_clear_errors(any_client):
    store = SessionStore(any_client, ttl=60)
    assert (store.max_bytes, store.max_fields) == (1 << 20, 256)
    with pytest.raises(ValueError, match=r"257 fields, over max_fields=256 .*max_fields="):
        store.create({f"f{i}": i for i in range(257)})
    with pytest.raises(ValueError, match=r"over max_bytes=1048576 .*max_bytes="):
        store.create({"blob": "x" * (1 << 20)})
    assert any_client.dbsize() == 0  # nothing stored
    small = SessionStore(any_client, ttl=60, max_bytes=100, max_fields=3)
    sid = small.create({"a": "x" * 40}, user_id="hal")
    with pytest.raises(ValueError, match="max_bytes=100"):
        small.update(sid, b="y" * 60)  # 40 + 60 + names > 100
    with pytest.raises(ValueError, match="max_fields=3"):
        small.update(sid, b=1, c=2, d=3)
    assert small.get(sid) == {"a": "x" * 40}  # nothing changed
    assert small.update(sid, a="z" * 90)  # replacing a field counts its new size only
    assert small.update(sid, a="short", b=1, c=2)
    assert small.delete_fields(sid, "b", "c", "c") and small.update(sid, d=4, e=5)
    with pytest.raises(ValueError, match="max_fields=3"):
        small.update(sid, f=6)
    key = small.keys.tagged(*sid.split("."))
    assert any_client.hget(key, "m:f") == b"3"
    assert int(any_client.hget(key, "m:n")) == len('a"short"d4e5')
    # a session written before the counters is counted on its first change
    old = _legacy_session(any_client, small, "hal", {"a": "x" * 80})
    with pytest.raises(ValueError, match="max_bytes=100"):
        small.update(old, b="y" * 30)
    assert small.update(old, b="y")
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_bytes"):
            SessionStore(any_client, max_bytes=bad)
    with pytest.raises(TypeError, match="max_fields"):
        SessionStore(any_client, max_fields=1.5)
    with pytest.raises(ValueError, match="max_age"):
        SessionStore(any_client, max_age=0)


def test_session_limits_in_the_asyncio_twin(redis_url):
    import fastredis.asyncio as fa

    async def main() -> None:
        async with fa.Redis.from_url(redis_url) as r:
            store = fa.SessionStore(r, ttl=60, max_bytes=10, max_fields=1)
            with pytest.raises(ValueError, match="max_fields=1"):
                await store.create({"a": 1, "b": 2})
            sid = await store.create({"a": 1}, user_id="ivy")
            with pytest.raises(ValueError, match="max_bytes=10"):
                await store.update(sid, a="x" * 20)
            with pytest.raises(ValueError, match="max_fields=1"):
                await store.update(sid, b=2)
            assert await store.get(sid) == {"a": 1}
            assert _attack(sid, candidates=1000) == []
            assert await store.destroy_all_for("ivy") == 1

    redis.Redis.from_url(redis_url).flushdb()
    asyncio.run(main())
