"""Evaluation: regression metrics on the test split, and pricing accuracy against a known ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pricing.features import from_target
from pricing.sweep import Sweeper, SweepRequest

TOP_PRODUCTS = 50
# Pricing accuracy sweeps each product over up to this many of its latest rows; the median across
# rows settles well before that, and it keeps SVR (cost grows with support vectors x rows) affordable.
EVAL_CONTEXT = 250


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE and R^2 on the log-quantity scale; RMSLE and MAE on quantities."""
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    err = y_pred - y_true
    mse = float(np.mean(err**2))
    q_true, q_pred = from_target(y_true), from_target(y_pred)
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1.0 - mse / np.var(y_true)),
        "rmsle": float(np.sqrt(np.mean((np.log1p(q_pred) - np.log1p(q_true)) ** 2))),
        "mae_quantity": float(np.mean(np.abs(q_pred - q_true))),
    }


@dataclass(frozen=True)
class PricingAccuracy:
    """Relative error of the swept optimal price against the true optimum, over a set of products."""

    per_product: pd.DataFrame  # StockCode, true_price, found_price, rel_error, in_range

    @property
    def median(self) -> float:
        """Median relative error."""
        return float(self.per_product["rel_error"].median())

    @property
    def p90(self) -> float:
        """90th percentile of the relative error."""
        return float(self.per_product["rel_error"].quantile(0.9))

    def summary(self) -> dict[str, float | int]:
        """Median, p90 and product count, JSON-ready."""
        return {
            "median_rel_error": self.median,
            "p90_rel_error": self.p90,
            "products": len(self.per_product),
            "context_rows": EVAL_CONTEXT,
        }


def most_sold_products(catalogue: pd.DataFrame, n: int = TOP_PRODUCTS) -> list[str]:
    """The ``n`` products with the most history rows (ties broken by stock code)."""
    ranked = catalogue.reset_index().sort_values(["rows", "StockCode"], ascending=[False, True])
    return ranked["StockCode"].head(n).tolist()


def pricing_accuracy(sweeper: Sweeper, truth: pd.DataFrame, products: list[str]) -> PricingAccuracy:
    """Sweep each product over its observed price range and compare the optimum with ``truth.optimal_price``."""
    optimal = truth.set_index("StockCode")["optimal_price"]
    rows = []
    for code in products:
        result = sweeper.sweep(SweepRequest(code, context=EVAL_CONTEXT))
        true_price = float(optimal.loc[code])
        rows.append(
            {
                "StockCode": code,
                "true_price": true_price,
                "found_price": result.optimal_price,
                "rel_error": abs(result.optimal_price - true_price) / true_price,
                "in_range": bool(result.prices[0] <= true_price <= result.prices[-1]),
            }
        )
    return PricingAccuracy(pd.DataFrame(rows))
