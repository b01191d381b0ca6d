"""The _decay core: both twins, against a float reference and each other."""

import importlib
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import twin_params


@pytest.fixture(params=twin_params("_decay"))
def dc(request):
    return importlib.import_module(request.param)


def test_compiled_core_loaded():
    from fastredis import _decay

    if os.environ.get("FASTREDIS_NO_EXTENSIONS"):
        assert not _decay.COMPILED
    else:
        assert _decay.COMPILED, "the compiled _decay_c should have loaded (run scripts/build_inplace.py)"


def test_scalars(dc):
    lam = dc.decay_rate(10.0)
    assert dc.increment(3.0, 10.0, 0.0, lam) == pytest.approx(6.0, rel=1e-15)
    assert dc.decayed(6.0, 10.0, 0.0, lam) == pytest.approx(3.0, rel=1e-15)
    assert dc.rebase_factor(0.0, 10.0, lam) == pytest.approx(0.5, rel=1e-15)
    assert dc.increment(-2.0, 0.0, 0.0, lam) == -2.0  # negative weights allowed
    assert dc.choose_landmark(None, 7.0, lam) == 7.0
    assert dc.choose_landmark(0.0, 100.0, lam) == 0.0
    assert dc.choose_landmark(0.0, 301.0 / lam, lam) == 301.0 / lam
    assert dc.REBASE_EXPONENT == 300.0


@pytest.mark.parametrize("bad, error", [(math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError),
                                        ("1", TypeError), (None, TypeError), (True, TypeError)])
def test_bad_weights_raise(dc, bad, error):
    with pytest.raises(error):
        dc.increment(bad, 0.0, 0.0, 1.0)
    with pytest.raises(error):
        dc.aggregate_increments(["a"], [bad], 0.0, 0.0, 1.0)
    with pytest.raises(error):
        dc.aggregate(["a"], [bad])


@pytest.mark.parametrize("half_life, error", [(0, ValueError), (-1, ValueError), (math.nan, ValueError),
                                              (math.inf, ValueError), ("1", TypeError), (None, TypeError),
                                              (True, TypeError)])
def test_bad_half_life(dc, half_life, error):
    with pytest.raises(error):
        dc.decay_rate(half_life)


def test_overflow_is_an_error_not_inf(dc):
    with pytest.raises(ValueError, match="overflow"):
        dc.increment(1e300, 1000.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="overflow"):
        dc.aggregate_increments(["a", "a"], [1.7e308, 1.7e308], 0.0, 0.0, 1.0)
    # huge span, tiny factor: no underflow surprise, exact zero at worst
    assert dc.decayed(1e130, 1e9, 0.0, 1.0) == 0.0
    assert dc.decayed(1e130, 800.0, 0.0, 1.0) == pytest.approx(1e130 * math.exp(-800), rel=1e-12)


def test_bad_members_and_lengths(dc):
    with pytest.raises(TypeError):
        dc.aggregate([None], [1.0])
    with pytest.raises(TypeError):
        dc.aggregate([1.5], [1.0])
    with pytest.raises(ValueError):
        dc.aggregate(["a", "b"], [1.0])
    with pytest.raises(ValueError):
        dc.aggregate_increments(["a", "b"], [1.0, 1.0], [0.0], 0.0, 1.0)


def test_aggregation_and_numpy(dc):
    lam = dc.decay_rate(1.0)
    ms, vs = dc.aggregate_increments(["a", b"\xff", "a", 7], np.array([1.0, 2.0, 3.0, 4.0]),
                                     np.array([0.0, 1.0, 1.0, 2.0]), 0.0, lam)
    assert ms == ["a", b"\xff", 7]
    assert vs == pytest.approx([1.0 + 6.0, 4.0, 16.0], rel=1e-15)


events = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", b"\xff"]),
              st.floats(-1e6, 1e6, allow_nan=False),
              st.floats(0, 1e6, allow_nan=False)),
    min_size=1, max_size=50)


@settings(max_examples=150, deadline=None)
@given(events, st.floats(1.0, 1e5), st.floats(0, 1e6))
def test_twins_agree(evs, half_life, landmark):
    c = pytest.importorskip("fastredis._decay_c") if not os.environ.get("FASTREDIS_NO_EXTENSIONS") else None
    if c is None:
        pytest.skip("extensions disabled")
    p = importlib.import_module("fastredis._decay_py")
    lam = p.decay_rate(half_life)
    assert c.decay_rate(half_life) == lam
    ms = [e[0] for e in evs]
    ws = [e[1] for e in evs]
    ts = [e[2] for e in evs]
    landmark = p.choose_landmark(landmark, max(ts), lam)
    try:
        ref = p.aggregate_increments(ms, ws, ts, landmark, lam)
    except ValueError:
        with pytest.raises(ValueError):
            c.aggregate_increments(ms, ws, ts, landmark, lam)
        return
    for args in [(ms, ws, ts), (ms, np.array(ws), np.array(ts))]:
        got = c.aggregate_increments(*args, landmark, lam)
        assert got[0] == ref[0]
        assert got[1] == pytest.approx(ref[1], rel=1e-13, abs=1e-300)
    stored = ref[1]
    assert c.decay_many(stored, max(ts), landmark, lam) == pytest.approx(
        p.decay_many(np.array(stored), max(ts), landmark, lam), rel=1e-13, abs=1e-300)
