"""The price sweep core: grid, validation, matrix layout, aggregation, caching and the naive reference."""

from __future__ import annotations

import numpy as np
import pytest

from pricing.features import CONTEXT_FEATURES, PRICE_FEATURES
from pricing.sweep import (
    MAX_BINS,
    MAX_CONTEXT,
    Sweeper,
    SweepInputError,
    SweepRequest,
    UnknownProductError,
    build_price_grid,
    curve_stats,
    result_from_stats,
)

RATIO = len(CONTEXT_FEATURES) + PRICE_FEATURES.index("price_ratio")


def demand(slope: float):
    """A predictor with known optimum: log q = context level - slope * price_ratio (optimum at ref / slope)."""

    def predict(X: np.ndarray) -> np.ndarray:
        level = X[:, CONTEXT_FEATURES.index("product_mean_logq")] + 0.1 * X[:, CONTEXT_FEATURES.index("hour")]
        return level - slope * X[:, RATIO]

    return predict


@pytest.fixture
def sweeper(tiny) -> Sweeper:
    return Sweeper(tiny.pipeline, tiny.context, demand(1.25))


@pytest.fixture
def code(tiny) -> str:
    return tiny.context.catalogue.sort_values("rows").index[-1]


def test_grid_spans_both_ends() -> None:
    grid = build_price_grid(2.0, 6.0, 5)
    np.testing.assert_allclose(grid, [2, 3, 4, 5, 6])


def test_default_range_is_the_observed_range(sweeper, tiny, code) -> None:
    result = sweeper.sweep(SweepRequest(code, bins=10))
    lo, hi = tiny.context.price_range(code)
    assert (result.prices[0], result.prices[-1]) == (lo, hi)
    assert len(result.prices) == 10


def test_optimum_matches_the_known_demand_curve(sweeper, tiny, code) -> None:
    ref = tiny.pipeline.reference_price(np.array([code]))[0]
    result = sweeper.sweep(SweepRequest(code, price_min=0.3 * ref, price_max=1.7 * ref, bins=701))
    assert result.optimal_price == pytest.approx(ref / 1.25, rel=0.003)
    np.testing.assert_allclose(result.sales, result.prices * result.quantity)
    assert (result.quantity_min <= result.quantity).all() and (result.quantity <= result.quantity_max).all()
    assert (np.diff(result.quantity) < 0).all()


def test_fast_and_naive_sweeps_agree(sweeper, code) -> None:
    fast = sweeper.sweep(SweepRequest(code, bins=37, context=50))
    naive = sweeper.naive_sweep(SweepRequest(code, bins=37, context=50))
    np.testing.assert_allclose(fast.prices, naive.prices)
    for name in ("quantity", "quantity_min", "quantity_max"):
        np.testing.assert_allclose(getattr(fast, name), getattr(naive, name), rtol=1e-6)
    assert fast.context_rows == naive.context_rows == 50


def test_matrix_is_price_major_with_every_context_row_per_price(sweeper, tiny, code) -> None:
    plan = sweeper.plan(SweepRequest(code, bins=3, context=4))
    assert plan.matrix.shape == (12, len(CONTEXT_FEATURES) + len(PRICE_FEATURES))
    context = tiny.pipeline.encode_context(tiny.context.product_rows(code, 4))
    for i in range(3):
        block = plan.matrix[i * 4 : (i + 1) * 4]
        np.testing.assert_array_equal(block[:, : len(CONTEXT_FEATURES)], context)
        assert len(set(block[:, RATIO])) == 1


def test_context_rows_are_the_products_own_latest_rows(tiny, code) -> None:
    rows = tiny.context.product_rows(code, 5)
    history = tiny.enriched[tiny.enriched["StockCode"] == code]
    assert (rows["StockCode"] == code).all()
    assert rows["InvoiceDate"].tolist() == history["InvoiceDate"].sort_values().tail(5).tolist()


def test_context_block_is_encoded_once_per_product(tiny, code, monkeypatch) -> None:
    calls = []
    original = tiny.pipeline.encode_context
    monkeypatch.setattr(tiny.pipeline, "encode_context", lambda rows: calls.append(1) or original(rows))
    sweeper = Sweeper(tiny.pipeline, tiny.context, demand(1.0))
    first = sweeper.sweep(SweepRequest(code, bins=5))
    second = sweeper.sweep(SweepRequest(code, bins=9, price_min=1.0, price_max=2.0))
    assert len(calls) == 1
    assert first.context_rows == second.context_rows


def test_single_price_products_get_a_range_around_that_price(tiny) -> None:
    code = tiny.context.catalogue.index[0]
    catalogue = tiny.context.catalogue.copy()
    catalogue.loc[code, ["price_min", "price_max"]] = 2.0
    store = type(tiny.context)(tiny.context.rows, catalogue)
    result = Sweeper(tiny.pipeline, store, demand(1.0)).sweep(SweepRequest(code, bins=3))
    np.testing.assert_allclose(result.prices, [1.6, 2.0, 2.4])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"bins": 1}, "bins"),
        ({"bins": MAX_BINS + 1}, "bins"),
        ({"context": 0}, "context"),
        ({"context": MAX_CONTEXT + 1}, "context"),
        ({"price_min": float("nan")}, "price_min"),
        ({"price_max": float("inf")}, "price_max"),
        ({"price_min": -1.0}, "price_min"),
        ({"price_min": 5.0, "price_max": 5.0}, "price_min"),
        ({"price_min": 6.0, "price_max": 5.0}, "price_min"),
    ],
)
def test_invalid_requests_name_the_field(sweeper, code, kwargs, field) -> None:
    with pytest.raises(SweepInputError) as info:
        sweeper.sweep(SweepRequest(code, **kwargs))
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")


def test_unknown_product_is_its_own_error(sweeper) -> None:
    with pytest.raises(UnknownProductError, match="'NOPE'"):
        sweeper.sweep(SweepRequest("NOPE"))


def test_summary_takes_median_min_max_across_context_rows() -> None:
    prices = np.array([1.0, 2.0])
    log_q = np.log(np.array([[1.0, 2.0, 6.0], [3.0, 4.0, 5.0]]))  # 2 prices x 3 context rows
    result = result_from_stats("X", prices, curve_stats(log_q), context_rows=3)
    np.testing.assert_allclose(result.quantity, [2.0, 4.0])
    np.testing.assert_allclose(result.quantity_min, [1.0, 3.0])
    np.testing.assert_allclose(result.quantity_max, [6.0, 5.0])
    assert result.optimal_price == 2.0
    payload = result.to_dict()
    assert payload["optimal"] == {"unit_price": 2.0, "quantity": 4.0, "predicted_sales": 8.0}
    assert payload["curve"][0] == {
        "unit_price": 1.0,
        "quantity": 2.0,
        "quantity_min": 1.0,
        "quantity_max": 6.0,
        "predicted_sales": 2.0,
    }
