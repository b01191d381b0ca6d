"""Helper of scripts/_venv.sh: decides whether .venv must be rebuilt.

Usage (run by _venv.sh with the venv's interpreter)::

    python scripts/_devbuild.py state EXTRAS        # the four lines below, at once
    python scripts/_devbuild.py stamp build         # hash of what the build reads
    python scripts/_devbuild.py stamp deps EXTRAS   # hash of what the extras install
    python scripts/_devbuild.py build-requires      # [build-system] requires, one a line
    python scripts/_devbuild.py dist-name           # [project] name
    python scripts/_devbuild.py extras-requires DIST EXTRAS   # requirements of the installed DIST

The build stamp hashes the *contents* of the files the wheel is built from
(``src/``, ``pyproject.toml``, ``CMakeLists.txt``), plus the interpreter and
``FASTREDIS_NO_EXTENSIONS``. In a git checkout the files are the tracked and
the untracked-but-not-ignored ones (``git ls-files``), so an unstaged edit or
a new module counts; in an unpacked sdist or tarball (no git) every file
under those paths counts except build products (``*.so``, generated ``.c``,
``__pycache__``, annotation ``.html``). README.md is left out on purpose: it
only changes the installed long description, not worth a rebuild.

Example (shell)::

    $ python scripts/_devbuild.py stamp build
    9f2c…  (64 hex digits)
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import subprocess
import sys
from typing import Iterable, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the wheel is built from.
BUILD_INPUTS = ("src", "pyproject.toml", "CMakeLists.txt")
# Build products never hashed when git cannot tell what is tracked.
PRODUCTS = ("*.so", "*.pyd", "*.pyc", "*.html", "_*_c.c", "*.egg-info")
PRODUCT_DIRS = ("__pycache__", ".pytest_cache", ".hypothesis", "build")


def _git_files(root: str, paths: Iterable[str]) -> Optional[List[str]]:
    """Tracked plus untracked-not-ignored files under ``paths``, or None without git."""
    if not os.path.exists(os.path.join(root, ".git")):
        return None
    try:
        out = subprocess.run(
            ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *paths],
            capture_output=True, check=True, timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sorted({p for p in out.decode("utf-8", "surrogateescape").split("\0") if p})


def _walk_files(root: str, paths: Iterable[str]) -> List[str]:
    found = []
    for top in paths:
        full = os.path.join(root, top)
        if os.path.isfile(full):
            found.append(top)
            continue
        for d, dirs, files in os.walk(full):
            dirs[:] = sorted(x for x in dirs if x not in PRODUCT_DIRS)
            for f in files:
                if not any(fnmatch.fnmatch(f, pat) for pat in PRODUCTS):
                    found.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(found)


def source_files(root: str = ROOT, paths: Iterable[str] = BUILD_INPUTS) -> List[str]:
    """The files the build reads, relative to ``root``, sorted.

    Example::

        >>> "pyproject.toml" in source_files()
        True
    """
    paths = tuple(paths)
    files = _git_files(root, paths)
    return files if files is not None else _walk_files(root, paths)


def build_stamp(root: str = ROOT, env: Optional[dict] = None) -> str:
    """A hash that changes whenever a rebuild of the package is needed.

    Example::

        >>> len(build_stamp())
        64
        >>> build_stamp(env={"FASTREDIS_NO_EXTENSIONS": "1"}) != build_stamp(env={})
        True
    """
    env = os.environ if env is None else env
    h = hashlib.sha256()
    h.update(f"python {sys.implementation.name} {sys.version} {sys.executable}\n".encode())
    h.update(f"FASTREDIS_NO_EXTENSIONS={bool(env.get('FASTREDIS_NO_EXTENSIONS'))}\n".encode())
    for rel in source_files(root):
        path = os.path.join(root, rel)
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        try:
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        except FileNotFoundError:  # tracked but deleted in the work tree
            h.update(b"<deleted>")
    return h.hexdigest()


def deps_stamp(extras: str, root: str = ROOT) -> str:
    """A hash that changes when the dependencies of ``extras`` may have changed.

    Example::

        >>> deps_stamp("test") != deps_stamp("bench")
        True
    """
    h = hashlib.sha256(f"python {sys.version} {sys.executable}\nextras {extras}\n".encode())
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def _pyproject(root: str = ROOT) -> dict:
    path = os.path.join(root, "pyproject.toml")
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[import-not-found,no-redef]
        except ImportError:
            return _pyproject_fallback(path)
    with open(path, "rb") as f:
        return tomllib.load(f)


def _pyproject_fallback(path: str) -> dict:
    """The two values this script needs, read without a TOML parser (Python 3.10)."""
    with open(path) as f:
        text = f.read()
    sections = re.split(r"^\[([^\]]+)\]\s*$", text, flags=re.M)
    found: dict = {}
    for title, body in zip(sections[1::2], sections[2::2]):
        if title == "build-system":
            m = re.search(r"^requires\s*=\s*\[(.*?)\]", body, flags=re.M | re.S)
            found["build-system"] = {"requires": re.findall(r'"([^"]+)"', m.group(1)) if m else []}
        elif title == "project":
            m = re.search(r'^name\s*=\s*"([^"]+)"', body, flags=re.M)
            found["project"] = {"name": m.group(1) if m else "fastredis"}
    return found


def build_requires(root: str = ROOT) -> List[str]:
    """``[build-system] requires`` of pyproject.toml.

    Example::

        >>> any(r.startswith("scikit-build-core") for r in build_requires())
        True
    """
    return list(_pyproject(root)["build-system"]["requires"])


def dist_name(root: str = ROOT) -> str:
    """The distribution name (``[project] name``); the import name stays ``fastredis``.

    Example::

        >>> dist_name()
        'fastredis-client'
    """
    return str(_pyproject(root)["project"]["name"])


def extras_requires(dist: str, extras: str) -> List[str]:
    """Requirements of the installed ``dist``: its base ones and those of ``extras``
    (comma-separated), markers other than ``extra`` kept.

    Example::

        >>> any(r.startswith("redis") for r in extras_requires(dist_name(), ""))
        True
    """
    from importlib.metadata import requires

    wanted = {e.strip() for e in extras.split(",") if e.strip()}
    out = []
    for req in requires(dist) or []:
        spec, _, marker = req.partition(";")
        m = re.search(r"""extra\s*==\s*["']([^"']+)["']""", marker)
        if m and m.group(1) not in wanted:
            continue
        rest = re.sub(r"""(\s*(and|or)\s*)?extra\s*==\s*["'][^"']+["'](\s*(and|or)\s*)?""", " ", marker).strip()
        rest = rest.strip("() ")
        out.append(spec.strip() + (f"; {rest}" if rest else ""))
    return sorted(set(out))


def main(argv: List[str]) -> int:
    if argv[:1] == ["state"] and len(argv) == 2:  # everything _venv.sh needs, one interpreter start
        print(dist_name())
        print(" ".join(build_requires()))
        print(build_stamp())
        print(deps_stamp(argv[1]))
    elif argv[:2] == ["stamp", "build"]:
        print(build_stamp())
    elif argv[:2] == ["stamp", "deps"] and len(argv) == 3:
        print(deps_stamp(argv[2]))
    elif argv == ["build-requires"]:
        print("\n".join(build_requires()))
    elif argv == ["dist-name"]:
        print(dist_name())
    elif argv[:1] == ["extras-requires"] and len(argv) == 3:
        print("\n".join(extras_requires(argv[1], argv[2])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
