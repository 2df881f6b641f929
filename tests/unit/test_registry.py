"""The model store as the contract between training and serving."""

from __future__ import annotations

import uuid

import bentoml
import numpy as np
import pandas as pd
import pytest

from pricing.features import FEATURES
from pricing.models import model_class
from pricing.registry import load_model, model_name, role_of, save_model, serving_order
from pricing.sweep import SweepRequest


@pytest.fixture(scope="module")
def fitted(tiny):
    X = tiny.pipeline.transform(tiny.split.train)
    y = tiny.pipeline.level_target(tiny.split.train)
    return {
        "elasticnet": model_class("elasticnet")(alpha=0.01).fit(X, y),
        "svr": model_class("svr")(max_train_rows=200).fit(X, y),
    }


def save_run(fitted, tiny, order: list[str]) -> tuple[str, list[str]]:
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    meta = {"run_id": run_id, "data_hash": "abc", "features": list(FEATURES), "metrics": {"test": {"mse": 0.4}}}
    tags = [save_model(fitted[f], tiny.pipeline, tiny.context, rank=r, metadata=meta) for r, f in enumerate(order)]
    return run_id, tags


def test_saved_model_is_self_contained_and_predicts_the_same(fitted, tiny) -> None:
    _, (tag,) = save_run(fitted, tiny, ["elasticnet"])
    stored = load_model(tag)
    X = tiny.pipeline.transform(tiny.split.test)
    np.testing.assert_allclose(stored.estimator.predict(X), fitted["elasticnet"].predict(X))
    np.testing.assert_array_equal(stored.pipeline.transform(tiny.split.test), X)
    code = tiny.context.catalogue.index[0][0]
    in_memory = type(stored.sweeper())(tiny.pipeline, tiny.context, fitted["elasticnet"].predict)
    np.testing.assert_allclose(
        stored.sweeper().sweep(SweepRequest(code, bins=5)).quantity,
        in_memory.sweep(SweepRequest(code, bins=5)).quantity,
    )
    assert stored.metadata["family"] == "elasticnet" and stored.family == "elasticnet"


def test_a_runs_models_share_one_pipeline_and_context_in_memory(fitted, tiny) -> None:
    _, tags = save_run(fitted, tiny, ["svr", "elasticnet"])
    shared: dict = {}
    first, second = load_model(tags[0], shared), load_model(tags[1], shared)
    assert first.context is second.context and first.pipeline is second.pipeline
    alone = load_model(tags[1])
    assert alone.context is not first.context
    pd.testing.assert_frame_equal(alone.context.rows, first.context.rows)


def test_labels_and_metadata(fitted, tiny) -> None:
    run_id, (primary, fallback) = save_run(fitted, tiny, ["svr", "elasticnet"])
    first, second = bentoml.models.get(primary), bentoml.models.get(fallback)
    assert first.tag.name == model_name("svr") and second.tag.name == model_name("elasticnet")
    assert first.info.labels == {"family": "svr", "role": "primary", "project": "pricing"}
    assert second.info.labels["role"] == "fallback-1"
    meta = first.info.metadata
    assert meta["run_id"] == run_id and meta["rank"] == 0 and meta["features"] == list(FEATURES)
    assert {"bentoml", "torch", "scikit-learn", "numpy", "python"} <= set(meta["library_versions"])


def test_serving_order_is_the_latest_runs_models_by_rank(fitted, tiny) -> None:
    old_run, _ = save_run(fitted, tiny, ["elasticnet", "svr"])
    _, new_tags = save_run(fitted, tiny, ["svr", "elasticnet"])
    assert [str(m.tag) for m in serving_order()] == new_tags
    assert [m.info.metadata["run_id"] for m in serving_order(old_run)] == [old_run, old_run]
    assert [m.info.labels["family"] for m in serving_order(old_run)] == ["elasticnet", "svr"]


def test_unknown_run_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="no-such-run"):
        serving_order("no-such-run")


def test_roles() -> None:
    assert [role_of(r) for r in range(3)] == ["primary", "fallback-1", "fallback-2"]
