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
criterion). Each model of a run records the ``run_id`` and its ``rank`` (0 = primary).

Publishing is explicit: a run serves only once training has written it into the store's published-runs
record (``pricing-published.json`` in the model store's directory, replaced atomically) after every model of
the run is saved; a run that promotion refused (``pricing.promotion``) stays in the store, unpublished.
``serving_order()`` returns the latest published run's models in order; a store without the record (one
trained before publishing existed, or a bento's own store, which holds only the run it was built from)
serves its latest run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
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
PUBLISHED_FILE = "pricing-published.json"  # in the model store's directory; BentoML lists directories only
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
    """The models of one training run ordered primary first; default: the latest published run (the latest
    run when the store has no published-runs record)."""
    runs = stored_runs()
    if not runs:
        raise LookupError("no trained pricing models in the BentoML model store: run `make train` first")
    if run_id is None:
        run_id = serving_run_id(runs)
    elif run_id not in runs:
        raise LookupError(f"no models from training run {run_id!r} in the model store")
    return sorted(runs[run_id], key=lambda m: m.info.metadata["rank"])


def stored_runs() -> dict[str, list[bentoml.Model]]:
    """Every training run in the model store: run id -> its models (in no particular order)."""
    runs: dict[str, list[bentoml.Model]] = {}
    for model in bentoml.models.list():
        if model.tag.name.startswith(MODEL_PREFIX) and "run_id" in model.info.metadata:
            runs.setdefault(model.info.metadata["run_id"], []).append(model)
    return runs


def serving_run_id(runs: dict[str, list[bentoml.Model]] | None = None) -> str:
    """The run that serves by default: the latest published one still in the store, or without a published-runs
    record the latest run."""
    runs = stored_runs() if runs is None else runs
    published = published_runs()
    if published is None:
        if not runs:
            raise LookupError("no trained pricing models in the BentoML model store: run `make train` first")
        return _latest(runs)
    for entry in reversed(published):
        if entry["run_id"] in runs:
            return entry["run_id"]
    unpublished = ", ".join(sorted(runs)) or "none"
    raise LookupError(
        f"no published training run in the model store ({len(published)} published, none of them still stored; "
        f"unpublished runs: {unpublished}): train again, or serve a run with PRICING_RUN_ID"
    )


def _latest(runs: dict[str, list[bentoml.Model]]) -> str:
    return max(runs, key=lambda r: max(m.info.creation_time for m in runs[r]))


def published_path() -> Path:
    """Where the active model store keeps its published-runs record."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    return Path(BentoMLContainer.model_store.get()._path) / PUBLISHED_FILE


def published_runs() -> list[dict[str, Any]] | None:
    """The published-runs record, oldest first (each entry: ``run_id``, ``published_at``, ``forced``), or None
    when the store has none."""
    path = published_path()
    try:
        runs = json.loads(path.read_text())["runs"]
        return [{**entry, "run_id": str(entry["run_id"])} for entry in runs]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise LookupError(f"{path}: not a valid published-runs record ({exc!r})") from exc


def ensure_published_record() -> None:
    """Give the store a published-runs record if it has none, naming the run that serves now (the latest), so
    that runs saved from now on serve only once published. Training calls this before it saves anything."""
    path = published_path()
    with _locked(path):
        if published_runs() is None:
            runs = stored_runs()
            _write(path, [_entry(_latest(runs), forced=False, note="served before publishing")] if runs else [])


def publish_run(run_id: str, *, forced: bool = False) -> None:
    """Make ``run_id`` (whose models must all be saved) the run that serves by default.

    The record is rewritten through a temporary file and ``os.replace``: a reader sees the old record or the
    new one, never half of one.
    """
    if run_id not in stored_runs():
        raise LookupError(f"no models from training run {run_id!r} in the model store")
    path = published_path()
    with _locked(path):
        _write(path, [*(published_runs() or []), _entry(run_id, forced=forced)])


def _write(path: Path, published: list[dict[str, Any]]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{PUBLISHED_FILE}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the record from a service running as another user
        with os.fdopen(fd, "w") as out:
            json.dump({"runs": published}, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _entry(run_id: str, *, forced: bool, note: str | None = None) -> dict[str, Any]:
    entry = {"run_id": run_id, "published_at": datetime.now(UTC).isoformat(timespec="seconds"), "forced": forced}
    return entry | ({"note": note} if note else {})


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise writers of the record (two trainings finishing at once must not lose an entry)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{PUBLISHED_FILE}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def main() -> int:
    """Print the serving order of the run that serves (``python -m pricing.registry``); exit 1 if there is none."""
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
