"""Developer tool: compare the ratios of several `python -m fastredis bench --json` runs.

Usage: python scripts/compare_bench.py run1.json run2.json [...]
Prints one row per case with each run's fastredis/redis-py ratio, and the
spread, so a change is judged against run-to-run noise, not one number.
"""

import json
import sys


def main(paths):
    runs = []
    for p in paths:
        with open(p) as f:
            runs.append({r["case"]: r["ratio"] for r in json.load(f)["results"]})
    cases = [c for c in runs[-1] if all(c in r for r in runs)]
    width = max(len(c) for c in cases)
    print(f"{'case':{width}s}  " + "  ".join(f"run{i + 1:>3d}" for i in range(len(runs))) + "    min    max")
    for c in cases:
        ratios = [r[c] for r in runs]
        print(f"{c:{width}s}  " + "  ".join(f"{x:5.2f}x" for x in ratios) + f"  {min(ratios):5.2f}  {max(ratios):5.2f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
