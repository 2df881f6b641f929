"""Lambda events as AWS sends them to a function behind API Gateway or a function URL.

The shapes follow AWS's documented payloads: REST API proxy integration (payload format 1.0, with the stage
in the request context and multi-value headers and query), HTTP API (payload format 2.0, lower-case headers,
cookies, a raw query string) and function URL (format 2.0, anonymous account, a lambda-url domain).
Used by the in-process tests of ``pricing.cloud.aws_lambda`` and by the image test, which sends them to the
image's Lambda entry point through the runtime API.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

API_ID = "a1b2c3d4e5"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
SOURCE_IP = "198.51.100.7"
USER_AGENT = "pricing-client/1.0"
EPOCH_MS = 1_764_633_600_000


def rest_api_event(
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    binary: bool = False,
) -> dict[str, Any]:
    """A REST API (v1) proxy-integration event for ``{proxy+}`` on stage ``prod``."""
    domain = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
    sent = {"Accept": "*/*", "Host": domain, "User-Agent": USER_AGENT, "X-Forwarded-For": SOURCE_IP,
            "X-Forwarded-Port": "443", "X-Forwarded-Proto": "https", **(headers or {})}  # fmt: skip
    context = {
        "accountId": ACCOUNT, "apiId": API_ID, "domainName": domain, "domainPrefix": API_ID,
        "extendedRequestId": "Bx7dJGqJoAMEbXw=", "httpMethod": method, "path": f"/prod{path}",
        "protocol": "HTTP/1.1", "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "requestTime": "02/Dec/2026:00:00:00 +0000", "requestTimeEpoch": EPOCH_MS,
        "resourceId": "x1y2z3", "resourcePath": "/{proxy+}", "stage": "prod",
        "identity": {"sourceIp": SOURCE_IP, "userAgent": USER_AGENT, "caller": None, "user": None,
                     "accessKey": None, "accountId": None, "cognitoIdentityId": None},
    }  # fmt: skip
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": sent,
        "multiValueHeaders": {name: [value] for name, value in sent.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": context,
        **_body(body, binary),
    }


def http_api_event(
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    binary: bool = False,
) -> dict[str, Any]:
    """An HTTP API (v2) event for the ``$default`` route and stage."""
    return _v2_event(method, path, query, body, headers, binary, f"{API_ID}.execute-api.{REGION}.amazonaws.com")


def function_url_event(
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    binary: bool = False,
) -> dict[str, Any]:
    """A Lambda function URL event (payload 2.0 from an anonymous caller on a lambda-url domain)."""
    event = _v2_event(method, path, query, body, headers, binary, f"{API_ID}.lambda-url.{REGION}.on.aws")
    event["requestContext"]["accountId"] = "anonymous"
    return event


EventBuilder = Callable[..., dict[str, Any]]
EVENT_KINDS: dict[str, EventBuilder] = {
    "rest-api-v1": rest_api_event,
    "http-api-v2": http_api_event,
    "function-url": function_url_event,
}


def answer_body(answer: Mapping[str, Any]) -> bytes:
    """The body of a Lambda proxy answer, base64-decoded when it says so."""
    body = answer.get("body") or ""
    return base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()


def answer_header(answer: Mapping[str, Any], name: str) -> str | None:
    """A header of a Lambda proxy answer (``headers`` or, for payload 1.0, ``multiValueHeaders``)."""
    for key, value in (answer.get("headers") or {}).items():
        if key.lower() == name.lower():
            return value
    for key, values in (answer.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return ", ".join(values)
    return None


def _v2_event(
    method: str,
    path: str,
    query: Mapping[str, str] | None,
    body: bytes | None,
    headers: Mapping[str, str] | None,
    binary: bool,
    domain: str,
) -> dict[str, Any]:
    sent = {"accept": "*/*", "host": domain, "user-agent": USER_AGENT, "x-forwarded-for": SOURCE_IP,
            "x-forwarded-port": "443", "x-forwarded-proto": "https",
            **{name.lower(): value for name, value in (headers or {}).items()}}  # fmt: skip
    context = {
        "accountId": ACCOUNT, "apiId": API_ID, "domainName": domain, "domainPrefix": API_ID,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": SOURCE_IP,
                 "userAgent": USER_AGENT},
        "requestId": "JKJaXmPLvHcESHA=", "routeKey": "$default", "stage": "$default",
        "time": "02/Dec/2026:00:00:00 +0000", "timeEpoch": EPOCH_MS,
    }  # fmt: skip
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "cookies": ["session=anonymous"],
        "headers": sent,
        "requestContext": context,
        **_body(body, binary),
    }
    if query:
        event["queryStringParameters"] = dict(query)
    return event


def _body(body: bytes | None, binary: bool) -> dict[str, Any]:
    if body is None:
        return {"body": None, "isBase64Encoded": False}
    if binary:
        return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}
    return {"body": body.decode(), "isBase64Encoded": False}
