"""Promotion: a new primary against the serving one on the same held-out data, and the behaviour checks.

The contenders are real models on the ``tiny`` synthetic data set: an ElasticNet fitted on every cell with
the pipeline fitted on every cell (the reference), the same with the level target shuffled (it no longer
predicts how units move with season and price: worse on held-out price changes, same optima), and a pipeline
fitted on the first quarter of the periods only (worse price responses: worse optima).
"""

from __future__ import annotations

import json
import math
import shutil
import uuid

import numpy as np
import pandas as pd
import pytest

from pricing.evaluate import ListBaseline, best_selling_lists, heldout_events
from pricing.features import FEATURES, FeaturePipeline
from pricing.models import model_class
from pricing.promotion import (
    MAX_EDGE_SHARE,
    MIN_SHARED_LISTS,
    Contender,
    HeldOutData,
    behaviour_failure,
    compare,
    current_primary,
    decide,
)
from pricing.registry import ESTIMATOR_DIR, publish_run, save_model
from pricing.sweep import ContextStore

SMOKE_EDGES = {"lists": 50, "at_edge": 4, "at_edge_not_flagged": 0, "identifiable": 2}  # the smoke run's primary


def contender(label: str, tiny, cells: pd.DataFrame, shuffle: bool = False) -> Contender:
    """An ElasticNet with a pipeline fitted on ``cells`` and context from every period, as training builds them."""
    demand = tiny.demand
    pipeline = FeaturePipeline(period=demand.period).fit(cells)
    context = ContextStore.build(demand.cells, demand.lists, pipeline)
    X, y = pipeline.transform(demand.cells), pipeline.level_target(demand.cells)
    if shuffle:
        y = np.random.default_rng(0).permutation(y)
    return Contender(label, model_class("elasticnet")(alpha=0.01).fit(X, y), pipeline, context)


@pytest.fixture(scope="module")
def good(tiny) -> Contender:
    return contender("good", tiny, tiny.demand.cells)


@pytest.fixture(scope="module")
def shuffled(tiny) -> Contender:
    return contender("shuffled", tiny, tiny.demand.cells, shuffle=True)


