"""Features of demand cells: the time split, the pipeline fitted on training cells, the level target and the
list's response, the one price function training, /predict and the sweep share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.features import (
    FEATURES,
    KEYS,
    FeaturePipeline,
    from_target,
    split_by_time,
    to_target,
    units_at_price,
)


def test_time_split_orders_train_val_test_by_whole_periods(tiny) -> None:
    split = tiny.split
    assert split.train["period"].max() < split.val["period"].min()
    assert split.val["period"].max() < split.test["period"].min()
    assert len(split.train) + len(split.val) + len(split.test) == len(tiny.demand.cells)
    periods = tiny.demand.cells["period"].nunique()
    assert split.test["period"].nunique() == round(0.15 * periods)


def test_time_split_refuses_too_few_periods(tiny) -> None:
    cells = tiny.demand.cells
    few = cells[cells["period"].isin(np.sort(cells["period"].unique())[:3])]
    with pytest.raises(ValueError, match="too few"):
        split_by_time(few)


def test_pipeline_learns_from_training_cells_only(tiny) -> None:
    train, val = tiny.split.train, tiny.split.val
    changed_val = val.assign(units=val["units"] * 50)
    pipeline = FeaturePipeline().fit(train)
    np.testing.assert_array_equal(pipeline.transform(val), FeaturePipeline().fit(train).transform(changed_val))
    np.testing.assert_array_equal(pipeline.log_response(val), pipeline.log_response(changed_val))


def test_usual_price_is_the_most_often_posted_one(tiny) -> None:
    train = tiny.split.train
    key = tuple(train[KEYS].iloc[0])
    posted = train.set_index(KEYS).loc[key, "posted_price"]
    counts = posted.value_counts()
    expected = counts[counts == counts.max()].index.max()
    assert tiny.pipeline.lists_.loc[key, "usual_price"] == expected


def test_the_response_is_zero_at_the_usual_price_and_falls_with_it(tiny) -> None:
    cells = tiny.split.val.head(50)
    terms = tiny.pipeline.list_terms(cells["StockCode"].to_numpy(), cells["segment"].to_numpy())
    at_usual = tiny.pipeline.log_response(cells, terms["usual_price"].to_numpy())
    np.testing.assert_allclose(at_usual, 0.0, atol=1e-12)
    higher = tiny.pipeline.log_response(cells, 1.2 * terms["usual_price"].to_numpy())
    lower = tiny.pipeline.log_response(cells, 0.8 * terms["usual_price"].to_numpy())
    assert (higher < 0).all() and (lower > 0).all()


def test_level_target_times_the_response_gives_back_the_units(tiny) -> None:
    cells = tiny.split.train
    units = units_at_price(tiny.pipeline.level_target(cells), tiny.pipeline.log_response(cells))
    np.testing.assert_allclose(units, cells["units"], rtol=1e-9, atol=1e-9)


def test_unseen_lists_get_segment_defaults_and_the_pooled_response(tiny) -> None:
    cell = tiny.split.test.iloc[[0]].assign(StockCode="99999Z")
    X = tiny.pipeline.transform(cell)
    assert not tiny.pipeline.knows("99999Z", cell["segment"].iloc[0])
    assert np.isfinite(X).all()
    segment = cell["segment"].iloc[0]
    slope, sd = tiny.pipeline.response_.slopes(np.array(["99999Z"]), np.array([segment]))
    prior_mean, prior_var = tiny.pipeline.response_.prior_[segment]
    assert slope[0] == pytest.approx(prior_mean)
    assert sd[0] == pytest.approx(np.sqrt(prior_var))


def test_transform_is_the_context_block(tiny) -> None:
    part = tiny.split.val
    X = tiny.pipeline.transform(part)
    assert X.shape == (len(part), len(FEATURES))
    assert X.dtype == np.float32
    assert np.isfinite(X).all()


def test_target_transform_round_trips_and_allows_zero() -> None:
    units = np.array([0, 1, 2, 12, 480])
    np.testing.assert_allclose(from_target(to_target(units)), units)
    assert from_target(np.array([-0.5]))[0] == 0.0  # a level below nothing is nothing


def test_cells_for_a_request_fall_in_the_dates_period(tiny) -> None:
    cells = tiny.pipeline.cells_for(
        np.array(["85123A"]), np.array(["wholesale"]), pd.Series(["2011-11-10 15:00"]), np.array([3.0])
    )
    assert cells["period"].iloc[0] == pd.Timestamp("2011-11-07")  # the Monday of that week
    assert cells["trading_days"].iloc[0] == tiny.pipeline.trading_days_


def test_unfitted_pipeline_says_so(tiny) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        FeaturePipeline().transform(tiny.split.val)
