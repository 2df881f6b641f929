"""Fixtures shared by the in-process HTTP tests (test_service_http.py, test_contract.py).

BentoML allows one ASGI app per process (its metrics registry is global), so the service is imported and its app
started once per session, for every module that talks to it in process.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from types import ModuleType

import pytest
from starlette.testclient import TestClient

_SETTINGS = ("PRICING_RUN_ID", "PRICING_REDIS_URL", "REDIS_URL", "PRICING_MAX_BODY_BYTES", "PRICING_API_KEY")


@pytest.fixture(scope="session")
def service(smoke_run) -> ModuleType:
    """The service module, serving the smoke run with the in-process cache, no API key and the default body limit
    (it reads its settings when imported: the environment is restored right after, for the servers other tests
    start)."""
    saved = {k: os.environ.get(k) for k in _SETTINGS}
    os.environ["PRICING_RUN_ID"] = smoke_run.record["run_id"]
    for name in _SETTINGS[1:]:
        os.environ.pop(name, None)
    try:
        return importlib.import_module("service")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def client(service) -> Iterator[TestClient]:
    """The service's app in process (``Pricing.to_asgi()``), started once."""
    with TestClient(service.Pricing.to_asgi()) as test_client:
        yield test_client
