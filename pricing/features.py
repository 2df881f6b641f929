"""Features of a demand cell (one product's price list in one period), the time split and the target.

The unit of everything downstream is a demand cell from ``pricing.demand``: units of a product sold on one
price list in one period against the price posted for it. A cell's expected units factorise into

    units(period, price) = level(period) x D(price),        log D = pricing.response.log_response

where ``D`` is the list's own, partially pooled response to its posted price relative to its usual price
(``pricing.response``; ``D = 1`` at the usual price) and the level is what the list would sell at its usual
price in that period. The model families forecast the level from the period's calendar and the list's
features; the price enters only through ``D``. No family can know more about one product's response than
its own price history and the pooled response of similar ones, which is what ``D`` holds, and a family
that learned its own price effect from log(1 + units) learned it attenuated by the many small counts.

In order:

1. ``split_by_time``: the latest periods are the test set, the periods before them validation (a period is
   never split).
2. ``FeaturePipeline.fit`` learns from training cells only: each list's usual (most often posted) price, its
   level (units, orders and order size per period), its paid-to-posted ratio, and its price response.
3. ``FeaturePipeline.transform``: the model matrix of the level (the context block: calendar and list
   features). ``FeaturePipeline.level_target``: the training target, the cell's units at its usual price
   (``units / D(posted price)``) on the target scale. ``FeaturePipeline.log_response``: ``log D`` of cells
   at their posted (or other) prices, the one price function training, ``/predict`` and the sweep share.

The target is ``log(1 + units)`` (a period may sell nothing): ``to_target`` and ``from_target``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pricing.demand import period_start
from pricing.response import PriceResponse, log_response

CALENDAR_FEATURES = ("week_sin", "week_cos", "days_to_christmas", "log_trading_days")
LIST_FEATURES = (
    "is_retail", "log_usual_price", "log_units_per_period", "log_orders_per_period", "mean_log_size",
    "paid_ratio", "log_periods", "list_season", "list_trend",
)  # fmt: skip
RESPONSE_FEATURES = ("response_slope", "response_own_weight")
CONTEXT_FEATURES = CALENDAR_FEATURES + LIST_FEATURES + RESPONSE_FEATURES
FEATURES = CONTEXT_FEATURES  # the families' input: the level does not depend on the price
KEYS = ["StockCode", "segment"]

_SMOOTHING_PERIODS = 4.0  # a list's level is shrunk towards its segment's as if it had this many average periods


def to_target(units: np.ndarray | pd.Series) -> np.ndarray:
    """Model target from units per period (zero allowed)."""
    return np.log1p(np.asarray(units, dtype=np.float64))


def from_target(target: np.ndarray) -> np.ndarray:
    """Units per period from model outputs; the inverse of ``to_target``, never below zero."""
    return np.maximum(np.expm1(np.asarray(target, dtype=np.float64)), 0.0)


def units_at_price(level_target: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """Units per period from a predicted level (target scale) and ``log D`` at the price (broadcasting)."""
    return from_target(level_target) * np.exp(log_d)


# ---------------------------------------------------------------------------------------------------
# Time split


@dataclass(frozen=True)
class Split:
    """Training, validation and test cells, in time order."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def parts(self) -> list[tuple[str, pd.DataFrame]]:
        """(name, cells) of each part, in time order."""
        return [("train", self.train), ("val", self.val), ("test", self.test)]

    def describe(self) -> str:
        """One line per part: cells and period range."""
        lines = []
        for name, part in self.parts():
            start, end = part["period"].min(), part["period"].max()
            lines.append(f"{name:<5} {len(part):>9,} cells  periods {start:%Y-%m-%d} .. {end:%Y-%m-%d}")
        return "\n".join(lines)


def split_by_time(cells: pd.DataFrame, val_fraction: float = 0.15, test_fraction: float = 0.15) -> Split:
    """Split by period: the latest ``test_fraction`` of periods is the test set, the block before it validation."""
    periods = np.sort(cells["period"].unique())
    n_test = max(1, round(len(periods) * test_fraction))
    n_val = max(1, round(len(periods) * val_fraction))
    if len(periods) < n_test + n_val + 2:
        raise ValueError(f"{len(periods)} periods are too few to split into training, validation and test")
    test_start, val_start = periods[-n_test], periods[-n_test - n_val]
    parts = [
        cells[cells["period"] < val_start],
        cells[(cells["period"] >= val_start) & (cells["period"] < test_start)],
        cells[cells["period"] >= test_start],
    ]
    return Split(*(p.reset_index(drop=True) for p in parts))


