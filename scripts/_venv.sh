# Sourced by scripts/test.sh and scripts/bench.sh: build and install fastredis
# (with its compiled core) and the given extras into a virtual environment,
# only when something changed since the last build.
#
# Usage: install_into_venv EXTRAS     e.g. install_into_venv test,server
#        wants_help "$@"              true when the arguments ask for --help
#
# Environment:
#   VENV=.venv             the virtual environment (created when missing)
#   PYTHON=python3         the interpreter it is created with
#   FASTREDIS_NO_EXTENSIONS=1   build the pure-Python package (a stamp input)
#   FASTREDIS_REBUILD=1    redo every step (build requirements, build, dependencies)
#
# Steps, one line each on stderr: create the venv (first run), install the
# build requirements into it (first run, or when they changed), build and install the package when
# the build stamp changed (pip's own progress is shown), install the extras'
# dependencies when pyproject.toml or the extras changed. Stamps live in
# $VENV/.fastredis-stamps/: the build stamp hashes the contents of src/,
# pyproject.toml and CMakeLists.txt (see scripts/_devbuild.py), so it works
# in a git checkout and in an unpacked sdist alike.
#
# The build runs without build isolation, in a build directory that persists
# (build/dev-<wheel tag>), so a rebuild recompiles only what changed.

_venv_say() { printf '== %s\n' "$*" >&2; }

wants_help() {
  local a
  for a in "$@"; do
    [ "$a" = "--" ] && return 1
    case "$a" in -h|--help) return 0 ;; esac
  done
  return 1
}

# venv_help_python MODULE: for --help without building. Sets VENV_PY and
# succeeds when the venv can already run MODULE (saying so if the sources
# changed since its build); fails with a note when the venv is not built yet.
venv_help_python() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  local venv="${VENV:-.venv}"
  VENV_PY="$venv/bin/python"
  if [ -x "$VENV_PY" ] && "$VENV_PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)" 2>/dev/null; then
    if [ "$(cat "$venv/.fastredis-stamps/build" 2>/dev/null)" != "$("$VENV_PY" scripts/_devbuild.py stamp build 2>/dev/null)" ]; then
      _venv_say "note: the sources changed since $venv was built; this help is from that build (the next run rebuilds)"
    fi
    return 0
  fi
  _venv_say "$venv is not built yet, so only the short usage is shown; the first run without --help builds it (about a minute)"
  return 1
}

install_into_venv() {
  local extras="$1"
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  local venv="${VENV:-.venv}"
  local py="${PYTHON:-python3}"
  local vpy="$venv/bin/python"
  local stamps="$venv/.fastredis-stamps"
  local t0=$SECONDS
  local -a steps=()

  if [ ! -x "$vpy" ]; then
    if ! command -v "$py" >/dev/null 2>&1; then
      echo "error: no Python interpreter '$py': install Python 3.10+ or set PYTHON=/path/to/python3" >&2
      return 1
    fi
    _venv_say "creating $venv with $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    if ! "$py" -m venv "$venv"; then
      echo "error: '$py -m venv' failed: on Debian/Ubuntu install the venv module (apt-get install python3-venv)" >&2
      return 1
    fi
    rm -rf "$stamps"
  fi
  mkdir -p "$stamps"

  # One build at a time per venv (two terminals running the tests at once).
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$stamps/lock"
    flock 9
  fi

  local state dist breqs stamp dstamp
  state=$("$vpy" scripts/_devbuild.py state "$extras") || return 1
  { read -r dist; read -r breqs; read -r stamp; read -r dstamp; } <<<"$state"
  if [ -n "${FASTREDIS_REBUILD:-}" ] || [ "$(cat "$stamps/build-requires" 2>/dev/null)" != "$breqs" ]; then
    _venv_say "installing pip and the build requirements ($(echo $breqs)) into $venv"
    local tr=$SECONDS
    "$vpy" -m pip install --upgrade pip || return 1
    # shellcheck disable=SC2086
    "$vpy" -m pip install $breqs || return 1
    # cmake/ninja too when the machine lacks them (scikit-build-core says which).
    local extra
    extra=$("$vpy" -c 'from scikit_build_core.build import get_requires_for_build_wheel as g; print(" ".join(g()))') || return 1
    if [ -n "$extra" ]; then
      # shellcheck disable=SC2086
      "$vpy" -m pip install $extra || return 1
    fi
    echo "$breqs" >"$stamps/build-requires"
    steps+=("build requirements $((SECONDS - tr)) s")
  fi

  if [ -n "${FASTREDIS_REBUILD:-}" ] || [ "$(cat "$stamps/build" 2>/dev/null)" != "$stamp" ]; then
    local what="compiled core"
    [ -n "${FASTREDIS_NO_EXTENSIONS:-}" ] && what="pure Python, FASTREDIS_NO_EXTENSIONS=1"
    local why="sources changed since the last build"
    [ -f "$stamps/build" ] || why="first build"
    [ -n "${FASTREDIS_REBUILD:-}" ] && why="FASTREDIS_REBUILD is set"
    _venv_say "building and installing $dist ($what) into $venv: $why"
    rm -f "$stamps/build"
    local tb=$SECONDS
    # -v: pip's own progress plus CMake's and ninja's (one line per file compiled).
    if ! "$vpy" -m pip install -v --no-build-isolation --no-deps --force-reinstall \
        -Cbuild-dir='build/dev-{wheel_tag}' .; then
      echo "error: building $dist failed (see pip's output above). A C compiler is needed for the compiled" \
           "core (apt-get install build-essential), or set FASTREDIS_NO_EXTENSIONS=1 for the pure-Python build" >&2
      return 1
    fi
    echo "$stamp" >"$stamps/build"
    steps+=("build $((SECONDS - tb)) s")
  else
    _venv_say "$dist in $venv is up to date with the sources (FASTREDIS_REBUILD=1 forces a rebuild)"
  fi

  if [ -n "${FASTREDIS_REBUILD:-}" ] || [ "$(cat "$stamps/deps-$extras" 2>/dev/null)" != "$dstamp" ]; then
    _venv_say "installing the dependencies of $dist[$extras]"
    local reqs
    reqs=$("$vpy" scripts/_devbuild.py extras-requires "$dist" "$extras") || return 1
    local -a req_array
    mapfile -t req_array <<<"$reqs"
    local td=$SECONDS
    "$vpy" -m pip install "${req_array[@]}" || return 1
    steps+=("dependencies $((SECONDS - td)) s")
    echo "$dstamp" >"$stamps/deps-$extras"
  fi
  if [ "${#steps[@]}" -gt 0 ]; then
    local joined
    joined=$(printf '%s; ' "${steps[@]}")
    _venv_say "$venv ready in $((SECONDS - t0)) s (${joined%; })"
  fi
  if command -v flock >/dev/null 2>&1; then
    exec 9>&-
  fi
}
