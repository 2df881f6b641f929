"""The HTTP contract in process (``Pricing.to_asgi()`` + TestClient, the smoke-trained models): one error body for
every route and status, a valid OpenAPI 3.0 document that says what each route takes and answers, and hostile
sizes refused with a clear 4xx. The schema-driven fuzzing of a real `bentoml serve` is test_fuzz.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from pricing.api import MAX_ROWS
from pricing.limits import DEFAULT_MAX_BODY_BYTES

JSON = {"content-type": "application/json"}
CSV = {"content-type": "text/csv"}


@pytest.fixture(scope="module")
def document(client) -> dict[str, Any]:
    response = client.get("/docs.json")
    assert response.status_code == 200
    return response.json()


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, value) in a document."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


# ---------------------------------------------------------------------------------------------------
# The document


def test_the_document_is_valid_openapi_30(document) -> None:
    assert document["openapi"].startswith("3.0")
    validate(document)  # openapi-spec-validator: raises on any violation of the 3.0 schema


def test_the_document_has_no_json_schema_2020_forms(document) -> None:
    for pointer, node in walk(document):
        if not isinstance(node, dict):
            continue
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            assert not isinstance(node.get(key), int | float) or isinstance(node[key], bool), pointer
        assert node.get("type") != "null" and not isinstance(node.get("type"), list), pointer
        assert "const" not in node and "$defs" not in node and "prefixItems" not in node, pointer
    assert "IODescriptor" not in json.dumps(document), "no internal class names"


EXPECTED = {  # 504: BentoML's traffic timeout (test_serve_edge.py answers one)
    ("post", "/price_sweep"): {"200", "400", "404", "413", "415", "503", "504"},
    ("post", "/predict"): {"200", "400", "413", "415", "503", "504"},
    ("post", "/invocations"): {"200", "400", "404", "413", "503", "504"},
    ("get", "/v1/predict-price/{stockcode}"): {"200", "400", "404", "422", "503", "504"},
    ("get", "/products"): {"200", "422", "503", "504"},
    ("get", "/model"): {"200", "504"},
    ("get", "/ping"): {"200", "503"},
    ("get", "/readyz"): {"200", "503"},
}


@pytest.mark.parametrize(("method", "path"), list(EXPECTED))
def test_every_route_documents_each_status_it_answers_with_the_error_body(document, method, path) -> None:
    responses = document["paths"][path][method]["responses"]
    assert set(responses) == EXPECTED[(method, path)]
    for status, response in responses.items():
        if status != "200":
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


def test_the_error_body_schema_is_the_one_served(document) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["ErrorBody"]["required"] == ["error"]
    detail = schemas["ErrorDetail"]
    assert set(detail["required"]) == {"status", "field", "message"}
    assert detail["properties"]["field"]["nullable"] is True


def test_invocations_and_the_compatibility_route_say_what_they_accept(document) -> None:
    body = document["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv"}
    assert body["application/json"]["schema"]["oneOf"] == [
        {"$ref": "#/components/schemas/SweepIn"}, {"$ref": "#/components/schemas/PredictIn"}
    ]  # fmt: skip
    ok = document["paths"]["/invocations"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["oneOf"] == [{"$ref": "#/components/schemas/SweepOut"}, {"$ref": "#/components/schemas/PredictOut"}]
    legacy = document["paths"]["/v1/predict-price/{stockcode}"]["get"]
    parameters = {p["name"]: p for p in legacy["parameters"]}
    assert parameters["stockcode"]["schema"]["maxLength"] == 32
    assert parameters["num_price_bins"]["schema"].items() >= {"minimum": 2, "maximum": 1000}.items()
    assert parameters["unitprice_min"]["schema"].items() >= {"minimum": 0, "exclusiveMinimum": True}.items()
    items = legacy["responses"]["200"]["content"]["application/json"]["schema"]["items"]
    assert items == {"$ref": "#/components/schemas/LegacyPoint"}


def test_sweep_inputs_are_documented_with_their_bounds_and_the_models_by_name(document, smoke_run) -> None:
    sweep = document["components"]["schemas"]["SweepIn"]
    assert sweep["additionalProperties"] is False and sweep["required"] == ["stockcode"]
    properties = sweep["properties"]
    assert properties["price_min"].items() >= {"type": "number", "minimum": 0, "exclusiveMinimum": True}.items()
    assert properties["bins"].items() >= {"minimum": 2, "maximum": 1000}.items()
    names = sorted(tag.split(":")[0] for tag in smoke_run.record["serving_order"])
    assert properties["model"]["enum"] == [*names, None]


def test_with_an_api_key_the_document_says_which_routes_need_it(service) -> None:
    from pricing.auth import OPEN_PATHS
    from pricing.openapi import contract_document

    document = contract_document(service.Pricing.openapi_spec.asdict(), open_paths=OPEN_PATHS)
    validate(document)
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    sweep = document["paths"]["/price_sweep"]["post"]
    assert sweep["security"] == [{"ApiKey": []}] and "401" in sweep["responses"]
    ping = document["paths"]["/ping"]["get"]
    assert "security" not in ping and "401" not in ping["responses"]


# ---------------------------------------------------------------------------------------------------
# One error body


def assert_error(response, status: int, field: str | None) -> str:
    """The response is the one error body with this status and field; return its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and body["error"]["status"] == status, body
    assert body["error"]["field"] == field, body
    message = body["error"]["message"]
    assert message and "IODescriptor" not in message and "Traceback" not in message, body
    return message


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "field"),
    [
        ("post", "/price_sweep", {"json": {"stockcode": "85123A", "bins": 0}}, 400, "bins"),
        ("post", "/price_sweep", {"json": {"stockcode": "NOPE"}}, 404, "stockcode"),
        ("post", "/price_sweep", {"json": ["85123A"]}, 400, None),
        ("post", "/price_sweep", {"content": b"{nope", "headers": JSON}, 400, None),
        ("post", "/price_sweep", {"data": {"stockcode": "85123A"}}, 415, None),  # a form
        ("post", "/predict", {"json": {"rows": [{"StockCode": "1", "UnitPrice": 1, "InvoiceDate": "x"}]}}, 400,
         "rows[0].InvoiceDate"),
        ("post", "/predict", {"files": {"rows": ("rows.json", b"[]")}}, 415, None),
        ("post", "/invocations", {"content": b"a,b\n1,2,3\n", "headers": CSV}, 400, "rows[0]"),
        ("post", "/invocations", {"content": b"\xff\xfe\x00", "headers": CSV}, 400, None),
        ("get", "/v1/predict-price/NOPE", {}, 404, "stockcode"),
        ("get", "/v1/predict-price/85123A?num_price_bins=0", {}, 400, "num_price_bins"),
        ("get", "/v1/predict-price/85123A?unitprice_max=x", {}, 422, "unitprice_max"),
        ("get", "/products?limit=501", {}, 422, "limit"),
        ("get", "/products?colour=red", {}, 422, "colour"),
        ("get", "/no-such-route", {}, 404, None),
        ("get", "/price_sweep", {}, 405, None),
        ("post", "/model", {}, 405, None),
        ("delete", "/ping", {}, 405, None),
        # The internal batching APIs of earlier versions are gone: batching happens inside the worker.
        ("post", "/sweep_batch", {"json": {"plans": {}}}, 404, None),
        ("post", "/predict_batch", {"json": {"matrix": {}}}, 404, None),
    ],
)  # fmt: skip
def test_every_error_is_the_one_body_naming_the_field(client, method, path, kwargs, status, field) -> None:
    assert_error(client.request(method.upper(), path, **kwargs), status, field)


