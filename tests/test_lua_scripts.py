"""Every Lua script: a header naming KEYS, ARGV and the return value, it
compiles on the server, and keys come only from KEYS."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from fastredis.scripts import LuaScript

LUA = sorted(p.name[:-4] for p in resources.files("fastredis").joinpath("lua").iterdir() if p.name.endswith(".lua"))


def _header(name: str) -> str:
    text = resources.files("fastredis").joinpath("lua", f"{name}.lua").read_text("utf-8")
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line)
    return "\n".join(lines)


def test_there_are_scripts() -> None:
    assert len(LUA) >= 10


@pytest.mark.parametrize("name", LUA)
def test_header_names_keys_argv_and_return(name: str) -> None:
    header = _header(name)
    assert "KEYS" in header, f"{name}.lua: header does not name its KEYS"
    assert "ARGV" in header, f"{name}.lua: header does not name its ARGV"
    assert re.search(r"return", header, re.I), f"{name}.lua: header does not say what it returns"


@pytest.mark.parametrize("name", LUA)
def test_compiles_on_the_server(r, name: str) -> None:  # type: ignore[no-untyped-def]
    script = LuaScript.load(name)
    assert r.script_load(script.script) == script.sha


@pytest.mark.parametrize("name", LUA)
def test_no_key_names_built_in_lua(name: str) -> None:
    # Keys are built by the client (fastredis.keys) and passed in KEYS, so the
    # scripts stay valid on Redis Cluster: no string concatenation into a
    # redis.call's key position.
    text = resources.files("fastredis").joinpath("lua", f"{name}.lua").read_text("utf-8")
    for m in re.finditer(r"redis\.call\(\s*'(\w+)'\s*,\s*([^,)]+)", text):
        first = m.group(2)
        assert ".." not in first, f"{name}.lua builds a key in Lua: {m.group(0)}"
