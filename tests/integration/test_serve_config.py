"""Configuration on a real `bentoml serve`: API key and CORS from PRICING_* variables."""

from __future__ import annotations

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
    assert httpx.post(f"{served}/predict_batch", json={"matrix": [[1.0]]}, timeout=30).status_code == 401
    for path in ("/ping", "/readyz", "/metrics"):
        assert httpx.get(f"{served}{path}", timeout=10).status_code == 200, path


def test_with_the_key_the_primary_answers_through_the_batching_api(served) -> None:
    response = httpx.post(
        f"{served}/price_sweep", json={"stockcode": "85123A", "bins": 10}, headers={"x-api-key": KEY}, timeout=30
    )
    assert response.status_code == 200, response.text
    # The service's call to its own batching API carries no key; it must not be refused (and fall back).
    assert response.json()["fallback_used"] is False
    assert scrape(served, "pricing_fallbacks_total", model=response.json()["model"]["name"], reason="error") == 0


def test_cors_allows_the_configured_origin_only(served) -> None:
    def preflight(origin: str) -> httpx.Response:
        headers = {"origin": origin, "access-control-request-method": "POST",
                   "access-control-request-headers": "content-type,x-api-key"}  # fmt: skip
        return httpx.options(f"{served}/price_sweep", headers=headers, timeout=10)

    allowed = preflight(ORIGIN)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in preflight("https://elsewhere.example").headers
