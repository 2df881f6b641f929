"""A price sweep against a deployed service, printed as the curve and the best price.

Three ways in: SageMaker's runtime API (``InvokeEndpoint`` on ``/invocations``), the Lambda function's front
door (its function URL or HTTP API, found through the Lambda and API Gateway APIs, signed with SigV4 when the
URL wants IAM auth), or any URL that serves the API (``bentoml serve``, a staging host).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from pricing.cloud.aws import Aws, CloudError, aws_errors, error_code, one_line
from pricing.cloud.sagemaker import require_endpoint

BAR_WIDTH = 40
HTTP_TIMEOUT_S = 60


def sweep_request(
    stockcode: str,
    *,
    price_min: float | None = None,
    price_max: float | None = None,
    bins: int | None = None,
    segment: str | None = None,
) -> dict[str, Any]:
    """The JSON body of a sweep (``/price_sweep`` and ``/invocations`` take the same fields)."""
    body: dict[str, Any] = {"stockcode": stockcode}
    optional = {"price_min": price_min, "price_max": price_max, "bins": bins, "segment": segment}
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def invoke_sagemaker(aws: Aws, endpoint: str, request: dict[str, Any]) -> dict[str, Any]:
    """Send the sweep to the endpoint's ``/invocations`` through SageMaker's runtime API; return the answer."""
    described = require_endpoint(aws, endpoint)
    if described["EndpointStatus"] != "InService":
        raise CloudError(f"SageMaker endpoint {endpoint} is {described['EndpointStatus']}, not InService")
    runtime = aws.client("sagemaker-runtime")
    with aws_errors(f"invoke the SageMaker endpoint {endpoint}"):
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(request).encode(),
            )
        except ClientError as exc:
            if error_code(exc) == "ModelError":
                # The container answered with an error status: its own message says what was wrong.
                error = exc.response.get("Error", {})
                status = exc.response.get("OriginalStatusCode", "?")
                detail = exc.response.get("OriginalMessage") or error.get("Message", "")
                raise CloudError(f"the endpoint answered {status}: {_detail(detail)}") from None
            raise
    return _parse(answer["Body"].read(), f"SageMaker endpoint {endpoint}")


def invoke_url(url: str, request: dict[str, Any], aws: Aws | None = None) -> dict[str, Any]:
    """POST the sweep to ``url``'s ``/price_sweep`` (signed for Lambda with SigV4 when ``aws`` is given)."""
    target = url.rstrip("/") + "/price_sweep"
    body = json.dumps(request).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if aws is not None:
        signed = AWSRequest(method="POST", url=target, data=body, headers=headers)
        SigV4Auth(aws.session.get_credentials().get_frozen_credentials(), "lambda", aws.region).add_auth(signed)
        headers = dict(signed.headers.items())
    try:
        answer = httpx.post(target, content=body, headers=headers, timeout=HTTP_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise CloudError(f"no answer from {target}: {one_line(exc)}") from None
    if answer.status_code != 200:
        raise CloudError(f"{target} answered {answer.status_code}: {_detail(answer.text)}")
    return _parse(answer.content, target)


def _detail(text: str) -> str:
    """The service's error message out of its JSON body (``{"error": {"message"}}``; ``detail`` or ``error`` from a
    proxy or an older service), else the text itself."""
    try:
        body = json.loads(text)
    except (TypeError, ValueError):
        return one_line(text)[:300]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]  # BentoML's own errors come as a list of one object
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict):
        return one_line(body.get("detail") or body.get("error") or body.get("message") or text)[:300]
    return one_line(text)[:300]


def _parse(raw: bytes, source: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise CloudError(f"{source} did not answer JSON: {raw[:200]!r}") from None
    if not isinstance(body, dict) or not isinstance(body.get("curve"), list) or "optimal" not in body:
        raise CloudError(f"{source} did not answer a price sweep: {one_line(str(body))[:200]}")
    return body


def format_sweep(body: dict[str, Any]) -> str:
    """The curve as a table with a bar per price (predicted sales), the best price marked, and the optimum."""
    curve, optimal = body["curve"], body["optimal"]
    period = body.get("period", "period")
    top = max((point["predicted_sales"] for point in curve), default=0.0) or 1.0
    model = body.get("model", {})
    lines = [
        f"{body.get('stockcode')}: {len(curve)} prices, model {model.get('name')}:{model.get('version')} "
        f"({model.get('role')}){', fallback used' if body.get('fallback_used') else ''}",
        f"{'unit_price':>10} {'quantity':>10} {'sales/' + period:>12}",
    ]
    for point in curve:
        bar = "#" * round(BAR_WIDTH * max(point["predicted_sales"], 0.0) / top)
        mark = " <- best" if point["unit_price"] == optimal["unit_price"] else ""
        lines.append(
            f"{point['unit_price']:>10.2f} {point['quantity']:>10.2f} {point['predicted_sales']:>12.2f} {bar}{mark}"
        )
    interval = optimal.get("interval")
    sure = f" (80% interval {interval[0]:.2f}-{interval[1]:.2f})" if interval else ""
    edge = f"; at the {optimal['at_grid_edge']} edge of the grid" if optimal.get("at_grid_edge") else ""
    lines.append(
        f"best price {optimal['unit_price']:.2f}{sure}: {optimal['quantity']:.2f} units and "
        f"{optimal['predicted_sales']:.2f} sales per {period}{edge}"
    )
    return "\n".join(lines)
