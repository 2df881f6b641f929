"""XGBoost gradient-boosted trees (histogram method), stopped early on the validation set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pricing.models.base import SERIAL_ROWS, PriceModel, without_scikit_learn

with without_scikit_learn():
    import xgboost as xgb

MODEL_FILE = "model.ubj"


class XGBoostRegressor(PriceModel):
    """Boosted trees on squared error; only the trees up to the best validation round are kept."""

    family = "xgboost"

    def __init__(
        self,
        n_estimators: int = 1_000,
        learning_rate: float = 0.05,
        max_depth: int = 6,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        early_stopping_rounds: int = 50,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None) -> None:
        params = {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "alpha": self.reg_alpha,
            "nthread": self.n_jobs,
            "seed": self.random_state,
            "eval_metric": "rmse",
        }
        train = xgb.DMatrix(X, label=y)
        evals, stopping = [], None
        if X_val is not None:
            evals, stopping = [(xgb.DMatrix(X_val, label=y_val), "val")], self.early_stopping_rounds
        booster = xgb.train(
            params,
            train,
            num_boost_round=self.n_estimators,
            evals=evals,
            early_stopping_rounds=stopping,
            verbose_eval=False,
        )
        if stopping is not None:
            booster = booster[: booster.best_iteration + 1]
        self._keep(booster)

    def _keep(self, booster: xgb.Booster) -> None:
        booster.set_param({"nthread": self.n_jobs})
        self.booster_ = booster
        self.serial_booster_ = booster.copy()  # the same trees on one thread, for small predictions (SERIAL_ROWS)
        self.serial_booster_.set_param({"nthread": 1})
        self.n_trees_ = booster.num_boosted_rounds()

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return (self.serial_booster_ if len(X) < SERIAL_ROWS else self.booster_).inplace_predict(X)

    def _save_state(self, directory: Path) -> None:
        self.booster_.save_model(directory / MODEL_FILE)

    def _load_state(self, directory: Path) -> None:
        self._keep(xgb.Booster(model_file=str(directory / MODEL_FILE)))
