"""Price-sweep benchmark: the naive reference, the project's sweep and the floor, per model family and size.

Usage:
    make bench                                   # this, then the cold-start benchmark
    .venv/bin/python bench/sweep.py [--repeat 30] [--case-seconds 45] [--families torch,elasticnet]

All in one process and one run, on the latest training run in the BentoML model store and its best-selling
wholesale list, for context periods x grid prices of 52x100 (the default sweep), 104x100 and 104x1,000:

- naive:   ``Sweeper.naive_sweep`` (cross-join a DataFrame of periods with the grid, run the whole
           preprocessing on every row, predict, group by price): the reference the project is measured against;
- project: ``Sweeper.sweep`` (context block from the per-list cache, one level per period, the list's
           response per grid price, statistics with numpy), what the service runs;
- floor:   the model's ``predict`` alone on the already-encoded context block.

Each case is timed ``--repeat`` times after one warm-up call (median and p95), or fewer when the case has
used ``--case-seconds`` (at least 3; the table shows n). Writes reports/bench/sweep.json and sweep.md and
prints the table. Checked and printed for the default sweep: project >= 10x faster than naive, and its p50.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pricing.evaluate import best_selling_lists
from pricing.registry import StoredModel, load_model, serving_order
from pricing.sweep import SweepRequest

ROOT = Path(__file__).resolve().parent.parent

SIZES = ((52, 100), (104, 100), (104, 1_000))  # (context periods, grid prices)
TARGET_SIZE = (52, 100)  # the default sweep
METHODS = ("naive", "project", "floor")


def time_case(call: Callable[[], object], repeat: int, budget_s: float) -> dict[str, float]:
    """Median and p95 wall time in ms of ``call`` after one warm-up, over ``repeat`` runs or ``budget_s``."""
    call()
    times: list[float] = []
    spent = 0.0
    while len(times) < repeat and (len(times) < 3 or spent < budget_s):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
        spent += times[-1]
    ms = np.array(times) * 1e3
    return {"p50_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "n": len(ms)}


def bench_family(stored: StoredModel, stockcode: str, repeat: int, budget_s: float) -> list[dict[str, object]]:
    """Every size and method for one stored model."""
    sweeper = stored.sweeper()
    rows = []
    for context, bins in SIZES:
        request = SweepRequest(stockcode, segment="wholesale", bins=bins, context=context)
        block = sweeper.plan(request).context
        cases = {
            "naive": lambda request=request: sweeper.naive_sweep(request),
            "project": lambda request=request: sweeper.sweep(request),
            "floor": lambda block=block: stored.estimator.predict(block),
        }
        row: dict[str, object] = {"family": stored.family, "requested": context, "context": len(block), "bins": bins}
        for method in METHODS:
            row[method] = time_case(cases[method], repeat, budget_s)
        row["naive_over_project"] = row["naive"]["p50_ms"] / row["project"]["p50_ms"]
        row["project_over_floor"] = row["project"]["p50_ms"] / row["floor"]["p50_ms"]
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def verdicts(rows: list[dict[str, object]]) -> list[tuple[str, bool]]:
    """The checks at the default sweep's size, each with whether it is met."""
    out = []
    for row in rows:
        if (row["requested"], row["bins"]) != TARGET_SIZE:
            continue
        family = row["family"]
        out.append((f"{family}: project >= 10x faster than naive", row["naive_over_project"] >= 10))
        out.append((f"{family}: project p50 <= 25 ms", row["project"]["p50_ms"] <= 25))
    return out


def _line(row: dict[str, object]) -> str:
    cells = [f"{row['family']:<10}", f"{row['context']:>5}x{row['bins']:<5}"]
    for method in METHODS:
        case = row[method]
        cells.append(f"{case['p50_ms']:>9.1f} {case['p95_ms']:>9.1f} {case['n']:>3}")
    cells.append(f"{row['naive_over_project']:>8.1f}x {row['project_over_floor']:>7.2f}x")
    return " | ".join(cells)


def markdown(rows: list[dict[str, object]], checks: list[tuple[str, bool]], header: dict[str, str]) -> str:
    """The results as a Markdown table with the run's header and the target verdicts."""
    lines = [
        f"Sweep benchmark, {header['date']}, {header['machine']}; run {header['run_id']}, wholesale list of "
        f"{header['stockcode']}. Times in ms: p50 / p95 (n runs).",
        "",
        "| family | periods x prices | naive | project | floor | naive / project | project / floor "
        "| project µs per 1k cells |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [str(row["family"]), f"{row['context']:,} x {row['bins']:,}"]
        for method in METHODS:
            case = row[method]
            cells.append(f"{case['p50_ms']:,.1f} / {case['p95_ms']:,.1f} ({case['n']})")
        per_kcell = row["project"]["p50_ms"] * 1e6 / (row["context"] * row["bins"])
        cells += [f"{row['naive_over_project']:,.1f}x", f"{row['project_over_floor']:.2f}x", f"{per_kcell:,.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"At the default sweep ({TARGET_SIZE[0]} periods x {TARGET_SIZE[1]} prices):", ""]
    lines += [f"- {'met' if ok else 'MISSED'}: {name}" for name, ok in checks]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 (targets are reported, not enforced: the numbers depend on the machine)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per case (default 30)")
    parser.add_argument("--case-seconds", type=float, default=45.0, help="stop repeating a case after this")
    parser.add_argument("--families", default="", help="comma-separated families (default: the whole run)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench", help="report directory")
    args = parser.parse_args(argv)

    models = [load_model(m) for m in serving_order()]
    if args.families:
        wanted = set(args.families.split(","))
        models = [m for m in models if m.family in wanted]
    stockcode = best_selling_lists(models[0].context.catalogue, n=1)[0]
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}",
        "run_id": str(models[0].metadata.get("run_id")),
        "stockcode": stockcode,
    }
    print(f"{'family':<10} | {'size':<11} | {'naive p50 p95 n':>23} | {'project':>23} | {'floor':>23} | ratios")
    rows = [row for stored in models for row in bench_family(stored, stockcode, args.repeat, args.case_seconds)]
    checks = verdicts(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.json").write_text(json.dumps({**header, "rows": rows, "targets": dict(checks)}, indent=2))
    table = markdown(rows, checks, header)
    (args.out / "sweep.md").write_text(table)
    print("\n" + table)
    print(f"wrote {args.out / 'sweep.md'} and sweep.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
