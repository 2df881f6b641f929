"""Kernel SVR and ElasticNet: scikit-learn pipelines with standardised inputs, saved with joblib."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import ElasticNet
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from pricing.models.base import PriceModel

MODEL_FILE = "model.joblib"
_SVR_CHUNK = 4_096  # rows per kernel block: 4,096 x support vectors x 8 bytes stays around 100 MB


class _SklearnPipelineModel(PriceModel):
    """Shared persistence for families that are a fitted scikit-learn Pipeline."""

    pipeline_: Pipeline

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline_.predict(X)

    def _save_state(self, directory: Path) -> None:
        joblib.dump(self.pipeline_, directory / MODEL_FILE)

    def _load_state(self, directory: Path) -> None:
        self.pipeline_ = joblib.load(directory / MODEL_FILE)


class SVRRegressor(_SklearnPipelineModel):
    """RBF-kernel support vector regression on a bounded random subsample of the training rows.

    Kernel SVR costs O(rows^2) to fit and O(support vectors) per prediction, so ``max_train_rows`` bounds both.
    """

    family = "svr"

    def __init__(
        self,
        C: float = 1.0,
        epsilon: float = 0.1,
        gamma: float = 0.05,
        max_train_rows: int = 3_000,
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.epsilon = epsilon
        self.gamma = gamma
        self.max_train_rows = max_train_rows
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None) -> None:
        if len(X) > self.max_train_rows:
            rows = np.random.default_rng(self.random_state).choice(len(X), self.max_train_rows, replace=False)
            X, y = X[rows], y[rows]
        self.pipeline_ = make_pipeline(StandardScaler(), SVR(C=self.C, epsilon=self.epsilon, gamma=self.gamma))
        self.pipeline_.fit(X, y)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        # libsvm predicts one row at a time on one core; the same RBF expansion as matrix products in
        # chunks uses BLAS and is several times faster on the sweep's large matrices.
        scaler, svr = self.pipeline_[0], self.pipeline_[-1]
        support = svr.support_vectors_
        support_sq = np.einsum("ij,ij->i", support, support)
        coef, intercept = svr.dual_coef_.ravel(), float(svr.intercept_[0])
        Z = scaler.transform(X.astype(np.float64))
        out = np.empty(len(Z))
        for start in range(0, len(Z), _SVR_CHUNK):
            chunk = Z[start : start + _SVR_CHUNK]
            dist = np.einsum("ij,ij->i", chunk, chunk)[:, None] + support_sq[None, :] - 2.0 * chunk @ support.T
            out[start : start + _SVR_CHUNK] = np.exp(-self.gamma * np.maximum(dist, 0.0)) @ coef + intercept
        return out


class ElasticNetRegressor(_SklearnPipelineModel):
    """Linear regression with combined L1 and L2 penalties on standardised inputs."""

    family = "elasticnet"

    def __init__(
        self, alpha: float = 1e-3, l1_ratio: float = 0.5, max_iter: int = 5_000, random_state: int = 0
    ) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None) -> None:
        model = ElasticNet(
            alpha=self.alpha,
            l1_ratio=self.l1_ratio,
            max_iter=self.max_iter,
            random_state=self.random_state,
            selection="random",
        )
        self.pipeline_ = make_pipeline(StandardScaler(), model)
        self.pipeline_.fit(X, y)
