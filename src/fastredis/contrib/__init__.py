"""Integrations with web frameworks: :mod:`fastredis.contrib.asgi` (rate-limit
middleware for any ASGI app: Starlette, FastAPI, Django's ASGI handler, ...)
and :mod:`fastredis.contrib.django` (a Django cache backend on ``TieredCache``).

Each imports its framework only when used; install the extras:
``pip install fastredis[asgi]`` / ``fastredis[django]``.

Example::

    >>> import fastredis.contrib.asgi
    >>> fastredis.contrib.asgi.RateLimitMiddleware.__name__
    'RateLimitMiddleware'
"""
