"""One training run: data -> demand cells -> features -> tune, train and evaluate each family -> gate -> model
store -> reports.

``run_training`` is what ``train.py`` calls. Its paragraphs follow the stages, and every stage logs what it
did. Two fits of everything:

- **evaluation**: the feature pipeline (list statistics, price responses) is fitted on the training periods;
  each family is tuned on training and validation, fitted on training (validation for early stopping) and
  scored on the test periods, and on the held-out price changes (``pricing.evaluate``);
- **serving**: the pipeline and each family are refitted on every period with the same hyperparameters (as
  many trees or epochs as early stopping chose), so the served models know the latest prices and products.

A **gate** refuses to store a family whose test metrics are not finite, whose R² is not positive, or whose
served model fails the behaviour checks (finite predictions, demand falling with price); each refusal is
one line of the run's output. The **serving order** ranks the families that pass: by pricing error against
the ground truth when there is one (synthetic data), else by the held-out price-response error. The
statistical baseline (``pricing.evaluate.ListBaseline``) is reported next to every family.

**Promotion** (``pricing.promotion``) then decides whether the run may replace the one that serves: its
primary against the serving primary on this run's held-out data, and the optimum inside the grid. Every
model of the run is saved either way, with the decision in ``metadata["promotion"]``; only a promoted run
(or one published with ``force``) is published, after all its models are saved, and a refused run ends
with ``PromotionRefusedError`` once its reports are written.

The run writes:

- ``<data_dir>/synthetic/`` the generated transactions and ``ground_truth.csv`` (when no --data);
- ``<data_dir>/features/`` the feature store: train/val/test Parquet of demand cells with features and target;
- the BentoML model store: one ``pricing_<family>`` model per family that passed the gate, in serving order,
  and the run's entry in the store's published-runs record when it is promoted;
- ``<reports_dir>/`` ``metrics.json``, ``metrics.md``, ``pricing.csv``, ``edges.csv`` and PNG plots;
  optionally all of it on S3.
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
from pricing.data import CleaningReport, DataError, clean_transactions, read_transactions
from pricing.demand import DemandData, build_demand
from pricing.evaluate import (
    EVAL_CONTEXT,
    HeldoutCheck,
    ListBaseline,
    best_selling_lists,
    edge_optima,
    heldout_events,
    heldout_response_error,
    metrics_are_sane,
    pricing_accuracy,
    regression_metrics,
)
from pricing.features import FEATURES, KEYS, FeaturePipeline, Split, split_by_time, to_target, units_at_price
from pricing.models import PriceModel, model_class
from pricing.promotion import Contender, HeldOutData, PromotionRefusedError, decide
from pricing.registry import ensure_published_record, publish_run, role_of, save_model
from pricing.report import (
    metrics_table,
    plot_predicted_vs_actual,
    plot_price_curves,
    plot_tuning_history,
    write_run_record,
)
from pricing.response import MIN_PRIOR_ORDERS
from pricing.sweep import ContextStore, Sweeper, SweepRequest, SweepResult
from pricing.synthetic import generate_transactions
from pricing.truth import read_ground_truth
from pricing.tuning import TuningData, TuningResult, final_params, refit_params, tune

log = logging.getLogger(__name__)

TRUTH_FILE = "ground_truth.csv"
CURVE_PRODUCTS = 4
BEHAVIOUR_LISTS = 20  # best sellers whose served demand must fall between 0.8x and 1.25x their usual price
MIN_PERIODS = 8  # of demand: 6 to train on, 1 to validate and 1 to test (the split holds out 15% and 15%)
PERIOD_UNITS = {"W": "week", "D": "day"}


class NoModelPassedError(RuntimeError):
    """Every family was refused by the gate: nothing was stored."""


@dataclass(frozen=True)
class Dataset:
    """Cleaned transactions and, for synthetic data, the per-product ground truth."""

    clean: pd.DataFrame
    source: str
    cleaning: dict[str, Any]
    truth: pd.DataFrame | None


@dataclass(frozen=True)
class Stage:
    """A fitted pipeline and the sweep context it gives."""

    pipeline: FeaturePipeline
    context: ContextStore


@dataclass(frozen=True)
class Matrices:
    """Per split: the model matrix, the level target, log D at the posted prices and the actual target."""

    X: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    log_d: dict[str, np.ndarray]
    actual: dict[str, np.ndarray]

    @classmethod
    def of(cls, split: Split, pipeline: FeaturePipeline) -> Matrices:
        """The matrices of every part of ``split`` under ``pipeline``."""
        parts = split.parts()
        return cls(
            X={name: pipeline.transform(part) for name, part in parts},
            y={name: pipeline.level_target(part) for name, part in parts},
            log_d={name: pipeline.log_response(part) for name, part in parts},
            actual={name: to_target(part["units"]) for name, part in parts},
        )


@dataclass
class FamilyRun:
    """What one family's tuning and training produced."""

    family: str
    model: PriceModel  # the served model, fitted on every period
    record: dict[str, Any]
    tuning: TuningResult
    test_pred: np.ndarray