@pytest.fixture(scope="module")
def early(tiny) -> Contender:
    cells = tiny.demand.cells
    periods = np.sort(cells["period"].unique())
    return contender("early", tiny, cells[cells["period"] <= periods[len(periods) // 4]])


@pytest.fixture(scope="module")
def heldout(tiny) -> HeldOutData:
    return HeldOutData("heldout_price_response", events=heldout_events(pd.concat([tiny.split.val, tiny.split.test])))


@pytest.fixture(scope="module")
def pricing(tiny, good) -> HeldOutData:
    baseline = ListBaseline().fit(tiny.demand.cells, good.pipeline.lists_["usual_price"])
    codes = best_selling_lists(good.context.catalogue, n=25, moved=True)  # 25 of the 50 training judges: faster
    return HeldOutData("pricing_error", truth=tiny.truth, codes=codes, baseline=baseline)


def serving(model: Contender, run_id: str = "run-serving"):
    return lambda: (run_id, model)


@pytest.mark.parametrize("criterion", ["heldout", "pricing"])
def test_the_serving_primary_itself_is_promoted_with_no_change(criterion, request, good) -> None:
    data = request.getfixturevalue(criterion)
    decision = decide(good, {"edges": SMOKE_EDGES}, data, serving=serving(good))
    assert decision.publish and not decision.reasons and not decision.forced
    comparison = decision.comparison
    assert comparison is not None and comparison.change == 0.0 and comparison.new_error > 0
    assert comparison.lists >= MIN_SHARED_LISTS and comparison.serving_run == "run-serving"
    assert decision.message.startswith("published: ")


def test_a_primary_worse_on_heldout_price_changes_is_refused(heldout, good, shuffled) -> None:
    decision = decide(shuffled, {"edges": SMOKE_EDGES}, heldout, serving=serving(good))
    assert not decision.publish
    (reason,) = decision.reasons
    assert "worse than the serving good (run run-serving)" in reason
    assert "median held-out price-response error" in reason and "at most +5.0% allowed" in reason
    assert decision.comparison.change > 0.05
    assert "--force" in decision.message and "\n" not in decision.message
    # The margin is the caller's: the same primary passes when more regression is allowed.
    looser = decision.comparison.change + 0.01
    assert decide(shuffled, {}, heldout, serving=serving(good), max_regression=looser).publish


def test_a_primary_with_worse_optima_is_refused_and_a_better_one_promoted(pricing, good, early) -> None:
    worse = decide(early, {}, pricing, serving=serving(good))
    assert not worse.publish and "median pricing error" in worse.reasons[0]
    better = decide(good, {}, pricing, serving=serving(early))
    assert better.publish and better.comparison.change < -0.05
    # Both are scored on the lists both know, the same lists either way round.
    assert worse.comparison.lists == better.comparison.lists
    assert worse.comparison.new_error == better.comparison.serving_error


def test_the_shuffled_level_leaves_the_optima_alone(pricing, good, shuffled) -> None:
    """The optimum depends on the price response, not on the level: pricing error cannot tell these apart."""
    assert compare(shuffled, good, pricing, serving_run="r").change == pytest.approx(0.0, abs=1e-9)


def test_force_publishes_a_refused_run_and_says_what_it_overrode(heldout, good, shuffled) -> None:
    decision = decide(shuffled, {}, heldout, serving=serving(good), force=True)
    assert decision.publish and decision.forced
    meta = decision.metadata()
    assert meta["published"] is True and meta["forced"] is True and "worse than the serving good" in meta["reason"]
    assert meta["comparison"]["serving_run"] == "run-serving" and meta["comparison"]["relative_change"] > 0.05
    assert json.loads(json.dumps(meta)) == meta, "JSON-ready"
    assert None not in _values(meta), "BentoML metadata holds no None"
    assert decision.message.startswith("published with --force despite: ")


def _values(tree) -> list:
    if isinstance(tree, dict):
        return [v for value in tree.values() for v in _values(value)]
    return [tree]


def test_with_no_serving_run_or_max_regression_inf_nothing_is_compared(heldout, shuffled) -> None:
    first = decide(shuffled, {}, heldout, serving=lambda: None)
    assert first.publish and first.comparison is None and "nothing to compare with" in first.note
    unlimited = decide(shuffled, {}, heldout, max_regression=math.inf, serving=lambda: pytest.fail("compared"))
    assert unlimited.publish and unlimited.metadata()["max_regression"] == "inf"


def test_optima_on_the_grid_edge_refuse_the_run_even_with_no_regression(heldout, good) -> None:
    allowed = int(MAX_EDGE_SHARE * 50)
    edges = {"lists": 50, "at_edge": 30, "at_edge_not_flagged": allowed + 1, "identifiable": 20}
    decision = decide(good, {"edges": edges}, heldout, serving=serving(good))
    assert not decision.publish
    assert decision.reasons == [behaviour_failure({"edges": edges})]
    (reason,) = decision.reasons
    assert f"{allowed + 1} of 50 best sellers" in reason and f"at most {allowed} allowed" in reason
    # Flagged lists are honest pooled answers: many at an edge pass when they are flagged.
    assert behaviour_failure({"edges": {**edges, "at_edge_not_flagged": allowed}}) is None
    assert behaviour_failure({"edges": SMOKE_EDGES}) is None


def test_a_serving_primary_that_knows_too_few_of_the_lists_cannot_be_compared(tiny, heldout, good) -> None:
    cells = tiny.demand.cells
    few = cells["StockCode"].drop_duplicates().head(8)
    narrow = contender("narrow", tiny, cells[cells["StockCode"].isin(few)])
    decision = decide(good, {}, heldout, serving=serving(narrow))
    assert not decision.publish
    assert decision.comparison.lists < MIN_SHARED_LISTS
    assert "cannot be compared with the serving narrow" in decision.reasons[0]


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_max_regression_must_be_a_number_not_below_zero(bad, heldout, good) -> None:
    with pytest.raises(ValueError, match="max_regression"):
        decide(good, {}, heldout, max_regression=bad, serving=serving(good))


def test_the_serving_primary_is_read_from_the_model_store(fresh_store, tiny, good) -> None:
    assert current_primary() is None
    run_id = f"promotion-{uuid.uuid4().hex[:8]}"
    meta = {"run_id": run_id, "features": list(FEATURES)}
    tags = [
        save_model(model, good.pipeline, good.context, rank=rank, metadata=meta)
        for rank, model in enumerate([good.estimator, model_class("svr")(max_train_rows=200).fit(*_train(tiny))])
    ]
    publish_run(run_id)
    found_run, primary = current_primary()
    assert found_run == run_id and primary.label == tags[0]
    X = good.pipeline.transform(tiny.split.test)
    np.testing.assert_allclose(primary.estimator.predict(X), good.estimator.predict(X))


def _train(tiny) -> tuple[np.ndarray, np.ndarray]:
    return tiny.pipeline.transform(tiny.split.train), tiny.pipeline.level_target(tiny.split.train)


def test_a_serving_primary_that_cannot_be_loaded_refuses_the_run(fresh_store, heldout, good) -> None:
    run_id = f"promotion-{uuid.uuid4().hex[:8]}"
    tag = save_model(good.estimator, good.pipeline, good.context, rank=0, metadata={"run_id": run_id})
    publish_run(run_id)
    name, version = tag.split(":")
    shutil.rmtree(fresh_store / name / version / ESTIMATOR_DIR)
    decision = decide(good, {}, heldout)
    assert not decision.publish and decision.comparison is None
    assert "the serving primary could not be loaded and scored" in decision.reasons[0]
    assert decide(good, {}, heldout, force=True).publish
