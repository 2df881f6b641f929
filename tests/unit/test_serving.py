"""The serving core: fallback along the serving order on errors, non-finite output, slowness and bad files."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid
from pathlib import Path

import bentoml
import numpy as np
import pytest

from pricing.features import FEATURES
from pricing.models import model_class
from pricing.registry import ESTIMATOR_DIR, load_model, save_model, serving_order
from pricing.serving import ModelsUnavailableError, PricingEngine
from pricing.sweep import SweepInputError, SweepRequest, UnknownProductError
from tests.support import metric


@pytest.fixture(scope="module")
def run(tiny) -> list[bentoml.Model]:
    """A two-model run (ElasticNet primary, LightGBM fallback) in the session's model store."""
    X = tiny.pipeline.transform(tiny.split.train)
    y = tiny.pipeline.level_target(tiny.split.train)
    run_id = f"serving-{uuid.uuid4().hex[:8]}"
    meta = {"run_id": run_id, "features": list(FEATURES), "trained_at": "2026-11-21T00:00:00+00:00"}
    for rank, model in enumerate([model_class("elasticnet")(), model_class("lightgbm")(n_estimators=30)]):
        save_model(model.fit(X, y), tiny.pipeline, tiny.context, rank=rank, metadata=meta)
    return serving_order(run_id)


@pytest.fixture
def engine(run) -> PricingEngine:
    return PricingEngine.load(run, time_budget_s=0.5)


@pytest.fixture
def code(tiny) -> str:
    return str(tiny.context.catalogue.xs("wholesale", level="segment")["units_per_period"].idxmax())


def test_primary_answers_when_healthy(engine, code) -> None:
    answer = asyncio.run(engine.sweep(SweepRequest(code, bins=10)))
    assert answer.model.role == "primary" and answer.model.stored.family == "elasticnet"
    assert not answer.fallback_used and answer.failures == []
    assert len(answer.result.prices) == 10


def test_concurrent_sweeps_share_the_primarys_calls_and_answer_as_alone(engine, code, tiny, monkeypatch) -> None:
    primary = engine.models[0].stored.estimator
    requests = [SweepRequest(key[0], segment=key[1], bins=7 + i) for i, key in enumerate(tiny.context.lists[:12])]
    alone = [asyncio.run(engine.sweep(request)) for request in requests]
    calls = []
    predict = primary.predict
    monkeypatch.setattr(primary, "predict", lambda X: calls.append(len(X)) or predict(X))

    async def together() -> list:
        return await asyncio.gather(*(engine.sweep(request) for request in requests))

    for lone, shared in zip(alone, asyncio.run(together()), strict=True):
        assert shared.model.role == "primary" and not shared.fallback_used
        np.testing.assert_allclose(shared.result.quantity, lone.result.quantity, rtol=1e-12)
        np.testing.assert_allclose(shared.result.quantity_min, lone.result.quantity_min, rtol=1e-12)
        np.testing.assert_array_equal(shared.result.prices, lone.result.prices)
    # Sweeps planned while the model was busy went to it in one call: fewer calls than sweeps, every row once.
    assert 1 <= len(calls) < len(requests)
    assert sum(calls) == sum(len(engine.plan(request).context) for request in requests)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("raise", "error"), ("nan", "non_finite"), ("slow", "timeout"), ("wrong_shape", "error")],
)
def test_a_failing_primary_falls_back_and_says_so(engine, code, fault, reason, monkeypatch) -> None:
    def broken(X: np.ndarray) -> np.ndarray:
        if fault == "raise":
            raise RuntimeError("weights went missing")
        if fault == "slow":
            time.sleep(2.0)
        if fault == "wrong_shape":
            return np.zeros(3)
        return np.full(len(X), np.nan)

    monkeypatch.setattr(engine.models[0].stored.estimator, "predict", broken)
    before = metric("pricing_fallbacks_total", model="pricing_elasticnet", reason=reason)
    answer = asyncio.run(engine.sweep(SweepRequest(code, bins=10)))
    assert answer.fallback_used
    assert answer.model.role == "fallback-1" and answer.model.stored.family == "lightgbm"
    assert [tag for tag, _ in answer.failures] == [engine.models[0].tag]
    assert metric("pricing_fallbacks_total", model="pricing_elasticnet", reason=reason) == before + 1
    assert np.isfinite(answer.result.sales).all()


def test_every_model_failing_is_unavailable_not_an_empty_answer(engine, code, monkeypatch) -> None:
    for model in engine.models:
        monkeypatch.setattr(model.stored.estimator, "predict", lambda X: np.full(len(X), np.inf))
    with pytest.raises(ModelsUnavailableError) as info:
        asyncio.run(engine.sweep(SweepRequest(code, bins=10)))
    assert [tag for tag, _ in info.value.failures] == engine.tags


def test_bad_requests_are_rejected_before_any_model_runs(engine, code, monkeypatch) -> None:
    for model in engine.models:
        monkeypatch.setattr(model.stored.estimator, "predict", lambda X: pytest.fail("a model ran"))
    with pytest.raises(SweepInputError, match="bins"):
        asyncio.run(engine.sweep(SweepRequest(code, bins=1)))
    with pytest.raises(UnknownProductError):
        asyncio.run(engine.sweep(SweepRequest("NOPE")))


