"""Evaluation: fit metrics, a per-list statistical baseline, pricing accuracy and a held-out price-response check.

- ``regression_metrics``: MSE, RMSE, MAE and R^2 of the target (log(1 + units per period)) on the test split;
  RMSLE and MAE of the units.
- ``ListBaseline``: the statistical baseline every family is compared with, at the same level of aggregation:
  per price list, least squares of log(1 + units) on the relative posted price with month controls. No
  pooling: a list whose price never moved has no answer.
- ``pricing_accuracy`` (synthetic data): relative error of the optimum of the default sweep against the
  true optimum, for the best-selling lists whose posted price moved; the same for the baseline; the
  correlation of the optimum's ratio to the usual price, found against true; how often the optimum's 80%
  interval holds the true optimum.
- ``heldout_response_error`` (any data, no ground truth needed): over the validation and test periods,
  for every list whose posted price changed there, how far the model's residuals jump between periods at
  the window's first price and periods at other prices. A model that predicts the change in units a price
  change causes leaves no jump. The median over lists is the criterion that orders families on real data.
- ``edge_optima``: of the best sellers, those whose default sweep puts the optimum on a grid edge, and
  whether each is flagged not identifiable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pricing.features import KEYS, from_target, to_target
from pricing.response import grouped_normal_equations
from pricing.sweep import Sweeper, SweepRequest

TOP_LISTS = 50
# Pricing accuracy and the edge count sweep each list over its latest periods (the default sweep's context).
EVAL_CONTEXT = 52
_GRID = np.linspace(0.5, 2.0, 301)  # price ratios the baseline's optimum is searched over (then clipped)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE and R^2 on the target scale; RMSLE and MAE on units per period."""
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    err = y_pred - y_true
    mse = float(np.mean(err**2))
    u_true, u_pred = from_target(y_true), from_target(y_pred)
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1.0 - mse / np.var(y_true)),
        "rmsle": float(np.sqrt(np.mean((np.log1p(u_pred) - np.log1p(u_true)) ** 2))),
        "mae_units": float(np.mean(np.abs(u_pred - u_true))),
    }


def metrics_are_sane(metrics: dict[str, float]) -> str | None:
    """Why a model's test metrics disqualify it (non-finite, or R^2 not positive), or None."""
    bad = sorted(k for k, v in metrics.items() if not np.isfinite(v))
    if bad:
        return f"non-finite {', '.join(bad)}"
    if metrics["r2"] <= 0:
        return f"R² {metrics['r2']:.3f} is not positive"
    return None


# ---------------------------------------------------------------------------------------------------
# The statistical baseline


class ListBaseline:
    """Per price list: ``log(1 + units) = a + b x + month effects``, ``x`` the posted price over the usual one
    minus 1, by least squares on that list's own periods."""

    def fit(self, cells: pd.DataFrame, usual_price: pd.Series) -> ListBaseline:
        """Fit every list of ``cells``; ``usual_price`` indexed by (StockCode, segment)."""
        group, lists = pd.factorize(pd.MultiIndex.from_frame(cells[KEYS]))
        Z = self._design(cells, usual_price.reindex(lists).to_numpy()[group])
        gram, moment = grouped_normal_equations(group, Z, to_target(cells["units"]), np.ones(len(Z)), len(lists))
        # A month a list never sold in has no data: the tiny ridge sets its effect to zero, not to noise.
        ridge = np.diag([1e-9, 1e-9] + [1e-6] * (Z.shape[1] - 2))
        coef = np.linalg.solve(gram + ridge[None], moment[..., None])[..., 0]
        x = Z[:, 1]
        spread = np.bincount(group, x * x, len(lists)) - np.bincount(group, x, len(lists)) ** 2 / np.bincount(
            group, minlength=len(lists)
        )
        coef[spread < 1e-6, 1] = np.nan  # the price never moved: no slope
        self.lists_ = pd.DataFrame(coef[:, :2], index=lists, columns=["level", "slope"])
        self.lists_["usual_price"] = usual_price.reindex(lists).to_numpy()
        self.months_ = pd.DataFrame(coef[:, 2:], index=lists)
        return self

    @staticmethod
    def _design(cells: pd.DataFrame, usual: np.ndarray) -> np.ndarray:
        month = pd.DatetimeIndex(cells["period"]).month.to_numpy()
        dummies = (month[:, None] == np.arange(2, 13)[None, :]).astype(np.float64)
        x = cells["posted_price"].to_numpy() / usual - 1.0
        return np.column_stack([np.ones(len(cells)), x, dummies])

    def predict(self, cells: pd.DataFrame) -> np.ndarray:
        """Predicted target of cells of fitted lists (NaN for lists it has no slope for)."""
        keys = pd.MultiIndex.from_frame(cells[KEYS])
        coef = np.column_stack([self.lists_[["level", "slope"]].reindex(keys), self.months_.reindex(keys)])
        Z = self._design(cells, self.lists_["usual_price"].reindex(keys).to_numpy())
        return np.einsum("ck,ck->c", Z, coef)

    def optimal_price(self, key: tuple[str, str], price_min: float, price_max: float) -> float:
        """The baseline's revenue-optimal posted price within [price_min, price_max] (NaN without a slope)."""
        if key not in self.lists_.index or np.isnan(self.lists_.loc[key, "slope"]):
            return float("nan")
        level, slope, usual = self.lists_.loc[key, ["level", "slope", "usual_price"]]
        prices = np.linspace(price_min, price_max, 301)
        units = from_target(level + slope * (prices / usual - 1.0))
        return float(prices[int(np.argmax(prices * units))])