# ---------------------------------------------------------------------------------------------------
# Fitted pipeline


class FeaturePipeline:
    """Turns demand cells into the model matrix; everything it learns comes from ``fit`` cells."""

    feature_names: tuple[str, ...] = FEATURES

    def __init__(self, period: str = "W") -> None:
        self.period = period

    def fit(self, cells: pd.DataFrame) -> FeaturePipeline:
        """Learn list statistics and price responses from training cells; return self."""
        group = cells.groupby(KEYS, sort=True)
        counts = cells.groupby([*KEYS, "posted_price"]).size().rename("n").reset_index()
        usual = counts.sort_values([*KEYS, "n", "posted_price"], ascending=[True, True, False, False])
        usual = usual.drop_duplicates(KEYS).set_index(KEYS)["posted_price"]
        listed = (cells["posted_price"] * cells["units"]).groupby([cells["StockCode"], cells["segment"]]).sum()
        stats = pd.DataFrame(
            {
                "usual_price": usual,
                "periods": group.size(),
                "units": group["units"].sum(),
                "orders": group["orders"].sum(),
                "lines": group["lines"].sum(),
                "log_quantity_sum": group["log_quantity_sum"].sum(),
                "paid_ratio": (group["revenue"].sum() / listed.where(listed > 0)).clip(0.0, 1.5),
            }
        )
        self.segments_ = self._segment_defaults(stats)
        defaults = self.segments_.reindex(stats.index.get_level_values("segment"))
        n, prior_n = stats["periods"].to_numpy(), _SMOOTHING_PERIODS
        # Levels are shrunk towards the segment's, so a list seen twice does not get an extreme value.
        stats["log_units_per_period"] = np.log1p(
            (stats["units"] + prior_n * defaults["units_per_period"].to_numpy()) / (n + prior_n)
        )
        stats["log_orders_per_period"] = np.log1p(
            (stats["orders"] + prior_n * defaults["orders_per_period"].to_numpy()) / (n + prior_n)
        )
        stats["mean_log_size"] = (stats["log_quantity_sum"] + prior_n * defaults["mean_log_size"].to_numpy()) / (
            stats["lines"] + prior_n
        )
        stats["paid_ratio"] = _fill(stats["paid_ratio"], defaults["paid_ratio"])
        stats["log_periods"] = np.log(n)

        self.response_ = PriceResponse().fit(cells, stats["usual_price"])
        response = self.response_.lists_.reindex(stats.index)
        stats = stats.join(response[["slope", "own_weight", "season", "trend"]])
        self.lists_ = stats[
            ["usual_price", "log_units_per_period", "log_orders_per_period", "mean_log_size", "paid_ratio",
             "log_periods", "season", "trend", "slope", "own_weight"]
        ].astype(np.float64)  # fmt: skip
        self.trading_days_ = int(cells.groupby("period")["trading_days"].first().median())
        return self

    @staticmethod
    def _segment_defaults(stats: pd.DataFrame) -> pd.DataFrame:
        """Per segment: mean units, orders and paid ratio per period and mean log order size, for lists
        with little or no history."""
        by = stats.groupby(level="segment")
        return pd.DataFrame(
            {
                "units_per_period": by["units"].sum() / by["periods"].sum(),
                "orders_per_period": by["orders"].sum() / by["periods"].sum(),
                "mean_log_size": by["log_quantity_sum"].sum() / by["lines"].sum().clip(lower=1),
                "paid_ratio": by["paid_ratio"].median(),
            }
        ).fillna({"paid_ratio": 1.0})

    def _check_fitted(self) -> None:
        if not hasattr(self, "lists_"):
            raise RuntimeError("FeaturePipeline is not fitted: call fit(training_cells) first")

    def knows(self, stockcode: str, segment: str) -> bool:
        """Whether the list was seen in the training cells."""
        self._check_fitted()
        return (stockcode, segment) in self.lists_.index

    def list_terms(self, stockcodes: np.ndarray, segments: np.ndarray) -> pd.DataFrame:
        """Per row: usual price, paid ratio, response slope and shape of the (stock code, segment) list; lists
        never seen in training get their segment's defaults and the pooled response."""
        self._check_fitted()
        stockcodes, segments = np.asarray(stockcodes), np.asarray(segments)
        keys = pd.MultiIndex.from_arrays([stockcodes, segments])
        known = self.lists_.reindex(keys)
        slope, _ = self.response_.slopes(stockcodes, segments)
        defaults = self.segments_.reindex(segments)
        return pd.DataFrame(
            {
                "known": known["usual_price"].notna().to_numpy(),
                "usual_price": known["usual_price"].to_numpy(),
                "paid_ratio": _fill(known["paid_ratio"], defaults["paid_ratio"]),
                "slope": slope,
                "shape": self.response_.shape(segments),
            }
        )

    def encode_context(self, cells: pd.DataFrame) -> np.ndarray:
        """The context block, shape (n, len(CONTEXT_FEATURES)): everything that does not depend on the price.

        ``cells`` needs StockCode, segment, period and trading_days (units are not read).
        """
        self._check_fitted()
        period = pd.DatetimeIndex(cells["period"])
        mid = period + pd.Timedelta(days=3)
        week = mid.isocalendar().week.to_numpy(np.float64)
        to_christmas = (359 - mid.day_of_year.to_numpy(np.float64)) % 365  # 25 December is day 359
        segments = cells["segment"].to_numpy()
        keys = pd.MultiIndex.from_arrays([cells["StockCode"].to_numpy(), segments])
        known = self.lists_.reindex(keys)
        defaults = self.segments_.reindex(segments)
        slope, _ = self.response_.slopes(cells["StockCode"].to_numpy(), segments)
        columns = [
            np.sin(2 * np.pi * week / 52),
            np.cos(2 * np.pi * week / 52),
            np.minimum(to_christmas, 120.0) / 120.0,
            np.log(np.maximum(cells["trading_days"].to_numpy(np.float64), 1.0)),
            segments == "retail",
            np.log(_fill(known["usual_price"], cells["posted_price"])),
            _fill(known["log_units_per_period"], np.log1p(defaults["units_per_period"])),
            _fill(known["log_orders_per_period"], np.log1p(defaults["orders_per_period"])),
            _fill(known["mean_log_size"], defaults["mean_log_size"]),
            _fill(known["paid_ratio"], defaults["paid_ratio"]),
            _fill(known["log_periods"], 0.0),
            _fill(known["season"], 0.0),
            _fill(known["trend"], 0.0),
            slope,
            _fill(known["own_weight"], 0.0),
        ]
        block = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
        return block.astype(np.float32)

    def log_response(self, cells: pd.DataFrame, prices: np.ndarray | None = None) -> np.ndarray:
        """``log D`` of each cell at its posted price (or at ``prices``), relative to its list's usual price."""
        terms = self.list_terms(cells["StockCode"].to_numpy(), cells["segment"].to_numpy())
        usual = _fill(terms["usual_price"], cells["posted_price"])
        posted = cells["posted_price"].to_numpy() if prices is None else np.asarray(prices, dtype=np.float64)
        return log_response(posted / usual, terms["slope"].to_numpy(), terms["shape"].to_numpy())

    def level_target(self, cells: pd.DataFrame) -> np.ndarray:
        """The training target of the level: each cell's units at its list's usual price, ``units / D``."""
        return to_target(cells["units"].to_numpy(np.float64) * np.exp(-self.log_response(cells)))

    def transform(self, cells: pd.DataFrame) -> np.ndarray:
        """The model matrix of the level, shape (n, len(FEATURES)): the context block."""
        return self.encode_context(cells)

    def cells_for(
        self, stockcodes: np.ndarray, segments: np.ndarray, dates: pd.Series, prices: np.ndarray
    ) -> pd.DataFrame:
        """Demand cells for requests that name a product, a list, any date of a period and a posted price: the
        period the date falls in, traded on as many days as a typical period."""
        self._check_fitted()
        return pd.DataFrame(
            {
                "StockCode": np.asarray(stockcodes),
                "segment": np.asarray(segments),
                "period": period_start(pd.Series(pd.to_datetime(dates)), self.period).to_numpy(),
                "posted_price": np.asarray(prices, dtype=np.float64),
                "trading_days": self.trading_days_,
            }
        )


def _fill(values: pd.Series, default: pd.Series | np.ndarray | float) -> np.ndarray:
    """``values`` as an array, with missing entries taken from ``default`` (positionally, or a scalar)."""
    values = np.asarray(values, dtype=np.float64)
    default = np.broadcast_to(np.asarray(default, dtype=np.float64), values.shape)
    return np.where(np.isnan(values), default, values)
