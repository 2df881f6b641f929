"""Run the Locust load test headless and judge it against the service's SLOs.

Usage:

    .venv/bin/python loadtests/run.py                                  # ramp scenario, service started here
    .venv/bin/python loadtests/run.py --host http://127.0.0.1:3000 --scenario knee
    make loadtest LOADTEST_ARGS="--scenario cached --users 10 --duration 1m"

Without --host (or LOADTEST_HOST) it starts the service itself: trains the smoke budget when the model store
has no run (``python -m pricing.registry`` fails), serves ``service:Pricing`` on a free port in its own
process group (log in <reports-dir>/serve.log), samples the peak RSS of the whole serve process tree while
Locust runs, and stops it afterwards. Locust runs as a subprocess: importing it here would monkey-patch the
standard library under this script.

Writes to --reports-dir (default reports/loadtest/): Locust's CSVs (<scenario>_stats.csv,
<scenario>_stats_history.csv, ...) and HTML report, <scenario>_run.json (the locustfile's final figures),
<scenario>.png (users, requests/s and windowed p50/p95 over time), <scenario>_locust.log, and summary.md /
summary.json for this run, also printed to stdout.

SLOs (thresholds are options):
    ramp    no failed requests; p95 of the hold phase (at full load, after the ramp) <= 150 ms;
            peak RSS <= 700 MB (only when the service was started here)
    cached  no failed requests; peak RSS
    knee    requests/s at the knee (last step with p95 <= --knee-p95-ms and no failures) >= 60; peak RSS

Exit status: 0 every SLO met, 1 an SLO missed, 2 the load test itself did not run properly.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from pricing.local_server import LocalServer, ServerNotReadyError, serve

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONFIG = ROOT / "loadtests" / "locust.conf"
READY_TIMEOUT_S = 180
RSS_INTERVAL_S = 0.5
STOP_TIMEOUT_S = 20
# Locust needs time beyond the shape's own length: start-up, reading the catalogue, warming the cached set.
LOCUST_GRACE_S = 180
MB = 1024 * 1024

EXIT_PASS, EXIT_SLO_MISSED, EXIT_BROKEN = 0, 1, 2


# ---------------------------------------------------------------------------------------------------
# Command line


def parse_duration(text: str) -> float:
    """Seconds in a duration such as 90, 90s, 2m, 1m30s or 1h."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip())
    if not text.strip() or not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 90, 90s, 2m, 1m30s)")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with LOADTEST_HOST as the default host."""
    parser = argparse.ArgumentParser(
        description="Run the Locust load test headless, write reports and judge the SLOs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--host", default=os.environ.get("LOADTEST_HOST") or None,
        help="URL of a running service (default: LOADTEST_HOST; unset: start one here)",
    )  # fmt: skip
    parser.add_argument("--scenario", choices=("ramp", "cached", "knee"), default="ramp", help="see README.md")
    parser.add_argument("--users", type=int, default=30, help="ramp/cached: users after the ramp; knee: most users")
    parser.add_argument("--spawn-rate", type=float, default=1.0, help="ramp/cached: users started per second")
    parser.add_argument(
        "--duration", type=parse_duration, default="2m", help="ramp/cached: whole run, ramp included (e.g. 90s, 2m)"
    )
    parser.add_argument("--step-users", type=int, default=1, help="knee: users added per step")
    parser.add_argument("--step-seconds", type=float, default=10.0, help="knee: length of a step")
    parser.add_argument("--knee-p95-ms", type=float, default=250.0, help="knee: p95 of a step that ends the search")
    parser.add_argument("--reports-dir", type=Path, default=ROOT / "reports" / "loadtest", help="where reports go")
    slo = parser.add_argument_group("SLO thresholds")
    slo.add_argument("--slo-failures", type=int, default=0, help="most failed requests (ramp, cached)")
    slo.add_argument("--slo-p95-ms", type=float, default=150.0, help="highest p95 of the hold phase (ramp)")
    slo.add_argument("--slo-rss-mb", type=float, default=700.0, help="highest peak RSS of the serve process tree")
    slo.add_argument("--slo-knee-rps", type=float, default=60.0, help="lowest requests/s at the knee (knee)")
    args = parser.parse_args(argv)
    if args.users < 1 or args.spawn_rate <= 0 or args.step_users < 1 or args.step_seconds <= 0:
        parser.error("--users, --spawn-rate, --step-users and --step-seconds must be positive")
    if args.scenario != "knee" and args.duration <= ramp_seconds(args):
        parser.error(
            f"--duration {args.duration:g} s leaves no hold phase after a {ramp_seconds(args):g} s ramp "
            f"({args.users} users at {args.spawn_rate:g}/s): raise --duration or --spawn-rate"
        )
    return args


