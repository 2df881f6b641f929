"""Each list's price response: two parts, partial pooling, identifiability, the pooled curve shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.response import MIN_PRIOR_ORDERS, PartFit, PriceResponse, TooLittleDataError, log_response, pool

WEEKS = pd.date_range("2010-12-06", periods=52, freq="W-MON")


def simulate(slopes: dict[str, float], moves: dict[str, np.ndarray], seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Wholesale demand cells of lists with known slopes: orders ~ Poisson(20 D), sizes ~ lognormal(log 6 + ...),
    with log D = slope x (price / 2 - 1) split evenly between the two parts; ``moves`` gives each list's posted
    price over the weeks."""
    rng = np.random.default_rng(seed)
    rows = []
    for code, slope in slopes.items():
        price = moves[code]
        x = price / 2.0 - 1.0
        orders = rng.poisson(20.0 * np.exp(0.5 * slope * x))
        for t, (period, n) in enumerate(zip(WEEKS, orders, strict=True)):
            sizes = np.maximum(1, np.rint(np.exp(np.log(6.0) + 0.5 * slope * x[t] + rng.normal(0, 0.5, n))))
            logs = np.log(sizes)
            rows.append((code, "wholesale", period, price[t], sizes.sum(), n, n, logs.sum(), (logs**2).sum(), 6))
    columns = ["StockCode", "segment", "period", "posted_price", "units", "orders", "lines", "log_quantity_sum",
               "log_quantity_sq_sum", "trading_days"]  # fmt: skip
    cells = pd.DataFrame(rows, columns=columns)
    usual = pd.Series(2.0, index=pd.MultiIndex.from_tuples([(c, "wholesale") for c in slopes]))
    return cells.astype({"units": np.int64, "orders": np.int64, "lines": np.int64}), usual


@pytest.fixture(scope="module")
def fitted() -> tuple[PriceResponse, dict[str, float]]:
    rng = np.random.default_rng(1)
    slopes, moves = {}, {}
    for i in range(60):  # lists with frequent promotions, slopes spread around -1
        code = f"P{i:02d}"
        slopes[code] = float(rng.normal(-1.0, 0.3))
        moves[code] = np.where(rng.random(len(WEEKS)) < 0.4, rng.choice([1.5, 1.6, 1.7], len(WEEKS)), 2.0)
    slopes["FIXED"], moves["FIXED"] = -2.5, np.full(len(WEEKS), 2.0)
    slopes["ONCE"], moves["ONCE"] = -2.5, np.where(np.arange(len(WEEKS)) < 26, 2.0, 2.04)
    cells, usual = simulate(slopes, moves)
    return PriceResponse().fit(cells, usual), slopes


def test_lists_with_rich_price_variation_keep_their_own_slope(fitted) -> None:
    response, truth = fitted
    lists = response.lists_.xs("wholesale", level=1)
    promoted = [c for c in truth if c.startswith("P")]
    estimated, true = lists.loc[promoted, "slope"], pd.Series(truth)[promoted]
    assert np.corrcoef(estimated, true)[0, 1] > 0.6
    assert (estimated - true).abs().median() < 0.2
    assert lists.loc[promoted, "identifiable"].mean() > 0.5


def test_a_list_whose_price_never_moved_gets_the_pooled_slope_and_is_flagged(fitted) -> None:
    response, truth = fitted
    entry = response.lists_.loc[("FIXED", "wholesale")]
    prior_mean, prior_var = response.prior_["wholesale"]
    assert entry["slope"] == pytest.approx(prior_mean, rel=1e-6)
    assert entry["own_weight"] == pytest.approx(0.0, abs=1e-6) and not entry["identifiable"]
    assert entry["slope_sd"] == pytest.approx(np.sqrt(prior_var), rel=1e-6)
    assert prior_mean == pytest.approx(np.mean([v for c, v in truth.items() if c.startswith("P")]), abs=0.2)


def test_a_list_whose_price_barely_moved_is_shrunk_most_of_the_way_to_the_pool(fitted) -> None:
    response, truth = fitted
    entry = response.lists_.loc[("ONCE", "wholesale")]
    prior_mean, _ = response.prior_["wholesale"]
    assert entry["own_weight"] < 0.5 and not entry["identifiable"]
    assert abs(entry["slope"] - prior_mean) < abs(truth["ONCE"] - prior_mean)


