"""A real `bentoml serve` process with a real redis-server: shared cache, outage and recovery, metrics."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.redis_server import RedisServer
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_DEADLINE_S = 90


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
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "PRICING_RUN_ID": smoke_run.record["run_id"], "PRICING_REDIS_URL": redis_server.url}
    env.pop("REDIS_URL", None)
    command = [str(Path(sys.executable).parent / "bentoml"), "serve", "service:Pricing", "--port", str(port)]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() - started > READY_DEADLINE_S:
                pytest.fail(f"bentoml serve did not become ready:\n{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def sweep(url: str, **body) -> dict:
    response = httpx.post(f"{url}/price_sweep", json={"stockcode": "85123A", "bins": 20, **body}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def metric(url: str, name: str, **labels: str) -> float:
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def test_repeat_sweep_is_a_redis_hit_in_the_response_and_the_metrics(served, redis_server) -> None:
    hits = metric(served, "pricing_cache_lookups_total", backend="redis", result="hit")
    first, second = sweep(served, price_min=2.0), sweep(served, price_min=2.0)
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["curve"] == first["curve"]
    assert metric(served, "pricing_cache_lookups_total", backend="redis", result="hit") == hits + 1
    assert any(key.startswith(b"pricing:sweep:") for key in redis_server.client().keys("*"))


def test_redis_outage_degrades_to_uncached_answers_and_recovery_resumes_caching(served, redis_server) -> None:
    redis_server.stop()
    try:
        errors = metric(served, "pricing_cache_errors_total", backend="redis", operation="get")
        for _ in range(3):
            assert sweep(served, price_min=2.5)["cached"] is False
        assert metric(served, "pricing_cache_errors_total", backend="redis", operation="get") > errors
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
