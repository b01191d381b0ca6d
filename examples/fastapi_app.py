"""A FastAPI app on fastredis: rate limits, a cached endpoint, a leaderboard.

    pip install 'fastredis[asgi]' fastapi uvicorn
    REDIS_URL=redis://localhost:6379/0 uvicorn examples.fastapi_app:app --workers 4

Every worker process shares the limits exactly (one Lua script per decision
on the server) and each keeps an L1 of the product cache, kept coherent
with the others by Redis client tracking. tests/test_examples.py drives this
app in-process and over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any, AsyncIterator, Dict, List

from fastapi import FastAPI, HTTPException

import fastredis.asyncio as fa
from fastredis.contrib.asgi import RateLimitMiddleware, header, rate_limit, rate_limit_exempt

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")

# Stand-in for a database: what the cached endpoint loads on a miss.
PRODUCTS: Dict[int, Dict[str, Any]] = {i: {"id": i, "name": f"Product {i}", "price": 10 * i} for i in range(1, 100)}
LOADS: List[int] = []  # product ids loaded from the "database", for the tests


def create_app(redis_url: str = REDIS_URL) -> FastAPI:
    redis = fa.Redis.from_url(redis_url)
    # 10 requests a second and 1000 an hour per API key (or client address), checked together
    api_limit = fa.CompositeLimiter([
        fa.SlidingWindowLimiter(redis, limit=10, window=1, prefix="api"),
        fa.FixedWindowLimiter(redis, limit=1000, window=3600, prefix="api"),
    ])
    # logins: bursts of 3, then one every 5 seconds
    login_limit = fa.TokenBucketLimiter(redis, rate=0.2, capacity=3, prefix="login")
    products = fa.TieredCache(redis, prefix="products", ttl=300, local_ttl=60)
    scores = fa.Leaderboard(redis, "weekly")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await products.aclose()
        await redis.aclose()

    app = FastAPI(title="fastredis example", lifespan=lifespan)

    @app.get("/products/{product_id}")
    async def product(product_id: int) -> Dict[str, Any]:
        async def load() -> Dict[str, Any]:
            LOADS.append(product_id)
            await asyncio.sleep(0.01)  # a slow query; concurrent misses share one load
            if product_id not in PRODUCTS:
                raise HTTPException(404, "no such product")
            return PRODUCTS[product_id]

        return await products.get_or_set(f"product:{product_id}", load)  # type: ignore[no-any-return]

    @app.post("/scores/{player}")
    async def add_score(player: str, points: float = 1.0) -> Dict[str, Any]:
        total = await scores.incr(player, points)
        return {"player": player, "score": total, "rank": await scores.rank(player)}

    @app.get("/leaderboard")
    async def leaderboard(n: int = 10) -> List[Dict[str, Any]]:
        return [{"player": p, "score": s} for p, s in await scores.top(n)]

    @app.post("/login")
    @rate_limit(login_limit, key=header("x-user"))  # per user name (else address): its own limit
    async def login() -> Dict[str, bool]:
        return {"ok": True}

    @app.get("/health")
    @rate_limit_exempt
    async def health() -> Dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(RateLimitMiddleware, limiter=api_limit, key=header("x-api-key"))
    return app


app = create_app()