def test_unknown_lists_get_the_prior_of_their_segment(fitted) -> None:
    response, _ = fitted
    slope, sd = response.slopes(np.array(["NEW"]), np.array(["wholesale"]))
    assert slope[0] == pytest.approx(response.prior_["wholesale"][0])
    assert sd[0] == pytest.approx(np.sqrt(response.prior_["wholesale"][1]))
    assert response.shape(np.array(["retail"]))[0] == pytest.approx(np.mean(list(response.shape_.values())))


def test_log_response_is_zero_at_the_usual_price_and_falls_with_it() -> None:
    ratios = np.array([0.5, 0.8, 1.0, 1.2, 1.5])
    for shape in (0.0, 0.5, 1.0):
        values = log_response(ratios, -1.2, shape)
        assert values[2] == 0.0 and (np.diff(values) < 0).all()
    np.testing.assert_allclose(log_response(ratios, -1.2, 0.0), -1.2 * (ratios - 1.0))
    np.testing.assert_allclose(log_response(ratios, -1.2, 1.0), np.log(1.0 - 1.2 * (ratios - 1.0)))
    assert np.isfinite(log_response(np.array([5.0]), -1.2, 1.0)).all(), "past the choke price demand is tiny"


def test_unfitted_response_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        PriceResponse().slopes(np.array(["A"]), np.array(["wholesale"]))


def test_a_list_whose_price_never_moved_is_shrunk_towards_lists_of_its_price_tier() -> None:
    rng = np.random.default_rng(2)
    slopes, moves, usual = {}, {}, {}
    for i in range(80):  # dear products are more price-sensitive here
        code, tier = f"P{i:02d}", float(rng.choice([1.0, 8.0]))
        slopes[code] = -0.6 if tier == 1.0 else -1.6
        moves[code] = tier * np.where(rng.random(len(WEEKS)) < 0.4, rng.choice([0.75, 0.8, 0.85], len(WEEKS)), 1.0)
        usual[code] = tier
    for code, tier in (("CHEAP", 1.0), ("DEAR", 8.0)):
        slopes[code], moves[code], usual[code] = -1.0, np.full(len(WEEKS), tier), tier
    cells, _ = simulate(slopes, {c: m / usual[c] * 2.0 for c, m in moves.items()})
    cells["posted_price"] = cells["posted_price"] * cells["StockCode"].map(usual) / 2.0
    usual_price = pd.Series(usual).set_axis(pd.MultiIndex.from_tuples([(c, "wholesale") for c in usual]))
    lists = PriceResponse().fit(cells, usual_price).lists_.xs("wholesale", level=1)
    assert lists.loc["DEAR", "slope"] < -1.2 < -0.9 < lists.loc["CHEAP", "slope"]
    assert not lists.loc[["CHEAP", "DEAR"], "identifiable"].any()


def test_cells_too_thin_to_estimate_the_pool_are_refused_not_fitted_to_nan() -> None:
    # No list averages MIN_PRIOR_ORDERS orders a period, so no list can estimate the prior. A train.py run on
    # 5,000 synthetic lines (seed 21) met this in its serving fit and gave every list a NaN slope.
    rng = np.random.default_rng(3)
    slopes = {f"P{i}": -1.0 for i in range(5)}
    cells, usual = simulate(slopes, {c: np.where(rng.random(len(WEEKS)) < 0.4, 1.6, 2.0) for c in slopes})
    thin = cells.assign(orders=np.minimum(cells["orders"], int(MIN_PRIOR_ORDERS) - 1))
    with pytest.raises(TooLittleDataError, match=r"3 orders a period over these 52 periods \(the most: 2\.0\)"):
        PriceResponse().fit(thin, usual)

    # One list busy enough is enough for a finite (if weak) pool.
    thin.loc[thin["StockCode"] == "P0", "orders"] = int(MIN_PRIOR_ORDERS)
    response = PriceResponse().fit(thin, usual)
    assert np.isfinite(response.lists_.drop(columns="identifiable").to_numpy()).all()
    assert all(np.isfinite(v).all() for v in response.prior_.values())


def test_pool_refuses_to_estimate_a_prior_from_no_list() -> None:
    part = PartFit(coef=np.array([[-1.0], [-0.5], [0.0]]), info=np.array([[[4.0]], [[2.0]], [[0.0]]]))
    segment, covariates = np.array(["wholesale"] * 3), np.zeros((3, 1))
    with pytest.raises(ValueError, match="no list to estimate the prior from"):
        pool(part, segment, np.zeros(3, dtype=bool), covariates)
    pooled = pool(part, segment, np.array([True, True, False]), covariates)
    assert np.isfinite(pooled.mean).all() and np.isfinite(pooled.cov).all()
    assert pooled.mean[2, 0] == pytest.approx(pooled.list_prior_mean[2, 0])  # no information: the prior
