"""The REST API's proxy Lambda: API Gateway (REST, payload 1.0; or HTTP API, payload 2.0) -> the SageMaker endpoint.

The source system's front door in front of SageMaker, kept small: the Lambda runtime's boto3 and nothing
else. Routes:

    POST /price_sweep, POST /invocations     the JSON body goes to the endpoint's /invocations as it is
    GET  /v1/predict-price/{stockcode}       the original system's route: query unitprice_min, unitprice_max,
                                             num_price_bins, answered in its original shape (one object per price)
    GET  /ping                               the endpoint's status (200 InService, else 503)

Errors have the service's one body, ``{"error": {"status": int, "field": str | null, "message": str}}``
(pricing/errors.py). The proxy's own: 400 a body that is not JSON, 404 no such route, 422 a legacy query
parameter that is not a number, 502 SageMaker refused the call or answered something other than a sweep, 503
the endpoint is not InService. The container's (400, 404, 503 ...) come back with their status and body; on the
legacy route their field takes the route's own names (``num_price_bins`` for ``bins``), as the service's
compatibility route does. The Lambda bundle is this folder alone (infra/stacks.py), so ``error_body`` is a copy
of the service's, which a test keeps identical. CORS headers are added for the origins in ``CORS_ORIGINS``
(comma-separated); API Gateway answers the preflight.
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

# The legacy route's query parameters and the sweep fields they fill (as service.py's LEGACY_NAMES).
LEGACY_NAMES = {"price_min": "unitprice_min", "price_max": "unitprice_max", "bins": "num_price_bins"}
MAX_MESSAGE_CHARS = 500
_GENERIC = {
    400: "bad request",
    401: "missing or wrong API key",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
    415: "unsupported media type",
    422: "invalid parameters",
    429: "too many requests",
    500: "internal error: the server log has the details",
    503: "service unavailable",
    504: "the request took too long",
}


class RequestError(ValueError):
    """A request the proxy refuses itself: its status, the field it is about (or None) and why."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    """The service's error body (pricing.errors.error_body, parsed): whitespace folded, long messages cut."""
    message = " ".join(message.split()) or _GENERIC.get(status, "error")
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    return {"error": {"status": status, "field": field, "message": message}}


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
        return _error(404, f"no route {method} {path}", origin)
    except RequestError as exc:
        return _error(exc.status, str(exc), origin, exc.field)


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
        raise RequestError(400, f"the body is not valid JSON ({exc})") from None
    return raw


def _invoke(body: bytes, origin: str | None, rename: dict[str, str] | None = None) -> dict[str, Any]:
    runtime, _ = _clients()
    try:
        answer = runtime.invoke_endpoint(
            EndpointName=os.environ["ENDPOINT_NAME"], ContentType="application/json", Accept="application/json",
            Body=body,
        )  # fmt: skip
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ModelError":  # the container answered with an error status
            status = int(exc.response.get("OriginalStatusCode") or 502)
            original = exc.response.get("OriginalMessage") or error.get("Message", "")
            return _answer(status, _container_error(status, original, rename or {}), origin)
        return _error(502, f"SageMaker: {error.get('Code')}: {error.get('Message')}", origin)
    return _raw(200, answer["Body"].read().decode(), origin, answer.get("ContentType", "application/json"))


def _container_error(status: int, original: str, rename: dict[str, str]) -> dict[str, Any]:
    """The container's error answer in the one error body: as it is (fields renamed for the legacy route), or its
    words in that body when it is not one (a gateway or runtime in between answered)."""
    try:
        parsed = json.loads(original)
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("message"), str)):
        detail = parsed.get("detail") if isinstance(parsed, dict) else None
        return error_body(status, detail if isinstance(detail, str) else original)
    message, field = error["message"], error.get("field") if isinstance(error.get("field"), str) else None
    for ours, theirs in rename.items():
        message = message.replace(ours, theirs)
    return error_body(status, message, rename.get(field, field) if field else None)


def _legacy(stockcode: str, query: dict[str, str], origin: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {"stockcode": stockcode}
    for name, field, kind in (("unitprice_min", "price_min", float), ("unitprice_max", "price_max", float),
                              ("num_price_bins", "bins", int)):  # fmt: skip
        if query.get(name) not in (None, ""):
            try:
                request[field] = kind(query[name])
            except ValueError:
                what = "an integer" if kind is int else "a number"
                raise RequestError(422, f"{name}: not {what}: {query[name]!r}", name) from None
    answer = _invoke(json.dumps(request).encode(), origin, LEGACY_NAMES)
    if answer["statusCode"] != 200:
        return answer
    try:
        body = json.loads(answer["body"])
        optimal = body["optimal"]
        rows = [
            {"stockcode": body["stockcode"], **point, "optimal_unit_price": optimal["unit_price"],
             "max_predicted_sales": optimal["predicted_sales"]}
            for point in body["curve"]
        ]  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return _error(502, "the endpoint answered with something other than a price sweep", origin)
    return _answer(200, rows, origin)


def _ping(origin: str | None) -> dict[str, Any]:
    _, sagemaker = _clients()
    try:
        status = sagemaker.describe_endpoint(EndpointName=os.environ["ENDPOINT_NAME"])["EndpointStatus"]
    except ClientError as exc:
        status = exc.response.get("Error", {}).get("Code", "unknown")
    if status != "InService":
        return _error(503, f"the SageMaker endpoint is not in service: {status}", origin)
    return _answer(200, {"status": status}, origin)


def _cors(origin: str | None) -> dict[str, str]:
    allowed = [o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip()]
    if origin and (origin in allowed or "*" in allowed):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def _error(status: int, message: str, origin: str | None, field: str | None = None) -> dict[str, Any]:
    return _answer(status, error_body(status, message, field), origin)


def _answer(status: int, body: Any, origin: str | None) -> dict[str, Any]:
    return _raw(status, json.dumps(body), origin)


def _raw(status: int, body: str, origin: str | None, content_type: str = "application/json") -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **_cors(origin)},
        "body": body,
        "isBase64Encoded": False,
    }
