"""Hyperparameter search: budgets respected, shared Optuna storage, skopt cross-validation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest

from pricing.config import BUDGETS
from pricing.features import FEATURES
from pricing.models import model_class
from pricing.tuning import TuningData, final_params, open_storage, refit_params, tune

BUDGET = replace(BUDGETS["smoke"], gbm_trials=3, gbm_max_trees=30, skopt_calls=4, svr_rows=150, cv_folds=2)


@pytest.fixture(scope="module")
def data() -> TuningData:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(700, len(FEATURES))).astype(np.float32)  # the real matrix's width
    y = X[:, 8] - X[:, 9] ** 2 - 0.5 * X[:, -1] + rng.normal(0, 0.2, 700)
    return TuningData(X[:500], y[:500], X[500:], y[500:])


def test_optuna_search_runs_the_budgeted_trials_and_returns_constructor_params(data) -> None:
    result = tune("lightgbm", data, BUDGET, seed=0)
    assert result.method == "optuna-tpe"
    assert len(result.history) == BUDGET.gbm_trials
    assert result.best_score == min(score for _, score in result.history)
    params = final_params("lightgbm", result.params, BUDGET, seed=0)
    assert params["n_estimators"] == BUDGET.gbm_max_trees and params["random_state"] == 0


@pytest.mark.parametrize("family", ["svr", "elasticnet"])
def test_skopt_search_uses_gp_minimize_with_cross_validation(data, family) -> None:
    result = tune(family, data, BUDGET, seed=0)
    assert result.method == "skopt-gp_minimize"
    assert len(result.history) == BUDGET.skopt_calls
    assert result.best_score == pytest.approx(min(score for _, score in result.history))
    expected = {"C", "epsilon", "gamma"} if family == "svr" else {"alpha", "l1_ratio"}
    assert set(result.params) == expected


def test_torch_trials_report_every_epoch_so_the_pruner_can_act(data) -> None:
    budget = replace(BUDGET, torch_trials=3, torch_tune_epochs=3)
    result = tune("torch", data, budget, seed=0)
    assert len(result.history) + result.pruned == 3 and result.history
    assert {"hidden_layers", "dropout", "batch_norm", "optimizer", "learning_rate"} <= set(result.params)


@pytest.mark.parametrize("scheme", ["sqlite", "journal"])
def test_two_runs_share_one_study_through_storage(data, tmp_path: Path, scheme: str) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}" if scheme == "sqlite" else f"journal:{tmp_path / 'studies.log'}"
    tune("xgboost", data, BUDGET, seed=0, storage=url, study_name="shared")
    tune("xgboost", data, BUDGET, seed=1, storage=url, study_name="shared")
    study = optuna.load_study(study_name="shared", storage=open_storage(url))
    assert len(study.trials) == 2 * BUDGET.gbm_trials


def test_unknown_family_has_no_search_space(data) -> None:
    with pytest.raises(ValueError, match="no search space"):
        tune("catboost", data, BUDGET, seed=0)


def test_a_diverged_trial_can_never_be_the_best(data, monkeypatch) -> None:
    import pricing.tuning

    scores = iter([float("nan"), float("inf"), 0.5, 0.7])
    monkeypatch.setattr(pricing.tuning, "_mse", lambda model, X, y: next(scores))
    result = tune("lightgbm", data, replace(BUDGET, gbm_trials=4), seed=0)
    assert result.best_score == 0.5
    assert [score for _, score in result.history] == [0.5, 0.7]  # the failed trials are not history


def test_a_diverged_skopt_point_scores_as_a_failure_not_a_number_it_cannot_use(data, monkeypatch) -> None:
    import pricing.tuning

    calls = iter([float("nan")] + [1.0] * 100)
    monkeypatch.setattr(pricing.tuning, "_mse", lambda model, X, y: next(calls))
    result = tune("elasticnet", data, BUDGET, seed=0)
    assert np.isfinite(result.best_score) and result.best_score == pytest.approx(1.0)


def test_refit_keeps_the_hyperparameters_and_trains_as_long_as_early_stopping_chose(data) -> None:
    model = model_class("lightgbm")(n_estimators=200, learning_rate=0.2).fit(
        data.X_train, data.y_train, data.X_val, data.y_val
    )
    params = refit_params("lightgbm", model)
    assert params["n_estimators"] == model.n_trees_ < 200 and params["learning_rate"] == 0.2
    net = model_class("torch")(max_epochs=6, patience=2).fit(data.X_train, data.y_train, data.X_val, data.y_val)
    refit = refit_params("torch", net)
    assert refit["max_epochs"] == net.best_epoch_ and refit["patience"] > refit["max_epochs"]
