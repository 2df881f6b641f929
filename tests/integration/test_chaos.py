"""Faults under load, the short version of ``make chaos``: loadtests/chaos.py on a short ramp, as a subprocess.

A real ``bentoml serve`` of the smoke run with a real ``redis-server``, Locust ramping users (a subprocess of
chaos.py: importing Locust here would monkey-patch the standard library under pytest) while Redis is killed
and restarted and then the primary model fails for a few seconds (``pricing.faults``). No request may fail,
requests in flight when each fault began included; the fault must visibly reach the service (cache errors,
fallback answers and their counter); the service must be whole again afterwards. Latency is judged loosely
(shared CI machines): the harness's own latency-recovery check gets a generous factor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

RUN_TIMEOUT_S = 300
SHORT = ("--faults", "redis,model", "--users", "6", "--spawn-rate", "6", "--workers", "1", "--baseline", "4s",
         "--fault-seconds", "5s", "--recover-seconds", "7s", "--max-recovery", "6s",
         "--latency-factor", "4")  # fmt: skip


def test_redis_killed_and_primary_failing_under_load_lose_no_request(smoke_run, tmp_path: Path) -> None:
    env = {**os.environ, "PRICING_RUN_ID": smoke_run.record["run_id"]}
    command = [sys.executable, "loadtests/chaos.py", *SHORT, "--reports-dir", str(tmp_path)]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    output = proc.stdout + proc.stderr[-6000:]

    assert proc.returncode == 0, output
    report = json.loads((tmp_path / "chaos.json").read_text())
    assert report["verdict"] == "PASS" and report["whole_run"]["failed"] == 0, output
    redis_fault, model_fault = report["faults"]
    assert redis_fault["fault"] == "redis" and model_fault["fault"] == "model"
    for fault in (redis_fault, model_fault):
        assert fault["requests"] > 0 and fault["failed"] == 0, fault
        assert fault["recovery"]["service_s"] is not None and fault["recovery"]["first_success_s"] is not None
    # Each fault reached the service: Redis errors counted, fallbacks answered and counted, then the primary again.
    assert any(k.startswith("pricing_cache_errors_total") for k in redis_fault["counters_moved"]), redis_fault
    assert model_fault["fallback_answers_in_window"] > 0
    assert any('reason="error"' in k for k in model_fault["counters_moved"] if k.startswith("pricing_fallbacks"))
    for name in ("chaos.png", "requests.csv", "chaos_locust.log", "serve.log"):
        assert (tmp_path / name).stat().st_size > 0, name
