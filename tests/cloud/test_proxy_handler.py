"""The REST API's proxy Lambda (infra/proxy/handler.py) with API Gateway v1 and v2 events, SageMaker on moto.

moto's SageMaker runtime answers the body it is configured with (it runs no model), so these tests check the
proxy's own work: routing, the request it builds, CORS, the legacy route's reshaping, and error statuses.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import uuid

import boto3
import httpx
import orjson
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from pricing import errors
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


def assert_error(answer: dict, status: int, field: str | None, words: str) -> None:
    """``answer`` has ``status`` and the service's one error body, about ``field``, its message holding ``words``."""
    assert answer["statusCode"] == status, answer
    assert answer["headers"]["Content-Type"] == "application/json"
    body = json.loads(answer["body"])
    assert set(body) == {"error"} and set(body["error"]) == {"status", "field", "message"}, body
    assert (body["error"]["status"], body["error"]["field"]) == (status, field), body
    assert words in body["error"]["message"], body


@pytest.mark.parametrize("kind", list(EVENTS))
def test_bad_requests_and_unknown_routes_get_the_service_error_body(proxy, kind) -> None:
    bad = proxy.handler(EVENTS[kind]("POST", "/price_sweep", body=b"{not json"), None)
    assert_error(bad, 400, None, "the body is not valid JSON")
    bins = proxy.handler(EVENTS[kind]("GET", "/v1/predict-price/X", query={"num_price_bins": "many"}), None)
    assert_error(bins, 422, "num_price_bins", "num_price_bins: not an integer: 'many'")
    price = proxy.handler(EVENTS[kind]("GET", "/v1/predict-price/X", query={"unitprice_min": "cheap"}), None)
    assert_error(price, 422, "unitprice_min", "unitprice_min: not a number: 'cheap'")
    assert_error(proxy.handler(EVENTS[kind]("DELETE", "/price_sweep"), None), 404, None, "no route DELETE /price_sweep")


def test_the_proxy_builds_the_same_error_body_as_the_service(proxy) -> None:
    # The Lambda bundle is infra/proxy alone (infra/stacks.py: Code.from_asset), so the handler cannot import the
    # pricing package: its error_body is a copy of pricing.errors.error_body, kept identical here.
    tree = ast.parse((ROOT / "infra" / "proxy" / "handler.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {name for name in imported if name.split(".")[0] == "pricing"}
    statuses = sorted({*errors._GENERIC, *proxy._GENERIC, 502})  # an empty message gets the status's words
    cases = [(status, "", None) for status in statuses]
    cases += [(400, "bins: too\n many   bins", "bins"), (404, "unknown stockcode 'X' " * 60, "stockcode"),
              (502, "SageMaker: ThrottlingException: Rate exceeded", None)]  # fmt: skip
    for status, message, field in cases:
        assert proxy.error_body(status, message, field) == orjson.loads(errors.error_body(status, message, field))


def test_a_container_error_comes_back_with_its_status_and_body(proxy) -> None:
    body = errors.error_body(404, "unknown stockcode 'NOPE'", "stockcode").decode()
    answer = _container_says(proxy, 404, body, http_api_event("POST", "/price_sweep", body=b'{"stockcode": "NOPE"}'))
    assert_error(answer, 404, "stockcode", "unknown stockcode 'NOPE'")
    assert json.loads(answer["body"]) == json.loads(body)


def test_a_container_error_on_the_legacy_route_names_the_routes_own_parameters(proxy) -> None:
    body = errors.error_body(400, "bins: Input should be less than or equal to 1000", "bins").decode()
    event = rest_api_event("GET", "/v1/predict-price/85123A", query={"num_price_bins": "5000"})
    answer = _container_says(proxy, 400, body, event)
    assert_error(answer, 400, "num_price_bins", "num_price_bins: Input should be less than or equal to 1000")


@pytest.mark.parametrize(
    ("original", "words"),
    [
        ('{"detail": "unknown product NOPE"}', "unknown product NOPE"),  # FastAPI's shape
        ("Bad Gateway", "Bad Gateway"),  # plain text from something in between
        ("", "Received client error (404)"),  # no body: SageMaker's words
    ],
)
def test_an_error_answer_in_another_shape_is_put_in_the_error_body(proxy, original, words) -> None:
    answer = _container_says(proxy, 404, original, http_api_event("POST", "/price_sweep", body=b"{}"))
    assert_error(answer, 404, None, words)


def test_sagemaker_refusing_the_call_is_a_502_in_the_error_body(proxy) -> None:
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    proxy._runtime, proxy._sagemaker = runtime, None
    with Stubber(runtime) as stubber:
        stubber.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 400)
        answer = proxy.handler(http_api_event("POST", "/invocations", body=b"{}"), None)
    assert_error(answer, 502, None, "SageMaker: ThrottlingException: Rate exceeded")


def test_a_legacy_answer_that_is_not_a_sweep_is_a_502_in_the_error_body(proxy) -> None:
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    proxy._runtime, proxy._sagemaker = runtime, None
    body = b'{"predictions": [1.0]}'
    with Stubber(runtime) as stubber:
        stubber.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body))})
        answer = proxy.handler(rest_api_event("GET", "/v1/predict-price/85123A"), None)
    assert_error(answer, 502, None, "the endpoint answered with something other than a price sweep")


def test_ping_of_an_endpoint_not_in_service_is_a_503_in_the_error_body(proxy, monkeypatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", f"missing-{uuid.uuid4().hex[:8]}")
    answer = proxy.handler(rest_api_event("GET", "/ping"), None)
    assert_error(answer, 503, None, "the SageMaker endpoint is not in service")


def _container_says(proxy, status: int, original: str, event: dict) -> dict:
    """The handler's answer to ``event`` when the container answers ``status`` with ``original`` (SageMaker's
    ModelError, which carries the container's status and body)."""
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    proxy._runtime, proxy._sagemaker = runtime, None
    with Stubber(runtime) as stubber:
        stubber.add_client_error(
            "invoke_endpoint", "ModelError", f"Received client error ({status})", 424,
            modeled_fields={"OriginalStatusCode": status, "OriginalMessage": original},
        )  # fmt: skip
        return proxy.handler(event, None)
