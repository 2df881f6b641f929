"""The price sweep: predicted quantity and revenue of one product over a grid of prices, and the best price.

For a product, take its own most recent transaction rows (the context, at most ``MAX_CONTEXT``), and
for every grid price re-price every context row: recompute the price features for that price, predict
log quantity, invert the target transform. Per price, the median, minimum and maximum quantity across
context rows; predicted sales = price x median quantity; the optimum is the price with the highest
predicted sales.

Work is done once where it can be. The context block of the model matrix (``FeaturePipeline.
encode_context``) depends only on the product, so it is encoded once and cached; a sweep's plan is that
block plus the grid's price block, and the model predicts the whole grid from the two
(``PriceModel.predict_grid``: families that factorise over context and price never build the
rows x prices matrix, the others predict on it, built with numpy). ``Sweeper.plan`` and the curve
statistics are separate steps so that a server can route the predict call through its own batching in
between: ``Sweeper.pack`` turns a plan into a small numpy array (the product's place in the context
store, the context size and the price block; the context block itself stays in the sweeper's cache) that
concatenates with other plans into a batch, and ``Sweeper.predict_packed`` answers such a batch with
each plan's curve statistics. ``Sweeper.naive_sweep`` is the slow reference the benchmark and the tests
compare against: a cross-joined DataFrame run through the whole preprocessing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pricing.features import CONTEXT_COLUMNS, PRICE_FEATURES, FeaturePipeline, from_target, price_features
from pricing.models.base import grid_matrix

DEFAULT_BINS = 100
MIN_BINS, MAX_BINS = 2, 1_000
DEFAULT_CONTEXT = MAX_CONTEXT = 1_000
SINGLE_PRICE_SPAN = 0.2  # a product only ever sold at one price is swept over +-20% of it

CONTEXT_FILE, CATALOGUE_FILE = "context.parquet", "catalogue.parquet"

Predictor = Callable[[np.ndarray], np.ndarray]
GridPredictor = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (context block, price block) -> (prices, rows)
STATS = ("median", "min", "max")  # curve statistics per grid price, the columns of curve_stats
_HEADER, _PRICE_ROW = 0.0, 1.0  # row kinds of a packed plan


class SweepInputError(ValueError):
    """A sweep request is invalid; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownProductError(LookupError):
    """The product has no training history, so no model can price it."""

    def __init__(self, stockcode: str) -> None:
        super().__init__(f"unknown stockcode {stockcode!r}: no training history for this product")
        self.stockcode = stockcode


# ---------------------------------------------------------------------------------------------------
# Context rows and catalogue


