"""The compiled cores must really load where they should have.

A wheel build that silently fell back to pure Python (scikit-build-core's
``if.failed`` retry, a missing compiler, a broken import) fails here, unless
``FASTREDIS_NO_EXTENSIONS=1`` asked for the twins.
"""

from __future__ import annotations

import importlib
import os

import pytest

CORES = ["_resp", "_window", "_decay", "_pipeline", "_cluster"]


@pytest.mark.parametrize("core", CORES)
def test_compiled_core_loaded(core: str) -> None:
    selector = importlib.import_module(f"fastredis.{core}")
    if os.environ.get("FASTREDIS_NO_EXTENSIONS"):
        twin = importlib.import_module(f"fastredis.{core}_py")
        assert all(getattr(selector, n) is getattr(twin, n) for n in twin.__all__)
        return
    compiled = importlib.import_module(f"fastredis.{core}_c")  # ImportError fails the test
    assert compiled.__file__.endswith((".so", ".pyd")), compiled.__file__
    names = getattr(compiled, "__all__", None) or [n for n in dir(compiled) if not n.startswith("_")]
    assert names
    for name in names:
        assert getattr(selector, name) is getattr(compiled, name), f"fastredis.{core}.{name} is not the compiled one"


def test_client_runs_on_compiled_resp() -> None:
    from fastredis import _resp, client

    if os.environ.get("FASTREDIS_NO_EXTENSIONS"):
        pytest.skip("pure-Python twins requested")
    assert _resp.COMPILED is True
    assert client.FastParser.core.Reader.__module__ == "fastredis._resp_c"
    assert client.Pipeline.core.CommandBuffer.__module__ == "fastredis._resp_c"
