"""The model store as the contract between training and serving, and which of its runs serves."""

from __future__ import annotations

import json
import uuid

import bentoml
import numpy as np
import pandas as pd
import pytest

from pricing.features import FEATURES
from pricing.models import model_class
from pricing.registry import (
    PUBLISHED_FILE,
    ensure_published_record,
    load_model,
    model_name,
    publish_run,
    published_runs,
    role_of,
    save_model,
    serving_order,
    serving_run_id,
)
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


def test_a_store_without_a_published_record_serves_its_latest_run(fresh_store, fitted, tiny) -> None:
    old_run, _ = save_run(fitted, tiny, ["elasticnet", "svr"])
    _, new_tags = save_run(fitted, tiny, ["svr", "elasticnet"])
    assert published_runs() is None
    assert [str(m.tag) for m in serving_order()] == new_tags
    assert [m.info.metadata["run_id"] for m in serving_order(old_run)] == [old_run, old_run]
    assert [m.info.labels["family"] for m in serving_order(old_run)] == ["elasticnet", "svr"]


def test_only_a_published_run_serves(fresh_store, fitted, tiny) -> None:
    first, first_tags = save_run(fitted, tiny, ["elasticnet"])
    ensure_published_record()  # what training does before it saves: the run serving now is recorded
    assert [e["run_id"] for e in published_runs()] == [first]
    unpublished, _ = save_run(fitted, tiny, ["svr"])
    assert serving_run_id() == first
    assert [str(m.tag) for m in serving_order()] == first_tags
    assert [m.info.metadata["run_id"] for m in serving_order(unpublished)] == [unpublished]  # asked by id

    publish_run(unpublished, forced=True)
    assert serving_run_id() == unpublished
    record = json.loads((fresh_store / PUBLISHED_FILE).read_text())
    assert [(e["run_id"], e["forced"]) for e in record["runs"]] == [(first, False), (unpublished, True)]
    assert (fresh_store / PUBLISHED_FILE).stat().st_mode & 0o777 == 0o644
    files = {p.name for p in fresh_store.iterdir() if p.is_file()}
    assert files == {PUBLISHED_FILE, f".{PUBLISHED_FILE}.lock"}, "no temporary file left behind"
    ensure_published_record()  # a record that exists is left alone
    assert [e["run_id"] for e in published_runs()] == [first, unpublished]


def test_an_empty_store_gets_an_empty_record_and_a_refused_first_run_does_not_serve(fresh_store, fitted, tiny) -> None:
    ensure_published_record()
    assert published_runs() == []
    refused, _ = save_run(fitted, tiny, ["elasticnet"])
    with pytest.raises(LookupError, match=f"no published training run.*unpublished runs: {refused}"):
        serving_order()


def test_the_latest_published_run_still_in_the_store_serves(fresh_store, fitted, tiny) -> None:
    kept, _ = save_run(fitted, tiny, ["elasticnet"])
    deleted, (tag,) = save_run(fitted, tiny, ["svr"])
    publish_run(kept)
    publish_run(deleted)
    bentoml.models.delete(tag)
    assert serving_run_id() == kept


def test_publishing_a_run_that_is_not_stored_is_refused(fresh_store) -> None:
    with pytest.raises(LookupError, match="no-such-run"):
        publish_run("no-such-run")
    assert not (fresh_store / PUBLISHED_FILE).exists()


def test_a_damaged_record_is_named(fresh_store, fitted, tiny) -> None:
    save_run(fitted, tiny, ["elasticnet"])
    (fresh_store / PUBLISHED_FILE).write_text('{"runs": [')
    with pytest.raises(LookupError, match=f"{PUBLISHED_FILE}: not a valid published-runs record"):
        serving_order()


def test_unknown_run_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="no-such-run"):
        serving_order("no-such-run")


def test_roles() -> None:
    assert [role_of(r) for r in range(3)] == ["primary", "fallback-1", "fallback-2"]