def run_training(config: TrainConfig) -> dict[str, Any]:
    """Run the whole pipeline for ``config``; return the run record also written to metrics.json."""
    started = time.perf_counter()
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    log.info("training run %s, budget %s, families %s", run_id, config.budget.name, ", ".join(config.families))

    # Data: load or generate, clean, and turn into demand cells (units per list and period at a posted price).
    dataset = load_dataset(config)
    data_hash = hash_frame(dataset.clean)
    demand = build_demand(dataset.clean, period=config.period)
    log.info("%s", demand.describe())
    check_enough_demand(demand)  # before anything is written

    # Features: time split; the evaluation pipeline sees training periods only, the serving one all periods.
    # The families learn each cell's level (its units at the usual price); the price enters through D.
    split = split_by_time(demand.cells)
    log.info("time split:\n%s", split.describe())
    evaluation = FeaturePipeline(period=demand.period).fit(split.train)
    serving = _stage(demand.cells, demand)
    matrices = Matrices.of(split, evaluation)
    X_all, y_all = serving.pipeline.transform(demand.cells), serving.pipeline.level_target(demand.cells)
    write_feature_store(config.data_dir / "features", split, matrices)
    _log_responses(serving.pipeline)

    # The statistical baseline, the held-out price changes and the lists pricing is judged on. The baseline's
    # own forecasts are not scored: without pooling, a list whose price barely moved gets a slope in the
    # hundreds, and its forecasts at new prices overflow any sensible metric.
    events = heldout_events(pd.concat([split.val, split.test], ignore_index=True))
    baseline_eval = ListBaseline().fit(split.train, evaluation.lists_["usual_price"])
    baseline = ListBaseline().fit(demand.cells, serving.pipeline.lists_["usual_price"])
    truth, judged = dataset.truth, best_selling_lists(serving.context.catalogue, moved=True)
    baseline_record: dict[str, Any] = {
        "family": "baseline",
        "heldout": heldout_response_error(events, baseline_eval.predict).summary(),
    }
    log.info(
        "held-out price changes: %d lists changed their posted price in the validation and test periods",
        events.groupby(["StockCode", "segment"]).ngroups,
    )

    # Tune, train, evaluate and gate each family.
    runs, refused = [], []
    for family in config.families:
        run = train_family(family, config, matrices, X_all, y_all, evaluation, events)
        if truth is not None:
            accuracy = pricing_accuracy(_sweeper(serving, run.model), baseline, truth, judged)
            run.record["pricing"] = accuracy.summary()
            run.record["pricing_table"] = accuracy.per_list
        edges = edge_optima(_sweeper(serving, run.model), best_selling_lists(serving.context.catalogue))
        run.record["edges"] = _edge_summary(edges)
        reason = gate(run, serving)
        if reason is not None:
            log.error("GATE: %s refused and not stored: %s", family, reason)
            refused.append({"family": family, "reason": reason})
            continue
        runs.append(run)
    if not runs:
        reasons = "; ".join(f"{r['family']}: {r['reason']}" for r in refused)
        raise NoModelPassedError(f"every family was refused by the gate: {reasons}")
    if truth is not None:
        baseline_record["pricing"] = _baseline_pricing(runs[0].record["pricing_table"])

    # Serving order by pricing quality; promotion against the run that serves now; then save every family that
    # passed into the model store, and publish the run if it was promoted.
    criterion = "pricing_error" if truth is not None else "heldout_price_response"
    runs.sort(key=lambda r: _ranking_score(r.record, criterion))
    decision = decide(
        Contender(runs[0].family, runs[0].model, serving.pipeline, serving.context),
        runs[0].record,
        HeldOutData(criterion, events=events, truth=truth, codes=judged, baseline=baseline),
        max_regression=config.max_regression,
        force=config.force,
    )
    shared = {
        "run_id": run_id,
        "data_hash": data_hash,
        "data_source": dataset.source,
        "budget": config.budget.name,
        "seed": config.seed,
        "period": config.period,
        "features": list(FEATURES),
        "training_cells": len(demand.cells),
        "ranking": {"criterion": criterion, "order": [r.family for r in runs]},
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "promotion": decision.metadata(),
    }
    ensure_published_record()  # from here on, only a published run serves from this store
    for rank, run in enumerate(runs):
        run.record["rank"] = rank
        run.record["role"] = role_of(rank)
        run.record["ranking_score"] = list(_ranking_score(run.record, criterion))
        metadata = {**shared, **_meta(run)}
        run.record["tag"] = save_model(run.model, serving.pipeline, serving.context, rank=rank, metadata=metadata)
        log.info("saved %-10s as %s (%s)", run.family, run.record["tag"], run.record["role"])
    if decision.publish:
        publish_run(run_id, forced=decision.forced)
        log.info("published run %s: it serves from this model store by default", run_id)

    # Reports.
    record = {
        **{k: shared[k] for k in ("run_id", "budget", "seed", "period", "trained_at", "ranking", "promotion")},
        "data": {
            "source": dataset.source,
            "hash": data_hash,
            "rows_clean": len(dataset.clean),
            "cleaning": dataset.cleaning,
            "cells": len(demand.cells),
            "split": {n: len(p) for n, p in split.parts()},
            "heldout_lists": int(events.groupby(["StockCode", "segment"]).ngroups),
        },
        "serving_order": [r.record["tag"] for r in runs],
        "models": [_public(r.record) for r in runs],
        "baseline": baseline_record,
        "refused": refused,
        "seconds": time.perf_counter() - started,
    }
    write_reports(config.reports_dir, record, runs, matrices.actual["test"], serving, truth)
    if config.s3_bucket and decision.publish:
        upload_outputs(config, runs)
    elif config.s3_bucket:
        log.warning("nothing uploaded to s3://%s: the run was not published", config.s3_bucket)
    log.info(
        "metrics (test periods; pricing on the %d best-selling lists whose price moved):\n%s",
        len(judged),
        metrics_table([*record["models"], baseline_record]),
    )
    log.info(
        "done in %.0f s; serving order (%s): %s; %s",
        record["seconds"],
        criterion,
        " > ".join(record["serving_order"]),
        "published" if decision.publish else "stored, NOT published",
    )
    if not decision.publish:
        raise PromotionRefusedError(decision.message)
    return record


