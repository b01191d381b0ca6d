"""The comparison logic of scripts/redispy_suite.sh (scripts/redispy_suite/run.py):
which fastredis failures fail the run, which are allowed, which are only noted.
No server and no redis-py test run: results are built by hand."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
from typing import Any, Dict

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE_DIR = os.path.join(os.path.dirname(HERE), "scripts", "redispy_suite")


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"redispy_suite_{name}", os.path.join(SUITE_DIR, f"{name}.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


run = _load("run")
F = "tests/test_x.py::test_"


def res(**outcomes: str) -> Dict[str, Dict[str, str]]:
    return {F + k: {"outcome": v, "when": "call", "message": f"{k} says no", "longrepr": ""} for k, v in outcomes.items()}


def args(**kw: Any) -> argparse.Namespace:
    base = dict(
        tracebacks=0,
        tests_root="/t",
        known=os.path.join(SUITE_DIR, "known_failures.txt"),
        deliberate={},
        deliberate_path=os.path.join(SUITE_DIR, "deliberate_differences.txt"),
        k=None,
        pytest_args=[],
    )
    base.update(kw)
    return argparse.Namespace(**base)


SUITE = dataclasses.replace(run.ASYNC, files=["tests/test_x.py"])


def compare(fast: Any, base: Any, known: Any = (), rerun: Any = None, deliberate: Any = ()) -> Any:
    return run.compare(
        SUITE, "fastredis", fast, base, rerun, {F + k: "reason" for k in known}, args(deliberate={F + k: "why" for k in deliberate})
    )


def test_fastredis_only_failure_fails_the_run() -> None:
    ok, lines = compare(res(a="passed", b="failed"), res(a="passed", b="passed"))
    assert not ok
    assert any("FAIL: 1 test(s) fail with fastredis but not with redis-py" in line for line in lines)
    assert any(F + "b" in line for line in lines)


def test_listed_failure_of_both_is_allowed() -> None:
    ok, lines = compare(res(a="failed"), res(a="failed"), known=["a"])
    assert ok, lines


def test_unlisted_failure_of_both_fails_the_run() -> None:
    ok, lines = compare(res(a="error"), res(a="failed"))
    assert not ok
    assert any("not in" in line and "known_failures.txt" in line for line in lines)


def test_listed_is_no_excuse_when_redis_py_passes() -> None:
    ok, _ = compare(res(a="failed"), res(a="passed"), known=["a"])
    assert not ok


def test_listed_test_that_passes_is_noted_not_failed() -> None:
    ok, lines = compare(res(a="passed"), res(a="failed"), known=["a"])
    assert ok
    assert any("listed known failure(s) pass with fastredis" in line for line in lines)


def test_failure_that_passes_on_rerun_is_a_warning() -> None:
    ok, lines = compare(res(a="failed"), res(a="passed"), rerun=res(a="passed"))
    assert ok
    assert any("warning" in line and "rerun" in line for line in lines)


def test_test_missing_from_the_fastredis_run_fails() -> None:
    ok, lines = compare(res(a="passed"), res(a="passed", b="passed"))
    assert not ok
    assert any("ran with redis-py but not with fastredis" in line for line in lines)


def test_only_fastredis_compares_with_the_list() -> None:
    assert compare(res(a="failed", b="passed"), None, known=["a"])[0]
    assert not compare(res(a="failed", b="failed"), None, known=["a"])[0]


def test_deliberate_difference_is_allowed_and_counted() -> None:
    ok, lines = compare(res(a="failed", b="passed"), res(a="passed", b="passed"), deliberate=["a"])
    assert ok
    assert "allowed failures: 0 known (fail with redis-py too), 1 deliberate differences" in lines[0]
    # whatever redis-py does, and without a redis-py run
    assert compare(res(a="failed"), res(a="failed"), deliberate=["a"])[0]
    assert compare(res(a="failed"), None, deliberate=["a"])[0]


def test_deliberate_list_excuses_only_its_own_tests() -> None:
    ok, lines = compare(res(a="failed", b="failed"), res(a="passed", b="passed"), deliberate=["a"])
    assert not ok
    assert any(line.strip().startswith(F + "b") for line in lines)
    assert not any(line.strip().startswith(F + "a ") for line in lines)


def test_deliberate_difference_that_passes_is_noted_not_failed() -> None:
    ok, lines = compare(res(a="passed"), res(a="passed"), deliberate=["a"])
    assert ok
    assert any("listed deliberate difference(s) pass with fastredis" in line for line in lines)


def test_slowest_files() -> None:
    results = {
        "tests/a.py::t1": {"outcome": "passed", "seconds": 1.0},
        "tests/a.py::t2": {"outcome": "passed", "seconds": 2.0},
        "tests/b.py::t": {"outcome": "passed", "seconds": 5.0},
        "tests/c.py::t": {"outcome": "passed"},
    }
    assert run.slowest_files(results, 2) == "b.py 5s, a.py 3s"


def test_read_list_requires_reasons(tmp_path: Any) -> None:
    p = tmp_path / "l.txt"
    p.write_text("# comment\n\ntests/a.py::t  # why\n")
    assert run.read_list(str(p)) == {"tests/a.py::t": "why"}
    p.write_text("tests/a.py::t\n")
    with pytest.raises(SystemExit):
        run.read_list(str(p))


def test_version_scoped_entries() -> None:
    known = {"a": "[redis<7] old", "b": "[redis==7.0.*] seven", "c": "always"}
    assert set(run.for_server(known, "6.2.14")) == {"a", "c"}
    assert set(run.for_server(known, "7.0.15")) == {"b", "c"}
    assert set(run.for_server(known, "8.2.0")) == {"c"}
    assert set(run.for_server(known, None)) == {"a", "b", "c"}


def test_tracked_lists_parse() -> None:
    for name in ("known_failures.txt", "deselected.txt", "deliberate_differences.txt"):
        entries = run.read_list(os.path.join(SUITE_DIR, name))
        assert entries and all(n.startswith("tests/") and "::" in n for n in entries)


def test_tail_drops_pytest_frames() -> None:
    tb = "\n".join([
        "Traceback (most recent call last):",
        '  File "/x/site-packages/_pytest/runner.py", line 1, in call',
        "    item.runtest()",
        '  File "/checkout/tests/test_a.py", line 3, in test_a',
        "    f()",
        '  File "/x/site-packages/fastredis/client.py", line 9, in f',
        "    boom",
        "ValueError: no",
    ])
    out = run.tail(tb, 50, "/checkout")
    assert "_pytest" not in out
    assert '"tests/test_a.py"' in out and '"fastredis/client.py"' in out
    assert out.strip().endswith("ValueError: no")
