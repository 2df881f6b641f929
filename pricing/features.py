"""Features, the time split and the target transform.

Three stages, in this order:

1. ``add_history_features`` (no fitting): per-row aggregates that use only rows strictly earlier in time
   (the product's lines in the previous 28 days; the customer's earlier invoices and their mean log
   quantity). They are computed on the whole cleaned log, which is what a live system knows at each
   moment, so they leak nothing from the future.
2. ``split_by_time``: the latest period is the test set, the period before it the validation set.
3. ``FeaturePipeline`` (fitted on training rows only): per-product reference price and level, per-country
   level, then the model matrix. The matrix is the context block (everything that does not depend on
   the price) followed by the price block from ``price_features``; training and the price sweep both
   call that one function, so the two can never drift apart.

The model target is log quantity: ``to_target`` and ``from_target`` are the only transforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CALENDAR_FEATURES = ("month_sin", "month_cos", "week_sin", "week_cos", "day_of_week", "hour", "days_to_christmas")
PRODUCT_FEATURES = ("product_known", "log_ref_price", "product_mean_logq", "log_product_lines", "product_price_spread")
HISTORY_FEATURES = ("log_product_lines_28d", "has_customer", "log_customer_prior_invoices", "customer_past_mean_logq")
COUNTRY_FEATURES = ("is_uk", "country_mean_logq")
CONTEXT_FEATURES = CALENDAR_FEATURES + PRODUCT_FEATURES + HISTORY_FEATURES + COUNTRY_FEATURES
# The price enters once, relative to the product's reference price (see docs/MODELS.md for the measured
# alternatives): an absolute log price mixes the between-product price tier (already in log_ref_price) with
# within-product price moves, and a second, nearly collinear transform of the ratio (its log) leaves the
# curvature of the demand curve, and with it the revenue optimum, weakly identified.
PRICE_FEATURES = ("price_ratio",)
FEATURES = CONTEXT_FEATURES + PRICE_FEATURES

# Columns add_history_features appends; the serving context store keeps them with the raw columns.
HISTORY_COLUMNS = ("product_lines_28d", "customer_prior_invoices", "customer_past_mean_logq")
CONTEXT_COLUMNS = ("StockCode", "InvoiceDate", "UnitPrice", "Quantity", "CustomerID", "Country", *HISTORY_COLUMNS)

_WINDOW = pd.Timedelta(days=28)


def to_target(quantity: np.ndarray | pd.Series) -> np.ndarray:
    """Model target from quantities (cleaned quantities are >= 1)."""
    return np.log(np.asarray(quantity, dtype=np.float64))


def from_target(log_quantity: np.ndarray) -> np.ndarray:
    """Quantities from model outputs; the inverse of ``to_target``."""
    return np.exp(log_quantity)


def price_features(unit_price: np.ndarray, ref_price: np.ndarray) -> np.ndarray:
    """The price block of the model matrix, shape (n, len(PRICE_FEATURES)), for prices and reference prices."""
    ratio = np.asarray(unit_price, dtype=np.float64) / ref_price
    return ratio.astype(np.float32)[:, None]


# ---------------------------------------------------------------------------------------------------
# History features (past only)


def add_history_features(clean: pd.DataFrame) -> pd.DataFrame:
    """Return the cleaned rows with HISTORY_COLUMNS added, each computed from strictly earlier rows only."""
    rows = clean.reset_index(drop=True)
    out = rows.copy()
    out["product_lines_28d"] = _count_recent_lines(rows)
    prior, past_mean = _customer_history(rows)
    out["customer_prior_invoices"] = prior
    out["customer_past_mean_logq"] = past_mean
    return out


def _count_recent_lines(rows: pd.DataFrame) -> np.ndarray:
    """Lines of the same product in the 28 days before each row (rows at the same instant excluded)."""
    group = pd.factorize(rows["StockCode"])[0].astype(np.int64)
    seconds = (rows["InvoiceDate"] - rows["InvoiceDate"].min()).dt.total_seconds().to_numpy(np.int64)
    span = int(seconds.max()) + int(_WINDOW.total_seconds()) + 1
    key = group * span + seconds  # one sorted axis holding every product's timeline back to back
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    window_start = np.searchsorted(sorted_key, key - int(_WINDOW.total_seconds()), side="left")
    first_same_instant = np.searchsorted(sorted_key, key, side="left")
    return (first_same_instant - window_start).astype(np.int64)


def _customer_history(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the customer's number of earlier invoices and mean log quantity over them (NaN if none)."""
    known = rows["CustomerID"].notna()
    lines = rows.loc[known, ["CustomerID", "InvoiceNo", "InvoiceDate"]]
    lines = lines.assign(logq=to_target(rows.loc[known, "Quantity"]))
    invoices = (
        lines.groupby(["CustomerID", "InvoiceNo"], sort=False)
        .agg(time=("InvoiceDate", "min"), logq_sum=("logq", "sum"), n=("logq", "size"))
        .reset_index()
        .sort_values(["CustomerID", "time", "InvoiceNo"], kind="stable")
    )
    by_customer = invoices.groupby("CustomerID", sort=False)
    invoices["prior"] = by_customer.cumcount()
    past_sum = by_customer["logq_sum"].cumsum() - invoices["logq_sum"]
    past_n = by_customer["n"].cumsum() - invoices["n"]
    invoices["past_mean"] = np.where(past_n > 0, past_sum / past_n.where(past_n > 0, 1), np.nan)

    merged = rows[["CustomerID", "InvoiceNo"]].merge(
        invoices[["CustomerID", "InvoiceNo", "prior", "past_mean"]], on=["CustomerID", "InvoiceNo"], how="left"
    )
    return merged["prior"].fillna(0).to_numpy(np.int64), merged["past_mean"].to_numpy(np.float64)


