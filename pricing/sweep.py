"""The price sweep: a product's demand and revenue per period over a grid of posted prices, and the best price.

A sweep prices one **price list** of a product (``wholesale`` or ``retail``; by default the one that earns it
the most) at its **posted** price: the grid prices are list prices, and quantity-tier discounts and the
list's mix of orders are in the revenue through the list's paid-to-posted ratio. Every context period (the
list's latest periods, at most ``MAX_CONTEXT``) is re-priced at every grid price: units = the model's level
of the period x ``D(price)``, the list's response at that price (``pricing.features``: the same function
training used), and per price the median, minimum and maximum over the periods are kept. Predicted sales
per period = price x median units x paid ratio; the optimum is the grid price with the most.

How sure: the list's price response has a posterior (``pricing.response``). The optimum's interval is the
range of optima the curve would have at the 10th and 90th percentile of the list's slope (the optimum moves
monotonically with the slope), an 80% interval under that posterior. A list whose own data do not pin its
response down is ``identifiable: false``; its curve then rests on the response pooled over similar lists,
and says so (``response: "pooled"``).

Work is done once where it can be: every list's context block is encoded in one pass (``Sweeper.prepare``,
which a server runs once its models have loaded; until then a list's block is encoded on its first sweep
and cached), and so are the lists' terms; the model predicts
one level per context period, whatever the grid, and the grid costs one ``D`` per price. ``Sweeper.plan``
and the curve statistics are separate steps so that a server can batch the prediction across requests:
``plans_stats`` predicts the context blocks of many plans in one model call and splits the levels back.
``Sweeper.naive_sweep`` is the slow reference the benchmark and the tests compare against: a cross-joined
DataFrame of periods and prices run through the whole preprocessing, one model row per (period, price).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pricing.demand import SEGMENTS
from pricing.features import KEYS, FeaturePipeline, from_target, units_at_price
from pricing.limits import DEFAULT_BINS, DEFAULT_CONTEXT, MAX_BINS, MAX_CONTEXT, MIN_BINS
from pricing.response import log_response

# The default grid spans at least this share of the usual price either side, and the observed posted range.
DEFAULT_RANGE = (0.7, 1.45)
INTERVAL_QUANTILE = 1.2816  # the 90th percentile of a standard normal: an 80% interval
CONTEXT_COLUMNS = ("StockCode", "segment", "period", "posted_price", "units", "trading_days")
CONTEXT_FILE, CATALOGUE_FILE = "context.parquet", "catalogue.parquet"

# Catalogue columns a list's terms are read from (the tier's may be missing: no tier recognised).
_TERM_COLUMNS = ("usual_price", "latest_price", "paid_ratio", "identifiable", "own_weight", "price_min", "price_max")
_TIER_COLUMNS = ("tier_factor", "tier_min_quantity", "tier_unit_share")

Predictor = Callable[[np.ndarray], np.ndarray]  # model-matrix rows -> level on the target scale
STATS = ("median", "min", "max")  # curve statistics per grid price, the columns of curve_stats


class SweepInputError(ValueError):
    """A sweep request is invalid; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownProductError(LookupError):
    """The product (or its requested price list) has no training history, so no model can price it."""

    def __init__(self, stockcode: str, segment: str | None = None) -> None:
        what = f"stockcode {stockcode!r}" + (f" on the {segment} list" if segment else "")
        super().__init__(f"unknown {what}: no training history for it")
        self.stockcode = stockcode


# ---------------------------------------------------------------------------------------------------
# Context periods and catalogue


