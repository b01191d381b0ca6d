"""Rate-limit middleware for any ASGI application (Starlette, FastAPI, Django's
ASGI handler, a bare ASGI callable), on the asyncio limiters of
:mod:`fastredis.asyncio`.

Plain ASGI: nothing here imports Starlette. In Starlette or FastAPI::

    app.add_middleware(RateLimitMiddleware, limiter=limiter, key=header("x-api-key"))

around anything else: ``app = RateLimitMiddleware(app, limiter=limiter)``.

What a request gets:

- admitted: the app's response, plus ``RateLimit-Limit``, ``RateLimit-Remaining``
  and ``RateLimit-Reset`` (seconds, rounded up; the IETF httpapi rate-limit
  headers draft);
- denied: ``429 Too Many Requests`` with ``Retry-After`` (whole seconds,
  rounded up) and the same three headers; the app is not called;
- Redis unreachable (connection refused or lost, timeout): with
  ``fail_open=True`` (the default) the request goes through without headers
  and a warning is logged (at most one every 10 seconds, with a count of the
  ones not logged); with ``fail_open=False`` it gets ``503`` and
  ``Retry-After: 1``.

One hit is one atomic Lua script on the server, so several worker processes
(``uvicorn --workers 4``) share each limit exactly. Concurrent requests in
one event-loop iteration share one write to Redis (``fastredis.asyncio``
pipelines them automatically).

Which limit applies, first match wins:

1. ``exempt`` paths (and routes mapped to ``None``, and endpoints decorated
   with :func:`rate_limit_exempt`): no limit, no headers;
2. ``routes``: a mapping from path patterns to limiters (or
   :class:`RouteLimit` for a per-route cost or key);
3. endpoints decorated with :func:`rate_limit` (found in a Starlette or
   FastAPI router behind the middleware, at the first request);
4. ``limiter``, the default for everything else (``None``: no default limit).

A per-route limit counts each route on its own: the limiter key is
``"<route pattern>|<key>"`` (or ``"<group>|<key>"`` for a :class:`RouteLimit`
with ``group``, to share one budget between routes).

Path patterns: ``"/login"`` (exact), ``"/items/{id}"`` (one path segment),
``"/files/{rest:path}"`` (the rest of the path), ``"/static/*"`` (a prefix),
each optionally preceded by a method: ``"POST /login"``. Within one mapping
an exact path wins over patterns, and patterns are tried in order.

Example::

    >>> import asyncio, fastredis.asyncio
    >>> from fastredis.server import RedisServer
    >>> async def hello(scope, receive, send):
    ...     await send({"type": "http.response.start", "status": 200, "headers": []})
    ...     await send({"type": "http.response.body", "body": b"hi"})
    >>> async def get(app, path="/"):
    ...     sent = []
    ...     async def send(message): sent.append(message)
    ...     async def receive(): return {"type": "http.request", "body": b""}
    ...     scope = {"type": "http", "method": "GET", "path": path, "headers": [], "client": ("10.0.0.1", 5000)}
    ...     await app(scope, receive, send)
    ...     return sent[0]["status"], dict(sent[0]["headers"])
    >>> async def main(port):
    ...     async with fastredis.asyncio.Redis(port=port) as r:
    ...         app = RateLimitMiddleware(hello, limiter=fastredis.asyncio.FixedWindowLimiter(r, limit=1, window=60))
    ...         return await get(app), await get(app)
    >>> with RedisServer() as server:
    ...     first, second = asyncio.run(main(server.port))
    >>> first[0], first[1][b"ratelimit-remaining"]
    (200, b'0')
    >>> second[0], 1 <= int(second[1][b"retry-after"]) <= 60
    (429, True)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import re
import sys
import time
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    MutableMapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import redis.exceptions

__all__ = [
    "RateLimitMiddleware",
    "RouteLimit",
    "rate_limit",
    "rate_limit_exempt",
    "client_address",
    "header",
    "forwarded_for",
    "by_route",
    "route_of",
]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: A key function: the request scope -> the limiter key (None: do not limit this request).
KeyFunc = Callable[[Scope], Any]

#: Where the middleware puts the pattern of the route whose limit applied.
ROUTE_SCOPE_KEY = "fastredis.route"
_ATTR = "__fastredis_rate_limit__"
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError, asyncio.TimeoutError)
_NO_MATCH: Any = object()


# -- key functions ---------------------------------------------------------------

def client_address(scope: Scope) -> Optional[str]:
    """The client's IP address as the server saw it (the default key).

    Behind a proxy every request comes from the proxy: use
    :func:`forwarded_for` then. None (not limited) when the server gives no
    client address, as for a unix socket.

    Example::

        >>> client_address({"client": ("203.0.113.7", 51000)})
        '203.0.113.7'
    """
    client = scope.get("client")
    return client[0] if client else None


def header(name: str, fallback: Optional[KeyFunc] = client_address) -> KeyFunc:
    """A key function reading request header ``name`` (e.g. an API key).

    Requests without the header are keyed by ``fallback`` (default: the
    client address; ``None``: such requests are not limited).

    Example::

        >>> key = header("X-API-Key")
        >>> key({"headers": [(b"x-api-key", b"k-123")], "client": ("10.0.0.1", 1)})
        'k-123'
        >>> key({"headers": [], "client": ("10.0.0.1", 1)})
        '10.0.0.1'
    """
    wanted = name.lower().encode("latin-1")

    def key(scope: Scope) -> Any:
        for k, v in scope.get("headers") or ():
            if k == wanted or k.lower() == wanted:
                return v.decode("latin-1")
        return fallback(scope) if fallback is not None else None

    key.__name__ = f"header({name!r})"
    return key


def forwarded_for(trusted_proxies: int = 1) -> KeyFunc:
    """A key function for apps behind ``trusted_proxies`` reverse proxies: the
    client address from ``X-Forwarded-For`` (the entry that many hops from
    the right), else the peer address.

    Example::

        >>> key = forwarded_for(1)
        >>> key({"headers": [(b"x-forwarded-for", b"198.51.100.1, 203.0.113.9")], "client": ("10.0.0.2", 1)})
        '203.0.113.9'
    """
    if isinstance(trusted_proxies, bool) or not isinstance(trusted_proxies, int) or trusted_proxies < 1:
        raise ValueError(f"trusted_proxies must be an int >= 1, got {trusted_proxies!r}")

    def key(scope: Scope) -> Any:
        for k, v in scope.get("headers") or ():
            if k == b"x-forwarded-for":
                hops = [h.strip() for h in v.decode("latin-1").split(",") if h.strip()]
                if len(hops) >= trusted_proxies:
                    return hops[-trusted_proxies]
        return client_address(scope)

    return key


def route_of(scope: Scope) -> str:
    """The pattern of the route whose limit applies (``"/items/{id}"``), or the
    request path when no per-route limit matched.

    Example::

        >>> route_of({"path": "/items/7", "fastredis.route": "/items/{id}"})
        '/items/{id}'
        >>> route_of({"path": "/about"})
        '/about'
    """
    route = scope.get(ROUTE_SCOPE_KEY)
    return str(route if route is not None else scope.get("path", ""))


def by_route(inner: KeyFunc = client_address) -> KeyFunc:
    """A key function counting each route apart: ``"<route>|<inner key>"``.

    Useful for a default ``limiter`` meant per route and per client ("10 per
    minute on each endpoint"); per-route limits are already counted per route.

    Example::

        >>> by_route()({"path": "/search", "client": ("10.0.0.1", 1)})
        '/search|10.0.0.1'
    """

    def key(scope: Scope) -> Any:
        k = inner(scope)
        return None if k is None else f"{route_of(scope)}|{k}"

    return key


# -- per-route limits --------------------------------------------------------------

class RouteLimit(NamedTuple):
    """A per-route limit: the limiter (None: exempt), the cost of one request,
    the key function (None: the middleware's) and the budget group (None: the
    route's own).

    Example::

        >>> RouteLimit(None).limiter is None
        True
    """

    limiter: Any
    cost: Union[int, Callable[[Scope], int]] = 1
    key: Optional[KeyFunc] = None
    group: Optional[str] = None


def rate_limit(
    limiter: Any,
    *,
    cost: Union[int, Callable[[Scope], int]] = 1,
    key: Optional[KeyFunc] = None,
    group: Optional[str] = None,
) -> Callable[[Any], Any]:
    """Decorate a Starlette or FastAPI endpoint with its own limit.

    The middleware finds decorated endpoints in the router behind it at the
    first request. Put the decorator closest to the function (below
    ``@app.get(...)``).

    Example::

        >>> @rate_limit(limiter=None)
        ... async def health(request): ...
        >>> health.__fastredis_rate_limit__
        RouteLimit(limiter=None, cost=1, key=None, group=None)
    """
    _check_limiter(limiter, allow_none=True)
    spec = RouteLimit(limiter, _check_cost(cost), key, group)

    def decorate(endpoint: Any) -> Any:
        setattr(endpoint, _ATTR, spec)
        return endpoint

    return decorate


def rate_limit_exempt(endpoint: Any) -> Any:
    """Decorate a Starlette or FastAPI endpoint that is never limited.

    Example::

        >>> @rate_limit_exempt
        ... async def health(request): ...
        >>> health.__fastredis_rate_limit__.limiter is None
        True
    """
    setattr(endpoint, _ATTR, RouteLimit(None))
    return endpoint


def _check_limiter(limiter: Any, allow_none: bool) -> None:
    if limiter is None and allow_none:
        return
    hit = getattr(type(limiter), "hit", None)
    if hit is None or not inspect.iscoroutinefunction(hit):
        raise TypeError(
            "RateLimitMiddleware needs an asyncio limiter, e.g. "
            "fastredis.asyncio.FixedWindowLimiter(fastredis.asyncio.Redis(...), limit=10, window=1) "
            f"or fastredis.asyncio.CompositeLimiter([...]); got {type(limiter).__name__}"
        )


def _check_cost(cost: Any) -> Any:
    if callable(cost):
        return cost
    if isinstance(cost, bool) or not isinstance(cost, int) or cost <= 0:
        raise ValueError(f"cost must be an int > 0 or a callable(scope) -> int, got {cost!r}")
    return cost


_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(path|str|int|float|uuid))?\}")


class _Pattern(NamedTuple):
    method: Optional[str]
    exact: Optional[str]
    regex: Optional["re.Pattern[str]"]
    template: str


def _compile(pattern: str) -> _Pattern:
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(f"a route pattern must be a non-empty str, got {pattern!r}")
    method: Optional[str] = None
    path = pattern.strip()
    if " " in path:
        method, path = path.split(None, 1)
        method = method.upper()
    if not path.startswith("/"):
        raise ValueError(f"a route pattern's path must start with '/': {pattern!r}")
    if "{" not in path and not path.endswith("*"):
        return _Pattern(method, path, None, path)
    out, pos = ["^"], 0
    body = path[:-1] if path.endswith("*") else path
    for m in _PARAM.finditer(body):
        out.append(re.escape(body[pos:m.start()]))
        out.append(".*" if m.group(2) == "path" else "[^/]+")
        pos = m.end()
    rest = body[pos:]
    if "{" in rest or "}" in rest:
        raise ValueError(f"bad parameter in route pattern {pattern!r}: use {{name}} or {{name:path}}")
    out.append(re.escape(rest))
    out.append(".*$" if path.endswith("*") else "$")
    return _Pattern(method, None, re.compile("".join(out)), path)


class _Table:
    """Path patterns -> values; exact paths by dict, the rest in order."""

    def __init__(self, items: Iterable[Tuple[str, Any]]) -> None:
        self.exact: Dict[Tuple[Optional[str], str], Tuple[str, Any]] = {}
        self.patterns: List[Tuple[_Pattern, Any]] = []
        for pattern, value in items:
            p = _compile(pattern)
            if p.exact is not None:
                self.exact.setdefault((p.method, p.exact), (p.template, value))
            else:
                self.patterns.append((p, value))
        self.empty = not self.exact and not self.patterns

    def match(self, method: str, path: str) -> Tuple[str, Any]:
        found = self.exact.get((method, path)) or self.exact.get((None, path))
        if found is not None or not self.patterns:
            return found if found is not None else ("", _NO_MATCH)
        for p, value in self.patterns:
            if (p.method is None or p.method == method) and p.regex.match(path):  # type: ignore[union-attr]
                return p.template, value
        return "", _NO_MATCH


def _routes_behind(app: Any) -> Optional[Sequence[Any]]:
    """The routes of the Starlette/FastAPI router behind ``app``, if any."""
    seen = 0
    obj = app
    while obj is not None and seen < 64:
        routes = getattr(obj, "routes", None)
        if isinstance(routes, list):
            return routes
        router = getattr(obj, "router", None)
        routes = getattr(router, "routes", None)
        if isinstance(routes, list):
            return routes
        obj = getattr(obj, "app", None)
        seen += 1
    return None


def _decorated(routes: Sequence[Any], chain: Tuple[Any, ...] = ()) -> List[Tuple[Tuple[Any, ...], str, RouteLimit]]:
    out: List[Tuple[Tuple[Any, ...], str, RouteLimit]] = []
    for route in routes:
        spec = getattr(getattr(route, "endpoint", None), _ATTR, None)
        if isinstance(spec, RouteLimit):
            template = "".join(getattr(r, "path", "") for r in chain) + getattr(route, "path", "")
            out.append((chain + (route,), template, spec))
        sub = getattr(route, "routes", None)
        if isinstance(sub, list) and sub and len(chain) < 8:  # a Mount
            out.extend(_decorated(sub, chain + (route,)))
    return out


def _full_match(chain: Tuple[Any, ...], scope: Scope) -> bool:
    current = scope
    for i, route in enumerate(chain):
        match, child = route.matches(current)
        name = getattr(match, "name", None)
        if name != "FULL" and not (name == "PARTIAL" and i < len(chain) - 1):
            return False
        current = {**current, **child}
    return True


# -- the middleware ----------------------------------------------------------------

class _Rule(NamedTuple):
    limiter: Any
    cost: Any
    key: KeyFunc
    prefix: Optional[str]  # "<route or group>|" for per-route limits
    route: Optional[str]


class RateLimitMiddleware:
    """ASGI middleware admitting or denying each HTTP request with an asyncio
    limiter (see the module docstring for headers, routes and failures).

    ``limiter``: any :mod:`fastredis.asyncio` limiter, including a
    ``CompositeLimiter`` (``10/s`` and ``1000/h`` at once), or None for
    "only the per-route limits". ``key(scope)``: the limiter key (default
    :func:`client_address`; None means "do not limit this request"); it may
    be an ``async def``. ``cost``: an int or ``cost(scope) -> int``.
    ``timeout``: seconds to wait for Redis before treating it as unreachable
    (None: the client's own socket timeout). ``headers=False`` leaves admitted
    responses untouched. WebSocket and lifespan traffic passes through.

    Example::

        >>> import asyncio, fastredis.asyncio
        >>> from fastredis.server import RedisServer
        >>> async def app(scope, receive, send):
        ...     await send({"type": "http.response.start", "status": 204, "headers": []})
        ...     await send({"type": "http.response.body", "body": b""})
        >>> async def status(mw, path):
        ...     sent = []
        ...     async def send(m): sent.append(m)
        ...     await mw({"type": "http", "method": "POST", "path": path, "headers": [], "client": ("1.2.3.4", 1)}, None, send)
        ...     return sent[0]["status"]
        >>> async def main(port):
        ...     async with fastredis.asyncio.Redis(port=port) as r:
        ...         login = fastredis.asyncio.FixedWindowLimiter(r, limit=1, window=60)
        ...         mw = RateLimitMiddleware(app, routes={"POST /login": login}, exempt=["/health"])
        ...         return [await status(mw, p) for p in ("/login", "/login", "/health", "/other")]
        >>> with RedisServer() as server:
        ...     asyncio.run(main(server.port))
        [204, 429, 204, 204]
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: Any = None,
        key: KeyFunc = client_address,
        *,
        routes: Optional[Mapping[str, Any]] = None,
        exempt: Iterable[str] = (),
        cost: Union[int, Callable[[Scope], int]] = 1,
        fail_open: bool = True,
        timeout: Optional[float] = None,
        headers: bool = True,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, got {type(app).__name__}")
        _check_limiter(limiter, allow_none=True)
        if not callable(key):
            raise TypeError("key must be a callable(scope) -> key")
        if isinstance(exempt, str):
            raise TypeError("exempt takes a list of path patterns, not one str")
        if not isinstance(fail_open, bool):
            raise TypeError("fail_open must be True or False")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
            raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
        self.app = app
        self.limiter = limiter
        self.key = key
        self.cost = _check_cost(cost)
        self.fail_open = fail_open
        self.timeout = timeout
        self.headers = headers
        self._default = _Rule(limiter, self.cost, key, None, None) if limiter is not None else None
        self._exempt = _Table((p, None) for p in exempt)
        items: List[Tuple[str, Any]] = []
        for pattern, value in (routes or {}).items():
            spec = value if isinstance(value, RouteLimit) else RouteLimit(value)
            _check_limiter(spec.limiter, allow_none=True)
            _check_cost(spec.cost)
            items.append((pattern, spec))
        self._routes = _Table(items)
        self._rules: Dict[str, Optional[_Rule]] = {}
        self._decorated: Optional[List[Tuple[Tuple[Any, ...], str, RouteLimit]]] = None
        self._async_key: Dict[Any, bool] = {}  # key function -> is it an async def
        self._unreachable_since = 0.0
        self._unreachable_quiet = 0
        self.unreachable_count = 0  #: requests that met an unreachable Redis

    # -- choosing the rule
    def _rule_for(self, template: str, spec: RouteLimit) -> Optional[_Rule]:
        cache_key = f"{template}\x00{id(spec)}"
        rule = self._rules.get(cache_key, _NO_MATCH)
        if rule is _NO_MATCH:
            if spec.limiter is None:
                rule = None
            else:
                prefix = (spec.group if spec.group is not None else template) + "|"
                rule = _Rule(spec.limiter, spec.cost, spec.key or self.key, prefix, template)
            self._rules[cache_key] = rule
        return rule  # type: ignore[no-any-return]

    def _choose(self, scope: Scope) -> Optional[_Rule]:
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        if not self._exempt.empty and self._exempt.match(method, path)[1] is not _NO_MATCH:
            return None
        if not self._routes.empty:
            template, spec = self._routes.match(method, path)
            if spec is not _NO_MATCH:
                return self._rule_for(template, spec)
        decorated = self._decorated
        if decorated is None:
            routes = _routes_behind(self.app)
            decorated = self._decorated = _decorated(routes) if routes else []
        for chain, template, spec in decorated:
            if _full_match(chain, scope):
                return self._rule_for(template, spec)
        return self._default

    # -- the ASGI entry point
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self._choose(scope) if (self._decorated != [] or not self._routes.empty or not self._exempt.empty) else self._default
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.route is not None:
            scope[ROUTE_SCOPE_KEY] = rule.route
        key_func = rule.key
        is_async = self._async_key.get(key_func)
        if is_async is None:
            is_async = self._async_key[key_func] = inspect.iscoroutinefunction(key_func)
        k = (await key_func(scope)) if is_async else key_func(scope)
        if k is None:
            await self.app(scope, receive, send)
            return
        if rule.prefix is not None:
            k = rule.prefix + (k if isinstance(k, str) else str(k))
        cost = rule.cost if type(rule.cost) is int else _check_cost(rule.cost(scope))
        try:
            if self.timeout is None:
                decision = await rule.limiter.hit(k, cost)
            else:
                decision = await _with_timeout(rule.limiter.hit(k, cost), self.timeout)
        except _UNREACHABLE as exc:
            await self._unreachable(exc, scope, receive, send)
            return
        if decision.allowed:
            if not self.headers:
                await self.app(scope, receive, send)
                return
            extra = _headers(decision)

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), *extra]
                await send(message)

            await self.app(scope, receive, send_with_headers)
            return
        await _deny(decision, send)

    async def _unreachable(self, exc: BaseException, scope: Scope, receive: Receive, send: Send) -> None:
        self.unreachable_count += 1
        now = time.monotonic()
        if now - self._unreachable_since >= 10.0:
            quiet, self._unreachable_quiet = self._unreachable_quiet, 0
            self._unreachable_since = now
            log.warning(
                "RateLimitMiddleware: Redis unreachable (%s: %s); %s%s",
                type(exc).__name__, exc,
                "requests pass unlimited (fail_open=True)" if self.fail_open else "requests get 503 (fail_open=False)",
                f"; {quiet} more since the last warning" if quiet else "",
            )
        else:
            self._unreachable_quiet += 1
        if self.fail_open:
            await self.app(scope, receive, send)
            return
        body = b"Service Unavailable: the rate limiter cannot reach Redis\n"
        await send({
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        })
        await send({"type": "http.response.body", "body": body})


if sys.version_info >= (3, 11):
    async def _with_timeout(awaitable: Awaitable[Any], seconds: float) -> Any:
        async with asyncio.timeout(seconds):
            return await awaitable
else:  # pragma: no cover - Python 3.10
    async def _with_timeout(awaitable: Awaitable[Any], seconds: float) -> Any:
        return await asyncio.wait_for(awaitable, seconds)


_INT_BYTES = [str(i).encode() for i in range(1024)]


def _num(n: int) -> bytes:
    return _INT_BYTES[n] if 0 <= n < 1024 else str(n).encode()


def _seconds(x: float) -> bytes:
    """Whole seconds, rounded up (0 stays 0)."""
    if x <= 0:
        return b"0"
    if x == math.inf:
        return b"0"
    return _num(math.ceil(x))


def _headers(decision: Any) -> List[Tuple[bytes, bytes]]:
    """The three RateLimit-* headers of ``decision``.

    Example::

        >>> from fastredis.patterns.ratelimit import Decision
        >>> _headers(Decision(True, 10, 9, 0.0, 0.2))
        [(b'ratelimit-limit', b'10'), (b'ratelimit-remaining', b'9'), (b'ratelimit-reset', b'1')]
    """
    return [
        (b"ratelimit-limit", _num(decision.limit)),
        (b"ratelimit-remaining", _num(max(0, decision.remaining))),
        (b"ratelimit-reset", _seconds(decision.reset_after)),
    ]


_DENY_BODY = b"Too Many Requests\n"


async def _deny(decision: Any, send: Send) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", _num(len(_DENY_BODY))),
    ]
    if decision.retry_after != math.inf:  # a cost above the limit never fits: no Retry-After
        headers.append((b"retry-after", _num(max(1, math.ceil(decision.retry_after)))))
    headers.extend(_headers(decision))
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": _DENY_BODY})
