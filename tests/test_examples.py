"""The README's API tour runs as shown, and examples/tour.py is the same code.

The tour block is extracted from README.md and run in a fresh interpreter, as
a user who pasted it would; it starts its own throwaway servers. The asyncio
tour, the FastAPI example app and the Django settings snippet run too.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from typing import Any, Callable

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


def test_async_tour_runs(redis_url: str, server_factory: "Callable[..., Any]") -> None:
    """docs/async_patterns.md's tour (examples/async_tour.py), on a flushed server."""
    import asyncio
    import importlib.util

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


# -- the integration examples ---------------------------------------------------------

EXAMPLES = os.path.dirname(TOUR)


def _example_env(redis_url: str) -> dict:
    path = os.pathsep.join(p for p in [EXAMPLES, os.environ.get("PYTHONPATH", "")] if p)
    return dict(os.environ, REDIS_URL=redis_url, PYTHONPATH=path)


def _load_fastapi_example() -> Any:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", os.path.join(EXAMPLES, "fastapi_app.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fastapi_example_in_process(redis_url: str) -> None:
    import asyncio

    import pytest

    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    import fastredis

    fastredis.Redis.from_url(redis_url).flushdb()
    example = _load_fastapi_example()
    app = example.create_app(redis_url)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://example") as c:
                # a cached endpoint: concurrent misses share one load, later reads hit the cache
                got = await asyncio.gather(*(c.get("/products/7", headers={"x-api-key": "p"}) for _ in range(5)))
                assert {r.json()["name"] for r in got} == {"Product 7"}
                assert example.LOADS.count(7) == 1
                assert (await c.get("/products/7", headers={"x-api-key": "p2"})).json()["price"] == 70
                assert example.LOADS.count(7) == 1
                assert (await c.get("/products/1000", headers={"x-api-key": "p3"})).status_code == 404
                # the leaderboard
                for player, points in [("ann", 5), ("bob", 7), ("ann", 4)]:
                    resp = await c.post(f"/scores/{player}", params={"points": points}, headers={"x-api-key": "s"})
                    assert resp.status_code == 200
                assert resp.json() == {"player": "ann", "score": 9.0, "rank": 0}
                top = (await c.get("/leaderboard", headers={"x-api-key": "s2"})).json()
                assert top == [{"player": "ann", "score": 9.0}, {"player": "bob", "score": 7.0}]
                # the API limit: 10 a second per key, with the standard headers
                burst = [await c.get("/health", headers={"x-api-key": "b"})] + \
                        [await c.get("/leaderboard", headers={"x-api-key": "b"}) for _ in range(12)]
                assert "ratelimit-limit" not in burst[0].headers  # /health is exempt
                statuses = [r.status_code for r in burst[1:]]
                assert statuses.count(429) >= 2 and statuses[:10] == [200] * 10, statuses
                assert burst[1].headers["ratelimit-limit"] == "10"
                assert int(burst[-1].headers["retry-after"]) >= 1
                # the login limit: a burst of 3 per user, on its own budget
                logins = [(await c.post("/login", headers={"x-user": "eve", "x-api-key": f"l{i}"})).status_code for i in range(4)]
                assert logins == [200, 200, 200, 429]
                assert (await c.post("/login", headers={"x-user": "sam"})).status_code == 200

    asyncio.run(main())


def test_fastapi_example_served_by_uvicorn(redis_url: str) -> None:
    import signal
    import socket
    import subprocess
    import sys
    import time

    import pytest

    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--port", str(port), "--workers", "2", "--log-level", "warning"],
        env=_example_env(redis_url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    pytest.fail(f"the example did not start: {out}")
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        product = httpx.get(f"http://127.0.0.1:{port}/products/3", headers={"x-api-key": "uv"}, timeout=10)
        assert product.json()["id"] == 3 and product.headers["ratelimit-remaining"] == "9"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


DJANGO_CHECK = """
import json, os
import django
django.setup()
from django.test import Client
c = Client()
out = {
    "page": [c.get("/page").json()["rendered"] for _ in range(3)],
    "hits": [c.get("/hits").json()["hits"] for _ in range(3)],
    "visits": [c.get("/visit").json()["visits"] for _ in range(3)],
}
from django.core.cache import caches
out["backend"] = type(caches["default"]).__name__
print(json.dumps(out))
"""


def test_django_settings_snippet(redis_url: str) -> None:
    import json
    import subprocess
    import sys

    import pytest

    pytest.importorskip("django")
    import fastredis

    fastredis.Redis.from_url(redis_url).flushdb()
    env = _example_env(redis_url)
    env["DJANGO_SETTINGS_MODULE"] = "django_site.settings"
    proc = subprocess.run([sys.executable, "-c", DJANGO_CHECK], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "TieredCacheBackend"
    assert out["page"] == [1, 1, 1]  # the whole-page cache served the page
    assert out["hits"] == [1, 2, 3]  # atomic incr
    assert out["visits"] == [1, 2, 3]  # sessions in the cache
