"""The fault switch of the chaos tests (pricing.faults) and the engine's answer at the fault's boundary."""

from __future__ import annotations

import asyncio
import time
import uuid

import bentoml
import numpy as np
import pytest

from pricing import faults
from pricing.features import FEATURES
from pricing.models import model_class
from pricing.registry import save_model, serving_order
from pricing.serving import PricingEngine
from pricing.sweep import SweepRequest
from tests.support import metric


@pytest.fixture
def faults_file(tmp_path, monkeypatch):
    """PRICING_FAULTS_FILE names a file that does not exist yet; the switch reads the variable afresh."""
    path = tmp_path / "faults"
    monkeypatch.setenv(faults.ENV_VAR, str(path))
    faults._faults_file.cache_clear()
    yield path
    faults._faults_file.cache_clear()


def test_without_the_variable_nothing_is_ever_injected(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(faults.ENV_VAR, raising=False)
    faults._faults_file.cache_clear()
    (tmp_path / "faults").write_text("primary\n")
    monkeypatch.chdir(tmp_path)
    faults.check("primary")


def test_the_file_switches_the_listed_point_on_and_off(faults_file) -> None:
    faults.check("primary")  # no file: off
    faults_file.write_text("something-else\n")
    faults.check("primary")
    faults_file.write_text("something-else\nprimary\n")
    with pytest.raises(faults.InjectedFaultError, match="'primary' injected by"):
        faults.check("primary")
    faults_file.unlink()
    faults.check("primary")


@pytest.fixture(scope="module")
def run(tiny) -> list[bentoml.Model]:
    """ElasticNet primary, LightGBM fallback in the session's model store."""
    X = tiny.pipeline.transform(tiny.split.train)
    y = tiny.pipeline.level_target(tiny.split.train)
    run_id = f"faults-{uuid.uuid4().hex[:8]}"
    meta = {"run_id": run_id, "features": list(FEATURES), "trained_at": "2026-11-21T00:00:00+00:00"}
    for rank, model in enumerate([model_class("elasticnet")(), model_class("lightgbm")(n_estimators=30)]):
        save_model(model.fit(X, y), tiny.pipeline, tiny.context, rank=rank, metadata=meta)
    return serving_order(run_id)


def test_sweeps_in_flight_when_the_fault_starts_are_all_answered(run, tiny, faults_file, monkeypatch) -> None:
    engine = PricingEngine.load(run, time_budget_s=5.0)
    primary = engine.models[0].stored.estimator
    predict = primary.predict

    def fault_starts_during_the_first_call(X: np.ndarray) -> np.ndarray:
        if not faults_file.exists():
            faults_file.write_text("primary\n")  # the fault begins while this batch is being computed
            time.sleep(0.2)  # the other sweeps queue meanwhile, behind the fault's start
        return predict(X)

    monkeypatch.setattr(primary, "predict", fault_starts_during_the_first_call)
    requests = [SweepRequest(key[0], segment=key[1], bins=9) for key in tiny.context.lists[:8]]
    fallbacks = metric("pricing_fallbacks_total", model="pricing_elasticnet", reason="error")

    async def together() -> list:
        first = asyncio.create_task(engine.sweep(requests[0]))
        while not faults_file.exists():  # the first sweep's batch is running and the fault has begun
            await asyncio.sleep(0.005)
        return await asyncio.gather(first, *(engine.sweep(request) for request in requests[1:]))

    answers = asyncio.run(together())

    # The batch that began before the fault is the primary's; every sweep after it is a fallback's: none lost.
    roles = [answer.model.role for answer in answers]
    assert roles[0] == "primary" and roles[1:] == ["fallback-1"] * (len(requests) - 1), roles
    assert all(len(answer.result.prices) == 9 for answer in answers)
    assert all("injected" in answer.failures[0][1] for answer in answers[1:])
    now = metric("pricing_fallbacks_total", model="pricing_elasticnet", reason="error")
    assert now == fallbacks + len(requests) - 1
