"""How many context periods a sweep needs: the default context measured against the most a client can ask.

Usage:
    make bench                                   # the sweep benchmark, this, then the cold-start benchmark
    .venv/bin/python bench/context.py [--lists 50] [--tolerance 0.02]

With the primary model of the latest training run, sweeps the best-selling wholesale lists (by orders) at
every context size in ``SIZES`` and compares each answer with the one at ``MAX_CONTEXT`` periods: the optimal
price, its interval's ends, and the predicted units and revenue at the optimum (relative differences; median
and worst over the lists). A context size is enough when the optimum and the interval are within
``--tolerance`` of the reference for every list and the quantity for the median list. Also timed: the
project's sweep at each size (p50 of 20 runs on the best seller). Writes reports/bench/context.json and
context.md and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pricing.evaluate import best_selling_lists
from pricing.registry import load_model, serving_order
from pricing.sweep import DEFAULT_CONTEXT, MAX_CONTEXT, Sweeper, SweepRequest, SweepResult

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 4, 8, 13, 26, DEFAULT_CONTEXT, MAX_CONTEXT)
FIGURES = ("optimum", "interval_low", "interval_high", "quantity", "revenue")


def figures(result: SweepResult) -> dict[str, float]:
    """The figures of an answer that the context could move."""
    low, high = result.interval or (result.optimal_price, result.optimal_price)
    return {
        "optimum": result.optimal_price,
        "interval_low": float(low),
        "interval_high": float(high),
        "quantity": float(result.quantity[result.best]),
        "revenue": float(result.sales[result.best]),
    }


def sweep_ms(sweeper: Sweeper, request: SweepRequest, repeat: int = 20) -> float:
    """Median wall time in ms of the project's sweep, after one warm-up."""
    sweeper.sweep(request)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        sweeper.sweep(request)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e3)


def measure(sweeper: Sweeper, stockcodes: list[str]) -> list[dict[str, object]]:
    """Per context size: median and worst relative difference of each figure against ``MAX_CONTEXT``."""
    answers = {
        size: [figures(sweeper.sweep(SweepRequest(code, segment="wholesale", context=size))) for code in stockcodes]
        for size in SIZES
    }
    reference = answers[MAX_CONTEXT]
    rows = []
    for size in SIZES:
        row: dict[str, object] = {"context": size}
        for name in FIGURES:
            diffs = np.array(
                [abs(a[name] / r[name] - 1) if r[name] else 0.0 for a, r in zip(answers[size], reference, strict=True)]
            )
            row[name] = {"median": float(np.median(diffs)), "worst": float(diffs.max())}
        row["sweep_ms"] = sweep_ms(sweeper, SweepRequest(stockcodes[0], segment="wholesale", context=size))
        rows.append(row)
    return rows


def enough(row: dict[str, object], tolerance: float) -> bool:
    """The optimum and its interval within tolerance for every list, the quantity for the median list."""
    exact = all(row[name]["worst"] <= tolerance for name in ("optimum", "interval_low", "interval_high"))
    return exact and row["quantity"]["median"] <= tolerance


def markdown(rows: list[dict[str, object]], header: dict[str, object], tolerance: float) -> str:
    """The report as a Markdown table."""
    lines = [
        f"Context benchmark, {header['date']}, {header['machine']}; run {header['run_id']}, primary "
        f"{header['family']}, {header['lists']} best-selling wholesale lists. Relative difference against "
        f"{MAX_CONTEXT} periods requested: median / worst over the lists.",
        "",
        "| context periods | " + " | ".join(FIGURES) + f" | sweep p50 ms | enough (tolerance {tolerance:.0%}) |",
        "|---" * (len(FIGURES) + 3) + "|",
    ]
    for row in rows:
        cells = [f"{row[name]['median']:.1%} / {row[name]['worst']:.1%}" for name in FIGURES]
        verdict = "yes" if enough(row, tolerance) else "no"
        lines.append(f"| {row['context']} | " + " | ".join(cells) + f" | {row['sweep_ms']:.2f} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its report; exit 0 (the report is the result)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lists", type=int, default=50, help="best-selling wholesale lists to sweep (default 50)")
    parser.add_argument("--tolerance", type=float, default=0.02, help="relative difference that is enough")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench", help="report directory")
    args = parser.parse_args(argv)

    stored = load_model(serving_order()[0])
    stockcodes = best_selling_lists(stored.context.catalogue, n=args.lists)
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}",
        "run_id": str(stored.metadata.get("run_id")),
        "family": stored.family,
        "lists": len(stockcodes),
    }
    rows = measure(stored.sweeper(), stockcodes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "context.json").write_text(json.dumps({**header, "tolerance": args.tolerance, "rows": rows}, indent=2))
    table = markdown(rows, header, args.tolerance)
    (args.out / "context.md").write_text(table)
    print(table)
    print(f"wrote {args.out / 'context.md'} and context.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
