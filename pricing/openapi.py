"""The service's OpenAPI document (``/docs.json``): BentoML's, made a valid OpenAPI 3.0 document that says what
every route accepts and every status it answers.

BentoML writes an "openapi: 3.0.2" document but fills it with pydantic's JSON Schema 2020-12 (``"exclusiveMinimum":
0``, ``{"type": "null"}`` in ``anyOf``, ``examples`` lists), documents errors it never sends in shapes it never
uses, and knows nothing of what the FastAPI routes read from a raw body (``/invocations``). ``contract_document``
keeps its paths, parameters, tags and infrastructure routes, and replaces per operation the request body, the
responses (with the one error body of ``pricing.errors`` for every error status) and the schemas (generated here
from the same pydantic models that validate the requests, then rewritten into 3.0's dialect by ``to_openapi30``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from pricing.api import LegacyPoint, PredictIn, PredictOut, SweepIn, SweepOut
from pricing.errors import ErrorBody

REF = "#/components/schemas/{model}"
DESCRIPTION = (
    "Price optimisation: for a product, predicted demand and revenue over a grid of posted prices and the "
    "revenue-maximising price (POST /price_sweep), demand at given prices and dates (POST /predict), SageMaker's "
    "contract (GET /ping, POST /invocations) and the original system's route (GET /v1/predict-price/{stockcode}). "
    'Every error answers {"error": {"status", "field", "message"}}, field naming the input as the client wrote it. '
    "Any request still unanswered after the service's time limit (60 s unless its operator changes BentoML's "
    "traffic.timeout) is cancelled with a 504."
)
OPEN_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

ERRORS = {
    400: "Invalid input: `field` names it",
    401: "Missing or wrong X-API-Key header (only when the service is started with PRICING_API_KEY)",
    404: "Unknown product (or it has no such price list): `field` is `stockcode`",
    413: "Request body larger than PRICING_MAX_BODY_BYTES (default 4 MiB)",
    415: "A form (multipart/form-data, application/x-www-form-urlencoded) instead of JSON",
    422: "A query parameter is malformed (e.g. not a number) or outside its declared range",
    503: "No model can answer (none loaded yet, or every model of the serving order failed)",
    504: "No answer within the service's time limit (BentoML's traffic.timeout, 60 s; a body that stops "
    "arriving counts too): the request was cancelled",
}


@dataclass(frozen=True)
class Operation:
    """What one route accepts and answers, beyond what BentoML or FastAPI wrote."""

    ok: dict[str, Any] | None = None  # the 200 response's content, if this module knows it better
    errors: tuple[int, ...] = ()
    body: dict[str, Any] | None = None  # the request body, if this module knows it better
    extra: dict[int, dict[str, Any]] = field(default_factory=dict)  # other documented responses


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=model.__name__)}


_STATUS = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("post", "/price_sweep"): Operation(
        ok=_json(_ref(SweepOut)),
        errors=(400, 404, 413, 415, 503, 504),
        body={"required": True, "content": _json(_ref(SweepIn))},
    ),
    ("post", "/predict"): Operation(
        ok=_json(_ref(PredictOut)),
        errors=(400, 413, 415, 503, 504),
        body={"required": True, "content": _json(_ref(PredictIn))},
    ),
    ("post", "/invocations"): Operation(
        ok=_json({"oneOf": [_ref(SweepOut), _ref(PredictOut)]}),
        errors=(400, 404, 413, 503, 504),
        body={
            "description": 'A sweep request (as POST /price_sweep), rows as JSON {"rows": [...]} (as POST '
            "/predict), or the rows as CSV with a header line (UCI column names or snake_case; other columns are "
            "ignored). A body that is not text/csv is read as JSON.",
            "required": True,
            "content": {
                **_json({"oneOf": [_ref(SweepIn), _ref(PredictIn)]}),
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "StockCode,UnitPrice,InvoiceDate\n85123A,2.55,2011-12-01 10:00\n",
                },
            },
        },
    ),
    ("get", "/v1/predict-price/{stockcode}"): Operation(
        ok=_json({"type": "array", "items": _ref(LegacyPoint)}), errors=(400, 404, 422, 503, 504)
    ),
    ("get", "/products"): Operation(errors=(422, 503, 504)),
    ("get", "/model"): Operation(errors=(504,)),
    ("get", "/ping"): Operation(
        ok=_json(_STATUS), extra={503: {"description": "No model is loaded", "content": _json(_ref(ErrorBody))}}
    ),
    ("get", "/readyz"): Operation(
        extra={503: {"description": "Not ready: no model is loaded yet", "content": _json(_ref(ErrorBody))}}
    ),
    ("get", "/livez"): Operation(),
    ("get", "/healthz"): Operation(),
    ("get", "/metrics"): Operation(ok={"text/plain": {"schema": {"type": "string"}}}),
}
_MODELS: tuple[tuple[type[BaseModel], str], ...] = (
    (SweepIn, "validation"), (PredictIn, "validation"), (SweepOut, "serialization"),
    (PredictOut, "serialization"), (LegacyPoint, "serialization"), (ErrorBody, "serialization"),
)  # fmt: skip


def contract_document(
    spec: Mapping[str, Any], *, model_names: Iterable[str] = (), open_paths: Iterable[str] | None = None
) -> dict[str, Any]:
    """The service's OpenAPI 3.0 document from BentoML's (``Service.openapi_spec.asdict()``).

    ``model_names``: the serving order's model names, the values a sweep's ``model`` may take. ``open_paths``:
    when the service requires an API key, the paths that do not (``pricing.auth``); None when it requires none.
    """
    document = copy.deepcopy(dict(spec))
    version = document.get("info", {}).get("version")
    document["info"] = {"title": "pricing", "version": version if version not in (None, "None") else "dev",
                        "description": DESCRIPTION}  # fmt: skip
    schemas = _component_schemas(list(model_names))
    document["components"] = {"schemas": schemas}
    if open_paths is not None:
        document["components"]["securitySchemes"] = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in OPEN_METHODS:
                continue
            _describe(operation, OPERATIONS.get((method, path), Operation()))
            if open_paths is not None and path not in set(open_paths):
                operation["security"] = [{"ApiKey": []}]
                operation["responses"]["401"] = _error(401)
    return to_openapi30(document)


def _component_schemas(model_names: list[str]) -> dict[str, Any]:
    _, top = models_json_schema(_MODELS, ref_template=REF)
    schemas = top["$defs"]
    if model_names:
        schemas["SweepIn"]["properties"]["model"]["anyOf"][0]["enum"] = sorted(set(model_names))
    return schemas


def _describe(operation: dict[str, Any], known: Operation) -> None:
    responses = operation.setdefault("responses", {})
    for status in [s for s in responses if s != "200"]:
        del responses[status]  # BentoML's and FastAPI's error schemas: never sent
    if known.ok is not None:
        responses["200"] = {"description": responses.get("200", {}).get("description", "OK"), "content": known.ok}
    responses.setdefault("200", {"description": "OK"})
    for status in known.errors:
        responses[str(status)] = _error(status)
    for status, response in known.extra.items():
        responses[str(status)] = response
    if known.body is not None:
        operation["requestBody"] = known.body


def _error(status: int) -> dict[str, Any]:
    return {"description": ERRORS[status], "content": _json(_ref(ErrorBody))}


def to_openapi30(node: Any, *, is_map: bool = False) -> Any:
    """``node`` with every JSON Schema 2020-12 construct pydantic writes rewritten into OpenAPI 3.0's dialect:
    ``{"type": "null"}`` alternatives become ``nullable``, numeric ``exclusiveMinimum``/``exclusiveMaximum`` the
    boolean form, ``const`` a one-value ``enum``, an ``examples`` list one ``example``; a ``$ref`` gets no
    siblings. ``is_map``: ``node`` maps names to objects (``properties``, ``schemas``), so is no schema itself."""
    if isinstance(node, list):
        return [to_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: to_openapi30(value, is_map=key in _MAPS and not is_map) for key, value in node.items()}
    if is_map:
        return node
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list) and {"type": "null"} in node[key]:
            node = _nullable(node, key)
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(key), int | float) and not isinstance(node[key], bool):
            node[bound], node[key] = node[key], True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("examples"), list):  # a parameter's or media type's "examples" is a map: kept
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    if "$ref" in node and len(node) > 1:
        node["allOf"] = [{"$ref": node.pop("$ref")}]
    return node


# Keys whose value maps names to objects, not a schema: ("properties" of a schema, "schemas" of components, ...).
_MAPS = frozenset({"properties", "patternProperties", "schemas", "paths", "responses", "content", "securitySchemes",
                   "headers", "encoding", "links", "callbacks"})  # fmt: skip


def _nullable(node: dict[str, Any], key: str) -> dict[str, Any]:
    others = [option for option in node[key] if option != {"type": "null"}]
    rest = {k: v for k, v in node.items() if k != key}
    if len(others) == 1:
        only = others[0]
        merged = {**rest, "allOf": [only]} if "$ref" in only else {**only, **rest}
    else:
        merged = {**rest, key: others}
    merged["nullable"] = True
    if isinstance(merged.get("enum"), list) and None not in merged["enum"]:
        merged["enum"] = [*merged["enum"], None]  # 3.0.3: nullable does not widen an enum
    if merged.get("default", ...) is None:
        merged["default"] = None
    return merged
