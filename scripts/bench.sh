#!/usr/bin/env bash
# Build and install fastredis into .venv, start a throwaway redis-server, and run
# the comparison against redis-py + hiredis. Extra args go to `python -m fastredis bench`
# (--json FILE, --plot FILE.png, --case NAME, --quick).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
install_into_venv bench,server
exec .venv/bin/python -m fastredis bench "$@"
