"""Kernel SVR and ElasticNet: scikit-learn pipelines with standardised inputs.

scikit-learn fits them; what predicting needs is kept as numpy arrays (``arrays.npz``: the standardisation,
and the coefficients or the support vectors), so serving never imports scikit-learn or the parts of SciPy it
pulls in (about 85 MB per process). The fitted pipeline is stored next to them (``model.joblib``, for
scikit-learn users); a store written before the arrays existed is read from it.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pricing.models.base import ArrayServedModel

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MODEL_FILE = "model.joblib"
_SVR_CHUNK = 4_096  # rows per kernel block: 4,096 x support vectors x 8 bytes stays around 100 MB


class _SklearnPipelineModel(ArrayServedModel):
    """Families fitted as a scikit-learn Pipeline (a StandardScaler, then the model), served from its arrays."""

    arrays_file = "arrays.npz"

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None) -> None:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X, y = self._training_rows(X, y)
        self.pipeline_ = make_pipeline(StandardScaler(), self._estimator())
        self.pipeline_.fit(X, y)
        self.arrays_ = self._export(self.pipeline_)

    def _training_rows(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return X, y

    @abstractmethod
    def _estimator(self) -> Any:
        """The unfitted scikit-learn model that follows the scaler."""

    def _export(self, pipeline: Pipeline) -> dict[str, np.ndarray]:
        scaler = pipeline[0]
        return {"mean": scaler.mean_, "scale": scaler.scale_}

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (X.astype(np.float64) - self.arrays_["mean"]) / self.arrays_["scale"]

    def _save_framework_state(self, directory: Path) -> None:
        if hasattr(self, "pipeline_"):
            import joblib

            joblib.dump(self.pipeline_, directory / MODEL_FILE)

    def _arrays_from_framework_state(self, directory: Path) -> dict[str, np.ndarray]:
        import joblib

        return self._export(joblib.load(directory / MODEL_FILE))


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

    def _training_rows(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(X) > self.max_train_rows:
            rows = np.random.default_rng(self.random_state).choice(len(X), self.max_train_rows, replace=False)
            X, y = X[rows], y[rows]
        return X, y

    def _estimator(self) -> Any:
        from sklearn.svm import SVR

        return SVR(C=self.C, epsilon=self.epsilon, gamma=self.gamma)

    def _export(self, pipeline: Pipeline) -> dict[str, np.ndarray]:
        svr = pipeline[-1]
        return {
            **super()._export(pipeline),
            "support": svr.support_vectors_,
            "dual_coef": svr.dual_coef_.ravel(),
            "intercept": np.asarray(svr.intercept_, dtype=np.float64),
        }

    def _predict(self, X: np.ndarray) -> np.ndarray:
        # libsvm predicts one row at a time on one core; the same RBF expansion as matrix products in
        # chunks uses BLAS and is several times faster on the sweep's large matrices.
        support, coef = self.arrays_["support"], self.arrays_["dual_coef"]
        intercept = float(self.arrays_["intercept"][0])
        support_sq = np.einsum("ij,ij->i", support, support)
        Z = self._standardise(X)
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

    def _estimator(self) -> Any:
        from sklearn.linear_model import ElasticNet

        return ElasticNet(
            alpha=self.alpha,
            l1_ratio=self.l1_ratio,
            max_iter=self.max_iter,
            random_state=self.random_state,
            selection="random",
        )

    def _export(self, pipeline: Pipeline) -> dict[str, np.ndarray]:
        model = pipeline[-1]
        return {**super()._export(pipeline), "coef": model.coef_, "intercept": np.atleast_1d(model.intercept_)}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self._standardise(X) @ self.arrays_["coef"] + float(self.arrays_["intercept"][0])
