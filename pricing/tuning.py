"""Hyperparameter search: Optuna for the network and the boosted trees, scikit-optimize for SVR and ElasticNet.

Optuna families score a trial by validation MSE on the validation split (the network reports every
epoch so the median pruner can stop hopeless trials early). scikit-optimize families score a point by
k-fold cross-validated MSE on (a bounded sample of) the training rows, as ``gp_minimize`` expects one
number per point. Every search logs one line per trial. ``--optuna-storage`` accepts any Optuna RDB URL
(``sqlite:///studies.db``, ``postgresql://...``) or ``journal:PATH`` for Optuna's file journal, so
several processes or machines can work on one study.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from sklearn.model_selection import KFold

from pricing.config import Budget
from pricing.models import PriceModel, model_class

log = logging.getLogger(__name__)

OPTUNA_FAMILIES = ("torch", "xgboost", "lightgbm")
_DIVERGED = 1e6
SKOPT_FAMILIES = ("svr", "elasticnet")


@dataclass(frozen=True)
class TuningData:
    """The rows a search may look at."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


@dataclass(frozen=True)
class TuningResult:
    """Best hyperparameters of one search and its history (trial number, score) for the report."""

    family: str
    params: dict[str, Any]
    best_score: float
    history: list[tuple[int, float]]  # completed trials only
    method: str
    seconds: float
    pruned: int = 0


def tune(
    family: str, data: TuningData, budget: Budget, seed: int, storage: str | None = None, study_name: str | None = None
) -> TuningResult:
    """Search the family's hyperparameters within the budget; return the best ones found."""
    start = time.perf_counter()
    if family in OPTUNA_FAMILIES:
        params, score, history, pruned = _tune_optuna(family, data, budget, seed, storage, study_name)
        method = "optuna-tpe"
    elif family in SKOPT_FAMILIES:
        params, score, history = _tune_skopt(family, data, budget, seed)
        pruned = 0
        method = "skopt-gp_minimize"
    else:
        raise ValueError(f"no search space for family {family!r}")
    return TuningResult(family, params, score, history, method, time.perf_counter() - start, pruned)


def final_params(family: str, tuned: dict[str, Any], budget: Budget, seed: int) -> dict[str, Any]:
    """Constructor arguments for the final fit: the tuned values plus the budget's size limits."""
    fixed: dict[str, Any] = {"random_state": seed}
    if family == "torch":
        fixed["max_epochs"] = budget.torch_max_epochs
    elif family in ("xgboost", "lightgbm"):
        fixed["n_estimators"] = budget.gbm_max_trees
    elif family == "svr":
        fixed["max_train_rows"] = budget.svr_rows
    return {**tuned, **fixed}


def refit_params(family: str, model: PriceModel) -> dict[str, Any]:
    """Constructor arguments to refit a fitted model on all periods, with no validation split left to stop
    on: the same hyperparameters, trained as long as early stopping found best."""
    params = model.get_params()
    if family == "torch":
        epochs = max(1, int(model.best_epoch_))
        params.update(max_epochs=epochs, patience=epochs + 1)
    elif family in ("xgboost", "lightgbm"):
        params["n_estimators"] = max(1, int(model.n_trees_))
    return params


def open_storage(url: str | None) -> optuna.storages.BaseStorage | str | None:
    """An Optuna storage for a URL: RDB URLs pass through, ``journal:PATH`` opens a file journal."""
    if url is None or not url.startswith("journal:"):
        return url
    path = url.removeprefix("journal:").removeprefix("//")
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))


# ---------------------------------------------------------------------------------------------------
# Optuna: network and boosted trees


