"""The REST API's proxy Lambda: API Gateway (REST, payload 1.0; or HTTP API, payload 2.0) -> the SageMaker endpoint.

The source system's front door in front of SageMaker, kept small: the Lambda runtime's boto3 and nothing
else. Routes:

    POST /price_sweep, POST /invocations     the JSON body goes to the endpoint's /invocations as it is
    GET  /v1/predict-price/{stockcode}       the original system's route: query unitprice_min, unitprice_max,
                                             num_price_bins, answered in its original shape (one object per price)
    GET  /ping                               the endpoint's status (200 InService, else 503)

The container's own error statuses (400, 404, 503) come back as they are. CORS headers are added for the
origins in ``CORS_ORIGINS`` (comma-separated); API Gateway answers the preflight.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import boto3
from botocore.exceptions import ClientError

_runtime = None
_sagemaker = None


def _clients() -> tuple[Any, Any]:
    global _runtime, _sagemaker  # one client each per warm Lambda container
    if _runtime is None:
        _runtime, _sagemaker = boto3.client("sagemaker-runtime"), boto3.client("sagemaker")
    return _runtime, _sagemaker


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One API Gateway proxy event in, its HTTP answer out."""
    method, path = _method_and_path(event)
    origin = _header(event, "origin")
    try:
        if method == "GET" and path.rstrip("/") == "/ping":
            return _ping(origin)
        if method == "POST" and path.rstrip("/") in ("/price_sweep", "/invocations"):
            return _invoke(_body(event), origin)
        if method == "GET" and path.startswith("/v1/predict-price/"):
            return _legacy(path.removeprefix("/v1/predict-price/"), event.get("queryStringParameters") or {}, origin)
        return _answer(404, {"detail": f"no route {method} {path}"}, origin)
    except ValueError as exc:
        return _answer(400, {"detail": str(exc)}, origin)


def _method_and_path(event: dict[str, Any]) -> tuple[str, str]:
    if event.get("version") == "2.0":
        http = event["requestContext"]["http"]
        return http["method"].upper(), event.get("rawPath") or http["path"]
    return event["httpMethod"].upper(), event.get("path") or "/"


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return value
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == name and values:
            return values[0]
    return None


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    try:
        json.loads(raw or b"null")
    except ValueError as exc:
        raise ValueError(f"body: not valid JSON ({exc})") from None
    return raw


def _invoke(body: bytes, origin: str | None) -> dict[str, Any]:
    runtime, _ = _clients()
    try:
        answer = runtime.invoke_endpoint(
            EndpointName=os.environ["ENDPOINT_NAME"], ContentType="application/json", Accept="application/json",
            Body=body,
        )  # fmt: skip
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ModelError":
            status = int(exc.response.get("OriginalStatusCode") or 502)
            return _raw(status, exc.response.get("OriginalMessage") or error.get("Message", ""), origin)
        return _answer(502, {"detail": f"SageMaker: {error.get('Code')}: {error.get('Message')}"}, origin)
    return _raw(200, answer["Body"].read().decode(), origin, answer.get("ContentType", "application/json"))


def _legacy(stockcode: str, query: dict[str, str], origin: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {"stockcode": stockcode}
    for name, field, kind in (("unitprice_min", "price_min", float), ("unitprice_max", "price_max", float),
                              ("num_price_bins", "bins", int)):  # fmt: skip
        if query.get(name) not in (None, ""):
            try:
                request[field] = kind(query[name])
            except ValueError:
                raise ValueError(f"{name}: not a number: {query[name]!r}") from None
    answer = _invoke(json.dumps(request).encode(), origin)
    if answer["statusCode"] != 200:
        return answer
    body = json.loads(answer["body"])
    optimal = body["optimal"]
    rows = [
        {"stockcode": body["stockcode"], **point, "optimal_unit_price": optimal["unit_price"],
         "max_predicted_sales": optimal["predicted_sales"]}
        for point in body["curve"]
    ]  # fmt: skip
    return _answer(200, rows, origin)


def _ping(origin: str | None) -> dict[str, Any]:
    _, sagemaker = _clients()
    try:
        status = sagemaker.describe_endpoint(EndpointName=os.environ["ENDPOINT_NAME"])["EndpointStatus"]
    except ClientError as exc:
        status = exc.response.get("Error", {}).get("Code", "unknown")
    return _answer(200 if status == "InService" else 503, {"status": status}, origin)


def _cors(origin: str | None) -> dict[str, str]:
    allowed = [o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip()]
    if origin and (origin in allowed or "*" in allowed):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def _answer(status: int, body: Any, origin: str | None) -> dict[str, Any]:
    return _raw(status, json.dumps(body), origin)


def _raw(status: int, body: str, origin: str | None, content_type: str = "application/json") -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **_cors(origin)},
        "body": body,
        "isBase64Encoded": False,
    }
