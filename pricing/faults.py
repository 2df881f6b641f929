"""Fault injection for the chaos tests (a test facility, off in normal service).

``make chaos`` and ``tests/integration/test_chaos.py`` make the primary model fail for a while under load
without touching the model store: the service is started with ``PRICING_FAULTS_FILE`` naming a file, and
while that file exists and lists a fault point (one name per line), every call through that point raises
``InjectedFaultError``. The engine treats it like any other failing model call, so the request is answered by the
next model of the serving order (a fallback) and counted in ``pricing_fallbacks_total``.

Fault points:

    primary    the primary model's batched predict call (``pricing.serving``), for sweeps and demand rows

Without ``PRICING_FAULTS_FILE`` (the default, and in every deployment) ``check`` returns at once. With it, a
check costs one ``stat`` of the file, once per batched primary call, not per request; the file is read only
while it exists. A fault therefore starts and ends at a batch boundary: a batch already running when the file
appears is answered by the primary, every batch started after it falls back.
"""

from __future__ import annotations

import functools
import os

ENV_VAR = "PRICING_FAULTS_FILE"
POINTS = ("primary",)


class InjectedFaultError(RuntimeError):
    """A fault the faults file switched on."""


@functools.cache
def _faults_file() -> str | None:
    # Read once per process (a worker), when the first model call checks: nothing happens at import.
    return os.environ.get(ENV_VAR) or None


def check(point: str) -> None:
    """Raise ``InjectedFaultError`` when the faults file exists and lists ``point``; otherwise return."""
    path = _faults_file()
    if path is None:
        return
    try:
        with open(path, encoding="utf-8") as handle:
            listed = {line.strip() for line in handle}
    except FileNotFoundError:
        return
    if point in listed:
        raise InjectedFaultError(f"fault {point!r} injected by {path}")
