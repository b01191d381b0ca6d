"""Channel: pub/sub with automatic resubscribe, gap reports, escaped patterns, fork safety."""

import os
import threading
import time

import pytest

from fastredis.patterns.pubsub import Channel, Gap


def _wait(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def test_publish_subscribe_json(any_client):
    ch = Channel(any_client, "news")
    with ch.subscribe() as sub:
        assert ch.publish({"a": [1, 2.5]}) == 1
        any_client.publish(ch.channel, b"\xffnot json")
        m1, m2 = sub.get(5), sub.get(5)
    assert (m1.channel, m1.data) == ("chan:news", {"a": [1, 2.5]})
    assert m2.data == b"\xffnot json" and m2.raw == b"\xffnot json"


def test_iterate(any_client):
    ch = Channel(any_client, "it")
    sub = ch.subscribe()
    for i in range(3):
        ch.publish(i)
    got = []
    for m in sub:
        got.append(m.data)
        if len(got) == 3:
            break
    sub.close()
    assert got == [0, 1, 2]


def test_handler_thread_and_close(any_client):
    ch = Channel(any_client, "h")
    got = []
    done = threading.Event()

    def handler(m):
        got.append(m.data)
        if m.data == "boom":
            raise RuntimeError("handler errors must not kill the thread")
        if len(got) == 3:
            done.set()

    errors = []
    with ch:
        sub = ch.subscribe(handler, on_error=errors.append)
        ch.publish("boom")
        ch.publish(1)
        ch.publish(2)
        assert done.wait(5)
        with pytest.raises(RuntimeError):
            iter(sub).__next__()
    assert got == ["boom", 1, 2] and len(errors) == 1
    assert not sub._thread.is_alive()
    # the channel closed its subscription (the server notices the close asynchronously)
    assert _wait(lambda: Channel(any_client, "h").publish("x") == 0)


def test_pattern_names_cannot_glob(any_client):
    star = Channel(any_client, "room*")
    q = Channel(any_client, "r?om")
    with star.subscribe(children=True) as sub, q.subscribe(children=True) as sub_q:
        assert Channel(any_client, "roomA").publish("no") == 0
        assert Channel(any_client, "roomA").child("x").publish("no") == 0
        assert Channel(any_client, "room").child("*").publish("no") == 0
        assert Channel(any_client, "room").publish("no") == 0
        assert star.child("a:b*").publish("yes") == 1
        assert Channel(any_client, "room*").publish("direct") == 1
        m1, m2 = sub.get(5), sub.get(5)
        assert sub.get(0.2) is None
        assert sub_q.get(0.1) is None
    assert m1.data == "yes" and m1.pattern == "chan:room%2A:*" and m1.channel == "chan:room%2A:a%3Ab%2A"
    assert m2.data == "direct" and m2.pattern is None


def test_resubscribes_after_client_kill_20_times(private_server):
    client = private_server.client()
    killer = private_server.client()
    ch = Channel(client, "k")
    gaps = []
    with ch.subscribe(on_gap=gaps.append, max_backoff=0.2) as sub:
        for i in range(20):
            assert killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
            t0 = time.monotonic()
            # the gap is reported as soon as the subscription is confirmed again
            while len(gaps) < i + 1 and time.monotonic() - t0 < 5:
                sub.get(0.05)
            assert len(gaps) == i + 1, f"no resubscribe after kill #{i}"
            assert time.monotonic() - t0 < 2.0  # about 1 s, with a margin for a busy machine
            assert ch.publish({"n": i}) == 1
            m = sub.get(5)
            assert m is not None and m.data == {"n": i}
        assert sub.reconnects == 20
    assert all(isinstance(g, Gap) and g.end >= g.start for g in gaps)


def test_handler_survives_kill_and_restart(private_server):
    client = private_server.client()
    ch = Channel(client, "r")
    got, gaps = [], []
    with ch.subscribe(got.append, on_gap=gaps.append, max_backoff=0.1):
        ch.publish(1)
        assert _wait(lambda: len(got) == 1)
        private_server.client().execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        assert _wait(lambda: len(gaps) == 1)
        ch.publish(2)
        assert _wait(lambda: len(got) == 2)
        private_server.restart()
        assert _wait(lambda: len(gaps) == 2, 10)
        ch.publish(3)
        assert _wait(lambda: len(got) == 3)
    assert [m.data for m in got] == [1, 2, 3]


def test_silent_server_detected_by_health_check(private_server):
    ch = Channel(private_server.client(), "s")
    with ch.subscribe(health_interval=0.3) as sub:
        private_server.pause()
        try:
            assert sub.get(1.5) is None
        finally:
            private_server.resume()
        gaps_before = len(sub.gaps)
        assert _wait(lambda: (sub.get(0.1), len(sub.gaps) > gaps_before)[1], 10)
        ch.publish("after")
        assert sub.get(5).data == "after"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_never_shares_socket(any_client):
    ch = Channel(any_client, "f")
    got = []
    with ch.subscribe(got.append) as handled, ch.subscribe() as iterated:
        pid = os.fork()
        if pid == 0:  # child: the handler thread is gone; the iterated one reconnects on its own
            code = 1
            try:
                assert handled.closed
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    if iterated.get(0.1) is not None:
                        break
                    Channel(any_client.__class__.from_url(_url(any_client)), "f").publish("from-child")
                else:
                    raise AssertionError("child got nothing")
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # the parent's subscriptions still work and saw the child's messages
        assert _wait(lambda: any(m.data == "from-child" for m in got))
        ch.publish("parent")
        seen = []
        assert _wait(lambda: seen.append(iterated.get(0.1)) or any(m is not None and m.data == "parent" for m in seen))


def _url(client):
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/0"


def test_bad_arguments(any_client):
    with pytest.raises(ValueError):
        Channel(any_client, "x").child()
    with pytest.raises(TypeError):
        Channel(any_client, 1.5)
    with pytest.raises(ValueError):
        Channel(any_client, "x").publish(float("nan"))


def test_pattern_subscription_resubscribes_after_kill(private_server):
    """children=True subscribes a pattern: after its connection is killed, a
    child channel's publish must reach the subscriber again (issue 12: a
    missing test; a reconnect that restored only the channels passed before)."""
    client = private_server.client()
    killer = private_server.client()
    room = Channel(client, "room")
    gaps = []
    with room.subscribe(children=True, on_gap=gaps.append, max_backoff=0.1) as sub:
        assert room.child("a").publish(1) == 1 and sub.get(5).data == 1
        assert killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
        deadline = time.monotonic() + 10
        while not gaps and time.monotonic() < deadline:
            sub.get(0.05)
        assert gaps and sub.subscribed
        assert killer.pubsub_numpat() == 1  # the pattern itself was subscribed again
        assert room.child("b").publish("after") == 1
        m = sub.get(5)
        assert m is not None and (m.channel, m.data, m.pattern) == ("chan:room:b", "after", "chan:room:*")


def _subscription_threads():
    return [t for t in threading.enumerate() if t.name == "fastredis-subscription" and t.is_alive()]


def _pubsub_connections(r):
    return sum(1 for c in r.client_list() if "P" in str(c.get("flags", "")) or int(c.get("sub", 0) or 0) > 0)


def test_dropped_handler_subscriptions_leak_nothing(private_server):
    """Handler subscriptions never closed: once the Subscription and its Channel
    are collected, the threads end and the server sees the connections go."""
    import gc

    observer = private_server.client()
    client = private_server.client()
    got = []
    for i in range(5):
        Channel(client, f"gc{i}").subscribe(got.append)
    gc.collect()
    assert _wait(lambda: not _subscription_threads(), 10)
    assert _wait(lambda: _pubsub_connections(observer) == 0, 10)
    # kept while its Channel lives
    keep = Channel(client, "kept")
    keep.subscribe(got.append)
    gc.collect()
    assert keep.publish("x") == 1 and _wait(lambda: "x" in [m.data for m in got])
    keep.close()
    assert _wait(lambda: not _subscription_threads(), 10)
    observer.close()


def test_closed_objects_refuse_use(any_client):
    from fastredis.exceptions import ClosedError

    ch = Channel(any_client, "c")
    sub = ch.subscribe()
    sub.close()
    with pytest.raises(ClosedError):
        sub.get(0.1)
    with pytest.raises(ClosedError):
        next(iter(sub))
    ch.close()
    with pytest.raises(ClosedError):
        ch.publish(1)
    with pytest.raises(ClosedError):
        ch.subscribe()
