"""Soak test: the ramp-up load test's shape, then its full load held for a long time, watching memory.

Usage:

    make soak                                    # 30 minutes at full load (SOAK_MINUTES=10 make soak: 10)
    .venv/bin/python loadtests/soak.py --minutes 5 --warmup-minutes 1

It starts the service itself (as loadtests/run.py does: the smoke budget is trained first when the model
store is empty; ``PRICING_*`` variables such as PRICING_WORKERS pass through), ramps Locust's ramp scenario
(SweepUser and InvocationsUser, random products and price ranges, every answer checked) from 1 to --users at
--spawn-rate users/s, then holds that load for --minutes. Every --interval seconds it samples the summed RSS
of the whole serve process tree (the parent and its workers, psutil).

Verdict:
    failed requests   none (any failed request fails the soak)
    RSS growth        the median RSS of the last minute against the median of the first minute after the
                      warm-up (the ramp plus --warmup-minutes: caches and allocators fill first) at most
                      --max-growth (10 %)

Writes to --reports-dir (default reports/soak/): soak.json (settings, totals, RSS samples and growth, the
latency per minute, verdicts), soak.png (RSS, requests/s and p50/p95 over time, the warm-up shaded), and
Locust's own files (soak_stats.csv, soak_stats_history.csv, soak.html, soak_locust.log), serve.log.

Exit status: 0 passed, 1 a target missed, 2 the soak itself did not run properly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from run import (
    LOCUST_GRACE_S,
    MB,
    READY_TIMEOUT_S,
    Paths,
    PeakRss,
    ensure_models,
    history,
    locust_command,
    log,
    parse_duration,
    ramp_seconds,
    run_locust,
    run_problems,
    served_model,
)

from pricing.local_server import ServerNotReadyError, serve

ROOT = Path(__file__).resolve().parent.parent
EXIT_PASS, EXIT_MISSED, EXIT_BROKEN = 0, 1, 2
MEDIAN_WINDOW_S = 60.0  # the baseline and the end of the run are each the median over this long


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; --minutes defaults to SOAK_MINUTES (30)."""
    parser = argparse.ArgumentParser(
        description="Soak test: the ramp, then full load for --minutes; RSS of the service tree sampled.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES") or 30),
                        help="time at full load after the ramp (default: SOAK_MINUTES, else 30)")  # fmt: skip
    parser.add_argument("--users", type=int, default=30, help="users after the ramp")
    parser.add_argument("--spawn-rate", type=float, default=1.0, help="users started per second")
    parser.add_argument("--warmup-minutes", type=float, default=5.0,
                        help="after the ramp, not counted in the growth (capped at a third of --minutes)")  # fmt: skip
    parser.add_argument("--interval", type=parse_duration, default="5s", help="RSS sampling interval")
    parser.add_argument("--max-growth", type=float, default=0.10, help="highest RSS growth after the warm-up")
    parser.add_argument("--reports-dir", type=Path, default=ROOT / "reports" / "soak", help="where reports go")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.users < 1 or args.spawn_rate <= 0 or args.interval <= 0:
        parser.error("--minutes, --users, --spawn-rate and --interval must be positive")
    if args.minutes * 60 < 3 * MEDIAN_WINDOW_S:
        parser.error(
            f"--minutes {args.minutes:g} is too short to measure growth: at least {3 * MEDIAN_WINDOW_S / 60:g}"
        )
    args.warmup_minutes = min(args.warmup_minutes, args.minutes / 3)
    # What run.py's locust_command reads: the ramp scenario over the whole run.
    args.scenario, args.duration = "ramp", ramp_seconds(args) + args.minutes * 60
    return args


class RssSeries(PeakRss):
    """Samples the RSS of a process tree every ``interval`` seconds and keeps every sample."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(pid)
        self.interval = interval
        self.samples: list[tuple[float, float, int]] = []  # (Unix time, MB, processes)

    def run(self) -> None:
        """Sample until stopped."""
        while not self._done.is_set():
            processes = 0
            with contextlib.suppress(psutil.NoSuchProcess):
                processes = 1 + len(self.root.children(recursive=True))
            self.samples.append((time.time(), self.sample() / MB, processes))
            self._done.wait(self.interval)


def growth(samples: list[tuple[float, float, int]], measured_from: float) -> dict[str, Any] | None:
    """RSS growth from the first minute after ``measured_from`` to the last minute of the run."""
    after = [(t, mb) for t, mb, _ in samples if t >= measured_from]
    if not after or after[-1][0] - after[0][0] < 2 * MEDIAN_WINDOW_S:
        return None
    start, end = after[0][0], after[-1][0]
    base = statistics.median(mb for t, mb in after if t <= start + MEDIAN_WINDOW_S)
    last = statistics.median(mb for t, mb in after if t >= end - MEDIAN_WINDOW_S)
    peak = max(mb for _, mb in after)
    return {
        "baseline_mb": round(base, 1),
        "end_mb": round(last, 1),
        "peak_after_warmup_mb": round(peak, 1),
        "growth": round((last - base) / base, 4),
        "peak_growth": round((peak - base) / base, 4),
    }


def per_minute(points: list[dict[str, float]]) -> list[dict[str, float]]:
    """Locust's history thinned to one row a minute (its p50/p95 are over the last 10 s)."""
    rows, next_t = [], 0.0
    for point in points:
        if point["t"] >= next_t:
            rows.append({k: None if math.isnan(v) else round(v, 1) for k, v in point.items()})
            next_t = point["t"] - point["t"] % 60 + 60
    return rows


