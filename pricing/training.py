"""One training run: data -> features -> tune and train each family -> evaluate -> model store -> reports.

``run_training`` is what ``train.py`` calls. Its paragraphs follow the stages, and every stage logs
what it did. The run writes:

- ``<data_dir>/synthetic/`` the generated transactions and ``ground_truth.csv`` (when no --data);
- ``<data_dir>/features/`` the feature store: train/val/test Parquet with features and target;
- the BentoML model store: one ``pricing_<family>`` model per family, ranked into a serving order;
- ``<reports_dir>/`` ``metrics.json``, ``metrics.md`` and PNG plots; optionally all of it on S3.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pricing.config import TrainConfig
from pricing.data import clean_transactions, read_transactions
from pricing.evaluate import EVAL_CONTEXT, most_sold_products, pricing_accuracy, regression_metrics
from pricing.features import FEATURES, FeaturePipeline, Split, add_history_features, split_by_time, to_target
from pricing.models import PriceModel, model_class
from pricing.registry import role_of, save_model
from pricing.report import (
    metrics_table,
    plot_predicted_vs_actual,
    plot_price_curves,
    plot_tuning_history,
    write_run_record,
)
from pricing.sweep import ContextStore, Sweeper, SweepRequest, SweepResult
from pricing.synthetic import add_observed_ranges, generate_transactions
from pricing.tuning import TuningData, TuningResult, final_params, tune

log = logging.getLogger(__name__)

TRUTH_FILE = "ground_truth.csv"
CURVE_PRODUCTS = 4


@dataclass(frozen=True)
class Dataset:
    """Cleaned transactions and, for synthetic data, the per-product ground truth."""

    clean: pd.DataFrame
    source: str
    cleaning: dict[str, Any]
    truth: pd.DataFrame | None


@dataclass
class FamilyRun:
    """What one family's tuning and training produced."""

    family: str
    model: PriceModel
    record: dict[str, Any]
    tuning: TuningResult
    test_pred: np.ndarray