# ---------------------------------------------------------------------------------------------------
# Time split


@dataclass(frozen=True)
class Split:
    """Training, validation and test rows, in time order."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def describe(self) -> str:
        """One line per part: rows and date range."""
        parts = []
        for name, part in (("train", self.train), ("val", self.val), ("test", self.test)):
            start, end = part["InvoiceDate"].min(), part["InvoiceDate"].max()
            parts.append(f"{name:<5} {len(part):>9,} rows  {start:%Y-%m-%d} .. {end:%Y-%m-%d}")
        return "\n".join(parts)


def split_by_time(rows: pd.DataFrame, val_fraction: float = 0.15, test_fraction: float = 0.15) -> Split:
    """Split by calendar day: the latest ``test_fraction`` of rows is the test set, the block before it validation."""
    days = rows["InvoiceDate"].dt.normalize()
    test_start = days.quantile(1.0 - test_fraction, interpolation="lower")
    val_start = days.quantile(1.0 - test_fraction - val_fraction, interpolation="lower")
    train = rows[days < val_start]
    val = rows[(days >= val_start) & (days < test_start)]
    test = rows[days >= test_start]
    if min(len(train), len(val), len(test)) == 0:
        raise ValueError(f"time split left an empty part (train {len(train)}, val {len(val)}, test {len(test)} rows)")
    return Split(train.reset_index(drop=True), val.reset_index(drop=True), test.reset_index(drop=True))


# ---------------------------------------------------------------------------------------------------
# Fitted pipeline


class FeaturePipeline:
    """Turns enriched transaction rows into the model matrix; everything it learns comes from ``fit`` rows."""

    feature_names: tuple[str, ...] = FEATURES
    context_names: tuple[str, ...] = CONTEXT_FEATURES

    def __init__(self, smoothing: float = 20.0) -> None:
        self.smoothing = smoothing

    def fit(self, rows: pd.DataFrame) -> FeaturePipeline:
        """Learn product and country statistics from training rows; return self."""
        logq = to_target(rows["Quantity"])
        self.global_logq_ = float(logq.mean())
        self.global_price_ = float(rows["UnitPrice"].median())
        frame = pd.DataFrame(
            {
                "StockCode": rows["StockCode"].to_numpy(),
                "Country": rows["Country"].to_numpy(),
                "logq": logq,
                "log_price": np.log(rows["UnitPrice"].to_numpy(np.float64)),
            }
        )
        products = frame.groupby("StockCode").agg(
            n=("logq", "size"),
            logq_sum=("logq", "sum"),
            price_spread=("log_price", "std"),
            log_ref_price=("log_price", "median"),
        )
        products["mean_logq"] = self._smoothed(products["logq_sum"], products["n"])
        products["log_lines"] = np.log1p(products["n"])
        products["price_spread"] = products["price_spread"].fillna(0.0)
        self.products_ = products[["log_ref_price", "mean_logq", "log_lines", "price_spread"]].astype(np.float64)
        countries = frame.groupby("Country")["logq"].agg(["sum", "size"])
        self.countries_ = self._smoothed(countries["sum"], countries["size"]).astype(np.float64)
        return self

    def _smoothed(self, total: pd.Series, count: pd.Series) -> pd.Series:
        # Shrinks small groups towards the global level so a product seen twice does not get an extreme value.
        return (total + self.smoothing * self.global_logq_) / (count + self.smoothing)

    def _check_fitted(self) -> None:
        if not hasattr(self, "products_"):
            raise RuntimeError("FeaturePipeline is not fitted: call fit(training_rows) first")

    def knows(self, stockcode: str) -> bool:
        """Whether the product was seen in the training rows."""
        self._check_fitted()
        return stockcode in self.products_.index

    def reference_price(self, stockcodes: pd.Series | np.ndarray) -> np.ndarray:
        """Each product's training median price (the global median for products never seen in training)."""
        self._check_fitted()
        log_ref = self.products_["log_ref_price"].reindex(np.asarray(stockcodes)).to_numpy()
        return np.exp(np.where(np.isnan(log_ref), np.log(self.global_price_), log_ref))

    def encode_context(self, rows: pd.DataFrame) -> np.ndarray:
        """The context block, shape (n, len(CONTEXT_FEATURES)): everything that does not depend on the price."""
        self._check_fitted()
        dates = rows["InvoiceDate"]
        month = dates.dt.month.to_numpy(np.float64)
        week = dates.dt.isocalendar().week.to_numpy(np.float64)
        to_christmas = (359 - dates.dt.day_of_year.to_numpy(np.float64)) % 365  # 25 December is day 359

        product = self.products_.reindex(rows["StockCode"].to_numpy())
        known = product["mean_logq"].notna().to_numpy()
        customer = rows["CustomerID"].notna().to_numpy()
        past_mean = rows["customer_past_mean_logq"].to_numpy(np.float64)
        country_level = self.countries_.reindex(rows["Country"].to_numpy()).to_numpy()
        columns = [
            np.sin(2 * np.pi * month / 12),
            np.cos(2 * np.pi * month / 12),
            np.sin(2 * np.pi * week / 52),
            np.cos(2 * np.pi * week / 52),
            dates.dt.day_of_week.to_numpy(np.float64),
            dates.dt.hour.to_numpy(np.float64),
            np.minimum(to_christmas, 120.0) / 120.0,
            known.astype(np.float64),
            product["log_ref_price"].fillna(np.log(self.global_price_)).to_numpy(),
            product["mean_logq"].fillna(self.global_logq_).to_numpy(),
            product["log_lines"].fillna(0.0).to_numpy(),
            product["price_spread"].fillna(0.0).to_numpy(),
            np.log1p(rows["product_lines_28d"].to_numpy(np.float64)),
            customer.astype(np.float64),
            np.log1p(rows["customer_prior_invoices"].to_numpy(np.float64)),
            np.where(np.isnan(past_mean), self.global_logq_, past_mean),
            (rows["Country"] == "United Kingdom").to_numpy(np.float64),
            np.where(np.isnan(country_level), self.global_logq_, country_level),
        ]
        return np.column_stack(columns).astype(np.float32)

    def transform(self, rows: pd.DataFrame) -> np.ndarray:
        """The full model matrix, shape (n, len(FEATURES)): context block then price block."""
        context = self.encode_context(rows)
        prices = price_features(rows["UnitPrice"].to_numpy(), self.reference_price(rows["StockCode"]))
        return np.hstack([context, prices])


