"""The PyTorch side of the network family: the module, its training loop, and its export to plain arrays.

Imported only to train, or to read a store written before the arrays existed: serving runs the exported
arrays with numpy (``pricing.models.torch_mlp``), so a worker never imports PyTorch (about 190 MB and 1-3 s
of start-up for a fallback).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

_PREDICT_CHUNK = 65_536
_GRADIENT_CLIP = 5.0  # a rare huge gradient (an extreme period) must not throw the weights off


@dataclass(frozen=True)
class Architecture:
    """The network's shape and regularisation, from the family's hyperparameters."""

    n_features: int
    hidden_layers: tuple[int, ...]
    dropout: float
    batch_norm: bool


@dataclass(frozen=True)
class Training:
    """How to train: optimiser, rates, batches, stopping."""

    optimizer: str
    learning_rate: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    random_state: int


@dataclass(frozen=True)
class Fitted:
    """A trained network (evaluation mode) and how its training went."""

    network: Network
    epochs_run: int
    best_epoch: int
    best_val_mse: float


class Network(nn.Module):
    """Standardise, then Linear (+ BatchNorm) + ReLU (+ Dropout) per hidden layer, then a linear head."""

    def __init__(self, shape: Architecture) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape.n_features))
        self.register_buffer("scale", torch.ones(shape.n_features))
        layers: list[nn.Module] = []
        width = shape.n_features
        for units in shape.hidden_layers:
            layers.append(nn.Linear(width, units))
            if shape.batch_norm:
                layers.append(nn.BatchNorm1d(units))
            layers.append(nn.ReLU())
            if shape.dropout > 0:
                layers.append(nn.Dropout(shape.dropout))
            width = units
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk((x - self.mean) / self.scale)).squeeze(-1)


def train(
    shape: Architecture,
    how: Training,
    data: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
    on_epoch: Callable[[int, float], None] | None = None,
) -> Fitted:
    """Train on (X, y) with early stopping on (X_val, y_val), or on a random tenth held out of X when those
    are None; ``on_epoch(epoch, validation_mse)`` after every epoch may raise to stop."""
    X, y, X_val, y_val = data
    torch.manual_seed(how.random_state)
    generator = torch.Generator().manual_seed(how.random_state)
    if X_val is None or y_val is None:
        perm = torch.randperm(len(X), generator=generator).numpy()
        cut = max(1, len(X) // 10)
        X, y, X_val, y_val = X[perm[cut:]], y[perm[cut:]], X[perm[:cut]], y[perm[:cut]]
    net = Network(shape)
    std = X.std(axis=0)
    net.mean.copy_(torch.from_numpy(X.mean(axis=0)))
    net.scale.copy_(torch.from_numpy(np.where(std > 1e-6, std, 1.0).astype(np.float32)))
    optimiser = _optimiser(net, how)
    loss_fn = nn.MSELoss()
    xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.float32))
    xv, yv = torch.from_numpy(X_val), torch.from_numpy(y_val.astype(np.float32))

    best_loss, best_state, stale = float("inf"), copy.deepcopy(net.state_dict()), 0
    epochs_run = best_epoch = 0
    for epoch in range(how.max_epochs):
        net.train()
        for idx in torch.randperm(len(xt), generator=generator).split(how.batch_size):
            if len(idx) < 2 and shape.batch_norm:
                continue  # batch norm cannot train on a single row
            optimiser.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), _GRADIENT_CLIP)
            optimiser.step()
        val_loss = float(loss_fn(predict(net, xv), yv))
        epochs_run = epoch + 1
        if not np.isfinite(val_loss):  # diverged: keep the best weights so far and stop
            break
        if val_loss < best_loss - 1e-5:
            best_loss, best_state, stale = val_loss, copy.deepcopy(net.state_dict()), 0
            best_epoch = epoch + 1
        else:
            stale += 1
        if on_epoch is not None:
            on_epoch(epoch, val_loss)
        if stale >= how.patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    return Fitted(net, epochs_run, best_epoch, best_loss)


def _optimiser(net: nn.Module, how: Training) -> torch.optim.Optimizer:
    params = net.parameters()
    if how.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=how.learning_rate, weight_decay=how.weight_decay)
    if how.optimizer == "adam":
        return torch.optim.Adam(params, lr=how.learning_rate, weight_decay=how.weight_decay)
    if how.optimizer == "sgd":
        return torch.optim.SGD(params, lr=how.learning_rate, momentum=0.9, nesterov=True, weight_decay=how.weight_decay)
    raise ValueError(f"optimizer must be 'adamw', 'adam' or 'sgd', got {how.optimizer!r}")


def predict(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's output for ``x`` in evaluation mode, in chunks."""
    net.eval()
    with torch.inference_mode():
        return torch.cat([net(chunk) for chunk in x.split(_PREDICT_CHUNK)])


def save_state(net: nn.Module, path: Path) -> None:
    """The network's ``state_dict``, for PyTorch users of a stored model."""
    torch.save(net.state_dict(), path)


def load_state(path: Path, architecture: Callable[[int], Architecture]) -> Network:
    """A network from a ``state_dict`` file (``weights_only``: no pickled code runs), its shape from
    ``architecture(input width)``."""
    state = torch.load(path, weights_only=True, map_location="cpu")
    net = Network(architecture(int(state["mean"].shape[0])))
    net.load_state_dict(state)
    net.eval()
    return net


def export(net: Network) -> dict[str, np.ndarray]:
    """The evaluation-mode network as float32 arrays: ``mean``, ``scale``, per hidden layer ``w<i>``/``b<i>``
    with its batch norm folded in (ReLU follows each; dropout is the identity), and the head
    ``w_head``/``b_head``."""
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    with torch.no_grad():
        for module in net.trunk:
            if isinstance(module, nn.Linear):
                layers.append((module.weight.numpy().astype(np.float64), module.bias.numpy().astype(np.float64)))
            elif isinstance(module, nn.BatchNorm1d):  # y = gain * (x - running mean) + bias
                gain = (module.weight / torch.sqrt(module.running_var + module.eps)).numpy().astype(np.float64)
                shift = module.bias.numpy() - gain * module.running_mean.numpy()
                weight, bias = layers[-1]
                layers[-1] = (weight * gain[:, None], bias * gain + shift)
        arrays = {"mean": net.mean.numpy(), "scale": net.scale.numpy()}
        for index, (weight, bias) in enumerate(layers):
            arrays[f"w{index}"], arrays[f"b{index}"] = weight, bias
        arrays["w_head"], arrays["b_head"] = net.head.weight.numpy(), net.head.bias.numpy()
    return {name: np.array(values, dtype=np.float32) for name, values in arrays.items()}
