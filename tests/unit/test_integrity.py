"""Artefact digests: recorded when a model is saved, checked before any of its files is read."""

from __future__ import annotations

import logging
import pickle
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import bentoml
import pytest
import yaml

from pricing import integrity
from pricing.features import FEATURES
from pricing.models import model_class
from pricing.registry import ESTIMATOR_DIR, PIPELINE_FILE, load_model, save_model
from pricing.serving import PricingEngine
from tests.support import metric

REFUSED = "pricing_models_refused_total"


class _Touch:
    """A pickle that creates a file when it is loaded: proof that loading ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def tags(tiny) -> list[str]:
    """A two-model run (ElasticNet primary, SVR fallback) saved the current way."""
    X = tiny.pipeline.transform(tiny.split.train)
    y = tiny.pipeline.level_target(tiny.split.train)
    meta = {"run_id": f"integrity-{uuid.uuid4().hex[:8]}", "features": list(FEATURES)}
    models = [model_class("elasticnet")(alpha=0.01), model_class("svr")(max_train_rows=200)]
    return [save_model(m.fit(X, y), tiny.pipeline, tiny.context, rank=r, metadata=meta) for r, m in enumerate(models)]


def refused(message: str):
    """``pytest.raises`` for a refusal whose message contains ``message``."""
    return pytest.raises(integrity.ArtefactIntegrityError, match=re.escape(message))


def edit_info(directory: Path, change) -> None:
    """Change a stored model's ``model.yaml`` (BentoML's description of it) in place."""
    path = directory / "model.yaml"
    info = yaml.safe_load(path.read_text())
    change(info)
    path.write_text(yaml.safe_dump(info))


@pytest.fixture
def copy_of(tags) -> Iterator:
    """``copy_of(tag)``: a copy of a stored model under a new version, removed afterwards."""
    copies: list[Path] = []

    def make(tag: str) -> bentoml.Model:
        source = Path(bentoml.models.get(tag).path)
        target = source.parent / f"copy{uuid.uuid4().hex[:8]}"
        shutil.copytree(source, target)
        copies.append(target)
        edit_info(target, lambda info: info.update(version=target.name))  # model.yaml is not an artefact
        return bentoml.models.get(f"{tag.split(':')[0]}:{target.name}")

    yield make
    for path in copies:
        shutil.rmtree(path, ignore_errors=True)


def test_every_file_written_is_recorded(tags) -> None:
    model = bentoml.models.get(tags[0])
    recorded = model.info.metadata[integrity.METADATA_KEY]
    directory = Path(model.path)
    assert set(recorded) == set(integrity.artefact_files(directory))
    assert {PIPELINE_FILE, "context.parquet", "catalogue.parquet", f"{ESTIMATOR_DIR}/model.joblib"} <= set(recorded)
    assert "model.yaml" not in recorded
    assert recorded[PIPELINE_FILE] == integrity.file_digest(directory / PIPELINE_FILE)


def test_a_tampered_pickle_is_refused_before_it_is_loaded(tags, copy_of, tmp_path, caplog) -> None:
    model = copy_of(tags[0])
    marker = tmp_path / "pickle-ran"
    (Path(model.path) / PIPELINE_FILE).write_bytes(pickle.dumps(_Touch(marker)))
    before = metric(REFUSED, model="pricing_elasticnet", reason="mismatch")
    caplog.set_level(logging.ERROR, logger="pricing.registry")
    with refused(f"artefact {PIPELINE_FILE} has SHA-256") as err:
        load_model(model)
    assert err.value.reason == "mismatch" and not marker.exists()
    assert metric(REFUSED, model="pricing_elasticnet", reason="mismatch") == before + 1
    assert f"model {model.tag} refused: artefact {PIPELINE_FILE}" in caplog.text


def test_the_pickle_would_have_run_unchecked(tmp_path) -> None:
    # The attack the check stops is real: loading the tampered file runs its code.
    import joblib

    marker = tmp_path / "pickle-ran"
    (tmp_path / "p.joblib").write_bytes(pickle.dumps(_Touch(marker)))
    joblib.load(tmp_path / "p.joblib")
    assert marker.exists()


def test_a_missing_file_is_refused(tags, copy_of) -> None:
    model = copy_of(tags[0])
    (Path(model.path) / ESTIMATOR_DIR / "arrays.npz").unlink()
    with refused("arrays.npz recorded at training is missing") as err:
        load_model(model)
    assert err.value.reason == "missing"


def test_a_file_added_after_training_is_refused(tags, copy_of) -> None:
    model = copy_of(tags[0])
    (Path(model.path) / ESTIMATOR_DIR / "extra.joblib").write_bytes(b"anything")
    with refused("extra.joblib was not written by training") as err:
        load_model(model)
    assert err.value.reason == "unexpected"


def test_a_refused_primary_leaves_the_next_model_serving(tags, copy_of) -> None:
    primary = copy_of(tags[0])
    path = Path(primary.path) / ESTIMATOR_DIR / "params.json"
    path.write_text(path.read_text().replace('"alpha": 0.01', '"alpha": 0.02'))
    engine = PricingEngine.load([primary, tags[1]])
    assert engine.tags == [tags[1]]
    assert engine.load_errors[0][0] == str(primary.tag) and "ArtefactIntegrityError" in engine.load_errors[0][1]


def test_a_store_saved_before_digests_loads_with_one_warning(tags, copy_of, caplog) -> None:
    model = copy_of(tags[0])
    edit_info(Path(model.path), lambda info: info["metadata"].pop(integrity.METADATA_KEY))
    old = bentoml.models.get(str(model.tag))
    assert integrity.METADATA_KEY not in old.info.metadata
    with caplog.at_level(logging.WARNING, logger="pricing.registry"):
        stored = load_model(old)
    warnings = [r for r in caplog.records if r.name == "pricing.registry" and r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"model {old.tag} was saved without artefact digests (before integrity checks): loading it unchecked; "
        "retrain to have its files checked"
    ]
    assert stored.family == "elasticnet"


def test_verify_returns_the_digests_it_checked(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "sub" / "b.bin").write_bytes(b"b")
    (tmp_path / "model.yaml").write_text("not hashed")
    recorded = integrity.record_digests(tmp_path)
    assert sorted(recorded) == ["a.bin", "sub/b.bin"]
    assert integrity.verify(tmp_path, recorded) == recorded
    (tmp_path / "model.yaml").write_text("changed: BentoML's own file, which holds the digests")
    assert integrity.verify(tmp_path, recorded) == recorded
    (tmp_path / "sub" / "b.bin").write_bytes(b"B")
    with refused("sub/b.bin has SHA-256"):
        integrity.verify(tmp_path, recorded)
