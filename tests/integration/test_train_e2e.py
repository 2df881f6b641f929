"""End to end: the real `train.py --budget smoke` into a temporary model store, then everything it promised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bentoml
import boto3
import numpy as np
import pandas as pd

from pricing.config import FAMILIES
from pricing.features import FEATURES
from pricing.registry import load_model, model_name, serving_order
from pricing.sweep import SweepRequest
from pricing.synthetic import generate_transactions

ROOT = Path(__file__).resolve().parents[2]


def test_every_family_is_in_the_store_with_metrics_and_provenance(smoke_run) -> None:
    record = smoke_run.record
    models = serving_order(record["run_id"])
    assert sorted(m.tag.name for m in models) == sorted(model_name(f) for f in FAMILIES)
    for rank, model in enumerate(models):
        meta = model.info.metadata
        assert meta["rank"] == rank and model.info.labels["role"] == ("primary" if rank == 0 else f"fallback-{rank}")
        assert meta["data_hash"] == record["data"]["hash"] and len(meta["data_hash"]) == 64
        assert meta["features"] == list(FEATURES)
        assert meta["training_cells"] == record["data"]["cells"] and meta["period"] == "W"
        assert {"mse", "rmse", "mae", "r2", "rmsle", "mae_units"} <= set(meta["metrics"]["test"])
        assert meta["metrics"]["test"]["r2"] > 0
        assert 0 <= meta["metrics"]["pricing"]["median_rel_error"] < 1
        assert meta["metrics"]["heldout"]["lists"] > 0
        assert meta["ranking"]["criterion"] == "pricing_error" and meta["ranking"]["order"][rank] == meta["family"]
        assert meta["hyperparameters"]["random_state"] == 42
        assert meta["library_versions"]["bentoml"] == bentoml.__version__


def test_serving_order_is_the_pricing_ranking(smoke_run) -> None:
    record = smoke_run.record
    scores = [m["ranking_score"] for m in record["models"]]
    assert scores == sorted(scores)
    for model, score in zip(record["models"], scores, strict=True):
        assert score[0] == round(model["pricing"]["median_rel_error"], 4)
    assert [str(m.tag) for m in serving_order(record["run_id"])] == record["serving_order"]
    baseline = record["baseline"]
    assert baseline["heldout"]["lists"] > 0 and baseline["pricing"]["lists"] > 0


def test_every_stored_model_loads_back_and_sweeps(smoke_run) -> None:
    test_rows = pd.read_parquet(smoke_run.data_dir / "features" / "train.parquet")
    X = test_rows[list(FEATURES)].to_numpy(np.float32)
    for model in serving_order(smoke_run.record["run_id"]):
        stored = load_model(str(model.tag))
        predicted = stored.estimator.predict(X)
        assert np.isfinite(predicted).all()
        entry = next(m for m in smoke_run.record["models"] if m["tag"] == str(model.tag))
        assert entry["family"] == stored.family
        result = stored.sweeper().sweep(SweepRequest("85123A", bins=10, context=20))
        assert result.prices[0] <= result.optimal_price <= result.prices[-1]
        assert result.interval[0] <= result.optimal_price <= result.interval[1]


def test_bentoml_cli_lists_the_models(smoke_run) -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "bentoml"), "models", "list", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    ).stdout
    listed = {entry["tag"] for entry in json.loads(out)}
    assert set(smoke_run.record["serving_order"]) <= listed


def test_reports_and_feature_store_are_written(smoke_run) -> None:
    reports = ("metrics.json", "metrics.md", "pricing.csv", "edges.csv")
    for name in (*reports, "predicted_vs_actual.png", "price_curves.png", "tuning_history.png"):
        assert (smoke_run.reports_dir / name).stat().st_size > 0, name
    assert (smoke_run.reports_dir / "price_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (smoke_run.reports_dir / "metrics.md").read_text()
    for family in (*FAMILIES, "baseline"):
        assert f"| {family} |" in markdown
    for part in ("train", "val", "test"):
        frame = pd.read_parquet(smoke_run.data_dir / "features" / f"{part}.parquet")
        assert [*FEATURES, "level_target"] == list(frame.columns[5:])
    truth = pd.read_csv(smoke_run.data_dir / "synthetic" / "ground_truth.csv", dtype={"StockCode": str})
    assert {"StockCode", "optimal_price", "demand_form", "price_moves"} <= set(truth.columns)


def test_console_output_reports_cleaning_progress_and_the_metrics_table(smoke_run) -> None:
    out = smoke_run.output
    assert "cancellation" in out and "duplicate" in out
    assert "trial  1/" in out and "call   1/" in out
    assert "price err median" in out and "held-out" in out and "price responses:" in out
    assert "serving order (pricing_error):" in out


def test_artifacts_are_uploaded_to_s3(smoke_run) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=smoke_run.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=smoke_run.bucket)["Contents"]}
    assert {"smoke/features/train.parquet", "smoke/reports/metrics.json"} <= keys
    for tag in smoke_run.record["serving_order"]:
        name, version = tag.split(":")
        assert f"smoke/models/{name}/{version}/estimator/params.json" in keys
        assert f"smoke/models/{name}/{version}/pipeline.joblib" in keys


def test_train_on_a_user_file_with_its_ground_truth(tmp_path: Path) -> None:
    data = generate_transactions(12_000, 60, seed=5)
    data.transactions.to_csv(tmp_path / "retail.csv", index=False)
    data.truth.to_csv(tmp_path / "ground_truth.csv", index=False)
    proc = subprocess.run(
        [sys.executable, "train.py", "--data", str(tmp_path / "retail.csv"), "--budget", "smoke",
         "--families", "elasticnet", "--data-dir", str(tmp_path / "d"), "--reports-dir", str(tmp_path / "r")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml")},  # its own store: nothing to compare with
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert record["promotion"]["published"] is True and "nothing to compare with" in record["promotion"]["note"]
    assert record["data"]["source"] == str(tmp_path / "retail.csv")
    assert [m["family"] for m in record["models"]] == ["elasticnet"]
    assert "pricing" in record["models"][0]


def test_a_bad_file_fails_with_the_column_named(tmp_path: Path) -> None:
    frame = generate_transactions(2_000, 20, seed=5).transactions.drop(columns=["UnitPrice"])
    frame.to_csv(tmp_path / "bad.csv", index=False)
    proc = subprocess.run(
        [sys.executable, "train.py", "--data", str(tmp_path / "bad.csv"), "--budget", "smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "UnitPrice" in proc.stdout + proc.stderr
