"""The README's tour (examples/tour.py) must keep running."""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable

TOUR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "tour.py")


def test_readme_tour_runs(redis_url: str, server_factory: Callable[..., Any]) -> None:
    import fastredis

    spec = importlib.util.spec_from_file_location("tour", TOUR)
    assert spec and spec.loader
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)
    r = fastredis.Redis.from_url(redis_url)
    r.flushdb()
    nodes = [server_factory().client() for _ in range(3)]
    tour.tour(r, nodes)


def test_readme_shows_the_tour() -> None:
    readme = os.path.join(os.path.dirname(TOUR), "..", "README.md")
    with open(readme) as f:
        text = f.read()
    for name in ["TieredCache", "SlidingWindowLimiter", "TokenBucketLimiter", "CompositeLimiter", "DecayingLeaderboard",
                 "UniqueCounter", "PageAnalytics", "ActivityBitmap", "CounterSeries", "Lock", "Redlock",
                 "SessionStore", "Cart", "Presence", "GeoIndex", "Channel", "EventStream", "batch("]:
        assert name in text, f"README tour does not show {name}"
