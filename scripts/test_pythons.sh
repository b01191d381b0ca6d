#!/usr/bin/env bash
# Run the tests on every CPython this machine has, compiled and pure-Python
# (FASTREDIS_NO_EXTENSIONS=1) builds, each in its own venv (.venv-py3.X and
# .venv-py3.X-pure, built and reused by scripts/_venv.sh).
#
# Usage: bash scripts/test_pythons.sh [--full] [PYTHON ...]
#   PYTHON   interpreters to use; by default python3.10 ... python3.13 found on
#            PATH or among pyenv's installed versions (`pyenv root`).
#   --full   the whole suite instead of the smoke subset below.
# The README's "Supported" line says which versions were verified this way.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=(tests/test_compiled_cores.py tests/test_foundation_smoke.py tests/test_resp_encode.py
       tests/test_resp_reader.py tests/test_client_differential.py tests/test_examples.py
       tests/test_window.py tests/test_decay_core.py tests/test_pipeline_core.py tests/test_lua_scripts.py)
full=0
pythons=()
for a in "$@"; do
  case "$a" in
    --full) full=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pythons+=("$a") ;;
  esac
done
if [ "${#pythons[@]}" -eq 0 ]; then
  pyenv_root=""
  command -v pyenv >/dev/null 2>&1 && pyenv_root=$(pyenv root 2>/dev/null || true)
  for minor in 10 11 12 13; do
    found=""
    if p=$(command -v "python3.$minor" 2>/dev/null) && "$p" -c pass 2>/dev/null; then
      found=$p
    elif [ -n "$pyenv_root" ]; then
      for d in "$pyenv_root"/versions/3."$minor".*/bin/python3; do
        [ -x "$d" ] && found=$d
      done
    fi
    if [ -n "$found" ]; then pythons+=("$found"); else echo "== python3.$minor: not on this machine" >&2; fi
  done
fi
[ "${#pythons[@]}" -gt 0 ] || { echo "error: no Python 3.10-3.13 found; pass interpreters as arguments" >&2; exit 1; }

args=("${SMOKE[@]}")
[ "$full" = 1 ] && args=()
summary=()
status=0
for p in "${pythons[@]}"; do
  ver=$("$p" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
  short=${ver%.*}
  for kind in compiled pure; do
    venv=".venv-py$short"
    env=()
    if [ "$kind" = pure ]; then venv="$venv-pure"; env=(FASTREDIS_NO_EXTENSIONS=1); fi
    echo "== Python $ver ($p), $kind build, in $venv" >&2
    mkdir -p build/test-pythons
    log="build/test-pythons/py$ver-$kind.log"
    if env "${env[@]}" PYTHON="$p" VENV="$venv" bash scripts/test.sh -q -p no:cacheprovider "${args[@]}" 2>&1 | tee "$log" | grep -E '^(==|[0-9]+ (passed|failed)|FAILED|ERROR)'; then :; fi
    result=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$log" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')
    if ! grep -qE '(^| )[0-9]+ passed' "$log" || grep -qE '[0-9]+ (failed|error)' "$log"; then
      status=1
      result="FAILED: ${result:-no test result, see $log}"
    fi
    summary+=("Python $ver $kind: $result")
  done
done
echo
printf '%s\n' "${summary[@]}"
exit "$status"
