"""scripts/audit_deps.sh decides right: a found vulnerability fails, a failed
lookup warns (offline-tolerant), fastredis itself is not audited. pip-audit
and the audited environment are stand-ins here, so the test runs offline;
CI runs the real audit after the tests (.ci/run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "audit_deps.sh"

FREEZE = "redis==4.5.3\nfastredis-client==0.1.0\norjson==3.9.0\n"


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _run(tmp_path: Path, report: Optional[Dict[str, Any]], exit_code: int, stderr: str = "") -> subprocess.CompletedProcess:
    venv, tool = tmp_path / "venv", tmp_path / "tool"
    (venv / "bin").mkdir(parents=True)
    (tool / "bin").mkdir(parents=True)
    # the audited environment: its python answers `-m pip freeze`
    _executable(venv / "bin" / "python", f"#!/bin/sh\nprintf '{FREEZE}'\n")
    # pip-audit's environment: a real python (the report is read with it) and a stand-in pip-audit
    (tool / "bin" / "python").symlink_to(sys.executable)
    seen = tmp_path / "requirements-seen.txt"
    body = json.dumps(report) if report is not None else ""
    _executable(tool / "bin" / "pip-audit", f"""#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    -r) cp "$2" {seen}; shift ;;
    --output) out="$2"; shift ;;
  esac
  shift
done
[ -n '{body}' ] && printf '%s' '{body}' > "$out"
printf '%s' '{stderr}' >&2
exit {exit_code}
""")
    env = dict(os.environ, VENV=str(venv), AUDIT_VENV=str(tool))
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)


def _dep(name: str, version: str, vulns: Any = (), skip: str = "") -> Dict[str, Any]:
    d: Dict[str, Any] = {"name": name, "version": version, "vulns": list(vulns)}
    if skip:
        d = {"name": name, "skip_reason": skip}
    return d


def test_a_known_vulnerability_fails(tmp_path: Path) -> None:
    vuln = {"id": "PYSEC-2023-46", "fix_versions": ["4.5.4"], "aliases": ["CVE-2023-28859"], "description": "..."}
    report = {"dependencies": [_dep("redis", "4.5.3", [vuln]), _dep("orjson", "3.9.0")], "fixes": []}
    done = _run(tmp_path, report, 1)
    assert done.returncode == 1, done.stderr
    assert "redis 4.5.3: PYSEC-2023-46 (CVE-2023-28859); fixed in: 4.5.4" in done.stdout
    seen = (tmp_path / "requirements-seen.txt").read_text()
    assert "redis==4.5.3" in seen and "orjson==3.9.0" in seen and "fastredis" not in seen


def test_no_vulnerability_passes(tmp_path: Path) -> None:
    done = _run(tmp_path, {"dependencies": [_dep("redis", "4.5.3"), _dep("orjson", "3.9.0")]}, 0)
    assert done.returncode == 0, done.stderr
    assert "no known vulnerability in 2 audited distributions" in done.stdout


@pytest.mark.parametrize("stderr", ["ConnectionError: HTTPSConnectionPool(host=...): Max retries exceeded", ""])
def test_a_failed_lookup_warns(tmp_path: Path, stderr: str) -> None:
    done = _run(tmp_path, None, 1, stderr)
    assert done.returncode == 0
    assert "the audit could not run (exit 1)" in done.stderr and "NOT audited" in done.stderr


def test_distributions_not_found_warn(tmp_path: Path) -> None:
    skip = "Dependency not found on PyPI and could not be audited: redis (4.5.3)"
    done = _run(tmp_path, {"dependencies": [_dep("redis", "", skip=skip), _dep("orjson", "", skip=skip)]}, 0)
    assert done.returncode == 0
    assert "NOTHING was audited" in done.stderr and "redis, orjson" in done.stderr


def test_no_test_environment(tmp_path: Path) -> None:
    env = dict(os.environ, VENV=str(tmp_path / "missing"))
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and "run bash scripts/test.sh first" in done.stderr
