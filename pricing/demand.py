"""Demand as the seller sees it: units of a product sold per period against the price posted for it.

A transaction line's unit price mixes three things (measured on the real file, ``docs/MODELS.md``):
the posted list price, a price list by customer segment (lines without a CustomerID mostly pay a retail
list about twice the wholesale one) and quantity-discount tiers (large orders pay less *because* they are
large). Only changes of the posted price over time say how demand responds to price, so this module
separates the three, per product and from the data alone:

1. **Wholesale base price** per product and period: the price most small registered orders (at most the
   product's median order size) paid, when it is the price of at least ``POSTED_MIN_SHARE`` of them;
   periods without a clear price carry the last one forward.
2. **Price lists**: a line paying at least ``RETAIL_MIN_RATIO`` times the period's wholesale base price is
   on the retail list, any other on the wholesale list. The retail list's posted price per period is found
   as in 1 from its own lines.
3. **Quantity tiers**: wholesale-list lines paying less than ``TIER_MAX_RATIO`` of the posted price are
   tier sales; their typical smallest quantity and price factor describe the product's tier.

The result is one **cell** per product, price list ("segment") and period within the product's selling
span, zero units included: posted price, units, orders (distinct invoices) and revenue. A price change
moves the units of a cell through both the number of orders and their size, so both are counted. The
period is a week by default (``docs/MODELS.md`` has the measured choice); a period in which the shop did
not trade at all (Christmas closing) has no cells, and ``trading_days`` says how many days it traded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SEGMENTS = ("wholesale", "retail")
PERIODS = {"W": "W-SUN", "D": "D"}  # a week runs Monday to Sunday
RETAIL_MIN_RATIO = 1.5  # the retail list is about 2x the wholesale list (1.96-2.18 on the real best sellers)
TIER_MAX_RATIO = 0.97  # a wholesale line below this share of the posted price is a quantity-tier sale
POSTED_MIN_SHARE = 0.5  # a period's posted price is the price of at least this share of its small orders
MAX_PRICE_MOVE = 3.0  # a posted price beyond 3x (or below a third of) the list's median one is not believed
TIER_MIN_LINES = 3  # a tier is a repeated practice, not a one-off discount

CELL_COLUMNS = (
    "StockCode", "segment", "period", "posted_price", "units", "orders", "lines", "log_quantity_sum",
    "log_quantity_sq_sum", "revenue", "trading_days",
)  # fmt: skip


@dataclass(frozen=True)
class DemandData:
    """Per-period demand cells and a summary of each product's price lists."""

    cells: pd.DataFrame  # CELL_COLUMNS, sorted by StockCode, segment, period
    lists: pd.DataFrame  # index (StockCode, segment): see summarise_lists
    period: str

    def describe(self) -> str:
        """A few lines on what the table holds."""
        lists = self.lists
        moved = lists["price_changes"] > 0
        per_segment = lists.groupby(level="segment").size()
        return "\n".join(
            [
                f"demand cells: {len(self.cells):,} (product x price list x {self.period} period), "
                f"{(self.cells['units'] == 0).mean():.0%} with no sale",
                "price lists: "
                + ", ".join(f"{s} {per_segment.get(s, 0):,}" for s in SEGMENTS)
                + f"; posted price changed over time for {moved.sum():,} ({moved.mean():.0%})",
                f"quantity tiers recognised on {lists['tier_factor'].notna().sum():,} wholesale lists",
            ]
        )


def build_demand(clean: pd.DataFrame, period: str = "W") -> DemandData:
    """The demand table of cleaned transactions (see the module docstring)."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {sorted(PERIODS)}, got {period!r}")
    lines = clean[["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]]
    lines = lines.assign(period=period_start(lines["InvoiceDate"], period))
    lines = assign_price_lists(lines)

    posted = pd.concat(
        [posted_prices(lines[lines["segment"] == s], s) for s in SEGMENTS], ignore_index=True
    )  # one row per observed (StockCode, segment, period) with a clear posted price
    trading = lines.groupby("period")["InvoiceDate"].agg(lambda d: d.dt.normalize().nunique()).rename("trading_days")
    log_quantity = np.log(lines["Quantity"])
    sold = lines.assign(revenue=lines["Quantity"] * lines["UnitPrice"], lq=log_quantity, lq2=log_quantity**2)
    sold = sold.groupby(["StockCode", "segment", "period"], sort=False).agg(
        units=("Quantity", "sum"), orders=("InvoiceNo", "nunique"), lines=("Quantity", "size"),
        log_quantity_sum=("lq", "sum"), log_quantity_sq_sum=("lq2", "sum"), revenue=("revenue", "sum"),
    )  # fmt: skip
    cells = _fill_spans(sold.reset_index(), trading)
    cells = cells.merge(posted, on=["StockCode", "segment", "period"], how="left")
    by_list = cells.groupby(["StockCode", "segment"], sort=False)["posted_price"]
    # A price far from the list's typical one (a manual line, a typing error) posts nothing.
    typical = by_list.transform("median")
    implausible = (cells["posted_price"] > MAX_PRICE_MOVE * typical) | (
        cells["posted_price"] < typical / MAX_PRICE_MOVE
    )
    cells["posted_price"] = cells["posted_price"].mask(implausible)
    cells["posted_price"] = cells.groupby(["StockCode", "segment"], sort=False)["posted_price"].ffill()
    cells["posted_price"] = cells.groupby(["StockCode", "segment"], sort=False)["posted_price"].bfill()
    cells = cells.dropna(subset=["posted_price"])  # a list whose price was never clear cannot be priced
    cells = cells.sort_values(["StockCode", "segment", "period"], kind="stable", ignore_index=True)
    cells = cells.astype({"units": np.int64, "orders": np.int64, "lines": np.int64, "trading_days": np.int64})
    return DemandData(cells[list(CELL_COLUMNS)], summarise_lists(cells, lines), period)


def period_start(dates: pd.Series, period: str) -> pd.Series:
    """The first day of each date's period."""
    return dates.dt.to_period(PERIODS[period]).dt.start_time


