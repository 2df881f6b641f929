"""The optional API key: required everywhere except health checks, docs and CORS preflights."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pricing.auth import APIKeyMiddleware


def ok(request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@pytest.fixture
def client() -> TestClient:
    paths = ("/price_sweep", "/ping", "/metrics", "/ui", "/ui/app.js", "/uix", "/products")
    routes = [Route(path, ok, methods=["GET", "POST", "OPTIONS"]) for path in paths]
    app = Starlette(routes=routes)
    app.add_middleware(APIKeyMiddleware, api_key="s3cret")
    return TestClient(app)


def test_requests_without_the_key_are_refused(client) -> None:
    response = client.post("/price_sweep")
    assert response.status_code == 401
    assert response.json() == {"error": "missing or wrong x-api-key header"}
    assert client.post("/price_sweep", headers={"x-api-key": "guess"}).status_code == 401


def test_the_right_key_passes(client) -> None:
    assert client.post("/price_sweep", headers={"X-API-Key": "s3cret"}).text == "ok"


@pytest.mark.parametrize("path", ["/ping", "/metrics"])
def test_health_and_metrics_stay_open(client, path) -> None:
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/ui", "/ui/app.js"])
def test_the_web_pages_files_load_without_the_key(client, path) -> None:
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/uix", "/products"])
def test_what_the_page_reads_needs_the_key(client, path) -> None:
    assert client.get(path).status_code == 401


def test_cors_preflight_is_not_blocked(client) -> None:
    assert client.options("/price_sweep").status_code == 200


def test_an_empty_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        APIKeyMiddleware(Starlette(), api_key="")
