"""Evaluation: the per-list baseline, the held-out price-response check, the accuracy summary and the gate's
metric checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.evaluate import (
    ListBaseline,
    PricingAccuracy,
    heldout_events,
    heldout_response_error,
    metrics_are_sane,
    regression_metrics,
)
from pricing.features import to_target

PERIODS = pd.date_range("2011-01-03", periods=40, freq="W-MON")


def cells(slope: float, prices: np.ndarray, code: str = "A", seed: int = 0) -> pd.DataFrame:
    """Cells whose log(1 + units) is 4 + slope x (price / 2 - 1) plus a little noise."""
    rng = np.random.default_rng(seed)
    target = 4.0 + slope * (prices / 2.0 - 1.0) + rng.normal(0, 0.02, len(prices))
    return pd.DataFrame(
        {"StockCode": code, "segment": "wholesale", "period": PERIODS[: len(prices)], "posted_price": prices,
         "units": np.expm1(target)}
    )  # fmt: skip


def usual(*codes: str) -> pd.Series:
    return pd.Series(2.0, index=pd.MultiIndex.from_tuples([(c, "wholesale") for c in codes]))


def test_the_baseline_recovers_a_lists_own_slope_and_has_none_for_an_unmoved_list() -> None:
    prices = np.where(np.arange(40) % 3 == 0, 1.6, 2.0)
    frame = pd.concat([cells(-1.5, prices), cells(-1.0, np.full(40, 2.0), code="FIXED")], ignore_index=True)
    baseline = ListBaseline().fit(frame, usual("A", "FIXED"))
    assert baseline.lists_.loc[("A", "wholesale"), "slope"] == pytest.approx(-1.5, abs=0.05)
    assert np.isnan(baseline.lists_.loc[("FIXED", "wholesale"), "slope"])
    assert np.isnan(baseline.optimal_price(("FIXED", "wholesale"), 1.0, 3.0))
    # log-linear demand exp(-1.5 (p/2 - 1)): revenue peaks at p = 2 / 1.5.
    assert baseline.optimal_price(("A", "wholesale"), 1.0, 3.0) == pytest.approx(2 / 1.5, abs=0.02)
    np.testing.assert_allclose(baseline.predict(frame.head(40)), to_target(frame.head(40)["units"]), atol=0.1)


def test_heldout_events_are_lists_whose_posted_price_changed_with_periods_on_both_sides() -> None:
    changed = cells(-1.0, np.r_[np.full(5, 2.0), np.full(5, 2.4)])
    brief = cells(-1.0, np.r_[np.full(9, 2.0), [2.4]], code="BRIEF")
    steady = cells(-1.0, np.full(10, 2.0), code="STEADY")
    events = heldout_events(pd.concat([changed, brief, steady], ignore_index=True))
    assert set(events["StockCode"]) == {"A"}
    assert events["before"].tolist() == [True] * 5 + [False] * 5


def test_a_model_that_knows_the_response_leaves_no_jump_and_ignoring_price_scores_the_change() -> None:
    events = heldout_events(cells(-1.0, np.r_[np.full(5, 2.0), np.full(5, 2.4)]))
    truth = heldout_response_error(events, lambda c: 4.0 - 1.0 * (c["posted_price"].to_numpy() / 2.0 - 1.0))
    flat = heldout_response_error(events, lambda c: np.full(len(c), 4.0))
    assert truth.summary()["median_abs_error"] < 0.03
    assert flat.summary()["median_abs_error"] == pytest.approx(0.2, abs=0.03)
    assert flat.summary()["no_change_error"] == pytest.approx(0.2, abs=0.03)
    assert truth.summary()["lists"] == 1


def test_lists_a_model_cannot_answer_are_left_out_of_the_check() -> None:
    events = heldout_events(cells(-1.0, np.r_[np.full(5, 2.0), np.full(5, 2.4)]))
    check = heldout_response_error(events, lambda c: np.full(len(c), np.nan))
    assert check.summary()["lists"] == 0 and np.isnan(check.summary()["median_abs_error"])


def test_the_accuracy_summary_compares_with_the_baseline() -> None:
    table = pd.DataFrame(
        {
            "StockCode": list("ABCD"),
            "true_price": [2.0, 2.0, 3.0, 3.0],
            "usual_price": [2.2, 1.8, 3.0, 3.3],
            "found_price": [2.1, 1.9, 3.3, 3.0],
            "baseline_price": [2.4, 1.6, 3.9, 3.3],
            "identifiable": [True, True, False, True],
            "at_grid_edge": [None, None, "upper", None],
            "covered": [True, True, False, True],
        }
    )
    table["rel_error"] = (table["found_price"] / table["true_price"] - 1).abs()
    table["baseline_rel_error"] = (table["baseline_price"] / table["true_price"] - 1).abs()
    summary = PricingAccuracy(table).summary()
    assert summary["median_rel_error"] == pytest.approx(0.05)
    assert summary["baseline_median_rel_error"] == pytest.approx(0.2)
    assert summary["median_vs_baseline"] == pytest.approx(0.25)
    assert summary["identifiable"] == 3 and summary["lists"] == 4 and summary["interval_coverage"] == 0.75


def test_the_gate_refuses_non_finite_and_non_positive_r2_metrics() -> None:
    y = np.log1p(np.arange(1, 50, dtype=float))
    assert metrics_are_sane(regression_metrics(y, y + 0.01)) is None
    assert "R²" in metrics_are_sane(regression_metrics(y, np.full_like(y, y.mean() + 1.0)))
    assert "non-finite" in metrics_are_sane(regression_metrics(y, np.where(y > 2, np.inf, y)))