def _stage(cells: pd.DataFrame, demand: DemandData) -> Stage:
    pipeline = FeaturePipeline(period=demand.period).fit(cells)
    return Stage(pipeline, ContextStore.build(demand.cells, demand.lists, pipeline))


def _sweeper(stage: Stage, model: PriceModel) -> Sweeper:
    return Sweeper(stage.pipeline, stage.context, model.predict)


def _predicted_target(model: PriceModel, X: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """A model's prediction of log(1 + units) of cells: its level times D at the cells' posted prices."""
    return to_target(units_at_price(model.predict(X), log_d))


def _log_responses(pipeline: FeaturePipeline) -> None:
    response = pipeline.response_
    by_segment = response.lists_.groupby(level="segment")["identifiable"].agg(["sum", "size"])
    log.info(
        "price responses: %s; pooled slope %s; curve shape %s",
        ", ".join(f"{s} {int(r['sum'])} of {int(r['size'])} identifiable" for s, r in by_segment.iterrows()),
        ", ".join(f"{s} {m:.2f} (sd {np.sqrt(v):.2f})" for s, (m, v) in response.prior_.items()),
        ", ".join(f"{s} {k:.2f}" for s, k in response.shape_.items()),
    )


def _edge_summary(edges: pd.DataFrame) -> dict[str, int]:
    at_edge = edges["at_grid_edge"].notna()
    return {
        "lists": len(edges),
        "at_edge": int(at_edge.sum()),
        "at_edge_not_flagged": int((at_edge & edges["identifiable"]).sum()),
        "identifiable": int(edges["identifiable"].sum()),
    }


def _baseline_pricing(table: pd.DataFrame) -> dict[str, float | int]:
    errors = table["baseline_rel_error"]
    return {
        "median_rel_error": float(errors.median()),
        "p90_rel_error": float(errors.quantile(0.9)),
        "lists": int(errors.notna().sum()),
    }


def _ranking_score(record: dict[str, Any], criterion: str) -> tuple[float, ...]:
    """Sort key: the criterion, then (for ties: families share each list's response, so their optima often
    coincide) the held-out price-response error, then test MSE."""
    heldout = record["heldout"]["median_abs_error"]
    heldout = float(heldout) if np.isfinite(heldout) else float("inf")
    if criterion == "pricing_error":
        return (round(float(record["pricing"]["median_rel_error"]), 4), heldout, float(record["test"]["mse"]))
    return (heldout, float(record["test"]["mse"]))


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "pricing_table"}


