"""What ``python -m fastredis bench`` prints and writes: the table, targets
met or missed, the JSON payload and the plot. The cases live in ``_bench``.

Output paths are checked before the run (:func:`check_output_paths`), so a
bad ``--json`` or ``--plot`` path fails at once instead of after the run.

Example::

    >>> verdict(6.7, "≥ 6×"), verdict(3.5, "≥ 4×"), verdict(2.0, "")
    ('met', 'missed', '')
"""

from __future__ import annotations

import datetime
import math
import os
import re
from typing import Any, Dict, List, Optional, Sequence

#: Column and legend names of the clients compared, the same in the table,
#: the plot and the JSON ``labels``. "pure-py" is fastredis on its
#: pure-Python twins (``FASTREDIS_NO_EXTENSIONS=1``).
LABELS: Dict[str, str] = {"redis-py": "redis-py", "fastredis": "fastredis", "fastredis-py": "pure-py"}

#: Where the run-to-run spread is explained (printed under the table).
SPREAD_NOTE = (
    "Ratios move between runs on a shared machine (absolute ops/s by about ±30%, a case whose rounds\n"
    "last ~10 ms by up to 2×): compare ratios from one run, and see the README, section \"Benchmarks\",\n"
    "for the spread over three runs."
)

PLOT_FORMATS = ("png", "svg", "pdf")


def label(impl: str) -> str:
    """The display name of a client key of ``_bench.IMPLS``.

    Example::

        >>> label("fastredis-py")
        'pure-py'
    """
    return LABELS.get(impl, impl)


def target_ratio(target: str) -> Optional[float]:
    """The ratio a target string asks for (``"≥ 6×"`` -> 6.0), or None.

    Example::

        >>> target_ratio("≥ 1.2×"), target_ratio("≥ 10×; ≥ 60% of redis-benchmark"), target_ratio("")
        (1.2, 10.0, None)
    """
    m = re.search(r"(\d+(?:\.\d+)?)\s*[×x]", target or "")
    return float(m.group(1)) if m else None


def verdict(ratio: Optional[float], target: str) -> str:
    """``"met"`` or ``"missed"`` for a measured ratio against its target;
    ``""`` without a target, ``"n/a"`` without a measurement.

    Example::

        >>> verdict(6.0, "≥ 6×"), verdict(5.99, "≥ 6×"), verdict(float("nan"), "≥ 6×")
        ('met', 'missed', 'n/a')
    """
    want = target_ratio(target)
    if want is None:
        return ""
    if ratio is None or math.isnan(ratio):
        return "n/a"
    return "met" if ratio >= want else "missed"


def check_output_path(option: str, path: str, formats: Optional[Sequence[str]] = None) -> Optional[str]:
    """Why ``path`` cannot be written as the output of ``option``, or None.

    Example::

        >>> print(check_output_path("--json", "/nonexistent-dir/out.json"))
        --json /nonexistent-dir/out.json: the directory /nonexistent-dir does not exist; create it or choose another path
        >>> check_output_path("--json", "out.json") is None
        True
    """
    where = os.path.dirname(os.path.abspath(path))
    if formats is not None:
        ext = os.path.splitext(path)[1].lstrip(".").lower()
        if ext not in formats:
            return f"{option} {path}: give a file name ending in " + ", ".join("." + f for f in formats)
    if os.path.isdir(path):
        return f"{option} {path}: is a directory; give a file name"
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            return f"{option} {path}: the file is not writable; choose another path"
        return None
    if not os.path.isdir(where):
        what = "is not a directory" if os.path.exists(where) else "does not exist"
        return f"{option} {path}: the directory {where} {what}; create it or choose another path"
    if not os.access(where, os.W_OK | os.X_OK):
        return f"{option} {path}: the directory {where} is not writable; choose another path"
    return None


def check_output_paths(json_path: Optional[str], plot_path: Optional[str]) -> List[str]:
    """Every problem with the ``--json`` and ``--plot`` outputs, found before
    the run: paths that cannot be written, the same file twice, matplotlib
    missing for ``--plot``.

    Example::

        >>> check_output_paths("out.json", None)
        []
        >>> check_output_paths("same.png", "same.png")
        ['--json and --plot name the same file same.png']
    """
    problems = []
    if json_path:
        problems.append(check_output_path("--json", json_path))
    if plot_path:
        problems.append(check_output_path("--plot", plot_path, PLOT_FORMATS))
    if json_path and plot_path and os.path.abspath(json_path) == os.path.abspath(plot_path):
        return [f"--json and --plot name the same file {json_path}"]
    if plot_path:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            problems.append("--plot needs matplotlib: pip install 'fastredis-client[bench]' (bash scripts/bench.sh installs it)")
    return [p for p in problems if p]


def _fmt(x: Optional[float]) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.0f}"


