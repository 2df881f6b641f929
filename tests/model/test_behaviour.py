"""Behavioural checks of smoke-trained models, loaded back from the model store like the service loads them.

Directional: a higher price never means more units on average. Invariance: the fast sweep equals the naive
reference and repeating a sweep changes nothing. Minimum functionality: the optimum lies inside the grid
and the curve is complete and finite.
"""

from __future__ import annotations

import numpy as np
import pytest

from pricing.config import FAMILIES
from pricing.evaluate import most_sold_products
from pricing.registry import StoredModel, load_model, serving_order
from pricing.sweep import SweepRequest

PRODUCTS = 12


@pytest.fixture(scope="module")
def stored(smoke_run) -> dict[str, StoredModel]:
    models = serving_order(smoke_run.record["run_id"])
    return {m.info.labels["family"]: load_model(m) for m in models}


@pytest.fixture(scope="module")
def products(stored) -> list[str]:
    return most_sold_products(next(iter(stored.values())).context.catalogue, PRODUCTS)


@pytest.mark.parametrize("family", FAMILIES)
def test_raising_the_price_lowers_quantity_on_average(stored, products, family) -> None:
    sweeper = stored[family].sweeper()
    log_ratios = []
    for code in products:
        result = sweeper.sweep(SweepRequest(code, bins=20, context=200))
        log_ratios.append(np.log(result.quantity[-1] / result.quantity[0]))
        assert np.mean(np.diff(np.log(result.quantity))) <= 1e-9, f"{family}: demand rises with price for {code}"
    assert np.mean(log_ratios) < 0


@pytest.mark.parametrize("family", FAMILIES)
def test_optimum_lies_inside_the_grid_and_the_curve_is_finite(stored, products, family) -> None:
    sweeper = stored[family].sweeper()
    for code in products:
        result = sweeper.sweep(SweepRequest(code, bins=50, context=200))
        assert result.prices[0] <= result.optimal_price <= result.prices[-1]
        assert np.isfinite(result.sales).all() and (result.quantity > 0).all()
        assert len(result.to_dict()["curve"]) == 50


@pytest.mark.parametrize("family", FAMILIES)
def test_fast_sweep_equals_the_naive_reference(stored, products, family) -> None:
    sweeper = stored[family].sweeper()
    code = products[0]
    fast, naive = (
        sweeper.sweep(SweepRequest(code, bins=25, context=100)),
        sweeper.naive_sweep(SweepRequest(code, bins=25, context=100)),
    )
    np.testing.assert_allclose(fast.prices, naive.prices)
    np.testing.assert_allclose(fast.quantity, naive.quantity, rtol=1e-5)
    assert fast.optimal_price == naive.optimal_price


@pytest.mark.parametrize("family", FAMILIES)
def test_repeated_and_cached_sweeps_are_identical(stored, products, family) -> None:
    sweeper = stored[family].sweeper()
    first = sweeper.sweep(SweepRequest(products[1], bins=30))
    again = sweeper.sweep(SweepRequest(products[1], bins=30))
    np.testing.assert_array_equal(first.quantity, again.quantity)
