"""The estimator interface every model family implements.

It follows scikit-learn's contract: ``__init__`` stores keyword hyperparameters unchanged, ``fit``
returns ``self``, learned state ends in ``_``, randomness comes in through ``random_state`` and
predicting before fitting raises ``NotFittedError``. On top of that each family can ``save`` itself
into a directory (``params.json`` plus its own files) and ``load`` back from one, which is how the
registry stores it in the BentoML model store. Predictions are log quantities (see
``pricing.features.to_target``).

``predict_grid`` is the price sweep's call: every context row at every grid price. By default it predicts
on the tiled matrix (``grid_matrix``); a family whose model factorises over the context and price columns
overrides ``_predict_grid`` to do the context work once per row instead of once per (row, price), with
the same predictions (tested against the tiled matrix for every family).
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

PARAMS_FILE = "params.json"


class PriceModel(ABC):
    """A regressor from the model matrix to log quantity."""

    family: ClassVar[str]

    def get_params(self) -> dict[str, Any]:
        """The constructor's hyperparameters, as given."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None
    ) -> Self:
        """Fit on (X, y); families that stop early or prune use (X_val, y_val) when given. Returns self."""
        X, y = _as_matrix(X), np.asarray(y, dtype=np.float64).ravel()
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        if X_val is not None:
            X_val, y_val = _as_matrix(X_val), np.asarray(y_val, dtype=np.float64).ravel()
        self._fit(X, y, X_val, y_val)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted log quantity for each row of X, as a float64 vector."""
        if not hasattr(self, "n_features_in_"):
            raise _not_fitted(f"this {type(self).__name__} is not fitted yet: call fit() first")
        X = _as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the model was fitted with {self.n_features_in_}")
        return np.asarray(self._predict(X), dtype=np.float64).ravel()

    def predict_grid(self, context: np.ndarray, prices: np.ndarray) -> np.ndarray:
        """Predicted log quantity of every context row at every grid price, shape (len(prices), len(context)).

        ``context`` is the encoded context block (rows x context columns), ``prices`` the price block (grid
        prices x price columns); the values equal ``predict(grid_matrix(context, prices))`` reshaped.
        """
        if not hasattr(self, "n_features_in_"):
            raise _not_fitted(f"this {type(self).__name__} is not fitted yet: call fit() first")
        context, prices = _as_matrix(context), _as_matrix(prices)
        if context.shape[1] + prices.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{context.shape[1]} context and {prices.shape[1]} price columns, the model was fitted with "
                f"{self.n_features_in_}"
            )
        grid = np.asarray(self._predict_grid(context, prices), dtype=np.float64)
        return grid.reshape(len(prices), len(context))

    def _predict_grid(self, context: np.ndarray, prices: np.ndarray) -> np.ndarray:
        return self._predict(grid_matrix(context, prices))

    def save(self, directory: Path) -> None:
        """Write the fitted model into ``directory`` (created if missing)."""
        if not hasattr(self, "n_features_in_"):
            raise _not_fitted(f"cannot save an unfitted {type(self).__name__}")
        directory.mkdir(parents=True, exist_ok=True)
        state = {"family": self.family, "params": self.get_params(), "n_features_in": self.n_features_in_}
        (directory / PARAMS_FILE).write_text(json.dumps(state, indent=2))
        self._save_state(directory)

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read a model that ``save`` wrote."""
        state = json.loads((directory / PARAMS_FILE).read_text())
        if state["family"] != cls.family:
            raise ValueError(f"{directory} holds a {state['family']} model, not {cls.family}")
        model = cls(**state["params"])
        model._load_state(directory)
        model.n_features_in_ = state["n_features_in"]
        return model

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None) -> None: ...

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _save_state(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_state(self, directory: Path) -> None: ...


def grid_matrix(context: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """The model matrix of every context row at every grid price, price-major: row ``j * len(context) + i``
    is context row ``i`` with grid price ``j``."""
    n_ctx, n_ctx_features = context.shape
    matrix = np.empty((len(prices) * n_ctx, n_ctx_features + prices.shape[1]), dtype=np.float32)
    matrix[:, :n_ctx_features].reshape(len(prices), n_ctx, n_ctx_features)[:] = context
    matrix[:, n_ctx_features:] = np.repeat(prices, n_ctx, axis=0)
    return matrix


def predict_grid_by_buckets(
    model: PriceModel,
    context: np.ndarray,
    prices: np.ndarray,
    split_thresholds: dict[int, np.ndarray],
    left_closed: bool,
) -> np.ndarray:
    """Tree ensembles: predict only one grid price per bucket of the price columns' split thresholds.

    Two prices on the same side of every split threshold of a price column take the same path through
    every tree, so they get identical predictions. ``split_thresholds`` maps a column index of the model
    matrix to the sorted split values of that column; ``left_closed`` says whether a split sends ``x <= t``
    left (LightGBM) or ``x < t`` (XGBoost).
    """
    side = "left" if left_closed else "right"
    first_price_column = context.shape[1]
    buckets = np.column_stack(
        [
            np.searchsorted(split_thresholds.get(first_price_column + k, np.empty(0)), prices[:, k], side=side)
            for k in range(prices.shape[1])
        ]
    )
    _, first, inverse = np.unique(buckets, axis=0, return_index=True, return_inverse=True)
    distinct = model._predict(grid_matrix(context, prices[first])).reshape(len(first), len(context))
    return distinct[inverse.ravel()]


def _not_fitted(message: str) -> Exception:
    # scikit-learn's own error class, imported only when raised: importing sklearn pulls in scipy, which
    # took 1.5 s of every server process's start-up (the serving parent process never needs it).
    from sklearn.exceptions import NotFittedError

    return NotFittedError(message)


def _as_matrix(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array, got shape {X.shape}")
    return X
