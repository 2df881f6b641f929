"""Feed-forward PyTorch network on standardised inputs, with early stopping and an epoch hook for pruning.

It forecasts a demand cell's level (``pricing.models.base``): the price enters outside the model. Inputs are
standardised with the training rows' mean and standard deviation (a column that is constant in training keeps
its scale, so an unseen value cannot be divided by zero); gradients are clipped and a diverged epoch ends
training with the best weights so far.

Saved as a plain ``state_dict`` (``bentoml.pytorch`` is deprecated and its loader breaks under torch
2.13), loaded with ``weights_only=True``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pricing.models.base import PriceModel

WEIGHTS_FILE = "model.pt"
_PREDICT_CHUNK = 65_536
_GRADIENT_CLIP = 5.0  # a rare huge gradient (an extreme period) must not throw the weights off


def _trunk(width: int, hidden_layers: tuple[int, ...], dropout: float, batch_norm: bool) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    for units in hidden_layers:
        layers.append(nn.Linear(width, units))
        if batch_norm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = units
    return nn.Sequential(*layers), width


class _Network(nn.Module):
    def __init__(self, n_features: int, hidden_layers: tuple[int, ...], dropout: float, batch_norm: bool) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.trunk, width = _trunk(n_features, hidden_layers, dropout, batch_norm)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk((x - self.mean) / self.scale)).squeeze(-1)


class TorchMLPRegressor(PriceModel):
    """Multi-layer perceptron on standardised inputs, trained with mini-batches and early stopping."""

    family = "torch"

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

    def _build(self, n_features: int) -> _Network:
        return _Network(n_features, tuple(self.hidden_layers), self.dropout, self.batch_norm)

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None) -> None:
        torch.manual_seed(self.random_state)
        generator = torch.Generator().manual_seed(self.random_state)
        if X_val is None:  # hold out a random tenth for early stopping
            perm = torch.randperm(len(X), generator=generator).numpy()
            cut = max(1, len(X) // 10)
            X, y, X_val, y_val = X[perm[cut:]], y[perm[cut:]], X[perm[:cut]], y[perm[:cut]]
        net = self._build(X.shape[1])
        std = X.std(axis=0)
        net.mean.copy_(torch.from_numpy(X.mean(axis=0)))
        net.scale.copy_(torch.from_numpy(np.where(std > 1e-6, std, 1.0).astype(np.float32)))
        optimiser = self._make_optimiser(net)
        loss_fn = nn.MSELoss()
        xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.float32))
        xv, yv = torch.from_numpy(X_val), torch.from_numpy(y_val.astype(np.float32))

        best_loss, best_state, stale = float("inf"), copy.deepcopy(net.state_dict()), 0
        self.epochs_run_ = self.best_epoch_ = 0
        for epoch in range(self.max_epochs):
            net.train()
            for idx in torch.randperm(len(xt), generator=generator).split(self.batch_size):
                if len(idx) < 2 and self.batch_norm:
                    continue  # batch norm cannot train on a single row
                optimiser.zero_grad()
                loss = loss_fn(net(xt[idx]), yt[idx])
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), _GRADIENT_CLIP)
                optimiser.step()
            val_loss = float(loss_fn(_predict_tensor(net, xv), yv))
            self.epochs_run_ = epoch + 1
            if not np.isfinite(val_loss):  # diverged: keep the best weights so far and stop
                break
            if val_loss < best_loss - 1e-5:
                best_loss, best_state, stale = val_loss, copy.deepcopy(net.state_dict()), 0
                self.best_epoch_ = epoch + 1
            else:
                stale += 1
            hook = getattr(self, "_on_epoch", None)
            if hook is not None:
                hook(epoch, val_loss)
            if stale >= self.patience:
                break
        net.load_state_dict(best_state)
        net.eval()
        self.network_ = net
        self.best_val_mse_ = best_loss

    def _make_optimiser(self, net: nn.Module) -> torch.optim.Optimizer:
        params = net.parameters()
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=self.learning_rate, momentum=0.9, nesterov=True, weight_decay=self.weight_decay
            )
        raise ValueError(f"optimizer must be 'adamw', 'adam' or 'sgd', got {self.optimizer!r}")

    def _predict(self, X: np.ndarray) -> np.ndarray:
        # torch.from_numpy needs a writable buffer; arrays read from Parquet or caches may be read-only.
        return _predict_tensor(self.network_, torch.from_numpy(np.require(X, requirements="W"))).numpy()

    def _save_state(self, directory: Path) -> None:
        torch.save(self.network_.state_dict(), directory / WEIGHTS_FILE)

    def _load_state(self, directory: Path) -> None:
        state = torch.load(directory / WEIGHTS_FILE, weights_only=True, map_location="cpu")
        net = self._build(state["mean"].shape[0])
        net.load_state_dict(state)
        net.eval()
        self.network_ = net


def _predict_tensor(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    net.eval()
    with torch.inference_mode():
        return torch.cat([net(chunk) for chunk in x.split(_PREDICT_CHUNK)])
