# Sourced by scripts/test.sh and scripts/bench.sh: build and install fastredis
# (with its compiled core) and the given extras into ./.venv.
# Usage: install_into_venv EXTRAS     e.g. install_into_venv test,server
install_into_venv() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  local py="${PYTHON:-python3}"
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # --force-reinstall rebuilds the compiled core from the current sources.
  .venv/bin/python -m pip install -q --force-reinstall --no-deps .
  .venv/bin/python -m pip install -q ".[$1]"
}