def assign_price_lists(lines: pd.DataFrame) -> pd.DataFrame:
    """``lines`` (with a ``period`` column) plus ``base_price`` (the period's wholesale base price of the
    product) and ``segment`` (``wholesale`` or ``retail``)."""
    registered = lines[lines["CustomerID"].notna()]
    # A registered customer occasionally pays the retail list: such lines must not set the wholesale price.
    usual = _modal_prices(_small_orders(registered), ["StockCode"], min_share=0.0)
    wholesale = registered[registered["UnitPrice"] < RETAIL_MIN_RATIO * registered["StockCode"].map(usual)]
    base = posted_prices(wholesale, "wholesale")[["StockCode", "period", "posted_price"]]
    spans = lines[["StockCode", "period"]].drop_duplicates()
    base = spans.merge(base, on=["StockCode", "period"], how="left").sort_values(["StockCode", "period"])
    base["posted_price"] = base.groupby("StockCode", sort=False)["posted_price"].ffill()
    base["posted_price"] = base.groupby("StockCode", sort=False)["posted_price"].bfill()
    out = lines.merge(base.rename(columns={"posted_price": "base_price"}), on=["StockCode", "period"], how="left")
    ratio = out["UnitPrice"] / out["base_price"]
    # A product no registered customer ever bought has no wholesale price: its guests' lines are its retail list.
    retail = (ratio >= RETAIL_MIN_RATIO) | (out["base_price"].isna() & out["CustomerID"].isna())
    out["segment"] = np.where(retail, "retail", "wholesale")
    return out[out["base_price"].notna() | retail].reset_index(drop=True)


def posted_prices(lines: pd.DataFrame, segment: str) -> pd.DataFrame:
    """Posted price of each (product, period) with a clear one: the most frequent price among the period's
    lines below the product's quantity-tier threshold (``tier_thresholds``), if it holds ``POSTED_MIN_SHARE``
    of them. Columns StockCode, segment, period, posted_price."""
    keys = ["StockCode", "period"]
    threshold = tier_thresholds(lines).reindex(lines["StockCode"]).fillna(np.inf).to_numpy()
    top = _modal_prices(lines[lines["Quantity"] < threshold], keys, POSTED_MIN_SHARE)
    top = top.reset_index()
    return pd.DataFrame(
        {"StockCode": top["StockCode"].to_numpy(), "segment": segment, "period": top["period"].to_numpy(),
         "posted_price": top["UnitPrice"].to_numpy()}
    )  # fmt: skip


def tier_thresholds(lines: pd.DataFrame) -> pd.Series:
    """Per product with a quantity tier: the smallest quantity that usually gets it.

    A tier sale is a larger-than-median order paying less than ``TIER_MAX_RATIO`` of the price its period's
    small orders paid; the threshold is the 10th percentile of the tier sales' quantities (at least
    ``TIER_MIN_LINES`` of them, or the product has no tier).
    """
    keys = ["StockCode", "period"]
    small = _small_orders(lines)
    reference = _modal_prices(small, keys, min_share=0.0).rename("reference")
    joined = lines.join(reference, on=keys)
    median = lines.groupby("StockCode")["Quantity"].transform("median")
    tier = joined[(joined["UnitPrice"] < TIER_MAX_RATIO * joined["reference"]) & (joined["Quantity"] > median)]
    counts = tier.groupby("StockCode")["Quantity"]
    threshold = counts.quantile(0.1)
    return threshold[counts.size() >= TIER_MIN_LINES]


def _small_orders(lines: pd.DataFrame) -> pd.DataFrame:
    """Lines of at most their product's median quantity: they pay the list price, not a tier's."""
    return lines[lines["Quantity"] <= lines.groupby("StockCode")["Quantity"].transform("median")]


