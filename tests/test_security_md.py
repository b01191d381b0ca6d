"""SECURITY.md stays true: every threat names a test, every test it names
exists (in the default test run), and the README points to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "SECURITY.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


@pytest.fixture(scope="module")
def text() -> str:
    if not DOC.exists():
        pytest.skip("SECURITY.md is not in this checkout")
    return DOC.read_text("utf-8")


def test_every_named_test_exists(text: str) -> None:
    refs = REF.findall(text)
    assert len(refs) >= 40
    for path, name in refs:
        source = (ROOT / path).read_text("utf-8")
        assert re.search(rf"^(async )?def {name}\(", source, re.M), f"SECURITY.md names {path}::{name}, which does not exist"
        assert "soak" not in source.split(f"def {name}(")[0].rsplit("\n\n\n", 1)[-1], f"{path}::{name} is not in the default run"


def test_every_threat_and_limit_names_a_test(text: str) -> None:
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| threat") and not line.startswith("| limit")]
    assert len(rows) >= 30
    for row in rows:
        assert REF.search(row), f"a row of SECURITY.md names no test: {row[:120]}"


def test_the_readme_links_it() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "(SECURITY.md)" in readme and "vulnerabilit" in readme.lower()
