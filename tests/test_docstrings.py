"""Every public docstring opens with a runnable example: run them all."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import fastredis

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(fastredis.__path__, "fastredis.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"


def test_public_names_have_examples() -> None:
    missing = []
    for name in fastredis.__all__:
        obj = getattr(fastredis, name)
        if name.startswith("__") or not callable(obj):
            continue
        if name in fastredis._REDIS_PY_NAMES:
            continue  # redis-py's own names, re-exported unchanged: redis-py documents them
        if isinstance(obj, type) and issubclass(obj, BaseException):
            continue  # exception classes document when they are raised instead
        doc = obj.__doc__ or ""
        if ">>>" not in doc:
            missing.append(name)
    assert not missing, f"public names without a runnable example: {missing}"


def test_asyncio_pattern_names_have_examples() -> None:
    """fastredis.asyncio's own names (the pattern twins) open with a runnable example too."""
    import redis.asyncio

    import fastredis.asyncio

    missing = []
    for name in fastredis.asyncio.__all__:
        obj = getattr(fastredis.asyncio, name)
        if name in redis.asyncio.__all__ or not callable(obj) or (isinstance(obj, type) and issubclass(obj, BaseException)):
            continue
        if ">>>" not in (obj.__doc__ or ""):
            missing.append(name)
    assert not missing, f"fastredis.asyncio names without a runnable example: {missing}"
