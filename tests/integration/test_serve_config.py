"""Configuration on a real `bentoml serve`: API key and CORS from PRICING_* variables, and concurrent sweeps
sharing the primary's model calls."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support import bentoml_serve, scrape

KEY, ORIGIN = "s3cret-key", "https://pricing.shop.example"


@pytest.fixture(scope="module")
def served(smoke_run, tmp_path_factory) -> Iterator[str]:
    env = {"PRICING_RUN_ID": smoke_run.record["run_id"], "PRICING_API_KEY": KEY, "PRICING_CORS_ORIGINS": ORIGIN}
    with bentoml_serve(env, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


def test_api_key_is_required_except_on_health_and_metrics(served) -> None:
    body = {"stockcode": "85123A", "bins": 10}
    assert httpx.post(f"{served}/price_sweep", json=body, timeout=30).status_code == 401
    assert httpx.get(f"{served}/v1/predict-price/85123A", timeout=30).status_code == 401
    for path in ("/ping", "/readyz", "/metrics"):
        assert httpx.get(f"{served}{path}", timeout=10).status_code == 200, path


def test_with_the_key_the_primary_answers(served) -> None:
    response = httpx.post(
        f"{served}/price_sweep", json={"stockcode": "85123A", "bins": 10}, headers={"x-api-key": KEY}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["fallback_used"] is False
    assert scrape(served, "pricing_fallbacks_total", model=response.json()["model"]["name"], reason="error") == 0


def test_batching_has_no_route_of_its_own(served) -> None:
    # Batching happens inside the worker (pricing.batching): no client can send the model arrays directly.
    for path, body in (("/sweep_batch", {"plans": [[0.0]]}), ("/predict_batch", {"matrix": [[1.0]]})):
        response = httpx.post(f"{served}{path}", json=body, headers={"x-api-key": KEY}, timeout=30)
        assert response.status_code == 404, (path, response.status_code)


def test_cors_allows_the_configured_origin_only(served) -> None:
    def preflight(origin: str) -> httpx.Response:
        headers = {"origin": origin, "access-control-request-method": "POST",
                   "access-control-request-headers": "content-type,x-api-key"}  # fmt: skip
        return httpx.options(f"{served}/price_sweep", headers=headers, timeout=10)

    allowed = preflight(ORIGIN)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in preflight("https://elsewhere.example").headers


def test_hundreds_of_concurrent_sweeps_share_the_primarys_calls(served) -> None:
    headers = {"x-api-key": KEY}

    async def load() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served, headers=headers, timeout=60) as client:
            products = (await client.get("/products", params={"limit": 50})).json()["products"]
            gate = asyncio.Semaphore(8)

            async def sweep(i: int) -> httpx.Response:
                product = products[i % len(products)]
                usual = product["usual_price"]
                low = 0.8 * usual * (1 + i / 10_000)  # a distinct, uncached request each time
                body = {"stockcode": product["stockcode"], "price_min": low, "price_max": 1.25 * usual}
                async with gate:
                    return await client.post("/price_sweep", json={**body, "bins": 50})

            return await asyncio.gather(*(sweep(i) for i in range(400)))

    responses = asyncio.run(load())
    assert [r.status_code for r in responses] == [200] * 400
    answered = [r.json() for r in responses]
    assert not [a for a in answered if a["fallback_used"] or a["cached"]]
    assert scrape(served, "pricing_fallbacks_total", model=answered[0]["model"]["name"], reason="error") == 0
    # Sweeps that arrived while the model was busy went to it together: fewer model calls than sweeps.
    calls = scrape(served, "pricing_batch_size_count", kind="sweep")
    swept = scrape(served, "pricing_batch_size_sum", kind="sweep")
    assert swept >= 400 and 0 < calls < swept


def test_request_metrics_are_labelled_by_route_not_by_path(served) -> None:
    """One series per route: stock codes in the compatibility route's path and unknown paths add none
    (BentoML labels by raw path; pricing.route_metrics bounds it)."""
    headers = {"x-api-key": KEY}
    for code in ("85123A", "22423", "NOTAPRODUCT"):
        httpx.get(f"{served}/v1/predict-price/{code}", headers=headers, timeout=30)
    httpx.get(f"{served}/no/such/route/x1", headers=headers, timeout=10)
    page = httpx.get(f"{served}/metrics", timeout=10).text
    endpoints = set(re.findall(r'bentoml_service_request_total\{[^}]*endpoint="([^"]*)"', page))
    assert {"/v1/predict-price/{stockcode}", "other"} <= endpoints, endpoints
    assert not [e for e in endpoints if "85123A" in e or "22423" in e or "x1" in e], endpoints
