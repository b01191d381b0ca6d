"""The sliding-window core: both twins, and agreement between them."""

from __future__ import annotations

import importlib
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import NO_EXTENSIONS, twin_params


@pytest.fixture(params=twin_params("_window"))
def w(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return importlib.import_module(request.param)


def test_compiled_core_loaded() -> None:
    from fastredis import _window

    if NO_EXTENSIONS:
        assert _window.IMPLEMENTATION == "py"
    else:
        assert _window.IMPLEMENTATION == "c", "the compiled _window_c should have loaded"


def test_window_arithmetic(w) -> None:  # type: ignore[no-untyped-def]
    assert w.window_index(59.999, 60.0) == 0
    assert w.window_index(60.0, 60.0) == 1
    assert w.window_index(-0.5, 1.0) == -1
    assert w.counter_weight(12.5, 10.0) == 0.75
    assert w.counter_weight(20.0, 10.0) == 1.0
    assert w.buckets_covering(5.0, 25.0, 10.0) == [0, 1, 2]
    assert w.buckets_covering(10.0, 20.0, 10.0) == [1]
    assert w.buckets_covering(3.0, 3.0, 10.0) == []
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="window|width"):
            w.counter_weight(1.0, bad)
        with pytest.raises(ValueError, match="width"):
            w.buckets_covering(0.0, 1.0, bad)


def test_decode_decisions(w) -> None:  # type: ignore[no-untyped-def]
    from fastredis.patterns.ratelimit import Decision

    reply = [1, 2, 4, b"0", b"1.5", 0, 1, 0, "inf", "2"]
    got = w.decode_decisions(reply, [10, 5], Decision)
    assert got == [Decision(True, 5, 4, 0.0, 1.5), Decision(False, 10, 0, math.inf, 2.0)]
    assert all(type(d.allowed) is bool for d in got)
    with pytest.raises(ValueError, match="5 entries"):
        w.decode_decisions([1, 1, 1], [1], Decision)


def test_deny_cache(w) -> None:  # type: ignore[no-untyped-def]
    c = w.DenyCache(maxsize=3)
    c.deny("a", 10.0)
    assert c.blocked("a", 4.0) == 6.0
    c.deny("a", 5.0)  # an earlier deadline does not shorten a denial
    assert c.blocked("a", 4.0) == 6.0
    assert c.blocked("b", 4.0) == 0.0
    assert c.blocked("a", 10.0) == 0.0 and len(c) == 0  # expired entries go
    for k in "abc":
        c.deny(k, 100.0)
    c.deny("d", 100.0)
    assert len(c) == 3 and c.blocked("a", 0.0) == 0.0 and c.blocked("d", 0.0) == 100.0
    c.deny("e", 200.0, now=150.0)  # full: expired entries are dropped first
    assert len(c) == 1
    c.discard("e")
    c.clear()
    assert len(c) == 0
    with pytest.raises(ValueError, match="maxsize"):
        w.DenyCache(maxsize=0)
    with pytest.raises(ValueError, match="NaN"):
        c.deny("x", float("nan"))


def test_local_window(w) -> None:  # type: ignore[no-untyped-def]
    lw = w.LocalWindow(2, 10.0)
    assert lw.hit("k", 1.0) == (True, 1, 0.0, 19.0)
    assert lw.hit("k", 1.0)[0] is True
    assert lw.hit("k", 1.0) == (False, 0, 14.0, 19.0)  # denial consumes nothing
    assert lw.peek("k", 15.0) == (True, 1, 0.0, 5.0)  # prev=2 weighted 0.5
    assert lw.hit("k", 2.0, cost=3) == (False, 0, math.inf, 18.0)
    assert lw.hit("other", 1.0)[0] is True
    lw.reset("k")
    assert lw.peek("k", 1.0) == (True, 2, 0.0, 0.0)
    with pytest.raises(ValueError, match="cost"):
        lw.hit("k", 1.0, cost=0)
    with pytest.raises(ValueError, match="cost"):
        lw.hit("k", 1.0, cost=True)
    with pytest.raises(ValueError, match="limit"):
        w.LocalWindow(0, 1.0)
    with pytest.raises(ValueError, match="window"):
        w.LocalWindow(1, float("inf"))


def test_local_window_retry_after_is_exact(w) -> None:  # type: ignore[no-untyped-def]
    lw = w.LocalWindow(5, 1.0)
    t = 0.25
    for _ in range(5):
        assert lw.hit("k", t)[0]
    t = 1.1
    allowed, _, retry, _ = lw.hit("k", t)
    assert not allowed and retry > 0
    assert not lw.peek("k", t + retry * 0.98)[0]
    assert lw.peek("k", t + retry + 1e-9)[0]


_ops = st.lists(
    st.tuples(st.sampled_from("abc"), st.floats(0.0, 5.0), st.integers(1, 4), st.booleans()),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(1, 8), window=st.sampled_from([0.5, 1.0, 2.5]), ops=_ops)
def test_twins_agree(limit: int, window: float, ops) -> None:  # type: ignore[no-untyped-def]
    from fastredis import _window_py

    if NO_EXTENSIONS:
        pytest.skip("FASTREDIS_NO_EXTENSIONS=1")
    from fastredis import _window_c

    a, b = _window_c.LocalWindow(limit, window), _window_py.LocalWindow(limit, window)
    ca, cb = _window_c.DenyCache(4), _window_py.DenyCache(4)
    now = 0.0
    for key, dt, cost, peek in ops:
        now += dt
        ra = (a.peek if peek else a.hit)(key, now, cost)
        rb = (b.peek if peek else b.hit)(key, now, cost)
        assert ra[0] == rb[0] and ra[1] == rb[1]
        assert ra[2] == pytest.approx(rb[2]) and ra[3] == pytest.approx(rb[3])
        # The local counter never admits more than `limit` into a window it
        # would count: the estimate after an admission stays within limit.
        if ra[0] and not peek:
            assert ra[1] >= 0
        if not ra[0] and ra[2] != math.inf:
            ca.deny(key, now + ra[2], now)
            cb.deny(key, now + rb[2], now)
        assert ca.blocked(key, now) == cb.blocked(key, now)
    assert len(a) == len(b)


@settings(max_examples=200, deadline=None)
@given(start=st.floats(-1e6, 1e6), length=st.floats(0, 1e3), width=st.floats(0.01, 100))
@example(start=-5e-324, length=1.0, width=2.0)  # start/width underflows to -0.0
def test_buckets_cover_the_span(start: float, length: float, width: float) -> None:
    from fastredis import _window_py

    end = start + length
    got = _window_py.buckets_covering(start, end, width)
    if not NO_EXTENSIONS:
        from fastredis import _window_c

        assert _window_c.buckets_covering(start, end, width) == got
    if end > start:
        assert got == list(range(got[0], got[-1] + 1))
        assert got[0] * width <= start + 1e-9 * abs(start) and (got[-1] + 1) * width >= end - 1e-9 * abs(end)