def ramp_seconds(args: argparse.Namespace) -> float:
    """How long the ramp from 1 to --users takes."""
    return (args.users - 1) / args.spawn_rate


# ---------------------------------------------------------------------------------------------------
# The service under test, when none is given


def ensure_models() -> None:
    """Train the smoke budget when the model store holds no training run."""
    if subprocess.run([sys.executable, "-m", "pricing.registry"], cwd=ROOT, capture_output=True).returncode == 0:
        return
    log("no trained models in the store: training the smoke budget first (about a minute)")
    subprocess.run([sys.executable, "train.py", "--budget", "smoke"], cwd=ROOT, check=True)


@contextlib.contextmanager
def local_service(log_path: Path) -> Iterator[LocalServer]:
    """Serve ``service:Pricing`` on a free port (training first if needed); yield it once /readyz answers,
    then stop it."""
    ensure_models()
    log(f"starting the service (log: {log_path})")
    with serve(log_path, timeout_s=READY_TIMEOUT_S) as server:
        log(f"the service is ready on {server.url}")
        yield server


class PeakRss(threading.Thread):
    """Samples the summed RSS of a process and all its descendants; keeps the first and the highest sample."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.first_bytes = 0
        self.peak_bytes = 0
        self._done = threading.Event()

    def run(self) -> None:
        """Sample every RSS_INTERVAL_S until stopped."""
        while not self._done.is_set():
            total = self.sample()
            self.first_bytes = self.first_bytes or total
            self.peak_bytes = max(self.peak_bytes, total)
            self._done.wait(RSS_INTERVAL_S)

    def sample(self) -> int:
        """The tree's RSS now (processes that exit while being read count as zero)."""
        total = 0
        with contextlib.suppress(psutil.NoSuchProcess):
            for process in [self.root, *self.root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += process.memory_info().rss
        return total

    def stop(self) -> None:
        """Stop sampling and wait for the last sample."""
        self._done.set()
        self.join()


# ---------------------------------------------------------------------------------------------------
# Locust


@dataclass(frozen=True)
class Paths:
    """Where one scenario's outputs go."""

    reports: Path
    scenario: str

    def of(self, suffix: str) -> Path:
        """The output file ``<scenario><suffix>``."""
        return self.reports / f"{self.scenario}{suffix}"

    @property
    def outputs(self) -> list[Path]:
        """Every file this run writes (removed first, so nothing stale survives a broken run)."""
        suffixes = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv", ".html", "_run.json",
                    ".png", "_locust.log")  # fmt: skip
        return [self.of(s) for s in suffixes] + [self.reports / "summary.md", self.reports / "summary.json"]


def locust_command(args: argparse.Namespace, host: str, paths: Paths) -> list[str]:
    """Headless Locust with the defaults of locust.conf, the scenario's shape options and the report paths."""
    command = [str(BIN / "locust"), "--config", str(CONFIG), "--host", host, "--scenario", args.scenario]
    if args.scenario == "knee":
        command += ["--knee-start-users", str(args.step_users), "--knee-step-users", str(args.step_users),
                    "--knee-step-seconds", str(args.step_seconds), "--knee-max-users", str(args.users),
                    "--knee-p95-ms", str(args.knee_p95_ms)]  # fmt: skip
    else:
        hold = args.duration - ramp_seconds(args)
        command += ["--ramp-users", str(args.users), "--ramp-rate", str(args.spawn_rate),
                    "--hold-seconds", str(hold)]  # fmt: skip
    return [
        *command,
        *("--csv", str(paths.of("")), "--csv-full-history", "--html", str(paths.of(".html"))),
        *("--report-json", str(paths.of("_run.json"))),
    ]


def expected_seconds(args: argparse.Namespace) -> float:
    """The longest the scenario's shape can run."""
    if args.scenario == "knee":
        return math.ceil(args.users / args.step_users) * args.step_seconds
    return args.duration