def run_training(config: TrainConfig) -> dict[str, Any]:
    """Run the whole pipeline for ``config``; return the run record also written to metrics.json."""
    started = time.perf_counter()
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    log.info("training run %s, budget %s, families %s", run_id, config.budget.name, ", ".join(config.families))

    # Data: load or generate, then clean.
    dataset = load_dataset(config)
    data_hash = hash_frame(dataset.clean)

    # Features: past-only history, time split, pipeline fitted on training rows only.
    enriched = add_history_features(dataset.clean)
    split = split_by_time(enriched)
    log.info("time split:\n%s", split.describe())
    pipeline = FeaturePipeline().fit(split.train)
    X = {name: pipeline.transform(part) for name, part in _parts(split)}
    y = {name: to_target(part["Quantity"]) for name, part in _parts(split)}
    write_feature_store(config.data_dir / "features", split, X, y)
    context = ContextStore.build(enriched, pipeline)
    products = most_sold_products(context.catalogue)
    truth = dataset.truth
    if truth is not None:
        truth = add_observed_ranges(truth, dataset.clean)
        _log_truth(truth, products)

    # Tune, train and evaluate each family.
    tuning = TuningData(X["train"], y["train"], X["val"], y["val"])
    runs = [train_family(f, config, tuning, X, y, pipeline, context, truth, products) for f in config.families]

    # Serving order: best validation score first; then save every family into the model store.
    runs.sort(key=lambda r: r.record["val"]["mse"])
    shared = {
        "run_id": run_id,
        "data_hash": data_hash,
        "data_source": dataset.source,
        "budget": config.budget.name,
        "seed": config.seed,
        "features": list(FEATURES),
        "training_rows": len(split.train),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for rank, run in enumerate(runs):
        run.record["rank"] = rank
        run.record["role"] = role_of(rank)
        run.record["tag"] = save_model(run.model, pipeline, context, rank=rank, metadata={**shared, **_meta(run)})
        log.info("saved %-10s as %s (%s)", run.family, run.record["tag"], run.record["role"])

    # Reports.
    record = {
        **{k: shared[k] for k in ("run_id", "budget", "seed", "trained_at")},
        "data": {
            "source": dataset.source,
            "hash": data_hash,
            "rows_clean": len(dataset.clean),
            "cleaning": dataset.cleaning,
            "split": {n: len(p) for n, p in _parts(split)},
        },
        "serving_order": [r.record["tag"] for r in runs],
        "models": [r.record for r in runs],
        "seconds": time.perf_counter() - started,
    }
    write_reports(config.reports_dir, record, runs, y["test"], pipeline, context, truth, products)
    if config.s3_bucket:
        upload_outputs(config, runs)
    log.info(
        "metrics (test split; price error on the %d best-selling products):\n%s",
        len(products),
        metrics_table(record["models"]),
    )
    log.info("done in %.0f s; serving order: %s", record["seconds"], " > ".join(record["serving_order"]))
    return record


# ---------------------------------------------------------------------------------------------------
# Data


def load_dataset(config: TrainConfig) -> Dataset:
    """Read ``config.data_path`` (with a ground_truth.csv beside it, if any) or generate synthetic data."""
    if config.data_path is not None:
        raw = read_transactions(config.data_path)
        truth_path = config.data_path.parent / TRUTH_FILE
        truth = pd.read_csv(truth_path, dtype={"StockCode": str}) if truth_path.exists() else None
        source = str(config.data_path)
    else:
        n, k = config.n_synthetic_lines, config.n_synthetic_products
        log.info(
            "no --data given: generating %s synthetic lines over %s products (seed %d)", f"{n:,}", f"{k:,}", config.seed
        )
        synthetic = generate_transactions(n, k, seed=config.seed)
        out = config.data_dir / "synthetic"
        out.mkdir(parents=True, exist_ok=True)
        synthetic.transactions.to_parquet(out / "transactions.parquet", index=False)
        synthetic.truth.to_csv(out / TRUTH_FILE, index=False)
        raw, truth, source = synthetic.transactions, synthetic.truth, f"synthetic (seed {config.seed}) in {out}"
    clean, report = clean_transactions(raw)
    log.info("%s", report.format())
    return Dataset(clean=clean, source=source, cleaning=report.to_dict(), truth=truth)


def hash_frame(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's contents (row order included), to tie each model to its training data."""
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def write_feature_store(directory: Path, split: Split, X: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> None:
    """Write each split's keys, features and target as Parquet."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, part in _parts(split):
        frame = pd.DataFrame(X[name], columns=list(FEATURES))
        frame.insert(0, "InvoiceNo", part["InvoiceNo"].to_numpy())
        frame.insert(1, "StockCode", part["StockCode"].to_numpy())
        frame.insert(2, "InvoiceDate", part["InvoiceDate"].to_numpy())
        frame["log_quantity"] = y[name]
        frame.to_parquet(directory / f"{name}.parquet", index=False, compression="zstd")
    log.info("feature store written to %s", directory)


def _parts(split: Split) -> list[tuple[str, pd.DataFrame]]:
    return [("train", split.train), ("val", split.val), ("test", split.test)]


def _log_truth(truth: pd.DataFrame, products: list[str]) -> None:
    top = truth.set_index("StockCode").loc[products]
    log.info(
        "ground truth: optimum inside the observed price range for %.0f%% of products (%.0f%% of the %d best-selling)",
        100 * truth["optimum_in_range"].mean(),
        100 * top["optimum_in_range"].mean(),
        len(products),
    )


# ---------------------------------------------------------------------------------------------------
# One family


def train_family(
    family: str,
    config: TrainConfig,
    tuning: TuningData,
    X: dict[str, np.ndarray],
    y: dict[str, np.ndarray],
    pipeline: FeaturePipeline,
    context: ContextStore,
    truth: pd.DataFrame | None,
    products: list[str],
) -> FamilyRun:
    """Tune, fit on the training split (validation for early stopping) and evaluate one family."""
    log.info("%s: tuning", family)
    result = tune(
        family,
        tuning,
        config.budget,
        config.seed,
        storage=config.optuna_storage,
        study_name=f"pricing-{family}-{config.budget.name}" if config.optuna_storage else None,
    )
    params = final_params(family, result.params, config.budget, config.seed)
    log.info("%s: best %s %.4f; final fit with %s", family, result.method, result.best_score, params)

    start = time.perf_counter()
    model = model_class(family)(**params)
    if family == "torch":
        model.fit_with_hook(X["train"], y["train"], X["val"], y["val"], on_epoch=_log_epoch)
    else:
        model.fit(X["train"], y["train"], X["val"], y["val"])
    fit_seconds = time.perf_counter() - start
    log.info("%s: final fit on %s rows in %.0f s%s", family, f"{len(y['train']):,}", fit_seconds, _fit_summary(model))
    val_pred, test_pred = model.predict(X["val"]), model.predict(X["test"])
    record: dict[str, Any] = {
        "family": family,
        "hyperparameters": params,
        "tuning": {
            "method": result.method,
            "completed": len(result.history),
            "pruned": result.pruned,
            "best_score": result.best_score,
        },
        "val": regression_metrics(y["val"], val_pred),
        "test": regression_metrics(y["test"], test_pred),
        "seconds": {"tuning": result.seconds, "fit": fit_seconds, "total": result.seconds + fit_seconds},
    }
    if truth is not None:
        accuracy = pricing_accuracy(Sweeper(pipeline, context, model.predict, model.predict_grid), truth, products)
        record["pricing"] = accuracy.summary()
    log.info(
        "%s: done in %.0f s; test MSE %.4f%s",
        family,
        record["seconds"]["total"],
        record["test"]["mse"],
        f", price error median {record['pricing']['median_rel_error']:.1%}" if truth is not None else "",
    )
    return FamilyRun(family, model, record, result, test_pred)


def _log_epoch(epoch: int, val_mse: float) -> None:
    log.info("  torch      epoch %2d  val MSE %.4f", epoch + 1, val_mse)


def _fit_summary(model: PriceModel) -> str:
    if hasattr(model, "epochs_run_"):
        return f" ({model.epochs_run_} epochs, early stopping)"
    if hasattr(model, "n_trees_"):
        return f" ({model.n_trees_} trees kept by early stopping)"
    return ""


def _meta(run: FamilyRun) -> dict[str, Any]:
    record = run.record
    return {
        "metrics": {k: record[k] for k in ("val", "test", "pricing") if k in record},
        "hyperparameters": record["hyperparameters"],
        "tuning": record["tuning"],
        "seconds": record["seconds"],
    }


# ---------------------------------------------------------------------------------------------------
# Reports and upload


def write_reports(
    directory: Path,
    record: dict[str, Any],
    runs: list[FamilyRun],
    y_test: np.ndarray,
    pipeline: FeaturePipeline,
    context: ContextStore,
    truth: pd.DataFrame | None,
    products: list[str],
) -> None:
    """metrics.json, metrics.md and the plots."""
    write_run_record(directory, record)
    plot_predicted_vs_actual(directory / "predicted_vs_actual.png", y_test, {r.family: r.test_pred for r in runs})
    sweepers = {r.family: Sweeper(pipeline, context, r.model.predict, r.model.predict_grid) for r in runs}
    curves: dict[str, dict[str, SweepResult]] = {
        family: {code: sweeper.sweep(SweepRequest(code, context=EVAL_CONTEXT)) for code in products[:CURVE_PRODUCTS]}
        for family, sweeper in sweepers.items()
    }
    plot_price_curves(directory / "price_curves.png", curves, truth)
    plot_tuning_history(directory / "tuning_history.png", [r.tuning for r in runs])
    log.info("reports written to %s", directory)


def upload_outputs(config: TrainConfig, runs: list[FamilyRun]) -> None:
    """Upload the feature store, reports and stored model directories to S3."""
    import bentoml

    from pricing.cloud.s3 import make_s3_client, upload_tree

    client, bucket, prefix = make_s3_client(), config.s3_bucket, config.s3_prefix.strip("/")
    trees = [(config.data_dir / "features", f"{prefix}/features"), (config.reports_dir, f"{prefix}/reports")]
    for run in runs:
        model = bentoml.models.get(run.record["tag"])
        trees.append((Path(model.path), f"{prefix}/models/{model.tag.name}/{model.tag.version}"))
    keys = [key for local, key_prefix in trees for key in upload_tree(local, bucket, key_prefix, client=client)]
    log.info("uploaded %d objects to s3://%s/%s/", len(keys), bucket, prefix)
