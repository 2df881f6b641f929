"""The five model families, each behind the ``PriceModel`` interface.

Families are imported on first use: serving one family should not pay for importing the others'
frameworks (torch alone takes seconds to import).
"""

from __future__ import annotations

import importlib

from pricing.config import FAMILIES
from pricing.models.base import PriceModel

_CLASSES: dict[str, tuple[str, str]] = {
    "torch": ("pricing.models.torch_mlp", "TorchMLPRegressor"),
    "xgboost": ("pricing.models.xgboost_model", "XGBoostRegressor"),
    "lightgbm": ("pricing.models.lightgbm_model", "LightGBMRegressor"),
    "svr": ("pricing.models.sklearn_models", "SVRRegressor"),
    "elasticnet": ("pricing.models.sklearn_models", "ElasticNetRegressor"),
}
assert tuple(_CLASSES) == FAMILIES


def model_class(family: str) -> type[PriceModel]:
    """The estimator class of a model family."""
    if family not in _CLASSES:
        raise ValueError(f"unknown model family {family!r}; choose from {', '.join(FAMILIES)}")
    module, name = _CLASSES[family]
    return getattr(importlib.import_module(module), name)


__all__ = ["PriceModel", "model_class"]
