"""Behavioural checks of smoke-trained models, loaded back from the model store like the service loads them.

Directional: a higher posted price never means more units; of two products identical but for their price
sensitivity, the more sensitive one gets the lower optimum. Honesty: a product with quantity tiers whose
posted price never changed is flagged not identifiable. Invariance: the fast sweep equals the naive
reference and repeating a sweep changes nothing. Minimum functionality: the curve is complete and finite and
the interval holds the optimum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.config import FAMILIES
from pricing.evaluate import best_selling_lists
from pricing.registry import StoredModel, load_model, serving_order
from pricing.sweep import SweepRequest
from tests.conftest import TWIN_RATIOS

LISTS = 12


@pytest.fixture(scope="module")
def stored(smoke_run) -> dict[str, StoredModel]:
    models = serving_order(smoke_run.record["run_id"])
    return {m.info.labels["family"]: load_model(m) for m in models}


@pytest.fixture(scope="module")
def twins(twin_run) -> dict[str, StoredModel]:
    models = serving_order(twin_run.record["run_id"])
    return {m.info.labels["family"]: load_model(m) for m in models}


@pytest.fixture(scope="module")
def codes(stored) -> list[str]:
    return best_selling_lists(next(iter(stored.values())).context.catalogue, LISTS)


def test_every_family_passed_the_gate_on_the_smoke_data(smoke_run, stored) -> None:
    assert sorted(stored) == sorted(FAMILIES), smoke_run.record["refused"]


@pytest.mark.parametrize("family", FAMILIES)
def test_raising_the_posted_price_lowers_demand(stored, codes, family) -> None:
    sweeper = stored[family].sweeper()
    for code in codes:
        result = sweeper.sweep(SweepRequest(code, segment="wholesale", bins=20))
        assert (np.diff(result.quantity) < 0).all(), f"{family}: demand rises with price for {code}"


@pytest.mark.parametrize("family", FAMILIES)
def test_of_two_twins_the_more_price_sensitive_gets_the_lower_optimum(twins, twin_run, family) -> None:
    truth = pd.read_csv(twin_run.data_dir.parent / "ground_truth.csv", dtype={"StockCode": str}).head(2)
    sensitive, tolerant = truth["StockCode"].tolist()  # optimum ratios TWIN_RATIOS, in this order
    assert TWIN_RATIOS[0] < TWIN_RATIOS[1]
    sweeper = twins[family].sweeper()
    low, high = (sweeper.sweep(SweepRequest(code, segment="wholesale", bins=200)) for code in (sensitive, tolerant))
    assert low.terms.usual_price == high.terms.usual_price, "twins share their posted prices"
    assert low.optimal_price < high.optimal_price, f"{family}: {low.optimal_price} vs {high.optimal_price}"
    assert low.terms.slope < high.terms.slope < 0


def test_a_tiered_product_whose_price_never_moved_is_flagged(twins) -> None:
    stored = next(iter(twins.values()))
    catalogue = stored.context.catalogue.xs("wholesale", level="segment")
    fixed = catalogue[(catalogue["price_changes"] == 0) & catalogue["tier_factor"].notna()]
    assert len(fixed) > 0, "the generator makes products with tiers whose price never moves"
    sweeper = stored.sweeper()
    for code in fixed.sort_values("units_per_period", ascending=False).index[:5]:
        result = sweeper.sweep(SweepRequest(code, segment="wholesale"))
        body = result.to_dict()["price_list"]
        assert body["identifiable"] is False and body["response"] == "pooled", code
        assert body["quantity_tier"] is not None, code


@pytest.mark.parametrize("family", FAMILIES)
def test_the_curve_is_finite_and_the_interval_holds_the_optimum(stored, codes, family) -> None:
    sweeper = stored[family].sweeper()
    for code in codes:
        result = sweeper.sweep(SweepRequest(code, bins=50))
        assert np.isfinite(result.sales).all() and (result.quantity > 0).all()
        assert result.interval[0] <= result.optimal_price <= result.interval[1]
        assert len(result.to_dict()["curve"]) == 50


@pytest.mark.parametrize("family", FAMILIES)
def test_fast_sweep_equals_the_naive_reference(stored, codes, family) -> None:
    sweeper = stored[family].sweeper()
    request = SweepRequest(codes[0], bins=25, context=30)
    fast, naive = sweeper.sweep(request), sweeper.naive_sweep(request)
    np.testing.assert_allclose(fast.prices, naive.prices)
    np.testing.assert_allclose(fast.quantity, naive.quantity, rtol=1e-5)
    assert fast.optimal_price == naive.optimal_price


@pytest.mark.parametrize("family", FAMILIES)
def test_repeated_sweeps_are_identical(stored, codes, family) -> None:
    sweeper = stored[family].sweeper()
    first = sweeper.sweep(SweepRequest(codes[1], bins=30))
    again = sweeper.sweep(SweepRequest(codes[1], bins=30))
    np.testing.assert_array_equal(first.quantity, again.quantity)