# ---------------------------------------------------------------------------------------------------
# Pricing accuracy against a ground truth


def best_selling_lists(catalogue: pd.DataFrame, n: int = TOP_LISTS, moved: bool | None = None) -> list[str]:
    """Stock codes of the ``n`` wholesale lists with the most orders (ties by stock code): the products sold
    most often, not a product one bulk order made look big; with ``moved``, only lists whose posted price
    changed (True) or never did (False)."""
    wholesale = catalogue.xs("wholesale", level="segment").reset_index()
    if moved is not None:
        wholesale = wholesale[(wholesale["price_changes"] > 0) == moved]
    ranked = wholesale.sort_values(["orders", "StockCode"], ascending=[False, True])
    return ranked["StockCode"].head(n).tolist()


@dataclass(frozen=True)
class PricingAccuracy:
    """Relative errors of the optimum against the truth, per list, for a model and for the baseline."""

    per_list: pd.DataFrame  # StockCode, true_price, usual_price, found_price, baseline_price, errors, flags

    def summary(self) -> dict[str, float | int]:
        """Median and p90 errors of the model and the baseline, their ratios and the correlation, JSON-ready."""
        frame = self.per_list
        model, base = frame["rel_error"], frame["baseline_rel_error"]
        true_ratio, found_ratio = (
            frame["true_price"] / frame["usual_price"],
            frame["found_price"] / frame["usual_price"],
        )
        return {
            "median_rel_error": float(model.median()),
            "p90_rel_error": float(model.quantile(0.9)),
            "baseline_median_rel_error": float(base.median()),
            "baseline_p90_rel_error": float(base.quantile(0.9)),
            "median_vs_baseline": float(model.median() / base.median()),
            "p90_vs_baseline": float(model.quantile(0.9) / base.quantile(0.9)),
            "ratio_correlation": float(np.corrcoef(found_ratio, true_ratio)[0, 1]),
            "interval_coverage": float(frame["covered"].mean()),
            "lists": len(frame),
            "identifiable": int(frame["identifiable"].sum()),
            "context_periods": EVAL_CONTEXT,
        }