def _suggest(family: str, trial: optuna.Trial) -> dict[str, Any]:
    if family == "torch":
        n_layers = trial.suggest_int("n_layers", 1, 3)
        first = trial.suggest_categorical("first_layer", [64, 128, 256])
        return {
            "hidden_layers": [max(16, first // (2**i)) for i in range(n_layers)],
            "dropout": trial.suggest_float("dropout", 0.0, 0.3),
            "batch_norm": trial.suggest_categorical("batch_norm", [True, False]),
            "optimizer": trial.suggest_categorical("optimizer", ["adamw", "adam", "sgd"]),
            "learning_rate": trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [512, 1024, 2048]),
        }
    if family == "xgboost":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 4, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 50.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.6, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        }
    return {  # lightgbm
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 15, 255, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 200, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.6, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def _tune_optuna(
    family: str, data: TuningData, budget: Budget, seed: int, storage: str | None, study_name: str | None
) -> tuple[dict[str, Any], float, list[tuple[int, float]], int]:
    X, y = _sample(data.X_train, data.y_train, budget.tune_rows, seed)
    n_trials = budget.torch_trials if family == "torch" else budget.gbm_trials
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own one line per trial replaces Optuna's
    study = optuna.create_study(
        direction="minimize",
        study_name=study_name,
        storage=open_storage(storage),
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2),
    )

    def objective(trial: optuna.Trial) -> float:
        params = _suggest(family, trial)
        trial.set_user_attr("params", params)
        if family == "torch":
            model = model_class(family)(**params, max_epochs=budget.torch_tune_epochs, patience=3, random_state=seed)

            def report(epoch: int, val_mse: float) -> None:
                trial.report(val_mse, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

            model.fit_with_hook(X, y, data.X_val, data.y_val, on_epoch=report)
        else:
            model = model_class(family)(**params, n_estimators=budget.gbm_max_trees, random_state=seed)
            model.fit(X, y, data.X_val, data.y_val)
        # A diverged trial fails (Optuna records NaN as a failure), so it can never be the study's best.
        score = _mse(model, data.X_val, data.y_val)
        return score if np.isfinite(score) else float("nan")

    study.optimize(objective, n_trials=n_trials, callbacks=[_log_trial(family, n_trials)], catch=(RuntimeError,))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and np.isfinite(t.value)]
    if not done:
        raise RuntimeError(f"{family}: every Optuna trial was pruned, failed or diverged")
    best = min(done, key=lambda t: t.value)
    history = [(t.number, float(t.value)) for t in done]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return best.user_attrs["params"], float(best.value), history, pruned


def _log_trial(family: str, n_trials: int) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        state = trial.state.name.lower()
        value = f"val MSE {trial.value:.4f}" if trial.value is not None else state
        try:
            best = f"best {study.best_value:.4f}"
        except ValueError:
            best = "no complete trial yet"
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        log.info("  %-10s trial %2d/%d  %-22s %s  (%.1fs)", family, trial.number + 1, n_trials, value, best, seconds)

    return callback


# ---------------------------------------------------------------------------------------------------
# scikit-optimize: SVR and ElasticNet


def _skopt_space(family: str) -> tuple[list[Any], list[str]]:
    from skopt.space import Real

    if family == "svr":
        dims = [
            Real(0.1, 30.0, prior="log-uniform"),
            Real(0.01, 0.5, prior="log-uniform"),
            Real(1e-3, 0.3, prior="log-uniform"),
        ]
        return dims, ["C", "epsilon", "gamma"]
    dims = [Real(1e-5, 1.0, prior="log-uniform"), Real(0.0, 1.0)]
    return dims, ["alpha", "l1_ratio"]


def _tune_skopt(
    family: str, data: TuningData, budget: Budget, seed: int
) -> tuple[dict[str, Any], float, list[tuple[int, float]]]:
    from skopt import gp_minimize

    rows = budget.svr_rows if family == "svr" else budget.elasticnet_rows
    X, y = _sample(data.X_train, data.y_train, rows, seed)
    dims, names = _skopt_space(family)
    folds = list(KFold(budget.cv_folds, shuffle=True, random_state=seed).split(X))
    history: list[tuple[int, float]] = []

    def objective(point: list[float]) -> float:
        params = dict(zip(names, (float(v) for v in point), strict=True))
        start = time.perf_counter()
        scores = []
        for fit_idx, score_idx in folds:
            model = model_class(family)(**params, random_state=seed)
            if family == "svr":
                model.max_train_rows = len(fit_idx)  # the sample is already bounded
            scores.append(_mse(model.fit(X[fit_idx], y[fit_idx]), X[score_idx], y[score_idx]))
        # gp_minimize needs a number: a diverged point scores as badly as predicting nothing at all.
        score = float(np.mean(scores)) if np.all(np.isfinite(scores)) else _DIVERGED

        history.append((len(history), score))
        best = min(s for _, s in history)
        log.info(
            "  %-10s call  %2d/%d  cv MSE %.4f  best %.4f  (%.1fs)",
            family,
            len(history),
            budget.skopt_calls,
            score,
            best,
            time.perf_counter() - start,
        )
        return score

    n_initial = max(2, min(10, budget.skopt_calls // 3))
    result = gp_minimize(objective, dims, n_calls=budget.skopt_calls, n_initial_points=n_initial, random_state=seed)
    params = dict(zip(names, (float(v) for v in result.x), strict=True))
    return params, float(result.fun), history


# ---------------------------------------------------------------------------------------------------


def _sample(X: np.ndarray, y: np.ndarray, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if len(X) <= rows:
        return X, y
    idx = np.sort(np.random.default_rng(seed).choice(len(X), rows, replace=False))
    return X[idx], y[idx]


def _mse(model: PriceModel, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((model.predict(X) - y) ** 2))
