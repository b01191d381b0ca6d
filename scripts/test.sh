#!/usr/bin/env bash
# Build and install fastredis (with its compiled core) into .venv, then run the tests.
# Usage: bash scripts/test.sh [pytest args...]     e.g. bash scripts/test.sh -m soak
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
install_into_venv test,server
exec .venv/bin/python -m pytest "$@"