def test_a_named_model_answers_alone_and_is_not_a_fallback(engine, code, monkeypatch) -> None:
    primary = engine.models[0].stored.estimator
    calls = []
    predict = primary.predict
    monkeypatch.setattr(primary, "predict", lambda X: calls.append(len(X)) or predict(X))
    answer = asyncio.run(engine.sweep(SweepRequest(code, bins=10), model="pricing_lightgbm"))
    assert calls == [], "the primary ran for a sweep that named the fallback"
    assert answer.model.stored.family == "lightgbm" and answer.model.role == "fallback-1"
    assert answer.chosen and not answer.fallback_used and answer.failures == []
    by_default = asyncio.run(engine.sweep(SweepRequest(code, bins=10)))
    assert by_default.model.stored.family == "elasticnet" and not by_default.chosen


def test_naming_the_primary_goes_through_its_batched_call(engine, code) -> None:
    before = metric("pricing_batch_size_count", kind="sweep")
    answer = asyncio.run(engine.sweep(SweepRequest(code, bins=10), model="pricing_elasticnet"))
    assert answer.model.role == "primary" and not answer.fallback_used
    assert metric("pricing_batch_size_count", kind="sweep") == before + 1


def test_a_failing_named_model_is_unavailable_rather_than_replaced(engine, code, monkeypatch) -> None:
    monkeypatch.setattr(engine.models[1].stored.estimator, "predict", lambda X: np.full(len(X), np.nan))
    before = metric("pricing_fallbacks_total", model="pricing_lightgbm", reason="non_finite")
    with pytest.raises(ModelsUnavailableError) as info:
        asyncio.run(engine.sweep(SweepRequest(code, bins=10), model="pricing_lightgbm"))
    assert [tag for tag, _ in info.value.failures] == [engine.models[1].tag]
    # Nothing fell back, so the fallback counter does not move.
    assert metric("pricing_fallbacks_total", model="pricing_lightgbm", reason="non_finite") == before


def test_a_model_outside_the_serving_order_is_a_bad_request(engine, code) -> None:
    with pytest.raises(SweepInputError, match=r"model: 'pricing_svr' is not a model of the serving order"):
        asyncio.run(engine.sweep(SweepRequest(code, bins=10), model="pricing_svr"))
    assert engine.model_names == ["pricing_elasticnet", "pricing_lightgbm"]


def test_background_loading_is_ready_with_the_primary_and_waits_for_a_needed_fallback(run, code, monkeypatch) -> None:
    release = threading.Event()

    def slow_fallbacks(ref, shared):
        if ref is not run[0]:
            release.wait(10)  # hold the fallback back until the test lets it load
        return load_model(ref, shared)

    monkeypatch.setattr("pricing.serving.load_model", slow_fallbacks)
    engine = PricingEngine.load(run, time_budget_s=5, background=True)
    assert engine.ready and engine.tags == [str(run[0].tag)]
    assert engine.loading == [str(run[1].tag)] and engine.serving_tags == [str(m.tag) for m in run]

    def broken(X: np.ndarray) -> np.ndarray:
        threading.Timer(0.2, release.set).start()  # the fallback finishes loading while the request waits
        raise RuntimeError("primary down")

    monkeypatch.setattr(engine.models[0].stored.estimator, "predict", broken)
    answer = asyncio.run(engine.sweep(SweepRequest(code, bins=10)))
    assert answer.model.role == "fallback-1" and engine.loading == []


def test_a_model_with_corrupt_files_is_skipped_at_load(run, code, tmp_path) -> None:
    # Corrupt a copy of the primary, so the shared store stays intact for other tests.
    primary = run[0]
    copy_path = Path(primary.path).parent / f"corrupt{uuid.uuid4().hex[:6]}"
    shutil.copytree(primary.path, copy_path)
    try:
        for stored in (copy_path / ESTIMATOR_DIR).iterdir():  # the model's own files, whatever its family
            if stored.name != "params.json":
                stored.write_bytes(b"not a model")
        broken = bentoml.models.get(f"{primary.tag.name}:{copy_path.name}")
        engine = PricingEngine.load([broken, run[1]])
    finally:
        shutil.rmtree(copy_path)
    assert engine.ready and engine.tags == [str(run[1].tag)]
    assert engine.load_errors and engine.load_errors[0][0] == str(broken.tag)
    answer = asyncio.run(engine.sweep(SweepRequest(code, bins=5)))
    assert answer.fallback_used and answer.model.role == "fallback-1"


def test_no_loadable_model_means_not_ready(run) -> None:
    engine = PricingEngine.load(["pricing_elasticnet:doesnotexist"])
    assert not engine.ready
    with pytest.raises(ModelsUnavailableError, match="doesnotexist"):
        engine.plan(SweepRequest("85123A"))


def test_model_descriptions_carry_metrics_and_training_date(engine) -> None:
    info = [m.describe() for m in engine.models]
    assert [i["role"] for i in info] == ["primary", "fallback-1"]
    assert info[0]["name"] == "pricing_elasticnet" and info[0]["trained_at"].startswith("2026-11-21")
