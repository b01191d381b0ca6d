"""Cart: validated integer quantities, atomic merge, concurrent updates from processes."""

import multiprocessing as mp

import pytest
import redis

from fastredis.patterns.cart import Cart


def test_add_set_remove_items_count(any_client):
    cart = Cart(any_client, max_qty=100)
    assert cart.add("u1", "apple") == 1
    assert cart.add("u1", "apple", 4) == 5
    assert cart.set_qty("u1", "pear", 7) == 7
    assert cart.items("u1") == {"apple": 5, "pear": 7}
    assert cart.count("u1") == 12
    assert cart.set_qty("u1", "pear", 0) == 0
    assert cart.items("u1") == {"apple": 5}
    assert cart.remove("u1", "apple") and not cart.remove("u1", "apple")
    cart.add("u1", "x")
    cart.clear("u1")
    assert cart.items("u1") == {} and cart.count("u1") == 0
    assert 0 < any_client.pttl(cart.key("u1")) or not any_client.exists(cart.key("u1"))


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                                        (float("inf"), ValueError), (101, ValueError), (10**30, ValueError),
                                        ("3", TypeError), (None, TypeError), (True, TypeError)])
def test_invalid_quantities(any_client, bad, error):
    cart = Cart(any_client, max_qty=100)
    with pytest.raises(error):
        cart.add("u", "i", bad)
    with pytest.raises(error):
        cart.set_qty("u", "i", bad)
    assert cart.items("u") == {}


def test_add_past_cap_raises_and_changes_nothing(any_client):
    cart = Cart(any_client, max_qty=10)
    cart.add("u", "i", 8)
    with pytest.raises(ValueError):
        cart.add("u", "i", 3)
    assert cart.items("u") == {"i": 8}
    assert cart.add("u", "i", 2) == 10


def test_merge_adds_and_clamps(any_client):
    cart = Cart(any_client, max_qty=10)
    cart.add("anon", "a", 2)
    cart.add("anon", "b", 9)
    cart.add("user", "a", 1)
    cart.add("user", "b", 5)
    cart.add("user", "c", 1)
    assert cart.merge("anon", "user") == 2
    assert cart.items("user") == {"a": 3, "b": 10, "c": 1}
    assert cart.items("anon") == {}
    assert cart.merge("anon", "user") == 0  # replay: nothing more moves
    assert cart.merge("user", "user") == 0
    assert cart.items("user") == {"a": 3, "b": 10, "c": 1}


def test_hostile_names(any_client):
    cart = Cart(any_client)
    owner, item = "o:*{x}\r\n", b"\xff\xfe:*?"
    cart.add(owner, item, 2)
    cart.add(owner, "é", 1)
    assert cart.items(owner) == {item.decode("utf-8", "surrogateescape"): 2, "é": 1}
    assert cart.items("o") == {}


def test_script_flush_and_killed_connection(private_server):
    c = private_server.client()
    cart = Cart(c)
    cart.add("u", "i", 1)
    c.script_flush()
    assert cart.add("u", "i", 1) == 2
    private_server.client().execute_command("CLIENT", "KILL", "TYPE", "normal")
    assert cart.add("u", "i", 1) == 3
    c.script_flush()
    cart.add("v", "i", 1)
    assert cart.merge("v", "u") == 1 and cart.items("u") == {"i": 4}


def _worker(url, n):
    r = redis.Redis.from_url(url)
    cart = Cart(r, max_qty=10**6)
    for i in range(n):
        cart.add("shared", "item", 1)
        cart.add("shared", f"w{i % 3}", 2)
    r.close()


def test_concurrent_adds_from_processes_lose_nothing(redis_url, r):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(redis_url, 200)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    items = Cart(r).items("shared")
    assert items["item"] == 800
    assert sum(v for k, v in items.items() if k.startswith("w")) == 1600
