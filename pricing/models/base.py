"""The estimator interface every model family implements.

It follows scikit-learn's contract: ``__init__`` stores keyword hyperparameters unchanged, ``fit``
returns ``self``, learned state ends in ``_``, randomness comes in through ``random_state`` and
predicting before fitting raises ``NotFittedError``. On top of that each family can ``save`` itself
into a directory (``params.json`` plus its own files) and ``load`` back from one, which is how the
registry stores it in the BentoML model store. Predictions are a demand cell's level on the target scale
(``pricing.features.to_target``: log(1 + units per period) at the list's usual price); the price enters
outside the model (``pricing.features``), so a sweep predicts once per context period, whatever the grid.
"""

from __future__ import annotations

import inspect
import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

PARAMS_FILE = "params.json"
# A prediction of fewer rows runs on one thread (the tree families): a sweep's few dozen context rows cost less
# than waking a thread pool, and on a busy machine waiting for the second core dominates (measured on the real
# file's store under load: XGBoost 52 rows p50 9.7 ms on two threads, 1.4 ms on one; LightGBM p95 8.2 -> 0.35 ms).
SERIAL_ROWS = 20_000


@contextmanager
def without_scikit_learn() -> Iterator[None]:
    """Import a tree library without its optional scikit-learn API (in a process that has not imported
    scikit-learn yet). LightGBM and XGBoost import scikit-learn, when installed, only to offer estimator
    classes; the families here train and predict through their native ``train`` and ``Booster``, so a server
    need not pay for it: importing both libraries took 4.3-5.4 s with scikit-learn and 1.2 s without (a busy
    machine, issue #11), and scikit-learn is ~50 MB of every worker. In such a process the libraries'
    scikit-learn classes (``lightgbm.LGBMRegressor``, ``xgboost.XGBRegressor``) are unusable placeholders."""
    if "sklearn" in sys.modules:
        yield
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # "import sklearn" raises ImportError
    try:
        yield
    finally:
        if sys.modules.get("sklearn", False) is None:
            del sys.modules["sklearn"]


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


class ArrayServedModel(PriceModel):
    """A family whose predictions need only numpy arrays (``arrays_``, saved as ``arrays_file``), so serving
    never imports the framework that trained it. The framework's own file is saved next to them for its users,
    and a store written before the arrays existed is read through the framework once."""

    arrays_file: ClassVar[str]
    arrays_: dict[str, np.ndarray]

    def _save_state(self, directory: Path) -> None:
        np.savez(directory / self.arrays_file, **self.arrays_)
        self._save_framework_state(directory)

    def _load_state(self, directory: Path) -> None:
        if (directory / self.arrays_file).exists():
            with np.load(directory / self.arrays_file, allow_pickle=False) as stored:  # plain arrays, never objects
                self.arrays_ = {name: stored[name] for name in stored.files}
        else:
            self.arrays_ = self._arrays_from_framework_state(directory)

    @abstractmethod
    def _save_framework_state(self, directory: Path) -> None:
        """Save the framework's own model file, when this object was fitted here (not loaded from arrays)."""

    @abstractmethod
    def _arrays_from_framework_state(self, directory: Path) -> dict[str, np.ndarray]:
        """The arrays of a store written before they were saved, read through the framework."""
