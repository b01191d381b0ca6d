#!/usr/bin/env bash
# Build and install fastredis (with its compiled core) into .venv, then run the tests.
# Usage: bash scripts/test.sh [pytest args...]     e.g. bash scripts/test.sh -m soak
# The build is redone only when src/, pyproject.toml or CMakeLists.txt changed
# (see scripts/_venv.sh: VENV, PYTHON, FASTREDIS_NO_EXTENSIONS, FASTREDIS_REBUILD).
# --help shows this and pytest's options without building.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
if wants_help "$@"; then
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
  echo
  venv_help_python pytest || exit 0
  exec "$VENV_PY" -m pytest --noconftest "$@"   # conftest adds no options, and importing it is slow
fi
install_into_venv test,server,plot
exec "${VENV:-.venv}/bin/python" -m pytest "$@"
