"""Demand cells: posted prices, price lists and quantity tiers recognised from transaction lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.demand import build_demand, tier_thresholds


def lines(*rows: tuple[str, str, int, float, float | None]) -> pd.DataFrame:
    """Cleaned lines from (stockcode, timestamp, quantity, unit price, customer id) tuples, one invoice each."""
    frame = pd.DataFrame(rows, columns=["StockCode", "InvoiceDate", "Quantity", "UnitPrice", "CustomerID"])
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    frame["InvoiceNo"] = [str(536_000 + i) for i in range(len(frame))]
    frame["Description"] = "THING"
    frame["Country"] = "United Kingdom"
    return frame


def week(monday: str, code: str, prices: list[tuple[int, float, float | None]]) -> list[tuple]:
    """Lines of one week: (quantity, price, customer) spread over its Monday to Thursday."""
    start = pd.Timestamp(monday)
    return [(code, start + pd.Timedelta(days=i % 4, hours=10), q, p, c) for i, (q, p, c) in enumerate(prices)]


SMALL, BULK = 6, 100  # a typical order, and one past the tier threshold


def shop() -> pd.DataFrame:
    """Product A: wholesale list 2.95 (bulk orders pay 2.55), a one-week promotion at 2.50 in week 3, nothing
    sold in week 4, guests paying a retail list of 5.79. Product B: registered customers only, always 1.00."""
    rows: list[tuple] = []
    prices = {"2011-03-07": 2.95, "2011-03-14": 2.95, "2011-03-21": 2.50, "2011-04-04": 2.95, "2011-04-11": 2.95}
    for monday, price in prices.items():
        bulk = 2.55 if price == 2.95 else round(price * 0.864, 2)
        rows += week(monday, "A", [(SMALL, price, 1.0), (SMALL + 2, price, 2.0), (BULK, bulk, 3.0), (2, 5.79, None)])
    for monday in [*prices, "2011-03-28"]:
        rows += week(monday, "B", [(4, 1.00, 1.0), (3, 1.00, 2.0)])
    return lines(*rows)


@pytest.fixture(scope="module")
def demand():
    return build_demand(shop())


def cell(demand, code: str, segment: str, monday: str) -> pd.Series:
    cells = demand.cells.set_index(["StockCode", "segment", "period"])
    return cells.loc[(code, segment, pd.Timestamp(monday))]


def test_the_posted_price_is_the_list_price_not_the_tier_price(demand) -> None:
    assert cell(demand, "A", "wholesale", "2011-03-07")["posted_price"] == 2.95
    assert cell(demand, "A", "wholesale", "2011-03-21")["posted_price"] == 2.50  # the promotion is a posted price


def test_a_week_without_sales_is_a_zero_cell_at_the_last_posted_price(demand) -> None:
    empty = cell(demand, "A", "wholesale", "2011-03-28")
    assert empty["units"] == 0 and empty["orders"] == 0 and empty["posted_price"] == 2.50
    assert empty["trading_days"] == 2  # the shop traded that week (product B sold on two days)


def test_guests_paying_about_twice_the_price_are_a_retail_list(demand) -> None:
    retail = cell(demand, "A", "retail", "2011-03-07")
    assert retail["posted_price"] == 5.79 and retail["units"] == 2
    wholesale = cell(demand, "A", "wholesale", "2011-03-07")
    assert wholesale["units"] == SMALL + SMALL + 2 + BULK and wholesale["orders"] == 3
    assert ("B", "retail") not in demand.lists.index


def test_units_orders_and_revenue_count_every_tier(demand) -> None:
    wholesale = cell(demand, "A", "wholesale", "2011-03-14")
    assert wholesale["revenue"] == pytest.approx((2 * SMALL + 2) * 2.95 + BULK * 2.55)
    assert wholesale["lines"] == 3
    assert wholesale["log_quantity_sum"] == pytest.approx(np.log(SMALL) + np.log(SMALL + 2) + np.log(BULK))


def test_the_quantity_tier_is_recognised_per_product(demand) -> None:
    entry = demand.lists.loc[("A", "wholesale")]
    assert entry["tier_min_quantity"] == pytest.approx(BULK)
    assert entry["tier_factor"] == pytest.approx(2.55 / 2.95, abs=0.01)
    assert np.isnan(demand.lists.loc[("B", "wholesale"), "tier_factor"])
    assert tier_thresholds(shop().assign(period=pd.Timestamp("2011-03-07"))).index.tolist() == ["A"]


def test_the_lists_summary_knows_usual_latest_and_changes(demand) -> None:
    a = demand.lists.loc[("A", "wholesale")]
    assert a["usual_price"] == 2.95 and a["latest_price"] == 2.95
    assert (a["price_min"], a["price_max"]) == (2.50, 2.95)
    assert a["price_changes"] == 2  # down for the promotion, back up after it
    b = demand.lists.loc[("B", "wholesale")]
    assert b["price_changes"] == 0 and b["paid_ratio"] == pytest.approx(1.0)
    assert a["paid_ratio"] < 1.0, "tier sales pay less than the list"


def test_an_implausible_price_posts_nothing(demand) -> None:
    frame = shop()
    odd = lines(*week("2011-03-14", "B", [(4, 45.0, 1.0), (3, 45.0, 2.0)]))
    frame = pd.concat(
        [frame[~((frame["StockCode"] == "B") & frame["InvoiceDate"].between("2011-03-14", "2011-03-20"))], odd]
    )
    rebuilt = build_demand(frame.reset_index(drop=True))
    assert cell(rebuilt, "B", "wholesale", "2011-03-14")["posted_price"] == 1.00  # 45x the usual: carried over


def test_periods_can_be_days() -> None:
    daily = build_demand(shop(), period="D")
    assert daily.period == "D"
    assert (daily.cells["period"].dt.normalize() == daily.cells["period"]).all()
    with pytest.raises(ValueError, match="period"):
        build_demand(shop(), period="M")
