"""Feed-forward PyTorch network on standardised inputs, with early stopping and an epoch hook for pruning.

It forecasts a demand cell's level (``pricing.models.base``): the price enters outside the model. Inputs are
standardised with the training rows' mean and standard deviation (a column that is constant in training keeps
its scale, so an unseen value cannot be divided by zero); gradients are clipped and a diverged epoch ends
training with the best weights so far.

PyTorch trains it (``pricing.models.torch_network``, imported only then); serving runs the same network as
numpy arrays (``network.npz``: standardisation, each hidden layer with its batch norm folded in, the head),
so a server never imports PyTorch. The ``state_dict`` is stored next to them (``model.pt``, for PyTorch
users; ``bentoml.pytorch`` is deprecated and its loader breaks under torch 2.13); a store written before the
arrays existed is read from it with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pricing.models.base import ArrayServedModel

if TYPE_CHECKING:
    from pricing.models.torch_network import Architecture

WEIGHTS_FILE = "model.pt"


class TorchMLPRegressor(ArrayServedModel):
    """Multi-layer perceptron on standardised inputs, trained with mini-batches and early stopping."""

    family = "torch"
    arrays_file = "network.npz"

    def __init__(
        self,
        hidden_layers: tuple[int, ...] | list[int] = (128, 64),
        dropout: float = 0.1,
        batch_norm: bool = True,
        optimizer: str = "adamw",
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        batch_size: int = 1024,
        max_epochs: int = 30,
        patience: int = 4,
        random_state: int = 0,
    ) -> None:
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.random_state = random_state

    def fit_with_hook(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, on_epoch: Callable[[int, float], None]
    ) -> TorchMLPRegressor:
        """Fit like ``fit``, calling ``on_epoch(epoch, validation_mse)`` after every epoch (it may raise to stop)."""
        self._on_epoch = on_epoch
        try:
            return self.fit(X, y, X_val, y_val)
        finally:
            del self._on_epoch

    def _architecture(self, n_features: int) -> Architecture:
        from pricing.models.torch_network import Architecture

        return Architecture(n_features, tuple(self.hidden_layers), self.dropout, self.batch_norm)

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None) -> None:
        from pricing.models import torch_network

        how = torch_network.Training(
            self.optimizer, self.learning_rate, self.weight_decay, self.batch_size, self.max_epochs, self.patience,
            self.random_state,
        )  # fmt: skip
        fitted = torch_network.train(
            self._architecture(X.shape[1]), how, (X, y, X_val, y_val), getattr(self, "_on_epoch", None)
        )
        self.network_ = fitted.network
        self.arrays_ = torch_network.export(fitted.network)
        self.epochs_run_, self.best_epoch_, self.best_val_mse_ = (
            fitted.epochs_run,
            fitted.best_epoch,
            fitted.best_val_mse,
        )

    def _predict(self, X: np.ndarray) -> np.ndarray:
        arrays = self.arrays_
        h = (X - arrays["mean"]) / arrays["scale"]
        layer = 0
        while f"w{layer}" in arrays:
            h = np.maximum(h @ arrays[f"w{layer}"].T + arrays[f"b{layer}"], 0.0)
            layer += 1
        return (h @ arrays["w_head"].T + arrays["b_head"])[:, 0]

    def _save_framework_state(self, directory: Path) -> None:
        if hasattr(self, "network_"):
            from pricing.models import torch_network

            torch_network.save_state(self.network_, directory / WEIGHTS_FILE)

    def _arrays_from_framework_state(self, directory: Path) -> dict[str, np.ndarray]:
        from pricing.models import torch_network

        return torch_network.export(torch_network.load_state(directory / WEIGHTS_FILE, self._architecture))
