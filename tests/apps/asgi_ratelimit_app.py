"""A Starlette app behind RateLimitMiddleware, served by uvicorn in a
subprocess by tests/test_contrib_asgi.py (several worker processes).

Environment: FASTREDIS_TEST_REDIS_URL (the server), FASTREDIS_TEST_LIMIT
(requests per minute per client on /limited), FASTREDIS_TEST_PREFIX (key
prefix, unique per test run).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import fastredis.asyncio
from fastredis.contrib.asgi import RateLimitMiddleware, header

URL = os.environ["FASTREDIS_TEST_REDIS_URL"]
LIMIT = int(os.environ.get("FASTREDIS_TEST_LIMIT", "10"))
PREFIX = os.environ.get("FASTREDIS_TEST_PREFIX", "rl")

client = fastredis.asyncio.Redis.from_url(URL)
per_minute = fastredis.asyncio.SlidingWindowLimiter(client, limit=LIMIT, window=60, prefix=PREFIX)
per_hour = fastredis.asyncio.FixedWindowLimiter(client, limit=100 * LIMIT, window=3600, prefix=PREFIX)
limiter = fastredis.asyncio.CompositeLimiter([per_minute, per_hour])


async def limited(request):  # type: ignore[no-untyped-def]
    return JSONResponse({"pid": os.getpid()})


async def health(request):  # type: ignore[no-untyped-def]
    return JSONResponse({"pid": os.getpid()})


app = Starlette(routes=[Route("/limited", limited), Route("/health", health)])
app.add_middleware(RateLimitMiddleware, limiter=limiter, key=header("x-api-key"), exempt=["/health"])
