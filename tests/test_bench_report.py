"""Benchmark output (``python -m fastredis bench``): paths checked before the
run, rows marked met/missed against their targets, one set of names for the
table, the plot and the JSON. No timing is asserted."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from fastredis import _bench, _bench_report
from fastredis._bench import Result
from fastredis._bench_report import check_output_path, check_output_paths, target_ratio, verdict

IMPLS = ["redis-py", "fastredis", "fastredis-py"]


def _results() -> list:
    return [
        Result("pipeline 100k SET", "≥ 6×", {"redis-py": 100_000.0, "fastredis": 700_000.0, "fastredis-py": 300_000.0}),
        Result("pipeline 100k ZADD", "≥ 4×", {"redis-py": 150_000.0, "fastredis": 525_000.0, "fastredis-py": 250_000.0}),
        Result("single-command GET loop 10k", "≥ 1.2×", {"redis-py": 9_000.0, "fastredis": 18_000.0, "fastredis-py": 15_000.0}),
        Result("no target", "", {"redis-py": 1.0, "fastredis": 2.0}),
    ]


# -- met / missed ------------------------------------------------------------------


@pytest.mark.parametrize(
    "ratio,target,expect",
    [
        (6.0, "≥ 6×", "met"),
        (6.7, "≥ 6×", "met"),
        (5.999, "≥ 6×", "missed"),
        (3.5, "≥ 4×", "missed"),
        (1.2, "≥ 1.2×", "met"),
        (10.5, "≥ 10×; ≥ 60% of redis-benchmark", "met"),
        (2.0, "", ""),
        (float("nan"), "≥ 2×", "n/a"),
        (None, "≥ 2×", "n/a"),
    ],
)
def test_verdict(ratio: Any, target: str, expect: str) -> None:
    assert verdict(ratio, target) == expect


def test_every_case_target_is_understood() -> None:
    for case in _bench.CASES + list(getattr(_bench, "CLUSTER_CASES", [])):
        if case.target:
            assert target_ratio(case.target) is not None, f"{case.name}: target {case.target!r} has no ratio"


def test_table_marks_each_row_and_tallies() -> None:
    text = _bench_report.format_table(_results(), None, {"cores": 2}, IMPLS)
    lines = text.splitlines()
    row = {line.split("  ")[0]: line for line in lines}
    assert row["pipeline 100k SET"].rstrip().endswith("met")
    assert row["pipeline 100k ZADD"].rstrip().endswith("missed")
    assert row["single-command GET loop 10k"].rstrip().endswith("met")
    assert not row["no target"].rstrip().endswith(("met", "missed"))
    assert "targets: 2 met, 1 missed (pipeline 100k ZADD)" in text
    assert lines[0].split() [-1] == "met?"


def test_table_points_to_the_spread_note() -> None:
    text = _bench_report.format_table(_results(), None, {"cores": 2}, IMPLS)
    assert 'README, section "Benchmarks"' in text
    assert text.rstrip().endswith("machine: cores: 2")


def test_ceiling_share_is_marked() -> None:
    r = Result("batch() 100k SET", "≥ 10×", {"redis-py": 1e5, "fastredis": 1.2e6})
    assert "reaches 120% of it (target ≥ 60%: met)" in _bench_report.format_table([r], 1e6, {}, IMPLS)
    assert "(target ≥ 60%: missed)" in _bench_report.format_table([r], 4e6, {}, IMPLS)


def test_json_carries_the_verdicts() -> None:
    doc = _bench_report.json_payload(_results(), 8e5, {"cores": 2})
    json.dumps(doc)  # serialisable, no NaN surprises for strict readers
    assert [r["verdict"] for r in doc["results"]] == ["met", "missed", "met", None]
    assert doc["results"][0]["target_ratio"] == 6.0
    assert doc["labels"] == {"redis-py": "redis-py", "fastredis": "fastredis", "fastredis-py": "pure-py"}


# -- one set of names ----------------------------------------------------------------


def test_plot_uses_the_table_names_title_date_and_machine() -> None:
    info = {"cpu": "X", "cores": 2}
    table_head = _bench_report.format_table(_results(), None, info, IMPLS).splitlines()[0]
    spec = _bench_report.plot_spec(_results(), info, IMPLS, datetime.date(2026, 12, 3))
    for series in spec["ops"]:
        assert f"{series['label']} ops/s" in table_head
    assert [s["label"] for s in spec["ratios"]] == ["fastredis", "pure-py"]
    assert "fastredis-py" not in json.dumps(spec["ops"] + spec["ratios"]).replace('"impl": "fastredis-py"', "")
    assert "2026-12-03" in spec["title"]
    assert spec["subtitle"] == "cpu: X; cores: 2"
    fast = spec["ratios"][0]["texts"]
    assert fast[:3] == ["7.0× met", "3.5× missed", "2.0× met"]
    assert spec["targets"][:3] == [6.0, 4.0, 1.2]


def test_plot_draws_a_file(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    out = str(tmp_path / "bench.png")
    _bench_report.plot(_results(), out, {"cores": 2}, IMPLS)
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# -- paths checked before the run --------------------------------------------------------


def test_good_paths_pass(tmp_path: Any) -> None:
    existing = tmp_path / "old.json"
    existing.write_text("{}")
    assert check_output_path("--json", str(tmp_path / "new.json")) is None
    assert check_output_path("--json", str(existing)) is None
    assert check_output_path("--plot", str(tmp_path / "p.svg"), _bench_report.PLOT_FORMATS) is None


def test_missing_directory(tmp_path: Any) -> None:
    msg = check_output_path("--json", str(tmp_path / "nope" / "out.json"))
    assert msg and "--json" in msg and "does not exist" in msg and str(tmp_path / "nope") in msg


def test_directory_given_as_the_file(tmp_path: Any) -> None:
    msg = check_output_path("--json", str(tmp_path))
    assert msg and "is a directory" in msg


def test_parent_is_a_file(tmp_path: Any) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    msg = check_output_path("--json", str(f / "out.json"))
    assert msg and "is not a directory" in msg


def test_unwritable_directory_and_file(tmp_path: Any, monkeypatch: Any) -> None:
    # os.access stands in for the permissions: root (CI) may write anywhere.
    existing = tmp_path / "old.json"
    existing.write_text("{}")
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    msg = check_output_path("--json", str(tmp_path / "out.json"))
    assert msg and "directory" in msg and "not writable" in msg
    msg = check_output_path("--json", str(existing))
    assert msg and "file is not writable" in msg


def test_plot_needs_a_known_format(tmp_path: Any) -> None:
    msg = check_output_path("--plot", str(tmp_path / "bench.jpeg2000"), _bench_report.PLOT_FORMATS)
    assert msg and ".png" in msg
    assert check_output_path("--plot", str(tmp_path / "bench"), _bench_report.PLOT_FORMATS)


def test_same_file_twice(tmp_path: Any) -> None:
    p = str(tmp_path / "x.png")
    assert check_output_paths(p, p) == [f"--json and --plot name the same file {p}"]


def test_plot_without_matplotlib_is_refused_before_the_run(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    problems = check_output_paths(None, str(tmp_path / "x.png"))
    assert problems and "matplotlib" in problems[0] and "fastredis-client[bench]" in problems[0]


def test_bad_path_fails_the_command_before_any_server_starts(tmp_path: Any) -> None:
    bad = str(tmp_path / "missing-dir" / "out.json")
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "fastredis", "bench", "--json", bad, "--case", "pipeline 10k SET"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "--json" in done.stderr and "does not exist" in done.stderr
    assert "redis-server on port" not in done.stderr  # nothing ran
    assert time.monotonic() - t0 < 60
