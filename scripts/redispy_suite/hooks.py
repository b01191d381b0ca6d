"""Conftest hooks for scripts/redispy_suite.sh (see swap_plugin.py).

redis-py's ``tests/conftest.py`` builds every client as
``cls(connection_pool=redis.ConnectionPool(**url_options))``. A pool the
caller builds keeps redis-py's default parser, so ``fastredis.Redis`` on such
a pool runs its single commands through redis-py's path and never reads a
reply with its own parser. :func:`fast_parser_pools` makes the conftest's
pools what ``fastredis.Redis.from_url(url, **kwargs)`` would build: the same
pool with ``parser_class=fastredis.Redis.parser_class``.
"""

from __future__ import annotations

import functools
from typing import Any


def fast_parser_pools(conftest: Any) -> None:
    """Wrap ``conftest._get_client`` so pools built for a fastredis client get
    fastredis's parser, unless the test picked a parser or a client-side cache."""
    import fastredis

    original = conftest._get_client
    if getattr(original, "_redispy_suite_wrapped", False):
        return

    @functools.wraps(original)
    def _get_client(cls: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if (
            isinstance(cls, type)
            and issubclass(cls, fastredis.Redis)
            and "parser_class" not in kwargs
            and not kwargs.get("cache")
            and not kwargs.get("cache_config")
        ):
            kwargs["parser_class"] = cls.parser_class
        return original(cls, request, *args, **kwargs)

    _get_client._redispy_suite_wrapped = True  # type: ignore[attr-defined]
    conftest._get_client = _get_client
