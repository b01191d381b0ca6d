
from fastredis.keys import KeySpace, escape_part
from fastredis.scripts import LuaScript, run_pipeline


def test_luascript_after_script_flush(any_client):
    s = LuaScript("return redis.call('INCRBY', KEYS[1], ARGV[1])", name="t_incrby")
    assert s(any_client, ["n"], [2]) == 2
    any_client.script_flush()
    assert s(any_client, ["n"], [3]) == 5


def test_run_pipeline_reruns_only_noscript(any_client):
    s = LuaScript("return redis.call('INCR', KEYS[1])", name="t_incr")
    any_client.script_flush()
    p = any_client.pipeline(transaction=False)
    s.stage(p, ["n"])
    p.incr("plain")
    s.stage(p, ["n"])
    assert run_pipeline(p) == [1, 1, 2]
    assert int(any_client.get("plain")) == 1  # not replayed


def test_transaction_preloads(any_client):
    s = LuaScript("return redis.call('INCR', KEYS[1]) + 100", name="t_incr100")
    any_client.script_flush()
    p = any_client.pipeline(transaction=True)
    s.stage(p, ["{t}n"])
    p.incr("{t}m")
    assert run_pipeline(p) == [101, 1]


def test_keys_escape_hostile_parts():
    ks = KeySpace("p")
    hostile = ["*", "?", "[", "]", "{", "}", ":", "a\r\nb", "%", " ", "\\"]
    keys = {ks.key(h) for h in hostile}
    assert len(keys) == len(hostile)
    for k in keys:
        assert all(c not in k[2:] for c in "*?[]{}: \r\n\\")
    assert escape_part(b"\xff\xfe") == "%FF%FE"
    assert ks.key("a:b", "c") != ks.key("a", "b:c")
    assert ks.tagged("x{y}") == "p:{x%7By%7D}"


def test_private_server_restart(private_server):
    c = private_server.client()
    c.set("k", 1)
    private_server.restart()
    assert c.get("k") is None  # no persistence; client reconnects
