"""The pipeline reply core (``_pipeline_c`` / ``_pipeline_py``): callbacks
applied in one pass must equal redis-py's per-reply application."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from redis._parsers.helpers import bool_ok, parse_set_result
from redis._parsers.response_callbacks import get_response_callbacks
from redis.exceptions import ResponseError
from redis.client import CaseInsensitiveDict

from conftest import twin_params

OK = (parse_set_result, bool_ok)


@pytest.fixture(params=twin_params("_pipeline"))
def core(request: pytest.FixtureRequest) -> Any:
    return importlib.import_module(request.param)


def _reference(response, commands, callbacks):  # type: ignore[no-untyped-def]
    out = []
    for r, (args, options) in zip(response, commands):
        cb = callbacks.get(args[0])
        if cb is not None and not isinstance(r, Exception):
            opts = {k: v for k, v in options.items() if k != "keys"}
            r = cb(r, **opts)
        out.append(r)
    return out


@pytest.mark.parametrize("protocol", [None, 2, 3])
def test_matches_per_reply_callbacks(core: Any, protocol: Any) -> None:
    callbacks = CaseInsensitiveDict(get_response_callbacks(protocol, True))
    err = ResponseError("WRONGTYPE")
    commands = [
        (("SET", "k", "v"), {}),
        (("SET", "k", "v", "NX"), {}),
        (("SET", "k", "v", "GET"), {"get": True}),
        (("GET", "k"), {"keys": ["k"]}),
        (("HGETALL", "h"), {"keys": ["h"]}),
        (("EXPIRE", "k", 5), {}),
        (("MSET", "a", 1), {}),
        (("ZSCORE", "z", "m"), {"keys": ["z"]}),
        (("SMEMBERS", "s"), {}),
        (("LPUSH", "k", 1), {}),
        (("FLUSHDB",), {}),
    ]
    hgetall = [b"f", b"v"] if protocol in (None, 2) else {b"f": b"v"}
    zscore = b"1.5" if protocol in (None, 2) else 1.5
    response = [b"OK", None, b"old", b"val", hgetall, 1, b"OK", zscore, [b"a"], err, "OK"]
    expected = _reference(list(response), commands, callbacks)
    got = list(response)
    core.apply_callbacks(got, commands, callbacks.get, OK, True)
    assert got == expected
    assert got[0] is True and got[1] is None and got[2] == b"old" and got[9] is err


def test_shared_args_entries_resolve_once(core: Any) -> None:
    calls = []

    def lookup(name):  # type: ignore[no-untyped-def]
        calls.append(name)
        return parse_set_result if name == "SET" else None

    entry = (("SET", "k", "v"), {})
    response = [b"OK"] * 5 + [b"x"]
    core.apply_callbacks(response, [entry] * 5 + [(("GET", "k"), {})], lookup, OK, False)
    assert response == [True] * 5 + [b"x"]
    assert calls == ["SET", "GET"]


def test_ok_callback_edge_values(core: Any) -> None:
    response = [b"OK", "OK", b"NO", b"", None]
    core.apply_callbacks(response, [(("SET",), {})] * 5, {"SET": parse_set_result}.get, OK, False)
    assert response == [True, True, False, b"", None]
