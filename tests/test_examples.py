"""The README's API tour runs as shown, and examples/tour.py is the same code.

The tour block is extracted from README.md and run in a fresh interpreter, as
a user who pasted it would; it starts its own throwaway servers.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOUR = os.path.join(ROOT, "examples", "tour.py")
README = os.path.join(ROOT, "README.md")


def readme_tour() -> str:
    """The first ```python block of the README's "API tour" section."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## API tour", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "README's API tour has no ```python block"
    return m.group(1)


def example_code() -> str:
    """examples/tour.py without its module docstring."""
    with open(TOUR, encoding="utf-8") as f:
        source = f.read()
    doc = ast.get_docstring(ast.parse(source), clean=False)
    assert doc is not None
    end = source.index('"""', source.index('"""') + 3) + 3
    return source[end:].lstrip("\n")


def test_example_is_the_readme_tour() -> None:
    assert example_code() == readme_tour(), "examples/tour.py and the README's tour differ: copy one to the other"


def test_readme_tour_runs_as_pasted(tmp_path: object) -> None:
    script = os.path.join(str(tmp_path), "pasted_tour.py")
    with open(script, "w", encoding="utf-8") as f:
        f.write(readme_tour())
    done = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=240, cwd=str(tmp_path)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("tour OK")


def test_readme_shows_the_tour() -> None:
    text = readme_tour()
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