class ContextStore:
    """Each known product's most recent transaction rows, and a catalogue of products with price ranges."""

    def __init__(self, rows: pd.DataFrame, catalogue: pd.DataFrame) -> None:
        self.rows = rows
        self.catalogue = catalogue
        codes = rows["StockCode"].to_numpy()
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], len(codes)]
        self._spans = {codes[s]: (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
        self.codes = list(self._spans)  # a product's position here is its number in packed plans
        self._positions = {code: i for i, code in enumerate(self.codes)}

    @classmethod
    def build(cls, enriched: pd.DataFrame, pipeline: FeaturePipeline, max_rows: int = MAX_CONTEXT) -> ContextStore:
        """Keep the latest ``max_rows`` rows of each product known to ``pipeline``; catalogue all of them."""
        known = enriched[enriched["StockCode"].isin(pipeline.products_.index)]
        ordered = known.sort_values(["StockCode", "InvoiceDate"], kind="stable")
        rows = ordered.groupby("StockCode", sort=False).tail(max_rows)[list(CONTEXT_COLUMNS)]
        catalogue = ordered.groupby("StockCode").agg(
            description=("Description", "last"),
            price_min=("UnitPrice", "min"),
            price_max=("UnitPrice", "max"),
            rows=("UnitPrice", "size"),
            last_sold=("InvoiceDate", "max"),
        )
        return cls(rows.reset_index(drop=True), catalogue)

    def save(self, directory: Path) -> None:
        """Write the rows and catalogue as Parquet into ``directory``."""
        self.rows.to_parquet(directory / CONTEXT_FILE, index=False, compression="zstd")
        self.catalogue.to_parquet(directory / CATALOGUE_FILE, compression="zstd")

    @classmethod
    def load(cls, directory: Path) -> ContextStore:
        """Read a store that ``save`` wrote."""
        return cls(pd.read_parquet(directory / CONTEXT_FILE), pd.read_parquet(directory / CATALOGUE_FILE))

    def __contains__(self, stockcode: object) -> bool:
        return stockcode in self._spans

    def position(self, stockcode: str) -> int:
        """The product's number in this store (its place in ``codes``)."""
        if stockcode not in self._positions:
            raise UnknownProductError(stockcode)
        return self._positions[stockcode]

    def product_rows(self, stockcode: str, limit: int) -> pd.DataFrame:
        """The product's latest ``limit`` context rows, oldest first."""
        if stockcode not in self._spans:
            raise UnknownProductError(stockcode)
        start, end = self._spans[stockcode]
        return self.rows.iloc[max(start, end - limit) : end]

    def price_range(self, stockcode: str) -> tuple[float, float]:
        """The lowest and highest price the product was sold at."""
        if stockcode not in self._spans:
            raise UnknownProductError(stockcode)
        entry = self.catalogue.loc[stockcode]
        return float(entry["price_min"]), float(entry["price_max"])


# ---------------------------------------------------------------------------------------------------
# Requests and results


@dataclass(frozen=True)
class SweepRequest:
    """One sweep: a product, an optional price range (default: its observed range), grid size and context rows."""

    stockcode: str
    price_min: float | None = None
    price_max: float | None = None
    bins: int = DEFAULT_BINS
    context: int = DEFAULT_CONTEXT


@dataclass(frozen=True)
class SweepResult:
    """A demand and revenue curve over a price grid."""

    stockcode: str
    prices: np.ndarray
    quantity: np.ndarray  # median across context rows
    quantity_min: np.ndarray
    quantity_max: np.ndarray
    context_rows: int

    @property
    def sales(self) -> np.ndarray:
        """Predicted sales (revenue) per grid price: price x median quantity."""
        return self.prices * self.quantity

    @property
    def best(self) -> int:
        """Index of the revenue-maximising grid price."""
        return int(np.argmax(self.sales))

    @property
    def optimal_price(self) -> float:
        """The revenue-maximising grid price."""
        return float(self.prices[self.best])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the curve as a list of points plus the optimum."""
        sales = self.sales
        curve = [
            {
                "unit_price": float(p),
                "quantity": float(q),
                "quantity_min": float(lo),
                "quantity_max": float(hi),
                "predicted_sales": float(s),
            }
            for p, q, lo, hi, s in zip(
                self.prices, self.quantity, self.quantity_min, self.quantity_max, sales, strict=True
            )
        ]
        b = self.best
        return {
            "stockcode": self.stockcode,
            "context_rows": self.context_rows,
            "curve": curve,
            "optimal": {
                "unit_price": float(self.prices[b]),
                "quantity": float(self.quantity[b]),
                "predicted_sales": float(sales[b]),
            },
        }


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep request: its grid, the product's encoded context block and the grid's price block."""

    stockcode: str
    prices: np.ndarray
    context: np.ndarray  # (context rows, context columns), shared read-only by every sweep of the product
    price_block: np.ndarray  # (len(prices), price columns)

    @property
    def context_rows(self) -> int:
        """Number of context rows the sweep re-prices."""
        return len(self.context)

    @property
    def matrix(self) -> np.ndarray:
        """The full model matrix, price-major (what a model without a factorised grid predicts on)."""
        return grid_matrix(self.context, self.price_block)


def build_price_grid(price_min: float, price_max: float, bins: int) -> np.ndarray:
    """``bins`` evenly spaced prices from ``price_min`` to ``price_max`` inclusive."""
    return np.linspace(price_min, price_max, bins)


def curve_stats(log_quantity: np.ndarray) -> np.ndarray:
    """Median, minimum and maximum quantity per grid price (columns ``STATS``) from log quantities of shape
    (grid prices, context rows)."""
    quantity = from_target(np.asarray(log_quantity, dtype=np.float64))
    return np.column_stack([np.median(quantity, axis=1), quantity.min(axis=1), quantity.max(axis=1)])


def result_from_stats(stockcode: str, prices: np.ndarray, stats: np.ndarray, context_rows: int) -> SweepResult:
    """The curve from ``curve_stats``."""
    return SweepResult(
        stockcode=stockcode,
        prices=prices,
        quantity=stats[:, 0],
        quantity_min=stats[:, 1],
        quantity_max=stats[:, 2],
        context_rows=context_rows,
    )


# ---------------------------------------------------------------------------------------------------
# The sweeper


class Sweeper:
    """Runs price sweeps for one fitted pipeline, context store and model.

    ``predict`` predicts model-matrix rows; ``predict_grid`` (default: ``predict`` on the tiled matrix)
    predicts a whole grid from a context block and a price block, as ``PriceModel.predict_grid`` does.
    """

    def __init__(
        self,
        pipeline: FeaturePipeline,
        store: ContextStore,
        predict: Predictor,
        predict_grid: GridPredictor | None = None,
        cache_size: int = 1_024,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.predict = predict
        self.predict_grid = predict_grid or self._predict_tiled
        self._context_block = lru_cache(maxsize=cache_size)(self._encode_context)

    def _predict_tiled(self, context: np.ndarray, price_block: np.ndarray) -> np.ndarray:
        return self.predict(grid_matrix(context, price_block)).reshape(len(price_block), len(context))

    def _encode_context(self, stockcode: str, limit: int) -> np.ndarray:
        block = self.pipeline.encode_context(self.store.product_rows(stockcode, limit))
        block.setflags(write=False)  # shared by every sweep of this product
        return block

    def validate(self, request: SweepRequest) -> tuple[float, float]:
        """Check a request and resolve its price range; raise SweepInputError or UnknownProductError."""
        stockcode, price_min, price_max = request.stockcode, request.price_min, request.price_max
        bins, context = request.bins, request.context
        if not (MIN_BINS <= bins <= MAX_BINS):
            raise SweepInputError("bins", f"must be between {MIN_BINS} and {MAX_BINS}, got {bins}")
        if not (1 <= context <= MAX_CONTEXT):
            raise SweepInputError("context", f"must be between 1 and {MAX_CONTEXT}, got {context}")
        for name, value in (("price_min", price_min), ("price_max", price_max)):
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise SweepInputError(name, f"must be a finite positive number, got {value}")
        if stockcode not in self.store:
            raise UnknownProductError(stockcode)
        lo, hi = self.store.price_range(stockcode)
        if lo == hi:
            lo, hi = lo * (1 - SINGLE_PRICE_SPAN), hi * (1 + SINGLE_PRICE_SPAN)
        lo = lo if price_min is None else price_min
        hi = hi if price_max is None else price_max
        if lo >= hi:
            raise SweepInputError("price_min", f"must be below price_max ({lo} >= {hi})")
        return lo, hi

    def plan(self, request: SweepRequest) -> SweepPlan:
        """Validate a request and plan it: the context block from cache, the price block per grid price."""
        lo, hi = self.validate(request)
        prices = build_price_grid(lo, hi, request.bins)
        ref_price = self.pipeline.reference_price(np.array([request.stockcode]))[0]
        return SweepPlan(
            stockcode=request.stockcode,
            prices=prices,
            context=self._context_block(request.stockcode, request.context),
            price_block=price_features(prices, ref_price),
        )

    @staticmethod
    def summarise(plan: SweepPlan, stats: np.ndarray) -> SweepResult:
        """The curve from a plan and its ``curve_stats``."""
        return result_from_stats(plan.stockcode, plan.prices, stats, plan.context_rows)

    def sweep(self, request: SweepRequest) -> SweepResult:
        """Run a whole sweep with this sweeper's model."""
        plan = self.plan(request)
        return self.summarise(plan, curve_stats(self.predict_grid(plan.context, plan.price_block)))

    def pack(self, plan: SweepPlan) -> np.ndarray:
        """A plan as rows of a float32 array that concatenates with other plans into a batch.

        A header row ``[0, product position, context rows, grid prices]``, then one row ``[1, price columns...]``
        per grid price. The context block is not carried: ``predict_packed`` takes it from this sweeper's cache.
        """
        bins, n_price = plan.price_block.shape
        packed = np.zeros((1 + bins, 1 + max(3, n_price)), dtype=np.float32)
        packed[0, :4] = (_HEADER, self.store.position(plan.stockcode), plan.context_rows, bins)
        packed[1:, 0] = _PRICE_ROW
        packed[1:, 1 : 1 + n_price] = plan.price_block
        return packed

    def predict_packed(self, predict_grid: GridPredictor, packed: np.ndarray) -> np.ndarray:
        """The ``curve_stats`` of every plan in a concatenation of packed plans, predicted with ``predict_grid``.

        One float64 row per input row, so that a batch splits back per plan: a plan's first rows hold its
        statistics, one row per grid price (``unpack_stats``), and its last row is zero.
        """
        n_price = len(PRICE_FEATURES)
        out = np.zeros((len(packed), len(STATS)))
        start = 0
        while start < len(packed):
            kind, position, n_ctx, bins = packed[start, :4]
            if kind != _HEADER or not (0 <= position < len(self.store.codes)):
                raise ValueError(f"row {start}: not the header row of a packed sweep plan")
            bins = int(bins)
            context = self._context_block(self.store.codes[int(position)], int(n_ctx))
            price_block = packed[start + 1 : start + 1 + bins, 1 : 1 + n_price]
            out[start : start + bins] = curve_stats(predict_grid(context, price_block))
            start += 1 + bins
        return out

    @staticmethod
    def unpack_stats(plan: SweepPlan, packed_stats: np.ndarray) -> np.ndarray:
        """A plan's ``curve_stats`` from the rows ``predict_packed`` returned for it."""
        return np.asarray(packed_stats, dtype=np.float64)[: len(plan.prices)]

    def naive_sweep(self, request: SweepRequest) -> SweepResult:
        """The reference implementation: cross-join rows with the grid, preprocess every row, group by price."""
        lo, hi = self.validate(request)
        prices = build_price_grid(lo, hi, request.bins)
        rows = self.store.product_rows(request.stockcode, request.context).drop(columns="UnitPrice")
        grid = pd.DataFrame({"UnitPrice": prices})
        crossed = grid.merge(rows, how="cross")
        crossed["quantity"] = from_target(self.predict(self.pipeline.transform(crossed)))
        stats = crossed.groupby("UnitPrice", sort=True)["quantity"].agg(["median", "min", "max"])
        return SweepResult(
            stockcode=request.stockcode,
            prices=stats.index.to_numpy(),
            quantity=stats["median"].to_numpy(),
            quantity_min=stats["min"].to_numpy(),
            quantity_max=stats["max"].to_numpy(),
            context_rows=len(rows),
        )
