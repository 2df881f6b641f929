"""Retraining next to a running service: a real `bentoml serve` keeps answering from the run it started with
while `train.py` trains into the same model store; a worse retrain is refused (exit 4) and not published;
`--force` publishes it and says so in the models' metadata.

The store is a copy of the smoke run's models without a published-runs record (as a store trained before
publishing existed): the first retrain records the run that served. The worse retrain is the smoke budget's
ElasticNet on 8,000 generated lines instead of 40,000: the same products and true optima (the generator draws
them before the orders), less data per product, so a worse price response. Its median pricing error on its
50 judged lists is 0.274 against the served LightGBM's 0.251 (+9%; the default allows +5%).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from pricing.local_server import serve
from pricing.registry import PUBLISHED_FILE
from tests.support import ROOT, SERVE_DEADLINE_S, bentoml_serve

WORSE = ["--budget", "smoke", "--families", "elasticnet", "--synthetic-lines", "8000"]
TRAIN_TIMEOUT_S = 300
RESPAWN_TIMEOUT_S = 90


def copy_run(tags: list[str], home: Path) -> None:
    for tag in tags:
        name, version = tag.split(":")
        shutil.copytree(Path(os.environ["BENTOML_HOME"]) / "models" / name / version, home / "models" / name / version)


def train(home: Path, work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "train.py", *WORSE, *extra,
        "--data-dir", str(work / "data"), "--reports-dir", str(work / "reports"),
    ]  # fmt: skip
    env = {**os.environ, "BENTOML_HOME": str(home)}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TRAIN_TIMEOUT_S)


def published(home: Path) -> list[dict]:
    return json.loads((home / "models" / PUBLISHED_FILE).read_text())["runs"]


def promotion_of(home: Path, tag: str) -> dict:
    name, version = tag.split(":")
    info = yaml.safe_load((home / "models" / name / version / "model.yaml").read_text())
    return info["metadata"]["promotion"]


def served_tags(url: str) -> set[str]:
    """The models the service declares: loaded, still loading in the background, or failed to load."""
    body = httpx.get(f"{url}/model", timeout=10).json()
    loaded = {f"{m['name']}:{m['version']}" for m in body["models"]}
    return loaded | set(body["loading"]) | {m["tag"] for m in body["not_loaded"]}


class Load(threading.Thread):
    """Uncached sweeps (a new grid each time), about 20 a second until stopped; counts answers by status and
    model. Paced, so the trainings get their share of the machine."""

    pause_s = 0.05

    def __init__(self, url: str, codes: list[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.codes = url, codes
        self.stop = threading.Event()
        self.statuses: Counter[str] = Counter()
        self.models: Counter[str] = Counter()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            for i in itertools.count():
                if self.stop.is_set():
                    return
                body = {"stockcode": self.codes[i % len(self.codes)], "bins": 10 + i % 90}
                try:
                    answer = client.post(f"{self.url}/price_sweep", json=body)
                except httpx.HTTPError as exc:
                    self.statuses[type(exc).__name__] += 1
                    continue
                self.statuses[str(answer.status_code)] += 1
                if answer.status_code == 200:
                    model = answer.json()["model"]
                    self.models[f"{model['name']}:{model['version']}"] += 1
                self.stop.wait(self.pause_s)


def worker_pids(server_pid: int) -> list[int]:
    """The live service workers under the server."""
    pids = []
    for process in psutil.Process(server_pid).children(recursive=True):
        try:
            if "_bentoml_impl.worker" in " ".join(process.cmdline()):
                pids.append(process.pid)
        except psutil.Error:  # gone, or a zombie not yet reaped
            continue
    return pids


def wait_for_respawn(url: str, server_pid: int, killed: int) -> None:
    deadline = time.monotonic() + RESPAWN_TIMEOUT_S
    while time.monotonic() < deadline:
        pids = worker_pids(server_pid)
        if pids and killed not in pids:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    pytest.fail(f"no worker answered /readyz within {RESPAWN_TIMEOUT_S} s of killing worker {killed}")


def test_retrains_next_to_a_running_service(smoke_run, tmp_path: Path) -> None:
    home, smoke = tmp_path / "bentoml", smoke_run.record
    copy_run(smoke["serving_order"], home)
    env = {"BENTOML_HOME": str(home), "PRICING_RUN_ID": ""}
    with serve(tmp_path / "serve.log", env, timeout_s=SERVE_DEADLINE_S) as server:
        url = server.url
        assert served_tags(url) == set(smoke["serving_order"])
        products = httpx.get(f"{url}/products", params={"limit": 40}, timeout=30).json()["products"]
        codes = [p["stockcode"] for p in products]
        load = Load(url, codes)
        load.start()
        try:
            refused = train(home, tmp_path / "refused")
            forced = train(home, tmp_path / "forced", "--force")
        finally:
            load.stop.set()
            load.join(timeout=60)

        # The worse retrain: refused with one line, stored but not published; the smoke run still serves.
        assert refused.returncode == 4, refused.stdout[-3000:] + refused.stderr[-3000:]
        last = refused.stdout.strip().splitlines()[-1]
        assert "promotion refused" in last and "median pricing error" in last and "--force" in last, last
        refused_record = json.loads((tmp_path / "refused" / "reports" / "metrics.json").read_text())
        (refused_tag,) = refused_record["serving_order"]
        assert promotion_of(home, refused_tag)["published"] is False
        assert "worse than the serving pricing_" in promotion_of(home, refused_tag)["reason"]

        # The same retrain with --force: published, and its metadata says what was overridden.
        assert forced.returncode == 0, forced.stdout[-3000:] + forced.stderr[-3000:]
        forced_record = json.loads((tmp_path / "forced" / "reports" / "metrics.json").read_text())
        runs = [(entry["run_id"], entry["forced"]) for entry in published(home)]
        assert runs == [(smoke["run_id"], False), (forced_record["run_id"], True)]
        assert refused_record["run_id"] not in {run for run, _ in runs}

        # The service answered every request meanwhile, always with the run it started with.
        assert set(load.statuses) == {"200"} and load.statuses["200"] >= 20, load.statuses
        assert set(load.models) <= set(smoke["serving_order"]), load.models
        assert served_tags(url) == set(smoke["serving_order"])

        # A worker that restarts after the retrain (killed here) serves the run the service started with.
        (worker,) = worker_pids(server.pid)
        psutil.Process(worker).kill()
        wait_for_respawn(url, server.pid, worker)
        assert served_tags(url) == set(smoke["serving_order"])

    # A service started now serves the forced run, and GET /model shows how it was published.
    with bentoml_serve(env, tmp_path / "serve-forced.log") as url:
        (model,) = httpx.get(f"{url}/model", timeout=10).json()["models"]
        assert f"{model['name']}:{model['version']}" == forced_record["serving_order"][0]
        promotion = model["promotion"]
        assert promotion["published"] is True and promotion["forced"] is True
        assert "worse than the serving" in promotion["reason"]
        assert promotion["comparison"]["serving_run"] == smoke["run_id"]
        assert promotion["comparison"]["relative_change"] > 0.05
