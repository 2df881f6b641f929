"""The service's HTTP contract, in process (``Pricing.to_asgi()`` + TestClient, conftest.py) on the smoke-trained
models."""

from __future__ import annotations

import time

import pytest

LEGACY_FIELDS = {
    "stockcode", "unit_price", "quantity", "quantity_min", "quantity_max", "predicted_sales",
    "optimal_unit_price", "max_predicted_sales",
}  # fmt: skip


def test_declared_models_are_the_serving_order_training_recorded(service, smoke_run) -> None:
    declared = [str(service.Pricing.models[i].tag) for i in range(len(service.Pricing.models))]
    assert sorted(declared) == sorted(smoke_run.record["serving_order"])
    assert smoke_run.record["serving_order"] == service.SERVING_ORDER
    assert str(service.Pricing.inner.primary.tag) == smoke_run.record["serving_order"][0]


def test_sweep_answers_with_the_primary_and_a_consistent_optimum(client, smoke_run) -> None:
    response = client.post("/price_sweep", json={"stockcode": "85123A", "bins": 40, "context": 30})
    assert response.status_code == 200, response.text
    body = response.json()
    name, version = smoke_run.record["serving_order"][0].split(":")
    assert body["model"] == {"name": name, "version": version, "role": "primary"}
    assert body["fallback_used"] is False and body["context_rows"] == 30 and body["period"] == "week"
    curve = body["curve"]
    assert len(curve) == 40 and curve[0]["unit_price"] < curve[-1]["unit_price"]
    best = max(curve, key=lambda p: p["predicted_sales"])
    optimal = body["optimal"]
    assert {k: optimal[k] for k in ("unit_price", "quantity", "predicted_sales")} == {
        k: best[k] for k in ("unit_price", "quantity", "predicted_sales")
    }
    assert optimal["interval"][0] <= optimal["unit_price"] <= optimal["interval"][1]
    assert optimal["at_grid_edge"] in (None, "lower", "upper")
    price_list = body["price_list"]
    assert price_list["segment"] == "wholesale" and price_list["response"] in ("own", "pooled")
    assert price_list["identifiable"] is (price_list["response"] == "own")
    for point in curve:
        assert point["quantity_min"] <= point["quantity"] <= point["quantity_max"]
        expected = point["unit_price"] * point["quantity"] * price_list["paid_ratio"]
        assert point["predicted_sales"] == pytest.approx(expected, rel=1e-3)


def test_the_retail_list_is_priced_on_request(client) -> None:
    wholesale = client.post("/price_sweep", json={"stockcode": "85123A", "bins": 5}).json()
    retail = client.post("/price_sweep", json={"stockcode": "85123A", "bins": 5, "segment": "retail"}).json()
    assert retail["price_list"]["segment"] == "retail"
    assert retail["price_list"]["usual_price"] > 1.5 * wholesale["price_list"]["usual_price"]


def test_each_model_of_the_serving_order_can_be_asked_by_name(client, smoke_run) -> None:
    curves = {}
    for rank, tag in enumerate(smoke_run.record["serving_order"]):
        name, version = tag.split(":")
        response = client.post("/price_sweep", json={"stockcode": "85123A", "bins": 12, "model": name})
        assert response.status_code == 200, response.text
        body = response.json()
        role = "primary" if rank == 0 else f"fallback-{rank}"
        assert body["model"] == {"name": name, "version": version, "role": role}
        assert body["fallback_used"] is False and len(body["curve"]) == 12
        curves[name] = [point["quantity"] for point in body["curve"]]
    assert len({tuple(curve) for curve in curves.values()}) > 1, "the models' curves differ"
    default = client.post("/price_sweep", json={"stockcode": "85123A", "bins": 12}).json()
    assert default["model"]["role"] == "primary" and default["cached"] is False, "a named model has its own cache entry"


def test_repeated_sweep_is_served_from_the_cache(client) -> None:
    request = {"stockcode": "22423", "bins": 25}
    first, second = client.post("/price_sweep", json=request).json(), client.post("/price_sweep", json=request).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert {**first, "cached": True} == second
    lower_case = client.post("/price_sweep", json={"stockcode": " 22423 ", "bins": 25}).json()
    assert lower_case["cached"] is True, "the normalised request shares the cache entry"


def test_invocations_is_the_sagemaker_name_for_the_sweep(client) -> None:
    sweep = client.post("/price_sweep", json={"stockcode": "85123A", "bins": 7}).json()
    invoked = client.post("/invocations", json={"stockcode": "85123A", "bins": 7}).json()
    assert invoked["curve"] == sweep["curve"]


