"""The synthetic generator: the UCI file's schema and messiness, what makes its prices hard (price lists, tiers,
rare and season-confounded price moves, demand forms that are not log-linear, optima independent of the price
tier), and an honest ground truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pricing.data import COLUMNS, clean_transactions, validate_transactions
from pricing.demand import build_demand
from pricing.synthetic import DEMAND_FORMS, GeneratorConfig, generate_transactions


@pytest.fixture(scope="module")
def synthetic():
    data = generate_transactions(120_000, 600, seed=3)
    clean, report = clean_transactions(data.transactions)
    return data, clean, report, build_demand(clean)


def test_deterministic_by_seed() -> None:
    a, b = generate_transactions(5_000, 50, seed=11), generate_transactions(5_000, 50, seed=11)
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not generate_transactions(5_000, 50, seed=12).transactions.equals(a.transactions)


def test_schema_matches_the_uci_file(synthetic) -> None:
    data, _, _, _ = synthetic
    assert tuple(data.transactions.columns) == COLUMNS
    validated = validate_transactions(data.transactions)  # raises on anything the real loader would reject
    assert len(validated) == len(data.transactions)
    assert data.transactions["InvoiceDate"].between("2010-12-01", "2011-12-10").all()
    assert (data.transactions["InvoiceDate"].dt.day_of_week != 5).all(), "the shop never invoiced on Saturdays"


def test_size_and_products_are_as_requested(synthetic) -> None:
    data, clean, _, _ = synthetic
    assert abs(len(data.transactions) - 120_000) < 0.03 * 120_000
    assert clean["StockCode"].nunique() == pytest.approx(600, abs=10)
    assert "85123A" in set(clean["StockCode"]), "the best seller of the real file keeps its code"


def test_messiness_at_the_real_files_rates(synthetic) -> None:
    data, _, report, _ = synthetic
    tx = data.transactions
    assert 0.85 < (tx["Country"] == "United Kingdom").mean() < 0.95
    assert 30 <= tx["Country"].nunique() <= 38
    assert 0.2 < tx["CustomerID"].isna().mean() < 0.35
    assert 0.01 < report.dropped["cancellation"] / report.rows_in < 0.03
    assert report.dropped["non_product_code"] > 0
    assert report.dropped["non_positive_price"] > 0
    assert 0.005 < report.dropped["duplicate"] / report.rows_in < 0.03
    assert 8 < len(tx) / tx["InvoiceNo"].nunique() < 30, "invoices hold several lines"


def test_popularity_is_long_tailed(synthetic) -> None:
    _, clean, _, _ = synthetic
    lines = clean["StockCode"].value_counts()
    assert lines.iloc[: len(lines) // 10].sum() / lines.sum() > 0.25
    assert lines.iloc[0] > 8 * lines.median()


def test_optima_differ_per_product_independently_of_the_price_tier(synthetic) -> None:
    data, _, _, _ = synthetic
    truth = data.truth
    ratio = np.log(truth["optimum_ratio"])
    assert ratio.std() > 0.08, "products must differ in how far their optimum is from their price"
    assert abs(np.corrcoef(np.log(truth["value_price"]), ratio)[0, 1]) < 0.15
    assert truth["optimum_ratio"].between(0.8, 1.25).all()
    assert set(truth["demand_form"]) == set(DEMAND_FORMS)


def test_ground_truth_is_the_optimum_of_the_generators_own_revenue() -> None:
    # Without tiers and with the whole response in the order count, revenue per week is x * D(x): the
    # numerical optimum must then be each form's analytic one, ratio x value price.
    simple = GeneratorConfig(quantity_tiers=False, order_response=1.0)
    truth = generate_transactions(2_000, 300, seed=5, config=simple).truth
    np.testing.assert_allclose(truth["optimal_price"], truth["optimum_ratio"] * truth["value_price"], rtol=2e-3)
    # With tiers and sizes that respond too, the tier mix moves with the price, and the truth with it.
    full = generate_transactions(2_000, 300, seed=5).truth
    moved = (full["optimal_price"] / (full["optimum_ratio"] * full["value_price"]) - 1).abs()
    assert moved.median() > 0.005


def test_guests_mostly_pay_a_retail_list_about_twice_the_wholesale_one(synthetic) -> None:
    _, clean, _, _ = synthetic
    guests, registered = clean[clean["CustomerID"].isna()], clean[clean["CustomerID"].notna()]
    usual = registered.groupby("StockCode")["UnitPrice"].agg(lambda p: p.mode().max())
    ratio = (guests["UnitPrice"] / guests["StockCode"].map(usual)).dropna()
    assert 0.7 < (ratio > 1.5).mean() < 0.99
    assert 1.8 < ratio[ratio > 1.5].median() < 2.3


def test_large_wholesale_orders_pay_the_tier_price(synthetic) -> None:
    data, _, _, demand = synthetic
    truth = data.truth.set_index("StockCode")
    lists = demand.lists.xs("wholesale", level="segment").dropna(subset=["tier_factor"])
    assert len(lists) > 100, "most wholesale lists have a quantity tier"
    errors = (lists["tier_factor"] - truth["tier_factor"].reindex(lists.index)).abs()
    assert errors.median() < 0.01, "the demand table recognises each product's tier from the data"


def test_orders_per_week_respond_to_the_posted_price(synthetic) -> None:
    _, _, _, demand = synthetic
    cells = demand.cells[demand.cells["segment"] == "wholesale"]
    usual = demand.lists.xs("wholesale", level="segment")["usual_price"]
    cut = cells["posted_price"] < 0.95 * cells["StockCode"].map(usual)
    busy = cells.groupby("StockCode")["orders"].transform("mean") > 5
    promo, regular = cells[cut & busy], cells[~cut & busy]
    assert promo["orders"].mean() > 1.05 * regular["orders"].mean()


def test_some_prices_never_move_and_promotions_crowd_into_the_high_season(synthetic) -> None:
    data, _, _, demand = synthetic
    assert 0.15 < (~data.truth["price_moves"]).mean() < 0.6
    cells = demand.cells[demand.cells["segment"] == "wholesale"]
    usual = demand.lists.xs("wholesale", level="segment")["usual_price"]
    promo = cells["posted_price"] < 0.95 * cells["StockCode"].map(usual)
    month = cells["period"].dt.month
    assert promo[month.isin([11, 12])].mean() > 1.5 * promo[month.isin([5, 6, 7])].mean()


def test_legacy_config_reproduces_the_earlier_demand() -> None:
    legacy = generate_transactions(30_000, 400, seed=4, config=GeneratorConfig.legacy())
    truth = legacy.truth
    assert set(truth["demand_form"]) == {"exponential"}
    assert np.corrcoef(np.log(truth["value_price"]), truth["optimum_ratio"])[0, 1] < -0.3, "tied to the tier"
    clean, _ = clean_transactions(legacy.transactions)
    guests, registered = clean[clean["CustomerID"].isna()], clean[clean["CustomerID"].notna()]
    assert guests["UnitPrice"].median() == pytest.approx(registered["UnitPrice"].median(), rel=0.3), "one price list"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"demand_forms": ("cubic",)}, "demand_forms"),
        ({"optimum_ratio_bounds": (1.2, 0.9)}, "optimum_ratio_bounds"),
        ({"order_response": 1.5}, "order_response"),
    ],
)
def test_invalid_configs_name_the_field(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        replace(GeneratorConfig(), **change)
