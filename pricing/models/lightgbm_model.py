"""LightGBM gradient-boosted trees (leaf-wise), stopped early on the validation set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pricing.models.base import SERIAL_ROWS, PriceModel, without_scikit_learn

with without_scikit_learn():
    import lightgbm as lgb

MODEL_FILE = "model.txt"
_ZERO = 1e-35


class LightGBMRegressor(PriceModel):
    """Leaf-wise boosted trees on squared error, deterministic for a given seed and thread count."""

    family = "lightgbm"

    def __init__(
        self,
        n_estimators: int = 1_000,
        learning_rate: float = 0.05,
        num_leaves: int = 63,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 0.0,
        early_stopping_rounds: int = 50,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None) -> None:
        params = {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "num_threads": self.n_jobs,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        train = lgb.Dataset(X, label=y, free_raw_data=True)
        valid_sets, callbacks = [], []
        if X_val is not None:
            valid_sets = [lgb.Dataset(X_val, label=y_val, reference=train)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        booster = lgb.train(
            params, train, num_boost_round=self.n_estimators, valid_sets=valid_sets, callbacks=callbacks
        )
        # Keep only the trees up to the best validation round, so saving and predicting agree.
        best = booster.best_iteration or booster.current_iteration()
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        self.n_trees_ = best

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self.booster_.predict(X, num_threads=1 if len(X) < SERIAL_ROWS else self.n_jobs)

    def _save_state(self, directory: Path) -> None:
        self.booster_.save_model(directory / MODEL_FILE)

    def _load_state(self, directory: Path) -> None:
        self.booster_ = lgb.Booster(model_file=str(directory / MODEL_FILE))
        self.n_trees_ = self.booster_.current_iteration()
