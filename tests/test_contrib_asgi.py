"""RateLimitMiddleware against real Redis servers: in-process (Starlette and
FastAPI apps driven by httpx's ASGI transport, and bare ASGI), and an app
served by uvicorn with several worker processes, driven over loopback."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Any, Callable, Dict, List, Tuple

import pytest

httpx = pytest.importorskip("httpx")
starlette = pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Mount, Route, WebSocketRoute  # noqa: E402

import fastredis.asyncio as fa  # noqa: E402
from fastredis.contrib.asgi import (  # noqa: E402
    RateLimitMiddleware,
    RouteLimit,
    by_route,
    client_address,
    forwarded_for,
    header,
    rate_limit,
    rate_limit_exempt,
    route_of,
)

HERE = os.path.dirname(os.path.abspath(__file__))


def run(coro: Any, timeout: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def ok(request: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


def starlette_app(**mw: Any) -> Starlette:
    app = Starlette(routes=[
        Route("/", ok),
        Route("/a", ok),
        Route("/b", ok),
        Route("/items/{id}", ok),
        Route("/login", ok, methods=["GET", "POST"]),
        Route("/health", ok),
        Route("/files/{rest:path}", ok),
    ])
    app.add_middleware(RateLimitMiddleware, **mw)
    return app


def client_for(app: Any, ip: str = "10.1.1.1") -> "httpx.AsyncClient":
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 4000)), base_url="http://test")


def limits(resp: Any) -> Tuple[str, str, str]:
    h = resp.headers
    return h.get("ratelimit-limit"), h.get("ratelimit-remaining"), h.get("ratelimit-reset")


def prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


# -- admitted and denied ----------------------------------------------------------

def test_headers_on_admitted_and_429_with_retry_after(redis_url: str) -> None:
    async def main() -> List[Any]:
        async with fa.Redis.from_url(redis_url) as r:
            lim = fa.FixedWindowLimiter(r, limit=2, window=3600, prefix=prefix())
            async with client_for(starlette_app(limiter=lim)) as c:
                return [await c.get("/") for _ in range(3)]

    first, second, third = run(main())
    assert first.status_code == 200 and first.text == "ok"
    assert limits(first)[:2] == ("2", "1")
    assert 0 < int(limits(first)[2]) <= 3600
    assert limits(second)[:2] == ("2", "0")
    assert third.status_code == 429
    assert limits(third)[:2] == ("2", "0")
    retry = int(third.headers["retry-after"])
    assert 1 <= retry <= 3600 and retry == int(third.headers["ratelimit-reset"])
    assert third.text == "Too Many Requests\n"
    assert third.headers["content-type"].startswith("text/plain")


def test_retry_after_is_whole_seconds_rounded_up(redis_url: str) -> None:
    async def main() -> Any:
        async with fa.Redis.from_url(redis_url) as r:
            lim = fa.SlidingWindowLimiter(r, limit=1, window=2.5, prefix=prefix())
            async with client_for(starlette_app(limiter=lim)) as c:
                await c.get("/")
                t0 = time.monotonic()
                denied = await c.get("/")
                return denied, time.monotonic() - t0

    denied, elapsed = run(main())
    assert denied.status_code == 429
    # 2.5 s window: just after the first request the wait is in (1.5, 2.5], so rounded up it is 2 or 3
    assert denied.headers["retry-after"] in ("2", "3")
    assert denied.headers["ratelimit-reset"] in ("2", "3")


def test_composite_limiter_binding_limit_in_headers(redis_url: str) -> None:
    async def main() -> List[Any]:
        async with fa.Redis.from_url(redis_url) as r:
            p = prefix()
            lim = fa.CompositeLimiter([fa.FixedWindowLimiter(r, 3, 1, prefix=p), fa.FixedWindowLimiter(r, 4, 3600, prefix=p)])
            async with client_for(starlette_app(limiter=lim)) as c:
                out = [await c.get("/") for _ in range(4)]
                await asyncio.sleep(1.1)  # the 1 s window is over; the hourly one is not
                out += [await c.get("/") for _ in range(2)]
                return out

    got = run(main())
    statuses = [g.status_code for g in got]
    # 3/s admits 3, the 4th is denied in the same second (unless the second ticked over: then the hour binds first)
    assert statuses[:3] == [200, 200, 200]
    assert statuses.count(200) == 4, statuses  # 4 per hour in all
    assert statuses[-1] == 429
    assert got[-1].headers["ratelimit-limit"] == "4"  # the hourly limit binds now
    assert int(got[-1].headers["retry-after"]) > 1


def test_fastapi_add_middleware(redis_url: str) -> None:
    fastapi = pytest.importorskip("fastapi")

    async def main() -> List[Any]:
        async with fa.Redis.from_url(redis_url) as r:
            app = fastapi.FastAPI()

            @app.get("/items/{item_id}")
            async def item(item_id: int) -> Dict[str, int]:
                return {"id": item_id}

            app.add_middleware(RateLimitMiddleware, limiter=fa.TokenBucketLimiter(r, rate=0.01, capacity=2, prefix=prefix()))
            async with client_for(app) as c:
                return [await c.get("/items/5") for _ in range(3)]

    got = run(main())
    assert [g.status_code for g in got] == [200, 200, 429]
    assert got[0].json() == {"id": 5}
    assert limits(got[1])[:2] == ("2", "0")


# -- keys -------------------------------------------------------------------------

def test_default_key_is_the_client_address(redis_url: str) -> None:
    async def main() -> List[int]:
        async with fa.Redis.from_url(redis_url) as r:
            app = starlette_app(limiter=fa.FixedWindowLimiter(r, 1, 3600, prefix=prefix()))
            out = []
            for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.1"):
                async with client_for(app, ip) as c:
                    out.append((await c.get("/")).status_code)
            return out

    assert run(main()) == [200, 200, 429]


def test_header_key_and_fallback(redis_url: str) -> None:
    async def main() -> List[int]:
        async with fa.Redis.from_url(redis_url) as r:
            app = starlette_app(limiter=fa.FixedWindowLimiter(r, 1, 3600, prefix=prefix()), key=header("X-API-Key"))
            async with client_for(app) as c:
                return [
                    (await c.get("/", headers={"x-api-key": "alice"})).status_code,
                    (await c.get("/", headers={"x-api-key": "bob"})).status_code,
                    (await c.get("/", headers={"X-Api-Key": "alice"})).status_code,
                    (await c.get("/")).status_code,  # no key: the client address
                    (await c.get("/")).status_code,
                ]

    assert run(main()) == [200, 200, 429, 200, 429]


def test_key_none_is_not_limited_and_async_keys(redis_url: str) -> None:
    async def key(scope: Any) -> Any:
        await asyncio.sleep(0)
        return None if dict(scope["headers"]).get(b"x-internal") else client_address(scope)

    async def main() -> List[Any]:
        async with fa.Redis.from_url(redis_url) as r:
            app = starlette_app(limiter=fa.FixedWindowLimiter(r, 1, 3600, prefix=prefix()), key=key)
            async with client_for(app) as c:
                internal = [await c.get("/", headers={"x-internal": "1"}) for _ in range(3)]
                public = [await c.get("/") for _ in range(2)]
                return internal + public

    got = run(main())
    assert [g.status_code for g in got] == [200, 200, 200, 200, 429]
    assert "ratelimit-limit" not in got[0].headers


def test_key_helpers() -> None:
    scope = {"path": "/x", "client": ("10.0.0.9", 1), "headers": [(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2, 3.3.3.3")]}
    assert forwarded_for(1)(scope) == "3.3.3.3"
    assert forwarded_for(2)(scope) == "2.2.2.2"
    assert forwarded_for(4)(scope) == "10.0.0.9"  # fewer hops than trusted proxies: the peer
    assert header("x-missing", fallback=None)(scope) is None
    assert by_route(header("x-missing", fallback=None))(scope) is None
    assert by_route()(dict(scope, **{"fastredis.route": "/{p}"})) == "/{p}|10.0.0.9"
    assert route_of({"path": "/y"}) == "/y"
    assert client_address({"client": None}) is None
    with pytest.raises(ValueError):
        forwarded_for(0)


def test_cost_callable(redis_url: str) -> None:
    async def main() -> List[Any]:
        async with fa.Redis.from_url(redis_url) as r:
            app = starlette_app(limiter=fa.FixedWindowLimiter(r, 10, 3600, prefix=prefix()),
                                cost=lambda scope: 4 if scope["method"] == "POST" else 1)
            async with client_for(app) as c:
                return [await c.post("/login"), await c.post("/login"), await c.get("/login"), await c.post("/login")]

    got = run(main())
    assert [g.status_code for g in got] == [200, 200, 200, 429]
    assert [limits(g)[1] for g in got] == ["6", "2", "1", "1"]


def test_cost_above_the_limit_has_no_retry_after(redis_url: str) -> None:
    async def main() -> Any:
        async with fa.Redis.from_url(redis_url) as r:
            app = starlette_app(limiter=fa.FixedWindowLimiter(r, 2, 3600, prefix=prefix()), cost=3)
            async with client_for(app) as c:
                return await c.get("/")

    got = run(main())
    assert got.status_code == 429 and "retry-after" not in got.headers
    assert got.headers["ratelimit-limit"] == "2"


# -- routes -----------------------------------------------------------------------

def test_route_mapping_patterns_and_exempt(redis_url: str) -> None:
    async def main() -> Dict[str, List[int]]:
        async with fa.Redis.from_url(redis_url) as r:
            p = prefix()
            default = fa.FixedWindowLimiter(r, 2, 3600, prefix=p)
            one = fa.FixedWindowLimiter(r, 1, 3600, prefix=p)
            app = starlette_app(
                limiter=default,
                routes={
                    "POST /login": one,
                    "/items/{id}": one,
                    "/files/*": RouteLimit(one, group="files"),
                    "/b": None,  # exempt by mapping
                },
                exempt=["/health"],
            )
            out: Dict[str, List[int]] = {}
            async with client_for(app) as c:
                for name, method, path in [
                    ("post_login", "POST", "/login"), ("post_login", "POST", "/login"),
                    ("get_login", "GET", "/login"),  # the default limit (method-specific route)
                    ("items", "GET", "/items/1"), ("items", "GET", "/items/2"),  # one route: one budget
                    ("files", "GET", "/files/a/b"), ("files", "GET", "/files/c"),
                    ("exempt", "GET", "/b"), ("exempt", "GET", "/b"), ("exempt", "GET", "/b"),
                    ("health", "GET", "/health"), ("health", "GET", "/health"), ("health", "GET", "/health"),
                    ("a", "GET", "/a"), ("a", "GET", "/a"),
                ]:
                    resp = await c.request(method, path)
                    out.setdefault(name, []).append(resp.status_code)
                    if name in ("exempt", "health"):
                        assert "ratelimit-limit" not in resp.headers
            return out

    got = run(main())
    assert got["post_login"] == [200, 429]
    assert got["get_login"] == [200]
    assert got["items"] == [200, 429]
    assert got["files"] == [200, 429]
    assert got["exempt"] == [200, 200, 200]
    assert got["health"] == [200, 200, 200]
    assert got["a"] == [200, 429]  # /get_login took one of the default's two


def test_route_limits_count_per_route(redis_url: str) -> None:
    """The same limiter on two routes: two budgets (keys carry the route); a group shares one."""

    async def main() -> List[int]:
        async with fa.Redis.from_url(redis_url) as r:
            one = fa.FixedWindowLimiter(r, 1, 3600, prefix=prefix())
            app = starlette_app(routes={"/a": one, "/b": one, "/items/{id}": RouteLimit(one, group="g"), "/login": RouteLimit(one, group="g")})
            async with client_for(app) as c:
                return [(await c.get(p)).status_code for p in ("/a", "/b", "/a", "/items/3", "/login")]

    assert run(main()) == [200, 200, 429, 200, 429]


def test_decorated_endpoints_starlette_and_mount(redis_url: str) -> None:
    async def main() -> Dict[str, List[int]]:
        async with fa.Redis.from_url(redis_url) as r:
            p = prefix()
            one = fa.FixedWindowLimiter(r, 1, 3600, prefix=p)
            default = fa.FixedWindowLimiter(r, 3, 3600, prefix=p)

            @rate_limit(one)
            async def search(request: Any) -> PlainTextResponse:
                return PlainTextResponse(route_of(request.scope))

            @rate_limit_exempt
            async def ping(request: Any) -> PlainTextResponse:
                return PlainTextResponse("pong")

            @rate_limit(one, cost=1)
            async def inner(request: Any) -> PlainTextResponse:
                return PlainTextResponse("inner")

            app = Starlette(routes=[
                Route("/search/{q}", search), Route("/ping", ping), Route("/", ok),
                Mount("/api", routes=[Route("/inner/{x}", inner)]),
            ])
            app.add_middleware(RateLimitMiddleware, limiter=default)
            out: Dict[str, List[int]] = {}
            async with client_for(app) as c:
                for name, path in [("search", "/search/x"), ("search", "/search/y"), ("ping", "/ping"),
                                   ("ping", "/ping"), ("ping", "/ping"), ("ping", "/ping"), ("inner", "/api/inner/1"),
                                   ("inner", "/api/inner/2"), ("root", "/"), ("root", "/"), ("root", "/"), ("root", "/")]:
                    resp = await c.get(path)
                    out.setdefault(name, []).append(resp.status_code)
                    if name == "search" and resp.status_code == 200:
                        assert resp.text == "/search/{q}"
            return out

    got = run(main())
    assert got["search"] == [200, 429]
    assert got["ping"] == [200] * 4
    assert got["inner"] == [200, 429]
    assert got["root"] == [200, 200, 200, 429]


def test_fastapi_decorated_endpoint(redis_url: str) -> None:
    fastapi = pytest.importorskip("fastapi")

    async def main() -> List[int]:
        async with fa.Redis.from_url(redis_url) as r:
            app = fastapi.FastAPI()
            one = fa.FixedWindowLimiter(r, 1, 3600, prefix=prefix())

            @app.post("/orders")
            @rate_limit(one)
            async def orders() -> Dict[str, bool]:
                return {"ok": True}

            @app.get("/free")
            async def free() -> Dict[str, bool]:
                return {"ok": True}

            app.add_middleware(RateLimitMiddleware)  # only the decorated routes are limited
            async with client_for(app) as c:
                return [(await c.post("/orders")).status_code, (await c.post("/orders")).status_code,
                        (await c.get("/free")).status_code, (await c.get("/free")).status_code]

    assert run(main()) == [200, 429, 200, 200]


def test_bad_patterns_and_limiters(redis_url: str) -> None:
    import fastredis

    with pytest.raises(ValueError):
        RateLimitMiddleware(ok, routes={"items": None})
    with pytest.raises(ValueError):
        RateLimitMiddleware(ok, routes={"/items/{id": None})
    with pytest.raises(TypeError, match="asyncio limiter"):
        RateLimitMiddleware(ok, limiter=fastredis.FixedWindowLimiter(fastredis.Redis.from_url(redis_url), 1, 1))
    with pytest.raises(TypeError, match="exempt"):
        RateLimitMiddleware(ok, exempt="/health")
    with pytest.raises(ValueError):
        RateLimitMiddleware(ok, cost=0)
    with pytest.raises(ValueError):
        RateLimitMiddleware(ok, timeout=0)


# -- non-HTTP traffic ----------------------------------------------------------------

def test_websocket_and_lifespan_pass_through(redis_url: str) -> None:
    seen: List[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def main() -> None:
        async with fa.Redis.from_url(redis_url) as r:
            mw = RateLimitMiddleware(app, limiter=fa.FixedWindowLimiter(r, 1, 3600, prefix=prefix()))
            for kind in ("websocket", "lifespan", "websocket"):
                await mw({"type": kind, "path": "/", "client": ("1.1.1.1", 1)}, None, None)

    run(main())
    assert seen == ["websocket", "lifespan", "websocket"]


# -- Redis unreachable ---------------------------------------------------------------

def test_fail_open_logs_and_passes(private_server: Any, caplog: Any) -> None:
    async def main() -> List[Any]:
        r = fa.Redis.from_url(private_server.url, socket_connect_timeout=1, socket_timeout=1)
        try:
            app = starlette_app(limiter=fa.FixedWindowLimiter(r, 1, 3600, prefix=prefix()))
            async with client_for(app) as c:
                first = await c.get("/")
                private_server.stop()
                after = [await c.get("/") for _ in range(3)]
            return [first] + after
        finally:
            await r.aclose()

    with caplog.at_level(logging.WARNING, logger="fastredis.contrib.asgi"):
        got = run(main())
    assert [g.status_code for g in got] == [200, 200, 200, 200]
    assert "ratelimit-limit" in got[0].headers and "ratelimit-limit" not in got[1].headers
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]  # rate-limited: one per 10 s
    assert "fail_open=True" in warnings[0].getMessage()


def test_fail_closed_answers_503(private_server: Any) -> None:
    async def main() -> List[Any]:
        r = fa.Redis.from_url(private_server.url, socket_connect_timeout=1, socket_timeout=1)
        try:
            mw_app = starlette_app(limiter=fa.FixedWindowLimiter(r, 5, 3600, prefix=prefix()), fail_open=False)
            async with client_for(mw_app) as c:
                first = await c.get("/")
                private_server.stop()
                second = await c.get("/")
                private_server.start()
                third = await c.get("/")
            return [first, second, third]
        finally:
            await r.aclose()

    first, second, third = run(main())
    assert first.status_code == 200
    assert second.status_code == 503 and second.headers["retry-after"] == "1"
    assert third.status_code == 200  # the server is back (its data is gone: a fresh count)


def test_timeout_treats_a_stalled_server_as_unreachable(private_server: Any) -> None:
    async def main() -> Tuple[List[int], float]:
        r = fa.Redis.from_url(private_server.url)
        try:
            app = starlette_app(limiter=fa.FixedWindowLimiter(r, 5, 3600, prefix=prefix()), timeout=0.3)
            async with client_for(app) as c:
                assert (await c.get("/")).status_code == 200
                private_server.pause()
                try:
                    t0 = time.monotonic()
                    got = [(await c.get("/")).status_code for _ in range(2)]
                    return got, time.monotonic() - t0
                finally:
                    private_server.resume()
        finally:
            await r.aclose()

    statuses, elapsed = run(main())
    assert statuses == [200, 200]
    assert elapsed < 5.0  # two timeouts of 0.3 s, with a wide margin for a loaded machine


# -- several worker processes over loopback --------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_uvicorn_workers_share_the_limit_exactly(redis_url: str) -> None:
    pytest.importorskip("uvicorn")
    limit = 37
    port = _free_port()
    env = dict(os.environ, FASTREDIS_TEST_REDIS_URL=redis_url, FASTREDIS_TEST_LIMIT=str(limit), FASTREDIS_TEST_PREFIX=prefix())
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.join(HERE, "apps"), env.get("PYTHONPATH", "")] if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "asgi_ratelimit_app:app", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "3", "--log-level", "warning", "--no-access-log"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc, 3)

        async def fire() -> List[Any]:
            # no keep-alive: every request is a new connection, spread over the workers by the kernel
            limits_ = httpx.Limits(max_keepalive_connections=0, max_connections=40)
            async with httpx.AsyncClient(limits=limits_, timeout=30) as c:
                sem = asyncio.Semaphore(30)

                async def one(i: int) -> Any:
                    async with sem:
                        return await c.get(f"http://127.0.0.1:{port}/limited", headers={"x-api-key": "tenant-1"})

                return list(await asyncio.gather(*(one(i) for i in range(limit * 3))))

        got = run(fire(), timeout=120)
        ok_ = [g for g in got if g.status_code == 200]
        denied = [g for g in got if g.status_code == 429]
        assert len(ok_) == limit and len(denied) == 2 * limit, [g.status_code for g in got]
        pids = {g.json()["pid"] for g in ok_}
        assert len(pids) >= 2, f"one worker served everything: {pids}"
        assert sorted(int(g.headers["ratelimit-remaining"]) for g in ok_) == list(range(limit))
        assert all(g.headers["ratelimit-limit"] == str(limit) for g in got)
        assert all(1 <= int(g.headers["retry-after"]) <= 60 for g in denied)
        # another key has its own budget; /health is exempt
        other = run(_get(f"http://127.0.0.1:{port}/limited", {"x-api-key": "tenant-2"}))
        assert other.status_code == 200 and other.headers["ratelimit-remaining"] == str(limit - 1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def _get(url: str, headers: Dict[str, str]) -> Any:
    async with httpx.AsyncClient(timeout=30) as c:
        return await c.get(url, headers=headers)


def _wait_http(url: str, proc: "subprocess.Popen[bytes]", workers: int) -> None:
    """Until every worker answers (distinct pids on /health), or fail with the server's output."""
    deadline = time.monotonic() + 90
    pids = set()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"uvicorn exited with {proc.returncode}:\n{out}")
        try:
            with httpx.Client(timeout=2, limits=httpx.Limits(max_keepalive_connections=0)) as c:
                for _ in range(10):
                    pids.add(c.get(url).json()["pid"])
            if len(pids) >= min(2, workers):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"uvicorn did not serve {url} from several workers in time (pids seen: {pids})")


def test_plain_redis_asyncio_client_and_headers_off(redis_url: str) -> None:
    import redis.asyncio

    async def main() -> List[Any]:
        r = redis.asyncio.Redis.from_url(redis_url)
        try:
            lim = fa.SlidingWindowCounterLimiter(r, limit=2, window=3600, prefix=prefix())
            async with client_for(starlette_app(limiter=lim, headers=False)) as c:
                return [await c.get("/") for _ in range(3)]
        finally:
            await r.aclose()

    got = run(main())
    assert [g.status_code for g in got] == [200, 200, 429]
    assert "ratelimit-limit" not in got[0].headers
    assert got[2].headers["ratelimit-limit"] == "2"  # a denial always says why