class HistoryIndex:
    """History features for new rows, as of each row's own time, from a table of earlier transactions.

    Training computes HISTORY_COLUMNS over the whole log (``add_history_features``); a served model only
    has the history it carries (its context rows). This index answers the same three questions for rows
    a client sends: product lines in the 28 days before the row, the customer's earlier invoices (distinct
    invoice times) and their mean log quantity, each from history rows strictly earlier than the row.
    """

    def __init__(self, history: pd.DataFrame) -> None:
        frame = pd.DataFrame({
            "code": history["StockCode"].to_numpy(), "customer": history["CustomerID"].to_numpy(),
            "t": _epoch_seconds(history["InvoiceDate"]), "logq": to_target(history["Quantity"]),
        }).sort_values("t", kind="stable")  # fmt: skip
        self._product_times = {code: g.to_numpy() for code, g in frame.groupby("code", sort=False)["t"]}
        self._customers: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for customer, group in frame.dropna(subset=["customer"]).groupby("customer", sort=False):
            times = group["t"].to_numpy()
            new_invoice = np.r_[True, times[1:] != times[:-1]]
            self._customers[customer] = (
                times,
                np.concatenate([[0], np.cumsum(new_invoice)]),  # distinct invoice times among the first i rows
                np.concatenate([[0.0], np.cumsum(group["logq"].to_numpy())]),  # sum of log q of the first i rows
            )

    def features(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` with HISTORY_COLUMNS added."""
        seconds = _epoch_seconds(rows["InvoiceDate"])
        window = int(_WINDOW.total_seconds())
        lines, prior, past_mean = [], [], []
        for code, customer, t in zip(rows["StockCode"], rows["CustomerID"], seconds, strict=True):
            product = self._product_times.get(code, _NO_TIMES)
            lines.append(np.searchsorted(product, t, "left") - np.searchsorted(product, t - window, "left"))
            times, invoices, logq_sums = self._customers.get(customer, (_NO_TIMES, _ZERO, _ZERO))
            earlier = int(np.searchsorted(times, t, "left"))
            prior.append(int(invoices[earlier]))
            past_mean.append(logq_sums[earlier] / earlier if earlier else np.nan)
        return rows.assign(
            product_lines_28d=np.asarray(lines, dtype=np.int64),
            customer_prior_invoices=np.asarray(prior, dtype=np.int64),
            customer_past_mean_logq=np.asarray(past_mean, dtype=np.float64),
        )


_NO_TIMES = np.empty(0, dtype=np.int64)
_ZERO = np.zeros(1)


def _epoch_seconds(dates: pd.Series) -> np.ndarray:
    return pd.to_datetime(dates).to_numpy().astype("datetime64[s]").astype(np.int64)
