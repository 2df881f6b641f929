"""The optional API key: required everywhere except health checks, docs, the page's files and CORS preflights."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from pricing.auth import APIKeyMiddleware


def ok(request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("open")
    await websocket.close()


@pytest.fixture
def client() -> TestClient:
    paths = ("/price_sweep", "/ping", "/metrics", "/ui", "/ui/app.js", "/uix", "/products", "/ui/../products")
    routes = [Route(path, ok, methods=["GET", "POST", "OPTIONS"]) for path in paths]
    app = Starlette(routes=[*routes, WebSocketRoute("/ws", echo)])
    app.add_middleware(APIKeyMiddleware, api_key="s3cret")
    return TestClient(app)


def test_requests_without_the_key_are_refused(client) -> None:
    response = client.post("/price_sweep")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "ApiKey"
    assert response.json() == {
        "error": {
            "status": 401,
            "field": "x-api-key",
            "message": "missing x-api-key header: this service needs an API key",
        }
    }


@pytest.mark.parametrize("wrong", ["guess", "s3cre", "s3crett", "S3CRET", "s3cret " * 100, ""])
def test_a_wrong_key_of_any_length_is_refused(client, wrong) -> None:
    response = client.post("/price_sweep", headers={"x-api-key": wrong})
    assert response.status_code == 401
    assert response.json()["error"] == {"status": 401, "field": "x-api-key", "message": "wrong x-api-key header"}


def test_the_key_is_only_read_from_the_header(client) -> None:
    assert client.post("/price_sweep", params={"x-api-key": "s3cret"}).status_code == 401


def test_the_middleware_keeps_a_digest_not_the_key() -> None:
    middleware = APIKeyMiddleware(Starlette(), api_key="s3cret-canary")
    assert "s3cret-canary" not in repr(vars(middleware)) and b"s3cret-canary" not in repr(vars(middleware)).encode()


def test_the_right_key_passes(client) -> None:
    assert client.post("/price_sweep", headers={"X-API-Key": "s3cret"}).text == "ok"


@pytest.mark.parametrize("path", ["/ping", "/metrics"])
def test_health_and_metrics_stay_open(client, path) -> None:
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/ui", "/ui/app.js"])
def test_the_web_pages_files_load_without_the_key(client, path) -> None:
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/uix", "/products", "/ui/%2E%2E/products", "/ui/..%2Fproducts"])
def test_what_the_page_reads_needs_the_key(client, path) -> None:
    assert client.get(path).status_code == 401


def test_websockets_need_the_key_too(client) -> None:
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws") as socket:
        socket.receive_text()
    with client.websocket_connect("/ws", headers={"x-api-key": "s3cret"}) as socket:
        assert socket.receive_text() == "open"


def test_cors_preflight_is_not_blocked(client) -> None:
    assert client.options("/price_sweep").status_code == 200


def test_an_empty_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        APIKeyMiddleware(Starlette(), api_key="")
