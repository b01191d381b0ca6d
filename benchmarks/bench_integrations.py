"""Integrations, against what people use today, in the same run and on the same server.

Run: python -m pytest benchmarks/bench_integrations.py --benchmark-only --benchmark-group-by=group
(a table of the ratios follows pytest-benchmark's tables; it is also written
to bench-results-integrations.json).

- ASGI rate limiting: one Starlette app (one route returning 2 bytes), bare,
  behind fastredis's RateLimitMiddleware (fastredis.asyncio limiter), and
  behind slowapi (SlowAPIASGIMiddleware, Redis storage, fixed window; with
  and without its rate-limit headers, which cost slowapi a second round
  trip). Each round is 100 admitted requests through an in-process client:
  httpx.ASGITransport, or a minimal ASGI driver (less noise of its own), one
  request at a time ("c1") or 25 concurrent ("c32"). The cost of the
  middleware per request is its time minus the bare app's. The
  ``asgi-interleaved-*`` tests run the four apps in turn, round after round
  (a change in the machine's load hits all four alike), and also report
  CPU time per request (``-cpu``: the work the server process does, without
  the time it waits; slowapi's blocking Redis call stalls the event loop
  during that wait, fastredis's does not).
- Django cache: ``cache.get`` of a hot key and of a missing key on
  fastredis's TieredCacheBackend (strict and relaxed coherence) and on
  Django's built-in ``django.core.cache.backends.redis.RedisCache``; values
  a str and a small dict (pickled by both; the dict is unpickled per get by
  both); ``django-get-interleaved`` alternates the backends round by round.
- Metrics: a limiter hit and a TieredCache L1 get with metrics off, with a
  no-op hook, and with the OpenTelemetry SDK (in-memory reader).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

import fastredis  # noqa: E402
import fastredis.asyncio as fa  # noqa: E402
from fastredis import metrics  # noqa: E402
from fastredis.contrib.asgi import RateLimitMiddleware  # noqa: E402
from fastredis.patterns.cache import TieredCache  # noqa: E402

REQUESTS = 100  # per benchmark round
RESULTS: Dict[str, Dict[str, float]] = {}  # group -> case -> median seconds per operation


def record(benchmark: Any, group: str, case: str, per_round: int) -> None:
    RESULTS.setdefault(group, {})[case] = benchmark.stats.stats.median / per_round


# -- ASGI ------------------------------------------------------------------------------

async def hello(request: Any) -> Response:
    return Response(b"ok")


def starlette_app() -> Starlette:
    return Starlette(routes=[Route("/", hello)])


def apps(url: str) -> Dict[str, Callable[[], Any]]:
    def bare() -> Any:
        return starlette_app()

    def fastredis_mw() -> Any:
        app = starlette_app()
        client = fa.Redis.from_url(url)
        app.add_middleware(RateLimitMiddleware, limiter=fa.FixedWindowLimiter(client, limit=10**12, window=3600, prefix="bench"))
        return app

    def slowapi_mw(headers: bool) -> Callable[[], Any]:
        def make() -> Any:
            from slowapi import Limiter
            from slowapi.middleware import SlowAPIASGIMiddleware
            from slowapi.util import get_remote_address

            app = starlette_app()
            app.state.limiter = Limiter(key_func=get_remote_address, default_limits=["1000000000000/hour"],
                                        storage_uri=url, headers_enabled=headers, strategy="fixed-window")
            app.add_middleware(SlowAPIASGIMiddleware)
            return app

        return make

    return {"bare": bare, "fastredis": fastredis_mw, "slowapi+headers": slowapi_mw(True), "slowapi": slowapi_mw(False)}


SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
         "path": "/", "raw_path": b"/", "root_path": "", "query_string": b"", "headers": [(b"host", b"bench")],
         "client": ("10.0.0.1", 5000), "server": ("bench", 80)}


async def _receive() -> Dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def direct(app: Any) -> int:
    """One request through the ASGI app, no HTTP client around it."""
    status = []

    async def send(message: Dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(dict(SCOPE), _receive, send)
    return status[0]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.mark.parametrize("case", ["bare", "fastredis", "slowapi+headers", "slowapi"])
@pytest.mark.parametrize("client", ["direct-c1", "direct-c32", "httpx-c1"])
def test_asgi(benchmark: Any, server: Any, loop: asyncio.AbstractEventLoop, client: str, case: str) -> None:
    pytest.importorskip("slowapi")
    benchmark.group = f"asgi-{client}"
    app = apps(server.url)[case]()
    if client.startswith("httpx"):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.1", 5000)), base_url="http://bench")

        async def batch() -> List[int]:
            return [(await http.get("/")).status_code for _ in range(REQUESTS)]
    elif client.endswith("c32"):
        async def batch() -> List[int]:
            out: List[int] = []
            for _ in range(REQUESTS // 25):
                out += await asyncio.gather(*(direct(app) for _ in range(25)))
            return out
    else:
        async def batch() -> List[int]:
            return [await direct(app) for _ in range(REQUESTS)]

    def run() -> List[int]:
        return loop.run_until_complete(batch())

    assert run() == [200] * REQUESTS  # warm-up: connections, scripts
    got = benchmark.pedantic(run, rounds=15, iterations=1, warmup_rounds=1)
    assert got == [200] * REQUESTS
    record(benchmark, benchmark.group, case, REQUESTS)
    if client.startswith("httpx"):
        loop.run_until_complete(http.aclose())


@pytest.mark.parametrize("client", ["direct-c1", "direct-c32", "httpx-c1"])
def test_asgi_interleaved(benchmark: Any, server: Any, loop: asyncio.AbstractEventLoop, client: str) -> None:
    """The four apps in turn, round after round, so that a change in the
    machine's load hits them alike; medians of wall and CPU time per request."""
    pytest.importorskip("slowapi")
    benchmark.group = f"asgi-interleaved-{client}"
    cases = ["bare", "fastredis", "slowapi+headers", "slowapi"]
    built = apps(server.url)
    runners: Dict[str, Callable[[], Any]] = {}
    closers: List[Any] = []
    for case in cases:
        app = built[case]()
        if client.startswith("httpx"):
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.1", 5000)), base_url="http://bench")
            closers.append(http)

            async def batch(http: Any = http) -> List[int]:
                return [(await http.get("/")).status_code for _ in range(REQUESTS // 2)]
        elif client.endswith("c32"):
            async def batch(app: Any = app) -> List[int]:
                out: List[int] = []
                for _ in range(REQUESTS // 2 // 25):
                    out += await asyncio.gather(*(direct(app) for _ in range(25)))
                return out
        else:
            async def batch(app: Any = app) -> List[int]:
                return [await direct(app) for _ in range(REQUESTS // 2)]
        runners[case] = batch
    wall: Dict[str, List[float]] = {c: [] for c in cases}
    cpu: Dict[str, List[float]] = {c: [] for c in cases}

    def one_round() -> None:
        for case in cases:
            w0, c0 = time.perf_counter(), time.process_time()
            assert loop.run_until_complete(runners[case]()) == [200] * (REQUESTS // 2)
            wall[case].append((time.perf_counter() - w0) / (REQUESTS // 2))
            cpu[case].append((time.process_time() - c0) / (REQUESTS // 2))

    one_round()  # warm-up
    for c in cases:
        wall[c].clear()
        cpu[c].clear()
    benchmark.pedantic(one_round, rounds=21, iterations=1)
    for c in cases:
        RESULTS.setdefault(f"asgi-interleaved-{client}", {})[c] = statistics.median(wall[c])
        RESULTS.setdefault(f"asgi-interleaved-{client}-cpu", {})[c] = statistics.median(cpu[c])
    for http in closers:
        loop.run_until_complete(http.aclose())


# -- Django ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def django_caches(server: Any) -> Iterator[Dict[str, Any]]:
    pytest.importorskip("django")
    from django.core.cache.backends.redis import RedisCache

    from fastredis.contrib.django import TieredCacheBackend, close_shared

    made = {
        "fastredis-strict": TieredCacheBackend(server.url, {"OPTIONS": {"prefix": "bench-strict"}}),
        "fastredis-relaxed": TieredCacheBackend(server.url, {"OPTIONS": {"prefix": "bench-relaxed", "coherence": "relaxed"}}),
        "django-RedisCache": RedisCache(server.url, {}),
    }
    yield made
    close_shared()


VALUES = {"str": "a cached fragment of about sixty characters, say, of some page",
          "dict": {"id": 42, "name": "Ada Lovelace", "tags": ["math", "engines"], "score": 99.5}}


@pytest.mark.parametrize("backend", ["fastredis-strict", "fastredis-relaxed", "django-RedisCache"])
@pytest.mark.parametrize("value", ["str", "dict"])
def test_django_get_hot(benchmark: Any, django_caches: Dict[str, Any], backend: str, value: str) -> None:
    benchmark.group = f"django-get-hot-{value}"
    cache = django_caches[backend]
    cache.set(f"hot-{value}", VALUES[value], timeout=None)
    deadline = time.monotonic() + 5
    while backend.startswith("fastredis") and cache._tiered.get_local(cache.make_key(f"hot-{value}"), None) is None:
        cache.get(f"hot-{value}")
        assert time.monotonic() < deadline, "the hot key did not reach L1"
        time.sleep(0.001)
    key = f"hot-{value}"
    get = cache.get

    def run() -> Any:
        for _ in range(REQUESTS):
            got = get(key)
        return got

    assert benchmark.pedantic(run, rounds=30 if backend.startswith("fastredis") else 10, iterations=1, warmup_rounds=1) == VALUES[value]
    record(benchmark, benchmark.group, backend, REQUESTS)


@pytest.mark.parametrize("backend", ["fastredis-strict", "fastredis-relaxed", "django-RedisCache"])
def test_django_get_miss(benchmark: Any, django_caches: Dict[str, Any], backend: str) -> None:
    benchmark.group = "django-get-miss"
    get = django_caches[backend].get

    def run() -> Any:
        for _ in range(REQUESTS):
            got = get("absent")
        return got

    assert benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1) is None
    record(benchmark, benchmark.group, backend, REQUESTS)


def test_django_get_interleaved(benchmark: Any, django_caches: Dict[str, Any]) -> None:
    """Hot and missing keys on the three backends in turn, round after round."""
    benchmark.group = "django-get-interleaved"
    for name, cache in django_caches.items():
        cache.set("hot-str", VALUES["str"], timeout=None)
        deadline = time.monotonic() + 5
        while name.startswith("fastredis") and cache._tiered.get_local(cache.make_key("hot-str"), None) is None:
            cache.get("hot-str")
            assert time.monotonic() < deadline, "the hot key did not reach L1"
            time.sleep(0.001)
    times: Dict[str, List[float]] = {}

    def one_round() -> None:
        for name, cache in django_caches.items():
            get = cache.get
            for key, n in (("hot-str", 2000 if name.startswith("fastredis") else 50), ("absent", 50)):
                t0 = time.perf_counter()
                for _ in range(n):
                    get(key)
                times.setdefault(f"{'hot' if key == 'hot-str' else 'miss'} {name}", []).append((time.perf_counter() - t0) / n)

    one_round()
    times.clear()
    benchmark.pedantic(one_round, rounds=15, iterations=1)
    for label, samples in times.items():
        kind, name = label.split(" ", 1)
        RESULTS.setdefault(f"django-get-interleaved-{kind}", {})[name] = statistics.median(samples)


# -- metrics ---------------------------------------------------------------------------------

def _sink(kind: str) -> None:
    metrics.disable()
    if kind == "hook":
        metrics.set_hook(lambda name, value, attributes: None)
    elif kind == "otel":
        pytest.importorskip("opentelemetry.sdk.metrics")
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        metrics.enable_opentelemetry(MeterProvider(metric_readers=[InMemoryMetricReader()]))


@pytest.mark.parametrize("sink", ["off", "hook", "otel"])
def test_metrics_limiter_hit(benchmark: Any, fast: Any, sink: str) -> None:
    benchmark.group = "metrics-limiter-hit"
    limiter = fastredis.FixedWindowLimiter(fast, limit=10**12, window=3600, prefix="bench-metrics")
    _sink(sink)
    try:
        hit = limiter.hit

        def run() -> Any:
            for _ in range(REQUESTS):
                d = hit("k")
            return d.allowed

        assert benchmark.pedantic(run, rounds=15, iterations=1, warmup_rounds=1)
    finally:
        metrics.disable()
    record(benchmark, benchmark.group, sink, REQUESTS)


@pytest.mark.parametrize("sink", ["off", "hook", "otel"])
def test_metrics_l1_get(benchmark: Any, fast: Any, sink: str) -> None:
    benchmark.group = "metrics-l1-get"
    with TieredCache(fast, prefix="bench-metrics", ttl=3600, local_ttl=3600) as cache:
        cache.set("hot", "value")
        deadline = time.monotonic() + 5
        while cache.get_local("hot") is None:
            cache.get("hot")
            assert time.monotonic() < deadline
            time.sleep(0.001)
        _sink(sink)
        try:
            get = cache.get

            def run() -> Any:
                for _ in range(1000):
                    v = get("hot")
                return v

            assert benchmark.pedantic(run, rounds=50, iterations=1, warmup_rounds=2) == "value"
        finally:
            metrics.disable()
    record(benchmark, benchmark.group, sink, 1000)


# -- the summary ------------------------------------------------------------------------------

def summary() -> List[str]:
    lines: List[str] = []
    payload: Dict[str, Any] = {"seconds_per_operation": RESULTS, "ratios": {}}
    groups = [f"asgi-{c}" for c in ("direct-c1", "direct-c32", "httpx-c1")]
    groups += [f"asgi-interleaved-{c}{t}" for c in ("direct-c1", "direct-c32", "httpx-c1") for t in ("", "-cpu")]
    for group in groups:
        client = group[len("asgi-"):]
        got = RESULTS.get(group, {})
        if {"bare", "fastredis"} <= got.keys():
            base, ours = got["bare"], got["fastredis"]
            cost = ours - base
            line = f"asgi {client}: bare {base * 1e6:.1f} us/request; the fastredis middleware costs {cost * 1e6:.1f} us"
            for other in ("slowapi+headers", "slowapi"):
                if other in got:
                    ratio = (got[other] - base) / cost if cost > 0 else float("nan")
                    payload["ratios"][f"asgi {client}: {other} cost / fastredis cost"] = ratio
                    line += f"; {other} {(got[other] - base) * 1e6:.1f} us ({ratio:.1f}x)"
            lines.append(line)
    for group in ("django-get-hot-str", "django-get-hot-dict", "django-get-miss",
                  "django-get-interleaved-hot", "django-get-interleaved-miss"):
        got = RESULTS.get(group, {})
        if "django-RedisCache" in got:
            theirs = got["django-RedisCache"]
            parts = []
            for ours in ("fastredis-strict", "fastredis-relaxed"):
                if ours in got:
                    ratio = theirs / got[ours]
                    payload["ratios"][f"{group}: RedisCache / {ours}"] = ratio
                    parts.append(f"{ours} {got[ours] * 1e6:.2f} us ({ratio:.1f}x)")
            lines.append(f"{group}: RedisCache {theirs * 1e6:.1f} us; " + "; ".join(parts))
    for group in ("metrics-limiter-hit", "metrics-l1-get"):
        got = RESULTS.get(group, {})
        if "off" in got:
            lines.append(f"{group}: " + "; ".join(f"{k} {v * 1e6:.3f} us" for k, v in got.items()))
    if RESULTS:
        with open("bench-results-integrations.json", "w") as f:
            json.dump(payload, f, indent=2)
    return lines