# ---------------------------------------------------------------------------------------------------
# Data


def load_dataset(config: TrainConfig) -> Dataset:
    """Read ``config.data_path`` (with a ground_truth.csv beside it, if any, checked by ``pricing.truth``) or
    generate synthetic data."""
    if config.data_path is not None:
        raw = read_transactions(config.data_path, date_format=config.date_format)
        truth_path = config.data_path.parent / TRUTH_FILE
        truth, source = None, str(config.data_path)
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
        truth_path = None
    clean, report = clean_transactions(raw)
    log.info("%s", report.format())
    check_enough_sales(clean, report)
    if truth_path is not None and truth_path.exists():
        truth = read_ground_truth(truth_path, clean["StockCode"].unique())
        log.info("ground truth: %s (%s products)", truth_path, f"{len(truth):,}")
    return Dataset(clean=clean, source=source, cleaning=report.to_dict(), truth=truth)


def check_enough_sales(clean: pd.DataFrame, report: CleaningReport) -> None:
    """Raise DataError when cleaning left no sales, or none by a registered customer (the wholesale price lists
    are read from registered customers' orders, ``pricing.demand``)."""
    if clean.empty:
        dropped = ", ".join(f"{rule} {count:,}" for rule, count in report.dropped.items() if count)
        raise DataError(f"no sales left to train on: cleaning dropped all {report.rows_in:,} rows ({dropped})")
    if clean["CustomerID"].isna().all():
        raise DataError(
            f"no registered customers to train on: none of the {len(clean):,} sales has a CustomerID, and the "
            "wholesale price lists are read from registered customers' orders"
        )