def test_the_compatibility_route_names_its_own_parameters(client) -> None:
    message = assert_error(
        client.get("/v1/predict-price/85123A", params={"unitprice_min": 6, "unitprice_max": 2}), 400, "unitprice_max"
    )
    assert message == "unitprice_max: must be above unitprice_min (6.0), got 2.0"


def test_every_status_answered_is_documented_for_its_route(client, document) -> None:
    answers = {
        ("post", "/price_sweep"): [client.post("/price_sweep", json=b) for b in ({"stockcode": "NOPE"}, {"bins": 2})],
        ("get", "/v1/predict-price/{stockcode}"): [
            client.get("/v1/predict-price/85123A", params=p) for p in ({"num_price_bins": "x"}, {"num_price_bins": 1})
        ],
        ("post", "/invocations"): [client.post("/invocations", content=b"x" * (DEFAULT_MAX_BODY_BYTES + 1))],
    }
    for (method, path), responses in answers.items():
        documented = document["paths"][path][method]["responses"]
        for response in responses:
            assert str(response.status_code) in documented, (path, response.status_code)


def test_the_error_body_sits_in_front_of_bentomls_traffic_middlewares(client) -> None:
    """BentoML answers its traffic timeout (504) outside the service's middlewares; pricing.edge moves the error
    body in front of it, behind the access log and metrics (which still see every status)."""
    names = [m.cls.__name__ for m in client.app.user_middleware]
    body = names.index("ErrorBodyMiddleware")
    assert names[body + 1] == "TimeoutMiddleware", names
    assert names.index("AccessLogMiddleware") < body and names.index("BodyLimitMiddleware") > body, names


