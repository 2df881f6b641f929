"""The one error body, its middleware and the body limit, on a small Starlette app (no model needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from pricing.errors import ErrorBodyMiddleware, field_name
from pricing.limits import BodyLimitMiddleware

LIMIT = 1000


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


async def foreign_errors(request: Request) -> JSONResponse | PlainTextResponse:
    kind = request.query_params["kind"]
    if kind == "bentoml-validation":
        detail = [{"type": "greater_than", "loc": ["rows", 3, "UnitPrice"], "msg": "Input should be greater than 0"}]
        return JSONResponse({"error": "1 validation error for PredictInIODescriptor", "detail": detail}, 400)
    if kind == "bentoml-list":
        return JSONResponse([{"error": "unknown stockcode 'X'"}], 404)
    if kind == "crash":
        return JSONResponse({"error": "An unexpected error has occurred, please check the server log."}, 500)
    if kind == "timeout":  # BentoML's traffic timeout (bentoml/_internal/server/http/traffic.py)
        return JSONResponse({"error": "Not able to process the request in 60 seconds"}, 504)
    if kind == "raise":
        raise RuntimeError("a bug")
    return PlainTextResponse("Disallowed CORS origin", 400)


async def breaks_mid_answer(scope, receive, send) -> None:
    """Starts an error answer, then fails before its body."""
    await send({"type": "http.response.start", "status": 502, "headers": []})
    raise RuntimeError("a bug after the start")


@pytest.fixture
def client() -> Iterator[TestClient]:
    routes = [
        Route("/echo", echo, methods=["POST"]),
        Route("/foreign", foreign_errors),
        Mount("/broken", breaks_mid_answer),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(BodyLimitMiddleware, max_bytes=LIMIT)
    app.add_middleware(ErrorBodyMiddleware, messages={504: "no answer within 60 s"})  # added last: outermost
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("loc", "name"),
    [(("rows", 3, "UnitPrice"), "rows[3].UnitPrice"), (("bins",), "bins"), ((), None), ((0,), "[0]")],
)
def test_field_names_are_written_as_a_client_writes_them(loc, name) -> None:
    assert field_name(loc) == name


@pytest.mark.parametrize(
    ("kind", "status", "field", "message"),
    [
        ("bentoml-validation", 400, "rows[3].UnitPrice", "rows[3].UnitPrice: Input should be greater than 0"),
        ("bentoml-list", 404, None, "unknown stockcode 'X'"),
        ("crash", 500, None, "internal error: the server log has the details"),
        ("plain", 400, None, "Disallowed CORS origin"),
        ("timeout", 504, None, "no answer within 60 s"),  # a status given its own message
        ("raise", 500, None, "internal error: the server log has the details"),  # no answer had started
    ],
)
def test_foreign_error_bodies_are_rewritten_into_the_one_body(client, kind, status, field, message) -> None:
    response = client.get("/foreign", params={"kind": kind})
    assert response.status_code == status
    assert response.json() == {"error": {"status": status, "field": field, "message": message}}
    assert int(response.headers["content-length"]) == len(response.content)


def test_an_error_answer_cut_short_by_an_exception_becomes_a_500_in_the_one_body(client) -> None:
    response = client.get("/broken")
    assert response.status_code == 500
    assert response.json()["error"] == {
        "status": 500,
        "field": None,
        "message": "internal error: the server log has the details",
    }


def test_router_errors_name_the_route(client) -> None:
    assert client.get("/nowhere").json()["error"]["message"] == "no route GET /nowhere"
    response = client.get("/echo")
    assert response.status_code == 405 and response.headers["allow"] == "POST", "the Allow header is kept"
    assert response.json()["error"]["message"] == "method GET is not allowed on /echo"


def test_successful_answers_pass_untouched(client) -> None:
    assert client.post("/echo", content=b"x" * LIMIT).json() == {"size": LIMIT}


def test_bodies_over_the_limit_get_413_with_or_without_a_length(client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b"x" * 400

    for content in (b"x" * (LIMIT + 1), chunks()):
        response = client.post("/echo", content=content)
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["field"] is None and "PRICING_MAX_BODY_BYTES" in error["message"]


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        BodyLimitMiddleware(echo, max_bytes=0)
