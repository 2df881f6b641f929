"""Smoke of the load test on every CI run, so it cannot rot: ``loadtests/run.py`` against a real server.

Each scenario runs for a few seconds against the smoke-trained models. Locust runs as a subprocess of
run.py: importing it here would monkey-patch the standard library under pytest. Latency is not asserted
(CI machines are shared): the latency limits are lifted, and the figures only have to be plausible;
failed requests, wrong answers and missing reports are asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, bentoml_serve, free_port

RUN_TIMEOUT_S = 300
NO_LATENCY_LIMITS = ("--slo-p95-ms", "1e9", "--knee-p95-ms", "1e9", "--slo-knee-rps", "0")
ROUTES = {"/price_sweep", "/v1/predict-price/[stockcode]", "/invocations"}


@pytest.fixture(scope="module")
def served(smoke_run, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `bentoml serve` of the smoke run's models."""
    env = {"BENTOML_HOME": os.environ["BENTOML_HOME"], "PRICING_RUN_ID": smoke_run.record["run_id"]}
    with bentoml_serve(env, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


def run_load_test(host: str, reports: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run loadtests/run.py against ``host``; return the process and the summary it wrote ({} if none)."""
    command = [sys.executable, "loadtests/run.py", "--host", host, "--reports-dir", str(reports), *NO_LATENCY_LIMITS]
    proc = subprocess.run(
        [*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    summary = reports / "summary.json"
    return proc, json.loads(summary.read_text()) if summary.exists() else {}


def assert_plausible(figures: dict[str, Any]) -> None:
    """Requests were answered, none failed, and the latency figures are ordered."""
    assert figures["requests"] > 0 and figures["failures"] == 0, figures
    assert figures["rps"] > 0 and 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"], figures


def test_ramp_smoke_passes_and_writes_every_report(served: str, tmp_path: Path) -> None:
    proc, summary = run_load_test(served, tmp_path, "--users", "5", "--duration", "10s")

    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    assert proc.stdout.startswith("# Load test `ramp`: PASS")
    assert_plausible(summary["whole_run"])
    assert_plausible(summary["hold_phase"])
    names = {e["name"] for e in summary["endpoints"]}
    assert "/price_sweep" in names and names <= ROUTES, names
    assert [s["passed"] for s in summary["slos"]] == [True, True, None]  # RSS is not measured with --host
    for name in ("ramp_stats.csv", "ramp_stats_history.csv", "ramp_failures.csv", "ramp.html", "ramp.png",
                 "ramp_run.json", "summary.md"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 0, name


def test_cached_smoke_is_answered_from_the_cache(served: str, tmp_path: Path) -> None:
    proc, summary = run_load_test(served, tmp_path, "--scenario", "cached", "--users", "2", "--duration", "5s")

    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    assert_plausible(summary["whole_run"])
    # The fixed set is sent once before the test starts, so every measured answer is a cache hit.
    assert [e["name"] for e in summary["endpoints"]] == ["/price_sweep (cached)"]


def test_knee_smoke_steps_up_and_reports_the_knee(served: str, tmp_path: Path) -> None:
    proc, summary = run_load_test(served, tmp_path, "--scenario", "knee", "--users", "2", "--step-seconds", "4")

    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    assert [step["users"] for step in summary["knee_steps"]] == [1, 2]
    # Without a latency limit no step breaks the criterion: the search ends at --users, below the real knee.
    assert summary["knee"]["users"] == 2 and summary["knee_found"] is False
    assert_plausible(summary["knee"])
    assert (tmp_path / "knee.png").stat().st_size > 0


def test_an_unreachable_host_is_a_broken_run_not_a_verdict(tmp_path: Path) -> None:
    proc, summary = run_load_test(f"http://127.0.0.1:{free_port()}", tmp_path, "--users", "2", "--duration", "5s")

    assert proc.returncode == 2, proc.stdout + proc.stderr[-5000:]
    assert summary["verdict"] == "FAIL" and summary["problems"], summary
