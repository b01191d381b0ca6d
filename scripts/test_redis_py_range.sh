#!/usr/bin/env bash
# The lowest supported redis-py (8.0.1): build fastredis into .venv-redis-8.0.1
# with that redis-py, and run the client tests there (the main suite runs on
# the newest, 8.1.x, in .venv).
# Usage: bash scripts/test_redis_py_range.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
LOW="8.0.1"
VENV=".venv-redis-$LOW"
py="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
echo "== redis-py $LOW: installing fastredis and its test dependencies into $VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q ".[test,server]" "redis==$LOW"
"$VENV/bin/python" -c "import redis; assert redis.__version__ == '$LOW', redis.__version__"
echo "== redis-py $LOW: client tests"
exec "$VENV/bin/python" -m pytest -q -W error::fastredis._redispy.RedisPyCompatWarning \
  tests/test_client_differential.py tests/test_construction_paths.py tests/test_retry_policy.py \
  tests/test_redispy_compat.py tests/test_foundation_smoke.py tests/test_value_encoding.py "$@"
