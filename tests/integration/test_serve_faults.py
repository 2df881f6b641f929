"""Fault injection on a real `bentoml serve`: a broken primary is answered for by a fallback, which says so.

Faults are injected into copies of the model store, never the shared one: corrupt files, a primary whose
predictions are NaN, one that raises, one slower than its time budget, and every model broken (503). Files
changed after training are refused at load (pricing.integrity), so a primary that loads but fails when called
is one trained broken: its fault is in place before it is saved.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from pricing.features import FEATURES
from pricing.models import model_class
from pricing.registry import ESTIMATOR_DIR, load_model, save_model, serving_order
from tests.support import bentoml_serve, scrape


def save_run(stored, X: np.ndarray, y: np.ndarray, models: list, spoil=None) -> tuple[str, list[str]]:
    """Fit and save ``models`` as one run; ``spoil(primary)`` breaks the fitted primary before it is saved."""
    run_id = f"faults-{uuid.uuid4().hex[:8]}"
    meta = {"run_id": run_id, "features": list(FEATURES), "trained_at": "2026-11-21T00:00:00+00:00"}
    fitted = [model.fit(X, y) for model in models]
    if spoil is not None:
        spoil(fitted[0])
    tags = [
        save_model(model, stored.pipeline, stored.context, rank=rank, metadata=meta)
        for rank, model in enumerate(fitted)
    ]
    return run_id, tags


@pytest.fixture(scope="module")
def training(smoke_run):
    stored = load_model(serving_order(smoke_run.record["run_id"])[0])
    frame = pd.read_parquet(smoke_run.data_dir / "features" / "train.parquet")
    return stored, frame[list(FEATURES)].to_numpy(np.float32), frame["level_target"].to_numpy()


def elasticnet_then_lightgbm(training, spoil=None) -> tuple[str, list[str]]:
    """ElasticNet primary, LightGBM fallback: the primary is what the tests break."""
    stored, X, y = training
    return save_run(stored, X, y, [model_class("elasticnet")(), model_class("lightgbm")(n_estimators=50)], spoil)


@pytest.fixture(scope="module")
def run(training) -> tuple[str, list[str]]:
    return elasticnet_then_lightgbm(training)


def store_copy(tmp_path: Path) -> Path:
    home = tmp_path / "bentoml"
    shutil.copytree(Path(os.environ["BENTOML_HOME"]) / "models", home / "models")
    return home


def estimator_dir(home: Path, tag: str) -> Path:
    name, version = tag.split(":")
    return home / "models" / name / version / ESTIMATOR_DIR


def sweep(url: str) -> httpx.Response:
    return httpx.post(f"{url}/price_sweep", json={"stockcode": "85123A", "bins": 30}, timeout=60)


def assert_fallback_answered(url: str, primary: str) -> dict:
    response = sweep(url)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fallback_used"] is True
    assert body["model"]["role"] == "fallback-1" and body["model"]["name"] == "pricing_lightgbm"
    assert f"{body['model']['name']}:{body['model']['version']}" != primary
    return body


def test_corrupt_primary_files_leave_the_fallback_serving(run, tmp_path) -> None:
    run_id, (primary, _) = run
    home = store_copy(tmp_path)
    for path in estimator_dir(home, primary).iterdir():
        path.write_bytes(b"\x00corrupted")
    with bentoml_serve({"BENTOML_HOME": str(home), "PRICING_RUN_ID": run_id}, tmp_path / "serve.log") as url:
        assert_fallback_answered(url, primary)
        model = httpx.get(f"{url}/model", timeout=5).json()
        assert [m["name"] for m in model["models"]] == ["pricing_lightgbm"]
        assert [entry["tag"] for entry in model["not_loaded"]] == [primary]
        assert httpx.get(f"{url}/ping", timeout=5).status_code == 200
    assert f"model {primary} failed to load" in (tmp_path / "serve.log").read_text()


def test_a_primary_predicting_nan_is_replaced_by_the_fallback(training, tmp_path) -> None:
    def nan_coefficients(model) -> None:
        model.arrays_["coef"][:] = np.nan  # what the served ElasticNet predicts from

    run_id, (primary, _) = elasticnet_then_lightgbm(training, nan_coefficients)
    with bentoml_serve({"PRICING_RUN_ID": run_id}, tmp_path / "serve.log") as url:
        assert_fallback_answered(url, primary)
        assert scrape(url, "pricing_fallbacks_total", model="pricing_elasticnet", reason="non_finite") >= 1
        # Named, the broken primary answers alone or not at all: no other model's curve in its place.
        named = httpx.post(
            f"{url}/price_sweep", json={"stockcode": "85123A", "bins": 30, "model": "pricing_elasticnet"}, timeout=60
        )
        assert named.status_code == 503, named.text
    # BentoML replaces 5xx messages with a generic one; the log names the model and why.
    assert f"no model could answer ({primary}: returned non-finite predictions)" in (tmp_path / "serve.log").read_text()


def test_a_primary_that_raises_is_replaced_by_the_fallback(training, tmp_path) -> None:
    def wrong_width(model) -> None:
        model.n_features_in_ = 3  # a model that does not match the feature pipeline: every predict raises

    run_id, (primary, _) = elasticnet_then_lightgbm(training, wrong_width)
    with bentoml_serve({"PRICING_RUN_ID": run_id}, tmp_path / "serve.log") as url:
        assert_fallback_answered(url, primary)
        assert scrape(url, "pricing_fallbacks_total", model="pricing_elasticnet", reason="error") >= 1


def test_a_primary_slower_than_its_budget_is_replaced_by_the_fallback(training, tmp_path) -> None:
    stored, X, y = training
    # Kernel SVR costs grow with support vectors: thousands of them over ten thousand demand questions take far
    # longer than the budget, while ElasticNet answers the same rows in milliseconds.
    slow = model_class("svr")(max_train_rows=6_000, C=30.0, epsilon=0.01, gamma=0.5)
    run_id, (primary, _) = save_run(stored, X, y, [slow, model_class("elasticnet")()])
    budget_s = 0.15
    rows = [
        {"StockCode": "85123A", "UnitPrice": 2.0 + i % 100 / 100, "InvoiceDate": "2011-11-01"} for i in range(10_000)
    ]
    started = time.perf_counter()
    load_model(primary).estimator.predict(np.repeat(X[:1], len(rows), axis=0))
    assert time.perf_counter() - started > 2 * budget_s, "the 'slow' primary is not slow enough to test the budget"
    env = {"PRICING_RUN_ID": run_id, "PRICING_MODEL_TIMEOUT_S": str(budget_s)}
    with bentoml_serve(env, tmp_path / "serve.log") as url:
        response = httpx.post(f"{url}/predict", json={"rows": rows}, timeout=120)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["fallback_used"] is True and body["model"]["name"] == "pricing_elasticnet"
        assert scrape(url, "pricing_fallbacks_total", model="pricing_svr", reason="timeout") >= 1


def test_every_model_broken_means_503_never_an_empty_answer(run, tmp_path) -> None:
    run_id, tags = run
    home = store_copy(tmp_path)
    for tag in tags:
        for path in estimator_dir(home, tag).iterdir():
            path.write_bytes(b"\x00corrupted")
    env = {"BENTOML_HOME": str(home), "PRICING_RUN_ID": run_id}
    with bentoml_serve(env, tmp_path / "serve.log", ready_path="/livez") as url:
        assert httpx.get(f"{url}/ping", timeout=5).status_code == 503
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 503
        assert sweep(url).status_code == 503
        legacy = httpx.get(f"{url}/v1/predict-price/85123A", timeout=30)
        assert legacy.status_code == 503 and "no model" in legacy.text
    # BentoML replaces the message of every 5xx from its APIs with a generic one; the reason is in the log.
    assert "no model could answer" in (tmp_path / "serve.log").read_text()
