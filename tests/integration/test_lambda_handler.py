"""The Lambda entry point (pricing.cloud.aws_lambda) with API Gateway v1, v2 and function URL events.

In process: the real Mangum adapter around the real service on the smoke-trained models. Then as Lambda
runs it: the real runtime interface client (``python -m awslambdaric``) importing the handler with the bento
``make build`` made, fed through the runtime API the image test uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pricing.cloud import aws_lambda
from pricing.local_server import stop_group
from tests.image.lambda_runtime import LambdaRuntimeApi
from tests.lambda_events import EVENT_KINDS, answer_body, answer_header, http_api_event, rest_api_event
from tests.support import ROOT

KINDS = list(EVENT_KINDS)
JSON = {"Content-Type": "application/json"}
CSV = b"StockCode,UnitPrice,InvoiceDate,CustomerID,Country\n85123A,2.55,2011-12-01 10:00:00,17850,United Kingdom\n"


@pytest.fixture(scope="module")
def handler(smoke_run) -> Iterator[aws_lambda.LambdaApp]:
    """The Lambda handler around ``service:Pricing``, serving the smoke run."""
    saved = os.environ.get("PRICING_RUN_ID")
    os.environ["PRICING_RUN_ID"] = smoke_run.record["run_id"]
    app = aws_lambda.create_handler("service:Pricing")
    try:
        yield app
    finally:
        app.close()
        if saved is None:
            os.environ.pop("PRICING_RUN_ID", None)
        else:
            os.environ["PRICING_RUN_ID"] = saved


def _json(answer: dict) -> object:
    return json.loads(answer_body(answer))


@pytest.mark.parametrize("kind", KINDS)
def test_sweep_answers_json_text_with_the_primary(handler, smoke_run, kind) -> None:
    event = EVENT_KINDS[kind]("POST", "/price_sweep", body=b'{"stockcode": "85123A", "bins": 9}', headers=JSON)
    answer = handler(event, None)
    assert answer["statusCode"] == 200, answer
    assert answer["isBase64Encoded"] is False
    assert answer_header(answer, "content-type") == "application/json"
    body = _json(answer)
    assert len(body["curve"]) == 9
    assert f"{body['model']['name']}:{body['model']['version']}" == smoke_run.record["serving_order"][0]


@pytest.mark.parametrize("kind", KINDS)
def test_compatibility_route_reads_the_query_string(handler, kind) -> None:
    query = {"unitprice_min": "2", "unitprice_max": "4", "num_price_bins": "5"}
    answer = handler(EVENT_KINDS[kind]("GET", "/v1/predict-price/85123A", query=query), None)
    assert answer["statusCode"] == 200, answer
    rows = _json(answer)
    assert [row["unit_price"] for row in rows] == [2.0, 2.5, 3.0, 3.5, 4.0]


@pytest.mark.parametrize("kind", KINDS)
def test_errors_keep_their_status_and_name_the_problem(handler, kind) -> None:
    build = EVENT_KINDS[kind]
    missing = handler(build("GET", "/v1/predict-price/NO-SUCH-PRODUCT"), None)
    assert missing["statusCode"] == 404 and b"NO-SUCH-PRODUCT" in answer_body(missing)
    bad = handler(build("GET", "/v1/predict-price/85123A", query={"num_price_bins": "1"}), None)
    assert bad["statusCode"] == 400 and b"num_price_bins" in answer_body(bad)
    invalid = handler(build("POST", "/price_sweep", body=b'{"stockcode": "85123A", "bins": 0}', headers=JSON), None)
    assert invalid["statusCode"] == 400 and b"bins" in answer_body(invalid)
    unknown_route = handler(build("GET", "/no-such-route"), None)
    assert unknown_route["statusCode"] == 404


@pytest.mark.parametrize("kind", KINDS)
def test_ping_and_a_base64_csv_batch_on_invocations(handler, kind) -> None:
    build = EVENT_KINDS[kind]
    assert handler(build("GET", "/ping"), None)["statusCode"] == 200
    answer = handler(build("POST", "/invocations", body=CSV, headers={"Content-Type": "text/csv"}, binary=True), None)
    assert answer["statusCode"] == 200, answer
    assert len(_json(answer)["predictions"]) == 1


def test_binary_answers_are_base64_encoded(handler) -> None:
    answer = handler(http_api_event("GET", "/static_content/favicon-light-32x32.png"), None)
    assert answer["statusCode"] == 200
    assert answer["isBase64Encoded"] is True
    assert answer_body(answer).startswith(b"\x89PNG")


def test_rest_api_multi_value_headers_reach_the_service(handler) -> None:
    event = rest_api_event("POST", "/price_sweep", body=b'{"stockcode": "85123A", "bins": 3}', headers=JSON)
    event["headers"] = None  # API Gateway may send only the multi-value form
    assert handler(event, None)["statusCode"] == 200


def test_prepare_environment_puts_bentoml_home_and_metrics_under_tmp(tmp_path) -> None:
    env: dict[str, str] = {"BENTOML_HOME": "/home/bentoml/"}
    aws_lambda.prepare_environment(env, home=tmp_path / "bentoml")
    assert env["BENTOML_HOME"] == str(tmp_path / "bentoml")
    assert Path(env["PROMETHEUS_MULTIPROC_DIR"]).is_dir()
    assert Path(env["PROMETHEUS_MULTIPROC_DIR"]).is_relative_to(tmp_path)


def test_runtime_interface_client_serves_events_from_the_bento(built_bento, tmp_path) -> None:
    bento = tmp_path / "bento"  # the archive unpacked, models included, as the image holds it
    with tarfile.open(built_bento.archive, "r:xz") as tar:
        tar.extractall(bento, filter="data")
    env = {**os.environ, "BENTO_PATH": str(bento), "TMPDIR": str(tmp_path), "BENTOML_DO_NOT_TRACK": "1"}
    env.pop("PRICING_RUN_ID", None)
    with LambdaRuntimeApi() as api, (tmp_path / "lambda.log").open("wb") as log:
        env["AWS_LAMBDA_RUNTIME_API"] = api.address
        proc = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", "pricing.cloud.aws_lambda.handler"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            api.wait_for_first_poll(90, alive=lambda: proc.poll() is None)
            sweep_event = http_api_event("POST", "/price_sweep", body=b'{"stockcode": "85123A"}', headers=JSON)
            sweep = api.invoke(sweep_event, 60)
            missing = api.invoke(rest_api_event("GET", "/v1/predict-price/NO-SUCH-PRODUCT"), 60)
        finally:
            stop_group(proc)
    assert sweep.kind == "response" and sweep.payload["statusCode"] == 200, sweep.payload
    assert len(_json(sweep.payload)["curve"]) == 100
    assert missing.payload["statusCode"] == 404
    assert (tmp_path / "bentoml" / "prometheus_multiproc_dir").is_dir(), "BentoML's home is under TMPDIR"
    assert not (ROOT / "prometheus_multiproc_dir").exists()
