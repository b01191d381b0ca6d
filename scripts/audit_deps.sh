#!/usr/bin/env bash
# Audit the resolved test environment for dependencies with known vulnerabilities.
# Usage: bash scripts/audit_deps.sh        (after bash scripts/test.sh built .venv)
#
# Every distribution installed in $VENV (default .venv) is frozen to its exact
# version and checked with pip-audit (PyPI's vulnerability data), except
# fastredis itself. pip-audit runs from its own environment, $AUDIT_VENV
# (default .venv-audit, created on first use), so its own dependencies are
# not mixed into what is audited.
#
# Exit status: 0 no known vulnerability, or the audit could not run or could
# not look some distributions up (offline, PyPI unreachable or answering "not
# found": a warning names them); 1 a known vulnerability was found (the list
# is printed); 2 no test environment to audit.
#
# A vulnerability that does not apply can be ignored with a line
# "<ID>  # why it does not apply" in scripts/audit_ignore.txt (none is today).
set -uo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
audit_venv="${AUDIT_VENV:-.venv-audit}"
warn() { printf 'audit_deps: warning: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  echo "audit_deps: no test environment at $venv: run bash scripts/test.sh first" >&2
  exit 2
fi

if [ ! -x "$audit_venv/bin/pip-audit" ]; then
  if ! { [ -x "$audit_venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$audit_venv"; } \
      || ! "$audit_venv/bin/python" -m pip install -q --disable-pip-version-check "pip-audit>=2.7" >&2; then
    warn "could not install pip-audit (offline?): dependencies NOT audited"
    exit 0
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The exact versions installed, without fastredis itself (a local build).
"$venv/bin/python" -m pip freeze --all --disable-pip-version-check 2>/dev/null \
  | grep -viE '^(fastredis(-client)?[ =@]|-e )' >"$work/requirements.txt"
if [ ! -s "$work/requirements.txt" ]; then
  echo "audit_deps: $venv has no packages to audit" >&2
  exit 2
fi

ignores=()
if [ -f scripts/audit_ignore.txt ]; then
  while read -r id _; do
    case "$id" in ''|'#'*) continue ;; esac
    ignores+=(--ignore-vuln "$id")
  done <scripts/audit_ignore.txt
fi

"$audit_venv/bin/pip-audit" -r "$work/requirements.txt" --no-deps --disable-pip --progress-spinner off \
  --format json --output "$work/report.json" "${ignores[@]}" 2>"$work/stderr"
status=$?

"$audit_venv/bin/python" - "$work/report.json" "$work/requirements.txt" "$status" "$work/stderr" <<'EOF'
import json, sys

report, requirements, status, stderr = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
try:
    with open(report) as f:
        data = json.load(f)
except (OSError, ValueError):
    # pip-audit stopped before writing a report: the vulnerability service
    # could not be reached (offline), or pip-audit itself failed.
    with open(stderr) as f:
        tail = " ".join(f.read().split())[-400:]
    print(f"audit_deps: warning: the audit could not run (exit {status}): {tail or 'no message'}; "
          "dependencies NOT audited", file=sys.stderr)
    sys.exit(0)
deps = data.get("dependencies", [])
found = [(d["name"], d.get("version", "?"), v) for d in deps for v in d.get("vulns", [])]
skipped = [(d["name"], d.get("skip_reason", "")) for d in deps if d.get("skip_reason")]
with open(requirements) as f:
    total = sum(1 for line in f if line.strip())
if skipped:
    names = ", ".join(f"{n}" for n, _ in skipped)
    why = sorted({r.split(":")[0] for _, r in skipped})
    what = "NOTHING was audited" if len(skipped) >= total else f"{len(skipped)} of {total} not audited"
    print(f"audit_deps: warning: {what}: the vulnerability service could not look them up "
          f"({'; '.join(why)}): {names}", file=sys.stderr)
if found:
    print(f"audit_deps: {len(found)} known vulnerabilit{'y' if len(found) == 1 else 'ies'} "
          f"in the test environment:")
    for name, version, v in found:
        fix = ", ".join(v.get("fix_versions") or []) or "no fixed version yet"
        aliases = ", ".join(v.get("aliases") or [])
        print(f"  {name} {version}: {v['id']}{f' ({aliases})' if aliases else ''}; fixed in: {fix}")
    print("Upgrade them (or pin a fixed version in pyproject.toml), or, if one does not apply, "
          "add '<ID>  # why' to scripts/audit_ignore.txt.")
    sys.exit(1)
if status != 0:
    print(f"audit_deps: warning: pip-audit exited {status} without reporting a vulnerability", file=sys.stderr)
print(f"audit_deps: no known vulnerability in {total - len(skipped)} audited distributions "
      f"({len(skipped)} not audited)")
EOF