def run_locust(command: list[str], log_path: Path, timeout_s: float) -> int:
    """Run Locust, copying its output to stderr and ``log_path``; SIGTERM it (it then writes its reports) on
    timeout. Returns its exit code."""
    log(" ".join(command))
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def overrun() -> None:
            log(f"locust is still running after {timeout_s:.0f} s: stopping it")
            proc.terminate()

        timer = threading.Timer(timeout_s, overrun)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stderr.write(line)
                log_file.write(line)
            return proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:  # interrupted: do not leave Locust running against the service
                proc.terminate()
                proc.wait(timeout=STOP_TIMEOUT_S)


# ---------------------------------------------------------------------------------------------------
# Judging and reporting


@dataclass(frozen=True)
class Slo:
    """One SLO and its verdict (passed None: not measured, which does not fail the run)."""

    name: str
    threshold: str
    measured: str
    passed: bool | None


def judge(args: argparse.Namespace, run: dict[str, Any], peak_rss_mb: float | None) -> list[Slo]:
    """The verdict on each SLO of the scenario."""
    slos: list[Slo] = []
    total, shape = run["total"], run.get("shape") or {}
    if args.scenario in ("ramp", "cached"):
        failures = total["failures"]
        slos.append(Slo("failed requests", f"<= {args.slo_failures}", str(failures), failures <= args.slo_failures))
    if args.scenario == "ramp":
        hold = shape.get("hold")
        p95, scope = (hold["p95_ms"], "hold phase") if hold and hold["requests"] else (total["p95_ms"], "whole run")
        slos.append(Slo(f"p95 latency ({scope})", f"<= {args.slo_p95_ms:g} ms", f"{p95:g} ms", p95 <= args.slo_p95_ms))
    if args.scenario == "knee":
        knee = shape.get("knee")
        rps = knee["rps"] if knee else 0.0
        measured = f"{rps:g} at {knee['users']} users" if knee else "0 (no step met the criterion)"
        slos.append(Slo("sweeps/s at the knee", f">= {args.slo_knee_rps:g}", measured, rps >= args.slo_knee_rps))
    if peak_rss_mb is None:
        slos.append(Slo("peak RSS, serve process tree", f"<= {args.slo_rss_mb:g} MB", "not measured (--host)", None))
    else:
        slos.append(Slo("peak RSS, serve process tree", f"<= {args.slo_rss_mb:g} MB", f"{peak_rss_mb:.0f} MB",
                        peak_rss_mb <= args.slo_rss_mb))  # fmt: skip
    return slos


def run_problems(exit_code: int, run: dict[str, Any] | None, paths: Paths) -> list[str]:
    """Reasons the load test itself is not to be trusted (as opposed to the service missing an SLO)."""
    # Locust exits 1 when requests failed: that is the service's verdict, judged by the SLOs.
    problems = [] if exit_code in (0, 1) else [f"locust exited with {exit_code} (see {paths.of('_locust.log')})"]
    if run is None:
        return [*problems, f"locust wrote no {paths.of('_run.json').name}"]
    problems += run["setup_errors"]
    if run["exceptions"]:
        problems.append(f"the locustfile raised {run['exceptions']} exceptions (see {paths.of('_exceptions.csv')})")
    if not run["total"]["requests"]:
        problems.append("no requests were answered")
    return problems


def served_model(host: str) -> str | None:
    """The tag and role of the model answering first, as the service reports it."""
    key = os.environ.get("LOADTEST_API_KEY") or os.environ.get("PRICING_API_KEY")
    try:
        models = httpx.get(f"{host}/model", headers={"X-API-Key": key} if key else {}, timeout=10).json()["models"]
        return f"{models[0]['name']}:{models[0]['version']} ({models[0]['role']})" if models else None
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return None


def history(path: Path) -> list[dict[str, float]]:
    """The Aggregated rows of Locust's stats history: seconds since the first row, users, rps, p50, p95."""
    if not path.exists():
        return []

    def number(text: str) -> float:
        return float(text) if text not in ("", "N/A") else math.nan

    def latency(text: str) -> float:
        # Locust writes 0 for a window with no answers yet; a gap reads better than a fake 0 ms.
        return number(text) or math.nan

    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    start = float(rows[0]["Timestamp"]) if rows else 0.0
    return [
        {"t": float(r["Timestamp"]) - start, "users": number(r["User Count"]), "rps": number(r["Requests/s"]),
         "fails": number(r["Failures/s"]), "p50": latency(r["50%"]), "p95": latency(r["95%"])}
        for r in rows
    ]  # fmt: skip