def pricing_accuracy(
    sweeper: Sweeper, baseline: ListBaseline, truth: pd.DataFrame, codes: list[str]
) -> PricingAccuracy:
    """Default sweep of each wholesale list in ``codes``; its optimum and the baseline's against the truth."""
    optimal = truth.set_index("StockCode")["optimal_price"]
    rows = []
    for code in codes:
        result = sweeper.sweep(SweepRequest(code, segment="wholesale", context=EVAL_CONTEXT))
        assert result.terms is not None
        true_price = float(optimal.loc[code])
        base = baseline.optimal_price((code, "wholesale"), float(result.prices[0]), float(result.prices[-1]))
        rows.append(
            {
                "StockCode": code,
                "true_price": true_price,
                "usual_price": result.terms.usual_price,
                "found_price": result.optimal_price,
                "baseline_price": base,
                "rel_error": abs(result.optimal_price - true_price) / true_price,
                "baseline_rel_error": abs(base - true_price) / true_price,
                "identifiable": result.terms.identifiable,
                "at_grid_edge": result.edge,
                "interval_low": result.interval[0],
                "interval_high": result.interval[1],
                "covered": bool(result.interval[0] <= true_price <= result.interval[1]),
            }
        )
    return PricingAccuracy(pd.DataFrame(rows))


# ---------------------------------------------------------------------------------------------------
# Held-out price-response check (no ground truth needed)


def heldout_events(window: pd.DataFrame, min_periods: int = 2) -> pd.DataFrame:
    """The window's cells of lists whose posted price changed within it, each marked ``before`` (at the
    window's first price of the list) or not; a list needs ``min_periods`` periods on each side."""
    cells = window.sort_values([*KEYS, "period"], kind="stable")
    first = cells.groupby(KEYS, sort=False)["posted_price"].transform("first")
    cells = cells.assign(before=np.isclose(cells["posted_price"], first))
    sides = cells.groupby(KEYS, sort=False)["before"].agg(["sum", "size"])
    enough = sides[(sides["sum"] >= min_periods) & (sides["size"] - sides["sum"] >= min_periods)].index
    return cells[pd.MultiIndex.from_frame(cells[KEYS]).isin(enough)].reset_index(drop=True)


@dataclass(frozen=True)
class HeldoutCheck:
    """Per list with a held-out price change: the jump of the residuals across the change."""

    per_list: pd.DataFrame  # StockCode, segment, actual_change, predicted_change, error

    def summary(self) -> dict[str, float | int]:
        """Median absolute error of the predicted change in log(1 + units), how many lists it covers, and the
        error of predicting no change at all (what ignoring the price would score)."""
        frame = self.per_list
        empty = float("nan")
        return {
            "median_abs_error": float(frame["error"].median()) if len(frame) else empty,
            "no_change_error": float(frame["actual_change"].abs().median()) if len(frame) else empty,
            "lists": len(frame),
        }


def heldout_response_error(events: pd.DataFrame, predict: Callable[[pd.DataFrame], np.ndarray]) -> HeldoutCheck:
    """The check for one model: ``predict`` maps cells to the predicted target (NaN where it has no answer)."""
    y, y_hat = to_target(events["units"]), np.asarray(predict(events), dtype=np.float64)
    frame = events[KEYS].assign(actual=y, predicted=y_hat, before=events["before"].to_numpy())
    frame = frame[np.isfinite(frame["predicted"])]
    if frame.empty:
        return HeldoutCheck(pd.DataFrame(columns=[*KEYS, "actual_change", "predicted_change", "error"]))
    means = frame.groupby([*KEYS, "before"])[["actual", "predicted"]].mean().unstack("before").dropna()
    change = pd.DataFrame(
        {
            "actual_change": means[("actual", False)] - means[("actual", True)],
            "predicted_change": means[("predicted", False)] - means[("predicted", True)],
        }
    )
    change["error"] = (change["actual_change"] - change["predicted_change"]).abs()
    return HeldoutCheck(change.reset_index())


# ---------------------------------------------------------------------------------------------------
# Optima on the grid's edge


def edge_optima(sweeper: Sweeper, codes: list[str]) -> pd.DataFrame:
    """Default sweep of each product in ``codes``: where its optimum sits and whether it is identifiable."""
    rows = []
    for code in codes:
        result = sweeper.sweep(SweepRequest(code, context=EVAL_CONTEXT))
        assert result.terms is not None
        rows.append(
            {
                "StockCode": code,
                "segment": result.terms.segment,
                "optimal_price": result.optimal_price,
                "usual_price": result.terms.usual_price,
                "at_grid_edge": result.edge,
                "identifiable": result.terms.identifiable,
            }
        )
    return pd.DataFrame(rows)
