"""The price sweep core: lists and default grid, validation, the level x response curve, aggregation, the
optimum's interval, caching, packing and the naive reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.features import FEATURES
from pricing.response import log_response
from pricing.sweep import (
    DEFAULT_RANGE,
    MAX_BINS,
    MAX_CONTEXT,
    ListTerms,
    Sweeper,
    SweepInputError,
    SweepPlan,
    SweepRequest,
    UnknownProductError,
    build_price_grid,
    curve_stats,
    optimum_interval,
    plans_stats,
    result_from_stats,
)


def level(X: np.ndarray) -> np.ndarray:
    """A level model that depends on the context (so context periods differ)."""
    return 1.0 + 0.5 * X[:, FEATURES.index("log_units_per_period")] + 0.2 * X[:, FEATURES.index("week_sin")]


@pytest.fixture
def sweeper(tiny) -> Sweeper:
    return Sweeper(tiny.pipeline, tiny.context, level)


@pytest.fixture
def key(tiny) -> tuple[str, str]:
    """The best-selling wholesale list."""
    catalogue = tiny.context.catalogue.xs("wholesale", level="segment")
    return str(catalogue["units_per_period"].idxmax()), "wholesale"


def test_grid_spans_both_ends() -> None:
    np.testing.assert_allclose(build_price_grid(2.0, 6.0, 5), [2, 3, 4, 5, 6])


def test_default_range_covers_the_observed_posted_range_and_around_the_usual_price(sweeper, tiny, key) -> None:
    result = sweeper.sweep(SweepRequest(key[0], segment=key[1], bins=10))
    entry = tiny.context.catalogue.loc[key]
    assert result.prices[0] == pytest.approx(min(entry["price_min"], DEFAULT_RANGE[0] * entry["usual_price"]), 1e-4)
    assert result.prices[-1] == pytest.approx(max(entry["price_max"], DEFAULT_RANGE[1] * entry["usual_price"]), 1e-4)
    assert len(result.prices) == 10


def test_a_product_without_a_segment_gets_its_main_list(sweeper, tiny, key) -> None:
    result = sweeper.sweep(SweepRequest(key[0]))
    assert result.terms is not None
    assert result.terms.segment == tiny.context.default_segment[key[0]]


def test_units_are_the_level_times_the_lists_response(sweeper, tiny, key) -> None:
    result = sweeper.sweep(SweepRequest(key[0], segment=key[1], bins=25, context=8))
    terms = result.terms
    rows = tiny.context.list_rows(key, 8)
    units = np.expm1(level(tiny.pipeline.encode_context(rows)))
    response = np.exp(log_response(result.prices / terms.usual_price, terms.slope, terms.shape))
    np.testing.assert_allclose(result.quantity, np.median(units) * response, rtol=1e-6)
    np.testing.assert_allclose(result.quantity_min, units.min() * response, rtol=1e-6)
    np.testing.assert_allclose(result.quantity_max, units.max() * response, rtol=1e-6)
    np.testing.assert_allclose(result.sales, result.prices * result.quantity * terms.paid_ratio)
    assert (np.diff(result.quantity) < 0).all(), "demand falls with the posted price"


def test_the_optimum_is_where_the_response_puts_it(sweeper, key) -> None:
    result = sweeper.sweep(SweepRequest(key[0], segment=key[1], bins=2_000 // 2))
    terms = result.terms
    ratios = result.prices / terms.usual_price
    expected = result.prices[np.argmax(result.prices * np.exp(log_response(ratios, terms.slope, terms.shape)))]
    assert result.optimal_price == expected


def test_fast_and_naive_sweeps_agree(sweeper, key) -> None:
    request = SweepRequest(key[0], segment=key[1], bins=37, context=20)
    fast, naive = sweeper.sweep(request), sweeper.naive_sweep(request)
    np.testing.assert_allclose(fast.prices, naive.prices)
    for name in ("quantity", "quantity_min", "quantity_max"):
        np.testing.assert_allclose(getattr(fast, name), getattr(naive, name), rtol=1e-6)
    assert fast.context_rows == naive.context_rows == 20
    assert fast.optimal_price == naive.optimal_price


def test_context_periods_are_the_lists_own_latest(tiny, key) -> None:
    rows = tiny.context.list_rows(key, 5)
    cells = tiny.demand.cells
    own = cells[(cells["StockCode"] == key[0]) & (cells["segment"] == key[1])]
    assert rows["period"].tolist() == own["period"].sort_values().tail(5).tolist()


def test_context_block_is_encoded_once_per_list(tiny, key, monkeypatch) -> None:
    calls = []
    original = tiny.pipeline.encode_context
    monkeypatch.setattr(tiny.pipeline, "encode_context", lambda rows: calls.append(1) or original(rows))
    sweeper = Sweeper(tiny.pipeline, tiny.context, level)
    first = sweeper.sweep(SweepRequest(key[0], segment=key[1], bins=5))
    second = sweeper.sweep(SweepRequest(key[0], segment=key[1], bins=9, price_min=1.0, price_max=2.0))
    assert len(calls) == 1
    assert first.context_rows == second.context_rows


def test_prepared_sweeper_answers_as_the_per_list_path(tiny) -> None:
    """prepare() encodes every list and works out every list's terms at once: the same blocks, terms and
    curves as the per-list path, and no encoding per sweep afterwards."""
    lazy = Sweeper(tiny.pipeline, tiny.context, level)
    prepared = Sweeper(tiny.pipeline, tiny.context, level)
    prepared.prepare()
    for key in tiny.context.lists:
        for context in (1, 7, MAX_CONTEXT):
            np.testing.assert_array_equal(prepared._context_block(key, context), lazy._context_block(key, context))
        assert prepared.terms(key) == lazy.terms(key)
        request = SweepRequest(key[0], segment=key[1], bins=11)
        assert prepared.sweep(request).to_dict() == lazy.sweep(request).to_dict()
    assert not prepared._context_block(key, 3).flags.writeable


def test_plans_predicted_together_answer_like_each_alone(sweeper, tiny, key) -> None:
    other = (tiny.context.lists[1][0], tiny.context.lists[1][1])
    plans = [
        sweeper.plan(SweepRequest(key[0], segment=key[1], bins=7)),
        sweeper.plan(SweepRequest(other[0], segment=other[1], bins=4, context=3)),
        sweeper.plan(SweepRequest(key[0], segment=key[1], bins=2, context=1)),
    ]
    calls = []
    together = plans_stats(lambda X: calls.append(len(X)) or level(X), plans)
    assert calls == [sum(len(plan.context) for plan in plans)]
    for plan, stats in zip(plans, together, strict=True):
        np.testing.assert_allclose(stats, curve_stats(level(plan.context), plan.log_response), rtol=1e-12)


def test_a_model_answering_the_wrong_number_of_rows_is_refused(sweeper, key) -> None:
    plans = [sweeper.plan(SweepRequest(key[0], segment=key[1], bins=3))] * 2
    with pytest.raises(ValueError, match="returned shape"):
        plans_stats(lambda X: level(X)[:-1], plans)


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
        ({"segment": "vip"}, "segment"),
    ],
)
def test_invalid_requests_name_the_field(sweeper, key, kwargs, field) -> None:
    with pytest.raises(SweepInputError) as info:
        sweeper.sweep(SweepRequest(key[0], **kwargs))
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")


def test_unknown_product_or_list_is_its_own_error(sweeper, tiny) -> None:
    with pytest.raises(UnknownProductError, match="'NOPE'"):
        sweeper.sweep(SweepRequest("NOPE"))
    lists = pd.Series(tiny.context.lists)
    products = {code for code, _ in tiny.context.lists}
    single = [c for c in products if (lists.str[0] == c).sum() == 1]
    if single:  # a product sold on one list only has no other list to sweep
        code = single[0]
        other = "retail" if tiny.context.default_segment[code] == "wholesale" else "wholesale"
        with pytest.raises(UnknownProductError, match=f"{other} list"):
            sweeper.sweep(SweepRequest(code, segment=other))


def _terms(slope: float, sd: float) -> ListTerms:
    return ListTerms("wholesale", 2.0, 2.0, 1.0, slope, sd, 0.0, True, 0.9, (1.5, 2.5))


def test_summary_takes_median_min_max_across_context_periods_and_reports_the_list() -> None:
    prices = np.array([1.0, 2.0])
    plan = SweepPlan("X", prices, np.zeros((3, 1)), np.zeros(2), _terms(-1.0, 0.0))
    result = result_from_stats(plan, curve_stats(np.log1p([1.0, 2.0, 6.0]), np.array([np.log(2.0), 0.0])))
    np.testing.assert_allclose(result.quantity, [4.0, 2.0])
    np.testing.assert_allclose(result.quantity_min, [2.0, 1.0])
    np.testing.assert_allclose(result.quantity_max, [12.0, 6.0])
    payload = result.to_dict()
    assert payload["optimal"]["unit_price"] == 1.0
    assert payload["optimal"]["at_grid_edge"] == "lower"
    assert payload["price_list"]["segment"] == "wholesale"
    assert payload["price_list"]["response"] == "own"


def test_the_interval_widens_with_the_uncertainty_of_the_slope_and_holds_the_optimum() -> None:
    prices = np.linspace(1.0, 4.0, 301)
    stats = curve_stats(np.log1p([1.0]), log_response(prices / 2.0, -1.0, 0.0))
    narrow = result_from_stats(SweepPlan("X", prices, np.zeros((1, 1)), np.zeros(301), _terms(-1.0, 0.05)), stats)
    wide = optimum_interval(narrow, _terms(-1.0, 0.3))
    assert narrow.interval[0] <= narrow.optimal_price <= narrow.interval[1]
    assert narrow.optimal_price == pytest.approx(2.0, abs=0.02)  # revenue x exp(-(x - 1)) peaks at x = 1
    assert wide[0] < narrow.interval[0] and narrow.interval[1] < wide[1]
