"""The Lambda entry point (pricing.cloud.aws_lambda) as Lambda runs it, with API Gateway and function URL events.

The real runtime interface client (``python -m awslambdaric pricing.cloud.aws_lambda.handler``) runs in its own
process on the bento ``make build`` made (unpacked, models included, as the image holds it) and long-polls the
runtime API that the image test also uses; events are API Gateway REST (v1), HTTP API (v2) and function URL
payloads. Its own process also because BentoML allows one app per process (its metrics registry is global).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pricing.cloud import aws_lambda
from pricing.local_server import stop_group
from tests.image.lambda_runtime import LambdaRuntimeApi
from tests.lambda_events import EVENT_KINDS, answer_body, answer_header, http_api_event, rest_api_event
from tests.support import ROOT

KINDS = list(EVENT_KINDS)
JSON = {"Content-Type": "application/json"}
CSV = b"StockCode,UnitPrice,InvoiceDate,CustomerID,Country\n85123A,2.55,2011-12-01 10:00:00,17850,United Kingdom\n"
INIT_TIMEOUT_S = 90
EVENT_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def lambda_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TMPDIR of the Lambda process: BentoML's home goes under it."""
    return tmp_path_factory.mktemp("lambda-tmp")


@pytest.fixture(scope="module")
def handler(
    built_bento, lambda_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """Send one event to the handler running under awslambdaric; return its answer."""
    bento = tmp_path_factory.mktemp("lambda-bento")
    with tarfile.open(built_bento.archive, "r:xz") as tar:
        tar.extractall(bento, filter="data")
    env = {**os.environ, "BENTO_PATH": str(bento), "TMPDIR": str(lambda_home), "BENTOML_DO_NOT_TRACK": "1"}
    env.pop("PRICING_RUN_ID", None)
    log_path = bento / "lambda.log"
    with LambdaRuntimeApi() as api, log_path.open("wb") as log:
        env["AWS_LAMBDA_RUNTIME_API"] = api.address
        proc = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", "pricing.cloud.aws_lambda.handler"],
            cwd=lambda_home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            api.wait_for_first_poll(INIT_TIMEOUT_S, alive=lambda: proc.poll() is None)

            def send(event: dict[str, Any]) -> dict[str, Any]:
                outcome = api.invoke(event, EVENT_TIMEOUT_S)
                assert outcome.kind == "response", f"the handler raised: {outcome.payload}"
                return outcome.payload

            yield send
        finally:
            stop_group(proc)


def _json(answer: dict) -> object:
    return json.loads(answer_body(answer))


@pytest.mark.parametrize("kind", KINDS)
def test_sweep_answers_json_text_with_the_primary(handler, smoke_run, kind) -> None:
    event = EVENT_KINDS[kind]("POST", "/price_sweep", body=b'{"stockcode": "85123A", "bins": 9}', headers=JSON)
    answer = handler(event)
    assert answer["statusCode"] == 200, answer
    assert answer["isBase64Encoded"] is False
    assert answer_header(answer, "content-type") == "application/json"
    body = _json(answer)
    assert len(body["curve"]) == 9
    assert f"{body['model']['name']}:{body['model']['version']}" == smoke_run.record["serving_order"][0]


@pytest.mark.parametrize("kind", KINDS)
def test_compatibility_route_reads_the_query_string(handler, kind) -> None:
    query = {"unitprice_min": "2", "unitprice_max": "4", "num_price_bins": "5"}
    answer = handler(EVENT_KINDS[kind]("GET", "/v1/predict-price/85123A", query=query))
    assert answer["statusCode"] == 200, answer
    rows = _json(answer)
    assert [row["unit_price"] for row in rows] == [2.0, 2.5, 3.0, 3.5, 4.0]


@pytest.mark.parametrize("kind", KINDS)
def test_errors_keep_their_status_and_name_the_problem(handler, kind) -> None:
    build = EVENT_KINDS[kind]
    missing = handler(build("GET", "/v1/predict-price/NO-SUCH-PRODUCT"))
    assert missing["statusCode"] == 404 and b"NO-SUCH-PRODUCT" in answer_body(missing)
    bad = handler(build("GET", "/v1/predict-price/85123A", query={"num_price_bins": "1"}))
    assert bad["statusCode"] == 400 and b"num_price_bins" in answer_body(bad)
    invalid = handler(build("POST", "/price_sweep", body=b'{"stockcode": "85123A", "bins": 0}', headers=JSON))
    assert invalid["statusCode"] == 400 and b"bins" in answer_body(invalid)
    unknown_route = handler(build("GET", "/no-such-route"))
    assert unknown_route["statusCode"] == 404


@pytest.mark.parametrize("kind", KINDS)
def test_ping_and_a_base64_csv_batch_on_invocations(handler, kind) -> None:
    build = EVENT_KINDS[kind]
    assert handler(build("GET", "/ping"))["statusCode"] == 200
    answer = handler(build("POST", "/invocations", body=CSV, headers={"Content-Type": "text/csv"}, binary=True))
    assert answer["statusCode"] == 200, answer
    assert len(_json(answer)["predictions"]) == 1


def test_binary_answers_are_base64_encoded(handler) -> None:
    answer = handler(http_api_event("GET", "/static_content/favicon-light-32x32.png"))
    assert answer["statusCode"] == 200
    assert answer["isBase64Encoded"] is True
    assert answer_body(answer).startswith(b"\x89PNG")


def test_rest_api_multi_value_headers_reach_the_service(handler) -> None:
    event = rest_api_event("POST", "/price_sweep", body=b'{"stockcode": "85123A", "bins": 3}', headers=JSON)
    event["headers"] = None  # API Gateway may send only the multi-value form
    assert handler(event)["statusCode"] == 200


def test_prepare_environment_puts_bentoml_home_and_metrics_under_tmp(tmp_path) -> None:
    env: dict[str, str] = {"BENTOML_HOME": "/home/bentoml/"}
    aws_lambda.prepare_environment(env, home=tmp_path / "bentoml")
    assert env["BENTOML_HOME"] == str(tmp_path / "bentoml")
    assert Path(env["PROMETHEUS_MULTIPROC_DIR"]).is_dir()
    assert Path(env["PROMETHEUS_MULTIPROC_DIR"]).is_relative_to(tmp_path)


def test_bentoml_home_and_metrics_live_under_tmp(handler, lambda_home) -> None:
    assert handler(http_api_event("GET", "/metrics"))["statusCode"] == 200
    assert (lambda_home / "bentoml" / "prometheus_multiproc_dir").is_dir()
    assert not (ROOT / "prometheus_multiproc_dir").exists()
