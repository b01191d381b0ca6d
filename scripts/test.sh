#!/usr/bin/env bash
# Build and install fastredis (with its compiled core) into .venv, then run the tests.
# Usage: bash scripts/test.sh [pytest args...]     e.g. bash scripts/test.sh -m soak
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q --force-reinstall --no-deps .
.venv/bin/python -m pip install -q '.[test,server]'
exec .venv/bin/python -m pytest "$@"
