"""Security on a real `bentoml serve`: a tampered primary is refused and the next model answers, the API key
guards every route but health, metrics, docs and the page's files, CORS answers configured origins only (its
refusals too: 401, 413, 415, 404 carry the same CORS headers as an answer), and neither the key nor a wrong one
reaches the log.

The server runs on a copy of the smoke run's model store whose primary has a pickle swapped in: loading it
would create a file, so its absence proves the check ran before anything was unpickled.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pricing.registry import PIPELINE_FILE, serving_order
from tests.support import bentoml_serve, open_request, read_answer, scrape

KEY = "key-canary-7f3e9b1c5a"
WRONG_KEY = "wrong-canary-0d2c4e6a8b"
ORIGIN = "https://shop.example"
OPEN = ("/ping", "/livez", "/healthz", "/readyz", "/metrics", "/docs.json", "/ui")
GUARDED = [
    ("POST", "/price_sweep", {"stockcode": "85123A", "bins": 10}),
    ("POST", "/predict", {"rows": [{"StockCode": "85123A", "UnitPrice": 2.5, "InvoiceDate": "2011-11-01"}]}),
    ("POST", "/invocations", {"stockcode": "85123A", "bins": 10}),
    ("GET", "/v1/predict-price/85123A", None),
    ("GET", "/products", None),  # the web page's data calls: /products, /model, /price_sweep
    ("GET", "/model", None),
]


class _Touch:
    """A pickle that creates a file when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@dataclass(frozen=True)
class Served:
    url: str
    log: Path
    primary: str
    marker: Path


@pytest.fixture(scope="module")
def served(smoke_run, tmp_path_factory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("security")
    home = work / "bentoml"
    shutil.copytree(Path(os.environ["BENTOML_HOME"]) / "models", home / "models")
    primary = str(serving_order(smoke_run.record["run_id"])[0].tag)
    name, version = primary.split(":")
    marker = work / "pickle-ran"
    (home / "models" / name / version / PIPELINE_FILE).write_bytes(pickle.dumps(_Touch(marker)))
    env = {
        "BENTOML_HOME": str(home),
        "PRICING_RUN_ID": smoke_run.record["run_id"],
        "PRICING_API_KEY": KEY,
        "PRICING_CORS_ORIGINS": ORIGIN,
    }
    with bentoml_serve(env, work / "serve.log") as url:
        yield Served(url, work / "serve.log", primary, marker)


def call(served: Served, method: str, path: str, body: dict | None, key: str | None) -> httpx.Response:
    headers = {} if key is None else {"x-api-key": key}
    return httpx.request(method, served.url + path, json=body, headers=headers, timeout=60)


def test_a_tampered_primary_is_refused_and_the_next_model_answers(served) -> None:
    response = call(served, "POST", "/price_sweep", {"stockcode": "85123A", "bins": 20}, KEY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fallback_used"] is True and body["model"]["role"] == "fallback-1"
    model = call(served, "GET", "/model", None, KEY).json()
    assert [entry["tag"] for entry in model["not_loaded"]] == [served.primary]
    assert "ArtefactIntegrityError" in model["not_loaded"][0]["error"]
    assert served.primary not in [f"{m['name']}:{m['version']}" for m in model["models"]]
    assert not served.marker.exists(), "the tampered pickle was loaded"
    name = served.primary.split(":")[0]
    assert scrape(served.url, "pricing_models_refused_total", model=name, reason="mismatch") == 1
    log = served.log.read_text()
    assert f"model {served.primary} refused: artefact {PIPELINE_FILE} has SHA-256" in log


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=[p for _, p, _ in GUARDED])
@pytest.mark.parametrize("key", [None, WRONG_KEY], ids=["no key", "wrong key"])
def test_every_route_but_health_needs_the_key(served, method, path, body, key) -> None:
    response = call(served, method, path, body, key)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["status"] == 401 and error["field"] == "x-api-key" and error["message"]
    assert call(served, method, path, body, KEY).status_code == 200


def test_every_documented_route_is_guarded(served) -> None:
    documented = httpx.get(f"{served.url}/docs.json", timeout=10).json()["paths"]
    for path, operations in documented.items():
        if path in OPEN:
            continue
        concrete = path.replace("{stockcode}", "85123A")
        for method in operations:
            response = httpx.request(method.upper(), served.url + concrete, timeout=30)
            assert response.status_code == 401, (method, path, response.status_code)


@pytest.mark.parametrize("path", OPEN)
def test_health_metrics_docs_and_the_page_stay_open(served, path) -> None:
    assert httpx.get(served.url + path, timeout=10).status_code == 200


def test_cors_preflight_answers_the_configured_origin_only(served) -> None:
    def preflight(origin: str) -> httpx.Response:
        headers = {"origin": origin, "access-control-request-method": "POST",
                   "access-control-request-headers": "content-type,x-api-key"}  # fmt: skip
        return httpx.options(f"{served.url}/price_sweep", headers=headers, timeout=10)

    allowed = preflight(ORIGIN)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    refused = preflight("https://elsewhere.example")
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-credentials" not in refused.headers
    assert refused.status_code == 400 and refused.json()["error"]["message"] == "Disallowed CORS origin"


def cors_headers(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("access-control-") or k.lower() == "vary"}


SWEEP = b'{"stockcode": "85123A", "bins": 10}'
JSON_BODY = {"Content-Type": "application/json", "Content-Length": str(len(SWEEP))}
REFUSALS = [  # answered by the service's middlewares (401, 413, 415) or the router (404), each with its body
    (401, "POST", "/price_sweep", JSON_BODY, SWEEP),
    (413, "POST", "/price_sweep", {"Content-Type": "application/json", "Content-Length": str(10**9)}, b""),
    (415, "POST", "/price_sweep", {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "16",
                                   "X-API-Key": KEY}, b"stockcode=85123A"),
    (404, "GET", "/no/such/route", {"X-API-Key": KEY}, b""),
]  # fmt: skip


@pytest.mark.parametrize(("status", "method", "path", "headers", "body"), REFUSALS, ids=[str(r[0]) for r in REFUSALS])
def test_refusals_carry_cors_headers_for_an_allowed_origin_only(served, status, method, path, headers, body) -> None:
    answered = httpx.get(f"{served.url}/model", headers={"x-api-key": KEY, "origin": ORIGIN}, timeout=30)
    assert answered.status_code == 200 and answered.headers["access-control-allow-origin"] == ORIGIN
    allowed = read_answer(open_request(served.url, method, path, {"Origin": ORIGIN, **headers}, body))
    assert allowed.status == status, allowed
    error = json.loads(allowed.body)["error"]
    assert error["status"] == status and error["message"]
    # Exactly the headers BentoML's CORS gives an answer: the origin, Vary: Origin, never credentials.
    assert cors_headers(allowed.headers) == cors_headers(answered.headers)
    assert "access-control-allow-credentials" not in allowed.headers
    elsewhere = read_answer(open_request(served.url, method, path, {"Origin": "https://elsewhere.example", **headers},
                                         body))  # fmt: skip
    assert elsewhere.status == status
    assert not [name for name in elsewhere.headers if name.startswith("access-control-")], elsewhere.headers


def test_no_key_reaches_the_log(served) -> None:
    for key in (KEY, WRONG_KEY):
        call(served, "GET", "/model", None, key)
    log = served.log.read_text()
    assert "/model" in log  # the access log is on and recorded the calls
    assert KEY not in log and WRONG_KEY not in log