def plot(points: list[dict[str, float]], path: Path, title: str, p95_line: tuple[str, float] | None) -> bool:
    """Users, requests/s and windowed p50/p95 over time, one panel each; False when there is nothing to plot."""
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on CI or servers
    import matplotlib.pyplot as plt

    t = [p["t"] for p in points]
    fig, (ax_users, ax_rps, ax_lat) = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True)
    ax_users.plot(t, [p["users"] for p in points], color="tab:gray")
    ax_users.set_ylabel("users")
    ax_rps.plot(t, [p["rps"] for p in points], label="requests/s")
    ax_rps.plot(t, [p["fails"] for p in points], color="tab:red", label="failures/s")
    ax_rps.set_ylabel("per second")
    ax_rps.legend(loc="upper left")
    ax_lat.plot(t, [p["p50"] for p in points], label="p50")
    ax_lat.plot(t, [p["p95"] for p in points], label="p95")
    if p95_line is not None:
        label, limit = p95_line
        ax_lat.axhline(limit, color="tab:red", linestyle="--", linewidth=1, label=f"{label} {limit:g} ms")
    ax_lat.set_ylabel("ms (last 10 s)")  # Locust's history percentiles are over a sliding 10 s window
    ax_lat.set_xlabel("seconds since start")
    ax_lat.legend(loc="best")
    for ax in (ax_users, ax_rps, ax_lat):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def build_summary(
    args: argparse.Namespace,
    host: str,
    started: datetime,
    model: str | None,
    run: dict[str, Any] | None,
    rss: tuple[float, float] | None,
    slos: list[Slo],
    problems: list[str],
) -> dict[str, Any]:
    """The run's figures and verdicts as one JSON-ready record."""
    shape = (run or {}).get("shape") or {}
    passed = not problems and all(s.passed is not False for s in slos)
    return {
        "scenario": args.scenario,
        "verdict": "PASS" if passed else "FAIL",
        "host": host,
        "service": "external (--host)" if args.host else "started by run.py",
        "model": model,
        "started_at": started.isoformat(timespec="seconds"),
        "wall_seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "host"},
        "whole_run": (run or {}).get("total"),
        "hold_phase": shape.get("hold"),
        "ramp_seconds": shape.get("ramp_seconds"),
        "knee": shape.get("knee"),
        "knee_found": shape.get("knee_found"),
        "knee_steps": shape.get("steps"),
        "knee_stop_reason": shape.get("stop_reason"),
        "rss_mb": None if rss is None else {"at_start": round(rss[0], 1), "peak": round(rss[1], 1)},
        "endpoints": (run or {}).get("endpoints", []),
        "errors": (run or {}).get("errors", [])[:10],
        "slos": [vars(s) for s in slos],
        "problems": problems,
    }


