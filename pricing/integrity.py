"""SHA-256 digests of a stored model's artefact files, recorded at save time and checked before loading.

Several artefacts are pickles (``pipeline.joblib``; ``model.joblib`` of the scikit-learn families): reading
one runs whatever code it names. ``pricing.registry.save_model`` records the digest of every file it wrote
into the model's metadata (``metadata["artefact_sha256"]``: path relative to the model directory -> hex
digest); ``pricing.registry.load_model`` calls ``verify`` before anything is unpickled or parsed, and a file
that changed, went missing or appeared since training refuses the model (``ArtefactIntegrityError``).

What this protects against: a corrupted or swapped artefact file (a bad copy, a disk error, an artefact
replaced on its way into an image or a bucket). It is not a signature: the digests live in the same model
directory (``model.yaml``), so whoever can rewrite the whole model store can rewrite them too; the store
itself is trusted input (SECURITY.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

METADATA_KEY = "artefact_sha256"
# BentoML's own description of the model: it is written after the artefacts and holds the digests themselves.
UNHASHED = frozenset({"model.yaml"})
_CHUNK = 1 << 20


class ArtefactIntegrityError(RuntimeError):
    """A stored model's artefacts differ from what training recorded; ``reason`` is ``mismatch``, ``missing``
    or ``unexpected``, ``path`` the first offending file (relative to the model directory)."""

    def __init__(self, reason: str, path: str, detail: str) -> None:
        super().__init__(f"artefact {path} {detail}; the model is refused")
        self.reason = reason
        self.path = path


def file_digest(path: Path) -> str:
    """The hex SHA-256 of one file, read in chunks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def artefact_files(directory: Path) -> list[str]:
    """Every artefact file under ``directory`` (recursively, sorted), relative and with ``/`` separators."""
    return sorted(
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file() and path.relative_to(directory).as_posix() not in UNHASHED
    )


def record_digests(directory: Path) -> dict[str, str]:
    """The digest of every artefact file under ``directory``, to store in the model's metadata."""
    return {name: file_digest(directory / name) for name in artefact_files(directory)}


def verify(directory: Path, recorded: Mapping[str, str]) -> dict[str, str]:
    """Check the files under ``directory`` against the ``recorded`` digests; return the digests found.

    Raises ``ArtefactIntegrityError`` when a recorded file is missing, a file's content differs, or a file
    that was not recorded is present (a loader might read it: an old store's fallback files are pickles).
    """
    present = artefact_files(directory)
    missing = sorted(set(recorded) - set(present))
    if missing:
        raise ArtefactIntegrityError("missing", missing[0], "recorded at training is missing")
    unexpected = [name for name in present if name not in recorded]
    if unexpected:
        raise ArtefactIntegrityError("unexpected", unexpected[0], "was not written by training")
    found: dict[str, str] = {}
    for name in present:
        found[name] = file_digest(directory / name)
        if found[name] != recorded[name]:
            raise ArtefactIntegrityError(
                "mismatch", name, f"has SHA-256 {found[name][:16]}..., training recorded {recorded[name][:16]}..."
            )
    return found