def machine_line(info: Dict[str, Any]) -> str:
    """The machine facts of ``_bench.machine()`` on one line.

    Example::

        >>> machine_line({"cpu": "X", "cores": 2})
        'cpu: X; cores: 2'
    """
    return "; ".join(f"{k}: {v}" for k, v in info.items())


def _ratio(r: Any, impl: str) -> float:
    base = r.ops_per_s.get("redis-py")
    other = r.ops_per_s.get(impl)
    return other / base if base and other else float("nan")


def format_table(results: Sequence[Any], ceiling: Optional[float], info: Dict[str, Any], impls: Sequence[str]) -> str:
    """The table printed at the end of a run: one row per case with the
    clients' ops/s, the ratio, the target and whether it was met; then the
    tally, the redis-benchmark ceiling, the note on spread and the machine.

    Example::

        >>> from fastredis._bench import Result
        >>> r = Result("pipeline 100k SET", "≥ 6×", {"redis-py": 100.0, "fastredis": 700.0})
        >>> print(format_table([r], None, {"cores": 2}, ["redis-py", "fastredis"]))  # doctest: +ELLIPSIS
        case               redis-py ops/s  fastredis ops/s  ratio  target  met?
        -----------------------------------------------------------------------
        pipeline 100k SET             100              700  7.00x    ≥ 6×   met
        <BLANKLINE>
        targets: 1 met, 0 missed
        ...
        machine: cores: 2
    """
    shown = [i for i in ("redis-py", "fastredis", "fastredis-py") if i in impls]
    head = ["case"] + [f"{label(i)} ops/s" for i in shown] + ["ratio", "target", "met?"]
    rows = []
    tally = {"met": [], "missed": []}  # type: Dict[str, List[str]]
    for r in results:
        v = verdict(r.ratio, r.target)
        if v in tally:
            tally[v].append(r.case)
        ratio = "-" if math.isnan(r.ratio) else f"{r.ratio:.2f}x"
        rows.append([r.case] + [_fmt(r.ops_per_s.get(i)) for i in shown] + [ratio, r.target, v])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(head), "-" * len(line(head))] + [line(row) for row in rows]
    out.append("")
    missed = f" ({'; '.join(tally['missed'])})" if tally["missed"] else ""
    out.append(f"targets: {len(tally['met'])} met, {len(tally['missed'])} missed{missed}")
    if ceiling:
        batch = next((r for r in results if r.case == "batch() 100k SET" and r.ops_per_s.get("fastredis")), None)
        share = ""
        if batch:
            frac = batch.ops_per_s["fastredis"] / ceiling
            share = f"; batch() 100k SET reaches {frac:.0%} of it (target ≥ 60%: {'met' if frac >= 0.6 else 'missed'})"
        out.append(f"redis-benchmark -c 1 -P 100 -t set: {ceiling:,.0f} req/s (the ceiling){share}")
    out.append("")
    out.append(SPREAD_NOTE)
    out.append("")
    out.append("machine: " + machine_line(info))
    return "\n".join(out)


def json_payload(
    results: Sequence[Any], ceiling: Optional[float], info: Dict[str, Any], when: Optional[datetime.datetime] = None
) -> Dict[str, Any]:
    """The ``--json`` document: machine, ceiling, and per case the ops/s by
    client key, the ratio, the target and the verdict.

    Example::

        >>> from fastredis._bench import Result
        >>> doc = json_payload([Result("c", "≥ 2×", {"redis-py": 1.0, "fastredis": 3.0})], None, {})
        >>> doc["results"][0]["verdict"], doc["labels"]["fastredis-py"]
        ('met', 'pure-py')
    """
    when = when or datetime.datetime.now(datetime.timezone.utc)
    return {
        "date": when.isoformat(timespec="seconds"),
        "machine": info,
        "labels": dict(LABELS),
        "ceiling_redis_benchmark_set_P100": ceiling,
        "results": [
            {
                "case": r.case,
                "target": r.target,
                "target_ratio": target_ratio(r.target),
                "ops_per_s": r.ops_per_s,
                "ratio": None if math.isnan(r.ratio) else r.ratio,
                "verdict": verdict(r.ratio, r.target) or None,
            }
            for r in results
        ],
    }


