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


ASYNC_TOUR = os.path.join(os.path.dirname(TOUR), "async_tour.py")


def test_async_tour_runs(redis_url: str, server_factory: Callable[..., Any]) -> None:
    """docs/async_patterns.md's tour (examples/async_tour.py), on a flushed server."""
    import asyncio

    import redis

    import fastredis.asyncio

    spec = importlib.util.spec_from_file_location("async_tour", ASYNC_TOUR)
    assert spec and spec.loader
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)
    redis.Redis.from_url(redis_url).flushdb()
    urls = [server_factory().url for _ in range(3)]

    async def main() -> None:
        async with fastredis.asyncio.Redis.from_url(redis_url) as r:
            await tour.tour(r, urls)

    asyncio.run(main())


def test_async_patterns_doc_shows_the_tour() -> None:
    doc = os.path.join(os.path.dirname(TOUR), "..", "docs", "async_patterns.md")
    with open(doc) as f:
        text = f.read()
    with open(ASYNC_TOUR) as f:
        tour_text = f.read()
    body = tour_text[tour_text.index("async def tour"):tour_text.index("async def _main")].strip()
    assert body in text, "docs/async_patterns.md must show examples/async_tour.py's tour verbatim"
