"""pricing.edge: the one error body and CORS moved in front of BentoML's traffic middlewares (timeout, concurrency),
after its metrics and access log. The order BentoML really builds is checked in test_contract.py; the answers of a
real `bentoml serve` in test_serve_edge.py."""

from __future__ import annotations

import pytest
from bentoml._internal.server.http.traffic import MaxConcurrencyMiddleware, TimeoutMiddleware
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

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
