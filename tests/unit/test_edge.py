"""pricing.edge: the one error body and CORS moved in front of BentoML's traffic middlewares (timeout, concurrency),
after its metrics and access log. The order BentoML really builds is checked in test_contract.py; the answers of a
real `bentoml serve` in test_serve_edge.py."""

from __future__ import annotations

import pytest
from bentoml._internal.server.http.traffic import MaxConcurrencyMiddleware, TimeoutMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pricing.auth import APIKeyMiddleware
from pricing.edge import arrange
from pricing.errors import ErrorBodyMiddleware
from pricing.limits import BodyLimitMiddleware


class AccessLog:
    """Stands for BentoML's metrics, tracing and access-log middlewares (outside the traffic ones)."""


class Context:
    """Stands for BentoML's context middleware (innermost)."""


CORS = Middleware(CORSMiddleware, allow_origins=["https://shop.example"], allow_credentials=False)


def bentoml_order(*, cors: bool = True, concurrency: bool = True) -> list[Middleware]:
    """The list BentoML 1.4.39 builds, outermost first (``ServiceAppFactory.middlewares``)."""
    return [
        Middleware(AccessLog),
        Middleware(TimeoutMiddleware, timeout=60),
        *([Middleware(MaxConcurrencyMiddleware, max_concurrency=4)] if concurrency else []),
        Middleware(ErrorBodyMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=1024),
        Middleware(APIKeyMiddleware, api_key="k"),
        *([CORS] if cors else []),
        Middleware(Context),
    ]


def test_the_error_body_and_cors_go_in_front_of_the_traffic_middlewares() -> None:
    arranged = arrange(bentoml_order())
    assert [m.cls for m in arranged] == [
        AccessLog, ErrorBodyMiddleware, CORSMiddleware, TimeoutMiddleware, MaxConcurrencyMiddleware,
        BodyLimitMiddleware, APIKeyMiddleware, Context,
    ]  # fmt: skip
    assert arranged[2] is CORS, "BentoML's CORS entry itself: same class, same options"
    messages = arranged[1].kwargs["messages"]
    assert set(messages) == {504, 429}
    assert "60 s" in messages[504] and "traffic.timeout" in messages[504]
    assert "4 at a time" in messages[429] and "traffic.max_concurrency" in messages[429]


def test_without_cors_or_a_concurrency_limit_only_the_error_body_moves() -> None:
    arranged = arrange(bentoml_order(cors=False, concurrency=False))
    assert [m.cls for m in arranged] == [
        AccessLog, ErrorBodyMiddleware, TimeoutMiddleware, BodyLimitMiddleware, APIKeyMiddleware, Context,
    ]  # fmt: skip
    assert set(arranged[1].kwargs["messages"]) == {504}


def test_a_list_it_does_not_recognise_fails_loudly() -> None:
    without_traffic = [m for m in bentoml_order() if m.cls not in (TimeoutMiddleware, MaxConcurrencyMiddleware)]
    with pytest.raises(RuntimeError, match=r"pricing\.edge"):
        arrange(without_traffic)
    with pytest.raises(RuntimeError, match="ErrorBodyMiddleware"):
        arrange([m for m in bentoml_order() if m.cls is not ErrorBodyMiddleware])


def test_with_any_origin_allowed_a_refusal_says_so_and_never_allows_credentials() -> None:
    """A real app with the arranged list: the API key's 401 passes CORS on its way out (``*``, as configured by
    PRICING_CORS_ORIGINS=*), never with Access-Control-Allow-Credentials, cookie or not."""

    async def ok(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    middlewares = [
        Middleware(TimeoutMiddleware, timeout=60),
        Middleware(ErrorBodyMiddleware),
        Middleware(APIKeyMiddleware, api_key="k"),
        Middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=False, allow_headers=["x-api-key"]),
    ]
    app = Starlette(routes=[Route("/model", ok)], middleware=arrange(middlewares))
    with TestClient(app) as client:
        for headers in ({"origin": "https://any.example"}, {"origin": "https://any.example", "cookie": "a=1"}):
            refused = client.get("/model", headers=headers)
            assert refused.status_code == 401 and refused.json()["error"]["field"] == "x-api-key"
            assert refused.headers["access-control-allow-origin"] == "*"
            assert "access-control-allow-credentials" not in refused.headers
        preflight = client.options(
            "/model", headers={"origin": "https://any.example", "access-control-request-method": "GET"}
        )
        assert preflight.status_code == 200, "a preflight needs no key"
