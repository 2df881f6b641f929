"""The REST API's proxy Lambda (infra/proxy/handler.py) with API Gateway v1 and v2 events, SageMaker on moto.

moto's SageMaker runtime answers the body it is configured with (it runs no model), so these tests check the
proxy's own work: routing, the request it builds, CORS, the legacy route's reshaping, and error statuses.
"""

from __future__ import annotations

import importlib.util
import io
import json
import uuid

import boto3
import httpx
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from pricing.cloud import sagemaker
from pricing.cloud.aws import Changes
from tests.lambda_events import http_api_event, rest_api_event
from tests.support import ROOT

EVENTS = {"rest-api-v1": rest_api_event, "http-api-v2": http_api_event}
ORIGIN = "https://shop.example"
SWEEP_ANSWER = {
    "stockcode": "85123A",
    "model": {"name": "pricing_xgboost", "version": "abc", "role": "primary"},
    "fallback_used": False,
    "cached": False,
    "period": "week",
    "curve": [
        {"unit_price": 2.0, "quantity": 30.0, "quantity_min": 20.0, "quantity_max": 40.0, "predicted_sales": 60.0},
        {"unit_price": 3.0, "quantity": 25.0, "quantity_min": 15.0, "quantity_max": 35.0, "predicted_sales": 75.0},
    ],
    "optimal": {"unit_price": 3.0, "quantity": 25.0, "predicted_sales": 75.0, "interval": [2.5, 3.0]},
}


@pytest.fixture
def proxy(aws, role_arn, monkeypatch):
    """The handler module, fresh, pointed at an InService endpoint on moto."""
    spec = importlib.util.spec_from_file_location("sagemaker_proxy_handler", ROOT / "infra" / "proxy" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    endpoint = f"proxy-{uuid.uuid4().hex[:8]}"
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pricing:v1"
    sagemaker.deploy(aws, sagemaker.EndpointSpec(endpoint, image, role_arn), Changes(), sagemaker.Waiter(interval_s=0))
    monkeypatch.setenv("ENDPOINT_NAME", endpoint)
    monkeypatch.setenv("CORS_ORIGINS", ORIGIN)
    return module


def answer_with(endpoint_url: str, body: object) -> None:
    results = {"results": [{"Body": json.dumps(body), "ContentType": "application/json"}]}
    httpx.post(f"{endpoint_url}/moto-api/static/sagemaker/endpoint-results", json=results).raise_for_status()


@pytest.mark.parametrize("kind", list(EVENTS))
def test_sweep_goes_through_and_allowed_origins_get_cors(proxy, aws_env, kind) -> None:
    answer_with(aws_env, SWEEP_ANSWER)
    event = EVENTS[kind]("POST", "/price_sweep", body=b'{"stockcode": "85123A"}', headers={"Origin": ORIGIN})

    answer = proxy.handler(event, None)

    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == SWEEP_ANSWER
    assert answer["headers"]["Access-Control-Allow-Origin"] == ORIGIN
    other = proxy.handler(EVENTS[kind]("POST", "/invocations", body=b"{}", headers={"Origin": "https://evil.example"}),
                          None)  # fmt: skip
    assert "Access-Control-Allow-Origin" not in other["headers"]


@pytest.mark.parametrize("kind", list(EVENTS))
def test_legacy_route_answers_one_object_per_price(proxy, aws_env, kind) -> None:
    answer_with(aws_env, SWEEP_ANSWER)
    query = {"unitprice_min": "2", "unitprice_max": "3", "num_price_bins": "2"}

    answer = proxy.handler(EVENTS[kind]("GET", "/v1/predict-price/85123A", query=query), None)

    assert answer["statusCode"] == 200
    rows = json.loads(answer["body"])
    assert [row["unit_price"] for row in rows] == [2.0, 3.0]
    assert {row["optimal_unit_price"] for row in rows} == {3.0}
    assert {row["max_predicted_sales"] for row in rows} == {75.0}


def test_legacy_route_builds_the_sweep_request(proxy) -> None:
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    proxy._runtime, proxy._sagemaker = runtime, None
    body = json.dumps(SWEEP_ANSWER).encode()
    with Stubber(runtime) as stubber:
        expected = {"EndpointName": proxy.os.environ["ENDPOINT_NAME"], "ContentType": "application/json",
                    "Accept": "application/json",
                    "Body": json.dumps({"stockcode": "85123A", "price_min": 2.0, "bins": 5}).encode()}  # fmt: skip
        stubber.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body))}, expected)
        event = rest_api_event("GET", "/v1/predict-price/85123A", query={"unitprice_min": "2", "num_price_bins": "5"})
        assert proxy.handler(event, None)["statusCode"] == 200


@pytest.mark.parametrize("kind", list(EVENTS))
def test_ping_reports_the_endpoint_status(proxy, kind) -> None:
    answer = proxy.handler(EVENTS[kind]("GET", "/ping"), None)
    assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"status": "InService"})


@pytest.mark.parametrize("kind", list(EVENTS))
def test_bad_requests_and_unknown_routes(proxy, kind) -> None:
    bad = proxy.handler(EVENTS[kind]("POST", "/price_sweep", body=b"{not json"), None)
    assert bad["statusCode"] == 400 and "not valid JSON" in json.loads(bad["body"])["detail"]
    bins = proxy.handler(EVENTS[kind]("GET", "/v1/predict-price/X", query={"num_price_bins": "many"}), None)
    assert bins["statusCode"] == 400 and "num_price_bins" in bins["body"]
    assert proxy.handler(EVENTS[kind]("DELETE", "/price_sweep"), None)["statusCode"] == 404


def test_the_container_error_status_comes_back(proxy) -> None:
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    proxy._runtime, proxy._sagemaker = runtime, None
    with Stubber(runtime) as stubber:
        stubber.add_client_error(
            "invoke_endpoint", "ModelError", "Received client error (404)", 424,
            modeled_fields={"OriginalStatusCode": 404, "OriginalMessage": '{"detail": "unknown product NOPE"}'},
        )  # fmt: skip
        answer = proxy.handler(http_api_event("POST", "/price_sweep", body=b'{"stockcode": "NOPE"}'), None)
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"]) == {"detail": "unknown product NOPE"}