class ContextStore:
    """Each list's latest demand cells (its context periods), and a catalogue of the lists that can be priced."""

    def __init__(self, rows: pd.DataFrame, catalogue: pd.DataFrame) -> None:
        self.rows = rows
        self.catalogue = catalogue  # index (StockCode, segment)
        codes, segments = rows["StockCode"].to_numpy(), rows["segment"].to_numpy()
        changed = (codes[1:] != codes[:-1]) | (segments[1:] != segments[:-1])
        starts = np.flatnonzero(np.r_[True, changed]) if len(rows) else np.empty(0, dtype=np.int64)
        ends = np.r_[starts[1:], len(rows)]
        self._spans = {(codes[s], segments[s]): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
        self.lists = list(self._spans)
        products = catalogue.reset_index()
        self.default_segment = (
            products.sort_values("default", ascending=False)
            .drop_duplicates("StockCode")
            .set_index("StockCode")["segment"]
        )

    @classmethod
    def build(
        cls, cells: pd.DataFrame, lists: pd.DataFrame, pipeline: FeaturePipeline, max_periods: int = MAX_CONTEXT
    ) -> ContextStore:
        """Keep the latest ``max_periods`` cells of each list known to ``pipeline``; catalogue those lists with
        ``lists`` (``pricing.demand`` summary) and their response (identifiable, own weight, slope)."""
        known = cells.set_index(KEYS).index.isin(pipeline.lists_.index)
        ordered = cells[known].sort_values([*KEYS, "period"], kind="stable")
        rows = ordered.groupby(KEYS, sort=False).tail(max_periods)[list(CONTEXT_COLUMNS)]
        catalogue = lists.reindex(pipeline.lists_.index).join(
            pipeline.response_.lists_[["identifiable", "own_weight", "slope", "slope_sd"]]
        )
        catalogue["usual_price"] = pipeline.lists_["usual_price"]
        catalogue["paid_ratio"] = pipeline.lists_["paid_ratio"]
        revenue = catalogue["units_per_period"] * catalogue["usual_price"] * catalogue["paid_ratio"]
        best = revenue.groupby(level="StockCode").transform("max")
        catalogue["default"] = revenue.eq(best) & ~revenue.groupby(level="StockCode").transform(
            lambda r: r.duplicated(keep="first")
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
        return stockcode in self.default_segment.index

    def resolve(self, stockcode: str, segment: str | None) -> tuple[str, str]:
        """The (stock code, segment) list a request means: its own segment, or the product's default one."""
        if stockcode not in self.default_segment.index:
            raise UnknownProductError(stockcode)
        segment = segment or str(self.default_segment[stockcode])
        if (stockcode, segment) not in self._spans:
            raise UnknownProductError(stockcode, segment)
        return stockcode, segment

    def span(self, key: tuple[str, str]) -> tuple[int, int]:
        """Where the list's context periods are in ``rows`` (start, end)."""
        return self._spans[key]

    def list_rows(self, key: tuple[str, str], limit: int) -> pd.DataFrame:
        """The list's latest ``limit`` context periods, oldest first."""
        start, end = self._spans[key]
        return self.rows.iloc[max(start, end - limit) : end]


# ---------------------------------------------------------------------------------------------------
# Requests and results


@dataclass(frozen=True)
class SweepRequest:
    """One sweep: a product, an optional price list, price range, grid size and number of context periods."""

    stockcode: str
    price_min: float | None = None
    price_max: float | None = None
    bins: int = DEFAULT_BINS
    context: int = DEFAULT_CONTEXT
    segment: str | None = None  # None: the product's main list


@dataclass(frozen=True)
class ListTerms:
    """What a sweep needs to know about the list it prices (from the catalogue and the response)."""

    segment: str
    usual_price: float
    latest_price: float
    paid_ratio: float
    slope: float
    slope_sd: float
    shape: float
    identifiable: bool
    own_weight: float
    observed: tuple[float, float]  # lowest and highest posted price
    tier: dict[str, float] | None = None  # min_quantity, price_factor, unit_share

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the list, its prices and tier, and how its response was estimated."""
        return {
            "segment": self.segment,
            "usual_price": self.usual_price,
            "latest_price": self.latest_price,
            "observed_price_range": list(self.observed),
            "paid_ratio": self.paid_ratio,
            "quantity_tier": self.tier,
            "identifiable": self.identifiable,
            "response": "own" if self.identifiable else "pooled",
            "own_weight": round(self.own_weight, 3),
        }


@dataclass(frozen=True)
class SweepResult:
    """A demand and revenue curve over a grid of posted prices, per period."""

    stockcode: str
    prices: np.ndarray
    quantity: np.ndarray  # median units per period across context periods
    quantity_min: np.ndarray
    quantity_max: np.ndarray
    context_rows: int
    terms: ListTerms | None = None
    interval: tuple[float, float] | None = field(default=None)

    @property
    def sales(self) -> np.ndarray:
        """Predicted sales (revenue) per period at each grid price: price x median units x paid ratio."""
        paid = 1.0 if self.terms is None else self.terms.paid_ratio
        return self.prices * self.quantity * paid

    @property
    def best(self) -> int:
        """Index of the revenue-maximising grid price."""
        return int(np.argmax(self.sales))

    @property
    def optimal_price(self) -> float:
        """The revenue-maximising grid price."""
        return float(self.prices[self.best])

    @property
    def edge(self) -> str | None:
        """``lower`` or ``upper`` when the optimum is the grid's first or last price: the curve says to go
        further than the grid."""
        if self.best == 0:
            return "lower"
        return "upper" if self.best == len(self.prices) - 1 else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the curve as a list of points plus the optimum, the list and how sure it is."""
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
        optimal: dict[str, Any] = {
            "unit_price": float(self.prices[b]),
            "quantity": float(self.quantity[b]),
            "predicted_sales": float(sales[b]),
            "at_grid_edge": self.edge,
        }
        if self.interval is not None:
            optimal["interval"] = [float(self.interval[0]), float(self.interval[1])]
        body = {"stockcode": self.stockcode, "context_rows": self.context_rows, "curve": curve, "optimal": optimal}
        if self.terms is not None:
            body["price_list"] = self.terms.describe()
        return body


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep request: its grid, the list's encoded context block and ``log D`` per grid price."""

    stockcode: str
    prices: np.ndarray
    context: np.ndarray  # (context periods, features), shared read-only by every sweep of the list
    log_response: np.ndarray  # (len(prices),)
    terms: ListTerms | None = None

    @property
    def context_rows(self) -> int:
        """Number of context periods the sweep re-prices."""
        return len(self.context)


def build_price_grid(price_min: float, price_max: float, bins: int) -> np.ndarray:
    """``bins`` evenly spaced prices from ``price_min`` to ``price_max`` inclusive."""
    return np.linspace(price_min, price_max, bins)


def curve_stats(levels: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """Median, minimum and maximum units per grid price (columns ``STATS``) from the context periods' levels
    (target scale) and ``log D`` per grid price. ``D`` scales every period alike, so the statistics of the
    levels' units scale with it."""
    units = from_target(levels)
    level_stats = np.array([np.median(units), units.min(), units.max()]) if len(units) else np.zeros(3)
    return np.exp(np.asarray(log_d, dtype=np.float64))[:, None] * level_stats[None, :]


def plans_stats(predict: Predictor, plans: Sequence[SweepPlan]) -> list[np.ndarray]:
    """The ``curve_stats`` of each plan, from one ``predict`` call over all their context blocks."""
    levels = np.asarray(predict(np.vstack([plan.context for plan in plans])))
    bounds = np.cumsum([len(plan.context) for plan in plans])
    if levels.shape != (bounds[-1],):
        raise ValueError(f"the model returned shape {levels.shape} for {bounds[-1]} context rows")
    return [
        curve_stats(block, plan.log_response) for block, plan in zip(np.split(levels, bounds[:-1]), plans, strict=True)
    ]


def result_from_stats(plan: SweepPlan, stats: np.ndarray) -> SweepResult:
    """The curve of a plan from its ``curve_stats``, with the optimum's interval."""
    result = SweepResult(
        stockcode=plan.stockcode,
        prices=plan.prices,
        quantity=stats[:, 0],
        quantity_min=stats[:, 1],
        quantity_max=stats[:, 2],
        context_rows=plan.context_rows,
        terms=plan.terms,
    )
    if plan.terms is None:
        return result
    return SweepResult(**{**result.__dict__, "interval": optimum_interval(result, plan.terms)})


def optimum_interval(result: SweepResult, terms: ListTerms) -> tuple[float, float]:
    """The optima of the curve tilted to the 10th and 90th percentile of the list's slope (lowest first).

    The tilt replaces the served slope by another in the list's log-response; a steeper slope moves the
    optimum down, a flatter one up. A slope at or above zero is no demand response: it is kept just below.
    The tilted sales are compared on the log scale: far above the usual price the served demand underflows to
    zero while the tilt overflows, and their product would be NaN, which ``argmax`` takes for the maximum.
    """
    ratio = result.prices / terms.usual_price
    served = log_response(ratio, terms.slope, terms.shape)
    with np.errstate(divide="ignore"):
        log_sales = np.log(result.sales)  # -inf where nothing sells
    selling = result.sales > 0
    optima = []
    for z in (-INTERVAL_QUANTILE, INTERVAL_QUANTILE):
        slope = min(terms.slope + z * terms.slope_sd, -1e-3)
        with np.errstate(invalid="ignore", over="ignore"):
            tilted = np.where(selling, log_sales + (log_response(ratio, slope, terms.shape) - served), -np.inf)
        optima.append(float(result.prices[int(np.argmax(tilted))]))
    return min(optima), max(optima)


# ---------------------------------------------------------------------------------------------------
# The sweeper


class Sweeper:
    """Runs price sweeps for one fitted pipeline, context store and model (``predict``: model-matrix rows to
    levels, as ``PriceModel.predict`` does)."""

    def __init__(
        self,
        pipeline: FeaturePipeline,
        store: ContextStore,
        predict: Predictor,
        cache_size: int = 1_024,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.predict = predict
        # Until prepare() has run, a list's context block and terms are worked out on its first sweep and kept.
        self._cached_block = lru_cache(maxsize=cache_size)(self._encode_context)
        self._cached_terms = lru_cache(maxsize=cache_size)(self._list_terms)
        self._encoded: np.ndarray | None = None  # every context row, encoded (prepare)
        self._all_terms: dict[tuple[str, str], ListTerms] = {}  # every list's terms (prepare)

    def prepare(self) -> None:
        """Encode every list's context periods and work out every list's terms at once.

        Per list, on its first sweep, that costs about 8 ms (pandas lookups and one small encoding); for the
        whole store it is one vectorised pass (0.4-0.9 s for the real file's and the synthetic catalogues,
        15-22 MB of float32). A server calls this once its models have loaded, in the background: until it
        returns, sweeps take the per-list path, and both give the same blocks and terms.
        """
        encoded = self.pipeline.encode_context(self.store.rows)
        encoded.setflags(write=False)  # every sweep's block is a view of it
        catalogue = self.store.catalogue
        keys = [(str(code), str(segment)) for code, segment in catalogue.index]
        self._all_terms = dict(zip(keys, self._terms_of(catalogue), strict=True))
        self._encoded = encoded
        self._cached_block.cache_clear()
        self._cached_terms.cache_clear()

    def terms(self, key: tuple[str, str]) -> ListTerms:
        """The list's prices, tier and response."""
        terms = self._all_terms.get(key)
        return terms if terms is not None else self._cached_terms(key)

    def _context_block(self, key: tuple[str, str], limit: int) -> np.ndarray:
        """The list's latest ``limit`` context periods, encoded (read-only)."""
        if self._encoded is None:
            return self._cached_block(key, limit)
        start, end = self.store.span(key)
        return self._encoded[max(start, end - limit) : end]

    def _encode_context(self, key: tuple[str, str], limit: int) -> np.ndarray:
        block = self.pipeline.encode_context(self.store.list_rows(key, limit))
        block.setflags(write=False)  # shared by every sweep of this list
        return block

    def _list_terms(self, key: tuple[str, str]) -> ListTerms:
        return self._terms_of(self.store.catalogue.loc[[key]])[0]

    def _terms_of(self, entries: pd.DataFrame) -> list[ListTerms]:
        """The terms of each catalogue entry (index: stock code, segment), from the catalogue and the pipeline."""
        codes = entries.index.get_level_values(0).to_numpy()
        segments = entries.index.get_level_values(1).to_numpy()
        response = self.pipeline.response_
        slopes, slope_sds = response.slopes(codes, segments)
        shapes = response.shape(segments)
        columns = {name: entries[name].to_numpy() for name in _TERM_COLUMNS}
        tiers = {name: entries.get(name, pd.Series(np.nan, index=entries.index)).to_numpy() for name in _TIER_COLUMNS}
        terms = []
        for i, segment in enumerate(segments):
            tier = None
            if pd.notna(tiers["tier_factor"][i]):
                tier = {
                    "min_quantity": float(tiers["tier_min_quantity"][i]),
                    "price_factor": round(float(tiers["tier_factor"][i]), 4),
                    "unit_share": round(float(tiers["tier_unit_share"][i]), 4),
                }
            terms.append(
                ListTerms(
                    segment=str(segment),
                    usual_price=float(columns["usual_price"][i]),
                    latest_price=float(columns["latest_price"][i]),
                    paid_ratio=float(columns["paid_ratio"][i]),
                    slope=float(slopes[i]),
                    slope_sd=float(slope_sds[i]),
                    shape=float(shapes[i]),
                    identifiable=bool(columns["identifiable"][i]),
                    own_weight=float(columns["own_weight"][i]),
                    observed=(float(columns["price_min"][i]), float(columns["price_max"][i])),
                    tier=tier,
                )
            )
        return terms

    def validate(self, request: SweepRequest) -> tuple[tuple[str, str], float, float]:
        """Check a request and resolve its list and price range; raise SweepInputError or UnknownProductError."""
        price_min, price_max, bins, context = request.price_min, request.price_max, request.bins, request.context
        if not (MIN_BINS <= bins <= MAX_BINS):
            raise SweepInputError("bins", f"must be between {MIN_BINS} and {MAX_BINS}, got {bins}")
        if not (1 <= context <= MAX_CONTEXT):
            raise SweepInputError("context", f"must be between 1 and {MAX_CONTEXT}, got {context}")
        if request.segment is not None and request.segment not in SEGMENTS:
            raise SweepInputError("segment", f"must be one of {', '.join(SEGMENTS)}, got {request.segment!r}")
        for name, value in (("price_min", price_min), ("price_max", price_max)):
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise SweepInputError(name, f"must be a finite positive number, got {value}")
        key = self.store.resolve(request.stockcode, request.segment)
        lo, hi = self.default_range(key)
        lo = lo if price_min is None else price_min
        hi = hi if price_max is None else price_max
        if lo >= hi:
            raise SweepInputError("price_min", f"must be below price_max ({lo} >= {hi})")
        return key, lo, hi

    def default_range(self, key: tuple[str, str]) -> tuple[float, float]:
        """The observed posted range, widened to at least ``DEFAULT_RANGE`` times the usual price."""
        terms = self.terms(key)
        lo = min(terms.observed[0], DEFAULT_RANGE[0] * terms.usual_price)
        hi = max(terms.observed[1], DEFAULT_RANGE[1] * terms.usual_price)
        return round(lo, 4), round(hi, 4)

    def plan(self, request: SweepRequest) -> SweepPlan:
        """Validate a request and plan it: the context block from cache, the price block per grid price."""
        key, lo, hi = self.validate(request)
        prices = build_price_grid(lo, hi, request.bins)
        terms = self.terms(key)
        # float32, as a packed plan carries it: the direct and the batched path give identical answers.
        log_d = log_response(prices / terms.usual_price, terms.slope, terms.shape).astype(np.float32)
        return SweepPlan(key[0], prices, self._context_block(key, request.context), log_d, terms)

    @staticmethod
    def summarise(plan: SweepPlan, stats: np.ndarray) -> SweepResult:
        """The curve from a plan and its ``curve_stats``."""
        return result_from_stats(plan, stats)

    def sweep(self, request: SweepRequest) -> SweepResult:
        """Run a whole sweep with this sweeper's model."""
        plan = self.plan(request)
        return self.summarise(plan, curve_stats(self.predict(plan.context), plan.log_response))

    def naive_sweep(self, request: SweepRequest) -> SweepResult:
        """The reference implementation: cross-join periods with the grid, preprocess every row, group by price."""
        key, lo, hi = self.validate(request)
        prices = build_price_grid(lo, hi, request.bins)
        rows = self.store.list_rows(key, request.context).drop(columns="posted_price")
        crossed = pd.DataFrame({"posted_price": prices}).merge(rows, how="cross")
        levels = self.predict(self.pipeline.transform(crossed))
        crossed["units"] = units_at_price(levels, self.pipeline.log_response(crossed))
        stats = crossed.groupby("posted_price", sort=True)["units"].agg(["median", "min", "max"])
        plan = SweepPlan(key[0], stats.index.to_numpy(), np.empty((len(rows), 0)), np.empty(0), self.terms(key))
        return result_from_stats(plan, stats.to_numpy())
