"""Fails when the compiled RESP core should have loaded and did not."""

import os

import pytest


@pytest.mark.skipif(bool(os.environ.get("FASTREDIS_NO_EXTENSIONS")), reason="FASTREDIS_NO_EXTENSIONS=1")
def test_compiled_core_loaded():
    import fastredis._resp as sel
    import fastredis._resp_c as compiled

    assert sel.COMPILED is True
    assert sel.CommandBuffer is compiled.CommandBuffer
    assert sel.Reader is compiled.Reader
    assert sel.pack_command is compiled.pack_command


def test_selector_honours_no_extensions(monkeypatch):
    import importlib

    import fastredis._resp as sel
    import fastredis._resp_py as pure

    monkeypatch.setenv("FASTREDIS_NO_EXTENSIONS", "1")
    try:
        importlib.reload(sel)
        assert sel.COMPILED is False
        assert sel.CommandBuffer is pure.CommandBuffer and sel.Reader is pure.Reader
    finally:
        monkeypatch.undo()
        importlib.reload(sel)