def plot_spec(
    results: Sequence[Any], info: Dict[str, Any], impls: Sequence[str], day: Optional[datetime.date] = None
) -> Dict[str, Any]:
    """What the plot shows, computed without matplotlib (so it is testable):
    title, subtitle, row names, series per panel with the table's names,
    and the label of each ratio bar.

    Example::

        >>> from fastredis._bench import Result
        >>> r = Result("single GET", "≥ 1.2×", {"redis-py": 100.0, "fastredis": 200.0, "fastredis-py": 150.0})
        >>> spec = plot_spec([r], {"cores": 2}, ["redis-py", "fastredis", "fastredis-py"], datetime.date(2026, 1, 2))
        >>> spec["title"]
        'fastredis vs redis-py + hiredis, 2026-01-02'
        >>> [s["label"] for s in spec["ratios"]], spec["ratios"][0]["texts"]
        (['fastredis', 'pure-py'], ['2.0× met'])
    """
    day = day or datetime.date.today()
    rows = [r.case for r in results]
    ops = [
        {"impl": i, "label": label(i), "values": [r.ops_per_s.get(i) or float("nan") for r in results]}
        for i in ("redis-py", "fastredis", "fastredis-py") if i in impls
    ]
    ratios = []
    for i in ("fastredis", "fastredis-py"):
        if i not in impls:
            continue
        values = [_ratio(r, i) for r in results]
        texts = []
        for r, v in zip(results, values):
            if math.isnan(v):
                texts.append("-")
                continue
            text = f"{v:.1f}×"
            if i == "fastredis":
                mark = verdict(v, r.target)
                text += f" {mark}" if mark else ""
            texts.append(text)
        ratios.append({"impl": i, "label": label(i), "values": values, "texts": texts})
    return {
        "title": f"fastredis vs redis-py + hiredis, {day.isoformat()}",
        "subtitle": machine_line(info),
        "rows": rows,
        "ops": ops,
        "ratios": ratios,
        "targets": [target_ratio(r.target) for r in results],
    }


def plot(results: Sequence[Any], path: str, info: Dict[str, Any], impls: Sequence[str]) -> None:
    """Draw the run as two panels sharing the case rows: ops/s of each client
    (log axis), and the ratio to redis-py (log axis) with each bar labelled
    and each target marked. Needs matplotlib (the ``bench`` extra).

    Example::

        >>> from fastredis._bench import Result
        >>> import os, tempfile
        >>> r = Result("c", "≥ 2×", {"redis-py": 1e5, "fastredis": 3e5, "fastredis-py": 2e5})
        >>> out = os.path.join(tempfile.mkdtemp(), "bench.png")
        >>> try:
        ...     plot([r], out, {"cores": 2}, ["redis-py", "fastredis", "fastredis-py"])
        ... except SystemExit:  # no matplotlib here
        ...     open(out, "w").close()
        >>> os.path.getsize(out) >= 0
        True
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'fastredis-client[bench]'") from None
    spec = plot_spec(results, info, impls)
    n = len(spec["rows"])
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(14, 0.55 * n + 2.2), sharey=True, gridspec_kw={"width_ratios": [1, 1.1]}
    )
    colors = {"redis-py": "#9e9e9e", "fastredis": "#d62728", "fastredis-py": "#ff9f80"}
    y = list(range(n))
    k = len(spec["ops"])
    h = 0.8 / max(k, 1)
    for j, s in enumerate(spec["ops"]):
        left.barh([i + (j - (k - 1) / 2) * h for i in y], s["values"], height=h, label=s["label"], color=colors.get(s["impl"]))
    left.set_xscale("log")
    left.set_xlabel("ops/s (median of the rounds, log scale)")
    left.set_yticks(y)
    left.set_yticklabels(spec["rows"], fontsize=8)
    left.invert_yaxis()
    left.legend(fontsize=8, loc="lower right")
    left.grid(axis="x", which="both", alpha=0.2)

    k = len(spec["ratios"])
    h = 0.8 / max(k, 1)
    finite = [v for s in spec["ratios"] for v in s["values"] if not math.isnan(v)] + [t for t in spec["targets"] if t]
    marked = False
    for j, s in enumerate(spec["ratios"]):
        ys = [i + (j - (k - 1) / 2) * h for i in y]
        bars = right.barh(ys, s["values"], height=h, label=s["label"], color=colors.get(s["impl"]))
        targeted = s["impl"] == "fastredis"  # the targets are fastredis's
        for i, (bar, text, value, target) in enumerate(zip(bars, s["texts"], s["values"], spec["targets"])):
            if targeted and target:  # the target: a black mark across this bar
                right.plot([target, target], [ys[i] - h * 0.65, ys[i] + h * 0.65], color="black", linewidth=1.5,
                           label=None if marked else "target (fastredis)")
                marked = True
            if not math.isnan(value):  # right of the bar and of its target mark
                at = max(value, target or 0) if targeted else value
                right.text(at * 1.04, bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=7)
    right.axvline(1.0, color="#555555", linewidth=0.8, linestyle="--")
    right.set_xscale("log")
    hi = max(finite) if finite else 10.0
    right.set_xlim(0.5, hi * 2.5)
    ticks = [t for t in (0.5, 1, 2, 5, 10, 20, 50, 100) if t <= hi * 2.5]
    right.set_xticks(ticks)
    right.set_xticklabels([f"{t:g}×" for t in ticks])
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.set_xlabel("ratio to redis-py + hiredis, same run (log scale; 1 = redis-py)")
    right.legend(fontsize=8, loc="lower right")
    right.grid(axis="x", which="both", alpha=0.2)
    fig.suptitle(spec["title"], fontsize=12)
    fig.text(0.5, 0.005, spec["subtitle"], ha="center", va="bottom", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=120)
    plt.close(fig)