# ---------------------------------------------------------------------------------------------------
# Hostile sizes


def test_a_body_over_the_limit_is_refused_before_it_is_read(client) -> None:
    big = b'{"stockcode": "' + b"8" * DEFAULT_MAX_BODY_BYTES + b'"}'
    for path in ("/price_sweep", "/predict", "/invocations"):
        message = assert_error(client.post(path, content=big, headers=JSON), 413, None)
        assert "PRICING_MAX_BODY_BYTES" in message


def test_a_chunked_body_over_the_limit_is_refused_too(client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b" " * (1024 * 1024)  # no Content-Length: counted as it arrives

    for path in ("/price_sweep", "/invocations"):
        assert_error(client.post(path, content=chunks(), headers=JSON), 413, None)


def test_a_million_row_csv_is_refused(client) -> None:
    rows = b"StockCode,UnitPrice,InvoiceDate\n" + b"85123A,2.55,2011-12-01 10:00\n" * 1_000_000
    assert_error(client.post("/invocations", content=rows, headers=CSV), 413, None)


def test_a_csv_with_more_rows_than_allowed_is_refused_before_parsing() -> None:
    from pricing.api import csv_records
    from pricing.errors import ApiError

    rows = b"StockCode,UnitPrice,InvoiceDate\n" + b"85123A,2.55,2011-12-01 10:00\n" * (MAX_ROWS + 1)
    with pytest.raises(ApiError) as refused:
        csv_records(rows)
    assert (refused.value.status, refused.value.field) == (400, "rows")
    assert len(csv_records(rows[: rows.index(b"\n") + 1] + b"85123A,2.55,2011-12-01 10:00\n" * MAX_ROWS)) == MAX_ROWS


@pytest.mark.parametrize(
    ("csv", "field", "words"),
    [
        (b"StockCode,UnitPrice,InvoiceDate\n85123A,2.55\n", "rows[0]", "line 2 has 2 fields, the header 3"),
        (b"StockCode,UnitPrice,InvoiceDate\n85123A,2.55,2011-12-01,extra\n", "rows[0]", "line 2 has 4 fields"),
        (b"", "rows", "no header line"),
        (b"StockCode,UnitPrice,InvoiceDate\n85123A,2.55,2011-12-01\n\n22423,x,2011-12-01\n", "rows[1].UnitPrice",
         "valid number"),
    ],
)  # fmt: skip
def test_csv_bodies_with_wrong_shapes_name_the_line(client, csv, field, words) -> None:
    assert words in assert_error(client.post("/invocations", content=csv, headers=CSV), 400, field)


@pytest.mark.parametrize(
    ("body", "field", "invocations_field"),
    [
        ('{"stockcode": "85123A", "bins": 1000000000000000000000000000000}', "bins", "bins"),
        ('{"stockcode": "85123A", "context": 1e30}', "context", "context"),
        # a number beyond a double: infinity to BentoML's parser, not JSON to /invocations' (orjson)
        ('{"stockcode": "85123A", "price_max": 1e400}', "price_max", None),
        ('{"stockcode": "' + "8" * 100_000 + '"}', "stockcode", "stockcode"),
        ('{"stockcode": "85123A", "price_min": 1e308}', "price_min", "price_min"),
    ],
)
def test_huge_values_are_refused_naming_the_field(client, body, field, invocations_field) -> None:
    assert_error(client.post("/price_sweep", content=body, headers=JSON), 400, field)
    assert_error(client.post("/invocations", content=body, headers=JSON), 400, invocations_field)


def test_prices_beyond_the_documented_maximum_are_refused(client) -> None:
    rows = {"rows": [{"StockCode": "85123A", "UnitPrice": 1e300, "InvoiceDate": "2011-12-01T10:00:00"}]}
    for path in ("/predict", "/invocations"):
        assert_error(client.post(path, json=rows), 400, "rows[0].UnitPrice")
    assert_error(client.get("/v1/predict-price/85123A", params={"unitprice_max": 2e6}), 400, "unitprice_max")


def test_a_very_long_stock_code_on_the_compatibility_route_is_refused(client) -> None:
    assert_error(client.get("/v1/predict-price/" + "8" * 4000), 400, "stockcode")


@pytest.mark.parametrize("path", ["/price_sweep", "/predict", "/invocations"])
def test_deeply_nested_json_is_refused(client, path) -> None:
    nested = b'{"rows": ' * 100_000 + b"1" + b"}" * 100_000
    message = assert_error(client.post(path, content=nested, headers=JSON), 400, None)
    assert "recursion" in message or "depth" in message