def check_enough_demand(demand: DemandData) -> None:
    """Raise DataError when the demand table is too small to train on: fewer than ``MIN_PERIODS`` periods, no
    wholesale list whose posted price ever changed (nothing to learn the price response from or judge it on), or
    no list with enough orders to estimate the pooled price response from, in the training periods or over all
    periods (``pricing.response`` would refuse the cells later)."""
    periods = demand.cells["period"].drop_duplicates().sort_values()
    unit = PERIOD_UNITS.get(demand.period, "period")
    name = f"{unit}s"
    if len(periods) < MIN_PERIODS:
        span = f" ({periods.iloc[0]:%Y-%m-%d} to {periods.iloc[-1]:%Y-%m-%d})" if len(periods) else ""
        raise DataError(
            f"too few {name} to train on: the sales fall in {len(periods)} {name}{span}; at least {MIN_PERIODS} "
            "are needed (the latest are held out for validation and testing)"
        )
    lists = demand.lists
    wholesale = lists[lists.index.get_level_values("segment") == "wholesale"]
    if not (wholesale["price_changes"] > 0).any():
        raise DataError(
            f"too little price variation to train on: none of the {len(wholesale):,} wholesale price lists "
            f"changed its posted price over the {len(periods)} {name}, so there is no price response to learn"
        )
    # Both feature pipelines estimate the pooled response: the evaluation one from the training periods, the
    # serving one from all of them, where a list busy early on can average fewer orders.
    for cells, where in ((split_by_time(demand.cells).train, f"in the training {name}"),
                         (demand.cells, f"over all {len(periods)} {name}")):  # fmt: skip
        orders = cells.groupby(KEYS)["orders"].mean()
        if not (orders >= MIN_PRIOR_ORDERS).any():
            raise DataError(
                f"too few orders to train on: no price list averages {MIN_PRIOR_ORDERS:g} orders a {unit} {where} "
                f"(the most: {orders.max():.1f}), and the pooled price response is estimated from those"
            )


