"""The BentoML model store as the contract between training and serving.

Every family is stored as its own model, ``pricing_<family>``, through ``bentoml.models.create``. A
stored model is self-contained: its directory holds the estimator (``estimator/``), the fitted
``FeaturePipeline`` it was trained with (``pipeline.joblib``) and the context rows and catalogue the
price sweep needs (``context.parquet``, ``catalogue.parquet``: each price list's latest demand periods
and its prices, tier and response), so any one of them can serve alone and
a retrain never mixes versions. Metadata carries metrics, hyperparameters, the feature list, a hash of
the training data, row counts and library versions; labels carry the family and the role.

Integrity: ``save_model`` records the SHA-256 of every file it wrote (``metadata["artefact_sha256"]``,
``pricing.integrity``); ``load_model`` checks them before anything is read, and a model whose files changed,
went missing or appeared since training is refused (``ArtefactIntegrityError``, a log line and
``pricing_models_refused_total``): the service then serves the next model of the order. A model saved before
digests were recorded loads with one warning.

Loading shares what is identical: the models of one run carry byte-identical pipelines and context
rows, so ``load_model`` with a ``shared`` dict keeps one copy of each in memory.

``serving_order`` needs only BentoML: the service's parent process reads the serving order and nothing
else, so the libraries that loading and saving need are imported there.

The serving order is the ranking training recorded (by pricing quality: ``metadata["ranking"]`` says which
criterion). Each model of a run records the ``run_id`` and its ``rank`` (0 = primary); ``serving_order``
returns the latest run's models in that order.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bentoml

from pricing import integrity

if TYPE_CHECKING:
    from pricing.features import FeaturePipeline
    from pricing.models import PriceModel
    from pricing.sweep import ContextStore, Sweeper

MODEL_PREFIX = "pricing_"
ESTIMATOR_DIR, PIPELINE_FILE = "estimator", "pipeline.joblib"
log = logging.getLogger(__name__)

_VERSIONED = ("bentoml", "torch", "xgboost-cpu", "lightgbm", "scikit-learn", "numpy", "pandas", "optuna")


def model_name(family: str) -> str:
    """Model-store name of a family."""
    return f"{MODEL_PREFIX}{family}"


def role_of(rank: int) -> str:
    """``primary`` for rank 0, then ``fallback-1``, ``fallback-2`` ..."""
    return "primary" if rank == 0 else f"fallback-{rank}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries a stored model depends on."""
    versions = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


@dataclass
class StoredModel:
    """A model loaded back from the store, with everything it needs to predict and sweep."""

    tag: str
    family: str
    estimator: PriceModel
    pipeline: FeaturePipeline
    context: ContextStore
    metadata: dict[str, Any]

    def sweeper(self) -> Sweeper:
        """A price sweeper that predicts with this model."""
        from pricing.sweep import Sweeper

        return Sweeper(self.pipeline, self.context, self.estimator.predict)


def save_model(
    estimator: PriceModel, pipeline: FeaturePipeline, context: ContextStore, *, rank: int, metadata: dict[str, Any]
) -> str:
    """Write one trained family into the model store; return its tag (``name:version``)."""
    import joblib

    labels = {"family": estimator.family, "role": role_of(rank), "project": "pricing"}
    meta = {
        **metadata,
        "family": estimator.family,
        "rank": rank,
        "role": role_of(rank),
        "library_versions": library_versions(),
    }
    with bentoml.models.create(model_name(estimator.family), labels=labels, metadata=meta) as model:
        directory = Path(model.path)
        estimator.save(directory / ESTIMATOR_DIR)
        joblib.dump(pipeline, directory / PIPELINE_FILE)
        context.save(directory)
        # Still inside the block: BentoML writes the metadata (model.yaml) when it closes.
        model.info.metadata[integrity.METADATA_KEY] = integrity.record_digests(directory)
    return str(model.tag)


def load_model(model: bentoml.Model | str, shared: dict[str, Any] | None = None) -> StoredModel:
    """Load a stored model (a ``bentoml.Model`` or a tag such as ``pricing_torch:latest``).

    ``shared``, when given, maps file digests to objects already loaded: a pipeline or context store whose
    files match one loaded before is reused instead of read again (pass the same dict for a run's models).
    Raises ``pricing.integrity.ArtefactIntegrityError``, before reading any artefact, when the files differ
    from the digests recorded at training.
    """
    import joblib

    from pricing.models import model_class
    from pricing.sweep import CATALOGUE_FILE, CONTEXT_FILE, ContextStore

    if isinstance(model, str):
        model = bentoml.models.get(model)
    directory = Path(model.path)
    family = model.info.labels["family"]
    digests = check_artefacts(model)
    shared = {} if shared is None else shared
    return StoredModel(
        tag=str(model.tag),
        family=family,
        estimator=model_class(family).load(directory / ESTIMATOR_DIR),
        pipeline=_once(shared, digests, [PIPELINE_FILE], lambda: joblib.load(directory / PIPELINE_FILE)),
        context=_once(shared, digests, [CONTEXT_FILE, CATALOGUE_FILE], lambda: ContextStore.load(directory)),
        metadata=dict(model.info.metadata),
    )


def check_artefacts(model: bentoml.Model) -> dict[str, str]:
    """The digests of a stored model's files, checked against those recorded at training.

    A mismatch is logged, counted in ``pricing_models_refused_total`` and raised (``ArtefactIntegrityError``);
    a model saved before digests were recorded is logged once as unchecked.
    """
    directory = Path(model.path)
    recorded = model.info.metadata.get(integrity.METADATA_KEY)
    if recorded is None:
        log.warning(
            "model %s was saved without artefact digests (before integrity checks): loading it unchecked; "
            "retrain to have its files checked",
            model.tag,
        )
        return integrity.record_digests(directory)
    try:
        return integrity.verify(directory, recorded)
    except integrity.ArtefactIntegrityError as exc:
        from pricing.metrics import MODELS_REFUSED

        MODELS_REFUSED.labels(model=model.tag.name, reason=exc.reason).inc()
        log.error("model %s refused: %s", model.tag, exc)
        raise


def _once(shared: dict[str, Any], digests: dict[str, str], files: list[str], load: Callable[[], Any]) -> Any:
    # A file an old store lacks gets no digest here; its loader then says which one is missing.
    key = hashlib.sha256("".join(digests.get(name, "-") for name in files).encode()).hexdigest()
    if key not in shared:
        shared[key] = load()
    return shared[key]


def serving_order(run_id: str | None = None) -> list[bentoml.Model]:
    """The models of one training run (default: the latest) ordered primary first."""
    runs: dict[str, list[bentoml.Model]] = {}
    for model in bentoml.models.list():
        if model.tag.name.startswith(MODEL_PREFIX) and "run_id" in model.info.metadata:
            runs.setdefault(model.info.metadata["run_id"], []).append(model)
    if not runs:
        raise LookupError("no trained pricing models in the BentoML model store: run `make train` first")
    if run_id is None:
        run_id = max(runs, key=lambda r: max(m.info.creation_time for m in runs[r]))
    elif run_id not in runs:
        raise LookupError(f"no models from training run {run_id!r} in the model store")
    return sorted(runs[run_id], key=lambda m: m.info.metadata["rank"])


def main() -> int:
    """Print the serving order of the latest run (``python -m pricing.registry``); exit 1 if there is none."""
    try:
        models = serving_order()
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 1
    for model in models:
        meta = model.info.metadata
        print(f"{meta['role']:<11} {model.tag}  run {meta['run_id']}  trained {meta.get('trained_at', '?')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