def test_compatibility_route_keeps_the_original_field_names(client) -> None:
    response = client.get(
        "/v1/predict-price/85123A", params={"unitprice_min": 2, "unitprice_max": 6, "num_price_bins": 50}
    )
    assert response.status_code == 200, response.text
    rows = response.json()
    assert len(rows) == 50 and all(set(row) == LEGACY_FIELDS for row in rows)
    assert rows[0]["unit_price"] == 2 and rows[-1]["unit_price"] == 6
    best = max(rows, key=lambda r: r["predicted_sales"])
    assert {r["optimal_unit_price"] for r in rows} == {best["unit_price"]}
    assert {r["max_predicted_sales"] for r in rows} == {best["predicted_sales"]}


def assert_error(response, status: int, field: str | None) -> dict:
    """The response is the one error body with this status and field; return its error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"status", "field", "message"} and error["status"] == status, error
    assert error["field"] == field, error
    assert error["message"] and "IODescriptor" not in error["message"], error
    return error


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"stockcode": "NOPE"}, 404, "stockcode"),
        ({"stockcode": "85123A", "bins": 1}, 400, "bins"),
        ({"stockcode": "85123A", "bins": 5000}, 400, "bins"),
        ({"stockcode": "85123A", "context": 0}, 400, "context"),
        ({"stockcode": "85123A", "price_min": 5, "price_max": 2}, 400, "price_max"),
        ({"stockcode": "85123A", "price_min": -1}, 400, "price_min"),
        ({"stockcode": ""}, 400, "stockcode"),
        ({"bins": 10}, 400, "stockcode"),
        ({"stockcode": "85123A", "colour": "red"}, 400, "colour"),
        ({"stockcode": "85123A", "segment": "vip"}, 400, "segment"),
        ({"stockcode": "85123A", "model": "pricing_nope"}, 400, "model"),
        ({"stockcode": "85123A", "model": "../etc"}, 400, "model"),
    ],
)
def test_bad_sweeps_get_an_error_naming_the_field(client, body, status, field) -> None:
    assert_error(client.post("/price_sweep", json=body), status, field)


def test_non_finite_numbers_are_rejected(client) -> None:
    body = '{"stockcode": "85123A", "price_min": NaN}'
    response = client.post("/price_sweep", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("params", "status", "field", "words"),
    [
        ({"num_price_bins": 1}, 400, "num_price_bins", "num_price_bins"),
        ({"unitprice_min": 6, "unitprice_max": 2}, 400, "unitprice_max", "above unitprice_min (6.0)"),
        ({"unitprice_min": "cheap"}, 422, "unitprice_min", "valid number"),
        ({"num_bins": 50}, 422, "num_bins", "unknown query parameter"),
    ],
)
def test_compatibility_route_errors_use_its_own_names(client, params, status, field, words) -> None:
    error = assert_error(client.get("/v1/predict-price/85123A", params=params), status, field)
    assert words in error["message"] and "price_min" not in error["message"].replace("unitprice_min", "")


def test_compatibility_route_unknown_product_is_404(client) -> None:
    assert_error(client.get("/v1/predict-price/NOPE"), 404, "stockcode")


def test_health_routes(client) -> None:
    assert client.get("/ping").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200


def test_products_are_searchable_and_paginated(client) -> None:
    everything = client.get("/products", params={"limit": 500}).json()
    assert everything["total"] == len(everything["products"]) > 10
    page = client.get("/products", params={"offset": 5, "limit": 5}).json()
    assert page["products"] == everything["products"][5:10]
    found = client.get("/products", params={"q": "heart"}).json()
    assert found["total"] >= 1 and all("HEART" in p["description"] for p in found["products"])
    item = next(p for p in everything["products"] if p["stockcode"] == "85123A")
    assert item["main_segment"] == "wholesale" and {lst["segment"] for lst in item["lists"]} == {"wholesale", "retail"}
    for price_list in item["lists"]:
        assert price_list["price_min"] <= price_list["usual_price"] <= price_list["price_max"]
        assert isinstance(price_list["identifiable"], bool)
    assert_error(client.get("/products", params={"limit": 0}), 422, "limit")


def test_model_route_lists_the_serving_order_with_metrics(client, smoke_run) -> None:
    deadline = time.monotonic() + 60
    while (body := client.get("/model").json())["loading"] and time.monotonic() < deadline:
        time.sleep(0.1)  # fallbacks load in the background after the primary
    assert [f"{m['name']}:{m['version']}" for m in body["models"]] == smoke_run.record["serving_order"]
    assert [m["role"] for m in body["models"]][:2] == ["primary", "fallback-1"]
    assert "mse" in body["models"][0]["metrics"]["test"] and body["models"][0]["trained_at"]
    assert body["not_loaded"] == [] and body["loading"] == []
    assert body["cache"] == {"backend": "memory", "healthy": True}


def test_openapi_describes_the_inputs(client) -> None:
    spec = client.get("/docs.json").json()
    assert "/price_sweep" in spec["paths"] and "/invocations" in spec["paths"]
    text = str(spec)
    assert "Product stock code" in text and "85123A" in text


ROWS = [
    {"StockCode": "85123A", "UnitPrice": 2.95, "InvoiceDate": "2011-12-01T10:00:00", "CustomerID": 17850,
     "Country": "United Kingdom", "Quantity": 6, "InvoiceNo": "536365"},
    {"stockcode": "22423", "unit_price": 12.75, "invoice_date": "2011-12-02T11:30:00", "segment": "retail"},
    {"StockCode": "99999Z", "UnitPrice": 1.0, "InvoiceDate": "2011-12-03T09:00:00"},
]  # fmt: skip


def test_predict_answers_each_row_in_order_for_its_period(client) -> None:
    response = client.post("/predict", json={"rows": ROWS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["role"] == "primary" and body["fallback_used"] is False and body["period"] == "week"
    predictions = body["predictions"]
    assert [p["stockcode"] for p in predictions] == ["85123A", "22423", "99999Z"]
    assert [p["segment"] for p in predictions] == ["wholesale", "retail", "wholesale"]
    assert [p["period"] for p in predictions] == ["2011-11-28", "2011-11-28", "2011-11-28"]
    assert [p["known_product"] for p in predictions] == [True, True, False]
    assert all(p["quantity"] > 0 and p["predicted_sales"] > 0 for p in predictions)


def test_predict_demand_falls_with_price_and_agrees_with_the_sweep(client) -> None:
    rows = [{**ROWS[0], "UnitPrice": price} for price in (1.5, 2.5, 3.5)]
    quantities = [p["quantity"] for p in client.post("/predict", json={"rows": rows}).json()["predictions"]]
    assert quantities[0] > quantities[1] > quantities[2]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rows": []}, "rows"),
        ({"rows": [ROWS[0], {**ROWS[0], "UnitPrice": 0}]}, "rows[1].UnitPrice"),
        ({"rows": [{**ROWS[0], "InvoiceDate": "yesterday"}]}, "rows[0].InvoiceDate"),
        ({"rows": [{**ROWS[0], "InvoiceDate": 1_300_000_000}]}, "rows[0].InvoiceDate"),
        ({"rows": [{**ROWS[0], "InvoiceDate": "0001-01-01T00:00:00"}]}, "rows[0].InvoiceDate"),
        ({"rows": [{"UnitPrice": 2.0, "InvoiceDate": "2011-12-01"}]}, "rows[0].StockCode"),
        ({"rows": [{**ROWS[0], "segment": "vip"}]}, "rows[0].segment"),
    ],
)
def test_bad_rows_get_an_error_naming_the_field(client, body, field) -> None:
    assert_error(client.post("/predict", json=body), 400, field)


def test_invocations_takes_rows_as_json_and_as_csv(client) -> None:
    as_json = client.post("/invocations", json={"rows": ROWS[:1]}).json()
    csv = "StockCode,UnitPrice,InvoiceDate,CustomerID,Country\n85123A,2.95,2011-12-01 10:00:00,17850,United Kingdom\n"
    as_csv = client.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.json()["predictions"] == as_json["predictions"]
    assert client.post("/predict", json={"rows": ROWS[:1]}).json()["predictions"] == as_json["predictions"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "field"),
    [
        ("{not json", "application/json", 400, None),
        ('{"stockcode": "85123A", "bins": 1}', "application/json", 400, "bins"),
        ('{"stockcode": "NOPE"}', "application/json", 404, "stockcode"),
        ('{"rows": [{"StockCode": "85123A", "UnitPrice": -2, "InvoiceDate": "2011-12-01"}]}', "application/json",
         400, "rows[0].UnitPrice"),
        ("StockCode,UnitPrice\n85123A,2.0\n", "text/csv", 400, "rows[0].InvoiceDate"),
    ],
)  # fmt: skip
def test_invocations_errors(client, content, content_type, status, field) -> None:
    assert_error(client.post("/invocations", content=content, headers={"content-type": content_type}), status, field)
