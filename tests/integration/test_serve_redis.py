"""A real `bentoml serve` process with a real redis-server: shared cache, outage and recovery, metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.redis_server import RedisServer
from tests.support import bentoml_serve, scrape


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def served(smoke_run, redis_server, tmp_path_factory) -> Iterator[str]:
    """`bentoml serve service:Pricing` on a free port, caching in the Redis above; yields its base URL."""
    env = {"PRICING_RUN_ID": smoke_run.record["run_id"], "PRICING_REDIS_URL": redis_server.url, "REDIS_URL": ""}
    with bentoml_serve(env, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


def sweep(url: str, **body) -> dict:
    response = httpx.post(f"{url}/price_sweep", json={"stockcode": "85123A", "bins": 20, **body}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_repeat_sweep_is_a_redis_hit_in_the_response_and_the_metrics(served, redis_server) -> None:
    hits = scrape(served, "pricing_cache_lookups_total", backend="redis", result="hit")
    first, second = sweep(served, price_min=2.0), sweep(served, price_min=2.0)
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["curve"] == first["curve"]
    assert scrape(served, "pricing_cache_lookups_total", backend="redis", result="hit") == hits + 1
    assert any(key.startswith(b"pricing:sweep:") for key in redis_server.client().keys("*"))


def test_redis_outage_degrades_to_uncached_answers_and_recovery_resumes_caching(served, redis_server) -> None:
    redis_server.stop()
    try:
        errors = scrape(served, "pricing_cache_errors_total", backend="redis", operation="get")
        for _ in range(3):
            assert sweep(served, price_min=2.5)["cached"] is False
        assert scrape(served, "pricing_cache_errors_total", backend="redis", operation="get") > errors
        assert httpx.get(f"{served}/model", timeout=5).json()["cache"] == {"backend": "redis", "healthy": False}
    finally:
        redis_server.start()
    time.sleep(1.2)  # the cache leaves a dead Redis alone for one second before trying again
    assert sweep(served, price_min=2.75)["cached"] is False
    assert sweep(served, price_min=2.75)["cached"] is True
    assert httpx.get(f"{served}/model", timeout=5).json()["cache"]["healthy"] is True


def test_sagemaker_routes_on_the_real_server(served) -> None:
    assert httpx.get(f"{served}/ping", timeout=5).status_code == 200
    invoked = httpx.post(f"{served}/invocations", json={"stockcode": "85123A", "bins": 5}, timeout=30)
    assert invoked.status_code == 200 and len(invoked.json()["curve"]) == 5
