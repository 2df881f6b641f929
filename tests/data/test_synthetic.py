"""The synthetic generator: same schema and messiness as the UCI file, and an honest known ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.data import COLUMNS, clean_transactions, validate_transactions
from pricing.synthetic import NOISE_SD, add_observed_ranges, generate_transactions


@pytest.fixture(scope="module")
def synthetic():
    data = generate_transactions(60_000, 400, seed=3)
    clean, report = clean_transactions(data.transactions)
    return data, clean, report


def test_deterministic_by_seed() -> None:
    a, b = generate_transactions(5_000, 50, seed=11), generate_transactions(5_000, 50, seed=11)
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not generate_transactions(5_000, 50, seed=12).transactions.equals(a.transactions)


def test_schema_matches_the_uci_file(synthetic) -> None:
    data, _, _ = synthetic
    assert tuple(data.transactions.columns) == COLUMNS
    validated = validate_transactions(data.transactions)  # raises on anything the real loader would reject
    assert len(validated) == len(data.transactions)
    assert data.transactions["InvoiceDate"].between("2010-12-01", "2011-12-10").all()
    assert (data.transactions["InvoiceDate"].dt.day_of_week != 5).all(), "the shop never invoiced on Saturdays"


def test_size_and_products_are_as_requested(synthetic) -> None:
    data, clean, _ = synthetic
    assert abs(len(data.transactions) - 60_000) < 0.02 * 60_000
    assert clean["StockCode"].nunique() == pytest.approx(400, abs=5)
    assert "85123A" in set(clean["StockCode"]), "the best seller of the real file keeps its code"


def test_messiness_at_the_real_files_rates(synthetic) -> None:
    data, _, report = synthetic
    tx = data.transactions
    assert 0.85 < (tx["Country"] == "United Kingdom").mean() < 0.95
    assert 30 <= tx["Country"].nunique() <= 38
    assert 0.2 < tx["CustomerID"].isna().mean() < 0.3
    assert 0.01 < report.dropped["cancellation"] / report.rows_in < 0.03
    assert report.dropped["non_product_code"] > 0
    assert report.dropped["non_positive_price"] > 0
    assert 0.005 < report.dropped["duplicate"] / report.rows_in < 0.02


def test_popularity_is_long_tailed(synthetic) -> None:
    _, clean, _ = synthetic
    lines = clean["StockCode"].value_counts()
    top_decile = lines.iloc[: len(lines) // 10].sum() / lines.sum()
    assert top_decile > 0.25, f"top 10% of products sell {top_decile:.0%} of lines"
    assert lines.iloc[0] > 8 * lines.median()


def test_prices_vary_within_about_40_percent_of_the_value_price(synthetic) -> None:
    data, clean, _ = synthetic
    value = clean["StockCode"].map(data.truth.set_index("StockCode")["value_price"])
    ratio = clean["UnitPrice"] / value
    assert ratio.quantile(0.005) > 0.55 and ratio.quantile(0.995) < 1.3
    spread = clean.groupby("StockCode")["UnitPrice"].agg(lambda p: p.max() / p.min())
    assert spread.median() > 1.3, "prices must move enough over time to identify demand"


def test_optimum_is_interior_and_inside_the_observed_range_for_most_products(synthetic) -> None:
    data, clean, _ = synthetic
    truth = add_observed_ranges(data.truth, clean)
    assert truth["optimum_in_range"].mean() > 0.85
    np.testing.assert_allclose(truth["optimal_price"], truth["value_price"] / truth["sensitivity"], rtol=1e-3)


def test_demand_falls_with_price_with_noise_at_least_half_a_log_unit(synthetic) -> None:
    data, clean, _ = synthetic
    truth = data.truth.set_index("StockCode")
    p_rel = clean["UnitPrice"] / clean["StockCode"].map(truth["value_price"])
    logq = np.log(clean["Quantity"])
    within = pd.DataFrame({"code": clean["StockCode"], "p": p_rel, "q": logq})
    demeaned = within[["p", "q"]] - within.groupby("code")[["p", "q"]].transform("mean")
    slope = (demeaned["p"] * demeaned["q"]).sum() / (demeaned["p"] ** 2).sum()
    assert slope < -0.5, "quantity must fall as the price rises within a product"
    assert NOISE_SD >= 0.5
    assert demeaned["q"].std() > 0.5


def test_promotions_coincide_with_the_high_season(synthetic) -> None:
    data, clean, _ = synthetic
    value = clean["StockCode"].map(data.truth.set_index("StockCode")["value_price"])
    ratio = clean["UnitPrice"] / value
    month = clean["InvoiceDate"].dt.month
    assert ratio[month.isin([11, 12])].mean() < ratio[month.isin([5, 6, 7])].mean() - 0.03
