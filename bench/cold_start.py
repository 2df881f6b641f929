"""Cold-start benchmark: from launching `bentoml serve` to /readyz and to the first answered sweep.

Usage:
    make bench                                   # the sweep benchmark, then this
    .venv/bin/python bench/cold_start.py [--runs 5]

Models must already be in the store (``make bench`` trains the smoke budget when it is empty). Each run
launches ``bentoml serve service:Pricing`` on a free port, polls ``/readyz`` every 20 ms, then sends one
uncached default sweep of the best-selling product and stops the server. Also measured, to explain the
total: importing ``service`` in a fresh interpreter, and each model's load time from the server's log.
Writes reports/bench/cold_start.json and cold_start.md and prints them. Target (issue #11): the first sweep
answered within 5 s of launch in every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from pricing.evaluate import best_selling_lists
from pricing.local_server import ROOT, free_port, launch, stop_group, wait_ready
from pricing.registry import load_model, serving_order

TARGET_FIRST_SWEEP_S = 5.0
DEADLINE_S = 120.0
LOADED = re.compile(r"loaded (\S+) \((\S+)\) in ([0-9.]+) s")


def one_run(stockcode: str, log_path: Path) -> dict[str, object]:
    """Launch a server, time /readyz and the first sweep, stop it; the seconds and each model's load time."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = launch(port, log_path)
    try:
        wait_ready(url, proc, log_path, DEADLINE_S, poll_s=0.02)
        ready_s = time.perf_counter() - started
        response = httpx.post(f"{url}/price_sweep", json={"stockcode": stockcode}, timeout=30)
        first_sweep_s = time.perf_counter() - started
        if response.status_code != 200 or response.json().get("cached"):
            raise RuntimeError(f"first sweep answered {response.status_code}: {response.text[:300]}")
    finally:
        stop_group(proc)
    loads = {tag: float(seconds) for tag, _, seconds in LOADED.findall(log_path.read_text(errors="replace"))}
    return {"ready_s": ready_s, "first_sweep_s": first_sweep_s, "model_load_s": loads}


def import_seconds() -> float:
    """Seconds for a fresh interpreter to start and import the service module (no model loading)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import service"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def markdown(report: dict[str, object]) -> str:
    """The report as Markdown."""
    runs = report["runs"]
    lines = [
        f"Cold start, {report['date']}, {report['machine']}; run {report['run_id']}, first sweep of "
        f"{report['stockcode']} (a default sweep, uncached).",
        "",
        "| run | launch to /readyz | launch to first sweep |",
        "|---|---|---|",
    ]
    lines += [f"| {i + 1} | {r['ready_s']:.2f} s | {r['first_sweep_s']:.2f} s |" for i, r in enumerate(runs)]
    first = [r["first_sweep_s"] for r in runs]
    lines += [
        "",
        f"First sweep: median {np.median(first):.2f} s, worst {max(first):.2f} s "
        f"(target <= {TARGET_FIRST_SWEEP_S:g} s in every run: {'met' if report['target_met'] else 'MISSED'}).",
        f"Where it goes: `import service` in a fresh interpreter {report['import_s']:.2f} s; model loads "
        + ", ".join(f"{tag.split(':')[0]} {s:.2f} s" for tag, s in runs[-1]["model_load_s"].items())
        + " (last run's log).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 (the target is reported, not enforced: the numbers depend on the machine)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="launches to time (default 5)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench", help="report directory")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    models = serving_order()
    stockcode = best_selling_lists(load_model(models[0]).context.catalogue, n=1)[0]
    runs = []
    for i in range(args.runs):
        runs.append(one_run(stockcode, args.out / f"cold_start_serve_{i + 1}.log"))
        print(f"run {i + 1}: /readyz {runs[-1]['ready_s']:.2f} s, first sweep {runs[-1]['first_sweep_s']:.2f} s")
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}",
        "run_id": str(models[0].info.metadata.get("run_id")),
        "stockcode": stockcode,
        "runs": runs,
        "import_s": import_seconds(),
        "target_met": max(r["first_sweep_s"] for r in runs) <= TARGET_FIRST_SWEEP_S,
    }
    (args.out / "cold_start.json").write_text(json.dumps(report, indent=2))
    table = markdown(report)
    (args.out / "cold_start.md").write_text(table)
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
