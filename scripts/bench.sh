#!/usr/bin/env bash
# Build and install fastredis into .venv, start a throwaway redis-server, and run
# the comparison against redis-py + hiredis. Extra args go to `python -m fastredis bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q --force-reinstall --no-deps .
.venv/bin/python -m pip install -q '.[bench,server]'
exec .venv/bin/python -m fastredis bench "$@"