def _modal_prices(lines: pd.DataFrame, keys: list[str], min_share: float) -> pd.Series:
    """The most frequent unit price per ``keys`` group (the highest among equally frequent ones: lower ones may
    be tier sales), for groups where it holds at least ``min_share`` of the lines."""
    counts = lines.groupby([*keys, "UnitPrice"], sort=False).size().rename("n").reset_index()
    counts["total"] = counts.groupby(keys, sort=False)["n"].transform("sum")
    top = counts.sort_values([*keys, "n", "UnitPrice"], ascending=[True] * len(keys) + [False, False])
    top = top.drop_duplicates(keys)
    return top[top["n"] >= min_share * top["total"]].set_index(keys)["UnitPrice"]


def _fill_spans(sold: pd.DataFrame, trading: pd.Series) -> pd.DataFrame:
    """Every trading period between a list's first and last sale, with zero units where nothing sold."""
    periods = trading.index.sort_values()
    position = pd.Series(np.arange(len(periods)), index=periods)
    spans = sold.groupby(["StockCode", "segment"], sort=False)["period"].agg(["min", "max"]).reset_index()
    first, last = position[spans["min"]].to_numpy(), position[spans["max"]].to_numpy()
    length = last - first + 1
    rows = np.repeat(np.arange(len(spans)), length)
    offset = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    full = pd.DataFrame(
        {
            "StockCode": spans["StockCode"].to_numpy()[rows],
            "segment": spans["segment"].to_numpy()[rows],
            "period": periods[first[rows] + offset],
        }
    )
    full["trading_days"] = trading.reindex(full["period"]).to_numpy()
    cells = full.merge(sold, on=["StockCode", "segment", "period"], how="left")
    zero = {"units": 0, "orders": 0, "lines": 0, "log_quantity_sum": 0.0, "log_quantity_sq_sum": 0.0, "revenue": 0.0}
    return cells.fillna(zero)


def summarise_lists(cells: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Per (StockCode, segment): description, usual (most frequent) and latest posted price, the posted range,
    the number of posted-price changes, selling span, units per period, orders in all, the share of list
    revenue actually paid (tiers lower it) and the quantity tier (wholesale lists with one)."""
    keys = ["StockCode", "segment"]
    group = cells.groupby(keys, sort=True)
    changes = group["posted_price"].agg(lambda p: int((p.to_numpy()[1:] != p.to_numpy()[:-1]).sum()))
    usual = cells.groupby([*keys, "posted_price"]).size().rename("n").reset_index()
    usual = usual.sort_values([*keys, "n", "posted_price"], ascending=[True, True, False, False])
    usual = usual.drop_duplicates(keys).set_index(keys)["posted_price"]
    lists = pd.DataFrame(
        {
            "usual_price": usual,
            "latest_price": group["posted_price"].last(),
            "price_min": group["posted_price"].min(),
            "price_max": group["posted_price"].max(),
            "price_changes": changes,
            "periods": group.size(),
            "first_period": group["period"].min(),
            "last_period": group["period"].max(),
            "units_per_period": group["units"].mean(),
            "orders": group["orders"].sum(),
            "paid_ratio": group["revenue"].sum() / (cells["posted_price"] * cells["units"]).groupby(
                [cells["StockCode"], cells["segment"]]).sum(),
        }
    )  # fmt: skip
    lists["paid_ratio"] = lists["paid_ratio"].fillna(1.0).clip(0.0, 1.5)
    lists = lists.join(_tiers(lines, cells))
    descriptions = lines.groupby("StockCode")["Description"].last()
    lists.insert(0, "description", descriptions.reindex(lists.index.get_level_values("StockCode")).to_numpy())
    return lists


def _tiers(lines: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Each wholesale list's quantity tier: the smallest quantity most tier sales reach (their 10th percentile),
    the median price factor paid and the tier's share of the list's units."""
    wholesale = lines[lines["segment"] == "wholesale"]
    posted = cells[cells["segment"] == "wholesale"].set_index(["StockCode", "period"])["posted_price"]
    key = pd.MultiIndex.from_frame(wholesale[["StockCode", "period"]])
    factor = wholesale["UnitPrice"].to_numpy() / posted.reindex(key).to_numpy()
    tier = wholesale.assign(factor=factor)[factor < TIER_MAX_RATIO]
    units = wholesale.groupby("StockCode")["Quantity"].sum()
    stats = tier.groupby("StockCode").agg(
        tier_min_quantity=("Quantity", lambda q: float(np.percentile(q, 10))),
        tier_factor=("factor", "median"),
        tier_units=("Quantity", "sum"),
        tier_lines=("Quantity", "size"),
    )
    stats = stats[stats["tier_lines"] >= 3]  # a tier is a repeated practice, not a one-off discount
    stats["tier_unit_share"] = stats["tier_units"] / units.reindex(stats.index)
    stats.index = pd.MultiIndex.from_arrays([stats.index, ["wholesale"] * len(stats)], names=["StockCode", "segment"])
    return stats[["tier_min_quantity", "tier_factor", "tier_unit_share"]]
