"""BentoML's own traffic answers on a real `bentoml serve`, in the one error body and with CORS headers: its
timeout (``traffic.timeout`` -> 504) and its concurrency limit (``traffic.max_concurrency`` -> 429), which it
answers outside the service's middlewares (pricing.edge moves the error body and CORS in front of them).

The server runs with BentoML's own operator settings, through BENTOML_CONFIG_OPTIONS: a 2 s timeout and one
request at a time. A request whose declared body never arrives outlasts the timeout whatever the machine's load
(the worker waits for the body), so the 504 is real and needs no slow model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import bentoml_serve, open_request, read_answer

ORIGIN, ELSEWHERE = "https://shop.example", "https://elsewhere.example"
TIMEOUT_S = 2
HALF_A_BODY = b'{"stockcode": "85'  # of the 40 bytes its Content-Length declares


@pytest.fixture(scope="module")
def served(smoke_run, tmp_path_factory) -> Iterator[str]:
    env = {
        "PRICING_RUN_ID": smoke_run.record["run_id"],
        "PRICING_CORS_ORIGINS": ORIGIN,
        "BENTOML_CONFIG_OPTIONS": f"services.pricing.traffic.timeout={TIMEOUT_S} "
        "services.pricing.traffic.max_concurrency=1",
    }
    with bentoml_serve(env, tmp_path_factory.mktemp("edge") / "serve.log") as url:
        yield url


def stalled_sweep(url: str, origin: str):
    """A POST /price_sweep whose body stops half way: the worker waits for the rest until the timeout."""
    headers = {"Origin": origin, "Content-Type": "application/json", "Content-Length": "40"}
    return open_request(url, "POST", "/price_sweep", headers, HALF_A_BODY)


def error_of(status: int, body: bytes) -> dict:
    parsed = json.loads(body)
    assert list(parsed) == ["error"] and parsed["error"]["status"] == status, parsed
    assert set(parsed["error"]) == {"status", "field", "message"}
    return parsed["error"]


def test_the_timeout_answers_504_in_the_one_body_with_cors_headers(served) -> None:
    started = time.monotonic()
    answer = read_answer(stalled_sweep(served, ORIGIN))
    waited = time.monotonic() - started
    assert answer.status == 504, answer
    error = error_of(504, answer.body)
    assert error["field"] is None
    assert error["message"] == (
        f"no answer within the service's time limit of {TIMEOUT_S} s (BentoML's traffic.timeout); "
        "the request was cancelled"
    )
    assert TIMEOUT_S <= waited < TIMEOUT_S + 10
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["content-length"]) == len(answer.body)
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in answer.headers["vary"] and "access-control-allow-credentials" not in answer.headers


def test_the_concurrency_limit_answers_429_in_the_one_body(served) -> None:
    stalled = stalled_sweep(served, ELSEWHERE)  # holds the worker's one slot until its timeout
    try:
        time.sleep(0.5)  # the server has read its head and entered the limit
        busy = httpx.get(f"{served}/model", headers={"origin": ORIGIN}, timeout=30)
    finally:
        refused = read_answer(stalled)
    assert busy.status_code == 429, busy.text
    assert busy.json()["error"] == {
        "status": 429,
        "field": None,
        "message": "too many requests in progress: this worker takes 1 at a time (BentoML's "
        "traffic.max_concurrency); retry later",
    }
    assert busy.headers["access-control-allow-origin"] == ORIGIN
    # The stalled request came from an origin not allowed: its 504 is in the one body, without CORS headers.
    assert refused.status == 504 and error_of(504, refused.body)["field"] is None
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-credentials" not in refused.headers
    # Health and metrics bypass the limit; once the slot is free, requests are answered again.
    assert httpx.get(f"{served}/model", timeout=30).status_code == 200
