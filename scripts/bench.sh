#!/usr/bin/env bash
# Build and install fastredis into .venv, start a throwaway redis-server, and run
# the comparison against redis-py + hiredis. Extra args go to `python -m fastredis bench`
# (--json FILE, --plot FILE.png, --case NAME, --quick; --help lists them all).
# The build is redone only when src/, pyproject.toml or CMakeLists.txt changed
# (see scripts/_venv.sh: VENV, PYTHON, FASTREDIS_NO_EXTENSIONS, FASTREDIS_REBUILD).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
if wants_help "$@"; then
  venv_help_python fastredis || { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
  exec "$VENV_PY" -m fastredis bench "$@"
fi
install_into_venv bench,server
exec "${VENV:-.venv}/bin/python" -m fastredis bench "$@"
