"""Properties of the price sweep over any valid request: every price list, any price range a client may send
(the API takes any finite positive bounds), any bin count and context size give a finite curve on the requested
grid whose reported optimum is its maximum, with the optimum's interval on the grid around it.

Hypothesis runs with the suite's profile (tests/conftest.py): derandomized, no example database, bounded examples.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing.features import FEATURES
from pricing.limits import MAX_BINS, MAX_CONTEXT, MIN_BINS
from pricing.sweep import Sweeper, SweepRequest, plans_stats, result_from_stats

positive = st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False)


def level(X: np.ndarray) -> np.ndarray:
    """A level model that depends on the context (so context periods differ), as in test_sweep."""
    return 1.0 + 0.5 * X[:, FEATURES.index("log_units_per_period")] + 0.2 * X[:, FEATURES.index("week_sin")]


@pytest.fixture(scope="module")
def sweeper(tiny) -> Sweeper:
    return Sweeper(tiny.pipeline, tiny.context, level)


@st.composite
def requests(draw: st.DrawFn, lists: list[tuple[str, str]]) -> SweepRequest:
    """A valid request: a known list, bounds that are absent, typical or extreme, lower below upper."""
    stockcode, segment = draw(st.sampled_from(lists))
    bounds = draw(
        st.one_of(
            st.tuples(st.none(), st.none()),
            st.tuples(st.floats(0.01, 50.0), st.floats(0.01, 50.0)),  # around real prices
            st.tuples(positive, positive),  # anything a client may send
            st.tuples(positive, st.none()),
            st.tuples(st.none(), positive),
        )
    )
    price_min, price_max = bounds
    if price_min is not None and price_max is not None:
        price_min, price_max = sorted(bounds)
    return SweepRequest(
        stockcode,
        price_min=price_min,
        price_max=price_max,
        bins=draw(st.one_of(st.integers(MIN_BINS, 12), st.integers(MIN_BINS, MAX_BINS))),
        context=draw(st.integers(1, MAX_CONTEXT)),
        segment=draw(st.sampled_from([segment, None])),  # None: the product's main list
    )


def valid_range(sweeper: Sweeper, request: SweepRequest) -> tuple[float, float] | None:
    """The grid's ends the request asks for, or None when its bounds are not a range (lower not below upper)."""
    key = sweeper.store.resolve(request.stockcode, request.segment)
    lo, hi = sweeper.default_range(key)
    lo = lo if request.price_min is None else request.price_min
    hi = hi if request.price_max is None else request.price_max
    return (lo, hi) if lo < hi else None


# Prices near the float range overflow on the way (a log response of -1e308 cast to float32 is -inf, whose
# exponential is the zero the curve should have there): numpy warns; the properties check the outcome.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_any_valid_request_gives_a_finite_curve_whose_optimum_is_its_maximum(sweeper, tiny) -> None:
    @given(request=requests(tiny.context.lists))
    def check(request: SweepRequest) -> None:
        ends = valid_range(sweeper, request)
        if ends is None:
            return  # the validation's own tests cover refused ranges
        result = sweeper.sweep(request)
        body = result.to_dict()
        curve, optimal = body["curve"], body["optimal"]

        # The requested grid, in order, both ends included.
        assert len(curve) == request.bins
        prices = np.array([point["unit_price"] for point in curve])
        assert prices[0] == ends[0] and prices[-1] == pytest.approx(ends[1], rel=1e-12)
        assert (np.diff(prices) >= 0).all()

        # Finite everywhere; the median between the minimum and the maximum; sales = price x quantity x paid.
        for name in ("unit_price", "quantity", "quantity_min", "quantity_max", "predicted_sales"):
            values = np.array([point[name] for point in curve])
            assert np.isfinite(values).all(), (name, values)
            assert (values >= 0).all(), name
        for point in curve:
            assert point["quantity_min"] <= point["quantity"] <= point["quantity_max"]
        assert result.terms is not None
        np.testing.assert_allclose(result.sales, result.prices * result.quantity * result.terms.paid_ratio)

        # The reported optimum is the curve's maximum, at the first grid price that reaches it.
        sales = np.array([point["predicted_sales"] for point in curve])
        best = int(np.argmax(sales))
        assert optimal["predicted_sales"] == sales.max()
        assert optimal["unit_price"] == curve[best]["unit_price"] and optimal["quantity"] == curve[best]["quantity"]
        assert optimal["at_grid_edge"] == {0: "lower", len(curve) - 1: "upper"}.get(best)

        # The interval is two grid prices around the optimum.
        low, high = optimal["interval"]
        assert math.isfinite(low) and math.isfinite(high)
        assert low in prices and high in prices
        assert low <= optimal["unit_price"] <= high, (low, optimal["unit_price"], high)

    check()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_sweeps_batched_together_answer_like_each_alone(sweeper, tiny) -> None:
    @settings(max_examples=40)
    @given(batch=st.lists(requests(tiny.context.lists), min_size=1, max_size=4))
    def check(batch: list[SweepRequest]) -> None:
        batch = [request for request in batch if valid_range(sweeper, request) is not None]
        if not batch:
            return
        plans = [sweeper.plan(request) for request in batch]
        together = [
            result_from_stats(plan, stats) for plan, stats in zip(plans, plans_stats(level, plans), strict=True)
        ]
        for request, result in zip(batch, together, strict=True):
            alone = sweeper.sweep(request)
            np.testing.assert_array_equal(result.sales, alone.sales)
            assert result.optimal_price == alone.optimal_price and result.interval == alone.interval

    check()
