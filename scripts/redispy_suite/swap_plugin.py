"""pytest plugin for scripts/redispy_suite.sh: swap redis-py's client class for
fastredis's before redis-py's own conftest and test modules import it, and
record every test's outcome as JSON for the comparison.

Loaded with ``-p swap_plugin`` (this directory on ``PYTHONPATH``), so it is
imported while pytest parses its arguments: before ``tests/conftest.py`` and
before any test module runs ``from redis import Redis``.

Environment (set by ``run.py``):

``REDISPY_SUITE_SWAP``
    ``;``-separated ``name[,name...]=module:attr`` items, e.g.
    ``redis.Redis,redis.client.Redis=fastredis:Redis``. Each dotted name on
    the left is rebound to the object on the right. Empty or unset: plain
    redis-py (the baseline run).
``REDISPY_SUITE_CONFTEST_HOOK``
    Optional ``module:function`` called with redis-py's conftest module as
    soon as pytest registers it (used to give the conftest's pools
    fastredis's parser; see ``hooks.py``).
``REDISPY_SUITE_RESULTS``
    Path of the JSON file written at the end of the session:
    ``{"meta": {"swapped": {name: still_swapped}, "hooks": [...]},
    "tests": {"nodeid": {"outcome": ..., "when": ..., "seconds": ..., "message": ..., "longrepr": ...}}}``
    (``seconds``: setup, call and teardown together).
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Dict, List

import pytest

_SWAPPED: Dict[str, Any] = {}


def _resolve(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _rebind(dotted: str, value: Any) -> None:
    module_name, _, attr = dotted.rpartition(".")
    module = importlib.import_module(module_name)
    if not hasattr(module, attr):
        raise RuntimeError(f"redispy_suite: {dotted} does not exist, nothing to swap")
    setattr(module, attr, value)
    _SWAPPED[dotted] = value


def _apply_swaps() -> None:
    for item in filter(None, (s.strip() for s in os.environ.get("REDISPY_SUITE_SWAP", "").split(";"))):
        names, _, target = item.partition("=")
        # Import the replacement first: it subclasses the originals, so it must
        # see redis-py's classes before they are rebound.
        value = _resolve(target.strip())
        for name in filter(None, (n.strip() for n in names.split(","))):
            _rebind(name, value)


_apply_swaps()


def pytest_report_header(config: Any) -> str:
    if not _SWAPPED:
        return "redispy_suite: plain redis-py (no swap)"
    lines = [f"redispy_suite: {name} -> {v.__module__}.{v.__qualname__}" for name, v in _SWAPPED.items()]
    lines += [f"redispy_suite: conftest hook {h}" for h in _HOOKED]
    return "\n".join(lines)


_HOOKED: List[str] = []


def pytest_plugin_registered(plugin: Any, manager: Any) -> None:
    hook = os.environ.get("REDISPY_SUITE_CONFTEST_HOOK")
    name = getattr(plugin, "__name__", "")
    if hook and name.endswith("conftest") and name.split(".")[0] == "tests":
        _resolve(hook)(plugin)
        _HOOKED.append(f"{hook}({name})")


# -- results ---------------------------------------------------------------
_results: Dict[str, Dict[str, Any]] = {}
_seconds: Dict[str, float] = {}
_RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 1, "failed": 2, "error": 2}


def _record(nodeid: str, outcome: str, report: Any) -> None:
    prev = _results.get(nodeid)
    if prev is not None and _RANK[prev["outcome"]] >= _RANK[outcome]:
        return
    entry = {"outcome": outcome, "when": report.when}
    if outcome in ("failed", "error"):
        crash = getattr(report.longrepr, "reprcrash", None)
        lines = str(report.longrepr).strip().splitlines()
        entry["message"] = crash.message if crash else (lines[-1] if lines else "")
        entry["longrepr"] = str(report.longrepr)[-6000:]
    _results[nodeid] = entry


def pytest_runtest_logreport(report: Any) -> None:
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + float(getattr(report, "duration", 0.0) or 0.0)
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            _record(report.nodeid, "xpassed" if report.passed else "xfailed", report)
        elif report.failed:
            _record(report.nodeid, "failed", report)
        else:
            _record(report.nodeid, report.outcome, report)
    elif report.failed:  # setup or teardown error
        _record(report.nodeid, "error", report)
    elif report.skipped and report.when == "setup":
        _record(report.nodeid, "xfailed" if hasattr(report, "wasxfail") else "skipped", report)


def pytest_collectreport(report: Any) -> None:
    if report.failed:  # e.g. a test module that no longer imports
        _record(report.nodeid or "<collection>", "error", report)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get("REDISPY_SUITE_RESULTS")
    if path:
        # Still swapped at the end (no test undid it), and which hooks ran.
        still = {name: _lookup(name) is value for name, value in _SWAPPED.items()}
        meta = {"swapped": still, "hooks": _HOOKED}
        for nodeid, entry in _results.items():
            entry["seconds"] = round(_seconds.get(nodeid, 0.0), 3)
        with open(path, "w") as f:
            json.dump({"meta": meta, "tests": _results}, f, indent=1, sort_keys=True)


def _lookup(dotted: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attr, None)