def render_markdown(summary: dict[str, Any]) -> str:
    """The summary as a short Markdown report."""
    s = summary
    lines = [f"# Load test `{s['scenario']}`: {s['verdict']}", ""]
    lines += [f"- host {s['host']} ({s['service']}); model {s['model'] or 'unknown'}",
              f"- started {s['started_at']}, {s['wall_seconds']} s wall clock"]  # fmt: skip
    if s["rss_mb"]:
        lines.append(f"- RSS of the serve process tree: {s['rss_mb']['at_start']:.0f} MB at start, "
                     f"peak {s['rss_mb']['peak']:.0f} MB")  # fmt: skip
    lines.append("")
    columns = [("whole run", s["whole_run"])]
    if s["hold_phase"]:
        columns.append((f"hold phase ({s['settings']['users']} users)", s["hold_phase"]))
    if s["knee"]:
        columns.append((f"knee step ({s['knee']['users']} users)", s["knee"]))
    if s["whole_run"]:
        lines += ["| figure | " + " | ".join(name for name, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for label, key in (("requests", "requests"), ("failed", "failures"), ("requests/s", "rps"),
                           ("p50 ms", "p50_ms"), ("p95 ms", "p95_ms"), ("p99 ms", "p99_ms")):  # fmt: skip
            lines.append(f"| {label} | " + " | ".join(f"{fig[key]:g}" for _, fig in columns) + " |")
        lines.append("")
    if s["endpoints"]:
        lines += ["| request | requests | failed | requests/s | p50 ms | p95 ms | p99 ms |", "|---" * 7 + "|"]
        lines += [f"| {e['method']} {e['name']} | {e['requests']} | {e['failures']} | {e['rps']:g} | "
                  f"{e['p50_ms']:g} | {e['p95_ms']:g} | {e['p99_ms']:g} |" for e in s["endpoints"]]  # fmt: skip
        lines.append("")
    if s["knee_steps"]:
        lines += ["| knee step: users | requests/s | p95 ms | failed | met |", "|---" * 5 + "|"]
        lines += [f"| {st['users']} | {st['rps']:g} | {st['p95_ms']:g} | {st['failures']} | "
                  f"{'yes' if st['ok'] else 'no'} |" for st in s["knee_steps"]]  # fmt: skip
        lines += ["", f"Search ended: {s['knee_stop_reason']}.", ""]
    lines += ["| SLO | threshold | measured | verdict |", "|---|---|---|---|"]
    verdicts = {True: "PASS", False: "FAIL", None: "n/a"}
    lines += [f"| {o['name']} | {o['threshold']} | {o['measured']} | {verdicts[o['passed']]} |" for o in s["slos"]]
    if s["errors"]:
        lines += ["", "Failures (most frequent first):"]
        lines += [f"- {e['occurrences']} x {e['method']} {e['name']}: {e['error']}" for e in s["errors"][:5]]
    if s["problems"]:
        lines += ["", "The load test did not run properly:", *[f"- {p}" for p in s["problems"]]]
    lines.append("")
    return "\n".join(lines)


def log(message: str) -> None:
    """Progress on stderr (stdout carries only the summary)."""
    print(f"[loadtest] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# The run


def main(argv: list[str] | None = None) -> int:
    """Run one scenario end to end; return the exit status (see the module docstring)."""
    args = parse_args(argv)
    # A SIGTERM (CI cancelling the job) unwinds through the finally blocks, so the service is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    paths = Paths(args.reports_dir.resolve(), args.scenario)
    paths.reports.mkdir(parents=True, exist_ok=True)
    for path in paths.outputs:
        path.unlink(missing_ok=True)
    started = datetime.now(UTC)

    # Load: against the given host, or a service started here whose memory is watched meanwhile.
    with contextlib.ExitStack() as stack:
        sampler: PeakRss | None = None
        host = args.host
        if host is None:
            try:
                server = stack.enter_context(local_service(paths.reports / "serve.log"))
            except (ServerNotReadyError, subprocess.CalledProcessError) as exc:
                log(f"cannot start the service: {exc}")
                return EXIT_BROKEN
            host = server.url
            sampler = PeakRss(server.pid)
            sampler.start()
            stack.callback(sampler.stop)
        host = host.rstrip("/")
        timeout_s = expected_seconds(args) + LOCUST_GRACE_S
        exit_code = run_locust(locust_command(args, host, paths), paths.of("_locust.log"), timeout_s)
        model = served_model(host)
    rss = None if sampler is None else (sampler.first_bytes / MB, sampler.peak_bytes / MB)

    # Verdicts, from the figures the locustfile wrote when the test stopped.
    run_path = paths.of("_run.json")
    run = json.loads(run_path.read_text()) if run_path.exists() else None
    problems = run_problems(exit_code, run, paths)
    slos = judge(args, run, None if rss is None else rss[1]) if run else []

    # Reports.
    p95_line = {"knee": ("knee p95 limit", args.knee_p95_ms), "ramp": ("p95 SLO (hold phase)", args.slo_p95_ms)}
    title = f"pricing load test: {args.scenario} ({host})"
    plot(history(paths.of("_stats_history.csv")), paths.of(".png"), title, p95_line.get(args.scenario))
    summary = build_summary(args, host, started, model, run, rss, slos, problems)
    markdown = render_markdown(summary)
    (paths.reports / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (paths.reports / "summary.md").write_text(markdown)
    print(markdown)
    if problems:
        return EXIT_BROKEN
    return EXIT_PASS if summary["verdict"] == "PASS" else EXIT_SLO_MISSED


if __name__ == "__main__":
    sys.exit(main())