def hash_frame(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's contents (row order included), to tie each model to its training data."""
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def write_feature_store(directory: Path, split: Split, matrices: Matrices) -> None:
    """Write each split's cell keys, features and level target (units at the usual price) as Parquet."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, part in split.parts():
        frame = pd.DataFrame(matrices.X[name], columns=list(FEATURES))
        for i, column in enumerate(("StockCode", "segment", "period", "posted_price", "units")):
            frame.insert(i, column, part[column].to_numpy())
        frame["level_target"] = matrices.y[name]
        frame.to_parquet(directory / f"{name}.parquet", index=False, compression="zstd")
    log.info("feature store written to %s", directory)


# ---------------------------------------------------------------------------------------------------
# One family


def train_family(
    family: str,
    config: TrainConfig,
    matrices: Matrices,
    X_all: np.ndarray,
    y_all: np.ndarray,
    evaluation: FeaturePipeline,
    events: pd.DataFrame,
) -> FamilyRun:
    """Tune, fit on the training periods (validation for early stopping), evaluate, then refit on all periods."""
    X, y, log_d, actual = matrices.X, matrices.y, matrices.log_d, matrices.actual
    log.info("%s: tuning", family)
    result = tune(
        family,
        TuningData(X["train"], y["train"], X["val"], y["val"]),
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
    rows = f"{len(y['train']):,}"
    log.info("%s: fit on %s training cells in %.0f s%s", family, rows, fit_seconds, _fit_summary(model))
    val_pred = _predicted_target(model, X["val"], log_d["val"])
    test_pred = _predicted_target(model, X["test"], log_d["test"])
    heldout: HeldoutCheck = heldout_response_error(
        events, lambda cells: _predicted_target(model, evaluation.transform(cells), evaluation.log_response(cells))
    )

    start = time.perf_counter()
    served = model_class(family)(**refit_params(family, model)).fit(X_all, y_all)
    refit_seconds = time.perf_counter() - start
    log.info("%s: refit on all %s cells in %.0f s", family, f"{len(y_all):,}", refit_seconds)
    record: dict[str, Any] = {
        "family": family,
        "hyperparameters": params,
        "tuning": {
            "method": result.method,
            "completed": len(result.history),
            "pruned": result.pruned,
            "best_score": result.best_score,
        },
        "val": regression_metrics(actual["val"], val_pred),
        "test": regression_metrics(actual["test"], test_pred),
        "heldout": heldout.summary(),
        "seconds": {
            "tuning": result.seconds,
            "fit": fit_seconds,
            "refit": refit_seconds,
            "total": result.seconds + fit_seconds + refit_seconds,
        },
    }
    log.info(
        "%s: done in %.0f s; test MSE %.4f, R² %.3f; held-out price-response error %.3f (%d lists)",
        family,
        record["seconds"]["total"],
        record["test"]["mse"],
        record["test"]["r2"],
        record["heldout"]["median_abs_error"],
        record["heldout"]["lists"],
    )
    return FamilyRun(family, served, record, result, test_pred)


def gate(run: FamilyRun, serving: Stage) -> str | None:
    """Why a family must not be stored or served, or None: non-finite or non-positive-R² metrics, or a served
    model that fails the behaviour checks."""
    for part in ("val", "test"):
        reason = metrics_are_sane(run.record[part])
        if reason is not None:
            return f"{part} metrics: {reason}"
    return behaviour_failure(_sweeper(serving, run.model), serving.context)


def behaviour_failure(sweeper: Sweeper, context: ContextStore) -> str | None:
    """Behaviour checks of a served model on the best-selling lists: finite curves, and demand that is lower at
    1.25x the usual price than at 0.8x (a model that learned otherwise prices backwards)."""
    rising = []
    for code in best_selling_lists(context.catalogue, n=BEHAVIOUR_LISTS):
        usual = float(context.catalogue.loc[(code, "wholesale"), "usual_price"])
        request = SweepRequest(
            code, segment="wholesale", price_min=0.8 * usual, price_max=1.25 * usual, bins=2, context=EVAL_CONTEXT
        )
        result = sweeper.sweep(request)
        if not np.all(np.isfinite(result.quantity)):
            return f"non-finite predicted demand for {code}"
        if result.quantity[1] > result.quantity[0]:
            rising.append(code)
    if len(rising) > BEHAVIOUR_LISTS // 10:
        examples = ", ".join(rising[:5])
        return f"predicted demand rises with price for {len(rising)} of {BEHAVIOUR_LISTS} best sellers ({examples})"
    return None


def _log_epoch(epoch: int, val_mse: float) -> None:
    log.info("  torch      epoch %2d  val MSE %.4f", epoch + 1, val_mse)


def _fit_summary(model: PriceModel) -> str:
    if hasattr(model, "epochs_run_"):
        return f" ({model.epochs_run_} epochs, best {model.best_epoch_}, early stopping)"
    if hasattr(model, "n_trees_"):
        return f" ({model.n_trees_} trees kept by early stopping)"
    return ""


def _meta(run: FamilyRun) -> dict[str, Any]:
    record = run.record
    return {
        "metrics": {k: record[k] for k in ("val", "test", "heldout", "pricing", "edges") if k in record},
        "hyperparameters": record["hyperparameters"],
        "tuning": record["tuning"],
        "seconds": record["seconds"],
        "ranking_score": record["ranking_score"],
    }


# ---------------------------------------------------------------------------------------------------
# Reports and upload


def write_reports(
    directory: Path,
    record: dict[str, Any],
    runs: list[FamilyRun],
    y_test: np.ndarray,
    serving: Stage,
    truth: pd.DataFrame | None,
) -> None:
    """metrics.json, metrics.md, pricing.csv (synthetic data), edges.csv and the plots."""
    write_run_record(directory, record)
    primary = runs[0]
    if "pricing_table" in primary.record:
        primary.record["pricing_table"].to_csv(directory / "pricing.csv", index=False)
    sweeper = _sweeper(serving, primary.model)
    edge_optima(sweeper, best_selling_lists(serving.context.catalogue)).to_csv(directory / "edges.csv", index=False)
    plot_predicted_vs_actual(directory / "predicted_vs_actual.png", y_test, {r.family: r.test_pred for r in runs})
    codes = best_selling_lists(serving.context.catalogue, n=CURVE_PRODUCTS, moved=True)
    curves: dict[str, dict[str, SweepResult]] = {
        r.family: {c: _sweeper(serving, r.model).sweep(SweepRequest(c, segment="wholesale")) for c in codes}
        for r in runs
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