def plot(samples: list[tuple[float, float, int]], points: list[dict[str, float]], t0: float, locust_t0: float,
         warmup_end: float, path: Path, title: str) -> None:  # fmt: skip
    """RSS, requests/s and latency over the run, the warm-up shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rss, ax_rps, ax_lat) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    minutes = [(t - t0) / 60 for t, _, _ in samples]
    ax_rss.plot(minutes, [mb for _, mb, _ in samples], color="tab:purple")
    ax_rss.set_ylabel("RSS of the service tree, MB")
    shift = (locust_t0 - t0) / 60
    lt = [p["t"] / 60 + shift for p in points]
    ax_rps.plot(lt, [p["rps"] for p in points], label="requests/s")
    ax_rps.plot(lt, [p["fails"] for p in points], color="tab:red", label="failures/s")
    ax_rps.set_ylabel("per second")
    ax_rps.legend(loc="upper left")
    ax_lat.plot(lt, [p["p50"] for p in points], label="p50")
    ax_lat.plot(lt, [p["p95"] for p in points], label="p95")
    ax_lat.set_ylabel("ms (last 10 s)")
    ax_lat.set_xlabel("minutes since the service was ready")
    ax_lat.legend(loc="upper left")
    for ax in (ax_rss, ax_rps, ax_lat):
        ax.axvspan(0, (warmup_end - t0) / 60, color="0.9", zorder=0)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    ax_rss.text(0.005, 0.04, "ramp + warm-up", transform=ax_rss.transAxes, fontsize=8, color="0.4")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; return the exit status (see the module docstring)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    paths = Paths(args.reports_dir.resolve(), "soak")
    paths.reports.mkdir(parents=True, exist_ok=True)
    for path in [*paths.outputs, paths.reports / "soak.json"]:
        path.unlink(missing_ok=True)
    started = datetime.now(UTC)

    # Load: the service started here (Locust as a subprocess), its tree's RSS sampled throughout.
    ensure_models()
    log(f"soak: ramp to {args.users} users, then {args.minutes:g} min at full load")
    try:
        with serve(paths.reports / "serve.log", timeout_s=READY_TIMEOUT_S) as server:
            ready_at = time.time()
            sampler = RssSeries(server.pid, args.interval)
            sampler.start()
            try:
                command = locust_command(args, server.url, paths)
                locust_started = time.time()
                exit_code = run_locust(command, paths.of("_locust.log"), args.duration + LOCUST_GRACE_S)
                model = served_model(server.url)
            finally:
                sampler.stop()
    except ServerNotReadyError as exc:
        log(f"cannot start the service: {exc}")
        return EXIT_BROKEN

    # Verdicts.
    run_path = paths.of("_run.json")
    run = json.loads(run_path.read_text()) if run_path.exists() else None
    problems = run_problems(exit_code, run, paths)
    points = history(paths.of("_stats_history.csv"))
    # Locust's history starts with its first row, about when Locust started.
    warmup_end = locust_started + ramp_seconds(args) + args.warmup_minutes * 60
    rss_growth = growth(sampler.samples, warmup_end)
    failures = run["total"]["failures"] if run else None
    checks = {
        "no failed request": failures == 0,
        f"RSS growth after warm-up <= {args.max_growth:.0%}": rss_growth is not None
        and rss_growth["growth"] <= args.max_growth,
    }
    if rss_growth is None:
        problems.append("too few RSS samples after the warm-up to measure growth")
    summary = {
        "verdict": "PASS" if all(checks.values()) and not problems else "FAIL",
        "started_at": started.isoformat(timespec="seconds"),
        "wall_seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "model": model,
        "workers": int(os.environ.get("PRICING_WORKERS") or 1),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "whole_run": (run or {}).get("total"),
        "hold_phase": ((run or {}).get("shape") or {}).get("hold"),
        "rss": rss_growth,
        "rss_samples": [
            {"t": round(t - ready_at, 1), "mb": round(mb, 1), "processes": n} for t, mb, n in sampler.samples
        ],
        "latency_per_minute": per_minute(points),
        "errors": (run or {}).get("errors", [])[:10],
        "checks": checks,
        "problems": problems,
    }
    (paths.reports / "soak.json").write_text(json.dumps(summary, indent=2) + "\n")
    title = f"pricing soak: {args.users} users, {args.minutes:g} min at full load"
    plot(sampler.samples, points, ready_at, locust_started, warmup_end, paths.of(".png"), title)
    print(render(summary))
    if problems:
        return EXIT_BROKEN
    return EXIT_PASS if summary["verdict"] == "PASS" else EXIT_MISSED


def render(summary: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    total, rss, hold = summary["whole_run"] or {}, summary["rss"] or {}, summary["hold_phase"] or {}
    lines = [f"soak: {summary['verdict']} ({summary['wall_seconds']:.0f} s, model {summary['model']})"]
    if total:
        lines.append(f"  requests {total['requests']}, failed {total['failures']}, p50 {total['p50_ms']:g} ms, "
                     f"p95 {total['p95_ms']:g} ms; hold phase p95 {hold.get('p95_ms', float('nan')):g} ms")  # fmt: skip
    if rss:
        lines.append(f"  RSS after warm-up {rss['baseline_mb']:.0f} MB -> end {rss['end_mb']:.0f} MB "
                     f"({rss['growth']:+.1%}), peak {rss['peak_after_warmup_mb']:.0f} MB")  # fmt: skip
    lines += [f"  {'ok ' if ok else 'FAILED'} {name}" for name, ok in summary["checks"].items()]
    lines += [f"  problem: {p}" for p in summary["problems"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
